// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/actor_protocol.hpp"
#include "actors/cache_protocol.hpp"
#include "actors/doc_protocol.hpp"
#include "actors/type_ids.hpp"
#include "actors/wal_syncer.hpp"
#include "jobs/job_queue.hpp"
#include "jobs/protocol.hpp"

namespace shoal::storage {
class store;
} // namespace shoal::storage

namespace shoal::actors {

/// The single writer of one shard: every read and write of the shard's documents goes
/// through it, so versions need no locks.
///
/// - `doc_request` → `doc_reply`: request/response for actors (tests, later remote nodes).
/// - `(doc_request, reply_sink_ptr)`: for the HTTP edge, which is not an actor; the reply
///   goes to the sink, exactly once.
///
/// - `actor_call` → `actor_reply`, and `(actor_call, call_sink_ptr)`: a method call on a
///   virtual actor this shard owns. The shard activates the actor on its first call (one
///   CAF actor per active (type, id)), forwards calls in arrival order, and passivates it
///   when idle or when the shard holds too many.
///
/// - `job_request` → `job_reply`, and `(job_request, job_sink_ptr)`: the durable jobs of
///   this shard (jobs::job_queue). The shard expires leases and wakes delayed jobs on its
///   own timer, and tells the node's job broker when a (queue, type) gets due jobs.
///
/// - `cache_request` → `cache_reply`, and `(cache_request, cache_sink_ptr)`: the TTL cache
///   entries whose key hashes to this shard (memory only, LRU within the shard's share of
///   cache.max_bytes).
///
/// Documents also feed the shard's secondary indexes (same WriteBatch), its read cache
/// and its change log; see the doc_op values for the collection operations.
///
/// A reply leaves only when the write it reports is durable in the configured mode:
/// immediately after the WAL write with sync off; after the WAL syncer's fsync with sync
/// on. Reads of a document whose last write still waits for that fsync wait with it, so
/// nobody observes a write that a crash could still take back.
using shard_actor = caf::typed_actor<
  caf::replies_to<doc_request>::with<doc_reply>, caf::reacts_to<doc_request, reply_sink_ptr>,
  caf::replies_to<actor_call>::with<actor_reply>, caf::reacts_to<actor_call, call_sink_ptr>,
  caf::reacts_to<idle_tick_atom>, caf::replies_to<jobs::job_request>::with<jobs::job_reply>,
  caf::reacts_to<jobs::job_request, jobs::job_sink_ptr>, caf::reacts_to<job_tick_atom>,
  caf::replies_to<cache_request>::with<cache_reply>, caf::reacts_to<cache_request, cache_sink_ptr>,
  caf::reacts_to<index_step_atom>, caf::reacts_to<shard_tick_atom>>;

struct shard_handles;
class actor_registry;
class actor_metrics;

/// Settings of the virtual actors a shard hosts.
struct hosting_config {
  const actor_registry* registry = nullptr; ///< the node's types; nullptr hosts none
  actor_metrics* metrics = nullptr;         ///< may be null
  const shard_handles* peers = nullptr;     ///< every shard of the node, for actor calls
  std::chrono::milliseconds call_timeout{5000};
  std::chrono::milliseconds idle_timeout{300000};
  std::uint32_t max_active = 100000; ///< per shard; the least recently used goes first
};

/// Settings of the jobs a shard keeps.
struct job_hosting {
  jobs::retry_policy retry;
  jobs::job_metrics* metrics = nullptr; ///< may be null
  /// Receives `(job_ready_atom, queue, type, shard)` when a (queue, type) of this shard
  /// gets due jobs; may be null (nobody runs jobs on this node).
  caf::actor broker;
  /// This process's incarnation: in-process leases of any other one died with it.
  std::string incarnation;
};

struct shard_metrics;

/// Settings of the shard's document read cache, TTL cache, indexes and change log.
struct data_hosting {
  std::size_t doc_cache_bytes = 0;         ///< this shard's share of storage.doc_cache_bytes
  std::size_t ttl_cache_bytes = 1u << 20;  ///< this shard's share of cache.max_bytes
  std::uint32_t index_build_batch = 500;   ///< query.index_build_batch
  bool change_log = true;                  ///< changes.enabled: write change-log events
  std::uint64_t change_retention = 100000; ///< changes.retention_events
  std::uint64_t change_retention_ms = 0;   ///< changes.retention_s in ms; 0: no age limit
  shard_metrics* metrics = nullptr;        ///< may be null
};

struct shard_config {
  std::uint32_t index = 0;         ///< which shard of `store`
  storage::store* store = nullptr; ///< must outlive the actor
  bool sync = false;               ///< storage.sync: acknowledge after fsync (group commit)
  wal_syncer_actor syncer;         ///< required when `sync`
  hosting_config hosting;
  job_hosting jobs;
  data_hosting data;
};

/// Spawns the actor of shard `cfg.index`.
shard_actor spawn_shard(caf::actor_system& sys, shard_config cfg);

/// The shard actors of a node, indexed by shard number.
struct shard_handles {
  std::vector<shard_actor> handles;
};

} // namespace shoal::actors
