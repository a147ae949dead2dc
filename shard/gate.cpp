// SPDX-License-Identifier: Apache-2.0
#include "shard/gate.hpp"

#include <utility>

namespace shoal::shard {

durability_gate::durability_gate(storage::shard_store& shard, storage::store& store, bool sync,
                                 std::function<void(std::uint64_t)> request_sync)
    : shard_(shard), store_(store), sync_(sync), request_sync_(std::move(request_sync)) {}

durability_gate::~durability_gate() {
  stop();
}

void durability_gate::stop() {
  run_completions();
  const core::error stopped{core::errc::shutting_down, "the shard stopped"};
  const core::error unknown{core::errc::outcome_unknown,
                            "the shard stopped before the write was synced: it may be kept"};
  in_flight_ = false;
  pending_keys_.clear();
  pending_ranges_ = 0;
  while (!held_.empty()) {
    auto e = std::move(held_.front());
    held_.pop_front();
    if (auto* c = std::get_if<held_commit>(&e.what)) {
      if (c->done) c->done(unknown);
    } else {
      std::get<barrier_fn>(e.what)(stopped);
    }
  }
}

core::result<void> durability_gate::commit(storage::write_batch&& batch, commit_done done) {
  // Never fsync here: with storage.sync the syncer does it once for many writes.
  if (auto r = shard_.write(batch, false); !r) return r;
  if (!sync_) {
    if (done) completions_.push_back(std::move(done));
    return core::ok();
  }
  last_sequence_ = store_.latest_sequence();
  held_commit c{std::move(done), {}, false};
  c.keys.reserve(batch.size());
  for (const auto& op : batch.ops()) {
    if (op.kind == storage::write_batch::op_kind::del_range) {
      c.range = true;
      ++pending_ranges_;
      continue;
    }
    ++pending_keys_[op.key];
    c.keys.push_back(op.key);
  }
  hold(last_sequence_, std::move(c));
  return core::ok();
}

bool durability_gate::pending(std::string_view key) const {
  if (held_.empty()) return false;
  return pending_ranges_ > 0 || pending_keys_.count(std::string(key)) != 0;
}

void durability_gate::after_durable(std::string_view key, barrier_fn fn) {
  if (!pending(key)) return fn(core::ok());
  hold(last_sequence_, std::move(fn));
}

void durability_gate::after_all_durable(barrier_fn fn) {
  if (held_.empty()) return fn(core::ok());
  hold(last_sequence_, std::move(fn));
}

void durability_gate::hold(std::uint64_t sequence, std::variant<held_commit, barrier_fn> what) {
  held_.push_back({sequence, std::move(what)});
  request();
}

void durability_gate::request() {
  if (in_flight_ || held_.empty()) return;
  in_flight_ = true;
  request_sync_(held_.back().sequence);
}

void durability_gate::forget(const held_commit& c) {
  for (const auto& k : c.keys)
    if (auto it = pending_keys_.find(k); it != pending_keys_.end() && --it->second == 0)
      pending_keys_.erase(it);
  if (c.range) --pending_ranges_;
}

void durability_gate::synced(std::uint64_t durable) {
  in_flight_ = false;
  while (!held_.empty() && held_.front().sequence <= durable) {
    auto e = std::move(held_.front());
    held_.pop_front();
    if (auto* c = std::get_if<held_commit>(&e.what)) {
      forget(*c);
      if (c->done) c->done(core::ok());
    } else {
      std::get<barrier_fn>(e.what)(core::ok());
    }
  }
  request();
}

void durability_gate::sync_failed(const core::error& err) {
  in_flight_ = false;
  auto held = std::move(held_);
  held_.clear();
  pending_keys_.clear();
  pending_ranges_ = 0;
  for (auto& e : held) {
    if (auto* c = std::get_if<held_commit>(&e.what)) {
      if (c->done) c->done(err);
    } else {
      std::get<barrier_fn>(e.what)(err);
    }
  }
  request();
}

void durability_gate::run_completions() {
  // A completion may commit again (and so add completions): run until none is left. The
  // two vectors trade places, so neither gives up its capacity (no allocation per step).
  while (!completions_.empty()) {
    running_.swap(completions_);
    for (auto& done : running_)
      done(core::ok());
    running_.clear();
  }
}

} // namespace shoal::shard
