// SPDX-License-Identifier: Apache-2.0
// Unit tests of the index and query routes (http/query_routes.cpp) without sockets or
// actors: requests go through http::route(), and the gather call's merge is fed replies
// built by hand, as the shards of a node would answer.
#include "http/router.hpp"

#include <string>
#include <vector>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "query/query.hpp"
#include "query/shard_index.hpp"

namespace shoal::http {
namespace {

namespace bhttp = boost::beast::http;
namespace json = boost::json;
using actors::doc_reply;
using actors::doc_status;

request make(bhttp::verb verb, std::string target, std::string body = {},
             std::string content_type = "application/json") {
  request req{verb, target, 11};
  if (!body.empty()) {
    req.set(bhttp::field::content_type, content_type);
    req.body() = std::move(body);
  }
  req.prepare_payload();
  return req;
}

doc_reply reply(doc_status status, std::string body = {}) {
  doc_reply r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

doc_reply refusal(std::string code, std::string message) {
  doc_reply r;
  r.status = doc_status::bad_request;
  r.code = std::move(code);
  r.message = std::move(message);
  return r;
}

doc_reply progress(std::string field, bool ready, std::uint64_t indexed, std::uint64_t total,
                   doc_status status = doc_status::ok) {
  query::index_progress p;
  p.field = std::move(field);
  p.ready = ready;
  p.indexed = indexed;
  p.total = total;
  return reply(status, p.to_json());
}

doc_reply plan(std::string index, std::string bounds, std::uint64_t keys) {
  query::shard_plan p;
  p.index = std::move(index);
  p.bounds = std::move(bounds);
  p.estimated_keys = keys;
  return reply(doc_status::ok, query::to_json(p));
}

class QueryRoutesTest : public ::testing::Test {
protected:
  route_env env;
  void SetUp() override {
    env.query_default_limit = 10;
    env.query_max_limit = 50;
  }

  routed go(request req) {
    return route(req, env);
  }

  /// POST /v1/collections/c/query with `body`.
  routed query(std::string body, std::string params = {}) {
    return go(make(bhttp::verb::post, "/v1/collections/c/query" + params, std::move(body)));
  }

  static std::string code_of(const response& res) {
    auto v = json::parse(res.body());
    return std::string(v.at("error").at("code").as_string());
  }

  static const response& response_of(const routed& r) {
    EXPECT_TRUE(std::holds_alternative<response>(r.outcome));
    return std::get<response>(r.outcome);
  }

  static const gather_call& gather_of(const routed& r) {
    EXPECT_TRUE(std::holds_alternative<gather_call>(r.outcome));
    return std::get<gather_call>(r.outcome);
  }

  /// The spec a shard would see for the gather call of `r`.
  query::query_spec shard_spec(const routed& r) const {
    query::query_limits limits;
    limits.default_limit = env.query_default_limit;
    limits.max_limit = env.query_max_limit;
    auto parsed = query::parse_shard_json(gather_of(r).request.body, limits);
    EXPECT_TRUE(std::holds_alternative<query::query_spec>(parsed));
    if (auto* s = std::get_if<query::query_spec>(&parsed)) return *s;
    return {};
  }

  /// Runs the merge of the gather call of `r` over `replies`.
  static response merge(const routed& r, std::vector<doc_reply> replies) {
    return gather_of(r).merge(std::move(replies), 11);
  }

  /// A hit for document `id` with {"age": age}, keyed as the shards of `spec` key it.
  static query::hit hit_of(const query::query_spec& spec, std::string id, int age,
                           std::uint64_t version = 1) {
    query::hit h;
    json::object doc;
    doc["age"] = age;
    doc["id"] = id;
    h.doc = json::serialize(doc);
    h.sort_key = query::sort_key(spec, doc, id);
    h.id = std::move(id);
    h.version = version;
    return h;
  }

  static doc_reply hits(std::vector<query::hit> list, bool more = false) {
    query::shard_hits h;
    h.hits = std::move(list);
    h.more = more;
    return reply(doc_status::ok, query::encode_hits(h));
  }

  /// The ids of a 200 query answer, in order.
  static std::vector<std::string> ids_of(const response& res) {
    EXPECT_EQ(res.result(), bhttp::status::ok) << res.body();
    std::vector<std::string> out;
    auto v = json::parse(res.body());
    for (const auto& d : v.at("docs").as_array())
      out.emplace_back(d.at("id").as_string());
    return out;
  }

  static json::value next_cursor(const response& res) {
    return json::parse(res.body()).at("next_cursor");
  }
};

// -- the shard request ------------------------------------------------------------------------

// Verifies a query becomes one gather call of op query, with the normalized spec as body
// and the configured default limit.
TEST_F(QueryRoutesTest, QueryBecomesGatherCall) {
  auto r = query(R"({"where":{"status":"active","age":{"$gte":30,"$lt":40}},"order_by":"age"})");
  EXPECT_EQ(r.route, route_id::query);
  const auto& call = gather_of(r);
  EXPECT_EQ(call.request.op, actors::doc_op::query);
  EXPECT_EQ(call.request.collection, "c");
  EXPECT_TRUE(call.request.id.empty());
  auto spec = shard_spec(r);
  EXPECT_EQ(spec.limit, 10u);
  EXPECT_EQ(spec.order_by, "age");
  EXPECT_FALSE(spec.desc);
  EXPECT_FALSE(spec.explain);
  EXPECT_FALSE(spec.allow_scan);
  EXPECT_TRUE(spec.after.empty());
  ASSERT_EQ(spec.where.conditions.size(), 2u);
  EXPECT_EQ(spec.where.conditions[0].path, "age");
  EXPECT_EQ(spec.where.conditions[1].path, "status");
}

// Verifies limit, desc and allow_scan reach the shards as given.
TEST_F(QueryRoutesTest, OptionsReachTheShards) {
  auto r = query(R"({"where":{},"order_by":"age","desc":true,"limit":50,"allow_scan":true})");
  auto spec = shard_spec(r);
  EXPECT_EQ(spec.limit, 50u);
  EXPECT_TRUE(spec.desc);
  EXPECT_TRUE(spec.allow_scan);
}

// -- merging hits -------------------------------------------------------------------------------

// Verifies hits of three shards come out in ascending sort order, documents embedded
// verbatim with their ids and versions, and no cursor when nothing is left.
TEST_F(QueryRoutesTest, MergesAscendingAcrossThreeShards) {
  auto r = query(R"({"where":{},"order_by":"age","allow_scan":true})");
  auto spec = shard_spec(r);
  auto res = merge(r, {hits({hit_of(spec, "a", 1), hit_of(spec, "d", 7, 4)}),
                       hits({hit_of(spec, "b", 3), hit_of(spec, "e", 9)}),
                       hits({hit_of(spec, "c", 5), hit_of(spec, "f", 11)})});
  EXPECT_EQ(ids_of(res), (std::vector<std::string>{"a", "b", "c", "d", "e", "f"}));
  EXPECT_TRUE(next_cursor(res).is_null());
  EXPECT_EQ(res[bhttp::field::content_type], "application/json");
  auto v = json::parse(res.body());
  const auto& d = v.at("docs").as_array()[3];
  EXPECT_EQ(d.at("version").as_int64(), 4);
  EXPECT_EQ(d.at("doc"), json::parse(R"({"age":7,"id":"d"})"));
  EXPECT_NE(res.body().find(R"({"age":7,"id":"d"})"), std::string::npos) << res.body();
}

// Verifies descending queries merge in descending order, ties on the value ordered by id.
TEST_F(QueryRoutesTest, MergesDescendingAcrossThreeShards) {
  auto r = query(R"({"where":{},"order_by":"age","desc":true,"allow_scan":true})");
  auto spec = shard_spec(r);
  auto res =
    merge(r, {hits({hit_of(spec, "z", 9), hit_of(spec, "b", 2)}),
              hits({hit_of(spec, "y", 9), hit_of(spec, "c", 1)}), hits({hit_of(spec, "x", 5)})});
  EXPECT_EQ(ids_of(res), (std::vector<std::string>{"z", "y", "x", "b", "c"}));
  EXPECT_TRUE(next_cursor(res).is_null());
}

// Verifies the merge orders by document id when there is no order_by.
TEST_F(QueryRoutesTest, MergesByIdWithoutOrderBy) {
  auto r = query(R"({"where":{"age":{"$gte":0}}})");
  auto spec = shard_spec(r);
  auto res = merge(r, {hits({hit_of(spec, "k2", 1), hit_of(spec, "k5", 0)}), hits({}),
                       hits({hit_of(spec, "k1", 9), hit_of(spec, "k3", 9)})});
  EXPECT_EQ(ids_of(res), (std::vector<std::string>{"k1", "k2", "k3", "k5"}));
}

// Verifies the merge stops at the limit and returns a cursor when more remain, whether
// the rest is in the answers or only announced by a shard's `more`.
TEST_F(QueryRoutesTest, LimitCutsAndCursorMarksTheRest) {
  auto r = query(R"({"where":{},"order_by":"age","limit":3,"allow_scan":true})");
  auto spec = shard_spec(r);
  auto cut = merge(r, {hits({hit_of(spec, "a", 1), hit_of(spec, "d", 4)}),
                       hits({hit_of(spec, "b", 2)}), hits({hit_of(spec, "c", 3)})});
  EXPECT_EQ(ids_of(cut), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(next_cursor(cut).is_string());

  auto announced =
    merge(r, {hits({hit_of(spec, "a", 1), hit_of(spec, "b", 2), hit_of(spec, "c", 3)}, true),
              hits({}), hits({})});
  EXPECT_EQ(ids_of(announced), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(next_cursor(announced).is_string());

  auto exact = merge(
    r, {hits({hit_of(spec, "a", 1)}), hits({hit_of(spec, "b", 2)}), hits({hit_of(spec, "c", 3)})});
  EXPECT_EQ(ids_of(exact).size(), 3u);
  EXPECT_TRUE(next_cursor(exact).is_null());

  auto empty = merge(r, {hits({}), hits({}), hits({})});
  EXPECT_TRUE(ids_of(empty).empty());
  EXPECT_TRUE(next_cursor(empty).is_null());
  EXPECT_EQ(empty.body(), R"({"docs":[],"next_cursor":null})");
}

// Verifies a returned cursor, sent back with the same query, reaches every shard as the
// sort key of the last document returned.
TEST_F(QueryRoutesTest, CursorRoundTripFeedsAfter) {
  const std::string q = R"("where":{"age":{"$gte":1}},"order_by":"age","limit":2)";
  auto r = query("{" + q + "}");
  auto spec = shard_spec(r);
  auto b = hit_of(spec, "b", 2);
  auto res = merge(r, {hits({hit_of(spec, "a", 1), hit_of(spec, "c", 3)}), hits({b}), hits({})});
  ASSERT_EQ(ids_of(res), (std::vector<std::string>{"a", "b"}));
  auto cursor = next_cursor(res);
  ASSERT_TRUE(cursor.is_string());

  auto next = query("{" + q + ",\"cursor\":" + json::serialize(cursor) + "}");
  auto next_spec = shard_spec(next);
  EXPECT_EQ(next_spec.after, b.sort_key);
  // The second page's merge accepts only what follows the cursor.
  auto page = merge(next, {hits({hit_of(spec, "c", 3)}), hits({}), hits({})});
  EXPECT_EQ(ids_of(page), (std::vector<std::string>{"c"}));
  auto behind = merge(next, {hits({hit_of(spec, "a", 1)}), hits({}), hits({})});
  EXPECT_EQ(behind.result(), bhttp::status::internal_server_error);
}

// Verifies a cursor of one query does not resume another, and forged cursors are 400.
TEST_F(QueryRoutesTest, ForgedOrForeignCursorIs400) {
  auto r = query(R"({"where":{},"order_by":"age","limit":1,"allow_scan":true})");
  auto spec = shard_spec(r);
  auto res = merge(r, {hits({hit_of(spec, "a", 1), hit_of(spec, "b", 2)}), hits({}), hits({})});
  auto cursor = json::serialize(next_cursor(res));
  ASSERT_NE(cursor, "null");
  for (const std::string& other :
       {R"({"where":{},"order_by":"name","limit":1,"allow_scan":true,"cursor":)" + cursor + "}",
        R"({"where":{},"order_by":"age","desc":true,"allow_scan":true,"cursor":)" + cursor + "}",
        R"({"where":{"age":3},"order_by":"age","allow_scan":true,"cursor":)" + cursor + "}"}) {
    auto routed_other = query(other);
    const auto& e = response_of(routed_other);
    EXPECT_EQ(e.result(), bhttp::status::bad_request) << other;
    EXPECT_EQ(code_of(e), "invalid_cursor") << other;
  }
  // The same query (the limit may change) takes it.
  EXPECT_TRUE(std::holds_alternative<gather_call>(
    query(R"({"where":{},"order_by":"age","limit":5,"allow_scan":true,"cursor":)" + cursor + "}")
      .outcome));
  for (const std::string& forged :
       std::vector<std::string>{R"("abc")", R"("")", R"("!!!")", "5", "{}", "[]", "true",
                                json::serialize(json::value(cursor.substr(1, 10)))}) {
    auto routed_forged = query(R"({"where":{},"order_by":"age","cursor":)" + forged + "}");
    const auto& e = response_of(routed_forged);
    EXPECT_EQ(e.result(), bhttp::status::bad_request) << forged;
    EXPECT_EQ(code_of(e), "invalid_cursor") << forged;
  }
}

// -- shard failures ------------------------------------------------------------------------------

// Verifies a shard's refusal becomes the answer, with its code and message, even when
// another shard is down.
TEST_F(QueryRoutesTest, ShardRefusalIs400) {
  auto r = query(R"({"where":{"age":3}})");
  auto spec = shard_spec(r);
  auto res = merge(r, {hits({hit_of(spec, "a", 3)}),
                       refusal("index_required", "no index on age; add allow_scan"),
                       reply(doc_status::shard_unavailable)});
  EXPECT_EQ(res.result(), bhttp::status::bad_request);
  EXPECT_EQ(code_of(res), "index_required");
  EXPECT_EQ(json::parse(res.body()).at("error").at("message"), "no index on age; add allow_scan");
}

// Verifies an unavailable shard makes the whole answer 503 with Retry-After.
TEST_F(QueryRoutesTest, UnavailableShardIs503) {
  auto r = query(R"({"where":{"age":3}})");
  auto spec = shard_spec(r);
  struct unavailable {
    doc_status status;
    const char* code;
  };
  for (auto [status, code] : {unavailable{doc_status::shard_unavailable, "shard_unavailable"},
                              unavailable{doc_status::storage_error, "storage_unavailable"},
                              unavailable{doc_status::unavailable, "shutting_down"}}) {
    auto down = reply(status);
    down.message = "node n2 is down";
    auto res = merge(r, {hits({hit_of(spec, "a", 3)}), hits({}), std::move(down)});
    EXPECT_EQ(res.result(), bhttp::status::service_unavailable) << code;
    EXPECT_EQ(code_of(res), code);
    EXPECT_EQ(json::parse(res.body()).at("error").at("message"), "node n2 is down");
    EXPECT_EQ(res[bhttp::field::retry_after], "1");
  }
}

// Verifies answers a shard cannot have meant are 500, never a wrong page.
TEST_F(QueryRoutesTest, MalformedShardAnswersAre500) {
  auto r = query(R"({"where":{},"order_by":"age","allow_scan":true})");
  auto spec = shard_spec(r);
  auto unordered =
    merge(r, {hits({hit_of(spec, "b", 2), hit_of(spec, "a", 1)}), hits({}), hits({})});
  EXPECT_EQ(unordered.result(), bhttp::status::internal_server_error);
  EXPECT_EQ(code_of(unordered), "internal_error");
  auto garbage = merge(r, {hits({}), reply(doc_status::ok, "not hits"), hits({})});
  EXPECT_EQ(garbage.result(), bhttp::status::internal_server_error);
  EXPECT_EQ(code_of(garbage), "internal_error");
  auto unexpected = merge(r, {hits({}), reply(doc_status::not_found), hits({})});
  EXPECT_EQ(unexpected.result(), bhttp::status::internal_server_error);
  auto not_object = hit_of(spec, "a", 1);
  not_object.doc = "[1]";
  auto bad_doc = merge(r, {hits({not_object}), hits({}), hits({})});
  EXPECT_EQ(bad_doc.result(), bhttp::status::internal_server_error);
}

// -- explain -------------------------------------------------------------------------------------

// Verifies ?explain=true reaches the shards and their plans are summed.
TEST_F(QueryRoutesTest, ExplainSumsPlans) {
  auto r = query(R"({"where":{"age":{"$gt":3}}})", "?explain=true");
  EXPECT_TRUE(shard_spec(r).explain);
  auto res = merge(r, {plan("age", "range", 4), plan("age", "range", 0), plan("age", "range", 7)});
  ASSERT_EQ(res.result(), bhttp::status::ok);
  auto p = json::parse(res.body()).at("plan");
  EXPECT_EQ(p.at("index"), "age");
  EXPECT_EQ(p.at("scan"), "index");
  EXPECT_EQ(p.at("bounds"), "range");
  EXPECT_EQ(p.at("shards"), 3);
  EXPECT_EQ(p.at("estimated_keys"), 11);
  EXPECT_EQ(p.as_object().if_contains("per_shard"), nullptr);

  auto scan = merge(r, {plan("", "all", 5), plan("", "all", 6)});
  auto s = json::parse(scan.body()).at("plan");
  EXPECT_TRUE(s.at("index").is_null());
  EXPECT_EQ(s.at("scan"), "full");
  EXPECT_EQ(s.at("shards"), 2);
  EXPECT_EQ(s.at("estimated_keys"), 11);

  EXPECT_FALSE(shard_spec(query(R"({"where":{}})", "?explain=false")).explain);
}

// Verifies shards that plan differently (an index still building on one) are reported
// one by one.
TEST_F(QueryRoutesTest, ExplainReportsShardsThatDisagree) {
  auto r = query(R"({"where":{"age":3}})", "?explain=true");
  auto res = merge(r, {plan("age", "eq", 2), plan("", "all", 40), plan("age", "eq", 1)});
  auto p = json::parse(res.body()).at("plan");
  EXPECT_TRUE(p.at("index").is_null());
  EXPECT_EQ(p.at("scan"), "full");
  EXPECT_EQ(p.at("bounds"), "mixed");
  EXPECT_EQ(p.at("estimated_keys"), 43);
  const auto& per = p.at("per_shard").as_array();
  ASSERT_EQ(per.size(), 3u);
  EXPECT_EQ(per[1].at("shard"), 1);
  EXPECT_TRUE(per[1].at("index").is_null());
  EXPECT_EQ(per[1].at("estimated_keys"), 40);
  EXPECT_EQ(per[2].at("index"), "age");
  EXPECT_EQ(per[2].at("bounds"), "eq");

  auto garbage = merge(r, {plan("age", "eq", 2), reply(doc_status::ok, "{"), plan("", "all", 1)});
  EXPECT_EQ(garbage.result(), bhttp::status::internal_server_error);
}

// -- refused queries -----------------------------------------------------------------------------

// Verifies every query the edge can refuse is a 400 with a stable code and no shard call.
TEST_F(QueryRoutesTest, InvalidQueriesAre400) {
  struct bad_query {
    std::string body;
    std::string code;
  };
  for (const auto& [body, code] : std::vector<bad_query>{
         {"{", "invalid_json"},
         {"", "invalid_json"},
         {"[]", "invalid_query"},
         {R"({"where":[]})", "invalid_query"},
         {R"({"where":{"a":{"$regex":"x"}}})", "invalid_query"},
         {R"({"where":{"a":{"x":1}}})", "invalid_query"},
         {R"({"where":{"a":{}}})", "invalid_query"},
         {R"({"where":{"a":{"$gt":[1]}}})", "invalid_query"},
         {R"({"where":{"a":{"$lt":{"b":1}}}})", "invalid_query"},
         {R"({"where":{"a":[1,2]}})", "invalid_query"},
         {R"({"where":{"a":{"$in":5}}})", "invalid_query"},
         {R"({"where":{"a":{"$in":[[1]]}}})", "invalid_query"},
         {R"({"where":{"a..b":1}})", "invalid_query"},
         {R"({"where":{"":1}})", "invalid_query"},
         {R"({"where":{},"order_by":"a b"})", "invalid_query"},
         {R"({"where":{},"order_by":5})", "invalid_query"},
         {R"({"where":{},"desc":"yes"})", "invalid_query"},
         {R"({"where":{},"limit":0})", "invalid_query"},
         {R"({"where":{},"limit":51})", "invalid_query"},
         {R"({"where":{},"limit":-1})", "invalid_query"},
         {R"({"where":{},"limit":2.5})", "invalid_query"},
         {R"({"where":{},"limit":"5"})", "invalid_query"},
         {R"({"where":{},"allow_scan":1})", "invalid_query"},
         {R"({"where":{},"select":["a"]})", "invalid_query"},
       }) {
    auto r = query(body);
    const auto& res = response_of(r);
    EXPECT_EQ(res.result(), bhttp::status::bad_request) << body;
    EXPECT_EQ(code_of(res), code) << body;
  }
  // At the maximum limit it passes.
  EXPECT_EQ(shard_spec(query(R"({"where":{},"limit":50})")).limit, 50u);
}

// Verifies query parameters other than explain=true|false are refused.
TEST_F(QueryRoutesTest, UnknownParamsAre400) {
  for (auto params :
       {"?explain=yes", "?explain", "?limit=5", "?explain=true&x=1", "?Explain=true"}) {
    auto r = query(R"({"where":{}})", params);
    const auto& res = response_of(r);
    EXPECT_EQ(res.result(), bhttp::status::bad_request) << params;
    EXPECT_EQ(code_of(res), "invalid_query") << params;
  }
}

// Verifies the method, collection name and media type rules of the query route.
TEST_F(QueryRoutesTest, QueryRouteRules) {
  for (auto verb : {bhttp::verb::get, bhttp::verb::put, bhttp::verb::delete_}) {
    auto r = go(make(verb, "/v1/collections/c/query", R"({"where":{}})"));
    const auto& res = response_of(r);
    EXPECT_EQ(res.result(), bhttp::status::method_not_allowed);
    EXPECT_EQ(res[bhttp::field::allow], "POST");
    EXPECT_EQ(r.route, route_id::query);
  }
  auto bad_name = go(make(bhttp::verb::post, "/v1/collections/a.b/query", R"({"where":{}})"));
  EXPECT_EQ(code_of(response_of(bad_name)), "invalid_name");
  auto text =
    go(make(bhttp::verb::post, "/v1/collections/c/query", R"({"where":{}})", "text/plain"));
  EXPECT_EQ(response_of(text).result(), bhttp::status::unsupported_media_type);
}

// -- index routes ---------------------------------------------------------------------------------

// Verifies PUT of an index is a gather call of index_put for the field path; 201 with a
// Location and the summed progress when a shard created it.
TEST_F(QueryRoutesTest, IndexPutCreates) {
  auto r = go(make(bhttp::verb::put, "/v1/collections/users/indexes/address.city"));
  EXPECT_EQ(r.route, route_id::index);
  const auto& call = gather_of(r);
  EXPECT_EQ(call.request.op, actors::doc_op::index_put);
  EXPECT_EQ(call.request.collection, "users");
  EXPECT_EQ(call.request.id, "address.city");
  auto res = merge(r, {progress("address.city", false, 0, 10, doc_status::created),
                       progress("address.city", true, 5, 5, doc_status::created),
                       progress("address.city", false, 3, 7, doc_status::created)});
  EXPECT_EQ(res.result(), bhttp::status::created);
  EXPECT_EQ(res[bhttp::field::location], "/v1/collections/users/indexes/address.city");
  EXPECT_EQ(json::parse(res.body()),
            json::parse(R"({"field":"address.city","state":"building","indexed":8,"total":22})"));
}

// Verifies PUT of an index every shard has is 200; one that only some shards had (a
// PUT interrupted by a failure) is created again: 201.
TEST_F(QueryRoutesTest, IndexPutExisting) {
  auto r = go(make(bhttp::verb::put, "/v1/collections/users/indexes/age"));
  auto res = merge(r, {progress("age", true, 4, 4), progress("age", true, 6, 6)});
  EXPECT_EQ(res.result(), bhttp::status::ok);
  EXPECT_EQ(json::parse(res.body()),
            json::parse(R"({"field":"age","state":"ready","indexed":10,"total":10})"));
  auto partly =
    merge(r, {progress("age", true, 4, 4), progress("age", false, 0, 6, doc_status::created)});
  EXPECT_EQ(partly.result(), bhttp::status::created);
}

// Verifies the bodies an index PUT takes: none or {}.
TEST_F(QueryRoutesTest, IndexPutBody) {
  EXPECT_TRUE(std::holds_alternative<gather_call>(
    go(make(bhttp::verb::put, "/v1/collections/c/indexes/age", "{}")).outcome));
  auto members = go(make(bhttp::verb::put, "/v1/collections/c/indexes/age", R"({"unique":true})"));
  EXPECT_EQ(code_of(response_of(members)), "unknown_field");
  auto not_json = go(make(bhttp::verb::put, "/v1/collections/c/indexes/age", "{"));
  EXPECT_EQ(code_of(response_of(not_json)), "invalid_json");
  auto text = go(make(bhttp::verb::put, "/v1/collections/c/indexes/age", "{}", "text/plain"));
  EXPECT_EQ(response_of(text).result(), bhttp::status::unsupported_media_type);
}

// Verifies GET of an index sums the shards that have it: building while any part builds;
// 404 when none has it.
TEST_F(QueryRoutesTest, IndexGet) {
  for (auto verb : {bhttp::verb::get, bhttp::verb::head}) {
    auto r = go(make(verb, "/v1/collections/c/indexes/age"));
    EXPECT_EQ(gather_of(r).request.op, actors::doc_op::index_get);
  }
  auto r = go(make(bhttp::verb::get, "/v1/collections/c/indexes/age"));
  auto building = merge(
    r, {progress("age", true, 3, 3), progress("age", false, 1, 9), reply(doc_status::not_found)});
  EXPECT_EQ(building.result(), bhttp::status::ok);
  EXPECT_EQ(json::parse(building.body()),
            json::parse(R"({"field":"age","state":"building","indexed":4,"total":12})"));
  auto missing = merge(r, {reply(doc_status::not_found), reply(doc_status::not_found)});
  EXPECT_EQ(missing.result(), bhttp::status::not_found);
  EXPECT_EQ(code_of(missing), "not_found");
  auto down = merge(r, {progress("age", true, 3, 3), reply(doc_status::shard_unavailable)});
  EXPECT_EQ(down.result(), bhttp::status::service_unavailable);
  auto garbage = merge(r, {progress("age", true, 3, 3), reply(doc_status::ok, "x")});
  EXPECT_EQ(garbage.result(), bhttp::status::internal_server_error);
}

// Verifies DELETE of an index: 204 when a shard dropped it, 404 when none had it.
TEST_F(QueryRoutesTest, IndexDelete) {
  auto r = go(make(bhttp::verb::delete_, "/v1/collections/c/indexes/age"));
  EXPECT_EQ(gather_of(r).request.op, actors::doc_op::index_drop);
  auto dropped = merge(r, {reply(doc_status::ok), reply(doc_status::not_found)});
  EXPECT_EQ(dropped.result(), bhttp::status::no_content);
  EXPECT_TRUE(dropped.body().empty());
  auto missing = merge(r, {reply(doc_status::not_found), reply(doc_status::not_found)});
  EXPECT_EQ(missing.result(), bhttp::status::not_found);
  auto down = merge(r, {reply(doc_status::ok), reply(doc_status::storage_error)});
  EXPECT_EQ(down.result(), bhttp::status::service_unavailable);
  EXPECT_EQ(code_of(down), "storage_unavailable");
}

// Verifies index fields must be valid paths and collections valid names, and the methods
// the index route takes.
TEST_F(QueryRoutesTest, IndexRouteRules) {
  std::string nine = "a.b.c.d.e.f.g.h.i";
  std::string long_name(65, 'n');
  for (std::string field :
       {std::string("a..b"), std::string("a."), std::string(".a"), nine, long_name,
        std::string("a%20b"), std::string("%24x"), std::string("caf%C3%A9")}) {
    for (auto verb : {bhttp::verb::put, bhttp::verb::get, bhttp::verb::delete_}) {
      auto r = go(make(verb, "/v1/collections/c/indexes/" + field));
      const auto& res = response_of(r);
      EXPECT_EQ(res.result(), bhttp::status::bad_request) << field;
      EXPECT_EQ(code_of(res), "invalid_field") << field;
    }
  }
  EXPECT_TRUE(std::holds_alternative<gather_call>(
    go(make(bhttp::verb::put, "/v1/collections/c/indexes/a.b.c.d.e.f.g.h")).outcome));
  auto bad_name = go(make(bhttp::verb::put, "/v1/collections/a.b/indexes/age"));
  EXPECT_EQ(code_of(response_of(bad_name)), "invalid_name");
  for (auto verb : {bhttp::verb::post, bhttp::verb::patch}) {
    auto r = go(make(verb, "/v1/collections/c/indexes/age"));
    EXPECT_EQ(response_of(r).result(), bhttp::status::method_not_allowed);
    EXPECT_EQ(response_of(r)[bhttp::field::allow], "GET, HEAD, PUT, DELETE");
  }
}

// Verifies the index list merges each field over the shards, sorted by field.
TEST_F(QueryRoutesTest, IndexListMerges) {
  auto r = go(make(bhttp::verb::get, "/v1/collections/c/indexes"));
  EXPECT_EQ(r.route, route_id::indexes);
  const auto& call = gather_of(r);
  EXPECT_EQ(call.request.op, actors::doc_op::index_list);
  EXPECT_EQ(call.request.collection, "c");
  auto list = [](std::vector<doc_reply> parts) {
    std::string body = "{\"indexes\":[";
    for (std::size_t i = 0; i < parts.size(); ++i)
      body += (i ? "," : "") + parts[i].body;
    return reply(doc_status::ok, body + "]}");
  };
  auto res =
    merge(r, {list({progress("status", true, 2, 2), progress("age", true, 1, 1)}),
              list({progress("age", false, 0, 5), progress("status", true, 3, 3)}), list({})});
  ASSERT_EQ(res.result(), bhttp::status::ok);
  EXPECT_EQ(json::parse(res.body()),
            json::parse(R"({"indexes":[{"field":"age","state":"building","indexed":1,"total":6},
                                       {"field":"status","state":"ready","indexed":5,"total":5}]})"));
  auto none = merge(r, {list({}), list({})});
  EXPECT_EQ(none.body(), R"({"indexes":[]})");
  auto garbage = merge(r, {list({}), reply(doc_status::ok, R"({"indexes":5})")});
  EXPECT_EQ(garbage.result(), bhttp::status::internal_server_error);
  auto bad_item = merge(r, {reply(doc_status::ok, R"({"indexes":[{"field":1}]})")});
  EXPECT_EQ(bad_item.result(), bhttp::status::internal_server_error);
  auto down = merge(r, {list({}), reply(doc_status::shard_unavailable)});
  EXPECT_EQ(down.result(), bhttp::status::service_unavailable);
  EXPECT_EQ(code_of(down), "shard_unavailable");
}

// Verifies the index list's method and name rules.
TEST_F(QueryRoutesTest, IndexListRules) {
  EXPECT_EQ(gather_of(go(make(bhttp::verb::head, "/v1/collections/c/indexes"))).request.op,
            actors::doc_op::index_list);
  auto post = go(make(bhttp::verb::post, "/v1/collections/c/indexes", "{}"));
  EXPECT_EQ(response_of(post).result(), bhttp::status::method_not_allowed);
  EXPECT_EQ(response_of(post)[bhttp::field::allow], "GET, HEAD");
  auto bad = go(make(bhttp::verb::get, "/v1/collections/a%2Fb/indexes"));
  EXPECT_EQ(code_of(response_of(bad)), "invalid_name");
}

} // namespace
} // namespace shoal::http
