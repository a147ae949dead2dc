// SPDX-License-Identifier: Apache-2.0
// RFC 9457 problem details: which Accept headers ask for them, and how an error of ours
// is rewritten (every field, the status's title, headers kept; anything else untouched).
#include "http/errors.hpp"

#include <boost/beast/http/field.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>

namespace shoal::http {
namespace {

namespace bhttp = boost::beast::http;

TEST(ProblemTest, WhichAcceptHeadersAskForProblemDetails) {
  EXPECT_TRUE(wants_problem("application/problem+json"));
  EXPECT_TRUE(wants_problem("Application/Problem+JSON"));
  EXPECT_TRUE(wants_problem("application/json, application/problem+json;q=0.9"));
  EXPECT_TRUE(wants_problem("text/html ,  application/problem+json ; q=1"));
  EXPECT_FALSE(wants_problem(""));
  EXPECT_FALSE(wants_problem("application/json"));
  EXPECT_FALSE(wants_problem("*/*"));
  EXPECT_FALSE(wants_problem("application/problem+json;q=0"));
  EXPECT_FALSE(wants_problem("application/problem+json; q=0.000"));
  EXPECT_FALSE(wants_problem("application/problem+jsonx"));
}

TEST(ProblemTest, AnErrorBecomesProblemDetailsWithItsHeaders) {
  auto res = error_response(core::error{core::errc::shard_unavailable, "node n2 is down"}, 11);
  to_problem(res);
  EXPECT_EQ(res[bhttp::field::content_type], "application/problem+json");
  EXPECT_EQ(res[bhttp::field::retry_after], "1") << "headers are kept";
  auto v = boost::json::parse(res.body());
  EXPECT_EQ(v.at("type"), "about:blank");
  EXPECT_EQ(v.at("title"), "Service Unavailable");
  EXPECT_EQ(v.at("status"), 503);
  EXPECT_EQ(v.at("detail"), "node n2 is down");
  EXPECT_EQ(v.at("code"), "shard_unavailable");
  EXPECT_EQ(res[bhttp::field::content_length], std::to_string(res.body().size()));
}

TEST(ProblemTest, AnythingElseIsLeftAlone) {
  response plain{bhttp::status::not_found, 11};
  plain.set(bhttp::field::content_type, "text/plain");
  plain.body() = "nope";
  to_problem(plain);
  EXPECT_EQ(plain.body(), "nope");
  response other{bhttp::status::conflict, 11};
  other.set(bhttp::field::content_type, "application/json");
  other.body() = R"({"jobs":[]})";
  to_problem(other);
  EXPECT_EQ(other.body(), R"({"jobs":[]})");
  EXPECT_EQ(other[bhttp::field::content_type], "application/json");
}

} // namespace
} // namespace shoal::http
