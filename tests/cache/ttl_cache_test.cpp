// SPDX-License-Identifier: Apache-2.0
// The TTL cache of one shard (cache/ttl_cache.hpp), with time passed in: get, put,
// replace, erase, the expiry boundary, least-recently-used eviction, byte accounting,
// too_large, expire() and next_expiry().
#include "cache/ttl_cache.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace shoal::cache {
namespace {

constexpr std::size_t overhead = ttl_cache::entry_overhead;

/// The bytes an entry of these sizes counts for.
constexpr std::size_t cost(std::size_t key, std::size_t value, std::size_t content_type) {
  return key + value + content_type + overhead;
}

/// The value of `key` at `now`, or "<none>".
std::string value_of(ttl_cache& c, std::string_view key, std::uint64_t now) {
  const auto* e = c.get(key, now);
  return e ? e->value : std::string("<none>");
}

// Verifies a put is read back by get with its value, content type and expiry.
TEST(TtlCacheTest, PutThenGetReturnsTheEntry) {
  ttl_cache c(1 << 20);
  EXPECT_EQ(c.put("k", "hello", "text/plain", 1000), ttl_cache::put_result::stored);
  const auto* e = c.get("k", 10);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->value, "hello");
  EXPECT_EQ(e->content_type, "text/plain");
  EXPECT_EQ(e->expires_at_ms, 1000u);
  EXPECT_EQ(c.size(), 1u);
}

// Verifies a key that was never stored is absent and the cache stays empty.
TEST(TtlCacheTest, GetOfAnUnknownKeyIsNull) {
  ttl_cache c(1 << 20);
  EXPECT_EQ(c.get("nope", 0), nullptr);
  c.put("k", "v", "", 100);
  EXPECT_EQ(c.get("K", 0), nullptr); // keys are case-sensitive
  EXPECT_EQ(c.size(), 1u);
}

// Verifies binary values (NUL bytes, high bytes) and an empty value are kept as is.
TEST(TtlCacheTest, BinaryAndEmptyValuesAreKept) {
  ttl_cache c(1 << 20);
  std::string binary("\0\x01\xff\xfe\0z", 6);
  c.put("bin", binary, "application/octet-stream", 100);
  c.put("empty", "", "text/plain", 100);
  ASSERT_NE(c.get("bin", 0), nullptr);
  EXPECT_EQ(c.get("bin", 0)->value, binary);
  ASSERT_NE(c.get("empty", 0), nullptr);
  EXPECT_EQ(c.get("empty", 0)->value, "");
  EXPECT_EQ(c.get("empty", 0)->content_type, "text/plain");
}

// Verifies a second put replaces value, content type and expiry and keeps one entry.
TEST(TtlCacheTest, PutReplacesEverything) {
  ttl_cache c(1 << 20);
  c.put("k", "old", "text/plain", 100);
  c.put("k", "new", "application/x-new", 5000);
  EXPECT_EQ(c.size(), 1u);
  const auto* e = c.get("k", 200); // the old expiry (100) no longer applies
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->value, "new");
  EXPECT_EQ(e->content_type, "application/x-new");
  EXPECT_EQ(e->expires_at_ms, 5000u);
  EXPECT_EQ(c.next_expiry(), 5000u);
}

// Verifies a replace with a sooner expiry moves the entry in the expiry index.
TEST(TtlCacheTest, ReplaceWithASoonerExpiryIsExpiredThen) {
  ttl_cache c(1 << 20);
  c.put("k", "v", "", 5000);
  c.put("k", "v2", "", 100);
  EXPECT_EQ(c.next_expiry(), 100u);
  EXPECT_EQ(c.expire(100, 10), 1u);
  EXPECT_EQ(c.size(), 0u);
  EXPECT_EQ(c.next_expiry(), 0u);
}

// Verifies erase removes a live entry (true), and is false for absent or expired keys;
// an expired entry is still removed by it.
TEST(TtlCacheTest, EraseTellsWhetherALiveEntryWasRemoved) {
  ttl_cache c(1 << 20);
  c.put("live", "v", "", 100);
  c.put("dead", "v", "", 50);
  EXPECT_TRUE(c.erase("live", 10));
  EXPECT_EQ(c.get("live", 10), nullptr);
  EXPECT_FALSE(c.erase("live", 10));
  EXPECT_FALSE(c.erase("never", 10));
  EXPECT_FALSE(c.erase("dead", 50)); // expires_at == now: already expired
  EXPECT_EQ(c.size(), 0u);
  EXPECT_EQ(c.bytes(), 0u);
  EXPECT_EQ(c.next_expiry(), 0u);
}

// Verifies the expiry boundary: live while now < expires_at, gone at expires_at.
TEST(TtlCacheTest, EntryExpiresExactlyAtItsExpiry) {
  ttl_cache c(1 << 20);
  c.put("k", "v", "", 1000);
  EXPECT_NE(c.get("k", 999), nullptr);
  EXPECT_EQ(c.get("k", 1000), nullptr);
  // The expired entry was removed by the get: its bytes are freed at once.
  EXPECT_EQ(c.size(), 0u);
  EXPECT_EQ(c.bytes(), 0u);
  EXPECT_EQ(c.get("k", 0), nullptr); // not resurrected for an earlier clock either
}

// Verifies a put evicts the least recently used entries until the total fits, oldest
// first, and counts each eviction.
TEST(TtlCacheTest, EvictsLeastRecentlyUsedFirst) {
  const std::size_t each = cost(2, 100, 0);
  ttl_cache c(3 * each);
  std::string v(100, 'x');
  c.put("k1", v, "", 1000);
  c.put("k2", v, "", 1000);
  c.put("k3", v, "", 1000);
  EXPECT_EQ(c.bytes(), 3 * each);
  EXPECT_EQ(c.evictions(), 0u);
  c.put("k4", v, "", 1000);
  EXPECT_EQ(c.evictions(), 1u);
  EXPECT_EQ(c.get("k1", 0), nullptr);
  EXPECT_NE(c.get("k2", 0), nullptr);
  EXPECT_NE(c.get("k3", 0), nullptr);
  EXPECT_NE(c.get("k4", 0), nullptr);
  EXPECT_EQ(c.bytes(), 3 * each);
}

// Verifies a get makes an entry the most recently used, so it outlives entries put after it.
TEST(TtlCacheTest, GetRefreshesRecency) {
  const std::size_t each = cost(2, 100, 0);
  ttl_cache c(3 * each);
  std::string v(100, 'x');
  c.put("k1", v, "", 1000);
  c.put("k2", v, "", 1000);
  c.put("k3", v, "", 1000);
  ASSERT_NE(c.get("k1", 0), nullptr); // order now k2, k3, k1 (oldest first)
  c.put("k4", v, "", 1000);
  EXPECT_EQ(c.get("k2", 0), nullptr);
  c.put("k5", v, "", 1000);
  EXPECT_EQ(c.get("k3", 0), nullptr);
  EXPECT_NE(c.get("k1", 0), nullptr);
  EXPECT_NE(c.get("k4", 0), nullptr);
  EXPECT_NE(c.get("k5", 0), nullptr);
  EXPECT_EQ(c.evictions(), 2u);
}

// Verifies a replace makes the entry the most recently used.
TEST(TtlCacheTest, ReplaceRefreshesRecency) {
  const std::size_t each = cost(2, 100, 0);
  ttl_cache c(3 * each);
  std::string v(100, 'x');
  c.put("k1", v, "", 1000);
  c.put("k2", v, "", 1000);
  c.put("k3", v, "", 1000);
  c.put("k1", std::string(100, 'y'), "", 1000);
  c.put("k4", v, "", 1000);
  EXPECT_EQ(c.get("k2", 0), nullptr);
  ASSERT_NE(c.get("k1", 0), nullptr);
  EXPECT_EQ(c.get("k1", 0)->value, std::string(100, 'y'));
}

// Verifies one large put evicts as many entries as needed, not just one.
TEST(TtlCacheTest, LargePutEvictsSeveralEntries) {
  const std::size_t small = cost(2, 10, 0);
  ttl_cache c(10 * small);
  for (int i = 0; i < 10; ++i)
    c.put("s" + std::to_string(i), std::string(10, 's'), "", 1000);
  EXPECT_EQ(c.size(), 10u);
  // Needs the room of 4 small entries (plus a little): 5 of the oldest go.
  std::string big(4 * small - overhead - 2 + 1, 'b');
  EXPECT_EQ(c.put("bg", big, "", 1000), ttl_cache::put_result::stored);
  EXPECT_EQ(c.evictions(), 5u);
  EXPECT_EQ(c.size(), 6u);
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(c.get("s" + std::to_string(i), 0), nullptr) << i;
  for (int i = 5; i < 10; ++i)
    EXPECT_NE(c.get("s" + std::to_string(i), 0), nullptr) << i;
  EXPECT_LE(c.bytes(), c.max_bytes());
}

// Verifies bytes() counts key + value + content type + the per-entry overhead, through
// puts, a replace with a smaller and a larger value, a get of an expired entry, erase
// and expire.
TEST(TtlCacheTest, BytesAccounting) {
  ttl_cache c(1 << 20);
  EXPECT_EQ(c.bytes(), 0u);
  c.put("abc", std::string(10, 'v'), "text/plain", 100);
  EXPECT_EQ(c.bytes(), cost(3, 10, 10));
  c.put("de", std::string(20, 'v'), "", 200);
  EXPECT_EQ(c.bytes(), cost(3, 10, 10) + cost(2, 20, 0));
  c.put("abc", std::string(4, 'v'), "a/b", 100); // smaller
  EXPECT_EQ(c.bytes(), cost(3, 4, 3) + cost(2, 20, 0));
  c.put("abc", std::string(1000, 'v'), "application/json", 100); // larger
  EXPECT_EQ(c.bytes(), cost(3, 1000, 16) + cost(2, 20, 0));
  EXPECT_EQ(c.get("abc", 100), nullptr); // expired: removed
  EXPECT_EQ(c.bytes(), cost(2, 20, 0));
  c.put("f", "", "", 300);
  EXPECT_EQ(c.bytes(), cost(2, 20, 0) + cost(1, 0, 0));
  EXPECT_TRUE(c.erase("de", 0));
  EXPECT_EQ(c.bytes(), cost(1, 0, 0));
  EXPECT_EQ(c.expire(300, 10), 1u);
  EXPECT_EQ(c.bytes(), 0u);
  EXPECT_EQ(c.size(), 0u);
}

// Verifies an entry that exactly fills the bound is stored, one byte more is too_large,
// and the byte counts include the overhead.
TEST(TtlCacheTest, EntryOfExactlyMaxBytesFits) {
  const std::size_t max = cost(1, 100, 0);
  ttl_cache c(max);
  EXPECT_EQ(c.put("k", std::string(100, 'x'), "", 10), ttl_cache::put_result::stored);
  EXPECT_EQ(c.bytes(), max);
  EXPECT_EQ(c.put("j", std::string(101, 'x'), "", 10), ttl_cache::put_result::too_large);
  // Refused without evicting anything.
  EXPECT_NE(c.get("k", 0), nullptr);
  EXPECT_EQ(c.evictions(), 0u);
  // The content type counts too.
  EXPECT_EQ(c.put("j", std::string(100, 'x'), "t", 10), ttl_cache::put_result::too_large);
  EXPECT_EQ(c.size(), 1u);
}

// Verifies a too_large put of an existing key removes its old value (a stale value must
// not survive a refused write) and counts no eviction.
TEST(TtlCacheTest, TooLargeRemovesTheOldEntry) {
  const std::size_t max = 1000;
  ttl_cache c(max);
  c.put("k", "old", "text/plain", 100);
  c.put("other", "v", "", 100);
  EXPECT_EQ(c.put("k", std::string(max, 'x'), "", 100), ttl_cache::put_result::too_large);
  EXPECT_EQ(c.get("k", 0), nullptr);
  EXPECT_NE(c.get("other", 0), nullptr);
  EXPECT_EQ(c.size(), 1u);
  EXPECT_EQ(c.bytes(), cost(5, 1, 0));
  EXPECT_EQ(c.evictions(), 0u);
  EXPECT_EQ(c.next_expiry(), 100u);
}

// Verifies a cache of zero bytes stores nothing.
TEST(TtlCacheTest, ZeroBoundStoresNothing) {
  ttl_cache c(0);
  EXPECT_EQ(c.put("k", "", "", 10), ttl_cache::put_result::too_large);
  EXPECT_EQ(c.size(), 0u);
  EXPECT_EQ(c.max_bytes(), 0u);
}

// Verifies expire() removes only expired entries (expires_at <= now), soonest first, at
// most max_entries per call.
TEST(TtlCacheTest, ExpireIsBoundedAndSoonestFirst) {
  ttl_cache c(1 << 20);
  // Put in an order unlike the expiry order.
  c.put("e30", "v", "", 30);
  c.put("e10", "v", "", 10);
  c.put("e50", "v", "", 50);
  c.put("e20", "v", "", 20);
  c.put("e40", "v", "", 40);
  EXPECT_EQ(c.next_expiry(), 10u);
  EXPECT_EQ(c.expire(9, 100), 0u);
  EXPECT_EQ(c.size(), 5u);
  EXPECT_EQ(c.expire(40, 2), 2u); // e10 and e20, not e30/e40 yet
  EXPECT_EQ(c.size(), 3u);
  EXPECT_EQ(c.next_expiry(), 30u);
  EXPECT_FALSE(c.erase("e10", 0));
  EXPECT_FALSE(c.erase("e20", 0));
  EXPECT_EQ(c.expire(40, 100), 2u); // e30 and e40 (40 == now counts)
  EXPECT_EQ(c.size(), 1u);
  EXPECT_EQ(c.next_expiry(), 50u);
  EXPECT_EQ(value_of(c, "e50", 49), "v");
  EXPECT_EQ(c.expire(1000, 0), 0u); // a zero budget removes nothing
  EXPECT_EQ(c.size(), 1u);
  EXPECT_EQ(c.expire(1000, 1), 1u);
  EXPECT_EQ(c.size(), 0u);
  EXPECT_EQ(c.next_expiry(), 0u);
  EXPECT_EQ(c.evictions(), 0u); // expiries are not evictions
}

// Verifies entries sharing an expiry are all removed by expire().
TEST(TtlCacheTest, ExpireHandlesEqualExpiries) {
  ttl_cache c(1 << 20);
  for (int i = 0; i < 5; ++i)
    c.put("k" + std::to_string(i), "v", "", 100);
  EXPECT_EQ(c.expire(100, 3), 3u);
  EXPECT_EQ(c.size(), 2u);
  EXPECT_EQ(c.next_expiry(), 100u);
  EXPECT_EQ(c.expire(100, 3), 2u);
  EXPECT_EQ(c.size(), 0u);
}

// Verifies next_expiry follows erases and evictions, not only expiries.
TEST(TtlCacheTest, NextExpiryFollowsEraseAndEviction) {
  const std::size_t each = cost(2, 10, 0);
  ttl_cache c(2 * each);
  EXPECT_EQ(c.next_expiry(), 0u);
  c.put("k1", std::string(10, 'x'), "", 10);
  c.put("k2", std::string(10, 'x'), "", 20);
  EXPECT_EQ(c.next_expiry(), 10u);
  c.put("k3", std::string(10, 'x'), "", 30); // evicts k1
  EXPECT_EQ(c.next_expiry(), 20u);
  EXPECT_TRUE(c.erase("k2", 0));
  EXPECT_EQ(c.next_expiry(), 30u);
}

// Verifies the evictions counter counts only removals to make room: not erases,
// expiries, gets of expired entries or replaces.
TEST(TtlCacheTest, EvictionsCountOnlyRoomMaking) {
  const std::size_t each = cost(2, 10, 0);
  ttl_cache c(2 * each);
  std::string v(10, 'x');
  c.put("k1", v, "", 10);
  c.put("k2", v, "", 100);
  c.put("k2", v, "", 100); // replace: no room needed
  EXPECT_EQ(c.get("k1", 10), nullptr);
  EXPECT_TRUE(c.erase("k2", 0));
  c.put("k3", v, "", 10);
  EXPECT_EQ(c.expire(10, 10), 1u);
  EXPECT_EQ(c.evictions(), 0u);
  c.put("k4", v, "", 100);
  c.put("k5", v, "", 100);
  c.put("k6", v, "", 100);
  c.put("k7", v, "", 100);
  EXPECT_EQ(c.evictions(), 2u);
  EXPECT_EQ(c.size(), 2u);
}

// Verifies a replace with a larger value evicts others (never itself) to fit.
TEST(TtlCacheTest, GrowingReplaceEvictsOthers) {
  const std::size_t each = cost(2, 10, 0);
  ttl_cache c(3 * each);
  std::string v(10, 'x');
  c.put("k1", v, "", 100);
  c.put("k2", v, "", 100);
  c.put("k3", v, "", 100);
  c.put("k3", std::string(10 + each, 'y'), "", 100); // needs the room of one more
  EXPECT_EQ(c.evictions(), 1u);
  EXPECT_EQ(c.get("k1", 0), nullptr);
  EXPECT_NE(c.get("k2", 0), nullptr);
  ASSERT_NE(c.get("k3", 0), nullptr);
  EXPECT_EQ(c.get("k3", 0)->value.size(), 10 + each);
  EXPECT_EQ(c.bytes(), 3 * each);
}

// Verifies many keys: the bound always holds and the newest entries are the ones kept.
TEST(TtlCacheTest, ManyPutsStayWithinTheBound) {
  const std::size_t max = 64 * 1024;
  ttl_cache c(max);
  std::vector<std::string> keys;
  for (int i = 0; i < 2000; ++i) {
    auto key = "key-" + std::to_string(i);
    c.put(key, std::string(static_cast<std::size_t>(i % 300), 'v'), "text/plain", 1'000'000);
    ASSERT_LE(c.bytes(), max) << i;
    keys.push_back(key);
  }
  EXPECT_GT(c.evictions(), 0u);
  EXPECT_EQ(c.evictions() + c.size(), keys.size());
  EXPECT_NE(c.get(keys.back(), 0), nullptr);
  EXPECT_EQ(c.get(keys.front(), 0), nullptr);
  // The survivors are a suffix of the puts.
  bool seen_live = false;
  for (const auto& k : keys) {
    bool live = c.get(k, 0) != nullptr;
    if (seen_live) {
      EXPECT_TRUE(live) << k;
    }
    seen_live = seen_live || live;
  }
}

// Verifies keys passed as views into temporary buffers are copied (the cache owns them).
TEST(TtlCacheTest, KeysAreCopied) {
  ttl_cache c(1 << 20);
  {
    std::string key = "temporary-key";
    c.put(key, "v", "", 100);
    key.assign("overwritten!!");
  }
  EXPECT_NE(c.get("temporary-key", 0), nullptr);
  EXPECT_EQ(c.get("overwritten!!", 0), nullptr);
}

} // namespace
} // namespace shoal::cache
