// SPDX-License-Identifier: Apache-2.0
#pragma once

// A raft_io that wraps another and corrects two defects of libraft 0.15's follower
// (docs/replication.md "libraft defects we work around"), both the same mistake: the
// follower treats its whole log as matching the leader's, though only the entries up to
// the end of the AppendEntries it is answering (prev_log_index + n_entries) are known to.
// A follower keeps entries of an older term past that point until a later request
// conflicts with them, and libraft 0.15
//
// 1. answers a successful AppendEntries with its last stored index, which the leader
//    takes as the follower's match index. An entry of the new leader then counts as held
//    by a follower that holds another entry at that index: it can be committed, and
//    acknowledged, while on a minority, and lost at the next election. Found by
//    tests/replication/replica_history_test.cpp (seed 410 without this guard).
// 2. sets its commit index to min(leader_commit, last stored index), so such an entry
//    can be taken as committed, and applied.
//
// The guard caps both at the end of the request: leader_commit in every AppendEntries it
// delivers, last_log_index in every successful result it sends (answered at once, or
// after the append the request caused). Raft's own rules (figure 2: "index of last new
// entry"); nothing else changes. The inner io must copy a message in send(), as
// libraft's fixture and ours do.

#include <cstdint>
#include <memory>

struct raft_io;

namespace shoal::replication {

class io_guard {
public:
  /// Wraps `inner`, which must outlive the guard.
  explicit io_guard(raft_io* inner);
  ~io_guard();
  io_guard(const io_guard&) = delete;
  io_guard& operator=(const io_guard&) = delete;

  /// The io to give libraft: to raft_init, which sets its `data`; or, for a server of
  /// libraft's fixture (created on the inner io), as the raft's `io` before it starts,
  /// with `data` set to that raft.
  raft_io* io() noexcept;

  /// Deliveries whose leader_commit was lowered, and results whose last_log_index was.
  std::uint64_t capped_commits() const noexcept;
  std::uint64_t capped_results() const noexcept;

  struct state; ///< the wrapper's data (public so its C trampolines may name it)

private:
  std::unique_ptr<state> s_;
};

} // namespace shoal::replication
