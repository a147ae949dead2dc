// SPDX-License-Identifier: Apache-2.0
// The Raft transport's batching, on CAF's deterministic scheduler: what a node's replicas
// send to one peer while the transport is busy crosses the link as one message, in the
// order it was sent; a lone message goes alone; a message for a node that is not up,
// and a relayed batch for shards with no local replica, are dropped and counted.
#include "remote/raft_transport.hpp"

#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scheduled_actor.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <gtest/gtest.h>

#include "protocol/type_ids.hpp"
#include "remote/type_ids.hpp"

namespace shoal::remote {
namespace {

struct test_config : caf::actor_system_config {
  test_config() {
    set("scheduler.policy", caf::atom("testing"));
    set("logger.file-verbosity", caf::atom("quiet"));
    set("logger.console-verbosity", caf::atom("quiet"));
    protocol::add_message_types(*this);
    add_message_types<caf::id_block::shoal_remote>();
  }
};

/// What a peer's gateway received: each message as the list of its shards and bytes.
struct received {
  std::vector<std::vector<std::pair<std::uint32_t, std::string>>> messages;
};

caf::behavior fake_gateway(caf::event_based_actor*, std::shared_ptr<received> got) {
  return {
    [got](raft_relay_atom, std::uint32_t shard, std::string& bytes) {
      got->messages.push_back({{shard, bytes}});
    },
    [got](raft_relay_atom, raft_batch& batch) {
      std::vector<std::pair<std::uint32_t, std::string>> m;
      for (std::size_t i = 0; i < batch.shards.size(); ++i)
        m.emplace_back(batch.shards[i], batch.bytes.at(i));
      got->messages.push_back(std::move(m));
    },
  };
}

class RaftBatchTest : public ::testing::Test {
protected:
  RaftBatchTest() {
    transport = spawn_raft_transport(sys, "n1");
    gateway = sys.spawn(fake_gateway, got);
    caf::anon_send(transport, raft_peer_atom::value, std::string{"n2"}, gateway);
    sched.run();
  }

  ~RaftBatchTest() override {
    caf::anon_send_exit(transport, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(gateway, caf::exit_reason::user_shutdown);
    sched.run();
  }

  void send(const std::string& node, std::uint32_t shard, std::string bytes) {
    caf::anon_send(transport, raft_send_atom::value, node, shard, std::move(bytes));
  }

  /// (sent, relayed, dropped) so far.
  std::tuple<std::uint64_t, std::uint64_t, std::uint64_t> stats() {
    std::tuple<std::uint64_t, std::uint64_t, std::uint64_t> out;
    caf::scoped_actor me{sys};
    me->request(transport, caf::infinite, raft_stats_atom::value)
      .receive(
        [&](std::uint64_t s, std::uint64_t r, std::uint64_t d) {
          out = {s, r, d};
        },
        [](caf::error&) { ADD_FAILURE() << "no stats"; });
    return out;
  }

  test_config cfg;
  caf::actor_system sys{cfg};
  caf::scheduler::test_coordinator& sched =
    dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler());
  std::shared_ptr<received> got = std::make_shared<received>();
  caf::actor transport;
  caf::actor gateway;
};

TEST_F(RaftBatchTest, ABurstForOnePeerCrossesAsOneMessageInOrder) {
  for (std::uint32_t i = 0; i < 5; ++i)
    send("n2", i % 2, "m" + std::to_string(i));
  sched.run();
  ASSERT_EQ(got->messages.size(), 1u);
  const std::vector<std::pair<std::uint32_t, std::string>> want{
    {0, "m0"}, {1, "m1"}, {0, "m2"}, {1, "m3"}, {0, "m4"}};
  EXPECT_EQ(got->messages[0], want);
}

TEST_F(RaftBatchTest, ALoneMessageGoesAloneAndOneForADownNodeIsDropped) {
  send("n2", 3, "alone");
  sched.run();
  send("n3", 3, "nobody");
  sched.run();
  ASSERT_EQ(got->messages.size(), 1u);
  EXPECT_EQ(got->messages[0], (std::vector<std::pair<std::uint32_t, std::string>>{{3, "alone"}}));
  sched.inline_all_enqueues();
  auto [sent, relayed, dropped] = stats();
  EXPECT_EQ(sent, 1u);
  EXPECT_EQ(relayed, 0u);
  EXPECT_EQ(dropped, 1u);
}

TEST_F(RaftBatchTest, ARelayedBatchForShardsWithoutALocalReplicaIsDroppedWhole) {
  raft_batch batch;
  batch.shards = {4, 5, 6};
  batch.bytes = {"a", "b", "c"};
  caf::anon_send(transport, raft_relay_atom::value, std::move(batch));
  sched.run();
  sched.inline_all_enqueues();
  auto [sent, relayed, dropped] = stats();
  EXPECT_EQ(sent, 0u);
  EXPECT_EQ(relayed, 0u);
  EXPECT_EQ(dropped, 3u);
}

} // namespace
} // namespace shoal::remote
