// SPDX-License-Identifier: Apache-2.0
// shard::timer_queue: the one queue of a shard's timers. Time is given, never read, so
// the tests move it by hand.
#include "shard/timers.hpp"

#include <chrono>
#include <set>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace shoal::shard {
namespace {

using std::chrono::milliseconds;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

class TimersTest : public ::testing::Test {
protected:
  /// A time `ms` milliseconds after the test's origin.
  static time_point at(int ms) {
    return time_point{std::chrono::hours(1)} + milliseconds(ms);
  }

  /// Adds a timer due at `ms` that logs `name` when it runs.
  timer_id add(int ms, std::string name) {
    return timers_.add(at(ms), [this, name] { ran_.push_back(name); });
  }

  timer_queue timers_;
  std::vector<std::string> ran_;
};

// Verifies timers run by due time, and timers due at the same time in the order added.
TEST_F(TimersTest, OrderByDueTimeThenInsertion) {
  add(30, "c");
  add(10, "a1");
  add(20, "b");
  add(10, "a2");
  add(10, "a3");
  EXPECT_EQ(timers_.size(), 5u);
  EXPECT_EQ(timers_.run_due(at(30)), 5u);
  EXPECT_THAT(ran_, ElementsAre("a1", "a2", "a3", "b", "c"));
  EXPECT_EQ(timers_.size(), 0u);
}

// Verifies run_due runs only the timers due at `now` (inclusive) and keeps the rest.
TEST_F(TimersTest, RunDueRunsOnlyDueTimers) {
  add(10, "a");
  add(20, "b");
  add(21, "c");
  EXPECT_EQ(timers_.run_due(at(9)), 0u);
  EXPECT_THAT(ran_, IsEmpty());
  EXPECT_EQ(timers_.run_due(at(10)), 1u);
  EXPECT_THAT(ran_, ElementsAre("a"));
  EXPECT_EQ(timers_.run_due(at(20)), 1u);
  EXPECT_THAT(ran_, ElementsAre("a", "b"));
  EXPECT_EQ(timers_.size(), 1u);
  EXPECT_EQ(timers_.run_due(at(20)), 0u) << "a timer ran twice";
  EXPECT_EQ(timers_.run_due(at(1000)), 1u);
  EXPECT_THAT(ran_, ElementsAre("a", "b", "c"));
  EXPECT_EQ(timers_.run_due(at(2000)), 0u);
}

// Verifies next_due is the earliest due time, and nullopt when no timer is left.
TEST_F(TimersTest, NextDueIsTheEarliest) {
  EXPECT_EQ(timers_.next_due(), std::nullopt);
  add(20, "b");
  EXPECT_EQ(timers_.next_due(), at(20));
  const auto a = add(10, "a");
  EXPECT_EQ(timers_.next_due(), at(10));
  add(30, "c");
  EXPECT_EQ(timers_.next_due(), at(10));
  timers_.cancel(a);
  EXPECT_EQ(timers_.next_due(), at(20));
  timers_.run_due(at(20));
  EXPECT_EQ(timers_.next_due(), at(30));
  timers_.run_due(at(30));
  EXPECT_EQ(timers_.next_due(), std::nullopt);
}

// Verifies each timer gets its own id, also timers due at the same time.
TEST_F(TimersTest, IdsAreDistinct) {
  std::set<timer_id> ids;
  for (int i = 0; i < 10; ++i)
    ids.insert(add(5, "t"));
  EXPECT_EQ(ids.size(), 10u);
}

// Verifies a cancelled timer never runs and leaves the queue, and only it: a timer due at
// the same time still runs.
TEST_F(TimersTest, CancelForgetsTheTimer) {
  add(10, "a");
  const auto b = add(10, "b");
  add(10, "c");
  timers_.cancel(b);
  EXPECT_EQ(timers_.size(), 2u);
  EXPECT_EQ(timers_.run_due(at(10)), 2u);
  EXPECT_THAT(ran_, ElementsAre("a", "c"));
}

// Verifies cancelling twice, cancelling an unknown id and cancelling a timer that already
// ran do nothing (and touch no other timer).
TEST_F(TimersTest, CancelOfUnknownOrFinishedTimerDoesNothing) {
  const auto a = add(10, "a");
  add(20, "b");
  timers_.cancel(a);
  timers_.cancel(a);
  timers_.cancel(987654);
  EXPECT_EQ(timers_.size(), 1u);
  const auto c = add(5, "c");
  EXPECT_EQ(timers_.run_due(at(5)), 1u);
  timers_.cancel(c);
  EXPECT_EQ(timers_.size(), 1u);
  EXPECT_EQ(timers_.next_due(), at(20));
  EXPECT_EQ(timers_.run_due(at(20)), 1u);
  EXPECT_THAT(ran_, ElementsAre("c", "b"));
}

// Verifies a timer added by a running timer waits for the next run_due call, even when it
// is already due.
TEST_F(TimersTest, TimerAddedWhileRunningWaitsForNextCall) {
  timers_.add(at(10), [this] {
    ran_.push_back("first");
    add(10, "added-due");
    add(5, "added-past");
  });
  add(10, "sibling");
  EXPECT_EQ(timers_.run_due(at(10)), 2u);
  EXPECT_THAT(ran_, ElementsAre("first", "sibling"));
  EXPECT_EQ(timers_.size(), 2u);
  EXPECT_EQ(timers_.next_due(), at(5));
  EXPECT_EQ(timers_.run_due(at(10)), 2u);
  EXPECT_THAT(ran_, ElementsAre("first", "sibling", "added-past", "added-due"));
}

// Verifies a timer cancelled by an earlier one of the same run_due call does not run (and
// is not counted).
TEST_F(TimersTest, TimerCancelledByEarlierOneDoesNotRun) {
  timer_id victim = 0;
  timers_.add(at(10), [&] {
    ran_.push_back("killer");
    timers_.cancel(victim);
  });
  victim = add(10, "victim");
  add(15, "survivor");
  EXPECT_EQ(timers_.run_due(at(20)), 2u);
  EXPECT_THAT(ran_, ElementsAre("killer", "survivor"));
  EXPECT_EQ(timers_.size(), 0u);
}

// Verifies a timer may cancel itself while running (nothing happens) and one that is
// not due yet may be cancelled from a running timer.
TEST_F(TimersTest, RunningTimerMayCancelItselfOrALaterOne) {
  timer_id self = 0;
  timer_id later = 0;
  self = timers_.add(at(10), [&] {
    ran_.push_back("self");
    timers_.cancel(self);
    timers_.cancel(later);
  });
  later = add(50, "later");
  EXPECT_EQ(timers_.run_due(at(10)), 1u);
  EXPECT_EQ(timers_.size(), 0u);
  EXPECT_EQ(timers_.next_due(), std::nullopt);
  EXPECT_EQ(timers_.run_due(at(100)), 0u);
  EXPECT_THAT(ran_, ElementsAre("self"));
}

} // namespace
} // namespace shoal::shard
