// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <optional>

#include "cache/messages.hpp"
#include "cache/ttl_cache.hpp"
#include "core/reply.hpp"
#include "shard/context.hpp"

namespace shoal::cache {

struct metrics;

/// The TTL cache of one shard: memory only, bounded by its share of cache.max_bytes. A
/// get never returns an expired entry; a timer on the actor clock (every second while
/// the cache holds anything) removes expired ones.
class module {
public:
  using requests = cache::requests;

  struct config {
    std::size_t max_bytes = 1u << 20;  ///< this shard's share of cache.max_bytes
    cache::metrics* metrics = nullptr; ///< may be null
  };

  module(shard::context& ctx, config cfg);
  ~module();
  module(const module&) = delete;
  module& operator=(const module&) = delete;

  void serve(cache_get&& req, core::reply_to<cache_entry> to);
  void serve(cache_put&& req, core::reply_to<cache_stored> to);
  void serve(cache_delete&& req, core::reply_to<cache_deleted> to);
  void serve(cache_increment&& req, core::reply_to<cache_count> to);

private:
  /// Brings the gauges up to date after a change from (bytes, size, evictions).
  void account(std::size_t bytes, std::size_t size, std::uint64_t evictions);
  /// Stores (or replaces) an entry with a new version, keeping the gauges and the expiry
  /// timer; the version, or too_large "value_too_large" (the key's old value is gone).
  core::result<std::uint64_t> store(const std::string& key, std::string value,
                                    std::string content_type, std::uint64_t expires_ms);
  void schedule_expiry();
  void expire();

  shard::context& ctx_;
  config cfg_;
  ttl_cache cache_;
  std::uint64_t last_version_; ///< of the last entry stored (versions never repeat)
  std::optional<shard::timer_id> timer_;
};

} // namespace shoal::cache
