// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/reply.hpp"
#include "jobs/job_queue.hpp"
#include "jobs/messages.hpp"
#include "shard/context.hpp"

namespace shoal::jobs {

/// The durable jobs of one shard (jobs::job_queue). Its writes go through the shard's
/// commit gate, and a reply about a job waits until that job's writes are durable. It
/// expires leases and wakes delayed jobs on one timer on the actor clock, and tells the
/// node's job broker when a (queue, type) gets due jobs.
class module {
public:
  using requests = jobs::requests;

  struct config {
    retry_policy retry;
    job_metrics* metrics = nullptr; ///< may be null
    /// This process's incarnation: in-process leases of any other one died with it.
    std::string incarnation;
    /// Called (queue, type) when a (queue, type) of this shard gets due jobs; may be
    /// empty (nobody runs jobs on this node).
    std::function<void(const std::string& queue, const std::string& type)> announce;
    std::uint64_t seed = 0; ///< for lease ids and retry jitter
  };

  /// Loads the shard's jobs (in-process leases of earlier incarnations count as expired).
  module(shard::context& ctx, config cfg);
  ~module();
  module(const module&) = delete;
  module& operator=(const module&) = delete;

  /// Why the jobs could not be loaded (then every request fails with it); nullopt when
  /// they loaded.
  const std::optional<core::error>& load_error() const noexcept {
    return load_error_;
  }

  void serve(job_enqueue&& req, core::reply_to<job_enqueued> to);
  void serve(job_get&& req, core::reply_to<job_view> to);
  void serve(job_lease&& req, core::reply_to<lease_grant> to);
  void serve(job_complete&& req, core::reply_to<job_view> to);
  void serve(job_fail&& req, core::reply_to<job_view> to);
  void serve(job_extend&& req, core::reply_to<job_view> to);
  void serve(job_retry&& req, core::reply_to<job_view> to);
  void serve(job_cancel&& req, core::reply_to<job_view> to);
  void serve(job_list&& req, core::reply_to<job_page> to);
  void serve(queue_stats&& req, core::reply_to<job_counts> to);

private:
  /// Delivers `r` once every write of the job keys of `ids` is durable. When that
  /// fails and this request `wrote` (and `r` is ok), the answer is what
  /// shard::after_write_failed makes of the failure: a write that may be kept is 504
  /// outcome_unknown, not a refusal.
  template <class T>
  void answer(const std::vector<std::string>& ids, core::reply_to<T> to, core::result<T> r,
              bool wrote = false);
  /// Announces newly due (queue, type) pairs and arms the timer for the next lease
  /// expiry or delayed job. Runs after every operation and timer.
  void after_change();
  void on_timer();

  shard::context& ctx_;
  config cfg_;
  std::unique_ptr<job_queue> queue_;
  std::optional<core::error> load_error_;
  std::optional<shard::timer_id> timer_;
  std::uint64_t wakeup_ms_ = 0; ///< when the timer fires (Unix ms); valid while timer_
};

} // namespace shoal::jobs
