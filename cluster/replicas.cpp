// SPDX-License-Identifier: Apache-2.0
#include "cluster/replicas.hpp"

#include <algorithm>
#include <atomic>

namespace shoal::cluster {

const char* to_string(replica_role r) noexcept {
  switch (r) {
  case replica_role::follower:
    return "follower";
  case replica_role::candidate:
    return "candidate";
  case replica_role::leader:
    return "leader";
  case replica_role::unavailable:
    return "unavailable";
  }
  return "unknown";
}

bool operator==(const replica_report& a, const replica_report& b) noexcept {
  return a.shard == b.shard && a.node == b.node && a.role == b.role && a.leader == b.leader
         && a.term == b.term && a.commit_index == b.commit_index
         && a.applied_index == b.applied_index && a.last_index == b.last_index
         && a.voters == b.voters && a.match == b.match;
}

std::vector<shard_replicas> merge_reports(std::uint32_t shards,
                                          const std::vector<replica_report>& reports) {
  std::vector<shard_replicas> out(shards);
  // The leader report of the highest term, per shard.
  std::vector<const replica_report*> leader(shards, nullptr);
  for (const auto& r : reports) {
    if (r.shard >= shards) continue;
    auto& s = out[r.shard];
    s.term = std::max(s.term, r.term);
    s.commit_index = std::max(s.commit_index, r.commit_index);
    if (s.voters.empty()) s.voters = r.voters;
    if (r.role != replica_role::leader) continue;
    auto& best = leader[r.shard];
    if (best == nullptr || r.term > best->term) best = &r;
  }
  for (std::uint32_t i = 0; i < shards; ++i) {
    const auto* l = leader[i];
    if (l == nullptr) continue;
    auto& s = out[i];
    s.leader = l->node;
    s.voters = l->voters;
    s.commit_index = l->commit_index;
    s.applied_index = l->applied_index;
    for (std::size_t v = 0; v < l->voters.size() && v < l->match.size(); ++v) {
      if (l->voters[v] == l->node) continue;
      s.followers.push_back(
        {l->voters[v], l->last_index > l->match[v] ? l->last_index - l->match[v] : 0});
    }
  }
  return out;
}

replica_board::replica_board(std::uint32_t shards) : slots_(shards) {}

void replica_board::publish(replica_report report) {
  if (report.shard >= slots_.size()) return;
  const auto shard = report.shard;
  std::atomic_store(&slots_[shard], std::shared_ptr<const replica_report>(
                                      std::make_shared<replica_report>(std::move(report))));
}

std::shared_ptr<const replica_report> replica_board::read(std::uint32_t shard) const noexcept {
  if (shard >= slots_.size()) return nullptr;
  return std::atomic_load(&slots_[shard]);
}

std::vector<replica_report> replica_board::all() const {
  std::vector<replica_report> out;
  for (std::uint32_t i = 0; i < slots_.size(); ++i)
    if (auto r = read(i)) out.push_back(*r);
  return out;
}

} // namespace shoal::cluster
