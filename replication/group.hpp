// SPDX-License-Identifier: Apache-2.0
#pragma once

// One replica of one shard's Raft group, put together (docs/replication.md): the log in
// the store's raft-log keyspace (log_store), our raft_io (group_io) behind the guard for
// libraft's follower defects (io_guard), libraft's `raft`, the shard as its state
// machine, and the replica a commit path proposes and reads through. The host gives the
// clock, ticks, transport, fsync and "run later" (io_host), and drives it from its one
// thread; tests drive it from a simulated network. raft.h stays in the .cpp.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/replicas.hpp"
#include "core/result.hpp"
#include "replication/group_io.hpp"
#include "replication/snapshot_transfer.hpp"
#include "storage/store.hpp"

struct raft;

namespace shoal::replication {

class log_store;
class io_guard;
class state_machine;
class snapshot_stage;
class replica;
struct metrics;

/// A voter of the group: its server id (1-based, the same on every replica) and its
/// address (what the transport sends to: the node's id).
struct group_member {
  std::uint64_t id = 0;
  std::string address;
};

struct group_config {
  std::uint32_t shard = 0;             ///< the shard, and its prefix in the raft-log keyspace
  std::uint64_t self = 0;              ///< this replica's server id, one of `voters`
  std::vector<group_member> voters;    ///< the group as bootstrapped (the same everywhere)
  bool sync_applies = false;           ///< fsync every applied entry (storage.sync)
  unsigned election_timeout_ms = 1000; ///< libraft randomizes it further (×1..2)
  unsigned heartbeat_timeout_ms = 100;
  unsigned snapshot_entries = 1024;  ///< libraft's snapshot threshold
  unsigned snapshot_trailing = 2048; ///< entries kept after a snapshot
  /// Snapshot streams: chunk size, chunks in flight, resend and abandon times.
  transfer_options streams;
  /// libraft's wait for a follower to confirm an install before it offers the snapshot
  /// again; a stream still running for it goes on (snapshot_transfer::send).
  unsigned snapshot_timeout_ms = 10000;
  metrics* counted = nullptr; ///< the node's replication metrics; may be null
};

class group {
public:
  /// Nothing starts yet; `store` must outlive the group.
  group(storage::store& store, group_config cfg, io_host host);
  /// Close it first (and let the close complete), unless it never started: libraft
  /// refers to the io, the machine and itself until then.
  ~group();
  group(const group&) = delete;
  group& operator=(const group&) = delete;

  /// Starts the replica: bootstraps the group's first configuration when the log is
  /// empty (every replica bootstraps the same one), then libraft loads the log, restores
  /// the last snapshot and replays what follows it.
  core::result<void> start();

  /// Stops it; `closed` runs (through the io's post) once libraft let go of everything.
  void close(std::function<void()> closed);

  /// Bytes a peer's group sent to this replica.
  void deliver(std::string_view bytes);

  replica& rep() noexcept {
    return *replica_;
  }
  state_machine& machine() noexcept {
    return *machine_;
  }
  group_io& io() noexcept {
    return *io_;
  }
  raft* raw() noexcept {
    return raft_.get();
  }
  bool started() const noexcept {
    return started_;
  }

  /// How this replica stands (for the cluster view): its role, the leader it follows,
  /// term, commit, applied and last index, the voters by node, and on a leader each
  /// voter's last replicated entry. An unstarted group reports itself unavailable.
  cluster::replica_report report() const;

  /// This replica's role now (cheap: what the host checks after every message).
  cluster::replica_role role() const noexcept;
  std::uint64_t term() const noexcept;

private:
  storage::store& store_;
  group_config cfg_;
  std::unique_ptr<log_store> log_;
  std::unique_ptr<snapshot_stage> stage_;
  std::unique_ptr<group_io> io_;
  std::unique_ptr<io_guard> guard_;
  std::unique_ptr<state_machine> machine_;
  std::unique_ptr<raft> raft_;
  std::unique_ptr<replica> replica_;
  bool started_ = false;
  std::function<void()> closed_;
};

} // namespace shoal::replication
