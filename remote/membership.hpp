// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <vector>

#include <caf/fwd.hpp>

#include "remote/members.hpp"
#include "remote/remote_shard.hpp"

namespace shoal::cluster {
class ownership;
class view_board;
class replica_board;
} // namespace shoal::cluster

namespace shoal::remote {

/// This node's view of its peers, and the only writer of it.
///
/// For every peer it dials the peer's actor port through the middleman (asynchronously,
/// never blocking a worker), runs the handshake against the peer's gateway, and then
/// pings it every `heartbeat`. A peer is `up` after a handshake while its heartbeats
/// come back within `failure_timeout`; it goes `down` when its connection drops, when it
/// stays silent that long, or when it is refused (secret, shard count or member list
/// differ). A node never reached yet is `connecting`. Lost and refused peers are redialed
/// with exponential backoff (100 ms doubling up to `reconnect_max`, with jitter).
///
/// Every change goes to the stubs of the peer's shards (`peer_update_atom`) and into a
/// new `cluster_view` on `board`. `stubs[p]` are the stubs of the p-th peer in
/// `identity.nodes` order without this node; `owners` and `board` must outlive the actor.
/// `raft`, the node's Raft transport when it has replicated shards, is told of every
/// peer's gateway as it comes and goes (`raft_peer_atom`).
///
/// With `reports` (this node's replica board, when its shards are replicated), every view
/// also carries each shard's group: this node's reports merged with those the up peers
/// sent with their last heartbeat answer (cluster::merge_reports), and `shard_owners`
/// names each shard's leader instead of its first replica.
caf::actor spawn_membership(caf::actor_system& sys, cluster_identity identity,
                            std::vector<std::vector<remote_shard_actor>> stubs,
                            const cluster::ownership& owners, cluster::view_board& board,
                            caf::actor raft = {}, const cluster::replica_board* reports = nullptr);

} // namespace shoal::remote
