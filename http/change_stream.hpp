// SPDX-License-Identifier: Apache-2.0
#pragma once

// Internal to http/: the change feed's Server-Sent Events stream (docs/changes.md).

#include <string>

#include <boost/beast/core/tcp_stream.hpp>

#include "http/message.hpp"

namespace shoal::http {

struct server_context;

/// Answers GET /v1/collections/{c}/changes on `stream`, which the session hands over
/// after routing: a 200 text/event-stream response whose body is the collection's
/// events, read from every shard with long polls (changes::changes_read)
/// and written in arrival order, each with the stream's resume point as its `id:`. Ends
/// when the client leaves, the node drains, or the client falls more than
/// changes_max_buffer_bytes behind (then the last line tells it to resume). A resume
/// point older than a shard's retention is answered 410 before the stream starts.
/// `since`: "" (from now), "start", or an encoded position (change_routes.cpp checked its
/// syntax). From `req` the stream takes what shapes its answers: the HTTP version,
/// whether refusals come as RFC 9457 problem details (the client's Accept asked), and
/// the Origin the CORS fields answer (http/cors.hpp).
void start_change_stream(boost::beast::tcp_stream&& stream, server_context& ctx,
                         std::string collection, std::string since, std::string request_id,
                         const request& req);

} // namespace shoal::http
