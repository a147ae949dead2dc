// SPDX-License-Identifier: Apache-2.0
#include "cluster/ownership.hpp"

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

} // namespace
} // namespace shoal::cluster
