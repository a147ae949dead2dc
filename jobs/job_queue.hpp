// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "jobs/job_metrics.hpp"
#include "core/result.hpp"
#include "jobs/messages.hpp"
#include "jobs/records.hpp"
#include "storage/store.hpp"

namespace shoal::jobs {

/// Applies a batch atomically through the shard's commit gate (the jobs module passes
/// context::commit); the queue changes its memory only after it succeeded.
using committer = std::function<core::result<void>(storage::write_batch&&)>;

/// The jobs of one shard: the durable records in its column family, and in memory the
/// jobs that are not final, ordered for leasing. Owned and called by the jobs module only
/// (a single writer), so it takes no locks. Time is passed in (Unix ms), never read here.
/// Reads go to `shard`; every write goes through `commit`.
class job_queue {
public:
  /// `index` is the shard's number: new jobs get ids that name it (jobs/ids.hpp).
  job_queue(storage::shard_store& shard, committer commit, std::uint32_t index, retry_policy retry,
            job_metrics* metrics, std::uint64_t seed);
  /// Takes this shard's jobs out of the node's gauges (a replica that stops leading drops
  /// its queue; the one that leads next counts them).
  ~job_queue();
  job_queue(const job_queue&) = delete;
  job_queue& operator=(const job_queue&) = delete;

  /// Loads every job record of the shard, and starts the sequence of new ids after the
  /// highest one stored and no lower than `now_ms` × 2^20, so that a wiped directory does
  /// not hand out the ids of its past jobs again. Jobs that were running under an in-process lease
  /// of another incarnation of this node (the process died) count as expired leases: the
  /// attempt counts, and the job retries or dies like any failed attempt.
  core::result<void> recover(std::uint64_t now_ms, std::string_view incarnation);

  core::result<job_enqueued> enqueue(job_enqueue& req, std::uint64_t now_ms);
  core::result<job_view> get(const job_get& req);
  /// Leases due jobs; when from the broker, also resets which lanes count as announced.
  core::result<lease_grant> lease(const job_lease& req, std::uint64_t now_ms);
  core::result<job_view> complete(job_complete& req, std::uint64_t now_ms);
  core::result<job_view> fail(job_fail& req, std::uint64_t now_ms);
  /// Moves the expiry of a running job's lease to `now_ms + visibility_ms`.
  core::result<job_view> extend(const job_extend& req, std::uint64_t now_ms);
  core::result<job_view> retry(const job_retry& req, std::uint64_t now_ms);
  core::result<job_view> cancel(const job_cancel& req, std::uint64_t now_ms);
  /// Reads the stored records from `req.after` on (what the store holds, not memory:
  /// finished jobs are only there).
  core::result<job_page> list(const job_list& req);
  job_counts stats(const queue_stats& req) const;

  /// Expires the leases that ran out by `now_ms`.
  core::result<void> expire(std::uint64_t now_ms);

  /// The earliest time at which `expire` or `take_announcements` will have work.
  std::optional<std::uint64_t> next_wakeup() const;

  /// (queue, type) pairs that have a due job and were not announced since they last had
  /// none; marks them announced. The shard tells the node's broker about each.
  std::vector<std::pair<std::string, std::string>> take_announcements(std::uint64_t now_ms);

  /// Jobs not final (queued, running, failed).
  std::size_t live() const noexcept {
    return live_.size();
  }

private:
  struct waiting_key {
    std::uint64_t due_ms;
    std::uint64_t seq;
    std::string id;
    bool operator<(const waiting_key& o) const noexcept {
      if (due_ms != o.due_ms) return due_ms < o.due_ms;
      if (seq != o.seq) return seq < o.seq;
      return id < o.id;
    }
  };
  struct queue_info;
  /// The waiting (queued or failed) jobs of one (queue, type), in due order.
  struct lane {
    std::set<waiting_key> waiting;
    bool announced = false; ///< the broker was told this lane has due jobs
    bool dirty = false;     ///< listed in `dirty_`
    job_metrics::type_metrics* metrics = nullptr;
    queue_info* queue = nullptr;
    const std::string* queue_name = nullptr; ///< keys of the maps that hold the lane
    const std::string* type_name = nullptr;
  };
  struct queue_info {
    std::map<std::string, lane, std::less<>> lanes;
    std::array<std::uint64_t, job_state_count> counts{};
    std::set<std::pair<std::uint64_t, std::uint64_t>> queued_by_age; ///< (created, seq)
    job_metrics::queue_metrics* metrics = nullptr;
  };
  /// What memory holds of a live job.
  struct live_job {
    lane* in; ///< its (queue, type)
    job_state state;
    std::uint64_t due_ms;
    std::uint64_t seq;
    std::uint64_t created_ms;
    std::uint64_t lease_until; ///< running: the key of its entry in `leases_`
  };

  /// complete (`result`) or fail (`error`, `retryable`) of the job `id` under `lease_id`.
  core::result<job_view> finish(const std::string& id, const std::string& lease_id, bool complete,
                                std::string text, bool retryable, bool with_body,
                                std::uint64_t now);
  queue_info& queue(const std::string& name);
  lane& lane_of(const std::string& queue, const std::string& type);
  void count(queue_info& q, job_state s, std::int64_t delta);
  /// Tells the node's metrics this shard's oldest queued job of `q`.
  void publish_oldest(const queue_info& q);
  /// Adds a job in memory (state queued, running or failed) and to the counts.
  void track(const std::string& id, const job_record& r, std::uint64_t now);
  void mark_dirty(lane& l);
  /// Removes a live job from memory and from the counts of its state.
  void untrack(const std::string& id);
  /// The record after a failed attempt: failed with a retry time, or dead.
  void fail_attempt(job_record& r, std::string error, bool retryable, std::uint64_t now);
  std::string new_lease_id();
  /// The record of `id`; nullopt when there is none.
  core::result<std::optional<job_record>> read(const std::string& id);

  storage::shard_store& shard_;
  committer commit_;
  std::uint32_t index_;
  retry_policy retry_;
  job_metrics* metrics_;
  std::mt19937_64 rng_;
  std::uint64_t next_seq_ = 1;
  std::unordered_map<std::string, live_job> live_;
  std::map<std::string, queue_info, std::less<>> queues_;
  std::set<std::pair<std::uint64_t, std::string>> leases_; ///< (lease_until, id)
  /// (due, lane) of waiting jobs that were not due yet when they were added.
  std::set<std::pair<std::uint64_t, lane*>> delayed_;
  std::vector<lane*> dirty_; ///< lanes to check for announcement
};

} // namespace shoal::jobs
