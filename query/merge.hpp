// SPDX-License-Identifier: Apache-2.0
#pragma once

// What the edge makes of the answers of every shard to one index or query request, in
// shard order (protocol::shard_client::ask_all). Pure functions: a refusal from any
// shard (invalid_argument) fails the whole answer first, then any other failure (an
// unavailable shard: the answer would be incomplete), then a shard that broke the
// protocol (internal).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "query/messages.hpp"

namespace shoal::query {

/// The failure a gather ends with, or nullopt when every answer is a value or an error
/// whose code is one of `expected` (say not_found for an index some shards lack).
template <class T>
std::optional<core::error> first_failure(const std::vector<core::result<T>>& answers,
                                         std::initializer_list<core::errc> expected = {}) {
  const core::error* other = nullptr;
  for (const auto& a : answers) {
    if (a) continue;
    if (a.error() == core::errc::invalid_argument) return a.error();
    bool fine = false;
    for (auto e : expected)
      fine = fine || a.error() == e;
    if (!fine && !other) other = &a.error();
  }
  if (other) return *other;
  return std::nullopt;
}

/// One page of a query's answer: the documents in order, and the cursor of the next page
/// (nullopt on the last).
struct page {
  std::vector<hit> docs;
  std::optional<std::string> next_cursor;
};

/// Merges the shards' hits in sort order (k-way) and cuts at `spec.limit`. A shard whose
/// hits are out of order, before the cursor or not JSON objects is refused (internal):
/// pages would repeat or skip documents.
core::result<page> merge_hits(const query_spec& spec, std::vector<core::result<shard_hits>>&& answers);

/// The plans of every shard, summed.
struct plan_summary {
  std::optional<std::string> index; ///< the index every shard uses; nullopt: not one index
  bool all_indexed = false;         ///< every shard reads an index ("index"), else "full"
  std::string bounds;               ///< the shards' bounds, or "mixed"
  std::size_t shards = 0;
  std::uint64_t estimated_keys = 0;
  /// Each shard's plan, when they differ (empty when all plan the same way).
  std::vector<shard_plan> per_shard;
};
core::result<plan_summary> merge_plans(std::vector<core::result<shard_plan>>&& answers);

/// An index over every shard: counts summed, ready when every shard's part is.
void add_progress(index_progress& into, const index_progress& p, bool first);

/// PUT of an index: the summed progress, and whether any shard created it.
core::result<index_state> merge_created(std::vector<core::result<index_state>>&& answers);

/// GET of an index: the summed progress of the shards that have it; not_found when none has.
core::result<index_progress> merge_progress(std::vector<core::result<index_progress>>&& answers);

/// DELETE of an index: done when some shard dropped it; not_found when none had it.
core::result<index_dropped> merge_dropped(std::vector<core::result<index_dropped>>&& answers);

/// GET of a collection's indexes: each field's progress summed over the shards, by field.
core::result<index_listing> merge_listings(std::vector<core::result<index_listing>>&& answers);

} // namespace shoal::query
