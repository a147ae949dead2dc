// SPDX-License-Identifier: Apache-2.0
#include "storage/memory_store.hpp"

#include <map>
#include <mutex>
#include <string>
#include <utility>

namespace shoal::storage {

namespace {

error closed_error() {
  return {errc::shutting_down, "store is closed"};
}

/// The keys starting with a prefix in a map: how scans walk one.
using key_map = std::map<std::string, std::string, std::less<>>;

/// The least key greater than every key starting with `prefix` ("" when none is: all
/// bytes 0xff, then the end of the map is the bound).
std::string successor(std::string_view prefix) {
  std::string s(prefix);
  while (!s.empty() && static_cast<unsigned char>(s.back()) == 0xff)
    s.pop_back();
  if (!s.empty()) s.back() = static_cast<char>(static_cast<unsigned char>(s.back()) + 1);
  return s;
}

/// The scan contract of shard_store::scan over `map`.
void scan_map(const key_map& map, std::string_view prefix, std::string_view from, bool reverse,
              const scan_fn& fn) {
  auto has_prefix = [&](const std::string& k) { return k.compare(0, prefix.size(), prefix) == 0; };
  if (!reverse) {
    for (auto i = map.lower_bound(std::max(prefix, from)); i != map.end(); ++i) {
      if (!has_prefix(i->first)) break;
      if (!fn(i->first, i->second)) break;
    }
    return;
  }
  // The first key after the start point, then step back.
  const auto bound = successor(prefix);
  // A start past the prefix's keys starts at its last key, as an empty one does.
  const bool past = from.empty() || (!bound.empty() && from >= bound);
  auto i = !past ? map.upper_bound(from) : bound.empty() ? map.end() : map.lower_bound(bound);
  while (i != map.begin()) {
    --i;
    if (!has_prefix(i->first)) break;
    if (!fn(i->first, i->second)) break;
  }
}

/// A copy of a shard's map, taken under its lock: a snapshot for tests.
class memory_view final : public shard_view {
public:
  memory_view(key_map map, const std::atomic<bool>& closed)
      : map_(std::move(map)), closed_(closed) {}

  result<std::string> get(std::string_view key) override {
    if (closed_.load(std::memory_order_acquire)) return closed_error();
    auto i = map_.find(key);
    if (i == map_.end()) return error{errc::not_found, {}};
    return i->second;
  }

  result<void> scan(std::string_view prefix, std::string_view from, bool reverse,
                    const scan_fn& fn) override {
    if (closed_.load(std::memory_order_acquire)) return closed_error();
    scan_map(map_, prefix, from, reverse, fn);
    return core::ok();
  }

private:
  key_map map_;
  const std::atomic<bool>& closed_;
};

} // namespace

/// One shard's keyspace: an ordered map behind a recursive mutex. The shard actor and the
/// virtual actors it hosts use a shard's store from different threads (disjoint keys), as
/// they do with RocksDB, whose column families are thread-safe; the map is not, hence the
/// lock (recursive: a scan's callback may read the shard, as with RocksDB).
/// An instance built with `valid == false` stands for an out-of-range shard index.
class memory_store::shard_impl final : public shard_store {
public:
  shard_impl(memory_store& owner, bool valid) : owner_(owner), valid_(valid) {}

  result<std::string> get(std::string_view key) override {
    if (auto st = check(); !st) return std::move(st).error();
    std::lock_guard<std::recursive_mutex> guard{mutex_};
    auto i = map_.find(key);
    if (i == map_.end()) return error{errc::not_found, {}};
    return i->second;
  }

  result<void> write(const write_batch& batch, bool /*sync*/) override {
    if (auto st = check(); !st) return st;
    // An empty batch applies nothing and so takes no sequence number.
    if (batch.empty()) return core::ok();
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
    return core::ok();
  }

  result<void> scan(std::string_view prefix, std::string_view from, bool reverse,
                    const scan_fn& fn) override {
    if (auto st = check(); !st) return st;
    // Recursive: `fn` may read this shard (an index scan fetches documents).
    std::lock_guard<std::recursive_mutex> guard{mutex_};
    scan_map(map_, prefix, from, reverse, fn);
    return core::ok();
  }

  std::unique_ptr<shard_view> snapshot() override {
    if (!check()) return nullptr;
    std::lock_guard<std::recursive_mutex> guard{mutex_};
    return std::make_unique<memory_view>(map_, owner_.closed_);
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
  result<void> check() const {
    if (owner_.closed_.load(std::memory_order_acquire)) return closed_error();
    if (!valid_) return error{errc::internal, "shard index out of range"};
    return core::ok();
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

  void erase(const std::string& key) {
    auto i = map_.find(key);
    if (i == map_.end()) return;
    bytes_ -= i->first.size() + i->second.size();
    map_.erase(i);
  }

  memory_store& owner_;
  const bool valid_;
  std::recursive_mutex mutex_;
  key_map map_;
  std::uint64_t bytes_ = 0; ///< sum of key and value sizes
};

memory_store::memory_store(std::uint32_t shards)
    : raft_log_(std::make_unique<shard_impl>(*this, true)),
      invalid_shard_(std::make_unique<shard_impl>(*this, false)) {
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

shard_store& memory_store::raft_log() {
  return *raft_log_;
}

std::uint64_t memory_store::latest_sequence() {
  return sequence_.load(std::memory_order_acquire);
}

result<void> memory_store::sync_wal() {
  if (closed_.load(std::memory_order_acquire)) return closed_error();
  syncs_.fetch_add(1, std::memory_order_acq_rel);
  return core::ok();
}

result<void> memory_store::close() {
  if (closed_.exchange(true, std::memory_order_acq_rel)) return closed_error();
  return core::ok();
}

} // namespace shoal::storage
