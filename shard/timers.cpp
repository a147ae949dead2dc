// SPDX-License-Identifier: Apache-2.0
#include "shard/timers.hpp"

#include <vector>

namespace shoal::shard {

timer_id timer_queue::add(time_point due, std::function<void()> fn) {
  const auto id = ++next_id_;
  by_due_.emplace(key{due, id}, std::move(fn));
  due_of_.emplace(id, due);
  return id;
}

void timer_queue::cancel(timer_id id) {
  auto it = due_of_.find(id);
  if (it == due_of_.end()) return;
  by_due_.erase(key{it->second, id});
  due_of_.erase(it);
}

std::optional<time_point> timer_queue::next_due() const {
  if (by_due_.empty()) return std::nullopt;
  return by_due_.begin()->first.first;
}

std::size_t timer_queue::run_due(time_point now) {
  // Decide first which ones are due: those that run may add timers (which wait for a
  // later call) or cancel others (which then do not run).
  std::vector<key> due;
  for (auto it = by_due_.begin(); it != by_due_.end() && it->first.first <= now; ++it)
    due.push_back(it->first);
  std::size_t ran = 0;
  for (const auto& k : due) {
    auto it = by_due_.find(k);
    if (it == by_due_.end()) continue; // cancelled by an earlier one
    auto fn = std::move(it->second);
    by_due_.erase(it);
    due_of_.erase(k.second);
    fn();
    ++ran;
  }
  return ran;
}

} // namespace shoal::shard
