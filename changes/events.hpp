// SPDX-License-Identifier: Apache-2.0
#pragma once

// The change feed's data: the events one shard returns for a collection, and the resume
// point a stream hands its client. Pure codecs, no CAF; the shard side keeps the log
// (changes/change_log.hpp, changes/module.hpp), the edge streams it
// (http/change_stream.hpp).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace shoal::changes {

enum class event_kind : std::uint8_t { put = 1, del = 2 };

/// One committed write of a document, numbered by its shard: `seq` counts the writes of
/// one collection on one shard from 1, without gaps.
struct event {
  std::uint64_t seq = 0;
  event_kind kind = event_kind::put;
  std::string id;
  std::uint64_t version = 0;
  std::string doc;           ///< put: the document's JSON text; empty for a delete
  std::uint64_t time_ms = 0; ///< commit time (Unix ms), for age-based retention
};

/// What a shard answers to a changes read: the events after the requested sequence, in
/// order, and the log's bounds: `first` is the oldest retained sequence (last + 1 when
/// none is kept), `last` the newest committed one (0: none ever).
struct batch {
  std::vector<event> events;
  std::uint64_t first = 1;
  std::uint64_t last = 0;
};

/// A stored event (the value of its change-log key): kind, version, time, id, doc.
std::string encode_event(const event& e);
std::optional<event> decode_event(std::uint64_t seq, std::string_view bytes);

/// `data:` of an event's SSE message: {"id":..,"version":..,"doc":..} (no doc on delete).
std::string event_data_json(const event& e);

/// A stream's resume point: the last sequence delivered from each shard (0: none).
/// Written as the SSE `id:` of every event, so any event id resumes exactly after it.
struct position {
  std::vector<std::uint64_t> seqs; ///< one per shard

  /// Compact text: "v1." then base64url of the shard count and each seq as varints.
  std::string encode() const;
  /// nullopt when `text` is not an encoded position or names another shard count.
  static std::optional<position> decode(std::string_view text, std::uint32_t shards);
};

} // namespace shoal::changes
