// SPDX-License-Identifier: Apache-2.0
#include "util/json.hpp"

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

} // namespace shoal::util
