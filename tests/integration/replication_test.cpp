// SPDX-License-Identifier: Apache-2.0
// Replicated shards on the real binary: three shoal processes on loopback with
// `cluster.replication_factor = 3`, so every shard is a Raft group over all three
// (docs/replication.md). What must hold: writes through any member are acknowledged and
// read back through any other; kill -9 of a member loses no acknowledged write, and its
// shards go on serving from the survivors, reads and writes, through every member left;
// the killed member restarted from its data catches up and serves again; and the history
// of concurrent clients through a kill -9 and a restart is linearizable.
#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdlib>
#include <chrono>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/history_clients.hpp"
#include "tests/integration/replication_suite.hpp"
#include "tests/integration/tls_certs.hpp"
#include "tests/support/metrics_text.hpp"
#include "tests/support/linearizability.hpp"

namespace shoal::test {
namespace {

namespace lin = shoal::test::lin;

// Verifies that replicated shards work over mutual TLS links (cluster.tls_*): Raft
// entries cross them, and after kill -9 of the member leading the most shards every
// acknowledged write is served by the other two.
TEST_F(ReplicationTest, ReplicatedShardsFailOverOnTlsLinks) {
  tls_certs certs{dir_.path()};
  ASSERT_TRUE(certs.make("ca1", all_ids()));
  for (const auto& id : all_ids()) {
    auto sets = three_copies;
    for (auto& s : certs.sets(id))
      sets.push_back(std::move(s));
    ASSERT_TRUE(start(id, {}, sets));
  }
  ASSERT_TRUE(wait_all_up(all_ids())) << views_text();
  ASSERT_TRUE(wait_leaders(all_ids())) << views_text();
  const auto victim = busiest_leader();
  const std::string other = victim == "n1" ? "n2" : "n1";
  auto ids = ids_owned_by(victim, "tls", "doc", 8);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    auto res = put_until_ok(all_ids()[i % 3], "/v1/collections/tls/docs/" + ids[i],
                            R"({"i":)" + std::to_string(i) + "}");
    ASSERT_TRUE(res && res->status == 200) << ids[i] << ": " << describe(res);
  }
  node(victim).kill9();
  for (std::size_t i = 0; i < ids.size(); ++i) {
    auto res = get_until_ok(other, "/v1/collections/tls/docs/" + ids[i]);
    ASSERT_TRUE(res && res->status == 200)
      << ids[i] << " after " << victim << " was killed: " << describe(res);
    EXPECT_EQ(res->body, R"({"i":)" + std::to_string(i) + "}");
  }
}

// Verifies writes through any member read back through any other, kill -9 of a member
// loses none of them, its shards serve on from the survivors (reads and new writes), and
// the member restarted from its data serves what was written while it was down.
TEST_F(ReplicationTest, AKilledMemberLosesNoAcknowledgedWriteAndItsShardsServeOn) {
  for (const auto& id : all_ids())
    ASSERT_TRUE(start_replicated(id));
  ASSERT_TRUE(wait_all_up(all_ids())) << views_text();
  ASSERT_TRUE(wait_leaders(all_ids())) << views_text();
  // The victim leads the most shards: documents of shards it leads, and others.
  const auto victim = busiest_leader();
  const std::string other = victim == "n1" ? "n2" : "n1";
  const std::string third = victim == "n3" ? "n2" : "n3";
  auto ids = ids_owned_by(victim, "r", "doc", 10);
  for (const auto& more : ids_owned_by(other, "r", "other", 5))
    ids.push_back(more);
  auto down_ids = ids_owned_by(victim, "r", "while-down", 5);
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

  node(victim).kill9();
  const auto killed = clock_type::now();
  // The groups the victim led elect another leader first: how long until every document
  // is served again is the failover time.
  for (const auto& id : ids)
    ASSERT_TRUE(get_until_ok(other, "/v1/collections/r/docs/" + id));
  std::printf("[ failover ] every document served again through %s %lld ms after kill -9 of "
              "%s\n",
              other.c_str(), static_cast<long long>(since(killed).count()), victim.c_str());
  std::fflush(stdout);
  for (const auto& survivor : {other, third}) {
    for (std::size_t i = 0; i < ids.size(); ++i) {
      auto res = get_until_ok(survivor, "/v1/collections/r/docs/" + ids[i]);
      ASSERT_TRUE(res && res->status == 200) << ids[i] << " through " << survivor << " after "
                                             << victim << " was killed: " << describe(res);
      EXPECT_EQ(res->body, R"({"i":)" + std::to_string(i) + "}");
    }
  }
  // The shards it led take new writes without it.
  for (const auto& id : down_ids) {
    auto res = put_until_ok(third, "/v1/collections/r/docs/" + id, R"({"down":true})");
    ASSERT_TRUE(res && res->status == 200) << id << ": " << describe(res);
  }

  ASSERT_TRUE(start_replicated(victim));
  ASSERT_TRUE(wait_all_up(all_ids())) << views_text();
  for (const auto& id : down_ids) {
    auto res = get_until_ok(victim, "/v1/collections/r/docs/" + id);
    ASSERT_TRUE(res && res->status == 200)
      << id << " through the restarted " << victim << ": " << describe(res);
    EXPECT_EQ(res->body, R"({"down":true})");
  }
}

// Verifies the cluster view of a replicated cluster: every member names the same leader
// for every shard (shards.owners and shards.replicas), with its voters, term, commit
// index and the lag of both followers; a write moves its shard's commit index; the
// members' metrics count one leader per shard and none missing; after kill -9 of a
// shard's leader, the survivors name another one in a higher term; and each leadership
// is logged once, by the new leader.
TEST_F(ReplicationTest, TheClusterViewNamesEveryShardsLeaderAndFollowsALeaderChange) {
  for (const auto& id : all_ids())
    ASSERT_TRUE(start_replicated(id));
  ASSERT_TRUE(wait_all_up(all_ids())) << views_text();
  ASSERT_TRUE(wait_leaders(all_ids())) << views_text();
  const auto key = ids_owned_by(busiest_leader(), "v", "k", 1).at(0);
  const auto shard = cluster::shard_map{shard_count}.shard_of("v", key);
  const auto leader = owner_of("v", key);
  auto group = [&](const std::string& observer, std::uint32_t s) -> json::object {
    auto v = view(observer);
    if (!v.is_object()) return {};
    const auto* g = v.at("shards").at("replicas").as_object().if_contains(std::to_string(s));
    return g != nullptr && g->is_object() ? g->as_object() : json::object{};
  };
  for (const auto& observer : all_ids()) {
    for (std::uint32_t s = 0; s < shard_count; ++s) {
      auto g = group(observer, s);
      ASSERT_FALSE(g.empty()) << observer << " shard " << s << ": " << views_text();
      EXPECT_EQ(g.at("leader").as_string(), owners_[s]) << observer << " shard " << s;
      std::vector<std::string> voters;
      for (const auto& v : g.at("voters").as_array())
        voters.emplace_back(v.as_string());
      std::sort(voters.begin(), voters.end());
      EXPECT_EQ(voters, all_ids()) << observer << " shard " << s;
      EXPECT_GE(g.at("term").to_number<std::int64_t>(), 1);
      EXPECT_GE(g.at("commit_index").to_number<std::int64_t>(), 1);
      const auto& lag = g.at("follower_lag").as_object();
      EXPECT_EQ(lag.size(), 2u) << observer << " shard " << s;
      EXPECT_FALSE(lag.contains(owners_[s])) << "the leader is no follower of itself";
    }
  }
  const auto commit_before = group("n1", shard).at("commit_index").to_number<std::int64_t>();
  auto put = put_until_ok("n1", "/v1/collections/v/docs/" + key, R"({"x":1})");
  ASSERT_TRUE(put && put->status == 200) << describe(put);
  EXPECT_TRUE(eventually(milliseconds(5'000),
                         [&] {
                           auto g = group("n1", shard);
                           return !g.empty()
                                  && g.at("commit_index").to_number<std::int64_t>() > commit_before;
                         }))
    << views_text();

  double leaders = 0;
  for (const auto& id : all_ids()) {
    auto led = read_metric(http_port(id), "shoal_replication_leaders");
    ASSERT_TRUE(led) << id;
    leaders += *led;
    EXPECT_EQ(read_metric(http_port(id), "shoal_cluster_shards_without_leader"), 0.0) << id;
    EXPECT_TRUE(read_metric(http_port(id), "shoal_replication_commit_seconds_count")) << id;
  }
  EXPECT_EQ(leaders, static_cast<double>(shard_count));
  EXPECT_GE(read_metric(http_port(leader), "shoal_replication_leader_changes_total").value_or(0),
            1.0);

  const auto old_term =
    static_cast<std::uint64_t>(group("n1", shard).at("term").to_number<std::int64_t>());
  EXPECT_EQ(leadership_lines(leader, shard, old_term), 1) << logs_of(leader).back();
  node(leader).kill9();
  std::vector<std::string> survivors;
  for (const auto& id : all_ids())
    if (id != leader) survivors.push_back(id);
  std::string next;
  std::uint64_t new_term = 0;
  ASSERT_TRUE(eventually(milliseconds(15'000),
                         [&] {
                           std::string seen;
                           for (const auto& observer : survivors) {
                             auto g = group(observer, shard);
                             if (g.empty() || g.at("leader").is_null()) return false;
                             const std::string named{g.at("leader").as_string()};
                             if (named == leader || (!seen.empty() && named != seen)) return false;
                             seen = named;
                             new_term =
                               static_cast<std::uint64_t>(g.at("term").to_number<std::int64_t>());
                             auto owners = view(observer).at("shards").at("owners");
                             if (owners.at(std::to_string(shard)) != json::value(named))
                               return false;
                           }
                           next = seen;
                           return true;
                         }))
    << views_text();
  EXPECT_GT(new_term, old_term);
  // Only the new leader logs the change, once.
  EXPECT_TRUE(
    eventually(milliseconds(5'000), [&] { return leadership_lines(next, shard, new_term) == 1; }))
    << logs_of(next).back();
  for (const auto& id : all_ids()) {
    if (id == next) continue;
    EXPECT_EQ(leadership_lines(id, shard, new_term), 0) << id;
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
  load_preferred_owners();
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

  std::atomic<bool> n2_down{false};
  history_clients clients{"h", keys,
                          [&] {
                            std::vector<std::string> live{"n1", "n3"};
                            if (!n2_down.load()) live.push_back("n2");
                            return live;
                          },
                          [&](const std::string& id) { return client_of(id, 5s); }};
  clients.start(3, 1000);
  std::this_thread::sleep_for(2s);
  n2_down = true;
  node("n2").kill9();
  std::this_thread::sleep_for(3s);
  ASSERT_TRUE(start_replicated("n2"));
  n2_down = false;
  std::this_thread::sleep_for(3s);
  clients.stop();

  const auto ran = since(checked);
  const auto check_started = clock_type::now();
  const auto s = clients.check(dir_.path());
  // A history of refusals would check nothing.
  EXPECT_GE(s.ok_writes, 30);
  EXPECT_GE(s.ok_reads, 30);
  EXPECT_GE(s.ok_cas, 10);
  EXPECT_GE(s.ok_deletes, 5);
  std::printf("[ history  ] %zu operations in %lld ms: %d writes, %d compare-and-sets, %d "
              "deletes and %d reads answered, %d unknown; checked in %lld ms\n",
              clients.history().size(), static_cast<long long>(ran.count()), s.ok_writes, s.ok_cas,
              s.ok_deletes, s.ok_reads, s.unknown,
              static_cast<long long>(since(check_started).count()));
  std::fflush(stdout);
}

// Verifies a member that missed more than its groups' logs keep catches up from images
// of the shards streamed by their leaders (docs/replication.md "Snapshots"): with a
// snapshot every 16 entries and 4 kept after it, n3 is killed, every shard takes about
// 40 writes and loses the documents written before the kill, and n3 restarts. Every
// replica of every shard then holds the same data (so the deletes reached n3 too), n3
// counts the bytes it installed and the others those they sent.
TEST_F(ReplicationTest, AMemberThatMissedCompactedEntriesCatchesUpFromStreamedImages) {
  const std::vector<std::string> sets{"cluster.replication_factor=3", "cluster.snapshot_entries=16",
                                      "cluster.snapshot_trailing=4"};
  for (const auto& id : all_ids())
    ASSERT_TRUE(start(id, {}, sets));
  ASSERT_TRUE(wait_all_up(all_ids())) << views_text();
  ASSERT_TRUE(wait_leaders(all_ids())) << views_text();
  std::vector<std::string> before;
  for (int i = 0; i < 32; ++i) {
    before.push_back("before-" + std::to_string(i));
    auto res = put_until_ok("n1", "/v1/collections/s/docs/" + before.back(), R"({"old":true})");
    ASSERT_TRUE(res && res->status == 200) << describe(res);
  }
  node("n3").kill9();
  ASSERT_TRUE(wait_leaders({"n1", "n2"})) << views_text();
  const std::string pad(1000, 'p');
  for (int i = 0; i < 40 * static_cast<int>(shard_count); ++i) {
    auto res = put_until_ok(i % 2 ? "n1" : "n2", "/v1/collections/s/docs/d" + std::to_string(i),
                            R"({"i":)" + std::to_string(i) + R"(,"pad":")" + pad + "\"}");
    ASSERT_TRUE(res && res->status == 200) << i << ": " << describe(res);
  }
  for (const auto& id : before) {
    auto client = client_of("n1", 5s);
    auto res = client.try_request("DELETE", "/v1/collections/s/docs/" + id);
    ASSERT_TRUE(res && res->status == 204) << id << ": " << describe(res);
  }
  const auto sent_by_others = [&] {
    double sum = 0;
    for (const auto* id : {"n1", "n2"})
      sum += read_metric(http_port(id), "shoal_replication_snapshot_bytes_total",
                         {{"direction", "sent"}})
               .value_or(0);
    return sum;
  };
  const auto sent_before = sent_by_others();

  ASSERT_TRUE(start("n3", {}, sets));
  ASSERT_TRUE(wait_all_up(all_ids())) << views_text();
  expect_replicas_converge(all_ids(), milliseconds(30'000));
  const auto installed = read_metric(http_port("n3"), "shoal_replication_snapshot_bytes_total",
                                     {{"direction", "installed"}});
  ASSERT_TRUE(installed);
  // 640 documents of about 1 kB: most of them reached n3 as images, not log entries.
  EXPECT_GT(*installed, 320'000.0);
  EXPECT_GE(sent_by_others() - sent_before, *installed);
}

// Verifies a cluster of three members whose file sets no replication factor keeps three
// copies of every shard: each shard's group has all three members as voters, and a
// document written before kill -9 of the member leading its shard is served after it.
TEST_F(ReplicationTest, ThreeMembersKeepThreeCopiesUnlessTheFileSaysOtherwise) {
  cluster_spec spec;
  spec.nodes = members_;
  spec.replication_factor = 0; // not in the file
  const auto file = write_config("default-copies.toml", spec);
  for (const auto& id : all_ids())
    ASSERT_TRUE(start(id, file));
  ASSERT_TRUE(wait_all_up(all_ids())) << views_text();
  ASSERT_TRUE(wait_leaders(all_ids())) << views_text();
  const auto v = view("n1");
  const auto& groups = v.at("shards").at("replicas").as_object();
  ASSERT_EQ(groups.size(), shard_count);
  for (const auto& [shard, g] : groups)
    EXPECT_EQ(g.at("voters").as_array().size(), 3u) << "shard " << shard;
  const auto victim = busiest_leader();
  const auto id = ids_owned_by(victim, "dflt", "doc", 1).at(0);
  auto res = put_until_ok("n1", "/v1/collections/dflt/docs/" + id, R"({"kept":true})");
  ASSERT_TRUE(res && res->status == 200) << describe(res);
  node(victim).kill9();
  const std::string other = victim == "n1" ? "n2" : "n1";
  auto got = get_until_ok(other, "/v1/collections/dflt/docs/" + id);
  ASSERT_TRUE(got && got->status == 200) << describe(got);
  EXPECT_EQ(got->body, R"({"kept":true})");
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
