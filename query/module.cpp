// SPDX-License-Identifier: Apache-2.0
#include "query/module.hpp"

#include <chrono>
#include <utility>

#include "query/metrics.hpp"
#include "query/query_scan.hpp"
#include "query/shard_index.hpp"
#include "query/values.hpp"

namespace shoal::query {

namespace {

core::error no_such_index() {
  return {core::errc::not_found, "no such index"};
}

/// How long a failing build waits before it tries again, rather than spin on a failing store.
constexpr std::chrono::seconds build_retry{1};

} // namespace

module::module(shard::context& ctx, config cfg) : ctx_(ctx), cfg_(cfg) {
  auto opened = shard_index::open(ctx_.store());
  if (!opened) {
    load_error_ = core::error{core::errc::storage_failed,
                              "the indexes of shard " + std::to_string(ctx_.index())
                                + " could not be loaded: " + opened.error().to_string()};
    return;
  }
  index_ = std::move(*opened);
  schedule_build(); // a build a restart interrupted goes on
}

module::~module() {
  if (retry_timer_) ctx_.cancel(*retry_timer_);
}

void module::serve(index_create&& req, core::reply_to<index_state> to) {
  if (load_error_) return to.deliver(*load_error_);
  if (!valid_path(req.field))
    return to.deliver(core::error{core::errc::invalid_argument, "invalid_field",
                                  "\"" + req.field + "\" is not a field path"});
  auto batch = index_->plan_create(req.collection, req.field);
  if (!batch) return to.deliver(index_state{*index_->find(req.collection, req.field), false});
  index_progress fresh;
  fresh.field = req.field;
  // A 201 is durable: the reply waits for the commit.
  auto committed = ctx_.commit(std::move(*batch), [to, fresh](core::result<void> r) mutable {
    if (!r) return to.deliver(std::move(r).error());
    to.deliver(index_state{fresh, true});
  });
  if (!committed) return to.deliver(std::move(committed).error());
  index_->created(req.collection, req.field);
  schedule_build();
}

void module::serve(index_get&& req, core::reply_to<index_progress> to) {
  if (load_error_) return to.deliver(*load_error_);
  const auto* p = index_->find(req.collection, req.field);
  if (!p) return to.deliver(no_such_index());
  to.deliver(*p);
}

void module::serve(index_list&& req, core::reply_to<index_listing> to) {
  if (load_error_) return to.deliver(*load_error_);
  to.deliver(index_listing{index_->list(req.collection)});
}

void module::serve(index_drop&& req, core::reply_to<index_dropped> to) {
  if (load_error_) return to.deliver(*load_error_);
  auto batch = index_->plan_drop(req.collection, req.field);
  if (!batch) return to.deliver(no_such_index());
  auto committed = ctx_.commit(std::move(*batch), [to](core::result<void> r) mutable {
    if (!r) return to.deliver(std::move(r).error());
    to.deliver(index_dropped{});
  });
  if (!committed) return to.deliver(std::move(committed).error());
  index_->dropped(req.collection, req.field);
}

void module::serve(query_run&& req, core::reply_to<shard_hits> to) {
  if (load_error_) return to.deliver(*load_error_);
  auto scan = query_scan::start(*index_, req.collection, std::move(req.spec), false,
                                ctx_.store().snapshot());
  if (!scan) return to.deliver(std::move(scan).error());
  run(std::shared_ptr<query_scan>(std::move(*scan)), std::move(to));
}

void module::serve(query_explain&& req, core::reply_to<shard_plan> to) {
  if (load_error_) return to.deliver(*load_error_);
  auto scan = query_scan::start(*index_, req.collection, std::move(req.spec), true,
                                ctx_.store().snapshot());
  if (!scan) return to.deliver(std::move(scan).error());
  run(std::shared_ptr<query_scan>(std::move(*scan)), std::move(to));
}

template <class T>
void module::run(std::shared_ptr<query_scan> scan, core::reply_to<T> to) {
  auto done = scan->step(shard::scan_step_keys, shard::scan_step_bytes);
  if (!done) return to.deliver(std::move(done).error());
  if (!*done) {
    // The rest later, behind whatever arrived meanwhile.
    return ctx_.defer([this, scan, to]() mutable { run(std::move(scan), std::move(to)); });
  }
  // The answer may include writes still waiting for their fsync.
  ctx_.after_all_durable([scan, to](core::result<void> durable) mutable {
    if (!durable) return to.deliver(std::move(durable).error());
    if constexpr (std::is_same_v<T, shard_plan>)
      to.deliver(scan->take_plan());
    else
      to.deliver(scan->take_hits());
  });
}

core::result<void> module::prepare(const shard::doc_change& c, storage::write_batch& batch) {
  // Writes need the indexes: one that skipped its index entries would leave them wrong
  // for good once the definitions load again (the documents module refuses writes then).
  if (load_error_) return *load_error_;
  if (index_->indexed(c.collection))
    index_->plan_document(batch, c.collection, c.id, c.before, c.after);
  return core::ok();
}

void module::applied(const shard::doc_change&) {}

void module::schedule_build() {
  if (build_scheduled_ || !index_ || !index_->building()) return;
  build_scheduled_ = true;
  // Behind whatever is queued: builds never hold up requests for long.
  ctx_.defer([this] { build_step(); });
}

void module::build_step() {
  build_scheduled_ = false;
  auto retry_later = [this](const core::error& err) {
    ctx_.report("an index build step", err);
    build_scheduled_ = true;
    retry_timer_ = ctx_.schedule(ctx_.now() + build_retry, [this] {
      retry_timer_.reset();
      build_step();
    });
  };
  auto step = index_->plan_build_step(cfg_.build_batch);
  if (!step) return retry_later(step.error());
  if (!*step) return;
  auto& s = **step;
  auto committed = ctx_.commit(std::move(s.batch), [](core::result<void>) {});
  if (!committed) return retry_later(committed.error());
  index_->built(s);
  if (cfg_.metrics) cfg_.metrics->index_build_docs.inc(s.visited);
  schedule_build();
}

} // namespace shoal::query
