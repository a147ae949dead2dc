// SPDX-License-Identifier: Apache-2.0
#include "query/shard_index.hpp"

#include <algorithm>
#include <limits>

#include <boost/json.hpp>

#include "query/values.hpp"

namespace shoal::query {

namespace {

namespace json = boost::json;

constexpr std::uint32_t count_factor = 20; ///< a counting step reads this many times more keys
/// A build step also ends after reading this many bytes of documents (at least one), so
/// large documents do not make a step long.
constexpr std::size_t max_step_bytes = 4u << 20;
constexpr std::uint64_t max_estimate = 10'000'000; ///< explain stops counting here

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
  auto v = json::parse(text, ec);
  if (ec || !v.is_object()) return std::nullopt;
  return v;
}

/// The least key above every key that starts with `prefix` ("" when there is none).
std::string successor(std::string prefix) {
  while (!prefix.empty() && static_cast<unsigned char>(prefix.back()) == 0xff)
    prefix.pop_back();
  if (!prefix.empty())
    prefix.back() = static_cast<char>(static_cast<unsigned char>(prefix.back()) + 1);
  return prefix;
}

/// One contiguous stretch of index entries to visit: keys in [lo, hi) (hi "": to the
/// end of `prefix`).
struct segment {
  std::string lo;
  std::string hi;
};

/// The length of the value key at the start of `key` (values.hpp's layout).
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

/// The first byte of a value key: its JSON type.
char type_byte(const std::string& value_key) {
  return value_key.empty() ? '\0' : value_key[0];
}

} // namespace

// -- progress ---------------------------------------------------------------------

std::string index_progress::to_json() const {
  json::object o;
  o["field"] = field;
  o["state"] = ready ? "ready" : "building";
  o["indexed"] = indexed;
  o["total"] = total;
  return json::serialize(o);
}

std::optional<index_progress> index_progress::from_json(std::string_view text) {
  auto v = parse_object(text);
  if (!v) return std::nullopt;
  const auto& o = v->as_object();
  const auto* field = o.if_contains("field");
  const auto* state = o.if_contains("state");
  const auto* indexed = o.if_contains("indexed");
  const auto* total = o.if_contains("total");
  if (!field || !field->is_string() || !state || !state->is_string() || !indexed
      || !indexed->is_number() || !total || !total->is_number())
    return std::nullopt;
  index_progress p;
  p.field = std::string(field->as_string());
  if (state->as_string() == "ready") {
    p.ready = true;
  } else if (state->as_string() != "building") {
    return std::nullopt;
  }
  json::error_code ec;
  p.indexed = indexed->to_number<std::uint64_t>(ec);
  if (ec) return std::nullopt;
  p.total = total->to_number<std::uint64_t>(ec);
  if (ec) return std::nullopt;
  return p;
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

shard_index::shard_index(storage::shard_store& shard, document_layout layout)
    : shard_(shard), layout_(std::move(layout)) {}

storage::status shard_index::open(storage::shard_store& shard, document_layout layout,
                                  std::unique_ptr<shard_index>& out) {
  std::unique_ptr<shard_index> idx{new shard_index(shard, std::move(layout))};
  storage::status bad;
  auto s = shard.scan_prefix("i", [&](std::string_view key, std::string_view value) {
    auto nul = key.find('\0');
    auto v = parse_object(value);
    const json::object* o = v ? v->if_object() : nullptr;
    if (nul == std::string_view::npos || !o) {
      bad = {storage::errc::corruption, "an index definition is corrupt"};
      return false;
    }
    auto collection = key.substr(1, nul - 1);
    auto path = key.substr(nul + 1);
    definition def;
    def.progress.field = std::string(path);
    const auto* state = o->if_contains("state");
    def.progress.ready = state && state->is_string() && state->as_string() == "ready";
    json::error_code ec;
    if (const auto* n = o->if_contains("indexed"))
      def.progress.indexed = n->to_number<std::uint64_t>(ec);
    if (const auto* n = o->if_contains("total"))
      def.progress.total = n->to_number<std::uint64_t>(ec);
    const auto* phase = o->if_contains("phase");
    def.counting = phase && phase->is_string() && phase->as_string() == "counting";
    if (const auto* c = o->if_contains("cursor"); c && c->is_string())
      def.cursor = std::string(c->as_string());
    idx->defs_[std::string(collection)].emplace(std::string(path), std::move(def));
    return true;
  });
  if (!s) return s;
  if (!bad) return bad;
  out = std::move(idx);
  return storage::status::ok();
}

storage::status shard_index::save(std::string_view collection, const definition& def,
                                  storage::write_batch& batch) const {
  json::object o;
  o["state"] = def.progress.ready ? "ready" : "building";
  o["indexed"] = def.progress.indexed;
  o["total"] = def.progress.total;
  o["phase"] = def.progress.ready ? "done" : def.counting ? "counting" : "indexing";
  o["cursor"] = def.cursor;
  batch.put(definition_key(collection, def.progress.field), json::serialize(o));
  return storage::status::ok();
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

storage::status shard_index::create(std::string_view collection, std::string_view path,
                                    bool& created) {
  created = false;
  if (find(collection, path)) return storage::status::ok();
  definition def;
  def.progress.field = std::string(path);
  storage::write_batch batch;
  (void)save(collection, def, batch);
  if (auto s = shard_.write(batch, false); !s) return s;
  defs_[std::string(collection)].emplace(std::string(path), std::move(def));
  created = true;
  return storage::status::ok();
}

storage::status shard_index::drop(std::string_view collection, std::string_view path, bool& found) {
  found = false;
  auto c = defs_.find(collection);
  if (c == defs_.end()) return storage::status::ok();
  auto d = c->second.find(path);
  if (d == c->second.end()) return storage::status::ok();
  storage::write_batch batch;
  batch.del(definition_key(collection, path));
  auto prefix = index_entry_prefix(collection, path);
  batch.del_range(prefix, successor(prefix));
  if (auto s = shard_.write(batch, false); !s) return s;
  c->second.erase(d);
  if (c->second.empty()) defs_.erase(c);
  found = true;
  return storage::status::ok();
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

storage::status shard_index::build_step(std::uint32_t max_docs, std::uint32_t& visited) {
  visited = 0;
  for (auto& [collection, defs] : defs_) {
    for (auto& [path, def] : defs) {
      if (def.progress.ready) continue;
      const auto docs = layout_.prefix(collection);
      // Resume after the cursor: the least key above prefix ++ cursor is that ++ '\0'.
      std::string from = docs;
      if (!def.cursor.empty()) {
        from += def.cursor;
        from += '\0';
      }
      definition next = def;
      storage::write_batch batch;
      bool more = false;
      std::size_t step_bytes = 0;
      const auto limit = def.counting ? max_docs * count_factor : max_docs;
      const auto prefix = index_entry_prefix(collection, path);
      auto s = shard_.scan(docs, from, false, [&](std::string_view key, std::string_view value) {
        if (visited == limit || step_bytes >= max_step_bytes) {
          more = true;
          return false;
        }
        ++visited;
        step_bytes += value.size();
        std::uint64_t version = 0;
        std::string_view text;
        next.cursor.assign(key.substr(docs.size()));
        if (!layout_.decode(value, version, text)) return true; // a tombstone
        if (next.counting) {
          ++next.progress.total;
          return true;
        }
        ++next.progress.indexed;
        auto doc = parse_object(text);
        auto k = entry_key(prefix, doc ? &*doc : nullptr, path, next.cursor);
        if (!k.empty()) batch.put(std::move(k), {});
        return true;
      });
      if (!s) return s;
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
      (void)save(collection, next, batch);
      if (s = shard_.write(batch, false); !s) return s;
      def = std::move(next);
      return storage::status::ok();
    }
  }
  return storage::status::ok();
}

// -- queries ----------------------------------------------------------------------

shard_answer shard_index::run(std::string_view collection, const query_spec& spec) {
  const auto docs = layout_.prefix(collection);
  // A collection with no documents here answers empty, whatever the indexes.
  bool any = false;
  if (auto s = shard_.scan(docs, {}, false,
                           [&](std::string_view, std::string_view) {
                             any = true;
                             return false;
                           });
      !s)
    return query_error{"storage_error", s.to_string()};
  if (!any && !spec.explain) return shard_hits{};

  // The best ready index: equality, then $in, then a range.
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
  if (!best && !spec.allow_scan && !spec.explain) {
    std::string paths;
    for (const auto& c : spec.where.conditions)
      paths += (paths.empty() ? "" : ", ") + c.path;
    return query_error{
      "index_required",
      paths.empty()
        ? "a query without conditions reads every document; set \"allow_scan\": true"
        : "no ready index on " + paths + "; create one (PUT /v1/collections/"
            + std::string(collection) + "/indexes/{field}) or set \"allow_scan\": true"};
  }

  // Where to read: index entry segments, or the collection's documents.
  std::string prefix;
  std::vector<segment> segments;
  shard_plan plan;
  bool in_sort_order = false; // the reading order is the result order
  if (best) {
    prefix = index_entry_prefix(collection, best->path);
    plan.index = best->path;
    auto point = [&](const json::value& v) {
      segment seg;
      seg.lo = prefix;
      append_value_key(seg.lo, v);
      // $in values that differ only past a double's precision share one key: read it once.
      if (!segments.empty() && segments.back().lo == seg.lo) return;
      seg.hi = successor(seg.lo);
      segments.push_back(std::move(seg));
    };
    if (best->eq) {
      plan.bounds = "eq";
      point(*best->eq);
      in_sort_order = spec.order_by.empty() || spec.order_by == best->path;
    } else if (best->has_in) {
      plan.bounds = "in";
      for (const auto& v : best->in)
        point(v);
      in_sort_order = spec.order_by == best->path;
    } else {
      plan.bounds = "range";
      // Bounds are inclusive here; the conditions themselves decide the edges. A range
      // stays within the type of its bounds.
      segment seg;
      std::string lo_key, hi_key;
      if (best->lo) append_value_key(lo_key, *best->lo);
      if (best->hi) append_value_key(hi_key, *best->hi);
      // Booleans are one type class over two type bytes (false 0x03, true 0x04).
      const char type = best->lo ? type_byte(lo_key) : type_byte(hi_key);
      const bool boolean = type == '\x03' || type == '\x04';
      const char first_type = boolean ? '\x03' : type;
      const char last_type = boolean ? '\x04' : type;
      seg.lo = prefix + (best->lo ? lo_key : std::string(1, first_type));
      seg.hi =
        best->hi ? successor(prefix + hi_key) : successor(prefix + std::string(1, last_type));
      segments.push_back(std::move(seg));
      in_sort_order = spec.order_by == best->path;
    }
  } else {
    plan.bounds = "all";
    segments.push_back({docs, successor(docs)});
    in_sort_order = spec.order_by.empty();
  }

  if (spec.explain) {
    std::uint64_t n = 0;
    for (const auto& seg : segments) {
      auto s =
        shard_.scan(best ? prefix : docs, seg.lo, false, [&](std::string_view k, std::string_view) {
          if ((!seg.hi.empty() && k >= seg.hi) || n >= max_estimate) return false;
          ++n;
          return true;
        });
      if (!s) return query_error{"storage_error", s.to_string()};
    }
    plan.estimated_keys = n;
    return plan;
  }

  // Visit candidates, fetch and match them; in sort order, stop one past the limit.
  shard_hits out;
  std::string stored;
  storage::status failure;
  const std::size_t want = static_cast<std::size_t>(spec.limit) + 1;
  auto visit = [&](std::string_view id, std::string_view value) -> bool {
    std::uint64_t version = 0;
    std::string_view text;
    if (!layout_.decode(value, version, text)) return true;
    auto doc = parse_object(text);
    if (!doc || !spec.where.matches(*doc)) return true;
    auto key = sort_key(spec, *doc, id);
    if (!after_cursor(spec, key)) return true;
    out.hits.push_back(hit{std::move(key), std::string(id), version, std::string(text)});
    return !(in_sort_order && out.hits.size() >= want);
  };
  const std::string_view scan_prefix = best ? std::string_view(prefix) : std::string_view(docs);
  // Where the cursor's sort key sits among the keys read, when they are in sort order.
  std::string cursor_key;
  if (in_sort_order && !spec.after.empty()) {
    if (!best) {
      cursor_key = docs + spec.after; // sort key = id
    } else if (spec.order_by == best->path) {
      cursor_key = prefix + spec.after; // sort key = value key ++ id = the entry's suffix
    } else if (best->eq) {
      cursor_key = segments.front().lo + spec.after; // sort key = id, one value
    }
  }
  // Read segments in result order: reversed for a descending query read in sort order.
  const bool reverse = in_sort_order && spec.desc;
  std::vector<std::size_t> order(segments.size());
  for (std::size_t i = 0; i < order.size(); ++i)
    order[i] = reverse ? order.size() - 1 - i : i;
  for (auto i : order) {
    const auto& seg = segments[i];
    bool stop = false;
    auto on_key = [&](std::string_view k, std::string_view v) {
      if (!reverse && !seg.hi.empty() && k >= seg.hi) return false;
      if (reverse && k < seg.lo) return false;
      if (reverse && !seg.hi.empty() && k >= seg.hi) return true;
      if (!best) {
        stop = !visit(k.substr(docs.size()), v);
        return !stop;
      }
      // An index entry: the id follows the value key. Fetch the document.
      std::string_view rest = k.substr(prefix.size());
      auto doc_id = rest.substr(value_key_size(rest));
      auto s = shard_.get(docs + std::string(doc_id), stored);
      if (s.code() == storage::errc::not_found) return true; // cannot happen: same batch
      if (!s) {
        failure = s;
        return false;
      }
      stop = !visit(doc_id, stored);
      return !stop;
    };
    std::string from = reverse ? seg.hi : seg.lo;
    // Resume at the cursor where the reading order is the sort order (after_cursor
    // skips the cursor's own key).
    if (!cursor_key.empty()) {
      if (!reverse && cursor_key > from) from = cursor_key;
      if (reverse && (from.empty() || cursor_key < from)) from = cursor_key;
    }
    auto s = shard_.scan(scan_prefix, from, reverse, on_key);
    if (!s) return query_error{"storage_error", s.to_string()};
    if (!failure) return query_error{"storage_error", failure.to_string()};
    if (stop) break;
  }
  if (!in_sort_order) {
    std::sort(out.hits.begin(), out.hits.end(), [&](const hit& a, const hit& b) {
      return spec.desc ? a.sort_key > b.sort_key : a.sort_key < b.sort_key;
    });
  }
  if (out.hits.size() > spec.limit) {
    out.hits.resize(spec.limit);
    out.more = true;
  }
  return out;
}

} // namespace shoal::query
