// SPDX-License-Identifier: Apache-2.0
#pragma once

// What a replica's shard holds, for comparing replicas: every key and value, and one
// value (or "<error name>").

#include <gtest/gtest.h>

#include <map>
#include <string>

#include <memory>

#include "storage/store.hpp"
#include "tests/storage/storage_test_util.hpp"

namespace shoal::replication::test {

inline std::map<std::string, std::string> shard_contents(storage::shard_store& shard) {
  std::map<std::string, std::string> out;
  const auto scanned = shard.scan_prefix({}, [&](std::string_view k, std::string_view v) {
    out.emplace(std::string(k), std::string(v));
    return true;
  });
  EXPECT_TRUE(scanned.ok());
  return out;
}

/// A RocksDB store of one shard (and the raft-log family) in `dir`, with small caches.
inline std::unique_ptr<storage::store> open_one_shard_store(const std::string& dir) {
  storage::rocksdb_options options;
  options.path = dir;
  options.shards = 1;
  options.block_cache_bytes = 1u << 20;
  options.write_buffer_bytes = 1u << 20;
  auto s = storage::open_rocksdb_store(options);
  EXPECT_TRUE(s.ok()) << s.error().to_string();
  return s ? std::move(*s) : nullptr;
}

/// A test with one such store in a fresh directory.
class one_shard_test : public ::testing::Test {
protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    store_ = open_one_shard_store(dir_.path());
    ASSERT_NE(store_, nullptr);
  }
  storage::shard_store& shard() {
    return store_->shard(0);
  }

  storage::test::temp_dir dir_;
  std::unique_ptr<storage::store> store_;
};

inline std::string shard_value(storage::shard_store& shard, const std::string& key) {
  auto v = shard.get(key);
  return v ? *v : "<" + std::string(core::to_string(v.error().code())) + ">";
}

} // namespace shoal::replication::test
