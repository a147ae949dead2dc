// SPDX-License-Identifier: Apache-2.0
// Crash tests of virtual actors: client threads increment counters over keep-alive
// connections, the node is killed with SIGKILL at a random moment, and after a restart on
// the same data directory every acknowledged increment must be there (write-then-reply).
//
// Each client thread owns a few counters that only it increments, one call at a time, so
// after the crash each of them holds exactly what the thread saw acknowledged, or one more
// when the thread's last call was applied but its reply was lost to the kill (and at most
// one of the thread's counters can be in that state). All threads also increment one
// shared counter: it must hold at least every acknowledged increment and at most every
// sent one. Run for both storage.sync modes: a killed process loses nothing the kernel
// already has, so even sync=false must not lose an acknowledged increment here.
//
// The random delays come from std::mt19937 seeded from the clock; the seed is printed.
// Set SHOAL_CRASH_SEED=<seed> to replay a run's delays.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
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

constexpr int cycles = 3;
constexpr int clients = 8;
constexpr int own_counters = 4; ///< counters each client thread increments alone
constexpr int shared_every = 2; ///< every 2nd call of a client also increments the shared one

const header_list json_type{{"Content-Type", "application/json"}};

std::string target(const std::string& id, std::string_view method) {
  return "/v1/actors/counter/" + id + "/method/" + std::string(method);
}

std::string own_id(int client, int k) {
  return "own-c" + std::to_string(client) + "-k" + std::to_string(k);
}

const std::string shared_id = "shared";

/// `"value"` of a counter reply, or nullopt.
std::optional<std::int64_t> value_of(const http_response& res) {
  if (res.status != 200) return std::nullopt;
  auto v = res.json();
  const auto* o = v.if_object();
  const auto* n = o ? o->if_contains("value") : nullptr;
  if (!n || !n->is_int64()) return std::nullopt;
  return n->get_int64();
}

/// What one client thread did in one cycle.
struct client_log {
  std::vector<std::int64_t> sent = std::vector<std::int64_t>(own_counters, 0);
  std::vector<std::int64_t> acked = std::vector<std::int64_t>(own_counters, 0);
  std::vector<std::int64_t> highest = std::vector<std::int64_t>(own_counters, 0);
  std::int64_t shared_sent = 0;
  std::int64_t shared_acked = 0;
  std::int64_t shared_highest = 0;
  std::size_t unexpected = 0;  ///< answers other than 200 {"value": n}
  std::size_t out_of_step = 0; ///< own-counter values other than base + acknowledged
  std::string example;
};

/// Increments until the connection fails (the node was killed) or `stop` is set. Every
/// call is counted as sent before it goes out and as acknowledged when its 200 arrives.
void run_client(std::uint16_t port, int c, const std::vector<std::int64_t>& base,
                const std::atomic<bool>& stop, client_log& out) {
  http_client client{port, 5s};
  auto note = [&](const http_response& res) {
    ++out.unexpected;
    out.example = std::to_string(res.status) + " " + res.body;
  };
  for (int i = 0; !stop.load(std::memory_order_relaxed); ++i) {
    auto k = static_cast<std::size_t>(i % own_counters);
    ++out.sent[k];
    auto res = client.try_request("POST", target(own_id(c, static_cast<int>(k)), "increment"),
                                  R"({"by":1})", json_type);
    if (!res) return;
    if (auto v = value_of(*res)) {
      ++out.acked[k];
      out.highest[k] = std::max(out.highest[k], *v);
      if (*v != base[k] + out.acked[k]) {
        ++out.out_of_step;
        out.example = own_id(c, static_cast<int>(k)) + " answered " + std::to_string(*v)
                      + ", expected " + std::to_string(base[k] + out.acked[k]);
      }
    } else {
      note(*res);
    }
    if (i % shared_every != 0) continue;
    ++out.shared_sent;
    res = client.try_request("POST", target(shared_id, "increment"), R"({"by":1})", json_type);
    if (!res) return;
    if (auto v = value_of(*res)) {
      ++out.shared_acked;
      out.shared_highest = std::max(out.shared_highest, *v);
    } else {
      note(*res);
    }
  }
}

/// The value of every counter: [client][k], then the shared one. Nullopt entries (and a
/// gtest failure) where `get` did not answer 200.
struct snapshot {
  std::vector<std::vector<std::optional<std::int64_t>>> own;
  std::optional<std::int64_t> shared;
};

snapshot read_all(std::uint16_t port) {
  snapshot s;
  s.own.assign(clients, std::vector<std::optional<std::int64_t>>(own_counters));
  http_client client{port, 5s};
  auto get = [&](const std::string& id) -> std::optional<std::int64_t> {
    std::string error;
    auto res = client.try_request("POST", target(id, "get"), {}, {}, &error);
    if (!res) {
      ADD_FAILURE() << "get " << id << ": no answer (" << error << ")";
      return std::nullopt;
    }
    auto v = value_of(*res);
    if (!v) ADD_FAILURE() << "get " << id << ": " << res->status << " " << res->body;
    return v;
  };
  for (int c = 0; c < clients; ++c)
    for (int k = 0; k < own_counters; ++k)
      s.own[static_cast<std::size_t>(c)][static_cast<std::size_t>(k)] = get(own_id(c, k));
  s.shared = get(shared_id);
  return s;
}

std::uint32_t pick_seed() {
  if (const char* s = std::getenv("SHOAL_CRASH_SEED"); s != nullptr && *s != '\0')
    return static_cast<std::uint32_t>(std::strtoul(s, nullptr, 10));
  return static_cast<std::uint32_t>(std::chrono::system_clock::now().time_since_epoch().count());
}

/// Three cycles of increments, kill -9 and restart with `storage.sync=<sync>`.
void run_crash_cycles(bool sync) {
  const auto seed = pick_seed();
  std::printf("[ crash    ] actors, storage.sync=%s seed=%u (SHOAL_CRASH_SEED=%u replays it)\n",
              sync ? "true" : "false", seed, seed);
  std::fflush(stdout);
  std::mt19937 rng{seed};
  std::uniform_int_distribution<int> delay_ms{100, 600};
  temp_dir dir{"shoal-actor-crash"};
  const std::vector<std::string> sets{std::string("storage.sync=") + (sync ? "true" : "false")};

  // The values known before a cycle's load: all 0 on a fresh directory, afterwards what
  // the restarted node reported (already checked against the previous cycle).
  std::vector<std::vector<std::int64_t>> base(clients, std::vector<std::int64_t>(own_counters, 0));
  std::int64_t shared_base = 0;

  auto node = start_node(dir / "data", dir / "cycle-0.log", sets);
  for (int cycle = 0; cycle < cycles; ++cycle) {
    auto cycle_start = std::chrono::steady_clock::now();
    std::atomic<bool> stop{false};
    std::vector<client_log> logs(clients);
    std::vector<std::thread> threads;
    for (int c = 0; c < clients; ++c)
      threads.emplace_back(run_client, node->port(), c,
                           std::cref(base[static_cast<std::size_t>(c)]), std::cref(stop),
                           std::ref(logs[static_cast<std::size_t>(c)]));
    auto delay = std::chrono::milliseconds(delay_ms(rng));
    std::this_thread::sleep_for(delay);
    node->kill9();
    stop = true;
    for (auto& t : threads)
      t.join();
    ASSERT_EQ(node->exit_status(), std::optional<int>(128 + SIGKILL))
      << "the node had exited before the kill; log:\n"
      << node->log();

    node = start_node(dir / "data", dir / ("cycle-" + std::to_string(cycle + 1) + ".log"), sets);
    auto now = read_all(node->port());
    if (::testing::Test::HasFailure()) break;

    std::size_t acknowledged = 0;
    std::size_t lost = 0;
    std::size_t applied_unacknowledged = 0;
    for (int c = 0; c < clients; ++c) {
      const auto& log = logs[static_cast<std::size_t>(c)];
      auto& b = base[static_cast<std::size_t>(c)];
      EXPECT_EQ(log.unexpected, 0u)
        << "client " << c << " got an unexpected answer: " << log.example;
      EXPECT_EQ(log.out_of_step, 0u) << "client " << c << ": " << log.example;
      std::int64_t extra_of_client = 0;
      for (int k = 0; k < own_counters; ++k) {
        auto ku = static_cast<std::size_t>(k);
        auto value = *now.own[static_cast<std::size_t>(c)][ku];
        auto wanted = b[ku] + log.acked[ku]; // every acknowledged increment
        acknowledged += static_cast<std::size_t>(log.acked[ku]);
        EXPECT_GE(value, log.highest[ku]) << own_id(c, k) << ": an acknowledged value was lost";
        if (value < wanted) {
          lost += static_cast<std::size_t>(wanted - value);
          ADD_FAILURE() << own_id(c, k) << " holds " << value << " after the restart; "
                        << log.acked[ku] << " increments over " << b[ku]
                        << " were acknowledged (highest " << log.highest[ku] << ")";
        } else if (value > wanted + 1 || value > b[ku] + log.sent[ku]) {
          ADD_FAILURE() << own_id(c, k) << " holds " << value << " after the restart; "
                        << log.acked[ku] << " increments over " << b[ku] << " acknowledged, "
                        << log.sent[ku] << " sent: an increment was applied twice or invented";
        } else {
          extra_of_client += value - wanted;
        }
        b[ku] = value;
      }
      EXPECT_LE(extra_of_client, 1)
        << "client " << c << " had one call in flight, yet " << extra_of_client
        << " of its counters hold an unacknowledged increment";
      applied_unacknowledged += static_cast<std::size_t>(extra_of_client);
    }

    std::int64_t shared_acked = 0;
    std::int64_t shared_sent = 0;
    std::int64_t shared_highest = 0;
    for (const auto& log : logs) {
      shared_acked += log.shared_acked;
      shared_sent += log.shared_sent;
      shared_highest = std::max(shared_highest, log.shared_highest);
    }
    acknowledged += static_cast<std::size_t>(shared_acked);
    auto shared_value = *now.shared;
    EXPECT_GE(shared_value, shared_highest) << "the shared counter lost an acknowledged value";
    if (shared_value < shared_base + shared_acked) {
      lost += static_cast<std::size_t>(shared_base + shared_acked - shared_value);
      ADD_FAILURE() << "shared holds " << shared_value << " after the restart; " << shared_acked
                    << " increments over " << shared_base << " were acknowledged";
    }
    EXPECT_LE(shared_value, shared_base + shared_sent)
      << "shared holds more than every increment sent: one was applied twice";
    EXPECT_LE(shared_value, shared_base + shared_acked + clients)
      << "more unacknowledged increments applied than calls in flight";
    shared_base = shared_value;

    auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - cycle_start);
    std::printf("[ crash    ] actors sync=%s cycle %d: killed after %d ms, acknowledged %zu "
                "increments (shared %lld, highest %lld, now %lld), applied but unacknowledged "
                "%zu, lost %zu, %.1f s\n",
                sync ? "true" : "false", cycle + 1, static_cast<int>(delay.count()), acknowledged,
                static_cast<long long>(shared_acked), static_cast<long long>(shared_highest),
                static_cast<long long>(shared_value), applied_unacknowledged, lost,
                seconds.count());
    std::fflush(stdout);
    EXPECT_GT(acknowledged, 0u) << "no increment was acknowledged before the kill";
    EXPECT_EQ(lost, 0u) << "cycle " << cycle + 1 << " (seed " << seed << ")";
    if (::testing::Test::HasFailure()) break;
  }
  EXPECT_EQ(node->stop(SIGTERM), 0) << node->log();
}

// Verifies 3 rounds of kill -9 under increments with storage.sync=false lose no acknowledged one.
TEST(ActorCrashTest, Kill9WithSyncOffLosesNoAcknowledgedIncrement) {
  run_crash_cycles(false);
}

// Verifies 3 rounds of kill -9 under increments with storage.sync=true lose no acknowledged one.
TEST(ActorCrashTest, Kill9WithSyncOnLosesNoAcknowledgedIncrement) {
  run_crash_cycles(true);
}

} // namespace
} // namespace shoal::test
