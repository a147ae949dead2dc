// SPDX-License-Identifier: Apache-2.0
// Crash tests: writers hammer a node over keep-alive connections, the node is killed with
// SIGKILL at a random moment, and after a restart on the same data directory every
// write that was acknowledged (201/200) must be there. Run for both storage.sync modes:
// a killed process loses nothing the kernel already has, so even sync=false must not
// lose an acknowledged write here (it may on power loss, which this cannot simulate).
//
// The random delays come from std::mt19937 seeded from the clock; the seed is printed.
// Set SHOAL_CRASH_SEED=<seed> to replay a run's delays.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
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

constexpr int cycles = 5;
constexpr int writers = 16;
constexpr int verifiers = 8;
constexpr int hot_every = 4; ///< every 4th write of a writer also overwrites its hot key

std::string target(std::string_view id) {
  return "/v1/collections/crash/docs/" + std::string(id);
}

std::string hot_id(int writer) {
  return "hot-w" + std::to_string(writer);
}

/// The version in an ETag "N", or 0.
std::uint64_t etag_version(const http_response& res) {
  auto tag = res.header("ETag");
  if (!tag || tag->size() < 3) return 0;
  return std::strtoull(tag->c_str() + 1, nullptr, 10);
}

/// What one writer had acknowledged when its node died.
struct writer_log {
  std::vector<std::pair<std::string, std::string>> write_once; ///< target, body
  std::uint64_t hot_version = 0;                               ///< highest acknowledged
  std::string hot_body;                                        ///< body of that version
  std::size_t acknowledged = 0;
  std::size_t unexpected = 0; ///< answers other than 200/201
  std::string unexpected_example;
};

/// Everything acknowledged so far, over all cycles.
struct ledger {
  std::map<std::string, std::string> write_once; ///< target -> exact body
  std::vector<std::uint64_t> hot_version = std::vector<std::uint64_t>(writers, 0);
  std::vector<std::string> hot_body = std::vector<std::string>(writers);
};

/// Writes until the connection fails (the node was killed) or `stop` is set.
void run_writer(std::uint16_t port, int cycle, int w, const std::atomic<bool>& stop,
                writer_log& out) {
  http_client client{port, 2s};
  const header_list json_type{{"Content-Type", "application/json"}};
  const std::string pad(96, 'p');
  std::uint64_t hot_count = 0;
  for (int i = 0; !stop.load(std::memory_order_relaxed); ++i) {
    auto id = "c" + std::to_string(cycle) + "-w" + std::to_string(w) + "-i" + std::to_string(i);
    auto body = R"({"c":)" + std::to_string(cycle) + R"(,"w":)" + std::to_string(w) + R"(,"i":)"
                + std::to_string(i) + R"(,"pad":")" + pad + R"("})";
    auto res = client.try_request("PUT", target(id), body, json_type);
    if (!res) return;
    if (res->status == 201) {
      out.write_once.emplace_back(target(id), std::move(body));
      ++out.acknowledged;
    } else {
      ++out.unexpected;
      out.unexpected_example = std::to_string(res->status) + " " + res->body;
    }
    if (i % hot_every != 0) continue;
    auto hot_body = R"({"w":)" + std::to_string(w) + R"(,"n":)" + std::to_string(++hot_count)
                    + R"(,"c":)" + std::to_string(cycle) + "}";
    res = client.try_request("PUT", target(hot_id(w)), hot_body, json_type);
    if (!res) return;
    if (res->status == 200 || res->status == 201) {
      auto version = etag_version(*res);
      if (version > out.hot_version) {
        out.hot_version = version;
        out.hot_body = std::move(hot_body);
      }
      ++out.acknowledged;
    } else {
      ++out.unexpected;
      out.unexpected_example = std::to_string(res->status) + " " + res->body;
    }
  }
}

/// Counts acknowledged writes missing from the node on `port`; prints the first few.
std::size_t count_lost(std::uint16_t port, const ledger& acked) {
  std::vector<const std::pair<const std::string, std::string>*> docs;
  docs.reserve(acked.write_once.size());
  for (const auto& entry : acked.write_once)
    docs.push_back(&entry);
  std::atomic<std::size_t> lost{0};
  std::atomic<int> reported{0};
  auto report = [&](const std::string& what) {
    if (reported.fetch_add(1) < 10) ADD_FAILURE() << "lost: " << what;
  };
  std::vector<std::thread> threads;
  for (int v = 0; v < verifiers; ++v) {
    threads.emplace_back([&, v] {
      http_client client{port, 5s};
      for (std::size_t k = static_cast<std::size_t>(v); k < docs.size(); k += verifiers) {
        const auto& [t, body] = *docs[k];
        std::string error;
        auto res = client.try_request("GET", t, {}, {}, &error);
        if (!res) {
          ++lost;
          report(t + " (" + error + ")");
        } else if (res->status != 200 || etag_version(*res) != 1
                   || res->json() != json::parse(body)) {
          ++lost;
          report(t + " -> " + std::to_string(res->status) + " " + res->body);
        }
      }
    });
  }
  for (auto& t : threads)
    t.join();
  http_client client{port, 5s};
  for (int w = 0; w < writers; ++w) {
    auto wanted = acked.hot_version[static_cast<std::size_t>(w)];
    if (wanted == 0) continue;
    auto res = client.try_request("GET", target(hot_id(w)));
    auto version = res ? etag_version(*res) : 0;
    if (!res || res->status != 200 || version < wanted
        || (version == wanted
            && res->json() != json::parse(acked.hot_body[static_cast<std::size_t>(w)]))) {
      ++lost;
      report(hot_id(w) + ": acknowledged version " + std::to_string(wanted) + ", found "
             + (res ? std::to_string(res->status) + " version " + std::to_string(version) + " "
                        + res->body
                    : std::string{"no answer"}));
    }
  }
  return lost.load();
}

std::uint32_t pick_seed() {
  if (const char* s = std::getenv("SHOAL_CRASH_SEED"); s != nullptr && *s != '\0')
    return static_cast<std::uint32_t>(std::strtoul(s, nullptr, 10));
  return static_cast<std::uint32_t>(std::chrono::system_clock::now().time_since_epoch().count());
}

/// Five cycles of write load, kill -9 and restart with `storage.sync=<sync>`.
void run_crash_cycles(bool sync) {
  const auto seed = pick_seed();
  std::printf("[ crash    ] storage.sync=%s seed=%u (SHOAL_CRASH_SEED=%u replays it)\n",
              sync ? "true" : "false", seed, seed);
  std::mt19937 rng{seed};
  std::uniform_int_distribution<int> delay_ms{100, 600};
  temp_dir dir{"shoal-crash"};
  const std::vector<std::string> sets{std::string("storage.sync=") + (sync ? "true" : "false")};
  ledger acked;

  auto node = start_node(dir / "data", dir / "cycle-0.log", sets);
  for (int cycle = 0; cycle < cycles; ++cycle) {
    auto cycle_start = std::chrono::steady_clock::now();
    std::atomic<bool> stop{false};
    std::vector<writer_log> logs(writers);
    std::vector<std::thread> threads;
    for (int w = 0; w < writers; ++w)
      threads.emplace_back(run_writer, node->port(), cycle, w, std::cref(stop),
                           std::ref(logs[static_cast<std::size_t>(w)]));
    auto delay = std::chrono::milliseconds(delay_ms(rng));
    std::this_thread::sleep_for(delay);
    node->kill9();
    stop = true;
    for (auto& t : threads)
      t.join();
    ASSERT_EQ(node->exit_status(), std::optional<int>(128 + SIGKILL))
      << "the node had exited before the kill; log:\n"
      << node->log();

    std::size_t acknowledged = 0;
    std::size_t unexpected = 0;
    for (int w = 0; w < writers; ++w) {
      auto& log = logs[static_cast<std::size_t>(w)];
      acknowledged += log.acknowledged;
      unexpected += log.unexpected;
      if (log.unexpected > 0)
        ADD_FAILURE() << "writer " << w << " got an unexpected answer: " << log.unexpected_example;
      for (auto& [t, body] : log.write_once)
        acked.write_once.emplace(std::move(t), std::move(body));
      auto& hot = acked.hot_version[static_cast<std::size_t>(w)];
      if (log.hot_version > hot) {
        hot = log.hot_version;
        acked.hot_body[static_cast<std::size_t>(w)] = std::move(log.hot_body);
      }
    }

    node = start_node(dir / "data", dir / ("cycle-" + std::to_string(cycle + 1) + ".log"), sets);
    auto lost = count_lost(node->port(), acked);
    auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - cycle_start);
    std::printf("[ crash    ] sync=%s cycle %d: killed after %d ms, acknowledged %zu writes "
                "(%zu documents in total), unexpected answers %zu, lost %zu, %.1f s\n",
                sync ? "true" : "false", cycle + 1, static_cast<int>(delay.count()), acknowledged,
                acked.write_once.size(), unexpected, lost, seconds.count());
    std::fflush(stdout);
    EXPECT_GT(acknowledged, 0u) << "no write was acknowledged before the kill";
    EXPECT_EQ(lost, 0u) << "cycle " << cycle + 1 << " (seed " << seed << ")";
    if (::testing::Test::HasFatalFailure() || lost > 0) break;
  }
  EXPECT_EQ(node->stop(SIGTERM), 0) << node->log();
}

// Verifies 5 rounds of kill -9 under write load with storage.sync=false lose no acknowledged write.
TEST(CrashTest, Kill9WithSyncOffLosesNoAcknowledgedWrite) {
  run_crash_cycles(false);
}

// Verifies 5 rounds of kill -9 under write load with storage.sync=true lose no acknowledged write.
TEST(CrashTest, Kill9WithSyncOnLosesNoAcknowledgedWrite) {
  run_crash_cycles(true);
}

// Verifies kill -9 while a fresh data directory is being created leaves one a restart can open.
TEST(CrashTest, Kill9DuringFirstStartLeavesAStartableDirectory) {
  const auto seed = pick_seed();
  std::printf("[ crash    ] first-start kills, seed=%u (SHOAL_CRASH_SEED=%u replays it)\n", seed,
              seed);
  std::mt19937 rng{seed};
  // Start-up (creating the column families of 64 shards) takes about a second here.
  std::uniform_int_distribution<int> delay_ms{0, 1000};
  for (int round = 1; round <= cycles; ++round) {
    temp_dir dir{"shoal-crash-start"};
    process_options opts;
    opts.args = serve_args(dir / "data");
    opts.log_file = dir / "first.log";
    auto delay = std::chrono::milliseconds(delay_ms(rng));
    bool listened = false;
    {
      shoal_process first{std::move(opts)};
      std::this_thread::sleep_for(delay);
      listened = first.log().find("listening on") != std::string::npos;
      first.kill9();
    }
    std::unique_ptr<shoal_process> node;
    try {
      node = start_node(dir / "data", dir / "second.log");
    } catch (const std::exception& e) {
      ADD_FAILURE() << "round " << round << ": killed after " << delay.count()
                    << " ms, the restart failed (seed " << seed << "):\n"
                    << e.what();
      continue;
    }
    http_client client{node->port(), 5s};
    auto res = client.try_request("PUT", target("after-crash"), R"({"ok":true})",
                                  {{"Content-Type", "application/json"}});
    EXPECT_TRUE(res && res->status == 201) << "round " << round;
    client.close();
    EXPECT_EQ(node->stop(SIGTERM), 0) << node->log();
    std::printf("[ crash    ] first start killed after %d ms (%s): restart ok\n",
                static_cast<int>(delay.count()), listened ? "was listening" : "still starting");
    std::fflush(stdout);
  }
}

} // namespace
} // namespace shoal::test
