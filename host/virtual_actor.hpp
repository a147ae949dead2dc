// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include <caf/atom.hpp>
#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/messages.hpp"
#include "protocol/shard_actor.hpp"

namespace shoal::storage {
class shard_store;
} // namespace shoal::storage

namespace shoal::actors {
class actor_type;
class actor_metrics;
} // namespace shoal::actors

namespace shoal::host {

/// Shard host → virtual actor: finish what is queued, then stop.
using passivate_atom = caf::atom_constant<caf::atom("passivate")>;

/// One active virtual actor (type, id). Only its shard host spawns it and sends to it,
/// so there is at most one per node. Calls run one at a time in arrival order
/// (turn-based); `passivate` is answered once everything queued before it is done, and
/// then the actor stops. A call comes with its reply_to (from the edge), or as a
/// request its host delegated (from an actor), answered as a response.
using virtual_actor = caf::typed_actor<protocol::shard_signature<actors::actor_call>,
                                       caf::replies_to<passivate_atom>::with<caf::ok_atom>>;

struct virtual_actor_config {
  const actors::actor_type* type = nullptr;
  std::string id;
  storage::shard_store* shard = nullptr; ///< its shard's keyspace: the state is read from it
  protocol::shard_actor host;            ///< its shard: state writes go through its gate
  const protocol::shard_handles* peers = nullptr; ///< every shard of the node, for calls
  std::chrono::milliseconds call_timeout{5000};
  actors::actor_metrics* metrics = nullptr;
};

/// Spawns the actor; its state is loaded from the store before its first call runs.
virtual_actor spawn_virtual_actor(caf::actor_system& sys, virtual_actor_config cfg);

} // namespace shoal::host
