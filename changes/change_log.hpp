// SPDX-License-Identifier: Apache-2.0
#pragma once

// The change log of one shard: for each collection, the events of its committed
// document writes, numbered 1, 2, 3, ... without gaps, kept in the shard's keyspace
// under 'c' ++ collection ++ '\0' ++ seq (8 bytes big-endian) → encode_event. The changes
// module adds the event of a write to the write's own WriteBatch, so a document and its
// event are committed together, and is this log's only user (no locks). Nothing here
// writes: the caller commits what it plans.
//
// Retention: past `max_events` per collection, each new event's batch also deletes the
// oldest; `trim_by_age` deletes events older than `max_age_ms`. The newest event is never
// trimmed, so the sequence continues across restarts.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "changes/events.hpp"
#include "core/result.hpp"
#include "storage/store.hpp"

namespace shoal::changes {

struct retention {
  std::uint64_t max_events = 100'000; ///< per collection, at least 1
  std::uint64_t max_age_ms = 0;       ///< 0: no age limit
};

/// An event added to a batch that is not written yet: `commit` it once the write
/// succeeded (and only then).
struct pending {
  std::string collection;
  std::uint64_t seq = 0;
  std::uint64_t trimmed_to = 0; ///< the batch also deletes events up to this seq (0: none)
};

class change_log {
public:
  change_log(storage::shard_store& shard, retention keep);

  /// Adds event `e` (its seq is assigned here) to `batch`, plus the deletion of the
  /// oldest event when the collection is at `max_events`. Reads the collection's bounds
  /// from the store on first use. `commit` the result once the batch is applied.
  core::result<pending> append(storage::write_batch& batch, std::string_view collection, event e);

  /// The batch of `p` was written.
  void commit(const pending& p);

  /// Events up to `seq` may be read (with storage.sync, once the fsync covering them is
  /// done; without it, at once after commit).
  void publish(std::string_view collection, std::uint64_t seq);

  /// Documents a read returns at most, in bytes (at least one event is returned), so a
  /// batch stays small whatever the documents' size.
  static constexpr std::size_t max_batch_bytes = 1u << 20;

  /// The published events of `collection` after `after`, at most `limit` and about
  /// max_batch_bytes of documents, and the bounds. `after` == UINT64_MAX: none, with the
  /// bounds (a stream starting "now"). Error gone when events after `after` were trimmed
  /// or `after` is past the newest.
  /// (`gone` is the error gone.)
  core::result<batch> read(std::string_view collection, std::uint64_t after, std::uint32_t limit);

  /// The newest published sequence of `collection` (0: none), loading its bounds if needed.
  core::result<std::uint64_t> published(std::string_view collection);

  /// The deletion of up to `max_deletes` events, over all loaded collections, older than
  /// `now_ms - max_age_ms` (never a collection's newest); nullopt when there is none.
  /// `trimmed` once the batch is applied.
  struct trim_plan {
    storage::write_batch batch;
    std::vector<std::pair<std::string, std::uint64_t>> upto; ///< collection → last deleted seq
  };
  core::result<std::optional<trim_plan>> plan_trim(std::uint64_t now_ms, std::size_t max_deletes);
  void trimmed(const trim_plan& plan);

  /// The storage key of event `seq` of `collection`.
  static std::string key(std::string_view collection, std::uint64_t seq);
  static std::string prefix(std::string_view collection);

private:
  struct bounds {
    std::uint64_t first = 1;     ///< oldest kept (last + 1 when none)
    std::uint64_t last = 0;      ///< newest written
    std::uint64_t published = 0; ///< newest readable
  };
  core::result<bounds*> load(std::string_view collection);

  storage::shard_store& shard_;
  retention keep_;
  std::map<std::string, bounds, std::less<>> bounds_;
};

} // namespace shoal::changes
