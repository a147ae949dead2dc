// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <memory>

#include "config/settings.hpp"

namespace spdlog {
class logger;
namespace details {
class thread_pool;
} // namespace details
} // namespace spdlog

namespace shoal::app {

/// The node's named loggers ("shoal", "http", "storage", "cluster", "access"), all writing to
/// standard output in the configured format. No global registry: they are passed down.
struct loggers {
  std::shared_ptr<spdlog::logger> main;
  std::shared_ptr<spdlog::logger> http;
  std::shared_ptr<spdlog::logger> storage;
  std::shared_ptr<spdlog::logger> cluster; ///< membership, handshakes, peers up and down
  /// Asynchronous, dropping the oldest line when its queue is full, so that I/O threads
  /// never wait for standard output. Null when log.access_log is false.
  std::shared_ptr<spdlog::logger> access;
  std::shared_ptr<spdlog::details::thread_pool> access_pool;
};

/// Creates the loggers for `settings` (text lines, or JSON lines with log.format=json).
loggers make_loggers(const config::log_settings& settings);

} // namespace shoal::app
