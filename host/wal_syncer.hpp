// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <cstdint>

#include <caf/atom.hpp>
#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

namespace shoal::storage {
class store;
} // namespace shoal::storage

namespace shoal::host {

/// Shard host → WAL syncer: "make the WAL durable up to this sequence number".
using wal_sync_atom = caf::atom_constant<caf::atom("wal_sync")>;

/// Group commit for storage.sync=true. Shard hosts write without fsync and then ask the
/// syncer to make the WAL durable up to a sequence number; it answers with the sequence
/// number now durable (>= the one asked). One fsync covers every write that reached the
/// WAL before it started, so concurrent writes of all shards share it.
using wal_syncer_actor =
  caf::typed_actor<caf::replies_to<wal_sync_atom, std::uint64_t>::with<std::uint64_t>>;

/// Spawns the syncer over `store` (which must outlive it). It blocks in fsync, so in a
/// node it runs `detached` on a thread of its own; tests on the deterministic scheduler
/// pass false. `stall` is a fault for process tests (a disk whose fsync is slow): every
/// fsync first sleeps that long. It needs `detached`, since it blocks the thread.
wal_syncer_actor spawn_wal_syncer(caf::actor_system& sys, storage::store& store, bool detached,
                                  std::chrono::milliseconds stall = {});

} // namespace shoal::host
