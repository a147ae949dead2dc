// SPDX-License-Identifier: Apache-2.0
#include "http/router.hpp"

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>

namespace shoal::http {
namespace {

namespace bhttp = boost::beast::http;

request make(bhttp::verb verb, std::string target, std::string body = {},
             std::string content_type = "application/json") {
  request req{verb, target, 11};
  if (!body.empty() || verb == bhttp::verb::put || verb == bhttp::verb::patch) {
    req.set(bhttp::field::content_type, content_type);
    req.body() = std::move(body);
    req.prepare_payload();
  }
  return req;
}

class RouterTest : public ::testing::Test {
protected:
  route_env env;
  bool ready = true;
  void SetUp() override {
    env.ready = [this] { return ready; };
    env.metrics_text = [] { return std::string("m 1\n"); };
  }

  routed go(request req) {
    return route(req, env);
  }

  /// The error code of a JSON error response.
  static std::string code_of(const response& res) {
    auto v = boost::json::parse(res.body());
    return std::string(v.at("error").at("code").as_string());
  }

  static const response& response_of(const routed& r) {
    EXPECT_TRUE(std::holds_alternative<response>(r.outcome));
    return std::get<response>(r.outcome);
  }

  static const doc_call& call_of(const routed& r) {
    EXPECT_TRUE(std::holds_alternative<doc_call>(r.outcome));
    return std::get<doc_call>(r.outcome);
  }
};

// Verifies the document route builds a shard request with decoded names.
TEST_F(RouterTest, DocumentGetBecomesShardCall) {
  auto r = go(make(bhttp::verb::get, "/v1/collections/users/docs/a%40b.c"));
  EXPECT_EQ(r.route, route_id::document);
  const auto& call = call_of(r);
  EXPECT_EQ(call.request.op, actors::doc_op::get);
  EXPECT_EQ(call.request.collection, "users");
  EXPECT_EQ(call.request.id, "a@b.c");
}

// Verifies a PUT body is parsed and normalized before it reaches a shard.
TEST_F(RouterTest, PutBodyIsNormalized) {
  auto r = go(make(bhttp::verb::put, "/v1/collections/c/docs/1", "{ \"a\" : [1, 2] }"));
  EXPECT_EQ(call_of(r).request.body, R"({"a":[1,2]})");
}

// Verifies a query string does not change the route.
TEST_F(RouterTest, QueryStringIsIgnoredForRouting) {
  auto r = go(make(bhttp::verb::get, "/v1/collections/c/docs/1?x=y"));
  EXPECT_EQ(call_of(r).request.id, "1");
}

// Verifies the name rules: each bad collection or id gets 400 invalid_name.
TEST_F(RouterTest, BadNamesAreInvalidName) {
  std::string long_collection(65, 'c');
  std::string long_id(257, 'i');
  for (std::string target : std::vector<std::string>{
         "/v1/collections//docs/1", "/v1/collections/" + long_collection + "/docs/1",
         "/v1/collections/c/docs/" + long_id, "/v1/collections/c/docs/..",
         "/v1/collections/c/docs/.", "/v1/collections/c/docs/a%2Fb", "/v1/collections/c/docs/a%01b",
         "/v1/collections/c/docs/caf%C3%A9", "/v1/collections/a.b/docs/1",
         "/v1/collections/c/docs/a%20b", "/v1/collections/c/docs/"}) {
    auto r = go(make(bhttp::verb::get, target));
    const auto& res = response_of(r);
    EXPECT_EQ(res.result(), bhttp::status::bad_request) << target;
    EXPECT_EQ(code_of(res), "invalid_name") << target;
  }
}

// Verifies the longest valid names are accepted.
TEST_F(RouterTest, LongestValidNamesAreAccepted) {
  std::string collection(64, 'c');
  std::string id(256, 'i');
  auto r = go(make(bhttp::verb::get, "/v1/collections/" + collection + "/docs/" + id));
  EXPECT_EQ(call_of(r).request.id, id);
}

// Verifies bodies that are not JSON objects are refused with stable codes.
TEST_F(RouterTest, BadBodiesAreRefused) {
  struct bad_body {
    std::string body;
    std::string code;
  };
  std::string deep(10000, '[');
  deep += std::string(10000, ']');
  std::string deep_object = "{\"a\":" + deep + "}";
  for (const auto& [body, code] :
       {bad_body{"{", "invalid_json"}, bad_body{"", "invalid_json"},
        bad_body{"[1,2]", "invalid_document"}, bad_body{"42", "invalid_document"},
        bad_body{"\"s\"", "invalid_document"}, bad_body{deep_object, "invalid_json"},
        bad_body{"{\"a\":\"\xc3\x28\"}", "invalid_json"},
        bad_body{"{\"a\":1} x", "invalid_json"}}) {
    for (auto verb : {bhttp::verb::put, bhttp::verb::patch}) {
      auto r = go(make(verb, "/v1/collections/c/docs/1", body));
      const auto& res = response_of(r);
      EXPECT_EQ(res.result(), bhttp::status::bad_request) << body.substr(0, 20);
      EXPECT_EQ(code_of(res), code) << body.substr(0, 20);
    }
  }
}

// Verifies that a body with another media type gets 415; JSON variants pass.
TEST_F(RouterTest, ContentTypeMustBeJson) {
  auto r = go(make(bhttp::verb::put, "/v1/collections/c/docs/1", "{}", "text/plain"));
  EXPECT_EQ(response_of(r).result(), bhttp::status::unsupported_media_type);
  for (auto ct :
       {"application/json; charset=utf-8", "Application/JSON", "application/merge-patch+json"})
    EXPECT_TRUE(std::holds_alternative<doc_call>(
      go(make(bhttp::verb::patch, "/v1/collections/c/docs/1", "{}", ct)).outcome))
      << ct;
}

// Verifies unsupported methods get 405 with the Allow header.
TEST_F(RouterTest, WrongMethodIs405WithAllow) {
  auto r = go(make(bhttp::verb::post, "/v1/collections/c/docs/1"));
  const auto& res = response_of(r);
  EXPECT_EQ(res.result(), bhttp::status::method_not_allowed);
  EXPECT_EQ(res[bhttp::field::allow], "GET, HEAD, PUT, PATCH, DELETE");
  auto h = go(make(bhttp::verb::delete_, "/healthz"));
  EXPECT_EQ(response_of(h)[bhttp::field::allow], "GET, HEAD");
  request unknown{bhttp::verb::unknown, "/v1/collections/c/docs/1", 11};
  unknown.method_string("FOO");
  EXPECT_EQ(response_of(go(unknown)).result(), bhttp::status::method_not_allowed);
}

// Verifies unknown paths get a JSON 404.
TEST_F(RouterTest, UnknownRouteIs404) {
  for (auto target : {"/", "/v2/collections/c/docs/1", "/v1/collections/c/docs", "/healthz/",
                      "/v1/collections/c/docs/1/x"}) {
    auto r = go(make(bhttp::verb::get, target));
    EXPECT_EQ(r.route, route_id::unknown);
    EXPECT_EQ(response_of(r).result(), bhttp::status::not_found) << target;
    EXPECT_EQ(code_of(response_of(r)), "not_found");
  }
}

// Verifies /readyz follows the readiness callback and /healthz stays up.
TEST_F(RouterTest, ProbesReportHealthAndReadiness) {
  EXPECT_EQ(response_of(go(make(bhttp::verb::get, "/healthz"))).result(), bhttp::status::ok);
  EXPECT_EQ(response_of(go(make(bhttp::verb::get, "/readyz"))).result(), bhttp::status::ok);
  ready = false;
  auto r = go(make(bhttp::verb::get, "/readyz"));
  EXPECT_EQ(response_of(r).result(), bhttp::status::service_unavailable);
  EXPECT_EQ(response_of(go(make(bhttp::verb::get, "/healthz"))).result(), bhttp::status::ok);
  auto m = go(make(bhttp::verb::get, "/metrics"));
  EXPECT_EQ(response_of(m).body(), "m 1\n");
  EXPECT_EQ(response_of(m)[bhttp::field::content_type], "text/plain; version=0.0.4; charset=utf-8");
}

// Verifies If-Match / If-None-Match parsing, including weak tags and malformed values.
TEST(EntityTagTest, ParsesHeaderValues) {
  auto star = parse_entity_tags(" * ", false);
  ASSERT_TRUE(star);
  EXPECT_EQ(star->what, actors::precondition::kind::any);
  auto list = parse_entity_tags(R"("1", W/"2" ,"x", "3")", false);
  ASSERT_TRUE(list);
  EXPECT_EQ(list->versions, (std::vector<std::uint64_t>{1, 3}));
  auto weak = parse_entity_tags(R"(W/"2")", true);
  ASSERT_TRUE(weak);
  EXPECT_EQ(weak->versions, (std::vector<std::uint64_t>{2}));
  for (auto bad : {"", "1", "\"1", "\"1\" \"2\"", "W/1", ","})
    EXPECT_FALSE(parse_entity_tags(bad, false)) << bad;
}

// Verifies a malformed If-Match gets 400 invalid_header and no shard call.
TEST_F(RouterTest, MalformedPreconditionIs400) {
  auto req = make(bhttp::verb::put, "/v1/collections/c/docs/1", "{}");
  req.set(bhttp::field::if_match, "7");
  auto r = go(req);
  EXPECT_EQ(code_of(response_of(r)), "invalid_header");
}

// Verifies replies render with the contract's statuses, ETags and bodies.
TEST(RenderTest, RendersEachReplyStatus) {
  doc_call put_call;
  put_call.request.op = actors::doc_op::put;
  put_call.request.collection = "users";
  put_call.request.id = "42";
  auto created = render_doc_reply(put_call, {actors::doc_status::created, 1, {}, {}}, 11);
  EXPECT_EQ(created.result(), bhttp::status::created);
  EXPECT_EQ(created[bhttp::field::etag], "\"1\"");
  EXPECT_EQ(created[bhttp::field::location], "/v1/collections/users/docs/42");
  EXPECT_EQ(created.body(), R"({"id":"42","version":1})");
  auto replaced = render_doc_reply(put_call, {actors::doc_status::ok, 2, {}, {}}, 11);
  EXPECT_EQ(replaced.result(), bhttp::status::ok);
  EXPECT_EQ(replaced.body(), R"({"id":"42","version":2})");
  EXPECT_EQ(
    render_doc_reply(put_call, {actors::doc_status::precondition_failed, 2, {}, "x"}, 11).result(),
    bhttp::status::precondition_failed);
  auto unavailable =
    render_doc_reply(put_call, {actors::doc_status::storage_error, 0, {}, "x"}, 11);
  EXPECT_EQ(unavailable.result(), bhttp::status::service_unavailable);
  EXPECT_EQ(unavailable[bhttp::field::retry_after], "1");

  doc_call get_call = put_call;
  get_call.request.op = actors::doc_op::get;
  auto got = render_doc_reply(get_call, {actors::doc_status::ok, 3, R"({"a":1})", {}}, 11);
  EXPECT_EQ(got.body(), R"({"a":1})");
  EXPECT_EQ(got[bhttp::field::etag], "\"3\"");
  EXPECT_EQ(render_doc_reply(get_call, {actors::doc_status::not_modified, 3, {}, {}}, 11).result(),
            bhttp::status::not_modified);
  EXPECT_EQ(render_doc_reply(get_call, {actors::doc_status::not_found, 0, {}, {}}, 11).result(),
            bhttp::status::not_found);

  doc_call del_call = put_call;
  del_call.request.op = actors::doc_op::del;
  EXPECT_EQ(render_doc_reply(del_call, {actors::doc_status::ok, 3, {}, {}}, 11).result(),
            bhttp::status::no_content);
}

} // namespace
} // namespace shoal::http

namespace shoal::http {
namespace {

// Verifies GET /v1/cluster renders the latest view: states, heartbeat ages (null before
// the first), reasons of down members and the owner of every shard.
TEST(ClusterRouteTest, RendersTheView) {
  auto now = std::chrono::steady_clock::now();
  auto view = std::make_shared<cluster::cluster_view>();
  view->self = "n1";
  view->ready = true;
  view->nodes.push_back({"n1", "127.0.0.1:8081", cluster::member_state::up, now, ""});
  view->nodes.push_back({"n2", "127.0.0.1:8082", cluster::member_state::down,
                         now - std::chrono::milliseconds(1500), "connection lost"});
  view->nodes.push_back({"n3", "127.0.0.1:8083", cluster::member_state::connecting, {}, "x"});
  view->shard_owners = {"n2", "n1", "n3"};
  route_env env;
  env.cluster_view = [view] { return view; };
  request req{bhttp::verb::get, "/v1/cluster", 11};
  auto r = route(req, env);
  EXPECT_EQ(r.route, route_id::cluster);
  const auto& res = std::get<response>(r.outcome);
  ASSERT_EQ(res.result(), bhttp::status::ok);
  auto v = boost::json::parse(res.body()).as_object();
  EXPECT_EQ(v.at("node").as_string(), "n1");
  const auto& nodes = v.at("nodes").as_array();
  ASSERT_EQ(nodes.size(), 3u);
  EXPECT_EQ(nodes[0].at("state").as_string(), "up");
  EXPECT_EQ(nodes[0].at("http").as_string(), "127.0.0.1:8081");
  EXPECT_EQ(nodes[1].at("state").as_string(), "down");
  EXPECT_GE(nodes[1].at("last_heartbeat_ms").as_int64(), 1500);
  EXPECT_EQ(nodes[1].at("reason").as_string(), "connection lost");
  EXPECT_EQ(nodes[2].at("state").as_string(), "connecting");
  EXPECT_TRUE(nodes[2].at("last_heartbeat_ms").is_null());
  EXPECT_EQ(v.at("shards").at("count").as_int64(), 3);
  EXPECT_EQ(v.at("shards").at("owners").at("0").as_string(), "n2");
  EXPECT_EQ(v.at("shards").at("owners").at("2").as_string(), "n3");
}

// Verifies /v1/cluster without a view yet is 503, and only GET/HEAD are allowed.
TEST(ClusterRouteTest, NoViewIsNotReadyAndWritesAreRefused) {
  route_env env;
  env.cluster_view = [] { return std::shared_ptr<const cluster::cluster_view>{}; };
  request get{bhttp::verb::get, "/v1/cluster", 11};
  EXPECT_EQ(std::get<response>(route(get, env).outcome).result(),
            bhttp::status::service_unavailable);
  request post{bhttp::verb::post, "/v1/cluster", 11};
  EXPECT_EQ(std::get<response>(route(post, env).outcome).result(),
            bhttp::status::method_not_allowed);
}

// Verifies a forwarded request that found its owner down renders as 503
// shard_unavailable with Retry-After.
TEST(ClusterRouteTest, ShardUnavailableIs503WithRetryAfter) {
  doc_call call;
  call.request.op = actors::doc_op::get;
  auto res = render_doc_reply(
    call, actors::doc_reply{actors::doc_status::shard_unavailable, 0, {}, "node n2 is down"}, 11);
  EXPECT_EQ(res.result(), bhttp::status::service_unavailable);
  EXPECT_EQ(res[bhttp::field::retry_after], "1");
  auto v = boost::json::parse(res.body());
  EXPECT_EQ(v.at("error").at("code").as_string(), "shard_unavailable");
}

} // namespace
} // namespace shoal::http
