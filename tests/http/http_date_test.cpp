// SPDX-License-Identifier: Apache-2.0
// The Date header's format (RFC 9110 5.6.7 IMF-fixdate), pinned on known instants.
#include "http/http_date.hpp"

#include <gtest/gtest.h>

namespace shoal::http {
namespace {

TEST(HttpDateTest, ImfFixdateOfKnownInstants) {
  EXPECT_EQ(imf_fixdate(784111777), "Sun, 06 Nov 1994 08:49:37 GMT"); // RFC 9110's example
  EXPECT_EQ(imf_fixdate(0), "Thu, 01 Jan 1970 00:00:00 GMT");
  EXPECT_EQ(imf_fixdate(951782400), "Tue, 29 Feb 2000 00:00:00 GMT");
  EXPECT_EQ(imf_fixdate(1798761599), "Thu, 31 Dec 2026 23:59:59 GMT");
}

TEST(HttpDateTest, TheCacheAnswersNow) {
  date_cache c;
  const auto a = std::string(c.now());
  EXPECT_EQ(a.size(), 29u);
  EXPECT_EQ(a.substr(a.size() - 4), " GMT");
  // The cache follows the clock: what it says now is what a fresh format says (or, when
  // a second turned in between, what the fresh one said a moment before).
  const auto before = http_date_now();
  const auto cached = std::string(c.now());
  const auto after = http_date_now();
  EXPECT_TRUE(cached == before || cached == after) << cached << " / " << before << " / " << after;
}

} // namespace
} // namespace shoal::http
