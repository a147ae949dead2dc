// SPDX-License-Identifier: Apache-2.0
#pragma once

// A store that wraps another and fails on command, for the error paths of the layers
// above (as Beast's test streams fail after a count).

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "storage/store.hpp"

namespace shoal::testing {

class faulty_store final : public storage::store {
public:
  explicit faulty_store(storage::store& inner) : inner_(inner) {
    shards_.reserve(inner.shard_count());
    for (std::uint32_t i = 0; i < inner.shard_count(); ++i)
      shards_.emplace_back(*this, inner.shard(i));
  }

  bool fail_reads = false;
  bool fail_writes = false;
  bool fail_syncs = false;
  int fail_next_writes =
    0; ///< writes still to fail before writing again (a disk that fails for a while)
  int failed_writes = 0; ///< writes refused so far
  /// When set, also fails the writes it returns true for (say, by their keys).
  std::function<bool(const storage::write_batch&)> fail_write_if;
  int written = 0; ///< writes that went through to the inner store

  std::uint32_t shard_count() const noexcept override {
    return inner_.shard_count();
  }
  storage::shard_store& shard(std::uint32_t i) override {
    return shards_.at(i);
  }
  storage::shard_store& raft_log() override {
    return inner_.raft_log(); // no faults: the replication suites inject their own
  }
  std::uint64_t latest_sequence() override {
    return inner_.latest_sequence();
  }
  storage::result<void> sync_wal() override {
    if (fail_syncs) return storage::error{storage::errc::storage_failed, "injected fsync failure"};
    return inner_.sync_wal();
  }
  storage::result<void> close() override {
    return inner_.close();
  }

private:
  class shard_wrapper final : public storage::shard_store {
  public:
    shard_wrapper(faulty_store& owner, storage::shard_store& inner)
        : owner_(owner), inner_(inner) {}
    storage::result<std::string> get(std::string_view key) override {
      if (owner_.fail_reads)
        return storage::error{storage::errc::storage_failed, "injected read failure"};
      return inner_.get(key);
    }
    storage::result<void> write(const storage::write_batch& batch, bool sync) override {
      if (owner_.fail_writes || owner_.fail_next_writes > 0
          || (owner_.fail_write_if && owner_.fail_write_if(batch))) {
        if (owner_.fail_next_writes > 0) --owner_.fail_next_writes;
        ++owner_.failed_writes;
        return storage::error{storage::errc::storage_failed, "injected write failure"};
      }
      auto r = inner_.write(batch, sync);
      if (r) ++owner_.written;
      return r;
    }
    storage::result<void> scan(std::string_view prefix, std::string_view from, bool reverse,
                               const storage::scan_fn& fn) override {
      return inner_.scan(prefix, from, reverse, fn);
    }
    std::unique_ptr<storage::shard_view> snapshot() override {
      return inner_.snapshot();
    }
    std::uint64_t estimate_num_keys() override {
      return inner_.estimate_num_keys();
    }
    std::uint64_t live_data_bytes() override {
      return inner_.live_data_bytes();
    }

  private:
    faulty_store& owner_;
    storage::shard_store& inner_;
  };

  storage::store& inner_;
  std::vector<shard_wrapper> shards_;
};

} // namespace shoal::testing
