// SPDX-License-Identifier: Apache-2.0
#include "util/json.hpp"

#include <charconv>
#include <cmath>
#include <utility>

#include <boost/json/parse.hpp>

namespace shoal::util {

boost::json::value parse_json(std::string_view text, boost::json::error_code& ec,
                              boost::json::storage_ptr sp) {
  boost::json::parse_options opts;
  opts.max_depth = json_max_depth;
  auto v = boost::json::parse(text, ec, std::move(sp), opts);
  if (!ec && unstorable(v)) { // the depth is the parser's: only numbers remain
    ec = boost::json::error::exponent_overflow;
    return nullptr;
  }
  return v;
}

namespace {

/// nullptr, or the problem of `v` at nesting `depth` (its own, counting from 1).
const char* problem_of(const boost::json::value& v, unsigned depth) noexcept {
  switch (v.kind()) {
  case boost::json::kind::double_:
    return std::isfinite(v.get_double()) ? nullptr : "a number is infinite or not a number";
  case boost::json::kind::array:
    if (depth > json_max_depth) return "arrays and objects nest too deep";
    for (const auto& e : v.get_array())
      if (auto p = problem_of(e, depth + 1)) return p;
    return nullptr;
  case boost::json::kind::object:
    if (depth > json_max_depth) return "arrays and objects nest too deep";
    for (const auto& m : v.get_object())
      if (auto p = problem_of(m.value(), depth + 1)) return p;
    return nullptr;
  default:
    return nullptr;
  }
}

} // namespace

const char* unstorable(const boost::json::value& v) noexcept {
  return problem_of(v, 1);
}

namespace {

void write_string(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  out.push_back('"');
  std::size_t plain = 0; // start of the run not yet copied
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.data() + plain, i - plain);
    plain = i + 1;
    switch (c) {
    case '"':
      out += "\\\"";
      break;
    case '\\':
      out += "\\\\";
      break;
    case '\b':
      out += "\\b";
      break;
    case '\f':
      out += "\\f";
      break;
    case '\n':
      out += "\\n";
      break;
    case '\r':
      out += "\\r";
      break;
    case '\t':
      out += "\\t";
      break;
    default:
      out += "\\u00";
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 0xf]);
    }
  }
  out.append(s.data() + plain, s.size() - plain);
  out.push_back('"');
}

template <class T>
void write_integer(std::string& out, T v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

void write_double(std::string& out, double d) {
  if (!std::isfinite(d)) {
    out += "null";
    return;
  }
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, d); // shortest that reads back the same
  const std::string_view text(buf, static_cast<std::size_t>(r.ptr - buf));
  out.append(text);
  if (text.find_first_of(".e") == std::string_view::npos) out += ".0";
}

void write_value(std::string& out, const boost::json::value& v);

void write_object(std::string& out, const boost::json::object& o) {
  out.push_back('{');
  bool first = true;
  for (const auto& m : o) {
    if (!first) out.push_back(',');
    first = false;
    write_string(out, m.key());
    out.push_back(':');
    write_value(out, m.value());
  }
  out.push_back('}');
}

void write_array(std::string& out, const boost::json::array& a) {
  out.push_back('[');
  bool first = true;
  for (const auto& e : a) {
    if (!first) out.push_back(',');
    first = false;
    write_value(out, e);
  }
  out.push_back(']');
}

void write_value(std::string& out, const boost::json::value& v) {
  switch (v.kind()) {
  case boost::json::kind::null:
    out += "null";
    break;
  case boost::json::kind::bool_:
    out += v.get_bool() ? "true" : "false";
    break;
  case boost::json::kind::int64:
    write_integer(out, v.get_int64());
    break;
  case boost::json::kind::uint64:
    write_integer(out, v.get_uint64());
    break;
  case boost::json::kind::double_:
    write_double(out, v.get_double());
    break;
  case boost::json::kind::string:
    write_string(out, v.get_string());
    break;
  case boost::json::kind::array:
    write_array(out, v.get_array());
    break;
  case boost::json::kind::object:
    write_object(out, v.get_object());
    break;
  }
}

} // namespace

std::string to_json(const boost::json::value& v) {
  std::string out;
  write_value(out, v);
  return out;
}

std::string to_json(const boost::json::object& o) {
  std::string out;
  write_object(out, o);
  return out;
}

std::string to_json(const boost::json::array& a) {
  std::string out;
  write_array(out, a);
  return out;
}

} // namespace shoal::util
