// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <caf/fwd.hpp>

#include "config/settings.hpp"
#include "protocol/broker.hpp"
#include "protocol/shard_actor.hpp"

namespace shoal::jobs {
class job_metrics;
}

namespace shoal::workers {

class handler_registry;

struct broker_config {
  /// Every shard of the cluster (local or stub). May be filled after the spawn, but before
  /// `start_broker`: the broker holds every message until then.
  const protocol::shard_handles* shards = nullptr;
  std::uint32_t shard_count = 0;
  std::vector<std::uint32_t> local; ///< the shards this node owns
  /// Replicated shards: a local replica announces its work only while it leads, so every
  /// shard is also asked through its stub (which finds the leader), as other nodes' are.
  bool ask_all = false;
  /// This node's own replicas by shard (a null handle: none), when `shards` holds stubs
  /// that route to a leader: a shard that announced work is leased from the replica that
  /// announced it, never from another node the stub may think leads. Null: `shards`.
  const std::vector<protocol::shard_actor>* replicas = nullptr;
  const handler_registry* handlers = nullptr; ///< in-process handlers; may be null
  config::jobs_settings settings;
  std::string incarnation;              ///< this process; tags the leases of in-process workers
  jobs::job_metrics* metrics = nullptr; ///< its lease_waiters gauge; may be null
};

/// The node's job broker: one actor per node, between workers and the shards' queues.
///
/// - Local shards tell it `(job_ready_atom, queue, type, shard)` when a (queue, type) gets
///   due jobs; it remembers which shards have work, and forgets a shard when a lease
///   reply says it has no more, or the replica refuses because it no longer leads (its
///   successor announces afresh). Any other failed lease (a store that fails, say) leaves
///   the shard's work where it was: the shard is asked again after a pause, since it
///   does not announce work it announced already.
/// - In-process workers: per queue, up to `jobs.workers` (or the queue's own `workers`)
///   jobs run at once in the registered handler actors; the broker leases them from its
///   local shards (leases owned by this incarnation) and reports complete or fail.
/// - External workers: `queue_lease` from the edge. The broker leases from local shards
///   with work first, then asks the other nodes' shards once; with nothing found it
///   parks the request (no thread waits) until a local shard announces work, asking the
///   other nodes again every 250 ms, or until `wait_ms` ends.
/// - `drain_atom`: the node drains; parked long polls answer with what they have
///   (usually nothing) at once, and new ones do not wait.
/// Every timer is on the actor clock.
protocol::broker_actor spawn_broker(caf::actor_system& sys, broker_config cfg);

/// Lets the broker go: `cfg.shards` is complete. Messages that arrived before (local
/// shards announce their work as soon as they have loaded it) are served now.
void start_broker(const protocol::broker_actor& broker);

/// The node drains (see drain_atom above).
void drain_broker(const protocol::broker_actor& broker);

} // namespace shoal::workers
