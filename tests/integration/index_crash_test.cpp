// SPDX-License-Identifier: Apache-2.0
// Crash tests of secondary indexes: a node is killed with SIGKILL while an index is being
// built over existing documents, and while writers change the indexed field, several
// times per storage.sync mode. After every restart the index must give exactly the
// answer of a full scan (docs/queries.md, "Guarantees"): every document carries its
// indexed value twice, in "g" (indexed) and "g2" (never indexed), so a query on "g" reads
// the index and the same query on "g2" with allow_scan reads every document; the two
// answers must be identical, id for id and version for version.
//
// The random delays come from std::mt19937 seeded from the clock; the seed is printed.
// Set SHOAL_CRASH_SEED=<seed> to replay a run's delays.

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "tests/support/http_client.hpp"
#include "tests/support/shoal_process.hpp"
#include "tests/support/temp_dir.hpp"

namespace shoal::test {
namespace {

namespace json = boost::json;
using std::chrono::milliseconds;

constexpr int seed_docs = 4000;
constexpr int values = 8; ///< g takes the values 0..7, or is missing, or is a string
constexpr int writers = 4;
const header_list json_type{{"Content-Type", "application/json"}};
const std::string collection = "/v1/collections/items";

std::uint32_t pick_seed() {
  if (const char* s = std::getenv("SHOAL_CRASH_SEED"); s != nullptr && *s != '\0')
    return static_cast<std::uint32_t>(std::strtoul(s, nullptr, 10));
  return static_cast<std::uint32_t>(std::chrono::system_clock::now().time_since_epoch().count());
}

/// A document whose indexed field "g" and unindexed twin "g2" hold the same value:
/// a number for most, a string or nothing for some (which the index must handle too).
std::string doc_body(int id, int round, int g) {
  std::string value = g < values ? std::to_string(g) : g == values ? "\"s\"" : "";
  std::string body = R"({"i":)" + std::to_string(id) + R"(,"r":)" + std::to_string(round);
  if (!value.empty()) body += R"(,"g":)" + value + R"(,"g2":)" + value;
  return body + "}";
}

/// Every (id → version) a query answers, following its cursors to the end.
std::map<std::string, std::int64_t> query_all(http_client& client, const std::string& where,
                                              bool allow_scan) {
  std::map<std::string, std::int64_t> out;
  json::value cursor = nullptr;
  for (int page = 0; page < 1000; ++page) {
    json::object body;
    body["where"] = json::parse(where);
    body["limit"] = 1000;
    body["cursor"] = cursor;
    if (allow_scan) body["allow_scan"] = true;
    auto res = client.request("POST", collection + "/query", json::serialize(body), json_type);
    if (res.status != 200) {
      ADD_FAILURE() << "query " << where << " -> " << res.status << " " << res.body;
      return out;
    }
    auto v = res.json();
    for (const auto& d : v.at("docs").as_array()) {
      auto id = std::string(d.at("id").as_string());
      EXPECT_TRUE(out.emplace(id, d.at("version").to_number<std::int64_t>()).second)
        << "duplicate " << id << " in " << where;
    }
    cursor = v.at("next_cursor");
    if (cursor.is_null()) return out;
  }
  ADD_FAILURE() << "query " << where << " did not end";
  return out;
}

/// Waits (bounded) for the index on g to be ready; false when it is not.
bool wait_ready(http_client& client) {
  for (int i = 0; i < 600; ++i) {
    auto res = client.request("GET", collection + "/indexes/g");
    if (res.status == 200 && res.json().at("state") == "ready") return true;
    std::this_thread::sleep_for(milliseconds(50));
  }
  return false;
}

/// The index on g answers exactly what a full scan on g2 does, for every kind of condition.
void expect_consistent(std::uint16_t port, const std::string& when) {
  http_client client{port, 30s};
  ASSERT_TRUE(wait_ready(client)) << when << ": the index did not become ready";
  std::size_t indexed = 0;
  const std::vector<std::pair<std::string, std::string>> conditions = {
    {R"({"g": 0})", R"({"g2": 0})"},
    {R"({"g": 5})", R"({"g2": 5})"},
    {R"({"g": "s"})", R"({"g2": "s"})"},
    {R"({"g": {"$in": [1, 3, 7]}})", R"({"g2": {"$in": [1, 3, 7]}})"},
    {R"({"g": {"$gte": 2, "$lt": 6}})", R"({"g2": {"$gte": 2, "$lt": 6}})"},
    {R"({"g": {"$gt": 6}})", R"({"g2": {"$gt": 6}})"},
  };
  for (const auto& [on_index, on_scan] : conditions) {
    auto from_index = query_all(client, on_index, false);
    auto from_scan = query_all(client, on_scan, true);
    EXPECT_EQ(from_index, from_scan)
      << when << ": " << on_index << " (index, " << from_index.size() << " docs) vs " << on_scan
      << " (scan, " << from_scan.size() << " docs)";
    indexed += from_index.size();
  }
  EXPECT_GT(indexed, 0u) << when;
}

/// PUTs, PATCHes and DELETEs of random documents, changing "g", until the node dies.
void run_writer(std::uint16_t port, int w, std::uint32_t seed, std::atomic<bool>& stop) {
  http_client client{port, 2s};
  std::mt19937 rng(seed + static_cast<std::uint32_t>(w));
  for (int n = 0; !stop.load(std::memory_order_relaxed); ++n) {
    const int id = static_cast<int>(rng() % (seed_docs + 500)); // some new documents too
    const int g = static_cast<int>(rng() % (values + 2));
    const auto target = collection + "/docs/d" + std::to_string(id);
    std::optional<http_response> res;
    switch (rng() % 4) {
    case 0:
      res = client.try_request("DELETE", target);
      break;
    case 1: {
      std::string value = g < values ? std::to_string(g) : g == values ? "\"s\"" : "null";
      res = client.try_request("PATCH", target, R"({"g":)" + value + R"(,"g2":)" + value + "}",
                               {{"Content-Type", "application/merge-patch+json"}});
      break;
    }
    default:
      res = client.try_request("PUT", target, doc_body(id, n, g), json_type);
    }
    if (!res) return; // the node was killed
  }
}

void seed(std::uint16_t port) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([port, t] {
      http_client client{port, 10s};
      for (int id = t; id < seed_docs; id += 4) {
        auto res = client.request("PUT", collection + "/docs/d" + std::to_string(id),
                                  doc_body(id, 0, id % (values + 2)), json_type);
        ASSERT_EQ(res.status, 201) << res.body;
      }
    });
  }
  for (auto& t : threads)
    t.join();
}

void run_cycles(bool sync, int cycles) {
  const auto seed_value = pick_seed();
  std::printf("[ seed ] SHOAL_CRASH_SEED=%u\n", seed_value);
  std::mt19937 rng(seed_value);
  temp_dir dir{"shoal-index-crash"};
  // Four shards and tiny build steps: a build takes thousands of steps (about a second),
  // so a kill soon after the PUT lands in one.
  const std::vector<std::string> sets = {"cluster.shards=4", "query.index_build_batch=1",
                                         std::string("storage.sync=") + (sync ? "true" : "false"),
                                         "log.access_log=false"};
  auto node = start_node(dir / "data", dir / "node-0.log", sets);
  seed(node->port());
  int killed_building = 0;
  for (int cycle = 1; cycle <= cycles; ++cycle) {
    const auto when = std::string(sync ? "sync" : "nosync") + " cycle " + std::to_string(cycle);
    // Odd cycles: kill during a build (drop the index, create it again, kill soon after).
    // Even cycles: kill while writers change the indexed field.
    {
      http_client client{node->port(), 10s};
      if (cycle % 2 == 1) {
        auto dropped = client.request("DELETE", collection + "/indexes/g");
        ASSERT_TRUE(dropped.status == 204 || dropped.status == 404) << dropped.body;
        auto created = client.request("PUT", collection + "/indexes/g");
        ASSERT_EQ(created.status, 201) << created.body;
        std::this_thread::sleep_for(std::chrono::microseconds(rng() % 3000));
        auto progress = client.request("GET", collection + "/indexes/g");
        node->kill9();
        std::printf("[ kill ] %s during the build: %s\n", when.c_str(), progress.body.c_str());
        if (progress.status == 200 && progress.json().at("state") == "building") ++killed_building;
      } else {
        std::atomic<bool> stop{false};
        std::vector<std::thread> threads;
        for (int w = 0; w < writers; ++w)
          threads.emplace_back(run_writer, node->port(), w, seed_value + cycle, std::ref(stop));
        std::this_thread::sleep_for(milliseconds(300 + rng() % 700));
        node->kill9();
        stop = true;
        for (auto& t : threads)
          t.join();
        std::printf("[ kill ] %s during writes\n", when.c_str());
      }
    }
    node = start_node(dir / "data", dir / ("node-" + std::to_string(cycle) + ".log"), sets);
    expect_consistent(node->port(), when);
    if (::testing::Test::HasFailure()) return;
  }
  // The build cycles are only worth their name if the kill found a build under way.
  EXPECT_GT(killed_building, 0) << "every build was over before its kill";
  EXPECT_EQ(node->stop(SIGTERM), 0);
}

TEST(IndexCrashTest, IndexAgreesWithAFullScanAfterKillsWithSyncOff) {
  run_cycles(false, 6);
}

TEST(IndexCrashTest, IndexAgreesWithAFullScanAfterKillsWithSyncOn) {
  run_cycles(true, 3);
}

} // namespace
} // namespace shoal::test
