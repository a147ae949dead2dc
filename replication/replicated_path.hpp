// SPDX-License-Identifier: Apache-2.0
#pragma once

// The commit path of a replicated shard (docs/replication.md "Where the group lives"):
// shard::commit_path over one replica of the shard's Raft group. A module's batch is
// proposed as a log entry and put in the overlay, so the module's next decision already
// sees it; its `done` runs once the entry is applied here, which on the leader means it
// is committed on a quorum. Every answer about the shard waits for a read barrier
// proposed after it was asked (replica::read), so it reflects every acknowledged write
// and a deposed leader that does not know it yet answers nothing stale: pending() is
// always true and all_durable() always false. An entry the module proposed in the same
// step serves as that barrier: it too was proposed after the request arrived, so its
// commit proves the same, and a write's answer costs one round, not two.
//
// Only a leader that has caught up commits: a new leader may not have applied every
// entry its predecessor committed until an entry of its own term commits (Raft's rule),
// so it first commits a barrier and serves from then on (serving()). Before that, and on
// a follower, commits and answers are refused with 503 shard_unavailable
// (`leader_not_ready`, `not_leader`), and nothing changes: a module read the shard
// before it asked, and the shard may lack what a quorum acknowledged. The host sends no
// request to its modules meanwhile (and builds them only once it serves); the refusals
// are the safety net under that rule. When leadership is lost, every proposed entry fails with 504
// outcome_unknown (a new leader may still commit it) and the overlay empties; what the
// modules remembered of the shard is theirs to rebuild (the host recreates them).

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string_view>
#include <vector>

#include "replication/overlay.hpp"
#include "replication/replica.hpp"
#include "shard/commit_path.hpp"

namespace shoal::replication {

struct metrics;

class replicated_path final : public shard::commit_path {
public:
  /// `rep` and `shard` (the shard's applied state, which the state machine writes)
  /// must outlive the path; so must `counted` (the node's metrics: commit latency), which
  /// may be null.
  replicated_path(replica& rep, storage::shard_store& shard, metrics* counted = nullptr);
  /// stop().
  ~replicated_path() override;
  replicated_path(const replicated_path&) = delete;
  replicated_path& operator=(const replicated_path&) = delete;

  /// The shard with every proposed, not yet applied batch on top.
  storage::shard_store& store() noexcept override {
    return overlay_;
  }

  core::result<void> commit(storage::write_batch&& batch, shard::commit_done done) override;
  bool pending(std::string_view) const override {
    return true;
  }
  bool all_durable() const override {
    return false;
  }
  void after_durable(std::string_view key, shard::barrier_fn fn) override;
  void after_all_durable(shard::barrier_fn fn) override;
  /// The end of a step: it also ends what "proposed in this step" means.
  void run_completions() override {
    proposed_this_step_ = 0;
    poll();
  }
  void stop() override;

  /// Whether this replica leads its group now.
  bool leading() const noexcept {
    return rep_.leader();
  }

  /// Whether it leads and has applied a barrier of its current term: every entry any
  /// earlier leader committed is then applied here, and modules may decide against it.
  bool serving() const noexcept {
    return rep_.leader() && ready_term_ == rep_.term();
  }

  /// Why it does not serve now: 503 `not_leader` (naming the last known leader) or
  /// `leader_not_ready`. Only meaningful while !serving().
  core::error refusal() const;

  /// Notices a change of role: a new leader proposes the barrier that makes it serving.
  /// The host calls it after every message (run_completions() does).
  void poll();

  /// Entries proposed here and not applied yet.
  std::size_t in_flight() const noexcept {
    return writes_.size();
  }

  /// Answers that waited for an entry of their own step instead of a barrier.
  std::uint64_t barriers_saved() const noexcept {
    return barriers_saved_;
  }

private:
  void finished(std::uint64_t index, core::result<void> r);

  replica& rep_;
  overlay_store overlay_;
  struct write {
    shard::commit_done done;
    std::chrono::steady_clock::time_point proposed;
    /// Answers that wait for this entry instead of a barrier of their own (see
    /// after_all_durable).
    std::vector<shard::barrier_fn> waiting;
  };
  std::map<std::uint64_t, write> writes_; ///< by log index
  /// The last entry proposed in the current step (0: none): it was proposed after the
  /// message being served arrived, so its commit confirms this replica still led then.
  std::uint64_t proposed_this_step_ = 0;
  metrics* counted_;
  std::uint64_t barriers_saved_ = 0;
  bool stopped_ = false;
  std::uint64_t ready_term_ = 0;  ///< the term whose barrier was applied here
  std::uint64_t catching_up_ = 0; ///< the term whose barrier is in flight
  /// Callbacks libraft runs after the path is gone find it expired.
  std::shared_ptr<replicated_path*> self_;
};

} // namespace shoal::replication
