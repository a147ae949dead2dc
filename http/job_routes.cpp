// SPDX-License-Identifier: Apache-2.0
// The job queue routes (docs/jobs.md): from a request to a jobs::job_request, with every
// check the edge makes of targets and bodies, and from a jobs::job_reply to a response.
#include "http/router.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/json.hpp>

#include "actors/names.hpp"
#include "http/route_helpers.hpp"
#include "jobs/ids.hpp"

namespace shoal::http {

namespace bhttp = boost::beast::http;

using detail::check_json_media_type;
using detail::method_not_allowed;
using detail::parse_json;
using detail::plain_json;

namespace {

constexpr std::string_view write_methods = "POST";

constexpr std::uint32_t max_lease_jobs = 100;
constexpr std::uint32_t min_visibility_ms = 1000;
constexpr std::uint32_t max_visibility_ms = 43'200'000; // 12 hours
constexpr std::uint32_t default_visibility_ms = 30'000;
constexpr std::uint32_t max_wait_ms = 60'000;
constexpr std::uint32_t max_attempts_limit = 100;
constexpr std::uint32_t default_max_attempts = 5;
constexpr std::size_t max_job_type_length = 64;
constexpr std::size_t max_error_bytes = 4096;

/// The methods a job route takes: GET and HEAD (read), or POST (write).
enum class access { read, write };

/// The job request a route built, or the response that refused the request.
using job_or_error = std::variant<jobs::job_request, response>;

/// The outcome of route `id`: a job call, or the error as is.
routed routed_job(route_id id, job_or_error built) {
  routed r{id, response{}};
  if (auto* err = std::get_if<response>(&built))
    r.outcome = std::move(*err);
  else
    r.outcome = job_invocation{std::move(std::get<jobs::job_request>(built))};
  return r;
}

/// 405 with the Allow of `a` unless the method of `req` is one of `a`.
std::optional<response> check_method(const request& req, access a) {
  auto m = req.method();
  bool allowed =
    a == access::read ? (m == bhttp::verb::get || m == bhttp::verb::head) : m == bhttp::verb::post;
  if (allowed) return std::nullopt;
  return method_not_allowed(a == access::read ? detail::read_methods : write_methods,
                            req.version());
}

/// The checks every queue route starts with: the method, then the queue name.
std::optional<response> check_queue_route(const request& req, access a, std::string_view queue) {
  if (auto err = check_method(req, a)) return err;
  if (!actors::valid_name(queue))
    return error_response(bhttp::status::bad_request, "invalid_name",
                          "queue names are 1 to 64 of [A-Za-z0-9_-]", req.version());
  return std::nullopt;
}

/// The checks every route of one job starts with: the method, then the id (404 for an id
/// that is not a job id: no such job can exist).
std::optional<response> check_job_route(const request& req, access a, std::string_view id) {
  if (auto err = check_method(req, a)) return err;
  if (!jobs::job_shard(id))
    return error_response(bhttp::status::not_found, "not_found", "no such job", req.version());
  return std::nullopt;
}

response invalid_job(std::string_view message, unsigned version) {
  return error_response(bhttp::status::bad_request, "invalid_job", message, version);
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

job_or_error enqueue_request(const request& req, std::string_view queue, const route_env& env) {
  auto version = req.version();
  if (auto err = check_queue_route(req, access::write, queue)) return std::move(*err);
  auto parsed = parse_job_body(req, env, false,
                               {"type", "payload", "delay_ms", "max_attempts", "idempotency_key"});
  if (auto* err = std::get_if<response>(&parsed)) return std::move(*err);
  const auto& body = std::get<boost::json::object>(parsed);
  jobs::job_request jr;
  jr.op = jobs::job_op::enqueue;
  auto* type = body.if_contains("type");
  if (!type || !type->is_string() || !valid_job_type(type->get_string()))
    return invalid_job("type is required: a string of 1 to 64 of [A-Za-z0-9_.-]", version);
  jr.type.assign(type->get_string());
  if (auto* payload = body.if_contains("payload")) {
    if (!payload->is_object()) return invalid_job("payload must be a JSON object", version);
    jr.body = boost::json::serialize(*payload);
  } else {
    jr.body = "{}";
  }
  jr.delay_ms = 0;
  jr.max_attempts = default_max_attempts;
  std::optional<response> err;
  if ((err = read_integer(body, "delay_ms", 0, env.max_job_delay_ms, jr.delay_ms, version))
      || (err =
            read_integer(body, "max_attempts", 1, max_attempts_limit, jr.max_attempts, version)))
    return std::move(*err);
  if (auto* key = body.if_contains("idempotency_key")) {
    if (!key->is_string() || !actors::valid_id(key->get_string()))
      return invalid_job(
        "idempotency_key must be a string of 1 to 256 of [A-Za-z0-9_.:@-], not . or ..", version);
    jr.key.assign(key->get_string());
  }
  jr.queue.assign(queue);
  return jr;
}

job_or_error stats_request(const request& req, std::string_view queue) {
  if (auto err = check_queue_route(req, access::read, queue)) return std::move(*err);
  jobs::job_request jr;
  jr.op = jobs::job_op::stats;
  jr.queue.assign(queue);
  return jr;
}

job_or_error lease_request(const request& req, std::string_view queue, const route_env& env) {
  auto version = req.version();
  if (auto err = check_queue_route(req, access::write, queue)) return std::move(*err);
  auto parsed = parse_job_body(req, env, true, {"max", "visibility_ms", "wait_ms"});
  if (auto* err = std::get_if<response>(&parsed)) return std::move(*err);
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
      || (err = read_integer(body, "wait_ms", 0, max_wait_ms, jr.wait_ms, version)))
    return std::move(*err);
  jr.queue.assign(queue);
  return jr;
}

job_or_error get_request(const request& req, std::string_view id) {
  if (auto err = check_job_route(req, access::read, id)) return std::move(*err);
  jobs::job_request jr;
  jr.op = jobs::job_op::get;
  jr.id.assign(id);
  return jr;
}

/// complete, fail or retry (`op`) of the job `id`.
job_or_error action_request(const request& req, std::string_view id, jobs::job_op op,
                            const route_env& env) {
  auto version = req.version();
  if (auto err = check_job_route(req, access::write, id)) return std::move(*err);
  std::variant<boost::json::object, response> parsed;
  switch (op) {
  case jobs::job_op::complete:
    parsed = parse_job_body(req, env, false, {"lease_id", "result"});
    break;
  case jobs::job_op::fail:
    parsed = parse_job_body(req, env, false, {"lease_id", "error", "retry"});
    break;
  default:
    parsed = parse_job_body(req, env, true, {});
  }
  if (auto* err = std::get_if<response>(&parsed)) return std::move(*err);
  const auto& body = std::get<boost::json::object>(parsed);
  jobs::job_request jr;
  jr.op = op;
  if (op != jobs::job_op::retry) {
    auto* lease = body.if_contains("lease_id");
    if (!lease || !lease->is_string() || lease->get_string().empty())
      return invalid_job("lease_id is required: a non-empty string", version);
    jr.key.assign(lease->get_string());
  }
  if (op == jobs::job_op::complete) {
    auto* result = body.if_contains("result");
    jr.body = result ? boost::json::serialize(*result) : std::string("null");
  } else if (op == jobs::job_op::fail) {
    jr.body = "failed";
    if (auto* error = body.if_contains("error")) {
      if (!error->is_string() || error->get_string().size() > max_error_bytes)
        return invalid_job("error must be a string of at most 4096 bytes", version);
      jr.body.assign(error->get_string());
    }
    jr.retry = true;
    if (auto* retry = body.if_contains("retry")) {
      if (!retry->is_bool()) return invalid_job("retry must be true or false", version);
      jr.retry = retry->get_bool();
    }
  }
  jr.id.assign(id);
  return jr;
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

} // namespace

namespace detail {

routed route_enqueue(request& req, std::string_view queue, const route_env& env) {
  return routed_job(route_id::queue_jobs, enqueue_request(req, queue, env));
}

routed route_queue_stats(const request& req, std::string_view queue) {
  return routed_job(route_id::queue, stats_request(req, queue));
}

routed route_lease(request& req, std::string_view queue, const route_env& env) {
  return routed_job(route_id::queue_lease, lease_request(req, queue, env));
}

routed route_job_get(const request& req, std::string_view id) {
  return routed_job(route_id::job, get_request(req, id));
}

routed route_job_action(request& req, std::string_view id, std::string_view action,
                        const route_env& env) {
  jobs::job_op op;
  if (action == "complete")
    op = jobs::job_op::complete;
  else if (action == "fail")
    op = jobs::job_op::fail;
  else if (action == "retry")
    op = jobs::job_op::retry;
  else
    return {route_id::unknown, no_such_route(req.version())};
  return routed_job(route_id::job_action, action_request(req, id, op, env));
}

} // namespace detail

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
