// SPDX-License-Identifier: Apache-2.0
// The `store` contract, run against every implementation: memory_store and RocksDB.
#include "storage/memory_store.hpp"

#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "storage/store.hpp"
#include "tests/storage/storage_test_util.hpp"

namespace shoal::storage {
namespace {

using test::code_of;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using key_values = std::vector<std::pair<std::string, std::string>>;

constexpr std::uint32_t shard_count = test::factory_shards;

static_assert(std::is_nothrow_move_constructible_v<write_batch>);
static_assert(std::is_nothrow_move_constructible_v<result<std::string>>);

template <class Factory>
class StoreContractTest : public test::store_fixture<Factory> {
protected:
  shard_store& shard(std::uint32_t index = 0) {
    return this->store_->shard(index);
  }

  result<void> put(shard_store& s, std::string key, std::string value) {
    write_batch batch;
    batch.put(std::move(key), std::move(value));
    return s.write(batch, false);
  }

  result<void> del(shard_store& s, std::string key) {
    write_batch batch;
    batch.del(std::move(key));
    return s.write(batch, false);
  }

  /// All key-value pairs under `prefix`, in scan order.
  key_values scan(shard_store& s, std::string_view prefix) {
    key_values result;
    EXPECT_OK(s.scan_prefix(prefix, [&](std::string_view k, std::string_view v) {
      result.emplace_back(k, v);
      return true;
    }));
    return result;
  }
};

TYPED_TEST_SUITE(StoreContractTest, test::store_factories, test::factory_name);

// Verifies the store reports the shard count it was opened with.
TYPED_TEST(StoreContractTest, ShardCountMatchesOptions) {
  EXPECT_EQ(this->store_->shard_count(), shard_count);
}

// Verifies a missing key yields not_found, an error without a message (misses are cheap).
TYPED_TEST(StoreContractTest, GetMissingKeyReturnsNotFound) {
  auto r = this->shard().get("missing");
  ASSERT_EQ(code_of(r), errc::not_found);
  EXPECT_EQ(r.error().message(), "");
}

// Verifies a put value is read back.
TYPED_TEST(StoreContractTest, PutThenGetReturnsValue) {
  ASSERT_OK(this->put(this->shard(), "k", "v"));
  auto value = this->shard().get("k");
  ASSERT_OK(value);
  EXPECT_EQ(*value, "v");
}

// Verifies an empty value is a present key, distinct from not_found.
TYPED_TEST(StoreContractTest, EmptyValueIsNotMissing) {
  ASSERT_OK(this->put(this->shard(), "k", ""));
  auto value = this->shard().get("k");
  ASSERT_OK(value);
  EXPECT_EQ(*value, "");
}

// Verifies keys and values may hold arbitrary bytes, including NUL.
TYPED_TEST(StoreContractTest, BinaryKeysAndValuesRoundTrip) {
  const std::string key("k\0\xff", 3);
  const std::string value("\0v\0", 3);
  ASSERT_OK(this->put(this->shard(), key, value));
  auto read = this->shard().get(key);
  ASSERT_OK(read);
  EXPECT_EQ(*read, value);
  EXPECT_EQ(code_of(this->shard().get(std::string_view("k", 1))), errc::not_found);
}

// Verifies a second put replaces the first value.
TYPED_TEST(StoreContractTest, OverwriteReplacesValue) {
  ASSERT_OK(this->put(this->shard(), "k", "first"));
  ASSERT_OK(this->put(this->shard(), "k", "second"));
  auto value = this->shard().get("k");
  ASSERT_OK(value);
  EXPECT_EQ(*value, "second");
}

// Verifies a deleted key reads as not_found and deleting a missing key is ok.
TYPED_TEST(StoreContractTest, DeleteRemovesKey) {
  ASSERT_OK(this->put(this->shard(), "k", "v"));
  ASSERT_OK(this->del(this->shard(), "k"));
  EXPECT_EQ(code_of(this->shard().get("k")), errc::not_found);
  EXPECT_OK(this->del(this->shard(), "never-written"));
}

// Verifies one write applies several puts and deletes in order, as one batch.
TYPED_TEST(StoreContractTest, BatchAppliesAllOpsInOneWrite) {
  ASSERT_OK(this->put(this->shard(), "old", "x"));
  const auto before = this->store_->latest_sequence();
  write_batch batch;
  batch.put("a", "1");
  batch.put("b", "2");
  batch.del("old");
  batch.put("c", "3");
  batch.del("c"); // later ops win: c ends absent
  batch.put("a", "4");
  EXPECT_EQ(batch.size(), 6u);
  ASSERT_OK(this->shard().write(batch, true));
  EXPECT_GT(this->store_->latest_sequence(), before);
  EXPECT_EQ(this->scan(this->shard(), ""), (key_values{{"a", "4"}, {"b", "2"}}));
}

// Verifies an empty batch is accepted and changes nothing.
TYPED_TEST(StoreContractTest, EmptyBatchIsOk) {
  EXPECT_OK(this->shard().write(write_batch{}, false));
  EXPECT_TRUE(this->scan(this->shard(), "").empty());
}

// Verifies scan_prefix visits exactly the prefixed keys in key order.
TYPED_TEST(StoreContractTest, ScanPrefixVisitsKeysInOrder) {
  for (const char* key : {"p/3", "o", "p/1", "q", "p/2", "p0", "p/"}) {
    ASSERT_OK(this->put(this->shard(), key, std::string("v") + key));
  }
  EXPECT_EQ(this->scan(this->shard(), "p/"),
            (key_values{{"p/", "vp/"}, {"p/1", "vp/1"}, {"p/2", "vp/2"}, {"p/3", "vp/3"}}));
  EXPECT_TRUE(this->scan(this->shard(), "z").empty());
}

// Verifies scan_prefix stops as soon as the callback returns false.
TYPED_TEST(StoreContractTest, ScanPrefixStopsWhenCallbackReturnsFalse) {
  for (const char* key : {"p/1", "p/2", "p/3"})
    ASSERT_OK(this->put(this->shard(), key, "v"));
  std::vector<std::string> seen;
  ASSERT_OK(this->shard().scan_prefix("p/", [&](std::string_view k, std::string_view) {
    seen.emplace_back(k);
    return seen.size() < 2;
  }));
  EXPECT_THAT(seen, ElementsAre("p/1", "p/2"));
}

// Verifies the prefix boundary is bytewise: "a\0" matches "a\0x" but not "ab".
TYPED_TEST(StoreContractTest, ScanPrefixRespectsPrefixBoundary) {
  const std::string nul_key("a\0x", 3);
  for (const std::string& key : {std::string("ab"), nul_key, std::string("a"), std::string("b")}) {
    ASSERT_OK(this->put(this->shard(), key, "v"));
  }
  auto keys = [&](std::string_view prefix) {
    std::vector<std::string> result;
    for (auto& [k, v] : this->scan(this->shard(), prefix))
      result.push_back(k);
    return result;
  };
  EXPECT_THAT(keys(std::string_view("a\0", 2)), ElementsAre(nul_key));
  EXPECT_THAT(keys("ab"), ElementsAre("ab"));
  EXPECT_THAT(keys("a"), ElementsAre("a", nul_key, "ab"));
}

// Verifies shards are separate keyspaces for get, delete and scan.
TYPED_TEST(StoreContractTest, ShardsAreIsolatedKeyspaces) {
  auto& s0 = this->shard(0);
  auto& s1 = this->shard(1);
  ASSERT_OK(this->put(s0, "k", "zero"));
  ASSERT_OK(this->put(s1, "k", "one"));
  auto zero = s0.get("k");
  ASSERT_OK(zero);
  EXPECT_EQ(*zero, "zero");
  auto one = s1.get("k");
  ASSERT_OK(one);
  EXPECT_EQ(*one, "one");
  EXPECT_EQ(code_of(this->shard(2).get("k")), errc::not_found);

  ASSERT_OK(this->del(s0, "k"));
  EXPECT_EQ(code_of(s0.get("k")), errc::not_found);
  one = s1.get("k");
  ASSERT_OK(one);
  EXPECT_EQ(*one, "one");
  EXPECT_EQ(this->scan(s1, ""), (key_values{{"k", "one"}}));
  EXPECT_TRUE(this->scan(s0, "").empty());
}

// Verifies every applied write batch raises the latest sequence, on any shard.
TYPED_TEST(StoreContractTest, LatestSequenceGrows) {
  auto last = this->store_->latest_sequence();
  for (std::uint32_t i = 0; i < shard_count; ++i) {
    ASSERT_OK(this->put(this->shard(i), "k", "v"));
    const auto now = this->store_->latest_sequence();
    EXPECT_GT(now, last);
    last = now;
  }
}

// Verifies sync_wal succeeds after writes, including between them.
TYPED_TEST(StoreContractTest, SyncWalSucceeds) {
  EXPECT_OK(this->store_->sync_wal());
  ASSERT_OK(this->put(this->shard(), "k", "v"));
  EXPECT_OK(this->store_->sync_wal());
  ASSERT_OK(this->put(this->shard(), "k", "w"));
  auto value = this->shard().get("k");
  ASSERT_OK(value);
  EXPECT_EQ(*value, "w");
}

// Verifies a shard index past shard_count() yields internal (a caller's bug) on every
// call, and no snapshot.
TYPED_TEST(StoreContractTest, OutOfRangeShardReturnsInternal) {
  auto& bad = this->store_->shard(shard_count);
  EXPECT_EQ(code_of(bad.get("k")), errc::internal);
  EXPECT_EQ(code_of(this->put(bad, "k", "v")), errc::internal);
  EXPECT_EQ(code_of(bad.scan_prefix("", [](auto, auto) { return true; })), errc::internal);
  EXPECT_EQ(code_of(bad.scan("", "", true, [](auto, auto) { return true; })), errc::internal);
  EXPECT_EQ(bad.snapshot(), nullptr);
  EXPECT_EQ(bad.estimate_num_keys(), 0u);
  EXPECT_EQ(bad.live_data_bytes(), 0u);
}

// Verifies that after close() every fallible call yields shutting_down, and snapshot()
// gives no view.
TYPED_TEST(StoreContractTest, CallsAfterCloseReturnShuttingDown) {
  ASSERT_OK(this->put(this->shard(), "k", "v"));
  const auto sequence = this->store_->latest_sequence();
  auto& s = this->shard();
  ASSERT_OK(this->store_->close());

  EXPECT_EQ(code_of(s.get("k")), errc::shutting_down);
  EXPECT_EQ(code_of(this->put(s, "k", "w")), errc::shutting_down);
  bool called = false;
  auto visit = [&](std::string_view, std::string_view) {
    called = true;
    return true;
  };
  EXPECT_EQ(code_of(s.scan_prefix("", visit)), errc::shutting_down);
  EXPECT_EQ(code_of(s.scan("", "", true, visit)), errc::shutting_down);
  EXPECT_FALSE(called);
  EXPECT_EQ(s.snapshot(), nullptr);
  EXPECT_EQ(code_of(this->store_->sync_wal()), errc::shutting_down);
  EXPECT_EQ(code_of(this->store_->close()), errc::shutting_down);
  EXPECT_EQ(this->store_->latest_sequence(), sequence);
  EXPECT_EQ(code_of(this->store_->shard(shard_count).get("k")), errc::shutting_down);
}

// Verifies memory_store counts sync_wal calls and stops counting once closed.
TEST(MemoryStoreTest, SyncWalCountsCalls) {
  memory_store store(1);
  EXPECT_EQ(store.sync_count(), 0u);
  ASSERT_OK(store.sync_wal());
  ASSERT_OK(store.sync_wal());
  EXPECT_EQ(store.sync_count(), 2u);
  ASSERT_OK(store.close());
  EXPECT_EQ(code_of(store.sync_wal()), errc::shutting_down);
  EXPECT_EQ(store.sync_count(), 2u);
}

// Verifies memory_store's key count and live bytes follow puts, overwrites and deletes.
TEST(MemoryStoreTest, EstimatesAreExact) {
  memory_store store(1);
  auto& s = store.shard(0);
  write_batch batch;
  batch.put("ab", "123");
  batch.put("c", "4");
  ASSERT_OK(s.write(batch, false));
  EXPECT_EQ(s.estimate_num_keys(), 2u);
  EXPECT_EQ(s.live_data_bytes(), 7u);
  batch.clear();
  batch.put("ab", "1");
  batch.del("c");
  ASSERT_OK(s.write(batch, false));
  EXPECT_EQ(s.estimate_num_keys(), 1u);
  EXPECT_EQ(s.live_data_bytes(), 3u);
}

// Verifies write_batch counts ops and key/value bytes and clears both.
TEST(WriteBatchTest, TracksSizeAndBytes) {
  write_batch batch;
  EXPECT_TRUE(batch.empty());
  batch.put("key", "value");
  batch.del("gone");
  EXPECT_EQ(batch.size(), 2u);
  EXPECT_EQ(batch.bytes(), 12u);
  EXPECT_EQ(batch.ops()[1].kind, write_batch::op_kind::del);
  batch.clear();
  EXPECT_TRUE(batch.empty());
  EXPECT_EQ(batch.bytes(), 0u);
}

// -- snapshots ----------------------------------------------------------------------------

/// shard_store::snapshot() on every store: a view sees the shard as it was when taken.
template <class Factory>
class SnapshotTest : public StoreContractTest<Factory> {
protected:
  /// A view of shard 0; a test failure when the store gives none.
  std::unique_ptr<shard_view> view() {
    auto v = this->shard().snapshot();
    EXPECT_NE(v, nullptr) << "snapshot() gave no view";
    return v;
  }

  /// The value of `key` through `v`, "<code>" when the read fails.
  static std::string read(shard_view& v, std::string_view key) {
    auto r = v.get(key);
    if (!r) return std::string("<") + core::to_string(r.error().code()) + ">";
    return *r;
  }

  /// The keys `v.scan` visits, all of them; each value must be "v" ++ key.
  static std::vector<std::string> scan_view(shard_view& v, std::string_view prefix,
                                            std::string_view from, bool reverse) {
    std::vector<std::string> out;
    EXPECT_OK(v.scan(prefix, from, reverse, [&](std::string_view k, std::string_view value) {
      EXPECT_EQ(value, "v" + std::string(k)) << "value of " << k;
      out.emplace_back(k);
      return true;
    }));
    return out;
  }

  /// Writes every key of `ks` (value: "v" ++ key) to shard 0 in one batch.
  void put_all(const std::vector<std::string>& ks) {
    write_batch batch;
    for (const auto& k : ks)
      batch.put(k, "v" + k);
    ASSERT_OK(this->shard().write(batch, false));
  }
};

TYPED_TEST_SUITE(SnapshotTest, test::store_factories, test::factory_name);

// Verifies a view keeps the values it was taken with: later overwrites and new keys are
// not seen through it, while the shard itself sees them.
TYPED_TEST(SnapshotTest, ViewDoesNotSeeLaterPuts) {
  ASSERT_OK(this->put(this->shard(), "k", "old"));
  auto v = this->view();
  ASSERT_NE(v, nullptr);
  ASSERT_OK(this->put(this->shard(), "k", "new"));
  ASSERT_OK(this->put(this->shard(), "added", "x"));

  EXPECT_EQ(this->read(*v, "k"), "old");
  EXPECT_EQ(code_of(v->get("added")), errc::not_found);
  EXPECT_EQ(this->scan(this->shard(), ""), (key_values{{"added", "x"}, {"k", "new"}}));
  key_values through_view;
  ASSERT_OK(v->scan("", "", false, [&](std::string_view k, std::string_view value) {
    through_view.emplace_back(k, value);
    return true;
  }));
  EXPECT_EQ(through_view, (key_values{{"k", "old"}}));
}

// Verifies a view still holds the keys deleted after it was taken, in gets and scans.
TYPED_TEST(SnapshotTest, ViewDoesNotSeeLaterDeletes) {
  this->put_all({"a", "b"});
  auto v = this->view();
  ASSERT_NE(v, nullptr);
  ASSERT_OK(this->del(this->shard(), "a"));

  EXPECT_EQ(code_of(this->shard().get("a")), errc::not_found);
  EXPECT_EQ(this->read(*v, "a"), "va");
  EXPECT_THAT(this->scan_view(*v, "", "", false), ElementsAre("a", "b"));
  EXPECT_THAT(this->scan_view(*v, "", "", true), ElementsAre("b", "a"));
}

// Verifies a view still holds the keys of a range deleted after it was taken, in both
// scan directions and from a start inside the range.
TYPED_TEST(SnapshotTest, ViewDoesNotSeeLaterRangeDeletes) {
  this->put_all({"p/1", "p/2", "p/3", "p/4"});
  auto v = this->view();
  ASSERT_NE(v, nullptr);
  write_batch batch;
  batch.del_range("p/2", "p/4");
  ASSERT_OK(this->shard().write(batch, false));

  EXPECT_EQ(this->scan(this->shard(), "p/"), (key_values{{"p/1", "vp/1"}, {"p/4", "vp/4"}}));
  EXPECT_EQ(this->read(*v, "p/2"), "vp/2");
  EXPECT_EQ(this->read(*v, "p/3"), "vp/3");
  EXPECT_THAT(this->scan_view(*v, "p/", "", false), ElementsAre("p/1", "p/2", "p/3", "p/4"));
  EXPECT_THAT(this->scan_view(*v, "p/", "", true), ElementsAre("p/4", "p/3", "p/2", "p/1"));
  EXPECT_THAT(this->scan_view(*v, "p/", "p/3", false), ElementsAre("p/3", "p/4"));
  EXPECT_THAT(this->scan_view(*v, "p/", "p/3", true), ElementsAre("p/3", "p/2", "p/1"));
}

// Verifies scans through a view follow the scan contract: the prefix only, forward from
// the first key >= from, reverse from the last key <= from, stopping when fn says so;
// keys written after the view, inside the prefix or next to it, never appear.
TYPED_TEST(SnapshotTest, ViewScansForwardAndReverseFromStart) {
  this->put_all({"p.", "p/a", "p/b", "p/d", "p0"});
  auto v = this->view();
  ASSERT_NE(v, nullptr);
  this->put_all({"p/c", "p/e", "p/"});

  EXPECT_THAT(this->scan_view(*v, "p/", "", false), ElementsAre("p/a", "p/b", "p/d"));
  EXPECT_THAT(this->scan_view(*v, "p/", "", true), ElementsAre("p/d", "p/b", "p/a"));
  EXPECT_THAT(this->scan_view(*v, "p/", "p/b", false), ElementsAre("p/b", "p/d"));
  EXPECT_THAT(this->scan_view(*v, "p/", "p/c", false), ElementsAre("p/d"));
  EXPECT_THAT(this->scan_view(*v, "p/", "p/c", true), ElementsAre("p/b", "p/a"));
  EXPECT_THAT(this->scan_view(*v, "p/", "p/b", true), ElementsAre("p/b", "p/a"));
  EXPECT_THAT(this->scan_view(*v, "p/", "p/zzz", true), ElementsAre("p/d", "p/b", "p/a"));
  EXPECT_THAT(this->scan_view(*v, "p/", "p/e", false), IsEmpty());
  EXPECT_THAT(this->scan_view(*v, "p/", "p/", true), IsEmpty());
  EXPECT_THAT(this->scan_view(*v, "p/", "a", false), ElementsAre("p/a", "p/b", "p/d"));

  for (bool reverse : {false, true}) {
    std::vector<std::string> seen;
    ASSERT_OK(v->scan("p/", "", reverse, [&](std::string_view k, std::string_view) {
      seen.emplace_back(k);
      return seen.size() < 2;
    }));
    if (reverse) {
      EXPECT_THAT(seen, ElementsAre("p/d", "p/b"));
    } else {
      EXPECT_THAT(seen, ElementsAre("p/a", "p/b"));
    }
  }
}

// Verifies a view's get finds what the shard held then and gives not_found (without a
// message) for a key it never held.
TYPED_TEST(SnapshotTest, ViewGetReadsValuesAndMisses) {
  ASSERT_OK(this->put(this->shard(), "k", "v"));
  ASSERT_OK(this->put(this->shard(), "empty", ""));
  auto v = this->view();
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(this->read(*v, "k"), "v");
  auto empty = v->get("empty");
  ASSERT_OK(empty);
  EXPECT_EQ(*empty, "");
  auto missing = v->get("missing");
  ASSERT_EQ(code_of(missing), errc::not_found);
  EXPECT_EQ(missing.error().message(), "");
}

// Verifies a view shows its own shard only.
TYPED_TEST(SnapshotTest, ViewSeesOnlyItsShard) {
  ASSERT_OK(this->put(this->shard(1), "k", "other"));
  auto v = this->view();
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(code_of(v->get("k")), errc::not_found);
  EXPECT_THAT(this->scan_view(*v, "", "", false), IsEmpty());
  auto other = this->shard(1).snapshot();
  ASSERT_NE(other, nullptr);
  EXPECT_EQ(this->read(*other, "k"), "other");
}

// Verifies views taken at different times each keep their own state, and a view taken
// after a write sees it.
TYPED_TEST(SnapshotTest, ViewsTakenAtDifferentTimesDiffer) {
  ASSERT_OK(this->put(this->shard(), "k", "1"));
  auto first = this->view();
  ASSERT_OK(this->put(this->shard(), "k", "2"));
  auto second = this->view();
  ASSERT_OK(this->del(this->shard(), "k"));
  auto third = this->view();
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  ASSERT_NE(third, nullptr);
  EXPECT_EQ(this->read(*first, "k"), "1");
  EXPECT_EQ(this->read(*second, "k"), "2");
  EXPECT_EQ(code_of(third->get("k")), errc::not_found);
  first.reset(); // releasing one view leaves the others intact
  EXPECT_EQ(this->read(*second, "k"), "2");
}

// Verifies a closed store gives no view.
TYPED_TEST(SnapshotTest, SnapshotOfClosedStoreIsNull) {
  ASSERT_OK(this->put(this->shard(), "k", "v"));
  ASSERT_OK(this->store_->close());
  EXPECT_EQ(this->shard().snapshot(), nullptr);
}

// Verifies reads through a view taken before close fail with shutting_down once the store
// closed, and a scan then calls nothing. (close()'s own outcome with a view alive is the
// next test's.)
TYPED_TEST(SnapshotTest, ReadsThroughViewAfterCloseFailWithShuttingDown) {
  this->put_all({"p/a", "p/b"});
  auto v = this->view();
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(this->read(*v, "p/a"), "vp/a");
  (void)this->store_->close();
  EXPECT_EQ(code_of(v->get("p/a")), errc::shutting_down);
  bool called = false;
  auto fn = [&](std::string_view, std::string_view) {
    called = true;
    return true;
  };
  EXPECT_EQ(code_of(v->scan("p/", "", false, fn)), errc::shutting_down);
  EXPECT_EQ(code_of(v->scan("p/", "p/b", true, fn)), errc::shutting_down);
  EXPECT_FALSE(called);
}

// Verifies close() succeeds while a view is still alive (the view then fails its reads,
// as above), and the view can be released afterwards.
TYPED_TEST(SnapshotTest, CloseWithLiveViewSucceeds) {
  this->put_all({"k"});
  auto v = this->view();
  ASSERT_NE(v, nullptr);
  EXPECT_OK(this->store_->close());
  EXPECT_EQ(code_of(v->get("k")), errc::shutting_down);
  v.reset();
  EXPECT_EQ(code_of(this->store_->close()), errc::shutting_down);
}

} // namespace
} // namespace shoal::storage
