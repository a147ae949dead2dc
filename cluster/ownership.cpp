// SPDX-License-Identifier: Apache-2.0
#include "cluster/ownership.hpp"

#include <algorithm>

#include "cluster/shard_map.hpp"

namespace shoal::cluster {

ownership::ownership(std::vector<std::string> node_ids, std::uint32_t shards)
    : nodes_(std::move(node_ids)), owner_(shards, 0) {
  for (std::uint32_t s = 0; s < shards; ++s) {
    const auto shard_text = std::to_string(s);
    std::uint64_t best = 0;
    for (std::uint32_t n = 0; n < nodes_.size(); ++n) {
      const auto weight = key_hash(nodes_[n], shard_text);
      const bool better =
        n == 0 || weight > best || (weight == best && nodes_[n] < nodes_[owner_[s]]);
      if (better) {
        best = weight;
        owner_[s] = n;
      }
    }
  }
}

std::vector<std::uint32_t> ownership::shards_of(const std::string& node) const {
  std::vector<std::uint32_t> out;
  const auto it = std::find(nodes_.begin(), nodes_.end(), node);
  if (it == nodes_.end()) return out;
  const auto index = static_cast<std::uint32_t>(it - nodes_.begin());
  for (std::uint32_t s = 0; s < owner_.size(); ++s)
    if (owner_[s] == index) out.push_back(s);
  return out;
}

} // namespace shoal::cluster
