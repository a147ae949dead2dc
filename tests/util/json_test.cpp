// SPDX-License-Identifier: Apache-2.0
// The one JSON parse (util/json.hpp): one depth limit, and only numbers JSON can hold.
#include "util/json.hpp"

#include <cmath>
#include <limits>
#include <string>

#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

namespace shoal::util {
namespace {

/// `depth` arrays, one inside the other, around a 1.
std::string nested_arrays(unsigned depth) {
  return std::string(depth, '[') + "1" + std::string(depth, ']');
}

/// `depth` objects, one inside the other: {"a":{"a":...1...}}.
std::string nested_objects(unsigned depth) {
  std::string s;
  for (unsigned i = 0; i < depth; ++i)
    s += R"({"a":)";
  s += "1";
  s += std::string(depth, '}');
  return s;
}

// Verifies nesting up to json_max_depth parses and one more level is too_deep, for
// arrays and objects, and that unstorable draws the line at the same depth.
TEST(JsonTest, OneDepthLimit) {
  for (auto make : {nested_arrays, nested_objects}) {
    boost::json::error_code ec;
    auto ok = parse_json(make(json_max_depth), ec);
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(unstorable(ok), nullptr);
    // Boost.JSON's default (32) is not the limit: 33 to 64 parse.
    parse_json(make(33), ec);
    EXPECT_FALSE(ec);
    parse_json(make(json_max_depth + 1), ec);
    EXPECT_EQ(ec, boost::json::error::too_deep);
  }
  // A value built in code one level deeper than the limit cannot be stored.
  boost::json::value deep = 1;
  for (unsigned i = 0; i < json_max_depth + 1; ++i)
    deep = boost::json::array{deep};
  ASSERT_NE(unstorable(deep), nullptr);
  EXPECT_NE(std::string(unstorable(deep)).find("deep"), std::string::npos);
  deep = deep.get_array()[0];
  EXPECT_EQ(unstorable(deep), nullptr);
}

// Verifies numbers a double cannot hold are refused (Boost.JSON would read them as
// infinity and write "Infinity", which is not JSON), wherever they are, and that large
// but finite numbers and underflows still parse.
TEST(JsonTest, NumbersJsonCannotHoldAreRefused) {
  for (std::string text : {std::string("1e999"), std::string("-1e999"), std::string("[1,1e400]"),
                           R"({"a":{"b":[)" + std::string(5000, '9') + "]}}"}) {
    boost::json::error_code ec;
    auto v = parse_json(text, ec);
    EXPECT_EQ(ec, boost::json::error::exponent_overflow) << text.substr(0, 40);
    EXPECT_TRUE(v.is_null());
  }
  for (const char* text : {"1e308", "1e-999", "123456789012345678901234567890", "-0.5"}) {
    boost::json::error_code ec;
    auto v = parse_json(text, ec);
    EXPECT_FALSE(ec) << text;
    boost::json::error_code again;
    parse_json(boost::json::serialize(v), again);
    EXPECT_FALSE(again) << text << " does not parse back";
  }
}

// Verifies unstorable finds infinities and NaN that code put anywhere in a value.
TEST(JsonTest, UnstorableFindsNonFiniteNumbers) {
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_NE(unstorable(boost::json::value(inf)), nullptr);
  EXPECT_NE(unstorable(boost::json::value(std::nan(""))), nullptr);
  EXPECT_NE(unstorable(boost::json::object{{"a", boost::json::array{1, -inf}}}), nullptr);
  EXPECT_EQ(unstorable(boost::json::object{{"a", boost::json::array{1, 2.5, "x", nullptr}}}),
            nullptr);
}

} // namespace
} // namespace shoal::util
