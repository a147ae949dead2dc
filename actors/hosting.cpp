// SPDX-License-Identifier: Apache-2.0
#include "actors/hosting.hpp"

#include <algorithm>
#include <utility>

#include "actors/actor_api.hpp"
#include "actors/actor_metrics.hpp"

namespace shoal::actors {

std::string actor_state_key(std::string_view type, std::string_view id) {
  std::string k;
  k.reserve(2 + type.size() + id.size());
  k += 'a';
  k += type;
  k += '\0';
  k += id;
  return k;
}

hosting::hosting(shard::context& ctx, config cfg) : ctx_(ctx), cfg_(cfg) {}

hosting::~hosting() {
  if (idle_timer_) ctx_.cancel(*idle_timer_);
  // The hosted actors end with their shard; calls that waited for a passivation are
  // answered, since no actor will take them.
  for (auto& [key, h] : hosted_) {
    if (runtime_) runtime_->stop(h.handle);
    if (h.waiting)
      for (auto& w : *h.waiting)
        w.to.deliver(core::error{core::errc::shutting_down, "the shard stopped"});
    if (!h.stopping && cfg_.metrics)
      if (auto* m = cfg_.metrics->find(h.type->name())) m->active.add(-1);
  }
}

void hosting::serve(actor_call&& call, core::reply_to<actor_result> to) {
  const actor_type* type = cfg_.registry ? cfg_.registry->find(call.type) : nullptr;
  if (!type || !runtime_)
    return to.deliver(core::error{core::errc::not_found, "unknown_actor_type",
                                  "no actor type '" + call.type + "'"});
  if (!type->find(call.method))
    // Refused here, so that a wrong method name does not activate (load) the actor.
    return to.deliver(core::error{
      core::errc::not_found, "unknown_method",
      "actor type '" + call.type + "' has no method '" + call.method + "'"});
  auto key = actor_state_key(call.type, call.id);
  auto it = hosted_.find(key);
  if (it != hosted_.end() && it->second.stopping) {
    auto& waiting = it->second.waiting;
    if (!waiting) waiting = std::make_unique<std::deque<waiting_call>>();
    waiting->push_back({std::move(call), std::move(to)});
    return;
  }
  auto& entry = it != hosted_.end() ? it->second : activate(type, key, call.id);
  entry.last_used = ctx_.now();
  lru_.splice(lru_.end(), lru_, entry.lru); // most recently used last
  runtime_->call(entry.handle, std::move(call), std::move(to));
  // Over the bound: the least recently used go first (never the one just called).
  while (lru_.size() > std::max<std::uint32_t>(cfg_.max_active, 1))
    passivate(lru_.front());
  schedule_idle();
}

void hosting::serve(state_write&& req, core::reply_to<state_written> to) {
  storage::write_batch batch;
  batch.put(std::move(req.key), std::move(req.value));
  // Write-then-reply: the actor's turn ends once the state is durable, so its next call
  // cannot observe (or answer from) a state a crash could still take back.
  auto committed = ctx_.commit(std::move(batch), [to](core::result<void> r) mutable {
    if (!r) return to.deliver(std::move(r).error());
    to.deliver(state_written{});
  });
  if (!committed) to.deliver(std::move(committed).error());
}

hosting::hosted& hosting::activate(const actor_type* type, const std::string& key,
                                   const std::string& id) {
  auto h = runtime_->spawn(*type, id);
  keys_.emplace(h, key);
  auto& entry = hosted_[key];
  entry.handle = h;
  entry.type = type;
  entry.lru = lru_.insert(lru_.end(), key);
  if (auto* m = cfg_.metrics ? cfg_.metrics->find(type->name()) : nullptr) {
    m->active.add(1);
    m->activations.inc();
  }
  return entry;
}

void hosting::passivate(std::string key) {
  auto& h = hosted_.at(key);
  h.stopping = true;
  lru_.erase(h.lru);
  if (auto* m = cfg_.metrics ? cfg_.metrics->find(h.type->name()) : nullptr) {
    m->active.add(-1);
    m->passivations.inc();
  }
  // The actor answers once everything queued before this request is done; until then
  // new calls wait here, so none is lost and none overtakes an earlier one.
  runtime_->passivate(h.handle, [this, key] { stopped(key); });
}

void hosting::stopped(const std::string& key) {
  auto it = hosted_.find(key);
  if (it == hosted_.end() || !it->second.stopping) return;
  auto waiting = std::move(it->second.waiting);
  keys_.erase(it->second.handle);
  hosted_.erase(it);
  // Calls that waited for it start a new activation, in their order.
  if (waiting)
    for (auto& w : *waiting)
      serve(std::move(w.call), std::move(w.to));
}

void hosting::down(actor_runtime::handle h) {
  auto k = keys_.find(h);
  if (k == keys_.end()) return;
  auto key = k->second;
  auto it = hosted_.find(key);
  if (it == hosted_.end() || it->second.stopping) return; // a passivation: stopped() handles it
  keys_.erase(k);
  lru_.erase(it->second.lru);
  if (auto* m = cfg_.metrics ? cfg_.metrics->find(it->second.type->name()) : nullptr)
    m->active.add(-1);
  hosted_.erase(it);
}

void hosting::schedule_idle() {
  if (idle_timer_ || lru_.empty()) return;
  auto interval =
    std::max(std::chrono::duration_cast<shard::clock::duration>(cfg_.idle_timeout / 2),
             std::chrono::duration_cast<shard::clock::duration>(std::chrono::milliseconds(10)));
  idle_timer_ = ctx_.schedule(ctx_.now() + interval, [this] {
    idle_timer_.reset();
    on_idle();
  });
}

void hosting::on_idle() {
  const auto now = ctx_.now();
  while (!lru_.empty()) {
    auto& h = hosted_.at(lru_.front());
    if (now - h.last_used < cfg_.idle_timeout) break;
    passivate(lru_.front());
  }
  schedule_idle();
}

} // namespace shoal::actors
