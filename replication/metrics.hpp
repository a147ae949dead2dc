// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "metrics/metrics.hpp"

namespace shoal::cluster {
class replica_board;
} // namespace shoal::cluster

namespace shoal::replication {

/// What the replicas of a node count (lock-free atomics, shared by every replica of the
/// node). Gauges of the groups' state come from the node's replica board at scrape time.
struct metrics {
  shoal::metrics::counter elections;      ///< a replica here stood for election (pre-vote included)
  shoal::metrics::counter leader_changes; ///< a replica here became its group's leader
  /// Proposed to applied on the leader, which is committed on a quorum.
  shoal::metrics::histogram commit_seconds{shoal::metrics::histogram::latency_bounds()};
  shoal::metrics::counter snapshot_bytes_sent;      ///< snapshots sent to followers
  shoal::metrics::counter snapshot_bytes_installed; ///< snapshots installed here
  shoal::metrics::counter group_restarts; ///< a replica here started again after a failed fsync

  /// The counters above, and from `board`: the groups led here and the largest lag of
  /// their followers.
  void write(shoal::metrics::text_writer& out, const cluster::replica_board& board) const;
};

} // namespace shoal::replication
