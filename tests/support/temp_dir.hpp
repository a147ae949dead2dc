// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <filesystem>
#include <string_view>

namespace shoal::test {

/// A fresh directory under the system temp directory (TMPDIR), removed with everything
/// in it when the object dies. Set SHOAL_KEEP_TEMP=1 to keep it for a post-mortem.
class temp_dir {
public:
  /// Creates `<tmp>/<prefix>-XXXXXX`; throws std::system_error when it cannot.
  explicit temp_dir(std::string_view prefix = "shoal-test");
  ~temp_dir();

  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  temp_dir(temp_dir&&) = delete;
  temp_dir& operator=(temp_dir&&) = delete;

  const std::filesystem::path& path() const noexcept {
    return path_;
  }

  /// `path() / name`; nothing is created.
  std::filesystem::path operator/(std::string_view name) const {
    return path_ / std::filesystem::path(name);
  }

private:
  std::filesystem::path path_;
};

} // namespace shoal::test
