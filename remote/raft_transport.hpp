// SPDX-License-Identifier: Apache-2.0
#pragma once

// The Raft transport of one node (docs/replication.md): how the replicas of a shard
// talk across nodes, over the node links that exist and are authenticated already (no
// new port). A replica's host sends (raft_send_atom, node, shard, bytes); the transport
// hands them to that node's gateway as (raft_relay_atom, shard, bytes), or, when several
// for that node wait in its mailbox, all of them as one (raft_relay_atom, raft_batch):
// it queues what it is sent and flushes once the messages queued before the flush are
// in (a self-message), so a burst crosses the link as one message. The gateway,
// for a trusted peer only, passes them to its own node's transport, which delivers them
// to the local replica of that shard (host::deliver_raft). A message for a node whose
// link is down, or for a shard with no local replica, is dropped and counted: Raft
// tolerates lost messages, and retries.

#include <cstdint>
#include <functional>
#include <string>

#include <caf/atom.hpp>
#include <caf/fwd.hpp>

#include "protocol/shard_actor.hpp"

namespace shoal::remote {

/// Host → transport: (raft_send_atom, node id, shard, bytes).
using raft_send_atom = caf::atom_constant<caf::atom("raft_send")>;
/// Transport → peer gateway → peer transport: (raft_relay_atom, shard, bytes).
using raft_relay_atom = caf::atom_constant<caf::atom("raft_rly")>;
/// Membership → transport: (raft_peer_atom, node id, gateway), a null gateway once down.
using raft_peer_atom = caf::atom_constant<caf::atom("raft_peer")>;
/// Node → transport: (raft_local_atom, shard, host), the local replica of a shard.
using raft_local_atom = caf::atom_constant<caf::atom("raft_loc")>;
/// Anyone → transport: (raft_stats_atom) → (sent, relayed, dropped) so far.
using raft_stats_atom = caf::atom_constant<caf::atom("raft_stat")>;

/// Spawns the transport of node `self`.
caf::actor spawn_raft_transport(caf::actor_system& sys, std::string self);

/// The send function of a replicated host of `shard` (host::replication_config::send):
/// through `transport`, to the node whose id is the replica's address.
std::function<void(std::uint64_t, const std::string&, std::string)>
raft_sender(caf::actor transport, std::uint32_t shard);

} // namespace shoal::remote
