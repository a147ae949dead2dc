// SPDX-License-Identifier: Apache-2.0
// The checker the replication histories go through must tell good histories from bad
// ones, or a passing history check proves nothing.
#include "tests/support/linearizability.hpp"

#include <gtest/gtest.h>

#include <random>

namespace shoal::test::lin {
namespace {

op w(std::int64_t v, std::int64_t call, std::int64_t ret = unknown) {
  return {true, v, call, ret};
}
op r(std::int64_t v, std::int64_t call, std::int64_t ret) {
  return {false, v, call, ret};
}

TEST(LinearizabilityTest, SequentialHistories) {
  EXPECT_TRUE(linearizable_register({}));
  EXPECT_TRUE(linearizable_register({r(0, 0, 1), w(1, 2, 3), r(1, 4, 5)}));
  EXPECT_FALSE(linearizable_register({w(1, 0, 1), r(0, 2, 3)})) << "a stale read";
  EXPECT_FALSE(linearizable_register({r(7, 0, 1)})) << "a value nobody wrote";
  EXPECT_TRUE(linearizable_register({r(5, 0, 1)}, 5)) << "the initial value";
}

TEST(LinearizabilityTest, OverlappingOpsMayTakeEitherOrder) {
  // write 1 overlaps both reads: the first may see 0 and the second 1.
  EXPECT_TRUE(linearizable_register({w(1, 0, 10), r(0, 1, 2), r(1, 3, 4)}));
  // But once a read saw 1, a later read cannot see 0 again.
  EXPECT_FALSE(linearizable_register({w(1, 0, 10), r(1, 1, 2), r(0, 3, 4)}));
  // Two overlapping writes: a read after both sees either, later reads agree.
  EXPECT_TRUE(linearizable_register({w(1, 0, 5), w(2, 1, 6), r(1, 7, 8), r(1, 9, 10)}));
  EXPECT_FALSE(
    linearizable_register({w(1, 0, 5), w(2, 1, 6), r(1, 7, 8), r(2, 9, 10), r(1, 11, 12)}));
}

TEST(LinearizabilityTest, AWriteOfUnknownOutcomeMayOrMayNotHaveHappened) {
  EXPECT_TRUE(linearizable_register({w(1, 0), r(0, 5, 6)}));
  EXPECT_TRUE(linearizable_register({w(1, 0), r(1, 5, 6)}));
  EXPECT_TRUE(linearizable_register({w(1, 0), r(0, 5, 6), r(1, 7, 8)}));
  // Once seen it stays: an unknown write takes effect once.
  EXPECT_FALSE(linearizable_register({w(1, 0), r(1, 5, 6), r(0, 7, 8)}));
  // It cannot take effect before it was invoked.
  EXPECT_FALSE(linearizable_register({r(1, 0, 1), w(1, 2)}));
}

TEST(LinearizabilityTest, ALostAcknowledgedWriteIsCaught) {
  // write 2 was acknowledged after write 1 finished; a later read sees 1.
  EXPECT_FALSE(linearizable_register({w(1, 0, 1), w(2, 2, 3), r(1, 4, 5)}));
}

TEST(LinearizabilityTest, ALongRandomSequentialHistoryIsAcceptedAndOneFlipIsNot) {
  std::mt19937_64 rng(7);
  std::vector<op> ops;
  std::int64_t value = 0;
  std::int64_t t = 0;
  for (int i = 0; i < 400; ++i) {
    if (rng() % 2 == 0) {
      value = i + 1;
      ops.push_back(w(value, t, t + 1));
    } else {
      ops.push_back(r(value, t, t + 1));
    }
    t += 2;
  }
  EXPECT_TRUE(linearizable_register(ops));
  for (auto& o : ops) {
    if (!o.write && o.value != 0) {
      o.value = 0; // a read that saw nothing after a write finished
      break;
    }
  }
  EXPECT_FALSE(linearizable_register(ops));
}

} // namespace
} // namespace shoal::test::lin
