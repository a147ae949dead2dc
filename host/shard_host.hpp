// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <caf/fwd.hpp>

#include "actors/hosting.hpp"
#include "cache/module.hpp"
#include "changes/module.hpp"
#include "documents/module.hpp"
#include "host/wal_syncer.hpp"
#include "jobs/module.hpp"
#include "protocol/broker.hpp"
#include "protocol/shard_actor.hpp"
#include "query/module.hpp"
#include "replication/group.hpp"

namespace spdlog {
class logger;
} // namespace spdlog

namespace shoal::storage {
class store;
} // namespace shoal::storage

namespace shoal::host {

/// A replicated shard (docs/replication.md): the group this host's replica belongs to,
/// and how its messages reach the other replicas.
struct replication_config {
  replication::group_config group;
  /// Sends one of the group's messages to the replica with server id `to` at `address`
  /// (its node); it arrives there through deliver_raft. May lose it, never reorders it
  /// into a call.
  std::function<void(std::uint64_t to, const std::string& address, std::string bytes)> send;
  /// Where the replica reports how it stands (its role at once, its indexes every
  /// tick); may be null. Must outlive the actor.
  cluster::replica_board* board = nullptr;
};

/// What a shard host hosts. Module settings are the modules' own config structs.
struct host_config {
  std::uint32_t index = 0;         ///< which shard of `store`
  storage::store* store = nullptr; ///< must outlive the actor
  bool sync = false;               ///< storage.sync: acknowledge after fsync (group commit)
  wal_syncer_actor syncer;         ///< required when `sync`
  documents::module::config documents;
  query::module::config query;
  changes::module::config changes;
  cache::module::config cache;
  jobs::module::config jobs; ///< `announce` is set by the host (to `broker`)
  actors::hosting::config actors;
  /// Receives (job_ready_atom, queue, type, shard) when a (queue, type) of this shard gets
  /// due jobs; may be empty (nobody runs jobs on this node).
  protocol::broker_actor broker;
  /// Every shard of the node (for calls between virtual actors); must outlive the actor.
  const protocol::shard_handles* peers = nullptr;
  std::chrono::milliseconds call_timeout{5000}; ///< actors.call_timeout_ms
  /// Where failures of background work go (index builds, trims); may be null.
  std::shared_ptr<spdlog::logger> log;
  /// Set: the shard is one replica of a Raft group. Its writes are proposed and
  /// answered once committed on a quorum; it serves only while it leads (modules are
  /// built when it starts serving and dropped when it stops leading) and refuses
  /// everything else with 503 shard_unavailable (`not_leader`, `leader_not_ready`).
  /// Needs `syncer` (the log is always fsynced), whatever `sync` says.
  std::optional<replication_config> replication;
};

/// Spawns the host of shard `cfg.index`: the single writer of that shard. It owns the
/// store handle, the commit path, the timers and the clock of the shard, composes
/// the modules (documents, indexes and queries, the change feed, the TTL cache, jobs,
/// virtual actors) and hands each request to the module that serves it. See
/// docs/architecture.md "The middle".
protocol::shard_actor spawn_shard_host(caf::actor_system& sys, host_config cfg);

/// Asks the replicated shard host `host` for its replica's digest (applied index, key
/// count, checksum: cluster::replica_digest), whether it leads or not; `to` gets it, or
/// 503 shard_unavailable when the replica is not running. It reads the whole shard on
/// the host's thread: an admin read for comparing replicas, not for a hot path.
void ask_digest(const protocol::shard_actor& host, core::reply_to<cluster::replica_digest> to);

/// Hands a message of the shard's group, sent by another replica, to `host`.
void deliver_raft(const protocol::shard_actor& host, std::string bytes);

} // namespace shoal::host
