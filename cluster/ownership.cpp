// SPDX-License-Identifier: Apache-2.0
#include "cluster/ownership.hpp"

#include <algorithm>

#include "cluster/shard_map.hpp"

namespace shoal::cluster {

ownership::ownership(std::vector<std::string> node_ids, std::uint32_t shards)
    : nodes_(std::move(node_ids)), owner_(shards, 0) {
  for (std::uint32_t s = 0; s < shards; ++s)
    owner_[s] = replicas_of(s, 1).front();
}

std::vector<std::uint32_t> ownership::replica_shards_of(const std::string& node,
                                                        std::uint32_t count) const {
  std::vector<std::uint32_t> out;
  const auto it = std::find(nodes_.begin(), nodes_.end(), node);
  if (it == nodes_.end()) return out;
  const auto index = static_cast<std::uint32_t>(it - nodes_.begin());
  for (std::uint32_t s = 0; s < owner_.size(); ++s) {
    const auto members = replicas_of(s, count);
    if (std::find(members.begin(), members.end(), index) != members.end()) out.push_back(s);
  }
  return out;
}

std::vector<std::uint32_t> ownership::replicas_of(std::uint32_t shard, std::uint32_t count) const {
  const auto shard_text = std::to_string(shard);
  std::vector<std::pair<std::uint64_t, std::uint32_t>> ranked; // (weight, node)
  ranked.reserve(nodes_.size());
  for (std::uint32_t n = 0; n < nodes_.size(); ++n)
    ranked.emplace_back(key_hash(nodes_[n], shard_text), n);
  // The highest weight first; a tie goes to the smaller id.
  const auto before = [this](const auto& a, const auto& b) {
    if (a.first != b.first) return a.first > b.first;
    return nodes_[a.second] < nodes_[b.second];
  };
  const auto keep = std::min<std::size_t>(count, ranked.size());
  std::partial_sort(ranked.begin(), ranked.begin() + static_cast<std::ptrdiff_t>(keep),
                    ranked.end(), before);
  std::vector<std::uint32_t> out;
  out.reserve(keep);
  for (std::size_t i = 0; i < keep; ++i)
    out.push_back(ranked[i].second);
  return out;
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
