// SPDX-License-Identifier: Apache-2.0
#pragma once

// How the replicas of replicated shards stand (docs/replication.md "Reading the cluster
// view"). Every replica reports its own state to its node's board; peers exchange
// their boards with the membership heartbeats; a node merges what it heard into the
// `shards.replicas` of its cluster view. Plain data, no CAF and no libraft here.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace shoal::cluster {

enum class replica_role : std::uint8_t { follower, candidate, leader, unavailable };

const char* to_string(replica_role r) noexcept;

/// One replica of one shard's group, as that replica sees itself.
struct replica_report {
  std::uint32_t shard = 0;
  std::string node; ///< the node that holds this replica
  replica_role role = replica_role::unavailable;
  std::string leader; ///< the leader it follows (itself when it leads); empty: none known
  std::uint64_t term = 0;
  std::uint64_t commit_index = 0;
  std::uint64_t applied_index = 0;
  std::uint64_t last_index = 0;     ///< the last entry of its log
  std::vector<std::string> voters;  ///< the group's voters, by node
  std::vector<std::uint64_t> match; ///< a leader's view: per voter, its last replicated entry
};

bool operator==(const replica_report& a, const replica_report& b) noexcept;

/// What one replica's applied state is, to compare replicas of a shard: at the same
/// applied index, replicas that agree have the same key count and checksum.
struct replica_digest {
  std::uint32_t shard = 0;
  std::string node;
  std::uint64_t applied_index = 0; ///< the last entry whose batch the shard holds
  std::uint64_t keys = 0;
  std::uint64_t checksum = 0; ///< XXH64 over every key and value, in key order
};

/// A shard's group as one node sees it, merged from every report it has.
struct shard_replicas {
  std::string leader; ///< empty: no leader known
  std::vector<std::string> voters;
  std::uint64_t term = 0;
  std::uint64_t commit_index = 0;
  std::uint64_t applied_index = 0; ///< the leader's (0 without a leader)
  /// Per follower of the leader: the entries it lacks of the leader's log.
  struct lag {
    std::string node;
    std::uint64_t entries = 0;
  };
  std::vector<lag> followers;
};

/// Folds reports (from this node and from the peers it hears) into one entry per shard.
/// A shard's leader is the reporter that leads in the highest term any leader reports: a
/// deposed leader still reporting its old term loses to its successor. Without a leader
/// report, the leader is empty and the term and commit index are the highest reported.
std::vector<shard_replicas> merge_reports(std::uint32_t shards,
                                          const std::vector<replica_report>& reports);

/// This node's latest report per shard. One writer per shard (that shard's host), any
/// thread reads; each slot is an atomic shared_ptr swap, so nothing locks.
class replica_board {
public:
  explicit replica_board(std::uint32_t shards);

  /// Replaces the report of `report.shard`; ignored for a shard out of range.
  void publish(replica_report report);
  std::shared_ptr<const replica_report> read(std::uint32_t shard) const noexcept;
  /// Every report published so far, by shard.
  std::vector<replica_report> all() const;

  std::uint32_t shard_count() const noexcept {
    return static_cast<std::uint32_t>(slots_.size());
  }

private:
  std::vector<std::shared_ptr<const replica_report>> slots_;
};

} // namespace shoal::cluster
