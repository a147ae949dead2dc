// SPDX-License-Identifier: Apache-2.0
// End-to-end tests of durable job queues (docs/jobs.md) against the real shoal binary over
// loopback: enqueue and the job's states, idempotency keys, delays, the built-in
// handlers (`noop`, `webhook` posting to a receiver in this process, `collection.stats`),
// external workers over HTTP (lease, complete, fail, expiry, long polls, concurrent
// workers), queue counts and metrics, the error contract, and the shell worker of the
// docs. One node serves every test; each test uses queues named after itself.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <signal.h>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "tests/integration/node_suite.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/metrics_text.hpp"
#include "tests/support/shoal_process.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/webhook_receiver.hpp"
#include "tests/support/json_members.hpp"

namespace shoal::test {
namespace {

namespace json = boost::json;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

const header_list json_type{{"Content-Type", "application/json"}};

/// Every poll in this file gives up after this long (a loaded 2-core machine included).
constexpr milliseconds patience{15000};

std::uint64_t unix_ms_now() {
  return static_cast<std::uint64_t>(
    std::chrono::duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count());
}

/// "2026-11-29T04:10:46.123Z" as Unix milliseconds; nullopt when it is not that format.
std::optional<std::uint64_t> parse_time(std::string_view text) {
  if (text.size() != 24 || text[10] != 'T' || text[19] != '.' || text[23] != 'Z')
    return std::nullopt;
  std::tm tm{};
  unsigned ms = 0;
  std::string s(text);
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%3uZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms)
      != 7)
    return std::nullopt;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  auto secs = ::timegm(&tm);
  if (secs < 0) return std::nullopt;
  return static_cast<std::uint64_t>(secs) * 1000 + ms;
}

/// Unix ms of the timestamp member `key`, 0 when absent or malformed.
std::uint64_t time_of(const json::value& v, std::string_view key) {
  return parse_time(str(v, key)).value_or(0);
}

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

/// POSTs `body` with `headers` (application/json unless given others).
http_response post(http_client& c, std::string_view target, std::string body,
                   const header_list& headers = json_type) {
  return c.request("POST", target, std::move(body), headers);
}

// -- the node ----------------------------------------------------------------------------

/// Retries come quickly, so that dead jobs are reached in tests.
struct jobs_node {
  static std::vector<std::string> sets() {
    // The webhook receivers listen on loopback, which webhooks may not reach by default.
    return {"jobs.retry_base_ms=20", "jobs.retry_cap_ms=100", "jobs.webhook_allow=127.0.0.1"};
  }
};

/// One job handed out by a lease.
struct leased {
  std::string id;
  std::string type;
  json::value payload;
  std::int64_t attempt = 0;
  std::string lease_id;
};

class JobsTest : public node_suite<jobs_node> {
protected:
  /// A queue name of this test; `suffix` tells several apart.
  static std::string queue(std::string_view suffix = {}) {
    auto name = collection();
    if (!suffix.empty()) name = name.substr(0, 60) + "-" + std::string(suffix);
    return name;
  }

  static std::string jobs_of(std::string_view q) {
    return "/v1/queues/" + std::string(q) + "/jobs";
  }

  /// POST /v1/queues/{q}/jobs with `body`; the raw answer.
  http_response enqueue_raw(std::string_view q, const json::value& body) {
    return post(client(), jobs_of(q), json::serialize(body));
  }

  /// Enqueues and checks the 202; the new job's id, or "" (with a failure) when refused.
  std::string enqueue(std::string_view q, const json::value& body) {
    auto res = enqueue_raw(q, body);
    EXPECT_EQ(res.status, 202u) << res.body;
    if (res.status != 202) return {};
    return str(res.json(), "id");
  }

  /// GET /v1/jobs/{id}: the job, or null (with a failure) when it is not 200.
  json::value job(std::string_view id) {
    auto res = client().get("/v1/jobs/" + std::string(id));
    EXPECT_EQ(res.status, 200u) << id << ": " << res.body;
    return res.status == 200 ? res.json() : json::value(nullptr);
  }

  /// Polls the job until its state is one of `states` or `patience` passes; the last view.
  json::value wait_state(std::string_view id, std::set<std::string> states) {
    auto deadline = steady_clock::now() + patience;
    for (;;) {
      auto j = job(id);
      if (states.count(str(j, "state")) != 0 || j.is_null() || steady_clock::now() > deadline)
        return j;
      std::this_thread::sleep_for(milliseconds(10));
    }
  }

  /// GET /v1/queues/{q}: the whole answer (queue, counts, oldest_queued_age_ms).
  json::value queue_stats(std::string_view q) {
    auto res = client().get("/v1/queues/" + std::string(q));
    EXPECT_EQ(res.status, 200u) << res.body;
    return res.json();
  }

  json::value counts(std::string_view q) {
    return at(queue_stats(q), "counts");
  }

  static json::value counts_of(std::uint64_t queued, std::uint64_t running, std::uint64_t succeeded,
                               std::uint64_t failed, std::uint64_t dead,
                               std::uint64_t cancelled = 0) {
    return json::object{{"queued", queued}, {"running", running}, {"succeeded", succeeded},
                        {"failed", failed}, {"dead", dead},       {"cancelled", cancelled}};
  }

  /// POST /v1/queues/{q}/lease with `body` on `c`; the jobs, with a failure unless 200.
  static std::vector<leased> lease_on(http_client& c, std::string_view q, const json::value& body) {
    auto res = post(c, "/v1/queues/" + std::string(q) + "/lease", json::serialize(body));
    EXPECT_EQ(res.status, 200u) << res.body;
    std::vector<leased> out;
    auto list = at(res.json(), "jobs");
    EXPECT_TRUE(list.is_array()) << res.body;
    if (!list.is_array()) return out;
    for (const auto& j : list.get_array())
      out.push_back(
        {str(j, "id"), str(j, "type"), at(j, "payload"), num(j, "attempt"), str(j, "lease_id")});
    return out;
  }

  std::vector<leased> lease(std::string_view q, const json::value& body) {
    return lease_on(client(), q, body);
  }

  /// Leases until `n` jobs are held (long polls of `body` with max and wait_ms set here),
  /// or `patience` passes. For tests about what comes after a lease, not about how soon
  /// a lease sees a new job.
  std::vector<leased> take(std::string_view q, std::size_t n, json::object body = {}) {
    std::vector<leased> out;
    auto deadline = steady_clock::now() + patience;
    while (out.size() < n && steady_clock::now() < deadline) {
      body["max"] = n - out.size();
      body["wait_ms"] = 2000;
      for (auto& l : lease(q, body))
        out.push_back(std::move(l));
    }
    return out;
  }

  /// POST /v1/jobs/{id}/{action} with `body`.
  http_response act(std::string_view id, std::string_view action, const json::value& body) {
    return post(client(), "/v1/jobs/" + std::string(id) + "/" + std::string(action),
                json::serialize(body));
  }

  http_response complete(std::string_view id, std::string_view lease_id, json::value result) {
    return act(id, "complete", json::object{{"lease_id", lease_id}, {"result", std::move(result)}});
  }

  std::string metrics() {
    auto res = client().get("/metrics");
    EXPECT_EQ(res.status, 200u);
    return res.body;
  }

  /// Waits (up to 10 s) until the broker holds `n` lease requests; false if it never does.
  bool wait_lease_waiters(double n) {
    for (auto deadline = steady_clock::now() + 10s; steady_clock::now() < deadline;) {
      if (metric(metrics(), "shoal_jobs_lease_waiters", {}).value_or(-1) == n) return true;
      std::this_thread::sleep_for(milliseconds(5));
    }
    return false;
  }

  /// A counter of the jobs family for (queue, type); -1 when the series is missing.
  double job_counter(std::string_view family, std::string_view q, std::string_view type) {
    return metric(metrics(), family, {{"queue", std::string(q)}, {"type", std::string(type)}})
      .value_or(-1);
  }

  /// Expects `res` to be a JSON error with `status` and `code`.
  static void expect_error(const http_response& res, unsigned status, std::string_view code,
                           std::string_view what) {
    EXPECT_EQ(res.status, status) << what << ": " << res.body;
    EXPECT_EQ(res.error_code(), code) << what << ": " << res.body;
    EXPECT_EQ(res.header("Content-Type"), "application/json") << what;
  }

  webhook_receiver hooks_;
};

// ===========================================================================
// Enqueue, states, idempotency and delays
// ===========================================================================

// Verifies an enqueue answers 202 {"id","state":"queued"} with a Location, and GET shows the
// job queued with its payload, the default max_attempts, no result and no error.
TEST_F(JobsTest, EnqueueAnswers202WithLocationAndTheJobIsQueued) {
  const json::object payload{{"to", "ada@example.com"}, {"n", 3}, {"deep", {{"list", {1, 2}}}}};
  const auto before = unix_ms_now();
  auto res = enqueue_raw(queue(), json::object{{"type", "report"}, {"payload", payload}});
  ASSERT_EQ(res.status, 202u) << res.body;
  const auto id = str(res.json(), "id");
  EXPECT_EQ(res.json(), (json::object{{"id", id}, {"state", "queued"}}));
  EXPECT_EQ(id.size(), 21u) << id;
  EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos) << id;
  EXPECT_EQ(res.header("Location"), "/v1/jobs/" + id);
  EXPECT_EQ(res.header("Content-Type"), "application/json");

  // "report" has no in-process handler: the job waits for an external worker.
  auto j = job(id);
  EXPECT_EQ(str(j, "id"), id);
  EXPECT_EQ(str(j, "queue"), queue());
  EXPECT_EQ(str(j, "type"), "report");
  EXPECT_EQ(str(j, "state"), "queued");
  EXPECT_EQ(num(j, "attempts"), 0);
  EXPECT_EQ(num(j, "max_attempts"), 5) << "the default";
  EXPECT_EQ(at(j, "payload"), payload);
  EXPECT_TRUE(at(j, "result").is_null());
  EXPECT_TRUE(at(j, "error").is_null());
  const auto created = time_of(j, "created_at");
  EXPECT_GE(created + 1, before) << str(j, "created_at");
  EXPECT_LE(created, unix_ms_now() + 1);
  EXPECT_EQ(str(j, "updated_at"), str(j, "created_at"));
  EXPECT_EQ(str(j, "run_at"), str(j, "created_at")) << "due at once";
  EXPECT_TRUE(at(j, "lease_expires_at").is_null());
  EXPECT_TRUE(at(j, "idempotency_key").is_null());

  // Without a payload it is {}.
  auto bare = enqueue(queue(), json::object{{"type", "report"}});
  ASSERT_FALSE(bare.empty());
  EXPECT_EQ(at(job(bare), "payload"), json::object{});
  EXPECT_EQ(counts(queue()), counts_of(2, 0, 0, 0, 0));
}

// Verifies the built-in noop handler completes a job at its first attempt with the payload
// as its result.
TEST_F(JobsTest, NoopJobSucceedsWithItsPayloadAsResult) {
  const json::object payload{{"k", "v"}, {"n", 1.5}};
  auto id = enqueue(queue(), json::object{{"type", "noop"}, {"payload", payload}});
  ASSERT_FALSE(id.empty());
  auto j = wait_state(id, {"succeeded"});
  ASSERT_EQ(str(j, "state"), "succeeded") << j;
  EXPECT_EQ(at(j, "result"), payload);
  EXPECT_EQ(at(j, "payload"), payload);
  EXPECT_EQ(num(j, "attempts"), 1);
  EXPECT_TRUE(at(j, "error").is_null());
  EXPECT_TRUE(at(j, "run_at").is_null()) << "only queued and failed jobs have a run_at";
  EXPECT_GE(time_of(j, "updated_at"), time_of(j, "created_at"));
  EXPECT_EQ(counts(queue()), counts_of(0, 0, 1, 0, 0));
}

// Verifies the same idempotency key in the same queue answers 200 with the first job (its
// payload, a Location) and stores nothing, while another queue with the key gets a new job.
TEST_F(JobsTest, IdempotencyKeyInTheSameQueueAnswers200WithTheFirstJob) {
  auto first = enqueue_raw(queue(), json::object{{"type", "report"},
                                                 {"payload", {{"v", 1}}},
                                                 {"idempotency_key", "welcome:ada@example.com"}});
  ASSERT_EQ(first.status, 202u) << first.body;
  const auto id = str(first.json(), "id");

  auto again = enqueue_raw(queue(), json::object{{"type", "report"},
                                                 {"payload", {{"v", 2}}},
                                                 {"idempotency_key", "welcome:ada@example.com"}});
  EXPECT_EQ(again.status, 200u) << again.body;
  EXPECT_EQ(str(again.json(), "id"), id);
  EXPECT_EQ(again.header("Location"), "/v1/jobs/" + id);
  EXPECT_EQ(at(again.json(), "payload"), (json::object{{"v", 1}})) << "the first job";
  EXPECT_EQ(str(again.json(), "idempotency_key"), "welcome:ada@example.com");
  EXPECT_EQ(at(job(id), "payload"), (json::object{{"v", 1}}));
  EXPECT_EQ(counts(queue()), counts_of(1, 0, 0, 0, 0)) << "no second job stored";

  // The key belongs to its queue.
  auto other =
    enqueue_raw(queue("other"), json::object{{"type", "report"},
                                             {"payload", {{"v", 3}}},
                                             {"idempotency_key", "welcome:ada@example.com"}});
  EXPECT_EQ(other.status, 202u) << other.body;
  EXPECT_NE(str(other.json(), "id"), id);
  EXPECT_EQ(counts(queue("other")), counts_of(1, 0, 0, 0, 0));

  // A finished job still answers for its key.
  auto noop = enqueue(queue(), json::object{{"type", "noop"}, {"idempotency_key", "once"}});
  ASSERT_FALSE(noop.empty());
  ASSERT_EQ(str(wait_state(noop, {"succeeded"}), "state"), "succeeded");
  auto repeat = enqueue_raw(queue(), json::object{{"type", "noop"}, {"idempotency_key", "once"}});
  EXPECT_EQ(repeat.status, 200u) << repeat.body;
  EXPECT_EQ(str(repeat.json(), "id"), noop);
  EXPECT_EQ(str(repeat.json(), "state"), "succeeded");
  EXPECT_EQ(num(job(noop), "attempts"), 1) << "the repeat did not run it again";
}

// Verifies a delayed noop job stays queued until its run_at (created_at + delay_ms) and
// runs after it.
TEST_F(JobsTest, DelayedJobDoesNotRunBeforeItsRunAt) {
  constexpr std::uint64_t delay = 1000;
  auto id = enqueue(queue(), json::object{{"type", "noop"}, {"delay_ms", delay}});
  ASSERT_FALSE(id.empty());
  auto j = job(id);
  const auto created = time_of(j, "created_at");
  ASSERT_NE(created, 0u) << j;
  EXPECT_EQ(time_of(j, "run_at"), created + delay) << j;
  int polls = 0;
  // Until shortly before it is due, every look finds it queued, never started.
  while (unix_ms_now() + 50 < created + delay) {
    j = job(id);
    ASSERT_EQ(str(j, "state"), "queued") << "after " << unix_ms_now() - created << " ms: " << j;
    ASSERT_EQ(num(j, "attempts"), 0);
    ++polls;
    std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_GT(polls, 10);
  j = wait_state(id, {"succeeded"});
  ASSERT_EQ(str(j, "state"), "succeeded") << j;
  EXPECT_GE(time_of(j, "updated_at"), created + delay) << j;
  EXPECT_EQ(num(j, "attempts"), 1);
}

// Verifies an external lease does not hand out a delayed job before its run_at, and that a
// long poll gets it once it is due.
TEST_F(JobsTest, DelayedJobIsNotLeasedBeforeItsRunAt) {
  auto id = enqueue(queue(), json::object{{"type", "report"}, {"delay_ms", 1000}});
  ASSERT_FALSE(id.empty());
  const auto run_at = time_of(job(id), "run_at");
  EXPECT_TRUE(lease(queue(), json::object{{"max", 10}}).empty()) << "not due yet";
  http_client waiting{port(), 20s};
  auto got = lease_on(waiting, queue(), json::object{{"max", 10}, {"wait_ms", 5000}});
  const auto answered = unix_ms_now();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, id);
  EXPECT_GE(answered, run_at) << "handed out " << run_at - answered << " ms early";
  auto j = job(id);
  EXPECT_EQ(str(j, "state"), "running");
  EXPECT_GE(time_of(j, "updated_at"), run_at) << j;
}

// ===========================================================================
// The webhook handler, retries and dead jobs
// ===========================================================================

// Verifies a webhook job posts its body with X-Shoal-Job-Id and X-Shoal-Attempt to the URL,
// and a 2xx answer makes it succeeded with {"status", "body"} as result when the payload
// asks for the body ("keep_body"), {"status"} alone when not; without "body" the whole
// payload is posted.
TEST_F(JobsTest, WebhookToA2xxSucceedsWithItsHeadersAndBody) {
  const json::object body{{"to", "ada@example.com"}, {"lines", {1, 2, 3}}};
  auto id = enqueue(
    queue(),
    json::object{{"type", "webhook"},
                 {"payload", {{"url", hooks_.url("/ok")}, {"body", body}, {"keep_body", true}}}});
  ASSERT_FALSE(id.empty());
  auto j = wait_state(id, {"succeeded", "dead"});
  ASSERT_EQ(str(j, "state"), "succeeded") << j;
  EXPECT_EQ(at(j, "result"), (json::object{{"status", 200}, {"body", {{"ok", true}}}}));
  EXPECT_EQ(num(j, "attempts"), 1);
  auto seen = hooks_.requests_for(id);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].method, "POST");
  EXPECT_EQ(seen[0].target, "/ok");
  EXPECT_EQ(json::parse(seen[0].body), body);
  EXPECT_EQ(seen[0].header("Content-Type"), "application/json");
  EXPECT_EQ(seen[0].header("X-Shoal-Job-Id"), id);
  EXPECT_EQ(seen[0].header("X-Shoal-Attempt"), "1");
  EXPECT_LE(time_of(j, "created_at"), seen[0].received_unix_ms + 1);

  const json::object whole{{"url", hooks_.url("/ok?token=1")}, {"extra", "x"}};
  auto id2 = enqueue(queue(), json::object{{"type", "webhook"}, {"payload", whole}});
  ASSERT_FALSE(id2.empty());
  auto j2 = wait_state(id2, {"succeeded", "dead"});
  ASSERT_EQ(str(j2, "state"), "succeeded");
  EXPECT_EQ(at(j2, "result"), (json::object{{"status", 200}}))
    << "the body is kept only on request";
  auto seen2 = hooks_.requests_for(id2);
  ASSERT_EQ(seen2.size(), 1u);
  EXPECT_EQ(seen2[0].target, "/ok?token=1");
  EXPECT_EQ(json::parse(seen2[0].body), whole) << "no body: the whole payload";
}

// Verifies a webhook to a loopback address this node does not allow is dead at once
// (not retried) with the reason ("not allowed" is decided before connecting): the node's
// own API, and the cloud metadata address.
TEST_F(JobsTest, WebhookToARefusedDestinationIsDeadAtOnce) {
  for (const std::string& url : {"http://127.0.0.2:" + std::to_string(port()) + "/v1/jobs",
                                 std::string("http://169.254.169.254/latest/meta-data")}) {
    auto id = enqueue(
      queue(), json::object{{"type", "webhook"}, {"max_attempts", 3}, {"payload", {{"url", url}}}});
    ASSERT_FALSE(id.empty());
    auto j = wait_state(id, {"succeeded", "dead"});
    EXPECT_EQ(str(j, "state"), "dead") << j;
    EXPECT_EQ(num(j, "attempts"), 1) << "a refused destination is final";
    EXPECT_TRUE(contains(str(j, "error"), "not allowed")) << j;
  }
}

// Verifies a webhook answered 500 is retried (after the retry delay) until max_attempts,
// then dead with the last error kept, delivered exactly max_attempts times with attempts
// 1, 2, 3.
TEST_F(JobsTest, WebhookServerErrorIsRetriedUntilMaxAttemptsThenDead) {
  auto id = enqueue(queue(), json::object{{"type", "webhook"},
                                          {"max_attempts", 3},
                                          {"payload", {{"url", hooks_.url("/fail")}}}});
  ASSERT_FALSE(id.empty());
  auto j = wait_state(id, {"succeeded", "dead"});
  ASSERT_EQ(str(j, "state"), "dead") << j;
  EXPECT_EQ(num(j, "attempts"), 3);
  EXPECT_TRUE(contains(str(j, "error"), "500")) << j;
  EXPECT_TRUE(at(j, "result").is_null());
  EXPECT_TRUE(at(j, "run_at").is_null()) << "a dead job is not due";
  // Nothing more comes.
  EXPECT_FALSE(hooks_.wait_for(
    [&](const std::vector<received_request>& all) {
      return std::count_if(all.begin(), all.end(), [&](const auto& r) { return r.job_id() == id; })
             > 3;
    },
    milliseconds(400)));
  auto seen = hooks_.requests_for(id);
  ASSERT_EQ(seen.size(), 3u);
  for (unsigned i = 0; i < seen.size(); ++i)
    EXPECT_EQ(seen[i].attempt(), i + 1);
  // The first retry waits base/2..base (20 ms here): not at once.
  auto gap = std::chrono::duration_cast<milliseconds>(seen[1].received - seen[0].received);
  EXPECT_GE(gap.count(), 9) << "the retry came without its delay";
  EXPECT_EQ(counts(queue()), counts_of(0, 0, 0, 0, 1));
}

// Verifies a webhook answered 404 is final: dead after one delivery, not retried.
TEST_F(JobsTest, WebhookClientErrorIsDeadAfterOneDelivery) {
  auto id = enqueue(queue(), json::object{{"type", "webhook"},
                                          {"max_attempts", 5},
                                          {"payload", {{"url", hooks_.url("/gone")}}}});
  ASSERT_FALSE(id.empty());
  auto j = wait_state(id, {"succeeded", "dead"});
  ASSERT_EQ(str(j, "state"), "dead") << j;
  EXPECT_EQ(num(j, "attempts"), 1);
  EXPECT_TRUE(contains(str(j, "error"), "404")) << j;
  std::this_thread::sleep_for(milliseconds(400));
  EXPECT_EQ(hooks_.count(id), 1u);
}

// Verifies a webhook that gets no answer within payload.timeout_ms fails the attempt
// (retryable) and ends dead after max_attempts, with a timeout error.
TEST_F(JobsTest, WebhookWithoutAnAnswerTimesOutAndIsRetried) {
  auto id = enqueue(queue(),
                    json::object{{"type", "webhook"},
                                 {"max_attempts", 2},
                                 {"payload", {{"url", hooks_.url("/hang")}, {"timeout_ms", 300}}}});
  ASSERT_FALSE(id.empty());
  const auto start = steady_clock::now();
  auto j = wait_state(id, {"succeeded", "dead"});
  ASSERT_EQ(str(j, "state"), "dead") << j;
  EXPECT_GE(steady_clock::now() - start, milliseconds(600)) << "two attempts of 300 ms each";
  EXPECT_EQ(num(j, "attempts"), 2);
  EXPECT_TRUE(contains(str(j, "error"), "300 ms")) << j;
  EXPECT_EQ(hooks_.count(id), 2u);
  // The receiver still holds both connections; its destructor must not hang on them.
}

// Verifies the webhook's answer decides as documented: any 2xx succeeds; 5xx, 408, 429
// and connection errors are retried (two deliveries with max_attempts 2); other statuses
// and URLs that cannot be posted to are final at the first attempt.
TEST_F(JobsTest, WebhookStatusDecidesBetweenRetryAndDead) {
  hooks_.set_responder([](const received_request& req) {
    webhook_reply r; // /status/NNN answers NNN
    r.status = static_cast<unsigned>(std::strtoul(req.path.c_str() + 8, nullptr, 10));
    if (r.status == 204) r.body.clear();
    return r;
  });
  // A port that was free a moment ago: nothing listens there.
  std::uint16_t closed = 0;
  {
    webhook_receiver gone;
    closed = gone.port();
  }
  struct expectation {
    std::string url;
    std::string state;
    std::size_t deliveries; ///< as seen by the receiver
    std::string error;      ///< part of the error
  };
  const std::vector<expectation> cases{
    {hooks_.url("/status/201"), "succeeded", 1, ""},
    {hooks_.url("/status/204"), "succeeded", 1, ""},
    {hooks_.url("/status/503"), "dead", 2, "503"},
    {hooks_.url("/status/408"), "dead", 2, "408"},
    {hooks_.url("/status/429"), "dead", 2, "429"},
    {hooks_.url("/status/400"), "dead", 1, "400"},
    {hooks_.url("/status/410"), "dead", 1, "410"},
    {hooks_.url("/status/301"), "dead", 1, "301"},
    {"http://127.0.0.1:" + std::to_string(closed) + "/x", "dead", 0, "connect"},
    {"ftp://127.0.0.1/x", "dead", 0, ""},
  };
  std::vector<std::string> ids;
  for (const auto& c : cases)
    ids.push_back(enqueue(
      queue(),
      json::object{{"type", "webhook"}, {"max_attempts", 2}, {"payload", {{"url", c.url}}}}));
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    auto j = wait_state(ids[i], {"succeeded", "dead"});
    EXPECT_EQ(str(j, "state"), c.state) << c.url << ": " << j;
    EXPECT_EQ(hooks_.count(ids[i]), c.deliveries) << c.url;
    EXPECT_TRUE(contains(str(j, "error"), c.error)) << c.url << ": " << j;
    if (c.state == "succeeded") {
      EXPECT_EQ(num(at(j, "result"), "status"),
                std::strtol(c.url.c_str() + c.url.size() - 3, nullptr, 10));
    }
  }
  // Refused connections are retried like 5xx; a URL that cannot be posted to is final.
  EXPECT_EQ(num(job(ids[8]), "attempts"), 2) << job(ids[8]);
  EXPECT_EQ(num(job(ids[9]), "attempts"), 1) << job(ids[9]);
}

// Verifies POST /v1/jobs/{id}/retry brings a dead job back (queued, attempts 0, error kept)
// and it runs again from attempt 1.
TEST_F(JobsTest, RetryOfADeadJobRunsItAgainFromAttemptOne) {
  std::atomic<bool> gone{true};
  hooks_.set_responder([&gone](const received_request&) {
    webhook_reply r;
    if (gone) r.status = 404;
    return r;
  });
  auto id = enqueue(
    queue(), json::object{{"type", "webhook"}, {"payload", {{"url", hooks_.url("/flaky")}}}});
  ASSERT_FALSE(id.empty());
  ASSERT_EQ(str(wait_state(id, {"succeeded", "dead"}), "state"), "dead");
  EXPECT_EQ(hooks_.count(id), 1u);
  gone = false;
  auto res = act(id, "retry", json::object{});
  ASSERT_EQ(res.status, 200u) << res.body;
  EXPECT_EQ(str(res.json(), "state"), "queued");
  EXPECT_EQ(num(res.json(), "attempts"), 0);
  EXPECT_TRUE(contains(str(res.json(), "error"), "404")) << "the error is kept: " << res.body;
  auto j = wait_state(id, {"succeeded", "dead"});
  ASSERT_EQ(str(j, "state"), "succeeded") << j;
  EXPECT_EQ(num(j, "attempts"), 1);
  EXPECT_TRUE(at(j, "error").is_null()) << j;
  auto seen = hooks_.requests_for(id);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].attempt(), 1u);
  EXPECT_EQ(seen[1].attempt(), 1u) << "attempts start from 0 again";
  EXPECT_EQ(counts(queue()), counts_of(0, 0, 1, 0, 0));

  // An empty body works as well as {}.
  auto empty = client().request("POST", "/v1/jobs/" + id + "/retry");
  expect_error(empty, 409, "wrong_state", "retry of a succeeded job");
}

// Verifies retry of a queued, running, failed or succeeded job is 409 wrong_state and
// changes nothing.
TEST_F(JobsTest, RetryOfAJobThatIsNotDeadIs409WrongState) {
  auto queued = enqueue(queue(), json::object{{"type", "report"}});
  auto running = enqueue(queue("run"), json::object{{"type", "report"}});
  auto failed = enqueue(queue("fail"), json::object{{"type", "report"}});
  auto done = enqueue(queue(), json::object{{"type", "noop"}});
  ASSERT_FALSE(queued.empty() || running.empty() || failed.empty() || done.empty());
  ASSERT_EQ(take(queue("run"), 1).size(), 1u);
  auto f = take(queue("fail"), 1);
  ASSERT_EQ(f.size(), 1u);
  ASSERT_EQ(act(failed, "fail",
                json::object{{"lease_id", f[0].lease_id}, {"error", "later"}, {"retry", true}})
              .status,
            200u);
  ASSERT_EQ(str(wait_state(done, {"succeeded"}), "state"), "succeeded");
  for (const auto& [id, state] : std::vector<std::pair<std::string, std::string>>{
         {queued, "queued"}, {running, "running"}, {done, "succeeded"}}) {
    auto before = job(id);
    expect_error(act(id, "retry", json::object{}), 409, "wrong_state", state);
    EXPECT_EQ(job(id), before) << state;
  }
  // A failed job waits for its own retry, which may come at any moment: only the answer.
  auto res = act(failed, "retry", json::object{});
  expect_error(res, 409, "wrong_state", "failed");
}

// Verifies cancel of a waiting job (queued, or delayed) answers 200 with state
// cancelled, no worker ever gets it, and the queue counts it; cancelling it again, a
// running job or an unknown one is refused and changes nothing.
TEST_F(JobsTest, CancelOfAWaitingJobKeepsItFromEverRunning) {
  auto delayed = enqueue(queue(), json::object{{"type", "report"}, {"delay_ms", 1000}});
  auto queued = enqueue(queue(), json::object{{"type", "report"}});
  auto running = enqueue(queue("run"), json::object{{"type", "report"}});
  ASSERT_FALSE(delayed.empty() || queued.empty() || running.empty());
  ASSERT_EQ(take(queue("run"), 1).size(), 1u);
  for (const auto& id : {delayed, queued}) {
    auto res = act(id, "cancel", json::object{});
    ASSERT_EQ(res.status, 200u) << res.body;
    EXPECT_EQ(str(res.json(), "state"), "cancelled");
    EXPECT_EQ(str(job(id), "state"), "cancelled");
  }
  // Past the delay, a worker that waits finds nothing.
  http_client waiting{port(), 20s};
  EXPECT_TRUE(lease_on(waiting, queue(), json::object{{"max", 10}, {"wait_ms", 1500}}).empty());
  auto before = job(queued);
  expect_error(act(queued, "cancel", json::object{}), 409, "wrong_state", "cancelled twice");
  EXPECT_EQ(job(queued), before);
  auto busy = job(running);
  expect_error(client().request("POST", "/v1/jobs/" + running + "/cancel"), 409, "wrong_state",
               "running");
  EXPECT_EQ(job(running), busy);
  const auto unknown = queued.substr(0, 5) + std::string(16, 'f');
  expect_error(act(unknown, "cancel", json::object{}), 404, "not_found", "unknown job");
  EXPECT_EQ(counts(queue()), counts_of(0, 0, 0, 0, 0, 2));
}

// Verifies a queue's jobs are listed by state a page at a time: following next_cursor
// from the first page gives every job of that state once, in id order (across the
// shards), and the last page's cursor is null; another state lists nothing.
TEST_F(JobsTest, ListingAStatePagesThroughEveryJobOnce) {
  std::vector<std::string> ids;
  for (int i = 0; i < 7; ++i) {
    auto id = enqueue(queue(), json::object{{"type", "report"}, {"delay_ms", 60000}});
    ASSERT_FALSE(id.empty());
    ASSERT_EQ(act(id, "cancel", json::object{}).status, 200u);
    ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());
  std::vector<std::string> seen;
  std::string cursor;
  int pages = 0;
  do {
    auto res = client().get("/v1/queues/" + queue() + "/jobs?state=cancelled&limit=3"
                            + (cursor.empty() ? "" : "&cursor=" + cursor));
    ASSERT_EQ(res.status, 200u) << res.body;
    auto body = res.json().as_object();
    for (const auto& j : body.at("jobs").as_array()) {
      seen.push_back(std::string(j.at("id").as_string()));
      EXPECT_EQ(str(j, "state"), "cancelled");
    }
    cursor =
      body.at("next_cursor").is_null() ? "" : std::string(body.at("next_cursor").as_string());
    ASSERT_LE(++pages, 4) << "the cursor does not end";
  } while (!cursor.empty());
  EXPECT_EQ(seen, ids);
  EXPECT_EQ(pages, 3);
  auto none = client().get("/v1/queues/" + queue() + "/jobs?state=queued");
  ASSERT_EQ(none.status, 200u) << none.body;
  EXPECT_TRUE(none.json().at("jobs").as_array().empty());
  EXPECT_TRUE(none.json().at("next_cursor").is_null());
  expect_error(client().get("/v1/queues/" + queue() + "/jobs"), 400, "invalid_state", "no state");
}

// ===========================================================================
// collection.stats
// ===========================================================================

// Verifies collection.stats aggregates the field over the live documents of every shard:
// count, numeric, min, max, sum and avg; documents without the number, deleted documents
// and other collections do not count as numbers.
TEST_F(JobsTest, CollectionStatsAggregatesTheNumericFieldOfLiveDocuments) {
  const std::vector<std::pair<std::string, std::string>> docs{
    {"a", R"({"total":3,"net":{"v":1}})"},
    {"b", R"({"total":4.5,"net":{"v":2}})"},
    {"c", R"({"total":-2})"},
    {"d", R"({"total":10.5,"net":{"v":3}})"},
    {"e", R"({"other":1})"},
    {"f", R"({"total":"12"})"},
    {"g", R"({"total":null})"},
    {"h", R"({"total":1000})"}, // deleted below
  };
  for (const auto& [id, body] : docs)
    ASSERT_EQ(client().put(doc(id), body).status, 201u) << id;
  ASSERT_EQ(client().del(doc("h")).status, 204u);
  // A collection whose name extends this one's must not leak in.
  ASSERT_EQ(
    client().put("/v1/collections/" + collection() + "x/docs/z", R"({"total":99999})").status,
    201u);

  auto run = [&](std::string_view field) {
    auto id =
      enqueue(queue(), json::object{{"type", "collection.stats"},
                                    {"payload", {{"collection", collection()}, {"field", field}}}});
    auto j = wait_state(id, {"succeeded", "dead"});
    EXPECT_EQ(str(j, "state"), "succeeded") << j;
    return at(j, "result");
  };
  EXPECT_EQ(run("total"), (json::object{{"collection", collection()},
                                        {"field", "total"},
                                        {"count", 7},
                                        {"numeric", 4},
                                        {"min", -2},
                                        {"max", 10.5},
                                        {"sum", 16},
                                        {"avg", 4}}));
  EXPECT_EQ(run("net.v"), (json::object{{"collection", collection()},
                                        {"field", "net.v"},
                                        {"count", 7},
                                        {"numeric", 3},
                                        {"min", 1},
                                        {"max", 3},
                                        {"sum", 6},
                                        {"avg", 2}}));
  EXPECT_EQ(run("missing"), (json::object{{"collection", collection()},
                                          {"field", "missing"},
                                          {"count", 7},
                                          {"numeric", 0},
                                          {"min", nullptr},
                                          {"max", nullptr},
                                          {"sum", 0},
                                          {"avg", nullptr}}));
}

// Verifies collection.stats with a payload it cannot use is dead at its first attempt
// (not retryable), naming what is missing.
TEST_F(JobsTest, CollectionStatsWithABadPayloadIsDeadAtOnce) {
  for (const auto& payload :
       {json::object{{"field", "total"}}, json::object{{"collection", "orders"}},
        json::object{{"collection", "bad name!"}, {"field", "x"}},
        json::object{{"collection", "orders"}, {"field", "a..b"}}}) {
    auto id = enqueue(queue(), json::object{{"type", "collection.stats"}, {"payload", payload}});
    auto j = wait_state(id, {"succeeded", "dead"});
    EXPECT_EQ(str(j, "state"), "dead") << j;
    EXPECT_EQ(num(j, "attempts"), 1) << j;
    EXPECT_TRUE(contains(str(j, "error"), "payload")) << j;
  }
}

// ===========================================================================
// External workers over HTTP
// ===========================================================================

// Verifies lease → running (attempt 1, a lease id, lease_expires_at) → complete with a
// result → succeeded with the result stored; a second complete is 409 stale_lease.
// Verifies a worker that needs longer extends its lease: the expiry moves to
// visibility_ms from now, the job stays running under the same lease, which completes it;
// another lease id is 409 stale_lease and changes nothing.
TEST_F(JobsTest, AWorkerExtendsItsLeaseAndStillCompletesTheJob) {
  auto id = enqueue(queue(), json::object{{"type", "transcode"}});
  ASSERT_FALSE(id.empty());
  auto got = lease(queue(), json::object{{"visibility_ms", 1000}});
  ASSERT_EQ(got.size(), 1u);
  const auto first_expiry = time_of(job(id), "lease_expires_at");
  const auto before = unix_ms_now();
  auto res =
    act(id, "extend", json::object{{"lease_id", got[0].lease_id}, {"visibility_ms", 600000}});
  ASSERT_EQ(res.status, 200u) << res.body;
  EXPECT_EQ(str(res.json(), "state"), "running");
  const auto extended = time_of(job(id), "lease_expires_at");
  EXPECT_GE(extended + 1, before + 600000);
  EXPECT_GT(extended, first_expiry + 590000);
  auto j = job(id);
  expect_error(act(id, "extend", json::object{{"lease_id", "0123456789abcdef"}}), 409,
               "stale_lease", "extend with another lease");
  EXPECT_EQ(job(id), j) << "a refused extension changed the job";
  res = complete(id, got[0].lease_id, json::object{{"ok", true}});
  ASSERT_EQ(res.status, 200u) << res.body;
  EXPECT_EQ(str(res.json(), "state"), "succeeded");
  // A finished job's lease is gone: extending it is stale too.
  expect_error(act(id, "extend", json::object{{"lease_id", got[0].lease_id}}), 409, "stale_lease",
               "extend after complete");
}

TEST_F(JobsTest, ExternalWorkerLeasesAndCompletesAJob) {
  const json::object payload{{"path", "/img/1.png"}};
  auto id = enqueue(queue(), json::object{{"type", "resize"}, {"payload", payload}});
  ASSERT_FALSE(id.empty());
  const auto before = unix_ms_now();
  // A long poll answers as soon as it holds a job, even with max 10.
  auto got = lease(queue(), json::object{{"max", 10}, {"visibility_ms", 30000}, {"wait_ms", 5000}});
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, id);
  EXPECT_EQ(got[0].type, "resize");
  EXPECT_EQ(got[0].payload, payload);
  EXPECT_EQ(got[0].attempt, 1);
  EXPECT_EQ(got[0].lease_id.size(), 16u) << got[0].lease_id;
  auto j = job(id);
  EXPECT_EQ(str(j, "state"), "running");
  EXPECT_EQ(num(j, "attempts"), 1);
  const auto expires = time_of(j, "lease_expires_at");
  EXPECT_GE(expires + 1, before + 30000) << j;
  EXPECT_LE(expires, unix_ms_now() + 30000) << j;
  EXPECT_TRUE(at(j, "run_at").is_null());
  EXPECT_EQ(counts(queue()), counts_of(0, 1, 0, 0, 0));
  EXPECT_TRUE(lease(queue(), json::object{{"max", 10}}).empty()) << "held by the lease";

  const json::value result{{"width", 128}, {"names", {"a", "b"}}};
  auto res = complete(id, got[0].lease_id, result);
  ASSERT_EQ(res.status, 200u) << res.body;
  EXPECT_EQ(str(res.json(), "state"), "succeeded");
  j = job(id);
  EXPECT_EQ(str(j, "state"), "succeeded");
  EXPECT_EQ(at(j, "result"), result);
  EXPECT_TRUE(at(j, "lease_expires_at").is_null());
  EXPECT_EQ(counts(queue()), counts_of(0, 0, 1, 0, 0));

  auto again = complete(id, got[0].lease_id, json::object{{"width", 1}});
  expect_error(again, 409, "stale_lease", "second complete");
  EXPECT_EQ(job(id), j) << "the stale complete changed the job";
  expect_error(act(id, "fail", json::object{{"lease_id", got[0].lease_id}, {"error", "late"}}), 409,
               "stale_lease", "fail after complete");
  EXPECT_EQ(job(id), j);
}

// Verifies complete or fail with a lease id that does not hold the job is 409 stale_lease
// and changes nothing; the right lease still completes it.
TEST_F(JobsTest, WrongLeaseIdIs409AndChangesNothing) {
  auto id = enqueue(queue(), json::object{{"type", "resize"}});
  auto got = take(queue(), 1);
  ASSERT_EQ(got.size(), 1u);
  const auto before = job(id);
  for (const char* wrong : {"0000000000000000", "not-a-lease"}) {
    expect_error(
      act(id, "fail", json::object{{"lease_id", wrong}, {"error", "x"}, {"retry", false}}), 409,
      "stale_lease", wrong);
    expect_error(complete(id, wrong, json::object{}), 409, "stale_lease", wrong);
    EXPECT_EQ(job(id), before) << wrong;
  }
  EXPECT_EQ(complete(id, got[0].lease_id, json::object{{"ok", true}}).status, 200u);
}

// Verifies fail with retry=true makes the job failed (error kept, a run_at), then leasable
// again with attempt 2 and a new lease id, the old lease being stale.
TEST_F(JobsTest, FailWithRetryMakesTheJobLeasableAgainWithTheNextAttempt) {
  auto id = enqueue(queue(), json::object{{"type", "resize"}, {"max_attempts", 3}});
  auto first = take(queue(), 1);
  ASSERT_EQ(first.size(), 1u);
  auto res =
    act(id, "fail",
        json::object{{"lease_id", first[0].lease_id}, {"error", "disk full"}, {"retry", true}});
  ASSERT_EQ(res.status, 200u) << res.body;
  EXPECT_EQ(str(res.json(), "state"), "failed");
  EXPECT_EQ(str(res.json(), "error"), "disk full");
  EXPECT_FALSE(str(res.json(), "run_at").empty()) << res.body;
  http_client waiting{port(), 20s};
  auto second = lease_on(waiting, queue(), json::object{{"wait_ms", 5000}});
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].id, id);
  EXPECT_EQ(second[0].attempt, 2);
  EXPECT_NE(second[0].lease_id, first[0].lease_id);
  expect_error(complete(id, first[0].lease_id, json::object{}), 409, "stale_lease", "old lease");
  EXPECT_EQ(str(job(id), "state"), "running");
  ASSERT_EQ(complete(id, second[0].lease_id, json::object{{"n", 2}}).status, 200u);
  auto j = job(id);
  EXPECT_EQ(num(j, "attempts"), 2);
  EXPECT_TRUE(at(j, "error").is_null()) << "success clears the error: " << j;
}

// Verifies fail with retry=false makes the job dead at once with its error, and a lease
// then finds nothing.
TEST_F(JobsTest, FailWithoutRetryMakesTheJobDead) {
  auto id = enqueue(queue(), json::object{{"type", "resize"}, {"max_attempts", 10}});
  auto got = take(queue(), 1);
  ASSERT_EQ(got.size(), 1u);
  auto res =
    act(id, "fail",
        json::object{{"lease_id", got[0].lease_id}, {"error", "corrupt image"}, {"retry", false}});
  ASSERT_EQ(res.status, 200u) << res.body;
  EXPECT_EQ(str(res.json(), "state"), "dead");
  auto j = job(id);
  EXPECT_EQ(str(j, "state"), "dead");
  EXPECT_EQ(str(j, "error"), "corrupt image");
  EXPECT_EQ(num(j, "attempts"), 1);
  EXPECT_TRUE(lease(queue(), json::object{{"max", 10}, {"wait_ms", 300}}).empty());
  EXPECT_EQ(counts(queue()), counts_of(0, 0, 0, 0, 1));
}

// Verifies fail with retry=true on the last allowed attempt makes the job dead.
TEST_F(JobsTest, FailOnTheLastAttemptMakesTheJobDead) {
  auto id = enqueue(queue(), json::object{{"type", "resize"}, {"max_attempts", 1}});
  auto got = take(queue(), 1);
  ASSERT_EQ(got.size(), 1u);
  auto res =
    act(id, "fail", json::object{{"lease_id", got[0].lease_id}, {"error", "no"}, {"retry", true}});
  ASSERT_EQ(res.status, 200u) << res.body;
  EXPECT_EQ(str(res.json(), "state"), "dead");
  EXPECT_EQ(str(res.json(), "error"), "no");
}

// Verifies a lease that is neither completed nor failed within visibility_ms runs out: the
// job comes back with attempt 2, the old lease is stale, and
// shoal_jobs_lease_expired_total counts it.
TEST_F(JobsTest, ExpiredLeaseComesBackWithTheNextAttemptAndTheOldLeaseIsStale) {
  auto id = enqueue(queue(), json::object{{"type", "resize"}});
  const auto start = steady_clock::now();
  auto first = take(queue(), 1, {{"visibility_ms", 1000}});
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(job_counter("shoal_jobs_lease_expired_total", queue(), "resize"), 0);
  http_client waiting{port(), 20s};
  auto second = lease_on(waiting, queue(), json::object{{"wait_ms", 8000}});
  const auto waited = steady_clock::now() - start;
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].id, id);
  EXPECT_EQ(second[0].attempt, 2);
  EXPECT_NE(second[0].lease_id, first[0].lease_id);
  EXPECT_GE(waited, milliseconds(990)) << "the lease held for less than its visibility";
  expect_error(complete(id, first[0].lease_id, json::object{}), 409, "stale_lease",
               "expired lease");
  expect_error(act(id, "fail", json::object{{"lease_id", first[0].lease_id}}), 409, "stale_lease",
               "expired lease");
  EXPECT_TRUE(contains(str(job(id), "error"), "expired")) << job(id);
  EXPECT_EQ(job_counter("shoal_jobs_lease_expired_total", queue(), "resize"), 1);
  EXPECT_EQ(job_counter("shoal_jobs_failed_total", queue(), "resize"), 1);
  ASSERT_EQ(complete(id, second[0].lease_id, json::object{}).status, 200u);
}

// Verifies a lease with wait_ms on an empty queue answers as soon as a job is enqueued.
TEST_F(JobsTest, LongPollAnswersAsSoonAsAJobIsEnqueued) {
  std::vector<leased> got;
  steady_clock::time_point answered;
  std::thread worker([&] {
    http_client waiting{port(), 20s};
    got = lease_on(waiting, queue(), json::object{{"max", 10}, {"wait_ms", 5000}});
    answered = steady_clock::now();
  });
  // The poll is parked at the broker before the job exists.
  const bool parked = wait_lease_waiters(1);
  EXPECT_TRUE(parked) << "the poll was never parked";
  const auto enqueued = steady_clock::now();
  auto id = enqueue(queue(), json::object{{"type", "resize"}});
  worker.join();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, id);
  auto latency = std::chrono::duration_cast<milliseconds>(answered - enqueued);
  EXPECT_LT(latency.count(), 1500) << "the poll was not woken by the enqueue";
}

// Verifies a lease with wait_ms and no work answers {"jobs":[]} after about wait_ms.
TEST_F(JobsTest, LongPollOnAnEmptyQueueAnswersEmptyAfterWaitMs) {
  http_client waiting{port(), 20s};
  const auto start = steady_clock::now();
  auto res = post(waiting, "/v1/queues/" + queue() + "/lease", R"({"wait_ms":700})");
  auto took = std::chrono::duration_cast<milliseconds>(steady_clock::now() - start);
  EXPECT_EQ(res.status, 200u) << res.body;
  EXPECT_EQ(res.json(), json::parse(R"({"jobs":[]})"));
  EXPECT_GE(took.count(), 690);
  EXPECT_LT(took.count(), 700 + 2000);
  // Without wait_ms (and even without a body) it answers at once.
  const auto now = steady_clock::now();
  auto quick = waiting.request("POST", "/v1/queues/" + queue() + "/lease");
  EXPECT_EQ(quick.status, 200u) << quick.body;
  EXPECT_EQ(quick.json(), json::parse(R"({"jobs":[]})"));
  EXPECT_LT(steady_clock::now() - now, milliseconds(500));
}

// Verifies several concurrent workers leasing from one queue while 200 jobs arrive never
// get the same job twice under valid leases, and every job completes once.
TEST_F(JobsTest, ConcurrentWorkersNeverLeaseTheSameJob) {
  constexpr int total = 200;
  constexpr int workers = 4;
  std::mutex mu;
  std::map<std::string, std::vector<int>> leased_by; // job id → workers that leased it
  std::set<std::string> enqueued;
  std::atomic<int> completed{0};
  std::atomic<int> bad_answers{0};
  std::string bad_example;
  const auto deadline = steady_clock::now() + milliseconds(30000);
  std::vector<std::thread> threads;
  for (int w = 0; w < workers; ++w) {
    threads.emplace_back([&, w] {
      http_client c{port(), 10s};
      while (completed < total && steady_clock::now() < deadline) {
        auto res = post(c, "/v1/queues/" + queue() + "/lease",
                        R"({"max":10,"visibility_ms":60000,"wait_ms":300})");
        auto list = at(res.json(), "jobs");
        if (res.status != 200 || !list.is_array()) {
          ++bad_answers;
          std::lock_guard<std::mutex> lock(mu);
          bad_example = res.body;
          continue;
        }
        for (const auto& j : list.get_array()) {
          {
            std::lock_guard<std::mutex> lock(mu);
            leased_by[str(j, "id")].push_back(w);
          }
          auto done = post(c, "/v1/jobs/" + str(j, "id") + "/complete",
                           json::serialize(json::object{{"lease_id", str(j, "lease_id")},
                                                        {"result", {{"worker", w}}}}));
          if (done.status == 200) {
            ++completed;
          } else {
            ++bad_answers;
            std::lock_guard<std::mutex> lock(mu);
            bad_example = done.body;
          }
        }
      }
    });
  }
  for (int p = 0; p < 2; ++p) {
    threads.emplace_back([&, p] {
      http_client c{port(), 10s};
      for (int i = p; i < total; i += 2) {
        auto res = post(c, jobs_of(queue()),
                        json::serialize(json::object{{"type", "task"}, {"payload", {{"i", i}}}}));
        std::lock_guard<std::mutex> lock(mu);
        if (res.status == 202)
          enqueued.insert(str(res.json(), "id"));
        else
          bad_example = res.body;
      }
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(enqueued.size(), static_cast<std::size_t>(total)) << bad_example;
  EXPECT_EQ(completed.load(), total);
  EXPECT_EQ(bad_answers.load(), 0) << bad_example;
  EXPECT_EQ(leased_by.size(), static_cast<std::size_t>(total));
  std::map<int, int> per_worker;
  for (const auto& [id, by] : leased_by) {
    EXPECT_EQ(by.size(), 1u) << id << " was leased " << by.size() << " times";
    EXPECT_EQ(enqueued.count(id), 1u) << id << " was never enqueued";
    for (int w : by)
      ++per_worker[w];
  }
  EXPECT_EQ(counts(queue()), counts_of(0, 0, total, 0, 0));
  std::printf("[ jobs     ] leases per worker:");
  for (const auto& [w, n] : per_worker)
    std::printf(" w%d=%d", w, n);
  std::printf("\n");
}

// ===========================================================================
// Queue counts and metrics
// ===========================================================================

// Verifies GET /v1/queues/{q} counts every state exactly and oldest_queued_age_ms is null
// without queued jobs and the age of the oldest queued job (delayed ones included) else.
TEST_F(JobsTest, QueueStatsCountEveryStateAndTheOldestQueuedAge) {
  auto empty = queue_stats(queue());
  EXPECT_EQ(str(empty, "queue"), queue());
  EXPECT_EQ(at(empty, "counts"), counts_of(0, 0, 0, 0, 0));
  EXPECT_TRUE(at(empty, "oldest_queued_age_ms").is_null()) << empty;

  // One of each: running, succeeded, dead, a delayed queued one, and failed.
  auto run = enqueue(queue(), json::object{{"type", "task"}});
  auto ok = enqueue(queue(), json::object{{"type", "task"}});
  auto dead = enqueue(queue(), json::object{{"type", "task"}});
  auto leases = take(queue(), 3);
  ASSERT_EQ(leases.size(), 3u);
  std::map<std::string, std::string> lease_of;
  for (const auto& l : leases)
    lease_of[l.id] = l.lease_id;
  ASSERT_EQ(complete(ok, lease_of[ok], json::object{}).status, 200u);
  ASSERT_EQ(act(dead, "fail", json::object{{"lease_id", lease_of[dead]}, {"retry", false}}).status,
            200u);
  auto stats = queue_stats(queue());
  EXPECT_EQ(at(stats, "counts"), counts_of(0, 1, 1, 0, 1));
  EXPECT_TRUE(at(stats, "oldest_queued_age_ms").is_null()) << "a running job is not queued";

  auto later = enqueue(queue(), json::object{{"type", "task"}, {"delay_ms", 600000}});
  ASSERT_FALSE(later.empty());
  const auto created = time_of(job(later), "created_at");
  std::this_thread::sleep_for(milliseconds(150));
  stats = queue_stats(queue());
  const auto now = unix_ms_now();
  EXPECT_EQ(at(stats, "counts"), counts_of(1, 1, 1, 0, 1)) << "a delayed job is queued";
  auto age = num(stats, "oldest_queued_age_ms");
  EXPECT_GE(age, 150) << stats;
  EXPECT_LE(static_cast<std::uint64_t>(age), now - created + 1) << stats;

  auto failed = lease_of[run];
  ASSERT_EQ(
    act(run, "fail", json::object{{"lease_id", failed}, {"error", "e"}, {"retry", true}}).status,
    200u);
  // Failed until a worker leases it again, also once its retry is due.
  std::this_thread::sleep_for(milliseconds(100));
  EXPECT_EQ(at(queue_stats(queue()), "counts"), counts_of(1, 0, 1, 1, 1));
}

// Verifies /metrics counts jobs by (queue, type): enqueued, completed, failed attempts and
// dead jobs, and the shoal_jobs gauge by state.
TEST_F(JobsTest, MetricsCountJobsByQueueAndType) {
  std::vector<std::string> noops;
  for (int i = 0; i < 3; ++i)
    noops.push_back(enqueue(queue(), json::object{{"type", "noop"}}));
  auto hook = enqueue(queue(), json::object{{"type", "webhook"},
                                            {"max_attempts", 2},
                                            {"payload", {{"url", hooks_.url("/fail")}}}});
  auto parked = enqueue(queue(), json::object{{"type", "task"}, {"delay_ms", 600000}});
  ASSERT_EQ(str(wait_state(hook, {"dead"}), "state"), "dead");
  for (const auto& id : noops)
    ASSERT_EQ(str(wait_state(id, {"succeeded"}), "state"), "succeeded");
  ASSERT_FALSE(parked.empty());
  ASSERT_EQ(counts(queue()), counts_of(1, 0, 3, 0, 1));
  auto text = metrics();
  auto value = [&](std::string_view family, std::map<std::string, std::string> labels) {
    return metric(text, family, labels).value_or(-1);
  };
  const auto q = queue();
  EXPECT_EQ(value("shoal_jobs_enqueued_total", {{"queue", q}, {"type", "noop"}}), 3);
  EXPECT_EQ(value("shoal_jobs_enqueued_total", {{"queue", q}, {"type", "webhook"}}), 1);
  EXPECT_EQ(value("shoal_jobs_enqueued_total", {{"queue", q}, {"type", "task"}}), 1);
  EXPECT_EQ(value("shoal_jobs_completed_total", {{"queue", q}, {"type", "noop"}}), 3);
  EXPECT_EQ(value("shoal_jobs_dead_total", {{"queue", q}, {"type", "webhook"}}), 1);
  EXPECT_EQ(value("shoal_jobs", {{"queue", q}, {"state", "queued"}}), 1);
  EXPECT_EQ(value("shoal_jobs", {{"queue", q}, {"state", "succeeded"}}), 3);
  EXPECT_EQ(value("shoal_jobs", {{"queue", q}, {"state", "dead"}}), 1);
  EXPECT_EQ(value("shoal_jobs", {{"queue", q}, {"state", "running"}}), 0);
  EXPECT_EQ(value("shoal_job_run_seconds_count", {{"queue", q}, {"type", "noop"}}), 3);
  EXPECT_EQ(value("shoal_job_start_latency_seconds_count", {{"queue", q}, {"type", "noop"}}), 3);
  // The parked job is the oldest queued one: enqueued moments ago.
  const auto age = value("shoal_jobs_oldest_queued_age_seconds", {{"queue", q}});
  EXPECT_GE(age, 0);
  EXPECT_LT(age, 60);
}

// Verifies shoal_jobs_failed_total counts every failed attempt, as docs/jobs.md says
// ("attempts that failed (a retry or dead follows)"): a job dead after 2 failed attempts
// counts 2.
TEST_F(JobsTest, FailedTotalCountsEveryFailedAttemptAsDocumented) {
  auto hook = enqueue(queue(), json::object{{"type", "webhook"},
                                            {"max_attempts", 2},
                                            {"payload", {{"url", hooks_.url("/fail")}}}});
  ASSERT_EQ(str(wait_state(hook, {"dead"}), "state"), "dead");
  ASSERT_EQ(hooks_.count(hook), 2u);
  EXPECT_EQ(job_counter("shoal_jobs_failed_total", queue(), "webhook"), 2)
    << "two attempts failed; the second was followed by dead";
  EXPECT_EQ(job_counter("shoal_jobs_dead_total", queue(), "webhook"), 1);
}

// ===========================================================================
// The error contract: every refusal is a JSON 4xx and changes nothing
// ===========================================================================

// Verifies each malformed enqueue is refused with its documented status and code, and that
// the queue's counts and the enqueued metric are unchanged afterwards.
TEST_F(JobsTest, BadEnqueueRequestsAre4xxAndChangeNothing) {
  ASSERT_FALSE(enqueue(queue(), json::object{{"type", "task"}}).empty());
  const auto counts_before = counts(queue());
  const auto enqueued_before = job_counter("shoal_jobs_enqueued_total", queue(), "task");
  ASSERT_EQ(enqueued_before, 1);
  const auto target = jobs_of(queue());
  struct bad {
    std::string target;
    std::string body;
    std::string content_type;
    unsigned status;
    std::string code;
  };
  const std::string ct = "application/json";
  const std::vector<bad> cases{
    {"/v1/queues/bad!name/jobs", R"({"type":"task"})", ct, 400, "invalid_name"},
    {"/v1/queues/a.b/jobs", R"({"type":"task"})", ct, 400, "invalid_name"},
    {"/v1/queues/" + std::string(65, 'q') + "/jobs", R"({"type":"task"})", ct, 400, "invalid_name"},
    {target, R"({})", ct, 400, "invalid_job"},
    {target, R"({"payload":{}})", ct, 400, "invalid_job"},
    {target, R"({"type":""})", ct, 400, "invalid_job"},
    {target, R"({"type":"a b"})", ct, 400, "invalid_job"},
    {target, R"({"type":"a/b"})", ct, 400, "invalid_job"},
    {target, R"({"type":")" + std::string(65, 't') + R"("})", ct, 400, "invalid_job"},
    {target, R"({"type":7})", ct, 400, "invalid_job"},
    {target, R"({"type":"task","payload":[1]})", ct, 400, "invalid_job"},
    {target, R"({"type":"task","payload":"s"})", ct, 400, "invalid_job"},
    {target, R"({"type":"task","payload":null})", ct, 400, "invalid_job"},
    {target, R"({"type":"task","payload":3})", ct, 400, "invalid_job"},
    {target, R"({"type":"task","delay_ms":-1})", ct, 400, "invalid_job"},
    {target, R"({"type":"task","delay_ms":604800001})", ct, 400, "invalid_job"},
    {target, R"({"type":"task","delay_ms":1e30})", ct, 400, "invalid_job"},
    {target, R"({"type":"task","delay_ms":1.5})", ct, 400, "invalid_job"},
    {target, R"({"type":"task","delay_ms":"10"})", ct, 400, "invalid_job"},
    {target, R"({"type":"task","max_attempts":0})", ct, 400, "invalid_job"},
    {target, R"({"type":"task","max_attempts":101})", ct, 400, "invalid_job"},
    {target, R"({"type":"task","max_attempts":2.5})", ct, 400, "invalid_job"},
    {target, R"({"type":"task","idempotency_key":""})", ct, 400, "invalid_job"},
    {target, R"({"type":"task","idempotency_key":"a b"})", ct, 400, "invalid_job"},
    {target, R"({"type":"task","idempotency_key":")" + std::string(257, 'k') + R"("})", ct, 400,
     "invalid_job"},
    {target, R"({"type":"task","idempotency_key":5})", ct, 400, "invalid_job"},
    {target, R"({"type":"task","priority":1})", ct, 400, "unknown_field"},
    {target, R"({"type":"task")", ct, 400, "invalid_json"},
    {target, "not json", ct, 400, "invalid_json"},
    {target, "", ct, 400, "invalid_json"},
    {target, R"({"type":"task"})", "text/plain", 415, "unsupported_media_type"},
    {target, R"({"type":"task"})", "application/x-www-form-urlencoded", 415,
     "unsupported_media_type"},
  };
  for (const auto& c : cases) {
    auto res = client().request("POST", c.target, c.body, {{"Content-Type", c.content_type}});
    expect_error(res, c.status, c.code, c.target + " " + c.body + " (" + c.content_type + ")");
    EXPECT_FALSE(res.header("Location")) << c.body;
  }
  EXPECT_EQ(counts(queue()), counts_before);
  EXPECT_EQ(job_counter("shoal_jobs_enqueued_total", queue(), "task"), enqueued_before);
  // The limits themselves are fine.
  for (const auto& ok :
       {R"({"type":"task","delay_ms":604800000,"max_attempts":100})",
        R"({"type":"task","max_attempts":1,"delay_ms":1e3,"idempotency_key":"a.b:c@d_e-f"})"}) {
    auto res = client().request("POST", target, ok, json_type);
    EXPECT_EQ(res.status, 202u) << ok << ": " << res.body;
  }
}

// Verifies a body that is JSON but not an object is refused with 400 invalid_json, as the
// error table of docs/jobs.md says ("the body is not JSON, or not an object").
TEST_F(JobsTest, BodyThatIsNotAnObjectIsInvalidJobAsDocumented) {
  for (const char* body : {"[1]", "\"s\"", "3", "null"}) {
    auto res = client().request("POST", jobs_of(queue()), body, json_type);
    expect_error(res, 400, "invalid_job", body);
  }
  EXPECT_EQ(counts(queue()), counts_of(0, 0, 0, 0, 0));
}

// Verifies each out-of-range or malformed lease body is refused with 400 (415 for another
// media type) and leases nothing: the queued job stays queued at attempt 0.
TEST_F(JobsTest, BadLeaseRequestsAre4xxAndLeaseNothing) {
  auto id = enqueue(queue(), json::object{{"type", "task"}});
  ASSERT_FALSE(id.empty());
  const auto target = "/v1/queues/" + queue() + "/lease";
  const std::vector<std::pair<std::string, std::string>> cases{
    {R"({"max":0})", "invalid_job"},
    {R"({"max":101})", "invalid_job"},
    {R"({"max":-1})", "invalid_job"},
    {R"({"max":"1"})", "invalid_job"},
    {R"({"max":1.5})", "invalid_job"},
    {R"({"wait_ms":60001})", "invalid_job"},
    {R"({"wait_ms":-1})", "invalid_job"},
    {R"({"visibility_ms":999})", "invalid_job"},
    {R"({"visibility_ms":43200001})", "invalid_job"},
    {R"({"max":1,"types":["task"]})", "unknown_field"},
    {R"({"max":)", "invalid_json"},
  };
  for (const auto& [body, code] : cases)
    expect_error(client().request("POST", target, body, json_type), 400, code, body);
  expect_error(client().request("POST", target, R"({"max":1})", {{"Content-Type", "text/plain"}}),
               415, "unsupported_media_type", "text/plain");
  expect_error(client().request("POST", "/v1/queues/bad!q/lease", "{}", json_type), 400,
               "invalid_name", "bad queue name");
  auto j = job(id);
  EXPECT_EQ(str(j, "state"), "queued") << j;
  EXPECT_EQ(num(j, "attempts"), 0);
  EXPECT_EQ(counts(queue()), counts_of(1, 0, 0, 0, 0));
  // The limits themselves are fine.
  auto res =
    client().request("POST", target, R"({"max":100,"visibility_ms":1000,"wait_ms":0})", json_type);
  EXPECT_EQ(res.status, 200u) << res.body;
}

// Verifies malformed complete and fail bodies are 400 and change nothing (the lease still
// holds the job afterwards).
TEST_F(JobsTest, BadCompleteAndFailRequestsAre4xxAndChangeNothing) {
  auto id = enqueue(queue(), json::object{{"type", "task"}});
  auto got = take(queue(), 1);
  ASSERT_EQ(got.size(), 1u);
  const auto lease_id = got[0].lease_id;
  const auto before = job(id);
  const std::string base = "/v1/jobs/" + id;
  const std::vector<std::tuple<std::string, std::string, std::string>> cases{
    {"/complete", R"({})", "invalid_job"},
    {"/complete", R"({"lease_id":""})", "invalid_job"},
    {"/complete", R"({"lease_id":5})", "invalid_job"},
    {"/complete", R"({"lease_id":")" + lease_id + R"(","extra":1})", "unknown_field"},
    {"/complete", "", "invalid_json"},
    {"/fail", R"({"error":"x"})", "invalid_job"},
    {"/fail", R"({"lease_id":")" + lease_id + R"(","retry":"no"})", "invalid_job"},
    {"/fail", R"({"lease_id":")" + lease_id + R"(","error":7})", "invalid_job"},
    {"/fail", R"({"lease_id":")" + lease_id + R"(","error":")" + std::string(4097, 'e') + R"("})",
     "invalid_job"},
    {"/retry", R"({"now":true})", "unknown_field"},
  };
  for (const auto& [action, body, code] : cases)
    expect_error(client().request("POST", base + action, body, json_type), 400, code,
                 action + " " + body.substr(0, 80));
  expect_error(client().request("POST", base + "/complete", R"({"lease_id":")" + lease_id + R"("})",
                                {{"Content-Type", "text/plain"}}),
               415, "unsupported_media_type", "text/plain complete");
  EXPECT_EQ(job(id), before);
  EXPECT_EQ(complete(id, lease_id, json::object{}).status, 200u) << "the lease still holds";
}

// Verifies unknown job ids and strings that are not job ids are 404 not_found on every job
// route.
TEST_F(JobsTest, UnknownAndMalformedJobIdsAre404) {
  for (const std::string& id : std::vector<std::string>{
         "00000" + std::string(16, '0'), // well formed, never created
         "00001abcdef0123456789",        // well formed, never created
         "fffff0123456789abcdef",        // a shard the node does not have
         "nope",                         // not a job id
         "00000ABCDEF0123456789",        // upper case
         "00000abcdef01234567890",       // one digit too many
         "0000abcdef0123456789",         // one too few
       }) {
    expect_error(client().get("/v1/jobs/" + id), 404, "not_found", "GET " + id);
    expect_error(complete(id, "0123456789abcdef", json::object{}), 404, "not_found",
                 "complete " + id);
    expect_error(act(id, "fail", json::object{{"lease_id", "0123456789abcdef"}}), 404, "not_found",
                 "fail " + id);
    expect_error(act(id, "retry", json::object{}), 404, "not_found", "retry " + id);
  }
}

// Verifies a lease holds only its own job: completing job A with job B's lease id (another
// queue's) is 409 and leaves A running, while each lease completes its own job.
TEST_F(JobsTest, ALeaseHoldsOnlyItsOwnJob) {
  auto a = enqueue(queue("a"), json::object{{"type", "task"}});
  auto b = enqueue(queue("b"), json::object{{"type", "task"}});
  auto la = take(queue("a"), 1);
  auto lb = take(queue("b"), 1);
  ASSERT_EQ(la.size(), 1u);
  ASSERT_EQ(lb.size(), 1u);
  ASSERT_EQ(la[0].id, a);
  ASSERT_EQ(lb[0].id, b);
  const auto before = job(a);
  expect_error(complete(a, lb[0].lease_id, json::object{}), 409, "stale_lease", "A with B's lease");
  expect_error(act(a, "fail", json::object{{"lease_id", lb[0].lease_id}, {"retry", false}}), 409,
               "stale_lease", "fail A with B's lease");
  EXPECT_EQ(job(a), before);
  EXPECT_EQ(complete(b, lb[0].lease_id, json::object{{"b", 1}}).status, 200u);
  EXPECT_EQ(complete(a, la[0].lease_id, json::object{{"a", 1}}).status, 200u);
  EXPECT_EQ(at(job(a), "result"), (json::object{{"a", 1}}));
  EXPECT_EQ(at(job(b), "result"), (json::object{{"b", 1}}));
}

// ===========================================================================
// The shell worker of docs/jobs.md
// ===========================================================================

/// The `#!/bin/sh` block of docs/jobs.md, or "" when it is not there.
std::string doc_shell_worker() {
  std::ifstream in(std::string(SHOAL_SOURCE_DIR) + "/docs/jobs.md");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto start = text.find("#!/bin/sh");
  if (start == std::string::npos) return {};
  auto end = text.find("```", start);
  if (end == std::string::npos) return {};
  return text.substr(start, end - start);
}

// Verifies the shell worker loop printed in docs/jobs.md works as written (only the node's
// address changed): it completes the jobs its command succeeds on and fails the others,
// which retry and end dead. Needs curl and jq.
TEST_F(JobsTest, ShellWorkerFromTheDocsRunsJobs) {
  if (std::system("command -v jq >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "jq is not installed: the shell worker of docs/jobs.md needs it";
  if (std::system("command -v curl >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "curl is not installed: the shell worker of docs/jobs.md needs it";
  auto script = doc_shell_worker();
  ASSERT_FALSE(script.empty()) << "no #!/bin/sh block in docs/jobs.md";
  const std::string address = "node=http://127.0.0.1:8080";
  auto at_address = script.find(address);
  ASSERT_NE(at_address, std::string::npos) << "the script no longer sets " << address;
  script.replace(at_address, address.size(), "node=http://127.0.0.1:" + std::to_string(port()));
  ASSERT_TRUE(contains(script, "/v1/queues/images/lease")) << script;

  temp_dir dir{"shoal-shell-worker"};
  {
    std::ofstream(dir / "worker.sh") << script;
    // The command the loop runs per job: fails for paths containing "bad".
    std::ofstream(dir / "resize.sh") << "#!/bin/sh\necho \"$1\" >> resized.txt\n"
                                        "case \"$1\" in *bad*) exit 1;; esac\n";
  }
  std::filesystem::permissions(dir / "resize.sh", std::filesystem::perms::owner_all);

  // The queue "images" is the docs'; no other test uses it.
  std::vector<std::string> good;
  for (int i = 0; i < 3; ++i)
    good.push_back(
      enqueue("images", json::object{{"type", "resize"},
                                     {"payload", {{"path", "ok-" + std::to_string(i) + ".png"}}}}));
  auto bad = enqueue(
    "images",
    json::object{{"type", "resize"}, {"max_attempts", 2}, {"payload", {{"path", "bad.png"}}}});

  // setsid: the loop and its pipelines form a process group, stopped as one below.
  process_options opts;
  opts.binary = "/usr/bin/setsid";
  opts.args = {"/bin/sh", "-c", "cd '" + dir.path().string() + "' && exec /bin/sh worker.sh"};
  opts.log_file = dir / "worker.log";
  shoal_process worker{std::move(opts)};
  std::vector<json::value> last_seen;
  auto deadline = steady_clock::now() + patience;
  for (;;) {
    last_seen.clear();
    for (const auto& id : good)
      last_seen.push_back(job(id));
    last_seen.push_back(job(bad));
    bool settled = std::all_of(last_seen.begin(), last_seen.end(), [](const json::value& j) {
      auto s = str(j, "state");
      return s == "succeeded" || s == "dead";
    });
    if (settled || steady_clock::now() > deadline || !worker.running()) break;
    std::this_thread::sleep_for(milliseconds(50));
  }
  const bool was_running = worker.running();
  if (was_running) ::kill(-worker.pid(), SIGKILL); // the whole group: sh, curl, jq
  worker.kill9();
  EXPECT_TRUE(was_running) << "the worker exited; its output:\n" << worker.log();
  // The killed curl may have left a lease with wait_ms 10000 parked in the node (the node
  // does not notice that the client is gone). A job ends that poll now; it goes to the
  // dead client and stays leased, harmlessly here.
  ASSERT_FALSE(enqueue("images", json::object{{"type", "sentinel"}}).empty());
  for (std::size_t i = 0; i < good.size(); ++i) {
    EXPECT_EQ(str(last_seen[i], "state"), "succeeded") << last_seen[i];
    EXPECT_EQ(at(last_seen[i], "result"), (json::object{{"ok", true}})) << last_seen[i];
  }
  EXPECT_EQ(str(last_seen.back(), "state"), "dead") << last_seen.back();
  EXPECT_EQ(str(last_seen.back(), "error"), "resize failed") << last_seen.back();
  EXPECT_EQ(num(last_seen.back(), "attempts"), 2);
  auto resized = read_file(dir / "resized.txt");
  for (int i = 0; i < 3; ++i)
    EXPECT_TRUE(contains(resized, "ok-" + std::to_string(i) + ".png")) << resized;
  EXPECT_TRUE(contains(resized, "bad.png")) << resized;
}

// ===========================================================================
// storage.sync=true: replies wait for the fsync
// ===========================================================================

/// A node whose job metrics give 5 (queue, type) pairs series of their own.
struct bounded_metrics_node {
  static std::vector<std::string> sets() {
    return {"jobs.metrics_max_series=5"};
  }
};

class JobsMetricsBoundTest : public node_suite<bounded_metrics_node> {};

// Verifies /metrics stays bounded however many queue names clients invent: past
// jobs.metrics_max_series new names share the series "~other", which counts them all.
TEST_F(JobsMetricsBoundTest, InventedQueueNamesShareOneSeries) {
  for (int i = 0; i < 40; ++i) {
    auto res = client().request("POST", "/v1/queues/n" + std::to_string(i) + "/jobs",
                                R"({"type":"t"})", {{"Content-Type", "application/json"}});
    ASSERT_EQ(res.status, 202u) << res.body;
  }
  auto text = client().get("/metrics").body;
  std::set<std::string> queues;
  double other = 0;
  for (const auto& s : parse_samples(text)) {
    if (s.name != "shoal_jobs_enqueued_total") continue;
    queues.insert(s.labels.at("queue"));
    if (s.labels.at("queue") == "~other") other += s.value;
  }
  EXPECT_EQ(queues.size(), 6u) << "5 names and ~other";
  EXPECT_EQ(other, 35) << "the names past the bound are all counted";
  EXPECT_EQ(metric(text, "shoal_jobs", {{"queue", "~other"}, {"state", "queued"}}), 35.0);
}

struct jobs_sync_node {
  static std::vector<std::string> sets() {
    return {"storage.sync=true", "jobs.retry_base_ms=20", "jobs.retry_cap_ms=100"};
  }
};
class JobsSyncTest : public node_suite<jobs_sync_node> {};

// Verifies that with storage.sync=true every job runs once it is due: 1200 noop jobs with
// delays of 0 to 300 ms from four clients all succeed. (A lease reply held for the fsync
// must not make the broker forget a shard that announced due work meanwhile.)
TEST_F(JobsSyncTest, EveryDelayedJobRunsWithSyncOn) {
  constexpr int clients = 4;
  constexpr int per_client = 300;
  const auto q = collection();
  std::mutex mu;
  std::vector<std::string> ids;
  std::vector<std::thread> threads;
  for (int t = 0; t < clients; ++t) {
    threads.emplace_back([&, t] {
      http_client c{port(), 10s};
      for (int i = 0; i < per_client; ++i) {
        const int delay = (i * 37 + t * 11) % 301;
        auto res = post(c, "/v1/queues/" + q + "/jobs",
                        json::serialize(json::object{{"type", "noop"}, {"delay_ms", delay}}));
        std::lock_guard<std::mutex> lock(mu);
        EXPECT_EQ(res.status, 202u) << res.body;
        ids.push_back(str(res.json(), "id"));
      }
    });
  }
  for (auto& t : threads)
    t.join();
  // The last job is due 300 ms after its enqueue; 8 s leave room for a loaded machine.
  const auto deadline = steady_clock::now() + milliseconds(8000);
  json::value stats;
  for (;;) {
    stats = client().get("/v1/queues/" + q).json();
    if (num(at(stats, "counts"), "succeeded") == clients * per_client
        || steady_clock::now() > deadline)
      break;
    std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_EQ(num(at(stats, "counts"), "succeeded"), clients * per_client) << stats;
  int shown = 0;
  for (const auto& id : ids) {
    auto j = client().get("/v1/jobs/" + id).json();
    if (str(j, "state") != "succeeded" && ++shown <= 3)
      ADD_FAILURE() << "due " << unix_ms_now() - time_of(j, "run_at")
                    << " ms ago and not run: " << j;
  }
}

} // namespace
} // namespace shoal::test
