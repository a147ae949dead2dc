// SPDX-License-Identifier: Apache-2.0
#pragma once

// The requests of the TTL cache (session-like data, memory only, docs/caching.md). Each
// shard keeps the entries whose key hashes to it (space "~cache"), so the cache is spread
// across nodes like documents. Plain structs; `inspect` lets CAF serialize them.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "cluster/placement.hpp"
#include "core/result.hpp"
#include "core/type_list.hpp"

namespace shoal::cache {

/// The shard_map space of cache keys (a name no collection can have: names are
/// [A-Za-z0-9_-], so the leading '~' keeps the two apart).
inline constexpr const char* space = "~cache";

/// A live entry. `version` changes with every put of the key and never repeats on a
/// node (its ETag).
struct cache_entry {
  std::string value;
  std::string content_type;
  std::uint64_t version = 0;
};

/// Error: not_found (never stored, expired or evicted).
struct cache_get {
  using reply = cache_entry;
  std::string key; ///< validated by the edge (core::valid_id)
};

struct cache_stored {
  std::uint64_t version = 0; ///< of the entry stored
};

/// Stores or replaces an entry for `ttl_ms`, if its conditions hold (they are checked and
/// the entry stored in one step of the shard, so two conditional puts never both win).
/// Errors: precondition_failed (a condition does not hold; nothing changed), too_large
/// (over the shard's share of cache.max_bytes).
struct cache_put {
  using reply = cache_stored;
  cache_put() = default;
  /// An unconditional put.
  cache_put(std::string k, std::string v, std::string type, std::uint64_t ttl)
      : key(std::move(k)), value(std::move(v)), content_type(std::move(type)), ttl_ms(ttl) {}

  std::string key;
  std::string value;
  std::string content_type;
  std::uint64_t ttl_ms = 0;               ///< already checked against the config
  bool only_if_absent = false;            ///< If-None-Match: *  (no live entry)
  bool only_if_present = false;           ///< If-Match: *  (a live entry)
  std::vector<std::uint64_t> if_versions; ///< If-Match: "v", ...  (the live entry's version is one)
};

struct cache_deleted {
  bool found = false; ///< a live entry was removed
};

struct cache_delete {
  using reply = cache_deleted;
  std::string key;
};

/// A counter after an increment: its value, its entry's version, and whether this
/// increment created it.
struct cache_count {
  std::int64_t value = 0;
  std::uint64_t version = 0;
  bool created = false;
};

/// Adds `by` to the integer the entry of `key` holds, in one step of its shard (so
/// concurrent increments never lose one): a key with no live entry becomes a counter
/// holding `by` that lives `ttl_ms` (a fixed window, as a rate limit wants); a live one
/// keeps its expiry. Errors: conflict "not_a_counter" (the live entry is not an integer),
/// conflict "counter_overflow" (the sum leaves the 64-bit range; nothing changed).
struct cache_increment {
  using reply = cache_count;
  std::string key;
  std::int64_t by = 1;
  std::uint64_t ttl_ms = 0; ///< already checked against the config
};

using requests = core::type_list<cache_get, cache_put, cache_delete, cache_increment>;

inline core::result<std::uint32_t> place(const cache_get& r, const cluster::placement& p) {
  return p.map.shard_of(space, r.key);
}
inline core::result<std::uint32_t> place(const cache_put& r, const cluster::placement& p) {
  return p.map.shard_of(space, r.key);
}
inline core::result<std::uint32_t> place(const cache_delete& r, const cluster::placement& p) {
  return p.map.shard_of(space, r.key);
}
inline core::result<std::uint32_t> place(const cache_increment& r, const cluster::placement& p) {
  return p.map.shard_of(space, r.key);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cache_entry& x) {
  return f(x.value, x.content_type, x.version);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cache_get& x) {
  return f(x.key);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cache_stored& x) {
  return f(x.version);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cache_put& x) {
  return f(x.key, x.value, x.content_type, x.ttl_ms, x.only_if_absent, x.only_if_present,
           x.if_versions);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cache_deleted& x) {
  return f(x.found);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cache_delete& x) {
  return f(x.key);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cache_count& x) {
  return f(x.value, x.version, x.created);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cache_increment& x) {
  return f(x.key, x.by, x.ttl_ms);
}

} // namespace shoal::cache
