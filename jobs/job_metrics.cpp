// SPDX-License-Identifier: Apache-2.0
#include "jobs/job_metrics.hpp"

#include <chrono>

namespace shoal::jobs {

job_metrics::type_metrics& job_metrics::of(std::string_view queue, std::string_view type) {
  std::lock_guard<std::mutex> lock(mu_);
  auto key = std::make_pair(std::string(queue), std::string(type));
  auto it = types_.find(key);
  if (it != types_.end()) return *it->second;
  // The shared series does not count against the bound.
  const auto own = types_.size() - types_.count({std::string(other), std::string(other)});
  if (own >= max_series_) key = {std::string(other), std::string(other)};
  it = types_.find(key);
  if (it == types_.end())
    it = types_.emplace(std::move(key), std::make_unique<type_metrics>()).first;
  return *it->second;
}

job_metrics::queue_metrics& job_metrics::of(std::string_view queue) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = queues_.find(queue);
  if (it != queues_.end()) return *it->second;
  const auto own = queues_.size() - queues_.count(other);
  if (own >= max_series_) queue = other;
  it = queues_.find(queue);
  if (it == queues_.end())
    it = queues_.emplace(std::string(queue), std::make_unique<queue_metrics>(shards_)).first;
  return *it->second;
}

void job_metrics::write(metrics::text_writer& out) const {
  std::lock_guard<std::mutex> lock(mu_);
  struct counter_family {
    const char* name;
    const char* help;
    const metrics::counter type_metrics::*member;
  };
  static constexpr counter_family counters[] = {
    {"shoal_jobs_enqueued_total", "Jobs stored by enqueue.", &type_metrics::enqueued},
    {"shoal_jobs_completed_total", "Jobs that succeeded.", &type_metrics::completed},
    {"shoal_jobs_failed_total", "Attempts that failed (a retry or dead follows).",
     &type_metrics::failed},
    {"shoal_jobs_dead_total", "Jobs that became dead.", &type_metrics::dead},
    {"shoal_jobs_cancelled_total", "Jobs cancelled before they ran.", &type_metrics::cancelled},
    {"shoal_jobs_lease_expired_total", "Leases that expired before complete or fail.",
     &type_metrics::lease_expired},
  };
  for (const auto& f : counters) {
    out.family(f.name, "counter", f.help);
    for (const auto& [key, m] : types_)
      out.sample(f.name, {{"queue", key.first}, {"type", key.second}}, ((*m).*f.member).value());
  }
  out.family("shoal_job_start_latency_seconds", "histogram",
             "From a job becoming due to a worker leasing it.");
  for (const auto& [key, m] : types_)
    out.histogram("shoal_job_start_latency_seconds", {{"queue", key.first}, {"type", key.second}},
                  m->start_latency);
  out.family("shoal_job_run_seconds", "histogram", "From lease to complete or fail.");
  for (const auto& [key, m] : types_)
    out.histogram("shoal_job_run_seconds", {{"queue", key.first}, {"type", key.second}},
                  m->run_time);
  out.family("shoal_jobs_lease_waiters", "gauge",
             "Lease requests this node's broker holds unanswered (long polls waiting for work).");
  out.sample("shoal_jobs_lease_waiters", {}, static_cast<double>(lease_waiters.value()));
  out.family("shoal_jobs_oldest_queued_age_seconds", "gauge",
             "Age of the oldest queued job of the queue on this node's shards (0: none queued).");
  const auto now_ms =
    static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count());
  for (const auto& [queue, m] : queues_) {
    std::uint64_t least = 0;
    for (std::uint32_t s = 0; s < m->slots; ++s) {
      const auto v = m->oldest[s].load(std::memory_order_relaxed);
      if (v != 0 && (least == 0 || v < least)) least = v;
    }
    const double age =
      least == 0 || least >= now_ms ? 0.0 : static_cast<double>(now_ms - least) / 1000.0;
    out.sample("shoal_jobs_oldest_queued_age_seconds", {{"queue", queue}}, age);
  }
  out.family("shoal_jobs", "gauge", "Jobs on this node's shards by queue and state.");
  for (const auto& [queue, m] : queues_)
    for (std::size_t s = 0; s < job_state_count; ++s)
      out.sample("shoal_jobs", {{"queue", queue}, {"state", to_string(static_cast<job_state>(s))}},
                 static_cast<double>(m->depth[s].value()));
}

} // namespace shoal::jobs
