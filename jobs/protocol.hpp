// SPDX-License-Identifier: Apache-2.0
#pragma once

// The messages of durable job queues (docs/jobs.md). Plain structs with no CAF include,
// like actors/doc_protocol.hpp: the edge builds them; shard actors, the node's job broker
// and remote stubs exchange them (type ids in actors/type_ids.hpp).

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace shoal::jobs {

/// Where a job is in its life. `failed` means: an attempt failed and the job waits for
/// its retry; `succeeded` and `dead` are final (a dead job comes back only by `retry`).
enum class job_state : std::uint8_t { queued, running, succeeded, failed, dead };
inline constexpr std::size_t job_state_count = 5;

/// "queued", "running", …
const char* to_string(job_state s) noexcept;

enum class job_op : std::uint8_t {
  enqueue,  ///< store a new job (or find the one with the same idempotency key)
  get,      ///< the job as JSON
  lease,    ///< take up to `max` due jobs of `queue` for `visibility_ms`
  complete, ///< the lease holder reports success
  fail,     ///< the lease holder reports failure
  retry,    ///< bring a dead job back
  stats,    ///< counts of `queue` by state
};

/// One job operation. Names and bodies are validated by the edge before a request is built.
struct job_request {
  job_op op = job_op::get;
  std::string queue; ///< enqueue, lease, stats
  std::string id;    ///< get/complete/fail/retry; enqueue: empty (the shard assigns the id)
  std::string type;  ///< enqueue
  /// enqueue: the payload (a serialized JSON object); complete: the result (serialized
  /// JSON); fail: the error message.
  std::string body;
  std::string key;                 ///< enqueue: the idempotency key; complete/fail: the lease id
  std::uint64_t delay_ms = 0;      ///< enqueue
  std::uint32_t max_attempts = 0;  ///< enqueue
  std::uint32_t max = 0;           ///< lease: at most this many jobs
  std::uint32_t visibility_ms = 0; ///< lease: how long the lease holds
  std::uint32_t wait_ms = 0;       ///< lease (at the broker): how long to wait for work
  bool retry = true;               ///< fail: false sends the job to `dead` at once
  std::vector<std::string> types;  ///< lease: only these job types; empty: any
  /// lease: who holds the lease — empty for an external worker, the node's incarnation
  /// for its in-process workers (their leases end with the process).
  std::string owner;
  /// Sent by the shard's own node broker. lease: the broker tracks the shard's due lanes
  /// from the reply's `ready_types` (leases from elsewhere leave that tracking alone);
  /// complete/fail: the reply carries no body.
  bool from_broker = false;
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

/// How many jobs of a queue are in each state.
struct job_counts {
  std::uint64_t queued = 0;
  std::uint64_t running = 0;
  std::uint64_t succeeded = 0;
  std::uint64_t failed = 0;
  std::uint64_t dead = 0;
  std::uint64_t oldest_queued_ms = 0; ///< created_at (Unix ms) of the oldest queued job; 0: none

  void add(const job_counts& o) noexcept {
    queued += o.queued;
    running += o.running;
    succeeded += o.succeeded;
    failed += o.failed;
    dead += o.dead;
    if (o.oldest_queued_ms != 0 && (oldest_queued_ms == 0 || o.oldest_queued_ms < oldest_queued_ms))
      oldest_queued_ms = o.oldest_queued_ms;
  }
};

enum class job_status : std::uint8_t {
  ok,                ///< done; `body` holds the job
  created,           ///< enqueue stored a new job
  existing,          ///< enqueue found the job with the same idempotency key
  not_found,         ///< no such job
  stale_lease,       ///< complete/fail with a lease id that does not hold the job (any more)
  wrong_state,       ///< retry of a job that is not dead
  invalid,           ///< the request cannot be served (detail in `message`)
  storage_error,     ///< the store failed; nothing was acknowledged
  unavailable,       ///< the shard is shutting down
  shard_unavailable, ///< the node that owns the shard is down or not answering
};

struct job_reply {
  job_status status = job_status::ok;
  std::string body;             ///< the job as a JSON object (enqueue, get, complete, fail, retry)
  std::string message;          ///< human-readable detail for errors
  std::vector<leased_job> jobs; ///< lease
  std::vector<std::string> ready_types; ///< lease: types of the queue still due on the shard
  job_counts counts;                    ///< stats
};

/// Where a reply goes when the caller is not an actor (the HTTP edge); as
/// actors::reply_sink: called exactly once, on a CAF worker thread, and must only hand
/// the reply over.
class job_sink {
public:
  virtual ~job_sink() = default;
  virtual void deliver(job_reply&& reply) = 0;
};

using job_sink_ptr = std::shared_ptr<job_sink>;

// -- in-process handlers -------------------------------------------------------------

/// The node's job broker → a handler actor: run this job.
struct job_run {
  std::string id;
  std::string queue;
  std::string type;
  std::string payload; ///< serialized JSON object
  std::uint32_t attempt = 0;
};

/// A handler's answer: a result, or an error that is retryable or not.
struct job_outcome {
  bool ok = true;
  std::string result; ///< ok: serialized JSON (empty: null)
  std::string error;  ///< !ok: what went wrong
  bool retryable = true;

  static job_outcome success(std::string result_json) {
    return {true, std::move(result_json), {}, false};
  }
  static job_outcome failure(std::string error, bool retryable) {
    return {false, {}, std::move(error), retryable};
  }
};

} // namespace shoal::jobs
