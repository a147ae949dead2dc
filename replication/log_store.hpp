// SPDX-License-Identifier: Apache-2.0
#pragma once

// The durable half of a shard group's raft_io (docs/replication.md "The raft_io"): the
// current term, the vote, the last snapshot and the log entries of one group, kept in a
// keyspace that many groups share (the node's `raft-log` column family), each group under
// its own prefix. Plain C++, no libraft types: the raft_io converts.
//
// Durability: set_term and set_vote return once synced (elections only, so rare);
// append, truncate and put_snapshot write without a sync, and the raft_io completes them
// after the node's next WAL fsync (shared by every group: group commit), since libraft
// may not count an entry as stored before it is durable.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "storage/store.hpp"

namespace shoal::replication {

struct stored_entry {
  std::uint64_t term = 0;
  std::uint8_t type = 0; ///< libraft's entry type (command, barrier, change)
  std::string payload;
};

struct stored_server {
  std::uint64_t id = 0;
  std::string address;
  std::uint8_t role = 0;
};

struct stored_snapshot {
  std::uint64_t index = 0; ///< of the last entry it covers
  std::uint64_t term = 0;
  std::uint64_t config_index = 0;
  std::vector<stored_server> config;
  std::string data;
};

/// Everything of one group, as libraft's load() wants it: entries[i] is at start_index + i.
struct stored_state {
  std::uint64_t term = 0;
  std::uint64_t vote = 0;
  std::optional<stored_snapshot> snapshot;
  std::uint64_t start_index = 1;
  std::vector<stored_entry> entries;
};

class log_store {
public:
  /// The state of `group` in `keys`. `keys` must outlive the log store.
  log_store(storage::shard_store& keys, std::uint32_t group);

  /// Reads the group's state; checks that the entries have no gap (`corrupt` if they do).
  /// Call once, before any write (libraft's contract for load()).
  core::result<stored_state> load();

  /// Whether the group has any state (a term, a vote, a snapshot or an entry).
  core::result<bool> has_state();

  /// Durable when it returns. set_term also clears the vote (a new term has none yet).
  core::result<void> set_term(std::uint64_t term);
  core::result<void> set_vote(std::uint64_t server_id);

  /// Writes `entries` at first_index, first_index + 1, ... first_index must follow the
  /// last entry (or the snapshot, when the log is empty); `internal` otherwise.
  core::result<void> append(std::uint64_t first_index, const std::vector<stored_entry>& entries);

  /// Deletes the entries from `index` on.
  core::result<void> truncate(std::uint64_t index);

  /// Stores `snapshot` and deletes the entries up to snapshot.index - trailing (every
  /// entry when trailing is 0: the snapshot then replaces the log).
  core::result<void> put_snapshot(const stored_snapshot& snapshot, unsigned trailing);

  /// The last snapshot stored, if any.
  core::result<std::optional<stored_snapshot>> snapshot();

  /// The index of the last entry (or of the snapshot when no entry follows it); 0 when
  /// the group is empty. Known after load().
  std::uint64_t last_index() const noexcept {
    return last_index_;
  }

private:
  std::string key(char kind) const;
  std::string entry_key(std::uint64_t index) const;

  storage::shard_store& keys_;
  std::string prefix_;            ///< 'L' + group (4 bytes, big endian)
  std::uint64_t first_index_ = 0; ///< of the first entry kept; 0: none
  std::uint64_t last_index_ = 0;
  std::uint64_t snapshot_index_ = 0;
};

} // namespace shoal::replication
