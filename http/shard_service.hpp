// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "actors/actor_protocol.hpp"
#include "actors/doc_protocol.hpp"

namespace shoal::http {

/// What the edge needs from the layers below: hand a request to the shard that owns it
/// and get the reply through the sink, exactly once, on some other thread. Neither call
/// may block. The real one is the actor bridge; tests use fakes.
class shard_service {
public:
  virtual ~shard_service() = default;

  /// A document operation, for the shard of (collection, id).
  virtual void submit(actors::doc_request&& request, actors::reply_sink_ptr sink) = 0;

  /// A virtual actor method call, for the shard of (type, id).
  virtual void call(actors::actor_call&& call, actors::call_sink_ptr sink) = 0;
};

} // namespace shoal::http
