// SPDX-License-Identifier: Apache-2.0
#include "host/wal_syncer.hpp"

#include <thread>

#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "protocol/errors.hpp"
#include "storage/store.hpp"

namespace shoal::host {

namespace {

struct syncer_state {
  storage::store* store = nullptr;
  std::chrono::milliseconds stall{0}; ///< slept before each fsync (a fault tests inject)
  std::uint64_t durable = 0;          ///< every write with a sequence <= durable is on disk
  static inline const char* name = "shoal.wal_syncer";
};

wal_syncer_actor::behavior_type syncer_impl(wal_syncer_actor::stateful_pointer<syncer_state> self,
                                            storage::store* store,
                                            std::chrono::milliseconds stall) {
  self->state.store = store;
  self->state.stall = stall;
  return {
    [=](wal_sync_atom, std::uint64_t wanted) -> caf::result<std::uint64_t> {
      auto& st = self->state;
      // Requests that queued up during the last fsync are usually covered by it already.
      if (wanted <= st.durable) return st.durable;
      // Read the sequence before syncing: everything up to it is in the WAL file now.
      auto target = st.store->latest_sequence();
      if (st.stall.count() > 0) std::this_thread::sleep_for(st.stall);
      if (auto s = st.store->sync_wal(); !s) return protocol::to_caf(s.error());
      st.durable = target;
      return st.durable;
    },
  };
}

} // namespace

wal_syncer_actor spawn_wal_syncer(caf::actor_system& sys, storage::store& store, bool detached,
                                  std::chrono::milliseconds stall) {
  if (detached) return sys.spawn<caf::detached>(syncer_impl, &store, stall);
  return sys.spawn(syncer_impl, &store, std::chrono::milliseconds{0});
}

} // namespace shoal::host
