// SPDX-License-Identifier: Apache-2.0
// Replicated shards through repeated leader kills (issue 13): three shoal processes with
// cluster.replication_factor = 3 and 16 writers. Each cycle kills with -9 the member that
// leads the most shards, lets the survivors elect, restarts it, and waits until it is
// up. What must hold: no acknowledged write is lost; writes to every shard the victim
// led resume within 3 s of the kill; and once the writers stop, every replica of every
// shard holds the same data (GET /v1/admin/replicas/{shard}: the same applied index,
// key count and checksum on all three members).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "cluster/shard_map.hpp"
#include "tests/integration/replication_suite.hpp"

namespace shoal::test {
namespace {

constexpr int writers = 16;

/// SHOAL_REPLICATION_CYCLES overrides the number of kill cycles (10 by default, as CI
/// runs them); longer runs are for scripts/replication-faults.sh.
int cycles() {
  if (const char* v = std::getenv("SHOAL_REPLICATION_CYCLES")) {
    const int n = std::atoi(v);
    if (n > 0) return n;
  }
  return 10;
}

class ReplicationCyclesTest : public ReplicationTest {
protected:
  ReplicationCyclesTest() : ReplicationTest("shoal-replication-cycles") {}

  /// The leader each shard has in `observer`'s view ("" for none, or no answer).
  std::vector<std::string> leaders_seen_by(const std::string& observer) {
    std::vector<std::string> out(shard_count);
    auto v = view(observer);
    if (!v.is_object()) return out;
    const auto& owners = v.at("shards").at("owners").as_object();
    for (std::uint32_t s = 0; s < shard_count; ++s)
      if (const auto* o = owners.if_contains(std::to_string(s)); o && o->is_string())
        out[s] = std::string(o->as_string());
    return out;
  }
};

// Verifies leader kills under 16 writers lose no acknowledged write, writes resume within
// 3 s, and every replica of every shard converges to the same data.
TEST_F(ReplicationCyclesTest, LeaderKillsUnderWritersLoseNothingAndReplicasConverge) {
  for (const auto& id : all_ids())
    ASSERT_TRUE(start_replicated(id));
  ASSERT_TRUE(wait_all_up(all_ids())) << views_text();
  ASSERT_TRUE(wait_leaders(all_ids())) << views_text();

  const cluster::shard_map map{shard_count};
  std::mutex mutex;
  std::map<std::string, int> acked; ///< document → the value of its acknowledged write
  /// When a write to each shard was last acknowledged (steady clock, nanoseconds).
  std::vector<std::atomic<std::int64_t>> last_ack(shard_count);
  std::atomic<int> down_index{-1}; ///< the member killed now (index in all_ids()), or -1
  std::atomic<bool> stop{false};
  std::atomic<int> unknown{0};
  const auto ids = all_ids();
  auto now_ns = [] { return clock_type::now().time_since_epoch().count(); };

  std::vector<std::thread> threads;
  const thread_guard guard{stop, threads};
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      std::minstd_rand rng(static_cast<unsigned>(w) * 7919u + 1u);
      std::vector<std::unique_ptr<http_client>> clients;
      for (const auto& id : ids)
        clients.push_back(std::make_unique<http_client>(http_port(id), 3s));
      for (int n = 0; !stop.load(); ++n) {
        // A few keys per writer, overwritten: a lost write shows as an older value.
        const auto key = "w" + std::to_string(w) + "-" + std::to_string(n % 8);
        std::size_t via = rng() % ids.size();
        if (static_cast<int>(via) == down_index.load()) via = (via + 1) % ids.size();
        auto res = clients[via]->try_request("PUT", "/v1/collections/cyc/docs/" + key,
                                             R"({"n":)" + std::to_string(n) + "}", json_type);
        if (res && (res->status == 200 || res->status == 201)) {
          const std::lock_guard lock{mutex};
          acked[key] = n;
          last_ack[map.shard_of("cyc", key)].store(now_ns());
        } else if (!res || res->status == 504) {
          // Unknown: it may have been written. The next write of the key settles it: a
          // later acknowledged value must win, and this one is never the expected one.
          ++unknown;
          const std::lock_guard lock{mutex};
          acked.erase(key);
        }
      }
    });
  }

  milliseconds worst_resume{0};
  std::vector<long long> resumes;
  for (int cycle = 0; cycle < cycles(); ++cycle) {
    // A member just restarted names the leaders once it has heard from its peers.
    const auto& observer = ids[static_cast<std::size_t>(cycle) % ids.size()];
    std::vector<std::string> leaders;
    const bool known = eventually(milliseconds(15'000), [&] {
      leaders = leaders_seen_by(observer);
      return std::none_of(leaders.begin(), leaders.end(),
                          [](const std::string& l) { return l.empty(); });
    });
    ASSERT_TRUE(known) << "cycle " << cycle << ": " << observer
                       << " knows no leader for some shard\n"
                       << views_text();
    std::map<std::string, int> led;
    for (const auto& l : leaders)
      ++led[l];
    const auto victim = std::max_element(led.begin(), led.end(), [](auto& a, auto& b) {
                          return a.second < b.second;
                        })->first;
    std::vector<std::uint32_t> victim_shards;
    for (std::uint32_t s = 0; s < shard_count; ++s)
      if (leaders[s] == victim) victim_shards.push_back(s);
    const auto victim_index =
      static_cast<int>(std::find(ids.begin(), ids.end(), victim) - ids.begin());
    down_index = victim_index;
    node(victim).kill9();
    const auto killed = clock_type::now();
    const auto killed_ns = now_ns();
    const bool resumed = eventually(milliseconds(15'000), [&] {
      for (auto s : victim_shards)
        if (last_ack[s].load() <= killed_ns) return false;
      return true;
    });
    ASSERT_TRUE(resumed) << "cycle " << cycle << ": writes to the shards " << victim
                         << " led did not resume\n"
                         << views_text();
    const auto resume = std::chrono::duration_cast<milliseconds>(clock_type::now() - killed);
    resumes.push_back(resume.count());
    worst_resume = std::max(worst_resume, resume);
    EXPECT_LE(resume.count(), 3000)
      << "cycle " << cycle << ": writes resumed only after " << resume.count() << " ms";
    ASSERT_TRUE(start_replicated(victim));
    ASSERT_TRUE(wait_all_up(ids)) << views_text();
    down_index = -1;
  }
  stop = true;
  for (auto& t : threads)
    t.join();
  threads.clear();

  // No acknowledged write is lost: each document holds its last acknowledged value.
  std::size_t checked = 0;
  for (const auto& [key, n] : acked) {
    auto res = get_until_ok("n1", "/v1/collections/cyc/docs/" + key);
    ASSERT_TRUE(res && res->status == 200) << key << ": " << describe(res);
    EXPECT_EQ(res->body, R"({"n":)" + std::to_string(n) + "}") << key;
    ++checked;
  }
  EXPECT_GE(checked, static_cast<std::size_t>(writers));

  // Every replica of every shard converges: same applied index, keys and checksum.
  expect_replicas_converge(ids);
  std::string list;
  for (auto r : resumes)
    list += (list.empty() ? "" : ", ") + std::to_string(r);
  std::printf("[ cycles   ] %d leader kills under %d writers: %zu documents checked, %d writes "
              "unknown; writes resumed after (ms) %s; worst %lld ms\n",
              cycles(), writers, checked, unknown.load(), list.c_str(),
              static_cast<long long>(worst_resume.count()));
  std::fflush(stdout);
}

} // namespace
} // namespace shoal::test
