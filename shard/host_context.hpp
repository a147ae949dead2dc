// SPDX-License-Identifier: Apache-2.0
#pragma once

// The one implementation of shard::context: the durability gate, the timer queue and the
// deferred work of a shard, connected to a message loop through `ports`. The shard host
// (host/shard_host.cpp) connects it to CAF (a delayed message for the earliest timer, a
// self-message for deferred work, a request to the WAL syncer); module tests connect it
// to a manual loop (tests/support/manual_shard.hpp). Single-threaded like its modules.

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string_view>

#include "shard/commit_path.hpp"
#include "shard/context.hpp"
#include "shard/gate.hpp"
#include "shard/timers.hpp"

namespace shoal::shard {

class host_context final : public context {
public:
  struct ports {
    std::function<time_point()> now;     ///< the loop's clock
    std::function<void(time_point)> arm; ///< call on_tick() at (or soon after) this time
    std::function<void()> wake;          ///< call on_step() soon, after what is queued now
    std::function<void(std::uint64_t)> request_sync; ///< answer with synced()/sync_failed()
    std::function<void(std::string_view, const core::error&)> report; ///< may be empty
  };

  /// A shard with one copy: commits go through a durability_gate over `store`'s shard
  /// `index` (with `sync`, answered after the fsync the loop's request_sync asks for).
  /// `wall_ms_at_start`: Unix ms now, which wall_ms() advances with the loop's clock.
  host_context(std::uint32_t index, storage::store& store, bool sync, ports p,
               std::uint64_t wall_ms_at_start);

  /// A shard whose commits take another path (a replicated shard: replicated_path).
  /// `request_sync` in `p` is not used.
  host_context(std::uint32_t index, std::unique_ptr<commit_path> path, ports p,
               std::uint64_t wall_ms_at_start);

  // -- context ----------------------------------------------------------------------------
  std::uint32_t index() const noexcept override {
    return index_;
  }
  storage::shard_store& store() noexcept override {
    return path_->store();
  }
  core::result<void> commit(storage::write_batch&& batch, commit_done done) override;
  bool pending(std::string_view key) const override;
  bool all_durable() const override {
    return path_->all_durable();
  }
  void after_durable(std::string_view key, barrier_fn fn) override;
  void after_all_durable(barrier_fn fn) override;
  time_point now() const override;
  std::uint64_t wall_ms() const override;
  timer_id schedule(time_point due, std::function<void()> fn) override;
  void cancel(timer_id id) override;
  void defer(std::function<void()> fn) override;
  void report(std::string_view what, const core::error& err) override;

  // -- the loop's side ----------------------------------------------------------------------

  /// A tick armed for some time arrived: runs the timers that are due.
  void on_tick();
  /// Runs the deferred work that was queued before the wake-up was sent.
  void on_step();
  /// The syncer's answer (durability_gate::synced / sync_failed); only with a gate.
  void synced(std::uint64_t durable);
  void sync_failed(const core::error& err);
  /// After every message: runs completions, then arms a tick for the earliest timer.
  void finish_step();
  /// The shard stops: fails what waits for an fsync or a quorum (while the modules are
  /// alive), drops timers and deferred work.
  void close();

  commit_path& path() noexcept {
    return *path_;
  }

  std::size_t timers() const noexcept {
    return timers_.size();
  }
  std::size_t deferred() const noexcept {
    return deferred_.size();
  }

private:
  std::uint32_t index_;
  ports ports_;
  std::unique_ptr<commit_path> path_;
  durability_gate* gate_ = nullptr; ///< path_, when it is a gate (for the syncer's answers)
  timer_queue timers_;
  std::multiset<time_point> armed_; ///< ticks in flight, by the time they fire
  std::deque<std::function<void()>> deferred_;
  bool woken_ = false; ///< a wake-up is in flight
  time_point start_;
  std::uint64_t wall_at_start_;
};

} // namespace shoal::shard
