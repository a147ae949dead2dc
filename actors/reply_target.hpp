// SPDX-License-Identifier: Apache-2.0
#pragma once

// Internal to actors/: where one answer goes.

#include <memory>
#include <utility>

#include <caf/typed_response_promise.hpp>

namespace shoal::actors {

/// The destination of one reply: the edge's sink (when the caller is not an actor), or
/// the response promise of a requesting actor. `deliver` is called exactly once.
template <class Reply, class Sink>
struct reply_target {
  std::shared_ptr<Sink> sink;
  caf::typed_response_promise<Reply> promise;

  void deliver(Reply&& reply) {
    if (sink)
      sink->deliver(std::move(reply));
    else
      promise.deliver(std::move(reply));
  }
};

} // namespace shoal::actors
