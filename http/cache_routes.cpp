// SPDX-License-Identifier: Apache-2.0
// The TTL cache routes (docs/caching.md): GET, HEAD, PUT and DELETE of /v1/cache/{key}
// and POST /v1/cache/{key}/increment, from a request to a cache message with every check
// the edge makes of the key, the query and the body, and from the answer to a response.

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <variant>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/json/object.hpp>
#include <boost/url/parse.hpp>

#include "cache/messages.hpp"
#include "core/names.hpp"
#include "http/route_helpers.hpp"
#include "util/json.hpp"

namespace shoal::http::detail {

namespace bhttp = boost::beast::http;

namespace {

constexpr std::string_view cache_methods = "GET, HEAD, PUT, DELETE";

/// The Content-Type of a value stored without one.
constexpr std::string_view default_content_type = "application/octet-stream";

/// The query of a cache route: the ttl of a PUT, if given.
struct cache_query {
  std::optional<std::string> ttl;
};

std::string ttl_range_message(const route_env& env) {
  return "ttl must be an integer number of seconds from 1 to " + std::to_string(env.cache_max_ttl_s)
         + " (cache.max_ttl_s)";
}

/// Parses the query of `req`: PUT takes `ttl` once, the other methods take nothing.
/// 400 invalid_ttl for a repeated or valueless ttl, 400 unknown_parameter for any other
/// name. Empty members (`?`, `a=1&`) are ignored.
core::result<cache_query> parse_cache_query(const request& req, const route_env& env) {
  cache_query out;
  auto url = boost::urls::parse_origin_form(req.target());
  if (!url) // route() parsed the same target already; kept for safety
    return invalid("invalid_target", "the request target is not a valid path");
  if (!url->has_query()) return out;
  const bool is_put = req.method() == bhttp::verb::put;
  for (auto param : url->params()) {
    if (param.key.empty() && param.value.empty()) continue;
    if (is_put && param.key == "ttl") {
      if (out.ttl || !param.has_value)
        return invalid("invalid_ttl", ttl_range_message(env) + ", given once");
      out.ttl = std::move(param.value);
      continue;
    }
    std::string message = "unknown query parameter \"" + param.key + "\" (";
    message += is_put ? "PUT takes only ttl)" : "only PUT takes a query: ttl)";
    return invalid("unknown_parameter", message);
  }
  return out;
}

/// The ttl in seconds of `text` when it is a decimal integer from 1 to env.cache_max_ttl_s.
std::optional<std::uint32_t> parse_ttl(std::string_view text, const route_env& env) noexcept {
  std::uint64_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  if (n < 1 || n > env.cache_max_ttl_s) return std::nullopt;
  return static_cast<std::uint32_t>(n);
}

} // namespace

routed route_cache(exchange& ex, std::string_view key) {
  auto& req = ex.req;
  const auto version = req.version();
  constexpr auto route = route_id::cache;
  const auto method = req.method();
  if (method != bhttp::verb::get && method != bhttp::verb::head && method != bhttp::verb::put
      && method != bhttp::verb::delete_)
    return refused(route, method_not_allowed(req, cache_methods));
  if (!core::valid_id(key))
    return refused(
      route, invalid("invalid_key", "cache keys are 1 to 256 of [A-Za-z0-9_.:@-], not . or .."),
      version);
  auto query = parse_cache_query(req, ex.env);
  if (!query) return refused(route, query.error(), version);
  const auto timeout = ex.env.request_timeout_ms;
  if (method == bhttp::verb::delete_)
    // DELETE is idempotent: removing what is not there (never stored, expired, evicted)
    // ends as removing it does.
    return {route, ask(ex, cache::cache_delete{std::string(key)}, timeout,
                       [version](core::result<cache::cache_deleted>&& r) {
                         return render(std::move(r), version,
                                       [&](cache::cache_deleted&&) { return no_content(version); });
                       })};
  if (method != bhttp::verb::put)
    return {route, ask(ex, cache::cache_get{std::string(key)}, timeout,
                       [version](core::result<cache::cache_entry>&& r) {
                         return render(std::move(r), version, [&](cache::cache_entry&& e) {
                           response res{bhttp::status::ok, version};
                           res.set(bhttp::field::content_type,
                                   e.content_type.empty() ? default_content_type
                                                          : std::string_view(e.content_type));
                           // Session-like data: no shared or private cache in between
                           // should keep a copy.
                           res.set(bhttp::field::cache_control, "no-store");
                           res.set(bhttp::field::etag, etag(e.version));
                           res.body() = std::move(e.value);
                           res.prepare_payload();
                           return res;
                         });
                       })};
  std::uint32_t ttl_s = ex.env.cache_default_ttl_s;
  if (const auto& ttl = query->ttl) {
    auto parsed = parse_ttl(*ttl, ex.env);
    if (!parsed) return refused(route, invalid("invalid_ttl", ttl_range_message(ex.env)), version);
    ttl_s = *parsed;
  }
  if (req.body().size() > ex.env.cache_max_value_bytes)
    return refused(route,
                   core::error{core::errc::too_large, "value_too_large",
                               "cache values are at most "
                                 + std::to_string(ex.env.cache_max_value_bytes)
                                 + " bytes (cache.max_value_bytes)"},
                   version);
  cache::cache_put put;
  // Conditions (RFC 9110 13.1): If-None-Match: * stores only a new entry, If-Match only
  // over a live one ("*") or over one of the versions listed; both are checked and the
  // entry stored in one step of its shard.
  if (auto h = req.find(bhttp::field::if_none_match); h != req.end()) {
    if (h->value() != "*")
      return refused(
        route, invalid("invalid_precondition", "a cache PUT takes If-None-Match: * only"), version);
    put.only_if_absent = true;
  }
  if (auto h = req.find(bhttp::field::if_match); h != req.end()) {
    auto tags = parse_entity_tags(h->value(), false);
    if (!tags)
      return refused(route,
                     invalid("invalid_precondition", "If-Match is not * or a list of entity tags"),
                     version);
    if (tags->what == documents::precondition::kind::any) {
      put.only_if_present = true;
    } else if (tags->versions.empty()) {
      // Tags that name no version of ours match no entry: the condition cannot hold.
      return refused(route,
                     core::error{core::errc::precondition_failed, "no entry has that entity tag"},
                     version);
    } else {
      put.if_versions = std::move(tags->versions);
    }
  }
  std::string_view content_type = req[bhttp::field::content_type];
  put.content_type.assign(content_type.empty() ? default_content_type : content_type);
  put.value = std::move(req.body());
  put.ttl_ms = std::uint64_t{ttl_s} * 1000;
  put.key.assign(key);
  return {route, ask(ex, std::move(put), timeout, [version](core::result<cache::cache_stored>&& r) {
            return render(std::move(r), version, [&](cache::cache_stored&& s) {
              auto res = no_content(version);
              res.set(bhttp::field::etag, etag(s.version));
              return res;
            });
          })};
}

routed route_cache_increment(exchange& ex, std::string_view key) {
  auto& req = ex.req;
  const auto version = req.version();
  constexpr auto route = route_id::cache_increment;
  if (req.method() != bhttp::verb::post) return refused(route, method_not_allowed(req, "POST"));
  if (!core::valid_id(key))
    return refused(
      route, invalid("invalid_key", "cache keys are 1 to 256 of [A-Za-z0-9_.:@-], not . or .."),
      version);
  if (auto target = req.target(); target.find('?') != std::string_view::npos)
    return refused(
      route, invalid("unknown_parameter", "an increment takes its arguments in its body"), version);
  cache::cache_increment inc;
  inc.key.assign(key);
  inc.ttl_ms = std::uint64_t{ex.env.cache_default_ttl_s} * 1000;
  if (!req.body().empty()) {
    if (auto err = check_json_media_type(req)) return refused(route, std::move(*err), version);
    auto parsed = parse_json(req.body(), ex.env);
    if (!parsed) return refused(route, std::move(parsed).error(), version);
    if (!parsed->is_object())
      return refused(route, invalid("invalid_increment", "the body must be a JSON object"),
                     version);
    // Boost.JSON keeps every integer that fits in 64 signed bits as an int64; a larger
    // one is a uint64, a fraction a double: neither is a count.
    for (const auto& [name, value] : parsed->as_object()) {
      if (name == "by") {
        if (!value.is_int64())
          return refused(
            route, invalid("invalid_increment", "by must be an integer (64-bit, signed)"), version);
        inc.by = value.get_int64();
      } else if (name == "ttl") {
        if (!value.is_int64() || value.get_int64() < 1
            || value.get_int64() > std::int64_t{ex.env.cache_max_ttl_s})
          return refused(route, invalid("invalid_ttl", ttl_range_message(ex.env)), version);
        inc.ttl_ms = static_cast<std::uint64_t>(value.get_int64()) * 1000;
      } else {
        return refused(
          route,
          invalid("unknown_field", "an increment takes by and ttl, not " + std::string(name)),
          version);
      }
    }
  }
  return {route, ask(ex, std::move(inc), ex.env.request_timeout_ms,
                     [version](core::result<cache::cache_count>&& r) {
                       return render(std::move(r), version, [&](cache::cache_count&& c) {
                         boost::json::object o;
                         o["value"] = c.value;
                         o["created"] = c.created;
                         auto res = plain_json(bhttp::status::ok, util::to_json(o), version);
                         res.set(bhttp::field::etag, etag(c.version));
                         res.set(bhttp::field::cache_control, "no-store");
                         return res;
                       });
                     })};
}

} // namespace shoal::http::detail
