// SPDX-License-Identifier: Apache-2.0
// shard::durability_gate on the memory store: when a commit's `done` and a barrier run,
// without storage.sync and with it (held until the WAL syncer's answer covers them, one
// fsync request at a time, group commit), which keys are pending, and how failures end
// what is held.
#include "shard/gate.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/error.hpp"
#include "storage/memory_store.hpp"
#include "tests/support/faulty_store.hpp"

namespace shoal::shard {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

class GateTest : public ::testing::Test {
protected:
  /// Builds the gate under test over shard 0 of `store` (the memory store by default).
  void make(bool sync) {
    make(sync, store_);
  }
  void make(bool sync, storage::store& store) {
    gate_ = std::make_unique<durability_gate>(
      store.shard(0), store, sync, [this](std::uint64_t seq) { requests_.push_back(seq); });
  }

  /// A `done` (or barrier) that logs "<name>:ok" or "<name>:<code>" when it runs.
  commit_done log(std::string name) {
    return [this, name](core::result<void> r) {
      events_.push_back(name + ":" + (r.ok() ? "ok" : core::to_string(r.error().code())));
      if (!r.ok()) messages_.push_back(r.error().message());
    };
  }

  static storage::write_batch put(std::string key) {
    storage::write_batch batch;
    batch.put(std::move(key), "v");
    return batch;
  }

  /// Commits a put of `key` whose done logs `name`; the commit must succeed.
  void commit(std::string key, std::string name) {
    auto r = gate_->commit(put(std::move(key)), log(std::move(name)));
    ASSERT_TRUE(r.ok()) << r.error().to_string();
  }

  /// Writes directly to the store, past the gate: moves the store's sequence.
  void write_outside() {
    ASSERT_TRUE(store_.shard(0).write(put("outside"), false).ok());
  }

  std::uint64_t latest() {
    return store_.latest_sequence();
  }

  storage::memory_store store_{1};
  std::vector<std::uint64_t> requests_; ///< the sequences fsyncs were asked for
  std::vector<std::string> events_;     ///< dones and barriers, in the order they ran
  std::vector<std::string> messages_;   ///< the messages of the errors they got
  std::unique_ptr<durability_gate> gate_;
};

// -- without storage.sync -------------------------------------------------------------------

// Verifies that without sync a commit applies at once but its done runs only in
// run_completions, never inside commit, and exactly once; no fsync is asked for.
TEST_F(GateTest, WithoutSyncCommitCompletesOnlyInRunCompletions) {
  make(false);
  commit("k", "a");
  EXPECT_THAT(events_, IsEmpty()) << "done ran inside commit";
  auto value = store_.shard(0).get("k");
  ASSERT_TRUE(value.ok()) << "the batch is visible to reads at once";
  EXPECT_EQ(*value, "v");
  EXPECT_EQ(gate_->held(), 0u);
  EXPECT_FALSE(gate_->pending("k"));
  gate_->run_completions();
  EXPECT_THAT(events_, ElementsAre("a:ok"));
  gate_->run_completions();
  EXPECT_THAT(events_, ElementsAre("a:ok"));
  EXPECT_THAT(requests_, IsEmpty());
}

// Verifies that without sync the completions of a step run in commit order.
TEST_F(GateTest, WithoutSyncCompletionsRunInCommitOrder) {
  make(false);
  commit("a", "a");
  commit("b", "b");
  commit("a", "c");
  EXPECT_THAT(events_, IsEmpty());
  gate_->run_completions();
  EXPECT_THAT(events_, ElementsAre("a:ok", "b:ok", "c:ok"));
}

// Verifies that a done which commits again has its own done run by the same
// run_completions call (until none is left), never inside its commit.
TEST_F(GateTest, WithoutSyncCompletionThatCommitsRunsInSameCall) {
  make(false);
  auto first = gate_->commit(put("a"), [this](core::result<void> r) {
    events_.push_back(std::string("a:") + (r.ok() ? "ok" : "failed"));
    auto again = gate_->commit(put("b"), log("b"));
    EXPECT_TRUE(again.ok());
    EXPECT_EQ(events_.size(), 1u) << "b's done ran inside its commit";
  });
  ASSERT_TRUE(first.ok());
  gate_->run_completions();
  EXPECT_THAT(events_, ElementsAre("a:ok", "b:ok"));
}

// Verifies that without sync nothing is pending and barriers run at once, inside the call.
TEST_F(GateTest, WithoutSyncBarriersRunAtOnce) {
  make(false);
  commit("k", "a");
  gate_->after_durable("k", log("key"));
  EXPECT_THAT(events_, ElementsAre("key:ok"));
  gate_->after_all_durable(log("all"));
  EXPECT_THAT(events_, ElementsAre("key:ok", "all:ok"));
  gate_->run_completions();
  EXPECT_THAT(events_, ElementsAre("key:ok", "all:ok", "a:ok"));
  EXPECT_THAT(requests_, IsEmpty());
}

// -- with storage.sync ---------------------------------------------------------------------

// Verifies that with sync a commit is held (its write visible at once) until synced()
// reports a sequence that covers it: an answer below its sequence releases nothing and
// asks again; run_completions never releases it.
TEST_F(GateTest, WithSyncCommitHeldUntilSyncedCoversIt) {
  make(true);
  write_outside();
  commit("k", "a");
  const auto seq = latest();
  EXPECT_TRUE(store_.shard(0).get("k").ok());
  EXPECT_THAT(events_, IsEmpty());
  EXPECT_THAT(requests_, ElementsAre(seq));
  EXPECT_EQ(gate_->held(), 1u);
  gate_->run_completions();
  EXPECT_THAT(events_, IsEmpty()) << "a held commit completed without an fsync";

  gate_->synced(seq - 1);
  EXPECT_THAT(events_, IsEmpty()) << "released by an fsync that does not cover it";
  EXPECT_THAT(requests_, ElementsAre(seq, seq)) << "still held: the gate asks again";
  gate_->synced(seq);
  EXPECT_THAT(events_, ElementsAre("a:ok"));
  EXPECT_EQ(gate_->held(), 0u);
  EXPECT_THAT(requests_, ElementsAre(seq, seq)) << "nothing held, nothing to ask";
  gate_->run_completions();
  EXPECT_THAT(events_, ElementsAre("a:ok"));
}

// Verifies only one fsync request is in flight: commits made meanwhile wait, and the
// next request (for the latest held sequence) is asked once the first is answered.
TEST_F(GateTest, OneSyncRequestInFlightAtATime) {
  make(true);
  commit("a", "a");
  const auto seq_a = latest();
  commit("b", "b");
  commit("c", "c");
  const auto seq_c = latest();
  ASSERT_GT(seq_c, seq_a);
  EXPECT_THAT(requests_, ElementsAre(seq_a));

  gate_->synced(seq_a);
  EXPECT_THAT(events_, ElementsAre("a:ok"));
  EXPECT_THAT(requests_, ElementsAre(seq_a, seq_c));
  commit("d", "d");
  EXPECT_THAT(requests_, ElementsAre(seq_a, seq_c)) << "a second request while one is in flight";
  gate_->synced(seq_c);
  EXPECT_THAT(events_, ElementsAre("a:ok", "b:ok", "c:ok"));
  EXPECT_THAT(requests_, ElementsAre(seq_a, seq_c, latest()));
  gate_->synced(latest());
  EXPECT_THAT(events_, ElementsAre("a:ok", "b:ok", "c:ok", "d:ok"));
  EXPECT_EQ(requests_.size(), 3u);
}

// Verifies group commit: one synced() covering several held commits releases them all,
// in commit order, without another request.
TEST_F(GateTest, GroupCommitReleasesSeveralWithOneSynced) {
  make(true);
  commit("a", "a");
  commit("b", "b");
  commit("c", "c");
  EXPECT_EQ(gate_->held(), 3u);
  EXPECT_EQ(requests_.size(), 1u);
  gate_->synced(latest());
  EXPECT_THAT(events_, ElementsAre("a:ok", "b:ok", "c:ok"));
  EXPECT_EQ(gate_->held(), 0u);
  EXPECT_EQ(requests_.size(), 1u);
}

// Verifies synced() releases the covered prefix only: what a later sequence holds stays.
TEST_F(GateTest, SyncedReleasesOnlyWhatItCovers) {
  make(true);
  commit("a", "a");
  const auto seq_a = latest();
  commit("b", "b");
  gate_->synced(seq_a);
  EXPECT_THAT(events_, ElementsAre("a:ok"));
  EXPECT_EQ(gate_->held(), 1u);
  EXPECT_FALSE(gate_->pending("a"));
  EXPECT_TRUE(gate_->pending("b"));
}

// Verifies the keys a held commit puts or deletes are pending until it is released,
// other keys are not, and a key two commits wrote stays pending until both are released.
TEST_F(GateTest, PendingKeysOfHeldCommits) {
  make(true);
  EXPECT_FALSE(gate_->pending("x"));
  storage::write_batch batch;
  batch.put("x", "1");
  batch.del("y");
  ASSERT_TRUE(gate_->commit(std::move(batch), log("first")).ok());
  const auto first = latest();
  EXPECT_TRUE(gate_->pending("x"));
  EXPECT_TRUE(gate_->pending("y"));
  EXPECT_FALSE(gate_->pending("z"));
  EXPECT_FALSE(gate_->pending("x2")) << "pending is per key, not per prefix";

  commit("x", "second");
  gate_->synced(first);
  EXPECT_THAT(events_, ElementsAre("first:ok"));
  EXPECT_TRUE(gate_->pending("x")) << "the second commit of x is still held";
  EXPECT_FALSE(gate_->pending("y"));
  gate_->synced(latest());
  EXPECT_FALSE(gate_->pending("x"));
}

// Verifies a held del_range makes every key pending (its range is not tracked key by
// key), until it is released; then only the keys of commits still held are.
TEST_F(GateTest, DelRangeMakesEveryKeyPending) {
  make(true);
  storage::write_batch batch;
  batch.del_range("a", "b");
  ASSERT_TRUE(gate_->commit(std::move(batch), log("range")).ok());
  const auto range = latest();
  EXPECT_TRUE(gate_->pending("a"));
  EXPECT_TRUE(gate_->pending("zzz"));
  EXPECT_TRUE(gate_->pending(""));
  commit("k", "k");
  gate_->synced(range);
  EXPECT_THAT(events_, ElementsAre("range:ok"));
  EXPECT_FALSE(gate_->pending("zzz"));
  EXPECT_TRUE(gate_->pending("k"));
  gate_->synced(latest());
  EXPECT_FALSE(gate_->pending("k"));
  EXPECT_FALSE(gate_->pending("a"));
}

// Verifies after_durable runs at once, inside the call, when no held commit wrote its
// key, and asks for no fsync.
TEST_F(GateTest, AfterDurableRunsAtOnceWhenKeyNotPending) {
  make(true);
  gate_->after_durable("k", log("empty"));
  EXPECT_THAT(events_, ElementsAre("empty:ok"));
  EXPECT_THAT(requests_, IsEmpty());
  commit("x", "x");
  gate_->after_durable("k", log("other"));
  EXPECT_THAT(events_, ElementsAre("empty:ok", "other:ok"));
  EXPECT_EQ(gate_->held(), 1u);
  EXPECT_EQ(requests_.size(), 1u);
}

// Verifies after_durable on a pending key waits behind the commit that wrote it and runs
// right after it; it does not wait for commits made after it was asked.
TEST_F(GateTest, AfterDurableWaitsBehindCommit) {
  make(true);
  commit("k", "write");
  const auto seq = latest();
  gate_->after_durable("k", log("barrier"));
  commit("k", "later");
  EXPECT_THAT(events_, IsEmpty());
  gate_->synced(seq);
  EXPECT_THAT(events_, ElementsAre("write:ok", "barrier:ok"));
  EXPECT_TRUE(gate_->pending("k"));
  gate_->synced(latest());
  EXPECT_THAT(events_, ElementsAre("write:ok", "barrier:ok", "later:ok"));
}

// Verifies after_all_durable runs at once when nothing is held, and otherwise waits for
// every commit so far, whatever keys they wrote.
TEST_F(GateTest, AfterAllDurableWaitsForEveryHeldCommit) {
  make(true);
  gate_->after_all_durable(log("idle"));
  EXPECT_THAT(events_, ElementsAre("idle:ok"));
  EXPECT_THAT(requests_, IsEmpty());
  commit("a", "a");
  const auto seq_a = latest();
  commit("b", "b");
  gate_->after_all_durable(log("all"));
  gate_->synced(seq_a);
  EXPECT_THAT(events_, ElementsAre("idle:ok", "a:ok"));
  gate_->synced(latest());
  EXPECT_THAT(events_, ElementsAre("idle:ok", "a:ok", "b:ok", "all:ok"));
}

// Verifies a failed fsync fails every held commit and barrier with its error, in order,
// clears the pending keys (also a del_range's), and the next commit asks for a new fsync.
TEST_F(GateTest, SyncFailedFailsEveryHeldCommitAndBarrier) {
  make(true);
  commit("a", "a");
  gate_->after_durable("a", log("barrier"));
  storage::write_batch range;
  range.del_range("m", "n");
  ASSERT_TRUE(gate_->commit(std::move(range), log("range")).ok());
  gate_->after_all_durable(log("all"));
  ASSERT_EQ(requests_.size(), 1u);

  gate_->sync_failed(core::error{core::errc::storage_failed, "fsync: I/O error"});
  EXPECT_THAT(events_, ElementsAre("a:storage_failed", "barrier:storage_failed",
                                   "range:storage_failed", "all:storage_failed"));
  EXPECT_THAT(messages_, ::testing::Each(std::string("fsync: I/O error")));
  EXPECT_EQ(gate_->held(), 0u);
  EXPECT_FALSE(gate_->pending("a"));
  EXPECT_FALSE(gate_->pending("zzz"));
  EXPECT_TRUE(store_.shard(0).get("a").ok()) << "the write stays in the store";
  EXPECT_EQ(requests_.size(), 1u) << "nothing held: nothing to ask";

  commit("b", "b");
  EXPECT_EQ(requests_.size(), 2u) << "no request in flight after the failure";
  EXPECT_TRUE(gate_->pending("b"));
  EXPECT_FALSE(gate_->pending("a")) << "a failed commit's key is still pending";
  EXPECT_FALSE(gate_->pending("zzz")) << "a failed del_range still makes every key pending";
  gate_->synced(latest());
  EXPECT_EQ(events_.back(), "b:ok");
}

// Verifies a write the store refuses returns the error, drops done without running it,
// holds nothing and asks for no fsync, with and without sync.
TEST_F(GateTest, FailedWriteReturnsErrorAndDropsDone) {
  for (bool sync : {false, true}) {
    SCOPED_TRACE(sync ? "sync" : "no sync");
    testing::faulty_store faulty{store_};
    faulty.fail_writes = true;
    make(sync, faulty);
    requests_.clear();
    events_.clear();
    auto token = std::make_shared<int>(0);
    std::weak_ptr<int> alive = token;
    auto r =
      gate_->commit(put("k"), [this, token](core::result<void>) { events_.push_back("done"); });
    token.reset();
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), core::errc::storage_failed);
    EXPECT_EQ(r.error().message(), "injected write failure");
    EXPECT_TRUE(alive.expired()) << "done was kept";
    EXPECT_FALSE(store_.shard(0).get("k").ok());
    EXPECT_EQ(gate_->held(), 0u);
    EXPECT_FALSE(gate_->pending("k"));
    EXPECT_THAT(requests_, IsEmpty());
    gate_->run_completions();
    gate_->synced(latest());
    gate_.reset();
    EXPECT_THAT(events_, IsEmpty());
  }
}

// Verifies all_durable: always true without sync; with sync false while a commit is held
// and true again once it is released or failed.
TEST_F(GateTest, AllDurableFollowsWhatIsHeld) {
  make(false);
  commit("a", "a");
  EXPECT_TRUE(gate_->all_durable());
  make(true);
  EXPECT_TRUE(gate_->all_durable());
  commit("a", "a2");
  EXPECT_FALSE(gate_->all_durable());
  gate_->synced(latest());
  EXPECT_TRUE(gate_->all_durable());
  commit("b", "b");
  EXPECT_FALSE(gate_->all_durable());
  gate_->sync_failed(core::error{core::errc::storage_failed, "m"});
  EXPECT_TRUE(gate_->all_durable());
}

// Verifies a commit may come without a done (its caller waits with a barrier): it is
// held and makes its keys pending like any other, and releasing, failing or dropping it
// calls nothing.
TEST_F(GateTest, CommitWithoutDoneIsHeldLikeAnyOther) {
  make(false);
  ASSERT_TRUE(gate_->commit(put("k"), {}).ok());
  gate_->run_completions();
  EXPECT_THAT(events_, IsEmpty());

  make(true);
  ASSERT_TRUE(gate_->commit(put("k"), {}).ok());
  EXPECT_TRUE(gate_->pending("k"));
  EXPECT_EQ(requests_.size(), 1u);
  gate_->after_durable("k", log("barrier"));
  EXPECT_THAT(events_, IsEmpty());
  gate_->synced(latest());
  EXPECT_THAT(events_, ElementsAre("barrier:ok"));
  EXPECT_FALSE(gate_->pending("k"));

  ASSERT_TRUE(gate_->commit(put("k"), {}).ok());
  gate_->sync_failed(core::error{core::errc::storage_failed, "m"});
  ASSERT_TRUE(gate_->commit(put("k"), {}).ok());
  gate_->after_all_durable(log("all"));
  gate_.reset();
  EXPECT_THAT(events_, ElementsAre("barrier:ok", "all:shutting_down"));
}

// Verifies stop() answers a held commit outcome_unknown (its write is in the store and
// may be kept) and a held barrier shutting_down, and leaves no key pending.
TEST_F(GateTest, StopTellsHeldCommitsTheirOutcomeIsUnknown) {
  make(true);
  commit("a", "a");
  gate_->after_durable("a", log("barrier"));
  gate_->stop();
  EXPECT_THAT(events_, ElementsAre("a:outcome_unknown", "barrier:shutting_down"));
  EXPECT_FALSE(gate_->pending("a"));
  EXPECT_TRUE(gate_->all_durable());
}

// Verifies the destructor fails every held commit (outcome_unknown) and barrier
// (shutting_down), in order, so nothing unsynced is acknowledged.
TEST_F(GateTest, DestructorFailsHeldWithShuttingDown) {
  make(true);
  commit("a", "a");
  gate_->after_durable("a", log("barrier"));
  commit("b", "b");
  gate_.reset();
  EXPECT_THAT(events_,
              ElementsAre("a:outcome_unknown", "barrier:shutting_down", "b:outcome_unknown"));
}

// Verifies the destructor without sync runs the completions of the last step (those
// writes reached the WAL) rather than dropping them.
TEST_F(GateTest, DestructorRunsCompletionsWithoutSync) {
  make(false);
  commit("a", "a");
  gate_.reset();
  EXPECT_THAT(events_, ElementsAre("a:ok"));
}

} // namespace
} // namespace shoal::shard
