// SPDX-License-Identifier: Apache-2.0
#include "cluster/replicas.hpp"

#include <gtest/gtest.h>

namespace shoal::cluster {
namespace {

const std::vector<std::string> voters{"n1", "n2", "n3"};

replica_report report(std::uint32_t shard, std::string node, replica_role role, std::uint64_t term,
                      std::uint64_t commit) {
  replica_report r;
  r.shard = shard;
  r.node = node;
  r.role = role;
  r.leader = role == replica_role::leader ? node : std::string{};
  r.term = term;
  r.commit_index = commit;
  r.applied_index = commit;
  r.last_index = commit;
  r.voters = voters;
  return r;
}

TEST(ReplicaMergeTest, TheLeaderReportNamesLeaderCommitAndFollowerLag) {
  auto l = report(0, "n2", replica_role::leader, 4, 100);
  l.last_index = 103;
  l.applied_index = 99;
  l.match = {97, 103, 0};
  std::vector<replica_report> in{report(0, "n1", replica_role::follower, 4, 97), l};
  auto merged = merge_reports(1, in);
  ASSERT_EQ(merged.size(), 1u);
  const auto& s = merged[0];
  EXPECT_EQ(s.leader, "n2");
  EXPECT_EQ(s.term, 4u);
  EXPECT_EQ(s.commit_index, 100u);
  EXPECT_EQ(s.applied_index, 99u);
  EXPECT_EQ(s.voters, voters);
  ASSERT_EQ(s.followers.size(), 2u);
  EXPECT_EQ(s.followers[0].node, "n1");
  EXPECT_EQ(s.followers[0].entries, 6u);
  EXPECT_EQ(s.followers[1].node, "n3");
  EXPECT_EQ(s.followers[1].entries, 103u);
}

TEST(ReplicaMergeTest, ADeposedLeaderStillReportingLosesToTheLeaderOfAHigherTerm) {
  std::vector<replica_report> in{report(0, "n3", replica_role::leader, 7, 50),
                                 report(0, "n1", replica_role::leader, 5, 40)};
  EXPECT_EQ(merge_reports(1, in)[0].leader, "n3");
  std::swap(in[0], in[1]);
  EXPECT_EQ(merge_reports(1, in)[0].leader, "n3");
  EXPECT_EQ(merge_reports(1, in)[0].commit_index, 50u);
}

TEST(ReplicaMergeTest, WithoutALeaderReportTheShardHasNoLeaderButKeepsTheHighestTerm) {
  std::vector<replica_report> in{report(1, "n1", replica_role::candidate, 9, 12),
                                 report(1, "n2", replica_role::follower, 8, 14)};
  auto merged = merge_reports(2, in);
  ASSERT_EQ(merged.size(), 2u);
  EXPECT_EQ(merged[1].leader, "");
  EXPECT_EQ(merged[1].term, 9u);
  EXPECT_EQ(merged[1].commit_index, 14u);
  EXPECT_EQ(merged[1].voters, voters);
  EXPECT_TRUE(merged[1].followers.empty());
  // A shard nobody reported on stays empty.
  EXPECT_EQ(merged[0].term, 0u);
  EXPECT_TRUE(merged[0].voters.empty());
}

TEST(ReplicaMergeTest, ReportsOfShardsOutOfRangeAreIgnored) {
  std::vector<replica_report> in{report(5, "n1", replica_role::leader, 1, 1)};
  auto merged = merge_reports(2, in);
  EXPECT_EQ(merged[0].leader, "");
  EXPECT_EQ(merged[1].leader, "");
}

TEST(ReplicaBoardTest, KeepsTheLatestReportPerShard) {
  replica_board board{3};
  EXPECT_EQ(board.read(1), nullptr);
  EXPECT_TRUE(board.all().empty());
  board.publish(report(1, "n1", replica_role::follower, 2, 5));
  board.publish(report(1, "n1", replica_role::leader, 3, 6));
  board.publish(report(7, "n1", replica_role::leader, 3, 6)); // out of range
  ASSERT_NE(board.read(1), nullptr);
  EXPECT_EQ(board.read(1)->term, 3u);
  EXPECT_EQ(board.read(7), nullptr);
  auto all = board.all();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0], report(1, "n1", replica_role::leader, 3, 6));
}

} // namespace
} // namespace shoal::cluster
