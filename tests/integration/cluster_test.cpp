// SPDX-License-Identifier: Apache-2.0
// Cluster tests: three real shoal processes on 127.0.0.1, each with its own HTTP and
// actor port (free ports picked at start), one shared TOML file per test and
// `--set node.id=…`. They check forwarding to shard owners from any node, kill -9 and
// restart of a member under load, refused members (shard count, secret, member list), a
// SIGSTOPped (partitioned) member, a member started before its peers, and the shipped
// config/haproxy.cfg in front of the three nodes.
//
// The membership runs with short timeouts (heartbeat 100 ms, failure timeout 1000 ms,
// reconnect backoff up to 500 ms). Every wait is a poll with a deadline, and every bound
// the product promises is checked with `margin` on top for a loaded two-core machine.
// The fixture and these settings are in cluster_suite.hpp, shared with
// cluster_jobs_test.cpp.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <unistd.h>

#include "cluster/ownership.hpp"
#include "cluster/shard_map.hpp"
#include "tests/integration/cluster_suite.hpp"
#include "tests/support/feed_client.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/metrics_text.hpp"
#include "tests/support/ports.hpp"
#include "tests/support/shoal_process.hpp"
#include "tests/support/temp_dir.hpp"

#ifndef SHOAL_SOURCE_DIR
#error "SHOAL_SOURCE_DIR must name the source tree (for config/haproxy.cfg)"
#endif

namespace shoal::test {
namespace {

std::string doc_target(std::string_view collection, std::string_view id) {
  return "/v1/collections/" + std::string(collection) + "/docs/" + std::string(id);
}

std::string increment_target(std::string_view counter) {
  return "/v1/actors/counter/" + std::string(counter) + "/method/increment";
}

/// The version in an ETag "N", or 0.
std::uint64_t etag_version(const http_response& res) {
  auto tag = res.header("ETag");
  if (!tag || tag->size() < 3) return 0;
  return std::strtoull(tag->c_str() + 1, nullptr, 10);
}

/// The member list as the gateway logs it: "id@host:http/actor, …" sorted by id.
std::string member_line(std::vector<member> nodes) {
  std::sort(nodes.begin(), nodes.end(),
            [](const member& a, const member& b) { return a.id < b.id; });
  std::string out;
  for (const auto& n : nodes) {
    if (!out.empty()) out += ", ";
    out += n.id + "@127.0.0.1:" + std::to_string(n.http_port) + "/" + std::to_string(n.actor_port);
  }
  return out;
}

/// Sends SIGCONT to a process when it goes out of scope (a test that SIGSTOPs a member
/// must not leave it stopped, whatever fails).
class resume_on_exit {
public:
  explicit resume_on_exit(pid_t pid) : pid_(pid) {}
  ~resume_on_exit() {
    if (pid_ > 0) ::kill(pid_, SIGCONT);
  }
  resume_on_exit(const resume_on_exit&) = delete;
  resume_on_exit& operator=(const resume_on_exit&) = delete;

private:
  pid_t pid_;
};

// ===========================================================================
// The fixture: cluster_suite (three members n1..n3 on free loopback ports, started on
// demand) and the refused-member scenario.
// ===========================================================================

class ClusterTest : public cluster_suite {
protected:
  /// Runs the refused-member scenario: n1 and n2 with the good file, n3 with `bad_config`.
  /// `good_lines(good)` / `bad_lines(good)` are the lines the good member `good` and the
  /// bad member n3 must log about each other; `good_reason` is part of the reason the good
  /// members give for n3 in /v1/cluster.
  void expect_refused(const fs::path& bad_config,
                      const std::function<std::vector<std::string>(const std::string&)>& good_lines,
                      const std::function<std::vector<std::string>(const std::string&)>& bad_lines,
                      const std::string& good_reason);
};

// ===========================================================================
// 1. Three members: any node serves any key.
// ===========================================================================

// Verifies three members see each other up with one owner map covering every shard, are
// ready, and serve every document and counter identically through any member.
TEST_F(ClusterTest, EveryMemberServesEveryKeyWithTheSameOwners) {
  start_cluster();
  if (HasFatalFailure()) return;
  const auto ids = all_ids();

  for (const auto& id : ids) {
    http_client client{http_port(id), 5s};
    auto res = client.get("/readyz");
    EXPECT_EQ(res.status, 200u) << id << ": " << res.body;
  }

  // /v1/cluster: the same members, all up, and the same owners on every node, matching
  // rendezvous hashing over the configured ids.
  const cluster::ownership expected_owners{ids, shard_count};
  std::optional<json::value> first_owners;
  for (const auto& id : ids) {
    auto v = view(id);
    ASSERT_TRUE(v.is_object()) << id;
    EXPECT_EQ(v.at("node"), json::value(id));
    EXPECT_EQ(v.at("ready"), json::value(true)) << id;
    const auto& nodes = v.at("nodes").as_array();
    ASSERT_EQ(nodes.size(), 3u) << json::serialize(v);
    for (std::size_t k = 0; k < nodes.size(); ++k) {
      const auto& n = nodes[k].as_object();
      EXPECT_EQ(n.at("id"), json::value(members_[k].id)) << json::serialize(v);
      EXPECT_EQ(n.at("state"), json::value("up")) << id << " sees " << json::serialize(n);
      EXPECT_EQ(n.at("http"), json::value("127.0.0.1:" + std::to_string(members_[k].http_port)));
      const auto& beat = n.at("last_heartbeat_ms");
      ASSERT_TRUE(beat.is_int64() || beat.is_uint64()) << json::serialize(n);
      auto age = beat.to_number<std::int64_t>();
      EXPECT_GE(age, 0);
      EXPECT_LE(age, failure_timeout_ms + margin.count()) << id << " sees " << json::serialize(n);
      EXPECT_FALSE(n.contains("reason")) << json::serialize(n);
    }
    const auto& shards = v.at("shards").as_object();
    EXPECT_EQ(shards.at("count"), json::value(shard_count));
    const auto& owners = shards.at("owners").as_object();
    EXPECT_EQ(owners.size(), shard_count);
    std::map<std::string, int> per_node;
    for (std::uint32_t s = 0; s < shard_count; ++s) {
      const auto* owner = owners.if_contains(std::to_string(s));
      ASSERT_NE(owner, nullptr) << "shard " << s << " has no owner on " << id;
      EXPECT_EQ(*owner, json::value(expected_owners.owner(s))) << "shard " << s << " on " << id;
      if (owner->is_string()) ++per_node[std::string(owner->as_string())];
    }
    for (const auto& m : ids)
      EXPECT_GT(per_node[m], 0) << m << " owns no shard (on " << id << ")";
    if (!first_owners)
      first_owners = shards.at("owners");
    else
      EXPECT_EQ(shards.at("owners"), *first_owners) << id << " has another owner map";
  }

  // Documents: six per owner, each created through one member and overwritten through the
  // next; every member must return the same body and ETag.
  std::vector<std::string> docs;
  for (const auto& owner : ids)
    for (auto& d : ids_owned_by(owner, "docs", "doc", 6))
      docs.push_back(std::move(d));
  std::map<std::string, std::pair<std::string, std::string>> expected; // id -> body, etag
  std::vector<http_client> clients;
  for (const auto& id : ids)
    clients.emplace_back(http_port(id), 5s);
  for (std::size_t k = 0; k < docs.size(); ++k) {
    const auto& d = docs[k];
    auto body = R"({"doc":")" + d + R"(","via":")" + ids[k % 3] + R"("})";
    auto res = clients[k % 3].put(doc_target("docs", d), body);
    ASSERT_EQ(res.status, 201u) << d << " via " << ids[k % 3] << ": " << res.body;
    EXPECT_EQ(res.header("ETag"), "\"1\"");
    EXPECT_EQ(res.json(), json::parse(R"({"id":")" + d + R"(","version":1})"));
    expected[d] = {body, "\"1\""};
    if (k % 2 == 0) continue;
    auto again = R"({"doc":")" + d + R"(","via":")" + ids[(k + 1) % 3] + R"(","second":true})";
    res = clients[(k + 1) % 3].put(doc_target("docs", d), again);
    ASSERT_EQ(res.status, 200u) << d << ": " << res.body;
    EXPECT_EQ(res.header("ETag"), "\"2\"");
    expected[d] = {again, "\"2\""};
  }
  // Preconditions travel with a forwarded write: If-Match on a stale version fails.
  for (std::size_t k = 1; k < 6; k += 2) {
    const auto& d = docs[k];
    auto res =
      clients[(k + 2) % 3].put(doc_target("docs", d), R"({"stale":true})", {{"If-Match", "\"1\""}});
    EXPECT_EQ(res.status, 412u) << d << ": " << res.body;
    EXPECT_EQ(res.error_code(), "precondition_failed");
  }
  // One delete per owner, each through a member that does not own the document.
  std::set<std::string> deleted;
  for (const auto& owner : ids) {
    for (std::size_t k = 0; k < docs.size(); ++k) {
      if (owner_of("docs", docs[k]) != owner) continue;
      std::size_t via = (std::find(ids.begin(), ids.end(), owner) - ids.begin() + 1) % 3;
      auto res = clients[via].del(doc_target("docs", docs[k]));
      EXPECT_EQ(res.status, 204u) << docs[k] << ": " << res.body;
      deleted.insert(docs[k]);
      break;
    }
  }
  for (const auto& d : docs) {
    for (std::size_t c = 0; c < clients.size(); ++c) {
      auto res = clients[c].get(doc_target("docs", d));
      if (deleted.count(d) != 0) {
        EXPECT_EQ(res.status, 404u) << d << " from " << ids[c] << ": " << res.body;
        EXPECT_EQ(res.error_code(), "not_found");
        continue;
      }
      EXPECT_EQ(res.status, 200u) << d << " from " << ids[c] << ": " << res.body;
      EXPECT_EQ(res.json(), json::parse(expected[d].first)) << d << " from " << ids[c];
      EXPECT_EQ(res.header("ETag"), expected[d].second) << d << " from " << ids[c];
    }
  }

  // Counters, one per owner: increments through n1, n2, n3 in turn count 1..9, then
  // three concurrent clients (one per member) get every following value exactly once.
  for (const auto& owner : ids) {
    const auto counter = ids_owned_by(owner, "counter", "ctr", 1).at(0);
    for (int step = 1; step <= 9; ++step) {
      auto& client = clients[static_cast<std::size_t>(step - 1) % 3];
      auto res = client.request("POST", increment_target(counter), R"({"by":1})", json_type);
      ASSERT_EQ(res.status, 200u) << counter << " (owner " << owner << "): " << res.body;
      EXPECT_EQ(res.json(), json::parse(R"({"value":)" + std::to_string(step) + "}"))
        << counter << " step " << step << " via " << ids[static_cast<std::size_t>(step - 1) % 3];
    }
    constexpr int per_client = 20;
    std::mutex mutex;
    std::vector<std::int64_t> values;
    std::vector<std::string> errors;
    std::vector<std::thread> threads;
    for (const auto& id : ids) {
      threads.emplace_back([&, port = http_port(id)] {
        http_client client{port, 5s};
        for (int i = 0; i < per_client; ++i) {
          std::string error;
          auto res =
            client.try_request("POST", increment_target(counter), R"({"by":1})", json_type, &error);
          std::lock_guard lock{mutex};
          if (!res || res->status != 200 || !res->json().is_object()) {
            errors.push_back(describe(res, error));
            continue;
          }
          values.push_back(res->json().at("value").to_number<std::int64_t>());
        }
      });
    }
    for (auto& t : threads)
      t.join();
    EXPECT_TRUE(errors.empty()) << errors.size() << " increments failed, e.g. " << errors.front();
    std::sort(values.begin(), values.end());
    std::vector<std::int64_t> wanted;
    for (std::int64_t v = 10; v < 10 + 3 * per_client; ++v)
      wanted.push_back(v);
    EXPECT_EQ(values, wanted) << "counter " << counter << " (owner " << owner << ")";
  }
}

// ===========================================================================
// 2. kill -9 of a member under load, and its restart.
// ===========================================================================

/// One write a load thread sent, and what came back.
struct sent_write {
  std::string id;
  std::string body;
  bool hot = false; ///< an overwrite of the thread's hot document
  clock_type::time_point start;
  milliseconds elapsed{};
  std::optional<http_response> res;
  std::string error;
};

// Verifies that after kill -9 of one member the survivors keep serving their shards, answer
// the dead member's shards with 503 shard_unavailable without hanging, show it down; that
// the restarted member rejoins by itself; and that every acknowledged write survives.
TEST_F(ClusterTest, Kill9OfAMemberFailsOnlyItsShardsAndItRejoinsAfterRestart) {
  start_cluster();
  if (HasFatalFailure()) return;
  const std::string victim = "n3";
  const std::vector<std::string> survivors{"n1", "n2"};
  const auto survivor_pids = std::make_pair(node("n1").pid(), node("n2").pid());

  // A counter the victim owns, incremented through the survivors before the kill.
  const auto counter = ids_owned_by(victim, "counter", "ctr", 1).at(0);
  {
    http_client a{http_port("n1"), 5s};
    http_client b{http_port("n2"), 5s};
    for (int i = 1; i <= 5; ++i) {
      auto res =
        (i % 2 != 0 ? a : b).request("POST", increment_target(counter), R"({"by":1})", json_type);
      ASSERT_EQ(res.status, 200u) << res.body;
      EXPECT_EQ(res.json(), json::parse(R"({"value":)" + std::to_string(i) + "}"));
    }
  }

  // Four writers, two through each survivor, for about a second before the kill and two
  // after it. Every id is new except each writer's hot document, rewritten every 4th turn.
  constexpr int writers = 4;
  std::atomic<bool> stop{false};
  std::vector<std::vector<sent_write>> sent(writers);
  std::vector<std::thread> threads;
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      http_client client{http_port(survivors[static_cast<std::size_t>(w) % 2]), 10s};
      auto& out = sent[static_cast<std::size_t>(w)];
      int hot_count = 0;
      for (int i = 0; !stop.load(); ++i) {
        sent_write s;
        s.hot = i % 4 == 3;
        s.id =
          s.hot ? "hot-w" + std::to_string(w) : "w" + std::to_string(w) + "-" + std::to_string(i);
        s.body = s.hot
                   ? R"({"w":)" + std::to_string(w) + R"(,"n":)" + std::to_string(++hot_count) + "}"
                   : R"({"w":)" + std::to_string(w) + R"(,"i":)" + std::to_string(i) + "}";
        s.start = clock_type::now();
        s.res = client.try_request("PUT", doc_target("load", s.id), s.body, json_type, &s.error);
        s.elapsed = since(s.start);
        out.push_back(std::move(s));
        // Pacing, so that verifying every acknowledged write afterwards stays short.
        std::this_thread::sleep_for(milliseconds(2));
      }
    });
  }
  std::this_thread::sleep_for(1s);
  node(victim).kill9();
  const auto killed_at = clock_type::now();
  std::this_thread::sleep_for(2s);
  stop = true;
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(node(victim).exit_status(), std::optional<int>(128 + SIGKILL));

  // Judge every answer by the owner of its document and by when it was sent.
  const auto known_down_after = milliseconds(failure_timeout_ms + 500);
  std::size_t live = 0;
  std::size_t live_ok = 0;
  std::size_t dead_after_kill = 0;
  std::size_t acknowledged = 0;
  std::vector<std::string> bad;
  std::vector<std::string> live_failures;                                 ///< tolerated up to 0.1 %
  std::map<std::string, std::string> write_once;                          ///< id -> body
  std::map<std::string, std::pair<std::uint64_t, std::string>> hot_acked; ///< id -> version, body
  for (const auto& out : sent) {
    for (const auto& s : out) {
      const bool victims = owner_of("load", s.id) == victim;
      const bool ok = s.res && (s.res->status == 201 || (s.hot && s.res->status == 200));
      if (s.elapsed > request_bound)
        bad.push_back(s.id + " took " + std::to_string(s.elapsed.count())
                      + " ms: " + describe(s.res, s.error));
      if (!victims) {
        ++live;
        if (ok)
          ++live_ok;
        else
          live_failures.push_back(s.id + " (live owner " + owner_of("load", s.id)
                                  + "): " + describe(s.res, s.error));
      } else if (s.start >= killed_at) {
        ++dead_after_kill;
        // Past the failure timeout the owner is known down, however it was noticed: the
        // write is refused at once and never sent (503). Before, it may have been sent
        // to the dead node and lost with it: 504 outcome_unknown says so.
        const bool known_down = s.start >= killed_at + known_down_after;
        auto refused = is_shard_unavailable(s.res);
        if (!refused && (known_down || !is_outcome_unknown(s.res)))
          bad.push_back(s.id + " (dead owner, sent after the kill): " + refused.message() + " "
                        + s.error);
        if (known_down && s.elapsed >= at_once)
          bad.push_back(s.id + " (dead owner, known down) waited "
                        + std::to_string(s.elapsed.count()) + " ms");
      } else if (!ok && !is_shard_unavailable(s.res) && !is_outcome_unknown(s.res)) {
        // In flight at the kill: acknowledged, refused before it was sent (503), or lost
        // with the node (504 outcome_unknown).
        bad.push_back(s.id + " (dead owner, in flight at the kill): " + describe(s.res, s.error));
      }
      if (!ok) continue;
      ++acknowledged;
      if (!s.hot) {
        write_once[s.id] = s.body;
        continue;
      }
      auto version = etag_version(*s.res);
      auto& best = hot_acked[s.id];
      if (version > best.first) best = {version, s.body};
    }
  }
  std::printf("[ cluster  ] %zu writes to live owners (%zu acknowledged), %zu to the dead owner "
              "after the kill, %zu acknowledged in all\n",
              live, live_ok, dead_after_kill, acknowledged);
  std::fflush(stdout);
  EXPECT_GT(live, 100u) << "too little load to judge";
  EXPECT_GE(live_ok * 1000, live * 999) << "live owners must keep serving; " << live_failures.size()
                                        << " failed, first: " << live_failures.front();
  for (const auto& f : live_failures)
    std::printf("[ cluster  ] a write to a live owner failed: %s\n", f.c_str());
  EXPECT_GT(dead_after_kill, 10u) << "the load never reached the dead owner's shards";
  EXPECT_TRUE(bad.empty()) << bad.size() << " bad answers; first: " << bad.front()
                           << (bad.size() > 1 ? "; last: " + bad.back() : std::string{});

  // The survivors show the victim down; its counter is unavailable at once.
  for (const auto& s : survivors) {
    EXPECT_TRUE(wait_state(s, victim, "down", request_bound))
      << s << " does not show " << victim << " down:\n"
      << views_text();
    http_client client{http_port(s), 5s};
    auto start = clock_type::now();
    auto res = client.try_request("POST", increment_target(counter), R"({"by":1})", json_type);
    EXPECT_TRUE(is_shard_unavailable(res)) << "counter via " << s;
    EXPECT_LT(since(start), at_once) << "the owner is known down; no need to wait";
    // Logged once, at the level log.level calls "warn" (spdlog's own name is "warning").
    EXPECT_TRUE(contains(node(s).log(), " warn  [cluster] node " + victim + " is down"))
      << tail(node(s).log());
    EXPECT_FALSE(contains(node(s).log(), "warning")) << tail(node(s).log());
  }

  // Restart with the same data directory: it rejoins, nobody else restarts.
  ASSERT_TRUE(start(victim));
  ASSERT_TRUE(wait_all_up(all_ids())) << "the restarted member did not rejoin:\n" << views_text();
  EXPECT_EQ(node("n1").pid(), survivor_pids.first);
  EXPECT_EQ(node("n2").pid(), survivor_pids.second);
  {
    http_client client{http_port(victim), 5s};
    EXPECT_TRUE(eventually(settle_timeout,
                           [&] {
                             auto res = client.try_request("GET", "/readyz");
                             return res && res->status == 200;
                           }))
      << "the restarted member never became ready";
  }

  // Every acknowledged write, from every member, at the acknowledged version.
  std::vector<std::pair<std::string, std::string>> once(write_once.begin(), write_once.end());
  std::mutex mutex;
  std::vector<std::string> lost;
  std::vector<std::thread> verifiers;
  for (const auto& id : all_ids()) {
    verifiers.emplace_back([&, id] {
      http_client client{http_port(id), 5s};
      auto report = [&](std::string what) {
        std::lock_guard lock{mutex};
        lost.push_back(id + ": " + std::move(what));
      };
      for (const auto& [doc, body] : once) {
        std::string error;
        auto res = client.try_request("GET", doc_target("load", doc), {}, {}, &error);
        if (!res || res->status != 200 || etag_version(*res) != 1
            || res->json() != json::parse(body))
          report(doc + " -> " + describe(res, error));
      }
      for (const auto& [doc, acked] : hot_acked) {
        std::string error;
        auto res = client.try_request("GET", doc_target("load", doc), {}, {}, &error);
        auto version = res ? etag_version(*res) : 0;
        if (!res || res->status != 200 || version < acked.first
            || (version == acked.first && res->json() != json::parse(acked.second)))
          report(doc + ": acknowledged version " + std::to_string(acked.first) + ", found "
                 + describe(res, error) + " version " + std::to_string(version));
      }
    });
  }
  for (auto& t : verifiers)
    t.join();
  EXPECT_TRUE(lost.empty()) << lost.size()
                            << " acknowledged writes missing or wrong; first: " << lost.front();

  // Forwarding to the restarted member works again, and its counter kept its value.
  http_client via_n2{http_port("n2"), 5s};
  auto res = via_n2.request("POST", increment_target(counter), R"({"by":1})", json_type);
  EXPECT_EQ(res.status, 200u) << res.body;
  EXPECT_EQ(res.json(), json::parse(R"({"value":6})"));
  for (const auto& d : ids_owned_by(victim, "load", "after", 5)) {
    auto put = via_n2.put(doc_target("load", d), R"({"after":true})");
    EXPECT_EQ(put.status, 201u) << d << ": " << put.body;
    http_client direct{http_port(victim), 5s};
    auto get = direct.get(doc_target("load", d));
    EXPECT_EQ(get.status, 200u) << d << ": " << get.body;
  }
}

// ===========================================================================
// 3. Members with another configuration are refused.
// ===========================================================================

void ClusterTest::expect_refused(
  const fs::path& bad_config,
  const std::function<std::vector<std::string>(const std::string&)>& good_lines,
  const std::function<std::vector<std::string>(const std::string&)>& bad_lines,
  const std::string& good_reason) {
  const std::vector<std::string> good{"n1", "n2"};
  const std::string bad = "n3";
  ASSERT_TRUE(start("n1"));
  ASSERT_TRUE(start("n2"));
  ASSERT_TRUE(wait_all_up(good)) << views_text();
  auto v = view("n1");
  ASSERT_TRUE(v.is_object());
  load_owners(v);
  ASSERT_TRUE(start(bad, bad_config));

  // Both sides say why, in the log.
  for (const auto& g : good) {
    for (const auto& line : good_lines(g))
      EXPECT_TRUE(eventually(settle_timeout, [&] { return contains(node(g).log(), line); }))
        << g << " never logged: " << line << "\nlog:\n"
        << tail(node(g).log());
    for (const auto& line : bad_lines(g))
      EXPECT_TRUE(eventually(settle_timeout, [&] { return contains(node(bad).log(), line); }))
        << bad << " never logged: " << line << "\nlog:\n"
        << tail(node(bad).log());
  }

  // Over several reconnect rounds: the bad member stays unready, the good ones ready and
  // never showing it up, with the reason.
  const auto window_end = clock_type::now() + milliseconds(3 * reconnect_max_ms + 500);
  int samples = 0;
  while (clock_type::now() < window_end) {
    ++samples;
    http_client bad_client{http_port(bad), 5s};
    auto ready = bad_client.try_request("GET", "/readyz");
    ASSERT_TRUE(ready) << "the refused member stopped answering";
    EXPECT_EQ(ready->status, 503u) << ready->body;
    EXPECT_EQ(ready->error_code(), "not_ready") << ready->body;
    for (const auto& g : good) {
      http_client client{http_port(g), 5s};
      auto res = client.try_request("GET", "/readyz");
      ASSERT_TRUE(res);
      EXPECT_EQ(res->status, 200u) << g << ": " << res->body;
      auto gv = view(g);
      const auto* e = entry(gv, bad);
      ASSERT_NE(e, nullptr) << json::serialize(gv);
      EXPECT_EQ(e->at("state"), json::value("down")) << g << ": " << json::serialize(*e);
      const auto* reason = e->if_contains("reason");
      EXPECT_TRUE(reason != nullptr && reason->is_string()
                  && contains(reason->as_string(), good_reason))
        << g << ": " << json::serialize(*e);
    }
    if (HasFailure()) break;
    std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_GT(samples, 3);
  auto bv = view(bad);
  EXPECT_EQ(bv.at("ready"), json::value(false)) << json::serialize(bv);
  for (const auto& g : good) {
    const auto* e = entry(bv, g);
    ASSERT_NE(e, nullptr) << json::serialize(bv);
    EXPECT_NE(e->at("state"), json::value("up")) << json::serialize(bv);
  }
  // /metrics says the same: the bad member is unready and sees nobody up but itself; the
  // good ones are ready and see each other up and the bad member down.
  EXPECT_EQ(read_metric(http_port(bad), "shoal_cluster_ready"), 0.0);
  EXPECT_EQ(read_metric(http_port(bad), "shoal_cluster_member_up", {{"node", bad}}), 1.0);
  for (const auto& g : good) {
    EXPECT_EQ(read_metric(http_port(bad), "shoal_cluster_member_up", {{"node", g}}), 0.0) << g;
    EXPECT_EQ(read_metric(http_port(g), "shoal_cluster_ready"), 1.0) << g;
    EXPECT_EQ(read_metric(http_port(g), "shoal_cluster_member_up", {{"node", bad}}), 0.0) << g;
    for (const auto& other : good)
      EXPECT_EQ(read_metric(http_port(g), "shoal_cluster_member_up", {{"node", other}}), 1.0)
        << g << " sees " << other;
  }

  // The good members keep serving their shards through either of them; the bad member's
  // shards are unavailable, not forwarded to it.
  for (const auto& owner : good) {
    for (const auto& d : ids_owned_by(owner, "refusal", "doc-" + owner, 4)) {
      http_client writer{http_port(good[0]), 5s};
      http_client reader{http_port(good[1]), 5s};
      auto put = writer.put(doc_target("refusal", d), R"({"owner":")" + owner + R"("})");
      EXPECT_EQ(put.status, 201u) << d << ": " << put.body;
      auto get = reader.get(doc_target("refusal", d));
      EXPECT_EQ(get.status, 200u) << d << ": " << get.body;
      EXPECT_EQ(get.json(), json::parse(R"({"owner":")" + owner + R"("})"));
    }
  }
  for (const auto& d : ids_owned_by(bad, "refusal", "doc-" + bad, 4)) {
    for (const auto& g : good) {
      http_client client{http_port(g), 5s};
      auto start = clock_type::now();
      auto res = client.try_request("PUT", doc_target("refusal", d), R"({"x":1})", json_type);
      EXPECT_TRUE(is_shard_unavailable(res)) << d << " via " << g;
      EXPECT_LT(since(start), at_once) << d << " via " << g;
    }
  }
}

// Verifies a member with another cluster.shards is refused both ways with clear log lines,
// stays unready, and the others keep serving without it.
TEST_F(ClusterTest, MemberWithAnotherShardCountIsRefused) {
  cluster_spec spec;
  spec.nodes = members_;
  spec.shards = 32;
  auto bad_config = write_config("shards-32.toml", spec);
  expect_refused(
    bad_config,
    [](const std::string& g) {
      return std::vector<std::string>{
        "refused node n3: it has cluster.shards = 32, this node has 16",
        "node n3 not joined: refused by the peer: cluster.shards differs: 32 on node n3, 16 on "
        "node "
          + g};
    },
    [](const std::string& g) {
      return std::vector<std::string>{
        "refused node " + g + ": it has cluster.shards = 16, this node has 32",
        "node " + g + " not joined: refused by the peer: cluster.shards differs: 16 on node " + g
          + ", 32 on node n3"};
    },
    "cluster.shards differs");
}

// Verifies a member with another cluster.secret is refused both ways with clear log lines,
// stays unready, and the others keep serving without it.
TEST_F(ClusterTest, MemberWithAnotherSecretIsRefused) {
  cluster_spec spec;
  spec.nodes = members_;
  spec.secret = "not-the-cluster-secret-9876543210";
  auto bad_config = write_config("other-secret.toml", spec);
  expect_refused(
    bad_config,
    [](const std::string&) {
      return std::vector<std::string>{
        "node n3 not joined: it does not know the cluster secret",
        "node n3 refused this node: your proof of the cluster secret is wrong"};
    },
    [](const std::string& g) {
      return std::vector<std::string>{
        "node " + g + " not joined: it does not know the cluster secret",
        "node " + g + " refused this node: your proof of the cluster secret is wrong"};
    },
    "it does not know the cluster secret");
  // The secret itself never appears in a log.
  for (const auto& id : all_ids()) {
    EXPECT_FALSE(contains(node(id).log(), test_secret)) << id;
    EXPECT_FALSE(contains(node(id).log(), "not-the-cluster-secret")) << id;
  }
}

// Verifies a member with another member list (one HTTP port differs) is refused both ways
// with clear log lines, stays unready, and the others keep serving without it.
TEST_F(ClusterTest, MemberWithAnotherMemberListIsRefused) {
  cluster_spec spec;
  spec.nodes = members_;
  spec.nodes[1].http_port = free_tcp_ports(1).at(0); // n2 listed at another HTTP port
  auto bad_config = write_config("other-members.toml", spec);
  const auto good_list = member_line(members_);
  const auto bad_list = member_line(spec.nodes);
  expect_refused(
    bad_config,
    [&](const std::string&) {
      return std::vector<std::string>{
        "refused node n3: its cluster.nodes [" + bad_list + "] differ from this node's ["
          + good_list + "]",
        "node n3 not joined: refused by the peer: cluster.nodes differs: node n3 has [" + bad_list
          + "]"};
    },
    [&](const std::string& g) {
      return std::vector<std::string>{
        "refused node " + g + ": its cluster.nodes [" + good_list + "] differ from this node's ["
          + bad_list + "]",
        "node " + g + " not joined: refused by the peer: cluster.nodes differs: node " + g
          + " has [" + good_list + "]"};
    },
    "cluster.nodes differs");
}

// Verifies a data directory stays bound to its member list: n1 restarted on its own
// directory with a list without n3 (so it would own other shards) refuses to start,
// naming both layouts, and starts again with the original list.
TEST_F(ClusterTest, DataDirectoryRefusesAnotherMemberList) {
  ASSERT_TRUE(start("n1"));
  ASSERT_EQ(node("n1").stop(SIGTERM), 0);
  cluster_spec spec;
  spec.nodes = {members_[0], members_[1]};
  process_options opts;
  opts.args = {"serve", "--config", write_config("two-members.toml", spec).string(), "--set",
               "node.id=n1"};
  opts.log_file = dir_ / "n1-two-members.log";
  shoal_process refused{std::move(opts)};
  EXPECT_EQ(refused.wait_exit(20s), 1) << refused.log();
  EXPECT_TRUE(contains(refused.log(), "belongs to node n1 of the cluster [n1, n2, n3]"))
    << refused.log();
  EXPECT_TRUE(contains(refused.log(), "this node is node n1 of the cluster [n1, n2]"))
    << refused.log();
  EXPECT_FALSE(contains(refused.log(), "listening on")) << refused.log();
  ASSERT_TRUE(start("n1"));
}

// Verifies a member whose only reachable peer is a misconfigured one stays ready and keeps
// serving: the member that was refused by everyone it reached is the odd one out only if
// it is the newcomer. (A misconfigured member must not take healthy ones out of a load
// balancer while the other members are down.)
TEST_F(ClusterTest, RefusedMemberDoesNotMakeALoneGoodMemberUnready) {
  ASSERT_TRUE(start("n1"));
  http_client client{http_port("n1"), 5s};
  ASSERT_TRUE(eventually(settle_timeout,
                         [&] {
                           auto res = client.try_request("GET", "/readyz");
                           return res && res->status == 200;
                         }))
    << views_text();
  load_owners(view("n1"));

  cluster_spec spec;
  spec.nodes = members_;
  spec.shards = 32;
  ASSERT_TRUE(start("n3", write_config("shards-32.toml", spec)));
  for (const auto* line :
       {"refused node n3: it has cluster.shards = 32, this node has 16",
        "node n3 not joined: refused by the peer: cluster.shards differs: 32 on node n3, 16 on "
        "node n1"})
    ASSERT_TRUE(eventually(settle_timeout, [&] { return contains(node("n1").log(), line); }))
      << "n1 never logged: " << line << "\n"
      << tail(node("n1").log());

  const auto window_end = clock_type::now() + milliseconds(3 * reconnect_max_ms + 500);
  while (clock_type::now() < window_end) {
    auto res = client.try_request("GET", "/readyz");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200u) << "n1, correctly configured and serving, was made unready by "
                                    "the refused n3: "
                                 << res->body << "\n"
                                 << views_text();
    http_client bad{http_port("n3"), 5s};
    auto bad_ready = bad.try_request("GET", "/readyz");
    ASSERT_TRUE(bad_ready);
    EXPECT_EQ(bad_ready->status, 503u) << bad_ready->body;
    if (HasFailure()) break;
    std::this_thread::sleep_for(milliseconds(100));
  }
  for (const auto& d : ids_owned_by("n1", "lone", "doc", 3)) {
    auto put = client.put(doc_target("lone", d), R"({"lone":true})");
    EXPECT_EQ(put.status, 201u) << d << ": " << put.body;
  }
}

// ===========================================================================
// 4. A partitioned (SIGSTOPped) member.
// ===========================================================================

// Verifies a SIGSTOPped member is reported down within the failure timeout, its shards get
// 503 shard_unavailable without hanging while the others keep working, and after SIGCONT
// it is up again with its data.
TEST_F(ClusterTest, StoppedMemberIsDownWithinTheFailureTimeoutAndComesBack) {
  start_cluster();
  if (HasFatalFailure()) return;
  const std::string victim = "n3";
  const std::vector<std::string> others{"n1", "n2"};
  const auto victim_docs = ids_owned_by(victim, "part", "pre", 4);
  const auto counter = ids_owned_by(victim, "counter", "ctr", 1).at(0);
  {
    http_client client{http_port("n1"), 5s};
    for (const auto& d : victim_docs)
      ASSERT_EQ(client.put(doc_target("part", d), R"({"pre":true})").status, 201u) << d;
    ASSERT_EQ(client.request("POST", increment_target(counter), R"({"by":1})", json_type).status,
              200u);
  }

  // A second counter gets one call in flight when its owner stops.
  const auto in_flight_counter = ids_owned_by(victim, "counter", "flight", 1).at(0);
  {
    http_client client{http_port("n2"), 5s};
    ASSERT_EQ(
      client.request("POST", increment_target(in_flight_counter), R"({"by":1})", json_type).status,
      200u);
  }

  const auto stopped_at = clock_type::now();
  ASSERT_EQ(::kill(node(victim).pid(), SIGSTOP), 0);
  resume_on_exit resume{node(victim).pid()};

  std::optional<http_response> in_flight_reply;
  milliseconds in_flight_took{};
  std::thread in_flight([&] {
    http_client client{http_port("n2"), 10s};
    auto start = clock_type::now();
    in_flight_reply =
      client.try_request("POST", increment_target(in_flight_counter), R"({"by":1})", json_type);
    in_flight_took = since(start);
  });

  // Meanwhile: one client keeps writing the victim's shards through n1, another the other
  // members' shards through n2.
  std::atomic<bool> stop{false};
  std::vector<sent_write> to_victim;
  std::vector<sent_write> to_others;
  std::thread victim_writer([&] {
    http_client client{http_port("n1"), 10s};
    for (int i = 0; !stop.load(); ++i) {
      sent_write s;
      s.id = ids_owned_by(victim, "part", "during-" + std::to_string(i), 1).at(0);
      s.body = R"({"during":)" + std::to_string(i) + "}";
      s.start = clock_type::now();
      s.res = client.try_request("PUT", doc_target("part", s.id), s.body, json_type, &s.error);
      s.elapsed = since(s.start);
      to_victim.push_back(std::move(s));
      std::this_thread::sleep_for(milliseconds(20));
    }
  });
  std::thread other_writer([&] {
    http_client client{http_port("n2"), 10s};
    for (int i = 0; !stop.load(); ++i) {
      sent_write s;
      s.id = ids_owned_by(others[static_cast<std::size_t>(i) % 2], "part",
                          "live-" + std::to_string(i), 1)
               .at(0);
      s.body = R"({"live":)" + std::to_string(i) + "}";
      s.start = clock_type::now();
      s.res = client.try_request("PUT", doc_target("part", s.id), s.body, json_type, &s.error);
      s.elapsed = since(s.start);
      to_others.push_back(std::move(s));
      std::this_thread::sleep_for(milliseconds(5));
    }
  });

  // Silence is noticed at the first heartbeat tick past the failure timeout.
  const auto detection_bound = request_bound + milliseconds(heartbeat_ms);
  std::map<std::string, milliseconds> detected;
  for (const auto& o : others) {
    auto left = detection_bound - since(stopped_at);
    if (wait_state(o, victim, "down", std::max(left, milliseconds(0))))
      detected[o] = since(stopped_at);
    else
      ADD_FAILURE() << o << " did not report " << victim << " down within "
                    << detection_bound.count() << " ms of SIGSTOP:\n"
                    << views_text();
  }
  const auto known_down_at = clock_type::now();
  // A request sent just before the detection still waits out its failure timeout; then a
  // second of requests that must be answered at once.
  std::this_thread::sleep_for(milliseconds(failure_timeout_ms) + 1s);
  stop = true;
  victim_writer.join();
  other_writer.join();
  in_flight.join();
  // The call sent to the stopped owner: unavailable, or out of budget; never a hang.
  ASSERT_TRUE(in_flight_reply) << "the in-flight actor call got no answer";
  std::printf("[ cluster  ] actor call in flight at SIGSTOP: %u %s after %lld ms\n",
              in_flight_reply->status, in_flight_reply->body.c_str(),
              static_cast<long long>(in_flight_took.count()));
  // Sent and never answered: its outcome is unknown. Either the owner was reported down
  // with it in flight (outcome_unknown, no Retry-After), or a budget ran out first:
  // call_timeout (the stub's) or outcome_unknown (the edge's own timer, of the same length).
  ASSERT_EQ(in_flight_reply->status, 504u) << in_flight_reply->body;
  auto code = in_flight_reply->error_code();
  if (code == "call_timeout")
    EXPECT_EQ(in_flight_reply->header("Retry-After"), "1");
  else
    EXPECT_TRUE(is_outcome_unknown(in_flight_reply));
  EXPECT_LE(in_flight_took, milliseconds(call_timeout_ms) + margin);
  for (const auto& [o, after] : detected)
    std::printf("[ cluster  ] %s reported %s down %lld ms after SIGSTOP\n", o.c_str(),
                victim.c_str(), static_cast<long long>(after.count()));
  std::fflush(stdout);
  for (const auto& o : others) {
    auto v = view(o);
    const auto* e = entry(v, victim);
    ASSERT_NE(e, nullptr);
    const auto* reason = e->if_contains("reason");
    EXPECT_TRUE(reason != nullptr && reason->is_string()
                && contains(reason->as_string(), "no heartbeat answer"))
      << json::serialize(*e);
  }

  std::size_t after_detection = 0;
  for (const auto& s : to_victim) {
    // Refused (503, never sent), or sent before the owner was known down and lost with it
    // (504 outcome_unknown); from the detection on, only refused.
    if (s.start >= known_down_at)
      EXPECT_TRUE(is_shard_unavailable(s.res)) << s.id << " " << s.error;
    else
      EXPECT_TRUE(is_shard_unavailable(s.res) || is_outcome_unknown(s.res))
        << s.id << " " << describe(s.res, s.error);
    EXPECT_LE(s.elapsed, request_bound) << s.id << " hung";
    if (s.start >= known_down_at) {
      ++after_detection;
      EXPECT_LT(s.elapsed, at_once) << s.id << ": the owner was known down";
    }
  }
  EXPECT_GT(after_detection, 5u);
  EXPECT_GT(to_others.size(), 50u);
  for (const auto& s : to_others) {
    EXPECT_TRUE(s.res && s.res->status == 201) << s.id << ": " << describe(s.res, s.error);
    EXPECT_LE(s.elapsed, request_bound) << s.id;
  }
  for (const auto& o : others) {
    http_client client{http_port(o), 5s};
    auto start = clock_type::now();
    EXPECT_TRUE(is_shard_unavailable(client.try_request("GET", doc_target("part", victim_docs[0]))))
      << "read via " << o;
    EXPECT_TRUE(is_shard_unavailable(
      client.try_request("POST", increment_target(counter), R"({"by":1})", json_type)))
      << "counter via " << o;
    EXPECT_LT(since(start), 2 * at_once) << o;
    auto ready = client.try_request("GET", "/readyz");
    ASSERT_TRUE(ready);
    EXPECT_EQ(ready->status, 200u) << o << " must stay ready: " << ready->body;
  }

  // SIGCONT: it answers again and everyone sees everyone up.
  ASSERT_EQ(::kill(node(victim).pid(), SIGCONT), 0);
  ASSERT_TRUE(wait_all_up(all_ids())) << "the member did not come back:\n" << views_text();
  for (const auto& o : others) {
    http_client client{http_port(o), 5s};
    for (const auto& d : victim_docs) {
      auto res = client.get(doc_target("part", d));
      EXPECT_EQ(res.status, 200u) << d << " via " << o << ": " << res.body;
      EXPECT_EQ(res.json(), json::parse(R"({"pre":true})"));
    }
    auto res =
      client.request("POST", "/v1/actors/counter/" + counter + "/method/get", "{}", json_type);
    EXPECT_EQ(res.status, 200u) << res.body;
    EXPECT_EQ(res.json(), json::parse(R"({"value":1})")) << "a 503 increment was applied";
  }
  {
    // The in-flight call may have been applied when the owner woke (its answer said so
    // only if it was a 504); either way exactly once or not at all.
    http_client client{http_port("n1"), 5s};
    auto res = client.request("POST", "/v1/actors/counter/" + in_flight_counter + "/method/get",
                              "{}", json_type);
    ASSERT_EQ(res.status, 200u) << res.body;
    auto value = res.json().at("value").to_number<std::int64_t>();
    EXPECT_TRUE(value == 1 || value == 2) << res.body;
    std::printf("[ cluster  ] the in-flight increment was %s\n",
                value == 2 ? "applied after SIGCONT" : "not applied");
  }
  // A refusal means nothing was written: no write answered 503 during the stop is applied
  // after SIGCONT. One answered 504 outcome_unknown may be; count them for the record.
  http_client client{http_port("n1"), 5s};
  std::size_t unknown = 0;
  std::size_t unknown_landed = 0;
  for (const auto& s : to_victim) {
    const bool landed = client.get(doc_target("part", s.id)).status == 200;
    if (is_outcome_unknown(s.res)) {
      ++unknown;
      if (landed) ++unknown_landed;
    } else {
      EXPECT_FALSE(landed) << s.id << " was answered 503 and then applied after SIGCONT";
    }
  }
  std::printf("[ cluster  ] %zu writes to the stopped member: %zu answered 504 outcome_unknown, "
              "%zu of those applied after SIGCONT\n",
              to_victim.size(), unknown, unknown_landed);
  std::fflush(stdout);
}

// Verifies what a member that stops answers for the requests it holds for an fsync (its
// disk stalls every fsync, SHOAL_TEST_FSYNC_STALL_MS): a read held behind an unsynced
// write gets 503 shutting_down (nothing changed, retry elsewhere), the write itself 504
// outcome_unknown (it may be kept), both through another member; the member exits cleanly.
TEST_F(ClusterTest, StoppingMemberAnswersReadsHeldForAnFsyncShuttingDown) {
  constexpr int stall_ms = 8000;
  // n2 gives up on n1 after the failure timeout: long enough here to see n1's own answer.
  const std::string patient = "cluster.failure_timeout_ms=" + std::to_string(stall_ms - 2000);
  ASSERT_TRUE(start("n1", {}, {"storage.sync=true", patient},
                    {"SHOAL_TEST_FSYNC_STALL_MS=" + std::to_string(stall_ms)}));
  ASSERT_TRUE(start("n2", {}, {patient}));
  ASSERT_TRUE(start("n3", {}, {patient}));
  ASSERT_TRUE(wait_all_up(all_ids())) << views_text();
  load_owners(view("n2"));
  EXPECT_TRUE(contains(node("n1").log(), "every fsync stalls 8000 ms")) << node("n1").log();
  const auto id = ids_owned_by("n1", "held", "doc", 1).at(0);
  const auto path = "/v1/collections/held/docs/" + id;

  // The write goes through n2 and waits in n1 for an fsync that takes stall_ms.
  std::optional<http_response> put_answer;
  clock_type::time_point put_answered;
  std::thread writer([&] {
    http_client client{http_port("n2"), milliseconds(stall_ms * 3)};
    put_answer = client.try_request("PUT", path, R"({"v":1})", json_type);
    put_answered = clock_type::now();
  });
  // Reads through n2 answer 404 until the write is applied in n1; from then on a read
  // waits for the write's fsync. One that has not answered after a second waits for it.
  std::optional<http_response> held_answer;
  clock_type::time_point held_answered;
  std::thread reader;
  const auto deadline = clock_type::now() + milliseconds(stall_ms / 2);
  bool held = false;
  while (!held && clock_type::now() < deadline) {
    auto answered = std::make_shared<std::atomic<bool>>(false);
    auto answer = std::make_shared<std::optional<http_response>>();
    std::thread t([&, answered, answer] {
      http_client client{http_port("n2"), milliseconds(stall_ms * 3)};
      *answer = client.try_request("GET", path);
      answered->store(true);
    });
    if (eventually(milliseconds(1000), [&] { return answered->load(); })) {
      t.join();
      ASSERT_TRUE(*answer && (*answer)->status == 404) << describe(*answer);
      continue;
    }
    held = true;
    reader = std::thread([t = std::move(t), answer, &held_answer, &held_answered]() mutable {
      t.join();
      held_answered = clock_type::now();
      held_answer = *answer;
    });
  }
  ASSERT_TRUE(held) << "no read was ever held behind the write";
  const auto stop_started = clock_type::now();
  EXPECT_EQ(node("n1").stop(SIGTERM), 0) << node("n1").log();
  reader.join();
  writer.join();
  // Both were answered as the member stopped, not after the fsync it waited for.
  EXPECT_LT(held_answered - stop_started, milliseconds(stall_ms / 2));
  EXPECT_LT(put_answered - stop_started, milliseconds(stall_ms / 2));
  ASSERT_TRUE(held_answer);
  EXPECT_EQ(held_answer->status, 503) << held_answer->body;
  EXPECT_EQ(held_answer->error_code(), "shutting_down") << held_answer->body;
  EXPECT_TRUE(is_outcome_unknown(put_answer));
}

// ===========================================================================
// 5. A member started before its peers.
// ===========================================================================

// Verifies a member started alone becomes ready once it tried its peers, serves its own
// shards, answers the others with 503 shard_unavailable at once, and sees the peers up when
// they start later, without a restart.
TEST_F(ClusterTest, MemberStartedBeforeItsPeersServesItsShardsAndJoinsThemLater) {
  ASSERT_TRUE(start("n1"));
  const auto pid = node("n1").pid();

  // Until the peers start: they are "connecting", never heard of; once n1 says ready,
  // each peer was tried (its reason is no longer "not connected yet").
  http_client client{http_port("n1"), 5s};
  bool ready = false;
  int samples = 0;
  const auto deadline = clock_type::now() + settle_timeout;
  while (!ready && clock_type::now() < deadline) {
    ++samples;
    auto v = view("n1");
    if (!v.is_object()) {
      // /v1/cluster answers 503 until the membership publishes its first view, which may
      // come a moment after the HTTP listener (CI's ASan run once sampled it first).
      std::this_thread::sleep_for(milliseconds(20));
      continue;
    }
    for (const auto* peer : {"n2", "n3"}) {
      const auto* e = entry(v, peer);
      ASSERT_NE(e, nullptr) << json::serialize(v);
      EXPECT_EQ(e->at("state"), json::value("connecting")) << json::serialize(*e);
      EXPECT_TRUE(e->at("last_heartbeat_ms").is_null()) << json::serialize(*e);
      if (v.at("ready") == json::value(true)) {
        const auto* reason = e->if_contains("reason");
        EXPECT_TRUE(reason != nullptr && *reason != json::value("not connected yet"))
          << "ready before " << peer << " was tried: " << json::serialize(v);
      }
    }
    auto res = client.try_request("GET", "/readyz");
    ASSERT_TRUE(res);
    ready = res->status == 200;
    if (!ready) {
      EXPECT_EQ(res->status, 503u) << res->body;
      std::this_thread::sleep_for(milliseconds(20));
    }
  }
  ASSERT_TRUE(ready) << "a member whose peers refuse connections never became ready:\n"
                     << views_text();
  load_owners(view("n1"));
  std::printf("[ cluster  ] alone, n1 was ready after %d samples\n", samples);

  // Its own shards work; the others are unavailable at once (the owners are known absent).
  const auto own = ids_owned_by("n1", "early", "own", 5);
  for (const auto& d : own) {
    auto put = client.put(doc_target("early", d), R"({"early":true})");
    EXPECT_EQ(put.status, 201u) << d << ": " << put.body;
    EXPECT_EQ(client.get(doc_target("early", d)).status, 200u) << d;
  }
  std::vector<std::string> absent_owned;
  for (const auto* peer : {"n2", "n3"})
    for (auto& d : ids_owned_by(peer, "early", "theirs", 3))
      absent_owned.push_back(std::move(d));
  for (const auto& d : absent_owned) {
    auto start = clock_type::now();
    EXPECT_TRUE(is_shard_unavailable(
      client.try_request("PUT", doc_target("early", d), R"({"x":1})", json_type)))
      << d << " (owner " << owner_of("early", d) << ")";
    EXPECT_LT(since(start), at_once) << d;
  }
  const auto own_counter = ids_owned_by("n1", "counter", "ctr", 1).at(0);
  const auto their_counter = ids_owned_by("n2", "counter", "ctr", 1).at(0);
  auto res = client.request("POST", increment_target(own_counter), R"({"by":1})", json_type);
  EXPECT_EQ(res.status, 200u) << res.body;
  EXPECT_TRUE(is_shard_unavailable(
    client.try_request("POST", increment_target(their_counter), R"({"by":1})", json_type)));

  // The peers start: everyone sees everyone up, and n1 was never restarted.
  ASSERT_TRUE(start("n2"));
  ASSERT_TRUE(start("n3"));
  ASSERT_TRUE(wait_all_up(all_ids())) << views_text();
  EXPECT_EQ(node("n1").pid(), pid);
  EXPECT_TRUE(node("n1").running());
  for (const auto& d : absent_owned) {
    auto put = client.put(doc_target("early", d), R"({"late":true})");
    EXPECT_EQ(put.status, 201u) << d << ": the 503 must not have written it; " << put.body;
  }
  for (const auto* id : {"n2", "n3"}) {
    http_client other{http_port(id), 5s};
    for (const auto& d : own) {
      auto get = other.get(doc_target("early", d));
      EXPECT_EQ(get.status, 200u) << d << " via " << id << ": " << get.body;
      EXPECT_EQ(get.json(), json::parse(R"({"early":true})"));
    }
    auto inc = other.request("POST", increment_target(their_counter), R"({"by":1})", json_type);
    EXPECT_EQ(inc.status, 200u) << inc.body;
  }
}

// ===========================================================================
// 6. The shipped haproxy configuration in front of the cluster.
// ===========================================================================

/// haproxy's path: the first "haproxy" on PATH, else /usr/sbin/haproxy; "" when neither.
std::string find_haproxy() {
  std::vector<std::string> dirs;
  if (const char* path = std::getenv("PATH"); path != nullptr) {
    std::string_view rest = path;
    while (!rest.empty()) {
      auto colon = rest.find(':');
      dirs.emplace_back(rest.substr(0, colon));
      if (colon == std::string_view::npos) break;
      rest.remove_prefix(colon + 1);
    }
  }
  dirs.emplace_back("/usr/sbin");
  for (const auto& d : dirs) {
    if (d.empty()) continue;
    auto candidate = fs::path(d) / "haproxy";
    if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
  }
  return {};
}

/// Document PUTs member `id` has answered: the sum of its shoal_http_requests_total
/// samples with method="PUT".
std::uint64_t document_puts(std::uint16_t port) {
  http_client client{port, 5s};
  auto res = client.try_request("GET", "/metrics");
  if (!res || res->status != 200) return 0;
  std::uint64_t total = 0;
  std::istringstream lines(res->body);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("shoal_http_requests_total{", 0) != 0 || !contains(line, "method=\"PUT\""))
      continue;
    total += std::strtoull(line.c_str() + line.rfind(' ') + 1, nullptr, 10);
  }
  return total;
}

/// Replaces every occurrence of `from` in `text`; returns how many there were.
std::size_t replace_all(std::string& text, const std::string& from, const std::string& to) {
  std::size_t count = 0;
  for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
    ++count;
  }
  return count;
}

// Verifies config/haproxy.cfg, pointed at the test's members, balances reads and writes over
// them, keeps serving the live shards after kill -9 of a member, answers the dead member's
// shards with 503 shard_unavailable without hanging, and its health check takes it out.
TEST_F(ClusterTest, HaproxyWithTheShippedConfigRoutesAroundADeadMember) {
  const auto haproxy = find_haproxy();
  // scripts/setup.sh installs haproxy: its absence is a broken set-up, not a reason to skip.
  ASSERT_FALSE(haproxy.empty()) << "haproxy is not installed (run scripts/setup.sh)";
  // SHOAL_HAPROXY_CFG tries another file against the same contract.
  const char* other = std::getenv("SHOAL_HAPROXY_CFG");
  const fs::path shipped = other != nullptr && *other != '\0'
                             ? fs::path(other)
                             : fs::path(SHOAL_SOURCE_DIR) / "config" / "haproxy.cfg";
  auto cfg = read_file(shipped);
  ASSERT_FALSE(cfg.empty()) << shipped << " is missing or empty";

  const auto lb_port = free_tcp_ports(1).at(0);
  EXPECT_GT(replace_all(cfg, "127.0.0.1:8080", "127.0.0.1:" + std::to_string(lb_port)), 0u)
    << "the frontend must bind 127.0.0.1:8080";
  for (std::size_t k = 0; k < members_.size(); ++k) {
    const auto from = "127.0.0.1:" + std::to_string(8081 + k);
    EXPECT_GT(replace_all(cfg, from, "127.0.0.1:" + std::to_string(members_[k].http_port)), 0u)
      << "backend " << members_[k].id << " must be at " << from;
  }
  ASSERT_FALSE(HasFailure()) << "config/haproxy.cfg does not match the contract:\n" << cfg;
  const auto cfg_path = dir_ / "haproxy.cfg";
  std::ofstream(cfg_path) << cfg;

  {
    process_options check;
    check.binary = haproxy;
    check.args = {"-c", "-f", cfg_path.string()};
    check.log_file = dir_ / "haproxy-check.log";
    shoal_process checker{std::move(check)};
    ASSERT_EQ(checker.wait_exit(10s), 0) << "haproxy -c rejects the config:\n" << checker.log();
  }

  start_cluster();
  if (HasFatalFailure()) return;

  process_options opts;
  opts.binary = haproxy;
  opts.args = {"-f", cfg_path.string(), "-db"};
  opts.log_file = dir_ / "haproxy.log";
  auto lb = std::make_unique<shoal_process>(std::move(opts));
  struct lb_stopper {
    std::unique_ptr<shoal_process>& p;
    ~lb_stopper() {
      if (p && p->running()) p->stop(SIGTERM, 10s);
    }
  } stop_lb{lb};
  http_client client{lb_port, 10s};
  ASSERT_TRUE(eventually(10s,
                         [&] {
                           auto res = client.try_request("GET", "/readyz");
                           return res && res->status == 200;
                         }))
    << "haproxy did not accept; its log:\n"
    << lb->log();

  // Writes and reads of many keys through haproxy, all of them served.
  const std::string victim = "n3";
  std::vector<std::string> keys;
  for (int i = 0; i < 150; ++i)
    keys.push_back("k" + std::to_string(i));
  std::set<std::string> owners_seen;
  for (const auto& k : keys) {
    owners_seen.insert(owner_of("lb", k));
    auto put = client.try_request("PUT", doc_target("lb", k), R"({"k":")" + k + R"("})", json_type);
    ASSERT_TRUE(put && put->status == 201) << k << ": " << describe(put);
  }
  EXPECT_EQ(owners_seen.size(), 3u);
  for (const auto& k : keys) {
    auto get = client.try_request("GET", doc_target("lb", k));
    ASSERT_TRUE(get && get->status == 200) << k << ": " << describe(get);
    EXPECT_EQ(get->json(), json::parse(R"({"k":")" + k + R"("})"));
  }
  // Every member took its share of the writes (haproxy reached all three backends).
  for (const auto& id : all_ids()) {
    auto puts = document_puts(http_port(id));
    EXPECT_GT(puts, 0u) << id << " got none of the writes sent through haproxy";
    std::printf("[ cluster  ] %s received %llu of the %zu writes\n", id.c_str(),
                static_cast<unsigned long long>(puts), keys.size());
  }

  // Requests that wait on purpose outlast the 7 s server timeout of the other routes: a
  // job lease that waits 8 s gets its 200 (no job came), and a change stream quiet for
  // 8.5 s still delivers the next write (before, HAProxy cut both with its HTML 504).
  {
    std::optional<http_response> lease;
    std::thread poll([&] {
      http_client waiting{lb_port, 20s};
      lease = waiting.try_request("POST", "/v1/queues/lbq/lease", R"({"wait_ms":8000})", json_type);
    });
    feed_client feed{lb_port, "/v1/collections/lbfeed/changes"};
    const bool head = feed.read_head();
    std::this_thread::sleep_for(8500ms);
    auto put = client.try_request("PUT", doc_target("lbfeed", "x"), R"({"a":1})", json_type);
    auto event = head ? feed.next(5s) : std::nullopt;
    poll.join();
    ASSERT_TRUE(head) << "the change stream did not start through haproxy";
    ASSERT_TRUE(put && put->status == 201) << describe(put);
    ASSERT_TRUE(lease) << "the lease got no answer through haproxy";
    EXPECT_EQ(lease->status, 200u) << lease->body;
    ASSERT_TRUE(event) << "a change stream quiet for 8.5 s was cut by haproxy";
    EXPECT_EQ(event->type, "put");
  }
  // kill -9 one member: haproxy's health check takes it out, and meanwhile and afterwards
  // the live shards are served and the dead one's get 503 shard_unavailable, never a hang.
  node(victim).kill9();
  const auto killed_at = clock_type::now();
  const std::string down_line = "/" + victim + " is DOWN";
  std::size_t live = 0;
  std::size_t dead = 0;
  std::vector<std::string> bad;
  std::optional<milliseconds> taken_out;
  std::size_t after_out = 0;
  for (int round = 0; clock_type::now() - killed_at < 60s; ++round) {
    if (!taken_out && contains(lb->log(), down_line)) taken_out = since(killed_at);
    for (const auto& k : keys) {
      const bool victims = owner_of("lb", k) == victim;
      auto start = clock_type::now();
      std::string error;
      auto res =
        round % 2 == 0
          ? client.try_request("GET", doc_target("lb", k), {}, {}, &error)
          : client.try_request("PUT", doc_target("lb", k),
                               R"({"k":")" + k + R"(","round":)" + std::to_string(round) + "}",
                               json_type, &error);
      auto took = since(start);
      if (took > request_bound) bad.push_back(k + " took " + std::to_string(took.count()) + " ms");
      if (victims) {
        ++dead;
        if (auto r = is_shard_unavailable(res); !r)
          bad.push_back(k + " (dead owner): " + r.message() + " " + error);
      } else {
        ++live;
        if (!res || res->status != 200)
          bad.push_back(k + " (live owner " + owner_of("lb", k) + "): " + describe(res, error));
      }
      if (taken_out) ++after_out;
    }
    if (taken_out && after_out >= 2 * keys.size()) break;
  }
  if (taken_out)
    std::printf("[ cluster  ] haproxy took %s out %lld ms after the kill\n", victim.c_str(),
                static_cast<long long>(taken_out->count()));
  std::fflush(stdout);
  EXPECT_TRUE(taken_out) << "haproxy's health check never took " << victim << " out; its log:\n"
                         << lb->log();
  EXPECT_GT(live, 0u);
  EXPECT_GT(dead, 0u);
  EXPECT_TRUE(bad.empty()) << bad.size() << " bad answers through haproxy (of " << live + dead
                           << "); first: " << bad.front()
                           << (bad.size() > 1 ? "; last: " + bad.back() : std::string{});
  for (const auto* live_member : {"/n1 is DOWN", "/n2 is DOWN"})
    EXPECT_FALSE(contains(lb->log(), live_member)) << "haproxy took a live member out";

  // Restarted, the member passes the health check again and is put back.
  ASSERT_TRUE(start(victim));
  const std::string up_line = "/" + victim + " is UP";
  EXPECT_TRUE(eventually(settle_timeout, [&] { return contains(lb->log(), up_line); }))
    << "haproxy never put " << victim << " back; its log:\n"
    << lb->log();
  ASSERT_TRUE(wait_all_up(all_ids())) << views_text();
  for (const auto& k : keys) {
    auto get = client.try_request("GET", doc_target("lb", k));
    EXPECT_TRUE(get && get->status == 200) << k << ": " << describe(get);
  }

  // With every member gone, HAProxy answers by itself: 503, in Shoal's JSON error shape
  // with Retry-After, not its HTML page.
  for (const auto& id : all_ids())
    node(id).kill9();
  EXPECT_TRUE(eventually(settle_timeout,
                         [&] {
                           auto res = client.try_request("GET", doc_target("lb", "k1"));
                           return res && res->status == 503
                                  && res->header("Content-Type") == "application/json";
                         }))
    << "haproxy's own 503 is not JSON; its log:\n"
    << lb->log();
  auto none = client.try_request("GET", doc_target("lb", "k1"));
  ASSERT_TRUE(none);
  EXPECT_EQ(none->error_code(), "shard_unavailable") << none->body;
  EXPECT_TRUE(none->header("Retry-After")) << none->body;
  if (HasFailure()) std::fprintf(stderr, "--- haproxy ---\n%s\n", lb->log().c_str());
}

} // namespace
} // namespace shoal::test
