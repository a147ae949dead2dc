// SPDX-License-Identifier: Apache-2.0
// The router and the document routes without sockets: requests go through http::route()
// with tests/support/edge.hpp's fake shard client, which shows the typed request each
// route asks (and of which shard); answering it shows the response the handler renders.
#include "http/router.hpp"

#include <memory>
#include <string>
#include <vector>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "cluster/shard_map.hpp"
#include "documents/messages.hpp"
#include "http/route_helpers.hpp" // parse_entity_tags
#include "tests/support/edge.hpp"

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

/// The error code of a JSON error response.
std::string code_of(const response& res) {
  auto v = boost::json::parse(res.body());
  return std::string(v.at("error").at("code").as_string());
}

std::string message_of(const response& res) {
  auto v = boost::json::parse(res.body());
  return std::string(v.at("error").at("message").as_string());
}

class RouterTest : public ::testing::Test {
protected:
  shoal::testing::edge_harness edge;
  bool ready = true;
  std::string write_problem; ///< what env.write_problem answers

  void SetUp() override {
    edge.env.ready = [this] { return ready; };
    edge.env.write_problem = [this] { return write_problem; };
    edge.env.metrics_text = [] { return std::string("m 1\n"); };
  }

  /// Routes `req` afresh: what earlier requests asked or were answered is forgotten.
  routed go(request req) {
    edge.shards.log.clear();
    edge.port->posted.clear();
    return edge.go(std::move(req));
  }

  /// The response a route gave at once, without asking any shard.
  const response& response_of(const routed& r) const {
    EXPECT_TRUE(std::holds_alternative<response>(r.outcome));
    EXPECT_TRUE(edge.shards.log.empty()) << "a refused request asked a shard";
    return std::get<response>(r.outcome);
  }

  /// The one request of type R that routing `r` asked (and checks it waits for it).
  template <class R>
  R asked(const routed& r) const {
    EXPECT_TRUE(std::holds_alternative<pending>(r.outcome)) << "the route did not ask";
    return edge.shards.only<R>();
  }

  /// Answers the request of type R with `answer`; returns what the handler rendered.
  template <class R>
  response answered(const routed& r, core::result<protocol::reply_of<R>> answer) {
    EXPECT_TRUE(std::holds_alternative<pending>(r.outcome)) << "the route did not ask";
    edge.shards.answer<R>(0, std::move(answer));
    EXPECT_EQ(edge.port->posted.size(), 1u) << "one response per answer";
    if (!edge.port->posted.empty()) {
      EXPECT_EQ(edge.port->posted.back().first, edge.seq) << "the answer of another request";
    }
    return edge.response(r);
  }
};

// Verifies the document route builds a shard request with decoded names.
TEST_F(RouterTest, DocumentGetBecomesShardCall) {
  auto r = go(make(bhttp::verb::get, "/v1/collections/users/docs/a%40b.c"));
  EXPECT_EQ(r.route, route_id::document);
  auto get = asked<documents::doc_get>(r);
  EXPECT_EQ(get.collection, "users");
  EXPECT_EQ(get.id, "a@b.c");
  EXPECT_FALSE(get.if_match.present());
  EXPECT_FALSE(get.if_none_match.present());
  // Asked of the shard the collection and id hash to, with the request timeout.
  ASSERT_EQ(edge.shards.log.size(), 1u);
  EXPECT_EQ(edge.shards.log[0].shard, cluster::shard_map{4}.shard_of("users", "a@b.c"));
  EXPECT_EQ(std::get<pending>(r.outcome).timeout_ms, edge.env.request_timeout_ms);
}

// Verifies a PUT body is parsed and normalized before it reaches a shard.
TEST_F(RouterTest, PutBodyIsNormalized) {
  auto r = go(make(bhttp::verb::put, "/v1/collections/c/docs/1", "{ \"a\" : [1, 2] }"));
  auto write = asked<documents::doc_write>(r);
  EXPECT_EQ(write.kind, documents::write_kind::put);
  EXPECT_EQ(write.body, R"({"a":[1,2]})");
}

// Verifies a query string does not change the route.
TEST_F(RouterTest, QueryStringIsIgnoredForRouting) {
  auto r = go(make(bhttp::verb::get, "/v1/collections/c/docs/1?x=y"));
  EXPECT_EQ(asked<documents::doc_get>(r).id, "1");
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
  auto get = asked<documents::doc_get>(r);
  EXPECT_EQ(get.collection, collection);
  EXPECT_EQ(get.id, id);
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
  EXPECT_EQ(code_of(response_of(r)), "unsupported_media_type");
  for (auto ct :
       {"application/json; charset=utf-8", "Application/JSON", "application/merge-patch+json"}) {
    auto patch = go(make(bhttp::verb::patch, "/v1/collections/c/docs/1", "{}", ct));
    EXPECT_EQ(asked<documents::doc_write>(patch).kind, documents::write_kind::patch) << ct;
  }
}

// Verifies unsupported methods get 405 with the Allow header.
TEST_F(RouterTest, WrongMethodIs405WithAllow) {
  auto r = go(make(bhttp::verb::post, "/v1/collections/c/docs/1"));
  const auto& res = response_of(r);
  EXPECT_EQ(res.result(), bhttp::status::method_not_allowed);
  EXPECT_EQ(code_of(res), "method_not_allowed");
  EXPECT_EQ(res[bhttp::field::allow], "GET, HEAD, PUT, PATCH, DELETE, OPTIONS");
  auto h = go(make(bhttp::verb::delete_, "/healthz"));
  EXPECT_EQ(response_of(h)[bhttp::field::allow], "GET, HEAD, OPTIONS");
  request unknown{bhttp::verb::unknown, "/v1/collections/c/docs/1", 11};
  unknown.method_string("FOO");
  EXPECT_EQ(response_of(go(unknown)).result(), bhttp::status::method_not_allowed);
}

// Verifies OPTIONS answers 204 with the route's methods as Allow (and Accept-Patch where
// PATCH is one), on every route family, and changes nothing.
TEST_F(RouterTest, OptionsListsTheRoutesMethods) {
  const std::pair<const char*, const char*> cases[] = {
    {"/v1/collections/c/docs/1", "GET, HEAD, PUT, PATCH, DELETE, OPTIONS"},
    {"/healthz", "GET, HEAD, OPTIONS"},
    {"/v1/actors/counter/a/method/increment", "POST, OPTIONS"},
    {"/v1/cache/k", "GET, HEAD, PUT, DELETE, OPTIONS"},
    {"/v1/collections/c/query", "POST, OPTIONS"},
    {"/v1/collections/c/indexes/f", "GET, HEAD, PUT, DELETE, OPTIONS"},
    {"/v1/queues/q/jobs", "GET, HEAD, POST, OPTIONS"},
  };
  for (const auto& [target, allow] : cases) {
    auto r = go(make(bhttp::verb::options, target));
    const auto& res = response_of(r);
    EXPECT_EQ(res.result(), bhttp::status::no_content) << target;
    EXPECT_EQ(res[bhttp::field::allow], allow) << target;
    EXPECT_EQ(res.count("Accept-Patch"),
              std::string_view(allow).find("PATCH") != std::string_view::npos ? 1u : 0u)
      << target;
    EXPECT_TRUE(res.body().empty()) << target;
  }
  EXPECT_EQ(response_of(go(make(bhttp::verb::options, "/v1/collections/c/docs/1")))["Accept-Patch"],
            "application/merge-patch+json, application/json");
}

// Verifies PATCH takes a merge patch only: JSON Patch (and any other media type) is 415
// with Accept-Patch, before anything reaches a shard; merge-patch+json and json are taken.
TEST_F(RouterTest, PatchTakesOnlyAMergePatch) {
  for (const char* type : {"application/json-patch+json", "text/plain", "application/xml"}) {
    auto req = make(bhttp::verb::patch, "/v1/collections/c/docs/1", R"([{"op":"add"}])");
    req.set(bhttp::field::content_type, type);
    auto r = go(req);
    const auto& res = response_of(r);
    EXPECT_EQ(res.result(), bhttp::status::unsupported_media_type) << type;
    EXPECT_EQ(code_of(res), "unsupported_media_type") << type;
    EXPECT_EQ(res["Accept-Patch"], "application/merge-patch+json, application/json") << type;
  }
  for (const char* type : {"application/merge-patch+json", "Application/JSON; charset=utf-8"}) {
    auto req = make(bhttp::verb::patch, "/v1/collections/c/docs/1", R"({"a":1})");
    req.set(bhttp::field::content_type, type);
    auto r = go(req);
    EXPECT_FALSE(std::holds_alternative<response>(r.outcome)) << type << ": refused at the edge";
  }
}

// Verifies unknown paths get a JSON 404.
TEST_F(RouterTest, UnknownRouteIs404) {
  for (auto target : {"/", "/v2/collections/c/docs/1", "/v1/collections/c/docs", "/healthz/",
                      "/v1/collections/c/docs/1/x"}) {
    auto r = go(make(bhttp::verb::get, target));
    EXPECT_EQ(r.route, route_id::unknown);
    EXPECT_EQ(response_of(r).result(), bhttp::status::not_found) << target;
    EXPECT_EQ(code_of(response_of(r)), "not_found");
    EXPECT_EQ(response_of(r)[bhttp::field::content_type], "application/json");
  }
}

// Verifies /readyz follows the readiness callback and /healthz stays up.
TEST_F(RouterTest, ProbesReportHealthAndReadiness) {
  EXPECT_EQ(response_of(go(make(bhttp::verb::get, "/healthz"))).result(), bhttp::status::ok);
  EXPECT_EQ(response_of(go(make(bhttp::verb::get, "/readyz"))).result(), bhttp::status::ok);
  ready = false;
  auto r = go(make(bhttp::verb::get, "/readyz"));
  EXPECT_EQ(response_of(r).result(), bhttp::status::service_unavailable);
  EXPECT_EQ(code_of(response_of(r)), "not_ready");
  EXPECT_EQ(response_of(go(make(bhttp::verb::get, "/healthz"))).result(), bhttp::status::ok);
  auto m = go(make(bhttp::verb::get, "/metrics"));
  EXPECT_EQ(response_of(m).body(), "m 1\n");
  EXPECT_EQ(response_of(m)[bhttp::field::content_type], "text/plain; version=0.0.4; charset=utf-8");
}

// Verifies /readyz answers 503 not_ready with the reason while the store cannot write,
// and 200 again once it can.
TEST_F(RouterTest, ReadinessNeedsAWritableStore) {
  write_problem = "no space left on the data volume";
  auto r = go(make(bhttp::verb::get, "/readyz"));
  EXPECT_EQ(response_of(r).result(), bhttp::status::service_unavailable);
  EXPECT_EQ(code_of(response_of(r)), "not_ready");
  EXPECT_NE(response_of(r).body().find("no space left on the data volume"), std::string::npos)
    << response_of(r).body();
  write_problem.clear();
  EXPECT_EQ(response_of(go(make(bhttp::verb::get, "/readyz"))).result(), bhttp::status::ok);
}

// Verifies If-Match / If-None-Match parsing, including weak tags and malformed values.
TEST(EntityTagTest, ParsesHeaderValues) {
  auto star = parse_entity_tags(" * ", false);
  ASSERT_TRUE(star);
  EXPECT_EQ(star->what, documents::precondition::kind::any);
  auto list = parse_entity_tags(R"("1", W/"2" ,"x", "3")", false);
  ASSERT_TRUE(list);
  EXPECT_EQ(list->what, documents::precondition::kind::versions);
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
  EXPECT_EQ(response_of(r).result(), bhttp::status::bad_request);
  EXPECT_EQ(code_of(response_of(r)), "invalid_header");
}

// Verifies well-formed preconditions reach the shard parsed (If-Match strong only,
// If-None-Match weak too).
TEST_F(RouterTest, PreconditionsReachTheShard) {
  auto req = make(bhttp::verb::get, "/v1/collections/c/docs/1");
  req.set(bhttp::field::if_match, R"("4", W/"5")");
  req.set(bhttp::field::if_none_match, R"(W/"6")");
  auto get = asked<documents::doc_get>(go(req));
  EXPECT_EQ(get.if_match.what, documents::precondition::kind::versions);
  EXPECT_EQ(get.if_match.versions, (std::vector<std::uint64_t>{4}));
  EXPECT_EQ(get.if_none_match.versions, (std::vector<std::uint64_t>{6}));
}

/// The rendering of the document routes' answers.
class RenderTest : public RouterTest {};

// Verifies replies render with the contract's statuses, ETags and bodies.
TEST_F(RenderTest, RendersEachReplyStatus) {
  const auto put = make(bhttp::verb::put, "/v1/collections/users/docs/42", "{}");
  auto created = answered<documents::doc_write>(go(put), documents::doc_written{1, true});
  EXPECT_EQ(created.result(), bhttp::status::created);
  EXPECT_EQ(created[bhttp::field::etag], "\"1\"");
  EXPECT_EQ(created[bhttp::field::location], "/v1/collections/users/docs/42");
  EXPECT_EQ(created[bhttp::field::content_type], "application/json");
  EXPECT_EQ(created.body(), R"({"id":"42","version":1})");
  auto replaced = answered<documents::doc_write>(go(put), documents::doc_written{2, false});
  EXPECT_EQ(replaced.result(), bhttp::status::ok);
  EXPECT_EQ(replaced[bhttp::field::etag], "\"2\"");
  EXPECT_EQ(replaced[bhttp::field::location], "");
  EXPECT_EQ(replaced.body(), R"({"id":"42","version":2})");
  auto failed = answered<documents::doc_write>(
    go(put), core::error{core::errc::precondition_failed, "version 2 does not match"});
  EXPECT_EQ(failed.result(), bhttp::status::precondition_failed);
  EXPECT_EQ(code_of(failed), "precondition_failed");
  EXPECT_EQ(message_of(failed), "version 2 does not match");
  auto unavailable =
    answered<documents::doc_write>(go(put), core::error{core::errc::storage_failed, "x"});
  EXPECT_EQ(unavailable.result(), bhttp::status::service_unavailable);
  EXPECT_EQ(code_of(unavailable), "storage_unavailable");
  EXPECT_EQ(unavailable[bhttp::field::retry_after], "1");

  const auto get = make(bhttp::verb::get, "/v1/collections/users/docs/42");
  auto got = answered<documents::doc_get>(go(get), documents::stored_doc{3, R"({"a":1})", false});
  EXPECT_EQ(got.result(), bhttp::status::ok);
  EXPECT_EQ(got.body(), R"({"a":1})");
  EXPECT_EQ(got[bhttp::field::etag], "\"3\"");
  EXPECT_EQ(got[bhttp::field::content_type], "application/json");
  auto not_modified = answered<documents::doc_get>(go(get), documents::stored_doc{3, {}, true});
  EXPECT_EQ(not_modified.result(), bhttp::status::not_modified);
  EXPECT_EQ(not_modified[bhttp::field::etag], "\"3\"");
  EXPECT_EQ(not_modified.body(), "");
  auto missing =
    answered<documents::doc_get>(go(get), core::error{core::errc::not_found, "no such document"});
  EXPECT_EQ(missing.result(), bhttp::status::not_found);
  EXPECT_EQ(code_of(missing), "not_found");

  auto deleted =
    answered<documents::doc_write>(go(make(bhttp::verb::delete_, "/v1/collections/users/docs/42")),
                                   documents::doc_written{3, false});
  EXPECT_EQ(deleted.result(), bhttp::status::no_content);
  EXPECT_EQ(deleted.body(), "");
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
  shoal::testing::edge_harness edge;
  edge.env.cluster_view = [view] { return view; };
  auto r = edge.go(request{bhttp::verb::get, "/v1/cluster", 11});
  EXPECT_EQ(r.route, route_id::cluster);
  ASSERT_TRUE(std::holds_alternative<response>(r.outcome));
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
  EXPECT_FALSE(v.at("shards").as_object().contains("replicas"));
  EXPECT_TRUE(edge.shards.log.empty());
}

// Verifies that replicated shards show their groups, and a shard without a leader has
// a null owner; a view without groups has no `replicas` (above: not asserted there).
TEST(ClusterRouteTest, RendersReplicatedShardsWithLeaderTermCommitAndLag) {
  auto view = std::make_shared<cluster::cluster_view>();
  view->self = "n1";
  view->ready = true;
  view->shard_owners = {"n2", ""};
  cluster::shard_replicas led;
  led.leader = "n2";
  led.voters = {"n1", "n2", "n3"};
  led.term = 7;
  led.commit_index = 1234;
  led.applied_index = 1233;
  led.followers = {{"n1", 0}, {"n3", 12}};
  cluster::shard_replicas electing;
  electing.voters = {"n1", "n2", "n3"};
  electing.term = 9;
  electing.commit_index = 40;
  view->replicas = {led, electing};
  shoal::testing::edge_harness edge;
  edge.env.cluster_view = [view] { return view; };
  auto r = edge.go(request{bhttp::verb::get, "/v1/cluster", 11});
  ASSERT_TRUE(std::holds_alternative<response>(r.outcome));
  auto v = boost::json::parse(std::get<response>(r.outcome).body()).as_object();
  const auto& shards = v.at("shards").as_object();
  EXPECT_EQ(shards.at("owners").at("0").as_string(), "n2");
  EXPECT_TRUE(shards.at("owners").at("1").is_null());
  const auto& g0 = shards.at("replicas").at("0").as_object();
  EXPECT_EQ(g0.at("leader").as_string(), "n2");
  EXPECT_EQ(boost::json::serialize(g0.at("voters")), R"(["n1","n2","n3"])");
  EXPECT_EQ(g0.at("term").as_int64(), 7);
  EXPECT_EQ(g0.at("commit_index").as_int64(), 1234);
  EXPECT_EQ(g0.at("applied_index").as_int64(), 1233);
  EXPECT_EQ(g0.at("follower_lag").at("n3").as_int64(), 12);
  EXPECT_EQ(g0.at("follower_lag").at("n1").as_int64(), 0);
  const auto& g1 = shards.at("replicas").at("1").as_object();
  EXPECT_TRUE(g1.at("leader").is_null());
  EXPECT_EQ(g1.at("term").as_int64(), 9);
  EXPECT_TRUE(g1.at("follower_lag").as_object().empty());
}

// Verifies GET /v1/admin/replicas/{shard} asks the node's replica of that shard and
// renders its digest; a bad shard is 400, a node without replicas 404, a replica's
// refusal its own status, and only GET/HEAD are taken.
TEST(ReplicaRouteTest, AsksTheLocalReplicaAndRendersItsDigest) {
  shoal::testing::edge_harness edge{4};
  auto status_of = [&](bhttp::verb verb, const std::string& target) {
    return edge.response(edge.go(request{verb, target, 11})).result();
  };
  EXPECT_EQ(status_of(bhttp::verb::get, "/v1/admin/replicas/1"), bhttp::status::not_found);
  std::vector<std::uint32_t> asked;
  edge.env.replica_digest = [&](std::uint32_t shard, core::reply_to<cluster::replica_digest> to) {
    asked.push_back(shard);
    if (shard == 3)
      return to.deliver(core::error{core::errc::shard_unavailable, "the replica is not running"});
    to.deliver(cluster::replica_digest{shard, "n2", 41, 7, 0xabcdef0123456789ull});
  };
  EXPECT_EQ(status_of(bhttp::verb::get, "/v1/admin/replicas/4"), bhttp::status::bad_request);
  EXPECT_EQ(status_of(bhttp::verb::get, "/v1/admin/replicas/x1"), bhttp::status::bad_request);
  EXPECT_EQ(status_of(bhttp::verb::get, "/v1/admin/replicas/-1"), bhttp::status::bad_request);
  EXPECT_EQ(status_of(bhttp::verb::put, "/v1/admin/replicas/1"), bhttp::status::method_not_allowed);
  EXPECT_TRUE(asked.empty());
  auto r = edge.go(request{bhttp::verb::get, "/v1/admin/replicas/2", 11});
  EXPECT_EQ(r.route, route_id::replica);
  auto res = edge.response(r);
  ASSERT_EQ(res.result(), bhttp::status::ok);
  EXPECT_EQ(boost::json::parse(res.body()),
            boost::json::parse(R"({"shard":2,"node":"n2","applied_index":41,"keys":7,)"
                               R"("checksum":"abcdef0123456789"})"));
  EXPECT_EQ(status_of(bhttp::verb::get, "/v1/admin/replicas/3"),
            bhttp::status::service_unavailable);
  EXPECT_EQ(asked, (std::vector<std::uint32_t>{2, 3}));
}

// Verifies /v1/cluster without a view yet is 503, and only GET/HEAD are allowed.
TEST(ClusterRouteTest, NoViewIsNotReadyAndWritesAreRefused) {
  shoal::testing::edge_harness edge;
  edge.env.cluster_view = [] { return std::shared_ptr<const cluster::cluster_view>{}; };
  auto get = edge.go(request{bhttp::verb::get, "/v1/cluster", 11});
  ASSERT_TRUE(std::holds_alternative<response>(get.outcome));
  EXPECT_EQ(std::get<response>(get.outcome).result(), bhttp::status::service_unavailable);
  auto post = edge.go(request{bhttp::verb::post, "/v1/cluster", 11});
  ASSERT_TRUE(std::holds_alternative<response>(post.outcome));
  EXPECT_EQ(std::get<response>(post.outcome).result(), bhttp::status::method_not_allowed);
  EXPECT_EQ(std::get<response>(post.outcome)[bhttp::field::allow], "GET, HEAD, OPTIONS");
}

// Verifies a forwarded request that found its owner down renders as 503
// shard_unavailable with Retry-After.
TEST(ClusterRouteTest, ShardUnavailableIs503WithRetryAfter) {
  shoal::testing::edge_harness edge;
  auto r = edge.go(request{bhttp::verb::get, "/v1/collections/c/docs/1", 11});
  ASSERT_TRUE(std::holds_alternative<pending>(r.outcome));
  edge.shards.answer<documents::doc_get>(
    0, core::error{core::errc::shard_unavailable, "node n2 is down"});
  auto res = edge.response(r);
  EXPECT_EQ(res.result(), bhttp::status::service_unavailable);
  EXPECT_EQ(res[bhttp::field::retry_after], "1");
  auto v = boost::json::parse(res.body());
  EXPECT_EQ(v.at("error").at("code").as_string(), "shard_unavailable");
  EXPECT_EQ(v.at("error").at("message").as_string(), "node n2 is down");
}

} // namespace
} // namespace shoal::http
