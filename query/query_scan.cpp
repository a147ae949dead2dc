// SPDX-License-Identifier: Apache-2.0
#include "query/query_scan.hpp"

#include <algorithm>
#include <optional>

#include <boost/json.hpp>

#include "documents/documents.hpp"
#include "query/shard_index.hpp"
#include "query/values.hpp"
#include "util/json.hpp"

namespace shoal::query {

namespace {

namespace json = boost::json;

constexpr std::uint64_t max_estimate = 10'000'000; ///< explain stops counting here

/// The first byte of a value key: its JSON type.
char type_byte(const std::string& value_key) {
  return value_key.empty() ? '\0' : value_key[0];
}

std::optional<json::value> parse_object(std::string_view text) {
  if (text.empty()) return std::nullopt;
  json::error_code ec;
  auto v = util::parse_json(text, ec);
  if (ec || !v.is_object()) return std::nullopt;
  return v;
}

core::error index_required(std::string_view collection, const query_spec& spec) {
  std::string paths;
  for (const auto& c : spec.where.conditions)
    paths += (paths.empty() ? "" : ", ") + c.path;
  return core::error{
    core::errc::invalid_argument, "index_required",
    paths.empty()
      ? "a query without conditions reads every document; set \"allow_scan\": true"
      : "no ready index on " + paths + "; create one (PUT /v1/collections/"
          + std::string(collection) + "/indexes/{field}) or set \"allow_scan\": true"};
}

} // namespace

query_scan::~query_scan() = default;

core::result<std::unique_ptr<query_scan>>
query_scan::start(const shard_index& index, std::string_view collection, query_spec spec,
                  bool explain, std::unique_ptr<storage::shard_view> view) {
  if (!view) return core::error{core::errc::shutting_down, "the store is closed"};
  std::unique_ptr<query_scan> q{new query_scan()};
  q->spec_ = std::move(spec);
  q->explain_ = explain;
  q->view_ = std::move(view);
  q->docs_ = documents::collection_prefix(collection);
  const auto& s = q->spec_;

  // A collection with no documents here answers empty, whatever the indexes.
  bool any = false;
  if (auto r = q->view_->scan(q->docs_, {}, false,
                              [&](std::string_view, std::string_view) {
                                any = true;
                                return false;
                              });
      !r)
    return std::move(r).error();
  if (!any && !explain) {
    q->done_ = true;
    return q;
  }

  const condition* best = index.best_index(collection, s);
  if (!best && !s.allow_scan && !explain) return index_required(collection, s);

  // Where to read: index entry segments, or the collection's documents.
  auto& segments = q->segments_;
  if (best) {
    q->prefix_ = index_entry_prefix(collection, best->path);
    const auto& prefix = q->prefix_;
    q->plan_.index = best->path;
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
      q->plan_.bounds = "eq";
      point(*best->eq);
      q->in_sort_order_ = s.order_by.empty() || s.order_by == best->path;
    } else if (best->has_in) {
      q->plan_.bounds = "in";
      for (const auto& v : best->in)
        point(v);
      q->in_sort_order_ = s.order_by == best->path;
    } else {
      q->plan_.bounds = "range";
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
      q->in_sort_order_ = s.order_by == best->path;
    }
  } else {
    q->plan_.bounds = "all";
    segments.push_back({q->docs_, successor(q->docs_)});
    q->in_sort_order_ = s.order_by.empty();
  }
  if (explain) q->in_sort_order_ = false;

  // Where the cursor's sort key sits among the keys read, when they are in sort order.
  if (q->in_sort_order_ && !s.after.empty()) {
    if (!best) {
      q->cursor_key_ = q->docs_ + s.after; // sort key = id
    } else if (s.order_by == best->path) {
      q->cursor_key_ = q->prefix_ + s.after; // sort key = value key ++ id = the entry's suffix
    } else if (best->eq) {
      q->cursor_key_ = segments.front().lo + s.after; // sort key = id, one value
    }
  }
  // Read segments in result order: reversed for a descending query read in sort order.
  q->reverse_ = q->in_sort_order_ && s.desc;
  q->order_.resize(segments.size());
  for (std::size_t i = 0; i < q->order_.size(); ++i)
    q->order_[i] = q->reverse_ ? q->order_.size() - 1 - i : i;
  return q;
}

bool query_scan::visit(std::string_view id, std::string_view stored) {
  auto rec = documents::decode(stored);
  if (!rec || !rec->live()) return true;
  auto doc = parse_object(rec->json);
  if (!doc || !spec_.where.matches(*doc)) return true;
  auto key = sort_key(spec_, *doc, id);
  if (!after_cursor(spec_, key)) return true;
  const std::size_t want = static_cast<std::size_t>(spec_.limit) + 1;
  hit h{std::move(key), std::string(id), rec->version, std::string(rec->json)};
  if (in_sort_order_) {
    out_.hits.push_back(std::move(h));
    return out_.hits.size() < want;
  }
  // Not in sort order: keep the first `want` in sort order only (a bounded heap whose
  // top is the last of them), so memory stays bounded however many documents match.
  const bool desc = spec_.desc;
  auto earlier = [desc](const hit& a, const hit& b) {
    return desc ? a.sort_key > b.sort_key : a.sort_key < b.sort_key;
  };
  auto& heap = out_.hits;
  if (heap.size() == want) {
    if (!earlier(h, heap.front())) {
      out_.more = true;
      return true;
    }
    std::pop_heap(heap.begin(), heap.end(), earlier);
    heap.back() = std::move(h);
    out_.more = true;
  } else {
    heap.push_back(std::move(h));
  }
  std::push_heap(heap.begin(), heap.end(), earlier);
  return true;
}

core::result<bool> query_scan::step(std::size_t max_keys, std::size_t max_bytes) {
  std::size_t keys = 0;
  std::size_t bytes = 0;
  const bool by_index = !prefix_.empty();
  const std::string_view scan_prefix = by_index ? std::string_view(prefix_) : std::string_view(docs_);
  while (!done_ && position_ < order_.size()) {
    const auto& seg = segments_[order_[position_]];
    bool stop = false;   // the answer is complete
    bool paused = false; // the step's budget is spent
    std::optional<core::error> failure;
    auto on_key = [&](std::string_view k, std::string_view v) {
      if (!reverse_ && !seg.hi.empty() && k >= seg.hi) return false;
      if (reverse_ && k < seg.lo) return false;
      if (reverse_ && !seg.hi.empty() && k >= seg.hi) return true;
      if (keys >= max_keys || bytes >= max_bytes) {
        paused = true;
        from_.assign(k); // not read yet: the next step starts here
        return false;
      }
      ++keys;
      if (explain_) {
        if (++counted_ >= max_estimate) stop = true;
        return !stop;
      }
      if (!by_index) {
        bytes += v.size();
        stop = !visit(k.substr(docs_.size()), v);
        return !stop;
      }
      // An index entry: the id follows the value key. Fetch the document.
      std::string_view rest = k.substr(prefix_.size());
      auto doc_id = rest.substr(value_key_size(rest));
      auto stored = view_->get(docs_ + std::string(doc_id));
      if (!stored) {
        if (stored.error() == core::errc::not_found) return true; // cannot happen: same batch
        failure = std::move(stored).error();
        return false;
      }
      bytes += stored->size();
      stop = !visit(doc_id, *stored);
      return !stop;
    };
    std::string from;
    if (resumed_) {
      from = from_;
    } else {
      from = reverse_ ? seg.hi : seg.lo;
      // Resume at the cursor where the reading order is the sort order (after_cursor
      // skips the cursor's own key).
      if (!cursor_key_.empty()) {
        if (!reverse_ && cursor_key_ > from) from = cursor_key_;
        if (reverse_ && (from.empty() || cursor_key_ < from)) from = cursor_key_;
      }
    }
    auto r = view_->scan(scan_prefix, from, reverse_, on_key);
    if (!r) return std::move(r).error();
    if (failure) return std::move(*failure);
    if (paused) {
      resumed_ = true;
      return false;
    }
    resumed_ = false;
    if (stop) {
      done_ = true;
      break;
    }
    ++position_;
  }
  done_ = true;
  finish_hits();
  return true;
}

void query_scan::finish_hits() {
  plan_.estimated_keys = counted_;
  if (!in_sort_order_) {
    std::sort(out_.hits.begin(), out_.hits.end(), [&](const hit& a, const hit& b) {
      return spec_.desc ? a.sort_key > b.sort_key : a.sort_key < b.sort_key;
    });
  }
  if (out_.hits.size() > spec_.limit) {
    out_.hits.resize(spec_.limit);
    out_.more = true;
  }
  view_.reset(); // let go of the snapshot as soon as the answer is known
}

shard_hits query_scan::take_hits() {
  return std::move(out_);
}

shard_plan query_scan::take_plan() {
  return std::move(plan_);
}

} // namespace shoal::query
