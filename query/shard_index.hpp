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
// Nothing here writes: every change is planned as a batch, which the caller commits
// through its shard's gate and then reports (created, dropped, built), so memory follows
// only what the store holds. A document write asks `plan_document` for the entry changes
// of every index of its collection, in the document's own batch. A build first counts
// the collection's documents, then visits them in key order, a bounded number per step,
// writing their entries and the new build cursor in one batch. Writes meanwhile maintain
// the index for every document, visited or not, and the builder derives an entry only
// from the document as it is, so both orders agree. The query module owns one
// shard_index and is its only user.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"
#include "query/messages.hpp"
#include "storage/store.hpp"

namespace shoal::query {

class shard_index {
public:
  /// Loads the definitions of the shard's indexes.
  static core::result<std::unique_ptr<shard_index>> open(storage::shard_store& shard);

  /// The index on (collection, path), or nullptr.
  const index_progress* find(std::string_view collection, std::string_view path) const;

  /// The collection's indexes, by path.
  std::vector<index_progress> list(std::string_view collection) const;

  /// Whether `collection` has any index (writes to others need no planning).
  bool indexed(std::string_view collection) const;

  /// The batch that creates the index (building, nothing indexed), or nullopt when it
  /// exists. `path` must be valid_path. Call `created` once the batch is committed.
  std::optional<storage::write_batch> plan_create(std::string_view collection,
                                                  std::string_view path) const;
  void created(std::string_view collection, std::string_view path);

  /// The batch that drops the index, its definition and every entry, or nullopt when
  /// there is none. Call `dropped` once it is committed.
  std::optional<storage::write_batch> plan_drop(std::string_view collection,
                                                std::string_view path) const;
  void dropped(std::string_view collection, std::string_view path);

  /// Adds to `batch` the entry changes for a write of document `id` of `collection` from
  /// `before` to `after` (JSON texts; empty: no live document).
  void plan_document(storage::write_batch& batch, std::string_view collection, std::string_view id,
                     std::string_view before, std::string_view after) const;

  /// Whether an index build has work left.
  bool building() const noexcept;

  /// One build step of one building index: the batch to commit (entries and progress),
  /// what the definition becomes, and how many documents it read.
  struct build_step {
    std::string collection;
    std::string path;
    storage::write_batch batch;
    std::uint32_t visited = 0;
    index_progress progress;
    bool counting = true;
    std::string cursor;
  };

  /// Plans the next step of the first building index over at most `max_docs` documents
  /// (a counting step reads up to 20 times more but parses nothing) and at most about
  /// 4 MiB of them; nullopt when nothing is building. Call `built` once it is committed.
  core::result<std::optional<build_step>> plan_build_step(std::uint32_t max_docs) const;
  void built(const build_step& step);

  /// The best ready index for `spec` on `collection`: equality, then $in, then a range;
  /// nullptr when no condition has one.
  const condition* best_index(std::string_view collection, const query_spec& spec) const;

private:
  struct definition {
    index_progress progress;
    bool counting = true; ///< phase 1: counting documents; phase 2: writing entries
    std::string cursor;   ///< the last document id the current phase visited ("": none)
  };
  using definitions = std::map<std::string, definition, std::less<>>; ///< by path

  explicit shard_index(storage::shard_store& shard);
  void save(std::string_view collection, const definition& def, storage::write_batch& batch) const;

  storage::shard_store& shard_;
  std::map<std::string, definitions, std::less<>> defs_; ///< by collection
};

/// The key prefix of the entries of the index on (collection, path).
std::string index_entry_prefix(std::string_view collection, std::string_view path);

/// The least key above every key that starts with `prefix` ("" when there is none).
std::string successor(std::string prefix);

/// The length of the value key at the start of `key` (values.hpp's layout).
std::size_t value_key_size(std::string_view key);

} // namespace shoal::query
