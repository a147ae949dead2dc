// SPDX-License-Identifier: Apache-2.0
#pragma once

// The commit seam (docs/architecture.md "The middle"): what becomes of a module's write
// between context::commit and its answer. A shard host has exactly one:
//
// - shard::durability_gate (one copy of the shard): the batch is written to the store at
//   once; with storage.sync its answer waits for the node's group fsync.
// - replication::replicated_path (a shard replicated with Raft): the batch is proposed
//   as a log entry and seen at once through an overlay on the store; its answer waits
//   until it is applied, that is committed on a quorum; every answer about the shard
//   waits for a read barrier, so a deposed leader answers nothing stale.
//
// host_context forwards the durability half of shard::context here; timers and deferred
// steps stay with it. Single-threaded like the shard host.

#include <string_view>

#include "core/result.hpp"
#include "shard/context.hpp"
#include "storage/store.hpp"

namespace shoal::shard {

class commit_path {
public:
  virtual ~commit_path() = default;

  /// What the modules read: every commit is visible here as soon as commit() returned.
  virtual storage::shard_store& store() noexcept = 0;

  /// context::commit, pending, all_durable, after_durable, after_all_durable.
  virtual core::result<void> commit(storage::write_batch&& batch, commit_done done) = 0;
  virtual bool pending(std::string_view key) const = 0;
  virtual bool all_durable() const = 0;
  virtual void after_durable(std::string_view key, barrier_fn fn) = 0;
  virtual void after_all_durable(barrier_fn fn) = 0;

  /// After every step of the host: runs the completions that became due inside it.
  virtual void run_completions() = 0;

  /// The shard stops: whatever waits gets its final answer now (a write that may be kept
  /// `outcome_unknown`, a read `shutting_down`), while the modules are still alive.
  virtual void stop() = 0;
};

} // namespace shoal::shard
