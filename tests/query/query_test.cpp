// SPDX-License-Identifier: Apache-2.0
// Queries as data: parse errors (an invalid_argument named invalid_query or invalid_cursor,
// and the part the message names), matching, sort keys and resume points, cursors (round
// trip, binding to the query, garbage) and the shard JSON round trip. The hits and plan
// codecs are gone (shard answers travel as CAF-serialized structs, query/messages.hpp), and
// so are their tests.
#include "query/query.hpp"

#include <cctype>
#include <random>
#include <string>
#include <vector>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "core/error.hpp"
#include "query/values.hpp"

namespace shoal::query {
namespace {

namespace json = boost::json;
using namespace std::string_literals;

const query_limits limits{};

core::result<query_spec> parse(std::string_view body) {
  return parse_query(json::parse(body), limits);
}

query_spec parse_ok(std::string_view body) {
  auto r = parse(body);
  if (!r) {
    ADD_FAILURE() << body << ": " << r.error().to_string();
    return {};
  }
  return *r;
}

/// Whether `r` is a refusal: an invalid_argument error named `name`.
template <class T>
::testing::AssertionResult refused_as(const core::result<T>& r, const std::string& name) {
  if (r) return ::testing::AssertionFailure() << "accepted";
  if (r.error().code() != core::errc::invalid_argument)
    return ::testing::AssertionFailure() << "not invalid_argument: " << r.error().to_string();
  if (r.error().name() != name)
    return ::testing::AssertionFailure()
           << "named " << r.error().name() << ", not " << name << ": " << r.error().message();
  return ::testing::AssertionSuccess();
}

/// Expects `body` refused with `code` and a message containing every one of `parts`.
void expect_error(std::string_view body, const std::string& code,
                  const std::vector<std::string>& parts) {
  auto r = parse(body);
  ASSERT_FALSE(r) << body << " was accepted";
  EXPECT_TRUE(refused_as(r, code)) << body;
  const auto& message = r.error().message();
  for (const auto& p : parts) {
    EXPECT_NE(message.find(p), std::string::npos)
      << body << ": message \"" << message << "\" lacks " << p;
  }
}

void expect_invalid(std::string_view body, const std::vector<std::string>& parts) {
  expect_error(body, "invalid_query", parts);
}

// ---- parse: accepted forms ----

// Verifies an empty body (or nulls) gives the documented defaults.
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

// Verifies a full query parses into sorted conditions with both bounds, order, limit and flags.
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

// Verifies {"$eq": v} and a bare v parse to the same condition.
TEST(parse_query, eq_operator_and_bare_value_are_the_same) {
  auto a = parse_ok(R"({"where":{"a.b":{"$eq":null}}})");
  auto b = parse_ok(R"({"where":{"a.b":null}})");
  ASSERT_EQ(a.where.conditions.size(), 1u);
  ASSERT_TRUE(a.where.conditions[0].eq);
  EXPECT_TRUE(a.where.conditions[0].eq->is_null());
  EXPECT_EQ(to_shard_json(a), to_shard_json(b));
}

// Verifies $in values are sorted by value order and deduplicated; [] is kept.
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

// Verifies of two lower or upper bounds the tighter is kept, exclusive on ties.
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

// Verifies limits 1 and max_limit are accepted, and an integral double too.
TEST(parse_query, limit_bounds) {
  EXPECT_EQ(parse_ok(R"({"limit":1})").limit, 1u);
  EXPECT_EQ(parse_ok(R"({"limit":1000})").limit, 1000u);
  EXPECT_EQ(parse_ok(R"({"limit":2.0})").limit, 2u); // an integral number is an integer
}

// ---- parse: every refusal ----

// Verifies a body that is not an object is invalid_query.
TEST(parse_errors, body_must_be_an_object) {
  expect_invalid("[]", {"object"});
  expect_invalid("null", {"object"});
  expect_invalid("\"q\"", {"object"});
}

// Verifies unknown members, explain and after are refused in a client body.
TEST(parse_errors, unknown_top_level_member) {
  expect_invalid(R"({"wher":{}})", {"\"wher\""});
  expect_invalid(R"({"explain":true})", {"\"explain\""}); // from the URL only
  expect_invalid(R"({"after":"AA"})", {"\"after\""});     // shard-only
}

// Verifies a where that is not an object is refused.
TEST(parse_errors, where_must_be_an_object) {
  expect_invalid(R"({"where":[]})", {"\"where\"", "object"});
  expect_invalid(R"({"where":"a"})", {"\"where\"", "object"});
  expect_invalid(R"({"where":1})", {"\"where\"", "object"});
}

// Verifies invalid paths are refused, and a long one is shown cut.
TEST(parse_errors, invalid_path_in_where) {
  expect_invalid(R"({"where":{"a..b":1}})", {"\"where.a..b\"", "path"});
  expect_invalid(R"({"where":{"":1}})", {"\"where.\"", "path"});
  expect_invalid(R"({"where":{"$or":1}})", {"\"where.$or\"", "path"});
  // A long path is shown cut, not whole.
  std::string body = R"({"where":{")" + std::string(1000, 'x') + R"(":1}})";
  auto r = parse(body);
  ASSERT_TRUE(refused_as(r, "invalid_query"));
  EXPECT_LT(r.error().message().size(), 300u);
  EXPECT_NE(r.error().message().find("..."), std::string::npos);
}

// Verifies unknown operators (and nested objects read as operators) are refused.
TEST(parse_errors, unknown_operator) {
  expect_invalid(R"({"where":{"age":{"$foo":1}}})",
                 {"\"where.age\"", "unknown operator", "\"$foo\""});
  expect_invalid(R"({"where":{"age":{"$gt":1,"$ne":2}}})", {"\"where.age\"", "\"$ne\""});
  // A nested object is not a value: its members are read as operators.
  expect_invalid(R"({"where":{"a":{"b":1}}})", {"\"where.a\"", "unknown operator", "\"b\""});
}

// Verifies an empty condition object is refused.
TEST(parse_errors, empty_condition_object) {
  expect_invalid(R"({"where":{"age":{}}})", {"\"where.age\"", "empty"});
}

// Verifies comparison values that are not scalars are refused, naming the operator.
TEST(parse_errors, non_scalar_comparison_values) {
  expect_invalid(R"({"where":{"tags":["a"]}})", {"\"where.tags\"", "must be scalars"});
  expect_invalid(R"({"where":{"a":{"$eq":{"b":1}}}})", {"\"where.a.$eq\"", "must be scalars"});
  expect_invalid(R"({"where":{"a":{"$eq":[1]}}})", {"\"where.a.$eq\"", "must be scalars"});
  expect_invalid(R"({"where":{"a":{"$gt":[1]}}})", {"\"where.a.$gt\"", "must be scalars"});
  expect_invalid(R"({"where":{"a":{"$gte":{}}}})", {"\"where.a.$gte\"", "must be scalars"});
  expect_invalid(R"({"where":{"a":{"$lt":[]}}})", {"\"where.a.$lt\"", "must be scalars"});
  expect_invalid(R"({"where":{"a":{"$lte":{"x":1}}}})", {"\"where.a.$lte\"", "must be scalars"});
}

// Verifies $in must be an array of scalars, naming the bad element.
TEST(parse_errors, in_must_be_an_array_of_scalars) {
  expect_invalid(R"({"where":{"a":{"$in":1}}})", {"\"where.a.$in\"", "array"});
  expect_invalid(R"({"where":{"a":{"$in":{"x":1}}}})", {"\"where.a.$in\"", "array"});
  expect_invalid(R"({"where":{"a":{"$in":[1,[2]]}}})", {"\"where.a.$in[1]\"", "must be scalars"});
  expect_invalid(R"({"where":{"a":{"$in":[{}]}}})", {"\"where.a.$in[0]\"", "must be scalars"});
}

// Verifies $in longer than max_in_values is refused, exactly max_in_values is not.
TEST(parse_errors, in_too_long) {
  json::array values;
  for (std::size_t i = 0; i <= limits.max_in_values; ++i)
    values.emplace_back(i);
  json::object body{{"where", json::object{{"a", json::object{{"$in", values}}}}}};
  auto r = parse_query(body, limits);
  ASSERT_TRUE(refused_as(r, "invalid_query"));
  const auto& e = r.error();
  EXPECT_NE(e.message().find("\"where.a.$in\""), std::string::npos) << e.message();
  EXPECT_NE(e.message().find("1000"), std::string::npos) << e.message();
  values.pop_back(); // exactly max_in_values is fine
  body["where"].as_object()["a"].as_object()["$in"] = values;
  EXPECT_TRUE(parse_query(body, limits).ok());
}

// Verifies more than max_conditions paths are refused.
TEST(parse_errors, too_many_conditions) {
  json::object where;
  for (std::size_t i = 0; i <= limits.max_conditions; ++i)
    where["f" + std::to_string(i)] = 1;
  auto r = parse_query(json::object{{"where", where}}, limits);
  ASSERT_TRUE(refused_as(r, "invalid_query"));
  EXPECT_NE(r.error().message().find("\"where\""), std::string::npos);
  EXPECT_NE(r.error().message().find("32"), std::string::npos);
}

// Verifies range bounds of different types are refused.
TEST(parse_errors, range_bounds_of_different_types) {
  expect_invalid(R"({"where":{"a":{"$gt":1,"$lt":"z"}}})", {"\"where.a\"", "one type"});
  expect_invalid(R"({"where":{"a":{"$gt":1,"$gte":"a"}}})", {"\"where.a\"", "one type"});
}

// Verifies order_by must be a valid path string.
TEST(parse_errors, order_by) {
  expect_invalid(R"({"order_by":"a..b"})", {"\"order_by\"", "\"a..b\""});
  expect_invalid(R"({"order_by":""})", {"\"order_by\""});
  expect_invalid(R"({"order_by":1})", {"\"order_by\""});
  expect_invalid(R"({"order_by":["a"]})", {"\"order_by\""});
}

// Verifies desc and allow_scan must be booleans.
TEST(parse_errors, desc_and_allow_scan_must_be_bools) {
  expect_invalid(R"({"desc":"true"})", {"\"desc\""});
  expect_invalid(R"({"desc":1})", {"\"desc\""});
  expect_invalid(R"({"desc":null})", {"\"desc\""});
  expect_invalid(R"({"allow_scan":"yes"})", {"\"allow_scan\""});
  expect_invalid(R"({"allow_scan":0})", {"\"allow_scan\""});
}

// Verifies limits outside 1..max_limit, fractions and non-numbers are refused.
TEST(parse_errors, limit_out_of_range) {
  for (const char* body : {R"({"limit":0})", R"({"limit":-1})", R"({"limit":1.5})",
                           R"({"limit":1001})", R"({"limit":"10"})", R"({"limit":true})",
                           R"({"limit":18446744073709551615})", R"({"limit":1e300})"}) {
    expect_invalid(body, {"\"limit\"", "1 to 1000"});
  }
  query_limits small;
  small.max_limit = 5;
  auto r = parse_query(json::parse(R"({"limit":6})"), small);
  ASSERT_TRUE(refused_as(r, "invalid_query"));
  EXPECT_NE(r.error().message().find("1 to 5"), std::string::npos);
}

// Verifies a cursor that is not a cursor string is invalid_cursor.
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

// Verifies equality matches numbers across representations, not other types or missing.
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

// Verifies $in matches its values only, and an empty $in nothing.
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

// Verifies inclusive and exclusive range edges.
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

// Verifies a range matches only values of its bounds' type.
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

// Verifies several operators on one path all apply.
TEST(matches, operators_combine) {
  auto s = parse_ok(R"({"where":{"a":{"$in":[1,2,3,4],"$gt":2}}})");
  json::value two(2), three(3), five(5);
  EXPECT_FALSE(only_condition(s).matches(&two));
  EXPECT_TRUE(only_condition(s).matches(&three));
  EXPECT_FALSE(only_condition(s).matches(&five));
}

// Verifies a where clause over documents: nested paths, missing fields, wrong types.
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

// Verifies without order_by the sort key is the id.
TEST(sort_keys, id_only_without_order_by) {
  auto s = parse_ok("{}");
  EXPECT_EQ(sort_key(s, json::parse(R"({"a":1})"), "doc1"), "doc1");
}

// Verifies with order_by the sort key is the value key (or missing) then the id.
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

// Verifies after_cursor compares bytes unsigned, both directions.
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

// Verifies a cursor round-trips through parse_query into `after`, url-safe.
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
  ASSERT_TRUE(next.ok()) << next.error().to_string();
  EXPECT_EQ(next->after, key);

  // The equivalent normalized form of the same query accepts it too.
  auto same = parse_ok(R"({"where":{"age":{"$gte":30}},"order_by":"age","desc":false})");
  EXPECT_EQ(decode_cursor(same, c), key);
}

// Verifies cursors of awkward sort keys (NUL, high bytes, long) round-trip.
TEST(cursor, round_trip_of_awkward_keys) {
  auto s = parse_ok("{}");
  for (std::string key : {"a"s, "\0"s, "\xFF\xFE\0\x01"s, std::string(1000, '\x80')}) {
    for (std::size_t n = 1; n <= 4 && n <= key.size(); ++n) {
      std::string k = key.substr(0, n) + key; // vary the length modulo 3
      EXPECT_EQ(decode_cursor(s, encode_cursor(s, k)), k);
    }
  }
}

// Verifies a cursor resumes only a query of the same where, order_by and desc.
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
  ASSERT_TRUE(refused_as(r, "invalid_cursor"));
  EXPECT_NE(r.error().message().find("\"cursor\""), std::string::npos);
}

// Verifies truncated, flipped, malformed and random cursors are refused.
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

// Verifies the shard JSON round-trips every field of a spec.
TEST(shard_json, round_trip) {
  auto s = parse_ok(R"({"where":{"s":"a\u0000b","n":{"$gt":-0.0,"$lte":1e300},
                        "u":18446744073709551615,"i":{"$in":[3,"x",null,false,-2.5]},
                        "d.e":{"$eq":1.5,"$gte":1,"$lt":2}},
                        "order_by":"d.e","desc":true,"limit":9,"allow_scan":true})");
  s.after = "\x05\x00\xFF"s + "id";
  s.explain = true;
  std::string text = to_shard_json(s);
  auto back = parse_shard_json(text, limits);
  ASSERT_TRUE(back.ok()) << back.error().to_string() << " in " << text;
  expect_same(*back, s);
  EXPECT_EQ(to_shard_json(*back), text);

  auto plain = parse_ok("{}");
  auto plain_back = parse_shard_json(to_shard_json(plain), limits);
  ASSERT_TRUE(plain_back.ok()) << plain_back.error().to_string();
  expect_same(*plain_back, plain);
}

// Verifies the shard JSON layout, and base64url for after.
TEST(shard_json, layout) {
  auto s = parse_ok(R"({"where":{"a":1},"limit":5})");
  EXPECT_EQ(to_shard_json(s), R"({"where":{"a":{"$eq":1}},"order_by":null,"desc":false,)"
                              R"("limit":5,"after":null,"allow_scan":false,"explain":false})");
  s.after = "\xFB\xFF"s; // base64url uses - and _
  EXPECT_NE(to_shard_json(s).find(R"("after":"-_8")"), std::string::npos) << to_shard_json(s);
}

// Verifies the shard JSON parser refuses malformed members as invalid_query.
TEST(shard_json, refusals) {
  auto refused = [](std::string_view text) {
    auto r = parse_shard_json(text, limits);
    return static_cast<bool>(refused_as(r, "invalid_query"));
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
  ASSERT_TRUE(ok.ok()) << ok.error().to_string();
  EXPECT_EQ(ok->after, "\0"s);
}

} // namespace
} // namespace shoal::query
