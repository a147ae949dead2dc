// SPDX-License-Identifier: Apache-2.0
#pragma once

// The requests the documents module serves and their replies (docs/api.md "Documents").
// Plain structs: the edge builds them, protocol/ carries them, documents::module answers
// them. `inspect` lets CAF serialize them for other nodes.

#include <cstdint>
#include <string>
#include <vector>

#include "cluster/placement.hpp"
#include "core/result.hpp"
#include "core/type_list.hpp"

namespace shoal::documents {

/// A parsed If-Match or If-None-Match header (RFC 9110 §13.1).
struct precondition {
  enum class kind : std::uint8_t {
    absent,   ///< no header
    any,      ///< "*"
    versions, ///< a list of strong entity tags, each a document version
  };
  kind what = kind::absent;
  std::vector<std::uint64_t> versions;

  bool present() const noexcept {
    return what != kind::absent;
  }
};

/// A document as stored: its version and JSON text; `not_modified` when If-None-Match
/// matched (then without the text).
struct stored_doc {
  std::uint64_t version = 0;
  std::string json;
  bool not_modified = false;
};

/// GET of one document. Errors: not_found, precondition_failed (If-Match).
struct doc_get {
  using reply = stored_doc;
  std::string collection;
  std::string id;
  precondition if_match;
  precondition if_none_match;
};

/// What a write did: the document's new version, and whether it created the document.
struct doc_written {
  std::uint64_t version = 0;
  bool created = false;
};

enum class write_kind : std::uint8_t { put, patch, del };

/// PUT (`body`: the new document, a serialized JSON object), PATCH (`body`: an RFC 7396
/// merge patch, a serialized JSON object) or DELETE of one document. Errors: not_found
/// (patch, delete), precondition_failed.
struct doc_write {
  using reply = doc_written;
  write_kind kind = write_kind::put;
  std::string collection;
  std::string id;
  std::string body;
  precondition if_match;
  precondition if_none_match;
};

/// Counts and numeric aggregates of one field over the live documents of a collection,
/// for the built-in `collection.stats` job: each shard adds its own, the job merges them.
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
};

/// The field statistics of one shard's part of a collection. A scan: it runs in bounded
/// steps, so the shard serves other requests meanwhile.
struct collection_stats {
  using reply = field_stats;
  std::string collection;
  std::string field; ///< a field name or a dotted path
};

using requests = core::type_list<doc_get, doc_write, collection_stats>;

/// The shard of a document request: the hash of collection and id.
inline core::result<std::uint32_t> place(const doc_get& r, const cluster::placement& p) {
  return p.map.shard_of(r.collection, r.id);
}
inline core::result<std::uint32_t> place(const doc_write& r, const cluster::placement& p) {
  return p.map.shard_of(r.collection, r.id);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, precondition& x) {
  return f(x.what, x.versions);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, stored_doc& x) {
  return f(x.version, x.json, x.not_modified);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, doc_get& x) {
  return f(x.collection, x.id, x.if_match, x.if_none_match);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, doc_written& x) {
  return f(x.version, x.created);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, doc_write& x) {
  return f(x.kind, x.collection, x.id, x.body, x.if_match, x.if_none_match);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, field_stats& x) {
  return f(x.count, x.numeric, x.min, x.max, x.sum);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, collection_stats& x) {
  return f(x.collection, x.field);
}

} // namespace shoal::documents
