// SPDX-License-Identifier: Apache-2.0
#include "http/auth.hpp"

#include <cstring>

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/field.hpp>
#include <fmt/format.h>
#include <openssl/evp.h>

#include "http/errors.hpp"
#include "util/text.hpp"

namespace shoal::http {

namespace bhttp = boost::beast::http;

namespace {

constexpr std::string_view digest_prefix = "sha256:";

using util::trim;

/// The next whitespace-separated word of `line`, removed from it.
std::string_view next_word(std::string_view& line) {
  line = trim(line);
  auto end = line.find_first_of(" \t");
  auto word = line.substr(0, end);
  line = end == std::string_view::npos ? std::string_view{} : line.substr(end);
  return word;
}

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<token_table::digest> parse_digest(std::string_view hex) {
  token_table::digest d{};
  if (hex.size() != d.size() * 2) return std::nullopt;
  for (std::size_t i = 0; i < d.size(); ++i) {
    int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    d[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  return d;
}

/// RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
bool valid_token(std::string_view t) noexcept {
  auto end = t.size();
  while (end > 0 && t[end - 1] == '=')
    --end;
  if (end == 0) return false;
  for (std::size_t i = 0; i < end; ++i) {
    char c = t[i];
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'
              || c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
    if (!ok) return false;
  }
  return true;
}

core::error bad_line(std::size_t line, std::string what) {
  return core::error{core::errc::invalid_argument, "tokens_file",
                     fmt::format("line {}: {}", line, what)};
}

response refusal(bhttp::status status, std::string_view code, std::string_view message,
                 std::string challenge, unsigned version) {
  auto res = error_response(status, code, message, version);
  res.set(bhttp::field::www_authenticate, std::move(challenge));
  return res;
}

} // namespace

const char* to_string(scope s) noexcept {
  switch (s) {
  case scope::data:
    return "data";
  case scope::admin:
    return "admin";
  case scope::metrics:
    return "metrics";
  }
  return "unknown";
}

token_table::digest token_table::hash(std::string_view token) {
  digest d{};
  unsigned int n = 0;
  EVP_Digest(token.data(), token.size(), d.data(), &n, EVP_sha256(), nullptr);
  return d;
}

std::size_t token_table::digest_hash::operator()(const digest& d) const noexcept {
  std::size_t h;
  std::memcpy(&h, d.data(), sizeof(h)); // a digest's bytes are uniform already
  return h;
}

core::result<token_table> token_table::parse(std::string_view text) {
  token_table table;
  std::size_t number = 0;
  while (!text.empty()) {
    auto nl = text.find('\n');
    auto line = text.substr(0, nl);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1); // CRLF files
    line = trim(line);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    ++number;
    if (line.empty() || line.front() == '#') continue;
    auto token = next_word(line);
    auto scopes = next_word(line);
    auto name = trim(line);
    if (scopes.empty()) return bad_line(number, "expected TOKEN SCOPES [NAME]");
    digest d{};
    if (token.substr(0, digest_prefix.size()) == digest_prefix) {
      auto parsed = parse_digest(token.substr(digest_prefix.size()));
      if (!parsed) return bad_line(number, "sha256: must be followed by 64 hex digits");
      d = *parsed;
    } else {
      if (!valid_token(token))
        return bad_line(number, "a token is letters, digits and - . _ ~ + / (then = padding)");
      d = hash(token);
    }
    entry e;
    std::optional<std::string_view> unknown;
    util::for_each_item(scopes, ',', [&](std::string_view s) {
      if (s == "data")
        e.scopes |= static_cast<scope_set>(scope::data);
      else if (s == "admin")
        e.scopes |= static_cast<scope_set>(scope::admin);
      else if (s == "metrics")
        e.scopes |= static_cast<scope_set>(scope::metrics);
      else
        unknown = s;
      return !unknown;
    });
    if (unknown)
      return bad_line(
        number, fmt::format("unknown scope \"{}\"; scopes are data, admin, metrics", *unknown));
    e.name = name.empty() ? fmt::format("line {}", number) : std::string(name);
    if (!table.entries_.emplace(d, std::move(e)).second)
      return bad_line(number, "the same token is listed twice");
  }
  return table;
}

const token_table::entry* token_table::find(std::string_view token) const {
  auto it = entries_.find(hash(token));
  return it == entries_.end() ? nullptr : &it->second;
}

std::optional<response> authorize(const request& req, const token_table* tokens, scope need) {
  if (!tokens || tokens->empty()) return std::nullopt;
  const auto version = req.version();
  constexpr std::string_view realm = R"(Bearer realm="shoal")";
  auto header = req.find(bhttp::field::authorization);
  if (header == req.end())
    return refusal(bhttp::status::unauthorized, "unauthorized",
                   "this route needs a bearer token (Authorization: Bearer TOKEN)",
                   std::string(realm), version);
  const std::string invalid_challenge = std::string(realm) + R"(, error="invalid_token")";
  // Two Authorization fields cannot both be meant: refused like a bad token.
  if (req.count(bhttp::field::authorization) != 1)
    return refusal(bhttp::status::unauthorized, "invalid_token",
                   "the request carries more than one Authorization field", invalid_challenge,
                   version);
  auto value = trim(header->value());
  auto scheme = next_word(value);
  auto token = trim(value);
  if (!boost::beast::iequals(scheme, "bearer") || !valid_token(token))
    return refusal(bhttp::status::unauthorized, "invalid_token",
                   "the Authorization field must be \"Bearer TOKEN\"", invalid_challenge, version);
  const auto* entry = tokens->find(token);
  if (!entry)
    return refusal(bhttp::status::unauthorized, "invalid_token", "the token is not accepted",
                   invalid_challenge, version);
  auto held = entry->scopes;
  if (held & static_cast<scope_set>(scope::admin)) held |= static_cast<scope_set>(scope::metrics);
  if (held & static_cast<scope_set>(need)) return std::nullopt;
  return refusal(
    bhttp::status::forbidden, "insufficient_scope",
    fmt::format("the token does not have the {} scope this route needs", to_string(need)),
    fmt::format(R"({}, error="insufficient_scope", scope="{}")", realm, to_string(need)), version);
}

} // namespace shoal::http
