// SPDX-License-Identifier: Apache-2.0
#pragma once

// The bytes a replicated shard puts in its Raft log and in its snapshots
// (docs/replication.md). One log entry is one shard write batch, as the leader's module
// decided it; a snapshot is the shard's whole keyspace at an applied index. Both carry
// an XXH64 checksum and are checked before anything of them is applied.
//
//   entry:    0x01, varint op count, ops..., XXH64 (8 bytes, little endian)
//   snapshot: 0x02, applied index (8 bytes, big endian), varint op count, ops..., XXH64
//   op:       kind (1 put, 2 del, 3 del_range), varint key size, key,
//             and for put and del_range: varint value size, value
//
// Keys are the shard's own (the column family is not named): a batch means the same on
// every replica, whatever the column family ids of each node's database.

#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.hpp"
#include "storage/store.hpp"

namespace shoal::replication {

/// The encoded form of `batch` as one log entry.
std::string encode_entry(const storage::write_batch& batch);

/// The batch of an entry; `errc::corrupt` when the bytes are not one (a wrong format
/// byte, a length past the end, bytes left over, or a checksum that does not match).
core::result<storage::write_batch> decode_entry(std::string_view bytes);

/// A shard's keyspace at `applied_index`, as puts in key order.
struct snapshot_image {
  std::uint64_t applied_index = 0;
  storage::write_batch puts;
};

std::string encode_snapshot(const snapshot_image& image);
core::result<snapshot_image> decode_snapshot(std::string_view bytes);

} // namespace shoal::replication
