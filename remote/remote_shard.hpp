// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <caf/fwd.hpp>
#include <caf/typed_actor.hpp>

#include "protocol/shard_actor.hpp"
#include "remote/type_ids.hpp"

namespace shoal::remote {

/// Stands in, on this node, for a shard another node owns, or for a replicated shard
/// whose leader may be anywhere. It speaks the shard's typed interface
/// (protocol::shard_actor), so the edge, the broker and virtual actors use it like a
/// local shard. One generic handler, generated per request type, forwards the request
/// alone (its reply_to stays here) to the target's gateway over CAF's middleman (or to
/// this node's own replica) and hands the answer back. While no target is reachable it
/// answers at once with `shard_unavailable`; a forwarded request that gets no answer
/// within its budget (or that loses its connection) gets the same, or 504
/// `outcome_unknown` for a write (an actor call: 504 call_timeout), so nobody hangs.
/// Deadlines are checked by one sweep every 25 ms while requests are in flight, not by
/// a CAF timer per request (which costs a clock-thread wake-up each).
///
/// A replicated shard has several targets, its replicas: requests go to the one that
/// answered last (the leader, as far as the stub knows). A replica that refuses with
/// `not_leader` or `leader_not_ready` changed nothing, so the request goes to the next
/// replica, once around at most; then the refusal is the answer (503, retry later).
///
/// The membership actor tells it where each target's node is: `(peer_update_atom,
/// node, gateway, up, reason)`.
using remote_shard_actor = protocol::shard_actor::extend<
  caf::reacts_to<peer_update_atom, std::string, caf::actor, bool, std::string>,
  caf::reacts_to<sweep_atom>>;

struct remote_shard_config {
  std::uint32_t shard = 0;
  std::string owner; ///< the owner's node id (a shard with one copy)
  /// The longest wait for a forwarded request (a change-feed read adds its wait_ms).
  std::chrono::milliseconds failure_timeout{2000};
  std::chrono::milliseconds call_timeout{5000}; ///< actor calls without a budget
  /// A replicated shard: its replicas' node ids, the preferred leader first (`owner` is
  /// then not used), and this node's own replica when it holds one (with `self`, its
  /// node id, among `replicas`).
  std::vector<std::string> replicas;
  std::string self;
  protocol::shard_actor local;
};

remote_shard_actor spawn_remote_shard(caf::actor_system& sys, remote_shard_config cfg);

} // namespace shoal::remote
