// SPDX-License-Identifier: Apache-2.0
#pragma once

// The TTL cache of one shard: keys to (bytes, content type), each with an expiry, in
// memory only, bounded in bytes with least-recently-used eviction. Time is passed in, so
// tests drive it; the shard actor owns one and is its only user (no locks).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace shoal::cache {

class ttl_cache {
public:
  struct entry {
    std::string value;
    std::string content_type;
    std::uint64_t expires_at_ms = 0;
    std::uint64_t version = 0;
  };

  /// `max_bytes`: what all entries together may hold, counted as key + value + content
  /// type + a fixed per-entry overhead (entry_overhead).
  explicit ttl_cache(std::size_t max_bytes);
  ~ttl_cache();
  ttl_cache(const ttl_cache&) = delete;
  ttl_cache& operator=(const ttl_cache&) = delete;

  static constexpr std::size_t entry_overhead = 96;

  enum class put_result : std::uint8_t { stored, too_large };

  /// Stores or replaces `key` (it becomes the most recently used), then evicts the least
  /// recently used entries until the total is within the bound. An entry that alone is
  /// over the bound is refused (too_large) and the old value of `key`, if any, is removed.
  put_result put(std::string_view key, std::string value, std::string content_type,
                 std::uint64_t expires_at_ms, std::uint64_t version = 0);

  /// The live entry of `key`, or nullptr, without making it recently used or removing an
  /// expired one: for checking a condition.
  const entry* peek(std::string_view key, std::uint64_t now_ms) const;

  /// The live entry of `key` (expires_at_ms > now_ms), made the most recently used;
  /// nullptr when absent or expired (an expired entry is removed). Valid until the next
  /// non-const call.
  const entry* get(std::string_view key, std::uint64_t now_ms);

  /// Removes `key`; true when a live entry was removed.
  bool erase(std::string_view key, std::uint64_t now_ms);

  /// Removes up to `max_entries` expired entries, soonest expiry first; returns how many.
  std::size_t expire(std::uint64_t now_ms, std::size_t max_entries);

  /// The earliest expiry of any entry, 0 when empty.
  std::uint64_t next_expiry() const noexcept;

  std::size_t bytes() const noexcept;
  std::size_t size() const noexcept;
  std::size_t max_bytes() const noexcept;
  /// Entries removed to make room since construction (not expiries, not erases).
  std::uint64_t evictions() const noexcept;

private:
  struct impl;
  impl* impl_;
};

} // namespace shoal::cache
