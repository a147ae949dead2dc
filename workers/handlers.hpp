// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "protocol/shard_actor.hpp"

namespace shoal::workers {

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

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, job_run& x) {
  return f(x.id, x.queue, x.type, x.payload, x.attempt);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, job_outcome& x) {
  return f(x.ok, x.result, x.error, x.retryable);
}

/// An in-process job handler: an actor that runs one job per `job_run` and answers with
/// a result, or with an error that is retryable or not. It may answer later (a response
/// promise) and may run several jobs at once; the broker bounds how many it sends.
using handler_actor = caf::typed_actor<caf::replies_to<job_run>::with<job_outcome>>;

/// The node's job handlers by job type. Filled at start-up, read-only afterwards.
class handler_registry {
public:
  using factory = std::function<handler_actor(caf::actor_system&)>;

  /// Registers the handler of `type` ([A-Za-z0-9_.-]{1,64}); a second one for the same
  /// type replaces the first.
  void add(std::string type, factory make);

  /// A handler from a plain function that runs on a CAF worker thread: fine for short
  /// computations; anything that waits on I/O should be an actor that answers later.
  void add_function(std::string type, std::function<job_outcome(const job_run&)> fn);

  const factory* find(std::string_view type) const;
  std::vector<std::string> types() const;

private:
  std::map<std::string, factory, std::less<>> handlers_;
};

/// Posts `body` (JSON) to `url` with a timeout and the extra header fields `headers`,
/// and calls `done` exactly once, on any thread, with the outcome (2xx: success with
/// `{"status"}`, plus the response's `"body"` when `keep_body`; 5xx, connection errors
/// and timeouts: retryable; other statuses and refused destinations: not retryable).
/// Must not block.
using http_post = std::function<void(
  std::string url, std::string body, std::chrono::milliseconds timeout,
  std::vector<std::pair<std::string, std::string>> headers, bool keep_body,
  std::function<void(job_outcome)> done)>;

/// The built-in handlers:
/// - `webhook`: payload `{"url": "http://…", "body": any JSON (default: the payload
///   itself), "timeout_ms": n (default `timeout`), "keep_body": bool (default false)}` —
///   POSTs the body to the URL with `X-Shoal-Job-Id` and `X-Shoal-Attempt`, so receivers
///   can drop repeats. The job's result is the response status, and its first 4 KiB of
///   body only when `keep_body` asks for it (a job's result is readable by whoever can
///   read jobs).
/// - `noop`: succeeds at once with the payload as its result (for tests and benchmarks).
/// - `collection.stats`: payload `{"collection": "c", "field": "a.b"}` — counts the
///   documents of the collection on every shard and min/max/sum/avg of the field.
void add_builtin_handlers(handler_registry& registry, const protocol::shard_handles& shards,
                          http_post post, std::chrono::milliseconds timeout);

} // namespace shoal::workers
