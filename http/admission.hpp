// SPDX-License-Identifier: Apache-2.0
#pragma once

// Admission control at the edge (docs/architecture.md "Overload"): how many requests may
// be at the shards at once, and what happens to the rest. No Beast, no CAF: the sessions
// call it, the unit tests drive it with their own clock.
//
// - A concurrency limit that adapts to measured latency, between http.min_inflight and
//   http.max_inflight: every window of answered requests (at least 50 ms) compares their
//   mean service time (admission to answer) with the lowest window mean of the last 30 s.
//   Within twice that, a limit that was reached in the window grows by about its square
//   root (one never reached stays: nothing says the shards could take more); beyond it
//   (work piling up in the shard mailboxes) it shrinks in proportion, at most by half
//   (a gradient limiter in the manner of Netflix's concurrency-limits, with a windowed
//   minimum as the no-load latency, as BBR keeps its min RTT).
// - Over the limit a request waits in a FIFO queue with its body unread (the session does
//   not read its socket meanwhile), and is admitted when a request ends.
// - It is refused at once (503 overloaded, decided in microseconds) when the queue is full
//   (http.max_queued) or when the queue's expected wait (queued / recent throughput)
//   exceeds http.queue_timeout_ms; and it is refused when it has waited that long. So
//   under overload most requests are either served or told to come back at once, instead
//   of all of them waiting until they time out.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <vector>

#include "metrics/metrics.hpp"

namespace shoal::http {

class admission {
public:
  using clock = std::chrono::steady_clock;

  struct options {
    std::uint32_t min_limit = 16;      ///< http.min_inflight: the limit never goes below
    std::uint32_t max_limit = 8192;    ///< http.max_inflight: nor above
    std::uint32_t max_queued = 10'000; ///< http.max_queued; 0: no queue
    std::chrono::milliseconds queue_timeout{1000}; ///< http.queue_timeout_ms
    /// Set to the limit and the queue's length after every change (null: none).
    metrics::gauge* limit_gauge = nullptr;
    metrics::gauge* queued_gauge = nullptr;
  };

  enum class verdict : std::uint8_t {
    admitted, ///< go on now
    queued,   ///< wait: `wake` runs once, when admitted or when the wait ran out
    full,     ///< refused: the queue is at http.max_queued
    too_slow, ///< refused: the queue would take longer than http.queue_timeout_ms
  };

  /// A queued request's end: true, admitted (it holds a place now); false, it waited
  /// http.queue_timeout_ms and is refused.
  using wake_fn = std::function<void(bool admitted)>;

  /// Not explicit: server_context initializes it from its options in a braced list.
  admission(options o); // NOLINT(google-explicit-constructor)
  admission(const admission&) = delete;
  admission& operator=(const admission&) = delete;

  /// A request asks to start at `now`. When queued, `wake` runs exactly once, with no
  /// lock held, on the thread of a later call: leave() admits it, or a call that finds
  /// its wait past the timeout (any of these three) refuses it.
  verdict enter(clock::time_point now, wake_fn wake);

  /// An admitted request ended at `now`; `service` is how long it took since it was
  /// admitted (null: do not count it, say a connection that went away). Refuses the
  /// queued requests whose wait ran out, then admits those that fit, oldest first.
  void leave(clock::time_point now, std::optional<clock::duration> service);

  /// Refuses the queued requests whose wait ran out by `now`. The server calls it on a
  /// timer, so waits end on time even when no request starts or ends.
  void expire(clock::time_point now);

  /// Drops every queued request's wake-up without running it: the server stopped, and
  /// what the wake-ups hold (the sessions) must go while their io_context still exists.
  void clear();

  /// The state, for metrics and tests (as of the last call; no lock).
  std::uint32_t limit() const noexcept {
    return published_limit_.load(std::memory_order_relaxed);
  }
  std::uint32_t in_flight() const noexcept {
    return published_in_flight_.load(std::memory_order_relaxed);
  }
  std::size_t queued() const noexcept {
    return published_queued_.load(std::memory_order_relaxed);
  }

private:
  struct waiting {
    clock::time_point since;
    wake_fn wake;
  };
  /// A wake-up to run once the lock is released.
  struct wake_call {
    wake_fn wake;
    bool admitted;
  };
  /// Moves the waits that ran out by `now` (the oldest: the queue is in arrival order)
  /// to `out`.
  void take_expired(clock::time_point now, std::vector<wake_call>& out);
  static void run(std::vector<wake_call>& calls);
  void sample(clock::time_point now, clock::duration service);
  void end_window(clock::time_point now);
  void publish(); ///< under the lock

  options opt_;
  mutable std::mutex mutex_;
  double limit_;
  std::uint32_t in_flight_ = 0;
  std::deque<waiting> queue_; ///< in arrival order
  // The current window of samples.
  clock::time_point window_start_{};
  std::uint32_t window_count_ = 0;
  double window_sum_ = 0;     ///< seconds
  bool window_bound_ = false; ///< the limit was reached in this window
  // Across windows.
  struct mean_at {
    clock::time_point at;
    double seconds;
  };
  /// Window means of the last 30 s, increasing: the front is their minimum.
  std::deque<mean_at> lows_;
  double throughput_ = 0; ///< requests answered per second, moving average; 0: unknown
  std::atomic<std::uint32_t> published_limit_{0};
  std::atomic<std::uint32_t> published_in_flight_{0};
  std::atomic<std::size_t> published_queued_{0};
};

} // namespace shoal::http
