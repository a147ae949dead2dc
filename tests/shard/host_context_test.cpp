// SPDX-License-Identifier: Apache-2.0
// shard::host_context, the one implementation of shard::context: deferred steps, timers
// armed as one tick, the wall clock derived from the loop's clock, reports, commits
// through the gate, and close. Driven by tests/support/manual_shard.hpp; the tests that
// count what the context asks of its loop (ticks armed, wake-ups) give it ports of their
// own.
#include "shard/host_context.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/error.hpp"
#include "storage/memory_store.hpp"
#include "tests/support/manual_shard.hpp"

namespace shoal::shard {
namespace {

using std::chrono::milliseconds;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

/// A put of `key` with value "v".
storage::write_batch put(std::string key) {
  storage::write_batch batch;
  batch.put(std::move(key), "v");
  return batch;
}

/// A `done` that logs "<name>:ok" or "<name>:<code>" into `into`.
commit_done log(std::vector<std::string>& into, std::string name) {
  return [&into, name](core::result<void> r) {
    into.push_back(name + ":" + (r.ok() ? "ok" : core::to_string(r.error().code())));
  };
}

class HostContextTest : public ::testing::Test {
protected:
  storage::memory_store store_{3};
  std::vector<std::string> ran_;
};

// -- the context's identity -----------------------------------------------------------------

// Verifies index() and store() are the shard the context was made for.
TEST_F(HostContextTest, IndexAndStoreAreTheShards) {
  testing::manual_shard shard{store_, 2};
  EXPECT_EQ(shard.ctx().index(), 2u);
  EXPECT_EQ(&shard.ctx().store(), &store_.shard(2));
}

// -- deferred work --------------------------------------------------------------------------

// Verifies defer runs nothing inside the call, and the work runs on the next wake-up, in
// the order deferred.
TEST_F(HostContextTest, DeferRunsBehind) {
  testing::manual_shard shard{store_};
  shard.ctx().defer([&] { ran_.push_back("a"); });
  shard.ctx().defer([&] { ran_.push_back("b"); });
  EXPECT_THAT(ran_, IsEmpty()) << "deferred work ran inside defer";
  EXPECT_EQ(shard.ctx().deferred(), 2u);
  EXPECT_TRUE(shard.run_one());
  EXPECT_THAT(ran_, ElementsAre("a", "b"));
  EXPECT_EQ(shard.ctx().deferred(), 0u);
  EXPECT_FALSE(shard.run_one()) << "a wake-up with nothing to run";
}

// Verifies several defers before a wake-up ask for one wake-up, and all of them run in
// it.
TEST_F(HostContextTest, DeferAsksOncePerWakeUp) {
  testing::manual_shard shard{store_};
  shard.step([&] {
    for (int i = 0; i < 3; ++i)
      shard.ctx().defer([&, i] { ran_.push_back(std::to_string(i)); });
    EXPECT_THAT(ran_, IsEmpty());
  });
  EXPECT_THAT(ran_, ElementsAre("0", "1", "2"));
  shard.ctx().defer([&] { ran_.push_back("3"); });
  shard.ctx().defer([&] { ran_.push_back("4"); });
  EXPECT_EQ(shard.run(), 1u) << "two defers asked for more than one wake-up";
  EXPECT_THAT(ran_, ElementsAre("0", "1", "2", "3", "4"));
}

// Verifies work deferred while deferred work runs waits for the next wake-up (each step
// is bounded), and gets one.
TEST_F(HostContextTest, WorkDeferredDuringStepWaitsForNextWakeUp) {
  testing::manual_shard shard{store_};
  shard.ctx().defer([&] {
    ran_.push_back("first");
    shard.ctx().defer([&] {
      ran_.push_back("second");
      shard.ctx().defer([&] { ran_.push_back("third"); });
    });
  });
  EXPECT_TRUE(shard.run_one());
  EXPECT_THAT(ran_, ElementsAre("first"));
  EXPECT_EQ(shard.ctx().deferred(), 1u);
  EXPECT_TRUE(shard.run_one());
  EXPECT_THAT(ran_, ElementsAre("first", "second"));
  EXPECT_EQ(shard.run(), 1u);
  EXPECT_THAT(ran_, ElementsAre("first", "second", "third"));
  EXPECT_FALSE(shard.run_one());
}

// -- timers ---------------------------------------------------------------------------------

// Verifies a scheduled timer runs once the manual clock reaches its due time, not before,
// and a cancelled one never runs.
TEST_F(HostContextTest, TimersRunWhenTheClockReachesThem) {
  testing::manual_shard shard{store_};
  auto& ctx = shard.ctx();
  timer_id cancelled = 0;
  shard.step([&] {
    ctx.schedule(ctx.now() + milliseconds(10), [&] { ran_.push_back("ten"); });
    cancelled = ctx.schedule(ctx.now() + milliseconds(15), [&] { ran_.push_back("cancelled"); });
    ctx.schedule(ctx.now() + milliseconds(20), [&] { ran_.push_back("twenty"); });
  });
  EXPECT_EQ(ctx.timers(), 3u);
  shard.advance(milliseconds(9));
  EXPECT_THAT(ran_, IsEmpty());
  shard.step([&] { ctx.cancel(cancelled); });
  shard.advance(milliseconds(1));
  EXPECT_THAT(ran_, ElementsAre("ten"));
  shard.advance(milliseconds(100));
  EXPECT_THAT(ran_, ElementsAre("ten", "twenty"));
  EXPECT_EQ(ctx.timers(), 0u);
}

// Verifies a timer a timer schedules, already due, runs on a later tick of the same
// advance, not inside the tick that scheduled it.
TEST_F(HostContextTest, TimerScheduledByTimerRunsOnLaterTick) {
  testing::manual_shard shard{store_};
  auto& ctx = shard.ctx();
  shard.step([&] {
    ctx.schedule(ctx.now() + milliseconds(5), [&] {
      ran_.push_back("outer");
      ctx.schedule(ctx.now(), [&] { ran_.push_back("inner"); });
      EXPECT_EQ(ctx.timers(), 1u);
    });
  });
  shard.advance(milliseconds(5));
  EXPECT_THAT(ran_, ElementsAre("outer", "inner"));
}

/// A host_context over ports that record what the context asks of its loop.
class RecordedPortsTest : public HostContextTest {
protected:
  void SetUp() override {
    host_context::ports p;
    p.now = [this] { return now_; };
    p.arm = [this](time_point due) { armed_.push_back(due); };
    p.wake = [this] { ++wakes_; };
    p.request_sync = [this](std::uint64_t seq) { syncs_.push_back(seq); };
    ctx_ = std::make_unique<host_context>(0, store_, sync_, std::move(p), 1000);
  }

  time_point at(int ms) const {
    return start_ + milliseconds(ms);
  }

  const time_point start_{std::chrono::hours(2)};
  time_point now_ = start_;
  bool sync_ = false;
  std::vector<time_point> armed_;
  int wakes_ = 0;
  std::vector<std::uint64_t> syncs_;
  std::unique_ptr<host_context> ctx_;
};

// Verifies finish_step arms one tick for the earliest timer, none again while that tick
// is in flight for a later timer, one more for an earlier timer, and after the tick the
// next one for the timer left.
TEST_F(RecordedPortsTest, FinishStepArmsOneTickForEarliestTimer) {
  ctx_->finish_step();
  EXPECT_THAT(armed_, IsEmpty()) << "a tick armed with no timer";
  ctx_->schedule(at(20), [&] { ran_.push_back("20"); });
  ctx_->schedule(at(30), [&] { ran_.push_back("30"); });
  EXPECT_THAT(armed_, IsEmpty()) << "schedule arms; only finish_step should";
  ctx_->finish_step();
  EXPECT_THAT(armed_, ElementsAre(at(20)));
  ctx_->finish_step();
  EXPECT_THAT(armed_, ElementsAre(at(20))) << "armed again for the same timer";
  ctx_->schedule(at(25), [&] { ran_.push_back("25"); });
  ctx_->finish_step();
  EXPECT_THAT(armed_, ElementsAre(at(20))) << "armed again for a later timer";
  ctx_->schedule(at(10), [&] { ran_.push_back("10"); });
  ctx_->finish_step();
  EXPECT_THAT(armed_, ElementsAre(at(20), at(10))) << "an earlier timer needs its own tick";

  now_ = at(10);
  ctx_->on_tick(); // the tick for 10 (the earliest in flight)
  ctx_->finish_step();
  EXPECT_THAT(ran_, ElementsAre("10"));
  EXPECT_THAT(armed_, ElementsAre(at(20), at(10))) << "the tick for 20 is still in flight";

  now_ = at(20);
  ctx_->on_tick();
  ctx_->finish_step();
  EXPECT_THAT(ran_, ElementsAre("10", "20"));
  EXPECT_THAT(armed_, ElementsAre(at(20), at(10), at(25)));
  EXPECT_EQ(ctx_->timers(), 2u);
}

// Verifies a tick that finds its timer cancelled runs nothing and arms the next timer.
TEST_F(RecordedPortsTest, TickForCancelledTimerArmsTheNext) {
  const auto first = ctx_->schedule(at(10), [&] { ran_.push_back("10"); });
  ctx_->schedule(at(40), [&] { ran_.push_back("40"); });
  ctx_->finish_step();
  ctx_->cancel(first);
  ctx_->finish_step();
  EXPECT_THAT(armed_, ElementsAre(at(10))) << "the tick in flight comes first";
  now_ = at(10);
  ctx_->on_tick();
  ctx_->finish_step();
  EXPECT_THAT(ran_, IsEmpty());
  EXPECT_THAT(armed_, ElementsAre(at(10), at(40)));
}

// Verifies defer asks for one wake-up until it arrives, finish_step asks for none while
// one is in flight, and work deferred during a step asks for exactly one more.
TEST_F(RecordedPortsTest, DeferAsksForOneWakeUp) {
  ctx_->defer([&] { ran_.push_back("a"); });
  ctx_->defer([&] { ran_.push_back("b"); });
  ctx_->finish_step();
  EXPECT_EQ(wakes_, 1);
  ctx_->on_step();
  EXPECT_THAT(ran_, ElementsAre("a", "b"));
  ctx_->finish_step();
  EXPECT_EQ(wakes_, 1) << "a wake-up with nothing deferred";

  ctx_->defer([&] {
    ran_.push_back("c");
    ctx_->defer([&] { ran_.push_back("d"); });
  });
  EXPECT_EQ(wakes_, 2);
  ctx_->on_step();
  ctx_->finish_step();
  EXPECT_THAT(ran_, ElementsAre("a", "b", "c"));
  EXPECT_EQ(wakes_, 3);
  ctx_->on_step();
  ctx_->finish_step();
  EXPECT_THAT(ran_, ElementsAre("a", "b", "c", "d"));
  EXPECT_EQ(wakes_, 3);
}

// Verifies report without a report port does nothing (calls no empty function).
TEST_F(RecordedPortsTest, ReportWithoutPortIsIgnored) {
  EXPECT_NO_THROW(ctx_->report("trim", core::error{core::errc::storage_failed, "disk"}));
}

// Verifies wall_ms starts at the given Unix time and moves with the loop's clock, never
// below the start when the clock reads earlier than at construction.
TEST_F(RecordedPortsTest, WallMsFollowsTheLoopClock) {
  EXPECT_EQ(ctx_->wall_ms(), 1000u);
  now_ = at(250);
  EXPECT_EQ(ctx_->wall_ms(), 1250u);
  now_ = start_ - milliseconds(500);
  EXPECT_EQ(ctx_->wall_ms(), 1000u);
}

// -- the clocks -----------------------------------------------------------------------------

// Verifies now() is the manual clock and wall_ms advances with it, from the Unix time
// given at the start.
TEST_F(HostContextTest, WallMsAdvancesWithManualClock) {
  testing::manual_shard shard{store_, 0, false, 1'700'000'000'000};
  auto& ctx = shard.ctx();
  EXPECT_EQ(ctx.now(), shard.now());
  EXPECT_EQ(ctx.wall_ms(), 1'700'000'000'000u);
  shard.advance(milliseconds(1500));
  EXPECT_EQ(ctx.now(), shard.now());
  EXPECT_EQ(ctx.wall_ms(), 1'700'000'001'500u);
  shard.advance(std::chrono::hours(1));
  EXPECT_EQ(ctx.wall_ms(), 1'700'003'601'500u);
}

// -- reports --------------------------------------------------------------------------------

// Verifies report hands what failed and the error to the loop's report list.
TEST_F(HostContextTest, ReportReachesTheReports) {
  testing::manual_shard shard{store_};
  shard.ctx().report("index build", core::error{core::errc::storage_failed, "disk full"});
  shard.ctx().report("trim", core::error{core::errc::corrupt, "bad block"});
  EXPECT_THAT(shard.reports,
              ElementsAre("index build: storage_failed: disk full", "trim: corrupt: bad block"));
}

// -- commits --------------------------------------------------------------------------------

// Verifies that without sync a commit's done runs at the end of its step, not inside
// commit, and the write is readable at once.
TEST_F(HostContextTest, CommitWithoutSyncCompletesAtEndOfStep) {
  testing::manual_shard shard{store_};
  std::vector<std::string> done;
  shard.step([&] {
    auto r = shard.ctx().commit(put("k"), log(done, "k"));
    ASSERT_TRUE(r.ok());
    EXPECT_THAT(done, IsEmpty()) << "done ran inside commit";
    EXPECT_TRUE(shard.ctx().store().get("k").ok());
    EXPECT_FALSE(shard.ctx().pending("k"));
    EXPECT_TRUE(shard.ctx().all_durable());
  });
  EXPECT_THAT(done, ElementsAre("k:ok"));
}

// Verifies that with sync a commit and the barriers behind it wait for the syncer's
// answer, and only the keys of held commits are pending.
TEST_F(HostContextTest, CommitWithSyncWaitsForTheSyncer) {
  testing::manual_shard shard{store_, 0, true};
  auto& ctx = shard.ctx();
  std::vector<std::string> done;
  shard.step([&] { ASSERT_TRUE(ctx.commit(put("k"), log(done, "k")).ok()); });
  EXPECT_THAT(done, IsEmpty());
  ASSERT_TRUE(shard.sync_wanted().has_value());
  EXPECT_EQ(*shard.sync_wanted(), store_.latest_sequence());
  EXPECT_TRUE(ctx.pending("k"));
  EXPECT_FALSE(ctx.pending("other"));
  EXPECT_FALSE(ctx.all_durable());
  shard.step([&] {
    ctx.after_durable("k", log(done, "key"));
    ctx.after_durable("other", log(done, "other"));
    ctx.after_all_durable(log(done, "all"));
  });
  EXPECT_THAT(done, ElementsAre("other:ok"));
  shard.sync();
  EXPECT_THAT(done, ElementsAre("other:ok", "k:ok", "key:ok", "all:ok"));
  EXPECT_FALSE(ctx.pending("k"));
  EXPECT_TRUE(ctx.all_durable());
  EXPECT_FALSE(shard.sync_wanted().has_value());
}

// Verifies a failed fsync fails the held commits and barriers with its error.
TEST_F(HostContextTest, FailedSyncFailsHeldCommits) {
  testing::manual_shard shard{store_, 0, true};
  auto& ctx = shard.ctx();
  std::vector<std::string> done;
  shard.step([&] {
    ASSERT_TRUE(ctx.commit(put("k"), log(done, "k")).ok());
    ctx.after_durable("k", log(done, "key"));
  });
  shard.fail_sync(core::error{core::errc::storage_failed, "fsync failed"});
  EXPECT_THAT(done, ElementsAre("k:storage_failed", "key:storage_failed"));
  EXPECT_FALSE(ctx.pending("k"));
}

// -- close ----------------------------------------------------------------------------------

// Verifies close fails held commits (outcome_unknown: the write may be kept) and barriers
// (shutting_down), and drops timers and deferred work, which then never run.
TEST_F(HostContextTest, CloseFailsHeldCommitsAndDropsTimers) {
  testing::manual_shard shard{store_, 0, true};
  auto& ctx = shard.ctx();
  std::vector<std::string> done;
  shard.step([&] {
    ASSERT_TRUE(ctx.commit(put("k"), log(done, "k")).ok());
    ctx.after_all_durable(log(done, "all"));
    ctx.schedule(ctx.now() + milliseconds(10), [&] { ran_.push_back("timer"); });
  });
  ctx.defer([&] { ran_.push_back("deferred"); });
  EXPECT_EQ(ctx.timers(), 1u);
  EXPECT_EQ(ctx.deferred(), 1u);

  ctx.close();
  EXPECT_THAT(done, ElementsAre("k:outcome_unknown", "all:shutting_down"));
  EXPECT_EQ(ctx.timers(), 0u);
  EXPECT_EQ(ctx.deferred(), 0u);
  EXPECT_FALSE(ctx.pending("k"));
  shard.advance(milliseconds(100));
  EXPECT_THAT(ran_, IsEmpty());
  EXPECT_THAT(done, ElementsAre("k:outcome_unknown", "all:shutting_down")) << "a second answer";
}

// Verifies close without sync still runs the completions of the last step with success
// (those writes reached the WAL) before it stops.
TEST_F(HostContextTest, CloseRunsCompletionsOfLastStep) {
  testing::manual_shard shard{store_};
  std::vector<std::string> done;
  ASSERT_TRUE(shard.ctx().commit(put("k"), log(done, "k")).ok());
  shard.ctx().close();
  EXPECT_THAT(done, ElementsAre("k:ok"));
}

} // namespace
} // namespace shoal::shard
