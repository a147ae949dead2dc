// SPDX-License-Identifier: Apache-2.0
// Crash tests of durable job queues: while clients enqueue jobs, webhook jobs run against a
// slow receiver in this process and an external worker leases, completes, fails and
// abandons jobs, the node is killed with SIGKILL at a random moment and restarted on the
// same data directory, several times. Afterwards every job that was acknowledged with 202
// must exist and end succeeded or dead (docs/jobs.md, "Guarantees"):
//
// - durable enqueue: no acknowledged job is lost, and its idempotency key still finds it;
// - at least once: a webhook the receiver was holding (not answered) when the node died
//   is delivered again after the restart;
// - nothing runs after it was reported done: no webhook delivery after the test saw the
//   job succeeded, no external lease requested after a complete was answered 200;
// - attempts grow: each delivery or lease of a job carries a higher attempt than the one
//   before (a lease is durable before the job is handed out).
//
// How many jobs ran more than once is printed and recorded as the property "duplicates".
// The random delays come from std::mt19937 seeded from the clock; the seed is printed.
// Set SHOAL_CRASH_SEED=<seed> to replay a run's delays.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "tests/support/http_client.hpp"
#include "tests/support/shoal_process.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/webhook_receiver.hpp"
#include "tests/support/json_members.hpp"

namespace shoal::test {
namespace {

namespace json = boost::json;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr int enqueuers = 3;
constexpr auto enqueue_pause = milliseconds(25); ///< per enqueuer, between two enqueues
constexpr int max_attempts = 20;
constexpr auto drain_limit = milliseconds(30000); /// drains take about 2 s
const std::string hook_queue = "crash-hooks";
const std::string ext_queue = "crash-ext";
const header_list json_type{{"Content-Type", "application/json"}};

std::uint32_t pick_seed() {
  if (const char* s = std::getenv("SHOAL_CRASH_SEED"); s != nullptr && *s != '\0')
    return static_cast<std::uint32_t>(std::strtoul(s, nullptr, 10));
  return static_cast<std::uint32_t>(std::chrono::system_clock::now().time_since_epoch().count());
}

/// The value of the first sample `name{...}` whose label list contains `labels`, or -1.
double sample(const std::string& text, const std::string& name, const std::string& labels) {
  std::size_t pos = 0;
  while ((pos = text.find(name + "{", pos)) != std::string::npos) {
    auto eol = text.find('\n', pos);
    auto line = text.substr(pos, eol == std::string::npos ? std::string::npos : eol - pos);
    pos += name.size();
    auto close = line.find("} ");
    if (close == std::string::npos || line.find(labels) > close) continue;
    return std::strtod(line.c_str() + close + 2, nullptr);
  }
  return -1;
}

/// One lease the external worker got, and what became of it.
struct lease_event {
  std::string lease_id;
  std::int64_t attempt = 0;
  steady_clock::time_point requested; ///< when the lease request was sent
  /// The worker's side: completed (200), failed or abandoned on purpose, stale (409), or
  /// cut: the node died before the worker's complete or fail was answered, or sent.
  enum class end { pending, completed, failed, abandoned, stale, cut } outcome = end::pending;
};

/// What the test knows, shared by its threads.
struct ledger {
  std::mutex mu;
  std::map<std::string, bool> acked;                              ///< job id → is a webhook job
  std::map<std::string, std::string> key_of;                      ///< job id → idempotency key
  std::map<std::string, std::vector<lease_event>> leases;         ///< external jobs
  std::map<std::string, steady_clock::time_point> completed;      ///< first complete answered 200
  std::map<std::string, steady_clock::time_point> seen_succeeded; ///< webhook jobs, by GET
  std::size_t unexpected = 0;
  std::string unexpected_example;

  void unexpected_answer(const std::string& what) {
    std::lock_guard<std::mutex> lock(mu);
    ++unexpected;
    unexpected_example = what;
  }
};

/// Enqueues webhook and external jobs alternately until the node dies or `stop` is set.
void run_enqueuer(std::uint16_t port, int cycle, int t, const webhook_receiver& hooks,
                  std::uint32_t seed, const std::atomic<bool>& stop, ledger& book) {
  std::mt19937 rng{seed};
  std::uniform_int_distribution<int> slow_ms{20, 300};
  http_client c{port, 2s};
  for (int i = 0; !stop.load(); ++i) {
    const bool hook = i % 2 == 0;
    const auto key =
      "c" + std::to_string(cycle) + "-t" + std::to_string(t) + "-i" + std::to_string(i);
    json::object body{{"max_attempts", max_attempts}, {"idempotency_key", key}};
    if (hook) {
      body["type"] = "webhook";
      body["payload"] = {{"url", hooks.url("/slow?ms=" + std::to_string(slow_ms(rng)))},
                         {"body", {{"key", key}}}};
    } else {
      body["type"] = "ext.task";
      body["payload"] = {{"key", key}};
    }
    auto res = c.try_request("POST", "/v1/queues/" + (hook ? hook_queue : ext_queue) + "/jobs",
                             json::serialize(body), json_type);
    if (!res) return; // the node died
    if (res->status == 202) {
      std::lock_guard<std::mutex> lock(book.mu);
      auto id = str(res->json(), "id");
      book.acked[id] = hook;
      book.key_of[id] = key;
    } else {
      book.unexpected_answer("enqueue: " + std::to_string(res->status) + " " + res->body);
    }
    std::this_thread::sleep_for(enqueue_pause);
  }
}

/// The external worker: leases with a 1 s visibility and completes (60 %), fails with a
/// retry (15 %) or abandons (25 %) each job; completes everything once `drain` is set.
/// Survives the node's deaths: it reconnects to whatever `port` says.
void run_worker(const std::atomic<std::uint16_t>& port, std::uint32_t seed,
                const std::atomic<bool>& drain, const std::atomic<bool>& stop, ledger& book) {
  std::mt19937 rng{seed};
  std::uniform_int_distribution<int> percent{0, 99};
  std::uniform_int_distribution<int> work_ms{0, 30};
  std::unique_ptr<http_client> c;
  std::uint16_t connected = 0;
  while (!stop.load()) {
    if (!c || connected != port.load()) {
      connected = port.load();
      c = std::make_unique<http_client>(connected, 3s);
    }
    const auto requested = steady_clock::now();
    auto res = c->try_request("POST", "/v1/queues/" + ext_queue + "/lease",
                              R"({"max":5,"visibility_ms":1000,"wait_ms":200})", json_type);
    if (!res) {
      c.reset();
      std::this_thread::sleep_for(milliseconds(30));
      continue;
    }
    const auto answer = res->json();
    const auto* o = answer.if_object();
    const auto* list = res->status == 200 && o ? o->if_contains("jobs") : nullptr;
    if (!list || !list->is_array()) {
      book.unexpected_answer("lease: " + std::to_string(res->status) + " " + res->body);
      continue;
    }
    // Note every lease first, so that none is missed when the node dies halfway.
    std::vector<std::pair<std::string, lease_event>> got;
    for (const auto& j : list->get_array())
      got.emplace_back(str(j, "id"), lease_event{str(j, "lease_id"), num(j, "attempt"), requested});
    bool node_died = false;
    for (auto& [id, lease] : got) {
      using end = lease_event::end;
      const int roll = drain.load() ? 0 : percent(rng);
      if (node_died) {
        lease.outcome = end::cut;
      } else if (roll >= 75) {
        lease.outcome = end::abandoned;
      } else {
        std::this_thread::sleep_for(milliseconds(work_ms(rng)));
        const bool fail = roll >= 60;
        json::object body{{"lease_id", lease.lease_id}};
        if (fail) {
          body["error"] = "failing on purpose";
          body["retry"] = true;
        } else {
          body["result"] = {{"lease_id", lease.lease_id}};
        }
        auto done = c->try_request("POST", "/v1/jobs/" + id + (fail ? "/fail" : "/complete"),
                                   json::serialize(body), json_type);
        if (!done) {
          node_died = true; // the lease runs out by itself, or the complete went through
          lease.outcome = end::cut;
        } else if (done->status == 409 && done->error_code() == "stale_lease") {
          lease.outcome = end::stale;
        } else if (done->status != 200) {
          book.unexpected_answer("complete/fail: " + std::to_string(done->status) + " "
                                 + done->body);
        } else {
          lease.outcome = fail ? end::failed : end::completed;
          if (!fail) {
            std::lock_guard<std::mutex> lock(book.mu);
            book.completed.emplace(id, steady_clock::now());
          }
        }
      }
      std::lock_guard<std::mutex> lock(book.mu);
      book.leases[id].push_back(lease);
    }
  }
}

/// Notes when each acknowledged webhook job is first seen succeeded.
void run_observer(const std::atomic<std::uint16_t>& port, const std::atomic<bool>& stop,
                  ledger& book) {
  std::unique_ptr<http_client> c;
  std::uint16_t connected = 0;
  while (!stop.load()) {
    std::vector<std::string> todo;
    {
      std::lock_guard<std::mutex> lock(book.mu);
      for (const auto& [id, hook] : book.acked)
        if (hook && book.seen_succeeded.count(id) == 0) todo.push_back(id);
    }
    for (const auto& id : todo) {
      if (stop.load()) break;
      if (!c || connected != port.load()) {
        connected = port.load();
        c = std::make_unique<http_client>(connected, 3s);
      }
      auto res = c->try_request("GET", "/v1/jobs/" + id);
      if (!res) {
        c.reset();
        std::this_thread::sleep_for(milliseconds(30));
        break;
      }
      if (res->status == 200 && str(res->json(), "state") == "succeeded") {
        std::lock_guard<std::mutex> lock(book.mu);
        book.seen_succeeded.emplace(id, steady_clock::now());
      }
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
}

/// A webhook delivery held by the receiver when the node was killed.
struct held_at_kill {
  std::string job_id;
  unsigned attempt = 0;
  steady_clock::time_point killed;
  int cycle = 0;
};

void run_job_crash_cycles(bool sync, int cycles) {
  const auto seed = pick_seed();
  std::printf("[ crash    ] jobs, storage.sync=%s seed=%u (SHOAL_CRASH_SEED=%u replays it)\n",
              sync ? "true" : "false", seed, seed);
  const auto test_start = steady_clock::now();
  std::mt19937 rng{seed};
  std::uniform_int_distribution<int> run_ms{400, 1200};
  temp_dir dir{"shoal-jobs-crash"};
  const std::vector<std::string> sets{std::string("storage.sync=") + (sync ? "true" : "false"),
                                      "jobs.retry_base_ms=20", "jobs.retry_cap_ms=200",
                                      "jobs.workers=8", "jobs.webhook_allow=127.0.0.1"};
  webhook_receiver hooks;
  ledger book;
  std::vector<held_at_kill> held;
  std::size_t held_at_last_kill = 0;

  auto node = start_node(dir / "data", dir / "cycle-0.log", sets);
  std::atomic<std::uint16_t> port{node->port()};
  std::atomic<bool> drain{false};
  std::atomic<bool> stop_all{false};
  std::thread worker(run_worker, std::cref(port), seed + 1, std::cref(drain), std::cref(stop_all),
                     std::ref(book));
  std::thread observer(run_observer, std::cref(port), std::cref(stop_all), std::ref(book));
  auto stop_helpers = [&] {
    stop_all = true;
    if (worker.joinable()) worker.join();
    if (observer.joinable()) observer.join();
  };
  // Joins them however this function ends (a fatal failure returns early).
  struct at_exit {
    std::function<void()> run;
    ~at_exit() {
      run();
    }
  } join_helpers{stop_helpers};

  for (int cycle = 0; cycle < cycles; ++cycle) {
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < enqueuers; ++t)
      threads.emplace_back(run_enqueuer, node->port(), cycle, t, std::cref(hooks),
                           seed + 100 * static_cast<std::uint32_t>(cycle + 1) + t, std::cref(stop),
                           std::ref(book));
    const auto delay = milliseconds(run_ms(rng));
    std::this_thread::sleep_for(delay);
    // Hold every answer: what the receiver holds now was provably not answered before the
    // kill, so the node cannot have completed it.
    hooks.hold_answers();
    auto unanswered = hooks.unanswered();
    const auto killed = steady_clock::now();
    node->kill9();
    stop = true;
    for (auto& t : threads)
      t.join();
    hooks.release_answers();
    if (node->exit_status() != std::optional<int>(128 + SIGKILL)) {
      stop_helpers();
      FAIL() << "the node had exited before the kill; log:\n" << node->log();
    }
    for (const auto& r : unanswered)
      held.push_back({r.job_id(), r.attempt(), killed, cycle + 1});
    held_at_last_kill = unanswered.size();
    std::size_t acked = 0;
    {
      std::lock_guard<std::mutex> lock(book.mu);
      acked = book.acked.size();
    }
    try {
      node = start_node(dir / "data", dir / ("cycle-" + std::to_string(cycle + 1) + ".log"), sets);
    } catch (const std::exception& e) {
      stop_helpers();
      FAIL() << "restart " << cycle + 1 << " failed (seed " << seed << "): " << e.what();
    }
    port = node->port();
    std::printf("[ crash    ] cycle %d: killed after %d ms with %zu webhook deliveries held; "
                "%zu jobs acknowledged so far\n",
                cycle + 1, static_cast<int>(delay.count()), unanswered.size(), acked);
    std::fflush(stdout);
  }

  http_client client{node->port(), 5s};
  std::map<std::string, bool> acked;
  std::map<std::string, std::string> key_of;
  {
    std::lock_guard<std::mutex> lock(book.mu);
    acked = book.acked;
    key_of = book.key_of;
  }
  ASSERT_FALSE(acked.empty());

  // The idempotency keys of acknowledged jobs survived too: a repeat finds the first job.
  std::size_t keys_checked = 0;
  for (const auto& [id, hook] : acked) {
    if (keys_checked++ % 5 != 0) continue;
    json::object body{{"type", hook ? "webhook" : "ext.task"}, {"idempotency_key", key_of[id]}};
    auto res = client.try_request("POST", "/v1/queues/" + (hook ? hook_queue : ext_queue) + "/jobs",
                                  json::serialize(body), json_type);
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200u) << key_of[id] << ": " << res->body;
    EXPECT_EQ(str(res->json(), "id"), id) << key_of[id];
  }

  // Drain: the worker now completes everything; the receiver answers as before.
  drain = true;
  const auto drain_start = steady_clock::now();
  std::map<std::string, json::value> last_seen;
  std::set<std::string> pending;
  for (const auto& [id, hook] : acked)
    pending.insert(id);
  while (!pending.empty() && steady_clock::now() - drain_start < drain_limit) {
    for (auto it = pending.begin(); it != pending.end();) {
      auto res = client.try_request("GET", "/v1/jobs/" + *it);
      ASSERT_TRUE(res) << "the node stopped answering; log:\n" << node->log();
      auto j = res->json();
      auto state = str(j, "state");
      last_seen[*it] = j;
      if (res->status == 404 || state == "succeeded" || state == "dead")
        it = pending.erase(it);
      else
        ++it;
    }
    if (!pending.empty()) std::this_thread::sleep_for(milliseconds(50));
  }
  const auto drained = std::chrono::duration<double>(steady_clock::now() - drain_start).count();
  // Give a wrong extra delivery or lease a moment to show itself.
  std::this_thread::sleep_for(milliseconds(300));
  stop_helpers();
  const auto deliveries = hooks.requests();
  const auto metrics = client.try_request("GET", "/metrics");

  // -- every acknowledged job exists and is final ----------------------------------------
  std::size_t lost = 0, stuck = 0, dead = 0, succeeded = 0;
  for (const auto& [id, hook] : acked) {
    const auto& j = last_seen[id];
    auto state = str(j, "state");
    if (state.empty()) {
      if (++lost <= 10) ADD_FAILURE() << "lost: acknowledged job " << id << ": " << j;
    } else if (state == "succeeded") {
      ++succeeded;
    } else if (state == "dead") {
      if (++dead <= 10) ADD_FAILURE() << "dead: " << j;
    } else if (++stuck <= 10) {
      ADD_FAILURE() << "stuck after " << drain_limit.count() << " ms: " << j;
    }
  }
  EXPECT_EQ(lost, 0u);
  EXPECT_EQ(stuck, 0u);
  // Nothing here fails for good: a job fails only at a kill or by the worker's choice,
  // far fewer times than max_attempts.
  EXPECT_EQ(dead, 0u);

  // -- webhook jobs: deliveries ------------------------------------------------------------
  std::map<std::string, std::vector<const received_request*>> by_job;
  for (const auto& r : deliveries)
    by_job[r.job_id()].push_back(&r);
  std::map<std::string, steady_clock::time_point> seen_succeeded;
  std::map<std::string, std::vector<lease_event>> leases;
  std::map<std::string, steady_clock::time_point> completed;
  {
    std::lock_guard<std::mutex> lock(book.mu);
    seen_succeeded = book.seen_succeeded;
    leases = book.leases;
    completed = book.completed;
  }
  std::size_t duplicated_jobs = 0, extra_runs = 0, late = 0, not_growing = 0;
  for (const auto& [id, hook] : acked) {
    const auto& j = last_seen[id];
    if (!hook) continue;
    const auto& seen = by_job[id];
    if (str(j, "state") == "succeeded") {
      const auto* o = j.as_object().if_contains("result");
      EXPECT_TRUE(o && o->is_object() && num(*o, "status") == 200) << j;
      EXPECT_FALSE(seen.empty()) << "succeeded without a delivery: " << j;
      if (!seen.empty()) {
        EXPECT_EQ(static_cast<std::int64_t>(seen.back()->attempt()), num(j, "attempts"))
          << "the last delivery is the attempt that succeeded: " << j;
      }
    }
    if (seen.size() > 1) {
      ++duplicated_jobs;
      extra_runs += seen.size() - 1;
    }
    for (std::size_t k = 1; k < seen.size(); ++k)
      if (seen[k]->attempt() <= seen[k - 1]->attempt() && ++not_growing <= 10)
        ADD_FAILURE() << "job " << id << ": delivery " << k + 1 << " has attempt "
                      << seen[k]->attempt() << " after attempt " << seen[k - 1]->attempt();
    if (auto s = seen_succeeded.find(id); s != seen_succeeded.end())
      for (const auto* r : seen)
        if (r->received > s->second && ++late <= 10)
          ADD_FAILURE() << "job " << id << " was delivered again (attempt " << r->attempt()
                        << ") after the node reported it succeeded";
  }

  // -- webhook deliveries held at a kill ran again -----------------------------------------
  std::size_t rerun = 0, not_rerun = 0;
  for (const auto& h : held) {
    const auto& seen = by_job[h.job_id];
    bool again = std::any_of(seen.begin(), seen.end(), [&](const received_request* r) {
      return r->received > h.killed && r->attempt() > h.attempt;
    });
    if (again) {
      ++rerun;
    } else if (++not_rerun <= 10) {
      ADD_FAILURE() << "job " << h.job_id << " was being delivered (attempt " << h.attempt
                    << ") when the node was killed in cycle " << h.cycle
                    << " and was not delivered again: " << last_seen[h.job_id];
    }
  }
  if (!held.empty()) {
    EXPECT_GT(duplicated_jobs, 0u) << held.size() << " deliveries were cut by kills";
  }

  // -- external jobs: leases ----------------------------------------------------------------
  // A job leased again after a lease that a kill cut ran twice because of the crash; one
  // leased again after the worker failed or abandoned it did so on purpose.
  std::size_t ext_duplicated = 0, ext_late = 0;
  std::map<lease_event::end, std::size_t> ends;
  for (const auto& [id, hook] : acked) {
    if (hook) continue;
    const auto& j = last_seen[id];
    const auto& got = leases[id];
    bool again_after_cut = false;
    for (std::size_t k = 0; k < got.size(); ++k) {
      ++ends[got[k].outcome];
      if (k + 1 < got.size() && got[k].outcome == lease_event::end::cut) {
        again_after_cut = true;
        ++extra_runs;
      }
    }
    if (again_after_cut) ++ext_duplicated;
    for (std::size_t k = 1; k < got.size(); ++k)
      if (got[k].attempt <= got[k - 1].attempt && ++not_growing <= 10)
        ADD_FAILURE() << "job " << id << ": lease " << k + 1 << " has attempt " << got[k].attempt
                      << " after attempt " << got[k - 1].attempt;
    if (auto c = completed.find(id); c != completed.end())
      for (const auto& l : got)
        if (l.requested > c->second && ++ext_late <= 10)
          ADD_FAILURE() << "job " << id << " was leased again (attempt " << l.attempt
                        << ") after its complete was answered 200";
    if (str(j, "state") == "succeeded") {
      ASSERT_FALSE(got.empty()) << "succeeded without a lease: " << j;
      EXPECT_EQ(num(j, "attempts"), got.back().attempt) << j;
      const auto* r = j.as_object().if_contains("result");
      const auto by = r ? str(*r, "lease_id") : std::string();
      EXPECT_TRUE(
        std::any_of(got.begin(), got.end(), [&](const lease_event& l) { return l.lease_id == by; }))
        << "the stored result is not one the worker sent: " << j;
    }
  }
  EXPECT_EQ(late + ext_late, 0u);
  EXPECT_EQ(not_growing, 0u);
  {
    std::lock_guard<std::mutex> lock(book.mu);
    EXPECT_EQ(book.unexpected, 0u) << book.unexpected_example;
  }

  // -- in-process leases of the killed process count as expired ----------------------------
  ASSERT_TRUE(metrics && metrics->status == 200);
  const auto expired =
    sample(metrics->body, "shoal_jobs_lease_expired_total", "queue=\"" + hook_queue + "\"");
  if (held_at_last_kill > 0) {
    EXPECT_GE(expired, static_cast<double>(held_at_last_kill))
      << "the restart released the leases of the deliveries held at the last kill";
  }

  const auto duplicates = duplicated_jobs + ext_duplicated;
  ::testing::Test::RecordProperty("duplicates", static_cast<int>(duplicates));
  std::size_t hook_jobs = 0;
  for (const auto& [id, hook] : acked)
    hook_jobs += hook ? 1 : 0;
  const auto total = std::chrono::duration<double>(steady_clock::now() - test_start).count();
  std::printf("[ crash    ] sync=%s: %zu jobs acknowledged (%zu webhook, %zu external), "
              "%zu succeeded, %zu dead, %zu lost, %zu stuck; drained in %.1f s\n",
              sync ? "true" : "false", acked.size(), hook_jobs, acked.size() - hook_jobs, succeeded,
              dead, lost, stuck, drained);
  using end = lease_event::end;
  std::printf("[ crash    ] duplicates: %zu jobs ran again because of a kill (%zu webhook, %zu "
              "external; %zu extra runs); %zu deliveries held at kills, %zu of them ran again\n",
              duplicates, duplicated_jobs, ext_duplicated, extra_runs, held.size(), rerun);
  std::printf("[ crash    ] external leases: %zu completed, %zu failed and %zu abandoned on "
              "purpose, %zu cut by a kill, %zu stale; %.1f s in all\n",
              ends[end::completed], ends[end::failed], ends[end::abandoned], ends[end::cut],
              ends[end::stale], total);
  std::fflush(stdout);
  EXPECT_EQ(node->stop(SIGTERM), 0) << node->log();
}

// Verifies 5 rounds of kill -9 with storage.sync=false while jobs run lose no acknowledged
// job, leave none stuck, re-deliver the interrupted ones and never run a finished one.
TEST(JobsCrashTest, Kill9WithSyncOffLosesNoJobAndRunsEveryOneToTheEnd) {
  run_job_crash_cycles(false, 5);
}

// Verifies the same over 3 rounds with storage.sync=true.
TEST(JobsCrashTest, Kill9WithSyncOnLosesNoJobAndRunsEveryOneToTheEnd) {
  run_job_crash_cycles(true, 3);
}

} // namespace
} // namespace shoal::test
