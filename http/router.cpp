// SPDX-License-Identifier: Apache-2.0
#include "http/router.hpp"

#include <algorithm>
#include <array>
#include <charconv>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>

#include "actors/names.hpp"
#include "http/route_helpers.hpp"

namespace shoal::http {

namespace bhttp = boost::beast::http;

namespace {

constexpr std::string_view json_type = "application/json";

bool is_json_media_type(std::string_view content_type) {
  auto semi = content_type.find(';');
  auto media = content_type.substr(0, semi);
  while (!media.empty() && media.back() == ' ')
    media.remove_suffix(1);
  auto lower_equals = [](std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
      if (std::tolower(static_cast<unsigned char>(a[i])) != b[i]) return false;
    return true;
  };
  return lower_equals(media, "application/json")
         || (media.size() > 5 && lower_equals(media.substr(media.size() - 5), "+json"));
}

} // namespace

// -- helpers shared with job_routes.cpp (route_helpers.hpp) ------------------------------

namespace detail {

response method_not_allowed(std::string_view allow, unsigned version) {
  auto res = error_response(bhttp::status::method_not_allowed, "method_not_allowed",
                            "method not allowed on this route", version);
  res.set(bhttp::field::allow, allow);
  return res;
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

std::optional<response> check_json_media_type(const request& req) {
  if (auto ct = req[bhttp::field::content_type]; !ct.empty() && !is_json_media_type(ct))
    return error_response(bhttp::status::unsupported_media_type, "unsupported_media_type",
                          "the body must be application/json", req.version());
  return std::nullopt;
}

std::variant<boost::json::value, response> parse_json(std::string_view text, const route_env& env,
                                                      unsigned version,
                                                      boost::json::storage_ptr sp) {
  boost::json::parse_options opts;
  opts.max_depth = env.max_json_depth;
  boost::json::error_code ec;
  auto value = boost::json::parse(text, ec, std::move(sp), opts);
  if (ec) {
    std::string message = "the body is not valid JSON: " + ec.message();
    if (ec == boost::json::error::too_deep)
      message = "the body nests deeper than " + std::to_string(env.max_json_depth) + " levels";
    return error_response(bhttp::status::bad_request, "invalid_json", message, version);
  }
  return value;
}

} // namespace detail

using detail::check_json_media_type;
using detail::method_not_allowed;
using detail::no_such_route;
using detail::parse_json;
using detail::plain_json;
using detail::read_methods;

namespace {

constexpr std::string_view document_methods = "GET, HEAD, PUT, PATCH, DELETE";
constexpr std::string_view actor_methods = "POST";

/// Parses and normalizes a body that must be a JSON object; an error response on failure.
/// `not_object_code` is the error code for valid JSON that is not an object.
std::variant<std::string, response>
parse_object_body(const request& req, const route_env& env,
                  std::string_view not_object_code = "invalid_document") {
  auto version = req.version();
  if (auto err = check_json_media_type(req)) return std::move(*err);
  // A small arena keeps parsing of typical documents off the global heap.
  unsigned char buffer[4096];
  boost::json::monotonic_resource mr(buffer, sizeof(buffer));
  auto parsed = parse_json(req.body(), env, version, &mr);
  if (auto* err = std::get_if<response>(&parsed)) return std::move(*err);
  const auto& value = std::get<boost::json::value>(parsed);
  if (!value.is_object())
    return error_response(bhttp::status::bad_request, not_object_code,
                          "the body must be a JSON object", version);
  return boost::json::serialize(value);
}

std::optional<response> parse_preconditions(const request& req, actors::doc_request& out) {
  if (auto h = req.find(bhttp::field::if_match); h != req.end()) {
    auto p = parse_entity_tags(h->value(), false);
    if (!p)
      return error_response(bhttp::status::bad_request, "invalid_header",
                            "If-Match must be \"*\" or a list of quoted entity tags",
                            req.version());
    out.if_match = std::move(*p);
  }
  if (auto h = req.find(bhttp::field::if_none_match); h != req.end()) {
    auto p = parse_entity_tags(h->value(), true);
    if (!p)
      return error_response(bhttp::status::bad_request, "invalid_header",
                            "If-None-Match must be \"*\" or a list of quoted entity tags",
                            req.version());
    out.if_none_match = std::move(*p);
  }
  return std::nullopt;
}

routed route_document(request& req, std::string_view collection, std::string_view id,
                      const route_env& env) {
  auto version = req.version();
  routed r{route_id::document, response{}};
  actors::doc_request dr;
  switch (req.method()) {
  case bhttp::verb::get:
  case bhttp::verb::head: // the session drops the body of HEAD responses
    dr.op = actors::doc_op::get;
    break;
  case bhttp::verb::put:
    dr.op = actors::doc_op::put;
    break;
  case bhttp::verb::patch:
    dr.op = actors::doc_op::patch;
    break;
  case bhttp::verb::delete_:
    dr.op = actors::doc_op::del;
    break;
  default:
    r.outcome = method_not_allowed(document_methods, version);
    return r;
  }
  if (!actors::valid_name(collection)) {
    r.outcome = error_response(bhttp::status::bad_request, "invalid_name",
                               "collection names are 1 to 64 of [A-Za-z0-9_-]", version);
    return r;
  }
  if (!actors::valid_id(id)) {
    r.outcome =
      error_response(bhttp::status::bad_request, "invalid_name",
                     "document ids are 1 to 256 of [A-Za-z0-9_.:@-], not . or ..", version);
    return r;
  }
  if (auto err = parse_preconditions(req, dr)) {
    r.outcome = std::move(*err);
    return r;
  }
  if (dr.op == actors::doc_op::put || dr.op == actors::doc_op::patch) {
    auto body = parse_object_body(req, env);
    if (auto* err = std::get_if<response>(&body)) {
      r.outcome = std::move(*err);
      return r;
    }
    dr.body = std::move(std::get<std::string>(body));
  }
  dr.collection.assign(collection);
  dr.id.assign(id);
  r.outcome = doc_call{std::move(dr)};
  return r;
}

routed route_actor(request& req, std::string_view type, std::string_view id,
                   std::string_view method, const route_env& env) {
  auto version = req.version();
  routed r{route_id::actor, response{}};
  if (req.method() != bhttp::verb::post) {
    r.outcome = method_not_allowed(actor_methods, version);
    return r;
  }
  if (!actors::valid_name(type) || !actors::valid_name(method)) {
    r.outcome = error_response(bhttp::status::bad_request, "invalid_name",
                               "actor types and methods are 1 to 64 of [A-Za-z0-9_-]", version);
    return r;
  }
  if (!actors::valid_id(id)) {
    r.outcome = error_response(bhttp::status::bad_request, "invalid_name",
                               "actor ids are 1 to 256 of [A-Za-z0-9_.:@-], not . or ..", version);
    return r;
  }
  actors::actor_call call;
  if (req.body().empty()) {
    call.args = "{}";
  } else {
    auto body = parse_object_body(req, env, "invalid_args");
    if (auto* err = std::get_if<response>(&body)) {
      r.outcome = std::move(*err);
      return r;
    }
    call.args = std::move(std::get<std::string>(body));
  }
  call.type.assign(type);
  call.id.assign(id);
  call.method.assign(method);
  call.budget_ms = env.actor_call_timeout_ms;
  r.outcome = actor_invocation{std::move(call)};
  return r;
}

routed route_probe(const request& req, route_id id, const route_env& env) {
  auto version = req.version();
  routed r{id, response{}};
  if (req.method() != bhttp::verb::get && req.method() != bhttp::verb::head) {
    r.outcome = method_not_allowed(read_methods, version);
    return r;
  }
  switch (id) {
  case route_id::healthz:
    r.outcome = plain_json(bhttp::status::ok, R"({"status":"ok"})", version);
    break;
  case route_id::readyz:
    if (env.ready && env.ready())
      r.outcome = plain_json(bhttp::status::ok, R"({"status":"ready"})", version);
    else
      r.outcome = error_response(bhttp::status::service_unavailable, "not_ready",
                                 "the node is starting or shutting down", version);
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

std::string id_version_body(std::string_view id, std::uint64_t version) {
  boost::json::object o;
  o["id"] = id;
  o["version"] = version;
  return boost::json::serialize(o);
}

std::string etag(std::uint64_t version) {
  std::string s;
  s.reserve(22);
  s += '"';
  s += std::to_string(version);
  s += '"';
  return s;
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
    "/v1/collections/{c}/indexes",
    "/v1/collections/{c}/indexes/{field}",
    "/v1/collections/{c}/query",
    "/v1/collections/{c}/changes",
    "unknown"};
  return labels[static_cast<std::size_t>(r)];
}

std::optional<actors::precondition> parse_entity_tags(std::string_view value, bool weak_match) {
  actors::precondition p;
  auto trim = [](std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
      s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
      s.remove_suffix(1);
    return s;
  };
  value = trim(value);
  if (value == "*") {
    p.what = actors::precondition::kind::any;
    return p;
  }
  p.what = actors::precondition::kind::versions;
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

response error_response(bhttp::status status, std::string_view code, std::string_view message,
                        unsigned version) {
  boost::json::object inner;
  inner["code"] = code;
  inner["message"] = message;
  boost::json::object outer;
  outer["error"] = std::move(inner);
  auto res = plain_json(status, boost::json::serialize(outer), version);
  if (status == bhttp::status::service_unavailable || status == bhttp::status::gateway_timeout
      || status == bhttp::status::too_many_requests)
    res.set(bhttp::field::retry_after, "1");
  return res;
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
  for (std::size_t s = 0; s < view.shard_owners.size(); ++s)
    owners[std::to_string(s)] = view.shard_owners[s];
  boost::json::object shards;
  shards["count"] = view.shard_owners.size();
  shards["owners"] = std::move(owners);
  boost::json::object out;
  out["node"] = view.self;
  out["ready"] = view.ready;
  out["nodes"] = std::move(nodes);
  out["shards"] = std::move(shards);
  return boost::json::serialize(out);
}

routed route(request& req, const route_env& env) {
  auto version = req.version();
  auto parsed = boost::urls::parse_origin_form(req.target());
  if (!parsed)
    return {route_id::unknown, error_response(bhttp::status::bad_request, "invalid_target",
                                              "the request target is not a valid path", version)};
  auto segs = parsed->segments();
  auto n = segs.size();
  if (n == 1) {
    auto s = *segs.begin();
    if (s == "healthz") return route_probe(req, route_id::healthz, env);
    if (s == "readyz") return route_probe(req, route_id::readyz, env);
    if (s == "metrics") return route_probe(req, route_id::metrics, env);
  } else if (n == 2) {
    auto it = segs.begin();
    if (*it++ == "v1" && *it == "cluster") return route_probe(req, route_id::cluster, env);
  } else if (n == 3) {
    auto it = segs.begin();
    auto s0 = *it++;
    auto s1 = *it++;
    auto name = *it;
    if (s0 == "v1" && s1 == "queues") return detail::route_queue_stats(req, name);
    if (s0 == "v1" && s1 == "cache") return detail::route_cache(req, name, env);
    if (s0 == "v1" && s1 == "jobs") return detail::route_job_get(req, name);
  } else if (n == 4) {
    auto it = segs.begin();
    auto s0 = *it++;
    auto s1 = *it++;
    auto name = *it++;
    auto s3 = *it;
    if (s0 == "v1" && s1 == "queues") {
      if (s3 == "jobs") return detail::route_enqueue(req, name, env);
      if (s3 == "lease") return detail::route_lease(req, name, env);
    }
    if (s0 == "v1" && s1 == "jobs") return detail::route_job_action(req, name, s3, env);
    if (s0 == "v1" && s1 == "collections") {
      if (s3 == "indexes") return detail::route_index_list(req, name);
      if (s3 == "query") return detail::route_query(req, name, env);
      if (s3 == "changes") return detail::route_changes(req, name, env);
    }
  } else if (n == 5) {
    auto it = segs.begin();
    auto s0 = *it++;
    auto s1 = *it++;
    auto collection = *it++;
    auto s3 = *it++;
    auto id = *it;
    if (s0 == "v1" && s1 == "collections" && s3 == "docs")
      return route_document(req, collection, id, env);
    if (s0 == "v1" && s1 == "collections" && s3 == "indexes")
      return detail::route_index(req, collection, id, env);
  } else if (n == 6) {
    auto it = segs.begin();
    auto s0 = *it++;
    auto s1 = *it++;
    auto type = *it++;
    auto id = *it++;
    auto s4 = *it++;
    auto method = *it;
    if (s0 == "v1" && s1 == "actors" && s4 == "method")
      return route_actor(req, type, id, method, env);
  }
  return {route_id::unknown, no_such_route(version)};
}

response render_actor_reply(actors::actor_reply&& reply, unsigned version) {
  if (reply.ok()) return plain_json(bhttp::status::ok, std::move(reply.body), version);
  return error_response(static_cast<bhttp::status>(reply.status), reply.code, reply.message,
                        version);
}

response render_doc_reply(const doc_call& call, actors::doc_reply&& reply, unsigned version) {
  using actors::doc_status;
  const auto& req = call.request;
  switch (reply.status) {
  case doc_status::ok: {
    if (req.op == actors::doc_op::del) {
      response res{bhttp::status::no_content, version};
      res.prepare_payload();
      return res;
    }
    response res;
    if (req.op == actors::doc_op::get) {
      res = plain_json(bhttp::status::ok, std::move(reply.body), version);
    } else {
      res = plain_json(bhttp::status::ok, id_version_body(req.id, reply.version), version);
    }
    res.set(bhttp::field::etag, etag(reply.version));
    return res;
  }
  case doc_status::created: {
    auto res = plain_json(bhttp::status::created, id_version_body(req.id, reply.version), version);
    res.set(bhttp::field::etag, etag(reply.version));
    res.set(bhttp::field::location, "/v1/collections/" + req.collection + "/docs/" + req.id);
    return res;
  }
  case doc_status::not_modified: {
    response res{bhttp::status::not_modified, version};
    res.set(bhttp::field::etag, etag(reply.version));
    return res;
  }
  case doc_status::not_found:
    return error_response(bhttp::status::not_found, "not_found", "no such document", version);
  case doc_status::precondition_failed:
    return error_response(bhttp::status::precondition_failed, "precondition_failed", reply.message,
                          version);
  case doc_status::invalid_document:
    return error_response(bhttp::status::internal_server_error, "internal_error", reply.message,
                          version);
  case doc_status::storage_error:
    return error_response(bhttp::status::service_unavailable, "storage_unavailable", reply.message,
                          version);
  case doc_status::unavailable:
    return error_response(bhttp::status::service_unavailable, "shutting_down", reply.message,
                          version);
  case doc_status::shard_unavailable:
    return error_response(bhttp::status::service_unavailable, "shard_unavailable", reply.message,
                          version);
  case doc_status::bad_request:
    return error_response(bhttp::status::bad_request, reply.code, reply.message, version);
  case doc_status::gone:
    return error_response(bhttp::status::gone, "gone", reply.message, version);
  }
  return error_response(bhttp::status::internal_server_error, "internal_error", "unknown reply",
                        version);
}

} // namespace shoal::http
