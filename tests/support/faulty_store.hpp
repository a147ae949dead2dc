// SPDX-License-Identifier: Apache-2.0
#pragma once

// A store that wraps another and fails on command, for the error paths of the layers
// above (as Beast's test streams fail after a count).

#include <functional>
#include <string_view>

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

  std::uint32_t shard_count() const noexcept override {
    return inner_.shard_count();
  }
  storage::shard_store& shard(std::uint32_t i) override {
    return shards_.at(i);
  }
  std::uint64_t latest_sequence() override {
    return inner_.latest_sequence();
  }
  storage::status sync_wal() override {
    if (fail_syncs) return {storage::errc::io_error, "injected fsync failure"};
    return inner_.sync_wal();
  }
  storage::status close() override {
    return inner_.close();
  }

private:
  class shard_wrapper final : public storage::shard_store {
  public:
    shard_wrapper(faulty_store& owner, storage::shard_store& inner)
        : owner_(owner), inner_(inner) {}
    storage::status get(std::string_view key, std::string& value) override {
      if (owner_.fail_reads) return {storage::errc::io_error, "injected read failure"};
      return inner_.get(key, value);
    }
    storage::status write(const storage::write_batch& batch, bool sync) override {
      if (owner_.fail_writes) return {storage::errc::io_error, "injected write failure"};
      return inner_.write(batch, sync);
    }
    storage::status
    scan_prefix(std::string_view prefix,
                const std::function<bool(std::string_view, std::string_view)>& fn) override {
      return inner_.scan_prefix(prefix, fn);
    }
    storage::status
    scan(std::string_view prefix, std::string_view from, bool reverse,
         const std::function<bool(std::string_view, std::string_view)>& fn) override {
      return inner_.scan(prefix, from, reverse, fn);
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
