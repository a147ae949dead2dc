// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <memory>

#include "config/settings.hpp"
#include "http/router.hpp"

namespace spdlog {
class logger;
} // namespace spdlog

namespace shoal::protocol {
class shard_client;
} // namespace shoal::protocol

namespace shoal::http {

class request_metrics;

/// Loggers of the edge; either may be null (nothing logged).
struct server_logs {
  std::shared_ptr<spdlog::logger> http;   ///< connection errors, start, drain
  std::shared_ptr<spdlog::logger> access; ///< one line per request
  bool access_json = false;               ///< JSON fields instead of a text line
};

/// The Beast edge: an acceptor and `settings.threads` I/O threads on one io_context,
/// a strand per connection, HTTP/1.1 keep-alive and pipelining (answered in order).
/// SIGINT/SIGTERM start a graceful drain: readiness turns false, the listener closes,
/// in-flight requests get up to `drain_timeout_ms`, then `run` returns. A second
/// signal stops at once.
class server {
public:
  /// Every reference must outlive the server, and `shards` must release every reply_to it
  /// was given before the server is destroyed (a node stops its actors first): an answer
  /// keeps its session, and a session uses the server's state. `env.ready` is combined
  /// with "not draining".
  server(const config::http_settings& settings, protocol::shard_client& shards, route_env env,
         request_metrics& metrics, server_logs logs);
  ~server();

  server(const server&) = delete;
  server& operator=(const server&) = delete;

  /// Binds and listens on settings.host:settings.port. Returns the bound port (useful
  /// with port 0). Throws std::system_error when the address cannot be bound.
  std::uint16_t listen();

  /// Accepts and serves until a drain completes or `stop` is called; blocks the caller,
  /// which becomes one of the I/O threads.
  void run();

  /// Starts a graceful drain, as a signal does. Thread-safe.
  void drain();

  /// True from the start of a drain on.
  bool draining() const noexcept;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace shoal::http
