// SPDX-License-Identifier: Apache-2.0
#include "http/connection_table.hpp"

namespace shoal::http {

connection_table::admission connection_table::admit(std::weak_ptr<session> owner,
                                                     std::string client, std::int64_t open) {
  admission a;
  std::lock_guard<std::mutex> guard{mutex_};
  if (max_per_client_ != 0) {
    auto it = per_client_.find(client);
    if (it != per_client_.end() && it->second >= max_per_client_) {
      a.outcome = verdict::client_full;
      return a;
    }
  }
  if (open >= static_cast<std::int64_t>(max_)) {
    if (idle_.empty()) {
      a.outcome = verdict::full;
      return a;
    }
    // The oldest idle member gives way. It stays counted until its connection is gone,
    // so a stream of newcomers evicts one idle member each and never more.
    auto& oldest = *idle_.front();
    a.evicted = oldest.owner;
    forget_idle(oldest);
  }
  ++per_client_[client];
  members_.push_back(member{std::move(owner), std::move(client), false, {}});
  a.outcome = verdict::admitted;
  a.at = std::prev(members_.end());
  // Idle from the start: a new connection has sent nothing yet.
  a.at->idle = true;
  a.at->idle_at = idle_.insert(idle_.end(), a.at);
  return a;
}

void connection_table::idle(slot at) {
  std::lock_guard<std::mutex> guard{mutex_};
  if (at->idle) return;
  at->idle = true;
  at->idle_at = idle_.insert(idle_.end(), at);
}

void connection_table::busy(slot at) {
  std::lock_guard<std::mutex> guard{mutex_};
  forget_idle(*at);
}

void connection_table::forget_idle(member& m) {
  if (!m.idle) return;
  idle_.erase(m.idle_at);
  m.idle = false;
}

void connection_table::leave(slot at) {
  std::lock_guard<std::mutex> guard{mutex_};
  forget_idle(*at);
  if (auto it = per_client_.find(at->client); it != per_client_.end() && --it->second == 0)
    per_client_.erase(it);
  members_.erase(at);
}

std::vector<std::weak_ptr<session>> connection_table::members() const {
  std::lock_guard<std::mutex> guard{mutex_};
  std::vector<std::weak_ptr<session>> out;
  out.reserve(members_.size());
  for (const auto& m : members_)
    out.push_back(m.owner);
  return out;
}

std::size_t connection_table::size() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return members_.size();
}

std::size_t connection_table::idle_count() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return idle_.size();
}

} // namespace shoal::http
