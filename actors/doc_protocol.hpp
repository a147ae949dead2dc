// SPDX-License-Identifier: Apache-2.0
#pragma once

// The messages a shard actor takes for documents. Plain structs with no CAF include, so
// the HTTP edge can build them without pulling in the actor framework; the CAF side
// (type ids, inspect) is in actors/type_ids.hpp.

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace shoal::actors {

/// What a doc_request asks of its shard. The first four act on one document (`id`); the
/// rest act on a whole collection of one shard, and the edge sends them to every shard
/// (scatter-gather, see docs/architecture.md "Queries"):
///
/// - `stats`: count the live documents of `collection` and aggregate the numeric field
///   named in `body` (a dotted path); the reply's body is documents::field_stats JSON.
///   Used by the collection.stats job.
/// - `index_put`, `index_get`, `index_drop`: the secondary index on the field path `id`.
///   `index_put` creates it (`created`; building starts in the background) or finds it
///   (`ok`); the body of `index_put`/`index_get` replies is the shard's progress,
///   query::index_progress JSON. `index_list` (no `id`): {"indexes":[progress...]}.
/// - `query`: `body` is query::shard_query JSON; the reply's body is
///   query::encode_hits (or, with `explain`, query::shard_plan JSON).
/// - `changes`: the events of `collection` on the shard after sequence `after`, at most
///   `limit`; the reply's body is changes::encode_batch. When there are none it waits up
///   to `wait_ms` for the first (a long poll, the change feed's only pacing).
enum class doc_op : std::uint8_t {
  get,
  put,
  patch,
  del,
  stats,
  index_put,
  index_get,
  index_list,
  index_drop,
  query,
  changes,
};

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

/// One document operation. Names are validated by the edge before a request is built.
struct doc_request {
  doc_op op = doc_op::get;
  std::string collection;
  std::string id;
  /// put: the new document, serialized JSON object; patch: the merge patch, a serialized
  /// JSON object (RFC 7396); empty otherwise.
  std::string body;
  precondition if_match;
  precondition if_none_match;
  /// changes only: resume after this shard sequence, return at most `limit` events, wait
  /// at most `wait_ms` for the first one.
  std::uint64_t after = 0;
  std::uint32_t limit = 0;
  std::uint32_t wait_ms = 0;
};

enum class doc_status : std::uint8_t {
  ok,                  ///< get/patch/replace succeeded; delete succeeded
  created,             ///< put created the document
  not_modified,        ///< get: If-None-Match matched the current version
  not_found,           ///< no such document
  precondition_failed, ///< If-Match / If-None-Match failed on a write
  invalid_document,    ///< the stored or patched document could not be processed
  storage_error,       ///< the store failed; nothing was acknowledged
  unavailable,         ///< the shard is shutting down
  shard_unavailable,   ///< the node that owns the shard is down or not answering
  bad_request,         ///< a collection operation's input was refused; `code` says why
  gone,                ///< changes: the resume point is older than the retention window
};

struct doc_reply {
  doc_status status = doc_status::ok;
  std::uint64_t version = 0; ///< current version after the operation (0 when none)
  std::string body;          ///< get: the document (serialized JSON object)
  std::string message;       ///< human-readable detail for errors
  std::string code;          ///< bad_request: a stable error code, e.g. "index_required"

  // A constructor rather than an aggregate, so replies that need no code leave it out.
  doc_reply(doc_status status = doc_status::ok, std::uint64_t version = 0, std::string body = {},
            std::string message = {}, std::string code = {})
      : status(status), version(version), body(std::move(body)), message(std::move(message)),
        code(std::move(code)) {}
};

/// Where a shard delivers a reply when the caller is not an actor (the HTTP edge).
/// `deliver` is called exactly once, on a CAF worker thread: it must not block, only hand
/// the reply over (the edge posts it to the connection's strand).
class reply_sink {
public:
  virtual ~reply_sink() = default;
  virtual void deliver(doc_reply&& reply) = 0;
};

using reply_sink_ptr = std::shared_ptr<reply_sink>;

} // namespace shoal::actors
