// SPDX-License-Identifier: Apache-2.0
// The commit path of a replicated shard (replication/replicated_path.hpp) under the real
// documents module: a shard::host_context over a replica of a three-server group on the
// simulated network and clock (sim_cluster.hpp), so the module runs exactly as in a
// shard host, with "durable" meaning "committed on a quorum". What must hold: a write is
// answered once a quorum applied it, and the leader decides the next write against it
// before that; a follower refuses reads and writes with not_leader and writes nothing;
// a new leader serves every acknowledged write; an isolated old leader answers no stale
// read; a lost leadership answers waiting writes outcome_unknown and drops the overlay;
// a stopping shard answers what waits; and histories of puts and gets through the module,
// under crashes, restarts, isolation and a lossy network, stay linearizable.
// SHOAL_PATH_HISTORY_SEEDS sets how many seeds the history test runs (default 6).
#include "replication/replicated_path.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include <gtest/gtest.h>

#include "documents/documents.hpp"
#include "documents/module.hpp"
#include "shard/host_context.hpp"
#include "tests/replication/history.hpp"
#include "tests/replication/sim_cluster.hpp"
#include "tests/support/doc_requests.hpp"
#include "tests/support/manual_shard.hpp"

namespace shoal::replication::test {
namespace {

using shoal::testing::capture;
namespace docs = shoal::testing::docs;

/// A replicated shard host as plain C++ on server `i`: a host_context whose commit path
/// is a replicated_path over the server's replica, its clock, timers and wake-ups the
/// simulation's, and the documents module on top. Destroy it before the server crashes.
class replicated_shard {
public:
  replicated_shard(sim_cluster& c, unsigned i) : c_(c), life_(std::make_shared<int>(0)) {
    std::weak_ptr<int> life = life_;
    shard::host_context::ports p;
    p.now = [&c] { return shard::time_point(std::chrono::milliseconds(c.now())); };
    p.arm = [this, &c, life](shard::time_point due) {
      const auto now = shard::time_point(std::chrono::milliseconds(c.now()));
      const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(due - now);
      c.after(static_cast<std::uint64_t>(std::max<std::int64_t>(0, wait.count())), [this, life] {
        if (life.expired()) return;
        ctx_->on_tick();
        ctx_->finish_step();
      });
    };
    p.wake = [this, &c, life] {
      c.after(0, [this, life] {
        if (life.expired()) return;
        ctx_->on_step();
        ctx_->finish_step();
      });
    };
    auto path = std::make_unique<replicated_path>(c.at(i), c.shard(i));
    path_ = path.get();
    ctx_ =
      std::make_unique<shard::host_context>(0, std::move(path), std::move(p), 1'700'000'000'000);
    docs_ = std::make_unique<documents::module>(*ctx_, documents::module::config{},
                                                std::vector<shard::doc_observer*>{});
  }

  ~replicated_shard() {
    ctx_->close();
    docs_.reset();
    life_.reset();
  }

  /// Serves `req` as one message of the host; the capture fills in when it is answered.
  template <class R>
  std::shared_ptr<capture<typename R::reply>> send(R req) {
    using T = typename R::reply;
    auto got = std::make_shared<capture<T>>();
    docs_->serve(std::move(req), core::reply_to<T>::to([got](core::result<T>&& r) {
                   ++got->deliveries;
                   got->last = std::move(r);
                 }));
    ctx_->finish_step();
    return got;
  }

  /// Serves `req` and runs the simulation until it is answered (or 10 s pass).
  template <class R>
  std::shared_ptr<capture<typename R::reply>> call(R req) {
    auto got = send(std::move(req));
    c_.run_until([&] { return got->ready(); }, 10'000);
    return got;
  }

  replicated_path& path() noexcept {
    return *path_;
  }
  shard::host_context& ctx() noexcept {
    return *ctx_;
  }

private:
  sim_cluster& c_;
  std::shared_ptr<int> life_;
  replicated_path* path_ = nullptr;
  std::unique_ptr<shard::host_context> ctx_;
  std::unique_ptr<documents::module> docs_;
};

unsigned elect(sim_cluster& c) {
  EXPECT_TRUE(c.run_until([&] { return c.leader() < c.size(); })) << "no leader";
  return c.leader();
}

/// Runs until `host`'s path serves (its leader applied a barrier of its term), as a
/// shard host does before it hands its modules any request.
bool wait_serving(sim_cluster& c, replicated_shard& host) {
  return c.run_until([&] {
    host.path().poll();
    return host.path().serving();
  });
}

/// The version of (`coll`, `id`) in server `i`'s applied state; 0 when absent.
std::uint64_t applied_version(sim_cluster& c, unsigned i, const std::string& coll,
                              const std::string& id) {
  auto raw = c.shard(i).get(documents::key(coll, id));
  if (!raw) return 0;
  auto rec = documents::decode(*raw);
  return rec ? rec->version : 0;
}

template <class T>
std::string describe(const capture<T>& got) {
  if (!got.ready()) return "no answer";
  if (got.last->ok()) return "ok";
  return got.last->error().to_string();
}

template <class T>
bool is_error(const capture<T>& got, core::errc code) {
  return got.ready() && !got.last->ok() && got.last->error().code() == code;
}

// Verifies a write is answered only once a quorum applied it, while the leader already
// decides the next write against it (If-Match on its version, through the overlay).
TEST(ReplicatedPathTest, AWriteIsAnsweredOnceAQuorumAppliedItAndSeenAtOnceByTheLeader) {
  sim_cluster c({3, 7});
  const unsigned l = elect(c);
  replicated_shard host{c, l};
  ASSERT_TRUE(wait_serving(c, host));
  auto first = host.send(docs::put("c", "a", R"({"v":1})"));
  EXPECT_FALSE(first->ready()) << "answered before consensus";
  EXPECT_EQ(host.path().in_flight(), 1u);
  EXPECT_EQ(applied_version(c, l, "c", "a"), 0u) << "applied before it was committed";
  // The next write decides against the first before it commits.
  auto w = docs::put("c", "a", R"({"v":2})");
  w.if_match = docs::versions({1});
  auto second = host.send(std::move(w));
  ASSERT_TRUE(c.run_until([&] { return first->ready() && second->ready(); }));
  EXPECT_EQ(first->value().version, 1u);
  EXPECT_EQ(second->value().version, 2u);
  // Answered once committed, which is when the leader applies it (libraft applies only
  // what a quorum holds in its log); the followers apply it once they learn the commit
  // index, with the next append or heartbeat. No second round (a read barrier) first.
  EXPECT_EQ(applied_version(c, l, "c", "a"), 2u) << "acknowledged before it was committed";
  EXPECT_EQ(host.path().in_flight(), 0u);
  EXPECT_TRUE(c.run_until([&] {
    unsigned holding = 0;
    for (unsigned i = 0; i < 3; ++i)
      holding += applied_version(c, i, "c", "a") == 2 ? 1 : 0;
    return holding == 3;
  }))
    << "the followers never applied it";
  auto got = host.call(docs::get("c", "a"));
  EXPECT_EQ(got->value().json, R"({"v":2})");
}

// Verifies an answer given in the step that proposed an entry waits for that entry
// instead of a barrier of its own (the entry was proposed after the request arrived, so
// its commit confirms the leadership just as well), runs only once it is applied, and
// that an answer in a later step still gets a barrier.
TEST(ReplicatedPathTest, AnAnswerInTheStepOfAWriteWaitsForThatEntryNotABarrier) {
  sim_cluster c({3, 17});
  const unsigned l = elect(c);
  replicated_shard host{c, l};
  ASSERT_TRUE(wait_serving(c, host));
  const auto barriers = c.at(l).barriers();
  storage::write_batch batch;
  batch.put("k", "v");
  bool committed = false;
  std::optional<core::result<void>> answered;
  ASSERT_TRUE(
    host.ctx().commit(std::move(batch), [&](core::result<void> r) { committed = r.ok(); }));
  host.ctx().after_all_durable([&](core::result<void> r) {
    EXPECT_TRUE(committed) << "answered before its step's entry was applied";
    answered = std::move(r);
  });
  host.ctx().finish_step();
  EXPECT_FALSE(answered) << "answered before consensus";
  ASSERT_TRUE(c.run_until([&] { return answered.has_value(); }));
  EXPECT_TRUE(answered->ok());
  EXPECT_EQ(c.at(l).barriers(), barriers) << "a barrier was proposed for nothing";
  EXPECT_EQ(host.path().barriers_saved(), 1u);

  // A later step proposed nothing: its answer needs a barrier.
  std::optional<core::result<void>> later;
  host.ctx().after_all_durable([&](core::result<void> r) { later = std::move(r); });
  host.ctx().finish_step();
  ASSERT_TRUE(c.run_until([&] { return later.has_value(); }));
  EXPECT_TRUE(later->ok());
  EXPECT_EQ(c.at(l).barriers(), barriers + 1);
}

// Verifies a follower refuses a write and a read with 503 not_leader and writes nothing.
TEST(ReplicatedPathTest, AFollowerRefusesWritesAndReadsWithNotLeader) {
  sim_cluster c({3, 11});
  const unsigned l = elect(c);
  const unsigned f = (l + 1) % 3;
  replicated_shard host{c, f};
  auto put = host.send(docs::put("c", "a", R"({"v":1})"));
  ASSERT_TRUE(put->ready()) << "a refusal needs no consensus";
  EXPECT_TRUE(is_error(*put, core::errc::shard_unavailable)) << describe(*put);
  EXPECT_EQ(put->last->error().name(), "not_leader");
  auto get = host.send(docs::get("c", "a"));
  ASSERT_TRUE(get->ready());
  EXPECT_TRUE(is_error(*get, core::errc::shard_unavailable)) << describe(*get);
  c.run_for(500);
  for (unsigned i = 0; i < 3; ++i)
    EXPECT_EQ(applied_version(c, i, "c", "a"), 0u) << "server " << i;
  EXPECT_EQ(raft_last_applied(c.server(l)), raft_last_applied(c.server(f)));
}

// Verifies a new leader, with modules built fresh from its store, serves every write the
// old leader acknowledged, and goes on from its version.
TEST(ReplicatedPathTest, ANewLeaderServesEveryAcknowledgedWrite) {
  sim_cluster c({3, 5});
  const unsigned old_leader = elect(c);
  {
    replicated_shard host{c, old_leader};
    ASSERT_TRUE(wait_serving(c, host));
    for (int v = 1; v <= 5; ++v) {
      auto w = host.call(docs::put("c", "k" + std::to_string(v % 2), std::to_string(v)));
      ASSERT_TRUE(w->ready() && w->last->ok()) << v << ": " << describe(*w);
    }
  }
  c.crash(old_leader);
  const unsigned l = elect(c);
  ASSERT_NE(l, old_leader);
  replicated_shard host{c, l};
  ASSERT_TRUE(wait_serving(c, host));
  auto k0 = host.call(docs::get("c", "k0"));
  auto k1 = host.call(docs::get("c", "k1"));
  EXPECT_EQ(k0->value().json, "4");
  EXPECT_EQ(k0->value().version, 2u);
  EXPECT_EQ(k1->value().json, "5");
  EXPECT_EQ(k1->value().version, 3u);
  auto next = host.call(docs::put("c", "k1", "6"));
  EXPECT_EQ(next->value().version, 4u);
}

// Verifies an isolated leader answers no stale read: while the majority elects a new
// leader and writes a newer version, the old leader's read is never answered with the
// old one; once it hears of the new term, it refuses with not_leader.
TEST(ReplicatedPathTest, AnIsolatedOldLeaderAnswersNoStaleRead) {
  sim_cluster c({3, 3});
  const unsigned old_leader = elect(c);
  replicated_shard old_host{c, old_leader};
  ASSERT_TRUE(wait_serving(c, old_host));
  ASSERT_TRUE(old_host.call(docs::put("c", "a", "1"))->last->ok());
  c.isolate(old_leader);
  auto stale = old_host.send(docs::get("c", "a"));
  ASSERT_TRUE(c.run_until([&] {
    const unsigned l = c.leader();
    return l < c.size() && l != old_leader;
  }));
  const unsigned l = c.leader();
  {
    replicated_shard host{c, l};
    ASSERT_TRUE(wait_serving(c, host));
    auto w = host.call(docs::put("c", "a", "2"));
    ASSERT_TRUE(w->ready() && w->last->ok()) << describe(*w);
    EXPECT_EQ(w->value().version, 2u);
  }
  c.run_for(2000);
  EXPECT_FALSE(stale->ready() && stale->last->ok())
    << "the isolated leader answered version " << stale->value().version;
  c.heal_all();
  ASSERT_TRUE(c.run_until([&] { return stale->ready(); }));
  EXPECT_TRUE(is_error(*stale, core::errc::shard_unavailable)) << describe(*stale);
}

// Verifies a write waiting when its leader loses leadership is answered 504
// outcome_unknown, and the deposed leader's modules no longer see it (the overlay is
// dropped); whether it survives is the new leader's log's business.
TEST(ReplicatedPathTest, LostLeadershipAnswersWaitingWritesOutcomeUnknown) {
  sim_cluster c({3, 9});
  const unsigned old_leader = elect(c);
  replicated_shard old_host{c, old_leader};
  ASSERT_TRUE(wait_serving(c, old_host));
  c.isolate(old_leader);
  auto w = old_host.send(docs::put("c", "lost", "1"));
  EXPECT_FALSE(w->ready());
  EXPECT_TRUE(old_host.ctx().store().get(documents::key("c", "lost")).ok())
    << "the leader's modules must see their write at once";
  ASSERT_TRUE(c.run_until([&] { return w->ready(); }, 20'000))
    << "the isolated leader never gave up";
  EXPECT_TRUE(is_error(*w, core::errc::outcome_unknown)) << describe(*w);
  EXPECT_FALSE(old_host.path().leading());
  EXPECT_EQ(old_host.ctx().store().get(documents::key("c", "lost")).error().code(),
            core::errc::not_found);
}

// Verifies a shard that stops while a write and a read wait for a quorum answers the
// write 504 outcome_unknown and the read 503 shutting_down, at once.
TEST(ReplicatedPathTest, StoppingAnswersWaitingWritesAndReads) {
  sim_cluster c({3, 13});
  const unsigned l = elect(c);
  auto host = std::make_unique<replicated_shard>(c, l);
  ASSERT_TRUE(wait_serving(c, *host));
  for (unsigned i = 0; i < 3; ++i)
    if (i != l) {
      c.cut(l, i);
      c.cut(i, l);
    }
  auto w = host->send(docs::put("c", "a", "1"));
  auto r = host->send(docs::get("c", "b"));
  c.run_for(100);
  EXPECT_FALSE(w->ready());
  EXPECT_FALSE(r->ready());
  host.reset();
  EXPECT_TRUE(is_error(*w, core::errc::outcome_unknown)) << describe(*w);
  EXPECT_TRUE(is_error(*r, core::errc::shutting_down)) << describe(*r);
}

// Verifies a new leader refuses writes and reads (503 leader_not_ready, nothing
// proposed) until a barrier of its own term is applied: before that it may not have applied what
// its predecessor committed, and its modules would decide against a stale shard.
TEST(ReplicatedPathTest, ANewLeaderRefusesWritesAndReadsUntilItCaughtUp) {
  sim_cluster c({3, 21});
  const unsigned first = elect(c);
  {
    replicated_shard host{c, first};
    ASSERT_TRUE(wait_serving(c, host));
    ASSERT_TRUE(host.call(docs::put("c", "a", "1"))->last->ok());
  }
  c.crash(first);
  const unsigned l = elect(c);
  replicated_shard host{c, l};
  ASSERT_FALSE(host.path().serving()) << "serving before any barrier of its term";
  const auto last_before = raft_last_index(c.server(l));
  auto early = host.send(docs::put("c", "a", "2"));
  ASSERT_TRUE(early->ready());
  EXPECT_TRUE(is_error(*early, core::errc::shard_unavailable)) << describe(*early);
  EXPECT_EQ(early->last->error().name(), "leader_not_ready");
  // A read too: what the module read may lack what the first leader acknowledged.
  auto read = host.send(docs::get("c", "a"));
  ASSERT_TRUE(read->ready());
  EXPECT_TRUE(is_error(*read, core::errc::shard_unavailable)) << describe(*read);
  EXPECT_EQ(read->last->error().name(), "leader_not_ready");
  // Only the catch-up barrier was proposed (the host's step polled the path).
  EXPECT_EQ(raft_last_index(c.server(l)), last_before + 1);
  ASSERT_TRUE(wait_serving(c, host));
  auto later = host.call(docs::put("c", "a", "2"));
  EXPECT_EQ(later->value().version, 2u);
}

// --- histories through the documents module ---------------------------------------------

int seed_count() {
  return seeds_from("SHOAL_PATH_HISTORY_SEEDS", 6);
}

class ReplicatedPathHistoryTest : public ::testing::TestWithParam<int> {};

// Verifies puts and gets through the documents module on whichever server leads, with a
// host (and fresh modules) built when a server starts leading and torn down when it
// stops, stay linearizable per document under crashes, restarts, isolation, and lost,
// duplicated and reordered messages; refusals change nothing, and an unknown outcome may
// or may not have happened.
TEST_P(ReplicatedPathHistoryTest, PutsAndGetsStayLinearizable) {
  const int seed = GetParam();
  constexpr int keys = 2;
  sim_cluster c({5, static_cast<std::uint64_t>(seed) + 100, 3, 3, 20});
  auto& rng = c.rng();
  std::vector<std::unique_ptr<replicated_shard>> hosts(c.size());
  auto log = std::make_shared<std::vector<recorded>>();
  std::int64_t last_value = 0;
  const auto id_of = [](int k) { return std::string("doc-") + static_cast<char>('a' + k); };
  const auto now = [&c] { return static_cast<std::int64_t>(c.now()); };
  // A host on every leader, none elsewhere: modules never outlive a leadership.
  const auto tend = [&] {
    for (unsigned i = 0; i < c.size(); ++i) {
      if (!c.up(i)) continue;
      auto& h = hosts[i];
      if (h && !h->path().leading()) h.reset();
      if (!h && raft_state(c.server(i)) == RAFT_LEADER)
        h = std::make_unique<replicated_shard>(c, i);
      if (h) h->path().poll();
    }
  };
  // Answers are read off the captures after every step (see settle).
  std::vector<std::pair<std::size_t, std::shared_ptr<capture<documents::doc_written>>>> writes;
  std::vector<std::pair<std::size_t, std::shared_ptr<capture<documents::stored_doc>>>> reads;
  const auto send_write = [&](replicated_shard& h, int k) {
    const auto index = log->size();
    const auto value = ++last_value;
    log->push_back({k, {true, value, now(), shoal::test::lin::unknown}});
    writes.emplace_back(index, h.send(docs::put("c", id_of(k), std::to_string(value))));
  };
  const auto send_read = [&](replicated_shard& h, int k) {
    const auto index = log->size();
    log->push_back({k, {false, 0, now(), shoal::test::lin::unknown}});
    reads.emplace_back(index, h.send(docs::get("c", id_of(k))));
  };
  std::size_t settled_writes = 0;
  std::size_t settled_reads = 0;
  // Records the answers that arrived (each capture is looked at once, when it fills in).
  const auto settle = [&] {
    for (auto& [index, got] : writes) {
      auto& rec = (*log)[index];
      if (!got || !got->ready()) continue;
      if (got->last->ok())
        rec.op.ret = now();
      else if (got->last->error().code() != core::errc::outcome_unknown)
        rec.failed = true;
      got.reset();
      ++settled_writes;
    }
    for (auto& [index, got] : reads) {
      auto& rec = (*log)[index];
      if (!got || !got->ready()) continue;
      if (got->last->ok()) {
        rec.op.value = std::stoll(got->last->value().json);
        rec.op.ret = now();
      } else if (got->last->error().code() == core::errc::not_found) {
        rec.op.ret = now();
      } else {
        rec.failed = true;
      }
      got.reset();
      ++settled_reads;
    }
  };
  // Steps of at most a few ms, so that an answer's recorded time is close to its arrival.
  const auto run = [&](std::uint64_t ms) {
    for (std::uint64_t t = 0; t < ms; t += 2) {
      c.run_for(2);
      settle();
      tend();
    }
  };

  for (int step = 0; step < 300; ++step) {
    const auto via = static_cast<unsigned>(rng() % c.size());
    const int k = static_cast<int>(rng() % keys);
    const auto roll = rng() % 100;
    unsigned down = 0;
    for (unsigned i = 0; i < c.size(); ++i)
      down += c.up(i) ? 0 : 1;
    replicated_shard* h = nullptr;
    for (unsigned i = 0; i < c.size() && h == nullptr; ++i)
      if (hosts[(via + i) % c.size()]) h = hosts[(via + i) % c.size()].get();
    if (roll < 40) {
      if (h != nullptr) send_write(*h, k);
    } else if (roll < 70) {
      if (h != nullptr) send_read(*h, k);
    } else if (roll < 73) {
      if (c.up(via) && down < 2) {
        hosts[via].reset();
        c.crash(via);
      }
    } else if (roll < 80) {
      const auto i = static_cast<unsigned>(rng() % c.size());
      if (!c.up(i)) c.restart(i);
    } else if (roll < 82) {
      c.isolate(static_cast<unsigned>(rng() % c.size()));
    } else if (roll < 90) {
      c.heal_all();
    }
    run(1 + rng() % 30);
  }

  c.heal_all();
  for (unsigned i = 0; i < c.size(); ++i)
    if (!c.up(i)) c.restart(i);
  // The last reads, through a leader that serves.
  replicated_shard* final_host = nullptr;
  for (int t = 0; t < 30'000 && final_host == nullptr; t += 2) {
    run(2);
    for (auto& h : hosts)
      if (h && h->path().serving()) final_host = h.get();
  }
  ASSERT_NE(final_host, nullptr) << "seed " << seed << ": no leader serves";
  for (int k = 0; k < keys; ++k)
    send_read(*final_host, k);
  for (int t = 0; t < 10'000 && settled_reads < reads.size(); t += 2)
    run(2);
  for (auto& h : hosts)
    h.reset(); // what still waits is answered now
  settle();

  const auto v = check_histories(*log, keys, id_of);
  for (const auto& bad : v.not_linearizable)
    ADD_FAILURE() << "seed " << seed << ": not linearizable: " << bad;
  EXPECT_EQ(settled_writes, writes.size()) << "a write was never answered";
  EXPECT_GE(v.ok_writes, 2) << "seed " << seed;
  EXPECT_GE(v.ok_reads, 2) << "seed " << seed;
  RecordProperty("ok_writes", v.ok_writes);
  RecordProperty("ok_reads", v.ok_reads);
}

INSTANTIATE_TEST_SUITE_P(Seeds, ReplicatedPathHistoryTest, ::testing::Range(1, seed_count() + 1));

} // namespace
} // namespace shoal::replication::test
