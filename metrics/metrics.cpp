// SPDX-License-Identifier: Apache-2.0
#include "metrics/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include <sys/resource.h>
#include <unistd.h>

#include <fmt/format.h>

namespace shoal::metrics {

histogram::histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)),
      buckets_(new std::atomic<std::uint64_t>[bounds_.size() + 1]) {
  for (std::size_t i = 0; i <= bounds_.size(); ++i)
    buckets_[i].store(0, std::memory_order_relaxed);
}

void histogram::observe(double seconds) noexcept {
  auto it = std::lower_bound(bounds_.begin(), bounds_.end(), seconds);
  buckets_[static_cast<std::size_t>(it - bounds_.begin())].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  auto ns = seconds > 0 ? static_cast<std::uint64_t>(std::llround(seconds * 1e9)) : 0;
  sum_ns_.fetch_add(ns, std::memory_order_relaxed);
}

histogram::snapshot histogram::collect() const {
  snapshot s;
  s.cumulative.reserve(bounds_.size() + 1);
  std::uint64_t running = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    s.cumulative.push_back(running);
  }
  // The +Inf bucket must equal the count; take the count from the buckets we read.
  s.count = running;
  s.sum = static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9;
  return s;
}

std::vector<double> histogram::latency_bounds() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
          0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
}

namespace {

void append_escaped(std::string& out, std::string_view value) {
  for (char c : value) {
    switch (c) {
    case '\\':
      out += "\\\\";
      break;
    case '"':
      out += "\\\"";
      break;
    case '\n':
      out += "\\n";
      break;
    default:
      out += c;
    }
  }
}

void append_number(std::string& out, double value) {
  if (std::isinf(value)) {
    out += value > 0 ? "+Inf" : "-Inf";
  } else if (std::isnan(value)) {
    out += "NaN";
  } else {
    fmt::format_to(std::back_inserter(out), "{}", value);
  }
}

} // namespace

void text_writer::family(std::string_view name, std::string_view type, std::string_view help) {
  fmt::format_to(std::back_inserter(out_), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void text_writer::series(std::string_view name, std::initializer_list<label> labels,
                         std::string_view extra_key, std::string_view extra_value) {
  out_ += name;
  if (labels.size() == 0 && extra_key.empty()) return;
  out_ += '{';
  bool first = true;
  auto add = [&](std::string_view k, std::string_view v) {
    if (!first) out_ += ',';
    first = false;
    out_ += k;
    out_ += "=\"";
    append_escaped(out_, v);
    out_ += '"';
  };
  for (const auto& [k, v] : labels)
    add(k, v);
  if (!extra_key.empty()) add(extra_key, extra_value);
  out_ += '}';
}

void text_writer::sample(std::string_view name, std::initializer_list<label> labels, double value) {
  series(name, labels);
  out_ += ' ';
  append_number(out_, value);
  out_ += '\n';
}

void text_writer::sample(std::string_view name, std::initializer_list<label> labels,
                         std::uint64_t value) {
  series(name, labels);
  fmt::format_to(std::back_inserter(out_), " {}\n", value);
}

void text_writer::histogram(std::string_view name, std::initializer_list<label> labels,
                            const metrics::histogram& h) {
  auto snap = h.collect();
  const auto& bounds = h.upper_bounds();
  std::string bucket_name = fmt::format("{}_bucket", name);
  std::string le;
  for (std::size_t i = 0; i <= bounds.size(); ++i) {
    le.clear();
    if (i < bounds.size())
      append_number(le, bounds[i]);
    else
      le = "+Inf";
    series(bucket_name, labels, "le", le);
    fmt::format_to(std::back_inserter(out_), " {}\n", snap.cumulative[i]);
  }
  series(fmt::format("{}_sum", name), labels);
  out_ += ' ';
  append_number(out_, snap.sum);
  out_ += '\n';
  series(fmt::format("{}_count", name), labels);
  fmt::format_to(std::back_inserter(out_), " {}\n", snap.count);
}

std::string registry::render() const {
  text_writer out;
  for (const auto& c : collectors_)
    c(out);
  return out.take();
}

void write_process_metrics(text_writer& out, double start_time_seconds) {
  // statm: size resident shared text lib data dt (in pages).
  std::uint64_t size_pages = 0;
  std::uint64_t resident_pages = 0;
  if (std::ifstream statm{"/proc/self/statm"}; statm) statm >> size_pages >> resident_pages;
  auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  out.family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
  out.sample("process_resident_memory_bytes", {}, resident_pages * page);
  out.family("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
  out.sample("process_virtual_memory_bytes", {}, size_pages * page);

  std::uint64_t fds = 0;
  std::error_code ec;
  for (std::filesystem::directory_iterator it{"/proc/self/fd", ec}, end; !ec && it != end;
       it.increment(ec))
    ++fds;
  out.family("process_open_fds", "gauge", "Number of open file descriptors.");
  out.sample("process_open_fds", {}, fds);
  // Every thread's user and system time, as the Prometheus client libraries report it.
  rusage usage{};
  double cpu = 0;
  if (::getrusage(RUSAGE_SELF, &usage) == 0)
    cpu = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
          + static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
  out.family("process_cpu_seconds_total", "counter", "Total user and system CPU time in seconds.");
  out.sample("process_cpu_seconds_total", {}, cpu);
  out.family("process_start_time_seconds", "gauge",
             "Start time of the process since the Unix epoch in seconds.");
  out.sample("process_start_time_seconds", {}, start_time_seconds);
}

} // namespace shoal::metrics
