// SPDX-License-Identifier: Apache-2.0
// RocksDB-only behaviour: persistence, layout checks, estimates, concurrency.
#include "storage/store.hpp"

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <rocksdb/db.h>
#include <gtest/gtest.h>

#include "tests/storage/storage_test_util.hpp"

namespace shoal::storage {
namespace {

using test::code_of;
using test::message_of;
using ::testing::HasSubstr;

class RocksDbStoreTest : public ::testing::Test {
protected:
  void SetUp() override {
    dir_ = std::make_unique<test::temp_dir>();
    ASSERT_FALSE(dir_->path().empty()) << "mkdtemp failed";
  }

  void TearDown() override {
    dir_.reset();
  }

  rocksdb_options options(std::uint32_t shards = 4) const {
    rocksdb_options result;
    result.path = dir_->path() + "/data";
    result.shards = shards;
    result.block_cache_bytes = 1u << 20;
    result.write_buffer_bytes = 1u << 20;
    return result;
  }

  static result<void> put(shard_store& s, std::string key, std::string value) {
    write_batch batch;
    batch.put(std::move(key), std::move(value));
    return s.write(batch, false);
  }

  /// Opens a store with `o`: a test failure (and nullptr) when that fails.
  static std::unique_ptr<store> open(const rocksdb_options& o) {
    auto opened = open_rocksdb_store(o);
    EXPECT_TRUE(test::is_ok("open_rocksdb_store(o)", opened));
    if (!opened) return nullptr;
    return std::move(opened).value();
  }

  /// The value of `key` in `s`, "<code>" when the read fails.
  static std::string read(shard_store& s, std::string_view key) {
    auto r = s.get(key);
    if (!r) return std::string("<") + core::to_string(r.error().code()) + ">";
    return *r;
  }

  std::unique_ptr<test::temp_dir> dir_;
};

/// Names and sizes of the files in `dir`, to show that a failed open touched nothing.
std::map<std::string, std::uintmax_t> list_files(const std::string& dir) {
  std::map<std::string, std::uintmax_t> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    files[entry.path().filename().string()] = entry.file_size();
  }
  return files;
}

// Verifies opening creates the data directory, parents included.
TEST_F(RocksDbStoreTest, OpenCreatesMissingDirectory) {
  auto opts = options();
  opts.path = dir_->path() + "/a/b/c";
  auto db = open(opts);
  ASSERT_NE(db, nullptr);
  EXPECT_TRUE(std::filesystem::is_directory(opts.path));
  EXPECT_TRUE(std::filesystem::exists(opts.path + "/CURRENT"));
}

// Verifies bad options fail with invalid_argument, say what is wrong and create nothing.
TEST_F(RocksDbStoreTest, OpenRejectsBadOptions) {
  auto opened = open_rocksdb_store(options(0));
  EXPECT_EQ(code_of(opened), errc::invalid_argument);
  EXPECT_THAT(message_of(opened), HasSubstr("shard count 0"));
  opened = open_rocksdb_store(options(100001));
  EXPECT_EQ(code_of(opened), errc::invalid_argument);
  EXPECT_THAT(message_of(opened), HasSubstr("shard count 100001"));
  EXPECT_FALSE(std::filesystem::exists(options().path));
  auto opts = options();
  opts.path.clear();
  opened = open_rocksdb_store(opts);
  EXPECT_EQ(code_of(opened), errc::invalid_argument);
  EXPECT_THAT(message_of(opened), HasSubstr("path is empty"));
}

// Verifies each shard is a column family named "shard-NNNNN" (read from the newest
// OPTIONS file, which RocksDB writes after the families change).
TEST_F(RocksDbStoreTest, ShardsAreNamedColumnFamilies) {
  auto db = open(options(3));
  ASSERT_NE(db, nullptr);
  ASSERT_OK(db->close());
  std::string newest; // OPTIONS-NNNNNN: the numbers have the same width
  for (const auto& entry : std::filesystem::directory_iterator(options().path)) {
    auto name = entry.path().filename().string();
    if (name.rfind("OPTIONS-", 0) == 0 && name > newest) newest = name;
  }
  ASSERT_FALSE(newest.empty()) << "no OPTIONS file";
  std::ifstream in(std::filesystem::path(options().path) / newest);
  std::string text(std::istreambuf_iterator<char>(in), {});
  EXPECT_THAT(text, HasSubstr("[CFOptions \"shard-00000\"]"));
  EXPECT_THAT(text, HasSubstr("[CFOptions \"shard-00002\"]"));
  EXPECT_THAT(text, HasSubstr("[CFOptions \"raft-log\"]"));
  EXPECT_THAT(text, ::testing::Not(HasSubstr("shard-00003")));
}

// Verifies the Raft logs' keyspace is a family of its own: what is written there is in
// no shard, a shard's range delete leaves it alone, and it survives a reopen.
TEST_F(RocksDbStoreTest, TheRaftLogKeyspaceIsItsOwnAndSurvivesReopen) {
  auto db = open(options(2));
  ASSERT_NE(db, nullptr);
  ASSERT_OK(put(db->raft_log(), "L-key", "entry"));
  ASSERT_OK(put(db->shard(0), "L-key", "shard's"));
  storage::write_batch wipe;
  wipe.del_range("", "\xff\xff");
  ASSERT_OK(db->shard(0).write(wipe, false));
  EXPECT_EQ(code_of(db->shard(1).get("L-key")), errc::not_found);
  ASSERT_OK(db->close());
  db = open(options(2));
  ASSERT_NE(db, nullptr);
  auto kept = db->raft_log().get("L-key");
  ASSERT_OK(kept);
  EXPECT_EQ(*kept, "entry");
  EXPECT_EQ(code_of(db->shard(0).get("L-key")), errc::not_found);
}

// Verifies data written (without sync) survives close and reopen, on every shard.
TEST_F(RocksDbStoreTest, DataSurvivesCloseAndReopen) {
  auto db = open(options());
  ASSERT_NE(db, nullptr);
  for (std::uint32_t i = 0; i < 4; ++i) {
    ASSERT_OK(put(db->shard(i), "k", "v" + std::to_string(i)));
  }
  const auto sequence = db->latest_sequence();
  ASSERT_OK(db->close());
  db.reset();

  db = open(options());
  ASSERT_NE(db, nullptr);
  EXPECT_GE(db->latest_sequence(), sequence);
  for (std::uint32_t i = 0; i < 4; ++i) {
    EXPECT_EQ(read(db->shard(i), "k"), "v" + std::to_string(i));
  }
}

// Verifies the destructor closes an open store so that its data survives.
TEST_F(RocksDbStoreTest, DestructorClosesStore) {
  auto db = open(options());
  ASSERT_NE(db, nullptr);
  ASSERT_OK(put(db->shard(1), "k", "v"));
  db.reset();
  db = open(options());
  ASSERT_NE(db, nullptr);
  EXPECT_EQ(read(db->shard(1), "k"), "v");
}

// Verifies reopening with another shard count is incompatible, names both counts and
// leaves the directory usable with the original count.
TEST_F(RocksDbStoreTest, ReopenWithDifferentShardCountIsIncompatible) {
  auto db = open(options(16));
  ASSERT_NE(db, nullptr);
  ASSERT_OK(put(db->shard(15), "k", "v"));
  ASSERT_OK(db->close());
  db.reset();

  const auto files = list_files(options().path);
  for (std::uint32_t shards : {64u, 8u}) {
    auto st = open_rocksdb_store(options(shards));
    EXPECT_EQ(code_of(st), errc::incompatible);
    EXPECT_THAT(message_of(st), HasSubstr("has 16 shards"));
    EXPECT_THAT(message_of(st), HasSubstr("config says " + std::to_string(shards)));
  }
  EXPECT_EQ(list_files(options().path), files);

  db = open(options(16));
  ASSERT_NE(db, nullptr);
  EXPECT_EQ(read(db->shard(15), "k"), "v");
}

/// Creates a database holding only some shard column families and no meta keys: what a
/// first start leaves behind when it is killed while creating the column families.
void make_partial_database(const std::string& path, const std::vector<std::string>& shards) {
  rocksdb::Options opts;
  opts.create_if_missing = true;
  opts.create_missing_column_families = true;
  std::vector<rocksdb::ColumnFamilyDescriptor> families{
    {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions()}};
  for (const auto& name : shards)
    families.emplace_back(name, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(opts, path, families, &handles, &db).ok());
  for (auto* h : handles)
    db->DestroyColumnFamilyHandle(h);
  delete db;
}

// Verifies a directory remembers its layout: another layout is refused naming both and
// changing nothing; the same layout opens; a directory written before layouts existed
// (or opened without one) adopts the first layout it is opened with.
TEST_F(RocksDbStoreTest, ReopenWithDifferentLayoutIsIncompatible) {
  auto with_layout = [this](std::string layout) {
    auto o = options();
    o.layout = std::move(layout);
    return o;
  };
  auto db = open(options()); // no layout yet
  ASSERT_NE(db, nullptr);
  ASSERT_OK(put(db->shard(1), "k", "v"));
  ASSERT_OK(db->close());
  db.reset();
  db = open(with_layout("node n1 of the cluster [n1, n2]"));
  ASSERT_NE(db, nullptr);
  ASSERT_OK(db->close());
  db.reset();
  auto st = open_rocksdb_store(with_layout("node n1 of the cluster [n1, n2, n3]"));
  EXPECT_EQ(code_of(st), errc::incompatible);
  EXPECT_THAT(message_of(st), HasSubstr("belongs to node n1 of the cluster [n1, n2]"));
  EXPECT_THAT(message_of(st), HasSubstr("this node is node n1 of the cluster [n1, n2, n3]"));
  db = open(with_layout("node n1 of the cluster [n1, n2]"));
  ASSERT_NE(db, nullptr);
  EXPECT_EQ(read(db->shard(1), "k"), "v");
}

// Verifies a creation interrupted midway resumes on the next start instead of being
// refused as a different layout; afterwards the layout is fixed.
TEST_F(RocksDbStoreTest, InterruptedCreationResumes) {
  make_partial_database(options().path, {"shard-00000", "shard-00001"});
  auto db = open(options(4));
  ASSERT_NE(db, nullptr);
  EXPECT_EQ(db->shard_count(), 4u);
  ASSERT_OK(put(db->shard(3), "k", "v"));
  ASSERT_OK(db->close());
  db.reset();
  EXPECT_EQ(code_of(open_rocksdb_store(options(8))), errc::incompatible);
}

// Verifies a directory made before the Raft logs' family existed (its shards complete,
// no "raft-log") opens, keeps its data, and gets the family.
TEST_F(RocksDbStoreTest, ADirectoryWithoutTheRaftLogFamilyGetsIt) {
  {
    auto db = open(options(2));
    ASSERT_NE(db, nullptr);
    ASSERT_OK(put(db->shard(1), "k", "v"));
    ASSERT_OK(db->close());
  }
  {
    rocksdb::DBOptions opts;
    std::vector<rocksdb::ColumnFamilyDescriptor> families;
    for (const auto* name : {"default", "shard-00000", "shard-00001", "raft-log"})
      families.emplace_back(name, rocksdb::ColumnFamilyOptions());
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(opts, options().path, families, &handles, &raw).ok());
    ASSERT_TRUE(raw->DropColumnFamily(handles[3]).ok());
    for (auto* h : handles)
      raw->DestroyColumnFamilyHandle(h);
    delete raw;
  }
  auto db = open(options(2));
  ASSERT_NE(db, nullptr);
  auto kept = db->shard(1).get("k");
  ASSERT_OK(kept);
  EXPECT_EQ(*kept, "v");
  ASSERT_OK(put(db->raft_log(), "t", "1"));
}

// Verifies an interrupted creation with a column family outside the configured shards
// is refused.
TEST_F(RocksDbStoreTest, InterruptedCreationWithForeignShardIsIncompatible) {
  make_partial_database(options().path, {"shard-00000", "shard-00009"});
  auto st = open_rocksdb_store(options(4));
  EXPECT_EQ(code_of(st), errc::incompatible);
  EXPECT_THAT(message_of(st), HasSubstr("shard-00009"));
}

// Verifies the key estimate and live size are positive after 1000 keys are flushed by reopen.
TEST_F(RocksDbStoreTest, EstimatesArePositiveAfterFlush) {
  auto db = open(options());
  ASSERT_NE(db, nullptr);
  write_batch batch;
  for (int i = 0; i < 1000; ++i) {
    batch.put("key-" + std::to_string(i), std::string(100, 'x'));
    if (batch.size() == 100) {
      ASSERT_OK(db->shard(2).write(batch, false));
      batch.clear();
    }
  }
  ASSERT_OK(db->close());
  db.reset();

  db = open(options());
  ASSERT_NE(db, nullptr);
  EXPECT_GT(db->shard(2).estimate_num_keys(), 0u);
  EXPECT_GT(db->shard(2).live_data_bytes(), 0u);
  EXPECT_EQ(db->shard(3).estimate_num_keys(), 0u);
  ASSERT_OK(db->close());
  EXPECT_EQ(db->shard(2).estimate_num_keys(), 0u);
}

// Verifies four writers on different shards and a concurrent WAL syncer all succeed and
// every write is readable afterwards.
TEST_F(RocksDbStoreTest, ConcurrentWritersAndWalSyncer) {
  constexpr std::uint32_t writers = 4;
  constexpr int batches = 200;
  constexpr int keys_per_batch = 5;
  constexpr int syncs = 100;
  auto db = open(options(writers));
  ASSERT_NE(db, nullptr);

  std::mutex errors_mutex;
  std::vector<std::string> errors;
  auto record = [&](const result<void>& st) {
    if (st) return;
    std::lock_guard<std::mutex> lock(errors_mutex);
    errors.push_back(st.error().to_string());
  };

  std::vector<std::thread> threads;
  for (std::uint32_t w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      auto& s = db->shard(w);
      write_batch batch;
      for (int b = 0; b < batches; ++b) {
        batch.clear();
        for (int k = 0; k < keys_per_batch; ++k) {
          const auto key = std::to_string(b * keys_per_batch + k);
          batch.put(key, "w" + std::to_string(w) + "-" + key);
        }
        record(s.write(batch, b % 50 == 0)); // a few synced writes among unsynced ones
      }
    });
  }
  threads.emplace_back([&] {
    for (int i = 0; i < syncs; ++i)
      record(db->sync_wal());
  });
  for (auto& t : threads)
    t.join();
  EXPECT_THAT(errors, ::testing::IsEmpty());

  for (std::uint32_t w = 0; w < writers; ++w) {
    std::size_t count = 0;
    ASSERT_OK(db->shard(w).scan_prefix("", [&](std::string_view k, std::string_view v) {
      ++count;
      return v == "w" + std::to_string(w) + "-" + std::string(k);
    }));
    EXPECT_EQ(count, static_cast<std::size_t>(batches * keys_per_batch)) << "shard " << w;
  }
}

} // namespace
} // namespace shoal::storage
