// SPDX-License-Identifier: Apache-2.0
#include "documents/read_cache.hpp"

namespace shoal::documents {

const std::string* read_cache::get(const std::string& key) {
  auto it = map_.find(key);
  if (it == map_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second);
  return &it->second->record;
}

void read_cache::put(const std::string& key, std::string record) {
  if (max_bytes_ == 0) return;
  erase(key);
  node n{key, std::move(record)};
  const auto c = cost(n);
  if (c > max_bytes_) return;
  lru_.push_front(std::move(n));
  map_.emplace(lru_.front().key, lru_.begin());
  bytes_ += c;
  while (bytes_ > max_bytes_) {
    auto& last = lru_.back();
    bytes_ -= cost(last);
    map_.erase(last.key);
    lru_.pop_back();
  }
}

void read_cache::refresh(const std::string& key, std::string record) {
  if (map_.find(key) == map_.end()) return;
  put(key, std::move(record));
}

void read_cache::erase(const std::string& key) {
  auto it = map_.find(key);
  if (it == map_.end()) return;
  auto node_it = it->second;
  bytes_ -= cost(*node_it);
  map_.erase(it);
  lru_.erase(node_it);
}

} // namespace shoal::documents
