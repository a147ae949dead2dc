// SPDX-License-Identifier: Apache-2.0
#include "storage/memory_store.hpp"

#include <mutex>

#include <map>
#include <string>
#include <utility>

namespace shoal::storage {

namespace {

status closed_error() {
  return {errc::unavailable, "store is closed"};
}

} // namespace

/// One shard's keyspace: an ordered map behind a recursive mutex. The shard actor and the
/// virtual actors it hosts use a shard's store from different threads (disjoint keys), as
/// they do with RocksDB, whose column families are thread-safe; the map is not, hence the
/// lock (recursive: a scan's callback may read the shard, as with RocksDB).
/// An instance built with `valid == false` stands for an out-of-range shard index.
class memory_store::shard_impl final : public shard_store {
public:
  shard_impl(memory_store& owner, bool valid) : owner_(owner), valid_(valid) {}

  status get(std::string_view key, std::string& value) override {
    if (auto st = check(); !st) return st;
    std::lock_guard<std::recursive_mutex> guard{mutex_};
    auto i = map_.find(key);
    if (i == map_.end()) return {errc::not_found, "key not found"};
    value = i->second;
    return status::ok();
  }

  status write(const write_batch& batch, bool /*sync*/) override {
    if (auto st = check(); !st) return st;
    // An empty batch applies nothing and so takes no sequence number.
    if (batch.empty()) return status::ok();
    std::lock_guard<std::recursive_mutex> guard{mutex_};
    for (const auto& op : batch.ops()) {
      if (op.kind == write_batch::op_kind::put) {
        put(op.key, op.value);
      } else if (op.kind == write_batch::op_kind::del) {
        erase(op.key);
      } else {
        auto i = map_.lower_bound(op.key);
        while (i != map_.end() && i->first < op.value) {
          bytes_ -= i->first.size() + i->second.size();
          i = map_.erase(i);
        }
      }
    }
    // Shards write concurrently; the sequence is the only state they share.
    owner_.sequence_.fetch_add(1, std::memory_order_acq_rel);
    return status::ok();
  }

  status scan_prefix(std::string_view prefix,
                     const std::function<bool(std::string_view, std::string_view)>& fn) override {
    if (auto st = check(); !st) return st;
    // Recursive: `fn` may read this shard (shard_index fetches documents from an index scan).
    std::lock_guard<std::recursive_mutex> guard{mutex_};
    for (auto i = map_.lower_bound(prefix); i != map_.end(); ++i) {
      if (i->first.compare(0, prefix.size(), prefix) != 0) break;
      if (!fn(i->first, i->second)) break;
    }
    return status::ok();
  }

  status scan(std::string_view prefix, std::string_view from, bool reverse,
              const std::function<bool(std::string_view, std::string_view)>& fn) override {
    if (auto st = check(); !st) return st;
    // Recursive: `fn` may read this shard (shard_index fetches documents from an index scan).
    std::lock_guard<std::recursive_mutex> guard{mutex_};
    auto has_prefix = [&](const std::string& k) {
      return k.compare(0, prefix.size(), prefix) == 0;
    };
    if (!reverse) {
      for (auto i = map_.lower_bound(std::max(prefix, from)); i != map_.end(); ++i) {
        if (!has_prefix(i->first)) break;
        if (!fn(i->first, i->second)) break;
      }
      return status::ok();
    }
    // The first key after the start point, then step back.
    const auto bound = successor(prefix);
    // A start past the prefix's keys starts at its last key, as an empty one does.
    const bool past = from.empty() || (!bound.empty() && from >= bound);
    auto i = !past ? map_.upper_bound(from) : bound.empty() ? map_.end() : map_.lower_bound(bound);
    while (i != map_.begin()) {
      --i;
      if (!has_prefix(i->first)) break;
      if (!fn(i->first, i->second)) break;
    }
    return status::ok();
  }

  std::uint64_t estimate_num_keys() override {
    std::lock_guard<std::recursive_mutex> guard{mutex_};
    return map_.size();
  }

  std::uint64_t live_data_bytes() override {
    std::lock_guard<std::recursive_mutex> guard{mutex_};
    return bytes_;
  }

private:
  status check() const {
    if (owner_.closed_.load(std::memory_order_acquire)) return closed_error();
    if (!valid_) return {errc::invalid_argument, "shard index out of range"};
    return status::ok();
  }

  void put(const std::string& key, const std::string& value) {
    auto [i, inserted] = map_.try_emplace(key, value);
    if (inserted) {
      bytes_ += key.size() + value.size();
    } else {
      bytes_ = bytes_ - i->second.size() + value.size();
      i->second = value;
    }
  }

  /// The least key greater than every key starting with `prefix` ("" when none is: all
  /// bytes 0xff, then the end of the map is the bound).
  static std::string successor(std::string_view prefix) {
    std::string s(prefix);
    while (!s.empty() && static_cast<unsigned char>(s.back()) == 0xff)
      s.pop_back();
    if (!s.empty()) s.back() = static_cast<char>(static_cast<unsigned char>(s.back()) + 1);
    return s;
  }

  void erase(const std::string& key) {
    auto i = map_.find(key);
    if (i == map_.end()) return;
    bytes_ -= i->first.size() + i->second.size();
    map_.erase(i);
  }

  memory_store& owner_;
  const bool valid_;
  std::recursive_mutex mutex_;
  std::map<std::string, std::string, std::less<>> map_;
  std::uint64_t bytes_ = 0; ///< sum of key and value sizes
};

memory_store::memory_store(std::uint32_t shards)
    : invalid_shard_(std::make_unique<shard_impl>(*this, false)) {
  shards_.reserve(shards);
  for (std::uint32_t i = 0; i < shards; ++i) {
    shards_.push_back(std::make_unique<shard_impl>(*this, true));
  }
}

memory_store::~memory_store() = default;

std::uint32_t memory_store::shard_count() const noexcept {
  return static_cast<std::uint32_t>(shards_.size());
}

shard_store& memory_store::shard(std::uint32_t index) {
  if (index >= shards_.size()) return *invalid_shard_;
  return *shards_[index];
}

std::uint64_t memory_store::latest_sequence() {
  return sequence_.load(std::memory_order_acquire);
}

status memory_store::sync_wal() {
  if (closed_.load(std::memory_order_acquire)) return closed_error();
  syncs_.fetch_add(1, std::memory_order_acq_rel);
  return status::ok();
}

status memory_store::close() {
  if (closed_.exchange(true, std::memory_order_acq_rel)) return closed_error();
  return status::ok();
}

} // namespace shoal::storage
