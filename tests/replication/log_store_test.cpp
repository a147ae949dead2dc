// SPDX-License-Identifier: Apache-2.0
// The durable state of a group's raft_io on RocksDB on disk: term, vote, entries and the
// last snapshot come back after a reopen exactly as written; truncation and snapshot
// compaction keep the log contiguous; groups sharing a keyspace never touch each other;
// a gap in the log is reported as damage, not served.
#include "replication/log_store.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "tests/storage/storage_test_util.hpp"

namespace shoal::replication {
namespace {

using storage::test::temp_dir;
using namespace std::string_literals;

std::vector<stored_entry> entries(std::uint64_t term, int n, const std::string& tag) {
  std::vector<stored_entry> out;
  for (int i = 0; i < n; ++i) {
    out.push_back({term, static_cast<std::uint8_t>(1 + i % 3), tag + std::to_string(i) + "\0x"s});
  }
  return out;
}

std::vector<std::string> payloads(const stored_state& s) {
  std::vector<std::string> out;
  for (const auto& e : s.entries)
    out.push_back(e.payload);
  return out;
}

class LogStoreTest : public ::testing::Test {
protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    reopen();
  }
  void reopen() {
    if (store_) {
      ASSERT_TRUE(store_->close().ok());
    }
    store_.reset();
    storage::rocksdb_options options;
    options.path = dir_.path();
    options.shards = 1;
    options.block_cache_bytes = 1u << 20;
    options.write_buffer_bytes = 1u << 20;
    auto s = storage::open_rocksdb_store(options);
    ASSERT_TRUE(s.ok()) << s.error().to_string();
    store_ = std::move(*s);
  }
  storage::shard_store& keys() {
    return store_->shard(0);
  }
  stored_state load(std::uint32_t group = 7) {
    log_store log(keys(), group);
    auto s = log.load();
    EXPECT_TRUE(s.ok()) << s.error().to_string();
    return s ? std::move(*s) : stored_state{};
  }

  temp_dir dir_;
  std::unique_ptr<storage::store> store_;
};

TEST_F(LogStoreTest, AFreshGroupHasNothing) {
  log_store log(keys(), 7);
  ASSERT_FALSE(*log.has_state());
  auto s = log.load();
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->term, 0u);
  EXPECT_EQ(s->vote, 0u);
  EXPECT_FALSE(s->snapshot.has_value());
  EXPECT_EQ(s->start_index, 1u);
  EXPECT_TRUE(s->entries.empty());
  EXPECT_EQ(log.last_index(), 0u);
}

TEST_F(LogStoreTest, TermAndVoteSurviveAReopenAndANewTermHasNoVote) {
  {
    log_store log(keys(), 7);
    ASSERT_TRUE(log.set_term(3).ok());
    ASSERT_TRUE(log.set_vote(2).ok());
  }
  reopen();
  auto s = load();
  EXPECT_EQ(s.term, 3u);
  EXPECT_EQ(s.vote, 2u);
  {
    log_store log(keys(), 7);
    ASSERT_TRUE(log.set_term(4).ok());
  }
  reopen();
  s = load();
  EXPECT_EQ(s.term, 4u);
  EXPECT_EQ(s.vote, 0u) << "a vote belongs to the term it was cast in";
}

TEST_F(LogStoreTest, EntriesComeBackAsWritten) {
  {
    log_store log(keys(), 7);
    ASSERT_TRUE(log.load().ok());
    ASSERT_TRUE(log.append(1, entries(1, 3, "a")).ok());
    ASSERT_TRUE(log.append(4, entries(2, 2, "b")).ok());
    EXPECT_EQ(log.last_index(), 5u);
  }
  reopen();
  auto s = load();
  EXPECT_EQ(s.start_index, 1u);
  ASSERT_EQ(s.entries.size(), 5u);
  EXPECT_EQ(s.entries[0].term, 1u);
  EXPECT_EQ(s.entries[3].term, 2u);
  EXPECT_EQ(s.entries[1].type, 2u);
  EXPECT_EQ(s.entries[4].payload, "b1\0x"s);
}

TEST_F(LogStoreTest, AnAppendThatLeavesAGapIsRefused) {
  log_store log(keys(), 7);
  ASSERT_TRUE(log.load().ok());
  ASSERT_TRUE(log.append(1, entries(1, 2, "a")).ok());
  auto r = log.append(4, entries(1, 1, "gap"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), core::errc::internal);
  EXPECT_FALSE(log.append(2, entries(1, 1, "overlap")).ok());
  EXPECT_EQ(payloads(load()), (std::vector<std::string>{"a0\0x"s, "a1\0x"s}));
}

TEST_F(LogStoreTest, TruncationDropsTheTailAndTheLogGoesOnFromThere) {
  log_store log(keys(), 7);
  ASSERT_TRUE(log.load().ok());
  ASSERT_TRUE(log.append(1, entries(1, 5, "a")).ok());
  ASSERT_TRUE(log.truncate(3).ok());
  EXPECT_EQ(log.last_index(), 2u);
  ASSERT_TRUE(log.append(3, entries(2, 1, "b")).ok());
  EXPECT_FALSE(log.append(5, entries(2, 1, "c")).ok());
  reopen();
  auto s = load();
  EXPECT_EQ(payloads(s), (std::vector<std::string>{"a0\0x"s, "a1\0x"s, "b0\0x"s}));
  EXPECT_EQ(s.entries[2].term, 2u);
}

TEST_F(LogStoreTest, ASnapshotWithTrailingEntriesKeepsThem) {
  stored_snapshot snap;
  snap.index = 8;
  snap.term = 2;
  snap.config_index = 1;
  snap.config = {{1, "n1", 1},
                 {2,
                  std::string("n\0"
                              "2",
                              3),
                  0}};
  snap.data = "shard bytes\0\xff"s;
  {
    log_store log(keys(), 7);
    ASSERT_TRUE(log.load().ok());
    ASSERT_TRUE(log.append(1, entries(2, 10, "a")).ok());
    ASSERT_TRUE(log.put_snapshot(snap, 3).ok());
    EXPECT_EQ(log.last_index(), 10u);
    ASSERT_TRUE(log.append(11, entries(2, 1, "b")).ok());
  }
  reopen();
  auto s = load();
  EXPECT_EQ(s.start_index, 6u) << "entries up to 8 - 3 are gone";
  ASSERT_EQ(s.entries.size(), 6u);
  EXPECT_EQ(s.entries.front().payload, "a5\0x"s);
  EXPECT_EQ(s.entries.back().payload, "b0\0x"s);
  ASSERT_TRUE(s.snapshot.has_value());
  EXPECT_EQ(s.snapshot->index, 8u);
  EXPECT_EQ(s.snapshot->term, 2u);
  EXPECT_EQ(s.snapshot->config_index, 1u);
  ASSERT_EQ(s.snapshot->config.size(), 2u);
  EXPECT_EQ(s.snapshot->config[1].address, std::string("n\0"
                                                       "2",
                                                       3));
  EXPECT_EQ(s.snapshot->config[1].role, 0u);
  EXPECT_EQ(s.snapshot->data, snap.data);
}

TEST_F(LogStoreTest, AnInstalledSnapshotReplacesTheWholeLog) {
  stored_snapshot snap;
  snap.index = 20;
  snap.term = 5;
  snap.data = "x";
  {
    log_store log(keys(), 7);
    ASSERT_TRUE(log.load().ok());
    ASSERT_TRUE(log.append(1, entries(1, 4, "stale")).ok());
    ASSERT_TRUE(log.put_snapshot(snap, 0).ok());
    EXPECT_EQ(log.last_index(), 20u);
    EXPECT_FALSE(log.append(5, entries(5, 1, "old place")).ok());
    ASSERT_TRUE(log.append(21, entries(5, 2, "new")).ok());
  }
  reopen();
  auto s = load();
  EXPECT_EQ(s.start_index, 21u);
  EXPECT_EQ(payloads(s), (std::vector<std::string>{"new0\0x"s, "new1\0x"s}));
  reopen();
  log_store empty_after(keys(), 7);
  ASSERT_TRUE(empty_after.load().ok());
  ASSERT_TRUE(empty_after.truncate(21).ok());
  auto t = empty_after.load();
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(t->entries.empty());
  EXPECT_EQ(t->start_index, 21u) << "an empty log resumes after its snapshot";
}

TEST_F(LogStoreTest, GroupsSharingAKeyspaceNeverTouchEachOther) {
  log_store a(keys(), 1);
  log_store b(keys(), 256); // the same low byte as group 0's neighbour prefixes
  ASSERT_TRUE(a.load().ok());
  ASSERT_TRUE(b.load().ok());
  ASSERT_TRUE(a.append(1, entries(1, 3, "a")).ok());
  ASSERT_TRUE(b.append(1, entries(1, 3, "b")).ok());
  ASSERT_TRUE(a.set_term(9).ok());
  ASSERT_TRUE(a.truncate(1).ok());
  stored_snapshot snap;
  snap.index = 3;
  snap.data = "a";
  ASSERT_TRUE(a.put_snapshot(snap, 0).ok());
  auto s = load(256);
  EXPECT_EQ(s.term, 0u);
  EXPECT_EQ(payloads(s), (std::vector<std::string>{"b0\0x"s, "b1\0x"s, "b2\0x"s}));
  EXPECT_FALSE(s.snapshot.has_value());
  EXPECT_FALSE(*log_store(keys(), 2).has_state());
}

TEST_F(LogStoreTest, AGapInTheLogIsReportedAsDamage) {
  {
    log_store log(keys(), 7);
    ASSERT_TRUE(log.load().ok());
    ASSERT_TRUE(log.append(1, entries(1, 4, "a")).ok());
  }
  // Entry 2 goes missing behind the log store's back.
  std::string k = "L";
  k.append("\0\0\0\x07"s);
  k.push_back('e');
  k.append("\0\0\0\0\0\0\0\x02"s);
  storage::write_batch b;
  b.del(k);
  ASSERT_TRUE(keys().write(b, false).ok());
  log_store log(keys(), 7);
  auto s = log.load();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), core::errc::corrupt);
  EXPECT_NE(s.error().message().find("entry 2"), std::string::npos) << s.error().message();
}

} // namespace
} // namespace shoal::replication
