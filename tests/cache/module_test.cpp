// SPDX-License-Identifier: Apache-2.0
// The TTL cache module of one shard (cache/module.hpp) on a manual loop
// (tests/support/manual_shard.hpp): put, get and delete with the content type, expiry on
// the manual clock (a get never returns an expired entry; the module's 1 s timer removes
// the ones nobody asks for), too_large named value_too_large, least-recently-used
// eviction, and the metrics (hits, misses, evictions, bytes, entries) they move. No
// sleeping: time moves only when a test advances it.
#include "cache/module.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <limits>
#include <optional>
#include <string>
#include <utility>

#include <gtest/gtest.h>

#include "cache/metrics.hpp"
#include "storage/memory_store.hpp"
#include "tests/support/manual_shard.hpp"

namespace shoal::testing {
namespace {

using std::chrono::milliseconds;

/// TTL cache requests.
cache::cache_put cache_put(std::string key, std::string value, std::uint64_t ttl_ms,
                           std::string type = "text/plain") {
  return cache::cache_put{std::move(key), std::move(value), std::move(type), ttl_ms};
}

cache::cache_get cache_get(std::string key) {
  return cache::cache_get{std::move(key)};
}

cache::cache_delete cache_del(std::string key) {
  return cache::cache_delete{std::move(key)};
}

/// A shard with a cache module whose metrics are this fixture's.
class CacheModuleTest : public ::testing::Test {
protected:
  /// Starts the module with `max_bytes` as its share of cache.max_bytes.
  void start(std::size_t max_bytes = 1u << 20) {
    cache.emplace(shard.ctx(), cache::module::config{max_bytes, &metrics});
  }

  /// Stops as the host does: the shard's timers are dropped, then the module goes.
  void stop() {
    shard.ctx().close();
    cache.reset();
  }

  ~CacheModuleTest() override {
    stop();
  }

  /// Sends `req` and returns its answer, which must have arrived at once.
  template <class R>
  core::result<typename R::reply> call(R req) {
    auto c = shard.serve(*cache, std::move(req));
    EXPECT_EQ(c->deliveries, 1) << "no single answer arrived";
    if (!c->ready()) return core::error{core::errc::internal, "no answer"};
    return *c->last;
  }

  /// The error code a request is answered with (a test failure when it succeeds).
  template <class R>
  core::errc error_of(R req) {
    auto r = call(std::move(req));
    EXPECT_FALSE(r.ok()) << "expected an error";
    return r ? core::errc::internal : r.error().code();
  }

  storage::memory_store store{1};
  manual_shard shard{store};
  cache::metrics metrics;
  std::optional<cache::module> cache;
};

// Verifies put/get/del with the content type, and that the gauges follow the entries and
// return to 0 after the delete.
TEST_F(CacheModuleTest, TtlCachePutGetDelete) {
  start();
  ASSERT_TRUE(call(cache_put("s1", "hello", 60000, "application/x-test")).ok());
  EXPECT_EQ(metrics.entries.value(), 1);
  EXPECT_GT(metrics.bytes.value(), 0);
  auto g = call(cache_get("s1"));
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->value, "hello");
  EXPECT_EQ(g->content_type, "application/x-test");
  EXPECT_EQ(metrics.hits.value(), 1u);
  ASSERT_TRUE(call(cache_put("s1", "replaced", 60000)).ok());
  auto replaced = call(cache_get("s1"));
  ASSERT_TRUE(replaced.ok());
  EXPECT_EQ(replaced->value, "replaced");
  EXPECT_EQ(replaced->content_type, "text/plain") << "a replace replaces the content type";
  EXPECT_EQ(metrics.entries.value(), 1);
  EXPECT_EQ(error_of(cache_get("s2")), core::errc::not_found);
  EXPECT_EQ(metrics.misses.value(), 1u);
  auto deleted = call(cache_del("s1"));
  ASSERT_TRUE(deleted.ok());
  EXPECT_TRUE(deleted->found);
  EXPECT_EQ(error_of(cache_get("s1")), core::errc::not_found);
  auto again = call(cache_del("s1"));
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->found) << "nothing live was removed";
  EXPECT_EQ(metrics.entries.value(), 0);
  EXPECT_EQ(metrics.bytes.value(), 0);
  EXPECT_EQ(metrics.hits.value(), 2u);
  EXPECT_EQ(metrics.misses.value(), 2u);
}

// Verifies an entry expires after its ttl: a get misses, and the module's timer removes
// expired entries nobody asks for (the gauges drop); a long-lived one stays.
TEST_F(CacheModuleTest, TtlCacheEntriesExpire) {
  start();
  ASSERT_TRUE(call(cache_put("short", "a", 1)).ok());
  ASSERT_TRUE(call(cache_put("asked", "b", 1)).ok());
  ASSERT_TRUE(call(cache_put("long", "c", 600000)).ok());
  EXPECT_EQ(metrics.entries.value(), 3);
  shard.advance(milliseconds(10));
  EXPECT_EQ(error_of(cache_get("asked")), core::errc::not_found);
  EXPECT_EQ(metrics.entries.value(), 2) << "the get removes the expired entry it finds";
  shard.advance(milliseconds(990)); // the expiry timer, 1 s after the first put
  EXPECT_EQ(metrics.entries.value(), 1);
  EXPECT_EQ(error_of(cache_get("short")), core::errc::not_found);
  auto long_lived = call(cache_get("long"));
  ASSERT_TRUE(long_lived.ok());
  EXPECT_EQ(long_lived->value, "c");
  ASSERT_TRUE(call(cache_del("long")).ok());
  EXPECT_EQ(metrics.entries.value(), 0);
  EXPECT_EQ(metrics.bytes.value(), 0);
}

// Verifies a get is answered not_found from the moment the ttl ends on the clock (not a
// millisecond before), and counts as a miss.
TEST_F(CacheModuleTest, EntryIsNotFoundOnceItsTtlEnds) {
  start();
  ASSERT_TRUE(call(cache_put("k", "v", 500, "application/json")).ok());
  shard.advance(milliseconds(499));
  auto live = call(cache_get("k"));
  ASSERT_TRUE(live.ok());
  EXPECT_EQ(live->value, "v");
  EXPECT_EQ(live->content_type, "application/json");
  shard.advance(milliseconds(1));
  EXPECT_EQ(error_of(cache_get("k")), core::errc::not_found);
  EXPECT_EQ(metrics.hits.value(), 1u);
  EXPECT_EQ(metrics.misses.value(), 1u);
  // A put after the expiry stores the key afresh, with its own ttl.
  ASSERT_TRUE(call(cache_put("k", "w", 500)).ok());
  EXPECT_EQ(call(cache_get("k"))->value, "w");
}

// Verifies conditional puts: If-None-Match: * stores only where no live entry is (an
// expired one counts as none), If-Match: * only over a live one, If-Match with versions
// only over one of them; a refused put changes nothing. Every put gets a new version,
// which gets reports, so a compare-and-set loop (read, then put If-Match) has one winner.
TEST_F(CacheModuleTest, ConditionalPutsCompareAndSet) {
  start();
  auto absent = [](std::string key, std::string value, std::uint64_t ttl) {
    auto p = cache_put(std::move(key), std::move(value), ttl);
    p.only_if_absent = true;
    return p;
  };
  auto first = call(absent("window", "1", 1000));
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(error_of(absent("window", "again", 1000)), core::errc::precondition_failed);
  EXPECT_EQ(call(cache_get("window"))->value, "1");
  EXPECT_EQ(call(cache_get("window"))->version, first->version);

  // Compare-and-set: two clients read version v; the first put If-Match v wins.
  auto at = [](std::string value, std::uint64_t v) {
    auto p = cache_put("window", std::move(value), 1000);
    p.if_versions = {v};
    return p;
  };
  auto won = call(at("2", first->version));
  ASSERT_TRUE(won.ok());
  EXPECT_GT(won->version, first->version);
  EXPECT_EQ(error_of(at("2-lost", first->version)), core::errc::precondition_failed);
  EXPECT_EQ(call(cache_get("window"))->value, "2");

  auto present = cache_put("missing", "x", 1000);
  present.only_if_present = true;
  EXPECT_EQ(error_of(present), core::errc::precondition_failed);
  EXPECT_EQ(error_of(cache_get("missing")), core::errc::not_found);

  // Past its ttl the entry is gone for conditions too: a new window starts.
  shard.advance(milliseconds(1000));
  auto fresh = call(absent("window", "1", 1000));
  ASSERT_TRUE(fresh.ok()) << "an expired entry still blocked If-None-Match: *";
  EXPECT_GT(fresh->version, won->version) << "a version never repeats";
}

// Verifies increments: a new key becomes a counter of `by` for its ttl, later ones add
// to it and keep the window's end (not their own ttl), every one gets a new version, an
// entry that is not an integer or a sum past 64 bits is 409 and changes nothing, and
// once the window ends the next increment starts a new one.
TEST_F(CacheModuleTest, IncrementsCountInAFixedWindow) {
  start();
  auto inc = [](std::int64_t by, std::uint64_t ttl_ms, std::string key = "hits") {
    return cache::cache_increment{std::move(key), by, ttl_ms};
  };
  auto first = call(inc(1, 1000));
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->value, 1);
  EXPECT_TRUE(first->created);
  shard.advance(milliseconds(600));
  auto second = call(inc(5, 60'000));
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->value, 6);
  EXPECT_FALSE(second->created);
  EXPECT_GT(second->version, first->version);
  auto third = call(inc(-2, 60'000));
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(third->value, 4);
  auto stored = call(cache_get("hits"));
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->value, "4");
  EXPECT_EQ(stored->content_type, "application/json");
  EXPECT_EQ(stored->version, third->version);
  // The window ends 1000 ms after the first increment, whatever the later ttls said.
  shard.advance(milliseconds(400));
  EXPECT_EQ(error_of(cache_get("hits")), core::errc::not_found);
  auto fresh = call(inc(1, 1000));
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(fresh->value, 1);
  EXPECT_TRUE(fresh->created);

  ASSERT_TRUE(call(cache_put("session", R"({"user":7})", 1000)).ok());
  auto refused = call(inc(1, 1000, "session"));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), core::errc::conflict);
  EXPECT_EQ(refused.error().name(), "not_a_counter");
  EXPECT_EQ(call(cache_get("session"))->value, R"({"user":7})");

  ASSERT_TRUE(call(cache_put("big", "9223372036854775806", 1000)).ok());
  EXPECT_EQ(call(inc(1, 1000, "big"))->value, std::numeric_limits<std::int64_t>::max());
  auto overflow = call(inc(1, 1000, "big"));
  ASSERT_FALSE(overflow.ok());
  EXPECT_EQ(overflow.error().name(), "counter_overflow");
  EXPECT_EQ(call(cache_get("big"))->value, "9223372036854775807");
  // Only what JSON writes as an integer counts: no sign, no spaces, no fraction.
  for (const std::string v : {"+3", " 3", "3 ", "3.0", "", "0x10"}) {
    ASSERT_TRUE(call(cache_put("odd", v, 1000)).ok());
    EXPECT_EQ(error_of(inc(1, 1000, "odd")), core::errc::conflict) << "'" << v << "'";
  }
}

// Verifies the expiry timer runs every second while the cache holds anything: expired
// entries that nobody asks for stay counted until it fires, then the bytes and entries
// gauges drop with no get; once the cache is empty no timer is left.
TEST_F(CacheModuleTest, ExpiryTimerRemovesEntriesWithoutAGet) {
  start();
  EXPECT_EQ(shard.ctx().timers(), 0u) << "an empty cache keeps no timer";
  ASSERT_TRUE(call(cache_put("a", "1", 100)).ok());
  ASSERT_TRUE(call(cache_put("b", "22", 100)).ok());
  shard.advance(milliseconds(200));
  ASSERT_TRUE(call(cache_put("c", "333", 1500)).ok()); // expires at 1700
  EXPECT_EQ(metrics.entries.value(), 3);
  const auto all_bytes = metrics.bytes.value();
  EXPECT_GT(all_bytes, 0);
  shard.advance(milliseconds(799)); // 999: a and b expired long ago, the timer is not due
  EXPECT_EQ(metrics.entries.value(), 3);
  EXPECT_EQ(metrics.bytes.value(), all_bytes);
  shard.advance(milliseconds(1)); // 1000
  EXPECT_EQ(metrics.entries.value(), 1);
  EXPECT_LT(metrics.bytes.value(), all_bytes);
  EXPECT_GT(metrics.bytes.value(), 0);
  EXPECT_EQ(shard.ctx().timers(), 1u) << "c is left: the timer goes on";
  shard.advance(milliseconds(1000)); // 2000
  EXPECT_EQ(metrics.entries.value(), 0);
  EXPECT_EQ(metrics.bytes.value(), 0);
  EXPECT_EQ(shard.ctx().timers(), 0u) << "the timer stops with the cache empty";
  EXPECT_EQ(metrics.hits.value() + metrics.misses.value(), 0u) << "no get was made";
}

// Verifies a value over the shard's share of cache.max_bytes is refused as too_large named
// value_too_large (and the old value of its key removed), and that entries past the
// bound evict the least recently used, counted in the metrics.
TEST_F(CacheModuleTest, TtlCacheTooLargeAndEviction) {
  start(700);
  ASSERT_TRUE(call(cache_put("k", "small", 60000)).ok());
  auto big = call(cache_put("k", std::string(700, 'x'), 60000));
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.error().code(), core::errc::too_large);
  EXPECT_EQ(big.error().name(), "value_too_large");
  EXPECT_EQ(core::api_code(big.error()), "value_too_large");
  EXPECT_FALSE(big.error().message().empty());
  EXPECT_EQ(error_of(cache_get("k")), core::errc::not_found);
  EXPECT_EQ(metrics.entries.value(), 0);
  EXPECT_EQ(metrics.bytes.value(), 0);
  EXPECT_EQ(metrics.evictions.value(), 0u) << "a refused entry is not an eviction";

  // An entry costs key + value + content type + ttl_cache::entry_overhead: 1 + 200 + 10 +
  // 96 = 307 bytes, so two fit in 700 and three do not.
  const std::string value(200, 'v');
  ASSERT_TRUE(call(cache_put("a", value, 60000)).ok());
  ASSERT_TRUE(call(cache_put("b", value, 60000)).ok());
  EXPECT_EQ(metrics.bytes.value(), 2 * 307);
  EXPECT_TRUE(call(cache_get("a")).ok()); // a: the most recently used
  ASSERT_TRUE(call(cache_put("c", value, 60000)).ok());
  EXPECT_EQ(error_of(cache_get("b")), core::errc::not_found);
  EXPECT_TRUE(call(cache_get("a")).ok());
  EXPECT_TRUE(call(cache_get("c")).ok());
  EXPECT_EQ(metrics.evictions.value(), 1u);
  EXPECT_EQ(metrics.entries.value(), 2);
  EXPECT_EQ(metrics.bytes.value(), 2 * 307);
  EXPECT_LE(metrics.bytes.value(), 700);
  stop();
  EXPECT_EQ(metrics.entries.value(), 0);
  EXPECT_EQ(metrics.bytes.value(), 0);
}

} // namespace
} // namespace shoal::testing
