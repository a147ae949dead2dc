// SPDX-License-Identifier: Apache-2.0
#pragma once

// The messages of durable job queues (docs/jobs.md): the requests the jobs module of a
// shard serves, and the lease requests of external workers, which the node's job broker
// (workers/) serves. Plain structs; `inspect` lets CAF serialize them for other nodes.

#include <cstdint>
#include <string>
#include <vector>

#include "cluster/placement.hpp"
#include "core/result.hpp"
#include "core/type_list.hpp"
#include "jobs/ids.hpp"

namespace shoal::jobs {

/// Where a job is in its life. `failed` means: an attempt failed and the job waits for
/// its retry; `succeeded`, `dead` and `cancelled` are final (a dead job comes back only by
/// `retry`). The values are stored: new ones go at the end.
enum class job_state : std::uint8_t { queued, running, succeeded, failed, dead, cancelled };
inline constexpr std::size_t job_state_count = 6;

/// "queued", "running", …
const char* to_string(job_state s) noexcept;

/// A job as the API shows it: its id and its JSON (jobs::render).
struct job_view {
  std::string id;
  std::string json; ///< empty when the request asked for no body (the broker's reports)
};

/// What an enqueue did: stored a new job (`created`; `json` is {"id","state"}) or found
/// the job with the same idempotency key (`json` is that job).
struct job_enqueued {
  std::string id;
  std::string json;
  bool created = false;
};

/// Stores a new job (the shard assigns its id) or, with an idempotency key, finds the one
/// stored under the same key. Names and bodies are validated by the edge.
struct job_enqueue {
  using reply = job_enqueued;
  std::string queue;
  std::string type;
  std::string payload;         ///< a serialized JSON object
  std::string idempotency_key; ///< empty: none
  std::uint64_t delay_ms = 0;
  std::uint32_t max_attempts = 5;
};

/// The job. Error: not_found.
struct job_get {
  using reply = job_view;
  std::string id;
};

/// A job handed to a worker by a lease.
struct leased_job {
  std::string id;
  std::string queue;
  std::string type;
  std::string payload;       ///< serialized JSON object
  std::uint32_t attempt = 0; ///< 1 for the first run
  std::string lease_id;
  std::uint64_t due_ms = 0; ///< when the job became due (Unix ms), for the start-latency metric
};

/// What a shard leased, and which types of the queue are still due there.
struct lease_grant {
  std::vector<leased_job> jobs;
  std::vector<std::string> ready_types;
};

/// Takes up to `max` due jobs of `queue` on one shard for `visibility_ms`.
struct job_lease {
  using reply = lease_grant;
  std::string queue;
  std::uint32_t max = 1;
  std::uint32_t visibility_ms = 30000;
  std::vector<std::string> types; ///< only these job types; empty: any
  /// Who holds the lease: empty for an external worker, the node's incarnation for its
  /// in-process workers (their leases end with the process).
  std::string owner;
  /// Sent by the shard's own node broker, which tracks the shard's due lanes from the
  /// reply's `ready_types` (leases from elsewhere leave that tracking alone).
  bool from_broker = false;
};

/// The lease holder reports the end of an attempt: success with `result` (serialized
/// JSON), or failure with `error` (`retry` false sends the job to `dead` at once).
/// Errors: not_found, conflict "stale_lease".
struct job_complete {
  using reply = job_view;
  std::string id;
  std::string lease_id;
  std::string result;
  bool from_broker = false; ///< the reply carries no body
};
struct job_fail {
  using reply = job_view;
  std::string id;
  std::string lease_id;
  std::string error;
  bool retry = true;
  bool from_broker = false; ///< the reply carries no body
};

/// A worker that needs longer keeps its lease: the job stays running under `lease_id`
/// until `visibility_ms` from now (from now, not from the old expiry). Errors: not_found,
/// conflict "stale_lease" (the lease expired or was reported already).
struct job_extend {
  using reply = job_view;
  std::string id;
  std::string lease_id;
  std::uint32_t visibility_ms = 30000;
};

/// Brings a dead job back. Errors: not_found, conflict "wrong_state".
struct job_retry {
  using reply = job_view;
  std::string id;
};

/// Cancels a job that waits (queued, delayed, or failed and waiting for its retry): it
/// ends `cancelled` and never runs. Errors: not_found, conflict "wrong_state" (running
/// or finished).
struct job_cancel {
  using reply = job_view;
  std::string id;
};

/// How many jobs of a queue are in each state.
struct job_counts {
  std::uint64_t queued = 0;
  std::uint64_t running = 0;
  std::uint64_t succeeded = 0;
  std::uint64_t failed = 0;
  std::uint64_t dead = 0;
  std::uint64_t cancelled = 0;
  std::uint64_t oldest_queued_ms = 0; ///< created_at (Unix ms) of the oldest queued job; 0: none

  void add(const job_counts& o) noexcept;
};

/// A page of one shard's jobs (job_list): their views, in id order.
struct job_page {
  std::vector<job_view> jobs;
  bool more = false; ///< the shard has more after the last
};

/// One shard's jobs of `queue` in `state`, in id order: those after `after` (a job id,
/// exclusive; empty: from the first), at most `limit`. The edge asks every shard and
/// merges (merge_pages), so a page is the first `limit` over the cluster.
struct job_list {
  using reply = job_page;
  std::string queue;
  std::uint8_t state = 0; ///< a job_state
  std::string after;
  std::uint32_t limit = 100;
};

/// The first `limit` jobs of every shard's answer, in id order, and whether any job
/// follows them; or the first failure (a page that skipped a shard would be wrong).
core::result<job_page> merge_pages(std::vector<core::result<job_page>>&& answers,
                                   std::uint32_t limit);

/// One shard's counts of `queue`; the edge asks every shard and sums (sum_counts).
struct queue_stats {
  using reply = job_counts;
  std::string queue;
};

/// The sum over every shard's answer, or the first failure (the counts would be wrong).
core::result<job_counts> sum_counts(std::vector<core::result<job_counts>>&& answers);

using requests = core::type_list<job_enqueue, job_get, job_lease, job_complete, job_fail,
                                 job_extend, job_retry, job_cancel, queue_stats, job_list>;

// -- the node's job broker (workers/) ---------------------------------------------------

/// The jobs leased for an external worker.
struct leased_jobs {
  std::vector<leased_job> jobs;
};

/// POST /v1/queues/{q}/lease: up to `max` due jobs of `queue` from any shard, waiting up
/// to `wait_ms` for one when none is due.
struct queue_lease {
  using reply = leased_jobs;
  std::string queue;
  std::uint32_t max = 1;
  std::uint32_t visibility_ms = 30000;
  std::uint32_t wait_ms = 0;
};

// -- placement ----------------------------------------------------------------------------

/// The same idempotency key in the same queue must meet its first job: hashed to a shard.
/// Without a key any shard will do, so a live one: a node that is down makes only keyed
/// enqueues for its shards fail.
core::result<std::uint32_t> place(const job_enqueue& r, const cluster::placement& p);

/// The shard a job id names; not_found for an id that names no shard of this cluster.
core::result<std::uint32_t> place_id(std::string_view id, const cluster::placement& p);
inline core::result<std::uint32_t> place(const job_get& r, const cluster::placement& p) {
  return place_id(r.id, p);
}
inline core::result<std::uint32_t> place(const job_complete& r, const cluster::placement& p) {
  return place_id(r.id, p);
}
inline core::result<std::uint32_t> place(const job_fail& r, const cluster::placement& p) {
  return place_id(r.id, p);
}
inline core::result<std::uint32_t> place(const job_extend& r, const cluster::placement& p) {
  return place_id(r.id, p);
}
inline core::result<std::uint32_t> place(const job_retry& r, const cluster::placement& p) {
  return place_id(r.id, p);
}
inline core::result<std::uint32_t> place(const job_cancel& r, const cluster::placement& p) {
  return place_id(r.id, p);
}

// -- serialization --------------------------------------------------------------------------

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, job_view& x) {
  return f(x.id, x.json);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, job_enqueued& x) {
  return f(x.id, x.json, x.created);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, job_enqueue& x) {
  return f(x.queue, x.type, x.payload, x.idempotency_key, x.delay_ms, x.max_attempts);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, job_get& x) {
  return f(x.id);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, leased_job& x) {
  return f(x.id, x.queue, x.type, x.payload, x.attempt, x.lease_id, x.due_ms);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, lease_grant& x) {
  return f(x.jobs, x.ready_types);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, job_lease& x) {
  return f(x.queue, x.max, x.visibility_ms, x.types, x.owner, x.from_broker);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, job_complete& x) {
  return f(x.id, x.lease_id, x.result, x.from_broker);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, job_fail& x) {
  return f(x.id, x.lease_id, x.error, x.retry, x.from_broker);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, job_extend& x) {
  return f(x.id, x.lease_id, x.visibility_ms);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, job_retry& x) {
  return f(x.id);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, job_cancel& x) {
  return f(x.id);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, job_list& x) {
  return f(x.queue, x.state, x.after, x.limit);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, job_page& x) {
  return f(x.jobs, x.more);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, job_counts& x) {
  return f(x.queued, x.running, x.succeeded, x.failed, x.dead, x.cancelled, x.oldest_queued_ms);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, queue_stats& x) {
  return f(x.queue);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, leased_jobs& x) {
  return f(x.jobs);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, queue_lease& x) {
  return f(x.queue, x.max, x.visibility_ms, x.wait_ms);
}

} // namespace shoal::jobs
