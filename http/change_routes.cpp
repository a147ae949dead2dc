// SPDX-License-Identifier: Apache-2.0
// The change feed's route (docs/changes.md): GET /v1/collections/{c}/changes, from a
// request to a change stream (which takes the connection over) with every check that
// needs no shard: the method, the collection name, the query and the syntax of the
// resume point. The stream itself is change_stream.cpp.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/url/parse.hpp>

#include "changes/events.hpp"
#include "core/names.hpp"
#include "http/change_stream.hpp"
#include "http/route_helpers.hpp"

namespace shoal::http::detail {

namespace bhttp = boost::beast::http;

namespace {

/// The resume point meaning "from the oldest retained event of every shard"; "0" is
/// taken as a synonym and normalized to it.
constexpr std::string_view since_start = "start";
/// The resume point meaning "from now" (also what no resume point means).
constexpr std::string_view since_now = "now";

/// Largest shard count a cluster may have (cluster.shards).
constexpr std::uint64_t max_shards = 65'536;

response invalid_resume_point(std::string message, unsigned version) {
  return error_response(invalid("invalid_resume_point", std::move(message)), version);
}

/// The shard count a position text names, from the first varint of its payload: at most
/// three bytes, so the first four base64url characters. nullopt when the text does not
/// start like a position.
std::optional<std::uint32_t> named_shard_count(std::string_view text) {
  constexpr std::string_view prefix = "v1.";
  if (text.substr(0, prefix.size()) != prefix) return std::nullopt;
  auto payload = text.substr(prefix.size(), 4);
  std::uint32_t acc = 0;
  int bits = 0;
  std::uint64_t count = 0;
  int shift = 0;
  for (char c : payload) {
    int v = -1;
    if (c >= 'A' && c <= 'Z')
      v = c - 'A';
    else if (c >= 'a' && c <= 'z')
      v = c - 'a' + 26;
    else if (c >= '0' && c <= '9')
      v = c - '0' + 52;
    else if (c == '-')
      v = 62;
    else if (c == '_')
      v = 63;
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits < 8) continue;
    bits -= 8;
    auto byte = (acc >> bits) & 0xffu;
    count |= static_cast<std::uint64_t>(byte & 0x7fu) << shift;
    if ((byte & 0x80u) == 0)
      return count <= max_shards ? std::optional<std::uint32_t>(static_cast<std::uint32_t>(count))
                                 : std::nullopt;
    shift += 7;
  }
  return std::nullopt;
}

/// `text` as the stream's `since`: "" (from now), "start", or a position that
/// decodes (for the shard count it names; the stream checks that count against the
/// cluster's). nullopt when it is none of these.
std::optional<std::string> normalize_since(std::string_view text) {
  if (text == since_now) return std::string();
  if (text == since_start || text == "0") return std::string(since_start);
  auto shards = named_shard_count(text);
  if (!shards || !changes::position::decode(text, *shards)) return std::nullopt;
  return std::string(text);
}

constexpr std::string_view resume_rule =
  "a resume point is an event id of this stream, \"start\" (or \"0\") or \"now\"";

/// The route's answer: the connection goes to a change stream.
routed stream(std::string_view collection, std::string since) {
  return {route_id::changes,
          take_over{[collection = std::string(collection),
                     since = std::move(since)](boost::beast::tcp_stream&& s, server_context& ctx,
                                               std::string request_id, const request& req) mutable {
            start_change_stream(std::move(s), ctx, std::move(collection), std::move(since),
                                std::move(request_id), req);
          }}};
}

} // namespace

routed route_changes(exchange& ex, std::string_view collection) {
  const auto& req = ex.req;
  const auto& env = ex.env;
  auto version = req.version();
  routed r{route_id::changes, response{}};
  if (!env.changes_enabled) {
    r.outcome =
      error_response(core::error{core::errc::not_found,
                                 "the change feed is turned off on this node (changes.enabled)"},
                     version);
    return r;
  }
  // GET only: a HEAD would get the header of an endless body.
  if (req.method() != bhttp::verb::get) {
    r.outcome = method_not_allowed(req, "GET");
    return r;
  }
  if (!core::valid_name(collection)) {
    r.outcome = error_response(
      invalid("invalid_name", "collection names are 1 to 64 of [A-Za-z0-9_-]"), version);
    return r;
  }
  std::optional<std::string> since_param;
  if (auto url = boost::urls::parse_origin_form(req.target()); url && url->has_query()) {
    for (auto p : url->params()) {
      if (p.key.empty() && p.value.empty()) continue; // "?", "a=1&"
      if (p.key != "since") {
        r.outcome = error_response(invalid("unknown_parameter", "unknown query parameter \"" + p.key
                                                                  + "\" (only since is taken)"),
                                   version);
        return r;
      }
      if (since_param || !p.has_value) {
        r.outcome = invalid_resume_point("since must be given once, with a value", version);
        return r;
      }
      since_param = std::move(p.value);
    }
  }
  // Last-Event-ID wins over ?since=: an EventSource opened with ?since=start sends the
  // id of the last event it saw when it reconnects, and must go on from there.
  std::string_view since;
  bool from_header = false;
  if (auto h = req.find("Last-Event-ID"); h != req.end() && !h->value().empty()) {
    since = h->value();
    from_header = true;
  } else if (since_param) {
    since = *since_param;
  } else {
    return stream(collection, std::string());
  }
  auto normalized = normalize_since(since);
  if (!normalized) {
    r.outcome = invalid_resume_point(std::string(from_header ? "Last-Event-ID" : "since")
                                       + " is malformed: " + std::string(resume_rule),
                                     version);
    return r;
  }
  return stream(collection, std::move(*normalized));
}

} // namespace shoal::http::detail
