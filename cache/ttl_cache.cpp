// SPDX-License-Identifier: Apache-2.0
// The TTL cache of one shard: a list in recency order (front: most recently used), a hash
// map from key to list node (looked up by string_view: the map's keys view the key held
// by the node, which never moves), and an ordered index of expiries, so that a lookup is
// O(1) and expire()/next_expiry() start at the soonest expiry.
#include "cache/ttl_cache.hpp"

#include <iterator>
#include <list>
#include <map>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace shoal::cache {

namespace {

/// The bytes an entry counts for against max_bytes.
std::size_t cost(std::size_t key, std::size_t value, std::size_t content_type) noexcept {
  return key + value + content_type + ttl_cache::entry_overhead;
}

} // namespace

struct ttl_cache::impl {
  struct node;
  using lru_list = std::list<node>;
  using expiry_index = std::multimap<std::uint64_t, lru_list::iterator>;

  struct node {
    std::string key;
    entry e;
    std::size_t bytes = 0;
    expiry_index::iterator expiry;
  };

  explicit impl(std::size_t max) : max_bytes(max) {}

  std::size_t max_bytes;
  std::size_t bytes = 0;
  std::uint64_t evictions = 0;
  lru_list lru;
  /// Keys view node::key of the node they map to.
  std::unordered_map<std::string_view, lru_list::iterator> index;
  expiry_index expiries;

  lru_list::iterator find(std::string_view key) {
    auto it = index.find(key);
    return it == index.end() ? lru.end() : it->second;
  }

  void remove(lru_list::iterator it) {
    bytes -= it->bytes;
    expiries.erase(it->expiry);
    index.erase(std::string_view(it->key));
    lru.erase(it);
  }
};

ttl_cache::ttl_cache(std::size_t max_bytes) : impl_(new impl(max_bytes)) {}

ttl_cache::~ttl_cache() {
  delete impl_;
}

ttl_cache::put_result ttl_cache::put(std::string_view key, std::string value,
                                     std::string content_type, std::uint64_t expires_at_ms,
                                     std::uint64_t version) {
  auto& m = *impl_;
  auto size = cost(key.size(), value.size(), content_type.size());
  auto it = m.find(key);
  if (size > m.max_bytes) {
    if (it != m.lru.end()) m.remove(it);
    return put_result::too_large;
  }
  if (it != m.lru.end()) {
    // Replace in place: the node (and the key the map views) stays where it is in memory.
    auto expiry = m.expiries.emplace(expires_at_ms, it);
    m.expiries.erase(it->expiry);
    it->expiry = expiry;
    m.bytes -= it->bytes;
    m.lru.splice(m.lru.begin(), m.lru, it);
  } else {
    m.lru.emplace_front();
    it = m.lru.begin();
    bool indexed = false;
    try {
      it->key.assign(key);
      m.index.emplace(std::string_view(it->key), it);
      indexed = true;
      it->expiry = m.expiries.emplace(expires_at_ms, it);
    } catch (...) {
      if (indexed) m.index.erase(std::string_view(it->key));
      m.lru.erase(it);
      throw;
    }
  }
  it->e.value = std::move(value);
  it->e.content_type = std::move(content_type);
  it->e.expires_at_ms = expires_at_ms;
  it->e.version = version;
  it->bytes = size;
  m.bytes += size;
  // The new entry fits alone, so the loop stops before it reaches the front.
  while (m.bytes > m.max_bytes && m.lru.size() > 1) {
    m.remove(std::prev(m.lru.end()));
    ++m.evictions;
  }
  return put_result::stored;
}

const ttl_cache::entry* ttl_cache::get(std::string_view key, std::uint64_t now_ms) {
  auto& m = *impl_;
  auto it = m.find(key);
  if (it == m.lru.end()) return nullptr;
  if (it->e.expires_at_ms <= now_ms) {
    m.remove(it);
    return nullptr;
  }
  m.lru.splice(m.lru.begin(), m.lru, it);
  return &it->e;
}

const ttl_cache::entry* ttl_cache::peek(std::string_view key, std::uint64_t now_ms) const {
  auto& m = *impl_;
  auto it = m.index.find(key);
  if (it == m.index.end() || it->second->e.expires_at_ms <= now_ms) return nullptr;
  return &it->second->e;
}

bool ttl_cache::erase(std::string_view key, std::uint64_t now_ms) {
  auto& m = *impl_;
  auto it = m.find(key);
  if (it == m.lru.end()) return false;
  bool live = it->e.expires_at_ms > now_ms;
  m.remove(it);
  return live;
}

std::size_t ttl_cache::expire(std::uint64_t now_ms, std::size_t max_entries) {
  auto& m = *impl_;
  std::size_t removed = 0;
  while (removed < max_entries && !m.expiries.empty() && m.expiries.begin()->first <= now_ms) {
    m.remove(m.expiries.begin()->second);
    ++removed;
  }
  return removed;
}

std::uint64_t ttl_cache::next_expiry() const noexcept {
  return impl_->expiries.empty() ? 0 : impl_->expiries.begin()->first;
}

std::size_t ttl_cache::bytes() const noexcept {
  return impl_->bytes;
}

std::size_t ttl_cache::size() const noexcept {
  return impl_->lru.size();
}

std::size_t ttl_cache::max_bytes() const noexcept {
  return impl_->max_bytes;
}

std::uint64_t ttl_cache::evictions() const noexcept {
  return impl_->evictions;
}

} // namespace shoal::cache
