// SPDX-License-Identifier: Apache-2.0
#pragma once

// What a module may use of the shard that hosts it (docs/architecture.md "The middle").
// The shard host implements it over CAF; module tests implement it with a manual clock
// (tests/support/manual_shard.hpp). Everything here is called from the shard's single
// thread of control: the host runs one message at a time, and so do modules.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string_view>

#include "core/result.hpp"
#include "storage/store.hpp"

namespace shoal::shard {

/// The actor clock: CAF 0.17's actor_clock uses steady_clock's time points, and the
/// deterministic test scheduler moves them only when a test advances time.
using clock = std::chrono::steady_clock;
using time_point = clock::time_point;
using timer_id = std::uint64_t;

/// How much one step of a long scan (a query, a stats scan) reads at most: about a
/// millisecond of work, so a request queued behind the scan waits no longer than that.
inline constexpr std::size_t scan_step_keys = 256;
inline constexpr std::size_t scan_step_bytes = 1u << 20;

/// Called once a commit is durable, or with the error that kept it from being so.
using commit_done = std::function<void(core::result<void>)>;
/// Called once the commits a barrier waits for are durable (or failed to become so).
using barrier_fn = std::function<void(core::result<void>)>;

/// The answer to a request whose own write was committed when the barrier its answer
/// waited for failed: the write may well be kept when the shard stopped before its fsync
/// (`shutting_down`: the store's close flushes it) or when its leader lost leadership
/// after proposing it (`shard_unavailable`: a new leader may still commit it), so its
/// outcome is unknown (504), not refused. Other failures (a failed fsync) are the answer.
inline core::error after_write_failed(core::error barrier_error) {
  const auto code = barrier_error.code();
  if (code == core::errc::shutting_down || code == core::errc::shard_unavailable)
    return core::error{core::errc::outcome_unknown, "the write was made but not confirmed ("
                                                      + barrier_error.message()
                                                      + "): it may be kept"};
  return barrier_error;
}

class context {
public:
  virtual ~context() = default;

  /// Which shard this is.
  virtual std::uint32_t index() const noexcept = 0;

  /// The shard's keyspace, for reads (and snapshots). Never write through it: writes go
  /// through commit().
  virtual storage::shard_store& store() noexcept = 0;

  /// The one gate of every write: applies `batch` atomically and returns the outcome. On
  /// error nothing was written and `done` is dropped. On success the batch is visible to
  /// reads at once, and `done` runs once it is durable in the configured mode (after the
  /// current step without storage.sync; after the group fsync with it), or with the
  /// error that kept it from being durable. `done` never runs inside commit(); it may be
  /// empty when the caller waits with after_durable() instead.
  virtual core::result<void> commit(storage::write_batch&& batch, commit_done done) = 0;

  /// Whether a commit that wrote `key` is not durable yet.
  virtual bool pending(std::string_view key) const = 0;

  /// Whether every commit so far is durable (always true without storage.sync): then no
  /// barrier waits, and callers can skip building the keys they would ask about.
  virtual bool all_durable() const = 0;

  /// Runs `fn` once every commit so far that wrote `key` is durable (at once, inside this
  /// call, when none is pending), so a reply about `key` never shows a write a crash
  /// could still take back.
  virtual void after_durable(std::string_view key, barrier_fn fn) = 0;

  /// As after_durable, for every commit so far: for answers that may have read any key.
  virtual void after_all_durable(barrier_fn fn) = 0;

  /// Now, on the actor clock.
  virtual time_point now() const = 0;

  /// Unix time in ms, derived from the actor clock (so tests that advance the clock move
  /// it too): for what is stored or shown (job due times, event times, TTL expiries).
  virtual std::uint64_t wall_ms() const = 0;

  /// Runs `fn` at `due` (or soon after) on the shard's thread; `cancel` forgets it.
  virtual timer_id schedule(time_point due, std::function<void()> fn) = 0;
  virtual void cancel(timer_id id) = 0;

  /// Runs `fn` later, behind the messages queued now: how long work proceeds in bounded
  /// steps without holding up the requests that arrive meanwhile.
  virtual void defer(std::function<void()> fn) = 0;

  /// Reports a failure of background work that no request waits for (an index build
  /// step, a trim): the host logs it, so no failure goes unseen. `what` names the work.
  virtual void report(std::string_view what, const core::error& err) = 0;
};

} // namespace shoal::shard
