// SPDX-License-Identifier: Apache-2.0
// The TTL cache routes without sockets: /v1/cache/{key} requests → the typed cache
// requests (and the shard each is asked of, through tests/support/edge.hpp's fake shard
// client), every refusal (method, key, query, ttl, value size), and the rendering of
// every answer a shard can give.
#include "http/router.hpp"

#include <string>
#include <vector>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "cache/messages.hpp"
#include "cluster/shard_map.hpp"
#include "tests/support/edge.hpp"

namespace shoal::http {
namespace {

namespace bhttp = boost::beast::http;

/// A request; a non-empty `content_type` is sent as the Content-Type.
request make(bhttp::verb verb, const std::string& target, std::string body = {},
             const std::string& content_type = {}, unsigned version = 11) {
  request req{verb, target, version};
  if (!content_type.empty()) req.set(bhttp::field::content_type, content_type);
  req.body() = std::move(body);
  req.prepare_payload();
  return req;
}

std::string code_of(const response& res) {
  auto v = boost::json::parse(res.body());
  return std::string(v.at("error").at("code").as_string());
}

std::string message_of(const response& res) {
  auto v = boost::json::parse(res.body());
  return std::string(v.at("error").at("message").as_string());
}

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

class CacheRoutesTest : public ::testing::Test {
protected:
  shoal::testing::edge_harness edge;
  route_env& env = edge.env;

  void SetUp() override {
    env.cache_max_value_bytes = 1000;
    env.cache_default_ttl_s = 60;
    env.cache_max_ttl_s = 3600;
  }

  /// Routes `req` afresh: what earlier requests asked or were answered is forgotten.
  routed go(request req) {
    edge.shards.log.clear();
    edge.port->posted.clear();
    return edge.go(std::move(req));
  }

  routed go(bhttp::verb verb, const std::string& target, std::string body = {},
            const std::string& content_type = {}) {
    return go(make(verb, target, std::move(body), content_type));
  }

  /// The one cache request of type R that routing `r` asked, of the shard its key hashes
  /// to (fails the test when there is none).
  template <class R>
  R request_of(const routed& r) const {
    EXPECT_EQ(r.route, route_id::cache);
    EXPECT_TRUE(std::holds_alternative<pending>(r.outcome)) << "the route did not ask";
    auto req = edge.shards.only<R>();
    if (!edge.shards.log.empty()) {
      EXPECT_EQ(edge.shards.log.front().shard,
                cluster::shard_map{4}.shard_of(cache::space, req.key));
    }
    return req;
  }

  /// Expects `r` to be an error response with `status` and `code`, and no request asked.
  void expect_error(const routed& r, bhttp::status status, std::string_view code,
                    const std::string& what) const {
    EXPECT_EQ(r.route, route_id::cache) << what;
    EXPECT_TRUE(edge.shards.log.empty()) << what << ": a refused request asked a shard";
    ASSERT_TRUE(std::holds_alternative<response>(r.outcome)) << what;
    const auto& res = std::get<response>(r.outcome);
    EXPECT_EQ(res.result(), status) << what;
    EXPECT_EQ(code_of(res), code) << what;
    EXPECT_EQ(res[bhttp::field::content_type], "application/json") << what;
  }

  const response& response_of(const routed& r) const {
    EXPECT_TRUE(std::holds_alternative<response>(r.outcome));
    return std::get<response>(r.outcome);
  }
};

// -- routing -------------------------------------------------------------------------------

// Verifies GET and HEAD become a get of the decoded key.
TEST_F(CacheRoutesTest, GetAndHeadBecomeAGet) {
  for (auto verb : {bhttp::verb::get, bhttp::verb::head}) {
    auto r = go(verb, "/v1/cache/session%3A42");
    EXPECT_EQ(request_of<cache::cache_get>(r).key, "session:42");
    EXPECT_EQ(std::get<pending>(r.outcome).timeout_ms, env.request_timeout_ms);
  }
}

// Verifies DELETE becomes a del of the key.
TEST_F(CacheRoutesTest, DeleteBecomesADel) {
  auto cr = request_of<cache::cache_delete>(go(bhttp::verb::delete_, "/v1/cache/k.1@x"));
  EXPECT_EQ(cr.key, "k.1@x");
}

// Verifies a PUT carries the body as is (binary included), its Content-Type and the ttl
// in milliseconds.
TEST_F(CacheRoutesTest, PutCarriesBodyContentTypeAndTtl) {
  std::string binary("\0\x01\xff{not json", 12);
  auto cr = request_of<cache::cache_put>(
    go(bhttp::verb::put, "/v1/cache/k?ttl=30", binary, "application/x-thing; charset=x"));
  EXPECT_EQ(cr.key, "k");
  EXPECT_EQ(cr.value, binary);
  EXPECT_EQ(cr.content_type, "application/x-thing; charset=x");
  EXPECT_EQ(cr.ttl_ms, 30000u);
}

// Verifies the conditions a PUT carries to the shard: If-None-Match: * (new entries only),
// If-Match: * (live ones only), If-Match with tags (those versions only; tags that are
// no version are 412 without asking the shard); any other If-None-Match, or a malformed If-Match,
// is 400 invalid_precondition before anything is asked.
TEST_F(CacheRoutesTest, PutCarriesItsConditions) {
  auto with = [&](bhttp::field f, std::string value) {
    auto req = make(bhttp::verb::put, "/v1/cache/k", "v", "text/plain");
    req.set(f, value);
    return go(std::move(req));
  };
  auto plain = request_of<cache::cache_put>(go(bhttp::verb::put, "/v1/cache/k", "v"));
  EXPECT_FALSE(plain.only_if_absent || plain.only_if_present || !plain.if_versions.empty());
  EXPECT_TRUE(request_of<cache::cache_put>(with(bhttp::field::if_none_match, "*")).only_if_absent);
  EXPECT_TRUE(request_of<cache::cache_put>(with(bhttp::field::if_match, "*")).only_if_present);
  EXPECT_EQ(request_of<cache::cache_put>(with(bhttp::field::if_match, R"("5", "7")")).if_versions,
            (std::vector<std::uint64_t>{5, 7}));
  // Tags that name no version match no entry: 412 at once, nothing asked.
  expect_error(with(bhttp::field::if_match, R"("abc", W/"5")"), bhttp::status::precondition_failed,
               "precondition_failed", "If-Match with no version");
  for (auto [f, v] : {std::pair{bhttp::field::if_none_match, std::string(R"("3")")},
                      std::pair{bhttp::field::if_match, std::string("nope")}}) {
    auto r = with(f, v);
    expect_error(r, bhttp::status::bad_request, "invalid_precondition", v);
  }
}

// Verifies a PUT without ttl gets cache.default_ttl_s, and one without Content-Type gets
// application/octet-stream; an empty body is a value.
TEST_F(CacheRoutesTest, PutDefaults) {
  auto cr = request_of<cache::cache_put>(go(bhttp::verb::put, "/v1/cache/k"));
  EXPECT_EQ(cr.value, "");
  EXPECT_EQ(cr.content_type, "application/octet-stream");
  EXPECT_EQ(cr.ttl_ms, 60000u);
  env.cache_default_ttl_s = 7;
  EXPECT_EQ(request_of<cache::cache_put>(go(bhttp::verb::put, "/v1/cache/k", "v")).ttl_ms, 7000u);
}

// Verifies the limits themselves are accepted: ttl 1 and cache.max_ttl_s, a value of
// exactly cache.max_value_bytes, the longest key, leading zeros in the ttl.
TEST_F(CacheRoutesTest, PutAcceptsTheLimits) {
  auto put = [&](const std::string& target, std::string body) {
    return request_of<cache::cache_put>(go(bhttp::verb::put, target, std::move(body)));
  };
  EXPECT_EQ(put("/v1/cache/k?ttl=1", "v").ttl_ms, 1000u);
  EXPECT_EQ(put("/v1/cache/k?ttl=3600", "v").ttl_ms, 3'600'000u);
  EXPECT_EQ(put("/v1/cache/k?ttl=007", "v").ttl_ms, 7000u);
  EXPECT_EQ(put("/v1/cache/k", std::string(1000, 'v')).value.size(), 1000u);
  std::string key(256, 'k');
  EXPECT_EQ(put("/v1/cache/" + key, "v").key, key);
}

// Verifies the largest configurable ttl (a year) does not overflow in milliseconds.
TEST_F(CacheRoutesTest, LargestTtlInMilliseconds) {
  env.cache_max_ttl_s = 365 * 86'400;
  EXPECT_EQ(
    request_of<cache::cache_put>(go(bhttp::verb::put, "/v1/cache/k?ttl=31536000", "v")).ttl_ms,
    31'536'000'000u);
}

// Verifies an empty query and empty members are ignored.
TEST_F(CacheRoutesTest, EmptyQueryMembersAreIgnored) {
  EXPECT_EQ(request_of<cache::cache_get>(go(bhttp::verb::get, "/v1/cache/k?")).key, "k");
  EXPECT_EQ(request_of<cache::cache_put>(go(bhttp::verb::put, "/v1/cache/k?ttl=5&", "v")).ttl_ms,
            5000u);
  EXPECT_EQ(request_of<cache::cache_put>(go(bhttp::verb::put, "/v1/cache/k?&ttl=5", "v")).ttl_ms,
            5000u);
}

// -- refusals ------------------------------------------------------------------------------

// Verifies methods other than GET, HEAD, PUT and DELETE are 405 with the Allow header.
TEST_F(CacheRoutesTest, OtherMethodsAre405WithAllow) {
  for (auto verb :
       {bhttp::verb::post, bhttp::verb::patch, bhttp::verb::trace, bhttp::verb::connect}) {
    auto r = go(verb, "/v1/cache/k");
    expect_error(r, bhttp::status::method_not_allowed, "method_not_allowed",
                 std::string(bhttp::to_string(verb)));
    EXPECT_EQ(response_of(r)[bhttp::field::allow], "GET, HEAD, PUT, DELETE, OPTIONS");
  }
}

// Verifies keys outside [A-Za-z0-9_.:@-]{1,256} (and . and ..) are 400 invalid_key for
// every method, before anything else is looked at.
TEST_F(CacheRoutesTest, BadKeysAreInvalidKey) {
  std::string long_key(257, 'k');
  for (std::string key : {std::string(".."), std::string("."), long_key, std::string("a%2Fb"),
                          std::string("a%20b"), std::string("caf%C3%A9"), std::string("a%00b"),
                          std::string("a%01b"), std::string("a+b"), std::string("a~b")}) {
    for (auto verb :
         {bhttp::verb::get, bhttp::verb::head, bhttp::verb::put, bhttp::verb::delete_}) {
      auto r = go(verb, "/v1/cache/" + key + "?ttl=0", "v");
      expect_error(r, bhttp::status::bad_request, "invalid_key",
                   key.substr(0, 20) + " " + std::string(bhttp::to_string(verb)));
    }
  }
  // An empty key: /v1/cache/ has three segments, the last one empty.
  expect_error(go(bhttp::verb::get, "/v1/cache/"), bhttp::status::bad_request, "invalid_key",
               "empty key");
}

// Verifies each ttl out of the rules is 400 invalid_ttl naming the range: 0, negative,
// not an integer, over cache.max_ttl_s, overflowing, empty, valueless, repeated.
TEST_F(CacheRoutesTest, BadTtlsAreInvalidTtl) {
  for (std::string ttl :
       {"ttl=0", "ttl=-1", "ttl=-0", "ttl=1.5", "ttl=1e3", "ttl=%2B5", "ttl=+5", "ttl=%205",
        "ttl=5%20", "ttl=0x10", "ttl=abc", "ttl=3601", "ttl=18446744073709551616",
        "ttl=99999999999999999999999", "ttl=", "ttl", "ttl=5&ttl=5", "ttl=5&ttl=6"}) {
    auto r = go(bhttp::verb::put, "/v1/cache/k?" + ttl, "v");
    expect_error(r, bhttp::status::bad_request, "invalid_ttl", ttl);
    EXPECT_TRUE(contains(message_of(response_of(r)), "from 1 to 3600")) << ttl;
  }
}

// Verifies the range follows cache.max_ttl_s.
TEST_F(CacheRoutesTest, TtlRangeFollowsTheConfiguredMaximum) {
  env.cache_max_ttl_s = 10;
  EXPECT_EQ(request_of<cache::cache_put>(go(bhttp::verb::put, "/v1/cache/k?ttl=10", "v")).ttl_ms,
            10000u);
  auto r = go(bhttp::verb::put, "/v1/cache/k?ttl=11", "v");
  expect_error(r, bhttp::status::bad_request, "invalid_ttl", "ttl=11");
  EXPECT_TRUE(contains(message_of(response_of(r)), "from 1 to 10")) << message_of(response_of(r));
}

// Verifies a value over cache.max_value_bytes is 413 value_too_large, whatever its ttl.
TEST_F(CacheRoutesTest, ValueOverTheMaximumIs413) {
  for (std::string target : {"/v1/cache/k", "/v1/cache/k?ttl=5"}) {
    auto r = go(bhttp::verb::put, target, std::string(1001, 'v'), "text/plain");
    expect_error(r, bhttp::status::payload_too_large, "value_too_large", target);
    EXPECT_TRUE(contains(message_of(response_of(r)), "1000")) << message_of(response_of(r));
  }
  env.cache_max_value_bytes = 10;
  expect_error(go(bhttp::verb::put, "/v1/cache/k", std::string(11, 'v')),
               bhttp::status::payload_too_large, "value_too_large", "max 10");
  EXPECT_EQ(request_of<cache::cache_put>(go(bhttp::verb::put, "/v1/cache/k", std::string(10, 'v')))
              .value.size(),
            10u);
}

// Verifies unknown query parameters are 400 unknown_parameter: on a PUT anything but
// ttl, on GET, HEAD and DELETE anything (ttl included).
TEST_F(CacheRoutesTest, UnknownQueryParametersAre400) {
  for (std::string query : {"x=1", "ttl=5&x=1", "TTL=5", "ttl2=5", "x"}) {
    auto r = go(bhttp::verb::put, "/v1/cache/k?" + query, "v");
    expect_error(r, bhttp::status::bad_request, "unknown_parameter", "PUT " + query);
  }
  for (auto verb : {bhttp::verb::get, bhttp::verb::head, bhttp::verb::delete_}) {
    for (std::string query : {"ttl=5", "x=1"}) {
      auto r = go(verb, "/v1/cache/k?" + query);
      expect_error(r, bhttp::status::bad_request, "unknown_parameter",
                   std::string(bhttp::to_string(verb)) + " " + query);
    }
  }
  auto r = go(bhttp::verb::put, "/v1/cache/k?colour=red", "v");
  EXPECT_TRUE(contains(message_of(response_of(r)), "\"colour\"")) << message_of(response_of(r));
}

// Verifies the order of the checks: the method, then the key, then the query, then the
// value size.
TEST_F(CacheRoutesTest, ChecksComeInOrder) {
  std::string big(1001, 'v');
  expect_error(go(bhttp::verb::post, "/v1/cache/..?ttl=0", big), bhttp::status::method_not_allowed,
               "method_not_allowed", "method first");
  expect_error(go(bhttp::verb::put, "/v1/cache/..?ttl=0", big), bhttp::status::bad_request,
               "invalid_key", "key second");
  expect_error(go(bhttp::verb::put, "/v1/cache/k?ttl=0", big), bhttp::status::bad_request,
               "invalid_ttl", "ttl before size");
  expect_error(go(bhttp::verb::put, "/v1/cache/k?x=1", big), bhttp::status::bad_request,
               "unknown_parameter", "query before size");
}

// Verifies other /v1/cache targets are no route (404 not_found, route unknown).
TEST_F(CacheRoutesTest, OtherCacheTargetsAreNoRoute) {
  for (std::string target : {"/v1/cache", "/v1/cache/a/b"}) {
    auto r = go(bhttp::verb::get, target);
    EXPECT_EQ(r.route, route_id::unknown) << target;
    EXPECT_TRUE(edge.shards.log.empty()) << target;
    ASSERT_TRUE(std::holds_alternative<response>(r.outcome)) << target;
    EXPECT_EQ(std::get<response>(r.outcome).result(), bhttp::status::not_found) << target;
  }
}

// Verifies the route's metric label.
TEST_F(CacheRoutesTest, RouteLabel) {
  EXPECT_STREQ(route_label(route_id::cache), "/v1/cache/{key}");
}

// -- rendering -----------------------------------------------------------------------------

/// The rendering of what shards answer to the cache routes.
class RenderCacheTest : public CacheRoutesTest {
protected:
  /// Routes `verb` of /v1/cache/k (HTTP `version`, 11 for 1.1), answers the request of
  /// type R with `answer` and returns what the handler rendered.
  template <class R>
  response render(bhttp::verb verb, core::result<protocol::reply_of<R>> answer,
                  unsigned version = 11) {
    auto r = go(make(verb, "/v1/cache/k", verb == bhttp::verb::put ? "v" : "", {}, version));
    EXPECT_TRUE(std::holds_alternative<pending>(r.outcome));
    EXPECT_EQ(edge.shards.all<R>().size(), 1u);
    edge.shards.answer<R>(0, std::move(answer));
    EXPECT_EQ(edge.port->posted.size(), 1u);
    return edge.response(r);
  }

  /// A response of each cache route to `error`: get, put and delete.
  std::vector<response> render_error(const core::error& error) {
    return {render<cache::cache_get>(bhttp::verb::get, error),
            render<cache::cache_put>(bhttp::verb::put, error),
            render<cache::cache_delete>(bhttp::verb::delete_, error)};
  }
};

std::string code_of_rendered(const response& res) {
  EXPECT_EQ(res[bhttp::field::content_type], "application/json");
  return code_of(res);
}

// Verifies a found get is 200 with the value as is, its Content-Type, Cache-Control:
// no-store and a Content-Length.
TEST_F(RenderCacheTest, GetIsTheValueWithItsContentType) {
  std::string binary("\0\x01\xff\xfe", 4);
  auto res = render<cache::cache_get>(bhttp::verb::get, cache::cache_entry{binary, "image/png"});
  EXPECT_EQ(res.result(), bhttp::status::ok);
  EXPECT_EQ(res.body(), binary);
  EXPECT_EQ(res[bhttp::field::content_type], "image/png");
  EXPECT_EQ(res[bhttp::field::cache_control], "no-store");
  EXPECT_EQ(res[bhttp::field::content_length], "4");
  EXPECT_EQ(res.version(), 11u);
}

// Verifies a reply without a content type is served as application/octet-stream.
TEST_F(RenderCacheTest, GetWithoutContentTypeIsOctetStream) {
  auto res = render<cache::cache_get>(bhttp::verb::get, cache::cache_entry{"v", ""}, 10);
  EXPECT_EQ(res.result(), bhttp::status::ok);
  EXPECT_EQ(res[bhttp::field::content_type], "application/octet-stream");
  EXPECT_EQ(res.version(), 10u);
}

// Verifies put and delete are 204 without a body.
TEST_F(RenderCacheTest, PutAndDeleteAre204) {
  for (const auto& res :
       {render<cache::cache_put>(bhttp::verb::put, cache::cache_stored{}),
        render<cache::cache_delete>(bhttp::verb::delete_, cache::cache_deleted{true})}) {
    EXPECT_EQ(res.result(), bhttp::status::no_content);
    EXPECT_EQ(res.body(), "");
  }
}

// Verifies a get of an absent (never stored, expired, evicted) entry is 404 not_found,
// while a delete of one is 204: DELETE is idempotent.
TEST_F(RenderCacheTest, NotFoundIs404ForGetAnd204ForDelete) {
  auto res = render<cache::cache_get>(bhttp::verb::get,
                                      core::error{core::errc::not_found, "no such cache entry"});
  EXPECT_EQ(res.result(), bhttp::status::not_found);
  EXPECT_EQ(code_of_rendered(res), "not_found");
  EXPECT_EQ(res[bhttp::field::cache_control], "");
  res = render<cache::cache_delete>(bhttp::verb::delete_, cache::cache_deleted{false});
  EXPECT_EQ(res.result(), bhttp::status::no_content);
  EXPECT_EQ(res.body(), "");
}

// Verifies a put refused by the shard (over its share of cache.max_bytes) is 413.
TEST_F(RenderCacheTest, TooLargeIs413) {
  auto res =
    render<cache::cache_put>(bhttp::verb::put, core::error{core::errc::too_large, "value_too_large",
                                                           "the value is over 262144 bytes"});
  EXPECT_EQ(res.result(), bhttp::status::payload_too_large);
  EXPECT_EQ(code_of_rendered(res), "value_too_large");
  EXPECT_EQ(message_of(res), "the value is over 262144 bytes");
  res = render<cache::cache_put>(bhttp::verb::put,
                                 core::error{core::errc::too_large, "value_too_large", ""});
  EXPECT_EQ(res.result(), bhttp::status::payload_too_large);
  EXPECT_FALSE(message_of(res).empty());
}

// Verifies a shard that is shutting down or a node that does not answer is 503 with
// Retry-After, for every op.
TEST_F(RenderCacheTest, UnavailableIs503) {
  for (const auto& res :
       render_error(core::error{core::errc::shutting_down, "shard 1 is stopping"})) {
    EXPECT_EQ(res.result(), bhttp::status::service_unavailable);
    EXPECT_EQ(code_of_rendered(res), "shutting_down");
    EXPECT_EQ(res[bhttp::field::retry_after], "1");
  }
  for (const auto& res : render_error(core::error{core::errc::shard_unavailable, "node b"})) {
    EXPECT_EQ(res.result(), bhttp::status::service_unavailable);
    EXPECT_EQ(code_of_rendered(res), "shard_unavailable");
    EXPECT_EQ(message_of(res), "node b");
    EXPECT_EQ(res[bhttp::field::retry_after], "1");
  }
}

// Verifies an error code no version of the protocol has is a 500, not undefined
// behaviour.
TEST_F(RenderCacheTest, UnknownStatusIs500) {
  for (const auto& res :
       render_error(core::error{static_cast<core::errc>(200), "from a newer node"})) {
    EXPECT_EQ(res.result(), bhttp::status::internal_server_error);
    EXPECT_EQ(code_of_rendered(res), "internal_error");
  }
}

} // namespace
} // namespace shoal::http

namespace shoal::http {
namespace {

// -- increments ----------------------------------------------------------------------------

class CacheIncrementRouteTest : public CacheRoutesTest {
protected:
  /// The error `verb target body` is refused with at once (no shard asked).
  void expect_refused(bhttp::verb verb, const std::string& target, std::string body,
                      bhttp::status status, std::string_view code) {
    auto r = go(verb, target, body, "application/json");
    EXPECT_EQ(r.route, route_id::cache_increment) << target << " " << body;
    EXPECT_TRUE(edge.shards.log.empty()) << body << ": a refused increment asked a shard";
    ASSERT_TRUE(std::holds_alternative<response>(r.outcome)) << body;
    EXPECT_EQ(std::get<response>(r.outcome).result(), status) << body;
    EXPECT_EQ(code_of(std::get<response>(r.outcome)), code) << body;
  }
};

// Verifies an increment asks the key's shard with `by` and the ttl in ms, 1 and
// cache.default_ttl_s without a body, and renders the count with its ETag.
TEST_F(CacheIncrementRouteTest, IncrementCarriesByAndTtlAndRendersTheCount) {
  auto r = go(bhttp::verb::post, "/v1/cache/rate:ip-1/increment", R"({"by":5,"ttl":30})",
              "application/json");
  EXPECT_EQ(r.route, route_id::cache_increment);
  ASSERT_TRUE(std::holds_alternative<pending>(r.outcome));
  auto inc = edge.shards.only<cache::cache_increment>();
  EXPECT_EQ(inc.key, "rate:ip-1");
  EXPECT_EQ(inc.by, 5);
  EXPECT_EQ(inc.ttl_ms, 30'000u);
  EXPECT_EQ(edge.shards.log.front().shard,
            cluster::shard_map{4}.shard_of(cache::space, "rate:ip-1"));
  edge.shards.answer<cache::cache_increment>(0, cache::cache_count{6, 41, false});
  auto res = edge.response(r);
  EXPECT_EQ(res.result(), bhttp::status::ok);
  EXPECT_EQ(boost::json::parse(res.body()), boost::json::parse(R"({"value":6,"created":false})"));
  EXPECT_EQ(res[bhttp::field::etag], "\"41\"");

  auto plain = go(bhttp::verb::post, "/v1/cache/hits/increment");
  ASSERT_TRUE(std::holds_alternative<pending>(plain.outcome));
  auto defaults = edge.shards.only<cache::cache_increment>();
  EXPECT_EQ(defaults.by, 1);
  EXPECT_EQ(defaults.ttl_ms, 60'000u);
  auto down = go(bhttp::verb::post, "/v1/cache/hits/increment", R"({"by":-3})", "application/json");
  ASSERT_TRUE(std::holds_alternative<pending>(down.outcome));
  EXPECT_EQ(edge.shards.only<cache::cache_increment>().by, -3);
}

// Verifies what an increment refuses before any shard is asked.
TEST_F(CacheIncrementRouteTest, BadIncrementsAreRefused) {
  const std::string target = "/v1/cache/hits/increment";
  for (const std::string body :
       {R"({"by":1.5})", R"({"by":"1"})", R"({"by":9223372036854775808})", R"({"by":null})"})
    expect_refused(bhttp::verb::post, target, body, bhttp::status::bad_request,
                   "invalid_increment");
  for (const std::string body : {R"({"ttl":0})", R"({"ttl":3601})", R"({"ttl":-1})"})
    expect_refused(bhttp::verb::post, target, body, bhttp::status::bad_request, "invalid_ttl");
  expect_refused(bhttp::verb::post, target, R"({"step":1})", bhttp::status::bad_request,
                 "unknown_field");
  expect_refused(bhttp::verb::post, target, "[1]", bhttp::status::bad_request, "invalid_increment");
  expect_refused(bhttp::verb::post, target, "{", bhttp::status::bad_request, "invalid_json");
  expect_refused(bhttp::verb::post, target + "?by=1", "", bhttp::status::bad_request,
                 "unknown_parameter");
  expect_refused(bhttp::verb::post, "/v1/cache/a%2Fb/increment", "", bhttp::status::bad_request,
                 "invalid_key");
  expect_refused(bhttp::verb::get, target, "", bhttp::status::method_not_allowed,
                 "method_not_allowed");
}

} // namespace
} // namespace shoal::http
