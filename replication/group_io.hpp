// SPDX-License-Identifier: Apache-2.0
#pragma once

// Our raft_io for one shard group (docs/replication.md "The raft_io"): the log in a
// log_store, messages through whatever transport the host gives (bytes to a server id),
// time and ticks from the host's clock, appends completed after the host's shared WAL
// fsync. No thread of its own and no CAF: the shard host drives it from its actor, tests
// from a simulated network and clock. raft.h stays in the .cpp.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "core/result.hpp"
#include "replication/log_store.hpp"
#include "replication/snapshot_transfer.hpp"
#include "storage/store.hpp"

struct raft_io;

namespace shoal::replication {

struct metrics;

/// What the host provides. Every function is called on the group's thread and must not
/// call back into the io before returning (post() exists for "later").
struct io_host {
  /// Milliseconds on the host's clock.
  std::function<std::uint64_t()> now_ms;
  /// Calls `tick` every `msecs` until stop_ticks().
  std::function<void(unsigned msecs, std::function<void()> tick)> start_ticks;
  std::function<void()> stop_ticks;
  /// Sends `bytes` to server `to` (at `address`); may be lost, never reordered into a
  /// call: delivery comes back through group_io::deliver on the receiver.
  std::function<void(std::uint64_t to, const std::string& address, std::string bytes)> send;
  /// Runs `done` once every write made so far is durable (the node's WAL fsync), with the
  /// error when the fsync failed.
  std::function<void(std::function<void(core::result<void>)> done)> after_sync;
  /// Runs `fn` later on the group's thread.
  std::function<void(std::function<void()> fn)> post;
  /// Seeds libraft's randomized election timeouts.
  std::uint64_t seed = 1;
};

class group_io {
public:
  group_io(log_store& log, io_host host);
  ~group_io();
  group_io(const group_io&) = delete;
  group_io& operator=(const group_io&) = delete;

  /// The io to give raft_init (directly, or wrapped in an io_guard).
  raft_io* io() noexcept;

  /// Bytes a peer sent: decoded and handed to libraft, or dropped (and counted) when
  /// they are not a message or the io is not started.
  void deliver(std::string_view bytes);

  std::uint64_t dropped() const noexcept;

  /// Where it counts the snapshot bytes it sends; may be null (the default).
  void count_into(metrics* m) noexcept;

  /// Snapshots as tokens (docs/replication.md "Snapshots"): an InstallSnapshot libraft
  /// sends becomes a stream of `shard`'s image, and one that arrives is staged in `stage`
  /// before libraft sees it. Without this call (libraft's fixture tests), a snapshot's
  /// data travels inside the message. Call before start; both must outlive the io.
  void serve_snapshots(storage::shard_store& shard, snapshot_stage& stage,
                       const transfer_options& options);

  /// What the snapshot streams did so far (zeros without serve_snapshots).
  snapshot_transfer::counters streams() const noexcept;

  /// Whether an fsync failed. The io then takes no more writes (appends, truncations,
  /// snapshots, term and vote fail with RAFT_IOERR): libraft believes the failed appends
  /// gone while the store may hold them. The host closes the group and starts it again
  /// from the store, which brings both views together.
  bool failed() const noexcept;

  struct state; ///< the io's data (public so its C functions may name it)

private:
  std::unique_ptr<state> s_;
};

} // namespace shoal::replication
