// SPDX-License-Identifier: Apache-2.0
#pragma once

// libraft's messages as bytes, for a transport of our own (libraft 0.15 exports no
// encoder or decoder). Internal to replication/: it includes raft.h.
//
//   version 0x01, type (1 byte), sender id (8), sender address (4 + bytes), then the
//   fields of the type, numbers big endian; entries and snapshot data sized (4 + bytes).

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/result.hpp"
#include "replication/raft_c.hpp"

namespace shoal::replication {

/// `m` as bytes; `m.server_id` and `m.server_address` name the sender.
std::string encode_message(const raft_message& m);

/// A decoded message and the storage of its sender's address. Entries, their batch, a
/// snapshot's configuration and data are allocated with raft_malloc: handing `msg` to
/// libraft's recv callback hands them over (libraft frees them). A message never handed
/// over must be released with release().
struct decoded_message {
  raft_message msg{};
  std::string address;

  /// Frees what `msg` owns (for a message that will not be delivered).
  void release() noexcept;
};

/// The message in `bytes`, or `corrupt` when they are not one.
core::result<std::unique_ptr<decoded_message>> decode_message(std::string_view bytes);

} // namespace shoal::replication
