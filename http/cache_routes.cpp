// SPDX-License-Identifier: Apache-2.0
// The TTL cache routes (docs/caching.md): GET, HEAD, PUT and DELETE of /v1/cache/{key},
// from a request to an actors::cache_request with every check the edge makes of the key,
// the query and the body, and from an actors::cache_reply to a response.
#include "http/router.hpp"

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <variant>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/url/parse.hpp>

#include "actors/names.hpp"
#include "http/route_helpers.hpp"

namespace shoal::http {

namespace bhttp = boost::beast::http;

using detail::method_not_allowed;

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
std::variant<cache_query, response> parse_cache_query(const request& req, const route_env& env) {
  auto version = req.version();
  cache_query out;
  auto url = boost::urls::parse_origin_form(req.target());
  if (!url) // route() parsed the same target already; kept for safety
    return error_response(bhttp::status::bad_request, "invalid_target",
                          "the request target is not a valid path", version);
  if (!url->has_query()) return out;
  const bool is_put = req.method() == bhttp::verb::put;
  for (auto param : url->params()) {
    if (param.key.empty() && param.value.empty()) continue;
    if (is_put && param.key == "ttl") {
      if (out.ttl || !param.has_value)
        return error_response(bhttp::status::bad_request, "invalid_ttl",
                              ttl_range_message(env) + ", given once", version);
      out.ttl = std::move(param.value);
      continue;
    }
    std::string message = "unknown query parameter \"" + param.key + "\" (";
    message += is_put ? "PUT takes only ttl)" : "only PUT takes a query: ttl)";
    return error_response(bhttp::status::bad_request, "unknown_parameter", message, version);
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

/// 204 No Content: a put, or a delete.
response no_content(unsigned version) {
  response res{bhttp::status::no_content, version};
  res.prepare_payload();
  return res;
}

} // namespace

namespace detail {

routed route_cache(request& req, std::string_view key, const route_env& env) {
  auto version = req.version();
  routed r{route_id::cache, response{}};
  actors::cache_request cr;
  switch (req.method()) {
  case bhttp::verb::get:
  case bhttp::verb::head: // the session drops the body of HEAD responses
    cr.op = actors::cache_op::get;
    break;
  case bhttp::verb::put:
    cr.op = actors::cache_op::put;
    break;
  case bhttp::verb::delete_:
    cr.op = actors::cache_op::del;
    break;
  default:
    r.outcome = method_not_allowed(cache_methods, version);
    return r;
  }
  if (!actors::valid_id(key)) {
    r.outcome = error_response(bhttp::status::bad_request, "invalid_key",
                               "cache keys are 1 to 256 of [A-Za-z0-9_.:@-], not . or ..", version);
    return r;
  }
  auto query = parse_cache_query(req, env);
  if (auto* err = std::get_if<response>(&query)) {
    r.outcome = std::move(*err);
    return r;
  }
  if (cr.op == actors::cache_op::put) {
    std::uint32_t ttl_s = env.cache_default_ttl_s;
    if (const auto& ttl = std::get<cache_query>(query).ttl) {
      auto parsed = parse_ttl(*ttl, env);
      if (!parsed) {
        r.outcome = error_response(bhttp::status::bad_request, "invalid_ttl",
                                   ttl_range_message(env), version);
        return r;
      }
      ttl_s = *parsed;
    }
    if (req.body().size() > env.cache_max_value_bytes) {
      r.outcome =
        error_response(bhttp::status::payload_too_large, "value_too_large",
                       "cache values are at most " + std::to_string(env.cache_max_value_bytes)
                         + " bytes (cache.max_value_bytes)",
                       version);
      return r;
    }
    std::string_view content_type = req[bhttp::field::content_type];
    cr.content_type.assign(content_type.empty() ? default_content_type : content_type);
    cr.value = std::move(req.body());
    cr.ttl_ms = std::uint64_t{ttl_s} * 1000;
  }
  cr.key.assign(key);
  r.outcome = cache_invocation{std::move(cr)};
  return r;
}

} // namespace detail

response render_cache_reply(const cache_invocation& call, actors::cache_reply&& reply,
                            unsigned version) {
  using actors::cache_status;
  const auto op = call.request.op;
  auto message = [&](std::string_view fallback) -> std::string_view {
    return reply.message.empty() ? fallback : std::string_view(reply.message);
  };
  switch (reply.status) {
  case cache_status::ok: {
    if (op != actors::cache_op::get) return no_content(version);
    response res{bhttp::status::ok, version};
    res.set(bhttp::field::content_type, reply.content_type.empty()
                                          ? default_content_type
                                          : std::string_view(reply.content_type));
    // Session-like data: no shared or private cache in between should keep a copy.
    res.set(bhttp::field::cache_control, "no-store");
    res.body() = std::move(reply.value);
    res.prepare_payload();
    return res;
  }
  case cache_status::not_found:
    // DELETE is idempotent: removing what is not there (never stored, expired, evicted)
    // ends as removing it does.
    if (op == actors::cache_op::del) return no_content(version);
    return error_response(bhttp::status::not_found, "not_found", message("no such cache entry"),
                          version);
  case cache_status::too_large:
    return error_response(bhttp::status::payload_too_large, "value_too_large",
                          message("the value is over the shard's share of cache.max_bytes"),
                          version);
  case cache_status::unavailable:
    return error_response(bhttp::status::service_unavailable, "shutting_down",
                          message("the node is shutting down"), version);
  case cache_status::shard_unavailable:
    return error_response(bhttp::status::service_unavailable, "shard_unavailable",
                          message("the shard's node is not answering"), version);
  }
  return error_response(bhttp::status::internal_server_error, "internal_error", "unknown reply",
                        version);
}

} // namespace shoal::http
