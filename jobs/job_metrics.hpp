// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include "jobs/messages.hpp"
#include "metrics/metrics.hpp"

namespace shoal::jobs {

/// The node's job metrics. Queues and types are created on first use (they are not
/// known up front), under a mutex; callers keep the returned reference, which stays
/// valid for the life of this object, so recording itself is lock-free.
///
/// Queue and type names come from clients, so the series are bounded: the first
/// `max_series` (queue, type) pairs and the first `max_series` queues get their own; the
/// rest share the label value `~other` (which no queue or type name can be), so /metrics
/// stays small however many names clients invent.
class job_metrics {
public:
  /// The label value of the series shared by names past the bound.
  static constexpr std::string_view other = "~other";

  /// `shards`: the cluster's shard count (each shard reports its oldest queued job in
  /// a slot of its own).
  explicit job_metrics(std::size_t max_series = 200, std::uint32_t shards = 1)
      : max_series_(max_series), shards_(shards == 0 ? 1 : shards) {}

  struct type_metrics {
    metrics::counter enqueued;
    metrics::counter completed;
    metrics::counter failed; ///< attempts that failed (a retry follows, or `dead`)
    metrics::counter dead;
    metrics::counter cancelled;
    metrics::counter lease_expired;
    metrics::histogram start_latency{metrics::histogram::latency_bounds()}; ///< due → leased
    metrics::histogram run_time{metrics::histogram::latency_bounds()};      ///< leased → done
  };
  struct queue_metrics {
    explicit queue_metrics(std::uint32_t shards)
        : oldest(std::make_unique<std::atomic<std::uint64_t>[]>(shards)), slots(shards) {}
    std::array<metrics::gauge, job_state_count> depth; ///< jobs on this node by state
    /// By shard: created_at (Unix ms) of its oldest queued job of this queue, 0 for none.
    /// Each shard writes its own slot; /metrics reports the age of the least.
    std::unique_ptr<std::atomic<std::uint64_t>[]> oldest;
    std::uint32_t slots;
    void set_oldest(std::uint32_t shard, std::uint64_t created_ms) noexcept {
      oldest[shard % slots].store(created_ms, std::memory_order_relaxed);
    }
  };

  /// External lease requests the node's broker holds unanswered (long polls waiting for
  /// work, and leases being looked up).
  metrics::gauge lease_waiters;

  type_metrics& of(std::string_view queue, std::string_view type);
  queue_metrics& of(std::string_view queue);

  void write(metrics::text_writer& out) const;

private:
  const std::size_t max_series_;
  const std::uint32_t shards_;
  mutable std::mutex mu_;
  std::map<std::pair<std::string, std::string>, std::unique_ptr<type_metrics>, std::less<>> types_;
  std::map<std::string, std::unique_ptr<queue_metrics>, std::less<>> queues_;
};

} // namespace shoal::jobs
