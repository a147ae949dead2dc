// SPDX-License-Identifier: Apache-2.0
#include "core/names.hpp"

namespace shoal::core {

namespace {

bool alnum(char c) noexcept {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

} // namespace

bool valid_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name)
    if (!alnum(c) && c != '_' && c != '-') return false;
  return true;
}

bool valid_id(std::string_view id) noexcept {
  if (id.empty() || id.size() > 256 || id == "." || id == "..") return false;
  for (char c : id)
    if (!alnum(c) && c != '_' && c != '-' && c != '.' && c != ':' && c != '@') return false;
  return true;
}

} // namespace shoal::core
