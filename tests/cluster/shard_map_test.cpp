// SPDX-License-Identifier: Apache-2.0
#include "cluster/shard_map.hpp"

#include <vector>

#include <gtest/gtest.h>

namespace shoal::cluster {
namespace {

// Verifies the hash is XXH64 of "space\0id" with seed 0: pinned values guard the
// on-disk contract (a change here would strand every stored document). The values come
// from the xxhsum tool: { printf users; printf '\0'; printf 42; } | xxhsum -H1
TEST(ShardMapTest, HashIsPinned) {
  EXPECT_EQ(key_hash("users", "42"), 0x010c5b941264692eULL);
  EXPECT_EQ(key_hash("", ""), 0xe934a84adb052768ULL);
}

// Verifies shard_of is the pinned hash modulo the shard count.
TEST(ShardMapTest, ShardIsHashModuloCount) {
  shard_map m{64};
  EXPECT_EQ(m.shard_of("users", "42"), key_hash("users", "42") % 64);
  EXPECT_EQ(shard_map{1}.shard_of("users", "42"), 0u);
}

// Verifies the separator keeps ("ab","c") and ("a","bc") apart.
TEST(ShardMapTest, SeparatorDisambiguates) {
  EXPECT_NE(key_hash("ab", "c"), key_hash("a", "bc"));
}

// Verifies keys spread over all shards roughly evenly.
TEST(ShardMapTest, SpreadsKeysOverShards) {
  shard_map m{64};
  std::vector<int> counts(64);
  for (int i = 0; i < 64000; ++i)
    ++counts[m.shard_of("docs", std::to_string(i))];
  for (int c : counts) {
    EXPECT_GT(c, 800);
    EXPECT_LT(c, 1200);
  }
}

} // namespace
} // namespace shoal::cluster
