// SPDX-License-Identifier: Apache-2.0
#pragma once

// A shard as a Raft state machine (docs/replication.md "Where the group lives"): every
// replica applies the committed log entries, each one a shard write batch, in log order,
// and stores the index of the last one applied in the same RocksDB batch. So a replay
// after a restart (libraft re-applies every entry after its last snapshot on each start)
// skips what the shard already holds, and the shard never holds half an entry.
//
// Plain C++ over a storage::shard_store; libraft's C callbacks are adapted in the .cpp
// (raft.h stays out of this header). Called only on the thread that drives its raft.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/result.hpp"
#include "storage/store.hpp"

struct raft;
struct raft_fsm;

namespace shoal::replication {

struct metrics;
class snapshot_stage;

/// Where a replicated shard keeps the index of the last entry it applied (8 bytes, big
/// endian). 'r' is no module's key prefix (docs/architecture.md lists them).
inline constexpr std::string_view applied_key = "r.applied";

class state_machine {
public:
  /// With `sync`, every applied entry is fsynced before it counts as applied. With a
  /// `stage`, snapshots are tokens and installs come from the stage (docs/replication.md
  /// "Snapshots"); without one, a snapshot is the whole keyspace in one buffer, which is
  /// what libraft's fixture can carry. `stage` must outlive the machine.
  state_machine(storage::shard_store& shard, bool sync, snapshot_stage* stage = nullptr);
  ~state_machine();
  state_machine(const state_machine&) = delete;
  state_machine& operator=(const state_machine&) = delete;

  /// The libraft view of this machine (fsm version 1), for raft_init or
  /// raft_fixture_grow. Its callbacks need the raft it drives: call bind() before start.
  raft_fsm* fsm() noexcept;
  void bind(raft* r) noexcept;

  /// The index of the last entry applied (read from the shard when constructed).
  std::uint64_t applied() const noexcept {
    return applied_;
  }

  /// Applies the entry at `index`: nothing when `index` is not past applied() (a replay),
  /// else its batch and the new applied index in one write. A damaged entry or a failed
  /// write changes nothing and returns the error; libraft then stops applying and tries
  /// again later, so no entry is ever skipped.
  core::result<void> apply(std::uint64_t index, std::string_view entry);

  /// A snapshot taken at `index` (the caller's last applied index: entries without a
  /// batch, such as barriers, advance it without a write): with a stage, a token for
  /// the shard as it is; without, the shard's keyspace.
  core::result<std::string> snapshot(std::uint64_t index);

  /// Replaces the shard's keyspace with a snapshot's, unless the shard has applied that
  /// far already (libraft restores the last snapshot on every start; the shard kept it).
  /// A local token changes nothing (the shard is what it stands for); a staged token
  /// installs the stage's image (again, after a crash half-way); a keyspace is written.
  core::result<void> restore(std::string_view snapshot);

  /// The shard's applied state in short: applied(), its key count and an XXH64 over
  /// every key and value in key order (lengths included, so no two keyspaces collide by
  /// concatenation). Reads the whole shard: an admin read, not a hot path.
  struct digest_value {
    std::uint64_t applied_index = 0;
    std::uint64_t keys = 0;
    std::uint64_t checksum = 0;
  };
  core::result<digest_value> digest();

  /// The last error apply or restore returned, for the host's report (empty when none).
  const std::string& last_error() const noexcept {
    return last_error_;
  }

  /// Where it counts the snapshot bytes it installs; may be null (the default).
  void count_into(metrics* m) noexcept {
    metrics_ = m;
  }

private:
  core::result<void> remember(core::result<void> r);

  core::result<void> restore_staged(std::uint64_t applied_index);

  storage::shard_store& shard_;
  bool sync_;
  snapshot_stage* stage_ = nullptr;
  std::uint64_t applied_ = 0;
  raft* raft_ = nullptr;
  std::unique_ptr<raft_fsm> fsm_;
  std::string last_error_;
  metrics* metrics_ = nullptr;
};

/// The applied index a shard holds (0 when it never applied one).
core::result<std::uint64_t> read_applied(storage::shard_store& shard);
/// The same from what a get of applied_key returned (a shard's, or a view's).
core::result<std::uint64_t> parse_applied(core::result<std::string> raw);
/// applied_key's value for `index`.
std::string encode_applied(std::uint64_t index);

} // namespace shoal::replication
