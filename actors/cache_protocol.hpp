// SPDX-License-Identifier: Apache-2.0
#pragma once

// The messages of the TTL cache (session-like data, memory only). Each shard actor keeps
// the entries whose key hashes to it (cluster::shard_map, space "cache"), so the cache is
// sharded across nodes like documents. Plain structs; CAF glue in actors/type_ids.hpp.

#include <cstdint>
#include <memory>
#include <string>

namespace shoal::actors {

enum class cache_op : std::uint8_t { get, put, del };

struct cache_request {
  cache_op op = cache_op::get;
  std::string key;          ///< validated by the edge (actors::valid_id)
  std::string value;        ///< put: the bytes to keep
  std::string content_type; ///< put: kept and returned by get
  std::uint64_t ttl_ms = 0; ///< put: lifetime, already checked against the config
};

enum class cache_status : std::uint8_t {
  ok,                ///< get: found (value, content_type); put/del: done
  not_found,         ///< get/del: no live entry (never stored, expired or evicted)
  too_large,         ///< put: the value is over the shard's share of cache.max_bytes
  unavailable,       ///< the shard is shutting down
  shard_unavailable, ///< the node that owns the shard is down or not answering
};

struct cache_reply {
  cache_status status = cache_status::ok;
  std::string value;
  std::string content_type;
  std::string message; ///< detail for errors
};

/// Where a shard delivers a cache reply for a caller that is not an actor (the edge);
/// the same contract as reply_sink.
class cache_sink {
public:
  virtual ~cache_sink() = default;
  virtual void deliver(cache_reply&& reply) = 0;
};

using cache_sink_ptr = std::shared_ptr<cache_sink>;

/// The shard_map space of cache keys (a name no collection can have: names are
/// [A-Za-z0-9_-], so the leading '~' keeps the two apart).
inline constexpr const char* cache_space = "~cache";

} // namespace shoal::actors
