// SPDX-License-Identifier: Apache-2.0
// The queue of one shard, on the in-memory store: states, ordering, leases, retries,
// recovery. Time is passed in, so every case is deterministic.
#include "jobs/job_queue.hpp"
#include "jobs/ids.hpp"

#include <memory>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "storage/memory_store.hpp"

namespace shoal::jobs {
namespace {

constexpr std::uint64_t t0 = 1'700'000'000'000; // a fixed wall-clock time, in ms

struct fixture : ::testing::Test {
  storage::memory_store store{1};
  job_metrics metrics;
  retry_policy policy{100, 1000};
  std::unique_ptr<job_queue> q =
    std::make_unique<job_queue>(store.shard(0), 0, policy, &metrics, 7);

  job_step enqueue(const std::string& id, const std::string& type = "t", std::uint64_t delay = 0,
                   std::uint32_t max_attempts = 3, const std::string& key = {},
                   std::uint64_t now = t0) {
    job_request r;
    r.op = job_op::enqueue;
    r.queue = "q";
    r.id = id;
    r.type = type;
    r.body = R"({"n":1})";
    r.delay_ms = delay;
    r.max_attempts = max_attempts;
    r.key = key;
    return q->apply(std::move(r), now);
  }
  job_step lease(std::uint32_t max, std::uint64_t now, std::vector<std::string> types = {},
                 std::string owner = {}, std::uint32_t visibility = 1000) {
    job_request r;
    r.op = job_op::lease;
    r.queue = "q";
    r.max = max;
    r.visibility_ms = visibility;
    r.types = std::move(types);
    r.owner = std::move(owner);
    r.from_broker = true;
    return q->apply(std::move(r), now);
  }
  job_step finish(job_op op, const std::string& id, const std::string& lease_id, std::uint64_t now,
                  bool retry = true, std::string body = R"({"ok":true})") {
    job_request r;
    r.op = op;
    r.id = id;
    r.key = lease_id;
    r.body = std::move(body);
    r.retry = retry;
    return q->apply(std::move(r), now);
  }
  boost::json::object job(const std::string& id) {
    job_request r;
    r.op = job_op::get;
    r.id = id;
    auto step = q->apply(std::move(r), t0);
    EXPECT_EQ(step.reply.status, job_status::ok) << step.reply.message;
    return boost::json::parse(step.reply.body).as_object();
  }
  job_counts counts() {
    job_request r;
    r.op = job_op::stats;
    r.queue = "q";
    return q->apply(std::move(r), t0).reply.counts;
  }
};

TEST_F(fixture, record_round_trips_and_rejects_corruption) {
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

TEST_F(fixture, enqueue_then_get) {
  auto step = enqueue("a");
  EXPECT_EQ(step.reply.status, job_status::created);
  EXPECT_TRUE(step.wrote);
  auto j = job("a");
  EXPECT_EQ(j.at("state"), "queued");
  EXPECT_EQ(j.at("attempts"), 0);
  EXPECT_EQ(j.at("queue"), "q");
  EXPECT_EQ(j.at("payload").at("n"), 1);
  EXPECT_TRUE(j.at("result").is_null());
  EXPECT_TRUE(j.at("error").is_null());
  EXPECT_EQ(j.at("created_at"), "2023-11-14T22:13:20.000Z");
  EXPECT_EQ(counts().queued, 1u);
  EXPECT_EQ(counts().oldest_queued_ms, t0);
}

TEST_F(fixture, same_idempotency_key_returns_the_first_job) {
  EXPECT_EQ(enqueue("a", "t", 0, 3, "k1").reply.status, job_status::created);
  auto again = enqueue("b", "t", 0, 3, "k1");
  EXPECT_EQ(again.reply.status, job_status::existing);
  EXPECT_FALSE(again.wrote);
  EXPECT_EQ(boost::json::parse(again.reply.body).at("id"), "a");
  EXPECT_EQ(counts().queued, 1u);
  job_request r;
  r.op = job_op::get;
  r.id = "b";
  EXPECT_EQ(q->apply(std::move(r), t0).reply.status, job_status::not_found);
}

TEST_F(fixture, leases_oldest_first_across_types_and_up_to_max) {
  enqueue("a", "x", 0, 3, {}, t0);
  enqueue("b", "y", 0, 3, {}, t0 + 1);
  enqueue("c", "x", 0, 3, {}, t0 + 2);
  auto step = lease(2, t0 + 10);
  ASSERT_EQ(step.reply.jobs.size(), 2u);
  EXPECT_EQ(step.reply.jobs[0].id, "a");
  EXPECT_EQ(step.reply.jobs[1].id, "b");
  EXPECT_EQ(step.reply.jobs[0].attempt, 1u);
  EXPECT_EQ(step.reply.jobs[0].payload, R"({"n":1})");
  EXPECT_NE(step.reply.jobs[0].lease_id, step.reply.jobs[1].lease_id);
  EXPECT_EQ(step.reply.ready_types, std::vector<std::string>{"x"});
  EXPECT_EQ(job("a").at("state"), "running");
  EXPECT_EQ(counts().running, 2u);
  EXPECT_EQ(counts().queued, 1u);
  EXPECT_EQ(counts().oldest_queued_ms, t0 + 2);
}

TEST_F(fixture, type_filter_leaves_other_types_waiting) {
  enqueue("a", "external");
  enqueue("b", "inproc");
  auto step = lease(10, t0, {"inproc"});
  ASSERT_EQ(step.reply.jobs.size(), 1u);
  EXPECT_EQ(step.reply.jobs[0].id, "b");
  EXPECT_EQ(step.reply.ready_types, std::vector<std::string>{"external"});
}

TEST_F(fixture, delayed_job_is_not_leased_early) {
  enqueue("a", "t", 500);
  EXPECT_TRUE(lease(1, t0 + 499).reply.jobs.empty());
  EXPECT_EQ(q->next_wakeup(), t0 + 500);
  EXPECT_TRUE(q->take_announcements(t0 + 499).empty());
  auto announced = q->take_announcements(t0 + 500);
  ASSERT_EQ(announced.size(), 1u);
  EXPECT_EQ(announced[0], std::make_pair(std::string("q"), std::string("t")));
  EXPECT_EQ(lease(1, t0 + 500).reply.jobs.size(), 1u);
}

TEST_F(fixture, announces_a_lane_once_until_a_lease_empties_it) {
  enqueue("a");
  EXPECT_EQ(q->take_announcements(t0).size(), 1u);
  enqueue("b");
  EXPECT_TRUE(q->take_announcements(t0).empty()); // the broker already knows
  auto step = lease(10, t0);
  EXPECT_TRUE(step.reply.ready_types.empty());
  enqueue("c");
  EXPECT_EQ(q->take_announcements(t0).size(), 1u);
}

TEST_F(fixture, complete_keeps_the_result_and_a_second_complete_is_stale) {
  enqueue("a");
  auto leased = lease(1, t0).reply.jobs.at(0);
  auto done = finish(job_op::complete, "a", leased.lease_id, t0 + 5);
  EXPECT_EQ(done.reply.status, job_status::ok) << done.reply.message;
  auto j = job("a");
  EXPECT_EQ(j.at("state"), "succeeded");
  EXPECT_EQ(j.at("result").at("ok"), true);
  EXPECT_EQ(finish(job_op::complete, "a", leased.lease_id, t0 + 6).reply.status,
            job_status::stale_lease);
  EXPECT_EQ(counts().succeeded, 1u);
  EXPECT_EQ(counts().running, 0u);
  EXPECT_EQ(q->live(), 0u);
  EXPECT_EQ(metrics.of("q", "t").completed.value(), 1u);
}

TEST_F(fixture, wrong_lease_or_unknown_job_changes_nothing) {
  enqueue("a");
  lease(1, t0);
  EXPECT_EQ(finish(job_op::complete, "a", "not-the-lease", t0).reply.status,
            job_status::stale_lease);
  EXPECT_EQ(finish(job_op::fail, "a", "not-the-lease", t0).reply.status, job_status::stale_lease);
  EXPECT_EQ(finish(job_op::complete, "zzz", "x", t0).reply.status, job_status::not_found);
  EXPECT_EQ(job("a").at("state"), "running");
  EXPECT_EQ(job("a").at("attempts"), 1);
}

TEST_F(fixture, failures_back_off_then_the_job_dies_with_its_last_error) {
  enqueue("a", "t", 0, 3);
  std::uint64_t now = t0;
  for (std::uint32_t attempt = 1; attempt <= 3; ++attempt) {
    auto step = lease(1, now);
    ASSERT_EQ(step.reply.jobs.size(), 1u) << "attempt " << attempt;
    EXPECT_EQ(step.reply.jobs[0].attempt, attempt);
    auto failed = finish(job_op::fail, "a", step.reply.jobs[0].lease_id, now, true,
                         "boom " + std::to_string(attempt));
    ASSERT_EQ(failed.reply.status, job_status::ok);
    auto j = job("a");
    if (attempt < 3) {
      EXPECT_EQ(j.at("state"), "failed");
      // base 100 ms doubling, jittered to between half and all of it
      auto expected = std::min<std::uint64_t>(100u << (attempt - 1), 1000);
      q->take_announcements(now); // settles what was due before
      auto due = *q->next_wakeup();
      EXPECT_GE(due, now + expected / 2);
      EXPECT_LE(due, now + expected);
      EXPECT_TRUE(lease(1, due - 1).reply.jobs.empty()) << "retried before its backoff";
      now = due;
    } else {
      EXPECT_EQ(j.at("state"), "dead");
      EXPECT_EQ(j.at("error"), "boom 3");
      EXPECT_EQ(j.at("attempts"), 3);
    }
  }
  EXPECT_EQ(counts().dead, 1u);
  EXPECT_EQ(metrics.of("q", "t").failed.value(), 3u); // every failed attempt, the last included
  EXPECT_EQ(metrics.of("q", "t").dead.value(), 1u);
}

TEST_F(fixture, fail_without_retry_is_dead_at_once_and_retry_brings_it_back) {
  enqueue("a", "t", 0, 5);
  auto leased = lease(1, t0).reply.jobs.at(0);
  finish(job_op::fail, "a", leased.lease_id, t0, false, "bad input");
  EXPECT_EQ(job("a").at("state"), "dead");
  job_request r;
  r.op = job_op::retry;
  r.id = "a";
  auto step = q->apply(job_request(r), t0 + 1);
  EXPECT_EQ(step.reply.status, job_status::ok);
  auto j = job("a");
  EXPECT_EQ(j.at("state"), "queued");
  EXPECT_EQ(j.at("attempts"), 0);
  EXPECT_EQ(counts().dead, 0u);
  EXPECT_EQ(counts().queued, 1u);
  EXPECT_EQ(q->apply(job_request(r), t0 + 1).reply.status, job_status::wrong_state);
  EXPECT_EQ(lease(1, t0 + 1).reply.jobs.size(), 1u);
}

TEST_F(fixture, expired_lease_puts_the_job_back_and_counts_the_attempt) {
  enqueue("a");
  auto leased = lease(1, t0, {}, {}, 300).reply.jobs.at(0);
  q->take_announcements(t0);
  EXPECT_EQ(q->next_wakeup(), t0 + 300);
  EXPECT_FALSE(q->expire(t0 + 299).wrote);
  auto step = q->expire(t0 + 300);
  EXPECT_TRUE(step.wrote);
  auto j = job("a");
  EXPECT_EQ(j.at("state"), "failed");
  EXPECT_EQ(j.at("attempts"), 1);
  EXPECT_EQ(j.at("error"), "the lease expired after 300 ms");
  EXPECT_EQ(finish(job_op::complete, "a", leased.lease_id, t0 + 301).reply.status,
            job_status::stale_lease);
  EXPECT_EQ(metrics.of("q", "t").lease_expired.value(), 1u);
}

TEST_F(fixture, recovery_rebuilds_counts_and_releases_leases_of_a_dead_process) {
  enqueue("a");
  enqueue("b");
  enqueue("c");
  enqueue("d", "t", 10'000);
  auto in_process = lease(1, t0, {}, "incarnation-1").reply.jobs.at(0); // a
  auto external = lease(1, t0, {}, {}, 60'000).reply.jobs.at(0);        // b
  auto done = lease(1, t0).reply.jobs.at(0);                            // c
  finish(job_op::complete, done.id, done.lease_id, t0);

  q = std::make_unique<job_queue>(store.shard(0), 0, policy, &metrics, 8); // a restart
  ASSERT_TRUE(q->recover(t0 + 50, "incarnation-2"));
  auto c = counts();
  EXPECT_EQ(c.succeeded, 1u);
  EXPECT_EQ(c.failed, 1u);  // a: its process died, the attempt counts
  EXPECT_EQ(c.running, 1u); // b: an external worker may still complete it
  EXPECT_EQ(c.queued, 1u);  // d
  EXPECT_EQ(job(in_process.id).at("state"), "failed");
  EXPECT_EQ(finish(job_op::complete, external.id, external.lease_id, t0 + 60).reply.status,
            job_status::ok);
  // New jobs keep arriving after the recovered ones.
  enqueue("e", "t", 0, 3, {}, t0 + 60);
  auto next = lease(5, t0 + 10'000);
  ASSERT_EQ(next.reply.jobs.size(), 3u);
  EXPECT_EQ(next.reply.jobs[0].id, "e"); // due at t0 + 60
  EXPECT_EQ(next.reply.jobs[1].id, "a"); // its retry, due 50 to 100 ms after the restart
  EXPECT_EQ(next.reply.jobs[2].id, "d");
}

TEST_F(fixture, retry_delay_grows_and_stays_under_the_cap) {
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

TEST_F(fixture, a_lease_from_another_node_leaves_the_announcements_alone) {
  enqueue("a");
  enqueue("b");
  ASSERT_EQ(q->take_announcements(t0).size(), 1u);
  job_request r;
  r.op = job_op::lease;
  r.queue = "q";
  r.max = 1;
  r.visibility_ms = 1000;
  auto step = q->apply(std::move(r), t0); // from_broker = false
  EXPECT_EQ(step.reply.jobs.size(), 1u);
  EXPECT_EQ(step.reply.ready_types, std::vector<std::string>{"t"});
  // The local broker still believes the lane is due; its own lease settles it.
  EXPECT_TRUE(lease(1, t0).reply.ready_types.empty());
  enqueue("c");
  EXPECT_EQ(q->take_announcements(t0).size(), 1u);
}

TEST(job_ids, name_their_shard) {
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
