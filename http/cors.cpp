// SPDX-License-Identifier: Apache-2.0
#include "http/cors.hpp"

#include <algorithm>

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>

#include "util/text.hpp"

namespace shoal::http {

namespace bhttp = boost::beast::http;

namespace {

/// Request fields a browser may send to the API (beyond the CORS-safelisted ones).
constexpr std::string_view allowed_headers =
  "Authorization, Content-Type, If-Match, If-None-Match, Last-Event-ID, X-Request-Id, Accept";
/// Answer fields a page may read (beyond the CORS-safelisted ones).
constexpr std::string_view exposed_headers =
  "ETag, Location, Retry-After, X-Request-Id, Allow, Accept-Patch";
/// How long a browser may cache a preflight's answer, in seconds.
constexpr std::string_view max_age = "600";

} // namespace

cors_policy::cors_policy(std::string_view list) {
  util::for_each_item(list, ',', [this](std::string_view item) {
    if (item == "*")
      any_ = true;
    else if (!item.empty())
      origins_.emplace_back(item);
    return true;
  });
}

bool cors_policy::allows(std::string_view origin) const {
  if (origin.empty() || origin == "null") return false;
  if (any_) return true;
  // Scheme and host compare without case (RFC 6454 §4 serializes them in lower case).
  return std::any_of(origins_.begin(), origins_.end(),
                     [&](const std::string& o) { return boost::beast::iequals(o, origin); });
}

void cors_policy::apply(const request& req, response& res) const {
  if (!enabled()) return;
  apply(req[bhttp::field::origin],
        req.method() == bhttp::verb::options
          && req.find(bhttp::field::access_control_request_method) != req.end(),
        res);
}

void cors_policy::apply(std::string_view origin, bool preflight, response& res) const {
  if (!enabled()) return;
  // The answer differs by Origin whenever CORS is on, so caches must key on it.
  res.set(bhttp::field::vary, "Origin");
  if (!allows(origin)) return;
  res.set(bhttp::field::access_control_allow_origin, origin);
  if (preflight) {
    if (auto allow = res[bhttp::field::allow]; !allow.empty())
      res.set(bhttp::field::access_control_allow_methods, allow);
    res.set(bhttp::field::access_control_allow_headers, allowed_headers);
    res.set(bhttp::field::access_control_max_age, max_age);
  } else {
    res.set(bhttp::field::access_control_expose_headers, exposed_headers);
  }
}

std::string cors_policy::header_lines(std::string_view origin) const {
  if (!enabled()) return {};
  std::string lines = "Vary: Origin\r\n";
  if (!allows(origin)) return lines;
  lines += "Access-Control-Allow-Origin: ";
  lines += origin;
  lines += "\r\nAccess-Control-Expose-Headers: ";
  lines += exposed_headers;
  lines += "\r\n";
  return lines;
}

} // namespace shoal::http
