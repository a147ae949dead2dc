// SPDX-License-Identifier: Apache-2.0
// The framing checks the session applies to every request header (http/framing.hpp).
#include "http/framing.hpp"

#include <string>

#include <boost/beast/http/verb.hpp>
#include <gtest/gtest.h>

namespace shoal::http {
namespace {

namespace bhttp = boost::beast::http;
using header = bhttp::request_header<bhttp::fields>;

header make(unsigned version = 11) {
  header h;
  h.method(bhttp::verb::post);
  h.target("/v1/collections/c/docs/a");
  h.version(version);
  if (version >= 11) h.insert(bhttp::field::host, "127.0.0.1:8080");
  return h;
}

header with_te(std::string value, unsigned version = 11) {
  auto h = make(version);
  h.insert(bhttp::field::transfer_encoding, value);
  return h;
}

// Verifies a request without Transfer-Encoding, and one that is only chunked (in any
// case, with spaces or empty list elements), has sound framing.
TEST(FramingTest, ChunkedAloneIsSound) {
  EXPECT_FALSE(check_framing(make()));
  EXPECT_FALSE(check_framing(with_te("chunked")));
  EXPECT_FALSE(check_framing(with_te("Chunked")));
  EXPECT_FALSE(check_framing(with_te(" , chunked ,")));
}

// Verifies a final transfer coding other than chunked is 400: the body length cannot be
// known, so its bytes must not run as a next request (the smuggling of issue 15).
TEST(FramingTest, AFinalCodingOtherThanChunkedIs400) {
  for (const char* te : {"gzip", "identity", "xchunked", "chunked, identity", "chunkedx", ""}) {
    auto problem = check_framing(with_te(te));
    ASSERT_TRUE(problem) << te;
    EXPECT_EQ(problem->status, 400) << te;
    EXPECT_EQ(problem->code, "bad_request") << te;
  }
}

// Verifies a coding before chunked is 501 (not implemented), chunked twice is 400, and
// two Transfer-Encoding lines are read as one list.
TEST(FramingTest, CodingsBeforeChunked) {
  auto gzip = check_framing(with_te("gzip, chunked"));
  ASSERT_TRUE(gzip);
  EXPECT_EQ(gzip->status, 501);
  EXPECT_EQ(gzip->code, "not_implemented");
  EXPECT_NE(gzip->message.find("gzip"), std::string::npos);
  auto twice = check_framing(with_te("chunked, chunked"));
  ASSERT_TRUE(twice);
  EXPECT_EQ(twice->status, 400);
  auto lines = with_te("chunked");
  lines.insert(bhttp::field::transfer_encoding, "identity");
  auto split = check_framing(lines);
  ASSERT_TRUE(split);
  EXPECT_EQ(split->status, 400) << "the last coding of the combined list is identity";
}

// Verifies Transfer-Encoding in an HTTP/1.0 request is refused (§6.1: faulty framing).
TEST(FramingTest, TransferEncodingInHttp10Is400) {
  auto problem = check_framing(with_te("chunked", 10));
  ASSERT_TRUE(problem);
  EXPECT_EQ(problem->status, 400);
}

// Verifies the Host rules of §3.2: HTTP/1.1 needs exactly one, with a host-like value;
// HTTP/1.0 may omit it but not repeat it.
TEST(FramingTest, HostRules) {
  auto none = make();
  none.erase(bhttp::field::host);
  ASSERT_TRUE(check_framing(none));
  EXPECT_EQ(check_framing(none)->status, 400);
  auto two = make();
  two.insert(bhttp::field::host, "other");
  ASSERT_TRUE(check_framing(two));
  for (const char* bad : {"a b", "a/b", "user@host", "a?b", "a#b", "a\tb"}) {
    auto h = make();
    h.set(bhttp::field::host, bad);
    EXPECT_TRUE(check_framing(h)) << bad;
  }
  for (const char* good : {"example.com", "127.0.0.1:8080", "[::1]:8080", "", "a-b_c.d"}) {
    auto h = make();
    h.set(bhttp::field::host, good);
    EXPECT_FALSE(check_framing(h)) << good;
  }
  EXPECT_FALSE(check_framing(make(10)));
  auto two10 = make(10);
  two10.insert(bhttp::field::host, "a");
  two10.insert(bhttp::field::host, "b");
  EXPECT_TRUE(check_framing(two10));
}

// Verifies folds are found wherever the pieces split the header block, and that a
// header without folds (spaces inside values, the final empty line) has none.
TEST(FramingTest, FoldDetectorFindsFoldsAcrossPieces) {
  const std::string folded = "GET / HTTP/1.1\r\nHost: a\r\nX-A: one\r\n two\r\n\r\n";
  for (std::size_t cut = 0; cut <= folded.size(); ++cut) {
    fold_detector d;
    bool found = d.feed(std::string_view(folded).substr(0, cut));
    found = d.feed(std::string_view(folded).substr(cut)) || found;
    EXPECT_TRUE(found) << "cut at " << cut;
  }
  fold_detector tab;
  EXPECT_TRUE(tab.feed("GET / HTTP/1.1\r\nX-A: one\r\n\ttwo\r\n\r\n"));
  fold_detector plain;
  EXPECT_FALSE(plain.feed("GET / HTTP/1.1\r\nHost: a b\r\nX-A:  spaced  value \r\n\r\n"));
  EXPECT_FALSE(plain.feed("GET / HTTP/1.1\r\n"));
  EXPECT_FALSE(plain.feed("\r\n"));
}

} // namespace
} // namespace shoal::http
