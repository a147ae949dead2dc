// SPDX-License-Identifier: Apache-2.0
// A shard as a Raft state machine, on RocksDB on disk: an entry and the applied index
// land in one write, a replay is skipped, damage and failed writes change nothing, and a
// snapshot replaces the keyspace only when it is newer than what the shard holds.
#include "replication/state_machine.hpp"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "replication/entry.hpp"
#include "tests/replication/shard_contents.hpp"
#include "tests/storage/storage_test_util.hpp"
#include "tests/support/faulty_store.hpp"

namespace shoal::replication {
namespace {

using test::shard_contents;
using test::shard_value;

using storage::write_batch;
using storage::test::temp_dir;

std::unique_ptr<storage::store> open_store(const std::string& dir) {
  return test::open_one_shard_store(dir);
}

std::string put_entry(const std::string& key, const std::string& value) {
  write_batch b;
  b.put(key, value);
  return encode_entry(b);
}

class StateMachineTest : public test::one_shard_test {};

TEST_F(StateMachineTest, AnEntryAndItsIndexLandTogether) {
  state_machine sm(shard(), false);
  EXPECT_EQ(sm.applied(), 0u);
  write_batch b;
  b.put("a", "1");
  b.put("b", "2");
  ASSERT_TRUE(sm.apply(1, encode_entry(b)).ok());
  EXPECT_EQ(sm.applied(), 1u);
  EXPECT_EQ(shard_value(shard(), "a"), "1");
  EXPECT_EQ(shard_value(shard(), "b"), "2");
  auto stored = read_applied(shard());
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(*stored, 1u);
}

TEST_F(StateMachineTest, AReplayedEntryIsSkipped) {
  state_machine sm(shard(), false);
  ASSERT_TRUE(sm.apply(1, put_entry("a", "1")).ok());
  ASSERT_TRUE(sm.apply(2, put_entry("a", "2")).ok());
  // libraft re-applies what follows its snapshot on every start: the shard has it.
  ASSERT_TRUE(sm.apply(2, put_entry("a", "replayed-2")).ok());
  ASSERT_TRUE(sm.apply(1, put_entry("a", "replayed-1")).ok());
  EXPECT_EQ(shard_value(shard(), "a"), "2");
  EXPECT_EQ(sm.applied(), 2u);
  ASSERT_TRUE(sm.apply(3, put_entry("a", "3")).ok());
  EXPECT_EQ(shard_value(shard(), "a"), "3");
}

TEST_F(StateMachineTest, TheAppliedIndexSurvivesARestart) {
  {
    state_machine sm(shard(), true);
    for (std::uint64_t i = 1; i <= 3; ++i) {
      ASSERT_TRUE(sm.apply(i, put_entry("a", std::to_string(i))).ok());
    }
  }
  ASSERT_TRUE(store_->close().ok());
  store_ = open_store(dir_.path());
  ASSERT_NE(store_, nullptr);
  state_machine again(shard(), true);
  EXPECT_EQ(again.applied(), 3u);
  ASSERT_TRUE(again.apply(3, put_entry("a", "replayed")).ok());
  EXPECT_EQ(shard_value(shard(), "a"), "3");
}

TEST_F(StateMachineTest, ADamagedEntryChangesNothingAndIsNotSkipped) {
  state_machine sm(shard(), false);
  auto bytes = put_entry("a", "1");
  auto damaged = bytes;
  damaged[3] = static_cast<char>(damaged[3] ^ 0x20);
  auto r = sm.apply(1, damaged);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), core::errc::corrupt);
  EXPECT_EQ(sm.applied(), 0u);
  EXPECT_FALSE(sm.last_error().empty());
  EXPECT_EQ(shard_value(shard(), "a"), "<not_found>");
  // libraft retries the same index: the good bytes apply, nothing was skipped.
  ASSERT_TRUE(sm.apply(1, bytes).ok());
  EXPECT_EQ(shard_value(shard(), "a"), "1");
  EXPECT_TRUE(sm.last_error().empty());
}

TEST_F(StateMachineTest, AFailedWriteChangesNothing) {
  testing::faulty_store faulty(*store_);
  state_machine sm(faulty.shard(0), true);
  faulty.fail_writes = true;
  auto r = sm.apply(1, put_entry("a", "1"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(sm.applied(), 0u);
  EXPECT_EQ(shard_value(shard(), "a"), "<not_found>");
  EXPECT_EQ(*read_applied(shard()), 0u);
  faulty.fail_writes = false;
  ASSERT_TRUE(sm.apply(1, put_entry("a", "1")).ok());
  EXPECT_EQ(sm.applied(), 1u);
}

TEST_F(StateMachineTest, ASnapshotReplacesAnOlderKeyspace) {
  state_machine source(shard(), false);
  write_batch b;
  b.put("a", "1");
  b.put("b", "2");
  b.put("c", "3");
  ASSERT_TRUE(source.apply(5, encode_entry(b)).ok());
  // index 7: entries 6 and 7 were barriers, which advance the index without a write
  auto image = source.snapshot(7);
  ASSERT_TRUE(image.ok());

  temp_dir other_dir;
  auto other = open_store(other_dir.path());
  ASSERT_NE(other, nullptr);
  state_machine behind(other->shard(0), false);
  write_batch old;
  old.put("x", "stale");
  old.put("b", "old");
  ASSERT_TRUE(behind.apply(2, encode_entry(old)).ok());

  ASSERT_TRUE(behind.restore(*image).ok());
  EXPECT_EQ(behind.applied(), 7u);
  auto want = shard_contents(shard());
  want[std::string(applied_key)] = std::string(7, '\0') + "\x07";
  EXPECT_EQ(shard_contents(other->shard(0)), want);
}

// Verifies the digest: two shards that applied the same entries agree on applied index,
// key count and checksum; one value more, one value different, or keys split
// differently between key and value give another checksum.
TEST_F(StateMachineTest, ADigestTellsWhetherTwoReplicasHoldTheSameShard) {
  auto digest_of = [](storage::shard_store& s, const std::vector<std::string>& entries) {
    state_machine sm(s, false);
    std::uint64_t i = 0;
    for (const auto& e : entries)
      EXPECT_TRUE(sm.apply(++i, e).ok());
    auto d = sm.digest();
    EXPECT_TRUE(d.ok());
    return d.ok() ? *d : state_machine::digest_value{};
  };
  auto fresh = [] {
    auto dir = std::make_unique<temp_dir>();
    auto store = open_store(dir->path());
    return std::make_pair(std::move(dir), std::move(store));
  };
  const auto mine = digest_of(shard(), {put_entry("a", "1"), put_entry("b", "22")});
  EXPECT_EQ(mine.applied_index, 2u);
  EXPECT_EQ(mine.keys, 3u); // a, b and the applied index
  auto same = fresh();
  const auto theirs = digest_of(same.second->shard(0), {put_entry("a", "1"), put_entry("b", "22")});
  EXPECT_EQ(theirs.checksum, mine.checksum);
  EXPECT_EQ(theirs.keys, mine.keys);
  auto changed = fresh();
  EXPECT_NE(
    digest_of(changed.second->shard(0), {put_entry("a", "1"), put_entry("b", "23")}).checksum,
    mine.checksum);
  auto shifted = fresh(); // "b"+"22" against "b2"+"2": the same bytes, another keyspace
  EXPECT_NE(
    digest_of(shifted.second->shard(0), {put_entry("a", "1"), put_entry("b2", "2")}).checksum,
    mine.checksum);
}

TEST_F(StateMachineTest, ASnapshotOlderThanTheShardIsIgnored) {
  // libraft restores its last snapshot on every start; the shard has applied past it.
  state_machine sm(shard(), false);
  ASSERT_TRUE(sm.apply(1, put_entry("a", "old")).ok());
  auto image = sm.snapshot(1);
  ASSERT_TRUE(image.ok());
  ASSERT_TRUE(sm.apply(2, put_entry("a", "new")).ok());
  ASSERT_TRUE(sm.restore(*image).ok());
  EXPECT_EQ(shard_value(shard(), "a"), "new");
  EXPECT_EQ(sm.applied(), 2u);
}

TEST_F(StateMachineTest, ADamagedSnapshotIsRefused) {
  state_machine sm(shard(), false);
  ASSERT_TRUE(sm.apply(1, put_entry("a", "1")).ok());
  auto image = sm.snapshot(4);
  ASSERT_TRUE(image.ok());
  auto damaged = *image;
  damaged.back() = static_cast<char>(damaged.back() ^ 1);

  temp_dir other_dir;
  auto other = open_store(other_dir.path());
  ASSERT_NE(other, nullptr);
  state_machine behind(other->shard(0), false);
  ASSERT_TRUE(behind.apply(1, put_entry("keep", "me")).ok());
  auto r = behind.restore(damaged);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), core::errc::corrupt);
  EXPECT_EQ(behind.applied(), 1u);
  EXPECT_EQ(shard_value(other->shard(0), "keep"), "me");
}

} // namespace
} // namespace shoal::replication
