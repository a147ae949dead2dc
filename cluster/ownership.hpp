// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace shoal::cluster {

/// Which node owns each shard: rendezvous (highest random weight) hashing over the
/// configured node ids. Shard s goes to the node n with the largest
/// XXH64(n ++ "\0" ++ decimal(s), seed 0); ties go to the smaller id. Every node derives
/// the same map from the same node list, without talking to the others, and adding or
/// removing one node moves only the shards that node gains or loses.
class ownership {
public:
  /// `node_ids` must be non-empty and unique; `shards` at least 1.
  ownership(std::vector<std::string> node_ids, std::uint32_t shards);

  std::uint32_t shard_count() const noexcept {
    return static_cast<std::uint32_t>(owner_.size());
  }
  const std::vector<std::string>& nodes() const noexcept {
    return nodes_;
  }
  /// Index into `nodes()` of the owner of `shard`.
  std::uint32_t owner_index(std::uint32_t shard) const noexcept {
    return owner_[shard];
  }
  const std::string& owner(std::uint32_t shard) const noexcept {
    return nodes_[owner_[shard]];
  }
  /// The shards `node` owns, ascending; empty for an unknown id.
  std::vector<std::uint32_t> shards_of(const std::string& node) const;

  /// Where the `count` replicas of `shard` go (indexes into `nodes()`): the nodes of the
  /// highest weights for that shard, highest first, so the owner comes first (the
  /// preferred leader). All nodes when `count` is larger. Adding a node changes a
  /// shard's replicas only by the new node taking the place of the last of them.
  std::vector<std::uint32_t> replicas_of(std::uint32_t shard, std::uint32_t count) const;

  /// The shards `node` holds one of the `count` replicas of, ascending (shards_of for a
  /// count of 1); empty for an unknown id.
  std::vector<std::uint32_t> replica_shards_of(const std::string& node, std::uint32_t count) const;

private:
  std::vector<std::string> nodes_;
  std::vector<std::uint32_t> owner_;
};

} // namespace shoal::cluster
