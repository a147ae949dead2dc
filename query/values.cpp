// SPDX-License-Identifier: Apache-2.0
#include "query/values.hpp"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

namespace shoal::query {
namespace {

namespace json = boost::json;

constexpr char key_missing = 0x01;
constexpr char key_null = 0x02;
constexpr char key_false = 0x03;
constexpr char key_true = 0x04;
constexpr char key_number = 0x05;
constexpr char key_string = 0x06;

template <typename T>
int three_way(T a, T b) noexcept {
  return a < b ? -1 : (b < a ? 1 : 0);
}

/// Exact comparison of a double with an int64. NaN orders after every number.
int compare_double_int(double d, std::int64_t i) noexcept {
  if (std::isnan(d)) return 1;
  constexpr double two63 = 9223372036854775808.0; // 2^63, exact
  if (d >= two63) return 1;
  if (d < -two63) return -1;
  double t = std::trunc(d); // in [-2^63, 2^63): converts exactly
  auto ti = static_cast<std::int64_t>(t);
  if (ti != i) return ti < i ? -1 : 1;
  return three_way(d - t, 0.0);
}

/// Exact comparison of a double with a uint64. NaN orders after every number.
int compare_double_uint(double d, std::uint64_t u) noexcept {
  if (std::isnan(d)) return 1;
  constexpr double two64 = 18446744073709551616.0; // 2^64, exact
  if (d < 0) return -1;
  if (d >= two64) return 1;
  double t = std::trunc(d); // in [0, 2^64): converts exactly
  auto tu = static_cast<std::uint64_t>(t);
  if (tu != u) return tu < u ? -1 : 1;
  return three_way(d - t, 0.0);
}

int compare_int_uint(std::int64_t i, std::uint64_t u) noexcept {
  if (i < 0) return -1;
  return three_way(static_cast<std::uint64_t>(i), u);
}

int compare_doubles(double a, double b) noexcept {
  bool an = std::isnan(a);
  bool bn = std::isnan(b);
  if (an || bn) return an == bn ? 0 : (an ? 1 : -1);
  return three_way(a, b); // -0.0 == +0.0
}

int compare_numbers(const json::value& a, const json::value& b) noexcept {
  switch (a.kind()) {
  case json::kind::int64:
    switch (b.kind()) {
    case json::kind::int64:
      return three_way(a.get_int64(), b.get_int64());
    case json::kind::uint64:
      return compare_int_uint(a.get_int64(), b.get_uint64());
    default:
      return -compare_double_int(b.get_double(), a.get_int64());
    }
  case json::kind::uint64:
    switch (b.kind()) {
    case json::kind::int64:
      return -compare_int_uint(b.get_int64(), a.get_uint64());
    case json::kind::uint64:
      return three_way(a.get_uint64(), b.get_uint64());
    default:
      return -compare_double_uint(b.get_double(), a.get_uint64());
    }
  default:
    switch (b.kind()) {
    case json::kind::int64:
      return compare_double_int(a.get_double(), b.get_int64());
    case json::kind::uint64:
      return compare_double_uint(a.get_double(), b.get_uint64());
    default:
      return compare_doubles(a.get_double(), b.get_double());
    }
  }
}

int compare_bytes(std::string_view a, std::string_view b) noexcept {
  std::size_t n = a.size() < b.size() ? a.size() : b.size();
  int c = n == 0 ? 0 : std::memcmp(a.data(), b.data(), n);
  if (c != 0) return c < 0 ? -1 : 1;
  return three_way(a.size(), b.size());
}

double number_as_double(const json::value& v) noexcept {
  switch (v.kind()) {
  case json::kind::int64:
    return static_cast<double>(v.get_int64());
  case json::kind::uint64:
    return static_cast<double>(v.get_uint64());
  default:
    return v.get_double();
  }
}

/// The 8 order-preserving bytes of `d`: positive numbers get the sign bit set, negative
/// numbers are inverted, so the big-endian bytes order like the numbers. -0 is written as
/// +0 and every NaN as the positive quiet NaN (after +infinity), as `compare` orders them.
void append_double(std::string& out, double d) {
  if (d == 0.0) d = 0.0;
  if (std::isnan(d)) d = std::numeric_limits<double>::quiet_NaN();
  std::uint64_t bits = 0;
  std::memcpy(&bits, &d, sizeof bits);
  if (std::isnan(d)) bits &= ~(std::uint64_t{1} << 63);
  if ((bits >> 63) != 0) {
    bits = ~bits;
  } else {
    bits |= std::uint64_t{1} << 63;
  }
  for (int shift = 56; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((bits >> shift) & 0xFF));
  }
}

} // namespace

int type_rank(const json::value& v) noexcept {
  switch (v.kind()) {
  case json::kind::null:
    return 0;
  case json::kind::bool_:
    return 1;
  case json::kind::int64:
  case json::kind::uint64:
  case json::kind::double_:
    return 2;
  case json::kind::string:
    return 3;
  case json::kind::array:
    return 4;
  case json::kind::object:
    return 5;
  }
  return 5;
}

bool is_scalar(const json::value& v) noexcept {
  switch (v.kind()) {
  case json::kind::null:
  case json::kind::bool_:
  case json::kind::int64:
  case json::kind::uint64:
  case json::kind::double_:
  case json::kind::string:
    return true;
  default:
    return false;
  }
}

bool append_value_key(std::string& out, const json::value& v) {
  switch (v.kind()) {
  case json::kind::null:
    out.push_back(key_null);
    return true;
  case json::kind::bool_:
    out.push_back(v.get_bool() ? key_true : key_false);
    return true;
  case json::kind::int64:
  case json::kind::uint64:
  case json::kind::double_:
    out.push_back(key_number);
    append_double(out, number_as_double(v));
    return true;
  case json::kind::string: {
    const json::string& s = v.get_string();
    out.reserve(out.size() + s.size() + 3);
    out.push_back(key_string);
    for (char c : s) {
      out.push_back(c);
      if (c == '\0') out.push_back('\xFF');
    }
    out.push_back('\0');
    out.push_back('\x01');
    return true;
  }
  default:
    return false;
  }
}

void append_missing_key(std::string& out) {
  out.push_back(key_missing);
}

std::optional<std::string> value_key(const json::value& v) {
  std::string out;
  if (!append_value_key(out, v)) return std::nullopt;
  return out;
}

int compare(const json::value& a, const json::value& b) noexcept {
  int ra = type_rank(a);
  int rb = type_rank(b);
  if (ra != rb) return ra < rb ? -1 : 1;
  switch (ra) {
  case 1:
    return three_way(a.get_bool(), b.get_bool());
  case 2:
    return compare_numbers(a, b);
  case 3: {
    const json::string& sa = a.get_string();
    const json::string& sb = b.get_string();
    return compare_bytes(std::string_view(sa.data(), sa.size()),
                         std::string_view(sb.data(), sb.size()));
  }
  default:
    return 0; // null, and the incomparable arrays and objects
  }
}

const json::value* lookup(const json::value& doc, std::string_view path) noexcept {
  const json::value* cur = &doc;
  for (;;) {
    std::size_t dot = path.find('.');
    std::string_view name = path.substr(0, dot);
    const json::object* obj = cur->if_object();
    if (obj == nullptr) return nullptr;
    cur = obj->if_contains(json::string_view(name.data(), name.size()));
    if (cur == nullptr) return nullptr;
    if (dot == std::string_view::npos) return cur;
    path.remove_prefix(dot + 1);
  }
}

bool valid_path(std::string_view path) noexcept {
  constexpr std::size_t max_bytes = 256;
  constexpr std::size_t max_names = 8;
  constexpr std::size_t max_name = 64;
  if (path.empty() || path.size() > max_bytes) return false;
  std::size_t names = 1;
  std::size_t len = 0;
  for (char c : path) {
    if (c == '.') {
      if (len == 0 || ++names > max_names) return false;
      len = 0;
      continue;
    }
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'
              || c == '-';
    if (!ok || ++len > max_name) return false;
  }
  return len != 0;
}

} // namespace shoal::query
