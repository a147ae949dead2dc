// SPDX-License-Identifier: Apache-2.0
// The one JSON parse (util/json.hpp): one depth limit, and only numbers JSON can hold.
#include "util/json.hpp"

#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
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

// Verifies doubles are written in the shortest form that reads back as the same double,
// plainly where that is shortest, with ".0" kept on integral values (issue 18: Boost.JSON
// wrote {"price":21.5,"small":0.1} as {"price":2.15E1,"small":1E-1}).
TEST(JsonTest, DoublesAreWrittenInTheirShortestPlainForm) {
  const std::pair<double, const char*> cases[] = {
    {21.5, "21.5"},       {0.1, "0.1"},      {2.0, "2.0"},
    {-0.0, "-0.0"},       {1e300, "1e+300"}, {5e-324, "5e-324"},
    {123.456, "123.456"}, {0.001, "0.001"},  {1e21, "1e+21"},
    {-3.25, "-3.25"},     {100.0, "100.0"},  {1.7976931348623157e308, "1.7976931348623157e+308"},
  };
  for (const auto& [d, text] : cases) {
    EXPECT_EQ(to_json(boost::json::value(d)), text) << text;
  }
  boost::json::error_code ec;
  auto doc = parse_json(R"({"price":21.5,"small":0.1,"n":3,"big":18446744073709551615})", ec);
  ASSERT_FALSE(ec);
  EXPECT_EQ(to_json(doc), R"({"price":21.5,"small":0.1,"n":3,"big":18446744073709551615})");
  EXPECT_EQ(to_json(boost::json::value(std::numeric_limits<double>::infinity())), "null");
}

// Verifies every double's text reads back as that double, bit for bit (with an exact
// reader: Boost.JSON 1.81's own parser may be one unit in the last place off for some
// inputs, whoever wrote them), and parse_json still reads it as a double.
TEST(JsonTest, DoublesRoundTripExactly) {
  std::mt19937_64 rng(42);
  for (int i = 0; i < 100000; ++i) {
    std::uint64_t bits = rng();
    double d;
    std::memcpy(&d, &bits, sizeof d);
    if (!std::isfinite(d)) continue;
    const auto text = to_json(boost::json::value(d));
    double exact = 0;
    auto r = std::from_chars(text.data(), text.data() + text.size(), exact);
    ASSERT_EQ(r.ptr, text.data() + text.size()) << text;
    ASSERT_EQ(std::memcmp(&d, &exact, sizeof d), 0) << text;
    boost::json::error_code ec;
    auto back = parse_json(text, ec);
    ASSERT_FALSE(ec) << text;
    ASSERT_TRUE(back.is_double()) << text;
  }
}

// Verifies everything but doubles is written as Boost.JSON writes it: strings with quotes,
// backslashes, control characters and UTF-8; integers; nesting; empty containers.
TEST(JsonTest, EverythingElseIsWrittenAsBoostWritesIt) {
  boost::json::value v = boost::json::object{
    {"s", "quote\" back\\ nl\n tab\t bell\x07 nul" + std::string(1, '\0') + "\x1f ü € 😀"},
    {"a",
     boost::json::array{1, -2, nullptr, true, false, boost::json::object{}, boost::json::array{}}},
    {"u", std::numeric_limits<std::uint64_t>::max()},
    {"i", std::numeric_limits<std::int64_t>::min()},
    {"k\"ey", boost::json::object{{"nested", boost::json::array{boost::json::array{"x"}}}}},
  };
  EXPECT_EQ(to_json(v), boost::json::serialize(v));
  EXPECT_EQ(to_json(v.get_object()), boost::json::serialize(v));
  EXPECT_EQ(to_json(v.at("a").get_array()), boost::json::serialize(v.at("a")));
}

} // namespace
} // namespace shoal::util
