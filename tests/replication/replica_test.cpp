// SPDX-License-Identifier: Apache-2.0
// Replicas of one shard's Raft group on libraft's deterministic fixture
// (group_fixture.hpp). What must hold:
// an acknowledged write is on every replica in the same order, a replica that does not
// lead acknowledges nothing, a cut-off leader's writes are never acknowledged and are
// dropped, reads wait for a barrier of their own, and a replica that missed what the log
// no longer holds catches up from a snapshot.
#include "tests/replication/group_fixture.hpp"

namespace shoal::replication::test {
namespace {

using ReplicaTest = group_fixture;

TEST_F(ReplicaTest, AcknowledgedWritesAreOnEveryReplicaInLogOrder) {
  start(3);
  raft_fixture_elect(&f_, 0);
  ASSERT_TRUE(at(0).leader());
  std::vector<outcome> writes(20);
  std::vector<int> order;
  for (int i = 0; i < 20; ++i) {
    write_batch b = put("k" + std::to_string(i % 7), std::to_string(i));
    if (i % 5 == 4) {
      b.del("k" + std::to_string((i + 1) % 7));
    }
    auto record = writes[i].recorder();
    at(0).propose(b, [&, i, record](core::result<void> r) {
      order.push_back(i);
      record(std::move(r));
    });
  }
  ASSERT_TRUE(step_until([&] { return writes.back().ran; }));
  for (int i = 0; i < 20; ++i) {
    EXPECT_TRUE(writes[i].ok()) << i << ": " << writes[i].message;
    EXPECT_EQ(order.at(i), i);
  }
  ASSERT_TRUE(settle(0));
  const auto want = contents(0);
  EXPECT_EQ(want.at("k5"), "19"); // the last write to k5 won on the leader
  for (unsigned i = 0; i < 3; ++i) {
    EXPECT_EQ(contents(i), want) << "replica " << i;
    // The entry index the machine derives (libraft's last_applied + 1) is the log's: with
    // an off-by-one the stored index would lag and the next entry be taken for a replay.
    EXPECT_EQ(machines_[i]->applied(), raft_last_applied(server(i))) << "replica " << i;
  }
}

TEST_F(ReplicaTest, AFollowerRefusesWritesAndReadsWithTheLeaderHint) {
  start(3);
  raft_fixture_elect(&f_, 0);
  outcome seed;
  at(0).propose(put("a", "1"), seed.recorder());
  ASSERT_TRUE(step_until([&] { return seed.ran; }));
  ASSERT_TRUE(settle(0));
  const auto last = raft_last_index(server(1));

  outcome write;
  at(1).propose(put("a", "2"), write.recorder());
  ASSERT_TRUE(write.ran) << "a refusal is answered at once";
  EXPECT_EQ(write.error, core::errc::shard_unavailable);
  EXPECT_EQ(write.name, "not_leader");
  EXPECT_NE(write.message.find("server 1"), std::string::npos) << write.message;
  EXPECT_EQ(at(1).hint().id, 1u);

  outcome read;
  at(2).read(read.recorder());
  ASSERT_TRUE(read.ran);
  EXPECT_EQ(read.name, "not_leader");

  raft_fixture_step_until_elapsed(&f_, 500);
  EXPECT_EQ(raft_last_index(server(1)), last) << "the follower proposed nothing";
  EXPECT_EQ(value_of(0, "a"), "1");
  EXPECT_EQ(value_of(1, "a"), "1");
}

TEST_F(ReplicaTest, ACutOffLeaderAcknowledgesNothingAndItsWritesAreDropped) {
  start(5);
  raft_fixture_elect(&f_, 0);
  outcome before;
  at(0).propose(put("a", "before"), before.recorder());
  ASSERT_TRUE(step_until([&] { return before.ran; }));
  ASSERT_TRUE(before.ok());
  ASSERT_TRUE(settle(0));

  isolate(0);
  outcome cut_write;
  outcome cut_read;
  at(0).propose(put("a", "from-the-minority"), cut_write.recorder());
  at(0).read(cut_read.recorder());
  ASSERT_FALSE(cut_write.ran);

  unsigned fresh = 5;
  ASSERT_TRUE(step_until([&] {
    fresh = leader_among({1, 2, 3, 4});
    return fresh != 5;
  }));
  outcome after;
  at(fresh).propose(put("a", "from-the-majority"), after.recorder());
  ASSERT_TRUE(step_until([&] { return after.ran; }));
  EXPECT_TRUE(after.ok()) << after.message;

  // The old leader steps down once it has not heard a majority for an election timeout:
  // the write it took is answered "outcome unknown", the read "not leader", never ok.
  ASSERT_TRUE(step_until([&] { return cut_write.ran && cut_read.ran; }));
  EXPECT_EQ(cut_write.error, core::errc::outcome_unknown) << cut_write.message;
  EXPECT_EQ(cut_read.error, core::errc::shard_unavailable) << cut_read.message;

  heal(0);
  ASSERT_TRUE(step_until([&] { return raft_state(server(0)) == RAFT_FOLLOWER; }));
  ASSERT_TRUE(settle(fresh));
  const auto want = contents(fresh);
  EXPECT_EQ(want.at("a"), "from-the-majority");
  for (unsigned i = 0; i < 5; ++i) {
    EXPECT_EQ(contents(i), want) << "replica " << i;
  }
}

TEST_F(ReplicaTest, AReadSeesTheWritesAcknowledgedBeforeIt) {
  start(3);
  raft_fixture_elect(&f_, 0);
  outcome write;
  at(0).propose(put("a", "1"), write.recorder());
  ASSERT_TRUE(step_until([&] { return write.ran; }));
  ASSERT_TRUE(write.ok());
  outcome read;
  at(0).read(read.recorder());
  EXPECT_FALSE(read.ran) << "a read waits for a barrier";
  ASSERT_TRUE(step_until([&] { return read.ran; }));
  EXPECT_TRUE(read.ok()) << read.message;
  EXPECT_EQ(value_of(0, "a"), "1");
  EXPECT_EQ(at(0).barriers(), 1u);
}

TEST_F(ReplicaTest, ReadsThatArriveDuringABarrierShareTheNextOne) {
  start(3);
  raft_fixture_elect(&f_, 0);
  std::vector<outcome> reads(5);
  at(0).read(reads[0].recorder());
  EXPECT_EQ(at(0).barriers(), 1u);
  // These arrive while the first barrier is in flight: it may have been acknowledged by
  // a majority before they arrived, so it proves nothing about them. They share one more.
  for (int i = 1; i < 4; ++i) {
    at(0).read(reads[i].recorder());
  }
  EXPECT_EQ(at(0).barriers(), 1u);
  ASSERT_TRUE(step_until([&] { return reads[0].ran; }));
  EXPECT_TRUE(reads[0].ok());
  EXPECT_FALSE(reads[1].ran) << "a later read was served by an earlier barrier";
  EXPECT_EQ(at(0).barriers(), 2u);
  // A read made from a read's callback queues behind the barrier in flight too.
  at(0).read(reads[4].recorder());
  ASSERT_TRUE(step_until([&] { return reads[3].ran && reads[4].ran; }));
  for (auto& r : reads) {
    EXPECT_TRUE(r.ok()) << r.message;
  }
  EXPECT_EQ(at(0).barriers(), 3u);
}

TEST_F(ReplicaTest, AReplicaThatMissedCompactedEntriesCatchesUpFromASnapshot) {
  start(3);
  for (unsigned i = 0; i < 3; ++i) {
    raft_set_snapshot_threshold(server(i), 8);
    raft_set_snapshot_trailing(server(i), 2);
  }
  raft_fixture_elect(&f_, 0);
  outcome first;
  at(0).propose(put("gone-later", "x"), first.recorder());
  ASSERT_TRUE(step_until([&] { return first.ran; }));
  ASSERT_TRUE(settle(0));
  ASSERT_EQ(value_of(2, "gone-later"), "x");

  raft_fixture_kill(&f_, 2);
  std::vector<outcome> writes(30);
  for (int i = 0; i < 30; ++i) {
    write_batch b = put("k" + std::to_string(i), std::to_string(i));
    if (i == 10) {
      b.del("gone-later");
    }
    at(0).propose(b, writes[i].recorder());
    ASSERT_TRUE(step_until([&] { return writes[i].ran; })) << i;
    ASSERT_TRUE(writes[i].ok()) << i;
  }
  raft_fixture_revive(&f_, 2);
  ASSERT_TRUE(settle(0));
  EXPECT_GE(raft_fixture_n_recv(&f_, 2, RAFT_IO_INSTALL_SNAPSHOT), 1u)
    << "the entries it missed were compacted; only a snapshot could bring them";
  EXPECT_EQ(contents(2), contents(0));
  EXPECT_EQ(value_of(2, "gone-later"), "<not_found>");
  EXPECT_EQ(machines_[2]->applied(), raft_last_applied(server(2)));
}

} // namespace
} // namespace shoal::replication::test
