// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/expected.hpp>
#include <caf/fwd.hpp>

#include "protocol/shard_actor.hpp"
#include "replication/group.hpp"
#include "remote/members.hpp"
#include "remote/remote_shard.hpp"

namespace shoal::cluster {
class ownership;
class view_board;
class replica_board;
} // namespace shoal::cluster

namespace shoal::remote {

/// Every shard of the cluster as this node addresses it.
struct placed_shards {
  /// All shards in shard order: this node's shard actors and stubs for the others.
  protocol::shard_handles handles;
  /// The stubs grouped by peer, in `cluster.nodes` order without this node.
  std::vector<std::vector<remote_shard_actor>> stubs_by_peer;
  /// This node's replicas of replicated shards, by shard (a null handle: none): what the
  /// gateway hands forwarded requests for those shards to.
  std::vector<protocol::shard_actor> replicas;
};

/// Fills a `placed_shards`: `spawn_local(i)` for every shard `self` owns, a remote shard
/// stub for every other.
placed_shards place_shards(caf::actor_system& sys, const std::string& self,
                           const cluster::ownership& owners,
                           std::chrono::milliseconds failure_timeout,
                           std::chrono::milliseconds call_timeout,
                           const std::function<protocol::shard_actor(std::uint32_t)>& spawn_local);

/// As place_shards, for a cluster whose every shard is a Raft group over the
/// `replication_factor` members of its highest rendezvous weights
/// (`ownership::replicas_of`, the owner first): `spawn_replica(i, group)` for every shard
/// this node holds a replica of (kept in `replicas`), and for every shard a stub over its
/// replicas (this node's own addressed directly) that finds the leader.
placed_shards place_replicated_shards(
  caf::actor_system& sys, const std::string& self, const cluster::ownership& owners,
  std::uint32_t replication_factor, std::chrono::milliseconds failure_timeout,
  std::chrono::milliseconds call_timeout,
  const std::function<protocol::shard_actor(std::uint32_t, replication::group_config)>&
    spawn_replica);

/// The two actors that make a node a member.
struct cluster_actors {
  caf::actor gateway;
  caf::actor membership;
};

/// Spawns the membership actor, which starts dialing, and the gateway, published on this
/// node's actor port, bound to its host (with SO_REUSEADDR, so a restarted node gets its
/// port back at once). The middleman must be loaded and the
/// `shoal_remote` type ids added. `shards`, `owners` and `board` must outlive the actors.
/// On failure nothing keeps running and the error says which address could not be bound.
/// `raft`, the node's Raft transport (remote/raft_transport.hpp) when it hosts replicated
/// shards, learns where the peers are and receives what they relay. `reports`, the board
/// this node's replicas report to (null without replicated shards), goes to the peers
/// with every heartbeat answer and, merged with theirs, into the view's
/// `shards.replicas`; it must outlive the actors.
caf::expected<cluster_actors> start_cluster(caf::actor_system& sys, cluster_identity identity,
                                            placed_shards& shards, const cluster::ownership& owners,
                                            cluster::view_board& board, caf::actor raft = {},
                                            const cluster::replica_board* reports = nullptr);

} // namespace shoal::remote
