// SPDX-License-Identifier: Apache-2.0
// Virtual actors and jobs on replicated shards, across a leader kill (issue 13): three
// shoal processes with cluster.replication_factor = 3. Counter actors are incremented
// through random live members while the member leading the most shards is killed with
// -9 and restarted; jobs enqueued before the kill are leased and completed after it.
// What must hold: a counter ends between its acknowledged increments and those plus the
// ones whose outcome is unknown (no acknowledged increment lost, none applied twice, which
// an actor active on two replicas at once would do); every acknowledged job is still
// there after the failover, each is leased once and completes.
#include <atomic>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/replication_suite.hpp"
#include "tests/support/feed_client.hpp"
#include "tests/support/webhook_receiver.hpp"

namespace shoal::test {
namespace {

class ReplicatedModulesTest : public ReplicationTest {
protected:
  ReplicatedModulesTest() : ReplicationTest("shoal-replication-modules") {}
};

// Verifies counters on replicated shards lose no acknowledged increment and apply none
// twice through a leader kill and restart, and acknowledged jobs survive it, each leased
// once and completed.
TEST_F(ReplicatedModulesTest, CountersAndJobsSurviveALeaderKill) {
  for (const auto& id : all_ids())
    ASSERT_TRUE(start_replicated(id));
  ASSERT_TRUE(wait_all_up(all_ids())) << views_text();
  ASSERT_TRUE(wait_leaders(all_ids())) << views_text();
  const auto victim = busiest_leader();

  // Jobs first: twenty acknowledged enqueues, through every member.
  std::set<std::string> jobs;
  for (int i = 0; jobs.size() < 20 && i < 200; ++i) {
    auto c = client_of(all_ids()[static_cast<std::size_t>(i) % 3], 5s);
    auto res =
      c.try_request("POST", "/v1/queues/rq/jobs",
                    R"({"type":"t","payload":{"i":)" + std::to_string(i) + "}}", json_type);
    if (res && res->status == 202) jobs.insert(std::string(res->json().at("id").as_string()));
  }
  ASSERT_EQ(jobs.size(), 20u);

  // Counters: each thread owns two and increments them one call at a time.
  constexpr int threads = 4;
  std::atomic<bool> stop{false};
  std::atomic<int> down{0}; ///< the killed member (1-based) while it is down
  std::mutex mutex;
  std::map<std::string, int> acked;   ///< counter → acknowledged increments
  std::map<std::string, int> unknown; ///< counter → increments of unknown outcome
  std::vector<std::thread> clients;
  const thread_guard guard{stop, clients};
  for (int t = 0; t < threads; ++t) {
    clients.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t) + 77u);
      while (!stop.load()) {
        const auto counter = "c" + std::to_string(t) + "-" + std::to_string(rng() % 2);
        auto via = static_cast<int>(rng() % 3) + 1;
        if (via == down.load()) via = via % 3 + 1;
        auto c = client_of("n" + std::to_string(via), 3s);
        auto res = c.try_request("POST", "/v1/actors/counter/" + counter + "/method/increment",
                                 R"({"by":1})", json_type);
        const std::lock_guard lock{mutex};
        if (res && res->status == 200)
          ++acked[counter];
        else if (!res || res->status == 504)
          ++unknown[counter];
        // anything else was refused and changed nothing
      }
    });
  }
  std::this_thread::sleep_for(2s);
  down = std::stoi(victim.substr(1));
  node(victim).kill9();
  std::this_thread::sleep_for(4s);
  ASSERT_TRUE(start_replicated(victim));
  ASSERT_TRUE(wait_all_up(all_ids())) << views_text();
  down = 0;
  std::this_thread::sleep_for(2s);
  stop = true;
  for (auto& t : clients)
    t.join();
  clients.clear();

  int total_acked = 0;
  for (const auto& [counter, n] : acked) {
    total_acked += n;
    std::optional<http_response> res;
    ASSERT_TRUE(eventually(milliseconds(10'000),
                           [&] {
                             auto c = client_of("n1", 5s);
                             res = c.try_request("POST",
                                                 "/v1/actors/counter/" + counter + "/method/get",
                                                 "{}", json_type);
                             return res && res->status == 200;
                           }))
      << counter << ": " << describe(res);
    const auto value = res->json().at("value").to_number<std::int64_t>();
    EXPECT_GE(value, n) << counter << " lost an acknowledged increment";
    EXPECT_LE(value, n + unknown[counter]) << counter << " applied an increment twice";
  }
  EXPECT_GE(total_acked, 50) << "too few increments were acknowledged to tell anything";

  // Every acknowledged job is still there, and each is leased once and completes.
  for (const auto& id : jobs) {
    auto res = get_until_ok("n1", "/v1/jobs/" + id);
    ASSERT_TRUE(res && res->status == 200) << id << ": " << describe(res);
  }
  std::set<std::string> leased;
  std::size_t round = 0;
  ASSERT_TRUE(eventually(
    milliseconds(30'000),
    [&] {
      auto c = client_of(all_ids()[round++ % 3], 5s); // through every member in turn
      auto res = c.try_request("POST", "/v1/queues/rq/lease", R"({"max":10,"visibility_ms":60000})",
                               json_type);
      if (!res || res->status != 200) return false;
      const auto body = res->json(); // kept: the loop walks into it
      for (const auto& j : body.at("jobs").as_array()) {
        const std::string id{j.at("id").as_string()};
        EXPECT_TRUE(leased.insert(id).second) << id << " was leased twice";
        auto done = c.try_request(
          "POST", "/v1/jobs/" + id + "/complete",
          R"({"lease_id":")" + std::string(j.at("lease_id").as_string()) + R"("})", json_type);
        EXPECT_TRUE(done && done->status == 200) << id << ": " << describe(done);
      }
      return leased.size() >= jobs.size();
    }))
    << leased.size() << " of " << jobs.size() << " jobs leased";
  EXPECT_EQ(leased, jobs);
  std::printf("[ modules  ] %d increments acknowledged through the kill of %s; %zu jobs leased "
              "once and completed\n",
              total_acked, victim.c_str(), leased.size());
  std::fflush(stdout);
}

// Verifies in-process job handlers on replicated shards: webhook jobs enqueued through
// every member before and after kill -9 of the member leading the most shards are each
// delivered (at least once: a delivery the killed leader made may be made again) and end
// succeeded. The handlers of each node lease from the shards led there, so the jobs of
// the killed leader's shards run on the members that lead them next.
TEST_F(ReplicatedModulesTest, InProcessHandlersRunEveryJobThroughALeaderKill) {
  const std::vector<std::string> sets{"cluster.replication_factor=3", "jobs.workers=4",
                                      "jobs.webhook_allow=127.0.0.1", "jobs.retry_base_ms=20",
                                      "jobs.retry_cap_ms=200"};
  for (const auto& id : all_ids())
    ASSERT_TRUE(start(id, {}, sets));
  ASSERT_TRUE(wait_all_up(all_ids())) << views_text();
  ASSERT_TRUE(wait_leaders(all_ids())) << views_text();
  const auto victim = busiest_leader();
  webhook_receiver hooks;
  std::set<std::string> acked;
  int unknown = 0;
  const auto enqueue = [&](int from, int to, const std::vector<std::string>& via) {
    for (int i = from; i < to; ++i) {
      auto c = client_of(via[static_cast<std::size_t>(i) % via.size()], 5s);
      const auto body = R"({"type":"webhook","max_attempts":20,"payload":{"url":")"
                        + hooks.url("/slow?ms=50") + R"(","body":{"i":)" + std::to_string(i)
                        + "}}}";
      // A shard still electing refuses with 503 (nothing enqueued): try again, for up to
      // 15 s, so that jobs enqueued right after the kill count too.
      std::optional<http_response> res;
      eventually(milliseconds(15'000), [&] {
        res = c.try_request("POST", "/v1/queues/hooks/jobs", body, json_type);
        return !res || res->status != 503;
      });
      if (res && res->status == 202)
        acked.insert(std::string(res->json().at("id").as_string()));
      else if (!res || res->status == 504)
        ++unknown;
    }
  };
  enqueue(0, 30, all_ids());
  node(victim).kill9();
  std::vector<std::string> survivors;
  for (const auto& id : all_ids())
    if (id != victim) survivors.push_back(id);
  enqueue(30, 60, survivors);
  ASSERT_TRUE(start(victim, {}, sets));
  ASSERT_TRUE(wait_all_up(all_ids())) << views_text();
  EXPECT_GE(acked.size(), 50u) << "too few jobs were acknowledged to tell anything";

  for (const auto& id : acked) {
    std::string state;
    const bool done = eventually(milliseconds(30'000), [&] {
      auto c = client_of("n1", 5s);
      auto res = c.try_request("GET", "/v1/jobs/" + id);
      if (!res || res->status != 200) return false;
      state = std::string(res->json().at("state").as_string());
      return state == "succeeded";
    });
    EXPECT_TRUE(done) << id << " ended " << state;
    EXPECT_GE(hooks.count(id), 1u) << id << " was never delivered";
  }
  std::size_t again = 0;
  for (const auto& id : acked)
    again += hooks.count(id) > 1 ? 1 : 0;
  std::printf("[ modules  ] %zu webhook jobs through the kill of %s, all succeeded; %zu "
              "delivered more than once, %d enqueues of unknown outcome\n",
              acked.size(), victim.c_str(), again, unknown);
  std::fflush(stdout);
}

// Verifies a change-feed position taken before a leader change resumes after it, through
// another member: every event written after it arrives once, none from before it (the
// shards' change logs are part of the replicated state, so positions mean the same on
// every replica).
TEST_F(ReplicatedModulesTest, ChangeFeedPositionsStayValidAcrossALeaderChange) {
  for (const auto& id : all_ids())
    ASSERT_TRUE(start_replicated(id));
  ASSERT_TRUE(wait_all_up(all_ids())) << views_text();
  ASSERT_TRUE(wait_leaders(all_ids())) << views_text();
  std::string last_id;
  {
    feed_client feed{http_port("n1"), "/v1/collections/cf/changes"};
    ASSERT_TRUE(feed.read_head());
    // put_until_ok stops at 200, so a new document is written twice (201, then 200).
    std::size_t events = 0;
    for (int i = 0; i < 10; ++i) {
      auto res = put_until_ok("n1", "/v1/collections/cf/docs/d" + std::to_string(i), "{}");
      ASSERT_TRUE(res && res->status == 200) << describe(res);
      events += static_cast<std::size_t>(res->json().at("version").to_number<std::int64_t>());
    }
    for (std::size_t got = 0; got < events;) {
      auto e = feed.next(10s);
      ASSERT_TRUE(e) << "only " << got << " of " << events << " events before the kill";
      ++got;
      last_id = e->id;
    }
  }
  ASSERT_FALSE(last_id.empty());

  const auto victim = busiest_leader();
  const std::string survivor = victim == "n1" ? "n2" : "n1";
  node(victim).kill9();
  // A retried write may have been applied twice: expect every version up to the last.
  std::map<std::string, std::int64_t> versions;
  for (int i = 0; i < 10; ++i) {
    const auto id = "e" + std::to_string(i);
    auto res = put_until_ok(survivor, "/v1/collections/cf/docs/" + id, "{}");
    ASSERT_TRUE(res && res->status == 200) << describe(res);
    versions[id] = res->json().at("version").to_number<std::int64_t>();
  }
  std::set<std::pair<std::string, std::int64_t>> want;
  for (const auto& [id, v] : versions)
    for (std::int64_t n = 1; n <= v; ++n)
      want.insert({id, n});

  feed_client resumed{
    http_port(survivor), "/v1/collections/cf/changes", {{"Last-Event-ID", last_id}}};
  ASSERT_TRUE(resumed.read_head());
  EXPECT_EQ(resumed.status, 200u);
  std::set<std::pair<std::string, std::int64_t>> seen;
  while (seen.size() < want.size()) {
    auto e = resumed.next(15s);
    ASSERT_TRUE(e) << "only " << seen.size() << " of " << want.size() << " events after the kill";
    auto data = json::parse(e->data);
    const std::pair<std::string, std::int64_t> key{std::string(data.at("id").as_string()),
                                                   data.at("version").to_number<std::int64_t>()};
    EXPECT_TRUE(seen.insert(key).second) << key.first << " v" << key.second << " twice";
    EXPECT_TRUE(want.count(key)) << key.first << " v" << key.second << " was not expected";
  }
  EXPECT_FALSE(resumed.next(500ms)) << "more events than were written";
  EXPECT_EQ(seen, want);
}

} // namespace
} // namespace shoal::test
