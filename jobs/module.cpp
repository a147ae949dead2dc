// SPDX-License-Identifier: Apache-2.0
#include "jobs/module.hpp"

#include <chrono>
#include <utility>

namespace shoal::jobs {

namespace {

/// How long a failing expiry waits before it tries again.
constexpr std::uint64_t retry_after_failure_ms = 1000;

} // namespace

module::module(shard::context& ctx, config cfg) :ctx_(ctx), cfg_(std::move(cfg)) {
  auto q = std::make_unique<job_queue>(
    ctx_.store(),
    [this](storage::write_batch&& batch) {
      // Replies wait on the job keys (answer()), not on this commit's completion.
      return ctx_.commit(std::move(batch), [](core::result<void>) {});
    },
    ctx_.index(), cfg_.retry, cfg_.metrics, cfg_.seed);
  if (auto r = q->recover(ctx_.wall_ms(), cfg_.incarnation); !r) {
    load_error_ =
      core::error{core::errc::storage_failed, "the jobs of shard " + std::to_string(ctx_.index())
                                                + " could not be loaded: " + r.error().to_string()};
    return;
  }
  queue_ = std::move(q);
  after_change();
}

module::~module() {
  if (timer_) ctx_.cancel(*timer_);
}

template <class T>
void module::answer(const std::vector<std::string>& ids, core::reply_to<T> to, core::result<T> r,
                    bool wrote) {
  bool held = false;
  for (const auto& id : ids)
    held = held || ctx_.pending(job_key(id));
  if (!held) return to.deliver(std::move(r));
  // The commits of these keys are the latest: waiting for all is waiting for them.
  wrote = wrote && r.ok();
  ctx_.after_all_durable([to, r = std::move(r), wrote](core::result<void> durable) mutable {
    if (durable) return to.deliver(std::move(r));
    // A write that was made and then not confirmed may be kept: unknown, not refused
    // (a client that took a refusal would enqueue the job again).
    if (wrote) return to.deliver(shard::after_write_failed(std::move(durable).error()));
    to.deliver(std::move(durable).error());
  });
}

void module::serve(job_enqueue&& req, core::reply_to<job_enqueued> to) {
  if (load_error_) return to.deliver(*load_error_);
  auto r = queue_->enqueue(req, ctx_.wall_ms());
  // Announce before replying: a worker that leases right after its 202 then finds the
  // broker told already (both messages reach the broker in send order).
  after_change();
  std::vector<std::string> ids;
  if (r) ids.push_back(r->id);
  const bool wrote = r && r->created;
  answer(ids, std::move(to), std::move(r), wrote);
}

void module::serve(job_get&& req, core::reply_to<job_view> to) {
  if (load_error_) return to.deliver(*load_error_);
  answer({req.id}, std::move(to), queue_->get(req));
}

void module::serve(job_lease&& req, core::reply_to<lease_grant> to) {
  if (load_error_) return to.deliver(*load_error_);
  auto r = queue_->lease(req, ctx_.wall_ms());
  after_change();
  std::vector<std::string> ids;
  if (r)
    for (const auto& j : r->jobs)
      ids.push_back(j.id);
  answer(ids, std::move(to), std::move(r), !ids.empty());
}

void module::serve(job_complete&& req, core::reply_to<job_view> to) {
  if (load_error_) return to.deliver(*load_error_);
  auto id = req.id;
  auto r = queue_->complete(req, ctx_.wall_ms());
  after_change();
  answer({id}, std::move(to), std::move(r), true);
}

void module::serve(job_fail&& req, core::reply_to<job_view> to) {
  if (load_error_) return to.deliver(*load_error_);
  auto id = req.id;
  auto r = queue_->fail(req, ctx_.wall_ms());
  after_change();
  answer({id}, std::move(to), std::move(r), true);
}

void module::serve(job_extend&& req, core::reply_to<job_view> to) {
  if (load_error_) return to.deliver(*load_error_);
  auto r = queue_->extend(req, ctx_.wall_ms());
  after_change();
  answer({req.id}, std::move(to), std::move(r), true);
}

void module::serve(job_retry&& req, core::reply_to<job_view> to) {
  if (load_error_) return to.deliver(*load_error_);
  auto r = queue_->retry(req, ctx_.wall_ms());
  after_change();
  answer({req.id}, std::move(to), std::move(r), true);
}

void module::serve(job_cancel&& req, core::reply_to<job_view> to) {
  if (load_error_) return to.deliver(*load_error_);
  auto r = queue_->cancel(req, ctx_.wall_ms());
  after_change();
  answer({req.id}, std::move(to), std::move(r), true);
}

void module::serve(job_list&& req, core::reply_to<job_page> to) {
  if (load_error_) return to.deliver(*load_error_);
  auto r = queue_->list(req);
  std::vector<std::string> ids;
  if (r)
    for (const auto& j : r->jobs)
      ids.push_back(j.id);
  answer(ids, std::move(to), std::move(r), false);
}

void module::serve(queue_stats&& req, core::reply_to<job_counts> to) {
  if (load_error_) return to.deliver(*load_error_);
  to.deliver(queue_->stats(req));
}

void module::after_change() {
  const auto now = ctx_.wall_ms();
  auto ready = queue_->take_announcements(now);
  if (cfg_.announce)
    for (const auto& [queue, type] : ready)
      cfg_.announce(queue, type);
  auto next = queue_->next_wakeup();
  if (!next || (timer_ && wakeup_ms_ <= *next)) return;
  if (timer_) ctx_.cancel(*timer_);
  wakeup_ms_ = *next;
  const auto wait = std::chrono::milliseconds(*next > now ? *next - now : 0);
  timer_ = ctx_.schedule(ctx_.now() + wait, [this] { on_timer(); });
}

void module::on_timer() {
  timer_.reset();
  if (auto r = queue_->expire(ctx_.wall_ms()); !r) {
    ctx_.report("expiring job leases", r.error());
    // The store fails: try again after a pause, not at once in a loop (the leases are
    // still due, so after_change() would arm the timer for now).
    wakeup_ms_ = ctx_.wall_ms() + retry_after_failure_ms;
    timer_ = ctx_.schedule(ctx_.now() + std::chrono::milliseconds(retry_after_failure_ms),
                           [this] { on_timer(); });
    return;
  }
  after_change();
}

} // namespace shoal::jobs
