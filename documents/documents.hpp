// SPDX-License-Identifier: Apache-2.0
#pragma once

// The business rules of documents, as pure functions over bytes: key and record
// encoding (an on-disk contract, see docs/architecture.md), preconditions, versions and
// RFC 7396 merge patch. The documents module feeds them what it read and commits what
// they plan.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/json/fwd.hpp>

#include "core/result.hpp"
#include "documents/messages.hpp"

namespace shoal::documents {

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

/// What a write stores, and what it answers once durable.
struct write_plan {
  std::string value; ///< the encoded record (a document or a tombstone)
  doc_written reply;
  /// False for a patch that changes nothing (`{}`, or members set to what they are):
  /// nothing is written, and the reply names the current version.
  bool write = true;
};

/// Decides a put, patch or delete against the current record. Errors: precondition_failed,
/// not_found (patch or delete of no document), internal (a stored document or a patch
/// that is not an object).
core::result<write_plan> plan_write(const doc_write& req, const std::optional<record>& current);

/// Answers a get from the current record (If-Match, then If-None-Match, as for writes; a
/// matching If-None-Match is `not_modified`).
core::result<stored_doc> read(const doc_get& req, const std::optional<record>& current);

/// Applies an RFC 7396 merge patch to `target` in place: object members of `patch` that
/// are null remove the member, objects merge recursively, anything else replaces.
/// Returns whether `target` changed.
bool merge_patch(boost::json::value& target, const boost::json::value& patch);

} // namespace shoal::documents
