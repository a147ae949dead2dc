// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include <caf/fwd.hpp>
#include <caf/typed_actor.hpp>

#include "protocol/shard_actor.hpp"
#include "remote/type_ids.hpp"

namespace shoal::remote {

/// Stands in, on this node, for a shard another node owns. It speaks the shard's typed
/// interface (protocol::shard_actor), so the edge, the broker and virtual actors use it
/// like a local shard. One generic handler, generated per request type, forwards the
/// request alone (its reply_to stays here) to the owner's gateway over CAF's middleman
/// and hands the answer back. While the owner is down it answers at once with
/// `shard_unavailable`; a forwarded request that gets no answer within its budget (or
/// that loses its connection) gets the same (an actor call: 504 call_timeout), so nobody
/// hangs. Deadlines are checked by one sweep every 25 ms while requests are in flight,
/// not by a CAF timer per request (which costs a clock-thread wake-up each).
///
/// The membership actor tells it where the owner is: `(peer_update_atom, gateway, up,
/// reason)`.
using remote_shard_actor =
  protocol::shard_actor::extend<caf::reacts_to<peer_update_atom, caf::actor, bool, std::string>,
                                caf::reacts_to<sweep_atom>>;

struct remote_shard_config {
  std::uint32_t shard = 0;
  std::string owner; ///< the owner's node id, for messages
  /// The longest wait for a forwarded request (a change-feed read adds its wait_ms).
  std::chrono::milliseconds failure_timeout{2000};
  std::chrono::milliseconds call_timeout{5000}; ///< actor calls without a budget
};

remote_shard_actor spawn_remote_shard(caf::actor_system& sys, remote_shard_config cfg);

} // namespace shoal::remote
