// SPDX-License-Identifier: Apache-2.0
#pragma once

// Queries as data: the parsed body of POST /v1/collections/{c}/query, how a document is
// matched, the sort keys that order results and resume cursors, and what one shard
// answers. Pure functions, no CAF, no storage; the edge parses and validates, and
// shards of other nodes get the normalized form (to_shard_json) on the wire
// (docs/queries.md).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/value.hpp>

#include "core/result.hpp"

namespace shoal::query {

/// The conditions on one field path. Several operators on one path all apply:
/// {"age": {"$gte": 30, "$lt": 40}} sets both bounds.
struct condition {
  std::string path;
  std::optional<boost::json::value> eq; ///< a bare value or {"$eq": v}
  std::vector<boost::json::value> in;   ///< $in: sorted by `compare`, duplicates removed
  bool has_in = false;                  ///< $in given (an empty $in matches nothing)
  std::optional<boost::json::value> lo; ///< $gt / $gte
  bool lo_inclusive = false;
  std::optional<boost::json::value> hi; ///< $lt / $lte
  bool hi_inclusive = false;

  /// Whether `v` (nullptr: the field is missing, which no condition matches) passes.
  bool matches(const boost::json::value* v) const;
};

struct where_clause {
  std::vector<condition> conditions; ///< one per path, sorted by path

  /// True when every condition matches `doc` (a JSON object). Empty: everything.
  bool matches(const boost::json::value& doc) const;
};

/// A parsed query.
struct query_spec {
  where_clause where;
  std::string order_by; ///< a path; empty: order by document id
  bool desc = false;
  std::uint32_t limit = 0;
  /// Resume strictly after this sort key (ascending) or before it (descending); empty:
  /// from the start. Filled from `cursor` by the edge, sent to shards as "after".
  std::string after;
  bool allow_scan = false;
  bool explain = false;
};

/// Limits the parser enforces.
struct query_limits {
  std::uint32_t default_limit = 100;
  std::uint32_t max_limit = 1000;
  std::size_t max_in_values = 1000; ///< $in longer than this is refused
  std::size_t max_conditions = 32;  ///< distinct paths in `where`
};

/// Parses a query body (a JSON object) as a client sends it: members "where",
/// "order_by", "desc", "limit", "cursor", "allow_scan"; anything else is refused. Rules:
/// - `where` is an object of path → condition. A condition is a scalar (equality), or an
///   object whose members are all operators ($eq, $gt, $gte, $lt, $lte, $in); comparison
///   values must be scalars, $in an array of scalars. An object with no operator, an
///   unknown operator, an invalid path, or a non-scalar value is `invalid_query`.
/// - `limit`: an integer 1..max_limit (absent or null: default_limit); 0, a fraction or more
///   than max_limit is refused.
/// - `cursor`: null or a string from a previous answer to the same where/order_by/desc;
///   anything else, or a cursor of another query, is `invalid_cursor`.
/// `explain` comes from the URL (?explain=true), not the body. A refusal is an
/// `invalid_argument` error named "invalid_query" or "invalid_cursor", whose message
/// names the offending part.
core::result<query_spec> parse_query(const boost::json::value& body, const query_limits& limits);

/// The normalized JSON a shard is sent for `spec`: {"where","order_by","desc","limit",
/// "after" (base64url of the sort key, or null),"allow_scan","explain"}.
std::string to_shard_json(const query_spec& spec);

/// Parses what `to_shard_json` wrote (on the receiving node).
core::result<query_spec> parse_shard_json(std::string_view text, const query_limits& limits);

/// The sort key of a document under `spec`: the value key of its `order_by` value
/// (missing when absent or not scalar) followed by its id; just the id without order_by.
std::string sort_key(const query_spec& spec, const boost::json::value& doc, std::string_view id);

/// Whether a result with sort key `key` comes after the resume point (always true when
/// `spec.after` is empty): key > after ascending, key < after descending.
bool after_cursor(const query_spec& spec, std::string_view key);

/// A cursor for the next page: base64url of a format byte, a fingerprint of where,
/// order_by and desc (so a cursor cannot resume another query), and the sort key of the
/// last result returned.
std::string encode_cursor(const query_spec& spec, std::string_view last_sort_key);

/// The sort key in `cursor` when it was made for the same where/order_by/desc as `spec`.
std::optional<std::string> decode_cursor(const query_spec& spec, std::string_view cursor);

/// One matching document, as a shard returns it.
struct hit {
  std::string sort_key;
  std::string id;
  std::uint64_t version = 0;
  std::string doc; ///< the document's JSON text
};

/// What one shard answers to a query: its first `limit` matches after the cursor, in
/// order, and whether it has more.
struct shard_hits {
  std::vector<hit> hits;
  bool more = false;
};

/// How one shard answers a query (?explain=true).
struct shard_plan {
  std::string index;                ///< the path of the index used; empty: a full scan
  std::string bounds;               ///< "eq", "in", "range" or "all" (full scan)
  std::uint64_t estimated_keys = 0; ///< index entries (or documents) the shard would read
};

} // namespace shoal::query
