// SPDX-License-Identifier: Apache-2.0
// The per-shard document read cache (documents/read_cache.hpp): hits and misses, replacing
// a record, refreshing only what is cached, least-recently-used eviction under the byte
// bound, records larger than the bound, and a disabled cache.
#include "documents/read_cache.hpp"

#include <string>

#include <gtest/gtest.h>

namespace shoal::documents {
namespace {

/// The bytes read_cache counts for one entry.
std::size_t cost(const std::string& key, const std::string& record) {
  return key.size() + record.size() + read_cache::entry_overhead;
}

/// The cached record of `key` as a string ("<miss>" when not cached).
std::string lookup(read_cache& cache, const std::string& key) {
  const auto* r = cache.get(key);
  return r ? *r : "<miss>";
}

// Verifies a put record is returned by get, and other keys miss.
TEST(ReadCacheTest, HitAndMiss) {
  read_cache cache(1 << 20);
  EXPECT_TRUE(cache.enabled());
  EXPECT_EQ(cache.get("k1"), nullptr);
  cache.put("k1", "record-1");
  EXPECT_EQ(lookup(cache, "k1"), "record-1");
  EXPECT_EQ(cache.get("k2"), nullptr);
  EXPECT_EQ(cache.get("k"), nullptr);
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_EQ(cache.bytes(), cost("k1", "record-1"));
}

// Verifies keys and records may hold any bytes, NUL included.
TEST(ReadCacheTest, BinaryKeysAndRecords) {
  read_cache cache(1 << 20);
  const std::string key("dusers\0a", 8);
  const std::string other("dusers\0b", 8);
  const std::string record("\x01\0\0\0\0\0\0\0\x01{}", 11);
  cache.put(key, record);
  cache.put(other, "x");
  EXPECT_EQ(lookup(cache, key), record);
  EXPECT_EQ(lookup(cache, other), "x");
}

// Verifies a put over a cached key replaces the record and recounts its bytes.
TEST(ReadCacheTest, PutReplaces) {
  read_cache cache(1 << 20);
  cache.put("k", "old-record");
  cache.put("k", "new");
  EXPECT_EQ(lookup(cache, "k"), "new");
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_EQ(cache.bytes(), cost("k", "new"));
  cache.put("k", std::string(100, 'x'));
  EXPECT_EQ(cache.bytes(), cost("k", std::string(100, 'x')));
}

// Verifies refresh replaces a cached record (and recounts its bytes) but never adds one:
// writes keep what reads cached current without filling the cache themselves.
TEST(ReadCacheTest, RefreshReplacesOnlyCachedRecords) {
  read_cache cache(1 << 20);
  cache.refresh("k", "written");
  EXPECT_EQ(cache.get("k"), nullptr);
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_EQ(cache.bytes(), 0u);
  cache.put("k", "read");
  cache.refresh("k", "rewritten");
  EXPECT_EQ(lookup(cache, "k"), "rewritten");
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_EQ(cache.bytes(), cost("k", "rewritten"));
  // A refresh larger than the bound drops the older record (which would be stale).
  read_cache small(100);
  small.put("k", "read");
  small.refresh("k", std::string(100, 'x'));
  EXPECT_EQ(small.get("k"), nullptr);
  EXPECT_EQ(small.bytes(), 0u);
}

// Verifies erase removes the record and its bytes, and erasing a missing key is a no-op.
TEST(ReadCacheTest, Erase) {
  read_cache cache(1 << 20);
  cache.put("a", "1");
  cache.put("b", "2");
  cache.erase("a");
  cache.erase("missing");
  EXPECT_EQ(cache.get("a"), nullptr);
  EXPECT_EQ(lookup(cache, "b"), "2");
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_EQ(cache.bytes(), cost("b", "2"));
  cache.erase("b");
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_EQ(cache.bytes(), 0u);
}

// Verifies eviction follows least-recent use: a get refreshes a record, so the one not
// touched for longest goes first.
TEST(ReadCacheTest, EvictsLeastRecentlyUsed) {
  const std::size_t one = cost("k1", "rec");
  read_cache cache(3 * one);
  cache.put("k1", "rec");
  cache.put("k2", "rec");
  cache.put("k3", "rec");
  ASSERT_EQ(cache.size(), 3u);
  ASSERT_NE(cache.get("k1"), nullptr); // k2 is now the least recently used
  cache.put("k4", "rec");
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_EQ(cache.get("k2"), nullptr);
  EXPECT_NE(cache.get("k1"), nullptr);
  EXPECT_NE(cache.get("k3"), nullptr);
  EXPECT_NE(cache.get("k4"), nullptr);
  // The gets above used k1, then k3, then k4: k1 is now the least recently used.
  cache.put("k5", "rec"); // evicts k1, the least recently used
  EXPECT_EQ(cache.get("k1"), nullptr);
  EXPECT_NE(cache.get("k3"), nullptr);
  EXPECT_NE(cache.get("k4"), nullptr);
  EXPECT_NE(cache.get("k5"), nullptr);
}

// Verifies a replacing put counts as a use: the replaced record is not evicted next.
TEST(ReadCacheTest, ReplaceRefreshesRecency) {
  const std::size_t one = cost("k1", "rec");
  read_cache cache(2 * one);
  cache.put("k1", "rec");
  cache.put("k2", "rec");
  cache.put("k1", "new"); // k2 is now the least recently used
  cache.put("k3", "rec");
  EXPECT_EQ(cache.get("k2"), nullptr);
  EXPECT_EQ(lookup(cache, "k1"), "new");
  EXPECT_NE(cache.get("k3"), nullptr);
}

// Verifies the byte bound holds after every put, evicting as many records as needed for
// a big one, and the count of bytes matches the records kept.
TEST(ReadCacheTest, StaysWithinBound) {
  const std::size_t bound = 2000;
  read_cache cache(bound);
  for (int i = 0; i < 200; ++i) {
    cache.put("key-" + std::to_string(i), std::string(static_cast<std::size_t>(i * 7 % 300), 'r'));
    EXPECT_LE(cache.bytes(), bound) << "after put " << i;
  }
  const std::string big(bound - read_cache::entry_overhead - 3, 'b');
  cache.put("big", big); // exactly the bound: everything else goes
  EXPECT_EQ(cache.bytes(), bound);
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_EQ(lookup(cache, "big"), big);
}

// Verifies a record larger than the bound is not cached, and drops an older record of
// the same key (which would otherwise be served stale).
TEST(ReadCacheTest, RecordLargerThanBoundIsNotCached) {
  const std::size_t bound = 1000;
  read_cache cache(bound);
  cache.put("other", "o");
  cache.put("k", "old");
  const std::string huge(bound, 'h');
  cache.put("k", huge);
  EXPECT_EQ(cache.get("k"), nullptr);
  EXPECT_EQ(lookup(cache, "other"), "o") << "a record that is not cached evicts nothing";
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_EQ(cache.bytes(), cost("other", "o"));
  // One byte over the bound with the overhead counted is refused too.
  cache.put("k", std::string(bound - read_cache::entry_overhead, 'h'));
  EXPECT_EQ(cache.get("k"), nullptr);
  cache.put("k", std::string(bound - read_cache::entry_overhead - 1, 'h'));
  EXPECT_NE(cache.get("k"), nullptr);
}

// Verifies a cache built with 0 bytes caches nothing.
TEST(ReadCacheTest, DisabledWithZero) {
  read_cache cache(0);
  EXPECT_FALSE(cache.enabled());
  cache.put("k", "r");
  EXPECT_EQ(cache.get("k"), nullptr);
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_EQ(cache.bytes(), 0u);
  cache.erase("k");
}

// Verifies a record returned by get stays valid and unchanged while other keys are read
// (the documents module holds the pointer while it answers).
TEST(ReadCacheTest, GetPointerStableAcrossOtherGets) {
  read_cache cache(1 << 20);
  cache.put("a", "ra");
  cache.put("b", "rb");
  const std::string* a = cache.get("a");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(cache.get("b"), nullptr);
  EXPECT_EQ(*a, "ra");
  EXPECT_EQ(cache.get("a"), a);
}

} // namespace
} // namespace shoal::documents
