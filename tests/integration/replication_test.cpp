// SPDX-License-Identifier: Apache-2.0
// Replicated shards on the real binary: three shoal processes on loopback with
// `cluster.replication_factor = 3`, so every shard is a Raft group over all three
// (docs/replication.md). What must hold: writes through any member are acknowledged and
// read back through any other; kill -9 of a member loses no acknowledged write, and its
// shards go on serving from the survivors, reads and writes, through every member left;
// the killed member restarted from its data catches up and serves again; and the history
// of concurrent clients through a kill -9 and a restart is linearizable.
#include <atomic>
#include <csignal>
#include <cstdlib>
#include <chrono>
#include <fstream>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/cluster_suite.hpp"
#include "tests/support/linearizability.hpp"

namespace shoal::test {
namespace {

namespace lin = shoal::test::lin;

const std::vector<std::string> three_copies{"cluster.replication_factor=3"};

class ReplicationTest : public cluster_suite {
protected:
  ReplicationTest() : cluster_suite("shoal-replication", {}) {}

  bool start_replicated(const std::string& id) {
    return start(id, {}, three_copies);
  }

  /// PUTs through `via` until it is acknowledged (a group still electing answers 503) or
  /// `limit` passes; the last answer.
  std::optional<http_response> put_until_ok(const std::string& via, const std::string& path,
                                            const std::string& body,
                                            milliseconds limit = milliseconds(15'000)) {
    std::optional<http_response> last;
    eventually(limit, [&] {
      http_client client{http_port(via), 5s};
      last = client.try_request("PUT", path, body, json_type);
      return last && last->status == 200;
    });
    return last;
  }

  /// GETs through `via` until it answers 200 or `limit` passes; the last answer.
  std::optional<http_response> get_until_ok(const std::string& via, const std::string& path,
                                            milliseconds limit = milliseconds(15'000)) {
    std::optional<http_response> last;
    eventually(limit, [&] {
      http_client client{http_port(via), 5s};
      last = client.try_request("GET", path);
      return last && last->status == 200;
    });
    return last;
  }
};

// Verifies writes through any member read back through any other, kill -9 of a member
// loses none of them, its shards serve on from the survivors (reads and new writes), and
// the member restarted from its data serves what was written while it was down.
TEST_F(ReplicationTest, AKilledMemberLosesNoAcknowledgedWriteAndItsShardsServeOn) {
  for (const auto& id : all_ids())
    ASSERT_TRUE(start_replicated(id));
  ASSERT_TRUE(wait_all_up(all_ids())) << views_text();
  load_owners(view("n1"));
  // Documents whose shards n2 owns (the preferred leader of their groups) and others.
  auto ids = ids_owned_by("n2", "r", "doc", 10);
  for (const auto& other : ids_owned_by("n3", "r", "other", 5))
    ids.push_back(other);
  const std::vector<std::string> via{"n1", "n2", "n3"};
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const auto& id = ids[i];
    auto res = put_until_ok(via[i % 3], "/v1/collections/r/docs/" + id,
                            R"({"i":)" + std::to_string(i) + "}");
    ASSERT_TRUE(res && res->status == 200) << id << ": " << describe(res);
  }
  for (std::size_t i = 0; i < ids.size(); ++i) {
    auto res = get_until_ok(via[(i + 1) % 3], "/v1/collections/r/docs/" + ids[i]);
    ASSERT_TRUE(res && res->status == 200) << ids[i] << ": " << describe(res);
    EXPECT_EQ(res->body, R"({"i":)" + std::to_string(i) + "}");
  }

  node("n2").kill9();
  const auto killed = clock_type::now();
  // The groups n2 led elect another leader first: how long until every document is
  // served again is the failover time.
  for (const auto& id : ids)
    ASSERT_TRUE(get_until_ok("n1", "/v1/collections/r/docs/" + id));
  std::printf("[ failover ] every document served again through n1 %lld ms after kill -9\n",
              static_cast<long long>(since(killed).count()));
  std::fflush(stdout);
  for (const auto& survivor : {"n1", "n3"}) {
    for (std::size_t i = 0; i < ids.size(); ++i) {
      auto res = get_until_ok(survivor, "/v1/collections/r/docs/" + ids[i]);
      ASSERT_TRUE(res && res->status == 200)
        << ids[i] << " through " << survivor << " after n2 was killed: " << describe(res);
      EXPECT_EQ(res->body, R"({"i":)" + std::to_string(i) + "}");
    }
  }
  // n2's shards take new writes without it.
  for (const auto& id : ids_owned_by("n2", "r", "while-down", 5)) {
    auto res = put_until_ok("n3", "/v1/collections/r/docs/" + id, R"({"down":true})");
    ASSERT_TRUE(res && res->status == 200) << id << ": " << describe(res);
  }

  ASSERT_TRUE(start_replicated("n2"));
  ASSERT_TRUE(wait_all_up(all_ids())) << views_text();
  for (const auto& id : ids_owned_by("n2", "r", "while-down", 5)) {
    auto res = get_until_ok("n2", "/v1/collections/r/docs/" + id);
    ASSERT_TRUE(res && res->status == 200) << id << " through the restarted n2: " << describe(res);
    EXPECT_EQ(res->body, R"({"down":true})");
  }
}

// Verifies histories, not just end states: three clients put and get three documents
// (one whose shard each member owns) through random live members while n2 is killed with
// -9 and restarted; every operation is recorded as invoked, then ok, refused (4xx or 503:
// changed nothing) or unknown (504, or no answer), and each document's history must be
// linearizable (tests/support/linearizability.hpp).
TEST_F(ReplicationTest, HistoriesThroughAKillAndARestartAreLinearizable) {
  for (const auto& id : all_ids())
    ASSERT_TRUE(start_replicated(id));
  ASSERT_TRUE(wait_all_up(all_ids())) << views_text();
  load_owners(view("n1"));
  const std::vector<std::string> keys{ids_owned_by("n1", "h", "k", 1).at(0),
                                      ids_owned_by("n2", "h", "k", 1).at(0),
                                      ids_owned_by("n3", "h", "k", 1).at(0)};
  // Every document's group has a leader before the history starts (a GET is answered,
  // 404 since nothing is written yet).
  for (const auto& key : keys)
    ASSERT_TRUE(eventually(milliseconds(15'000),
                           [&] {
                             http_client client{http_port("n1"), 5s};
                             auto res = client.try_request("GET", "/v1/collections/h/docs/" + key);
                             return res && res->status == 404;
                           }))
      << key << " has no leader";
  const auto checked = clock_type::now();

  struct recorded {
    std::size_t key;
    lin::op op;
    bool keep = true;
    std::string via;
    int status = 0;   ///< 0: no answer
    std::string body; ///< of a refusal
  };
  std::mutex mutex;
  std::vector<recorded> history;
  std::atomic<bool> n2_down{false};
  std::atomic<bool> stop{false};
  std::atomic<std::int64_t> next_value{0};
  const auto t0 = clock_type::now();
  const auto now_us = [&] {
    return std::chrono::duration_cast<std::chrono::microseconds>(clock_type::now() - t0).count();
  };

  auto client = [&](unsigned seed) {
    std::mt19937 rng{seed};
    while (!stop.load()) {
      std::vector<std::string> live{"n1", "n3"};
      if (!n2_down.load()) live.push_back("n2");
      const auto& via = live[rng() % live.size()];
      const auto k = static_cast<std::size_t>(rng() % keys.size());
      const auto path = "/v1/collections/h/docs/" + keys[k];
      const bool write = rng() % 2 == 0;
      recorded r{k, {write, 0, now_us(), lin::unknown}, true, via, 0, {}};
      http_client c{http_port(via), 5s};
      if (write) {
        r.op.value = ++next_value;
        auto res =
          c.try_request("PUT", path, R"({"v":)" + std::to_string(r.op.value) + "}", json_type);
        r.status = res ? res->status : 0;
        if (res && res->status >= 300) r.body = res->body;
        if (res && (res->status == 200 || res->status == 201))
          r.op.ret = now_us();
        else if (res && res->status != 504)
          r.keep = false; // refused: changed nothing
        // 504, or no answer: unknown, may take effect any time after its call
      } else {
        auto res = c.try_request("GET", path);
        r.status = res ? res->status : 0;
        if (res && res->status >= 300) r.body = res->body;
        if (res && (res->status == 200 || res->status == 201)) {
          r.op.value = res->json().at("v").as_int64();
          r.op.ret = now_us();
        } else if (res && res->status == 404) {
          r.op.value = 0;
          r.op.ret = now_us();
        } else {
          r.keep = false; // a read with no answer says nothing
        }
      }
      {
        std::lock_guard<std::mutex> lock{mutex};
        history.push_back(r);
      }
      // A pace the checker can follow: a few hundred operations per document.
      std::this_thread::sleep_for(milliseconds(20));
    }
  };
  std::vector<std::thread> clients;
  for (unsigned i = 0; i < 3; ++i)
    clients.emplace_back(client, 1000 + i);
  std::this_thread::sleep_for(2s);
  n2_down = true;
  node("n2").kill9();
  std::this_thread::sleep_for(3s);
  ASSERT_TRUE(start_replicated("n2"));
  n2_down = false;
  std::this_thread::sleep_for(3s);
  stop = true;
  for (auto& t : clients)
    t.join();

  const auto ran = since(checked);
  const auto check_started = clock_type::now();
  int ok_writes = 0;
  int ok_reads = 0;
  int unknown = 0;
  for (std::size_t k = 0; k < keys.size(); ++k) {
    std::vector<lin::op> ops;
    for (const auto& r : history) {
      if (r.key != k || !r.keep) continue;
      ops.push_back(r.op);
      if (r.op.ret == lin::unknown)
        ++unknown;
      else
        (r.op.write ? ok_writes : ok_reads) += 1;
    }
    const bool ok = lin::linearizable_register(ops) && !std::getenv("SHOAL_DUMP_HISTORY");
    EXPECT_TRUE(ok) << "document " << keys[k] << ": " << ops.size()
                    << " operations are not linearizable; the history is in "
                    << (dir_ / ("history-" + keys[k] + ".txt")).string();
    if (!ok) {
      std::ofstream out(dir_ / ("history-" + keys[k] + ".txt"));
      for (const auto& r : history)
        if (r.key == k)
          out << (r.op.write ? "put " : "get ") << r.op.value << " [" << r.op.call << ", "
              << (r.op.ret == lin::unknown ? std::string("?") : std::to_string(r.op.ret))
              << "] via " << r.via << " status " << r.status << (r.keep ? "" : " (left out)")
              << (r.body.empty() ? "" : " " + r.body) << "\n";
    }
  }
  // A history of refusals would check nothing.
  EXPECT_GE(ok_writes, 30);
  EXPECT_GE(ok_reads, 30);
  std::printf("[ history  ] %zu operations in %lld ms: %d writes and %d reads acknowledged, %d "
              "unknown; checked in %lld ms\n",
              history.size(), static_cast<long long>(ran.count()), ok_writes, ok_reads, unknown,
              static_cast<long long>(since(check_started).count()));
  std::fflush(stdout);
}

// Verifies a data directory written with one copy per shard is refused by a member
// started with three (it holds only what its node owned, and no Raft log), with a
// message naming both layouts, and still opens with one; and the other way around.
TEST_F(ReplicationTest, ADataDirectoryRefusesAnotherReplicationFactor) {
  ASSERT_TRUE(start("n1"));
  ASSERT_EQ(node("n1").stop(SIGTERM), 0);
  auto refused_with = [&](const std::vector<std::string>& sets, const std::string& name) {
    process_options opts;
    opts.args = {"serve", "--config", config_.string(), "--set", "node.id=n1"};
    for (const auto& set : sets) {
      opts.args.push_back("--set");
      opts.args.push_back(set);
    }
    opts.log_file = dir_ / name;
    shoal_process refused{std::move(opts)};
    EXPECT_EQ(refused.wait_exit(20s), 1) << refused.log();
    EXPECT_FALSE(contains(refused.log(), "listening on")) << refused.log();
    return refused.log();
  };
  auto log = refused_with(three_copies, "n1-three-copies.log");
  EXPECT_TRUE(contains(log, "belongs to node n1 of the cluster [n1, n2, n3], but this node is "
                            "node n1 of the cluster [n1, n2, n3] with 3 copies of each shard"))
    << log;
  ASSERT_TRUE(start("n1"));
  ASSERT_EQ(node("n1").stop(SIGTERM), 0);
  // And a replicated member's directory refuses one copy.
  ASSERT_TRUE(start("n2", {}, three_copies));
  ASSERT_EQ(node("n2").stop(SIGTERM), 0);
  process_options opts;
  opts.args = {"serve", "--config", config_.string(), "--set", "node.id=n2"};
  opts.log_file = dir_ / "n2-one-copy.log";
  shoal_process one_copy{std::move(opts)};
  EXPECT_EQ(one_copy.wait_exit(20s), 1) << one_copy.log();
  EXPECT_TRUE(contains(one_copy.log(), "with 3 copies of each shard, but this node is node n2 "
                                       "of the cluster [n1, n2, n3];"))
    << one_copy.log();
}

} // namespace
} // namespace shoal::test
