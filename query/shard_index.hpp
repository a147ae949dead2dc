// SPDX-License-Identifier: Apache-2.0
#pragma once

// The secondary indexes of one shard, over its keyspace (storage::shard_store).
//
// Layout (an on-disk contract, docs/architecture.md "Indexes"):
// - definition: 'i' ++ collection ++ '\0' ++ path → JSON {state, indexed, total, phase,
//   cursor}: the build's progress, written with every build step;
// - entry: 'x' ++ collection ++ '\0' ++ path ++ '\0' ++ value key ++ document id → "".
//   Documents whose value at the path is missing or not scalar have no entry.
//
// A document write asks `plan_document` for the entry changes of every index of its
// collection and puts them in the document's own WriteBatch, so entries and documents
// never disagree, whatever crashes. A build first counts the collection's documents,
// then visits them in key order, a bounded number per step, writing their entries and the
// new build cursor in one batch. Writes meanwhile maintain the index for every document,
// visited or not, and the builder derives an entry only from the document as it is, so
// both orders agree. The shard actor owns one shard_index and is its only user.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "query/query.hpp"
#include "storage/status.hpp"
#include "storage/store.hpp"

namespace shoal::query {

/// What GET /v1/collections/{c}/indexes/{field} reports, per shard and summed by the edge.
struct index_progress {
  std::string field;
  bool ready = false;        ///< false: building
  std::uint64_t indexed = 0; ///< documents the build has visited (ready: all of them)
  std::uint64_t total = 0;   ///< documents in the collection, as counted by the build

  /// {"field","state":"building"|"ready","indexed","total"}
  std::string to_json() const;
  static std::optional<index_progress> from_json(std::string_view text);
};

/// Result of a query on one shard: hits or a plan, or a refusal (400 with the code).
using shard_answer = std::variant<shard_hits, shard_plan, query_error>;

/// How documents are stored, which this library does not own (actors/documents.hpp).
struct document_layout {
  /// The key prefix of a collection's documents; a document's key is prefix ++ id.
  std::function<std::string(std::string_view collection)> prefix;
  /// Decodes a stored value: false when it is not a live document (a tombstone, or
  /// corrupt); otherwise sets the version and the JSON text (a view into `stored`).
  std::function<bool(std::string_view stored, std::uint64_t& version, std::string_view& json)>
    decode;
};

class shard_index {
public:
  /// Loads the definitions of the shard's indexes.
  static storage::status open(storage::shard_store& shard, document_layout layout,
                              std::unique_ptr<shard_index>& out);

  /// The index on (collection, path), or nullptr.
  const index_progress* find(std::string_view collection, std::string_view path) const;

  /// The collection's indexes, by path.
  std::vector<index_progress> list(std::string_view collection) const;

  /// Creates the index (building) and sets `created`, or finds it (`created` false).
  /// `path` must be valid_path. Writes the definition.
  storage::status create(std::string_view collection, std::string_view path, bool& created);

  /// Drops the index, its definition and every entry in one batch; `found` false when
  /// there was none.
  storage::status drop(std::string_view collection, std::string_view path, bool& found);

  /// Whether `collection` has any index (writes to others need no planning).
  bool indexed(std::string_view collection) const;

  /// Adds to `batch` the entry changes for a write of document `id` of `collection` from
  /// `before` to `after` (JSON texts; empty: no live document).
  void plan_document(storage::write_batch& batch, std::string_view collection, std::string_view id,
                     std::string_view before, std::string_view after) const;

  /// Whether an index build has work left.
  bool building() const noexcept;

  /// Runs one build step of one building index over at most `max_docs` documents (a
  /// counting step reads up to 20 times more but parses nothing), and at most about 4 MiB
  /// of them whatever the count, and writes its entries and progress in one batch;
  /// `visited` tells how many documents it read. Call while `building()`.
  storage::status build_step(std::uint32_t max_docs, std::uint32_t& visited);

  /// Answers `spec` on this shard for `collection`: from the best ready index on a
  /// condition's path (equality over $in over a range), or a full scan when allowed.
  /// With `spec.explain`, the plan instead, which never refuses: a full scan is reported
  /// as index "" and bounds "all".
  shard_answer run(std::string_view collection, const query_spec& spec);

private:
  struct definition {
    index_progress progress;
    bool counting = true; ///< phase 1: counting documents; phase 2: writing entries
    std::string cursor;   ///< the last document id the current phase visited ("": none)
  };
  using definitions = std::map<std::string, definition, std::less<>>; ///< by path

  shard_index(storage::shard_store& shard, document_layout layout);
  storage::status save(std::string_view collection, const definition& def,
                       storage::write_batch& batch) const;

  storage::shard_store& shard_;
  document_layout layout_;
  std::map<std::string, definitions, std::less<>> defs_; ///< by collection
};

/// The key prefix of the entries of the index on (collection, path).
std::string index_entry_prefix(std::string_view collection, std::string_view path);

} // namespace shoal::query
