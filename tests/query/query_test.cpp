// SPDX-License-Identifier: Apache-2.0
// Queries as data: parse errors (code and the part the message names), matching, sort
// keys and resume points, cursors (round trip, binding to the query, garbage), the hits
// codec and the shard JSON / plan JSON round trips.
#include "query/query.hpp"

#include <cctype>
#include <random>
#include <string>
#include <vector>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "query/values.hpp"

namespace shoal::query {
namespace {

namespace json = boost::json;
using namespace std::string_literals;

const query_limits limits{};

std::variant<query_spec, query_error> parse(std::string_view body) {
  return parse_query(json::parse(body), limits);
}

query_spec parse_ok(std::string_view body) {
  auto r = parse(body);
  if (auto* e = std::get_if<query_error>(&r)) {
    ADD_FAILURE() << body << ": " << e->code << ": " << e->message;
    return {};
  }
  return std::get<query_spec>(r);
}

/// Expects `body` refused with `code` and a message containing every one of `parts`.
void expect_error(std::string_view body, const std::string& code,
                  const std::vector<std::string>& parts) {
  auto r = parse(body);
  const auto* e = std::get_if<query_error>(&r);
  ASSERT_NE(e, nullptr) << body << " was accepted";
  EXPECT_EQ(e->code, code) << body << ": " << e->message;
  for (const auto& p : parts) {
    EXPECT_NE(e->message.find(p), std::string::npos)
      << body << ": message \"" << e->message << "\" lacks " << p;
  }
}

void expect_invalid(std::string_view body, const std::vector<std::string>& parts) {
  expect_error(body, "invalid_query", parts);
}

// ---- parse: accepted forms ----

TEST(parse_query, defaults) {
  auto s = parse_ok("{}");
  EXPECT_TRUE(s.where.conditions.empty());
  EXPECT_EQ(s.order_by, "");
  EXPECT_FALSE(s.desc);
  EXPECT_EQ(s.limit, limits.default_limit);
  EXPECT_EQ(s.after, "");
  EXPECT_FALSE(s.allow_scan);
  EXPECT_FALSE(s.explain);
  auto n = parse_ok(R"({"where":null,"order_by":null,"limit":null,"cursor":null})");
  EXPECT_TRUE(n.where.conditions.empty());
  EXPECT_EQ(n.limit, limits.default_limit);
}

TEST(parse_query, full_example) {
  auto s = parse_ok(R"({"where": {"status": "active", "age": {"$gte": 30, "$lt": 40}},
                        "order_by": "age", "desc": true, "limit": 7, "allow_scan": true})");
  ASSERT_EQ(s.where.conditions.size(), 2u);
  const condition& age = s.where.conditions[0]; // sorted by path
  EXPECT_EQ(age.path, "age");
  EXPECT_FALSE(age.eq);
  ASSERT_TRUE(age.lo);
  EXPECT_EQ(*age.lo, json::value(30));
  EXPECT_TRUE(age.lo_inclusive);
  ASSERT_TRUE(age.hi);
  EXPECT_EQ(*age.hi, json::value(40));
  EXPECT_FALSE(age.hi_inclusive);
  const condition& status = s.where.conditions[1];
  EXPECT_EQ(status.path, "status");
  ASSERT_TRUE(status.eq);
  EXPECT_EQ(*status.eq, json::value("active"));
  EXPECT_EQ(s.order_by, "age");
  EXPECT_TRUE(s.desc);
  EXPECT_EQ(s.limit, 7u);
  EXPECT_TRUE(s.allow_scan);
}

TEST(parse_query, eq_operator_and_bare_value_are_the_same) {
  auto a = parse_ok(R"({"where":{"a.b":{"$eq":null}}})");
  auto b = parse_ok(R"({"where":{"a.b":null}})");
  ASSERT_EQ(a.where.conditions.size(), 1u);
  ASSERT_TRUE(a.where.conditions[0].eq);
  EXPECT_TRUE(a.where.conditions[0].eq->is_null());
  EXPECT_EQ(to_shard_json(a), to_shard_json(b));
}

TEST(parse_query, in_is_sorted_and_deduplicated) {
  auto s = parse_ok(R"({"where":{"x":{"$in":["b", 2, null, "a", 2.0, true, "b", 1]}}})");
  const condition& c = s.where.conditions.at(0);
  EXPECT_TRUE(c.has_in);
  std::vector<json::value> expected = {nullptr, true, 1, 2, "a", "b"};
  ASSERT_EQ(c.in.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i)
    EXPECT_EQ(compare(c.in[i], expected[i]), 0);
  auto empty = parse_ok(R"({"where":{"x":{"$in":[]}}})");
  EXPECT_TRUE(empty.where.conditions.at(0).has_in);
  EXPECT_TRUE(empty.where.conditions.at(0).in.empty());
}

TEST(parse_query, the_tighter_of_two_bounds_is_kept) {
  auto lo = parse_ok(R"({"where":{"a":{"$gt":5,"$gte":7}}})").where.conditions.at(0);
  EXPECT_EQ(*lo.lo, json::value(7));
  EXPECT_TRUE(lo.lo_inclusive);
  lo = parse_ok(R"({"where":{"a":{"$gte":7,"$gt":5}}})").where.conditions.at(0);
  EXPECT_EQ(*lo.lo, json::value(7));
  EXPECT_TRUE(lo.lo_inclusive);
  lo = parse_ok(R"({"where":{"a":{"$gte":5,"$gt":5}}})").where.conditions.at(0);
  EXPECT_EQ(*lo.lo, json::value(5));
  EXPECT_FALSE(lo.lo_inclusive); // equal values: the exclusive bound is tighter
  lo = parse_ok(R"({"where":{"a":{"$gt":5,"$gte":5}}})").where.conditions.at(0);
  EXPECT_FALSE(lo.lo_inclusive);

  auto hi = parse_ok(R"({"where":{"a":{"$lt":5,"$lte":3}}})").where.conditions.at(0);
  EXPECT_EQ(*hi.hi, json::value(3));
  EXPECT_TRUE(hi.hi_inclusive);
  hi = parse_ok(R"({"where":{"a":{"$lte":5,"$lt":5}}})").where.conditions.at(0);
  EXPECT_EQ(*hi.hi, json::value(5));
  EXPECT_FALSE(hi.hi_inclusive);
}

TEST(parse_query, limit_bounds) {
  EXPECT_EQ(parse_ok(R"({"limit":1})").limit, 1u);
  EXPECT_EQ(parse_ok(R"({"limit":1000})").limit, 1000u);
  EXPECT_EQ(parse_ok(R"({"limit":2.0})").limit, 2u); // an integral number is an integer
}

// ---- parse: every refusal ----

TEST(parse_errors, body_must_be_an_object) {
  expect_invalid("[]", {"object"});
  expect_invalid("null", {"object"});
  expect_invalid("\"q\"", {"object"});
}

TEST(parse_errors, unknown_top_level_member) {
  expect_invalid(R"({"wher":{}})", {"\"wher\""});
  expect_invalid(R"({"explain":true})", {"\"explain\""}); // from the URL only
  expect_invalid(R"({"after":"AA"})", {"\"after\""});     // shard-only
}

TEST(parse_errors, where_must_be_an_object) {
  expect_invalid(R"({"where":[]})", {"\"where\"", "object"});
  expect_invalid(R"({"where":"a"})", {"\"where\"", "object"});
  expect_invalid(R"({"where":1})", {"\"where\"", "object"});
}

TEST(parse_errors, invalid_path_in_where) {
  expect_invalid(R"({"where":{"a..b":1}})", {"\"where.a..b\"", "path"});
  expect_invalid(R"({"where":{"":1}})", {"\"where.\"", "path"});
  expect_invalid(R"({"where":{"$or":1}})", {"\"where.$or\"", "path"});
  // A long path is shown cut, not whole.
  std::string body = R"({"where":{")" + std::string(1000, 'x') + R"(":1}})";
  auto r = parse(body);
  ASSERT_TRUE(std::holds_alternative<query_error>(r));
  EXPECT_LT(std::get<query_error>(r).message.size(), 300u);
  EXPECT_NE(std::get<query_error>(r).message.find("..."), std::string::npos);
}

TEST(parse_errors, unknown_operator) {
  expect_invalid(R"({"where":{"age":{"$foo":1}}})",
                 {"\"where.age\"", "unknown operator", "\"$foo\""});
  expect_invalid(R"({"where":{"age":{"$gt":1,"$ne":2}}})", {"\"where.age\"", "\"$ne\""});
  // A nested object is not a value: its members are read as operators.
  expect_invalid(R"({"where":{"a":{"b":1}}})", {"\"where.a\"", "unknown operator", "\"b\""});
}

TEST(parse_errors, empty_condition_object) {
  expect_invalid(R"({"where":{"age":{}}})", {"\"where.age\"", "empty"});
}

TEST(parse_errors, non_scalar_comparison_values) {
  expect_invalid(R"({"where":{"tags":["a"]}})", {"\"where.tags\"", "must be scalars"});
  expect_invalid(R"({"where":{"a":{"$eq":{"b":1}}}})", {"\"where.a.$eq\"", "must be scalars"});
  expect_invalid(R"({"where":{"a":{"$eq":[1]}}})", {"\"where.a.$eq\"", "must be scalars"});
  expect_invalid(R"({"where":{"a":{"$gt":[1]}}})", {"\"where.a.$gt\"", "must be scalars"});
  expect_invalid(R"({"where":{"a":{"$gte":{}}}})", {"\"where.a.$gte\"", "must be scalars"});
  expect_invalid(R"({"where":{"a":{"$lt":[]}}})", {"\"where.a.$lt\"", "must be scalars"});
  expect_invalid(R"({"where":{"a":{"$lte":{"x":1}}}})", {"\"where.a.$lte\"", "must be scalars"});
}

TEST(parse_errors, in_must_be_an_array_of_scalars) {
  expect_invalid(R"({"where":{"a":{"$in":1}}})", {"\"where.a.$in\"", "array"});
  expect_invalid(R"({"where":{"a":{"$in":{"x":1}}}})", {"\"where.a.$in\"", "array"});
  expect_invalid(R"({"where":{"a":{"$in":[1,[2]]}}})", {"\"where.a.$in[1]\"", "must be scalars"});
  expect_invalid(R"({"where":{"a":{"$in":[{}]}}})", {"\"where.a.$in[0]\"", "must be scalars"});
}

TEST(parse_errors, in_too_long) {
  json::array values;
  for (std::size_t i = 0; i <= limits.max_in_values; ++i)
    values.emplace_back(i);
  json::object body{{"where", json::object{{"a", json::object{{"$in", values}}}}}};
  auto r = parse_query(body, limits);
  ASSERT_TRUE(std::holds_alternative<query_error>(r));
  const auto& e = std::get<query_error>(r);
  EXPECT_EQ(e.code, "invalid_query");
  EXPECT_NE(e.message.find("\"where.a.$in\""), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("1000"), std::string::npos) << e.message;
  values.pop_back(); // exactly max_in_values is fine
  body["where"].as_object()["a"].as_object()["$in"] = values;
  EXPECT_TRUE(std::holds_alternative<query_spec>(parse_query(body, limits)));
}

TEST(parse_errors, too_many_conditions) {
  json::object where;
  for (std::size_t i = 0; i <= limits.max_conditions; ++i)
    where["f" + std::to_string(i)] = 1;
  auto r = parse_query(json::object{{"where", where}}, limits);
  ASSERT_TRUE(std::holds_alternative<query_error>(r));
  EXPECT_EQ(std::get<query_error>(r).code, "invalid_query");
  EXPECT_NE(std::get<query_error>(r).message.find("\"where\""), std::string::npos);
  EXPECT_NE(std::get<query_error>(r).message.find("32"), std::string::npos);
}

TEST(parse_errors, range_bounds_of_different_types) {
  expect_invalid(R"({"where":{"a":{"$gt":1,"$lt":"z"}}})", {"\"where.a\"", "one type"});
  expect_invalid(R"({"where":{"a":{"$gt":1,"$gte":"a"}}})", {"\"where.a\"", "one type"});
}

TEST(parse_errors, order_by) {
  expect_invalid(R"({"order_by":"a..b"})", {"\"order_by\"", "\"a..b\""});
  expect_invalid(R"({"order_by":""})", {"\"order_by\""});
  expect_invalid(R"({"order_by":1})", {"\"order_by\""});
  expect_invalid(R"({"order_by":["a"]})", {"\"order_by\""});
}

TEST(parse_errors, desc_and_allow_scan_must_be_bools) {
  expect_invalid(R"({"desc":"true"})", {"\"desc\""});
  expect_invalid(R"({"desc":1})", {"\"desc\""});
  expect_invalid(R"({"desc":null})", {"\"desc\""});
  expect_invalid(R"({"allow_scan":"yes"})", {"\"allow_scan\""});
  expect_invalid(R"({"allow_scan":0})", {"\"allow_scan\""});
}

TEST(parse_errors, limit_out_of_range) {
  for (const char* body : {R"({"limit":0})", R"({"limit":-1})", R"({"limit":1.5})",
                           R"({"limit":1001})", R"({"limit":"10"})", R"({"limit":true})",
                           R"({"limit":18446744073709551615})", R"({"limit":1e300})"}) {
    expect_invalid(body, {"\"limit\"", "1 to 1000"});
  }
  query_limits small;
  small.max_limit = 5;
  auto r = parse_query(json::parse(R"({"limit":6})"), small);
  ASSERT_TRUE(std::holds_alternative<query_error>(r));
  EXPECT_NE(std::get<query_error>(r).message.find("1 to 5"), std::string::npos);
}

TEST(parse_errors, cursor_of_wrong_type) {
  expect_error(R"({"cursor":1})", "invalid_cursor", {"\"cursor\""});
  expect_error(R"({"cursor":{}})", "invalid_cursor", {"\"cursor\""});
  expect_error(R"({"cursor":""})", "invalid_cursor", {"\"cursor\""});
  expect_error(R"({"cursor":"not a cursor!"})", "invalid_cursor", {"\"cursor\""});
}

// ---- matching ----

const condition& only_condition(const query_spec& s) {
  EXPECT_EQ(s.where.conditions.size(), 1u);
  return s.where.conditions.at(0);
}

TEST(matches, equality) {
  auto s = parse_ok(R"({"where":{"a":5}})");
  const condition& c = only_condition(s);
  json::value five(5), five_d(5.0), five_u(std::uint64_t{5}), six(6), str("5");
  EXPECT_TRUE(c.matches(&five));
  EXPECT_TRUE(c.matches(&five_d));
  EXPECT_TRUE(c.matches(&five_u));
  EXPECT_FALSE(c.matches(&six));
  EXPECT_FALSE(c.matches(&str)); // type mismatch
  EXPECT_FALSE(c.matches(nullptr));
  json::value arr = json::array{5};
  EXPECT_FALSE(c.matches(&arr));

  auto n = parse_ok(R"({"where":{"a":null}})");
  json::value null_v(nullptr), false_v(false);
  EXPECT_TRUE(only_condition(n).matches(&null_v));
  EXPECT_FALSE(only_condition(n).matches(&false_v));
  EXPECT_FALSE(only_condition(n).matches(nullptr)); // missing is not null
}

TEST(matches, in) {
  auto s = parse_ok(R"({"where":{"a":{"$in":["x", 2, false]}}})");
  const condition& c = only_condition(s);
  json::value x("x"), two(2.0), f(false), y("y"), t(true), three(3);
  EXPECT_TRUE(c.matches(&x));
  EXPECT_TRUE(c.matches(&two));
  EXPECT_TRUE(c.matches(&f));
  EXPECT_FALSE(c.matches(&y));
  EXPECT_FALSE(c.matches(&t));
  EXPECT_FALSE(c.matches(&three));
  EXPECT_FALSE(c.matches(nullptr));
  auto e = parse_ok(R"({"where":{"a":{"$in":[]}}})");
  EXPECT_FALSE(only_condition(e).matches(&x)); // an empty $in matches nothing
}

TEST(matches, range_bounds) {
  auto s = parse_ok(R"({"where":{"a":{"$gte":30,"$lt":40}}})");
  const condition& c = only_condition(s);
  json::value v29(29), v30(30), v35(35.5), v39(39.999), v40(40), v41(41);
  EXPECT_FALSE(c.matches(&v29));
  EXPECT_TRUE(c.matches(&v30));
  EXPECT_TRUE(c.matches(&v35));
  EXPECT_TRUE(c.matches(&v39));
  EXPECT_FALSE(c.matches(&v40));
  EXPECT_FALSE(c.matches(&v41));

  auto x = parse_ok(R"({"where":{"a":{"$gt":30,"$lte":40}}})");
  EXPECT_FALSE(only_condition(x).matches(&v30));
  EXPECT_TRUE(only_condition(x).matches(&v40));
}

TEST(matches, a_range_only_matches_its_own_type) {
  auto gt = parse_ok(R"({"where":{"a":{"$gt":5}}})");
  json::value s("abc"), t(true), n(nullptr), big(1e300), arr = json::array{9};
  EXPECT_FALSE(only_condition(gt).matches(&s)); // strings sort after numbers, still no match
  EXPECT_FALSE(only_condition(gt).matches(&t));
  EXPECT_FALSE(only_condition(gt).matches(&n));
  EXPECT_FALSE(only_condition(gt).matches(&arr));
  EXPECT_TRUE(only_condition(gt).matches(&big));
  auto lt = parse_ok(R"({"where":{"a":{"$lt":"m"}}})");
  json::value num(1), a("a"), z("z");
  EXPECT_FALSE(only_condition(lt).matches(&num)); // numbers sort before strings, no match
  EXPECT_TRUE(only_condition(lt).matches(&a));
  EXPECT_FALSE(only_condition(lt).matches(&z));
  auto b = parse_ok(R"({"where":{"a":{"$gt":false}}})");
  json::value f(false);
  EXPECT_TRUE(only_condition(b).matches(&t));
  EXPECT_FALSE(only_condition(b).matches(&f));
  EXPECT_FALSE(only_condition(b).matches(&num));
}

TEST(matches, operators_combine) {
  auto s = parse_ok(R"({"where":{"a":{"$in":[1,2,3,4],"$gt":2}}})");
  json::value two(2), three(3), five(5);
  EXPECT_FALSE(only_condition(s).matches(&two));
  EXPECT_TRUE(only_condition(s).matches(&three));
  EXPECT_FALSE(only_condition(s).matches(&five));
}

TEST(matches, where_clause_over_documents) {
  auto s = parse_ok(R"({"where":{"status":"active","profile.age":{"$gte":30}}})");
  EXPECT_TRUE(s.where.matches(json::parse(R"({"status":"active","profile":{"age":31}})")));
  EXPECT_FALSE(s.where.matches(json::parse(R"({"status":"active","profile":{"age":29}})")));
  EXPECT_FALSE(s.where.matches(json::parse(R"({"status":"gone","profile":{"age":31}})")));
  EXPECT_FALSE(s.where.matches(json::parse(R"({"status":"active"})")));              // missing
  EXPECT_FALSE(s.where.matches(json::parse(R"({"status":"active","profile":31})"))); // not obj
  EXPECT_FALSE(s.where.matches(json::parse(R"({"status":"active","profile":{"age":"31"}})")));
  EXPECT_TRUE(parse_ok("{}").where.matches(json::parse(R"({"anything":1})")));
}

// ---- sort keys and resume points ----

TEST(sort_keys, id_only_without_order_by) {
  auto s = parse_ok("{}");
  EXPECT_EQ(sort_key(s, json::parse(R"({"a":1})"), "doc1"), "doc1");
}

TEST(sort_keys, value_key_then_id) {
  auto s = parse_ok(R"({"order_by":"p.n"})");
  auto doc = json::parse(R"({"p":{"n":"x"}})");
  EXPECT_EQ(sort_key(s, doc, "id"), *value_key(json::value("x")) + "id");
  std::string missing;
  append_missing_key(missing);
  EXPECT_EQ(sort_key(s, json::parse(R"({"p":{}})"), "id"), missing + "id");
  EXPECT_EQ(sort_key(s, json::parse(R"({"p":{"n":[1]}})"), "id"), missing + "id");
  // Orders by value first: 2 before 10, whatever the ids.
  EXPECT_LT(sort_key(s, json::parse(R"({"p":{"n":2}})"), "zz"),
            sort_key(s, json::parse(R"({"p":{"n":10}})"), "aa"));
}

TEST(sort_keys, after_cursor_ascending_and_descending) {
  query_spec s;
  EXPECT_TRUE(after_cursor(s, "anything")); // no resume point
  s.after = "m";
  EXPECT_TRUE(after_cursor(s, "n"));
  EXPECT_TRUE(after_cursor(s, "m\0"s));
  EXPECT_FALSE(after_cursor(s, "m"));
  EXPECT_FALSE(after_cursor(s, "l"));
  EXPECT_TRUE(after_cursor(s, "\xFF")); // unsigned bytes
  s.desc = true;
  EXPECT_TRUE(after_cursor(s, "l"));
  EXPECT_FALSE(after_cursor(s, "m"));
  EXPECT_FALSE(after_cursor(s, "n"));
  EXPECT_FALSE(after_cursor(s, "\xFF"));
}

// ---- cursors ----

TEST(cursor, round_trip_through_parse_query) {
  const char* q = R"({"where":{"age":{"$gte":30}},"order_by":"age","limit":2})";
  auto s = parse_ok(q);
  std::string key = sort_key(s, json::parse(R"({"age":33})"), "doc-7");
  std::string c = encode_cursor(s, key);
  for (char ch : c) {
    EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_') << c;
  }
  auto decoded = decode_cursor(s, c);
  ASSERT_TRUE(decoded);
  EXPECT_EQ(*decoded, key);

  json::object body = json::parse(q).as_object();
  body["cursor"] = c;
  body["limit"] = 50; // the page size may change
  auto next = parse_query(body, limits);
  ASSERT_TRUE(std::holds_alternative<query_spec>(next));
  EXPECT_EQ(std::get<query_spec>(next).after, key);

  // The equivalent normalized form of the same query accepts it too.
  auto same = parse_ok(R"({"where":{"age":{"$gte":30}},"order_by":"age","desc":false})");
  EXPECT_EQ(decode_cursor(same, c), key);
}

TEST(cursor, round_trip_of_awkward_keys) {
  auto s = parse_ok("{}");
  for (std::string key : {"a"s, "\0"s, "\xFF\xFE\0\x01"s, std::string(1000, '\x80')}) {
    for (std::size_t n = 1; n <= 4 && n <= key.size(); ++n) {
      std::string k = key.substr(0, n) + key; // vary the length modulo 3
      EXPECT_EQ(decode_cursor(s, encode_cursor(s, k)), k);
    }
  }
}

TEST(cursor, refused_for_another_query) {
  auto s = parse_ok(R"({"where":{"a":1},"order_by":"b"})");
  std::string key = sort_key(s, json::parse(R"({"a":1,"b":2})"), "id1");
  std::string c = encode_cursor(s, key);
  ASSERT_TRUE(decode_cursor(s, c));
  EXPECT_FALSE(decode_cursor(parse_ok(R"({"where":{"a":2},"order_by":"b"})"), c));
  EXPECT_FALSE(decode_cursor(parse_ok(R"({"where":{"a":1,"c":1},"order_by":"b"})"), c));
  EXPECT_FALSE(decode_cursor(parse_ok(R"({"where":{"a":{"$gte":1}},"order_by":"b"})"), c));
  EXPECT_FALSE(decode_cursor(parse_ok(R"({"where":{"a":1},"order_by":"c"})"), c));
  EXPECT_FALSE(decode_cursor(parse_ok(R"({"where":{"a":1}})"), c));
  EXPECT_FALSE(decode_cursor(parse_ok(R"({"where":{"a":1},"order_by":"b","desc":true})"), c));
  EXPECT_TRUE(decode_cursor(parse_ok(R"({"where":{"a":1},"order_by":"b","limit":3})"), c));

  json::object other = json::parse(R"({"where":{"a":2},"order_by":"b"})").as_object();
  other["cursor"] = c;
  auto r = parse_query(other, limits);
  ASSERT_TRUE(std::holds_alternative<query_error>(r));
  EXPECT_EQ(std::get<query_error>(r).code, "invalid_cursor");
  EXPECT_NE(std::get<query_error>(r).message.find("\"cursor\""), std::string::npos);
}

TEST(cursor, garbage_is_refused_without_crashing) {
  auto s = parse_ok(R"({"order_by":"b"})");
  std::string key = sort_key(s, json::parse(R"({"b":"x"})"), "id1");
  std::string c = encode_cursor(s, key);
  EXPECT_FALSE(decode_cursor(s, ""));
  EXPECT_FALSE(decode_cursor(s, "A"));
  EXPECT_FALSE(decode_cursor(s, "===="));
  EXPECT_FALSE(decode_cursor(s, c + "="));            // padding
  EXPECT_FALSE(decode_cursor(s, c + "*"));            // outside the alphabet
  EXPECT_FALSE(decode_cursor(s, "+/" + c.substr(2))); // standard base64, not url
  // Every truncation that keeps no byte of the id (format, fingerprint and the 4-byte
  // value key of "x" are 13 bytes) is refused. A cut inside the id is a well-formed key of
  // another position: cursors are not authenticated, only bound to their query.
  for (std::size_t n = 0; n * 6 / 8 <= 13; ++n) {
    EXPECT_FALSE(decode_cursor(s, c.substr(0, n))) << n;
  }
  // A flipped character of the first 12 (9 bytes): another format byte or fingerprint.
  for (std::size_t i = 0; i < 12; ++i) {
    std::string d = c;
    d[i] = d[i] == 'A' ? 'B' : 'A';
    EXPECT_FALSE(decode_cursor(s, d)) << i;
  }
  // The right fingerprint with a sort key order_by "b" cannot produce.
  std::string bad_key = encode_cursor(s, "\x06unterminated");
  EXPECT_FALSE(decode_cursor(s, bad_key));
  EXPECT_FALSE(decode_cursor(s, encode_cursor(s, "\x07x")));
  EXPECT_FALSE(decode_cursor(s, encode_cursor(s, "\x05short")));
  EXPECT_FALSE(decode_cursor(s, encode_cursor(s, "\x04"))); // no id
  EXPECT_FALSE(decode_cursor(s, encode_cursor(s, "")));
  EXPECT_TRUE(decode_cursor(s, encode_cursor(s, "\x04id")));

  std::mt19937 rng(7);
  std::uniform_int_distribution<int> byte(0, 255);
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  for (int round = 0; round < 2000; ++round) {
    std::string junk(static_cast<std::size_t>(byte(rng) % 64), '\0');
    for (char& ch : junk) {
      ch = round % 2 == 0 ? static_cast<char>(byte(rng))
                          : alphabet[static_cast<std::size_t>(byte(rng)) % alphabet.size()];
    }
    EXPECT_FALSE(decode_cursor(s, junk)) << round;
  }
}

// ---- hits codec ----

TEST(hits_codec, round_trip) {
  shard_hits h;
  h.more = true;
  h.hits.push_back({"\x05key\0"s, "id-1", 7, R"({"a":1})"});
  h.hits.push_back({"", "", 0, ""});
  h.hits.push_back({"k", "id\xFF", ~std::uint64_t{0}, std::string(70000, 'd')});
  auto d = decode_hits(encode_hits(h));
  ASSERT_TRUE(d);
  EXPECT_TRUE(d->more);
  ASSERT_EQ(d->hits.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(d->hits[i].sort_key, h.hits[i].sort_key);
    EXPECT_EQ(d->hits[i].id, h.hits[i].id);
    EXPECT_EQ(d->hits[i].version, h.hits[i].version);
    EXPECT_EQ(d->hits[i].doc, h.hits[i].doc);
  }
  auto empty = decode_hits(encode_hits(shard_hits{}));
  ASSERT_TRUE(empty);
  EXPECT_FALSE(empty->more);
  EXPECT_TRUE(empty->hits.empty());
}

TEST(hits_codec, garbage_and_truncation_are_refused) {
  shard_hits h;
  h.hits.push_back({"sk", "id", 3, "{}"});
  h.hits.push_back({"sk2", "id2", 4, "{\"x\":1}"});
  std::string bytes = encode_hits(h);
  for (std::size_t n = 0; n < bytes.size(); ++n)
    EXPECT_FALSE(decode_hits(bytes.substr(0, n))) << n;
  EXPECT_FALSE(decode_hits(bytes + "x")); // trailing bytes
  std::string wrong_format = bytes;
  wrong_format[0] = 0x02;
  EXPECT_FALSE(decode_hits(wrong_format));
  std::string wrong_more = bytes;
  wrong_more[1] = 0x02;
  EXPECT_FALSE(decode_hits(wrong_more));
  // A count far beyond the bytes present.
  std::string huge = "\x01\x00\xFF\xFF\xFF\xFF"s;
  EXPECT_FALSE(decode_hits(huge));
  // A field length beyond the bytes present.
  std::string long_field = bytes;
  long_field[6] = '\x7F';
  EXPECT_FALSE(decode_hits(long_field));

  std::mt19937 rng(11);
  std::uniform_int_distribution<int> byte(0, 255);
  for (int round = 0; round < 2000; ++round) {
    std::string junk(static_cast<std::size_t>(byte(rng) % 48), '\0');
    for (char& ch : junk)
      ch = static_cast<char>(byte(rng));
    if (round % 2 == 0 && junk.size() >= 2) {
      junk[0] = 0x01; // get past the format byte
      junk[1] = static_cast<char>(byte(rng) % 2);
    }
    auto d = decode_hits(junk); // must not crash; whatever decodes re-encodes identically
    if (d) {
      EXPECT_EQ(encode_hits(*d), junk);
    }
  }
}

// ---- shard JSON ----

void expect_same(const query_spec& a, const query_spec& b) {
  ASSERT_EQ(a.where.conditions.size(), b.where.conditions.size());
  for (std::size_t i = 0; i < a.where.conditions.size(); ++i) {
    const condition& x = a.where.conditions[i];
    const condition& y = b.where.conditions[i];
    EXPECT_EQ(x.path, y.path);
    EXPECT_EQ(x.eq.has_value(), y.eq.has_value());
    if (x.eq && y.eq) {
      EXPECT_EQ(*x.eq, *y.eq);
    }
    EXPECT_EQ(x.has_in, y.has_in);
    ASSERT_EQ(x.in.size(), y.in.size());
    for (std::size_t k = 0; k < x.in.size(); ++k)
      EXPECT_EQ(x.in[k], y.in[k]);
    EXPECT_EQ(x.lo.has_value(), y.lo.has_value());
    if (x.lo && y.lo) {
      EXPECT_EQ(*x.lo, *y.lo);
    }
    EXPECT_EQ(x.lo_inclusive, y.lo_inclusive);
    EXPECT_EQ(x.hi.has_value(), y.hi.has_value());
    if (x.hi && y.hi) {
      EXPECT_EQ(*x.hi, *y.hi);
    }
    EXPECT_EQ(x.hi_inclusive, y.hi_inclusive);
  }
  EXPECT_EQ(a.order_by, b.order_by);
  EXPECT_EQ(a.desc, b.desc);
  EXPECT_EQ(a.limit, b.limit);
  EXPECT_EQ(a.after, b.after);
  EXPECT_EQ(a.allow_scan, b.allow_scan);
  EXPECT_EQ(a.explain, b.explain);
}

TEST(shard_json, round_trip) {
  auto s = parse_ok(R"({"where":{"s":"a\u0000b","n":{"$gt":-0.0,"$lte":1e300},
                        "u":18446744073709551615,"i":{"$in":[3,"x",null,false,-2.5]},
                        "d.e":{"$eq":1.5,"$gte":1,"$lt":2}},
                        "order_by":"d.e","desc":true,"limit":9,"allow_scan":true})");
  s.after = "\x05\x00\xFF"s + "id";
  s.explain = true;
  std::string text = to_shard_json(s);
  auto back = parse_shard_json(text, limits);
  ASSERT_TRUE(std::holds_alternative<query_spec>(back))
    << std::get<query_error>(back).message << " in " << text;
  expect_same(std::get<query_spec>(back), s);
  EXPECT_EQ(to_shard_json(std::get<query_spec>(back)), text);

  auto plain = parse_ok("{}");
  auto plain_back = parse_shard_json(to_shard_json(plain), limits);
  ASSERT_TRUE(std::holds_alternative<query_spec>(plain_back));
  expect_same(std::get<query_spec>(plain_back), plain);
}

TEST(shard_json, layout) {
  auto s = parse_ok(R"({"where":{"a":1},"limit":5})");
  EXPECT_EQ(to_shard_json(s), R"({"where":{"a":{"$eq":1}},"order_by":null,"desc":false,)"
                              R"("limit":5,"after":null,"allow_scan":false,"explain":false})");
  s.after = "\xFB\xFF"s; // base64url uses - and _
  EXPECT_NE(to_shard_json(s).find(R"("after":"-_8")"), std::string::npos) << to_shard_json(s);
}

TEST(shard_json, refusals) {
  auto refused = [](std::string_view text) {
    auto r = parse_shard_json(text, limits);
    const auto* e = std::get_if<query_error>(&r);
    return e != nullptr && e->code == "invalid_query";
  };
  EXPECT_TRUE(refused(""));
  EXPECT_TRUE(refused("{"));
  EXPECT_TRUE(refused("[]"));
  EXPECT_TRUE(refused(R"({"cursor":null})")); // client-only
  EXPECT_TRUE(refused(R"({"after":"***"})"));
  EXPECT_TRUE(refused(R"({"after":1})"));
  EXPECT_TRUE(refused(R"({"after":"AB"})"));    // non-zero bits after the last byte
  EXPECT_TRUE(refused(R"({"after":"AAAAA"})")); // a length base64 cannot have
  EXPECT_TRUE(refused(R"({"after":"AA=="})"));  // padding
  EXPECT_TRUE(refused(R"({"explain":"yes"})"));
  EXPECT_TRUE(refused(R"({"limit":0})"));
  EXPECT_TRUE(refused(R"({"where":{"a":{"$foo":1}}})"));
  EXPECT_FALSE(refused(R"({"explain":true,"after":null})"));
  auto ok = parse_shard_json(R"({"after":"AA"})", limits);
  ASSERT_TRUE(std::holds_alternative<query_spec>(ok));
  EXPECT_EQ(std::get<query_spec>(ok).after, "\0"s);
}

// ---- plan JSON ----

TEST(plan_json, round_trip_and_refusals) {
  shard_plan p{"profile.age", "range", 12345678901234ULL};
  std::string text = to_json(p);
  auto back = plan_from_json(text);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->index, p.index);
  EXPECT_EQ(back->bounds, p.bounds);
  EXPECT_EQ(back->estimated_keys, p.estimated_keys);

  shard_plan scan{"", "all", 0};
  EXPECT_EQ(to_json(scan), R"({"index":null,"bounds":"all","estimated_keys":0})");
  auto scan_back = plan_from_json(to_json(scan));
  ASSERT_TRUE(scan_back);
  EXPECT_EQ(scan_back->index, "");
  EXPECT_EQ(scan_back->bounds, "all");

  EXPECT_FALSE(plan_from_json(""));
  EXPECT_FALSE(plan_from_json("{"));
  EXPECT_FALSE(plan_from_json("[]"));
  EXPECT_FALSE(plan_from_json(R"({"index":null,"bounds":"sideways","estimated_keys":0})"));
  EXPECT_FALSE(plan_from_json(R"({"index":null,"bounds":"all","estimated_keys":-1})"));
  EXPECT_FALSE(plan_from_json(R"({"index":null,"bounds":"all","estimated_keys":1.5})"));
  EXPECT_FALSE(plan_from_json(R"({"index":"a..b","bounds":"eq","estimated_keys":1})"));
  EXPECT_FALSE(plan_from_json(R"({"index":1,"bounds":"eq","estimated_keys":1})"));
  EXPECT_FALSE(plan_from_json(R"({"bounds":"eq","estimated_keys":1})"));
  EXPECT_FALSE(plan_from_json(R"({"index":"a","bounds":"eq","estimated_keys":1,"x":1})"));
}

} // namespace
} // namespace shoal::query
