// SPDX-License-Identifier: Apache-2.0
// A shard group on our own raft_io (group_io over log_store, wire bytes between servers)
// on a simulated network and clock, each server over RocksDB on disk
// (sim_cluster.hpp). What must hold: a group elects and replicates through our bytes;
// a crashed server restarts from its own log and store (libraft's load, snapshot
// restore and replay against our state machine); terms and votes survive a crash of
// every server; and under crashes, restarts, lost, duplicated and reordered messages
// each key's history stays linearizable and the replicas converge.
// SHOAL_IO_HISTORY_SEEDS sets how many seeds the history test runs (default 8).
#include <memory>
#include <string>
#include <vector>

#include "replication/log_store.hpp"
#include "tests/replication/history.hpp"
#include "tests/replication/sim_cluster.hpp"

namespace shoal::replication::test {
namespace {

storage::write_batch put(const std::string& key, const std::string& value) {
  storage::write_batch b;
  b.put(key, value);
  return b;
}

/// Proposes through the leader and runs until the answer; true when it was ok.
bool write_through_leader(sim_cluster& c, const std::string& key, const std::string& value) {
  if (!c.run_until([&] { return c.leader() < c.size(); })) return false;
  bool done = false;
  bool ok = false;
  c.at(c.leader()).propose(put(key, value), [&](core::result<void> r) {
    done = true;
    ok = r.ok();
  });
  c.run_until([&] { return done; });
  return ok;
}

bool converged(sim_cluster& c) {
  return c.run_until([&] {
    const unsigned l = c.leader();
    if (l == c.size()) return false;
    const auto last = raft_last_index(c.server(l));
    for (unsigned i = 0; i < c.size(); ++i) {
      if (c.up(i) && raft_last_applied(c.server(i)) < last) return false;
    }
    return true;
  });
}

TEST(GroupIoTest, AGroupElectsAndReplicatesThroughOurBytes) {
  sim_cluster c({3, 1});
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(write_through_leader(c, "k" + std::to_string(i % 4), std::to_string(i))) << i;
  }
  ASSERT_TRUE(converged(c));
  const auto want = shard_contents(c.shard(c.leader()));
  EXPECT_EQ(want.at("k1"), "9");
  for (unsigned i = 0; i < 3; ++i) {
    EXPECT_EQ(shard_contents(c.shard(i)), want) << i;
    EXPECT_EQ(c.machine(i).applied(), raft_last_applied(c.server(i))) << i;
  }
}

TEST(GroupIoTest, ACrashedServerRestartsFromItsOwnLogAndStore) {
  sim_cluster c({3, 2});
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(write_through_leader(c, "a", std::to_string(i)));
  ASSERT_TRUE(converged(c));
  const unsigned victim = (c.leader() + 1) % 3;
  const auto applied_before = c.machine(victim).applied();
  ASSERT_GT(applied_before, 0u);
  c.crash(victim);
  for (int i = 5; i < 10; ++i)
    ASSERT_TRUE(write_through_leader(c, "b", std::to_string(i)));
  c.restart(victim);
  // Restarted: the shard kept what it applied, so libraft's replay skips it.
  EXPECT_EQ(c.machine(victim).applied(), applied_before);
  ASSERT_TRUE(converged(c));
  EXPECT_EQ(shard_contents(c.shard(victim)), shard_contents(c.shard(c.leader())));
  EXPECT_EQ(shard_value(c.shard(victim), "b"), "9");
}

TEST(GroupIoTest, TermsAndVotesSurviveACrashOfEveryServer) {
  sim_cluster c({3, 3});
  ASSERT_TRUE(write_through_leader(c, "a", "1"));
  raft_term before = 0;
  for (unsigned i = 0; i < 3; ++i)
    before = std::max(before, c.server(i)->current_term);
  for (unsigned i = 0; i < 3; ++i)
    c.crash(i);
  for (unsigned i = 0; i < 3; ++i) {
    c.restart(i);
    EXPECT_GE(c.server(i)->current_term, 1u);
  }
  raft_term loaded = 0;
  for (unsigned i = 0; i < 3; ++i)
    loaded = std::max(loaded, c.server(i)->current_term);
  EXPECT_EQ(loaded, before) << "the term was loaded, not started again";
  ASSERT_TRUE(write_through_leader(c, "a", "2"));
  EXPECT_GT(c.server(c.leader())->current_term, before) << "a new election, in a new term";
  ASSERT_TRUE(converged(c));
  for (unsigned i = 0; i < 3; ++i)
    EXPECT_EQ(shard_value(c.shard(i), "a"), "2") << i;
}

TEST(GroupIoTest, EachServersVoteSurvivesItsCrash) {
  sim_cluster c({3, 5});
  ASSERT_TRUE(write_through_leader(c, "a", "1"));
  std::vector<raft_term> terms(3);
  std::vector<raft_id> votes(3);
  unsigned voted = 0;
  for (unsigned i = 0; i < 3; ++i) {
    terms[i] = c.server(i)->current_term;
    votes[i] = c.server(i)->voted_for;
    voted += votes[i] != 0 ? 1 : 0;
    c.crash(i);
  }
  ASSERT_GE(voted, 2u) << "an election needs a majority of votes";
  for (unsigned i = 0; i < 3; ++i) {
    c.restart(i); // loads, before any event runs
    EXPECT_EQ(c.server(i)->current_term, terms[i]) << i;
    EXPECT_EQ(c.server(i)->voted_for, votes[i]) << i << ": a forgotten vote could be cast twice";
  }
}

/// Elects a leader, holds every fsync, and has the leader propose three writes (three
/// appends that wait for the fsync); each answer counts in `answered` and must not be
/// ok. Returns the leader.
unsigned three_appends_wait_for_the_fsync(sim_cluster& c, int& answered) {
  EXPECT_TRUE(write_through_leader(c, "a", "0"));
  const unsigned l = c.leader();
  c.hold_syncs();
  for (int i = 1; i <= 3; ++i)
    c.at(l).propose(put("a", std::to_string(i)), [&answered](core::result<void> r) {
      ++answered;
      EXPECT_FALSE(r.ok()) << "acknowledged without a good fsync";
    });
  c.run_for(20);
  EXPECT_GE(c.held_syncs(), 3u) << "the appends did not wait for the fsync";
  return l;
}

// Verifies a leader closed (crashed) while several of its appends wait for the fsync
// survives the close: libraft 0.15 truncates its log from each canceled append's index,
// so the io cancels the newest first (docs/replication.md, libraft defects). Failed in
// index order, the second truncation starts past the log's end: a crash.
TEST(GroupIoTest, ALeaderClosedWithSeveralAppendsWaitingForTheFsyncSurvives) {
  sim_cluster c({3, 4});
  int answered = 0;
  const unsigned l = three_appends_wait_for_the_fsync(c, answered);
  c.crash(l);
  EXPECT_EQ(answered, 3) << "a proposal was never answered";
  c.release_syncs(core::ok());
  c.restart(l);
  ASSERT_TRUE(write_through_leader(c, "b", "1"));
  ASSERT_TRUE(converged(c));
  const auto want = shard_contents(c.shard(c.leader()));
  for (unsigned i = 0; i < 3; ++i)
    EXPECT_EQ(shard_contents(c.shard(i)), want) << i;
}

// Verifies a failed fsync under several waiting appends fails the leader's proposals
// (nothing is acknowledged) without a crash, the io then takes no more writes, and once
// the failed server is started again from its store the group goes on and converges.
TEST(GroupIoTest, AFailedFsyncUnderSeveralAppendsFailsThemAndARestartRecovers) {
  sim_cluster c({3, 6});
  int answered = 0;
  const unsigned l = three_appends_wait_for_the_fsync(c, answered);
  c.release_syncs(core::error{core::errc::storage_failed, "fsync failed"});
  ASSERT_TRUE(c.run_until([&] { return answered == 3; })) << answered << " of 3 answered";
  EXPECT_TRUE(c.io(l).failed());
  for (unsigned i = 0; i < 3; ++i)
    if (c.io(i).failed()) {
      c.crash(i);
      c.restart(i);
    }
  ASSERT_TRUE(write_through_leader(c, "b", "1"));
  ASSERT_TRUE(converged(c));
  const auto want = shard_contents(c.shard(c.leader()));
  for (unsigned i = 0; i < 3; ++i)
    EXPECT_EQ(shard_contents(c.shard(i)), want) << i;
}

/// Crashes a follower, writes past what the leader's log keeps (a snapshot every 8
/// entries, 2 kept after it), deletes a key the follower holds, and restarts it: only a
/// snapshot can bring it back.
void lag_behind_a_snapshot(sim_cluster& c, unsigned& victim) {
  ASSERT_TRUE(c.run_until([&] { return c.leader() < 3; }));
  for (unsigned i = 0; i < 3; ++i) {
    raft_set_snapshot_threshold(c.server(i), 8);
    raft_set_snapshot_trailing(c.server(i), 2);
  }
  ASSERT_TRUE(write_through_leader(c, "gone-later", "x"));
  ASSERT_TRUE(converged(c));
  victim = (c.leader() + 2) % 3;
  c.crash(victim);
  for (int i = 0; i < 30; ++i) {
    ASSERT_TRUE(write_through_leader(c, "k" + std::to_string(i), std::string(100, 'a' + i % 26)));
  }
  storage::write_batch del;
  del.del("gone-later");
  bool done = false;
  c.at(c.leader()).propose(del, [&](core::result<void> r) {
    done = true;
    EXPECT_TRUE(r.ok());
  });
  ASSERT_TRUE(c.run_until([&] { return done; }));
  c.restart(victim);
}

/// The snapshot a server's log keeps: a token, never a copy of the shard.
void expect_token_snapshots(sim_cluster& c) {
  for (unsigned i = 0; i < 3; ++i) {
    log_store log(c.store(i).raft_log(), 0);
    auto snap = log.snapshot();
    ASSERT_TRUE(snap.ok());
    ASSERT_TRUE(snap->has_value()) << i;
    EXPECT_EQ((*snap)->data.size(), 9u) << "server " << i << " stored a token";
  }
}

TEST(GroupIoTest, ALaggingServerCatchesUpFromAStreamedImage) {
  sim_cluster::options o{3, 4};
  o.snapshot_chunk_bytes = 256; // the image crosses in many chunks
  sim_cluster c(o);
  unsigned victim = 0;
  lag_behind_a_snapshot(c, victim);
  ASSERT_TRUE(converged(c));
  EXPECT_EQ(c.sent(RAFT_IO_INSTALL_SNAPSHOT), 0u) << "no snapshot travels inside a message";
  EXPECT_GE(c.io(victim).streams().images_staged, 1u)
    << "the entries it missed were compacted: only a snapshot could bring them";
  EXPECT_GT(c.io(c.leader()).streams().chunks_sent, 8u);
  EXPECT_EQ(shard_contents(c.shard(victim)), shard_contents(c.shard(c.leader())));
  EXPECT_EQ(shard_value(c.shard(victim), "gone-later"), "<not_found>");
  EXPECT_EQ(c.machine(victim).applied(), c.machine(c.leader()).applied());
  expect_token_snapshots(c);
}

TEST(GroupIoTest, AStreamedImageArrivesOverALossyNetwork) {
  sim_cluster::options o{3, 11};
  o.snapshot_chunk_bytes = 256;
  sim_cluster c(o);
  unsigned victim = 0;
  lag_behind_a_snapshot(c, victim);
  c.set_loss(20, 10); // a fifth of the chunks and acks lost, a tenth twice
  ASSERT_TRUE(converged(c));
  c.set_loss(0, 0);
  ASSERT_TRUE(converged(c));
  EXPECT_GE(c.io(victim).streams().images_staged, 1u);
  EXPECT_GT(c.io(c.leader()).streams().chunks_resent, 0u) << "lost chunks were sent again";
  EXPECT_EQ(shard_contents(c.shard(victim)), shard_contents(c.shard(c.leader())));
  EXPECT_EQ(shard_value(c.shard(victim), "gone-later"), "<not_found>");
}

// --- histories under crashes, restarts and a lossy network ------------------------------

int seed_count() {
  return seeds_from("SHOAL_IO_HISTORY_SEEDS", 8);
}

class GroupIoHistoryTest : public ::testing::TestWithParam<int> {};

TEST_P(GroupIoHistoryTest, HistoriesStayLinearizableThroughCrashesAndALossyNetwork) {
  const int seed = GetParam();
  constexpr int keys = 2;
  sim_cluster::options o{5, static_cast<std::uint64_t>(seed), 5, 5, 20};
  // Snapshots every 16 entries, 4 kept after one: a server that was down a while
  // catches up from a streamed image, in small chunks, through the same losses.
  o.snapshot_entries = 16;
  o.snapshot_trailing = 4;
  o.snapshot_chunk_bytes = 64;
  sim_cluster c(o);
  auto& rng = c.rng();
  auto log = std::make_shared<std::vector<recorded>>();
  std::int64_t last_value = 0;
  const auto key_name = [](int k) { return std::string("key-") + static_cast<char>('a' + k); };
  const auto now = [&c] { return static_cast<std::int64_t>(c.now()); };

  const auto write = [&](unsigned via, int k) {
    const auto index = log->size();
    const auto value = ++last_value;
    log->push_back({k, {true, value, now(), shoal::test::lin::unknown}});
    c.at(via).propose(put(key_name(k), std::to_string(value)),
                      [log, index, now](core::result<void> r) {
                        auto& rec = (*log)[index];
                        if (r)
                          rec.op.ret = now();
                        else if (r.error().code() != core::errc::outcome_unknown)
                          rec.failed = true;
                      });
  };
  const auto read = [&](unsigned via, int k) {
    const auto index = log->size();
    log->push_back({k, {false, 0, now(), shoal::test::lin::unknown}});
    auto* shard = &c.shard(via);
    c.at(via).read([log, index, now, shard, k, key_name](core::result<void> r) {
      auto& rec = (*log)[index];
      if (!r) {
        rec.failed = true;
        return;
      }
      const auto v = shard_value(*shard, key_name(k));
      rec.op.value = v == "<not_found>" ? 0 : std::stoll(v);
      rec.op.ret = now();
    });
  };

  for (int step = 0; step < 300; ++step) {
    const unsigned leader = c.leader();
    const unsigned via =
      leader < c.size() && rng() % 4 != 0 ? leader : static_cast<unsigned>(rng() % c.size());
    const int k = static_cast<int>(rng() % keys);
    const auto roll = rng() % 100;
    unsigned down = 0;
    for (unsigned i = 0; i < c.size(); ++i)
      down += c.up(i) ? 0 : 1;
    if (roll < 40) {
      if (c.up(via)) write(via, k);
    } else if (roll < 70) {
      if (c.up(via)) read(via, k);
    } else if (roll < 73) {
      if (c.up(via) && down < 2) c.crash(via);
    } else if (roll < 80) {
      const auto i = static_cast<unsigned>(rng() % c.size());
      if (!c.up(i)) c.restart(i);
    } else if (roll < 82) {
      c.isolate(static_cast<unsigned>(rng() % c.size()));
    } else if (roll < 90) {
      c.heal_all();
    }
    c.run_for(1 + rng() % 40);
  }

  c.heal_all();
  for (unsigned i = 0; i < c.size(); ++i) {
    if (!c.up(i)) c.restart(i);
  }
  ASSERT_TRUE(c.run_until([&] { return c.leader() < c.size(); }, 60000)) << "seed " << seed;
  const unsigned leader = c.leader();
  const auto final_reads = log->size();
  for (int k = 0; k < keys; ++k)
    read(leader, k);
  c.run_until([&] {
    for (auto i = final_reads; i < log->size(); ++i) {
      if (!(*log)[i].failed && (*log)[i].op.ret == shoal::test::lin::unknown) return false;
    }
    return true;
  });
  ASSERT_TRUE(converged(c)) << "seed " << seed;

  const auto v = check_histories(*log, keys, key_name);
  for (const auto& bad : v.not_linearizable)
    ADD_FAILURE() << "seed " << seed << ": not linearizable: " << bad;
  // Something got through (the harshest of 500 seeds acknowledges 2 writes; most, 10 to
  // 40): a history of refusals only would check nothing.
  EXPECT_GE(v.ok_writes, 2) << "seed " << seed;
  EXPECT_GE(v.ok_reads, 2) << "seed " << seed;
  RecordProperty("ok_writes", v.ok_writes);
  RecordProperty("ok_reads", v.ok_reads);
  std::uint64_t staged = 0;
  for (unsigned i = 0; i < c.size(); ++i)
    staged += c.io(i).streams().images_staged;
  RecordProperty("images_staged", static_cast<int>(staged)); // since each server's last start
  const auto want = shard_contents(c.shard(c.leader()));
  for (unsigned i = 0; i < c.size(); ++i) {
    EXPECT_EQ(shard_contents(c.shard(i)), want) << "seed " << seed << ", replica " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Seeds, GroupIoHistoryTest, ::testing::Range(1, seed_count() + 1));

} // namespace
} // namespace shoal::replication::test
