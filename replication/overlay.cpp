// SPDX-License-Identifier: Apache-2.0
#include "replication/overlay.hpp"

#include <algorithm>

namespace shoal::replication {
namespace {

using effect_map = overlay_store::effect_map;
using range = overlay_store::range;

bool covered(const std::vector<range>& ranges, std::string_view key) {
  return std::any_of(ranges.begin(), ranges.end(),
                     [&](const range& r) { return r.begin <= key && key < r.end; });
}

bool has_prefix(std::string_view key, std::string_view prefix) {
  return key.substr(0, prefix.size()) == prefix;
}

/// The pending effects a scan visits, in its order.
std::vector<std::pair<const std::string*, const overlay_store::effect*>>
in_scan(const effect_map& effects, std::string_view prefix, std::string_view from, bool reverse) {
  std::vector<std::pair<const std::string*, const overlay_store::effect*>> out;
  for (auto i = effects.lower_bound(prefix); i != effects.end() && has_prefix(i->first, prefix);
       ++i) {
    if (!from.empty() && (reverse ? i->first > from : i->first < from)) continue;
    out.emplace_back(&i->first, &i->second);
  }
  if (reverse) std::reverse(out.begin(), out.end());
  return out;
}

/// Runs `base_scan` (the store's scan, or a view's) and merges the pending effects into
/// what it yields, as if the pending batches were applied.
template <class BaseScan>
core::result<void> merged_scan(const effect_map& effects, const std::vector<range>& ranges,
                               std::string_view prefix, std::string_view from, bool reverse,
                               const storage::scan_fn& fn, BaseScan&& base_scan) {
  const auto pending = in_scan(effects, prefix, from, reverse);
  std::size_t next = 0;
  bool stopped = false;
  // Whether `a` comes before `b` in the scan's order.
  const auto before = [reverse](std::string_view a, std::string_view b) {
    return reverse ? a > b : a < b;
  };
  const auto emit_pending_before = [&](const std::string_view* bound) {
    while (!stopped && next < pending.size()
           && (bound == nullptr || before(*pending[next].first, *bound))) {
      const auto& [key, e] = pending[next++];
      if (e->value && !fn(*key, *e->value)) stopped = true;
    }
  };
  auto scanned = base_scan([&](std::string_view key, std::string_view value) {
    emit_pending_before(&key);
    if (stopped) return false;
    if (next < pending.size() && *pending[next].first == key) {
      const auto* e = pending[next++].second;
      if (e->value && !fn(key, *e->value)) stopped = true;
      return !stopped;
    }
    if (covered(ranges, key)) return true;
    if (!fn(key, value)) stopped = true;
    return !stopped;
  });
  if (!scanned) return scanned;
  emit_pending_before(nullptr);
  return core::ok();
}

class overlay_view final : public storage::shard_view {
public:
  overlay_view(std::unique_ptr<storage::shard_view> base, effect_map effects,
               std::vector<range> ranges)
      : base_(std::move(base)), effects_(std::move(effects)), ranges_(std::move(ranges)) {}

  core::result<std::string> get(std::string_view key) override {
    if (auto i = effects_.find(key); i != effects_.end()) {
      if (i->second.value) return *i->second.value;
      return core::error{core::errc::not_found, ""};
    }
    if (covered(ranges_, key)) return core::error{core::errc::not_found, ""};
    return base_->get(key);
  }

  core::result<void> scan(std::string_view prefix, std::string_view from, bool reverse,
                          const storage::scan_fn& fn) override {
    return merged_scan(
      effects_, ranges_, prefix, from, reverse, fn,
      [&](const storage::scan_fn& inner) { return base_->scan(prefix, from, reverse, inner); });
  }

private:
  std::unique_ptr<storage::shard_view> base_;
  effect_map effects_;
  std::vector<range> ranges_;
};

} // namespace

overlay_store::overlay_store(storage::shard_store& base) : base_(base) {}

void overlay_store::add(std::uint64_t index, const storage::write_batch& batch) {
  for (const auto& op : batch.ops()) {
    switch (op.kind) {
    case storage::write_batch::op_kind::put:
      effects_[op.key] = {index, op.value};
      break;
    case storage::write_batch::op_kind::del:
      effects_[op.key] = {index, std::nullopt};
      break;
    case storage::write_batch::op_kind::del_range:
      // Pending writes in the range are deleted too; the store's keys by the range.
      for (auto i = effects_.lower_bound(op.key); i != effects_.end() && i->first < op.value; ++i) {
        i->second = {index, std::nullopt};
      }
      ranges_.push_back({op.key, op.value, index});
      break;
    }
  }
}

void overlay_store::applied(std::uint64_t index) {
  for (auto i = effects_.begin(); i != effects_.end();) {
    i = i->second.index <= index ? effects_.erase(i) : std::next(i);
  }
  ranges_.erase(std::remove_if(ranges_.begin(), ranges_.end(),
                               [&](const range& r) { return r.index <= index; }),
                ranges_.end());
}

void overlay_store::clear() {
  effects_.clear();
  ranges_.clear();
}

bool overlay_store::pending(std::string_view key) const {
  return effects_.find(key) != effects_.end() || covered(ranges_, key);
}

core::result<std::string> overlay_store::get(std::string_view key) {
  if (auto i = effects_.find(key); i != effects_.end()) {
    if (i->second.value) return *i->second.value;
    return core::error{core::errc::not_found, ""};
  }
  if (covered(ranges_, key)) return core::error{core::errc::not_found, ""};
  return base_.get(key);
}

core::result<void> overlay_store::write(const storage::write_batch&, bool) {
  return core::error{core::errc::internal,
                     "a replicated shard is written through consensus, not directly"};
}

core::result<void> overlay_store::scan(std::string_view prefix, std::string_view from, bool reverse,
                                       const storage::scan_fn& fn) {
  return merged_scan(
    effects_, ranges_, prefix, from, reverse, fn,
    [&](const storage::scan_fn& inner) { return base_.scan(prefix, from, reverse, inner); });
}

std::unique_ptr<storage::shard_view> overlay_store::snapshot() {
  return std::make_unique<overlay_view>(base_.snapshot(), effects_, ranges_);
}

std::uint64_t overlay_store::estimate_num_keys() {
  return base_.estimate_num_keys();
}

std::uint64_t overlay_store::live_data_bytes() {
  return base_.live_data_bytes();
}

} // namespace shoal::replication
