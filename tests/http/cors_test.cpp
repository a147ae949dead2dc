// SPDX-License-Identifier: Apache-2.0
// CORS (http/cors.hpp): which origins are allowed, and the fields of a simple answer, a
// preflight's answer and a hand-written head.
#include "http/cors.hpp"

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>
#include <gtest/gtest.h>

namespace shoal::http {
namespace {

namespace bhttp = boost::beast::http;

request from(std::string origin, bhttp::verb verb = bhttp::verb::get) {
  request req{verb, "/v1/collections/c/docs/1", 11};
  if (!origin.empty()) req.set(bhttp::field::origin, origin);
  return req;
}

TEST(CorsTest, AnEmptyListIsOffAndAddsNothing) {
  cors_policy off{""};
  EXPECT_FALSE(off.enabled());
  response res{bhttp::status::ok, 11};
  off.apply(from("https://app.example"), res);
  EXPECT_EQ(res.begin(), res.end()) << "fields were added with CORS off";
  EXPECT_EQ(off.header_lines("https://app.example"), "");
}

TEST(CorsTest, OnlyListedOriginsAreAllowed) {
  cors_policy p{" https://app.example ,http://localhost:3000,"};
  EXPECT_TRUE(p.enabled());
  EXPECT_TRUE(p.allows("https://app.example"));
  EXPECT_TRUE(p.allows("HTTPS://APP.example")) << "scheme and host compare without case";
  EXPECT_TRUE(p.allows("http://localhost:3000"));
  EXPECT_FALSE(p.allows("http://app.example")) << "another scheme is another origin";
  EXPECT_FALSE(p.allows("http://localhost:3001"));
  EXPECT_FALSE(p.allows("https://app.example.evil"));
  EXPECT_FALSE(p.allows(""));

  cors_policy any{"*"};
  EXPECT_TRUE(any.allows("https://whoever.example"));
  // A sandboxed page or a file sends "null": never allowed, even with "*".
  EXPECT_FALSE(any.allows("null"));
}

TEST(CorsTest, ASimpleAnswerNamesTheOriginAndWhatThePageMayRead) {
  cors_policy p{"https://app.example"};
  response res{bhttp::status::ok, 11};
  p.apply(from("https://app.example"), res);
  EXPECT_EQ(res[bhttp::field::access_control_allow_origin], "https://app.example");
  EXPECT_EQ(res[bhttp::field::vary], "Origin");
  EXPECT_NE(res[bhttp::field::access_control_expose_headers].find("ETag"), std::string::npos);
  EXPECT_NE(res[bhttp::field::access_control_expose_headers].find("X-Request-Id"),
            std::string::npos);
  EXPECT_EQ(res.count(bhttp::field::access_control_allow_methods), 0u);

  // Another origin: served, but without the fields that would let its page read it.
  response other{bhttp::status::ok, 11};
  p.apply(from("https://evil.example"), other);
  EXPECT_EQ(other.count(bhttp::field::access_control_allow_origin), 0u);
  EXPECT_EQ(other[bhttp::field::vary], "Origin");
  // No Origin at all (not a browser's cross-origin request): no allow fields either.
  response plain{bhttp::status::ok, 11};
  p.apply(from(""), plain);
  EXPECT_EQ(plain.count(bhttp::field::access_control_allow_origin), 0u);
}

TEST(CorsTest, APreflightGetsTheRoutesMethodsAndTheFieldsTheApiReads) {
  cors_policy p{"*"};
  auto req = from("http://localhost:3000", bhttp::verb::options);
  req.set(bhttp::field::access_control_request_method, "PUT");
  req.set(bhttp::field::access_control_request_headers, "authorization, if-match");
  response res{bhttp::status::no_content, 11};
  res.set(bhttp::field::allow, "GET, HEAD, PUT, PATCH, DELETE, OPTIONS"); // the router's
  p.apply(req, res);
  EXPECT_EQ(res[bhttp::field::access_control_allow_origin], "http://localhost:3000");
  EXPECT_EQ(res[bhttp::field::access_control_allow_methods],
            "GET, HEAD, PUT, PATCH, DELETE, OPTIONS");
  auto headers = std::string(res[bhttp::field::access_control_allow_headers]);
  for (const char* h : {"Authorization", "Content-Type", "If-Match", "If-None-Match",
                        "Last-Event-ID", "X-Request-Id"})
    EXPECT_NE(headers.find(h), std::string::npos) << h;
  EXPECT_EQ(res[bhttp::field::access_control_max_age], "600");

  // OPTIONS without Access-Control-Request-Method is not a preflight.
  response plain{bhttp::status::no_content, 11};
  plain.set(bhttp::field::allow, "GET, OPTIONS");
  p.apply(from("http://localhost:3000", bhttp::verb::options), plain);
  EXPECT_EQ(plain.count(bhttp::field::access_control_allow_methods), 0u);
}

TEST(CorsTest, HeaderLinesForAHandWrittenHead) {
  cors_policy p{"https://app.example"};
  auto lines = p.header_lines("https://app.example");
  EXPECT_NE(lines.find("Access-Control-Allow-Origin: https://app.example\r\n"), std::string::npos);
  EXPECT_NE(lines.find("Vary: Origin\r\n"), std::string::npos);
  EXPECT_NE(lines.find("Access-Control-Expose-Headers: "), std::string::npos);
  EXPECT_EQ(p.header_lines("https://evil.example"), "Vary: Origin\r\n");
}

} // namespace
} // namespace shoal::http
