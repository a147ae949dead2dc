// SPDX-License-Identifier: Apache-2.0
#include "http/router.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <vector>

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>

#include "http/auth.hpp"
#include "http/route_helpers.hpp"
#include "util/json.hpp"

namespace shoal::http {

namespace bhttp = boost::beast::http;

namespace {

constexpr std::string_view json_type = "application/json";

bool is_json_media_type(std::string_view content_type) {
  const auto media = media_type_of(content_type);
  return boost::beast::iequals(media, "application/json")
         || (media.size() > 5 && boost::beast::iequals(media.substr(media.size() - 5), "+json"));
}

} // namespace

// -- helpers of every route family (route_helpers.hpp) ------------------------------------

namespace detail {

response method_not_allowed(const request& req, std::string_view allow) {
  std::string methods(allow);
  methods += ", OPTIONS";
  if (req.method() == bhttp::verb::options) {
    response res{bhttp::status::no_content, req.version()};
    res.set(bhttp::field::allow, methods);
    if (allow.find("PATCH") != std::string_view::npos) res.set("Accept-Patch", accepted_patches);
    res.prepare_payload();
    return res;
  }
  auto res = error_response(bhttp::status::method_not_allowed, "method_not_allowed",
                            "method not allowed on this route", req.version());
  res.set(bhttp::field::allow, methods);
  return res;
}

std::string etag(std::uint64_t version) {
  std::string s;
  s.reserve(22);
  s += '"';
  s += std::to_string(version);
  s += '"';
  return s;
}

response no_such_route(unsigned version) {
  return error_response(bhttp::status::not_found, "not_found", "no such route", version);
}

response plain_json(bhttp::status status, std::string body, unsigned version) {
  response res{status, version};
  res.set(bhttp::field::content_type, json_type);
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

response no_content(unsigned version) {
  response res{bhttp::status::no_content, version};
  res.prepare_payload();
  return res;
}

std::optional<core::error> check_json_media_type(const request& req) {
  if (auto ct = req[bhttp::field::content_type]; !ct.empty() && !is_json_media_type(ct))
    return core::error{core::errc::unsupported, "the body must be application/json"};
  return std::nullopt;
}

core::result<boost::json::value> parse_json(std::string_view text, const route_env&,
                                            boost::json::storage_ptr sp) {
  boost::json::error_code ec;
  auto value = util::parse_json(text, ec, std::move(sp));
  if (ec) {
    std::string message = "the body is not valid JSON: " + ec.message();
    if (ec == boost::json::error::too_deep)
      message = "the body nests deeper than " + std::to_string(util::json_max_depth) + " levels";
    if (ec == boost::json::error::exponent_overflow)
      message = "a number in the body is too large for a JSON number (a double)";
    return invalid("invalid_json", message);
  }
  return value;
}

core::result<std::string> parse_object_body(const request& req, const route_env& env,
                                            std::string not_object) {
  if (auto err = check_json_media_type(req)) return std::move(*err);
  // A small arena keeps parsing of typical documents off the global heap.
  unsigned char buffer[4096];
  boost::json::monotonic_resource mr(buffer, sizeof(buffer));
  auto parsed = parse_json(req.body(), env, &mr);
  if (!parsed) return std::move(parsed).error();
  if (!parsed->is_object()) return invalid(std::move(not_object), "the body must be a JSON object");
  return util::to_json(*parsed);
}

} // namespace detail

using detail::method_not_allowed;
using detail::no_such_route;
using detail::plain_json;
using detail::read_methods;

namespace {

routed route_probe(const request& req, route_id id, const route_env& env) {
  auto version = req.version();
  routed r{id, response{}};
  if (req.method() != bhttp::verb::get && req.method() != bhttp::verb::head) {
    r.outcome = method_not_allowed(req, read_methods);
    return r;
  }
  switch (id) {
  case route_id::healthz:
    r.outcome = plain_json(bhttp::status::ok, R"({"status":"ok"})", version);
    break;
  case route_id::readyz:
    if (!env.ready || !env.ready()) {
      r.outcome = error_response(bhttp::status::service_unavailable, "not_ready",
                                 "the node is starting or shutting down", version);
    } else if (auto problem = env.write_problem ? env.write_problem() : std::string{};
               !problem.empty()) {
      r.outcome = error_response(bhttp::status::service_unavailable, "not_ready",
                                 "the store cannot write: " + problem, version);
    } else {
      r.outcome = plain_json(bhttp::status::ok, R"({"status":"ready"})", version);
    }
    break;
  case route_id::cluster: {
    auto view = env.cluster_view ? env.cluster_view() : nullptr;
    if (view)
      r.outcome = plain_json(bhttp::status::ok,
                             cluster_json(*view, std::chrono::steady_clock::now()), version);
    else
      r.outcome = error_response(bhttp::status::service_unavailable, "not_ready",
                                 "the node is starting", version);
    break;
  }
  default: {
    response res{bhttp::status::ok, version};
    res.set(bhttp::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    res.body() = env.metrics_text ? env.metrics_text() : std::string{};
    res.prepare_payload();
    r.outcome = std::move(res);
  }
  }
  return r;
}

} // namespace

const char* route_label(route_id r) noexcept {
  static constexpr std::array<const char*, route_count> labels{
    "/healthz",
    "/readyz",
    "/metrics",
    "/v1/cluster",
    "/v1/collections/{c}/docs/{id}",
    "/v1/actors/{type}/{id}/method/{method}",
    "/v1/queues/{q}/jobs",
    "/v1/queues/{q}",
    "/v1/queues/{q}/lease",
    "/v1/jobs/{id}",
    "/v1/jobs/{id}/{action}",
    "/v1/cache/{key}",
    "/v1/cache/{key}/increment",
    "/v1/collections/{c}/indexes",
    "/v1/collections/{c}/indexes/{field}",
    "/v1/collections/{c}/query",
    "/v1/collections/{c}/changes",
    "/v1/admin/replicas/{shard}",
    "unknown"};
  return labels[static_cast<std::size_t>(r)];
}

std::optional<documents::precondition> parse_entity_tags(std::string_view value, bool weak_match) {
  documents::precondition p;
  auto trim = [](std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
      s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
      s.remove_suffix(1);
    return s;
  };
  value = trim(value);
  if (value == "*") {
    p.what = documents::precondition::kind::any;
    return p;
  }
  p.what = documents::precondition::kind::versions;
  bool any_tag = false;
  while (!value.empty()) {
    bool weak = false;
    if (value.size() >= 2 && value[0] == 'W' && value[1] == '/') {
      weak = true;
      value.remove_prefix(2);
    }
    if (value.empty() || value.front() != '"') return std::nullopt;
    auto close = value.find('"', 1);
    if (close == std::string_view::npos) return std::nullopt;
    auto tag = value.substr(1, close - 1);
    value = trim(value.substr(close + 1));
    if (!value.empty()) {
      if (value.front() != ',') return std::nullopt;
      value = trim(value.substr(1));
    }
    any_tag = true;
    if (weak && !weak_match) continue;
    std::uint64_t v = 0;
    auto [end, ec] = std::from_chars(tag.data(), tag.data() + tag.size(), v);
    if (ec == std::errc{} && end == tag.data() + tag.size() && !tag.empty())
      p.versions.push_back(v);
  }
  if (!any_tag) return std::nullopt;
  return p;
}

std::string cluster_json(const cluster::cluster_view& view,
                         std::chrono::steady_clock::time_point now) {
  boost::json::array nodes;
  for (const auto& m : view.nodes) {
    boost::json::object o;
    o["id"] = m.id;
    o["state"] = cluster::to_string(m.state);
    o["http"] = m.http;
    if (m.id == view.self) {
      o["last_heartbeat_ms"] = 0; // a node hears itself all the time
    } else if (m.last_heartbeat) {
      auto age = std::chrono::duration_cast<std::chrono::milliseconds>(now - *m.last_heartbeat);
      o["last_heartbeat_ms"] = std::max<std::int64_t>(0, age.count());
    } else {
      o["last_heartbeat_ms"] = nullptr;
    }
    if (!m.reason.empty()) o["reason"] = m.reason;
    nodes.push_back(std::move(o));
  }
  boost::json::object owners;
  for (std::size_t s = 0; s < view.shard_owners.size(); ++s) {
    // A replicated shard without a leader has no owner for now.
    if (view.shard_owners[s].empty())
      owners[std::to_string(s)] = nullptr;
    else
      owners[std::to_string(s)] = view.shard_owners[s];
  }
  boost::json::object shards;
  shards["count"] = view.shard_owners.size();
  shards["owners"] = std::move(owners);
  if (!view.replicas.empty()) {
    boost::json::object replicas;
    for (std::size_t s = 0; s < view.replicas.size(); ++s) {
      const auto& g = view.replicas[s];
      boost::json::object o;
      if (g.leader.empty())
        o["leader"] = nullptr;
      else
        o["leader"] = g.leader;
      boost::json::array voters;
      for (const auto& v : g.voters)
        voters.emplace_back(v);
      o["voters"] = std::move(voters);
      o["term"] = g.term;
      o["commit_index"] = g.commit_index;
      o["applied_index"] = g.applied_index;
      boost::json::object lag;
      for (const auto& f : g.followers)
        lag[f.node] = f.entries;
      o["follower_lag"] = std::move(lag);
      replicas[std::to_string(s)] = std::move(o);
    }
    shards["replicas"] = std::move(replicas);
  }
  boost::json::object out;
  out["node"] = view.self;
  out["ready"] = view.ready;
  out["nodes"] = std::move(nodes);
  out["shards"] = std::move(shards);
  return util::to_json(out);
}

namespace {

/// Runs `handler` when the request's token holds `need` (or auth is off); otherwise the
/// refusal, counted under `id`. OPTIONS is open: it tells only which methods a route
/// takes, and a browser's preflight carries no credentials.
template <class Handler>
routed guarded(exchange& ex, route_id id, scope need, Handler&& handler) {
  if (ex.req.method() != bhttp::verb::options)
    if (auto refused = authorize(ex.req, ex.env.tokens.get(), need))
      return {id, std::move(*refused)};
  return handler();
}

/// Reading an index's definition is data; creating or dropping one is admin.
scope index_scope(const request& req) {
  auto m = req.method();
  return m == bhttp::verb::get || m == bhttp::verb::head ? scope::data : scope::admin;
}

} // namespace

routed route(exchange& ex) {
  auto& req = ex.req;
  auto version = req.version();
  auto parsed = boost::urls::parse_origin_form(req.target());
  if (!parsed)
    return {
      route_id::unknown,
      error_response(invalid("invalid_target", "the request target is not a valid path"), version)};
  auto segs = parsed->segments();
  auto n = segs.size();
  std::string_view s[6];
  std::size_t i = 0;
  std::vector<std::string> decoded; // percent-decoded segments, kept alive while routing
  decoded.reserve(n);
  for (auto seg : segs) {
    if (i == 6) break;
    decoded.push_back(std::string(seg));
    s[i++] = decoded.back();
  }
  const auto& env = ex.env;
  // Each route states the scope it needs (docs/api.md "Authentication"); the probes are
  // open, so a load balancer needs no token.
  using r = route_id;
  constexpr auto data = scope::data;
  if (n == 1) {
    if (s[0] == "healthz") return route_probe(req, r::healthz, env);
    if (s[0] == "readyz") return route_probe(req, r::readyz, env);
    if (s[0] == "metrics")
      return guarded(ex, r::metrics, scope::metrics,
                     [&] { return route_probe(req, r::metrics, env); });
  } else if (n == 2) {
    if (s[0] == "v1" && s[1] == "cluster")
      return guarded(ex, r::cluster, scope::metrics,
                     [&] { return route_probe(req, r::cluster, env); });
  } else if (n == 3 && s[0] == "v1") {
    if (s[1] == "queues")
      return guarded(ex, r::queue, data, [&] { return detail::route_queue_stats(ex, s[2]); });
    if (s[1] == "cache")
      return guarded(ex, r::cache, data, [&] { return detail::route_cache(ex, s[2]); });
    if (s[1] == "jobs")
      return guarded(ex, r::job, data, [&] { return detail::route_job_get(ex, s[2]); });
  } else if (n == 4 && s[0] == "v1") {
    if (s[1] == "queues" && s[3] == "jobs")
      return guarded(ex, r::queue_jobs, data, [&] { return detail::route_queue_jobs(ex, s[2]); });
    if (s[1] == "queues" && s[3] == "lease")
      return guarded(ex, r::queue_lease, data, [&] { return detail::route_lease(ex, s[2]); });
    if (s[1] == "jobs")
      // A worker completes and fails its own leases; sending a dead job back is admin's.
      return guarded(ex, r::job_action, s[3] == "retry" ? scope::admin : data,
                     [&] { return detail::route_job_action(ex, s[2], s[3]); });
    if (s[1] == "cache" && s[3] == "increment")
      return guarded(ex, r::cache_increment, data,
                     [&] { return detail::route_cache_increment(ex, s[2]); });
    if (s[1] == "admin" && s[2] == "replicas")
      return guarded(ex, r::replica, scope::admin, [&] { return detail::route_replica(ex, s[3]); });
    if (s[1] == "collections" && s[3] == "indexes")
      return guarded(ex, r::indexes, data, [&] { return detail::route_index_list(ex, s[2]); });
    if (s[1] == "collections" && s[3] == "query")
      return guarded(ex, r::query, data, [&] { return detail::route_query(ex, s[2]); });
    if (s[1] == "collections" && s[3] == "changes")
      return guarded(ex, r::changes, data, [&] { return detail::route_changes(ex, s[2]); });
  } else if (n == 5 && s[0] == "v1" && s[1] == "collections") {
    if (s[3] == "docs")
      return guarded(ex, r::document, data, [&] { return detail::route_document(ex, s[2], s[4]); });
    if (s[3] == "indexes")
      return guarded(ex, r::index, index_scope(req),
                     [&] { return detail::route_index(ex, s[2], s[4]); });
  } else if (n == 6 && s[0] == "v1" && s[1] == "actors" && s[4] == "method") {
    return guarded(ex, r::actor, data, [&] { return detail::route_actor(ex, s[2], s[3], s[5]); });
  }
  return {route_id::unknown, no_such_route(version)};
}

} // namespace shoal::http
