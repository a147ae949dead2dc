// SPDX-License-Identifier: Apache-2.0
#include "query/shard_index.hpp"

#include <algorithm>
#include <limits>

#include <boost/json.hpp>

#include "documents/documents.hpp"
#include "query/values.hpp"
#include "util/json.hpp"

namespace shoal::query {

namespace {

namespace json = boost::json;

constexpr std::uint32_t count_factor = 20; ///< a counting step reads this many times more keys
/// A build step also ends after reading this many bytes of documents (at least one), so
/// large documents do not make a step long.
constexpr std::size_t max_step_bytes = 4u << 20;

std::string definition_prefix(std::string_view collection) {
  std::string k;
  k.reserve(2 + collection.size());
  k += 'i';
  k += collection;
  k += '\0';
  return k;
}

std::string definition_key(std::string_view collection, std::string_view path) {
  auto k = definition_prefix(collection);
  k += path;
  return k;
}

/// The entry key of a document for an index, or "" when the document has none.
std::string entry_key(const std::string& prefix, const json::value* doc, std::string_view path,
                      std::string_view id) {
  if (!doc) return {};
  const auto* v = lookup(*doc, path);
  if (!v) return {};
  std::string k = prefix;
  if (!append_value_key(k, *v)) return {};
  k += id;
  return k;
}

std::optional<json::value> parse_object(std::string_view text) {
  if (text.empty()) return std::nullopt;
  json::error_code ec;
  auto v = util::parse_json(text, ec);
  if (ec || !v.is_object()) return std::nullopt;
  return v;
}

} // namespace

std::string successor(std::string prefix) {
  while (!prefix.empty() && static_cast<unsigned char>(prefix.back()) == 0xff)
    prefix.pop_back();
  if (!prefix.empty())
    prefix.back() = static_cast<char>(static_cast<unsigned char>(prefix.back()) + 1);
  return prefix;
}

std::size_t value_key_size(std::string_view key) {
  if (key.empty()) return 0;
  switch (key[0]) {
  case 0x05:
    return std::min<std::size_t>(key.size(), 9);
  case 0x06:
    for (std::size_t i = 1; i + 1 < key.size(); ++i) {
      if (key[i] != '\0') continue;
      if (key[i + 1] == '\x01') return i + 2;
      ++i; // an escaped NUL (0x00 0xFF)
    }
    return key.size();
  default:
    return 1;
  }
}

std::string index_entry_prefix(std::string_view collection, std::string_view path) {
  std::string k;
  k.reserve(3 + collection.size() + path.size());
  k += 'x';
  k += collection;
  k += '\0';
  k += path;
  k += '\0';
  return k;
}

// -- definitions ------------------------------------------------------------------

shard_index::shard_index(storage::shard_store& shard) : shard_(shard) {}

core::result<std::unique_ptr<shard_index>> shard_index::open(storage::shard_store& shard) {
  std::unique_ptr<shard_index> idx{new shard_index(shard)};
  bool corrupt = false;
  auto s = shard.scan_prefix("i", [&](std::string_view key, std::string_view value) {
    auto nul = key.find('\0');
    auto v = parse_object(value);
    const json::object* o = v ? v->if_object() : nullptr;
    if (nul == std::string_view::npos || !o) {
      corrupt = true;
      return false;
    }
    auto collection = key.substr(1, nul - 1);
    auto path = key.substr(nul + 1);
    definition def;
    def.progress.field = std::string(path);
    // A definition this code did not write is refused: loading it as something else
    // (building from zero, ready with wrong counts) would answer queries wrongly.
    const auto* state = o->if_contains("state");
    const auto* phase = o->if_contains("phase");
    const auto* indexed = o->if_contains("indexed");
    const auto* total = o->if_contains("total");
    const auto* cursor = o->if_contains("cursor");
    const bool known_state =
      state && state->is_string() && (state->as_string() == "ready" || state->as_string() == "building");
    const bool known_phase = phase && phase->is_string()
                             && (phase->as_string() == "counting" || phase->as_string() == "indexing"
                                 || phase->as_string() == "done");
    json::error_code ec;
    if (known_state && known_phase && indexed && total && cursor && cursor->is_string()) {
      def.progress.ready = state->as_string() == "ready";
      def.progress.indexed = indexed->to_number<std::uint64_t>(ec);
      if (!ec) def.progress.total = total->to_number<std::uint64_t>(ec);
      def.counting = phase->as_string() == "counting";
      def.cursor = std::string(cursor->as_string());
    }
    if (!known_state || !known_phase || !indexed || !total || !cursor || !cursor->is_string()
        || ec) {
      corrupt = true;
      return false;
    }
    idx->defs_[std::string(collection)].emplace(std::string(path), std::move(def));
    return true;
  });
  if (!s) return std::move(s).error();
  if (corrupt) return core::error{core::errc::corrupt, "an index definition is corrupt"};
  return idx;
}

void shard_index::save(std::string_view collection, const definition& def,
                       storage::write_batch& batch) const {
  json::object o;
  o["state"] = def.progress.ready ? "ready" : "building";
  o["indexed"] = def.progress.indexed;
  o["total"] = def.progress.total;
  o["phase"] = def.progress.ready ? "done" : def.counting ? "counting" : "indexing";
  o["cursor"] = def.cursor;
  batch.put(definition_key(collection, def.progress.field), json::serialize(o));
}

const index_progress* shard_index::find(std::string_view collection, std::string_view path) const {
  auto c = defs_.find(collection);
  if (c == defs_.end()) return nullptr;
  auto d = c->second.find(path);
  return d == c->second.end() ? nullptr : &d->second.progress;
}

std::vector<index_progress> shard_index::list(std::string_view collection) const {
  std::vector<index_progress> out;
  if (auto c = defs_.find(collection); c != defs_.end())
    for (const auto& [path, def] : c->second)
      out.push_back(def.progress);
  return out;
}

bool shard_index::indexed(std::string_view collection) const {
  auto c = defs_.find(collection);
  return c != defs_.end() && !c->second.empty();
}

std::optional<storage::write_batch> shard_index::plan_create(std::string_view collection,
                                                             std::string_view path) const {
  if (find(collection, path)) return std::nullopt;
  definition def;
  def.progress.field = std::string(path);
  storage::write_batch batch;
  save(collection, def, batch);
  return batch;
}

void shard_index::created(std::string_view collection, std::string_view path) {
  definition def;
  def.progress.field = std::string(path);
  defs_[std::string(collection)].emplace(std::string(path), std::move(def));
}

std::optional<storage::write_batch> shard_index::plan_drop(std::string_view collection,
                                                           std::string_view path) const {
  if (!find(collection, path)) return std::nullopt;
  storage::write_batch batch;
  batch.del(definition_key(collection, path));
  auto prefix = index_entry_prefix(collection, path);
  batch.del_range(prefix, successor(prefix));
  return batch;
}

void shard_index::dropped(std::string_view collection, std::string_view path) {
  auto c = defs_.find(collection);
  if (c == defs_.end()) return;
  c->second.erase(std::string(path));
  if (c->second.empty()) defs_.erase(c);
}

// -- maintenance ------------------------------------------------------------------

void shard_index::plan_document(storage::write_batch& batch, std::string_view collection,
                                std::string_view id, std::string_view before,
                                std::string_view after) const {
  auto c = defs_.find(collection);
  if (c == defs_.end() || c->second.empty()) return;
  auto old_doc = parse_object(before);
  auto new_doc = parse_object(after);
  for (const auto& [path, def] : c->second) {
    const auto prefix = index_entry_prefix(collection, path);
    auto old_key = entry_key(prefix, old_doc ? &*old_doc : nullptr, path, id);
    auto new_key = entry_key(prefix, new_doc ? &*new_doc : nullptr, path, id);
    if (old_key == new_key) continue;
    if (!old_key.empty()) batch.del(std::move(old_key));
    if (!new_key.empty()) batch.put(std::move(new_key), {});
  }
}

bool shard_index::building() const noexcept {
  for (const auto& [collection, defs] : defs_)
    for (const auto& [path, def] : defs)
      if (!def.progress.ready) return true;
  return false;
}

core::result<std::optional<shard_index::build_step>>
shard_index::plan_build_step(std::uint32_t max_docs) const {
  for (const auto& [collection, defs] : defs_) {
    for (const auto& [path, def] : defs) {
      if (def.progress.ready) continue;
      const auto docs = documents::collection_prefix(collection);
      // Resume after the cursor: the least key above prefix ++ cursor is that ++ '\0'.
      std::string from = docs;
      if (!def.cursor.empty()) {
        from += def.cursor;
        from += '\0';
      }
      definition next = def;
      build_step step;
      bool more = false;
      std::size_t step_bytes = 0;
      const auto limit = def.counting ? max_docs * count_factor : max_docs;
      const auto prefix = index_entry_prefix(collection, path);
      auto s = shard_.scan(docs, from, false, [&](std::string_view key, std::string_view value) {
        if (step.visited == limit || step_bytes >= max_step_bytes) {
          more = true;
          return false;
        }
        ++step.visited;
        step_bytes += value.size();
        next.cursor.assign(key.substr(docs.size()));
        auto rec = documents::decode(value);
        if (!rec || !rec->live()) return true; // a tombstone
        if (next.counting) {
          ++next.progress.total;
          return true;
        }
        ++next.progress.indexed;
        auto doc = parse_object(rec->json);
        auto k = entry_key(prefix, doc ? &*doc : nullptr, path, next.cursor);
        if (!k.empty()) step.batch.put(std::move(k), {});
        return true;
      });
      if (!s) return std::move(s).error();
      if (!more) {
        // The phase is over: counting turns to indexing; indexing makes the index ready.
        next.cursor.clear();
        if (next.counting) {
          next.counting = false;
        } else {
          next.progress.ready = true;
          next.progress.total = next.progress.indexed;
        }
      }
      save(collection, next, step.batch);
      step.collection = collection;
      step.path = path;
      step.progress = next.progress;
      step.counting = next.counting;
      step.cursor = next.cursor;
      return std::optional<build_step>(std::move(step));
    }
  }
  return std::optional<build_step>();
}

void shard_index::built(const build_step& step) {
  auto c = defs_.find(step.collection);
  if (c == defs_.end()) return; // dropped meanwhile
  auto d = c->second.find(step.path);
  if (d == c->second.end()) return;
  d->second.progress = step.progress;
  d->second.counting = step.counting;
  d->second.cursor = step.cursor;
}

const condition* shard_index::best_index(std::string_view collection,
                                         const query_spec& spec) const {
  const condition* best = nullptr;
  int best_score = 0;
  for (const auto& c : spec.where.conditions) {
    const auto* p = find(collection, c.path);
    if (!p || !p->ready) continue;
    int score = c.eq ? 3 : c.has_in ? 2 : (c.lo || c.hi) ? 1 : 0;
    if (score > best_score) {
      best = &c;
      best_score = score;
    }
  }
  return best;
}

} // namespace shoal::query
