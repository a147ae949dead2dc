// SPDX-License-Identifier: Apache-2.0
#pragma once

// A GoogleTest fixture that runs shard actors on CAF's deterministic test scheduler
// over a store of the test's choice. Nothing runs until the test calls `run()`.

#include <memory>
#include <optional>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/scoped_actor.hpp>
#include <gtest/gtest.h>

#include "actors/shard_actor.hpp"
#include "actors/type_ids.hpp"
#include "actors/wal_syncer.hpp"
#include "storage/store.hpp"

namespace shoal::testing {

/// Records the reply a shard delivers to the edge.
class capture_sink final : public actors::reply_sink {
public:
  void deliver(actors::doc_reply&& reply) override {
    ++deliveries;
    last = std::move(reply);
  }
  int deliveries = 0;
  std::optional<actors::doc_reply> last;
};

struct deterministic_config : caf::actor_system_config {
  deterministic_config() {
    set("scheduler.policy", caf::atom("testing"));
    set("logger.file-verbosity", caf::atom("quiet"));
    add_message_types<caf::id_block::shoal>();
  }
};

class shard_fixture : public ::testing::Test {
protected:
  deterministic_config cfg;
  caf::actor_system sys{cfg};
  caf::scheduler::test_coordinator& sched =
    dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler());

  /// Spawns a syncer and one shard actor of shard `index` over `store`.
  actors::shard_actor spawn(storage::store& store, std::uint32_t index, bool sync) {
    if (sync && !syncer) syncer = actors::spawn_wal_syncer(sys, store, false);
    return actors::spawn_shard(sys, actors::shard_config{index, &store, sync, syncer, {}, {}, {}});
  }

  /// Sends `req` to `shard` with a fresh sink (delivery happens on `run()`).
  std::shared_ptr<capture_sink> send(const actors::shard_actor& shard, actors::doc_request req) {
    auto sink = std::make_shared<capture_sink>();
    caf::anon_send(shard, std::move(req), actors::reply_sink_ptr{sink});
    return sink;
  }

  /// Sends `req`, runs the scheduler until idle, and returns the reply.
  actors::doc_reply call(const actors::shard_actor& shard, actors::doc_request req) {
    auto sink = send(shard, std::move(req));
    run();
    EXPECT_EQ(sink->deliveries, 1);
    return sink->last.value_or(
      actors::doc_reply{actors::doc_status::unavailable, 0, {}, "no reply"});
  }

  void run() {
    sched.run();
  }

  ~shard_fixture() override {
    if (syncer) caf::anon_send_exit(syncer, caf::exit_reason::user_shutdown);
    sched.run();
  }

  actors::wal_syncer_actor syncer;
};

inline actors::doc_request put(std::string collection, std::string id, std::string body) {
  actors::doc_request r;
  r.op = actors::doc_op::put;
  r.collection = std::move(collection);
  r.id = std::move(id);
  r.body = std::move(body);
  return r;
}

inline actors::doc_request get(std::string collection, std::string id) {
  actors::doc_request r;
  r.op = actors::doc_op::get;
  r.collection = std::move(collection);
  r.id = std::move(id);
  return r;
}

inline actors::doc_request patch(std::string collection, std::string id, std::string body) {
  auto r = put(std::move(collection), std::move(id), std::move(body));
  r.op = actors::doc_op::patch;
  return r;
}

inline actors::doc_request del(std::string collection, std::string id) {
  auto r = get(std::move(collection), std::move(id));
  r.op = actors::doc_op::del;
  return r;
}

inline actors::precondition versions(std::vector<std::uint64_t> v) {
  return actors::precondition{actors::precondition::kind::versions, std::move(v)};
}

inline actors::precondition any_version() {
  return actors::precondition{actors::precondition::kind::any, {}};
}

} // namespace shoal::testing
