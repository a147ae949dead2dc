// SPDX-License-Identifier: Apache-2.0
#include "http/admission.hpp"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

namespace shoal::http {

namespace {

/// A window of samples ends once it is this old and holds enough samples.
constexpr std::chrono::milliseconds window_length{50};
constexpr std::uint32_t window_samples = 20;
/// A window this old ends with whatever it has (a trickle of requests still adapts).
constexpr std::chrono::milliseconds window_max_length{1000};
/// How far back the no-load latency (the lowest window mean) is looked for.
constexpr std::chrono::seconds baseline_span{30};
/// Latency up to this multiple of the no-load latency counts as unloaded.
constexpr double tolerance = 2.0;
/// How much of each new estimate the limit takes.
constexpr double smoothing = 0.2;
/// The weight of a window in the throughput average.
constexpr double throughput_weight = 0.25;

} // namespace

admission::admission(options o) : opt_(o) {
  opt_.min_limit = std::max<std::uint32_t>(1, opt_.min_limit);
  opt_.max_limit = std::max(opt_.max_limit, opt_.min_limit);
  // Start low (but not below the floor) and grow while latency allows.
  limit_ = std::clamp(64.0, double(opt_.min_limit), double(opt_.max_limit));
  publish();
}

admission::verdict admission::enter(clock::time_point now, wake_fn wake) {
  std::vector<wake_call> calls;
  const auto v = [&] {
    const std::lock_guard lock{mutex_};
    if (window_start_ == clock::time_point{}) window_start_ = now;
    take_expired(now, calls);
    if (queue_.empty() && in_flight_ < static_cast<std::uint32_t>(limit_)) {
      ++in_flight_;
      // A limit that was reached is one that binds: it may grow. One that is never
      // reached says nothing of how much more the shards could take.
      if (in_flight_ >= static_cast<std::uint32_t>(limit_)) window_bound_ = true;
      publish();
      return verdict::admitted;
    }
    window_bound_ = true;
    if (queue_.size() >= opt_.max_queued) return verdict::full;
    // Little's law: the new request would wait about queued / throughput.
    if (throughput_ > 0) {
      const auto wait = static_cast<double>(queue_.size() + 1) / throughput_;
      if (wait * 1000.0 > static_cast<double>(opt_.queue_timeout.count())) return verdict::too_slow;
    }
    queue_.push_back(waiting{now, std::move(wake)});
    publish();
    return verdict::queued;
  }();
  run(calls);
  return v;
}

void admission::leave(clock::time_point now, std::optional<clock::duration> service) {
  std::vector<wake_call> calls;
  {
    const std::lock_guard lock{mutex_};
    if (in_flight_ > 0) --in_flight_;
    if (service) sample(now, *service);
    take_expired(now, calls);
    while (!queue_.empty() && in_flight_ < static_cast<std::uint32_t>(limit_)) {
      calls.push_back({std::move(queue_.front().wake), true});
      queue_.pop_front();
      ++in_flight_;
    }
    publish();
  }
  run(calls);
}

void admission::expire(clock::time_point now) {
  std::vector<wake_call> calls;
  {
    const std::lock_guard lock{mutex_};
    take_expired(now, calls);
    publish();
  }
  run(calls);
}

void admission::clear() {
  std::deque<waiting> dropped;
  {
    const std::lock_guard lock{mutex_};
    dropped.swap(queue_);
    publish();
  }
  // `dropped` ends here, outside the lock: a session's destructor may call leave().
}

void admission::take_expired(clock::time_point now, std::vector<wake_call>& out) {
  while (!queue_.empty() && now - queue_.front().since >= opt_.queue_timeout) {
    out.push_back({std::move(queue_.front().wake), false});
    queue_.pop_front();
  }
}

void admission::run(std::vector<wake_call>& calls) {
  for (auto& c : calls)
    c.wake(c.admitted);
}

void admission::sample(clock::time_point now, clock::duration service) {
  ++window_count_;
  window_sum_ += std::chrono::duration<double>(service).count();
  const auto age = now - window_start_;
  if ((age >= window_length && window_count_ >= window_samples) || age >= window_max_length)
    end_window(now);
}

void admission::end_window(clock::time_point now) {
  const double seconds = std::chrono::duration<double>(now - window_start_).count();
  const double mean = window_sum_ / window_count_;
  const double rate = seconds > 0 ? window_count_ / seconds : 0;
  throughput_ = throughput_ == 0 ? rate : throughput_ + throughput_weight * (rate - throughput_);
  window_start_ = now;
  window_count_ = 0;
  window_sum_ = 0;

  // The lowest window mean of the last baseline_span (a monotonic queue).
  while (!lows_.empty() && lows_.back().seconds >= mean)
    lows_.pop_back();
  lows_.push_back({now, mean});
  while (lows_.front().at + baseline_span < now)
    lows_.pop_front();
  const double baseline = lows_.front().seconds;

  const double gradient = std::clamp(tolerance * baseline / std::max(mean, 1e-9), 0.5, 1.0);
  const double headroom = std::max(4.0, std::sqrt(limit_));
  const double estimate = limit_ * gradient + (gradient >= 1.0 && window_bound_ ? headroom : 0.0);
  window_bound_ = false;
  limit_ = std::clamp(limit_ + smoothing * (estimate - limit_), double(opt_.min_limit),
                      double(opt_.max_limit));
}

void admission::publish() {
  published_limit_.store(static_cast<std::uint32_t>(limit_), std::memory_order_relaxed);
  published_in_flight_.store(in_flight_, std::memory_order_relaxed);
  published_queued_.store(queue_.size(), std::memory_order_relaxed);
  if (opt_.limit_gauge) opt_.limit_gauge->set(static_cast<std::int64_t>(limit_));
  if (opt_.queued_gauge) opt_.queued_gauge->set(static_cast<std::int64_t>(queue_.size()));
}

} // namespace shoal::http
