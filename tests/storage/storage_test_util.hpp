// SPDX-License-Identifier: Apache-2.0
// Helpers shared by the storage tests: an ASSERT_OK predicate and a scratch directory.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

#include <gtest/gtest.h>

#include "storage/status.hpp"

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

} // namespace shoal::storage::test

#define ASSERT_OK(expr) ASSERT_PRED_FORMAT1(::shoal::storage::test::is_ok, expr)
#define EXPECT_OK(expr) EXPECT_PRED_FORMAT1(::shoal::storage::test::is_ok, expr)
