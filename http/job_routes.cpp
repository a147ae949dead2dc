// SPDX-License-Identifier: Apache-2.0
// The job queue routes (docs/jobs.md): from a request to a jobs message, with every check
// the edge makes of targets and bodies, and from the answer to a response.

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>

#include "core/names.hpp"
#include "http/route_helpers.hpp"
#include "jobs/ids.hpp"
#include "jobs/messages.hpp"
#include "util/json.hpp"

namespace shoal::http::detail {

namespace bhttp = boost::beast::http;

namespace {

constexpr std::string_view write_methods = "POST";
constexpr std::string_view queue_jobs_methods = "GET, HEAD, POST";
constexpr std::uint32_t default_list_limit = 100;
constexpr std::uint32_t max_list_limit = 1000;

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

/// A request a route built, or the response that refused it.
template <class R>
using built = std::variant<R, response>;

/// 405 with the Allow of `a` unless the method of `req` is one of `a`.
std::optional<response> check_method(const request& req, access a) {
  auto m = req.method();
  bool allowed =
    a == access::read ? (m == bhttp::verb::get || m == bhttp::verb::head) : m == bhttp::verb::post;
  if (allowed) return std::nullopt;
  return method_not_allowed(req, a == access::read ? read_methods : write_methods);
}

/// The checks every queue route starts with: the method, then the queue name.
std::optional<response> check_queue_route(const request& req, access a, std::string_view queue) {
  if (auto err = check_method(req, a)) return err;
  if (!core::valid_name(queue))
    return error_response(invalid("invalid_name", "queue names are 1 to 64 of [A-Za-z0-9_-]"),
                          req.version());
  return std::nullopt;
}

/// The checks every route of one job starts with: the method, then the id (404 for an id
/// that is not a job id: no such job can exist).
std::optional<response> check_job_route(const request& req, access a, std::string_view id) {
  if (auto err = check_method(req, a)) return err;
  if (!jobs::job_shard(id))
    return error_response(core::error{core::errc::not_found, "no such job"}, req.version());
  return std::nullopt;
}

response invalid_job(std::string_view message, unsigned version) {
  return error_response(invalid("invalid_job", std::string(message)), version);
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
  if (auto err = check_json_media_type(req)) return error_response(*err, version);
  if (empty_ok && req.body().empty()) return boost::json::object{};
  auto parsed = parse_json(req.body(), env);
  if (!parsed) return error_response(parsed.error(), version);
  auto& value = *parsed;
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
      return error_response(invalid("unknown_field", message), version);
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

built<jobs::job_enqueue> enqueue_request(const request& req, std::string_view queue,
                                         const route_env& env) {
  auto version = req.version();
  if (auto err = check_queue_route(req, access::write, queue)) return std::move(*err);
  auto parsed = parse_job_body(req, env, false,
                               {"type", "payload", "delay_ms", "max_attempts", "idempotency_key"});
  if (auto* err = std::get_if<response>(&parsed)) return std::move(*err);
  const auto& body = std::get<boost::json::object>(parsed);
  jobs::job_enqueue jr;
  auto* type = body.if_contains("type");
  if (!type || !type->is_string() || !valid_job_type(type->get_string()))
    return invalid_job("type is required: a string of 1 to 64 of [A-Za-z0-9_.-]", version);
  jr.type.assign(type->get_string());
  if (auto* payload = body.if_contains("payload")) {
    if (!payload->is_object()) return invalid_job("payload must be a JSON object", version);
    jr.payload = util::to_json(*payload);
  } else {
    jr.payload = "{}";
  }
  jr.delay_ms = 0;
  jr.max_attempts = default_max_attempts;
  std::optional<response> err;
  if ((err = read_integer(body, "delay_ms", 0, env.max_job_delay_ms, jr.delay_ms, version))
      || (err =
            read_integer(body, "max_attempts", 1, max_attempts_limit, jr.max_attempts, version)))
    return std::move(*err);
  if (auto* key = body.if_contains("idempotency_key")) {
    if (!key->is_string() || !core::valid_id(key->get_string()))
      return invalid_job(
        "idempotency_key must be a string of 1 to 256 of [A-Za-z0-9_.:@-], not . or ..", version);
    jr.idempotency_key.assign(key->get_string());
  }
  jr.queue.assign(queue);
  return jr;
}

built<jobs::queue_lease> lease_request(const request& req, std::string_view queue,
                                       const route_env& env) {
  auto version = req.version();
  if (auto err = check_queue_route(req, access::write, queue)) return std::move(*err);
  auto parsed = parse_job_body(req, env, true, {"max", "visibility_ms", "wait_ms"});
  if (auto* err = std::get_if<response>(&parsed)) return std::move(*err);
  const auto& body = std::get<boost::json::object>(parsed);
  jobs::queue_lease jr;
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

/// The body of complete, fail, extend, retry or cancel (`op`).
enum class action { complete, fail, extend, retry, cancel };

struct action_body {
  std::string lease_id;
  std::string text; ///< complete: the result (JSON); fail: the error
  bool retry = true;
  std::uint32_t visibility_ms = default_visibility_ms; ///< extend
};

built<action_body> action_request(const request& req, std::string_view id, action op,
                                  const route_env& env) {
  auto version = req.version();
  if (auto err = check_job_route(req, access::write, id)) return std::move(*err);
  std::variant<boost::json::object, response> parsed;
  switch (op) {
  case action::complete:
    parsed = parse_job_body(req, env, false, {"lease_id", "result"});
    break;
  case action::fail:
    parsed = parse_job_body(req, env, false, {"lease_id", "error", "retry"});
    break;
  case action::extend:
    parsed = parse_job_body(req, env, false, {"lease_id", "visibility_ms"});
    break;
  default:
    parsed = parse_job_body(req, env, true, {});
  }
  if (auto* err = std::get_if<response>(&parsed)) return std::move(*err);
  const auto& body = std::get<boost::json::object>(parsed);
  action_body out;
  if (op != action::retry && op != action::cancel) {
    auto* lease = body.if_contains("lease_id");
    if (!lease || !lease->is_string() || lease->get_string().empty())
      return invalid_job("lease_id is required: a non-empty string", version);
    out.lease_id.assign(lease->get_string());
  }
  if (op == action::complete) {
    auto* result = body.if_contains("result");
    out.text = result ? util::to_json(*result) : std::string("null");
  } else if (op == action::fail) {
    out.text = "failed";
    if (auto* error = body.if_contains("error")) {
      if (!error->is_string() || error->get_string().size() > max_error_bytes)
        return invalid_job("error must be a string of at most 4096 bytes", version);
      out.text.assign(error->get_string());
    }
    if (auto* retry = body.if_contains("retry")) {
      if (!retry->is_bool()) return invalid_job("retry must be true or false", version);
      out.retry = retry->get_bool();
    }
  } else if (op == action::extend) {
    std::optional<response> err;
    if ((err = read_integer(body, "visibility_ms", min_visibility_ms, max_visibility_ms,
                            out.visibility_ms, version)))
      return std::move(*err);
  }
  return out;
}

std::string stats_json(std::string_view queue, const jobs::job_counts& c) {
  boost::json::object counts;
  counts["queued"] = c.queued;
  counts["running"] = c.running;
  counts["succeeded"] = c.succeeded;
  counts["failed"] = c.failed;
  counts["dead"] = c.dead;
  counts["cancelled"] = c.cancelled;
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
  return util::to_json(out);
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
      auto payload = util::parse_json(job.payload, ec);
      o["payload"] = ec ? boost::json::value(nullptr) : std::move(payload);
    }
    o["attempt"] = job.attempt;
    o["lease_id"] = job.lease_id;
    list.push_back(std::move(o));
  }
  boost::json::object out;
  out["jobs"] = std::move(list);
  return util::to_json(out);
}

/// The job as stored (job_view), or its error.
response render_view(core::result<jobs::job_view>&& r, unsigned version) {
  return render(std::move(r), version, [version](jobs::job_view&& v) {
    return plain_json(bhttp::status::ok, std::move(v.json), version);
  });
}

} // namespace

namespace {

/// The query of a job list: ?state=S (required), &limit=N (1 to 1000, default 100),
/// &cursor=ID (a next_cursor a page gave).
struct list_query {
  jobs::job_state state = jobs::job_state::queued;
  std::string after;
  std::uint32_t limit = default_list_limit;
};

std::string state_names() {
  std::string out;
  for (std::size_t s = 0; s < jobs::job_state_count; ++s)
    out += (s == 0 ? "" : ", ") + std::string(to_string(static_cast<jobs::job_state>(s)));
  return out;
}

core::result<list_query> parse_list_query(const request& req) {
  list_query out;
  auto url = boost::urls::parse_origin_form(req.target());
  if (!url) return invalid("invalid_target", "the request target is not a valid path");
  bool state = false;
  bool limit = false;
  bool cursor = false;
  for (auto p : url->params()) {
    if (p.key.empty() && p.value.empty()) continue;
    if (p.key == "state") {
      bool known = false;
      for (std::size_t s = 0; s < jobs::job_state_count && !state; ++s)
        if (p.value == to_string(static_cast<jobs::job_state>(s))) {
          out.state = static_cast<jobs::job_state>(s);
          known = true;
        }
      if (!known)
        return invalid("invalid_state", "state must be given once: one of " + state_names());
      state = true;
    } else if (p.key == "limit") {
      std::uint32_t n = 0;
      const auto& v = p.value;
      auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
      if (limit || v.empty() || ec != std::errc{} || end != v.data() + v.size() || n < 1
          || n > max_list_limit)
        return invalid("invalid_limit", "limit must be given once: an integer from 1 to "
                                          + std::to_string(max_list_limit));
      out.limit = n;
      limit = true;
    } else if (p.key == "cursor") {
      if (cursor || !jobs::job_shard(p.value))
        return invalid("invalid_cursor", "cursor must be given once: the next_cursor of a page");
      out.after = p.value;
      cursor = true;
    } else {
      return invalid("unknown_parameter", "unknown query parameter \"" + p.key
                                            + "\" (a job list takes state, limit and cursor)");
    }
  }
  if (!state) return invalid("invalid_state", "state is required: one of " + state_names());
  return out;
}

/// {"jobs":[...],"next_cursor":ID or null}: the views are JSON already.
std::string page_json(const jobs::job_page& page) {
  std::string out = "{\"jobs\":[";
  for (std::size_t i = 0; i < page.jobs.size(); ++i) {
    if (i > 0) out += ',';
    out += page.jobs[i].json;
  }
  out += "],\"next_cursor\":";
  out += page.more && !page.jobs.empty() ? "\"" + page.jobs.back().id + "\"" : std::string("null");
  out += '}';
  return out;
}

routed route_job_list(exchange& ex, std::string_view queue) {
  constexpr auto route = route_id::queue_jobs;
  const auto version = ex.version();
  if (!core::valid_name(queue))
    return refused(
      route,
      error_response(invalid("invalid_name", "queue names are 1 to 64 of [A-Za-z0-9_-]"), version));
  auto q = parse_list_query(ex.req);
  if (!q) return refused(route, error_response(std::move(q).error(), version));
  const auto limit = q->limit;
  jobs::job_list req{std::string(queue), static_cast<std::uint8_t>(q->state), std::move(q->after),
                     limit};
  return {route, ask_all(ex, std::move(req), ex.env.request_timeout_ms,
                         [version, limit](std::vector<core::result<jobs::job_page>>&& answers) {
                           return render(jobs::merge_pages(std::move(answers), limit), version,
                                         [&](jobs::job_page&& page) {
                                           return plain_json(bhttp::status::ok, page_json(page),
                                                             version);
                                         });
                         })};
}

} // namespace

routed route_queue_jobs(exchange& ex, std::string_view queue) {
  const auto m = ex.req.method();
  if (m == bhttp::verb::get || m == bhttp::verb::head) return route_job_list(ex, queue);
  if (m == bhttp::verb::post) return route_enqueue(ex, queue);
  return refused(route_id::queue_jobs, method_not_allowed(ex.req, queue_jobs_methods));
}

routed route_enqueue(exchange& ex, std::string_view queue) {
  constexpr auto route = route_id::queue_jobs;
  auto built = enqueue_request(ex.req, queue, ex.env);
  if (auto* err = std::get_if<response>(&built)) return refused(route, std::move(*err));
  const auto version = ex.version();
  return {route, ask(ex, std::move(std::get<jobs::job_enqueue>(built)), ex.env.request_timeout_ms,
                     [version](core::result<jobs::job_enqueued>&& r) {
                       return render(std::move(r), version, [&](jobs::job_enqueued&& e) {
                         auto res =
                           plain_json(e.created ? bhttp::status::accepted : bhttp::status::ok,
                                      std::move(e.json), version);
                         res.set(bhttp::field::location, "/v1/jobs/" + e.id);
                         return res;
                       });
                     })};
}

routed route_queue_stats(exchange& ex, std::string_view queue) {
  constexpr auto route = route_id::queue;
  if (auto err = check_queue_route(ex.req, access::read, queue))
    return refused(route, std::move(*err));
  const auto version = ex.version();
  return {
    route,
    ask_all(
      ex, jobs::queue_stats{std::string(queue)}, ex.env.request_timeout_ms,
      [version, queue = std::string(queue)](std::vector<core::result<jobs::job_counts>>&& answers) {
        return render(jobs::sum_counts(std::move(answers)), version, [&](jobs::job_counts&& c) {
          return plain_json(bhttp::status::ok, stats_json(queue, c), version);
        });
      })};
}

routed route_lease(exchange& ex, std::string_view queue) {
  constexpr auto route = route_id::queue_lease;
  auto built = lease_request(ex.req, queue, ex.env);
  if (auto* err = std::get_if<response>(&built)) return refused(route, std::move(*err));
  auto req = std::move(std::get<jobs::queue_lease>(built));
  const auto version = ex.version();
  // A lease may wait for work at the broker: the answer is due only after that wait.
  const auto timeout = ex.env.request_timeout_ms + req.wait_ms;
  ex.shards.lease(std::move(req),
                  ex.answer<jobs::leased_jobs>([version](core::result<jobs::leased_jobs>&& r) {
                    return render(std::move(r), version, [&](jobs::leased_jobs&& l) {
                      return plain_json(bhttp::status::ok, lease_json(l.jobs), version);
                    });
                  }));
  return {route, pending{timeout, true}}; // a lease hands jobs out: it changes state
}

routed route_job_get(exchange& ex, std::string_view id) {
  constexpr auto route = route_id::job;
  if (auto err = check_job_route(ex.req, access::read, id)) return refused(route, std::move(*err));
  const auto version = ex.version();
  return {route, ask(ex, jobs::job_get{std::string(id)}, ex.env.request_timeout_ms,
                     [version](auto&& r) { return render_view(std::move(r), version); })};
}

routed route_job_action(exchange& ex, std::string_view id, std::string_view name) {
  action op;
  if (name == "complete")
    op = action::complete;
  else if (name == "fail")
    op = action::fail;
  else if (name == "extend")
    op = action::extend;
  else if (name == "retry")
    op = action::retry;
  else if (name == "cancel")
    op = action::cancel;
  else
    return {route_id::unknown, no_such_route(ex.version())};
  constexpr auto route = route_id::job_action;
  auto built = action_request(ex.req, id, op, ex.env);
  if (auto* err = std::get_if<response>(&built)) return refused(route, std::move(*err));
  auto& body = std::get<action_body>(built);
  const auto version = ex.version();
  const auto timeout = ex.env.request_timeout_ms;
  auto render_it = [version](core::result<jobs::job_view>&& r) {
    return render_view(std::move(r), version);
  };
  switch (op) {
  case action::complete:
    return {route, ask(ex,
                       jobs::job_complete{std::string(id), std::move(body.lease_id),
                                          std::move(body.text), false},
                       timeout, render_it)};
  case action::fail:
    return {route, ask(ex,
                       jobs::job_fail{std::string(id), std::move(body.lease_id),
                                      std::move(body.text), body.retry, false},
                       timeout, render_it)};
  case action::extend:
    return {route,
            ask(ex, jobs::job_extend{std::string(id), std::move(body.lease_id), body.visibility_ms},
                timeout, render_it)};
  case action::cancel:
    return {route, ask(ex, jobs::job_cancel{std::string(id)}, timeout, render_it)};
  default:
    return {route, ask(ex, jobs::job_retry{std::string(id)}, timeout, render_it)};
  }
}

} // namespace shoal::http::detail
