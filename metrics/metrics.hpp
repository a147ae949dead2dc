// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace shoal::metrics {

/// A monotonically increasing count. Lock-free; safe from any thread.
class counter {
public:
  void inc(std::uint64_t n = 1) noexcept {
    value_.fetch_add(n, std::memory_order_relaxed);
  }
  std::uint64_t value() const noexcept {
    return value_.load(std::memory_order_relaxed);
  }

private:
  std::atomic<std::uint64_t> value_{0};
};

/// A value that goes up and down. Lock-free; safe from any thread.
class gauge {
public:
  void add(std::int64_t n) noexcept {
    value_.fetch_add(n, std::memory_order_relaxed);
  }
  void set(std::int64_t n) noexcept {
    value_.store(n, std::memory_order_relaxed);
  }
  std::int64_t value() const noexcept {
    return value_.load(std::memory_order_relaxed);
  }

private:
  std::atomic<std::int64_t> value_{0};
};

/// A histogram with fixed upper bounds (seconds). `observe` is lock-free; a concurrent
/// `collect` may see an observation in `count` but not yet in a bucket, which Prometheus
/// tolerates (it only needs monotonic counters).
class histogram {
public:
  /// `upper_bounds` must be sorted ascending; +Inf is implied.
  explicit histogram(std::vector<double> upper_bounds);

  void observe(double seconds) noexcept;

  const std::vector<double>& upper_bounds() const noexcept {
    return bounds_;
  }
  /// Cumulative bucket counts (one per bound, then +Inf), the count and the sum in seconds.
  struct snapshot {
    std::vector<std::uint64_t> cumulative;
    std::uint64_t count = 0;
    double sum = 0;
  };
  snapshot collect() const;

  /// Latency buckets from 100 µs to 10 s, for request and call durations.
  static std::vector<double> latency_bounds();

private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_; // per bucket, not cumulative
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> sum_ns_{0};
};

/// One `name="value"` pair of a sample.
using label = std::pair<std::string_view, std::string_view>;

/// Writes the Prometheus text exposition format (version 0.0.4).
class text_writer {
public:
  /// `# HELP` and `# TYPE` lines; call once per metric family, before its samples.
  void family(std::string_view name, std::string_view type, std::string_view help);
  void sample(std::string_view name, std::initializer_list<label> labels, double value);
  void sample(std::string_view name, std::initializer_list<label> labels, std::uint64_t value);
  /// The `_bucket`, `_sum` and `_count` series of `h` under `name` with `labels`.
  void histogram(std::string_view name, std::initializer_list<label> labels,
                 const metrics::histogram& h);

  const std::string& str() const noexcept {
    return out_;
  }
  std::string take() noexcept {
    return std::move(out_);
  }

private:
  void series(std::string_view name, std::initializer_list<label> labels,
              std::string_view extra_key = {}, std::string_view extra_value = {});
  std::string out_;
};

/// A collector appends its families to the writer when /metrics is scraped.
using collector = std::function<void(text_writer&)>;

/// The node's collectors. Collectors are added during start-up, before the first
/// scrape, and never removed, so `render` needs no lock.
class registry {
public:
  void add(collector c) {
    collectors_.push_back(std::move(c));
  }
  std::string render() const;

private:
  std::vector<collector> collectors_;
};

/// Writes process_resident_memory_bytes, process_open_fds and process_start_time_seconds
/// from /proc/self (Linux).
void write_process_metrics(text_writer& out, double start_time_seconds);

} // namespace shoal::metrics
