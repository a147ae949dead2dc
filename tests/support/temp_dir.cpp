// SPDX-License-Identifier: Apache-2.0
#include "tests/support/temp_dir.hpp"

#include <cerrno>
#include <cstdlib>
#include <string>
#include <system_error>
#include <vector>

#include <stdlib.h>

namespace shoal::test {

temp_dir::temp_dir(std::string_view prefix) {
  auto pattern =
    (std::filesystem::temp_directory_path() / std::string(prefix)).string() + "-XXXXXX";
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr)
    throw std::system_error(errno, std::generic_category(), "mkdtemp " + pattern);
  path_ = buf.data();
}

temp_dir::~temp_dir() {
  if (const char* keep = std::getenv("SHOAL_KEEP_TEMP"); keep != nullptr && *keep != '\0') return;
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

} // namespace shoal::test
