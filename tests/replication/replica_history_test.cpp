// SPDX-License-Identifier: Apache-2.0
// Histories, not end states: clients write and read three keys through any replica of a
// five-server group while servers are killed, revived, cut off and healed at random
// (libraft's deterministic fixture, one seed per test). Every operation is recorded as
// invoke, then ok / fail / unknown, and each key's history must be linearizable
// (tests/support/linearizability.hpp); afterwards every replica holds the same data.
// SHOAL_HISTORY_SEEDS sets how many seeds run (default 20).
#include <algorithm>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "tests/replication/group_fixture.hpp"
#include "tests/replication/history.hpp"

namespace shoal::replication::test {
namespace {

constexpr unsigned servers = 5;
constexpr int keys = 3;

int seed_count() {
  return seeds_from("SHOAL_HISTORY_SEEDS", 20);
}

/// What one schedule did.
struct verdict {
  bool led = false;                          ///< a leader was found once the faults were healed
  unsigned unavailable = 0;                  ///< replicas libraft shut down (RAFT_UNAVAILABLE)
  std::vector<std::string> not_linearizable; ///< each failing key's name and history
  bool agree = false;                        ///< every available replica holds the same data
  int ok_writes = 0;
  int unknown_writes = 0;
  int ok_reads = 0;
};

/// A group with clients that record what they did. Not a test itself: each schedule runs
/// on one of its own (see schedule()).
class history_group : public group_fixture {
public:
  void TestBody() override {}
  void close() {
    TearDown();
  }
  verdict run(int seed, bool guarded);

protected:
  std::int64_t now() {
    return static_cast<std::int64_t>(raft_fixture_time(&f_));
  }
  static std::string key_name(int k) {
    return std::string("key-") + static_cast<char>('a' + k);
  }

  void write(unsigned via, int k) {
    const auto index = log_->size();
    const auto value = ++last_value_;
    log_->push_back({k, {true, value, now(), shoal::test::lin::unknown}});
    at(via).propose(put(key_name(k), std::to_string(value)),
                    [this, log = log_, index](core::result<void> r) {
                      auto& rec = (*log)[index];
                      if (r) {
                        rec.op.ret = now();
                      } else if (r.error().code() != core::errc::outcome_unknown) {
                        rec.failed = true;
                      }
                    });
  }

  void read(unsigned via, int k) {
    const auto index = log_->size();
    log_->push_back({k, {false, 0, now(), shoal::test::lin::unknown}});
    at(via).read([this, log = log_, index, via, k](core::result<void> r) {
      auto& rec = (*log)[index];
      if (!r) {
        rec.failed = true;
        return;
      }
      const auto v = value_of(via, key_name(k));
      rec.op.value = v == "<not_found>" ? 0 : std::stoll(v);
      rec.op.ret = now();
    });
  }

  std::shared_ptr<std::vector<recorded>> log_ = std::make_shared<std::vector<recorded>>();
  std::int64_t last_value_ = 0;
};

/// Runs the schedule of `seed`: 300 steps of client operations and faults, then heals
/// everything, reads every key once more through the leader (a lost acknowledged write
/// shows there as a stale read) and checks the history.
verdict history_group::run(int seed, bool guarded) {
  std::mt19937_64 rng(static_cast<std::uint64_t>(seed));
  verdict v;
  start(servers, guarded);
  if (!raft_fixture_step_until_has_leader(&f_, 10000)) return v;

  std::vector<bool> killed(servers, false);
  int cut = -1;
  for (int step = 0; step < 300; ++step) {
    const unsigned leader = raft_fixture_leader_index(&f_);
    // Clients mostly find the leader; some ask whoever they reach.
    const unsigned via = leader < servers && rng() % 4 != 0 ? leader : rng() % servers;
    const int k = static_cast<int>(rng() % keys);
    const auto roll = rng() % 100;
    const auto dead = static_cast<int>(std::count(killed.begin(), killed.end(), true));
    if (roll < 35) {
      if (!killed[via]) write(via, k);
    } else if (roll < 60) {
      if (!killed[via]) read(via, k);
    } else if (roll < 66) {
      if (!killed[via] && dead < 2) {
        raft_fixture_kill(&f_, via);
        killed[via] = true;
      }
    } else if (roll < 72) {
      const auto i = rng() % servers;
      if (killed[i]) {
        raft_fixture_revive(&f_, static_cast<unsigned>(i));
        killed[i] = false;
      }
    } else if (roll < 78) {
      if (cut < 0) {
        cut = static_cast<int>(rng() % servers);
        isolate(static_cast<unsigned>(cut));
      }
    } else if (roll < 84) {
      if (cut >= 0) {
        heal(static_cast<unsigned>(cut));
        cut = -1;
      }
    }
    raft_fixture_step_until_elapsed(&f_, 1 + static_cast<unsigned>(rng() % 60));
  }

  if (cut >= 0) heal(static_cast<unsigned>(cut));
  for (unsigned i = 0; i < servers; ++i) {
    if (killed[i]) raft_fixture_revive(&f_, i);
  }
  const auto available = [&](unsigned i) { return raft_state(server(i)) != RAFT_UNAVAILABLE; };
  // The leader of the highest term among the replicas still running.
  unsigned leader = servers;
  v.led = step_until(
    [&] {
      leader = servers;
      raft_term top = 0;
      for (unsigned i = 0; i < servers; ++i) {
        if (available(i)) top = std::max(top, server(i)->current_term);
      }
      for (unsigned i = 0; i < servers; ++i) {
        if (available(i) && raft_state(server(i)) == RAFT_LEADER && server(i)->current_term == top)
          leader = i;
      }
      return leader < servers;
    },
    30000);
  if (!v.led) return v;
  const auto final_reads = log_->size();
  for (int k = 0; k < keys; ++k) {
    read(leader, k);
  }
  step_until([&] {
    for (auto i = final_reads; i < log_->size(); ++i) {
      const auto& rec = (*log_)[i];
      if (!rec.failed && rec.op.ret == shoal::test::lin::unknown) return false;
    }
    return true;
  });
  const auto last = raft_last_index(server(leader));
  step_until([&] {
    for (unsigned i = 0; i < servers; ++i) {
      if (available(i) && raft_last_applied(server(i)) < last) return false;
    }
    return true;
  });

  for (unsigned i = 0; i < servers; ++i) {
    if (!available(i)) ++v.unavailable;
  }
  const auto h = check_histories(*log_, keys, key_name);
  v.ok_writes = h.ok_writes;
  v.unknown_writes = h.unknown_writes;
  v.ok_reads = h.ok_reads;
  v.not_linearizable = h.not_linearizable;
  const auto want = contents(leader);
  v.agree = true;
  for (unsigned i = 0; i < servers; ++i) {
    if (available(i) && contents(i) != want) v.agree = false;
  }
  return v;
}

/// Runs one schedule on a group of its own.
verdict schedule(int seed, bool guarded) {
  history_group t;
  verdict v = t.run(seed, guarded);
  t.close();
  return v;
}

class ReplicaHistoryTest : public ::testing::TestWithParam<int> {};

TEST_P(ReplicaHistoryTest, EveryKeysHistoryIsLinearizableUnderFaults) {
  const int seed = GetParam();
  const auto v = schedule(seed, true);
  ASSERT_TRUE(v.led) << "seed " << seed << ": no leader after healing";
  EXPECT_EQ(v.unavailable, 0u) << "seed " << seed;
  EXPECT_TRUE(v.not_linearizable.empty())
    << "seed " << seed << ": " << ::testing::PrintToString(v.not_linearizable);
  EXPECT_TRUE(v.agree) << "seed " << seed;
  // A schedule in which nothing got through would prove nothing.
  EXPECT_GE(v.ok_writes, 5) << "seed " << seed;
  EXPECT_GE(v.ok_reads, 5) << "seed " << seed;
  RecordProperty("ok_writes", v.ok_writes);
  RecordProperty("unknown_writes", v.unknown_writes);
  RecordProperty("ok_reads", v.ok_reads);
}

// The reproducer of the libraft 0.15 defects io_guard corrects (replication/io_guard.hpp):
// seed 410's schedule, without the guard, leads a follower's stale entry to be counted as
// the new leader's; libraft's own check then finds a committed entry contradicted and
// shuts two replicas down. With the guard the same schedule is clean. Should a libraft
// update stop reproducing it, the first expectation fails: look again at the guard.
TEST(LibraftDefectTest, AStaleEntryCountedAsMatchedWithoutTheGuard) {
  const auto bare = schedule(410, false);
  EXPECT_GT(bare.unavailable, 0u) << "libraft 0.15 no longer miscounts on this schedule";
  const auto guarded = schedule(410, true);
  EXPECT_TRUE(guarded.led);
  EXPECT_EQ(guarded.unavailable, 0u);
  EXPECT_TRUE(guarded.not_linearizable.empty());
  EXPECT_TRUE(guarded.agree);
}

INSTANTIATE_TEST_SUITE_P(Seeds, ReplicaHistoryTest, ::testing::Range(1, seed_count() + 1));

} // namespace
} // namespace shoal::replication::test
