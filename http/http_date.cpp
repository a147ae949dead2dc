// SPDX-License-Identifier: Apache-2.0
#include "http/http_date.hpp"

#include <cstdio>
#include <ctime>

namespace shoal::http {

std::string imf_fixdate(std::int64_t unix_seconds) {
  static constexpr const char* days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const auto t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char out[32];
  std::snprintf(out, sizeof out, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday % 7],
                tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                tm.tm_sec);
  return out;
}

namespace {

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

} // namespace

std::string http_date_now() {
  return imf_fixdate(unix_now());
}

std::string_view date_cache::now() {
  const auto s = unix_now();
  if (s != second_) {
    second_ = s;
    text_ = imf_fixdate(s);
  }
  return text_;
}

} // namespace shoal::http
