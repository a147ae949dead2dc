// SPDX-License-Identifier: Apache-2.0
#pragma once

// Internal to http/: what every session (and a change stream that took a session's
// connection over) shares; lives as long as the server.

#include <atomic>
#include <cstdint>
#include <string>

#include "config/settings.hpp"
#include "http/admission.hpp"
#include "http/connection_table.hpp"
#include "http/cors.hpp"
#include "http/router.hpp"
#include "http/server.hpp"

namespace shoal::http {

class request_metrics;

struct server_context {
  const config::http_settings& settings;
  protocol::shard_client& shards;
  route_env env;
  cors_policy cors; ///< http.cors_origins
  request_metrics& metrics;
  server_logs logs;
  connection_table connections;
  admission admit; ///< http.min_inflight, max_inflight, max_queued, queue_timeout_ms
  /// Sessions in their lingering close: still open, but serving nothing; admission does
  /// not count them against http.max_connections (they are gone within a second).
  std::atomic<std::int64_t> closing{0};
  std::atomic<bool> draining{false};
  /// Once draining: until when (steady clock, ns) a connection idle at the start of the
  /// drain waits for one more request, which it answers with `Connection: close`.
  std::atomic<std::int64_t> drain_idle_until{0};
  std::atomic<std::uint64_t> next_request_id{0};
  std::string request_id_prefix; ///< random per process, so ids differ across restarts
};

} // namespace shoal::http
