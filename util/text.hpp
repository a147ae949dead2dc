// SPDX-License-Identifier: Apache-2.0
#pragma once

// Small text helpers for lists and header values that several layers parse.

#include <string_view>

namespace shoal::util {

/// `s` without leading and trailing spaces and tabs (HTTP's optional whitespace).
constexpr std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

/// Calls `f` with each trimmed item of a `sep`-separated list, in order, empty ones
/// included ("a,,b" gives "a", "", "b"); stops early when `f` returns false.
template <class F>
void for_each_item(std::string_view list, char sep, F&& f) {
  for (;;) {
    const auto at = list.find(sep);
    if (!f(trim(list.substr(0, at)))) return;
    if (at == std::string_view::npos) return;
    list.remove_prefix(at + 1);
  }
}

} // namespace shoal::util
