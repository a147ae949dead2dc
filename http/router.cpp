// SPDX-License-Identifier: Apache-2.0
#include "http/router.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <initializer_list>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>

#include "actors/names.hpp"
#include "jobs/ids.hpp"

namespace shoal::http {

namespace bhttp = boost::beast::http;

namespace {

constexpr std::string_view json_type = "application/json";
constexpr std::string_view document_methods = "GET, HEAD, PUT, PATCH, DELETE";
constexpr std::string_view read_methods = "GET, HEAD";
constexpr std::string_view actor_methods = "POST";
constexpr std::string_view job_write_methods = "POST";

response method_not_allowed(std::string_view allow, unsigned version) {
  auto res = error_response(bhttp::status::method_not_allowed, "method_not_allowed",
                            "method not allowed on this route", version);
  res.set(bhttp::field::allow, allow);
  return res;
}

response plain_json(bhttp::status status, std::string body, unsigned version) {
  response res{status, version};
  res.set(bhttp::field::content_type, json_type);
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

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

/// 415 when the request names a Content-Type that is not JSON (none is fine).
std::optional<response> check_json_media_type(const request& req) {
  if (auto ct = req[bhttp::field::content_type]; !ct.empty() && !is_json_media_type(ct))
    return error_response(bhttp::status::unsupported_media_type, "unsupported_media_type",
                          "the body must be application/json", req.version());
  return std::nullopt;
}

/// Parses `text` as JSON no deeper than env.max_json_depth; 400 invalid_json on failure.
std::variant<boost::json::value, response> parse_json(std::string_view text, const route_env& env,
                                                      unsigned version,
                                                      boost::json::storage_ptr sp = {}) {
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

// -- jobs --------------------------------------------------------------------------------

constexpr std::uint32_t max_lease_jobs = 100;
constexpr std::uint32_t min_visibility_ms = 1000;
constexpr std::uint32_t max_visibility_ms = 43'200'000; // 12 hours
constexpr std::uint32_t default_visibility_ms = 30'000;
constexpr std::uint32_t max_wait_ms = 60'000;
constexpr std::uint32_t max_attempts_limit = 100;
constexpr std::uint32_t default_max_attempts = 5;
constexpr std::size_t max_job_type_length = 64;
constexpr std::size_t max_error_bytes = 4096;

response invalid_job(std::string_view message, unsigned version) {
  return error_response(bhttp::status::bad_request, "invalid_job", message, version);
}

response no_such_job(unsigned version) {
  return error_response(bhttp::status::not_found, "not_found", "no such job", version);
}

/// Job types: 1 to 64 of [A-Za-z0-9_.-].
bool valid_job_type(std::string_view type) noexcept {
  if (type.empty() || type.size() > max_job_type_length) return false;
  for (char c : type) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'
              || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

/// The value of `v` when it is an integer in [lo, hi]. A number written with a fraction
/// or exponent counts when its value is whole (1e3 is 1000; 1.5 is not an integer).
std::optional<std::uint64_t> integer_in(const boost::json::value& v, std::uint64_t lo,
                                        std::uint64_t hi) noexcept {
  std::uint64_t n = 0;
  if (v.is_uint64()) {
    n = v.get_uint64();
  } else if (v.is_int64()) {
    if (v.get_int64() < 0) return std::nullopt;
    n = static_cast<std::uint64_t>(v.get_int64());
  } else if (v.is_double()) {
    double d = v.get_double();
    // 2^64: larger values (and NaN, infinities, negatives) cannot be a uint64.
    if (!(d >= 0.0 && d < 18446744073709551616.0) || std::trunc(d) != d) return std::nullopt;
    n = static_cast<std::uint64_t>(d);
  } else {
    return std::nullopt;
  }
  if (n < lo || n > hi) return std::nullopt;
  return n;
}

std::string integer_range_message(std::string_view field, std::uint64_t lo, std::uint64_t hi) {
  std::string m(field);
  m += " must be an integer from ";
  m += std::to_string(lo);
  m += " to ";
  m += std::to_string(hi);
  return m;
}

/// Parses the JSON object body of a job route. `empty_ok`: an empty body is `{}`.
/// 415 for another media type, 400 invalid_json for bad JSON, 400 invalid_job for JSON
/// that is not an object, 400 unknown_field for a member not in `known`.
std::variant<boost::json::object, response>
parse_job_body(const request& req, const route_env& env, bool empty_ok,
               std::initializer_list<std::string_view> known) {
  auto version = req.version();
  if (auto err = check_json_media_type(req)) return std::move(*err);
  if (empty_ok && req.body().empty()) return boost::json::object{};
  auto parsed = parse_json(req.body(), env, version);
  if (auto* err = std::get_if<response>(&parsed)) return std::move(*err);
  auto& value = std::get<boost::json::value>(parsed);
  if (!value.is_object()) return invalid_job("the body must be a JSON object", version);
  auto& object = value.as_object();
  for (const auto& member : object) {
    bool is_known = false;
    for (auto k : known)
      if (member.key() == k) is_known = true;
    if (!is_known) {
      std::string message = "unknown field \"";
      message += std::string_view(member.key());
      message += '"';
      return error_response(bhttp::status::bad_request, "unknown_field", message, version);
    }
  }
  return std::move(object);
}

/// Reads the optional integer member `field` of `body` into `out` (left as is when
/// absent); an invalid_job response when it is not an integer in [lo, hi].
template <class Int>
std::optional<response> read_integer(const boost::json::object& body, std::string_view field,
                                     std::uint64_t lo, std::uint64_t hi, Int& out,
                                     unsigned version) {
  auto* v = body.if_contains(field);
  if (!v) return std::nullopt;
  auto n = integer_in(*v, lo, hi);
  if (!n) return invalid_job(integer_range_message(field, lo, hi), version);
  out = static_cast<Int>(*n);
  return std::nullopt;
}

routed route_enqueue(request& req, std::string_view queue, const route_env& env) {
  auto version = req.version();
  routed r{route_id::queue_jobs, response{}};
  if (req.method() != bhttp::verb::post) {
    r.outcome = method_not_allowed(job_write_methods, version);
    return r;
  }
  if (!actors::valid_name(queue)) {
    r.outcome = error_response(bhttp::status::bad_request, "invalid_name",
                               "queue names are 1 to 64 of [A-Za-z0-9_-]", version);
    return r;
  }
  auto parsed = parse_job_body(req, env, false,
                               {"type", "payload", "delay_ms", "max_attempts", "idempotency_key"});
  if (auto* err = std::get_if<response>(&parsed)) {
    r.outcome = std::move(*err);
    return r;
  }
  const auto& body = std::get<boost::json::object>(parsed);
  jobs::job_request jr;
  jr.op = jobs::job_op::enqueue;
  auto fail = [&r](response res) -> routed {
    r.outcome = std::move(res);
    return std::move(r);
  };
  auto* type = body.if_contains("type");
  if (!type || !type->is_string() || !valid_job_type(type->get_string()))
    return fail(invalid_job("type is required: a string of 1 to 64 of [A-Za-z0-9_.-]", version));
  jr.type.assign(type->get_string());
  if (auto* payload = body.if_contains("payload")) {
    if (!payload->is_object()) return fail(invalid_job("payload must be a JSON object", version));
    jr.body = boost::json::serialize(*payload);
  } else {
    jr.body = "{}";
  }
  jr.delay_ms = 0;
  if (auto err = read_integer(body, "delay_ms", 0, env.max_job_delay_ms, jr.delay_ms, version))
    return fail(std::move(*err));
  jr.max_attempts = default_max_attempts;
  if (auto err =
        read_integer(body, "max_attempts", 1, max_attempts_limit, jr.max_attempts, version))
    return fail(std::move(*err));
  if (auto* key = body.if_contains("idempotency_key")) {
    if (!key->is_string() || !actors::valid_id(key->get_string()))
      return fail(invalid_job(
        "idempotency_key must be a string of 1 to 256 of [A-Za-z0-9_.:@-], not . or ..", version));
    jr.key.assign(key->get_string());
  }
  jr.queue.assign(queue);
  r.outcome = job_invocation{std::move(jr)};
  return r;
}

routed route_queue_stats(const request& req, std::string_view queue) {
  auto version = req.version();
  routed r{route_id::queue, response{}};
  if (req.method() != bhttp::verb::get && req.method() != bhttp::verb::head) {
    r.outcome = method_not_allowed(read_methods, version);
    return r;
  }
  if (!actors::valid_name(queue)) {
    r.outcome = error_response(bhttp::status::bad_request, "invalid_name",
                               "queue names are 1 to 64 of [A-Za-z0-9_-]", version);
    return r;
  }
  jobs::job_request jr;
  jr.op = jobs::job_op::stats;
  jr.queue.assign(queue);
  r.outcome = job_invocation{std::move(jr)};
  return r;
}

routed route_lease(request& req, std::string_view queue, const route_env& env) {
  auto version = req.version();
  routed r{route_id::queue_lease, response{}};
  if (req.method() != bhttp::verb::post) {
    r.outcome = method_not_allowed(job_write_methods, version);
    return r;
  }
  if (!actors::valid_name(queue)) {
    r.outcome = error_response(bhttp::status::bad_request, "invalid_name",
                               "queue names are 1 to 64 of [A-Za-z0-9_-]", version);
    return r;
  }
  auto parsed = parse_job_body(req, env, true, {"max", "visibility_ms", "wait_ms"});
  if (auto* err = std::get_if<response>(&parsed)) {
    r.outcome = std::move(*err);
    return r;
  }
  const auto& body = std::get<boost::json::object>(parsed);
  jobs::job_request jr;
  jr.op = jobs::job_op::lease;
  jr.max = 1;
  jr.visibility_ms = default_visibility_ms;
  jr.wait_ms = 0;
  std::optional<response> err;
  if ((err = read_integer(body, "max", 1, max_lease_jobs, jr.max, version))
      || (err = read_integer(body, "visibility_ms", min_visibility_ms, max_visibility_ms,
                             jr.visibility_ms, version))
      || (err = read_integer(body, "wait_ms", 0, max_wait_ms, jr.wait_ms, version))) {
    r.outcome = std::move(*err);
    return r;
  }
  jr.queue.assign(queue);
  r.outcome = job_invocation{std::move(jr)};
  return r;
}

routed route_job_get(const request& req, std::string_view id) {
  auto version = req.version();
  routed r{route_id::job, response{}};
  if (req.method() != bhttp::verb::get && req.method() != bhttp::verb::head) {
    r.outcome = method_not_allowed(read_methods, version);
    return r;
  }
  if (!jobs::job_shard(id)) {
    r.outcome = no_such_job(version);
    return r;
  }
  jobs::job_request jr;
  jr.op = jobs::job_op::get;
  jr.id.assign(id);
  r.outcome = job_invocation{std::move(jr)};
  return r;
}

routed route_job_action(request& req, std::string_view id, std::string_view action,
                        const route_env& env) {
  auto version = req.version();
  jobs::job_request jr;
  if (action == "complete")
    jr.op = jobs::job_op::complete;
  else if (action == "fail")
    jr.op = jobs::job_op::fail;
  else if (action == "retry")
    jr.op = jobs::job_op::retry;
  else
    return {route_id::unknown,
            error_response(bhttp::status::not_found, "not_found", "no such route", version)};
  routed r{route_id::job_action, response{}};
  if (req.method() != bhttp::verb::post) {
    r.outcome = method_not_allowed(job_write_methods, version);
    return r;
  }
  if (!jobs::job_shard(id)) {
    r.outcome = no_such_job(version);
    return r;
  }
  auto fail = [&r](response res) -> routed {
    r.outcome = std::move(res);
    return std::move(r);
  };
  std::variant<boost::json::object, response> parsed;
  switch (jr.op) {
  case jobs::job_op::complete:
    parsed = parse_job_body(req, env, false, {"lease_id", "result"});
    break;
  case jobs::job_op::fail:
    parsed = parse_job_body(req, env, false, {"lease_id", "error", "retry"});
    break;
  default:
    parsed = parse_job_body(req, env, true, {});
  }
  if (auto* err = std::get_if<response>(&parsed)) return fail(std::move(*err));
  const auto& body = std::get<boost::json::object>(parsed);
  if (jr.op != jobs::job_op::retry) {
    auto* lease = body.if_contains("lease_id");
    if (!lease || !lease->is_string() || lease->get_string().empty())
      return fail(invalid_job("lease_id is required: a non-empty string", version));
    jr.key.assign(lease->get_string());
  }
  if (jr.op == jobs::job_op::complete) {
    auto* result = body.if_contains("result");
    jr.body = result ? boost::json::serialize(*result) : std::string("null");
  } else if (jr.op == jobs::job_op::fail) {
    jr.body = "failed";
    if (auto* error = body.if_contains("error")) {
      if (!error->is_string() || error->get_string().size() > max_error_bytes)
        return fail(invalid_job("error must be a string of at most 4096 bytes", version));
      jr.body.assign(error->get_string());
    }
    jr.retry = true;
    if (auto* retry = body.if_contains("retry")) {
      if (!retry->is_bool()) return fail(invalid_job("retry must be true or false", version));
      jr.retry = retry->get_bool();
    }
  }
  jr.id.assign(id);
  r.outcome = job_invocation{std::move(jr)};
  return r;
}

/// The id member of an enqueue reply's body, for its Location; empty when there is none.
std::string job_id_of(std::string_view body) {
  boost::json::error_code ec;
  auto v = boost::json::parse(body, ec);
  if (ec || !v.is_object()) return {};
  auto* id = v.as_object().if_contains("id");
  if (!id || !id->is_string()) return {};
  return std::string(id->get_string());
}

std::string stats_json(std::string_view queue, const jobs::job_counts& c) {
  boost::json::object counts;
  counts["queued"] = c.queued;
  counts["running"] = c.running;
  counts["succeeded"] = c.succeeded;
  counts["failed"] = c.failed;
  counts["dead"] = c.dead;
  boost::json::object out;
  out["queue"] = queue;
  out["counts"] = std::move(counts);
  if (c.oldest_queued_ms == 0) {
    out["oldest_queued_age_ms"] = nullptr;
  } else {
    auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
    auto now_ms = static_cast<std::uint64_t>(std::max<std::int64_t>(0, now));
    out["oldest_queued_age_ms"] = now_ms > c.oldest_queued_ms ? now_ms - c.oldest_queued_ms : 0;
  }
  return boost::json::serialize(out);
}

std::string lease_json(const std::vector<jobs::leased_job>& leased) {
  boost::json::array list;
  list.reserve(leased.size());
  for (const auto& job : leased) {
    boost::json::object o;
    o["id"] = job.id;
    o["type"] = job.type;
    // The payload was validated as a JSON object on enqueue; embed it as JSON.
    if (job.payload.empty()) {
      o["payload"] = boost::json::object{};
    } else {
      boost::json::error_code ec;
      auto payload = boost::json::parse(job.payload, ec);
      o["payload"] = ec ? boost::json::value(nullptr) : std::move(payload);
    }
    o["attempt"] = job.attempt;
    o["lease_id"] = job.lease_id;
    list.push_back(std::move(o));
  }
  boost::json::object out;
  out["jobs"] = std::move(list);
  return boost::json::serialize(out);
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
    if (s0 == "v1" && s1 == "queues") return route_queue_stats(req, name);
    if (s0 == "v1" && s1 == "jobs") return route_job_get(req, name);
  } else if (n == 4) {
    auto it = segs.begin();
    auto s0 = *it++;
    auto s1 = *it++;
    auto name = *it++;
    auto s3 = *it;
    if (s0 == "v1" && s1 == "queues") {
      if (s3 == "jobs") return route_enqueue(req, name, env);
      if (s3 == "lease") return route_lease(req, name, env);
    }
    if (s0 == "v1" && s1 == "jobs") return route_job_action(req, name, s3, env);
  } else if (n == 5) {
    auto it = segs.begin();
    auto s0 = *it++;
    auto s1 = *it++;
    auto collection = *it++;
    auto s3 = *it++;
    auto id = *it;
    if (s0 == "v1" && s1 == "collections" && s3 == "docs")
      return route_document(req, collection, id, env);
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
  return {route_id::unknown,
          error_response(bhttp::status::not_found, "not_found", "no such route", version)};
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
  }
  return error_response(bhttp::status::internal_server_error, "internal_error", "unknown reply",
                        version);
}

response render_job_reply(const job_invocation& call, jobs::job_reply&& reply, unsigned version) {
  using jobs::job_status;
  const auto& req = call.request;
  auto message = [&](std::string_view fallback) -> std::string_view {
    return reply.message.empty() ? fallback : std::string_view(reply.message);
  };
  switch (reply.status) {
  case job_status::ok:
    if (req.op == jobs::job_op::stats)
      return plain_json(bhttp::status::ok, stats_json(req.queue, reply.counts), version);
    if (req.op == jobs::job_op::lease)
      return plain_json(bhttp::status::ok, lease_json(reply.jobs), version);
    return plain_json(bhttp::status::ok, std::move(reply.body), version);
  case job_status::created:
  case job_status::existing: {
    auto id = job_id_of(reply.body);
    auto status = reply.status == job_status::created ? bhttp::status::accepted : bhttp::status::ok;
    auto res = plain_json(status, std::move(reply.body), version);
    if (!id.empty()) res.set(bhttp::field::location, "/v1/jobs/" + id);
    return res;
  }
  case job_status::not_found:
    return error_response(bhttp::status::not_found, "not_found", message("no such job"), version);
  case job_status::stale_lease:
    return error_response(bhttp::status::conflict, "stale_lease",
                          message("the lease does not hold the job"), version);
  case job_status::wrong_state:
    return error_response(bhttp::status::conflict, "wrong_state",
                          message("the job is not in a state that allows this"), version);
  case job_status::invalid:
    return error_response(bhttp::status::bad_request, "invalid_job",
                          message("the request cannot be served"), version);
  case job_status::storage_error:
    return error_response(bhttp::status::service_unavailable, "storage_unavailable",
                          message("the store failed"), version);
  case job_status::unavailable:
    return error_response(bhttp::status::service_unavailable, "shutting_down",
                          message("the node is shutting down"), version);
  case job_status::shard_unavailable:
    return error_response(bhttp::status::service_unavailable, "shard_unavailable",
                          message("the shard's node is not answering"), version);
  }
  return error_response(bhttp::status::internal_server_error, "internal_error", "unknown reply",
                        version);
}

} // namespace shoal::http
