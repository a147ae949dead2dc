// SPDX-License-Identifier: Apache-2.0
// The redial backoff: 100 ms doubling to the cap, each delay within ±20% of its step.
#include "util/backoff.hpp"

#include <algorithm>
#include <random>
#include <vector>

#include <gtest/gtest.h>

namespace shoal::util {
namespace {

using std::chrono::milliseconds;

// Verifies the steps double from the first to the cap and stay there, and every delay
// lies within ±20% of its step.
TEST(BackoffTest, DoublesToTheCapWithinTwentyPercent) {
  backoff b{milliseconds(100), milliseconds(2000)};
  std::minstd_rand random{42};
  const std::vector<long> steps = {100, 200, 400, 800, 1600, 2000, 2000, 2000};
  for (long step : steps) {
    EXPECT_EQ(b.step().count(), step);
    auto d = b.next(random).count();
    EXPECT_GE(d, static_cast<long>(step * 0.8)) << "step " << step;
    EXPECT_LE(d, static_cast<long>(step * 1.2)) << "step " << step;
  }
}

// Verifies the jitter spreads delays over the whole ±20% band (not a fixed delay), so
// nodes do not redial in lockstep.
TEST(BackoffTest, DelaysSpreadOverTheBand) {
  std::minstd_rand random{7};
  long lowest = 1'000'000;
  long highest = 0;
  for (int i = 0; i < 1000; ++i) {
    backoff b{milliseconds(1000), milliseconds(1000)};
    auto d = b.next(random).count();
    lowest = std::min(lowest, d);
    highest = std::max(highest, d);
  }
  EXPECT_LT(lowest, 850);
  EXPECT_GT(highest, 1150);
  EXPECT_GE(lowest, 800);
  EXPECT_LE(highest, 1200);
}

// Verifies reset starts over from the first step, and a cap below the first step is the
// first step.
TEST(BackoffTest, ResetStartsOverAndTheCapIsAtLeastTheFirstStep) {
  std::minstd_rand random{1};
  backoff b{milliseconds(100), milliseconds(2000)};
  b.next(random);
  b.next(random);
  EXPECT_EQ(b.step().count(), 400);
  b.reset();
  EXPECT_EQ(b.step().count(), 100);
  backoff low{milliseconds(100), milliseconds(10)};
  low.next(random);
  EXPECT_EQ(low.step().count(), 100);
}

} // namespace
} // namespace shoal::util
