// SPDX-License-Identifier: Apache-2.0
#include "replication/replicated_path.hpp"

#include <optional>

#include "replication/metrics.hpp"
#include <utility>

namespace shoal::replication {

using core::errc;
using core::error;

replicated_path::replicated_path(replica& rep, storage::shard_store& shard, metrics* counted)
    : rep_(rep), overlay_(shard), counted_(counted),
      self_(std::make_shared<replicated_path*>(this)) {}

replicated_path::~replicated_path() {
  stop();
  *self_ = nullptr;
}

error replicated_path::refusal() const {
  if (!rep_.leader()) return rep_.not_leader();
  return error{errc::shard_unavailable, "leader_not_ready",
               "the shard's new leader is still catching up with its log"};
}

core::result<void> replicated_path::commit(storage::write_batch&& batch, shard::commit_done done) {
  if (stopped_) return error{errc::shutting_down, "the shard stopped"};
  if (rep_.leader() && !serving()) return refusal();
  // The replica answers a proposal it refuses inside propose(); that is this commit's
  // error (nothing was written), not a completion.
  struct call {
    bool inside = true;
    std::uint64_t index = 0;
    std::optional<error> refused;
  };
  auto c = std::make_shared<call>();
  std::weak_ptr<replicated_path*> self = self_;
  const auto index = rep_.propose(batch, [c, self](core::result<void> r) {
    if (c->inside) {
      if (!r) c->refused = r.error();
      return;
    }
    if (auto p = self.lock(); p && *p != nullptr) (*p)->finished(c->index, std::move(r));
  });
  c->inside = false;
  if (index == 0) return c->refused ? *c->refused : error{errc::internal, "nothing was proposed"};
  c->index = index;
  proposed_this_step_ = index;
  overlay_.add(index, batch);
  writes_.emplace(index, write{std::move(done), std::chrono::steady_clock::now(), {}});
  return core::ok();
}

void replicated_path::finished(std::uint64_t index, core::result<void> r) {
  auto it = writes_.find(index);
  if (it == writes_.end()) return; // stop() answered it
  auto done = std::move(it->second.done);
  auto waiting = std::move(it->second.waiting);
  const auto proposed = it->second.proposed;
  writes_.erase(it);
  if (r) {
    overlay_.applied(index);
    if (counted_ != nullptr)
      counted_->commit_seconds.observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - proposed).count());
  } else {
    // Leadership was lost: every later proposal fails too, and none of them is ours to
    // show any more.
    overlay_.clear();
  }
  // Answers that waited for this entry: a failure means leadership was lost before the
  // answer was confirmed, which refuses a read (it changed nothing) and leaves a write's
  // outcome unknown (shard::after_write_failed).
  const auto confirmed =
    r ? core::ok()
      : core::result<void>{error{errc::shard_unavailable, "not_leader",
                                 "leadership was lost before the answer was confirmed"}};
  if (done) done(std::move(r));
  for (auto& fn : waiting)
    fn(confirmed);
}

void replicated_path::poll() {
  if (stopped_ || !rep_.leader()) return;
  const auto term = rep_.term();
  if (ready_term_ == term || catching_up_ == term) return;
  catching_up_ = term;
  std::weak_ptr<replicated_path*> self = self_;
  rep_.read([self, term](core::result<void> r) {
    auto p = self.lock();
    if (!p || *p == nullptr) return;
    auto& path = **p;
    if (path.catching_up_ == term) path.catching_up_ = 0;
    if (r && path.rep_.term() == term) path.ready_term_ = term;
  });
}

void replicated_path::after_durable(std::string_view, shard::barrier_fn fn) {
  // A barrier is proposed after every entry proposed so far: it covers the key's.
  after_all_durable(std::move(fn));
}

void replicated_path::after_all_durable(shard::barrier_fn fn) {
  if (stopped_) return fn(error{errc::shutting_down, "the shard stopped"});
  // What the answer carries was read before this call, from a shard that may lack
  // entries an earlier leader committed: the barrier would confirm a stale answer.
  if (rep_.leader() && !serving()) return fn(refusal());
  if (proposed_this_step_ != 0) {
    if (auto it = writes_.find(proposed_this_step_); it != writes_.end()) {
      ++barriers_saved_;
      it->second.waiting.push_back(std::move(fn));
      return;
    }
  }
  rep_.read(std::move(fn));
}

void replicated_path::stop() {
  if (stopped_) return;
  stopped_ = true;
  rep_.close(error{errc::shutting_down, "the shard stopped"});
  auto writes = std::move(writes_);
  writes_.clear();
  overlay_.clear();
  for (auto& [index, w] : writes) {
    for (auto& fn : w.waiting)
      fn(error{errc::shutting_down, "the shard stopped"});
    if (w.done)
      w.done(error{errc::outcome_unknown,
                   "the shard stopped before the write was committed: it may still be"});
  }
}

} // namespace shoal::replication
