// SPDX-License-Identifier: Apache-2.0
#pragma once

// Routing, apart from transport: from a parsed request to a route family's handler,
// which validates it and answers at once or asks the shards (http/exchange.hpp). No
// sockets; tests drive route() with a fake shard client. One file per route family:
// document_routes.cpp, actor_routes.cpp, job_routes.cpp, cache_routes.cpp,
// query_routes.cpp, change_routes.cpp; the table and the probes are in router.cpp.

#include <cstddef>
#include <cstdint>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "cluster/view.hpp"
#include "http/exchange.hpp"
#include "http/message.hpp"

namespace shoal::http {

class token_table;

/// The routes, as metric labels.
enum class route_id : std::uint8_t {
  healthz,
  readyz,
  metrics,
  cluster,
  document,
  actor,
  queue_jobs,      ///< POST /v1/queues/{q}/jobs: enqueue
  queue,           ///< GET /v1/queues/{q}: stats
  queue_lease,     ///< POST /v1/queues/{q}/lease
  job,             ///< GET /v1/jobs/{id}
  job_action,      ///< POST /v1/jobs/{id}/{complete|fail|extend|retry|cancel}
  cache,           ///< /v1/cache/{key}
  cache_increment, ///< POST /v1/cache/{key}/increment
  indexes,         ///< GET /v1/collections/{c}/indexes
  index,           ///< /v1/collections/{c}/indexes/{field}
  query,           ///< POST /v1/collections/{c}/query
  changes,         ///< GET /v1/collections/{c}/changes (a Server-Sent Events stream)
  replica,         ///< GET /v1/admin/replicas/{shard}: this node's replica's digest
  unknown
};
inline constexpr std::size_t route_count = 19;
const char* route_label(route_id r) noexcept;

/// What the routes need from the node besides the shards.
struct route_env {
  std::function<bool()> ready; ///< /readyz: storage open and not draining
  /// Why the store cannot write now (empty when it can): /readyz answers 503 with it, so
  /// a load balancer sends writes elsewhere. Null: never.
  std::function<std::string()> write_problem;
  std::function<std::string()> metrics_text; ///< /metrics body
  /// Called once when a drain starts (SIGTERM): what waits on purpose (long polls) should
  /// answer now. May be empty.
  std::function<void()> on_drain;
  /// /v1/cluster: the latest view of the members (null: the route answers 503).
  std::function<std::shared_ptr<const cluster::cluster_view>()> cluster_view;
  /// /v1/admin/replicas/{shard}: asks this node's replica of the shard for its digest
  /// (404 when null: no replicated shards; the function answers 404 itself for a shard
  /// this node holds no replica of).
  std::function<void(std::uint32_t shard, core::reply_to<cluster::replica_digest>)> replica_digest;
  /// The bearer tokens the API accepts (auth.tokens_file); null or empty: the API is open.
  std::shared_ptr<const token_table> tokens;
  /// http.request_timeout_ms: then 504 (the server sets it from its settings).
  std::uint64_t request_timeout_ms = 5000;
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

/// A routed request: its route (for metrics) and what its handler did.
struct routed {
  route_id route = route_id::unknown;
  route_result outcome;
};

/// Routes the request of `ex`. Bodies are parsed, validated and normalized here (on the
/// I/O thread), so shards only see well-formed requests. May move the body out.
routed route(exchange& ex);

/// The body of GET /v1/cluster for `view`, with heartbeat ages measured at `now`.
std::string cluster_json(const cluster::cluster_view& view,
                         std::chrono::steady_clock::time_point now);

} // namespace shoal::http
