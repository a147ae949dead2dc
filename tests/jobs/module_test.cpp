// SPDX-License-Identifier: Apache-2.0
// The jobs module of one shard on a manual loop (tests/support/manual_shard.hpp): replies
// held until the job's writes are durable (storage.sync), lease expiry and delayed jobs on
// the module's timer with the clock advanced by the test (never slept), announcements to
// the broker, recovery after a restart, a disk that fails an expiry, and a shard whose
// jobs cannot be loaded.
#include "jobs/module.hpp"

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "jobs/ids.hpp"
#include "storage/memory_store.hpp"
#include "tests/support/faulty_store.hpp"
#include "tests/support/manual_shard.hpp"

namespace shoal::jobs {
namespace {

using namespace std::chrono_literals;
using announcement = std::pair<std::string, std::string>;

job_enqueue make_enqueue(std::string type = "t", std::uint64_t delay_ms = 0) {
  job_enqueue r;
  r.queue = "q";
  r.type = std::move(type);
  r.payload = R"({"n":1})";
  r.delay_ms = delay_ms;
  r.max_attempts = 3;
  return r;
}

job_lease make_lease(std::uint32_t visibility_ms = 30'000, std::string owner = {}) {
  job_lease r;
  r.queue = "q";
  r.max = 1;
  r.visibility_ms = visibility_ms;
  r.owner = std::move(owner);
  r.from_broker = true;
  return r;
}

boost::json::object parse(const job_view& v) {
  return boost::json::parse(v.json).as_object();
}

class JobsModuleTest : public ::testing::Test {
protected:
  storage::memory_store store{1};
  job_metrics metrics;
  std::vector<announcement> announced;

  module::config config(std::string incarnation = "incarnation-1") {
    module::config c;
    c.retry = retry_policy{100, 1000};
    c.metrics = &metrics;
    c.incarnation = std::move(incarnation);
    c.announce = [this](const std::string& queue, const std::string& type) {
      announced.emplace_back(queue, type);
    };
    c.seed = 7;
    return c;
  }

  /// The ids of the job records stored in the shard, in key order.
  std::vector<std::string> stored_ids() {
    std::vector<std::string> ids;
    auto s = store.shard(0).scan_prefix("j", [&](std::string_view key, std::string_view) {
      ids.emplace_back(key.substr(1));
      return true;
    });
    EXPECT_TRUE(s);
    return ids;
  }
};

// Verifies that with storage.sync an enqueue is answered only after the fsync, and a get
// of the job whose write is pending waits for it too, while the job is already stored.
TEST_F(JobsModuleTest, EnqueueAndGetWaitUntilDurable) {
  testing::manual_shard shard{store, 0, true};
  module jobs{shard.ctx(), config()};
  ASSERT_FALSE(jobs.load_error());
  auto put = shard.serve(jobs, make_enqueue());
  EXPECT_FALSE(put->ready());
  ASSERT_TRUE(shard.sync_wanted());
  const auto ids = stored_ids();
  ASSERT_EQ(ids.size(), 1u); // applied at once, only not acknowledged
  const auto id = ids[0];
  auto get = shard.serve(jobs, job_get{id});
  EXPECT_FALSE(get->ready()) << "a get showed a write a crash could still take back";
  shard.sync();
  ASSERT_TRUE(put->ready());
  EXPECT_EQ(put->deliveries, 1);
  EXPECT_TRUE(put->value().created);
  EXPECT_EQ(put->value().id, id);
  ASSERT_TRUE(get->ready());
  EXPECT_EQ(parse(get->value()).at("state"), "queued");
  // Durable now: a get answers at once.
  auto again = shard.serve(jobs, job_get{id});
  ASSERT_TRUE(again->ready());
  EXPECT_EQ(parse(again->value()).at("id"), id.c_str());
}

// Verifies that an enqueue, lease or complete whose durability then fails with the shard
// stopping (or, replicated, losing its leadership) is answered 504 outcome_unknown: the
// job may be kept, and a client that took a refusal would enqueue it again. A get whose
// wait fails the same way is refused as it is (it changed nothing).
TEST_F(JobsModuleTest, AWriteWhoseConfirmationFailsIsUnknownAndAReadIsRefused) {
  testing::manual_shard shard{store, 0, true};
  module jobs{shard.ctx(), config()};
  auto put = shard.serve(jobs, make_enqueue());
  ASSERT_FALSE(put->ready());
  const auto id = stored_ids().at(0);
  auto get = shard.serve(jobs, job_get{id});
  ASSERT_FALSE(get->ready());
  shard.fail_sync(core::error{core::errc::shutting_down, "the shard stopped"});
  ASSERT_TRUE(put->ready());
  ASSERT_FALSE(put->last->ok());
  EXPECT_EQ(put->last->error().code(), core::errc::outcome_unknown)
    << put->last->error().to_string();
  ASSERT_TRUE(get->ready());
  ASSERT_FALSE(get->last->ok());
  EXPECT_EQ(get->last->error().code(), core::errc::shutting_down);

  // The lease and its completion, the same.
  auto lease = shard.serve(jobs, make_lease());
  ASSERT_FALSE(lease->ready());
  shard.fail_sync(core::error{core::errc::shard_unavailable, "not_leader", "leadership lost"});
  ASSERT_TRUE(lease->ready());
  ASSERT_FALSE(lease->last->ok());
  EXPECT_EQ(lease->last->error().code(), core::errc::outcome_unknown)
    << lease->last->error().to_string();
}

// Verifies that with storage.sync a get of a durable job does not wait for another job's
// pending write, and leases and completions are answered only after their fsync.
TEST_F(JobsModuleTest, LeaseAndCompleteWaitUntilDurable) {
  testing::manual_shard shard{store, 0, true};
  module jobs{shard.ctx(), config()};
  auto put = shard.serve(jobs, make_enqueue());
  shard.sync();
  const auto id = put->value().id;
  auto other = shard.serve(jobs, make_enqueue());
  EXPECT_FALSE(other->ready());
  auto get = shard.serve(jobs, job_get{id});
  EXPECT_TRUE(get->ready()) << "waited for another job's write";
  shard.sync();
  ASSERT_TRUE(other->ready());

  auto lease = shard.serve(jobs, make_lease());
  EXPECT_FALSE(lease->ready());
  shard.sync();
  ASSERT_TRUE(lease->ready());
  auto grant = lease->value();
  ASSERT_EQ(grant.jobs.size(), 1u);
  EXPECT_EQ(grant.jobs[0].id, id);

  auto done = shard.serve(jobs, job_complete{id, grant.jobs[0].lease_id, "1", false});
  EXPECT_FALSE(done->ready());
  shard.sync();
  ASSERT_TRUE(done->ready());
  EXPECT_EQ(parse(done->value()).at("state"), "succeeded");
}

// Verifies that a failed fsync answers the writes that waited for it with storage_failed
// (nothing unsynced is acknowledged), and a get that waited gets the same error.
TEST_F(JobsModuleTest, AFailedFsyncAnswersStorageFailed) {
  testing::manual_shard shard{store, 0, true};
  module jobs{shard.ctx(), config()};
  auto put = shard.serve(jobs, make_enqueue());
  ASSERT_FALSE(put->ready());
  ASSERT_EQ(stored_ids().size(), 1u);
  const auto id = stored_ids()[0];
  auto get = shard.serve(jobs, job_get{id});
  EXPECT_FALSE(get->ready());
  shard.fail_sync(core::error{core::errc::storage_failed, "fsync failed"});
  ASSERT_TRUE(put->ready());
  EXPECT_EQ(put->deliveries, 1);
  EXPECT_EQ(put->error().code(), core::errc::storage_failed);
  ASSERT_TRUE(get->ready());
  EXPECT_EQ(get->error().code(), core::errc::storage_failed);
}

// Verifies a lease expires on the module's own timer when the clock passes its
// visibility (no sleep): the attempt fails and counts, and the job is announced again
// once its retry backoff is over.
TEST_F(JobsModuleTest, LeasesExpireOnTheModulesTimer) {
  testing::manual_shard shard{store};
  module jobs{shard.ctx(), config()};
  const auto id = shard.serve(jobs, make_enqueue())->value().id;
  ASSERT_EQ(announced.size(), 1u);
  auto grant = shard.serve(jobs, make_lease(1000))->value();
  ASSERT_EQ(grant.jobs.size(), 1u);
  shard.advance(999ms);
  EXPECT_EQ(parse(shard.serve(jobs, job_get{id})->value()).at("state"), "running");
  shard.advance(1ms);
  auto j = parse(shard.serve(jobs, job_get{id})->value());
  EXPECT_EQ(j.at("state"), "failed");
  EXPECT_EQ(j.at("attempts"), 1);
  EXPECT_EQ(j.at("error"), "the lease expired after 1000 ms");
  EXPECT_EQ(metrics.of("q", "t").lease_expired.value(), 1u);
  auto stats = shard.serve(jobs, queue_stats{"q"})->value();
  EXPECT_EQ(stats.failed, 1u);
  EXPECT_EQ(stats.running, 0u);
  // The retry is due 50 to 100 ms later; the broker hears of it then, and it leases.
  shard.advance(49ms);
  EXPECT_EQ(announced.size(), 1u);
  shard.advance(51ms);
  ASSERT_EQ(announced.size(), 2u);
  EXPECT_EQ(announced[1], announcement("q", "t"));
  auto again = shard.serve(jobs, make_lease(1000))->value();
  ASSERT_EQ(again.jobs.size(), 1u);
  EXPECT_EQ(again.jobs[0].attempt, 2u);
  EXPECT_NE(again.jobs[0].lease_id, grant.jobs[0].lease_id);
  EXPECT_TRUE(shard.reports.empty());
}

// Verifies a lease expiry whose write fails is reported and tried again later on the
// timer, not at once in a loop while the disk fails, and succeeds once writes do.
TEST_F(JobsModuleTest, AFailedExpiryIsReportedAndRetriedLater) {
  testing::faulty_store disk{store};
  testing::manual_shard shard{disk};
  module jobs{shard.ctx(), config()};
  const auto id = shard.serve(jobs, make_enqueue())->value().id;
  ASSERT_EQ(shard.serve(jobs, make_lease(1000))->value().jobs.size(), 1u);
  disk.fail_next_writes = 1000;
  shard.advance(1000ms);
  EXPECT_GE(disk.failed_writes, 1);
  EXPECT_LE(disk.failed_writes, 2) << "the failed expiry was retried at once, in a loop";
  ASSERT_FALSE(shard.reports.empty());
  EXPECT_NE(shard.reports[0].find("expiring job leases"), std::string::npos);
  EXPECT_EQ(parse(shard.serve(jobs, job_get{id})->value()).at("state"), "running");
  // The disk recovers: a later timer expires the lease.
  disk.fail_next_writes = 0;
  shard.advance(10'000ms);
  EXPECT_EQ(parse(shard.serve(jobs, job_get{id})->value()).at("state"), "failed");
}

// Verifies a due job is announced to the broker before its enqueue is answered, so a
// worker that leases right after its 202 finds the broker told already.
TEST_F(JobsModuleTest, ADueJobIsAnnouncedBeforeTheEnqueueIsAnswered) {
  testing::manual_shard shard{store};
  std::vector<std::string> events;
  auto cfg = config();
  cfg.announce = [&](const std::string& queue, const std::string& type) {
    events.push_back("announce " + queue + "/" + type);
  };
  module jobs{shard.ctx(), cfg};
  shard.step([&] {
    jobs.serve(make_enqueue("now"),
               core::reply_to<job_enqueued>::to([&](core::result<job_enqueued>&& r) {
                 EXPECT_TRUE(r);
                 events.push_back("answer");
               }));
  });
  EXPECT_EQ(events, (std::vector<std::string>{"announce q/now", "answer"}));
}

// Verifies a delayed job is neither announced nor leased before its time, and is
// announced on the module's timer once its time comes.
TEST_F(JobsModuleTest, ADelayedJobIsAnnouncedWhenItsTimeComes) {
  testing::manual_shard shard{store};
  module jobs{shard.ctx(), config()};
  ASSERT_TRUE(shard.serve(jobs, make_enqueue("later", 500))->ready());
  EXPECT_TRUE(announced.empty());
  EXPECT_TRUE(shard.serve(jobs, make_lease())->value().jobs.empty());
  shard.advance(499ms);
  EXPECT_TRUE(announced.empty());
  shard.advance(1ms);
  ASSERT_EQ(announced.size(), 1u);
  EXPECT_EQ(announced[0], announcement("q", "later"));
  EXPECT_EQ(shard.serve(jobs, make_lease())->value().jobs.size(), 1u);
}

// Verifies that on restart the in-process leases of another incarnation count as an
// expired attempt (failed, counted, retried later), while an external lease stays.
TEST_F(JobsModuleTest, RecoveryCountsAnotherIncarnationsLeasesAsExpiredAttempts) {
  std::string in_process;
  std::string external;
  {
    testing::manual_shard shard{store};
    module jobs{shard.ctx(), config("incarnation-1")};
    in_process = shard.serve(jobs, make_enqueue())->value().id;
    external = shard.serve(jobs, make_enqueue())->value().id;
    auto a = shard.serve(jobs, make_lease(60'000, "incarnation-1"))->value();
    ASSERT_EQ(a.jobs.size(), 1u);
    ASSERT_EQ(a.jobs[0].id, in_process);
    auto b = shard.serve(jobs, make_lease(60'000))->value();
    ASSERT_EQ(b.jobs.size(), 1u);
    ASSERT_EQ(b.jobs[0].id, external);
  } // the process dies
  announced.clear();

  testing::manual_shard shard{store};
  module jobs{shard.ctx(), config("incarnation-2")};
  shard.step([] {}); // the host's first step arms the module's timer
  ASSERT_FALSE(jobs.load_error());
  auto a = parse(shard.serve(jobs, job_get{in_process})->value());
  EXPECT_EQ(a.at("state"), "failed");
  EXPECT_EQ(a.at("attempts"), 1);
  EXPECT_NE(a.at("error").as_string().find("restarted"), boost::json::string::npos);
  EXPECT_EQ(parse(shard.serve(jobs, job_get{external})->value()).at("state"), "running");
  auto stats = shard.serve(jobs, queue_stats{"q"})->value();
  EXPECT_EQ(stats.failed, 1u);
  EXPECT_EQ(stats.running, 1u);
  EXPECT_EQ(metrics.of("q", "t").lease_expired.value(), 1u);
  EXPECT_EQ(metrics.of("q", "t").failed.value(), 1u);
  // Its retry comes after the backoff, announced on the module's timer.
  EXPECT_TRUE(announced.empty());
  shard.advance(100ms);
  ASSERT_EQ(announced.size(), 1u);
  auto again = shard.serve(jobs, make_lease(1000, "incarnation-2"))->value();
  ASSERT_EQ(again.jobs.size(), 1u);
  EXPECT_EQ(again.jobs[0].id, in_process);
  EXPECT_EQ(again.jobs[0].attempt, 2u);
}

// Verifies a corrupt job record makes loading fail: load_error() says so and every
// request is answered with it, writing nothing.
TEST_F(JobsModuleTest, ACorruptRecordIsALoadError) {
  storage::write_batch garbage;
  garbage.put(job_key(make_job_id(0, 1)), "not a job record");
  ASSERT_TRUE(store.shard(0).write(garbage, false));
  testing::manual_shard shard{store};
  module jobs{shard.ctx(), config()};
  ASSERT_TRUE(jobs.load_error());
  EXPECT_EQ(jobs.load_error()->code(), core::errc::storage_failed);
  EXPECT_NE(jobs.load_error()->message().find("corrupt"), std::string::npos);
  auto put = shard.serve(jobs, make_enqueue());
  EXPECT_EQ(put->error().code(), core::errc::storage_failed);
  EXPECT_EQ(shard.serve(jobs, job_get{make_job_id(0, 1)})->error().code(),
            core::errc::storage_failed);
  EXPECT_EQ(shard.serve(jobs, make_lease())->error().code(), core::errc::storage_failed);
  EXPECT_EQ(shard.serve(jobs, queue_stats{"q"})->error().code(), core::errc::storage_failed);
  EXPECT_EQ(shard.serve(jobs, job_retry{make_job_id(0, 1)})->error().code(),
            core::errc::storage_failed);
  EXPECT_EQ(stored_ids().size(), 1u);
  EXPECT_TRUE(announced.empty());
}

} // namespace
} // namespace shoal::jobs
