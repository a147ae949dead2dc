// SPDX-License-Identifier: Apache-2.0
// In-process benchmarks of virtual actors: method calls on the built-in `counter` type,
// sent to the shard actors of a real node core (CAF's default work-stealing scheduler,
// 64 shards, the actor metrics on) over a memory store (hot counter only, see below) or a
// RocksDB store in a temporary directory. No HTTP: bench/actors.sh measures over HTTP
// (docs/benchmarks.md).
//
//   build/release/bench/shoal_actor_bench
//
// The benchmark thread keeps `inflight` calls outstanding: it sends that many (as the
// edge does: the request and a reply_to), then, per iteration, waits for one answer and
// sends the next call, so the rate is throughput, not round-trip latency (inflight = 1
// is the round trip). One iteration = one call answered; items/s is calls per second of
// wall-clock time (UseRealTime: the sending thread mostly sleeps, so its CPU time means
// nothing).
//
// The hot-counter benchmarks share one node per store kind. Each run of the distinct-
// counter benchmark builds its own node and tears it down (both untimed), so its first
// pass always activates, also with --benchmark_repetitions.

#include <sched.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <benchmark/benchmark.h>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/exit_reason.hpp>
#include <caf/send.hpp>

#include "actors/actor_api.hpp"
#include "actors/actor_metrics.hpp"
#include "actors/messages.hpp"
#include "cluster/shard_map.hpp"
#include "host/shard_host.hpp"
#include "protocol/type_ids.hpp"
#include "storage/memory_store.hpp"
#include "storage/store.hpp"

namespace {

using namespace shoal;

constexpr std::uint32_t shards = 64;               // cluster.shards default
constexpr std::uint32_t max_active_node = 1000000; // never reached here: no passivation
constexpr int distinct_ids = 100000;

enum store_kind : std::int64_t { memory = 0, rocksdb = 1 };

struct node_config : caf::actor_system_config {
  node_config() {
    // The default scheduler (work stealing) with one worker per CPU of the affinity
    // mask and the poll settings of app/node.cpp (a short spin, then block), as a node
    // with actors.threads = 0.
    cpu_set_t mask;
    CPU_ZERO(&mask);
    std::size_t cpus = std::max(1u, std::thread::hardware_concurrency());
    if (sched_getaffinity(0, sizeof(mask), &mask) == 0 && CPU_COUNT(&mask) > 0)
      cpus = static_cast<std::size_t>(CPU_COUNT(&mask));
    set("scheduler.max-threads", cpus);
    set("work-stealing.aggressive-poll-attempts", std::size_t{10});
    set("work-stealing.moderate-poll-attempts", std::size_t{0});
    set("logger.file-verbosity", caf::atom("quiet"));
    set("logger.console-verbosity", caf::atom("quiet"));
    protocol::add_message_types(*this);
  }
};

std::filesystem::path make_temp_dir() {
  auto pattern = (std::filesystem::temp_directory_path() / "shoal-actor-bench-XXXXXX").string();
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (!::mkdtemp(buf.data()))
    throw std::system_error(errno, std::generic_category(), "mkdtemp " + pattern);
  return std::filesystem::path(buf.data());
}

/// VmRSS of this process in bytes.
std::int64_t rss_bytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  return 0;
}

/// The answers of the calls in flight, in arrival order. They are delivered on the
/// hosts' threads; the benchmark thread waits for them here.
class answers {
public:
  void push(core::result<actors::actor_result>&& r) {
    {
      std::lock_guard<std::mutex> guard{mutex_};
      queue_.push_back(std::move(r));
    }
    ready_.notify_one();
  }

  /// The next answer; an internal error when none arrives within `wait`.
  core::result<actors::actor_result> pop(std::chrono::milliseconds wait) {
    std::unique_lock<std::mutex> lock{mutex_};
    if (!ready_.wait_for(lock, wait, [this] { return !queue_.empty(); }))
      return core::error{core::errc::internal, "no answer within the wait"};
    auto r = std::move(queue_.front());
    queue_.pop_front();
    return r;
  }

private:
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<core::result<actors::actor_result>> queue_;
};

/// The actor part of a node, wired as app/node.cpp does (shard hosts with only the
/// hosting module in use; no HTTP edge, no WAL syncer: storage.sync is off).
class bench_node {
public:
  explicit bench_node(store_kind kind) {
    if (kind == rocksdb) {
      dir_ = make_temp_dir();
      storage::rocksdb_options opts;
      opts.path = (dir_ / "data").string();
      opts.shards = shards;
      auto opened = storage::open_rocksdb_store(opts);
      if (!opened) throw std::runtime_error("cannot open the store: " + opened.error().to_string());
      store_ = std::move(*opened);
    } else {
      store_ = std::make_unique<storage::memory_store>(shards);
    }
    registry_.add(actors::make_counter_type());
    metrics_ = std::make_unique<actors::actor_metrics>(registry_);
    sys_ = std::make_unique<caf::actor_system>(cfg_);
    host::host_config base;
    base.store = store_.get();
    base.peers = &handles_;
    base.call_timeout = std::chrono::milliseconds(30000);
    base.actors.registry = &registry_;
    base.actors.metrics = metrics_.get();
    base.actors.idle_timeout = std::chrono::milliseconds(3600000);
    base.actors.max_active = (max_active_node + shards - 1) / shards;
    handles_.handles.reserve(shards);
    for (std::uint32_t i = 0; i < shards; ++i) {
      auto cfg = base;
      cfg.index = i;
      handles_.handles.push_back(host::spawn_shard_host(*sys_, std::move(cfg)));
    }
  }

  ~bench_node() {
    for (auto& shard : handles_.handles)
      caf::anon_send_exit(shard, caf::exit_reason::user_shutdown);
    sys_->await_all_actors_done();
    handles_.handles.clear();
    sys_.reset();
    (void)store_->close();
    store_.reset();
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }

  bench_node(const bench_node&) = delete;
  bench_node& operator=(const bench_node&) = delete;

  caf::actor_system& system() {
    return *sys_;
  }

  /// Sends `counter/<id>.<method>`; its answer arrives in answers().
  void send(const std::string& id, const char* method) {
    auto shard = map_.shard_of("counter", id);
    caf::anon_send(handles_.handles[shard], actors::actor_call{"counter", id, method, {}, 0},
                   core::reply_to<actors::actor_result>::to(
                     [a = answers_](core::result<actors::actor_result>&& r) {
                       a->push(std::move(r));
                     }));
  }

  answers& received() {
    return *answers_;
  }

  std::int64_t active() {
    auto* m = metrics_->find("counter");
    return m ? static_cast<std::int64_t>(m->active.value()) : 0;
  }

private:
  std::filesystem::path dir_;
  std::unique_ptr<storage::store> store_;
  actors::actor_registry registry_;
  std::unique_ptr<actors::actor_metrics> metrics_;
  node_config cfg_;
  std::unique_ptr<caf::actor_system> sys_;
  protocol::shard_handles handles_;
  cluster::shard_map map_{shards};
  std::shared_ptr<answers> answers_ = std::make_shared<answers>();
};

/// Waits for one answer; false (and the benchmark is skipped with an error) when none
/// arrived within 30 s or it was an error.
bool receive_one(bench_node& node, benchmark::State& state) {
  auto r = node.received().pop(std::chrono::seconds(30));
  if (!r) state.SkipWithError(("call failed: " + r.error().to_string()).c_str());
  return r.ok();
}

/// Runs `count` calls (`next(i)` names the i-th id) with `inflight` outstanding, untimed,
/// outside the benchmark loop. Returns false on a failed call.
template <class NextId>
bool run_untimed(bench_node& node, benchmark::State& state,
                 std::int64_t count, std::int64_t inflight, NextId next) {
  std::int64_t sent = 0;
  for (; sent < count && sent < inflight; ++sent)
    node.send(next(sent), "increment");
  for (std::int64_t done = 0; done < count; ++done) {
    if (!receive_one(node, state)) return false;
    if (sent < count) node.send(next(sent++), "increment");
  }
  return true;
}

/// The timed loop: one iteration = one reply received (and the next call sent). No more
/// calls are sent than there are iterations, so nothing is left in flight after it (the
/// last `inflight` iterations only drain: negligible against the iteration counts here).
template <class NextId>
void run_timed(bench_node& node, benchmark::State& state,
               std::int64_t inflight, const char* method, NextId next) {
  std::int64_t sent = 0;
  const auto total = static_cast<std::int64_t>(state.max_iterations);
  for (; sent < inflight && sent < total; ++sent)
    node.send(next(sent), method);
  for (auto _ : state) {
    if (!receive_one(node, state)) break;
    if (sent < total) node.send(next(sent++), method);
  }
  state.SetItemsProcessed(state.iterations());
}

/// The node of the hot-counter benchmarks, one per store kind, built on first use and
/// kept until main() ends: Google Benchmark calls a benchmark several times to size its
/// iterations, and opening a RocksDB store with 64 column families takes seconds (an
/// fsynced MANIFEST write per family).
std::unique_ptr<bench_node> hot_nodes[2];

bench_node& hot_node(store_kind kind) {
  auto& n = hot_nodes[kind == rocksdb ? 1 : 0];
  if (!n) n = std::make_unique<bench_node>(kind);
  return *n;
}

/// Calls to one hot counter, `inflight` (range 1) outstanding, on store range(0).
/// range(2): 0 = increment (writes the state), 1 = get (read-only, writes nothing).
void BM_HotCounter(benchmark::State& state) {
  auto& node = hot_node(static_cast<store_kind>(state.range(0)));
  const auto inflight = state.range(1);
  const char* method = state.range(2) == 0 ? "increment" : "get";
  if (!run_untimed(node, state, 1, 1, [](std::int64_t) { return std::string("hot"); }))
    return; // activates the counter (first use): the loop measures calls, not the activation
  run_timed(node, state, inflight, method, [](std::int64_t) { return std::string("hot"); });
}
BENCHMARK(BM_HotCounter)
  ->ArgNames({"store", "inflight", "get"})
  ->Args({memory, 1, 0})
  ->Args({memory, 64, 0})
  ->Args({rocksdb, 1, 0})
  ->Args({rocksdb, 64, 0})
  ->Args({rocksdb, 64, 1})
  ->MinTime(1.0)
  ->UseRealTime()
  ->Unit(benchmark::kMicrosecond);

std::string distinct_id(std::int64_t i) {
  return "c-" + std::to_string(i % distinct_ids);
}

/// 100,000 distinct counters, each incremented once, 64 calls outstanding. range(1):
/// 1 = the first pass on a fresh node, every call an activation (state not found in the
/// store, a CAF actor spawned); 2 = a second pass over the same ids (first pass untimed),
/// every actor active. Reports the RSS growth of the process per active actor over the
/// timed pass (first pass: actor + state + store; second: should be ~0).
void BM_DistinctCounters(benchmark::State& state) {
  bench_node node{static_cast<store_kind>(state.range(0))};
  const auto pass = state.range(1);
  constexpr std::int64_t inflight = 64;
  if (pass == 2 && !run_untimed(node, state, distinct_ids, inflight, distinct_id)) return;
  auto rss_before = rss_bytes();
  auto active_before = node.active();
  run_timed(node, state, inflight, "increment", distinct_id);
  std::this_thread::sleep_for(std::chrono::milliseconds(200)); // let the workers settle
  auto active = node.active();
  state.counters["active"] = static_cast<double>(active);
  state.counters["activated"] = static_cast<double>(active - active_before);
  state.counters["rss_delta_per_call"] =
    static_cast<double>(rss_bytes() - rss_before) / static_cast<double>(state.iterations());
}
// RocksDB only: activations then load their state from disk, as they do on a node (a
// memory store would make the first pass measure a map lookup instead).
BENCHMARK(BM_DistinctCounters)
  ->ArgNames({"store", "pass"})
  ->Args({rocksdb, 1})
  ->Args({rocksdb, 2})
  ->Iterations(distinct_ids)
  ->UseRealTime()
  ->Unit(benchmark::kMicrosecond);

} // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  for (auto& n : hot_nodes)
    n.reset();
  return 0;
}
