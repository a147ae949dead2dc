// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <functional>

#include "cluster/shard_map.hpp"

namespace shoal::cluster {

/// What the `place` function of each request type (the module's messages.hpp) may use
/// to pick its shard: the shard map, and for requests that may go to any shard (a job
/// enqueue without an idempotency key) which shards answer and a random number.
struct placement {
  shard_map map;
  /// Whether the shard's owner is up; empty: every shard counts as up.
  std::function<bool(std::uint32_t shard)> shard_up;
  /// A random number for each call (thread-safe); empty: always 0.
  std::function<std::uint64_t()> random;
};

} // namespace shoal::cluster
