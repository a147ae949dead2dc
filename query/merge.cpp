// SPDX-License-Identifier: Apache-2.0
#include "query/merge.hpp"

#include <map>
#include <queue>
#include <utility>

namespace shoal::query {

namespace {

core::error broken(std::size_t shard, const std::string& what) {
  return {core::errc::internal, "shard " + std::to_string(shard) + " answered " + what};
}

} // namespace

core::result<page> merge_hits(const query_spec& spec, std::vector<core::result<shard_hits>>&& answers) {
  if (auto e = first_failure(answers)) return std::move(*e);
  std::vector<shard_hits> shards;
  shards.reserve(answers.size());
  bool more = false;
  for (std::size_t i = 0; i < answers.size(); ++i) {
    auto& decoded = *answers[i];
    // A shard's answer must be in order and after the cursor, or pages would repeat or
    // skip documents: refuse it rather than pass that on.
    const auto& hits = decoded.hits;
    for (std::size_t h = 0; h < hits.size(); ++h) {
      bool ordered = h == 0
                     || (spec.desc ? hits[h].sort_key < hits[h - 1].sort_key
                                   : hits[h - 1].sort_key < hits[h].sort_key);
      if (!ordered || !after_cursor(spec, hits[h].sort_key) || hits[h].doc.empty()
          || hits[h].doc.front() != '{')
        return broken(i, "hits out of order or malformed");
    }
    more = more || decoded.more;
    shards.push_back(std::move(decoded));
  }

  // A heap of the next hit of each shard; the top is the next in sort order.
  using head = std::pair<std::size_t, std::size_t>; // shard, position
  auto later = [&](const head& a, const head& b) {
    const auto& ka = shards[a.first].hits[a.second].sort_key;
    const auto& kb = shards[b.first].hits[b.second].sort_key;
    return spec.desc ? ka < kb : kb < ka;
  };
  std::priority_queue<head, std::vector<head>, decltype(later)> heap(later);
  for (std::size_t s = 0; s < shards.size(); ++s)
    if (!shards[s].hits.empty()) heap.push({s, 0});

  page out;
  while (!heap.empty() && out.docs.size() < spec.limit) {
    auto [s, pos] = heap.top();
    heap.pop();
    out.docs.push_back(std::move(shards[s].hits[pos]));
    if (pos + 1 < shards[s].hits.size()) heap.push({s, pos + 1});
  }
  more = more || !heap.empty();
  if (more && !out.docs.empty()) out.next_cursor = encode_cursor(spec, out.docs.back().sort_key);
  return out;
}

core::result<plan_summary> merge_plans(std::vector<core::result<shard_plan>>&& answers) {
  if (auto e = first_failure(answers)) return std::move(*e);
  if (answers.empty()) return core::error{core::errc::internal, "no shard answered"};
  const auto& first = *answers.front();
  plan_summary out;
  bool same = true;
  out.all_indexed = true;
  for (const auto& a : answers) {
    out.estimated_keys += a->estimated_keys;
    same = same && a->index == first.index && a->bounds == first.bounds;
    out.all_indexed = out.all_indexed && !a->index.empty();
  }
  if (same && !first.index.empty()) out.index = first.index;
  out.bounds = same ? first.bounds : std::string("mixed");
  out.shards = answers.size();
  if (!same)
    for (auto& a : answers)
      out.per_shard.push_back(std::move(*a));
  return out;
}

void add_progress(index_progress& into, const index_progress& p, bool first) {
  if (first) {
    into = p;
    return;
  }
  into.ready = into.ready && p.ready;
  into.indexed += p.indexed;
  into.total += p.total;
}

core::result<index_state> merge_created(std::vector<core::result<index_state>>&& answers) {
  if (auto e = first_failure(answers)) return std::move(*e);
  index_state out;
  bool first = true;
  for (const auto& a : answers) {
    add_progress(out.progress, a->progress, first);
    first = false;
    out.created = out.created || a->created;
  }
  if (first) return core::error{core::errc::internal, "no shard answered"};
  return out;
}

core::result<index_progress> merge_progress(std::vector<core::result<index_progress>>&& answers) {
  if (auto e = first_failure(answers, {core::errc::not_found})) return std::move(*e);
  std::optional<index_progress> merged;
  for (const auto& a : answers) {
    if (!a) continue;
    bool first = !merged;
    if (first) merged.emplace();
    add_progress(*merged, *a, first);
  }
  if (!merged) return core::error{core::errc::not_found, "no such index"};
  return std::move(*merged);
}

core::result<index_dropped> merge_dropped(std::vector<core::result<index_dropped>>&& answers) {
  if (auto e = first_failure(answers, {core::errc::not_found})) return std::move(*e);
  for (const auto& a : answers)
    if (a) return index_dropped{};
  return core::error{core::errc::not_found, "no such index"};
}

core::result<index_listing> merge_listings(std::vector<core::result<index_listing>>&& answers) {
  if (auto e = first_failure(answers)) return std::move(*e);
  std::map<std::string, index_progress> merged;
  for (const auto& a : answers)
    for (const auto& p : a->indexes) {
      auto [it, first] = merged.try_emplace(p.field);
      add_progress(it->second, p, first);
    }
  index_listing out;
  for (auto& [field, p] : merged)
    out.indexes.push_back(std::move(p));
  return out;
}

} // namespace shoal::query
