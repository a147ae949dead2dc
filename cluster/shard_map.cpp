// SPDX-License-Identifier: Apache-2.0
#include "cluster/shard_map.hpp"

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

namespace shoal::cluster {

std::uint64_t key_hash(std::string_view space, std::string_view id) noexcept {
  // Streaming keeps the key off the heap; XXH64 streaming equals one-shot XXH64 of the
  // concatenation, which is what the contract states.
  XXH64_state_t state;
  XXH64_reset(&state, 0);
  XXH64_update(&state, space.data(), space.size());
  const char separator = '\0';
  XXH64_update(&state, &separator, 1);
  XXH64_update(&state, id.data(), id.size());
  return XXH64_digest(&state);
}

std::uint32_t shard_map::shard_of(std::string_view space, std::string_view id) const noexcept {
  return static_cast<std::uint32_t>(key_hash(space, id) % shards_);
}

} // namespace shoal::cluster
