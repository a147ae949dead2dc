// SPDX-License-Identifier: Apache-2.0
#include "jobs/messages.hpp"

#include <algorithm>

namespace shoal::jobs {

const char* to_string(job_state s) noexcept {
  switch (s) {
  case job_state::queued:
    return "queued";
  case job_state::running:
    return "running";
  case job_state::succeeded:
    return "succeeded";
  case job_state::failed:
    return "failed";
  case job_state::dead:
    return "dead";
  case job_state::cancelled:
    return "cancelled";
  }
  return "unknown";
}

void job_counts::add(const job_counts& o) noexcept {
  queued += o.queued;
  running += o.running;
  succeeded += o.succeeded;
  failed += o.failed;
  dead += o.dead;
  cancelled += o.cancelled;
  if (o.oldest_queued_ms != 0 && (oldest_queued_ms == 0 || o.oldest_queued_ms < oldest_queued_ms))
    oldest_queued_ms = o.oldest_queued_ms;
}

core::result<job_page> merge_pages(std::vector<core::result<job_page>>&& answers,
                                   std::uint32_t limit) {
  job_page out;
  for (auto& a : answers) {
    if (!a) return std::move(a).error();
    out.more = out.more || a->more;
    for (auto& j : a->jobs)
      out.jobs.push_back(std::move(j));
  }
  std::sort(out.jobs.begin(), out.jobs.end(),
            [](const job_view& a, const job_view& b) { return a.id < b.id; });
  if (out.jobs.size() > limit) {
    out.jobs.resize(limit);
    out.more = true;
  }
  return out;
}

core::result<job_counts> sum_counts(std::vector<core::result<job_counts>>&& answers) {
  job_counts sum;
  for (auto& a : answers) {
    if (!a) return std::move(a).error();
    sum.add(*a);
  }
  return sum;
}

core::result<std::uint32_t> place(const job_enqueue& r, const cluster::placement& p) {
  const auto count = p.map.shard_count();
  if (!r.idempotency_key.empty()) return p.map.shard_of(r.queue, r.idempotency_key);
  const auto start = static_cast<std::uint32_t>((p.random ? p.random() : 0) % count);
  if (!p.shard_up) return start;
  for (std::uint32_t i = 0; i < count; ++i) {
    const auto s = (start + i) % count;
    if (p.shard_up(s)) return s;
  }
  return start; // none is up: the shard answers shard_unavailable
}

core::result<std::uint32_t> place_id(std::string_view id, const cluster::placement& p) {
  auto shard = job_shard(id);
  if (!shard || *shard >= p.map.shard_count())
    return core::error{core::errc::not_found, "no such job"};
  return *shard;
}

} // namespace shoal::jobs
