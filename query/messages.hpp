// SPDX-License-Identifier: Apache-2.0
#pragma once

// The requests the query module serves (secondary indexes and queries, docs/queries.md)
// and their replies. The edge sends each to every shard and merges the answers
// (query/merge.hpp). Plain structs; `inspect` lets CAF serialize them for other nodes
// (query_run and query_explain carry a query_spec, whose wire form is in protocol/).

#include <cstdint>
#include <string>
#include <vector>

#include "core/type_list.hpp"
#include "query/query.hpp"

namespace shoal::query {

/// One shard's part of an index: whether its build is done and how far it got.
struct index_progress {
  std::string field;
  bool ready = false;        ///< false: building
  std::uint64_t indexed = 0; ///< documents the build has visited (ready: all of them)
  std::uint64_t total = 0;   ///< documents in the collection, as counted by the build
};

/// An index's progress, and whether the request created it.
struct index_state {
  index_progress progress;
  bool created = false;
};

/// Creates the index on `field` (a valid_path) of `collection`, or finds it; the build
/// starts in the background.
struct index_create {
  using reply = index_state;
  std::string collection;
  std::string field;
};

/// The progress of one index. Error: not_found.
struct index_get {
  using reply = index_progress;
  std::string collection;
  std::string field;
};

struct index_listing {
  std::vector<index_progress> indexes; ///< by field
};

/// The indexes of a collection.
struct index_list {
  using reply = index_listing;
  std::string collection;
};

struct index_dropped {};

/// Drops an index with its entries. Error: not_found.
struct index_drop {
  using reply = index_dropped;
  std::string collection;
  std::string field;
};

/// One shard's first `spec.limit` matches after the cursor. Errors: invalid_argument
/// "index_required" (no ready index and no allow_scan). A scan runs in bounded steps.
struct query_run {
  using reply = shard_hits;
  std::string collection;
  query_spec spec;
};

/// How one shard would answer `spec` (?explain=true); never refuses.
struct query_explain {
  using reply = shard_plan;
  std::string collection;
  query_spec spec;
};

using requests =
  core::type_list<index_create, index_get, index_list, index_drop, query_run, query_explain>;

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, index_progress& x) {
  return f(x.field, x.ready, x.indexed, x.total);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, index_state& x) {
  return f(x.progress, x.created);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, index_create& x) {
  return f(x.collection, x.field);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, index_get& x) {
  return f(x.collection, x.field);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, index_listing& x) {
  return f(x.indexes);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, index_list& x) {
  return f(x.collection);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, index_dropped&) {
  return f();
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, index_drop& x) {
  return f(x.collection, x.field);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, hit& x) {
  return f(x.sort_key, x.id, x.version, x.doc);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, shard_hits& x) {
  return f(x.hits, x.more);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, shard_plan& x) {
  return f(x.index, x.bounds, x.estimated_keys);
}

} // namespace shoal::query
