// SPDX-License-Identifier: Apache-2.0
// `shard_store::scan` (forward and reverse from a start key, within a prefix) and
// `write_batch::del_range`, run against every implementation: memory_store and RocksDB.
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "storage/memory_store.hpp"
#include "storage/store.hpp"
#include "tests/storage/storage_test_util.hpp"

namespace shoal::storage {
namespace {

using test::code_of;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using keys = std::vector<std::string>;
using namespace std::string_literals;

template <class Factory>
class ScanTest : public test::store_fixture<Factory> {
protected:
  shard_store& shard() {
    return this->store_->shard(0);
  }

  /// Writes every key of `ks` (value: "v" ++ key) in one batch.
  void put_all(const keys& ks) {
    write_batch batch;
    for (const auto& k : ks)
      batch.put(k, "v" + k);
    ASSERT_OK(shard().write(batch, false));
  }

  /// The keys `scan` visits, all of them (`fn` never stops it).
  keys scan(std::string_view prefix, std::string_view from, bool reverse) {
    keys out;
    EXPECT_OK(shard().scan(prefix, from, reverse, [&](std::string_view k, std::string_view v) {
      EXPECT_EQ(v, "v" + std::string(k)) << "value of " << k;
      out.emplace_back(k);
      return true;
    }));
    return out;
  }

  /// Every key of the shard, in order.
  keys all() {
    keys out;
    EXPECT_OK(shard().scan_prefix("", [&](std::string_view k, std::string_view) {
      out.emplace_back(k);
      return true;
    }));
    return out;
  }
};

TYPED_TEST_SUITE(ScanTest, test::store_factories, test::factory_name);

/// Keys of prefix "p/" with neighbours just below ("p.", "p/" - 1) and above ("p0").
const keys neighbours = {"p.", "p.z", "p/a", "p/b", "p/d", "p0", "q"};

// Verifies a forward scan from an empty start visits the prefix's keys in order, none
// of the neighbours on either side.
TYPED_TEST(ScanTest, ForwardFromStartVisitsThePrefixOnly) {
  this->put_all(neighbours);
  EXPECT_THAT(this->scan("p/", "", false), ElementsAre("p/a", "p/b", "p/d"));
}

// Verifies a forward scan starts at `from` itself when it is a key, and at the next key
// when it falls between keys.
TYPED_TEST(ScanTest, ForwardFromMiddleStartsAtFirstKeyNotBelow) {
  this->put_all(neighbours);
  EXPECT_THAT(this->scan("p/", "p/b", false), ElementsAre("p/b", "p/d"));
  EXPECT_THAT(this->scan("p/", "p/c", false), ElementsAre("p/d"));
  EXPECT_THAT(this->scan("p/", "p/a\x01", false), ElementsAre("p/b", "p/d"));
}

// Verifies a forward scan from past the prefix's last key visits nothing, also when keys
// of other prefixes follow.
TYPED_TEST(ScanTest, ForwardFromPastEndVisitsNothing) {
  this->put_all(neighbours);
  EXPECT_THAT(this->scan("p/", "p/e", false), IsEmpty());
  EXPECT_THAT(this->scan("p/", "p0", false), IsEmpty());
  EXPECT_THAT(this->scan("p/", "zzz", false), IsEmpty());
}

// Verifies a forward scan whose `from` sorts before the prefix starts at the prefix's
// first key (never at a key outside it).
TYPED_TEST(ScanTest, ForwardFromBeforePrefixStartsAtPrefix) {
  this->put_all(neighbours);
  EXPECT_THAT(this->scan("p/", "a", false), ElementsAre("p/a", "p/b", "p/d"));
  EXPECT_THAT(this->scan("p/", "p.z", false), ElementsAre("p/a", "p/b", "p/d"));
}

// Verifies a reverse scan from an empty start begins at the prefix's last key and ends at
// its first, with keys just outside the prefix on both sides.
TYPED_TEST(ScanTest, ReverseFromEmptyStartsAtLastKeyOfPrefix) {
  this->put_all(neighbours);
  EXPECT_THAT(this->scan("p/", "", true), ElementsAre("p/d", "p/b", "p/a"));
}

// Verifies a reverse scan over a prefix whose last byte is 0xff: the bound above it is
// not prefix ++ 0x00, and "p\xff\xff…" keys belong to it.
TYPED_TEST(ScanTest, ReverseFromEmptyWithPrefixEndingInFF) {
  const std::string p = "p\xff";
  this->put_all({"p\xfe", "p\xfe\xff", p, p + "a", p + "\xff", p + "\xff\xff\x01", "q", "q\x00"s});
  EXPECT_THAT(this->scan(p, "", true), ElementsAre(p + "\xff\xff\x01", p + "\xff", p + "a", p));
  EXPECT_THAT(this->scan(p, "", false), ElementsAre(p, p + "a", p + "\xff", p + "\xff\xff\x01"));
}

// Verifies a reverse scan over a prefix of only 0xff bytes (no upper bound key) starts at
// the very last key of the shard.
TYPED_TEST(ScanTest, ReverseFromEmptyWithAllFFPrefix) {
  const std::string p = "\xff\xff";
  this->put_all({"a", "\xff", "\xff\xfe\xff", p, p + "\x00"s, p + "\xff\xff"});
  EXPECT_THAT(this->scan(p, "", true), ElementsAre(p + "\xff\xff", p + std::string(1, '\0'), p));
}

// Verifies a reverse scan with an empty prefix visits every key, last first.
TYPED_TEST(ScanTest, ReverseWithEmptyPrefixVisitsEverything) {
  this->put_all({"a", "b", "\xff"});
  EXPECT_THAT(this->scan("", "", true), ElementsAre("\xff", "b", "a"));
  EXPECT_THAT(this->scan("", "b", true), ElementsAre("b", "a"));
}

// Verifies a reverse scan from a key includes that key, and from between two keys starts
// at the lower one.
TYPED_TEST(ScanTest, ReverseFromKeyOrBetweenKeys) {
  this->put_all(neighbours);
  EXPECT_THAT(this->scan("p/", "p/b", true), ElementsAre("p/b", "p/a"));
  EXPECT_THAT(this->scan("p/", "p/c", true), ElementsAre("p/b", "p/a"));
  EXPECT_THAT(this->scan("p/", "p/b\x00"s, true), ElementsAre("p/b", "p/a"));
  EXPECT_THAT(this->scan("p/", "p/a", true), ElementsAre("p/a"));
}

// Verifies a reverse scan from before the prefix's first key visits nothing, even with
// keys of another prefix below.
TYPED_TEST(ScanTest, ReverseFromBeforeFirstKeyVisitsNothing) {
  this->put_all(neighbours);
  EXPECT_THAT(this->scan("p/", "p/", true), IsEmpty());
  EXPECT_THAT(this->scan("p/", "p.zz", true), IsEmpty());
}

// Verifies a reverse scan whose `from` sorts after the whole prefix starts at the
// prefix's last key ("the last key <= from" among the prefix's keys), also when keys of
// another prefix lie between the prefix and `from`.
TYPED_TEST(ScanTest, ReverseFromPastPrefixStartsAtLastKeyOfPrefix) {
  this->put_all(neighbours);
  EXPECT_THAT(this->scan("p/", "p/zzz", true), ElementsAre("p/d", "p/b", "p/a"));
  EXPECT_THAT(this->scan("p/", "p0", true), ElementsAre("p/d", "p/b", "p/a"))
    << "a key of another prefix (p0) between the prefix and `from` hides the prefix";
  EXPECT_THAT(this->scan("p/", "z", true), ElementsAre("p/d", "p/b", "p/a"));
}

// Verifies the scan stops at the first key for which `fn` returns false, both ways.
TYPED_TEST(ScanTest, StopsWhenCallbackReturnsFalse) {
  this->put_all(neighbours);
  for (bool reverse : {false, true}) {
    keys seen;
    ASSERT_OK(this->shard().scan("p/", "", reverse, [&](std::string_view k, std::string_view) {
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

// Verifies a scan of an empty shard or prefix visits nothing and succeeds.
TYPED_TEST(ScanTest, EmptyPrefixVisitsNothing) {
  EXPECT_THAT(this->scan("p/", "", false), IsEmpty());
  EXPECT_THAT(this->scan("p/", "", true), IsEmpty());
  this->put_all({"a", "z"});
  EXPECT_THAT(this->scan("p/", "", false), IsEmpty());
  EXPECT_THAT(this->scan("p/", "", true), IsEmpty());
  EXPECT_THAT(this->scan("p/", "p/m", true), IsEmpty());
}

// Verifies scans see only their own shard.
TYPED_TEST(ScanTest, ScanSeesOnlyItsShard) {
  write_batch batch;
  batch.put("p/other", "vp/other");
  ASSERT_OK(this->store_->shard(1).write(batch, false));
  this->put_all({"p/mine"});
  EXPECT_THAT(this->scan("p/", "", false), ElementsAre("p/mine"));
  EXPECT_THAT(this->scan("p/", "", true), ElementsAre("p/mine"));
}

// Verifies scanning a closed store fails with shutting_down and calls nothing.
TYPED_TEST(ScanTest, ScanOnClosedStoreFails) {
  this->put_all({"p/a"});
  auto& s = this->shard();
  ASSERT_OK(this->store_->close());
  bool called = false;
  auto fn = [&](std::string_view, std::string_view) {
    called = true;
    return true;
  };
  EXPECT_EQ(code_of(s.scan("p/", "", false, fn)), errc::shutting_down);
  EXPECT_EQ(code_of(s.scan("p/", "", true, fn)), errc::shutting_down);
  EXPECT_FALSE(called);
}

// Verifies del_range removes exactly the keys in [begin, end): begin itself and keys
// extending begin go, end and keys above it stay, keys below begin stay.
TYPED_TEST(ScanTest, DelRangeRemovesExactlyHalfOpenRange) {
  this->put_all({"a", "a\xff", "b", std::string("b\0", 2), "ba", "b\xff\xff", "c", "c\x00x"s, "d"});
  write_batch batch;
  batch.del_range("b", "c");
  ASSERT_OK(this->shard().write(batch, false));
  EXPECT_THAT(this->all(), ElementsAre("a", "a\xff", "c", std::string("c\0x", 3), "d"));
  EXPECT_EQ(code_of(this->shard().get("ba")), errc::not_found);
  auto value = this->shard().get("c");
  ASSERT_OK(value);
  EXPECT_EQ(*value, "vc");
}

// Verifies del_range with begin == end removes nothing, and one over no keys succeeds.
TYPED_TEST(ScanTest, DelRangeEmptyRangeRemovesNothing) {
  this->put_all({"a", "b", "c"});
  write_batch batch;
  batch.del_range("b", "b");
  batch.del_range("x", "y");
  ASSERT_OK(this->shard().write(batch, false));
  EXPECT_THAT(this->all(), ElementsAre("a", "b", "c"));
}

// Verifies a batch applies its operations in order: a put before a del_range over its
// key is removed, a put after it stays.
TYPED_TEST(ScanTest, DelRangeAppliesInBatchOrder) {
  this->put_all({"k1", "k5"});
  write_batch batch;
  batch.put("k2", "vk2");
  batch.del_range("k", "l");
  batch.put("k3", "vk3");
  ASSERT_OK(this->shard().write(batch, false));
  EXPECT_THAT(this->scan("k", "", false), ElementsAre("k3"));
  EXPECT_THAT(this->scan("k", "", true), ElementsAre("k3"));
}

// Verifies del_range touches only its own shard.
TYPED_TEST(ScanTest, DelRangeStaysInItsShard) {
  write_batch other;
  other.put("b", "vb");
  ASSERT_OK(this->store_->shard(1).write(other, false));
  this->put_all({"b"});
  write_batch batch;
  batch.del_range("a", "z");
  ASSERT_OK(this->shard().write(batch, false));
  EXPECT_THAT(this->all(), IsEmpty());
  auto value = this->store_->shard(1).get("b");
  ASSERT_OK(value);
  EXPECT_EQ(*value, "vb");
}

// Verifies scans after a del_range skip the deleted keys in both directions, from any
// start, including a start inside the deleted range.
TYPED_TEST(ScanTest, ScansSkipDeletedRange) {
  this->put_all({"p/1", "p/2", "p/3", "p/4", "p/5"});
  write_batch batch;
  batch.del_range("p/2", "p/5");
  ASSERT_OK(this->shard().write(batch, false));
  EXPECT_THAT(this->scan("p/", "", false), ElementsAre("p/1", "p/5"));
  EXPECT_THAT(this->scan("p/", "", true), ElementsAre("p/5", "p/1"));
  EXPECT_THAT(this->scan("p/", "p/3", false), ElementsAre("p/5"));
  EXPECT_THAT(this->scan("p/", "p/3", true), ElementsAre("p/1"));
}

// Verifies a del_range is durable: after closing (flushing) and reopening the RocksDB
// store, the deleted keys stay deleted and the others remain.
class RocksDbScanTest : public ScanTest<test::rocksdb_factory> {};

TEST_F(RocksDbScanTest, DelRangeSurvivesReopen) {
  put_all({"a", "b", "c", "d"});
  write_batch batch;
  batch.del_range("b", "d");
  ASSERT_OK(shard().write(batch, false));
  ASSERT_OK(store_->close());
  ASSERT_NO_FATAL_FAILURE(reopen());
  EXPECT_THAT(all(), ElementsAre("a", "d"));
  EXPECT_THAT(scan("", "c", true), ElementsAre("a"));
}

// Verifies the memory store's live byte count drops by the removed keys and values.
TEST(MemoryScanTest, DelRangeUpdatesLiveBytes) {
  memory_store db(1);
  write_batch batch;
  batch.put("a", "12");  // 3
  batch.put("b", "345"); // 4
  batch.put("c", "6");   // 2
  ASSERT_OK(db.shard(0).write(batch, false));
  ASSERT_EQ(db.shard(0).live_data_bytes(), 9u);
  write_batch del;
  del.del_range("b", "z");
  ASSERT_OK(db.shard(0).write(del, false));
  EXPECT_EQ(db.shard(0).live_data_bytes(), 3u);
  EXPECT_EQ(db.shard(0).estimate_num_keys(), 1u);
}

// Verifies a write_batch counts a del_range's begin and end in its byte size.
TEST(MemoryScanTest, DelRangeCountsBytes) {
  write_batch batch;
  batch.del_range("abc", "abd");
  EXPECT_EQ(batch.size(), 1u);
  EXPECT_EQ(batch.bytes(), 6u);
  EXPECT_EQ(batch.ops().front().kind, write_batch::op_kind::del_range);
}

} // namespace
} // namespace shoal::storage
