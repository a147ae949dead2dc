// SPDX-License-Identifier: Apache-2.0
#pragma once

// One replica of a shard's Raft group, as its shard host uses it (docs/replication.md):
// writes are proposed as log entries and answered once applied here, which on a leader
// means committed on a quorum; reads wait for a barrier proposed after they arrived, so
// a deposed leader that does not know it yet answers no stale read. Plain C++ over a
// libraft `raft` that someone else drives (the fixture in tests, the host's raft_io in
// the node); raft.h stays out of this header.

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "core/result.hpp"
#include "storage/store.hpp"

struct raft;

namespace shoal::replication {

using done_fn = std::function<void(core::result<void>)>;

/// Which server leads the group, as this replica last heard.
struct leader_hint {
  std::uint64_t id = 0; ///< 0: none known
};

class replica {
public:
  explicit replica(raft* r);
  ~replica();
  replica(const replica&) = delete;
  replica& operator=(const replica&) = delete;

  bool leader() const noexcept;
  leader_hint hint() const noexcept;
  /// The current term, as this replica knows it.
  std::uint64_t term() const noexcept;

  /// Proposes `batch` as one log entry. `done` runs once: ok when the entry is applied
  /// here (committed on a quorum); 503 `shard_unavailable` (name `not_leader`) when this
  /// replica does not lead, and nothing was proposed; 504 `outcome_unknown` when the
  /// entry was proposed and leadership was lost before it committed (a new leader may
  /// still commit it). May run inside this call (when nothing was proposed). Returns the
  /// log index the entry got, 0 when nothing was proposed.
  std::uint64_t propose(const storage::write_batch& batch, done_fn done);

  /// Runs `done` once a barrier proposed after this call is applied: every write
  /// acknowledged anywhere before the call is then visible here. Reads that arrive while
  /// a barrier is in flight share the next one, so a burst of reads costs one log entry.
  /// Fails with `shard_unavailable` (`not_leader`) when leadership is not (or no longer)
  /// held; a read changes nothing, so the caller may retry it elsewhere.
  void read(done_fn done);

  /// The replica goes away (its shard stops): every read that waits gets `err` now; a
  /// barrier in flight is left to libraft, whose close runs its callback into nothing.
  void close(const core::error& err);

  /// 503 shard_unavailable (`not_leader`) naming the last known leader.
  core::error not_leader() const;

  /// Barriers proposed so far (each serves every read queued when it was proposed).
  std::uint64_t barriers() const noexcept {
    return barriers_;
  }

private:
  struct pending_write;
  struct pending_read;

  void issue_barrier();
  void barrier_done(int status);

  raft* raft_;
  std::vector<done_fn> reading_;    ///< served by the barrier in flight
  std::vector<done_fn> next_reads_; ///< arrived after it was proposed
  std::unique_ptr<pending_read> barrier_;
  std::uint64_t barriers_ = 0;
};

} // namespace shoal::replication
