// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <vector>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "protocol/shard_actor.hpp"
#include "remote/members.hpp"

namespace shoal::protocol {
struct shard_handles;
} // namespace shoal::protocol

namespace shoal::cluster {
class ownership;
class replica_board;
} // namespace shoal::cluster

namespace shoal::remote {

/// The one actor a node publishes on its actor port: the door for peers.
///
/// - `hello` → `hello_ack`, `auth` → `auth_ack`: the handshake (docs/cluster.md). Only a
///   peer that proved the cluster secret and agrees on the shard count, the replication
///   factor and the member list becomes trusted (by its CAF node id, until its connection goes
///   down).
/// - `(shard, R)` → `R::reply`, for every shard request R: forwarded work, delegated to
///   this node's shard host (its replica, for a replicated shard: `replicas`, indexed by
///   shard, which must outlive the actor); the answer goes straight back to the peer's
///   stub.
/// - `heartbeat_atom` → `(heartbeat_atom, replica_reports)`: the reports on `reports`
///   (this node's replica board, which must outlive the actor; none when null).
/// - `(raft_relay_atom, shard, bytes)`: a replicated shard's Raft message, handed to this
///   node's Raft transport (`raft`, when there is one) for its local replica; and
///   `(raft_relay_atom, raft_batch)`, several of them at once.
///
/// Anything from an untrusted sender gets the same error as a message nobody handles, so
/// an unknown peer learns nothing and reaches no shard.
///
/// When a peer completes a handshake, the gateway tells `membership`
/// (`peer_back_atom`), which dials that peer at once if it had it down.
///
/// `shards` and `owners` must outlive the actor.
caf::actor spawn_gateway(caf::actor_system& sys, cluster_identity identity,
                         const protocol::shard_handles& shards, const cluster::ownership& owners,
                         caf::actor membership, caf::actor raft = {},
                         const std::vector<protocol::shard_actor>* replicas = nullptr,
                         const cluster::replica_board* reports = nullptr);

} // namespace shoal::remote
