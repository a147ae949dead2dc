// SPDX-License-Identifier: Apache-2.0
#pragma once

// The durability gate of one shard: the plain-C++ part of the shard host's commit()
// (docs/architecture.md "Durability"). It writes each batch without fsync and, with
// storage.sync, holds the batch's `done` (and every barrier queued behind it) until the
// node's WAL syncer reports the WAL durable past the batch's sequence number: group
// commit, since one fsync covers every write of every shard that reached the WAL before
// it. It never blocks and never talks to CAF: the host carries its sync requests and
// answers.

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>

#include "core/result.hpp"
#include "shard/commit_path.hpp"
#include "shard/context.hpp"
#include "storage/store.hpp"

namespace shoal::shard {

class durability_gate final : public commit_path {
public:
  /// `request_sync(sequence)` asks for the WAL to be made durable up to `sequence`; the
  /// host answers with synced() or sync_failed(). Only called with `sync`, and never
  /// while a request is in flight.
  durability_gate(storage::shard_store& shard, storage::store& store, bool sync,
                  std::function<void(std::uint64_t)> request_sync);
  /// stop().
  ~durability_gate() override;
  durability_gate(const durability_gate&) = delete;
  durability_gate& operator=(const durability_gate&) = delete;

  /// The shard's own keyspace: commits write straight to it.
  storage::shard_store& store() noexcept override {
    return shard_;
  }

  /// context::commit.
  core::result<void> commit(storage::write_batch&& batch, commit_done done) override;

  /// context::pending, after_durable, after_all_durable.
  bool pending(std::string_view key) const override;
  void after_durable(std::string_view key, barrier_fn fn) override;
  void after_all_durable(barrier_fn fn) override;

  /// The syncer made the WAL durable up to `durable`: releases what waited for it, in
  /// order, and asks for the next fsync if more is held.
  void synced(std::uint64_t durable);

  /// The fsync failed: every held commit and barrier gets `err` (the writes stay in the
  /// store, where reads see them, but none is acknowledged).
  void sync_failed(const core::error& err);

  /// The shard stops: nothing unsynced is acknowledged. A held commit gets
  /// `outcome_unknown` (its write is in the store and the WAL, and the store's close
  /// flushes it: it may well be kept), a held barrier `shutting_down` (what waited did not
  /// happen). Runs pending completions first.
  void stop() override;

  /// Runs the `done` of commits that became durable inside the current step (all of them
  /// without storage.sync). The host calls it after every step.
  void run_completions() override;

  /// Whether nothing waits for an fsync (always without storage.sync).
  bool all_durable() const noexcept override {
    return held_.empty();
  }

  /// Commits and barriers waiting for an fsync.
  std::size_t held() const noexcept {
    return held_.size();
  }

private:
  struct held_commit {
    commit_done done;
    std::vector<std::string> keys;
    bool range = false; ///< the batch deleted a range
  };
  struct held_entry {
    std::uint64_t sequence;
    std::variant<held_commit, barrier_fn> what;
  };

  void hold(std::uint64_t sequence, std::variant<held_commit, barrier_fn> what);
  void forget(const held_commit& c);
  void request();

  storage::shard_store& shard_;
  storage::store& store_;
  const bool sync_;
  std::function<void(std::uint64_t)> request_sync_;
  std::deque<held_entry> held_; ///< in sequence order
  std::unordered_map<std::string, std::uint32_t> pending_keys_;
  std::uint32_t pending_ranges_ = 0;
  std::uint64_t last_sequence_ = 0; ///< the store's sequence after our last commit
  bool in_flight_ = false;
  std::vector<commit_done> completions_; ///< durable now, to run after the step
  std::vector<commit_done> running_;     ///< the completions being run
};

} // namespace shoal::shard
