// SPDX-License-Identifier: Apache-2.0
#include "http/actor_bridge.hpp"

#include <caf/send.hpp>

#include "actors/shard_actor.hpp"

namespace shoal::http {

actor_bridge::actor_bridge(const actors::shard_handles& shards, cluster::shard_map map)
    : shards_(shards), map_(map) {}

actor_bridge::~actor_bridge() = default;

void actor_bridge::submit(actors::doc_request&& request, actors::reply_sink_ptr sink) {
  auto shard = map_.shard_of(request.collection, request.id);
  caf::anon_send(shards_.handles[shard], std::move(request), std::move(sink));
}

void actor_bridge::call(actors::actor_call&& call, actors::call_sink_ptr sink) {
  auto shard = map_.shard_of(call.type, call.id);
  caf::anon_send(shards_.handles[shard], std::move(call), std::move(sink));
}

} // namespace shoal::http
