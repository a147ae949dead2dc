// SPDX-License-Identifier: Apache-2.0
#pragma once

// The Date header (RFC 9110 6.6.1): IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT". Each
// connection keeps the last one it wrote, so a keep-alive client's requests within one
// second format it once; no state is shared between connections.

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace shoal::http {

/// `t` (seconds since the Unix epoch) in IMF-fixdate.
std::string imf_fixdate(std::int64_t unix_seconds);

/// The Date header's value for now, formatted afresh (for a one-off response).
std::string http_date_now();

class date_cache {
public:
  /// The Date header's value for now.
  std::string_view now();

private:
  std::int64_t second_ = -1;
  std::string text_;
};

} // namespace shoal::http
