// SPDX-License-Identifier: Apache-2.0
// The node's job broker with real shard actors over the in-memory store, on CAF's
// threaded scheduler (leases, retries and long polls run on real timers).
#include "jobs/broker.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include <boost/json.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/exit_reason.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <gtest/gtest.h>

#include "actors/shard_actor.hpp"
#include "actors/type_ids.hpp"
#include "jobs/handlers.hpp"
#include "jobs/ids.hpp"
#include "storage/memory_store.hpp"

namespace shoal::jobs {
namespace {

using namespace std::chrono_literals;

constexpr std::uint32_t shard_count = 4;

class promise_sink final : public job_sink {
public:
  void deliver(job_reply&& reply) override {
    promise_.set_value(std::move(reply));
  }
  std::future<job_reply> future() {
    return promise_.get_future();
  }

private:
  std::promise<job_reply> promise_;
};

struct system_config : caf::actor_system_config {
  system_config() {
    set("logger.file-verbosity", caf::atom("quiet"));
    set("scheduler.max-threads", std::size_t{2});
    add_message_types<caf::id_block::shoal>();
  }
};

class broker_test : public ::testing::Test {
protected:
  void start(config::jobs_settings settings = {}) {
    settings.retry_base_ms = 10;
    settings.retry_cap_ms = 40;
    if (settings.handler_timeout_ms == 30'000) settings.handler_timeout_ms = 2'000;
    broker_config bc;
    bc.shards = &shards;
    bc.shard_count = shard_count;
    for (std::uint32_t i = 0; i < shard_count; ++i)
      bc.local.push_back(i);
    bc.handlers = &handlers;
    bc.settings = settings;
    bc.incarnation = "test";
    broker = spawn_broker(sys, std::move(bc));
    actors::job_hosting jh;
    jh.retry = retry_policy{settings.retry_base_ms, settings.retry_cap_ms};
    jh.metrics = &metrics;
    jh.broker = broker;
    jh.incarnation = "test";
    for (std::uint32_t i = 0; i < shard_count; ++i)
      shards.handles.push_back(
        actors::spawn_shard(sys, actors::shard_config{i, &store, false, {}, {}, jh, {}}));
    start_broker(broker);
  }

  ~broker_test() override {
    caf::anon_send_exit(broker, caf::exit_reason::user_shutdown);
    for (auto& s : shards.handles)
      caf::anon_send_exit(s, caf::exit_reason::user_shutdown);
    // The actors use the store, the metrics and the handlers declared after the system.
    sys.await_all_actors_done();
  }

  job_reply send(job_request req, std::chrono::milliseconds within = 5s) {
    auto sink = std::make_shared<promise_sink>();
    auto f = sink->future();
    if (req.op == job_op::lease || req.op == job_op::stats)
      caf::anon_send(broker, std::move(req), job_sink_ptr{sink});
    else
      caf::anon_send(shards.handles[*job_shard(req.id)], std::move(req), job_sink_ptr{sink});
    if (f.wait_for(within) != std::future_status::ready) {
      ADD_FAILURE() << "no reply within " << within.count() << " ms";
      return job_reply{job_status::unavailable, {}, "no reply", {}, {}, {}};
    }
    return f.get();
  }

  std::string enqueue(const std::string& queue, const std::string& type, std::string payload = "{}",
                      std::uint64_t delay_ms = 0, std::uint32_t max_attempts = 3) {
    job_request r;
    r.op = job_op::enqueue;
    r.queue = queue;
    r.type = type;
    r.body = std::move(payload);
    r.delay_ms = delay_ms;
    r.max_attempts = max_attempts;
    r.id = make_job_id(next_shard++ % shard_count, ++next_id);
    auto reply = send(r);
    EXPECT_EQ(reply.status, job_status::created) << reply.message;
    return r.id;
  }

  boost::json::object get(const std::string& id) {
    job_request r;
    r.op = job_op::get;
    r.id = id;
    auto reply = send(r);
    EXPECT_EQ(reply.status, job_status::ok) << reply.message;
    return boost::json::parse(reply.body).as_object();
  }

  /// Polls until job `id` is in `state`, for at most `within`.
  bool reaches(const std::string& id, const char* state, std::chrono::milliseconds within = 5s) {
    auto until = std::chrono::steady_clock::now() + within;
    while (std::chrono::steady_clock::now() < until) {
      if (get(id).at("state") == state) return true;
      std::this_thread::sleep_for(5ms);
    }
    return false;
  }

  job_reply lease(const std::string& queue, std::uint32_t max, std::uint32_t wait_ms,
                  std::uint32_t visibility_ms = 30'000) {
    job_request r;
    r.op = job_op::lease;
    r.queue = queue;
    r.max = max;
    r.wait_ms = wait_ms;
    r.visibility_ms = visibility_ms;
    return send(r, std::chrono::milliseconds(wait_ms) + 5s);
  }

  system_config cfg;
  caf::actor_system sys{cfg};
  storage::memory_store store{shard_count};
  job_metrics metrics;
  handler_registry handlers;
  actors::shard_handles shards;
  caf::actor broker;
  std::uint32_t next_shard = 0;
  std::uint64_t next_id = 0;
};

TEST_F(broker_test, in_process_handler_runs_every_job_once) {
  std::mutex mu;
  std::map<std::string, int> runs;
  handlers.add_function("count", [&](const job_run& run) {
    std::lock_guard<std::mutex> lock(mu);
    ++runs[run.id];
    return job_outcome::success(R"({"seen":")" + run.id + "\"}");
  });
  start();
  std::vector<std::string> ids;
  for (int i = 0; i < 40; ++i)
    ids.push_back(enqueue("q", "count"));
  for (const auto& id : ids) {
    ASSERT_TRUE(reaches(id, "succeeded")) << id;
    EXPECT_EQ(get(id).at("result").at("seen").as_string(), id);
    EXPECT_EQ(get(id).at("attempts"), 1);
  }
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(runs.size(), 40u);
  for (const auto& [id, n] : runs)
    EXPECT_EQ(n, 1) << id;
}

TEST_F(broker_test, workers_bound_how_many_jobs_run_at_once) {
  std::atomic<int> now{0};
  std::atomic<int> peak{0};
  handlers.add_function("slow", [&](const job_run&) {
    int n = ++now;
    int p = peak.load();
    while (n > p && !peak.compare_exchange_weak(p, n)) {
    }
    std::this_thread::sleep_for(20ms);
    --now;
    return job_outcome::success("null");
  });
  config::jobs_settings s;
  s.queues.push_back({"q", 2});
  start(s);
  std::vector<std::string> ids;
  for (int i = 0; i < 12; ++i)
    ids.push_back(enqueue("q", "slow"));
  for (const auto& id : ids)
    ASSERT_TRUE(reaches(id, "succeeded"));
  EXPECT_LE(peak.load(), 2);
}

TEST_F(broker_test, retryable_failures_retry_then_die_with_the_last_error) {
  std::atomic<int> attempts{0};
  handlers.add_function("flaky", [&](const job_run& run) {
    ++attempts;
    return job_outcome::failure("attempt " + std::to_string(run.attempt) + " failed", true);
  });
  start();
  auto id = enqueue("q", "flaky", "{}", 0, 3);
  ASSERT_TRUE(reaches(id, "dead"));
  auto j = get(id);
  EXPECT_EQ(j.at("attempts"), 3);
  EXPECT_EQ(j.at("error"), "attempt 3 failed");
  EXPECT_EQ(attempts.load(), 3);
}

TEST_F(broker_test, a_final_failure_dies_at_once) {
  handlers.add_function("picky",
                        [](const job_run&) { return job_outcome::failure("bad payload", false); });
  start();
  auto id = enqueue("q", "picky", "{}", 0, 5);
  ASSERT_TRUE(reaches(id, "dead"));
  EXPECT_EQ(get(id).at("attempts"), 1);
}

TEST_F(broker_test, a_handler_that_does_not_answer_fails_its_attempt) {
  // (Spawned with an argument: CAF 0.17 mishandles function-based spawns without one.)
  handlers.add("mute", [](caf::actor_system& sys) -> handler_actor {
    return sys.spawn(
      [](handler_actor::pointer self, int) -> handler_actor::behavior_type {
        return {[self](job_run&) -> caf::result<job_outcome> {
          return self->make_response_promise<job_outcome>(); // never delivered
        }};
      },
      0);
  });
  config::jobs_settings s;
  s.handler_timeout_ms = 100;
  start(s);
  auto id = enqueue("q", "mute", "{}", 0, 1);
  ASSERT_TRUE(reaches(id, "dead"));
  EXPECT_EQ(get(id).at("error"), "the handler did not answer within 100 ms");
}

TEST_F(broker_test, a_handler_that_throws_fails_its_attempt) {
  handlers.add_function("throws",
                        [](const job_run&) -> job_outcome { throw std::runtime_error("kaput"); });
  start();
  auto id = enqueue("q", "throws", "{}", 0, 1);
  ASSERT_TRUE(reaches(id, "dead"));
  EXPECT_EQ(get(id).at("error"), "the handler threw: kaput");
}

TEST_F(broker_test, jobs_without_a_handler_wait_for_an_external_worker) {
  handlers.add_function("local", [](const job_run&) { return job_outcome::success("1"); });
  start();
  auto external = enqueue("q", "elsewhere");
  auto local = enqueue("q", "local");
  ASSERT_TRUE(reaches(local, "succeeded"));
  EXPECT_EQ(get(external).at("state"), "queued");
  auto reply = lease("q", 10, 0);
  ASSERT_EQ(reply.jobs.size(), 1u);
  EXPECT_EQ(reply.jobs[0].id, external);
  EXPECT_EQ(reply.jobs[0].type, "elsewhere");
  EXPECT_EQ(reply.jobs[0].attempt, 1u);
}

TEST_F(broker_test, a_queue_with_no_workers_is_left_to_external_workers) {
  std::atomic<int> runs{0};
  handlers.add_function("t", [&](const job_run&) {
    ++runs;
    return job_outcome::success("1");
  });
  config::jobs_settings s;
  s.queues.push_back({"ext", 0});
  start(s);
  auto id = enqueue("ext", "t");
  auto reply = lease("ext", 1, 0);
  ASSERT_EQ(reply.jobs.size(), 1u);
  EXPECT_EQ(reply.jobs[0].id, id);
  EXPECT_EQ(runs.load(), 0);
}

TEST_F(broker_test, a_long_poll_returns_as_soon_as_work_arrives) {
  start();
  auto pending = std::async(std::launch::async, [&] { return lease("q", 5, 5000); });
  std::this_thread::sleep_for(100ms); // parked by now
  auto began = std::chrono::steady_clock::now();
  auto id = enqueue("q", "ext");
  auto reply = pending.get();
  auto waited = std::chrono::steady_clock::now() - began;
  ASSERT_EQ(reply.jobs.size(), 1u);
  EXPECT_EQ(reply.jobs[0].id, id);
  EXPECT_LT(waited, 2s); // not the whole wait
}

TEST_F(broker_test, a_long_poll_with_nothing_answers_empty_after_its_wait) {
  start();
  auto began = std::chrono::steady_clock::now();
  auto reply = lease("q", 5, 300);
  auto waited = std::chrono::steady_clock::now() - began;
  EXPECT_EQ(reply.status, job_status::ok);
  EXPECT_TRUE(reply.jobs.empty());
  EXPECT_GE(waited, 300ms);
}

TEST_F(broker_test, a_drain_answers_parked_polls_at_once) {
  start();
  auto pending = std::async(std::launch::async, [&] { return lease("q", 5, 30'000); });
  std::this_thread::sleep_for(100ms); // parked by now
  auto began = std::chrono::steady_clock::now();
  drain_broker(broker);
  auto reply = pending.get();
  EXPECT_EQ(reply.status, job_status::ok);
  EXPECT_TRUE(reply.jobs.empty());
  EXPECT_LT(std::chrono::steady_clock::now() - began, 5s);
  // A poll during the drain does not wait either.
  began = std::chrono::steady_clock::now();
  EXPECT_TRUE(lease("q", 1, 30'000).jobs.empty());
  EXPECT_LT(std::chrono::steady_clock::now() - began, 5s);
}

TEST_F(broker_test, parked_pollers_all_get_work_when_a_burst_arrives) {
  start();
  std::vector<std::future<job_reply>> polls;
  for (int i = 0; i < 3; ++i)
    polls.push_back(std::async(std::launch::async, [&] { return lease("q", 1, 5000); }));
  std::this_thread::sleep_for(100ms);
  std::set<std::string> ids;
  for (int i = 0; i < 3; ++i)
    ids.insert(enqueue("q", "ext"));
  std::set<std::string> got;
  for (auto& p : polls) {
    auto reply = p.get();
    ASSERT_EQ(reply.jobs.size(), 1u);
    got.insert(reply.jobs[0].id);
  }
  EXPECT_EQ(got, ids); // each job to one poller, none twice
}

TEST_F(broker_test, an_expired_lease_hands_the_job_out_again) {
  start();
  auto id = enqueue("q", "ext");
  auto first = lease("q", 1, 0, 1000);
  ASSERT_EQ(first.jobs.size(), 1u);
  EXPECT_TRUE(lease("q", 1, 0).jobs.empty()); // held by the lease
  auto second = lease("q", 1, 5000);          // after expiry and the retry backoff
  ASSERT_EQ(second.jobs.size(), 1u);
  EXPECT_EQ(second.jobs[0].id, id);
  EXPECT_EQ(second.jobs[0].attempt, 2u);
  EXPECT_NE(second.jobs[0].lease_id, first.jobs[0].lease_id);
  job_request stale;
  stale.op = job_op::complete;
  stale.id = id;
  stale.key = first.jobs[0].lease_id;
  stale.body = "null";
  EXPECT_EQ(send(stale).status, job_status::stale_lease);
}

TEST_F(broker_test, stats_sum_every_shard) {
  start();
  for (int i = 0; i < 8; ++i)
    enqueue("q", "ext");
  enqueue("q", "ext", "{}", 60'000);
  auto leased = lease("q", 3, 0);
  ASSERT_EQ(leased.jobs.size(), 3u);
  job_request r;
  r.op = job_op::stats;
  r.queue = "q";
  auto reply = send(r);
  ASSERT_EQ(reply.status, job_status::ok);
  EXPECT_EQ(reply.counts.queued, 6u);
  EXPECT_EQ(reply.counts.running, 3u);
  EXPECT_GT(reply.counts.oldest_queued_ms, 0u);
  r.queue = "other";
  EXPECT_EQ(send(r).counts.queued, 0u);
}

} // namespace
} // namespace shoal::jobs
