// SPDX-License-Identifier: Apache-2.0
// The node's job broker with real shard hosts over the in-memory store, on CAF's
// deterministic scheduler (tests/support/host_fixture.hpp): in-process handlers, worker
// bounds, retries, handler timeouts, external leases and long polls, drain. Nothing runs
// until the test runs the scheduler, and every timer (handler timeouts, the broker's
// sweep, long-poll waits, lease expiry, retry backoff) fires only when the test advances
// the actor clock: no sleeping, no threads of the test's own.
#include "workers/broker.hpp"

#include <algorithm>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <boost/json.hpp>
#include <caf/actor_cast.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>
#include <gtest/gtest.h>

#include "jobs/ids.hpp"
#include "storage/memory_store.hpp"
#include "tests/support/faulty_store.hpp"
#include "tests/support/host_fixture.hpp"
#include "workers/handlers.hpp"

namespace shoal::workers {
namespace {

using namespace std::chrono_literals;
using namespace jobs; // the messages of jobs and leases

constexpr std::uint32_t shard_count = 4;

/// Test → a held handler: answer your oldest job with success.
using finish_atom = caf::atom_constant<caf::atom("finish")>;

/// The jobs that `held` handlers run: each stays running until the test finishes it.
struct held_runs {
  std::deque<caf::actor> holders; ///< the handler of each run in flight, oldest first
  int running = 0;
  int peak = 0;
  int finished = 0;
};

/// A handler that answers later: it keeps each job's response promise until the test
/// sends it `finish_atom`.
caf::behavior held_handler(caf::event_based_actor* self, held_runs* runs) {
  auto pending = std::make_shared<std::deque<caf::typed_response_promise<job_outcome>>>();
  return {
    [=](job_run&) -> caf::result<job_outcome> {
      auto rp = self->make_response_promise<job_outcome>();
      pending->push_back(rp);
      runs->holders.push_back(caf::actor_cast<caf::actor>(self));
      runs->peak = std::max(runs->peak, ++runs->running);
      return rp;
    },
    [=](finish_atom) {
      if (pending->empty()) return;
      auto rp = std::move(pending->front());
      pending->pop_front();
      --runs->running;
      ++runs->finished;
      rp.deliver(job_outcome::success("null"));
    },
  };
}

class BrokerTest : public testing::host_fixture {
protected:
  /// `dead_stubs`: the broker's handles of the shards are actors that are gone, as a
  /// stub whose leader went down fails, and the shard hosts are its `replicas`.
  void start(config::jobs_settings settings = {}, bool dead_stubs = false) {
    settings.retry_base_ms = 10;
    settings.retry_cap_ms = 40;
    if (settings.handler_timeout_ms == 30'000) settings.handler_timeout_ms = 2'000;
    broker_config bc;
    bc.shards = &shards;
    if (dead_stubs) {
      bc.shards = &stubs;
      bc.replicas = &shards.handles;
      for (std::uint32_t i = 0; i < shard_count; ++i)
        // An empty behavior ends the actor at once. (The unused argument: CAF 0.17 binds
        // a null reference to a spawn's empty argument tuple, which UBSan reports.)
        stubs.handles.push_back(caf::actor_cast<protocol::shard_actor>(
          sys.spawn([](int) { return caf::behavior{}; }, 0)));
    }
    bc.shard_count = shard_count;
    for (std::uint32_t i = 0; i < shard_count; ++i)
      bc.local.push_back(i);
    bc.handlers = &handlers;
    bc.settings = settings;
    bc.incarnation = "test";
    bc.metrics = &metrics;
    broker = spawn_broker(sys, std::move(bc));
    for (std::uint32_t i = 0; i < shard_count; ++i) {
      host::host_config hc;
      hc.jobs.retry = jobs::retry_policy{settings.retry_base_ms, settings.retry_cap_ms};
      hc.jobs.metrics = &metrics;
      hc.jobs.incarnation = "test";
      hc.broker = broker;
      hc.peers = &shards;
      shards.handles.push_back(spawn(store, i, false, std::move(hc)));
    }
    start_broker(broker);
    settle();
  }

  ~BrokerTest() override {
    // The actors use the store, the metrics and the handlers: they end first.
    caf::anon_send_exit(broker, caf::exit_reason::user_shutdown);
    for (auto& s : shards.handles)
      caf::anon_send_exit(s, caf::exit_reason::user_shutdown);
    run();
  }

  /// Runs until idle, firing the delayed messages that fell due meanwhile (a timer armed
  /// for "now" is a delayed message too).
  void settle() {
    run();
    while (sched.advance_time(caf::timespan{0}) > 0)
      run();
  }

  /// Moves the actor clock by `d` and runs what falls due.
  void advance(std::chrono::milliseconds d) {
    sched.advance_time(std::chrono::duration_cast<caf::timespan>(d));
    settle();
  }

  const protocol::shard_actor& shard_of(const std::string& id) {
    auto s = job_shard(id);
    EXPECT_TRUE(s && *s < shard_count) << id;
    return shards.handles[s ? *s % shard_count : 0];
  }

  /// Enqueues on the shards in turn; returns the id the shard gave the job.
  std::string enqueue(const std::string& queue, const std::string& type, std::string payload = "{}",
                      std::uint64_t delay_ms = 0, std::uint32_t max_attempts = 3) {
    job_enqueue r;
    r.queue = queue;
    r.type = type;
    r.payload = std::move(payload);
    r.delay_ms = delay_ms;
    r.max_attempts = max_attempts;
    const auto shard = next_shard++ % shard_count;
    auto reply = call(shards.handles[shard], std::move(r));
    settle();
    EXPECT_TRUE(reply) << reply.error().to_string();
    if (!reply) return {};
    EXPECT_TRUE(reply->created);
    EXPECT_EQ(job_shard(reply->id), shard);
    return reply->id;
  }

  boost::json::object get(const std::string& id) {
    auto reply = call(shard_of(id), job_get{id});
    EXPECT_TRUE(reply) << reply.error().to_string();
    if (!reply) return {};
    return boost::json::parse(reply->json).as_object();
  }

  std::string state(const std::string& id) {
    auto j = get(id);
    auto it = j.find("state");
    return it == j.end() ? std::string("(none)") : std::string(it->value().as_string());
  }

  /// An external worker's lease, as the edge sends it: the capture fills while the
  /// scheduler runs.
  std::shared_ptr<testing::capture<leased_jobs>> lease_async(const std::string& queue,
                                                             std::uint32_t max,
                                                             std::uint32_t wait_ms,
                                                             std::uint32_t visibility_ms = 30'000) {
    queue_lease r;
    r.queue = queue;
    r.max = max;
    r.wait_ms = wait_ms;
    r.visibility_ms = visibility_ms;
    return send(broker, std::move(r));
  }

  /// A lease that must be answered without the clock moving.
  leased_jobs lease(const std::string& queue, std::uint32_t max, std::uint32_t wait_ms,
                    std::uint32_t visibility_ms = 30'000) {
    auto c = lease_async(queue, max, wait_ms, visibility_ms);
    settle();
    EXPECT_EQ(c->deliveries, 1);
    return c->ready() ? c->value() : leased_jobs{};
  }

  /// The counts of `queue` summed over every shard, as the edge sums them.
  core::result<job_counts> stats(const std::string& queue) {
    std::vector<std::shared_ptr<testing::capture<job_counts>>> parts;
    for (const auto& s : shards.handles)
      parts.push_back(send(s, queue_stats{queue}));
    settle();
    std::vector<core::result<job_counts>> answers;
    for (const auto& p : parts) {
      EXPECT_EQ(p->deliveries, 1);
      if (!p->last) return core::error{core::errc::internal, "a shard did not answer"};
      answers.push_back(*p->last);
    }
    return sum_counts(std::move(answers));
  }

  storage::memory_store memory{shard_count};
  testing::faulty_store store{memory};
  job_metrics metrics;
  handler_registry handlers;
  held_runs held;
  protocol::shard_handles shards;
  protocol::shard_handles stubs; ///< see start()
  protocol::broker_actor broker;
  std::uint32_t next_shard = 0;
};

// Verifies in-process handlers run each of 40 jobs exactly once and their results are
// stored.
TEST_F(BrokerTest, InProcessHandlerRunsEveryJobOnce) {
  std::map<std::string, int> runs;
  handlers.add_function("count", [&](const job_run& run) {
    ++runs[run.id];
    return job_outcome::success(R"({"seen":")" + run.id + "\"}");
  });
  start();
  std::vector<std::string> ids;
  for (int i = 0; i < 40; ++i)
    ids.push_back(enqueue("q", "count"));
  settle();
  for (const auto& id : ids) {
    auto j = get(id);
    ASSERT_EQ(j.at("state"), "succeeded") << id;
    EXPECT_EQ(j.at("result").at("seen").as_string(), id.c_str());
    EXPECT_EQ(j.at("attempts"), 1);
  }
  EXPECT_EQ(runs.size(), 40u);
  for (const auto& [id, n] : runs)
    EXPECT_EQ(n, 1) << id;
  EXPECT_EQ(metrics.of("q", "count").completed.value(), 40u);
}

// Verifies a lease the shard fails (its store refuses the write) does not strand the
// job: the shard announced it already and does not announce it again, so the broker asks
// that shard again after a pause, and the job runs once the store writes again.
TEST_F(BrokerTest, AFailedLeaseIsAskedAgainAfterAPause) {
  int runs = 0;
  handlers.add_function("count", [&](const job_run&) {
    ++runs;
    return job_outcome::success("null");
  });
  start();
  // The enqueue writes; the broker's lease, the next write, fails.
  int to_pass = 1;
  bool armed = true;
  store.fail_write_if = [&](const storage::write_batch&) {
    if (!armed || to_pass-- > 0) return false;
    armed = false;
    return true;
  };
  auto id = enqueue("q", "count");
  EXPECT_EQ(store.failed_writes, 1) << "the broker's lease should have been refused";
  EXPECT_EQ(runs, 0);
  EXPECT_EQ(state(id), "queued");
  advance(100ms);
  EXPECT_EQ(runs, 0) << "a failed shard rests before it is asked again";
  advance(200ms);
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(state(id), "succeeded");
}

// Verifies in-process handlers lease an announced shard from this node's own replica,
// not through the shard's stub: with every stub failing (its leader gone), the jobs of
// the local replicas still run, each once.
TEST_F(BrokerTest, AnnouncedWorkIsLeasedFromTheLocalReplica) {
  std::map<std::string, int> runs;
  handlers.add_function("count", [&](const job_run& run) {
    ++runs[run.id];
    return job_outcome::success("null");
  });
  start({}, true);
  std::vector<std::string> ids;
  for (int i = 0; i < 8; ++i)
    ids.push_back(enqueue("q", "count"));
  settle();
  for (const auto& id : ids) {
    EXPECT_EQ(state(id), "succeeded") << id;
    EXPECT_EQ(runs[id], 1) << id;
  }
  // An external worker's lease of an announced shard goes the same way.
  auto late = enqueue("q", "other");
  auto got = lease("q", 1, 0);
  ASSERT_EQ(got.jobs.size(), 1u);
  EXPECT_EQ(got.jobs[0].id, late);
}

// Verifies a queue's `workers` bound how many of its jobs run at once: with 2 workers
// and handlers that answer only when told, exactly 2 run at every moment until fewer
// than 2 are left, and a freed slot is filled at once (issue 19 item 7).
TEST_F(BrokerTest, WorkersBoundHowManyJobsRunAtOnce) {
  auto* runs = &held;
  handlers.add("slow", [runs](caf::actor_system& sys) -> handler_actor {
    return caf::actor_cast<handler_actor>(sys.spawn(held_handler, runs));
  });
  config::jobs_settings s;
  s.queues.push_back({"q", 2});
  start(s);
  std::vector<std::string> ids;
  for (int i = 0; i < 12; ++i)
    ids.push_back(enqueue("q", "slow"));
  settle();
  ASSERT_EQ(held.running, 2) << "2 workers must run 2 jobs at once";
  std::size_t running_jobs = 0;
  for (const auto& id : ids)
    running_jobs += state(id) == "running" ? 1 : 0;
  EXPECT_EQ(running_jobs, 2u);
  while (held.finished < 12) {
    ASSERT_EQ(held.running, std::min(2, 12 - held.finished)) << held.finished << " finished";
    ASSERT_FALSE(held.holders.empty());
    caf::anon_send(held.holders.front(), finish_atom::value);
    held.holders.pop_front();
    settle();
  }
  EXPECT_EQ(held.running, 0);
  EXPECT_EQ(held.peak, 2);
  for (const auto& id : ids)
    EXPECT_EQ(state(id), "succeeded") << id;
}

// Verifies a handler's retryable failures retry after the backoff (not before) until
// max_attempts, and the job dies with the last attempt's error.
TEST_F(BrokerTest, RetryableFailuresRetryThenDieWithTheLastError) {
  int attempts = 0;
  handlers.add_function("flaky", [&](const job_run& run) {
    ++attempts;
    return job_outcome::failure("attempt " + std::to_string(run.attempt) + " failed", true);
  });
  start();
  auto id = enqueue("q", "flaky", "{}", 0, 3);
  EXPECT_EQ(attempts, 1);
  EXPECT_EQ(state(id), "failed");
  // Backoff base 10 ms: the first retry comes 5 to 10 ms later, the second 10 to 20.
  advance(4ms);
  EXPECT_EQ(attempts, 1);
  advance(6ms);
  EXPECT_EQ(attempts, 2);
  EXPECT_EQ(state(id), "failed");
  advance(9ms);
  EXPECT_EQ(attempts, 2);
  advance(11ms);
  EXPECT_EQ(attempts, 3);
  auto j = get(id);
  EXPECT_EQ(j.at("state"), "dead");
  EXPECT_EQ(j.at("attempts"), 3);
  EXPECT_EQ(j.at("error"), "attempt 3 failed");
  advance(1000ms);
  EXPECT_EQ(attempts, 3);
}

// Verifies a failure the handler marks final makes the job dead after one attempt.
TEST_F(BrokerTest, AFinalFailureDiesAtOnce) {
  handlers.add_function("picky",
                        [](const job_run&) { return job_outcome::failure("bad payload", false); });
  start();
  auto id = enqueue("q", "picky", "{}", 0, 5);
  auto j = get(id);
  EXPECT_EQ(j.at("state"), "dead");
  EXPECT_EQ(j.at("attempts"), 1);
  EXPECT_EQ(j.at("error"), "bad payload");
}

// Verifies a handler that never answers fails its attempt once handler_timeout_ms has
// passed on the clock (the broker's sweep), not before.
TEST_F(BrokerTest, AHandlerThatDoesNotAnswerFailsItsAttempt) {
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
  EXPECT_EQ(state(id), "running");
  advance(99ms);
  EXPECT_EQ(state(id), "running");
  advance(1ms);
  auto j = get(id);
  EXPECT_EQ(j.at("state"), "dead");
  EXPECT_EQ(j.at("error"), "the handler did not answer within 100 ms");
}

// Verifies a handler function that throws fails its attempt with the exception's text.
TEST_F(BrokerTest, AHandlerThatThrowsFailsItsAttempt) {
  handlers.add_function("throws",
                        [](const job_run&) -> job_outcome { throw std::runtime_error("kaput"); });
  start();
  auto id = enqueue("q", "throws", "{}", 0, 1);
  auto j = get(id);
  EXPECT_EQ(j.at("state"), "dead");
  EXPECT_EQ(j.at("error"), "the handler threw: kaput");
}

// Verifies jobs of a type without an in-process handler stay queued for an external
// worker, who leases them through the broker.
TEST_F(BrokerTest, JobsWithoutAHandlerWaitForAnExternalWorker) {
  handlers.add_function("local", [](const job_run&) { return job_outcome::success("1"); });
  start();
  auto external = enqueue("q", "elsewhere");
  auto local = enqueue("q", "local");
  EXPECT_EQ(state(local), "succeeded");
  EXPECT_EQ(state(external), "queued");
  auto reply = lease("q", 10, 0);
  ASSERT_EQ(reply.jobs.size(), 1u);
  EXPECT_EQ(reply.jobs[0].id, external);
  EXPECT_EQ(reply.jobs[0].type, "elsewhere");
  EXPECT_EQ(reply.jobs[0].attempt, 1u);
  EXPECT_EQ(state(external), "running");
}

// Verifies a queue configured with 0 workers is never run in process, only leased.
TEST_F(BrokerTest, AQueueWithNoWorkersIsLeftToExternalWorkers) {
  int runs = 0;
  handlers.add_function("t", [&](const job_run&) {
    ++runs;
    return job_outcome::success("1");
  });
  config::jobs_settings s;
  s.queues.push_back({"ext", 0});
  start(s);
  auto id = enqueue("ext", "t");
  EXPECT_EQ(state(id), "queued");
  auto reply = lease("ext", 1, 0);
  ASSERT_EQ(reply.jobs.size(), 1u);
  EXPECT_EQ(reply.jobs[0].id, id);
  EXPECT_EQ(runs, 0);
}

// Verifies a parked long poll is answered as soon as a job arrives, without the clock
// moving (not at the end of its wait).
TEST_F(BrokerTest, ALongPollReturnsAsSoonAsWorkArrives) {
  start();
  auto poll = lease_async("q", 5, 5000);
  settle();
  EXPECT_FALSE(poll->ready()) << "answered before any job existed";
  EXPECT_EQ(metrics.lease_waiters.value(), 1) << "the parked poll is not counted";
  auto id = enqueue("q", "ext");
  ASSERT_TRUE(poll->ready());
  EXPECT_EQ(metrics.lease_waiters.value(), 0);
  EXPECT_EQ(poll->deliveries, 1);
  auto reply = poll->value();
  ASSERT_EQ(reply.jobs.size(), 1u);
  EXPECT_EQ(reply.jobs[0].id, id);
}

// Verifies a long poll with nothing to lease answers empty exactly when its wait ends.
TEST_F(BrokerTest, ALongPollWithNothingAnswersEmptyAfterItsWait) {
  start();
  auto poll = lease_async("q", 5, 300);
  settle();
  EXPECT_FALSE(poll->ready());
  advance(299ms);
  EXPECT_FALSE(poll->ready()) << "answered before its wait ended";
  advance(1ms);
  ASSERT_TRUE(poll->ready());
  EXPECT_EQ(poll->deliveries, 1);
  EXPECT_TRUE(poll->value().jobs.empty());
}

// Verifies a drain answers parked long polls at once, and polls during the drain do not
// wait.
TEST_F(BrokerTest, ADrainAnswersParkedPollsAtOnce) {
  start();
  auto poll = lease_async("q", 5, 30'000);
  settle();
  ASSERT_FALSE(poll->ready());
  drain_broker(broker);
  settle();
  ASSERT_TRUE(poll->ready());
  EXPECT_TRUE(poll->value().jobs.empty());
  // A poll during the drain does not wait either.
  auto during = lease_async("q", 1, 30'000);
  settle();
  ASSERT_TRUE(during->ready());
  EXPECT_TRUE(during->value().jobs.empty());
}

// Verifies parked pollers are each given one job of a burst, none twice.
TEST_F(BrokerTest, ParkedPollersAllGetWorkWhenABurstArrives) {
  start();
  std::vector<std::shared_ptr<testing::capture<leased_jobs>>> polls;
  for (int i = 0; i < 3; ++i)
    polls.push_back(lease_async("q", 1, 5000));
  settle();
  for (const auto& p : polls)
    ASSERT_FALSE(p->ready());
  std::set<std::string> ids;
  for (int i = 0; i < 3; ++i)
    ids.insert(enqueue("q", "ext"));
  std::set<std::string> got;
  for (const auto& p : polls) {
    ASSERT_TRUE(p->ready());
    EXPECT_EQ(p->deliveries, 1);
    auto reply = p->value();
    ASSERT_EQ(reply.jobs.size(), 1u);
    got.insert(reply.jobs[0].id);
  }
  EXPECT_EQ(got, ids); // each job to one poller, none twice
}

// Verifies a leased job is held until its lease expires on the clock, then handed out
// again (after the retry backoff) as attempt 2 with a new lease, the old one stale.
TEST_F(BrokerTest, AnExpiredLeaseHandsTheJobOutAgain) {
  start();
  auto id = enqueue("q", "ext");
  auto first = lease("q", 1, 0, 1000);
  ASSERT_EQ(first.jobs.size(), 1u);
  EXPECT_TRUE(lease("q", 1, 0).jobs.empty()); // held by the lease
  auto second = lease_async("q", 1, 5000);
  settle();
  advance(999ms);
  EXPECT_FALSE(second->ready()) << "handed out before its lease expired";
  EXPECT_EQ(state(id), "running");
  advance(1ms);
  EXPECT_EQ(state(id), "failed");
  EXPECT_FALSE(second->ready()) << "handed out before its retry backoff";
  advance(10ms); // the backoff: 5 to 10 ms
  ASSERT_TRUE(second->ready());
  auto again = second->value();
  ASSERT_EQ(again.jobs.size(), 1u);
  EXPECT_EQ(again.jobs[0].id, id);
  EXPECT_EQ(again.jobs[0].attempt, 2u);
  EXPECT_NE(again.jobs[0].lease_id, first.jobs[0].lease_id);
  auto stale = call(shard_of(id), job_complete{id, first.jobs[0].lease_id, "null", false});
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().code(), core::errc::conflict);
  EXPECT_EQ(stale.error().name(), "stale_lease");
}

// Verifies the counts of a queue summed over every shard (as the edge sums them) show
// queued, running and the oldest queued job, and an unknown queue counts nothing.
TEST_F(BrokerTest, StatsSumEveryShard) {
  start();
  for (int i = 0; i < 8; ++i)
    enqueue("q", "ext");
  enqueue("q", "ext", "{}", 60'000);
  auto leased = lease("q", 3, 0);
  ASSERT_EQ(leased.jobs.size(), 3u);
  auto counts = stats("q");
  ASSERT_TRUE(counts) << counts.error().to_string();
  EXPECT_EQ(counts->queued, 6u);
  EXPECT_EQ(counts->running, 3u);
  EXPECT_GT(counts->oldest_queued_ms, 0u);
  auto other = stats("other");
  ASSERT_TRUE(other);
  EXPECT_EQ(other->queued, 0u);
  EXPECT_EQ(other->running, 0u);
}

} // namespace
} // namespace shoal::workers
