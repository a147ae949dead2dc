// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "actors/doc_protocol.hpp"

namespace shoal::http {

/// What the edge needs from the layers below for documents: hand a request to the shard
/// that owns it and get the reply through `sink`, exactly once, on some other thread.
/// `submit` must not block. The real one is the actor bridge; tests use fakes.
class doc_service {
public:
  virtual ~doc_service() = default;
  virtual void submit(actors::doc_request&& request, actors::reply_sink_ptr sink) = 0;
};

} // namespace shoal::http
