// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include "core/reply.hpp"
#include "query/messages.hpp"
#include "shard/context.hpp"
#include "shard/doc_change.hpp"

namespace shoal::query {

class shard_index;
class query_scan;
struct metrics;

/// The secondary indexes and queries of one shard. It follows document writes (their
/// index entries join each write's batch), builds new indexes in bounded steps behind the
/// requests queued meanwhile, and answers queries in bounded steps over a snapshot.
class module final : public shard::doc_observer {
public:
  using requests = query::requests;

  struct config {
    std::uint32_t build_batch = 500;     ///< query.index_build_batch: documents per build step
    query::metrics* metrics = nullptr;   ///< may be null
  };

  /// Loads the shard's index definitions and resumes a build a restart interrupted.
  module(shard::context& ctx, config cfg);
  ~module() override;
  module(const module&) = delete;
  module& operator=(const module&) = delete;

  /// Why the definitions could not be loaded (then every request fails with it, and the
  /// documents module must refuse writes); nullopt when they loaded.
  const std::optional<core::error>& load_error() const noexcept {
    return load_error_;
  }

  void serve(index_create&& req, core::reply_to<index_state> to);
  void serve(index_get&& req, core::reply_to<index_progress> to);
  void serve(index_list&& req, core::reply_to<index_listing> to);
  void serve(index_drop&& req, core::reply_to<index_dropped> to);
  void serve(query_run&& req, core::reply_to<shard_hits> to);
  void serve(query_explain&& req, core::reply_to<shard_plan> to);

  // -- doc_observer ----------------------------------------------------------------------
  core::result<void> prepare(const shard::doc_change& c, storage::write_batch& batch) override;
  void applied(const shard::doc_change& c) override;

private:
  template <class T>
  void run(std::shared_ptr<query_scan> scan, core::reply_to<T> to);
  void schedule_build();
  void build_step();

  shard::context& ctx_;
  config cfg_;
  std::unique_ptr<shard_index> index_;
  std::optional<core::error> load_error_;
  bool build_scheduled_ = false;
  std::optional<shard::timer_id> retry_timer_; ///< a failed build step waits on it
};

} // namespace shoal::query
