// SPDX-License-Identifier: Apache-2.0
#include "http/actor_bridge.hpp"

#include <random>

#include <caf/send.hpp>

#include "actors/shard_actor.hpp"
#include "jobs/ids.hpp"

namespace shoal::http {

namespace {

/// Random numbers for job ids, one generator per I/O thread.
std::uint64_t random64() {
  thread_local std::mt19937_64 rng{(std::uint64_t{std::random_device{}()} << 32)
                                   ^ std::random_device{}()};
  return rng();
}

} // namespace

actor_bridge::actor_bridge(const actors::shard_handles& shards, cluster::shard_map map,
                           const caf::actor& jobs)
    : shards_(shards), jobs_(jobs), map_(map) {}

actor_bridge::~actor_bridge() = default;

void actor_bridge::submit(actors::doc_request&& request, actors::reply_sink_ptr sink) {
  auto shard = map_.shard_of(request.collection, request.id);
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
    // shard. Without a key any shard will do.
    const auto rnd = random64();
    const auto shard = request.key.empty() ? static_cast<std::uint32_t>(rnd % count)
                                           : map_.shard_of(request.queue, request.key);
    request.id = jobs::make_job_id(shard, random64());
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
