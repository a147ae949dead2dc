// SPDX-License-Identifier: Apache-2.0
#include "jobs/job_queue.hpp"

#include <algorithm>
#include <cstring>
#include <ctime>

#include <boost/json.hpp>

#include "jobs/ids.hpp"

namespace shoal::jobs {

namespace {

bool final_state(job_state s) noexcept {
  return s == job_state::succeeded || s == job_state::dead || s == job_state::cancelled;
}

core::error no_such_job() {
  return {core::errc::not_found, "no such job"};
}

std::string enqueue_body(std::string_view id, job_state state) {
  boost::json::object o;
  o["id"] = id;
  o["state"] = to_string(state);
  return boost::json::serialize(o);
}

} // namespace

// -- job_queue -------------------------------------------------------------------------

job_queue::job_queue(storage::shard_store& shard, committer commit, std::uint32_t index,
                     retry_policy retry, job_metrics* metrics, std::uint64_t seed)
    : shard_(shard), commit_(std::move(commit)), index_(index), retry_(retry), metrics_(metrics),
      rng_(seed) {}

job_queue::queue_info& job_queue::queue(const std::string& name) {
  auto it = queues_.find(name);
  if (it == queues_.end()) {
    it = queues_.emplace(name, queue_info{}).first;
    if (metrics_) it->second.metrics = &metrics_->of(name);
  }
  return it->second;
}

void job_queue::mark_dirty(lane& l) {
  if (l.dirty) return;
  l.dirty = true;
  dirty_.push_back(&l);
}

job_queue::lane& job_queue::lane_of(const std::string& queue_name, const std::string& type) {
  auto qit = queues_.find(queue_name);
  if (qit == queues_.end()) {
    queue(queue_name);
    qit = queues_.find(queue_name);
  }
  auto& q = qit->second;
  auto it = q.lanes.find(type);
  if (it == q.lanes.end()) {
    it = q.lanes.emplace(type, lane{}).first;
    auto& l = it->second;
    if (metrics_) l.metrics = &metrics_->of(queue_name, type);
    l.queue = &q;
    l.queue_name = &qit->first;
    l.type_name = &it->first;
  }
  return it->second;
}

job_queue::~job_queue() {
  for (auto& [name, q] : queues_) {
    if (!q.metrics) continue;
    for (std::size_t s = 0; s < job_state_count; ++s)
      q.metrics->depth[s].add(-static_cast<std::int64_t>(q.counts[s]));
    q.metrics->set_oldest(index_, 0);
  }
}

void job_queue::publish_oldest(const queue_info& q) {
  if (q.metrics)
    q.metrics->set_oldest(index_, q.queued_by_age.empty() ? 0 : q.queued_by_age.begin()->first);
}

void job_queue::count(queue_info& q, job_state s, std::int64_t delta) {
  q.counts[static_cast<std::size_t>(s)] += static_cast<std::uint64_t>(delta);
  if (q.metrics) q.metrics->depth[static_cast<std::size_t>(s)].add(delta);
}

void job_queue::track(const std::string& id, const job_record& r, std::uint64_t now) {
  auto& l = lane_of(r.queue, r.type);
  auto& q = *l.queue;
  count(q, r.state, 1);
  if (final_state(r.state)) return;
  if (r.state == job_state::running) {
    leases_.emplace(r.lease_until, id);
  } else {
    l.waiting.insert(waiting_key{r.due_ms, r.seq, id});
    if (r.due_ms > now)
      delayed_.emplace(r.due_ms, &l);
    else
      mark_dirty(l);
    if (r.state == job_state::queued) {
      q.queued_by_age.emplace(r.created_ms, r.seq);
      publish_oldest(q);
    }
  }
  live_[id] = live_job{&l, r.state, r.due_ms, r.seq, r.created_ms, r.lease_until};
}

void job_queue::untrack(const std::string& id) {
  auto it = live_.find(id);
  if (it == live_.end()) return;
  auto& j = it->second;
  auto& q = *j.in->queue;
  count(q, j.state, -1);
  if (j.state == job_state::running) {
    leases_.erase({j.lease_until, id});
  } else {
    j.in->waiting.erase(waiting_key{j.due_ms, j.seq, id});
    if (j.state == job_state::queued) {
      q.queued_by_age.erase({j.created_ms, j.seq});
      publish_oldest(q);
    }
  }
  live_.erase(it);
}

void job_queue::fail_attempt(job_record& r, std::string error, bool retryable, std::uint64_t now) {
  r.error = std::move(error);
  r.updated_ms = now;
  r.lease_id.clear();
  r.owner.clear();
  r.lease_until = 0;
  if (!retryable || r.attempts >= r.max_attempts) {
    r.state = job_state::dead;
  } else {
    r.state = job_state::failed;
    r.due_ms = now + retry_.delay(r.attempts, rng_);
  }
}

std::string job_queue::new_lease_id() {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng_()));
  return buf;
}

core::result<std::optional<job_record>> job_queue::read(const std::string& id) {
  auto raw = shard_.get(job_key(id));
  if (!raw) {
    if (raw.error() == core::errc::not_found) return std::optional<job_record>();
    return std::move(raw).error();
  }
  auto r = decode(*raw);
  if (!r) return core::error{core::errc::corrupt, "job record " + id + " is corrupt"};
  return r;
}

core::result<void> job_queue::recover(std::uint64_t now_ms, std::string_view incarnation) {
  std::vector<std::pair<std::string, job_record>> orphaned; // in-process leases of a dead process
  std::optional<core::error> failure;
  auto s = shard_.scan_prefix("j", [&](std::string_view key, std::string_view value) {
    auto r = decode(value);
    std::string id(key.substr(1));
    if (!r) {
      failure = core::error{core::errc::corrupt, "job record " + id + " is corrupt"};
      return false;
    }
    next_seq_ = std::max(next_seq_, r->seq + 1);
    if (r->state == job_state::running && !r->owner.empty() && r->owner != incarnation)
      orphaned.emplace_back(std::move(id), std::move(*r));
    else
      track(id, *r, now_ms);
    return true;
  });
  if (!s) return s;
  if (failure) return std::move(*failure);
  next_seq_ = std::max(next_seq_, now_ms << 20);
  if (orphaned.empty()) return core::ok();
  storage::write_batch batch;
  for (auto& [id, r] : orphaned) {
    fail_attempt(
      r, "the node restarted while the job ran (attempt " + std::to_string(r.attempts) + ")", true,
      now_ms);
    batch.put(job_key(id), encode(r));
  }
  if (auto w = commit_(std::move(batch)); !w) return w;
  for (auto& [id, r] : orphaned) {
    track(id, r, now_ms);
    if (auto& l = lane_of(r.queue, r.type); l.metrics) {
      l.metrics->lease_expired.inc();
      l.metrics->failed.inc();
      if (r.state == job_state::dead) l.metrics->dead.inc();
    }
  }
  return core::ok();
}

core::result<job_enqueued> job_queue::enqueue(job_enqueue& req, std::uint64_t now) {
  // New ids follow the sequence: consecutive keys, which RocksDB's memtable inserts
  // (and reads back) much faster than random ones.
  const auto id = make_job_id(index_, next_seq_);
  storage::write_batch batch;
  if (!req.idempotency_key.empty()) {
    auto ikey = idempotency_key(req.queue, req.idempotency_key);
    auto first = shard_.get(ikey);
    if (first) {
      auto r = read(*first);
      if (!r) return std::move(r).error();
      if (!*r) return core::error{core::errc::corrupt, "idempotency entry without its job"};
      return job_enqueued{*first, render(*first, **r), false};
    }
    if (first.error() != core::errc::not_found) return std::move(first).error();
    batch.put(std::move(ikey), id);
  }
  job_record r;
  r.state = job_state::queued;
  r.max_attempts = req.max_attempts;
  r.created_ms = now;
  r.updated_ms = now;
  r.due_ms = now + req.delay_ms;
  r.seq = next_seq_;
  r.queue = std::move(req.queue);
  r.type = std::move(req.type);
  r.payload = std::move(req.payload);
  r.idempotency = std::move(req.idempotency_key);
  batch.put(job_key(id), encode(r));
  if (auto s = commit_(std::move(batch)); !s) return std::move(s).error();
  ++next_seq_;
  track(id, r, now);
  if (auto& l = lane_of(r.queue, r.type); l.metrics) l.metrics->enqueued.inc();
  return job_enqueued{id, enqueue_body(id, r.state), true};
}

core::result<job_view> job_queue::get(const job_get& req) {
  auto r = read(req.id);
  if (!r) return std::move(r).error();
  if (!*r) return no_such_job();
  return job_view{req.id, render(req.id, **r)};
}

core::result<lease_grant> job_queue::lease(const job_lease& req, std::uint64_t now) {
  lease_grant grant;
  auto qit = queues_.find(req.queue);
  if (qit == queues_.end()) return grant; // nothing ever enqueued here: no jobs
  auto& q = qit->second;
  // The candidate lanes, each with its next waiting job; take the earliest due first.
  struct cursor {
    lane* l;
    std::set<waiting_key>::iterator it;
  };
  std::vector<cursor> cursors;
  for (auto& [type, l] : q.lanes) {
    if (!req.types.empty()
        && std::find(req.types.begin(), req.types.end(), type) == req.types.end())
      continue;
    if (!l.waiting.empty()) cursors.push_back({&l, l.waiting.begin()});
  }
  std::vector<std::pair<std::string, job_record>> picked;
  storage::write_batch batch;
  while (picked.size() < req.max) {
    cursor* best = nullptr;
    for (auto& c : cursors)
      if (c.it != c.l->waiting.end() && c.it->due_ms <= now && (!best || *c.it < *best->it))
        best = &c;
    if (!best) break;
    const auto id = best->it->id;
    ++best->it;
    auto r = read(id);
    if (!r) return std::move(r).error();
    if (!*r) return core::error{core::errc::corrupt, "job record " + id + " is missing"};
    auto& rec = **r;
    rec.state = job_state::running;
    rec.attempts += 1;
    rec.updated_ms = now;
    rec.leased_ms = now;
    rec.lease_until = now + req.visibility_ms;
    rec.lease_id = new_lease_id();
    rec.owner = req.owner;
    batch.put(job_key(id), encode(rec));
    picked.emplace_back(id, std::move(rec));
  }
  if (!picked.empty())
    if (auto s = commit_(std::move(batch)); !s) return std::move(s).error();
  for (auto& [id, r] : picked) {
    const auto due = live_.at(id).due_ms;
    untrack(id);
    track(id, r, now);
    auto& l = lane_of(r.queue, r.type);
    if (l.metrics)
      l.metrics->start_latency.observe(static_cast<double>(now - std::min(now, due)) / 1000.0);
    grant.jobs.push_back(
      leased_job{id, r.queue, r.type, std::move(r.payload), r.attempts, r.lease_id, due});
  }
  // Tell the broker exactly which types still have due jobs here; it forgets the others,
  // and this shard announces them again when they get one. A lease from another node
  // changes nothing the local broker knows, so it leaves the announcements alone.
  for (auto& [type, l] : q.lanes) {
    const bool due = !l.waiting.empty() && l.waiting.begin()->due_ms <= now;
    if (req.from_broker) l.announced = due;
    if (due) grant.ready_types.push_back(type);
  }
  return grant;
}

core::result<job_view> job_queue::complete(job_complete& req, std::uint64_t now) {
  return finish(req.id, req.lease_id, true, std::move(req.result), false, !req.from_broker, now);
}

core::result<job_view> job_queue::fail(job_fail& req, std::uint64_t now) {
  return finish(req.id, req.lease_id, false, std::move(req.error), req.retry, !req.from_broker,
                now);
}

core::result<job_view> job_queue::finish(const std::string& id, const std::string& lease_id,
                                         bool complete, std::string text, bool retryable,
                                         bool with_body, std::uint64_t now) {
  auto it = live_.find(id);
  auto read_r = read(id);
  if (!read_r) return std::move(read_r).error();
  if (!*read_r) return no_such_job();
  auto& r = **read_r;
  // The record holds the lease id; memory says whether the job is running now.
  if (it == live_.end() || it->second.state != job_state::running || r.lease_id != lease_id)
    return core::error{core::errc::conflict, "stale_lease",
                       std::string("the lease does not hold this job (it is ") + to_string(r.state)
                         + ")"};
  const auto leased_ms = r.leased_ms;
  if (complete) {
    r.state = job_state::succeeded;
    r.result = std::move(text);
    r.error.clear();
    r.updated_ms = now;
    r.lease_id.clear();
    r.owner.clear();
    r.lease_until = 0;
  } else {
    fail_attempt(r, std::move(text), retryable, now);
  }
  storage::write_batch batch;
  batch.put(job_key(id), encode(r));
  if (auto s = commit_(std::move(batch)); !s) return std::move(s).error();
  untrack(id);
  track(id, r, now);
  if (auto& l = lane_of(r.queue, r.type); l.metrics) {
    l.metrics->run_time.observe(static_cast<double>(now - std::min(now, leased_ms)) / 1000.0);
    if (complete) {
      l.metrics->completed.inc();
    } else {
      l.metrics->failed.inc();
      if (r.state == job_state::dead) l.metrics->dead.inc();
    }
  }
  // The broker needs no body.
  return job_view{id, with_body ? render(id, r) : std::string()};
}

core::result<job_view> job_queue::extend(const job_extend& req, std::uint64_t now) {
  auto it = live_.find(req.id);
  auto read_r = read(req.id);
  if (!read_r) return std::move(read_r).error();
  if (!*read_r) return no_such_job();
  auto& r = **read_r;
  // As for complete and fail: only the lease that holds the running job.
  if (it == live_.end() || it->second.state != job_state::running || r.lease_id != req.lease_id)
    return core::error{core::errc::conflict, "stale_lease",
                       std::string("the lease does not hold this job (it is ") + to_string(r.state)
                         + ")"};
  const auto until = now + req.visibility_ms;
  r.lease_until = until;
  r.updated_ms = now;
  storage::write_batch batch;
  batch.put(job_key(req.id), encode(r));
  if (auto s = commit_(std::move(batch)); !s) return std::move(s).error();
  leases_.erase({it->second.lease_until, req.id});
  leases_.emplace(until, req.id);
  it->second.lease_until = until;
  return job_view{req.id, render(req.id, r)};
}

core::result<job_view> job_queue::retry(const job_retry& req, std::uint64_t now) {
  auto read_r = read(req.id);
  if (!read_r) return std::move(read_r).error();
  if (!*read_r) return no_such_job();
  auto& r = **read_r;
  if (r.state != job_state::dead)
    return core::error{core::errc::conflict, "wrong_state",
                       std::string("only a dead job can be retried; this one is ")
                         + to_string(r.state)};
  const auto old_state = r.state;
  r.state = job_state::queued;
  r.attempts = 0;
  r.due_ms = now;
  r.updated_ms = now;
  r.seq = next_seq_;
  storage::write_batch batch;
  batch.put(job_key(req.id), encode(r));
  if (auto s = commit_(std::move(batch)); !s) return std::move(s).error();
  ++next_seq_;
  count(queue(r.queue), old_state, -1);
  track(req.id, r, now);
  return job_view{req.id, render(req.id, r)};
}

core::result<job_view> job_queue::cancel(const job_cancel& req, std::uint64_t now) {
  auto read_r = read(req.id);
  if (!read_r) return std::move(read_r).error();
  if (!*read_r) return no_such_job();
  auto& r = **read_r;
  if (r.state != job_state::queued && r.state != job_state::failed)
    return core::error{core::errc::conflict, "wrong_state",
                       std::string("only a job that waits can be cancelled; this one is ")
                         + to_string(r.state)};
  r.state = job_state::cancelled;
  r.updated_ms = now;
  r.due_ms = 0;
  storage::write_batch batch;
  batch.put(job_key(req.id), encode(r));
  if (auto s = commit_(std::move(batch)); !s) return std::move(s).error();
  untrack(req.id);
  track(req.id, r, now);
  if (auto& l = lane_of(r.queue, r.type); l.metrics) l.metrics->cancelled.inc();
  return job_view{req.id, render(req.id, r)};
}

core::result<job_page> job_queue::list(const job_list& req) {
  job_page page;
  std::optional<core::error> failure;
  const auto from = req.after.empty() ? std::string() : job_key(req.after);
  auto s = shard_.scan("j", from, false, [&](std::string_view key, std::string_view value) {
    const auto id = key.substr(1);
    if (id == req.after) return true; // exclusive
    auto r = decode(value);
    if (!r) {
      failure = core::error{core::errc::corrupt, "job record " + std::string(id) + " is corrupt"};
      return false;
    }
    if (r->queue != req.queue || static_cast<std::uint8_t>(r->state) != req.state) return true;
    if (page.jobs.size() == req.limit) {
      page.more = true;
      return false;
    }
    page.jobs.push_back(job_view{std::string(id), render(id, *r)});
    return true;
  });
  if (!s) return std::move(s).error();
  if (failure) return std::move(*failure);
  return page;
}

job_counts job_queue::stats(const queue_stats& req) const {
  job_counts c;
  auto it = queues_.find(req.queue);
  if (it == queues_.end()) return c;
  const auto& q = it->second;
  c.queued = q.counts[static_cast<std::size_t>(job_state::queued)];
  c.running = q.counts[static_cast<std::size_t>(job_state::running)];
  c.succeeded = q.counts[static_cast<std::size_t>(job_state::succeeded)];
  c.failed = q.counts[static_cast<std::size_t>(job_state::failed)];
  c.dead = q.counts[static_cast<std::size_t>(job_state::dead)];
  c.cancelled = q.counts[static_cast<std::size_t>(job_state::cancelled)];
  if (!q.queued_by_age.empty()) c.oldest_queued_ms = q.queued_by_age.begin()->first;
  return c;
}

core::result<void> job_queue::expire(std::uint64_t now_ms) {
  std::vector<std::pair<std::string, job_record>> expired;
  storage::write_batch batch;
  for (auto it = leases_.begin(); it != leases_.end() && it->first <= now_ms; ++it) {
    auto r = read(it->second);
    if (!r) return std::move(r).error();
    if (!*r) return core::error{core::errc::corrupt, "job record " + it->second + " is missing"};
    auto& rec = **r;
    const auto visibility = rec.lease_until - std::min(rec.lease_until, rec.leased_ms);
    fail_attempt(rec, "the lease expired after " + std::to_string(visibility) + " ms", true,
                 now_ms);
    batch.put(job_key(it->second), encode(rec));
    expired.emplace_back(it->second, std::move(rec));
  }
  if (expired.empty()) return core::ok();
  if (auto s = commit_(std::move(batch)); !s) return s;
  for (auto& [id, r] : expired) {
    untrack(id);
    track(id, r, now_ms);
    if (auto& l = lane_of(r.queue, r.type); l.metrics) {
      l.metrics->lease_expired.inc();
      l.metrics->failed.inc();
      if (r.state == job_state::dead) l.metrics->dead.inc();
    }
  }
  return core::ok();
}

std::optional<std::uint64_t> job_queue::next_wakeup() const {
  std::optional<std::uint64_t> at;
  if (!leases_.empty()) at = leases_.begin()->first;
  if (!delayed_.empty()) {
    auto d = delayed_.begin()->first;
    if (!at || d < *at) at = d;
  }
  if (!dirty_.empty()) at = 0; // announcements to make now
  return at;
}

std::vector<std::pair<std::string, std::string>> job_queue::take_announcements(std::uint64_t now) {
  while (!delayed_.empty() && delayed_.begin()->first <= now) {
    mark_dirty(*delayed_.begin()->second);
    delayed_.erase(delayed_.begin());
  }
  std::vector<std::pair<std::string, std::string>> out;
  for (auto* l : dirty_) {
    l->dirty = false;
    if (l->announced || l->waiting.empty() || l->waiting.begin()->due_ms > now) continue;
    l->announced = true;
    out.emplace_back(*l->queue_name, *l->type_name);
  }
  dirty_.clear();
  return out;
}

} // namespace shoal::jobs
