// SPDX-License-Identifier: Apache-2.0
#include "shard/host_context.hpp"

#include <chrono>
#include <utility>

namespace shoal::shard {

host_context::host_context(std::uint32_t index, storage::store& store, bool sync, ports p,
                           std::uint64_t wall_ms_at_start)
    : index_(index), ports_(std::move(p)), start_(ports_.now()), wall_at_start_(wall_ms_at_start) {
  auto gate = std::make_unique<durability_gate>(
    store.shard(index), store, sync, [this](std::uint64_t seq) { ports_.request_sync(seq); });
  gate_ = gate.get();
  path_ = std::move(gate);
}

host_context::host_context(std::uint32_t index, std::unique_ptr<commit_path> path, ports p,
                           std::uint64_t wall_ms_at_start)
    : index_(index), ports_(std::move(p)), path_(std::move(path)), start_(ports_.now()),
      wall_at_start_(wall_ms_at_start) {}

core::result<void> host_context::commit(storage::write_batch&& batch, commit_done done) {
  return path_->commit(std::move(batch), std::move(done));
}

bool host_context::pending(std::string_view key) const {
  return path_->pending(key);
}

void host_context::after_durable(std::string_view key, barrier_fn fn) {
  path_->after_durable(key, std::move(fn));
}

void host_context::after_all_durable(barrier_fn fn) {
  path_->after_all_durable(std::move(fn));
}

time_point host_context::now() const {
  return ports_.now();
}

std::uint64_t host_context::wall_ms() const {
  const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(now() - start_);
  return wall_at_start_ + static_cast<std::uint64_t>(std::max<std::int64_t>(0, elapsed.count()));
}

timer_id host_context::schedule(time_point due, std::function<void()> fn) {
  return timers_.add(due, std::move(fn));
}

void host_context::cancel(timer_id id) {
  timers_.cancel(id);
}

void host_context::defer(std::function<void()> fn) {
  deferred_.push_back(std::move(fn));
  if (woken_) return;
  woken_ = true;
  ports_.wake();
}

void host_context::report(std::string_view what, const core::error& err) {
  if (ports_.report) ports_.report(what, err);
}

void host_context::on_tick() {
  // Ticks arrive in the order they are due: this is the earliest in flight.
  if (!armed_.empty()) armed_.erase(armed_.begin());
  timers_.run_due(now());
}

void host_context::on_step() {
  woken_ = false;
  // Only what was queued before: work deferred now waits behind the messages that
  // arrived meanwhile.
  auto batch = std::move(deferred_);
  deferred_.clear();
  for (auto& fn : batch)
    fn();
}

void host_context::synced(std::uint64_t durable) {
  if (gate_ != nullptr) gate_->synced(durable);
}

void host_context::sync_failed(const core::error& err) {
  if (gate_ != nullptr) gate_->sync_failed(err);
}

void host_context::finish_step() {
  path_->run_completions();
  if (!deferred_.empty() && !woken_) {
    woken_ = true;
    ports_.wake();
  }
  auto due = timers_.next_due();
  if (!due) return;
  // A tick in flight at or before the earliest timer will do; else arm one.
  if (!armed_.empty() && *armed_.begin() <= *due) return;
  armed_.insert(*due);
  ports_.arm(*due);
}

void host_context::close() {
  path_->stop();
  path_->run_completions();
  timers_ = timer_queue{};
  deferred_.clear();
}

} // namespace shoal::shard
