// SPDX-License-Identifier: Apache-2.0
#pragma once

// Lenient readers of JSON object members for end-to-end tests: a missing member or a value
// of another type gives a neutral answer instead of throwing, so a wrong response fails
// an assertion with its body rather than aborting the test.

#include <cstdint>
#include <string>
#include <string_view>

#include <boost/json/value.hpp>

namespace shoal::test {

/// A member of a JSON object, or null when `v` is not an object or lacks it.
inline boost::json::value at(const boost::json::value& v, std::string_view key) {
  const auto* o = v.if_object();
  if (!o) return nullptr;
  const auto* m = o->if_contains(key);
  return m ? *m : boost::json::value(nullptr);
}

/// A string member, or "" when absent or not a string.
inline std::string str(const boost::json::value& v, std::string_view key) {
  auto m = at(v, key);
  return m.is_string() ? std::string(m.get_string()) : std::string();
}

/// An integer member, or -1 when absent or not an integer.
inline std::int64_t num(const boost::json::value& v, std::string_view key) {
  auto m = at(v, key);
  if (m.is_int64()) return m.get_int64();
  if (m.is_uint64()) return static_cast<std::int64_t>(m.get_uint64());
  return -1;
}

} // namespace shoal::test
