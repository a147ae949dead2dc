// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "changes/change_log.hpp"
#include "changes/messages.hpp"
#include "core/reply.hpp"
#include "shard/context.hpp"
#include "shard/doc_change.hpp"

namespace shoal::changes {

struct metrics;

/// The change feed of one shard. It follows document writes (each write's event joins
/// the write's batch), makes events readable once their write is durable, answers reads
/// of the log, and parks reads that find nothing new until the collection's next event
/// or their wait ends (a timer each, on the actor clock).
class module final : public shard::doc_observer {
public:
  using requests = changes::requests;

  struct config {
    bool enabled = true;      ///< changes.enabled: off, nothing is logged and reads are not_found
    retention keep;           ///< changes.retention_events, changes.retention_s
    changes::metrics* metrics = nullptr; ///< may be null
  };

  module(shard::context& ctx, config cfg);
  /// Parked reads are answered shutting_down.
  ~module() override;
  module(const module&) = delete;
  module& operator=(const module&) = delete;

  void serve(changes_read&& req, core::reply_to<batch> to);

  // -- doc_observer ----------------------------------------------------------------------
  core::result<void> prepare(const shard::doc_change& c, storage::write_batch& batch) override;
  void applied(const shard::doc_change& c) override;

private:
  struct waiter {
    std::uint64_t id;
    std::uint64_t after;
    std::uint32_t limit;
    shard::timer_id timer;
    core::reply_to<batch> to;
  };

  void publish(const std::string& collection, std::uint64_t seq);
  /// Events of `collection` became readable: answers the reads parked for them.
  void wake(const std::string& collection);
  /// The wait of parked read `id` ended: answers it with what there is (usually nothing).
  void expire(const std::string& collection, std::uint64_t id);
  void schedule_trim();
  void trim();
  void count_waiters(std::int64_t delta);

  shard::context& ctx_;
  config cfg_;
  std::unique_ptr<change_log> log_;
  std::optional<pending> pending_; ///< the event of the write being prepared
  std::unordered_map<std::string, std::vector<waiter>> waiters_; ///< by collection
  std::uint64_t next_waiter_ = 0;
  std::optional<shard::timer_id> trim_timer_;
};

} // namespace shoal::changes
