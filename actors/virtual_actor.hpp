// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/actor_protocol.hpp"
#include "actors/type_ids.hpp"
#include "actors/wal_syncer.hpp"

namespace shoal::storage {
class store;
} // namespace shoal::storage

namespace shoal::actors {

class actor_type;
class actor_metrics;
struct shard_handles;

/// One active virtual actor (type, id). Only its shard actor spawns it and sends to it,
/// so there is at most one per node, and it is the single writer of its state key.
/// Calls run one at a time in arrival order (turn-based); `passivate` is answered once
/// everything queued before it is done, and then the actor stops.
using virtual_actor = caf::typed_actor<caf::replies_to<actor_call>::with<actor_reply>,
                                       caf::reacts_to<actor_call, call_sink_ptr>,
                                       caf::replies_to<passivate_atom>::with<caf::ok_atom>>;

struct virtual_actor_config {
  const actor_type* type = nullptr;
  std::string id;
  std::uint32_t shard = 0;
  storage::store* store = nullptr;
  bool sync = false;
  wal_syncer_actor syncer;
  const shard_handles* peers = nullptr;
  std::chrono::milliseconds call_timeout{5000};
  actor_metrics* metrics = nullptr;
};

/// Spawns the actor; its state is loaded from the store before its first call runs.
virtual_actor spawn_virtual_actor(caf::actor_system& sys, virtual_actor_config cfg);

/// Storage key of an actor's state: 'a' ++ type ++ '\0' ++ id (in its shard).
std::string actor_state_key(std::string_view type, std::string_view id);

} // namespace shoal::actors
