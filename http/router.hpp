// SPDX-License-Identifier: Apache-2.0
#pragma once

// Routing and encoding, apart from transport: pure functions from a parsed request to a
// response or to a call (document, actor method, job), and from a reply to a response.
// No sockets, no actors; tests drive them directly. The job queue routes and
// render_job_reply are in job_routes.cpp, the rest in router.cpp.

#include <cstddef>
#include <cstdint>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "actors/actor_protocol.hpp"
#include "actors/cache_protocol.hpp"
#include "actors/doc_protocol.hpp"
#include "cluster/view.hpp"
#include "jobs/protocol.hpp"

namespace shoal::http {

using request = boost::beast::http::request<boost::beast::http::string_body>;
using response = boost::beast::http::response<boost::beast::http::string_body>;

/// The routes, as metric labels.
enum class route_id : std::uint8_t {
  healthz,
  readyz,
  metrics,
  cluster,
  document,
  actor,
  queue_jobs,  ///< POST /v1/queues/{q}/jobs: enqueue
  queue,       ///< GET /v1/queues/{q}: stats
  queue_lease, ///< POST /v1/queues/{q}/lease
  job,         ///< GET /v1/jobs/{id}
  job_action,  ///< POST /v1/jobs/{id}/{complete|fail|retry}
  cache,       ///< /v1/cache/{key}
  indexes,     ///< GET /v1/collections/{c}/indexes
  index,       ///< /v1/collections/{c}/indexes/{field}
  query,       ///< POST /v1/collections/{c}/query
  changes,     ///< GET /v1/collections/{c}/changes (a Server-Sent Events stream)
  unknown
};
inline constexpr std::size_t route_count = 17;
const char* route_label(route_id r) noexcept;

/// What the router needs from the node.
struct route_env {
  std::function<bool()> ready;               ///< /readyz: storage open and not draining
  std::function<std::string()> metrics_text; ///< /metrics body
  /// Called once when a drain starts (SIGTERM): what waits on purpose (long polls) should
  /// answer now. May be empty.
  std::function<void()> on_drain;
  /// /v1/cluster: the latest view of the members (null: the route answers 503).
  std::function<std::shared_ptr<const cluster::cluster_view>()> cluster_view;
  unsigned max_json_depth = 64;                    ///< deeper bodies are rejected as invalid_json
  std::uint32_t actor_call_timeout_ms = 5000;      ///< actors.call_timeout_ms: then 504
  std::uint64_t max_job_delay_ms = 604800000;      ///< jobs.max_delay_ms: longest delay_ms accepted
  std::size_t cache_max_value_bytes = 1u << 20;    ///< cache.max_value_bytes: larger PUTs get 413
  std::uint32_t cache_default_ttl_s = 3600;        ///< cache.default_ttl_s
  std::uint32_t cache_max_ttl_s = 2592000;         ///< cache.max_ttl_s: longer ttls get 400
  std::uint32_t query_default_limit = 100;         ///< query.default_limit
  std::uint32_t query_max_limit = 1000;            ///< query.max_limit
  bool changes_enabled = true;                     ///< changes.enabled: off, the route is 404
  std::size_t changes_max_buffer_bytes = 1u << 20; ///< changes.max_buffer_bytes
  std::uint32_t changes_heartbeat_ms = 15000;      ///< changes.heartbeat_ms
};

/// A request that must go to a shard; the reply is rendered by `render_doc_reply`.
/// HEAD becomes a GET here; the session sends the headers without the body.
struct doc_call {
  actors::doc_request request;
};

/// A virtual actor method call; the reply is rendered by `render_actor_reply`.
struct actor_invocation {
  actors::actor_call call;
};

/// A job operation; the reply is rendered by `render_job_reply`. Enqueue leaves
/// `request.id` empty: the service picks the shard and the id.
struct job_invocation {
  jobs::job_request request;
};

/// A TTL cache operation; the reply is rendered by `render_cache_reply`.
struct cache_invocation {
  actors::cache_request request;
};

/// A collection operation for every shard: the session sends a copy of `request` to each
/// shard and, once all have answered, `merge` turns the replies (in shard order) into
/// the response. Queries and index routes (query_routes.cpp).
struct gather_call {
  actors::doc_request request;
  std::function<response(std::vector<actors::doc_reply>&& replies, unsigned version)> merge;
};

/// GET /v1/collections/{c}/changes: the session hands its connection to a change stream
/// (change_stream.hpp), which answers with Server-Sent Events until the client leaves.
struct change_feed_call {
  std::string collection;
  std::string since; ///< Last-Event-ID or ?since= (empty: from now)
};

struct routed {
  route_id route = route_id::unknown;
  std::variant<response, doc_call, actor_invocation, job_invocation, cache_invocation, gather_call,
               change_feed_call>
    outcome;
};

/// The body of GET /v1/cluster for `view`, with heartbeat ages measured at `now`.
std::string cluster_json(const cluster::cluster_view& view,
                         std::chrono::steady_clock::time_point now);

/// Routes `req`. Bodies of document writes are parsed, validated and normalized here
/// (on the I/O thread), so shards only see well-formed JSON objects. Moves the body out.
routed route(request& req, const route_env& env);

/// The HTTP response for a shard's reply to `call`.
response render_doc_reply(const doc_call& call, actors::doc_reply&& reply, unsigned version);

/// The HTTP response for a TTL cache reply to `call`: 200 with the value and its
/// Content-Type for a get, 204 for a put or delete, or the error (cache_routes.cpp).
response render_cache_reply(const cache_invocation& call, actors::cache_reply&& reply,
                            unsigned version);

/// The HTTP response for an actor's reply: 200 with the method's result, or its error.
response render_actor_reply(actors::actor_reply&& reply, unsigned version);

/// The HTTP response for a job reply to `call`, which needs only `op`, `queue` and `id`
/// of its request: 202 (created) or 200 (existing) with a Location for an enqueue, the
/// queue's counts for stats, the leased jobs (payloads embedded as JSON) for a lease, the
/// job as stored otherwise, or the error the status maps to.
response render_job_reply(const job_invocation& call, jobs::job_reply&& reply, unsigned version);

/// A JSON error `{"error":{"code":..,"message":..}}` with `status`.
response error_response(boost::beast::http::status status, std::string_view code,
                        std::string_view message, unsigned version);

/// Parses an If-Match / If-None-Match value: "*" or a comma-separated list of entity
/// tags. Weak tags (W/"1") count only with `weak_match` (If-None-Match uses the weak
/// comparison, If-Match the strong one); a tag that is not a quoted decimal version can
/// match no document and is dropped. nullopt when the value is malformed (an unquoted
/// token, an unterminated quote, an empty list).
std::optional<actors::precondition> parse_entity_tags(std::string_view value, bool weak_match);

} // namespace shoal::http
