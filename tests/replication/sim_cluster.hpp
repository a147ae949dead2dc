// SPDX-License-Identifier: Apache-2.0
#pragma once

// A shard group on our own raft_io (group_io), each server with its own RocksDB store on
// disk, over a simulated network and clock: one event queue, time jumps from event to
// event, messages get a random latency (so they reorder), may be dropped or duplicated,
// and links can be cut. A server can crash (its raft, io and store are torn down) and
// restart from what its store kept: libraft's load, restore and replay run for real.
// Deterministic for a seed. What it does not simulate: a crash losing writes the WAL
// had not synced (RocksDB keeps them across a process crash, as here).

extern "C" {
#include <raft.h>
}

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <queue>
#include <random>
#include <string>
#include <vector>

#include "replication/group.hpp"
#include "replication/group_io.hpp"
#include "replication/replica.hpp"
#include "replication/snapshot_stream.hpp"
#include "replication/state_machine.hpp"
#include "tests/replication/shard_contents.hpp"
#include "tests/storage/storage_test_util.hpp"

namespace shoal::replication::test {

class sim_cluster {
public:
  struct options {
    unsigned servers = 3;
    std::uint64_t seed = 1;
    unsigned drop_percent = 0;      ///< of messages lost
    unsigned duplicate_percent = 0; ///< of messages delivered twice
    unsigned max_latency_ms = 5;    ///< latency is 1..max: messages overtake each other
    std::size_t snapshot_chunk_bytes = 1u << 20; ///< of a streamed image (group_config)
    unsigned snapshot_entries = 1024;            ///< libraft's snapshot threshold
    unsigned snapshot_trailing = 2048;           ///< entries kept after a snapshot
  };

  explicit sim_cluster(options o) : opt_(o), rng_(o.seed) {
    EXPECT_FALSE(dir_.path().empty());
    nodes_.resize(o.servers);
    cut_.assign(o.servers, std::vector<bool>(o.servers, false));
    for (unsigned i = 0; i < o.servers; ++i) {
      open(i);
    }
  }

  ~sim_cluster() {
    for (unsigned i = 0; i < nodes_.size(); ++i) {
      if (nodes_[i].up) crash(i);
    }
  }

  sim_cluster(const sim_cluster&) = delete;
  sim_cluster& operator=(const sim_cluster&) = delete;

  unsigned size() const noexcept {
    return static_cast<unsigned>(nodes_.size());
  }
  std::uint64_t now() const noexcept {
    return now_;
  }
  bool up(unsigned i) const {
    return nodes_.at(i).up;
  }
  raft* server(unsigned i) {
    return nodes_.at(i).g->raw();
  }
  replica& at(unsigned i) {
    return nodes_.at(i).g->rep();
  }
  group_io& io(unsigned i) {
    return nodes_.at(i).g->io();
  }
  state_machine& machine(unsigned i) {
    return nodes_.at(i).g->machine();
  }
  storage::shard_store& shard(unsigned i) {
    return nodes_.at(i).store->shard(0);
  }
  /// From now on, loses `drop_percent` of the messages and delivers `duplicate_percent` twice.
  void set_loss(unsigned drop_percent, unsigned duplicate_percent) {
    opt_.drop_percent = drop_percent;
    opt_.duplicate_percent = duplicate_percent;
  }
  storage::store& store(unsigned i) {
    return *nodes_.at(i).store;
  }

  /// Runs events until `pred` holds or `max_ms` of simulated time pass.
  bool run_until(const std::function<bool()>& pred, std::uint64_t max_ms = 20000) {
    const auto deadline = now_ + max_ms;
    while (!pred()) {
      if (events_.empty() || events_.top().at > deadline) return false;
      step();
    }
    return true;
  }
  void run_for(std::uint64_t ms) {
    const auto until = now_ + ms;
    while (!events_.empty() && events_.top().at <= until)
      step();
    now_ = until;
  }

  /// The server that leads in the highest term among those up, or size() when none.
  unsigned leader() {
    unsigned found = size();
    raft_term top = 0;
    for (unsigned i = 0; i < size(); ++i) {
      if (up(i) && server(i)->current_term >= top) top = server(i)->current_term;
    }
    for (unsigned i = 0; i < size(); ++i) {
      if (up(i) && raft_state(server(i)) == RAFT_LEADER && server(i)->current_term == top) {
        found = i;
      }
    }
    return found;
  }

  /// Runs `fn` `delay_ms` of simulated time from now, as one event (a shard host's timer
  /// or wake-up; the caller guards against what `fn` refers to being gone by then).
  void after(std::uint64_t delay_ms, std::function<void()> fn) {
    at(now_ + delay_ms, std::move(fn));
  }

  /// From now on every fsync waits until release_syncs() (a disk that stalls).
  void hold_syncs() {
    holding_syncs_ = true;
  }
  /// Answers every fsync held so far with `outcome`, in the order they were asked for,
  /// and stops holding.
  void release_syncs(core::result<void> outcome) {
    holding_syncs_ = false;
    auto held = std::move(held_syncs_);
    held_syncs_.clear();
    for (auto& done : held)
      done(outcome);
  }
  std::size_t held_syncs() const noexcept {
    return held_syncs_.size();
  }

  /// Tears server `i` down as a crash would: what its store holds stays.
  void crash(unsigned i) {
    auto& n = nodes_.at(i);
    if (!n.up) return;
    n.up = false;
    ++n.epoch;
    bool closed = false;
    n.g->close([&closed] { closed = true; });
    // The io posts the close callback: run the queue until it ran (other servers go on).
    while (!closed && !events_.empty())
      step();
    n.g.reset();
    EXPECT_TRUE(n.store->close().ok());
    n.store.reset();
  }

  /// Starts server `i` again from its store.
  void restart(unsigned i) {
    ASSERT_FALSE(nodes_.at(i).up);
    open(i);
  }

  void cut(unsigned from, unsigned to) {
    cut_[from][to] = true;
  }
  void heal_all() {
    for (auto& row : cut_)
      row.assign(row.size(), false);
  }
  void isolate(unsigned i) {
    for (unsigned j = 0; j < size(); ++j) {
      if (j != i) {
        cut_[i][j] = true;
        cut_[j][i] = true;
      }
    }
  }

  std::mt19937_64& rng() {
    return rng_;
  }

  /// Snapshot stream frames (chunks and acks) sent so far, delivered or not.
  unsigned frames_sent() const {
    return frames_sent_;
  }

  /// Messages of libraft's `type` (RAFT_IO_...) sent so far, delivered or not.
  unsigned sent(int type) const {
    auto it = sent_.find(type);
    return it == sent_.end() ? 0 : it->second;
  }

private:
  struct event {
    std::uint64_t at;
    std::uint64_t seq;
    std::function<void()> fn;
    bool operator>(const event& o) const {
      return at != o.at ? at > o.at : seq > o.seq;
    }
  };
  struct node {
    bool up = false;
    std::uint64_t epoch = 0; ///< bumped by a crash: what the old incarnation scheduled is dropped
    std::uint64_t tick_gen = 0; ///< bumped by stop_ticks
    std::unique_ptr<storage::store> store;
    std::unique_ptr<group> g;
  };

  void at(std::uint64_t t, std::function<void()> fn) {
    events_.push({t, ++seq_, std::move(fn)});
  }
  void step() {
    auto e = events_.top();
    events_.pop();
    if (e.at > now_) now_ = e.at;
    e.fn();
  }

  static std::string address(unsigned i) {
    return "n" + std::to_string(i + 1);
  }

  void open(unsigned i) {
    auto& n = nodes_[i];
    storage::rocksdb_options options;
    options.path = dir_.path() + "/" + address(i);
    options.shards = 1; // the data; the log goes to the store's raft-log family
    options.block_cache_bytes = 1u << 20;
    options.write_buffer_bytes = 1u << 20;
    auto s = storage::open_rocksdb_store(options);
    ASSERT_TRUE(s.ok()) << s.error().to_string();
    n.store = std::move(*s);
    const auto epoch = n.epoch;
    io_host host;
    host.now_ms = [this] { return now_; };
    host.start_ticks = [this, i, epoch](unsigned msecs, std::function<void()> tick) {
      const auto gen = ++nodes_[i].tick_gen;
      schedule_tick(i, epoch, gen, msecs, std::move(tick));
    };
    host.stop_ticks = [this, i] { ++nodes_[i].tick_gen; };
    host.send = [this, i](std::uint64_t to, const std::string&, std::string bytes) {
      send(i, static_cast<unsigned>(to - 1), std::move(bytes));
    };
    host.after_sync = [this](std::function<void(core::result<void>)> done) {
      if (holding_syncs_) {
        held_syncs_.push_back(std::move(done));
        return;
      }
      at(now_ + 1 + rng_() % 3, [done = std::move(done)] { done(core::ok()); });
    };
    // What an io posts or waits for is dropped by the io itself once it is gone.
    host.post = [this](std::function<void()> fn) { at(now_, std::move(fn)); };
    host.seed = opt_.seed * 1000 + i;
    group_config cfg;
    cfg.shard = 0;
    cfg.self = i + 1;
    for (unsigned j = 0; j < size(); ++j)
      cfg.voters.push_back({j + 1, address(j)});
    cfg.election_timeout_ms = 300;
    cfg.heartbeat_timeout_ms = 50;
    cfg.streams.chunk_bytes = opt_.snapshot_chunk_bytes;
    cfg.snapshot_entries = opt_.snapshot_entries;
    cfg.snapshot_trailing = opt_.snapshot_trailing;
    n.g = std::make_unique<group>(*n.store, std::move(cfg), std::move(host));
    // Every server bootstraps the same voters on its first start (group::start); a
    // restart finds its log and does not.
    auto started = n.g->start();
    ASSERT_TRUE(started.ok()) << started.error().to_string();
    n.up = true;
  }

  void schedule_tick(unsigned i, std::uint64_t epoch, std::uint64_t gen, unsigned msecs,
                     std::function<void()> tick) {
    at(now_ + msecs, [this, i, epoch, gen, msecs, tick = std::move(tick)]() mutable {
      auto& n = nodes_[i];
      if (n.epoch != epoch || n.tick_gen != gen || !n.up) return;
      tick();
      schedule_tick(i, epoch, gen, msecs, std::move(tick));
    });
  }

  void send(unsigned from, unsigned to, std::string bytes) {
    if (is_stream_frame(bytes))
      ++frames_sent_;
    else if (bytes.size() > 1)
      ++sent_[static_cast<unsigned char>(bytes[1])]; // wire.hpp: type
    if (to >= size() || cut_[from][to]) return;
    if (rng_() % 100 < opt_.drop_percent) return;
    const int copies = rng_() % 100 < opt_.duplicate_percent ? 2 : 1;
    for (int c = 0; c < copies; ++c) {
      const auto latency = 1 + rng_() % opt_.max_latency_ms;
      at(now_ + latency, [this, to, bytes] {
        auto& n = nodes_[to];
        if (n.up) n.g->deliver(bytes);
      });
    }
  }

  options opt_;
  std::mt19937_64 rng_;
  storage::test::temp_dir dir_;
  std::vector<node> nodes_;
  std::vector<std::vector<bool>> cut_;
  std::priority_queue<event, std::vector<event>, std::greater<event>> events_;
  std::uint64_t now_ = 0;
  std::uint64_t seq_ = 0;
  std::map<int, unsigned> sent_;
  unsigned frames_sent_ = 0;
  bool holding_syncs_ = false;
  std::vector<std::function<void(core::result<void>)>> held_syncs_;
};

} // namespace shoal::replication::test
