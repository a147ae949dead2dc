// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <string_view>

namespace shoal::cluster {

/// Maps keys to shards. The function is an on-disk contract (docs/architecture.md):
/// shard = XXH64(space ++ "\0" ++ id, seed 0) mod shards. `space` is a collection name
/// (documents) or another top-level namespace; names never contain NUL, so the
/// concatenation is unambiguous. Changing it would strand every stored key.
class shard_map {
public:
  /// `shards` must be at least 1 (the config layer enforces it).
  explicit shard_map(std::uint32_t shards) noexcept : shards_(shards) {}

  std::uint32_t shard_count() const noexcept {
    return shards_;
  }

  /// The shard that owns (`space`, `id`).
  std::uint32_t shard_of(std::string_view space, std::string_view id) const noexcept;

private:
  std::uint32_t shards_;
};

/// XXH64(space ++ "\0" ++ id, seed 0): the hash behind `shard_map::shard_of`.
std::uint64_t key_hash(std::string_view space, std::string_view id) noexcept;

} // namespace shoal::cluster
