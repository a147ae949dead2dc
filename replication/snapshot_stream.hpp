// SPDX-License-Identifier: Apache-2.0
#pragma once

// Snapshots without a copy (docs/replication.md "Snapshots"). A replicated shard's data
// already is its state machine, so the snapshot libraft takes and keeps is a token: the
// index it covers. Only a follower too far behind for the log needs the data itself,
// and then the leader streams the shard's keyspace to it, read from a consistent view
// (image_reader), in chunks the follower stages beside its log (snapshot_stage) and
// installs once the whole image arrived and its checksum matched. The previous data
// stays until then. Internal to replication/.
//
//   token:  0x03 (local) or 0x04 (staged), then the applied index (8 bytes, big endian)
//   chunk:  0x02, stream (8), seq (4), sender id (8), sender address (sized), last (1),
//           records (sized); a last chunk also: the image's applied index (8), keys (8),
//           record bytes (8), XXH64 of every chunk's records in order (8), and libraft's
//           InstallSnapshot message (sized, wire.hpp)
//   ack:    0x05, stream (8), seq (4), sender id (8), sender address (sized)
//   records: (key sized, value sized)...
//
// libraft's own messages start with 0x01 (wire.hpp), so one transport carries both.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.hpp"
#include "storage/store.hpp"

namespace shoal::replication {

/// What a snapshot's data says. `local`: taken by this replica; its shard holds it.
/// `staged`: an image that came over the wire and waits in the snapshot stage.
struct snapshot_token {
  enum class kind : std::uint8_t { local, staged };
  kind what = kind::local;
  std::uint64_t applied_index = 0; ///< of the shard data it stands for
};

std::string encode_token(const snapshot_token& t);
/// The token in `bytes`; nothing when they are something else (an old full image).
std::optional<snapshot_token> decode_token(std::string_view bytes);

struct snapshot_chunk {
  std::uint64_t stream = 0;
  std::uint32_t seq = 0;
  std::uint64_t from = 0; ///< the sender's server id
  std::string from_address;
  std::string records;
  bool last = false;
  // A last chunk only:
  std::uint64_t applied_index = 0;
  std::uint64_t keys = 0;
  std::uint64_t bytes = 0;
  std::uint64_t checksum = 0;
  std::string install;
};

struct snapshot_ack {
  std::uint64_t stream = 0;
  std::uint32_t seq = 0;
  std::uint64_t from = 0;
  std::string from_address;
};

/// Whether `bytes` are a chunk or an ack rather than a libraft message.
bool is_stream_frame(std::string_view bytes) noexcept;
bool is_ack_frame(std::string_view bytes) noexcept;

std::string encode_chunk(const snapshot_chunk& c);
std::string encode_ack(const snapshot_ack& a);
/// `corrupt` when the bytes are not one.
core::result<snapshot_chunk> decode_chunk(std::string_view bytes);
core::result<snapshot_ack> decode_ack(std::string_view bytes);

/// XXH64 over a stream's records, chunk after chunk.
class stream_hash {
public:
  stream_hash();
  ~stream_hash();
  stream_hash(const stream_hash&) = delete;
  stream_hash& operator=(const stream_hash&) = delete;
  void add(std::string_view bytes);
  std::uint64_t value() const;

private:
  struct state;
  std::unique_ptr<state> s_;
};

/// A shard's keyspace as records, read from one consistent view in pieces: what commits
/// after the reader was made is not in the image, and no key is missed or repeated.
class image_reader {
public:
  /// The view is taken now. The shard's applied-index key is left out of the records
  /// (`applied_index()` carries it).
  image_reader(storage::shard_store& shard, std::string_view applied_key);

  /// The applied index of the view (0 when the shard never applied an entry).
  core::result<std::uint64_t> applied_index();

  /// The records after the last ones returned, about `max_bytes` of them (at least one
  /// record when any is left); empty once the image is done.
  core::result<std::string> next(std::size_t max_bytes);

  bool done() const noexcept {
    return done_;
  }
  std::uint64_t keys() const noexcept {
    return keys_;
  }

private:
  std::unique_ptr<storage::shard_view> view_;
  std::string applied_key_;
  std::string cursor_; ///< the first key not read yet
  bool done_ = false;
  std::uint64_t keys_ = 0;
};

/// Where a follower keeps an image while it arrives, and until its shard took it: in
/// the raft-log keyspace (not the shard's, so the shard keeps its data meanwhile),
/// under 'S' + group. A sealed stage holds a whole, verified image and its applied
/// index. Installing replaces the shard's keyspace in bounded batches; a crash half-way
/// leaves the stage sealed and the shard's applied index below the image's, and the
/// install runs again (libraft restores the staged token on the next start).
class snapshot_stage {
public:
  snapshot_stage(storage::shard_store& keys, std::uint32_t group);

  /// Drops whatever is staged.
  core::result<void> clear();

  /// Stages `records` (unsynced); returns how many keys they held, or `corrupt`.
  core::result<std::uint64_t> add(std::string_view records);

  /// Marks the staged image whole, at `applied_index` (unsynced: the caller waits for
  /// the next fsync before it hands the image to libraft).
  core::result<void> seal(std::uint64_t applied_index);

  /// The applied index of a sealed image, if one is staged.
  core::result<std::optional<std::uint64_t>> sealed();

  /// Replaces every key of `shard` with the sealed image, in writes of about
  /// `batch_bytes`, then writes its applied index under `applied_key` (synced) and
  /// clears the stage. Returns the bytes copied. `internal` when nothing is sealed.
  core::result<std::uint64_t> install_into(storage::shard_store& shard,
                                           std::string_view applied_key,
                                           std::size_t batch_bytes = 4u << 20);

  /// Set while libraft holds an InstallSnapshot of the staged image: a new stream must
  /// not clear the stage under it.
  bool handed_over = false;

private:
  std::string key(char kind) const;

  storage::shard_store& keys_;
  std::string prefix_; ///< 'S' + group (4 bytes, big endian)
};

} // namespace shoal::replication
