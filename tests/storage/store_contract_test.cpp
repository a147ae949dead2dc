// SPDX-License-Identifier: Apache-2.0
// The `store` contract, run against every implementation: memory_store and RocksDB.
#include "storage/memory_store.hpp"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "storage/store.hpp"
#include "tests/storage/storage_test_util.hpp"

namespace shoal::storage {
namespace {

using test::temp_dir;
using ::testing::ElementsAre;
using key_values = std::vector<std::pair<std::string, std::string>>;

constexpr std::uint32_t shard_count = test::factory_shards;

template <class Factory>
class StoreContractTest : public test::store_fixture<Factory> {
protected:
  shard_store& shard(std::uint32_t index = 0) {
    return this->store_->shard(index);
  }

  status put(shard_store& s, std::string key, std::string value) {
    write_batch batch;
    batch.put(std::move(key), std::move(value));
    return s.write(batch, false);
  }

  status del(shard_store& s, std::string key) {
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

// Verifies a missing key yields not_found and leaves the output untouched.
TYPED_TEST(StoreContractTest, GetMissingKeyReturnsNotFound) {
  std::string value = "untouched";
  auto st = this->shard().get("missing", value);
  EXPECT_EQ(st.code(), errc::not_found) << st.to_string();
  EXPECT_EQ(value, "untouched");
}

// Verifies a put value is read back.
TYPED_TEST(StoreContractTest, PutThenGetReturnsValue) {
  ASSERT_OK(this->put(this->shard(), "k", "v"));
  std::string value;
  ASSERT_OK(this->shard().get("k", value));
  EXPECT_EQ(value, "v");
}

// Verifies an empty value is a present key, distinct from not_found.
TYPED_TEST(StoreContractTest, EmptyValueIsNotMissing) {
  ASSERT_OK(this->put(this->shard(), "k", ""));
  std::string value = "stale";
  ASSERT_OK(this->shard().get("k", value));
  EXPECT_EQ(value, "");
}

// Verifies keys and values may hold arbitrary bytes, including NUL.
TYPED_TEST(StoreContractTest, BinaryKeysAndValuesRoundTrip) {
  const std::string key("k\0\xff", 3);
  const std::string value("\0v\0", 3);
  ASSERT_OK(this->put(this->shard(), key, value));
  std::string read;
  ASSERT_OK(this->shard().get(key, read));
  EXPECT_EQ(read, value);
  EXPECT_EQ(this->shard().get(std::string_view("k", 1), read).code(), errc::not_found);
}

// Verifies a second put replaces the first value.
TYPED_TEST(StoreContractTest, OverwriteReplacesValue) {
  ASSERT_OK(this->put(this->shard(), "k", "first"));
  ASSERT_OK(this->put(this->shard(), "k", "second"));
  std::string value;
  ASSERT_OK(this->shard().get("k", value));
  EXPECT_EQ(value, "second");
}

// Verifies a deleted key reads as not_found and deleting a missing key is ok.
TYPED_TEST(StoreContractTest, DeleteRemovesKey) {
  ASSERT_OK(this->put(this->shard(), "k", "v"));
  ASSERT_OK(this->del(this->shard(), "k"));
  std::string value;
  EXPECT_EQ(this->shard().get("k", value).code(), errc::not_found);
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
  std::string value;
  ASSERT_OK(s0.get("k", value));
  EXPECT_EQ(value, "zero");
  ASSERT_OK(s1.get("k", value));
  EXPECT_EQ(value, "one");
  EXPECT_EQ(this->shard(2).get("k", value).code(), errc::not_found);

  ASSERT_OK(this->del(s0, "k"));
  EXPECT_EQ(s0.get("k", value).code(), errc::not_found);
  ASSERT_OK(s1.get("k", value));
  EXPECT_EQ(value, "one");
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
  std::string value;
  ASSERT_OK(this->shard().get("k", value));
  EXPECT_EQ(value, "w");
}

// Verifies a shard index past shard_count() yields invalid_argument on every call.
TYPED_TEST(StoreContractTest, OutOfRangeShardReturnsInvalidArgument) {
  auto& bad = this->store_->shard(shard_count);
  std::string value;
  EXPECT_EQ(bad.get("k", value).code(), errc::invalid_argument);
  EXPECT_EQ(this->put(bad, "k", "v").code(), errc::invalid_argument);
  EXPECT_EQ(bad.scan_prefix("", [](auto, auto) { return true; }).code(), errc::invalid_argument);
  EXPECT_EQ(bad.estimate_num_keys(), 0u);
}

// Verifies that after close() every status-returning call yields unavailable.
TYPED_TEST(StoreContractTest, CallsAfterCloseReturnUnavailable) {
  ASSERT_OK(this->put(this->shard(), "k", "v"));
  const auto sequence = this->store_->latest_sequence();
  auto& s = this->shard();
  ASSERT_OK(this->store_->close());

  std::string value = "untouched";
  EXPECT_EQ(s.get("k", value).code(), errc::unavailable);
  EXPECT_EQ(value, "untouched");
  EXPECT_EQ(this->put(s, "k", "w").code(), errc::unavailable);
  bool called = false;
  auto visit = [&](std::string_view, std::string_view) {
    called = true;
    return true;
  };
  EXPECT_EQ(s.scan_prefix("", visit).code(), errc::unavailable);
  EXPECT_FALSE(called);
  EXPECT_EQ(this->store_->sync_wal().code(), errc::unavailable);
  EXPECT_EQ(this->store_->close().code(), errc::unavailable);
  EXPECT_EQ(this->store_->latest_sequence(), sequence);
  EXPECT_EQ(this->store_->shard(shard_count).get("k", value).code(), errc::unavailable);
}

// Verifies memory_store counts sync_wal calls and stops counting once closed.
TEST(MemoryStoreTest, SyncWalCountsCalls) {
  memory_store store(1);
  EXPECT_EQ(store.sync_count(), 0u);
  ASSERT_OK(store.sync_wal());
  ASSERT_OK(store.sync_wal());
  EXPECT_EQ(store.sync_count(), 2u);
  ASSERT_OK(store.close());
  EXPECT_EQ(store.sync_wal().code(), errc::unavailable);
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

} // namespace
} // namespace shoal::storage
