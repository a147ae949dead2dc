// SPDX-License-Identifier: Apache-2.0
// Value ordering: compare() over mixed JSON scalars, value keys whose bytewise order is
// compare() order (and that are prefix-free), dotted-path lookup and path rules.
#include "query/values.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <boost/json.hpp>
#include <gtest/gtest.h>

namespace shoal::query {
namespace {

namespace json = boost::json;
using namespace std::string_literals;

json::value str(const std::string& s) {
  return json::value(json::string_view(s.data(), s.size()));
}

std::string key(const json::value& v) {
  auto k = value_key(v);
  EXPECT_TRUE(k.has_value()) << json::serialize(v);
  return k.value_or("");
}

/// Scalars in ascending order; equal neighbours are marked by `tie_with_previous`.
struct ranked {
  json::value v;
  bool tie_with_previous = false;
};

std::vector<ranked> ascending() {
  return {
    {json::value(nullptr)},
    {json::value(false)},
    {json::value(true)},
    {json::value(-1e300)},
    {json::value(std::numeric_limits<std::int64_t>::min())},
    {json::value(std::int64_t{-5})},
    {json::value(-1.5)},
    {json::value(-0.0)},
    {json::value(0.0), true},
    {json::value(std::int64_t{0}), true},
    {json::value(0.25)},
    {json::value(std::int64_t{1})},
    {json::value(1.5)},
    {json::value(std::numeric_limits<std::int64_t>::max())},
    {json::value(std::numeric_limits<std::uint64_t>::max())},
    {json::value(1e300)},
    {str("")},
    {str("a")},
    {str("a\0"s)},
    {str("a\0\0"s)},
    {str("a\0b"s)},
    {str("ab")},
    {str("b")},
    {str("\xc3\xa9")}, // "é": bytes above ASCII sort after
  };
}

TEST(values, is_scalar_accepts_only_comparable_kinds) {
  EXPECT_TRUE(is_scalar(json::value(nullptr)));
  EXPECT_TRUE(is_scalar(json::value(true)));
  EXPECT_TRUE(is_scalar(json::value(std::int64_t{-1})));
  EXPECT_TRUE(is_scalar(json::value(std::uint64_t{1})));
  EXPECT_TRUE(is_scalar(json::value(1.5)));
  EXPECT_TRUE(is_scalar(json::value("s")));
  EXPECT_FALSE(is_scalar(json::value(json::array{1})));
  EXPECT_FALSE(is_scalar(json::value(json::object{{"a", 1}})));
}

TEST(values, sorting_a_shuffled_list_by_compare_restores_the_order) {
  auto expected = ascending();
  auto shuffled = expected;
  std::mt19937 rng(12345);
  std::shuffle(shuffled.begin(), shuffled.end(), rng);
  std::stable_sort(shuffled.begin(), shuffled.end(),
                   [](const ranked& a, const ranked& b) { return compare(a.v, b.v) < 0; });
  ASSERT_EQ(shuffled.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(compare(shuffled[i].v, expected[i].v), 0)
      << i << ": " << json::serialize(shuffled[i].v) << " vs " << json::serialize(expected[i].v);
  }
}

TEST(values, key_order_equals_compare_order_for_every_pair) {
  auto list = ascending();
  for (std::size_t i = 0; i < list.size(); ++i) {
    for (std::size_t j = 0; j < list.size(); ++j) {
      int c = compare(list[i].v, list[j].v);
      int expected = 0;
      if (i < j) {
        bool tied = true;
        for (std::size_t k = i + 1; k <= j; ++k)
          tied = tied && list[k].tie_with_previous;
        expected = tied ? 0 : -1;
      } else if (i > j) {
        bool tied = true;
        for (std::size_t k = j + 1; k <= i; ++k)
          tied = tied && list[k].tie_with_previous;
        expected = tied ? 0 : 1;
      }
      EXPECT_EQ(c, expected) << json::serialize(list[i].v) << " vs " << json::serialize(list[j].v);
      std::string ki = key(list[i].v);
      std::string kj = key(list[j].v);
      int kc = ki < kj ? -1 : (ki > kj ? 1 : 0);
      EXPECT_EQ(kc, c) << json::serialize(list[i].v) << " vs " << json::serialize(list[j].v);
    }
  }
}

TEST(values, missing_orders_before_everything) {
  std::string missing;
  append_missing_key(missing);
  EXPECT_EQ(missing, "\x01");
  for (const auto& r : ascending())
    EXPECT_LT(missing, key(r.v)) << json::serialize(r.v);
}

TEST(values, key_layout_is_the_documented_one) {
  EXPECT_EQ(key(json::value(nullptr)), "\x02");
  EXPECT_EQ(key(json::value(false)), "\x03");
  EXPECT_EQ(key(json::value(true)), "\x04");
  // 1.0 is 0x3FF0000000000000; positive numbers get the sign bit set.
  EXPECT_EQ(key(json::value(1.0)), "\x05\xBF\xF0\x00\x00\x00\x00\x00\x00"s);
  // -1.0 is 0xBFF0000000000000; negative numbers are inverted.
  EXPECT_EQ(key(json::value(-1.0)), "\x05\x40\x0F\xFF\xFF\xFF\xFF\xFF\xFF"s);
  EXPECT_EQ(key(json::value(0.0)), "\x05\x80\x00\x00\x00\x00\x00\x00\x00"s);
  EXPECT_EQ(key(json::value(-0.0)), key(json::value(0.0)));
  EXPECT_EQ(key(json::value(std::int64_t{1})), key(json::value(1.0)));
  EXPECT_EQ(key(json::value(std::uint64_t{1})), key(json::value(1.0)));
  EXPECT_EQ(key(str("a\0b"s)), "\x06"
                               "a\x00\xFF"
                               "b\x00\x01"s);
  EXPECT_EQ(key(str("")), "\x06\x00\x01"s);
}

TEST(values, append_value_key_appends_and_refuses_non_scalars) {
  std::string out = "prefix";
  EXPECT_TRUE(append_value_key(out, json::value(true)));
  EXPECT_EQ(out, "prefix\x04");
  EXPECT_FALSE(append_value_key(out, json::value(json::array{1, 2})));
  EXPECT_FALSE(append_value_key(out, json::value(json::object{})));
  EXPECT_EQ(out, "prefix\x04");
  EXPECT_FALSE(value_key(json::value(json::array{})).has_value());
}

TEST(values, numbers_compare_exactly_across_representations) {
  const std::int64_t imax = std::numeric_limits<std::int64_t>::max();
  const std::uint64_t umax = std::numeric_limits<std::uint64_t>::max();
  const std::int64_t two53 = std::int64_t{1} << 53;
  auto i = [](std::int64_t x) { return json::value(x); };
  auto u = [](std::uint64_t x) { return json::value(x); };
  auto d = [](double x) { return json::value(x); };

  EXPECT_EQ(compare(i(-1), u(umax)), -1);
  EXPECT_EQ(compare(u(umax), i(-1)), 1);
  EXPECT_EQ(compare(i(imax), u(std::uint64_t{1} << 63)), -1);
  EXPECT_EQ(compare(u(5), i(5)), 0);
  // 2^63 as a double exceeds every int64, but is equal to the uint64 2^63.
  EXPECT_EQ(compare(d(9223372036854775808.0), i(imax)), 1);
  EXPECT_EQ(compare(i(imax), d(9223372036854775808.0)), -1);
  EXPECT_EQ(compare(d(9223372036854775808.0), u(std::uint64_t{1} << 63)), 0);
  // 2^53 + 1 is not a double: the int64 is exact, its key rounds.
  EXPECT_EQ(compare(d(static_cast<double>(two53)), i(two53 + 1)), -1);
  EXPECT_EQ(compare(i(two53 + 1), d(static_cast<double>(two53))), 1);
  EXPECT_EQ(compare(i(two53), i(two53 + 1)), -1);
  EXPECT_EQ(key(i(two53)), key(i(two53 + 1)));
  // uint64 max is below 2^64 as a double.
  EXPECT_EQ(compare(u(umax), d(18446744073709551616.0)), -1);
  EXPECT_EQ(compare(d(18446744073709551616.0), u(umax)), 1);
  EXPECT_EQ(compare(d(-0.5), u(0)), -1);
  // fractions
  EXPECT_EQ(compare(d(0.5), i(0)), 1);
  EXPECT_EQ(compare(d(-0.5), i(0)), -1);
  EXPECT_EQ(compare(d(-1.5), i(-1)), -1);
  EXPECT_EQ(compare(d(-1.5), i(-2)), 1);
  EXPECT_EQ(compare(d(2.5), u(2)), 1);
  EXPECT_EQ(compare(d(2.5), u(3)), -1);
  EXPECT_EQ(compare(d(-0.0), i(0)), 0);
  EXPECT_EQ(compare(d(1.0), i(1)), 0);
  EXPECT_EQ(compare(d(-9223372036854775808.0), i(std::numeric_limits<std::int64_t>::min())), 0);
  EXPECT_EQ(compare(d(-1e19), i(std::numeric_limits<std::int64_t>::min())), -1);
}

TEST(values, strings_compare_bytewise_unsigned) {
  EXPECT_EQ(compare(str("a"), str("a\0"s)), -1);
  EXPECT_EQ(compare(str("a\0"s), str("ab")), -1);
  EXPECT_EQ(compare(str("z"), str("\xc3\xa9")), -1);
  EXPECT_EQ(compare(str("abc"), str("abc")), 0);
  EXPECT_EQ(compare(str("b"), str("abc")), 1);
}

TEST(values, types_order_before_values) {
  EXPECT_EQ(compare(json::value(true), json::value(-1e300)), -1);
  EXPECT_EQ(compare(json::value(1e300), str("")), -1);
  EXPECT_EQ(compare(json::value(nullptr), json::value(false)), -1);
  EXPECT_EQ(compare(json::value(nullptr), json::value(nullptr)), 0);
  EXPECT_EQ(compare(str("0"), json::value(std::int64_t{0})), 1);
}

TEST(values, value_keys_are_prefix_free_so_value_then_id_orders_by_value) {
  auto list = ascending();
  const std::vector<std::string> ids = {""s, "\x00"s, "\x01"s, "\xFF\xFF"s, "a"s, "zzz"s};
  for (std::size_t i = 0; i < list.size(); ++i) {
    for (std::size_t j = 0; j < list.size(); ++j) {
      int c = compare(list[i].v, list[j].v);
      if (c == 0) continue;
      for (const auto& id1 : ids) {
        for (const auto& id2 : ids) {
          std::string a = key(list[i].v) + id1;
          std::string b = key(list[j].v) + id2;
          EXPECT_EQ(c < 0, a < b) << json::serialize(list[i].v) << " vs "
                                  << json::serialize(list[j].v);
        }
      }
    }
  }
  // No key is a prefix of another (distinct) key.
  for (const auto& a : list) {
    for (const auto& b : list) {
      std::string ka = key(a.v);
      std::string kb = key(b.v);
      if (ka != kb) {
        EXPECT_NE(kb.compare(0, ka.size(), ka), 0) << json::serialize(a.v);
      }
    }
  }
}

TEST(values, lookup_follows_dotted_paths) {
  json::value doc = json::parse(R"({"a":{"b":{"c":7}},"x":null,"arr":[1,2],"s":"t","":{"":1}})");
  ASSERT_NE(lookup(doc, "a.b.c"), nullptr);
  EXPECT_EQ(*lookup(doc, "a.b.c"), json::value(7));
  ASSERT_NE(lookup(doc, "a.b"), nullptr);
  EXPECT_TRUE(lookup(doc, "a.b")->is_object());
  ASSERT_NE(lookup(doc, "x"), nullptr);
  EXPECT_TRUE(lookup(doc, "x")->is_null());
  EXPECT_EQ(lookup(doc, "a.b.c.d"), nullptr); // a step is a number
  EXPECT_EQ(lookup(doc, "a.z"), nullptr);     // missing
  EXPECT_EQ(lookup(doc, "arr.0"), nullptr);   // arrays are not traversed
  EXPECT_EQ(lookup(doc, "s.length"), nullptr);
  EXPECT_EQ(lookup(doc, "nope"), nullptr);
  EXPECT_EQ(lookup(json::value(5), "a"), nullptr); // not an object
}

TEST(values, valid_path_rules) {
  EXPECT_TRUE(valid_path("a"));
  EXPECT_TRUE(valid_path("age"));
  EXPECT_TRUE(valid_path("a.b.c"));
  EXPECT_TRUE(valid_path("A-z_09"));
  EXPECT_TRUE(valid_path(std::string(64, 'x')));
  EXPECT_TRUE(valid_path("a.b.c.d.e.f.g.h")); // 8 names

  EXPECT_FALSE(valid_path(""));
  EXPECT_FALSE(valid_path("."));
  EXPECT_FALSE(valid_path(".a"));
  EXPECT_FALSE(valid_path("a."));
  EXPECT_FALSE(valid_path("a..b"));
  EXPECT_FALSE(valid_path("a b"));
  EXPECT_FALSE(valid_path("$a"));
  EXPECT_FALSE(valid_path("a/b"));
  EXPECT_FALSE(valid_path("\xc3\xa9"));
  EXPECT_FALSE(valid_path("a\0b"s));
  EXPECT_FALSE(valid_path(std::string(65, 'x'))); // a name over 64 bytes
  EXPECT_FALSE(valid_path("a.b.c.d.e.f.g.h.i"));  // 9 names
  // 4 names of 64 bytes: 259 bytes, over the 256-byte total.
  std::string n64(64, 'n');
  EXPECT_FALSE(valid_path(n64 + "." + n64 + "." + n64 + "." + n64));
  // 256 bytes exactly is fine: 64 + 1 + 64 + 1 + 64 + 1 + 61.
  EXPECT_TRUE(valid_path(n64 + "." + n64 + "." + n64 + "." + std::string(61, 'n')));
}

} // namespace
} // namespace shoal::query
