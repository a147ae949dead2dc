// SPDX-License-Identifier: Apache-2.0
#pragma once

// The read cache of one shard's documents: stored records (a document or a tombstone)
// by storage key, bounded in bytes, least recently used out first. The documents module
// is its only user and refreshes every cached record right after its write is applied,
// so a cached record is never older than the stored one (docs/caching.md).

#include <cstddef>
#include <cstdint>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>

namespace shoal::documents {

class read_cache {
public:
  /// `max_bytes` 0: nothing is cached.
  explicit read_cache(std::size_t max_bytes) : max_bytes_(max_bytes) {}

  /// Bytes counted per entry besides its key and value.
  static constexpr std::size_t entry_overhead = 80;

  /// The cached record of `key` (documents::encode bytes), made the most recently used;
  /// nullptr when not cached.
  const std::string* get(const std::string& key);

  /// Caches `record` for `key` (replacing any), then evicts past the bound. A record
  /// larger than the bound is not cached (and any older one is dropped).
  void put(const std::string& key, std::string record);

  /// Replaces the record of `key` when it is cached (as `put`); does nothing otherwise.
  /// Writes use it: the cache holds what was read, and is never behind the store.
  void refresh(const std::string& key, std::string record);

  void erase(const std::string& key);

  std::size_t bytes() const noexcept {
    return bytes_;
  }
  std::size_t size() const noexcept {
    return map_.size();
  }
  bool enabled() const noexcept {
    return max_bytes_ > 0;
  }

private:
  struct node {
    std::string key;
    std::string record;
  };
  static std::size_t cost(const node& n) noexcept {
    return n.key.size() + n.record.size() + entry_overhead;
  }

  std::size_t max_bytes_;
  std::size_t bytes_ = 0;
  std::list<node> lru_; ///< most recently used first
  std::unordered_map<std::string_view, std::list<node>::iterator> map_; ///< views into lru_ keys
};

} // namespace shoal::documents
