// SPDX-License-Identifier: Apache-2.0
#include "replication/metrics.hpp"

#include <algorithm>

#include "cluster/replicas.hpp"

namespace shoal::replication {

void metrics::write(shoal::metrics::text_writer& out, const cluster::replica_board& board) const {
  out.family("shoal_replication_elections_total", "counter",
             "Elections a replica on this node stood in (pre-votes included).");
  out.sample("shoal_replication_elections_total", {}, elections.value());
  out.family("shoal_replication_leader_changes_total", "counter",
             "Times a replica on this node became its shard's leader.");
  out.sample("shoal_replication_leader_changes_total", {}, leader_changes.value());
  out.family("shoal_replication_commit_seconds", "histogram",
             "From proposing a write to applying it on the leader (committed on a quorum).");
  out.histogram("shoal_replication_commit_seconds", {}, commit_seconds);
  out.family("shoal_replication_snapshot_bytes_total", "counter",
             "Bytes of shard snapshots sent to followers and installed here.");
  out.sample("shoal_replication_snapshot_bytes_total", {{"direction", "sent"}},
             snapshot_bytes_sent.value());
  out.sample("shoal_replication_snapshot_bytes_total", {{"direction", "installed"}},
             snapshot_bytes_installed.value());
  out.family("shoal_replication_group_restarts_total", "counter",
             "Replicas on this node started again from their store after a failed fsync.");
  out.sample("shoal_replication_group_restarts_total", {}, group_restarts.value());
  std::uint64_t led = 0;
  std::uint64_t worst_lag = 0;
  for (const auto& r : board.all()) {
    if (r.role != cluster::replica_role::leader) continue;
    ++led;
    for (std::size_t v = 0; v < r.match.size() && v < r.voters.size(); ++v)
      if (r.voters[v] != r.node && r.last_index > r.match[v])
        worst_lag = std::max(worst_lag, r.last_index - r.match[v]);
  }
  out.family("shoal_replication_leaders", "gauge", "Shards whose leader is on this node.");
  out.sample("shoal_replication_leaders", {}, led);
  out.family("shoal_replication_follower_lag_entries", "gauge",
             "The most log entries any follower of a shard led here lacks.");
  out.sample("shoal_replication_follower_lag_entries", {}, worst_lag);
}

} // namespace shoal::replication
