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
    auto oldest = idle_.begin();
    a.evicted = oldest->owner;
    oldest->idle = false;
    busy_.splice(busy_.end(), idle_, oldest);
  }
  ++per_client_[client];
  // Idle from the start: a new connection has sent nothing yet.
  idle_.push_back(member{std::move(owner), std::move(client), true});
  a.outcome = verdict::admitted;
  a.at = std::prev(idle_.end());
  return a;
}

void connection_table::idle(slot at) {
  std::lock_guard<std::mutex> guard{mutex_};
  if (at->idle) return;
  at->idle = true;
  idle_.splice(idle_.end(), busy_, at);
}

void connection_table::busy(slot at) {
  std::lock_guard<std::mutex> guard{mutex_};
  if (!at->idle) return;
  at->idle = false;
  busy_.splice(busy_.end(), idle_, at);
}

void connection_table::leave(slot at) {
  std::lock_guard<std::mutex> guard{mutex_};
  if (auto it = per_client_.find(at->client); it != per_client_.end() && --it->second == 0)
    per_client_.erase(it);
  (at->idle ? idle_ : busy_).erase(at);
}

std::vector<std::weak_ptr<session>> connection_table::members() const {
  std::lock_guard<std::mutex> guard{mutex_};
  std::vector<std::weak_ptr<session>> out;
  out.reserve(idle_.size() + busy_.size());
  for (const auto& m : idle_)
    out.push_back(m.owner);
  for (const auto& m : busy_)
    out.push_back(m.owner);
  return out;
}

std::size_t connection_table::size() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return idle_.size() + busy_.size();
}

std::size_t connection_table::idle_count() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return idle_.size();
}

} // namespace shoal::http
