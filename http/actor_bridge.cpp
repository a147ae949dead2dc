// SPDX-License-Identifier: Apache-2.0
#include "http/actor_bridge.hpp"

#include <random>

#include <caf/send.hpp>

#include "actors/shard_actor.hpp"
#include "jobs/ids.hpp"

namespace shoal::http {

namespace {

/// Random numbers for placing jobs without an idempotency key, one generator per I/O thread.
std::uint64_t random64() {
  thread_local std::mt19937_64 rng{(std::uint64_t{std::random_device{}()} << 32)
                                   ^ std::random_device{}()};
  return rng();
}

/// The first shard from `start` on (wrapping) whose owner `view` sees up; `start` when
/// none is, or when there is no view.
std::uint32_t live_shard(const cluster::cluster_view* view, std::uint32_t start,
                         std::uint32_t count) {
  if (!view || view->shard_owners.size() != count) return start;
  auto up = [view](const std::string& owner) {
    if (owner == view->self) return true;
    for (const auto& m : view->nodes)
      if (m.id == owner) return m.state == cluster::member_state::up;
    return false;
  };
  for (std::uint32_t i = 0; i < count; ++i) {
    const auto s = (start + i) % count;
    if (up(view->shard_owners[s])) return s;
  }
  return start;
}

} // namespace

actor_bridge::actor_bridge(const actors::shard_handles& shards, cluster::shard_map map,
                           const caf::actor& jobs, const cluster::view_board* members)
    : shards_(shards), jobs_(jobs), members_(members), map_(map) {}

actor_bridge::~actor_bridge() = default;

void actor_bridge::submit(actors::doc_request&& request, actors::reply_sink_ptr sink) {
  auto shard = map_.shard_of(request.collection, request.id);
  caf::anon_send(shards_.handles[shard], std::move(request), std::move(sink));
}

std::uint32_t actor_bridge::shard_count() const {
  return static_cast<std::uint32_t>(shards_.handles.size());
}

void actor_bridge::submit_to(std::uint32_t shard, actors::doc_request&& request,
                             actors::reply_sink_ptr sink) {
  caf::anon_send(shards_.handles[shard], std::move(request), std::move(sink));
}

void actor_bridge::cache(actors::cache_request&& request, actors::cache_sink_ptr sink) {
  auto shard = map_.shard_of(actors::cache_space, request.key);
  caf::anon_send(shards_.handles[shard], std::move(request), std::move(sink));
}

void actor_bridge::call(actors::actor_call&& call, actors::call_sink_ptr sink) {
  auto shard = map_.shard_of(call.type, call.id);
  caf::anon_send(shards_.handles[shard], std::move(call), std::move(sink));
}

void actor_bridge::job(jobs::job_request&& request, jobs::job_sink_ptr sink) {
  const auto count = static_cast<std::uint32_t>(shards_.handles.size());
  switch (request.op) {
  case jobs::job_op::lease:
  case jobs::job_op::stats:
    caf::anon_send(jobs_, std::move(request), std::move(sink));
    return;
  case jobs::job_op::enqueue: {
    // The same idempotency key in the same queue must meet its first job: hash it to a
    // shard. Without a key any shard will do, so take a live one: a node that is down
    // makes only keyed enqueues for its shards fail.
    std::uint32_t shard = 0;
    if (request.key.empty()) {
      const auto view = members_ ? members_->read() : nullptr;
      shard = live_shard(view.get(), static_cast<std::uint32_t>(random64() % count), count);
    } else {
      shard = map_.shard_of(request.queue, request.key);
    }
    caf::anon_send(shards_.handles[shard], std::move(request), std::move(sink));
    return;
  }
  default: {
    auto shard = jobs::job_shard(request.id);
    if (!shard || *shard >= count) {
      jobs::job_reply r;
      r.status = jobs::job_status::not_found;
      r.message = "no such job";
      sink->deliver(std::move(r));
      return;
    }
    caf::anon_send(shards_.handles[*shard], std::move(request), std::move(sink));
  }
  }
}

} // namespace shoal::http
