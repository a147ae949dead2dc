// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "storage/store.hpp"

namespace shoal::storage {

/// A store held in ordered maps in memory, for unit tests of the layers above and for
/// the contract suite. Nothing survives the object. `sync_wal` only counts its calls.
class memory_store final : public store {
public:
  explicit memory_store(std::uint32_t shards);
  ~memory_store() override;

  std::uint32_t shard_count() const noexcept override;
  shard_store& shard(std::uint32_t index) override;
  shard_store& raft_log() override;
  std::uint64_t latest_sequence() override;
  result<void> sync_wal() override;
  result<void> close() override;

  /// Number of `sync_wal` calls so far (group-commit tests count fsyncs with it).
  std::uint64_t sync_count() const noexcept {
    return syncs_.load();
  }

private:
  class shard_impl;
  std::vector<std::unique_ptr<shard_impl>> shards_;
  std::unique_ptr<shard_impl> raft_log_;
  /// Returned by `shard()` for an index >= shard_count(); every call on it fails with
  /// `errc::internal`.
  std::unique_ptr<shard_impl> invalid_shard_;
  std::atomic<std::uint64_t> sequence_{0};
  std::atomic<std::uint64_t> syncs_{0};
  std::atomic<bool> closed_{false};
};

} // namespace shoal::storage
