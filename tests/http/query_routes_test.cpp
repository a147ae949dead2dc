// SPDX-License-Identifier: Apache-2.0
// Unit tests of the index and query routes (http/query_routes.cpp) without sockets or
// actors: requests go through http::route() with tests/support/edge.hpp's fake shard
// client, which shows the typed request asked of every shard; the shards' answers are
// built by hand, and the test checks what the handler renders of what query/merge.hpp
// makes of them (the merge itself is tested in tests/query/merge_test.cpp).
#include "http/router.hpp"

#include <string>
#include <vector>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "query/messages.hpp"
#include "query/query.hpp"
#include "tests/support/edge.hpp"

namespace shoal::http {
namespace {

namespace bhttp = boost::beast::http;
namespace json = boost::json;

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

/// A shard's refusal of a query (it depends on the shard's state, e.g. index_required).
core::error refusal(std::string code, std::string message) {
  return core::error{core::errc::invalid_argument, std::move(code), std::move(message)};
}

core::error failure(core::errc code, std::string message = "failed") {
  return core::error{code, std::move(message)};
}

query::index_progress progress(std::string field, bool ready, std::uint64_t indexed,
                               std::uint64_t total) {
  query::index_progress p;
  p.field = std::move(field);
  p.ready = ready;
  p.indexed = indexed;
  p.total = total;
  return p;
}

/// A shard's answer to an index PUT: its part's progress, and whether it created it.
query::index_state state(query::index_progress p, bool created = false) {
  return query::index_state{std::move(p), created};
}

query::shard_plan plan(std::string index, std::string bounds, std::uint64_t keys) {
  query::shard_plan p;
  p.index = std::move(index);
  p.bounds = std::move(bounds);
  p.estimated_keys = keys;
  return p;
}

template <class T>
using answers = std::vector<core::result<T>>;

class QueryRoutesTest : public ::testing::Test {
protected:
  shoal::testing::edge_harness edge{3};
  route_env& env = edge.env;

  void SetUp() override {
    env.query_default_limit = 10;
    env.query_max_limit = 50;
  }

  /// Routes `req` afresh: what earlier requests asked or were answered is forgotten.
  routed go(request req) {
    edge.shards.log.clear();
    edge.port->posted.clear();
    return edge.go(std::move(req));
  }

  /// POST /v1/collections/c/query with `body`.
  static request query_request(std::string body, std::string params = {}) {
    return make(bhttp::verb::post, "/v1/collections/c/query" + params, std::move(body));
  }

  routed query(std::string body, std::string params = {}) {
    return go(query_request(std::move(body), std::move(params)));
  }

  static std::string code_of(const response& res) {
    auto v = json::parse(res.body());
    return std::string(v.at("error").at("code").as_string());
  }

  /// The response a route gave at once, without asking any shard.
  const response& response_of(const routed& r) const {
    EXPECT_TRUE(std::holds_alternative<response>(r.outcome));
    EXPECT_TRUE(edge.shards.log.empty()) << "a refused request asked a shard";
    return std::get<response>(r.outcome);
  }

  /// The request of type R that routing `r` asked of every shard, in shard order (a test
  /// failure unless each shard got the same one, and nothing else was asked).
  template <class R>
  R asked_of_all(const routed& r) const {
    EXPECT_TRUE(std::holds_alternative<pending>(r.outcome)) << "the route did not ask";
    auto all = edge.shards.all<R>();
    EXPECT_EQ(all.size(), edge.shards.shard_count());
    EXPECT_EQ(edge.shards.log.size(), all.size()) << "other requests were asked too";
    for (std::size_t i = 0; i < all.size(); ++i)
      EXPECT_EQ(all[i].first, i);
    return all.empty() ? R{} : all.front().second;
  }

  /// The spec the shards get for query `req` (a query_run, or a query_explain).
  query::query_spec shard_spec(const request& req) {
    auto r = go(req);
    if (!edge.shards.all<query::query_explain>().empty())
      return asked_of_all<query::query_explain>(r).spec;
    auto run = asked_of_all<query::query_run>(r);
    EXPECT_EQ(run.collection, "c");
    return run.spec;
  }

  /// Routes `req` on a node of as many shards as there are `replies`, answers the
  /// request of type R of shard i with `replies[i]`, and returns the response rendered
  /// once all have answered.
  template <class R>
  response merge(const request& req, answers<protocol::reply_of<R>> replies) {
    shoal::testing::edge_harness node{static_cast<std::uint32_t>(replies.size())};
    node.env = env;
    auto r = node.go(req);
    EXPECT_TRUE(std::holds_alternative<pending>(r.outcome)) << "the route did not ask";
    EXPECT_EQ(node.shards.all<R>().size(), replies.size());
    for (std::size_t i = 0; i < replies.size(); ++i) {
      EXPECT_TRUE(node.port->posted.empty()) << "answered before every shard did";
      node.shards.answer<R>(i, std::move(replies[i]));
    }
    EXPECT_EQ(node.port->posted.size(), 1u) << "a gather answers once";
    return node.response(r);
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

  static query::shard_hits hits(std::vector<query::hit> list, bool more = false) {
    query::shard_hits h;
    h.hits = std::move(list);
    h.more = more;
    return h;
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

// Verifies a query becomes one query_run asked of every shard, with the parsed spec and
// the configured default limit.
TEST_F(QueryRoutesTest, QueryBecomesGatherCall) {
  auto r = query(R"({"where":{"status":"active","age":{"$gte":30,"$lt":40}},"order_by":"age"})");
  EXPECT_EQ(r.route, route_id::query);
  EXPECT_EQ(std::get<pending>(r.outcome).timeout_ms, env.request_timeout_ms);
  auto run = asked_of_all<query::query_run>(r);
  EXPECT_EQ(run.collection, "c");
  const auto& spec = run.spec;
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
  auto spec = shard_spec(
    query_request(R"({"where":{},"order_by":"age","desc":true,"limit":50,"allow_scan":true})"));
  EXPECT_EQ(spec.limit, 50u);
  EXPECT_TRUE(spec.desc);
  EXPECT_TRUE(spec.allow_scan);
}

// -- merging hits -------------------------------------------------------------------------------

// Verifies hits of three shards come out in ascending sort order, documents embedded
// verbatim with their ids and versions, and no cursor when nothing is left.
TEST_F(QueryRoutesTest, MergesAscendingAcrossThreeShards) {
  auto q = query_request(R"({"where":{},"order_by":"age","allow_scan":true})");
  auto spec = shard_spec(q);
  auto res = merge<query::query_run>(q, {hits({hit_of(spec, "a", 1), hit_of(spec, "d", 7, 4)}),
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
  auto q = query_request(R"({"where":{},"order_by":"age","desc":true,"allow_scan":true})");
  auto spec = shard_spec(q);
  auto res = merge<query::query_run>(q, {hits({hit_of(spec, "z", 9), hit_of(spec, "b", 2)}),
                                         hits({hit_of(spec, "y", 9), hit_of(spec, "c", 1)}),
                                         hits({hit_of(spec, "x", 5)})});
  EXPECT_EQ(ids_of(res), (std::vector<std::string>{"z", "y", "x", "b", "c"}));
  EXPECT_TRUE(next_cursor(res).is_null());
}

// Verifies the merge orders by document id when there is no order_by.
TEST_F(QueryRoutesTest, MergesByIdWithoutOrderBy) {
  auto q = query_request(R"({"where":{"age":{"$gte":0}}})");
  auto spec = shard_spec(q);
  auto res =
    merge<query::query_run>(q, {hits({hit_of(spec, "k2", 1), hit_of(spec, "k5", 0)}), hits({}),
                                hits({hit_of(spec, "k1", 9), hit_of(spec, "k3", 9)})});
  EXPECT_EQ(ids_of(res), (std::vector<std::string>{"k1", "k2", "k3", "k5"}));
}

// Verifies the merge stops at the limit and returns a cursor when more remain, whether
// the rest is in the answers or only announced by a shard's `more`.
TEST_F(QueryRoutesTest, LimitCutsAndCursorMarksTheRest) {
  auto q = query_request(R"({"where":{},"order_by":"age","limit":3,"allow_scan":true})");
  auto spec = shard_spec(q);
  auto cut =
    merge<query::query_run>(q, {hits({hit_of(spec, "a", 1), hit_of(spec, "d", 4)}),
                                hits({hit_of(spec, "b", 2)}), hits({hit_of(spec, "c", 3)})});
  EXPECT_EQ(ids_of(cut), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(next_cursor(cut).is_string());

  auto announced = merge<query::query_run>(
    q, {hits({hit_of(spec, "a", 1), hit_of(spec, "b", 2), hit_of(spec, "c", 3)}, true), hits({}),
        hits({})});
  EXPECT_EQ(ids_of(announced), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(next_cursor(announced).is_string());

  auto exact = merge<query::query_run>(
    q, {hits({hit_of(spec, "a", 1)}), hits({hit_of(spec, "b", 2)}), hits({hit_of(spec, "c", 3)})});
  EXPECT_EQ(ids_of(exact).size(), 3u);
  EXPECT_TRUE(next_cursor(exact).is_null());

  auto empty = merge<query::query_run>(q, {hits({}), hits({}), hits({})});
  EXPECT_TRUE(ids_of(empty).empty());
  EXPECT_TRUE(next_cursor(empty).is_null());
  EXPECT_EQ(empty.body(), R"({"docs":[],"next_cursor":null})");
}

// Verifies a returned cursor, sent back with the same query, reaches every shard as the
// sort key of the last document returned.
TEST_F(QueryRoutesTest, CursorRoundTripFeedsAfter) {
  const std::string q = R"("where":{"age":{"$gte":1}},"order_by":"age","limit":2)";
  auto first = query_request("{" + q + "}");
  auto spec = shard_spec(first);
  auto b = hit_of(spec, "b", 2);
  auto res = merge<query::query_run>(
    first, {hits({hit_of(spec, "a", 1), hit_of(spec, "c", 3)}), hits({b}), hits({})});
  ASSERT_EQ(ids_of(res), (std::vector<std::string>{"a", "b"}));
  auto cursor = next_cursor(res);
  ASSERT_TRUE(cursor.is_string());

  auto next = query_request("{" + q + ",\"cursor\":" + json::serialize(cursor) + "}");
  auto next_spec = shard_spec(next);
  EXPECT_EQ(next_spec.after, b.sort_key);
  // The second page's merge accepts only what follows the cursor.
  auto page = merge<query::query_run>(next, {hits({hit_of(spec, "c", 3)}), hits({}), hits({})});
  EXPECT_EQ(ids_of(page), (std::vector<std::string>{"c"}));
  auto behind = merge<query::query_run>(next, {hits({hit_of(spec, "a", 1)}), hits({}), hits({})});
  EXPECT_EQ(behind.result(), bhttp::status::internal_server_error);
  EXPECT_EQ(code_of(behind), "internal_error");
}

// Verifies a cursor of one query does not resume another, and forged cursors are 400.
TEST_F(QueryRoutesTest, ForgedOrForeignCursorIs400) {
  auto q = query_request(R"({"where":{},"order_by":"age","limit":1,"allow_scan":true})");
  auto spec = shard_spec(q);
  auto res = merge<query::query_run>(
    q, {hits({hit_of(spec, "a", 1), hit_of(spec, "b", 2)}), hits({}), hits({})});
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
  auto same =
    query(R"({"where":{},"order_by":"age","limit":5,"allow_scan":true,"cursor":)" + cursor + "}");
  EXPECT_EQ(asked_of_all<query::query_run>(same).spec.limit, 5u);
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
  auto q = query_request(R"({"where":{"age":3}})");
  auto spec = shard_spec(q);
  auto res = merge<query::query_run>(
    q, {hits({hit_of(spec, "a", 3)}), refusal("index_required", "no index on age; add allow_scan"),
        failure(core::errc::shard_unavailable)});
  EXPECT_EQ(res.result(), bhttp::status::bad_request);
  EXPECT_EQ(code_of(res), "index_required");
  EXPECT_EQ(json::parse(res.body()).at("error").at("message"), "no index on age; add allow_scan");
}

// Verifies an unavailable shard makes the whole answer 503 with Retry-After.
TEST_F(QueryRoutesTest, UnavailableShardIs503) {
  auto q = query_request(R"({"where":{"age":3}})");
  auto spec = shard_spec(q);
  struct unavailable {
    core::errc error;
    const char* code;
  };
  for (auto [error, code] : {unavailable{core::errc::shard_unavailable, "shard_unavailable"},
                             unavailable{core::errc::storage_failed, "storage_unavailable"},
                             unavailable{core::errc::shutting_down, "shutting_down"}}) {
    auto res = merge<query::query_run>(
      q, {hits({hit_of(spec, "a", 3)}), hits({}), failure(error, "node n2 is down")});
    EXPECT_EQ(res.result(), bhttp::status::service_unavailable) << code;
    EXPECT_EQ(code_of(res), code);
    EXPECT_EQ(json::parse(res.body()).at("error").at("message"), "node n2 is down");
    EXPECT_EQ(res[bhttp::field::retry_after], "1");
  }
}

// Verifies answers a shard cannot have meant are 500, never a wrong page.
TEST_F(QueryRoutesTest, MalformedShardAnswersAre500) {
  auto q = query_request(R"({"where":{},"order_by":"age","allow_scan":true})");
  auto spec = shard_spec(q);
  auto unordered = merge<query::query_run>(
    q, {hits({hit_of(spec, "b", 2), hit_of(spec, "a", 1)}), hits({}), hits({})});
  EXPECT_EQ(unordered.result(), bhttp::status::internal_server_error);
  EXPECT_EQ(code_of(unordered), "internal_error");
  auto not_object = hit_of(spec, "a", 1);
  not_object.doc = "[1]";
  auto bad_doc = merge<query::query_run>(q, {hits({not_object}), hits({}), hits({})});
  EXPECT_EQ(bad_doc.result(), bhttp::status::internal_server_error);
  EXPECT_EQ(code_of(bad_doc), "internal_error");
  auto empty_doc = hit_of(spec, "a", 1);
  empty_doc.doc.clear();
  auto no_doc = merge<query::query_run>(q, {hits({}), hits({empty_doc}), hits({})});
  EXPECT_EQ(no_doc.result(), bhttp::status::internal_server_error);
  // A shard that broke an invariant answers internal: 500, whatever the others say.
  auto broken = merge<query::query_run>(
    q, {hits({hit_of(spec, "a", 1)}), failure(core::errc::internal, "a bug"), hits({})});
  EXPECT_EQ(broken.result(), bhttp::status::internal_server_error);
  EXPECT_EQ(code_of(broken), "internal_error");
}

// -- explain -------------------------------------------------------------------------------------

// Verifies ?explain=true reaches the shards (as query_explain) and their plans are summed.
TEST_F(QueryRoutesTest, ExplainSumsPlans) {
  auto q = query_request(R"({"where":{"age":{"$gt":3}}})", "?explain=true");
  auto r = go(q);
  auto explain = asked_of_all<query::query_explain>(r);
  EXPECT_EQ(explain.collection, "c");
  EXPECT_TRUE(edge.shards.all<query::query_run>().empty());
  auto res = merge<query::query_explain>(
    q, {plan("age", "range", 4), plan("age", "range", 0), plan("age", "range", 7)});
  ASSERT_EQ(res.result(), bhttp::status::ok);
  EXPECT_EQ(res[bhttp::field::content_type], "application/json");
  auto p = json::parse(res.body()).at("plan");
  EXPECT_EQ(p.at("index"), "age");
  EXPECT_EQ(p.at("scan"), "index");
  EXPECT_EQ(p.at("bounds"), "range");
  EXPECT_EQ(p.at("shards"), 3);
  EXPECT_EQ(p.at("estimated_keys"), 11);
  EXPECT_EQ(p.as_object().if_contains("per_shard"), nullptr);

  auto scan = merge<query::query_explain>(q, {plan("", "all", 5), plan("", "all", 6)});
  auto s = json::parse(scan.body()).at("plan");
  EXPECT_TRUE(s.at("index").is_null());
  EXPECT_EQ(s.at("scan"), "full");
  EXPECT_EQ(s.at("shards"), 2);
  EXPECT_EQ(s.at("estimated_keys"), 11);

  auto plain = go(query_request(R"({"where":{}})", "?explain=false"));
  EXPECT_FALSE(asked_of_all<query::query_run>(plain).spec.explain);
  EXPECT_TRUE(edge.shards.all<query::query_explain>().empty());
}

// Verifies shards that plan differently (an index still building on one) are reported
// one by one.
TEST_F(QueryRoutesTest, ExplainReportsShardsThatDisagree) {
  auto q = query_request(R"({"where":{"age":3}})", "?explain=true");
  auto res = merge<query::query_explain>(
    q, {plan("age", "eq", 2), plan("", "all", 40), plan("age", "eq", 1)});
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

  auto down = merge<query::query_explain>(
    q, {plan("age", "eq", 2), failure(core::errc::shard_unavailable, "node n2 is down"),
        plan("", "all", 1)});
  EXPECT_EQ(down.result(), bhttp::status::service_unavailable);
  EXPECT_EQ(code_of(down), "shard_unavailable");
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
  EXPECT_EQ(shard_spec(query_request(R"({"where":{},"limit":50})")).limit, 50u);
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
    EXPECT_EQ(code_of(res), "method_not_allowed");
    EXPECT_EQ(res[bhttp::field::allow], "POST, OPTIONS");
    EXPECT_EQ(r.route, route_id::query);
  }
  auto bad_name = go(make(bhttp::verb::post, "/v1/collections/a.b/query", R"({"where":{}})"));
  EXPECT_EQ(response_of(bad_name).result(), bhttp::status::bad_request);
  EXPECT_EQ(code_of(response_of(bad_name)), "invalid_name");
  auto text =
    go(make(bhttp::verb::post, "/v1/collections/c/query", R"({"where":{}})", "text/plain"));
  EXPECT_EQ(response_of(text).result(), bhttp::status::unsupported_media_type);
  EXPECT_EQ(code_of(response_of(text)), "unsupported_media_type");
}

// -- index routes ---------------------------------------------------------------------------------

// Verifies PUT of an index asks every shard to create it on the field path; 201 with a
// Location and the summed progress when a shard created it.
TEST_F(QueryRoutesTest, IndexPutCreates) {
  auto put = make(bhttp::verb::put, "/v1/collections/users/indexes/address.city");
  auto r = go(put);
  EXPECT_EQ(r.route, route_id::index);
  auto create = asked_of_all<query::index_create>(r);
  EXPECT_EQ(create.collection, "users");
  EXPECT_EQ(create.field, "address.city");
  auto res = merge<query::index_create>(put, {state(progress("address.city", false, 0, 10), true),
                                              state(progress("address.city", true, 5, 5), true),
                                              state(progress("address.city", false, 3, 7), true)});
  EXPECT_EQ(res.result(), bhttp::status::created);
  EXPECT_EQ(res[bhttp::field::location], "/v1/collections/users/indexes/address.city");
  EXPECT_EQ(res[bhttp::field::content_type], "application/json");
  EXPECT_EQ(json::parse(res.body()),
            json::parse(R"({"field":"address.city","state":"building","indexed":8,"total":22})"));
}

// Verifies PUT of an index every shard has is 200; one that only some shards had (a
// PUT interrupted by a failure) is created again: 201.
TEST_F(QueryRoutesTest, IndexPutExisting) {
  auto put = make(bhttp::verb::put, "/v1/collections/users/indexes/age");
  auto res = merge<query::index_create>(
    put, {state(progress("age", true, 4, 4)), state(progress("age", true, 6, 6))});
  EXPECT_EQ(res.result(), bhttp::status::ok);
  EXPECT_EQ(res[bhttp::field::location], "");
  EXPECT_EQ(json::parse(res.body()),
            json::parse(R"({"field":"age","state":"ready","indexed":10,"total":10})"));
  auto partly = merge<query::index_create>(
    put, {state(progress("age", true, 4, 4)), state(progress("age", false, 0, 6), true)});
  EXPECT_EQ(partly.result(), bhttp::status::created);
  auto down = merge<query::index_create>(
    put, {state(progress("age", true, 4, 4)), failure(core::errc::storage_failed)});
  EXPECT_EQ(down.result(), bhttp::status::service_unavailable);
  EXPECT_EQ(code_of(down), "storage_unavailable");
}

// Verifies the bodies an index PUT takes: none or {}.
TEST_F(QueryRoutesTest, IndexPutBody) {
  auto empty_object = go(make(bhttp::verb::put, "/v1/collections/c/indexes/age", "{}"));
  EXPECT_EQ(asked_of_all<query::index_create>(empty_object).field, "age");
  auto members = go(make(bhttp::verb::put, "/v1/collections/c/indexes/age", R"({"unique":true})"));
  EXPECT_EQ(response_of(members).result(), bhttp::status::bad_request);
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
    auto get = asked_of_all<query::index_get>(r);
    EXPECT_EQ(get.collection, "c");
    EXPECT_EQ(get.field, "age");
  }
  auto get = make(bhttp::verb::get, "/v1/collections/c/indexes/age");
  auto building =
    merge<query::index_get>(get, {progress("age", true, 3, 3), progress("age", false, 1, 9),
                                  failure(core::errc::not_found, "no such index")});
  EXPECT_EQ(building.result(), bhttp::status::ok);
  EXPECT_EQ(json::parse(building.body()),
            json::parse(R"({"field":"age","state":"building","indexed":4,"total":12})"));
  auto missing = merge<query::index_get>(get, {failure(core::errc::not_found, "no such index"),
                                               failure(core::errc::not_found, "no such index")});
  EXPECT_EQ(missing.result(), bhttp::status::not_found);
  EXPECT_EQ(code_of(missing), "not_found");
  auto down = merge<query::index_get>(
    get, {progress("age", true, 3, 3), failure(core::errc::shard_unavailable)});
  EXPECT_EQ(down.result(), bhttp::status::service_unavailable);
  EXPECT_EQ(code_of(down), "shard_unavailable");
  EXPECT_EQ(down[bhttp::field::retry_after], "1");
  auto broken =
    merge<query::index_get>(get, {progress("age", true, 3, 3), failure(core::errc::internal)});
  EXPECT_EQ(broken.result(), bhttp::status::internal_server_error);
}

// Verifies DELETE of an index: 204 when a shard dropped it, 404 when none had it.
TEST_F(QueryRoutesTest, IndexDelete) {
  auto del = make(bhttp::verb::delete_, "/v1/collections/c/indexes/age");
  auto drop = asked_of_all<query::index_drop>(go(del));
  EXPECT_EQ(drop.collection, "c");
  EXPECT_EQ(drop.field, "age");
  auto dropped = merge<query::index_drop>(
    del, {query::index_dropped{}, failure(core::errc::not_found, "no such index")});
  EXPECT_EQ(dropped.result(), bhttp::status::no_content);
  EXPECT_TRUE(dropped.body().empty());
  auto missing = merge<query::index_drop>(del, {failure(core::errc::not_found, "no such index"),
                                                failure(core::errc::not_found, "no such index")});
  EXPECT_EQ(missing.result(), bhttp::status::not_found);
  EXPECT_EQ(code_of(missing), "not_found");
  auto down =
    merge<query::index_drop>(del, {query::index_dropped{}, failure(core::errc::storage_failed)});
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
  auto longest = go(make(bhttp::verb::put, "/v1/collections/c/indexes/a.b.c.d.e.f.g.h"));
  EXPECT_EQ(asked_of_all<query::index_create>(longest).field, "a.b.c.d.e.f.g.h");
  auto bad_name = go(make(bhttp::verb::put, "/v1/collections/a.b/indexes/age"));
  EXPECT_EQ(code_of(response_of(bad_name)), "invalid_name");
  for (auto verb : {bhttp::verb::post, bhttp::verb::patch}) {
    auto r = go(make(verb, "/v1/collections/c/indexes/age"));
    EXPECT_EQ(response_of(r).result(), bhttp::status::method_not_allowed);
    EXPECT_EQ(response_of(r)[bhttp::field::allow], "GET, HEAD, PUT, DELETE, OPTIONS");
  }
}

// Verifies the index list merges each field over the shards, sorted by field.
TEST_F(QueryRoutesTest, IndexListMerges) {
  auto get = make(bhttp::verb::get, "/v1/collections/c/indexes");
  auto r = go(get);
  EXPECT_EQ(r.route, route_id::indexes);
  EXPECT_EQ(asked_of_all<query::index_list>(r).collection, "c");
  auto list = [](std::vector<query::index_progress> parts) {
    return query::index_listing{std::move(parts)};
  };
  auto res = merge<query::index_list>(
    get, {list({progress("status", true, 2, 2), progress("age", true, 1, 1)}),
          list({progress("age", false, 0, 5), progress("status", true, 3, 3)}), list({})});
  ASSERT_EQ(res.result(), bhttp::status::ok);
  EXPECT_EQ(res[bhttp::field::content_type], "application/json");
  EXPECT_EQ(json::parse(res.body()),
            json::parse(R"({"indexes":[{"field":"age","state":"building","indexed":1,"total":6},
                           {"field":"status","state":"ready","indexed":5,"total":5}]})"));
  auto none = merge<query::index_list>(get, {list({}), list({})});
  EXPECT_EQ(none.body(), R"({"indexes":[]})");
  auto down = merge<query::index_list>(get, {list({}), failure(core::errc::shard_unavailable)});
  EXPECT_EQ(down.result(), bhttp::status::service_unavailable);
  EXPECT_EQ(code_of(down), "shard_unavailable");
}

// Verifies the index list's method and name rules.
TEST_F(QueryRoutesTest, IndexListRules) {
  auto head = go(make(bhttp::verb::head, "/v1/collections/c/indexes"));
  EXPECT_EQ(asked_of_all<query::index_list>(head).collection, "c");
  auto post = go(make(bhttp::verb::post, "/v1/collections/c/indexes", "{}"));
  EXPECT_EQ(response_of(post).result(), bhttp::status::method_not_allowed);
  EXPECT_EQ(response_of(post)[bhttp::field::allow], "GET, HEAD, OPTIONS");
  auto bad = go(make(bhttp::verb::get, "/v1/collections/a%2Fb/indexes"));
  EXPECT_EQ(response_of(bad).result(), bhttp::status::bad_request);
  EXPECT_EQ(code_of(response_of(bad)), "invalid_name");
}

} // namespace
} // namespace shoal::http
