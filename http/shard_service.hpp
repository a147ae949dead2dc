// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>

#include "actors/actor_protocol.hpp"
#include "actors/cache_protocol.hpp"
#include "actors/doc_protocol.hpp"
#include "jobs/protocol.hpp"

namespace shoal::http {

/// What the edge needs from the layers below: hand a request to the shard that owns it
/// and get the reply through the sink, exactly once, on some other thread. Neither call
/// may block. The real one is the actor bridge; tests use fakes.
class shard_service {
public:
  virtual ~shard_service() = default;

  /// A document operation, for the shard of (collection, id).
  virtual void submit(actors::doc_request&& request, actors::reply_sink_ptr sink) = 0;

  /// How many shards the cluster has (the same on every node).
  virtual std::uint32_t shard_count() const = 0;

  /// A collection operation for shard `shard` (< shard_count()): the edge sends one to
  /// every shard and merges the replies (queries, indexes, the change feed).
  virtual void submit_to(std::uint32_t shard, actors::doc_request&& request,
                         actors::reply_sink_ptr sink) = 0;

  /// A TTL cache operation, for the shard of the key.
  virtual void cache(actors::cache_request&& request, actors::cache_sink_ptr sink) = 0;

  /// A virtual actor method call, for the shard of (type, id).
  virtual void call(actors::actor_call&& call, actors::call_sink_ptr sink) = 0;

  /// A job operation. `enqueue`: `request.id` is empty; the service picks the shard, which
  /// assigns the id (the reply's body carries it). `lease` and `stats` span the queue (the
  /// node's job broker); the others go to the shard the job id names. An id that names
  /// no shard is answered `not_found`.
  virtual void job(jobs::job_request&& request, jobs::job_sink_ptr sink) = 0;
};

} // namespace shoal::http
