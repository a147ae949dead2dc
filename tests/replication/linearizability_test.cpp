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

op rv(std::int64_t v, std::int64_t version, std::int64_t call, std::int64_t ret) {
  op o = r(v, call, ret);
  o.version = version;
  return o;
}
/// A compare-and-set of `v` at version `at`: done (failed = false), refused with
/// "precondition failed" (failed = true), or unknown (ret = unknown).
op cas(std::int64_t v, std::int64_t at, std::int64_t call, std::int64_t ret = unknown,
       bool failed = false) {
  op o = w(v, call, ret);
  o.cas = true;
  o.version = at;
  o.cas_failed = failed;
  return o;
}

TEST(LinearizabilityTest, ReadsSeeVersionsThatCountTheWrites) {
  EXPECT_TRUE(linearizable_register(
    {rv(0, 0, 0, 1), w(1, 2, 3), rv(1, 1, 4, 5), w(2, 6, 7), rv(2, 2, 8, 9)}));
  EXPECT_FALSE(linearizable_register({w(1, 0, 1), rv(1, 2, 2, 3)})) << "a version from nowhere";
}

TEST(LinearizabilityTest, ACompareAndSetSucceedsExactlyAtItsVersion) {
  EXPECT_TRUE(linearizable_register({w(1, 0, 1), cas(2, 1, 2, 3), rv(2, 2, 4, 5)}));
  EXPECT_FALSE(linearizable_register({w(1, 0, 1), cas(2, 0, 2, 3), rv(2, 2, 4, 5)}))
    << "it succeeded at the wrong version";
  EXPECT_TRUE(linearizable_register({w(1, 0, 1), cas(2, 0, 2, 3, true), rv(1, 1, 4, 5)}));
  EXPECT_FALSE(linearizable_register({w(1, 0, 1), cas(2, 1, 2, 3, true)}))
    << "it failed at its own version";
  // Two compare-and-sets at the same version cannot both succeed, in any order.
  EXPECT_FALSE(linearizable_register({w(1, 0, 1), cas(2, 1, 2, 10), cas(3, 1, 3, 11)}));
  // Overlapping, one wins and the other fails: either may be the winner.
  EXPECT_TRUE(linearizable_register(
    {w(1, 0, 1), cas(2, 1, 2, 10), cas(3, 1, 3, 11, true), rv(2, 2, 12, 13)}));
  EXPECT_TRUE(linearizable_register(
    {w(1, 0, 1), cas(2, 1, 2, 10, true), cas(3, 1, 3, 11), rv(3, 2, 12, 13)}));
}

TEST(LinearizabilityTest, ACompareAndSetOfUnknownOutcomeMayHaveDoneEither) {
  EXPECT_TRUE(linearizable_register({w(1, 0, 1), cas(2, 1, 2), rv(2, 2, 5, 6)}));
  EXPECT_TRUE(linearizable_register({w(1, 0, 1), cas(2, 1, 2), rv(1, 1, 5, 6)}));
  // It can only have succeeded at its version: here the version had moved on.
  EXPECT_FALSE(linearizable_register({w(1, 0, 1), w(3, 2, 3), cas(2, 1, 4), rv(2, 3, 5, 6)}));
}

/// A delete: done (204), found nothing (404: missing), or unknown (ret = unknown).
op del(std::int64_t call, std::int64_t ret = unknown, bool missing = false) {
  op o = r(0, call, ret);
  o.del = true;
  o.del_missing = missing;
  return o;
}

TEST(LinearizabilityTest, ADeleteMakesTheRegisterAbsentAndCountsAsAWrite) {
  EXPECT_TRUE(
    linearizable_register({w(1, 0, 1), del(2, 3), r(0, 4, 5), w(2, 6, 7), rv(2, 3, 8, 9)}))
    << "absent after the delete; recreated at version 3 (the tombstone counted)";
  EXPECT_FALSE(linearizable_register({w(1, 0, 1), del(2, 3), r(1, 4, 5)}))
    << "a deleted value read back";
  EXPECT_FALSE(linearizable_register({w(1, 0, 1), del(2, 3, true)}))
    << "a delete found nothing while the document existed";
  EXPECT_TRUE(linearizable_register({del(0, 1, true), w(1, 2, 3), del(4, 5), del(6, 7, true)}));
  EXPECT_FALSE(linearizable_register({del(0, 1)})) << "a delete done on nothing";
  // A compare-and-set with a version from before the delete cannot succeed.
  EXPECT_FALSE(linearizable_register({w(1, 0, 1), del(2, 3), cas(2, 1, 4, 5)}));
  EXPECT_TRUE(linearizable_register({w(1, 0, 1), del(2, 3), cas(2, 1, 4, 5, true), r(0, 6, 7)}));
  // Nor one at the tombstone's version: If-Match needs a document.
  EXPECT_FALSE(linearizable_register({w(1, 0, 1), del(2, 3), cas(2, 2, 4, 5)}));
}

TEST(LinearizabilityTest, ADeleteOfUnknownOutcomeMayOrMayNotHaveHappened) {
  EXPECT_TRUE(linearizable_register({w(1, 0, 1), del(2), r(0, 5, 6)}));
  EXPECT_TRUE(linearizable_register({w(1, 0, 1), del(2), r(1, 5, 6)}));
  EXPECT_FALSE(linearizable_register({w(1, 0, 1), del(2), r(0, 5, 6), r(1, 7, 8)}))
    << "once gone, it does not come back";
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
