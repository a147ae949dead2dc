// SPDX-License-Identifier: Apache-2.0
#pragma once

// A GoogleTest fixture that runs shard hosts (and whatever else a test spawns) on CAF's
// deterministic test scheduler over a store of the test's choice. Nothing runs until
// the test runs the scheduler; time moves only when the test advances it, and every
// timer of a host, the broker and the stubs is on that clock.

#include <chrono>
#include <memory>
#include <optional>
#include <utility>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/exit_reason.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/send.hpp>
#include <gtest/gtest.h>

#include "host/shard_host.hpp"
#include "host/wal_syncer.hpp"
#include "protocol/type_ids.hpp"
#include "storage/store.hpp"
#include "tests/support/manual_shard.hpp"

namespace shoal::testing {

struct deterministic_config : caf::actor_system_config {
  deterministic_config() {
    set("scheduler.policy", caf::atom("testing"));
    set("logger.file-verbosity", caf::atom("quiet"));
    set("logger.console-verbosity", caf::atom("quiet"));
    protocol::add_message_types(*this);
  }
};

class host_fixture : public ::testing::Test {
protected:
  deterministic_config cfg;
  caf::actor_system sys{cfg};
  caf::scheduler::test_coordinator& sched =
    dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler());

  /// Spawns the host of shard `index` over `store` (with a syncer, not detached, when
  /// `sync`); `base` carries module settings.
  protocol::shard_actor spawn(storage::store& store, std::uint32_t index, bool sync,
                              host::host_config base = {}) {
    if (sync && !syncer) syncer = host::spawn_wal_syncer(sys, store, false);
    base.index = index;
    base.store = &store;
    base.sync = sync;
    base.syncer = syncer;
    return host::spawn_shard_host(sys, std::move(base));
  }

  /// Sends `req` to `shard` as the edge does (anon, with a reply_to); the capture fills
  /// while the scheduler runs.
  template <class Handle, class R>
  std::shared_ptr<capture<typename R::reply>> send(const Handle& shard, R req) {
    using T = typename R::reply;
    auto c = std::make_shared<capture<T>>();
    caf::anon_send(shard, std::move(req), core::reply_to<T>::to([c](core::result<T>&& r) {
                     ++c->deliveries;
                     c->last = std::move(r);
                   }));
    return c;
  }

  /// Sends `req`, runs until idle, and returns the one answer (a test failure and an
  /// internal error when none or several arrived).
  template <class Handle, class R>
  core::result<typename R::reply> call(const Handle& shard, R req) {
    auto c = send(shard, std::move(req));
    run();
    EXPECT_EQ(c->deliveries, 1);
    if (!c->last) return core::error{core::errc::internal, "no answer"};
    return *c->last;
  }

  void run() {
    sched.run();
  }

  /// Moves the actor clock by `d`, fires what falls due, runs until idle.
  void advance(std::chrono::milliseconds d) {
    sched.advance_time(std::chrono::duration_cast<caf::timespan>(d));
    sched.run();
  }

  ~host_fixture() override {
    if (syncer) caf::anon_send_exit(syncer, caf::exit_reason::user_shutdown);
    sched.run();
  }

  host::wal_syncer_actor syncer;
};

} // namespace shoal::testing
