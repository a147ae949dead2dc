// SPDX-License-Identifier: Apache-2.0
#pragma once

// Internal to http/: what router.cpp and job_routes.cpp share. The small helpers every
// route uses (defined in router.cpp), and the job queue routes that `route()` dispatches
// to (defined in job_routes.cpp). Only sources of http/ include this header: it adds
// Boost.JSON to the Beast message types of router.hpp.

#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include <boost/beast/http/status.hpp>
#include <boost/json/storage_ptr.hpp>
#include <boost/json/value.hpp>

#include "http/router.hpp"

namespace shoal::http::detail {

/// The Allow value of the read-only routes (the session drops the body of HEAD responses).
inline constexpr std::string_view read_methods = "GET, HEAD";

/// 405 method_not_allowed, with `allow` as the Allow header.
response method_not_allowed(std::string_view allow, unsigned version);

/// 404 not_found "no such route".
response no_such_route(unsigned version);

/// A response with `status` and `body`, which is JSON already, as application/json.
response plain_json(boost::beast::http::status status, std::string body, unsigned version);

/// 415 unsupported_media_type when the request names a Content-Type that is not JSON
/// (application/json or */*+json); a request without one is fine.
std::optional<response> check_json_media_type(const request& req);

/// Parses `text` as JSON no deeper than env.max_json_depth, allocating from `sp`;
/// 400 invalid_json on failure.
std::variant<boost::json::value, response> parse_json(std::string_view text, const route_env& env,
                                                      unsigned version,
                                                      boost::json::storage_ptr sp = {});

// -- job queue routes (job_routes.cpp) ---------------------------------------------------

/// POST /v1/queues/{q}/jobs: enqueue.
routed route_enqueue(request& req, std::string_view queue, const route_env& env);

/// GET /v1/queues/{q}: the queue's counts.
routed route_queue_stats(const request& req, std::string_view queue);

/// POST /v1/queues/{q}/lease.
routed route_lease(request& req, std::string_view queue, const route_env& env);

/// GET /v1/jobs/{id}.
routed route_job_get(const request& req, std::string_view id);

/// POST /v1/jobs/{id}/{action}: complete, fail or retry; any other action is no route.
routed route_job_action(request& req, std::string_view id, std::string_view action,
                        const route_env& env);

// -- TTL cache (cache_routes.cpp) ---------------------------------------------------------

/// GET, HEAD, PUT, DELETE /v1/cache/{key}.
routed route_cache(request& req, std::string_view key, const route_env& env);

// -- indexes and queries (query_routes.cpp) -------------------------------------------------

/// GET /v1/collections/{c}/indexes: the collection's indexes.
routed route_index_list(const request& req, std::string_view collection);

/// PUT, GET, DELETE /v1/collections/{c}/indexes/{field}.
routed route_index(request& req, std::string_view collection, std::string_view field,
                   const route_env& env);

/// POST /v1/collections/{c}/query[?explain=true].
routed route_query(request& req, std::string_view collection, const route_env& env);

// -- change feed (change_routes.cpp) ------------------------------------------------------

/// GET /v1/collections/{c}/changes[?since=...].
routed route_changes(const request& req, std::string_view collection, const route_env& env);

} // namespace shoal::http::detail
