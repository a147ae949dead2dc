// SPDX-License-Identifier: Apache-2.0
#include "changes/change_log.hpp"

#include <limits>
#include <optional>

namespace shoal::changes {

namespace {

void put_u64(std::string& out, std::uint64_t v) {
  for (int i = 7; i >= 0; --i)
    out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::uint64_t get_u64(std::string_view bytes) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 8 && i < bytes.size(); ++i)
    v = (v << 8) | static_cast<unsigned char>(bytes[i]);
  return v;
}

/// The sequence number at the end of a change-log key (after the collection prefix).
std::uint64_t seq_of(std::string_view key, std::size_t prefix_size) {
  return key.size() == prefix_size + 8 ? get_u64(key.substr(prefix_size)) : 0;
}

} // namespace

change_log::change_log(storage::shard_store& shard, retention keep) : shard_(shard), keep_(keep) {
  if (keep_.max_events == 0) keep_.max_events = 1;
}

std::string change_log::prefix(std::string_view collection) {
  std::string k;
  k.reserve(2 + collection.size());
  k += 'c';
  k += collection;
  k += '\0';
  return k;
}

std::string change_log::key(std::string_view collection, std::uint64_t seq) {
  auto k = prefix(collection);
  put_u64(k, seq);
  return k;
}

core::result<change_log::bounds*> change_log::load(std::string_view collection) {
  if (auto it = bounds_.find(collection); it != bounds_.end()) return &it->second;
  const auto p = prefix(collection);
  bounds b;
  std::uint64_t first = 0;
  auto s = shard_.scan(p, {}, false, [&](std::string_view k, std::string_view) {
    first = seq_of(k, p.size());
    return false;
  });
  if (!s) return std::move(s).error();
  if (first != 0) {
    std::uint64_t last = 0;
    s = shard_.scan(p, {}, true, [&](std::string_view k, std::string_view) {
      last = seq_of(k, p.size());
      return false;
    });
    if (!s) return std::move(s).error();
    b.first = first;
    b.last = last;
    b.published = last;
  }
  return &bounds_.emplace(std::string(collection), b).first->second;
}

core::result<pending> change_log::append(storage::write_batch& batch, std::string_view collection,
                                         event e) {
  auto b = load(collection);
  if (!b) return std::move(b).error();
  pending out;
  e.seq = (*b)->last + 1;
  out.collection.assign(collection);
  out.seq = e.seq;
  out.trimmed_to = 0;
  batch.put(key(collection, e.seq), encode_event(e));
  // Kept after this write: first .. seq; over the bound, the oldest goes in the same batch.
  if (e.seq - (*b)->first + 1 > keep_.max_events) {
    batch.del(key(collection, (*b)->first));
    out.trimmed_to = (*b)->first;
  }
  return out;
}

void change_log::commit(const pending& p) {
  auto it = bounds_.find(p.collection);
  if (it == bounds_.end()) return;
  auto& b = it->second;
  if (b.last == b.first - 1 && b.last + 1 == p.seq) b.first = p.seq; // first event kept
  b.last = p.seq;
  if (p.trimmed_to >= b.first) b.first = p.trimmed_to + 1;
}

void change_log::publish(std::string_view collection, std::uint64_t seq) {
  if (auto it = bounds_.find(collection); it != bounds_.end() && seq > it->second.published)
    it->second.published = std::min(seq, it->second.last);
}

core::result<std::uint64_t> change_log::published(std::string_view collection) {
  auto b = load(collection);
  if (!b) return std::move(b).error();
  return (*b)->published;
}

core::result<batch> change_log::read(std::string_view collection, std::uint64_t after,
                                     std::uint32_t limit) {
  auto loaded = load(collection);
  if (!loaded) return std::move(loaded).error();
  const bounds* b = *loaded;
  batch out;
  out.first = b->first;
  out.last = b->published;
  if (after == std::numeric_limits<std::uint64_t>::max()) return out;
  if (after > b->published || after + 1 < b->first)
    return core::error{core::errc::gone,
                       "events after " + std::to_string(after) + " of " + std::string(collection)
                         + " on this shard are no longer kept (oldest kept: "
                         + std::to_string(b->first) + ", newest: " + std::to_string(b->published)
                         + ")"};
  if (after == b->published || limit == 0) return out;
  const auto p = prefix(collection);
  const auto from = key(collection, after + 1);
  std::optional<core::error> decode_error;
  std::size_t bytes = 0;
  auto s = shard_.scan(p, from, false, [&](std::string_view k, std::string_view v) {
    auto seq = seq_of(k, p.size());
    if (seq == 0 || seq > b->published) return false;
    auto e = decode_event(seq, v);
    if (!e) {
      decode_error = core::error{core::errc::corrupt, "change-log event " + std::to_string(seq)
                                                        + " of " + std::string(collection)
                                                        + " is corrupt"};
      return false;
    }
    bytes += e->doc.size() + e->id.size();
    out.events.push_back(std::move(*e));
    return out.events.size() < limit && bytes < max_batch_bytes;
  });
  if (!s) return std::move(s).error();
  if (decode_error) return std::move(*decode_error);
  return out;
}

core::result<std::optional<change_log::trim_plan>> change_log::plan_trim(std::uint64_t now_ms,
                                                                         std::size_t max_deletes) {
  if (keep_.max_age_ms == 0 || now_ms <= keep_.max_age_ms) return std::optional<trim_plan>();
  const auto cutoff = now_ms - keep_.max_age_ms;
  trim_plan plan;
  std::size_t deleted = 0;
  for (auto& [collection, b] : bounds_) {
    if (deleted >= max_deletes) break;
    // Never the newest: the sequence must survive a restart.
    if (b.last == 0 || b.first >= b.last) continue;
    const auto p = prefix(collection);
    std::uint64_t upto = 0; // delete first .. upto
    auto s = shard_.scan(p, {}, false, [&](std::string_view k, std::string_view v) {
      auto seq = seq_of(k, p.size());
      if (seq == 0 || seq >= b.last || deleted >= max_deletes) return false;
      auto e = decode_event(seq, v);
      if (e && e->time_ms >= cutoff) return false;
      upto = seq;
      ++deleted;
      return true;
    });
    if (!s) return std::move(s).error();
    if (upto == 0) continue;
    plan.batch.del_range(key(collection, b.first), key(collection, upto + 1));
    plan.upto.emplace_back(collection, upto);
  }
  if (plan.upto.empty()) return std::optional<trim_plan>();
  return std::optional<trim_plan>(std::move(plan));
}

void change_log::trimmed(const trim_plan& plan) {
  for (const auto& [collection, upto] : plan.upto)
    if (auto it = bounds_.find(collection); it != bounds_.end() && upto + 1 > it->second.first)
      it->second.first = upto + 1;
}

} // namespace shoal::changes
