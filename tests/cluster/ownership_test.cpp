// SPDX-License-Identifier: Apache-2.0
#include "cluster/ownership.hpp"

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "cluster/shard_map.hpp"

namespace shoal::cluster {
namespace {

const std::vector<std::string> three{"n1", "n2", "n3"};

// Verifies the rendezvous weights are XXH64(node ++ "\0" ++ shard). Pinned with xxhsum:
// { printf n2; printf '\0'; printf 0; } | xxhsum -H1 → bf81b109539f89da, the largest of
// the three weights of shard 0; n1 wins shard 1 (8bf4…), n3 shard 2 (b6da…).
TEST(OwnershipTest, OwnersArePinned) {
  EXPECT_EQ(key_hash("n2", "0"), 0xbf81b109539f89daULL);
  ownership own{three, 64};
  EXPECT_EQ(own.owner(0), "n2");
  EXPECT_EQ(own.owner(1), "n1");
  EXPECT_EQ(own.owner(2), "n3");
}

// Verifies the map depends on the set of ids only, not on their order in the config.
TEST(OwnershipTest, IndependentOfListOrder) {
  ownership a{three, 256};
  ownership b{{"n3", "n1", "n2"}, 256};
  for (std::uint32_t s = 0; s < 256; ++s)
    EXPECT_EQ(a.owner(s), b.owner(s)) << "shard " << s;
}

// Verifies every shard has exactly one owner and shards_of partitions them.
TEST(OwnershipTest, ShardsOfPartitionsTheShards) {
  ownership own{three, 64};
  std::vector<int> seen(64, 0);
  for (const auto& n : three)
    for (auto s : own.shards_of(n)) {
      ++seen[s];
      EXPECT_EQ(own.owner(s), n);
    }
  for (int c : seen)
    EXPECT_EQ(c, 1);
  EXPECT_TRUE(own.shards_of("n9").empty());
}

// Verifies a lone node owns everything.
TEST(OwnershipTest, SingleNodeOwnsAll) {
  ownership own{{"local"}, 16};
  EXPECT_EQ(own.shards_of("local").size(), 16u);
}

// Verifies shards spread roughly evenly over nodes.
TEST(OwnershipTest, SpreadsShards) {
  ownership own{{"a", "b", "c", "d"}, 4096};
  for (const auto& n : own.nodes()) {
    auto count = own.shards_of(n).size();
    EXPECT_GT(count, 900u) << n;
    EXPECT_LT(count, 1150u) << n;
  }
}

// Verifies the rendezvous property: adding a node moves only shards to the new node,
// never between the old ones.
TEST(OwnershipTest, AddingANodeOnlyMovesShardsToIt) {
  ownership before{three, 1024};
  ownership after{{"n1", "n2", "n3", "n4"}, 1024};
  int moved = 0;
  for (std::uint32_t s = 0; s < 1024; ++s) {
    if (before.owner(s) == after.owner(s)) continue;
    EXPECT_EQ(after.owner(s), "n4") << "shard " << s;
    ++moved;
  }
  EXPECT_GT(moved, 150); // about a quarter
  EXPECT_LT(moved, 370);
}

/// The ids of `own.replicas_of(shard, count)`.
std::vector<std::string> replica_ids(const ownership& own, std::uint32_t shard,
                                     std::uint32_t count) {
  std::vector<std::string> out;
  for (auto n : own.replicas_of(shard, count))
    out.push_back(own.nodes()[n]);
  return out;
}

// Verifies a shard's replicas are distinct nodes in weight order, the owner first, all
// nodes when more are asked for, and the same whatever the order of the member list.
TEST(OwnershipTest, ReplicasAreTheHighestWeightsOwnerFirst) {
  ownership own{{"a", "b", "c", "d", "e"}, 256};
  ownership shuffled{{"d", "b", "e", "a", "c"}, 256};
  for (std::uint32_t s = 0; s < 256; ++s) {
    auto three_of = replica_ids(own, s, 3);
    ASSERT_EQ(three_of.size(), 3u);
    EXPECT_EQ(three_of[0], own.owner(s)) << "shard " << s;
    EXPECT_NE(three_of[0], three_of[1]);
    EXPECT_NE(three_of[1], three_of[2]);
    EXPECT_NE(three_of[0], three_of[2]);
    const auto shard_text = std::to_string(s);
    EXPECT_GE(key_hash(three_of[0], shard_text), key_hash(three_of[1], shard_text));
    EXPECT_GE(key_hash(three_of[1], shard_text), key_hash(three_of[2], shard_text));
    EXPECT_EQ(replica_ids(shuffled, s, 3), three_of) << "shard " << s;
    EXPECT_EQ(replica_ids(own, s, 9).size(), 5u);
  }
}

// Verifies replica_shards_of lists exactly the shards whose replicas include the node:
// shards_of for one copy, every shard with as many copies as nodes.
TEST(OwnershipTest, ReplicaShardsOfListsTheShardsANodeHoldsACopyOf) {
  ownership own{{"a", "b", "c", "d"}, 128};
  EXPECT_EQ(own.replica_shards_of("b", 1), own.shards_of("b"));
  EXPECT_EQ(own.replica_shards_of("b", 4).size(), 128u);
  std::vector<int> copies(128, 0);
  for (const auto& n : own.nodes())
    for (auto s : own.replica_shards_of(n, 3)) {
      ++copies[s];
      const auto ids = replica_ids(own, s, 3);
      EXPECT_NE(std::find(ids.begin(), ids.end(), n), ids.end()) << n << " shard " << s;
    }
  for (int c : copies)
    EXPECT_EQ(c, 3);
  EXPECT_TRUE(own.replica_shards_of("z", 3).empty());
}

// Verifies adding a node changes a shard's three replicas at most by the new node taking
// the place of one of them (the others stay, in their order), for about 3 in 5 shards
// going from 4 nodes to 5.
TEST(OwnershipTest, AddingANodeReplacesAtMostOneReplicaWithIt) {
  ownership before{{"n1", "n2", "n3", "n4"}, 1024};
  ownership after{{"n1", "n2", "n3", "n4", "n5"}, 1024};
  int changed = 0;
  for (std::uint32_t s = 0; s < 1024; ++s) {
    auto old_set = replica_ids(before, s, 3);
    auto new_set = replica_ids(after, s, 3);
    if (old_set == new_set) continue;
    ++changed;
    std::vector<std::string> kept;
    for (const auto& n : new_set)
      if (n != "n5") kept.push_back(n);
    ASSERT_EQ(kept.size(), 2u) << "shard " << s << ": more than the new node came in";
    old_set.pop_back();
    EXPECT_EQ(kept, old_set) << "shard " << s;
  }
  EXPECT_GT(changed, 500); // 3 of 5 in expectation: 614
  EXPECT_LT(changed, 730);
}

} // namespace
} // namespace shoal::cluster
