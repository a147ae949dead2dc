// SPDX-License-Identifier: Apache-2.0
#pragma once

// Bearer-token authentication of the HTTP API (RFC 6750; docs/api.md "Authentication").
// A node started with `auth.tokens_file` asks every request but the probes for a token
// and checks that the token's scopes cover the route; without that file the API is open.
// Tokens are kept only as SHA-256 digests, so a node's memory and its token file need not
// hold them in clear.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/result.hpp"
#include "http/message.hpp"

namespace shoal::http {

/// What a token may do, as bits: a token holds any set of them.
enum class scope : std::uint8_t {
  data = 1,  ///< documents, actors, jobs (enqueue, lease, complete, fail), cache, queries, changes
  admin = 2, ///< index changes, job retries, /v1/admin/*; also everything `metrics` reads
  metrics = 4, ///< /metrics and GET /v1/cluster (read-only monitoring, e.g. Prometheus)
};
using scope_set = std::uint8_t;

/// "data", "admin" or "metrics".
const char* to_string(scope s) noexcept;

/// The tokens a node accepts: SHA-256 digest → scopes (and a name for logs).
class token_table {
public:
  using digest = std::array<unsigned char, 32>;

  struct entry {
    scope_set scopes = 0;
    std::string name; ///< from the file; "line N" when it names none
  };

  /// Parses a tokens file: one token per line, `TOKEN SCOPES [NAME]`, where TOKEN is the
  /// token itself or `sha256:` and the 64 hex digits of its SHA-256, SCOPES a comma list
  /// of data, admin and metrics. Blank lines and lines starting with # are skipped. An
  /// error names the line (never the token).
  static core::result<token_table> parse(std::string_view text);

  /// SHA-256 of `token`.
  static digest hash(std::string_view token);

  bool empty() const noexcept {
    return entries_.empty();
  }
  std::size_t size() const noexcept {
    return entries_.size();
  }

  /// The entry of `token`, or null when the node does not accept it.
  const entry* find(std::string_view token) const;

private:
  struct digest_hash {
    std::size_t operator()(const digest& d) const noexcept;
  };
  std::unordered_map<digest, entry, digest_hash> entries_;
};

/// Null when `req` may go on: `tokens` is null or empty (auth is off), or the request
/// carries `Authorization: Bearer T` with a token whose scopes hold `need` (admin holds
/// metrics too). Otherwise the answer: 401 (no token, a malformed header, an unknown
/// token) with `WWW-Authenticate`, or 403 when the token lacks the scope.
std::optional<response> authorize(const request& req, const token_table* tokens, scope need);

} // namespace shoal::http
