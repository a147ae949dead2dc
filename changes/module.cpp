// SPDX-License-Identifier: Apache-2.0
#include "changes/module.hpp"

#include <algorithm>
#include <chrono>
#include <limits>
#include <tuple>
#include <utility>

#include "changes/metrics.hpp"

namespace shoal::changes {

namespace {

/// How often age-based retention looks for old events, and how many it deletes at most
/// per look.
constexpr std::chrono::seconds trim_interval{1};
constexpr std::size_t trim_max_deletes = 10000;

} // namespace

module::module(shard::context& ctx, config cfg) : ctx_(ctx), cfg_(cfg) {
  if (!cfg_.enabled) return;
  log_ = std::make_unique<change_log>(ctx_.store(), cfg_.keep);
  schedule_trim();
}

module::~module() {
  if (trim_timer_) ctx_.cancel(*trim_timer_);
  const core::error stopped{core::errc::shutting_down, "shard stopped"};
  std::int64_t parked = 0;
  for (auto& [collection, list] : waiters_)
    for (auto& w : list) {
      ++parked;
      ctx_.cancel(w.timer);
      w.to.deliver(stopped);
    }
  count_waiters(-parked);
}

void module::count_waiters(std::int64_t delta) {
  if (cfg_.metrics && delta != 0) cfg_.metrics->waiters.add(delta);
}

void module::serve(changes_read&& req, core::reply_to<batch> to) {
  if (!log_)
    return to.deliver(
      core::error{core::errc::not_found, "the change feed is turned off (changes.enabled)"});
  auto b = log_->read(req.collection, req.after, req.limit);
  if (!b) return to.deliver(std::move(b).error());
  const bool park = b->events.empty() && req.limit > 0
                    && req.after != std::numeric_limits<std::uint64_t>::max() && req.wait_ms > 0;
  if (!park) return to.deliver(std::move(*b));
  const auto id = ++next_waiter_;
  auto collection = req.collection;
  const auto timer = ctx_.schedule(ctx_.now() + std::chrono::milliseconds(req.wait_ms),
                                   [this, collection, id] { expire(collection, id); });
  waiters_[std::move(req.collection)].push_back({id, req.after, req.limit, timer, std::move(to)});
  count_waiters(1);
}

void module::expire(const std::string& collection, std::uint64_t id) {
  auto it = waiters_.find(collection);
  if (it == waiters_.end()) return;
  auto& list = it->second;
  auto w = std::find_if(list.begin(), list.end(), [id](const waiter& x) { return x.id == id; });
  if (w == list.end()) return;
  auto done = std::move(*w);
  list.erase(w);
  if (list.empty()) waiters_.erase(it);
  count_waiters(-1);
  done.to.deliver(log_->read(collection, done.after, done.limit));
}

void module::wake(const std::string& collection) {
  auto it = waiters_.find(collection);
  if (it == waiters_.end()) return;
  auto list = std::move(it->second);
  waiters_.erase(it);
  count_waiters(-static_cast<std::int64_t>(list.size()));
  for (const auto& w : list)
    ctx_.cancel(w.timer);
  // Streams that are caught up all wait at the same point, so each distinct (after,
  // limit) is read once and its answer copied to every reader.
  std::sort(list.begin(), list.end(), [](const waiter& a, const waiter& b) {
    return std::tie(a.after, a.limit) < std::tie(b.after, b.limit);
  });
  for (std::size_t i = 0; i < list.size();) {
    auto answer = log_->read(collection, list[i].after, list[i].limit);
    auto j = i + 1;
    while (j < list.size() && list[j].after == list[i].after && list[j].limit == list[i].limit)
      ++j;
    for (auto k = i; k + 1 < j; ++k)
      list[k].to.deliver(answer);
    list[j - 1].to.deliver(std::move(answer));
    i = j;
  }
}

void module::publish(const std::string& collection, std::uint64_t seq) {
  log_->publish(collection, seq);
  wake(collection);
}

core::result<void> module::prepare(const shard::doc_change& c, storage::write_batch& batch) {
  pending_.reset();
  if (!log_) return core::ok();
  event e;
  e.kind = c.after.empty() ? event_kind::del : event_kind::put;
  e.id.assign(c.id);
  e.version = c.version;
  e.doc.assign(c.after);
  e.time_ms = c.time_ms;
  auto p = log_->append(batch, c.collection, std::move(e));
  if (!p) return std::move(p).error();
  pending_ = std::move(*p);
  return core::ok();
}

void module::applied(const shard::doc_change&) {
  if (!log_ || !pending_) return;
  auto p = std::move(*pending_);
  pending_.reset();
  log_->commit(p);
  if (cfg_.metrics) cfg_.metrics->events.inc();
  // Readable once durable: with storage.sync after the fsync that covers the write (even
  // a failed one: the write stays in the store, where reads see it).
  if (ctx_.all_durable()) return publish(p.collection, p.seq);
  const auto key = change_log::key(p.collection, p.seq);
  if (!ctx_.pending(key)) return publish(p.collection, p.seq);
  ctx_.after_durable(key, [this, collection = std::move(p.collection), seq = p.seq](
                            core::result<void>) { publish(collection, seq); });
}

void module::schedule_trim() {
  if (!log_ || cfg_.keep.max_age_ms == 0) return;
  trim_timer_ = ctx_.schedule(ctx_.now() + trim_interval, [this] { trim(); });
}

void module::trim() {
  trim_timer_.reset();
  auto plan = log_->plan_trim(ctx_.wall_ms(), trim_max_deletes);
  if (!plan) {
    ctx_.report("trimming the change log by age", plan.error());
  } else if (*plan) {
    auto committed = ctx_.commit(std::move((*plan)->batch), [](core::result<void>) {});
    if (committed)
      log_->trimmed(**plan);
    else
      ctx_.report("trimming the change log by age", committed.error());
  }
  schedule_trim();
}

} // namespace shoal::changes
