// SPDX-License-Identifier: Apache-2.0
// The queue of one shard, on the in-memory store: states, ordering, leases, retries,
// recovery. Time is passed in, so every case is deterministic. Writes go through a
// committer the test controls: it writes to the store, or fails on command, and the
// queue must change its memory only after a commit succeeded.
#include "jobs/job_queue.hpp"
#include "jobs/ids.hpp"

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "storage/memory_store.hpp"

namespace shoal::jobs {
namespace {

constexpr std::uint64_t t0 = 1'700'000'000'000; // a fixed wall-clock time, in ms

/// Whether `r` failed with `code` (and the stable `name`, when given).
template <class T>
::testing::AssertionResult fails_with(const core::result<T>& r, core::errc code,
                                      const std::string& name = {}) {
  if (r) return ::testing::AssertionFailure() << "succeeded";
  if (r.error().code() != code || r.error().name() != name)
    return ::testing::AssertionFailure() << "failed with " << r.error().to_string();
  return ::testing::AssertionSuccess();
}

class JobQueueTest : public ::testing::Test {
protected:
  storage::memory_store store{1};
  job_metrics metrics;
  retry_policy policy{100, 1000};
  int commits = 0;                         ///< batches written through the committer
  std::optional<core::error> fail_commits; ///< while set, the committer fails with it
  std::unique_ptr<job_queue> q = make_queue(7);

  std::unique_ptr<job_queue> make_queue(std::uint64_t seed) {
    return std::make_unique<job_queue>(
      store.shard(0),
      [this](storage::write_batch&& batch) -> core::result<void> {
        if (fail_commits) return *fail_commits;
        ++commits;
        return store.shard(0).write(batch, false);
      },
      0, policy, &metrics, seed);
  }

  core::result<job_enqueued> enqueue(const std::string& type = "t", std::uint64_t delay = 0,
                                     std::uint32_t max_attempts = 3, const std::string& key = {},
                                     std::uint64_t now = t0) {
    job_enqueue r;
    r.queue = "q";
    r.type = type;
    r.payload = R"({"n":1})";
    r.idempotency_key = key;
    r.delay_ms = delay;
    r.max_attempts = max_attempts;
    return q->enqueue(r, now);
  }
  /// Enqueues a job that must be created; returns its id.
  std::string add(const std::string& type = "t", std::uint64_t delay = 0,
                  std::uint32_t max_attempts = 3, std::uint64_t now = t0) {
    auto r = enqueue(type, delay, max_attempts, {}, now);
    EXPECT_TRUE(r) << r.error().to_string();
    if (!r) return {};
    EXPECT_TRUE(r->created);
    return r->id;
  }
  core::result<lease_grant> try_lease(std::uint32_t max, std::uint64_t now,
                                      std::vector<std::string> types = {}, std::string owner = {},
                                      std::uint32_t visibility = 1000, bool from_broker = true) {
    job_lease r;
    r.queue = "q";
    r.max = max;
    r.visibility_ms = visibility;
    r.types = std::move(types);
    r.owner = std::move(owner);
    r.from_broker = from_broker;
    return q->lease(r, now);
  }
  lease_grant lease(std::uint32_t max, std::uint64_t now, std::vector<std::string> types = {},
                    std::string owner = {}, std::uint32_t visibility = 1000) {
    auto r = try_lease(max, now, std::move(types), std::move(owner), visibility);
    EXPECT_TRUE(r) << r.error().to_string();
    return r ? *r : lease_grant{};
  }
  core::result<job_view> complete(const std::string& id, const std::string& lease_id,
                                  std::uint64_t now, std::string result = R"({"ok":true})") {
    job_complete r;
    r.id = id;
    r.lease_id = lease_id;
    r.result = std::move(result);
    return q->complete(r, now);
  }
  core::result<job_view> fail(const std::string& id, const std::string& lease_id, std::uint64_t now,
                              bool retry = true, std::string error = "boom") {
    job_fail r;
    r.id = id;
    r.lease_id = lease_id;
    r.error = std::move(error);
    r.retry = retry;
    return q->fail(r, now);
  }
  boost::json::object job(const std::string& id) {
    auto r = q->get(job_get{id});
    EXPECT_TRUE(r) << r.error().to_string();
    if (!r) return {};
    EXPECT_EQ(r->id, id);
    return boost::json::parse(r->json).as_object();
  }
  job_counts counts() {
    return q->stats(queue_stats{"q"});
  }
  /// The job records stored in the shard.
  std::size_t stored_jobs() {
    std::size_t n = 0;
    auto s = store.shard(0).scan_prefix("j", [&](std::string_view, std::string_view) {
      ++n;
      return true;
    });
    EXPECT_TRUE(s);
    return n;
  }
};

// Verifies a record survives encode/decode and truncation, trailing bytes, an empty
// input and an unknown state are refused.
TEST_F(JobQueueTest, RecordRoundTripsAndRejectsCorruption) {
  job_record r;
  r.state = job_state::running;
  r.attempts = 2;
  r.max_attempts = 5;
  r.created_ms = t0;
  r.lease_until = t0 + 5;
  r.queue = "q";
  r.type = "webhook";
  r.payload = R"({"a":"\u0000"})";
  r.lease_id = "abc";
  auto bytes = encode(r);
  auto back = decode(bytes);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->state, job_state::running);
  EXPECT_EQ(back->attempts, 2u);
  EXPECT_EQ(back->lease_until, t0 + 5);
  EXPECT_EQ(back->payload, r.payload);
  EXPECT_EQ(back->lease_id, "abc");
  EXPECT_FALSE(decode(bytes.substr(0, bytes.size() - 1)));
  EXPECT_FALSE(decode(bytes + "x"));
  EXPECT_FALSE(decode(""));
  bytes[1] = 9; // no such state
  EXPECT_FALSE(decode(bytes));
}

// Verifies an enqueue writes one batch, answers {"id","state"} with a new id of this
// shard, and the job reads back queued with its payload, times and counts.
TEST_F(JobQueueTest, EnqueueThenGet) {
  auto r = enqueue();
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_TRUE(r->created);
  EXPECT_EQ(commits, 1);
  EXPECT_EQ(job_shard(r->id), 0u);
  auto body = boost::json::parse(r->json).as_object();
  EXPECT_EQ(body.at("id"), r->id.c_str());
  EXPECT_EQ(body.at("state"), "queued");
  auto j = job(r->id);
  EXPECT_EQ(j.at("id"), r->id.c_str());
  EXPECT_EQ(j.at("state"), "queued");
  EXPECT_EQ(j.at("attempts"), 0);
  EXPECT_EQ(j.at("queue"), "q");
  EXPECT_EQ(j.at("payload").at("n"), 1);
  EXPECT_TRUE(j.at("result").is_null());
  EXPECT_TRUE(j.at("error").is_null());
  EXPECT_EQ(j.at("created_at"), "2023-11-14T22:13:20.000Z");
  EXPECT_EQ(counts().queued, 1u);
  EXPECT_EQ(counts().oldest_queued_ms, t0);
  EXPECT_EQ(metrics.of("q", "t").enqueued.value(), 1u);
  EXPECT_TRUE(fails_with(q->get(job_get{make_job_id(0, 999)}), core::errc::not_found));
}

// Verifies a second enqueue with the same idempotency key writes nothing and answers the
// first job (created false), so only one job exists.
TEST_F(JobQueueTest, SameIdempotencyKeyReturnsTheFirstJob) {
  auto first = enqueue("t", 0, 3, "k1");
  ASSERT_TRUE(first);
  EXPECT_TRUE(first->created);
  const int written = commits;
  auto again = enqueue("t", 0, 3, "k1");
  ASSERT_TRUE(again) << again.error().to_string();
  EXPECT_FALSE(again->created);
  EXPECT_EQ(commits, written); // nothing written
  EXPECT_EQ(again->id, first->id);
  auto body = boost::json::parse(again->json).as_object();
  EXPECT_EQ(body.at("id"), first->id.c_str());
  EXPECT_EQ(body.at("idempotency_key"), "k1");
  EXPECT_EQ(counts().queued, 1u);
  EXPECT_EQ(stored_jobs(), 1u);
  EXPECT_EQ(metrics.of("q", "t").enqueued.value(), 1u);
}

// Verifies leases take the earliest due jobs across types, up to `max`, with distinct
// lease ids, and report which types are still due.
TEST_F(JobQueueTest, LeasesOldestFirstAcrossTypesAndUpToMax) {
  auto a = add("x", 0, 3, t0);
  auto b = add("y", 0, 3, t0 + 1);
  auto c = add("x", 0, 3, t0 + 2);
  auto grant = lease(2, t0 + 10);
  ASSERT_EQ(grant.jobs.size(), 2u);
  EXPECT_EQ(grant.jobs[0].id, a);
  EXPECT_EQ(grant.jobs[1].id, b);
  EXPECT_EQ(grant.jobs[0].attempt, 1u);
  EXPECT_EQ(grant.jobs[0].payload, R"({"n":1})");
  EXPECT_EQ(grant.jobs[0].due_ms, t0);
  EXPECT_NE(grant.jobs[0].lease_id, grant.jobs[1].lease_id);
  EXPECT_EQ(grant.ready_types, std::vector<std::string>{"x"});
  EXPECT_EQ(job(a).at("state"), "running");
  EXPECT_EQ(job(c).at("state"), "queued");
  EXPECT_EQ(counts().running, 2u);
  EXPECT_EQ(counts().queued, 1u);
  EXPECT_EQ(counts().oldest_queued_ms, t0 + 2);
}

// Verifies a lease restricted to some types leaves jobs of the others waiting.
TEST_F(JobQueueTest, TypeFilterLeavesOtherTypesWaiting) {
  add("external");
  auto b = add("inproc");
  auto grant = lease(10, t0, {"inproc"});
  ASSERT_EQ(grant.jobs.size(), 1u);
  EXPECT_EQ(grant.jobs[0].id, b);
  EXPECT_EQ(grant.ready_types, std::vector<std::string>{"external"});
}

// Verifies a delayed job is neither leased nor announced before its time, and both once
// it comes.
TEST_F(JobQueueTest, DelayedJobIsNotLeasedEarly) {
  add("t", 500);
  EXPECT_TRUE(lease(1, t0 + 499).jobs.empty());
  EXPECT_EQ(q->next_wakeup(), t0 + 500);
  EXPECT_TRUE(q->take_announcements(t0 + 499).empty());
  auto announced = q->take_announcements(t0 + 500);
  ASSERT_EQ(announced.size(), 1u);
  EXPECT_EQ(announced[0], std::make_pair(std::string("q"), std::string("t")));
  EXPECT_EQ(lease(1, t0 + 500).jobs.size(), 1u);
}

// Verifies a lane is announced once, not again while the broker knows it, and again
// after a lease emptied it.
TEST_F(JobQueueTest, AnnouncesALaneOnceUntilALeaseEmptiesIt) {
  add();
  EXPECT_EQ(q->take_announcements(t0).size(), 1u);
  add();
  EXPECT_TRUE(q->take_announcements(t0).empty()); // the broker already knows
  auto grant = lease(10, t0);
  EXPECT_EQ(grant.jobs.size(), 2u);
  EXPECT_TRUE(grant.ready_types.empty());
  add();
  EXPECT_EQ(q->take_announcements(t0).size(), 1u);
}

// Verifies complete stores the result and ends the job (memory and counts), and a second
// complete under the same lease is a conflict "stale_lease".
TEST_F(JobQueueTest, CompleteKeepsTheResultAndASecondCompleteIsStale) {
  auto a = add();
  auto leased = lease(1, t0).jobs.at(0);
  auto done = complete(a, leased.lease_id, t0 + 5);
  ASSERT_TRUE(done) << done.error().to_string();
  EXPECT_EQ(done->id, a);
  EXPECT_EQ(boost::json::parse(done->json).at("state"), "succeeded");
  auto j = job(a);
  EXPECT_EQ(j.at("state"), "succeeded");
  EXPECT_EQ(j.at("result").at("ok"), true);
  EXPECT_TRUE(
    fails_with(complete(a, leased.lease_id, t0 + 6), core::errc::conflict, "stale_lease"));
  EXPECT_EQ(counts().succeeded, 1u);
  EXPECT_EQ(counts().running, 0u);
  EXPECT_EQ(q->live(), 0u);
  EXPECT_EQ(metrics.of("q", "t").completed.value(), 1u);
}

// Verifies the broker's reports (from_broker) are answered without a body.
TEST_F(JobQueueTest, ReportsFromTheBrokerGetNoBody) {
  auto a = add();
  auto b = add();
  auto jobs = lease(2, t0).jobs;
  ASSERT_EQ(jobs.size(), 2u);
  job_complete c{a, jobs[0].lease_id, "1", true};
  auto done = q->complete(c, t0);
  ASSERT_TRUE(done);
  EXPECT_EQ(done->id, a);
  EXPECT_TRUE(done->json.empty());
  job_fail f{b, jobs[1].lease_id, "boom", true, true};
  auto failed = q->fail(f, t0);
  ASSERT_TRUE(failed);
  EXPECT_TRUE(failed->json.empty());
  EXPECT_EQ(job(b).at("state"), "failed");
}

// Verifies a wrong lease id is "stale_lease", an unknown job not_found, and neither
// changes the job.
TEST_F(JobQueueTest, WrongLeaseOrUnknownJobChangesNothing) {
  auto a = add();
  lease(1, t0);
  const int written = commits;
  EXPECT_TRUE(fails_with(complete(a, "not-the-lease", t0), core::errc::conflict, "stale_lease"));
  EXPECT_TRUE(fails_with(fail(a, "not-the-lease", t0), core::errc::conflict, "stale_lease"));
  EXPECT_TRUE(fails_with(complete(make_job_id(0, 999), "x", t0), core::errc::not_found));
  EXPECT_EQ(commits, written);
  EXPECT_EQ(job(a).at("state"), "running");
  EXPECT_EQ(job(a).at("attempts"), 1);
  EXPECT_EQ(counts().running, 1u);
}

// Verifies failed attempts retry after a jittered, doubling backoff (never earlier) and
// the last one makes the job dead with its error; every failed attempt is counted.
TEST_F(JobQueueTest, FailuresBackOffThenTheJobDiesWithItsLastError) {
  auto a = add("t", 0, 3);
  std::uint64_t now = t0;
  for (std::uint32_t attempt = 1; attempt <= 3; ++attempt) {
    auto grant = lease(1, now);
    ASSERT_EQ(grant.jobs.size(), 1u) << "attempt " << attempt;
    EXPECT_EQ(grant.jobs[0].attempt, attempt);
    auto failed = fail(a, grant.jobs[0].lease_id, now, true, "boom " + std::to_string(attempt));
    ASSERT_TRUE(failed) << failed.error().to_string();
    auto j = job(a);
    if (attempt < 3) {
      EXPECT_EQ(j.at("state"), "failed");
      EXPECT_EQ(counts().failed, 1u);
      // base 100 ms doubling, jittered to between half and all of it
      auto expected = std::min<std::uint64_t>(100u << (attempt - 1), 1000);
      q->take_announcements(now); // settles what was due before
      auto due = *q->next_wakeup();
      EXPECT_GE(due, now + expected / 2);
      EXPECT_LE(due, now + expected);
      EXPECT_TRUE(lease(1, due - 1).jobs.empty()) << "retried before its backoff";
      now = due;
    } else {
      EXPECT_EQ(j.at("state"), "dead");
      EXPECT_EQ(j.at("error"), "boom 3");
      EXPECT_EQ(j.at("attempts"), 3);
    }
  }
  EXPECT_EQ(counts().dead, 1u);
  EXPECT_EQ(counts().failed, 0u);
  EXPECT_EQ(metrics.of("q", "t").failed.value(), 3u); // every failed attempt, the last included
  EXPECT_EQ(metrics.of("q", "t").dead.value(), 1u);
}

// Verifies a failure without retry is dead at once, retry brings a dead job back as
// queued with no attempts, and retrying a job that is not dead is "wrong_state".
TEST_F(JobQueueTest, FailWithoutRetryIsDeadAtOnceAndRetryBringsItBack) {
  auto a = add("t", 0, 5);
  auto leased = lease(1, t0).jobs.at(0);
  ASSERT_TRUE(fail(a, leased.lease_id, t0, false, "bad input"));
  EXPECT_EQ(job(a).at("state"), "dead");
  auto back = q->retry(job_retry{a}, t0 + 1);
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(boost::json::parse(back->json).at("state"), "queued");
  auto j = job(a);
  EXPECT_EQ(j.at("state"), "queued");
  EXPECT_EQ(j.at("attempts"), 0);
  EXPECT_EQ(counts().dead, 0u);
  EXPECT_EQ(counts().queued, 1u);
  EXPECT_TRUE(fails_with(q->retry(job_retry{a}, t0 + 1), core::errc::conflict, "wrong_state"));
  EXPECT_TRUE(fails_with(q->retry(job_retry{make_job_id(0, 999)}, t0 + 1), core::errc::not_found));
  EXPECT_EQ(lease(1, t0 + 1).jobs.size(), 1u);
}

// Verifies a waiting job (queued, delayed, or failed and waiting for its retry) can be
// cancelled: it ends cancelled, is never leased, counts as cancelled, and stays so after
// a restart; a running or finished job, a cancelled one and an unknown id are refused
// without a write.
TEST_F(JobQueueTest, CancelEndsAWaitingJobWhichThenNeverRuns) {
  auto queued = add();
  auto delayed = add("t", 10'000);
  auto retrying = add("t", 0, 5);
  auto running = add();
  auto first = lease(1, t0).jobs.at(0);
  ASSERT_EQ(first.id, queued);
  ASSERT_TRUE(complete(queued, first.lease_id, t0));
  auto second = lease(1, t0).jobs.at(0);
  ASSERT_EQ(second.id, retrying);
  ASSERT_TRUE(fail(retrying, second.lease_id, t0));
  ASSERT_EQ(job(retrying).at("state"), "failed");
  auto third = lease(1, t0).jobs.at(0);
  ASSERT_EQ(third.id, running);
  auto waiting = add();

  const int written = commits;
  EXPECT_TRUE(
    fails_with(q->cancel(job_cancel{running}, t0 + 1), core::errc::conflict, "wrong_state"));
  EXPECT_TRUE(
    fails_with(q->cancel(job_cancel{queued}, t0 + 1), core::errc::conflict, "wrong_state"));
  EXPECT_TRUE(
    fails_with(q->cancel(job_cancel{make_job_id(0, 999)}, t0 + 1), core::errc::not_found));
  EXPECT_EQ(commits, written);

  for (const auto& id : {waiting, delayed, retrying}) {
    auto r = q->cancel(job_cancel{id}, t0 + 2);
    ASSERT_TRUE(r) << id << ": " << r.error().to_string();
    EXPECT_EQ(boost::json::parse(r->json).at("state"), "cancelled");
    EXPECT_EQ(job(id).at("state"), "cancelled");
  }
  EXPECT_EQ(commits, written + 3);
  EXPECT_TRUE(
    fails_with(q->cancel(job_cancel{waiting}, t0 + 3), core::errc::conflict, "wrong_state"));
  EXPECT_TRUE(
    fails_with(q->retry(job_retry{waiting}, t0 + 3), core::errc::conflict, "wrong_state"));
  auto c = counts();
  EXPECT_EQ(c.cancelled, 3u);
  EXPECT_EQ(c.queued, 0u);
  EXPECT_EQ(c.failed, 0u);
  EXPECT_EQ(c.running, 1u);
  EXPECT_EQ(c.succeeded, 1u);
  EXPECT_EQ(c.oldest_queued_ms, 0u);
  EXPECT_EQ(metrics.of("q", "t").cancelled.value(), 3u);
  ASSERT_TRUE(complete(running, third.lease_id, t0 + 4));
  // Long after every delay and backoff, nothing is handed out, before or after a restart.
  EXPECT_TRUE(lease(10, t0 + 100'000).jobs.empty());
  q = make_queue(8);
  ASSERT_TRUE(q->recover(t0 + 100'001, "incarnation-2"));
  EXPECT_EQ(counts().cancelled, 3u);
  EXPECT_EQ(job(delayed).at("state"), "cancelled");
  EXPECT_TRUE(lease(10, t0 + 200'000).jobs.empty());
}

// Verifies a list reads one queue's jobs in one state in id order, a page at a time
// after a cursor, says when more follow, and finds finished jobs (only the store holds
// them); another queue's jobs are not listed.
TEST_F(JobQueueTest, ListPagesThroughOneStateInIdOrder) {
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i)
    ids.push_back(add());
  job_enqueue other;
  other.queue = "other";
  other.type = "t";
  other.payload = "{}";
  ASSERT_TRUE(q->enqueue(other, t0));
  for (int i = 0; i < 2; ++i) {
    auto l = lease(1, t0).jobs.at(0);
    ASSERT_EQ(l.id, ids[static_cast<std::size_t>(i)]);
    ASSERT_TRUE(complete(l.id, l.lease_id, t0));
  }
  auto list = [&](job_state state, std::string after, std::uint32_t limit) {
    auto r = q->list(job_list{"q", static_cast<std::uint8_t>(state), std::move(after), limit});
    EXPECT_TRUE(r) << r.error().to_string();
    std::vector<std::string> got;
    if (r)
      for (const auto& j : r->jobs) {
        got.push_back(j.id);
        EXPECT_EQ(boost::json::parse(j.json).at("state"), to_string(state)) << j.id;
      }
    return std::make_pair(got, r && r->more);
  };
  EXPECT_EQ(list(job_state::queued, "", 2),
            std::make_pair(std::vector<std::string>{ids[2], ids[3]}, true));
  EXPECT_EQ(list(job_state::queued, ids[3], 2),
            std::make_pair(std::vector<std::string>{ids[4]}, false));
  EXPECT_EQ(list(job_state::queued, ids[4], 2), std::make_pair(std::vector<std::string>{}, false));
  EXPECT_EQ(list(job_state::succeeded, "", 10),
            std::make_pair(std::vector<std::string>{ids[0], ids[1]}, false));
  EXPECT_EQ(list(job_state::dead, "", 10), std::make_pair(std::vector<std::string>{}, false));
}

// Verifies the shard reports its oldest queued job of a queue to the node's metrics as
// jobs come and go, and a queue that goes (a replica that stops leading) takes its jobs
// out of the node's gauges.
TEST_F(JobQueueTest, TheOldestQueuedJobAndTheGaugesFollowTheQueue) {
  auto oldest = [&] { return metrics.of("q").oldest[0].load(); };
  EXPECT_EQ(oldest(), 0u);
  add("t", 0, 3, t0);
  add("t", 0, 3, t0 + 5);
  EXPECT_EQ(oldest(), t0);
  lease(1, t0 + 10);
  EXPECT_EQ(oldest(), t0 + 5);
  lease(1, t0 + 10);
  EXPECT_EQ(oldest(), 0u) << "nothing queued";
  add("t", 0, 3, t0 + 20);
  EXPECT_EQ(oldest(), t0 + 20);
  const auto running = static_cast<std::size_t>(job_state::running);
  const auto queued = static_cast<std::size_t>(job_state::queued);
  EXPECT_EQ(metrics.of("q").depth[running].value(), 2);
  EXPECT_EQ(metrics.of("q").depth[queued].value(), 1);
  q.reset();
  EXPECT_EQ(oldest(), 0u);
  EXPECT_EQ(metrics.of("q").depth[running].value(), 0);
  EXPECT_EQ(metrics.of("q").depth[queued].value(), 0);
}

// Verifies an expired lease fails the attempt (state, error, counts, metrics), makes the
// old lease stale, and the job is leased again after its backoff as attempt 2 (issue 19
// item 3).
TEST_F(JobQueueTest, ExpiredLeasePutsTheJobBackAndCountsTheAttempt) {
  auto a = add();
  auto leased = lease(1, t0, {}, {}, 300).jobs.at(0);
  q->take_announcements(t0);
  EXPECT_EQ(q->next_wakeup(), t0 + 300);
  const int written = commits;
  ASSERT_TRUE(q->expire(t0 + 299));
  EXPECT_EQ(commits, written); // nothing to expire yet
  EXPECT_EQ(job(a).at("state"), "running");
  ASSERT_TRUE(q->expire(t0 + 300));
  EXPECT_EQ(commits, written + 1);
  auto j = job(a);
  EXPECT_EQ(j.at("state"), "failed");
  EXPECT_EQ(j.at("attempts"), 1);
  EXPECT_EQ(j.at("error"), "the lease expired after 300 ms");
  auto c = counts();
  EXPECT_EQ(c.running, 0u);
  EXPECT_EQ(c.failed, 1u);
  EXPECT_EQ(c.queued, 0u);
  EXPECT_TRUE(
    fails_with(complete(a, leased.lease_id, t0 + 301), core::errc::conflict, "stale_lease"));
  EXPECT_EQ(metrics.of("q", "t").lease_expired.value(), 1u);
  EXPECT_EQ(metrics.of("q", "t").failed.value(), 1u);
  // It comes back after the retry backoff (50 to 100 ms), not before.
  q->take_announcements(t0 + 300);
  auto due = *q->next_wakeup();
  EXPECT_GE(due, t0 + 350);
  EXPECT_LE(due, t0 + 400);
  EXPECT_TRUE(lease(1, due - 1).jobs.empty());
  auto again = lease(1, due);
  ASSERT_EQ(again.jobs.size(), 1u);
  EXPECT_EQ(again.jobs[0].id, a);
  EXPECT_EQ(again.jobs[0].attempt, 2u);
  EXPECT_NE(again.jobs[0].lease_id, leased.lease_id);
  c = counts();
  EXPECT_EQ(c.running, 1u);
  EXPECT_EQ(c.failed, 0u);
  EXPECT_EQ(job(a).at("attempts"), 2);
  ASSERT_TRUE(complete(a, again.jobs[0].lease_id, due + 1));
  EXPECT_EQ(counts().succeeded, 1u);
  EXPECT_EQ(counts().running, 0u);
}

// Verifies an extension moves the lease's expiry to now + visibility_ms (durably: a
// restart keeps it), and only the lease that holds the running job may extend it.
TEST_F(JobQueueTest, ExtendingALeaseMovesItsExpiry) {
  auto a = add();
  auto leased = lease(1, t0, {}, {}, 300).jobs.at(0);
  const int written = commits;
  EXPECT_TRUE(fails_with(q->extend(job_extend{a, "not-the-lease", 5000}, t0 + 100),
                         core::errc::conflict, "stale_lease"));
  EXPECT_TRUE(fails_with(q->extend(job_extend{make_job_id(0, 999), "x", 5000}, t0 + 100),
                         core::errc::not_found));
  EXPECT_EQ(commits, written);
  ASSERT_TRUE(q->extend(job_extend{a, leased.lease_id, 5000}, t0 + 200));
  EXPECT_EQ(commits, written + 1);
  q->take_announcements(t0 + 200);
  EXPECT_EQ(q->next_wakeup(), t0 + 5200);
  // The old expiry passes: still running under the same lease.
  ASSERT_TRUE(q->expire(t0 + 300));
  EXPECT_EQ(job(a).at("state"), "running");
  EXPECT_EQ(counts().running, 1u);
  // A restart reads the extended expiry back (an external worker's lease survives it).
  q = make_queue(8);
  ASSERT_TRUE(q->recover(t0 + 400, "incarnation-2"));
  ASSERT_TRUE(q->expire(t0 + 5199));
  EXPECT_EQ(job(a).at("state"), "running");
  ASSERT_TRUE(q->expire(t0 + 5200));
  EXPECT_EQ(job(a).at("state"), "failed");
  EXPECT_EQ(job(a).at("error"), "the lease expired after 5200 ms");
  // An expired lease cannot be extended any more.
  EXPECT_TRUE(fails_with(q->extend(job_extend{a, leased.lease_id, 5000}, t0 + 5201),
                         core::errc::conflict, "stale_lease"));
}

// Verifies a restart rebuilds the counts, fails the in-process leases of the dead
// process (the attempt counts), keeps external leases, and new ids follow the old.
TEST_F(JobQueueTest, RecoveryRebuildsCountsAndReleasesLeasesOfADeadProcess) {
  auto a = add();
  auto b = add();
  auto c = add();
  auto d = add("t", 10'000);
  auto in_process = lease(1, t0, {}, "incarnation-1").jobs.at(0); // a
  auto external = lease(1, t0, {}, {}, 60'000).jobs.at(0);        // b
  auto done = lease(1, t0).jobs.at(0);                            // c
  ASSERT_EQ(in_process.id, a);
  ASSERT_EQ(external.id, b);
  ASSERT_EQ(done.id, c);
  ASSERT_TRUE(complete(done.id, done.lease_id, t0));

  q = make_queue(8); // a restart
  ASSERT_TRUE(q->recover(t0 + 50, "incarnation-2"));
  auto n = counts();
  EXPECT_EQ(n.succeeded, 1u);
  EXPECT_EQ(n.failed, 1u);  // a: its process died, the attempt counts
  EXPECT_EQ(n.running, 1u); // b: an external worker may still complete it
  EXPECT_EQ(n.queued, 1u);  // d
  EXPECT_EQ(job(in_process.id).at("state"), "failed");
  EXPECT_EQ(job(in_process.id).at("attempts"), 1);
  EXPECT_EQ(metrics.of("q", "t").lease_expired.value(), 1u);
  ASSERT_TRUE(complete(external.id, external.lease_id, t0 + 60));
  // New jobs keep arriving after the recovered ones, with ids not handed out before.
  auto e = add("t", 0, 3, t0 + 60);
  EXPECT_GT(e, d);
  auto next = lease(5, t0 + 10'000);
  ASSERT_EQ(next.jobs.size(), 3u);
  EXPECT_EQ(next.jobs[0].id, e); // due at t0 + 60
  EXPECT_EQ(next.jobs[1].id, a); // its retry, due 50 to 100 ms after the restart
  EXPECT_EQ(next.jobs[1].attempt, 2u);
  EXPECT_EQ(next.jobs[2].id, d);
}

// Verifies a delayed job is not handed out early after a restart: recovery keeps its due
// time, not the time of the restart.
TEST_F(JobQueueTest, ADelayedJobIsNotHandedOutEarlyAfterARestart) {
  auto d = add("t", 10'000);
  q = make_queue(8); // a restart
  ASSERT_TRUE(q->recover(t0 + 50, "incarnation-2"));
  EXPECT_TRUE(lease(5, t0 + 50).jobs.empty()) << "handed out at the restart";
  EXPECT_TRUE(lease(5, t0 + 9'999).jobs.empty()) << "handed out before it was due";
  auto due = lease(5, t0 + 10'000);
  ASSERT_EQ(due.jobs.size(), 1u);
  EXPECT_EQ(due.jobs[0].id, d);
}

// Verifies job ids are not reused after the data directory is wiped: a fresh store starts
// its sequence from the clock, above every id handed out before.
TEST_F(JobQueueTest, IdsAreNotReusedAfterTheDataIsWiped) {
  std::vector<std::string> before;
  for (int i = 0; i < 3; ++i)
    before.push_back(add("t", 0, 3, t0 + i));
  storage::memory_store wiped{1};
  job_queue fresh(
    wiped.shard(0),
    [&](storage::write_batch&& batch) -> core::result<void> {
      return wiped.shard(0).write(batch, false);
    },
    0, policy, &metrics, 9);
  ASSERT_TRUE(fresh.recover(t0 + 3, "incarnation-2"));
  job_enqueue r;
  r.queue = "q";
  r.type = "t";
  r.payload = "{}";
  r.max_attempts = 1;
  auto after = fresh.enqueue(r, t0 + 3);
  ASSERT_TRUE(after) << after.error().to_string();
  ASSERT_EQ(after->id.size(), before.back().size()); // fixed width: text order is id order
  for (const auto& id : before)
    EXPECT_GT(after->id, id) << "an id of the wiped data came back";
}

// Verifies a corrupt job record makes recovery fail with corrupt.
TEST_F(JobQueueTest, RecoveryRefusesACorruptRecord) {
  add();
  storage::write_batch garbage;
  garbage.put(job_key(make_job_id(0, 5)), "not a record");
  ASSERT_TRUE(store.shard(0).write(garbage, false));
  q = make_queue(8);
  EXPECT_TRUE(fails_with(q->recover(t0, "incarnation-2"), core::errc::corrupt));
}

// Verifies a commit that fails leaves memory as it was: no job, lease, completion or
// expiry happens in memory that did not happen in the store.
TEST_F(JobQueueTest, AFailedCommitChangesNothing) {
  const core::error disk{core::errc::storage_failed, "disk full"};
  fail_commits = disk;
  EXPECT_TRUE(fails_with(enqueue(), core::errc::storage_failed));
  EXPECT_EQ(counts().queued, 0u);
  EXPECT_EQ(q->live(), 0u);
  EXPECT_TRUE(q->take_announcements(t0).empty());
  fail_commits.reset();

  auto a = add();
  fail_commits = disk;
  EXPECT_TRUE(fails_with(try_lease(1, t0), core::errc::storage_failed));
  EXPECT_EQ(counts().queued, 1u);
  EXPECT_EQ(counts().running, 0u);
  fail_commits.reset();

  auto leased = lease(1, t0, {}, {}, 300).jobs.at(0);
  fail_commits = disk;
  EXPECT_TRUE(fails_with(complete(a, leased.lease_id, t0), core::errc::storage_failed));
  EXPECT_TRUE(fails_with(q->expire(t0 + 300), core::errc::storage_failed));
  EXPECT_EQ(counts().running, 1u);
  EXPECT_EQ(job(a).at("state"), "running");
  fail_commits.reset();

  ASSERT_TRUE(complete(a, leased.lease_id, t0 + 1));
  EXPECT_EQ(counts().succeeded, 1u);
  EXPECT_EQ(metrics.of("q", "t").completed.value(), 1u);
}

// Verifies retry delays grow by doubling, are jittered to half..all, and stay under the cap.
TEST_F(JobQueueTest, RetryDelayGrowsAndStaysUnderTheCap) {
  std::mt19937_64 rng(1);
  retry_policy p{500, 4000};
  for (int i = 0; i < 100; ++i) {
    auto d1 = p.delay(1, rng);
    EXPECT_GE(d1, 250u);
    EXPECT_LE(d1, 500u);
    auto d3 = p.delay(3, rng);
    EXPECT_GE(d3, 1000u);
    EXPECT_LE(d3, 2000u);
    auto d40 = p.delay(40, rng);
    EXPECT_GE(d40, 2000u);
    EXPECT_LE(d40, 4000u);
  }
}

// Verifies a lease from another node (not from_broker) leaves the local broker's
// announcement tracking alone, while the broker's own lease settles it.
TEST_F(JobQueueTest, ALeaseFromAnotherNodeLeavesTheAnnouncementsAlone) {
  add();
  add();
  ASSERT_EQ(q->take_announcements(t0).size(), 1u);
  auto remote = try_lease(1, t0, {}, {}, 1000, false);
  ASSERT_TRUE(remote);
  EXPECT_EQ(remote->jobs.size(), 1u);
  EXPECT_EQ(remote->ready_types, std::vector<std::string>{"t"});
  // The local broker still believes the lane is due; its own lease settles it.
  EXPECT_TRUE(lease(1, t0).ready_types.empty());
  add();
  EXPECT_EQ(q->take_announcements(t0).size(), 1u);
}

// Verifies a job id names its shard in five hex digits and malformed ids name none.
TEST(JobIds, NameTheirShard) {
  auto id = make_job_id(42, 0xa9f3c41be07d2a1cull);
  EXPECT_EQ(id, "0002aa9f3c41be07d2a1c");
  EXPECT_EQ(job_shard(id), 42u);
  EXPECT_EQ(job_shard(make_job_id(99999, 1)), 99999u);
  EXPECT_FALSE(job_shard(""));
  EXPECT_FALSE(job_shard(id.substr(1)));
  EXPECT_FALSE(job_shard(id + "0"));
  EXPECT_FALSE(job_shard("0002AA9F3C41BE07D2A1C")); // uppercase is not ours
  EXPECT_FALSE(job_shard("0002aa9f3c41be07d2a1g"));
}

} // namespace
} // namespace shoal::jobs
