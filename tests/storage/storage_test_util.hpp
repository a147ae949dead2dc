// SPDX-License-Identifier: Apache-2.0
// Helpers shared by the storage tests: an ASSERT_OK predicate, the error code of a result,
// a scratch directory, and the factories and fixture of the tests every store
// implementation must pass.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <system_error>

#include <gtest/gtest.h>

#include "core/error.hpp"
#include "core/result.hpp"
#include "storage/memory_store.hpp"
#include "storage/store.hpp"

namespace shoal::core {

/// Prints an errc by its name in gtest messages ("not_found", not a raw byte).
inline void PrintTo(errc x, std::ostream* os) {
  *os << to_string(x);
}

} // namespace shoal::core

namespace shoal::storage::test {

/// Predicate formatter for ASSERT_OK / EXPECT_OK: prints `error::to_string()` on failure.
template <class T>
::testing::AssertionResult is_ok(const char* expr, const result<T>& r) {
  if (r.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << expr << " returned " << r.error().to_string();
}

/// The error code of `r`, or nullopt when it succeeded (so a success compares unequal to
/// every code instead of reading an error that is not there).
template <class T>
std::optional<errc> code_of(const result<T>& r) {
  if (r.ok()) return std::nullopt;
  return r.error().code();
}

/// The message of `r`'s error; empty when it succeeded.
template <class T>
std::string message_of(const result<T>& r) {
  return r.ok() ? std::string() : r.error().message();
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
  static result<std::unique_ptr<store>> open(const std::string& /*dir*/) {
    return std::unique_ptr<store>(std::make_unique<memory_store>(factory_shards));
  }
};

/// Opens a RocksDB store in the directory, with small buffers.
struct rocksdb_factory {
  static constexpr const char* name = "RocksDb";
  static result<std::unique_ptr<store>> open(const std::string& dir) {
    rocksdb_options options;
    options.path = dir;
    options.shards = factory_shards;
    options.block_cache_bytes = 1u << 20;
    options.write_buffer_bytes = 1u << 20;
    return open_rocksdb_store(options);
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
    ASSERT_NO_FATAL_FAILURE(reopen());
  }

  void TearDown() override {
    store_.reset();
    dir_.reset();
  }

  /// Opens the store anew in the same directory (after the test closed and dropped it).
  void reopen() {
    store_.reset();
    auto opened = Factory::open(dir_->path());
    ASSERT_TRUE(is_ok("Factory::open(dir)", opened));
    store_ = std::move(opened).value();
    ASSERT_NE(store_, nullptr);
  }

  std::unique_ptr<temp_dir> dir_;
  std::unique_ptr<store> store_;
};

} // namespace shoal::storage::test

#define ASSERT_OK(expr) ASSERT_PRED_FORMAT1(::shoal::storage::test::is_ok, expr)
#define EXPECT_OK(expr) EXPECT_PRED_FORMAT1(::shoal::storage::test::is_ok, expr)
