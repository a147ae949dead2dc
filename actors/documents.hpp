// SPDX-License-Identifier: Apache-2.0
#pragma once

// The business rules of documents, as pure functions over bytes: key and record
// encoding (an on-disk contract, see docs/architecture.md), preconditions, versions and
// RFC 7396 merge patch. The shard actor feeds them what it read and writes what they plan.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/json/fwd.hpp>

#include "actors/doc_protocol.hpp"

namespace shoal::actors::documents {

/// Storage key of a document: 'd' ++ collection ++ '\0' ++ id.
std::string key(std::string_view collection, std::string_view id);

/// Key prefix of every document of `collection` in a shard: 'd' ++ collection ++ '\0'.
std::string collection_prefix(std::string_view collection);

/// A stored document, or the tombstone of a deleted one: its version and its JSON text
/// (a view into the stored bytes; empty for a tombstone).
struct record {
  std::uint64_t version = 0;
  std::string_view json;
  bool deleted = false;

  /// True for a live document.
  bool live() const noexcept {
    return !deleted;
  }
};

/// Stored value of a document: format byte 0x01, version as 8 bytes big-endian, then the
/// JSON text.
std::string encode(std::uint64_t version, std::string_view json);

/// Stored value of a deleted document: byte 0x02, then the version of the delete as 8
/// bytes big-endian. Keeping it means a re-created document continues the version
/// sequence, so an ETag never names two different documents.
std::string encode_tombstone(std::uint64_t version);

/// Decodes a stored value; nullopt when the bytes are not a record of a known format.
std::optional<record> decode(std::string_view bytes);

/// Whether `p` matches a document at `current` (nullopt: no document). An absent
/// precondition never matches; callers check `present()` first.
bool matches(const precondition& p, std::optional<std::uint64_t> current) noexcept;

/// What a write does to the store.
struct write_plan {
  enum class action : std::uint8_t { none, put };
  action what = action::none;
  std::string value; ///< encoded record (a document or a tombstone) for `put`
  doc_reply reply;   ///< sent once the write is durable (or at once for `none`)
};

/// Decides a put, patch or delete of `req` against the current record.
write_plan plan_write(const doc_request& req, const std::optional<record>& current);

/// Answers a get of `req` from the current record (If-Match, then If-None-Match, as for
/// writes; a failed If-None-Match is `not_modified`).
doc_reply read(const doc_request& req, const std::optional<record>& current);

/// Applies an RFC 7396 merge patch to `target` in place: object members of `patch` that
/// are null remove the member, objects merge recursively, anything else replaces.
void merge_patch(boost::json::value& target, const boost::json::value& patch);

/// Counts and numeric aggregates of one field over documents, for the built-in
/// `collection.stats` job: each shard adds its live documents, the job merges the shards.
struct field_stats {
  std::uint64_t count = 0;   ///< documents seen
  std::uint64_t numeric = 0; ///< documents whose field is a number
  double min = 0;
  double max = 0;
  double sum = 0;

  /// Adds one document (a JSON object); `path` is a field name or a dotted path.
  void add_document(std::string_view json, std::string_view path);
  void merge(const field_stats& other);
  /// {"count","numeric","min","max","sum"} (min/max null without numbers).
  std::string to_json() const;
  static std::optional<field_stats> from_json(std::string_view text);
};

} // namespace shoal::actors::documents
