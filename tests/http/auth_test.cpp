// SPDX-License-Identifier: Apache-2.0
// Bearer tokens (http/auth.hpp): the tokens file, the check of one request, and every
// route's scope through http::route() with the fake shard client (no sockets).
#include "http/auth.hpp"

#include <memory>
#include <string>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "tests/support/edge.hpp"

namespace shoal::http {
namespace {

namespace bhttp = boost::beast::http;

std::string code_of(const response& res) {
  auto v = boost::json::parse(res.body());
  return std::string(v.at("error").at("code").as_string());
}

token_table table_of(const std::string& text) {
  auto parsed = token_table::parse(text);
  EXPECT_TRUE(parsed.ok()) << (parsed.ok() ? "" : parsed.error().message());
  return parsed.ok() ? std::move(*parsed) : token_table{};
}

request with_token(bhttp::verb verb, std::string target, std::string token = {}) {
  request req{verb, target, 11};
  if (!token.empty()) req.set(bhttp::field::authorization, "Bearer " + token);
  return req;
}

TEST(TokenTableTest, HashIsSha256) {
  // FIPS 180-2's test vector for "abc".
  auto d = token_table::hash("abc");
  std::string hex;
  for (auto b : d) {
    static const char* digits = "0123456789abcdef";
    hex += digits[b >> 4];
    hex += digits[b & 15];
  }
  EXPECT_EQ(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(TokenTableTest, ReadsTokensDigestsScopesAndComments) {
  auto abc_digest =
    std::string("sha256:") + "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD";
  auto t = table_of("# tokens\n"
                    "\n"
                    "app-token-1 data   the shop\n"
                    "  ops.Token_2~ admin,metrics\r\n"
                    + abc_digest + " metrics prometheus\n");
  ASSERT_EQ(t.size(), 3u);
  const auto* app = t.find("app-token-1");
  ASSERT_NE(app, nullptr);
  EXPECT_EQ(app->scopes, static_cast<scope_set>(scope::data));
  EXPECT_EQ(app->name, "the shop");
  const auto* ops = t.find("ops.Token_2~");
  ASSERT_NE(ops, nullptr);
  EXPECT_EQ(ops->scopes,
            static_cast<scope_set>(scope::admin) | static_cast<scope_set>(scope::metrics));
  EXPECT_EQ(ops->name, "line 4");
  // A digest line accepts the token whose SHA-256 it is, in either case of hex.
  const auto* prom = t.find("abc");
  ASSERT_NE(prom, nullptr);
  EXPECT_EQ(prom->scopes, static_cast<scope_set>(scope::metrics));
  EXPECT_EQ(t.find("app-token-2"), nullptr);
  EXPECT_EQ(t.find(""), nullptr);
}

TEST(TokenTableTest, MalformedLinesAreRefusedByNumberWithoutTheToken) {
  struct bad {
    std::string text;
    std::string says;
  };
  for (const auto& b :
       {bad{"only-a-token\n", "line 1: expected TOKEN SCOPES"},
        bad{"\n# c\nsecret-1 data,root\n", "line 3: unknown scope \"root\""},
        bad{"secret-1 data\nsecret-1 admin\n", "line 2: the same token is listed twice"},
        bad{"sha256:abcd data\n", "line 1: sha256: must be followed by 64 hex"},
        bad{"sec\"ret data\n", "line 1: a token is letters"},
        bad{"secret-1 data,\n", "line 1: unknown scope \"\""}}) {
    auto parsed = token_table::parse(b.text);
    ASSERT_FALSE(parsed.ok()) << b.text;
    const auto& message = parsed.error().message();
    EXPECT_NE(message.find(b.says), std::string::npos) << message;
    EXPECT_EQ(message.find("secret-1"), std::string::npos) << "the message shows the token";
  }
}

TEST(AuthorizeTest, NoTableOrAnEmptyOneLetsEverythingThrough) {
  auto req = with_token(bhttp::verb::get, "/v1/collections/c/docs/1");
  EXPECT_FALSE(authorize(req, nullptr, scope::admin));
  token_table empty;
  EXPECT_FALSE(authorize(req, &empty, scope::admin));
}

TEST(AuthorizeTest, MissingMalformedUnknownAndShortScopedTokensAreRefused) {
  auto t = table_of("data-token data\nadmin-token admin\nmetrics-token metrics\n");
  // No token: 401 with a challenge and no error attribute (RFC 6750 §3.1).
  auto none = authorize(with_token(bhttp::verb::get, "/x"), &t, scope::data);
  ASSERT_TRUE(none);
  EXPECT_EQ(none->result(), bhttp::status::unauthorized);
  EXPECT_EQ(code_of(*none), "unauthorized");
  EXPECT_EQ((*none)[bhttp::field::www_authenticate], R"(Bearer realm="shoal")");
  EXPECT_EQ((*none)[bhttp::field::content_type], "application/json");

  auto expect_invalid = [&](const request& req) {
    auto res = authorize(req, &t, scope::data);
    ASSERT_TRUE(res);
    EXPECT_EQ(res->result(), bhttp::status::unauthorized);
    EXPECT_EQ(code_of(*res), "invalid_token");
    EXPECT_EQ((*res)[bhttp::field::www_authenticate],
              R"(Bearer realm="shoal", error="invalid_token")");
  };
  expect_invalid(with_token(bhttp::verb::get, "/x", "wrong-token"));
  request basic{bhttp::verb::get, "/x", 11};
  basic.set(bhttp::field::authorization, "Basic ZGF0YS10b2tlbjo=");
  expect_invalid(basic);
  request empty{bhttp::verb::get, "/x", 11};
  empty.set(bhttp::field::authorization, "Bearer ");
  expect_invalid(empty);
  request twice = with_token(bhttp::verb::get, "/x", "data-token");
  twice.insert(bhttp::field::authorization, "Bearer admin-token");
  expect_invalid(twice);

  // The scheme is case-insensitive (RFC 9110 §11.1).
  request lower{bhttp::verb::get, "/x", 11};
  lower.set(bhttp::field::authorization, "bearer   data-token");
  EXPECT_FALSE(authorize(lower, &t, scope::data));

  // A known token without the scope: 403 naming the scope.
  auto short_scoped = authorize(with_token(bhttp::verb::get, "/x", "data-token"), &t, scope::admin);
  ASSERT_TRUE(short_scoped);
  EXPECT_EQ(short_scoped->result(), bhttp::status::forbidden);
  EXPECT_EQ(code_of(*short_scoped), "insufficient_scope");
  EXPECT_EQ((*short_scoped)[bhttp::field::www_authenticate],
            R"(Bearer realm="shoal", error="insufficient_scope", scope="admin")");

  // admin reads what metrics reads; neither is data, and metrics is not admin.
  EXPECT_FALSE(authorize(with_token(bhttp::verb::get, "/x", "admin-token"), &t, scope::metrics));
  EXPECT_TRUE(authorize(with_token(bhttp::verb::get, "/x", "admin-token"), &t, scope::data));
  EXPECT_TRUE(authorize(with_token(bhttp::verb::get, "/x", "metrics-token"), &t, scope::admin));
  EXPECT_FALSE(authorize(with_token(bhttp::verb::get, "/x", "metrics-token"), &t, scope::metrics));
}

// Every route through the router: which scope it asks, and that a refused request
// reaches no shard.
class RouteScopeTest : public ::testing::Test {
protected:
  shoal::testing::edge_harness edge;

  void SetUp() override {
    edge.env.ready = [] { return true; };
    edge.env.metrics_text = [] { return std::string("m 1\n"); };
    edge.env.cluster_view = [] { return std::make_shared<const cluster::cluster_view>(); };
    edge.env.tokens = std::make_shared<const token_table>(
      table_of("data-token data\nadmin-token admin\nmetrics-token metrics\n"));
  }

  /// The status of `verb target` with `token` when the router answers at once, or 0
  /// when the request went on to a shard (it passed the check).
  unsigned status(bhttp::verb verb, const std::string& target, const std::string& token,
                  std::string body = {}) {
    edge.shards.log.clear();
    auto req = with_token(verb, target, token);
    if (!body.empty()) {
      req.set(bhttp::field::content_type, "application/json");
      req.body() = std::move(body);
      req.prepare_payload();
    }
    auto r = edge.go(std::move(req));
    if (auto* res = std::get_if<response>(&r.outcome)) {
      if (res->result_int() == 401 || res->result_int() == 403) {
        EXPECT_TRUE(edge.shards.log.empty()) << target << ": a refused request asked a shard";
      }
      return res->result_int();
    }
    return 0;
  }
};

TEST_F(RouteScopeTest, ProbesAreOpenAndMonitoringNeedsMetricsOrAdmin) {
  EXPECT_EQ(status(bhttp::verb::get, "/healthz", ""), 200u);
  EXPECT_EQ(status(bhttp::verb::get, "/readyz", ""), 200u);
  EXPECT_EQ(status(bhttp::verb::get, "/metrics", ""), 401u);
  EXPECT_EQ(status(bhttp::verb::get, "/metrics", "data-token"), 403u);
  EXPECT_EQ(status(bhttp::verb::get, "/metrics", "metrics-token"), 200u);
  EXPECT_EQ(status(bhttp::verb::get, "/metrics", "admin-token"), 200u);
  EXPECT_EQ(status(bhttp::verb::get, "/v1/cluster", "data-token"), 403u);
  EXPECT_EQ(status(bhttp::verb::get, "/v1/cluster", "metrics-token"), 200u);
}

TEST_F(RouteScopeTest, DataRoutesNeedTheDataScope) {
  struct call {
    bhttp::verb verb;
    std::string target;
    std::string body;
  };
  const call calls[] = {
    {bhttp::verb::get, "/v1/collections/c/docs/1", ""},
    {bhttp::verb::put, "/v1/collections/c/docs/1", R"({"a":1})"},
    {bhttp::verb::delete_, "/v1/collections/c/docs/1", ""},
    {bhttp::verb::post, "/v1/actors/counter/a/method/increment", "{}"},
    {bhttp::verb::post, "/v1/queues/q/jobs", R"({"type":"noop"})"},
    {bhttp::verb::get, "/v1/queues/q", ""},
    {bhttp::verb::post, "/v1/queues/q/lease", "{}"},
    {bhttp::verb::get, "/v1/jobs/q-0-1", ""},
    {bhttp::verb::post, "/v1/jobs/q-0-1/complete", R"({"lease_id":"x"})"},
    {bhttp::verb::get, "/v1/cache/k", ""},
    {bhttp::verb::post, "/v1/cache/k/increment", R"({"by":1})"},
    {bhttp::verb::get, "/v1/collections/c/indexes", ""},
    {bhttp::verb::get, "/v1/collections/c/indexes/f", ""},
    {bhttp::verb::post, "/v1/collections/c/query", R"({"where":{}})"},
  };
  for (const auto& c : calls) {
    EXPECT_EQ(status(c.verb, c.target, "", c.body), 401u) << c.target;
    EXPECT_EQ(status(c.verb, c.target, "metrics-token", c.body), 403u) << c.target;
    // Past the check, the route does its own work: it asks a shard or answers by itself,
    // but never 401 or 403.
    auto passed = status(c.verb, c.target, "data-token", c.body);
    EXPECT_NE(passed, 401u) << c.target;
    EXPECT_NE(passed, 403u) << c.target;
  }
}

TEST_F(RouteScopeTest, IndexChangesRetriesAndAdminRoutesNeedTheAdminScope) {
  const std::pair<bhttp::verb, std::string> calls[] = {
    {bhttp::verb::put, "/v1/collections/c/indexes/f"},
    {bhttp::verb::delete_, "/v1/collections/c/indexes/f"},
    {bhttp::verb::post, "/v1/jobs/q-0-1/retry"},
    {bhttp::verb::get, "/v1/admin/replicas/0"},
  };
  for (const auto& [verb, target] : calls) {
    EXPECT_EQ(status(verb, target, ""), 401u) << target;
    EXPECT_EQ(status(verb, target, "data-token"), 403u) << target;
    auto passed = status(verb, target, "admin-token");
    EXPECT_NE(passed, 401u) << target;
    EXPECT_NE(passed, 403u) << target;
  }
}

TEST_F(RouteScopeTest, OptionsAndUnknownRoutesNeedNoToken) {
  // A browser's preflight carries no credentials; OPTIONS tells only the methods.
  EXPECT_EQ(status(bhttp::verb::options, "/v1/collections/c/docs/1", ""), 204u);
  EXPECT_EQ(status(bhttp::verb::get, "/v1/nothing/here", ""), 404u);
}

} // namespace
} // namespace shoal::http
