// SPDX-License-Identifier: Apache-2.0
// Shard hosts of one replicated shard (host_config::replication) on CAF's deterministic
// scheduler: three hosts of shard 0, each over its own store and WAL syncer, their Raft
// messages carried by an in-process transport the test can cut. What must hold: one of
// them is elected and serves, the others refuse with 503 not_leader naming it; a write is
// answered once a quorum has it and reaches every replica; when the leader stops (its
// host closes libraft and exits), another serves every acknowledged write; a replica
// started again from its store catches up; and nothing is served before a leader is.
#include "host/shard_host.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <caf/exit_reason.hpp>
#include <caf/send.hpp>
#include <gtest/gtest.h>

#include "documents/documents.hpp"
#include "cluster/replicas.hpp"
#include "replication/metrics.hpp"
#include "replication/state_machine.hpp"
#include "storage/memory_store.hpp"
#include "tests/support/doc_requests.hpp"
#include "tests/support/faulty_store.hpp"
#include "tests/support/host_fixture.hpp"

namespace shoal::testing {
namespace {

constexpr unsigned replicas = 3;
using std::chrono::milliseconds;

class ReplicatedHostTest : public host_fixture {
protected:
  ReplicatedHostTest() {
    for (unsigned i = 0; i < replicas; ++i) {
      stores.push_back(std::make_unique<storage::memory_store>(1));
      disks.push_back(std::make_unique<faulty_store>(*stores.back()));
      syncers.push_back(host::spawn_wal_syncer(sys, *disks.back(), false));
    }
    handles->resize(replicas);
    reachable->assign(replicas, true);
  }

  ~ReplicatedHostTest() override {
    for (unsigned i = 0; i < replicas; ++i)
      if (up[i]) caf::anon_send_exit((*handles)[i], caf::exit_reason::user_shutdown);
    run();
    for (auto& s : syncers)
      caf::anon_send_exit(s, caf::exit_reason::user_shutdown);
    run();
  }

  /// Starts (or starts again) the host of replica `i` (server id `self`, by default
  /// i + 1) over its store.
  void start(unsigned i, std::uint64_t self = 0) {
    host::host_config cfg;
    cfg.index = 0;
    cfg.store = disks[i].get();
    cfg.syncer = syncers[i];
    host::replication_config rc;
    rc.group.self = self != 0 ? self : i + 1;
    for (unsigned j = 0; j < replicas; ++j)
      rc.group.voters.push_back({j + 1, "n" + std::to_string(j + 1)});
    rc.group.election_timeout_ms = 300;
    rc.group.heartbeat_timeout_ms = 50;
    rc.send = [h = handles, r = reachable, i](std::uint64_t to, const std::string&,
                                              std::string bytes) {
      const auto j = static_cast<unsigned>(to - 1);
      if (j < replicas && (*r)[i] && (*r)[j]) host::deliver_raft((*h)[j], std::move(bytes));
    };
    rc.board = &boards[i];
    rc.group.counted = &counted[i];
    cfg.replication = std::move(rc);
    (*handles)[i] = host::spawn_shard_host(sys, std::move(cfg));
    up[i] = true;
  }

  void stop(unsigned i) {
    caf::anon_send_exit((*handles)[i], caf::exit_reason::user_shutdown);
    up[i] = false;
    run();
  }

  /// Lets `d` pass in 10 ms steps, so that every tick in between fires (one advance
  /// fires each timer once, however far it moves the clock).
  void pass(milliseconds d) {
    for (milliseconds t{0}; t < d; t += milliseconds(10))
      advance(milliseconds(10));
  }

  /// The answer replica `i` gives to a GET of `id` now (after running).
  std::shared_ptr<capture<documents::stored_doc>> get_via(unsigned i, const std::string& id) {
    auto c = send((*handles)[i], docs::get("c", id));
    run();
    return c;
  }

  /// Whether `c` is a refusal that sends the caller elsewhere.
  template <class T>
  static bool refused(const capture<T>& c, std::string_view name) {
    return c.ready() && !c.last->ok() && c.last->error().code() == core::errc::shard_unavailable
           && c.last->error().name() == name;
  }

  /// Advances the clock in 10 ms steps until a replica serves (a GET is not refused);
  /// returns it, or nothing within `limit`.
  std::optional<unsigned> wait_leader(milliseconds limit = milliseconds(20'000)) {
    for (milliseconds t{0}; t < limit; t += milliseconds(10)) {
      advance(milliseconds(10));
      for (unsigned i = 0; i < replicas; ++i) {
        if (!up[i] || !(*reachable)[i]) continue;
        auto c = get_via(i, "probe");
        if (c->ready() && !refused(*c, "not_leader") && !refused(*c, "leader_not_ready")) return i;
      }
    }
    return std::nullopt;
  }

  /// Starts every replica and waits until one serves; returns it (see wait_leader).
  std::optional<unsigned> start_all_and_elect() {
    for (unsigned i = 0; i < replicas; ++i)
      start(i);
    return wait_leader();
  }

  /// The version of (c, `id`) in replica `i`'s applied shard; 0 when absent.
  std::uint64_t applied_version(unsigned i, const std::string& id) {
    auto raw = stores[i]->shard(0).get(documents::key("c", id));
    if (!raw) return 0;
    auto rec = documents::decode(*raw);
    return rec ? rec->version : 0;
  }

  std::vector<std::unique_ptr<storage::memory_store>> stores;
  /// What each host and syncer see of its store: fsyncs (and writes) fail on command.
  std::vector<std::unique_ptr<faulty_store>> disks;
  std::vector<host::wal_syncer_actor> syncers;
  std::shared_ptr<std::vector<protocol::shard_actor>> handles =
    std::make_shared<std::vector<protocol::shard_actor>>();
  std::shared_ptr<std::vector<bool>> reachable = std::make_shared<std::vector<bool>>();
  bool up[replicas] = {false, false, false};
  /// Each replica's node: its replica board (one shard) and its replication metrics.
  std::vector<cluster::replica_board> boards{replicas, cluster::replica_board{1}};
  replication::metrics counted[replicas];
};

// Verifies nothing is served before an election: a request is refused with not_leader
// and changes nothing.
TEST_F(ReplicatedHostTest, NothingIsServedBeforeALeaderIsElected) {
  for (unsigned i = 0; i < replicas; ++i)
    start(i);
  run();
  auto w = send((*handles)[0], docs::put("c", "a", "1"));
  run();
  EXPECT_TRUE(refused(*w, "not_leader")) << (w->ready() ? w->last->error().to_string() : "none");
  for (unsigned i = 0; i < replicas; ++i)
    EXPECT_EQ(applied_version(i, "a"), 0u);
}

// Verifies one replica is elected and serves, a write through it is answered and reaches
// every replica, and the others refuse with not_leader naming the leader's server.
TEST_F(ReplicatedHostTest, OneReplicaServesAndTheOthersNameIt) {
  auto leader = start_all_and_elect();
  ASSERT_TRUE(leader);
  const unsigned l = *leader;
  auto w = call((*handles)[l], docs::put("c", "a", R"({"v":1})"));
  ASSERT_TRUE(w.ok()) << w.error().to_string();
  EXPECT_EQ(w->version, 1u);
  auto got = get_via(l, "a");
  EXPECT_EQ(got->value().json, R"({"v":1})");
  for (unsigned i = 0; i < replicas; ++i) {
    if (i == l) continue;
    auto refusal = get_via(i, "a");
    ASSERT_TRUE(refused(*refusal, "not_leader"));
    EXPECT_NE(refusal->last->error().message().find("server " + std::to_string(l + 1)),
              std::string::npos)
      << refusal->last->error().to_string();
  }
  pass(milliseconds(200)); // heartbeats carry the commit index to the followers
  for (unsigned i = 0; i < replicas; ++i)
    EXPECT_EQ(applied_version(i, "a"), 1u) << "replica " << i;
}

// Verifies every replica reports how it stands to its node's board: the leader its role,
// term, indexes and each follower's progress; the followers the leader they follow. The
// leader counted one leadership and timed its commit; after the leader stops, its
// successor reports a higher term and counted its election.
TEST_F(ReplicatedHostTest, EveryReplicaReportsItsRoleAndTheLeaderCountsItsLeadership) {
  auto leader = start_all_and_elect();
  ASSERT_TRUE(leader);
  const unsigned l = *leader;
  const std::string name = "n" + std::to_string(l + 1);
  auto w = call((*handles)[l], docs::put("c", "a", "1"));
  ASSERT_TRUE(w.ok()) << w.error().to_string();
  pass(milliseconds(200)); // followers learn the commit; every replica ticks and reports
  auto lead = boards[l].read(0);
  ASSERT_NE(lead, nullptr);
  EXPECT_EQ(lead->role, cluster::replica_role::leader);
  EXPECT_EQ(lead->node, name);
  EXPECT_EQ(lead->leader, name);
  EXPECT_GE(lead->term, 1u);
  EXPECT_GE(lead->commit_index, 2u); // the new leader's barrier, then the write
  EXPECT_EQ(lead->applied_index, lead->commit_index);
  EXPECT_EQ(lead->last_index, lead->commit_index);
  EXPECT_EQ(lead->voters, (std::vector<std::string>{"n1", "n2", "n3"}));
  ASSERT_EQ(lead->match.size(), 3u);
  for (unsigned i = 0; i < replicas; ++i) {
    if (i == l) continue;
    EXPECT_EQ(lead->match[i], lead->last_index) << "follower " << i;
  }
  for (unsigned i = 0; i < replicas; ++i) {
    if (i == l) continue;
    auto f = boards[i].read(0);
    ASSERT_NE(f, nullptr);
    EXPECT_EQ(f->role, cluster::replica_role::follower);
    EXPECT_EQ(f->leader, name);
    EXPECT_EQ(f->term, lead->term);
    EXPECT_EQ(f->applied_index, lead->commit_index);
    EXPECT_TRUE(f->match.empty());
    EXPECT_EQ(counted[i].leader_changes.value(), 0u);
  }
  EXPECT_EQ(counted[l].leader_changes.value(), 1u);
  EXPECT_GE(counted[l].elections.value(), 1u);
  EXPECT_GE(counted[l].commit_seconds.collect().count, 1u);

  const auto first_term = lead->term;
  stop(l);
  auto next = wait_leader();
  ASSERT_TRUE(next);
  pass(milliseconds(100));
  auto after = boards[*next].read(0);
  ASSERT_NE(after, nullptr);
  EXPECT_EQ(after->role, cluster::replica_role::leader);
  EXPECT_GT(after->term, first_term);
  EXPECT_EQ(counted[*next].leader_changes.value(), 1u);
  EXPECT_GE(counted[*next].elections.value(), 1u);
}

// Verifies that when the leader's host stops (closing libraft, then exiting), another
// replica is elected and serves every acknowledged write, and takes new ones.
TEST_F(ReplicatedHostTest, AnotherReplicaServesEveryAcknowledgedWriteWhenTheLeaderStops) {
  auto first = start_all_and_elect();
  ASSERT_TRUE(first);
  for (int v = 1; v <= 5; ++v) {
    auto w = call((*handles)[*first], docs::put("c", "d" + std::to_string(v), std::to_string(v)));
    ASSERT_TRUE(w.ok()) << v << ": " << w.error().to_string();
  }
  stop(*first);
  auto second = wait_leader();
  ASSERT_TRUE(second);
  ASSERT_NE(*second, *first);
  for (int v = 1; v <= 5; ++v) {
    auto got = get_via(*second, "d" + std::to_string(v));
    EXPECT_EQ(got->value().json, std::to_string(v)) << v;
  }
  auto w = call((*handles)[*second], docs::put("c", "d1", "10"));
  ASSERT_TRUE(w.ok()) << w.error().to_string();
  EXPECT_EQ(w->version, 2u);
}

// Verifies a follower stopped and started again from its store catches up with what was
// written meanwhile, without replaying what it had applied.
TEST_F(ReplicatedHostTest, AReplicaStartedAgainFromItsStoreCatchesUp) {
  auto leader = start_all_and_elect();
  ASSERT_TRUE(leader);
  ASSERT_TRUE(call((*handles)[*leader], docs::put("c", "before", "1")).ok());
  pass(milliseconds(200));
  const unsigned f = (*leader + 1) % replicas;
  ASSERT_EQ(applied_version(f, "before"), 1u);
  auto applied_before = replication::read_applied(stores[f]->shard(0));
  ASSERT_TRUE(applied_before.ok());
  stop(f);
  ASSERT_TRUE(call((*handles)[*leader], docs::put("c", "during", "2")).ok());
  EXPECT_EQ(applied_version(f, "during"), 0u);
  start(f);
  pass(milliseconds(1000));
  EXPECT_EQ(applied_version(f, "during"), 1u);
  auto applied_after = replication::read_applied(stores[f]->shard(0));
  ASSERT_TRUE(applied_after.ok());
  EXPECT_GT(*applied_after, *applied_before);
}

// Verifies a leader cut off from both followers stops serving: its write is answered
// 504 outcome_unknown once it steps down, and the majority elects another that serves.
TEST_F(ReplicatedHostTest, ACutOffLeaderStopsServingAndTheMajorityGoesOn) {
  auto leader = start_all_and_elect();
  ASSERT_TRUE(leader);
  (*reachable)[*leader] = false;
  auto w = send((*handles)[*leader], docs::put("c", "lost", "1"));
  run();
  EXPECT_FALSE(w->ready()) << "answered without a quorum";
  for (int t = 0; t < 300 && !w->ready(); ++t)
    advance(milliseconds(10));
  ASSERT_TRUE(w->ready()) << "the cut-off leader never gave up";
  EXPECT_EQ(w->last->error().code(), core::errc::outcome_unknown) << w->last->error().to_string();
  auto other = wait_leader();
  ASSERT_TRUE(other);
  EXPECT_NE(*other, *leader);
  EXPECT_TRUE(call((*handles)[*other], docs::put("c", "after", "1")).ok());
}

// Verifies a leader whose fsync fails does not keep a group that can commit nothing: the
// write waiting for that fsync is answered 504 (it may be kept), the replica closes its
// group and starts it again from its store, refusing requests with 503 restarting
// meanwhile (and again each second while the disk still fails), and once the disk
// works the shard takes writes again and the restarted replica catches up.
TEST_F(ReplicatedHostTest, AReplicaWhoseFsyncFailsStartsAgainFromItsStore) {
  auto leader = start_all_and_elect();
  ASSERT_TRUE(leader);
  const unsigned l = *leader;
  ASSERT_TRUE(call((*handles)[l], docs::put("c", "before", "1")).ok());
  disks[l]->fail_syncs = true;
  auto w = send((*handles)[l], docs::put("c", "during", "2"));
  for (int t = 0; t < 100 && !w->ready(); ++t)
    advance(milliseconds(10));
  ASSERT_TRUE(w->ready());
  ASSERT_FALSE(w->last->ok());
  EXPECT_EQ(w->last->error().code(), core::errc::outcome_unknown) << w->last->error().to_string();
  run();
  EXPECT_EQ(counted[l].group_restarts.value(), 1u);
  auto refused_now = get_via(l, "before");
  ASSERT_TRUE(refused_now->ready());
  EXPECT_TRUE(refused(*refused_now, "restarting") || refused(*refused_now, "not_leader")
              || refused(*refused_now, "leader_not_ready"))
    << (refused_now->last->ok() ? std::string("served") : refused_now->last->error().to_string());
  // The disk stays bad a while: the restarted replica's first append fails again.
  pass(milliseconds(1500));
  disks[l]->fail_syncs = false;
  auto next = wait_leader();
  ASSERT_TRUE(next);
  auto after = call((*handles)[*next], docs::put("c", "after", "3"));
  ASSERT_TRUE(after.ok()) << after.error().to_string();
  pass(milliseconds(2000));
  EXPECT_EQ(applied_version(l, "after"), 1u) << "the restarted replica caught up";
  EXPECT_EQ(applied_version(l, "before"), 1u);
  EXPECT_GE(counted[l].group_restarts.value(), 1u);
}

// Verifies a replica that cannot start (its server id is not among the voters) refuses
// every request with the reason, writes nothing, and still stops when asked.
TEST_F(ReplicatedHostTest, AReplicaThatCannotStartRefusesWithTheReasonAndStops) {
  start(0, 9);
  run();
  auto w = send((*handles)[0], docs::put("c", "a", "1"));
  run();
  ASSERT_TRUE(w->ready());
  ASSERT_FALSE(w->last->ok());
  EXPECT_EQ(w->last->error().code(), core::errc::shard_unavailable);
  EXPECT_NE(w->last->error().message().find("could not start"), std::string::npos)
    << w->last->error().to_string();
  EXPECT_EQ(applied_version(0, "a"), 0u);
  stop(0);
  // Stopped: a request sent now reaches nobody.
  auto after = send((*handles)[0], docs::get("c", "a"));
  run();
  EXPECT_FALSE(after->ready());
}

} // namespace
} // namespace shoal::testing
