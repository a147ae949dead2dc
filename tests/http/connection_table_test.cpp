// SPDX-License-Identifier: Apache-2.0
// The server's connection table alone: admission against the limits, which idle member
// gives way, and the per-client counts. (Its use by real sessions is in server_test.cpp.)
#include "http/connection_table.hpp"

#include <memory>

#include <gtest/gtest.h>

namespace shoal::http {
namespace {

using verdict = connection_table::verdict;

// Members need no session here: the table only hands the weak pointer back.
std::shared_ptr<session> fake(int i) {
  return std::shared_ptr<session>(reinterpret_cast<session*>(static_cast<std::uintptr_t>(i + 1)),
                                  [](session*) {});
}

// Verifies that at the limit the member idle longest gives way (a new member is idle
// from the start; one that went busy and idle again goes to the back), and that with
// none idle the newcomer is refused.
TEST(ConnectionTableTest, TheLongestIdleGivesWayAndNoneIdleRefuses) {
  connection_table t{2, 0};
  auto s1 = fake(1), s2 = fake(2), s3 = fake(3), s4 = fake(4);
  auto a1 = t.admit(s1, "a", 0);
  auto a2 = t.admit(s2, "a", 1);
  ASSERT_EQ(a1.outcome, verdict::admitted);
  ASSERT_EQ(a2.outcome, verdict::admitted);
  EXPECT_TRUE(a1.evicted.expired());
  t.busy(a1.at);
  t.idle(a1.at); // s1 served a request: now idle after s2
  auto a3 = t.admit(s3, "b", 2);
  ASSERT_EQ(a3.outcome, verdict::admitted);
  EXPECT_EQ(a3.evicted.lock(), s2);
  EXPECT_EQ(t.idle_count(), 2u); // s1 and s3; s2 closes
  t.leave(a2.at);
  t.busy(a1.at);
  t.busy(a3.at);
  auto a4 = t.admit(s4, "c", 2);
  EXPECT_EQ(a4.outcome, verdict::full);
  EXPECT_EQ(t.size(), 2u);
}

// Verifies the per-client limit counts open members of one address, frees a place on
// leave, and does not apply with 0.
TEST(ConnectionTableTest, ThePerClientLimitCountsOpenMembers) {
  connection_table t{100, 2};
  auto s = fake(1);
  auto a = t.admit(s, "10.0.0.1", 0);
  auto b = t.admit(s, "10.0.0.1", 1);
  EXPECT_EQ(t.admit(s, "10.0.0.1", 2).outcome, verdict::client_full);
  EXPECT_EQ(t.admit(s, "10.0.0.2", 2).outcome, verdict::admitted);
  t.leave(a.at);
  EXPECT_EQ(t.admit(s, "10.0.0.1", 2).outcome, verdict::admitted);
  (void)b;
  connection_table unlimited{100, 0};
  for (int i = 0; i < 50; ++i)
    EXPECT_EQ(unlimited.admit(s, "10.0.0.1", i).outcome, verdict::admitted);
}

// Verifies members() lists idle and busy members alike, for a drain to tell.
TEST(ConnectionTableTest, MembersListsEveryone) {
  connection_table t{10, 0};
  auto s1 = fake(1), s2 = fake(2);
  auto a1 = t.admit(s1, "a", 0);
  t.admit(s2, "a", 1);
  t.busy(a1.at);
  EXPECT_EQ(t.members().size(), 2u);
  EXPECT_EQ(t.idle_count(), 1u);
}

} // namespace
} // namespace shoal::http
