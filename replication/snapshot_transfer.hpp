// SPDX-License-Identifier: Apache-2.0
#pragma once

// Moving a shard's image from a leader to a follower that fell behind the log
// (docs/replication.md "Snapshots"), for one group's raft_io. The sender reads the
// image from a consistent view one chunk per step and keeps at most `window` chunks
// unacknowledged, resending them when no ack came for `resend_ms`. The receiver stages
// each chunk in order and acks it; after the last one it checks the key count, the
// bytes and the checksum, seals the stage, waits for the fsync, and only then hands
// libraft the InstallSnapshot the sender's libraft asked for. A stream that breaks off
// is replaced by the next one libraft starts. Plain C++ on the group's thread.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.hpp"
#include "replication/snapshot_stream.hpp"
#include "storage/store.hpp"

namespace shoal::replication {

struct metrics;

struct transfer_host {
  std::function<std::uint64_t()> now_ms;
  std::function<void(std::uint64_t to, const std::string& address, std::string bytes)> send;
  std::function<void(std::function<void()> fn)> post;
  std::function<void(std::function<void(core::result<void>)> done)> after_sync;
  /// The whole image is staged, sealed and durable: hand libraft `install` (the sender's
  /// InstallSnapshot message, encoded) with the staged image's `applied_index`.
  std::function<void(std::string_view install, std::uint64_t applied_index)> install;
};

struct transfer_options {
  std::size_t chunk_bytes = 1u << 20;
  unsigned window = 4;
  unsigned resend_ms = 2000;
  /// A stream with no ack for this long is dropped (the peer is gone, or this replica
  /// no longer leads): it pins a RocksDB snapshot and would resend forever.
  unsigned abandon_ms = 30000;
};

class snapshot_transfer {
public:
  snapshot_transfer(storage::shard_store& shard, snapshot_stage& stage, transfer_host host,
                    transfer_options opt, std::uint64_t seed);
  ~snapshot_transfer();
  snapshot_transfer(const snapshot_transfer&) = delete;
  snapshot_transfer& operator=(const snapshot_transfer&) = delete;

  /// Who this replica is (the acks' and chunks' sender).
  void identify(std::uint64_t id, std::string address);

  /// Streams the shard's image to server `to`, then `install` (libraft's InstallSnapshot
  /// for the snapshot at `snapshot_index`). A stream to `to` whose image already covers
  /// `snapshot_index` (it was asked for that snapshot or a later one, or its shard had
  /// applied that far) goes on and carries the new message; any other is replaced.
  void send(std::uint64_t to, const std::string& address, std::uint64_t snapshot_index,
            std::string install);

  /// A chunk or an ack a peer sent.
  void deliver(std::string_view bytes);

  /// Resends what waits too long for an ack, and drops a stream that waited longer than
  /// abandon_ms; call on every tick.
  void tick();

  /// Stops every stream (the io closes).
  void close();

  void count_into(metrics* m) noexcept {
    metrics_ = m;
  }

  struct counters {
    std::uint64_t streams_started = 0;
    std::uint64_t streams_finished = 0;  ///< every chunk acked
    std::uint64_t streams_abandoned = 0; ///< no ack for abandon_ms
    std::uint64_t chunks_sent = 0;       ///< resent ones included
    std::uint64_t chunks_resent = 0;
    std::uint64_t images_staged = 0;  ///< whole, verified, handed to libraft
    std::uint64_t images_refused = 0; ///< the last chunk did not match what arrived
    std::uint64_t frames_dropped = 0; ///< out of order, stale or damaged
  };
  const counters& stats() const noexcept {
    return stats_;
  }

private:
  struct outgoing;
  struct incoming;

  void produce(std::uint64_t to, std::uint64_t stream);
  void on_chunk(snapshot_chunk c);
  void on_ack(const snapshot_ack& a);
  void ack(const incoming& in, std::uint32_t seq);
  void abandon_incoming();

  storage::shard_store& shard_;
  snapshot_stage& stage_;
  transfer_host host_;
  transfer_options opt_;
  std::uint64_t next_stream_;
  std::uint64_t self_ = 0;
  std::string address_;
  std::map<std::uint64_t, std::unique_ptr<outgoing>> out_; ///< by peer
  std::unique_ptr<incoming> in_;
  counters stats_;
  metrics* metrics_ = nullptr;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

} // namespace shoal::replication
