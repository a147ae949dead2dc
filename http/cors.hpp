// SPDX-License-Identifier: Apache-2.0
#pragma once

// Cross-origin requests from browsers (the Fetch standard's CORS protocol): which origins
// may read the API's answers (http.cors_origins), and the fields that tell a browser so.
// Applied to every answer in one place (the session, and the change stream's own head);
// a request from an origin not listed is served as before, without the fields, so the
// browser keeps the answer from the page. CORS is not access control: auth is.

#include <string>
#include <string_view>
#include <vector>

#include "http/message.hpp"

namespace shoal::http {

class cors_policy {
public:
  /// Origins from `list`: "*" (any origin) or a comma list of origins
  /// ("https://app.example, http://localhost:3000"); empty turns CORS off. The list was
  /// checked when the settings were loaded.
  explicit cors_policy(std::string_view list = {});

  bool enabled() const noexcept {
    return any_ || !origins_.empty();
  }

  /// True when a browser page from `origin` may read answers.
  bool allows(std::string_view origin) const;

  /// Adds the CORS fields to `res`, the answer to `req`, when `req` comes from an allowed
  /// origin. A preflight (OPTIONS with Access-Control-Request-Method) also gets the
  /// methods of the route (its `Allow`), the request fields the API reads, and a max age.
  void apply(const request& req, response& res) const;
  /// As above, for an answer to `origin` (a preflight when `preflight`).
  void apply(std::string_view origin, bool preflight, response& res) const;

  /// The fields of a simple answer to `origin`, as header lines ending in CRLF, for a
  /// head written by hand (the change stream); empty when `origin` is not allowed.
  std::string header_lines(std::string_view origin) const;

private:
  bool any_ = false;
  std::vector<std::string> origins_;
};

} // namespace shoal::http
