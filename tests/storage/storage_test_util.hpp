// SPDX-License-Identifier: Apache-2.0
// Helpers shared by the storage tests: an ASSERT_OK predicate, a scratch directory, and
// the factories and fixture of the tests every store implementation must pass.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>

#include <gtest/gtest.h>

#include "storage/memory_store.hpp"
#include "storage/status.hpp"
#include "storage/store.hpp"

namespace shoal::storage::test {

/// Predicate formatter for ASSERT_OK / EXPECT_OK: prints `status::to_string()` on failure.
inline ::testing::AssertionResult is_ok(const char* expr, const status& st) {
  if (st.is_ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << expr << " returned " << st.to_string();
}

/// A fresh directory under the system temp directory (mkdtemp), removed with its contents
/// on destruction. `path()` is empty when creation failed.
class temp_dir {
public:
  temp_dir() {
    auto pattern = (std::filesystem::temp_directory_path() / "shoal-storage-XXXXXX").string();
    if (::mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~temp_dir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  temp_dir(temp_dir&&) = delete;
  temp_dir& operator=(temp_dir&&) = delete;

  const std::string& path() const noexcept {
    return path_;
  }

private:
  std::string path_;
};

/// Shards of the stores the factories open.
constexpr std::uint32_t factory_shards = 4;

/// Opens a memory_store; ignores the directory.
struct memory_factory {
  static constexpr const char* name = "Memory";
  static status open(const std::string& /*dir*/, std::unique_ptr<store>& out) {
    out = std::make_unique<memory_store>(factory_shards);
    return status::ok();
  }
};

/// Opens a RocksDB store in the directory, with small buffers.
struct rocksdb_factory {
  static constexpr const char* name = "RocksDb";
  static status open(const std::string& dir, std::unique_ptr<store>& out) {
    rocksdb_options options;
    options.path = dir;
    options.shards = factory_shards;
    options.block_cache_bytes = 1u << 20;
    options.write_buffer_bytes = 1u << 20;
    return open_rocksdb_store(options, out);
  }
};

/// Names typed tests after their factory ("Memory", "RocksDb").
struct factory_name {
  template <class Factory>
  static std::string GetName(int) {
    return Factory::name;
  }
};

using store_factories = ::testing::Types<memory_factory, rocksdb_factory>;

/// A store opened by `Factory` in a fresh directory, closed before the directory goes.
template <class Factory>
class store_fixture : public ::testing::Test {
protected:
  void SetUp() override {
    dir_ = std::make_unique<temp_dir>();
    ASSERT_FALSE(dir_->path().empty()) << "mkdtemp failed";
    ASSERT_TRUE(Factory::open(dir_->path(), store_).is_ok());
    ASSERT_NE(store_, nullptr);
  }

  void TearDown() override {
    store_.reset();
    dir_.reset();
  }

  std::unique_ptr<temp_dir> dir_;
  std::unique_ptr<store> store_;
};

} // namespace shoal::storage::test

#define ASSERT_OK(expr) ASSERT_PRED_FORMAT1(::shoal::storage::test::is_ok, expr)
#define EXPECT_OK(expr) EXPECT_PRED_FORMAT1(::shoal::storage::test::is_ok, expr)
