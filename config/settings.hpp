// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace shoal::config {

/// [http] — the Beast edge.
struct http_settings {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;                ///< 0 picks a free port (logged at start-up)
  unsigned threads = 0;                     ///< I/O threads; 0 = CPUs in the affinity mask
  std::size_t max_body_bytes = 1u << 20;    ///< larger bodies get 413
  std::size_t max_header_bytes = 16u << 10; ///< larger header blocks get 431
  std::uint32_t header_timeout_ms = 10'000; ///< time to receive a whole request
  std::uint32_t idle_timeout_ms = 60'000;   ///< keep-alive connection with no request
  std::uint32_t request_timeout_ms = 5'000; ///< time for a shard to answer (then 504)
  std::uint32_t drain_timeout_ms = 10'000;  ///< in-flight requests get this long at shutdown
  /// At shutdown, a connection waiting for a request waits this long for one more (its
  /// client may have sent it already), answered with `Connection: close`.
  std::uint32_t drain_grace_ms = 250;
  std::uint32_t max_connections = 10'000; ///< more close the idle longest, or get 503
  /// Open connections per client address; more get 503 and are closed. 0 = no limit (the
  /// default: behind a load balancer every connection has the balancer's address).
  std::uint32_t max_connections_per_client = 0;
  /// Requests at the shards at once: an adaptive limit between these two follows the
  /// measured latency (docs/architecture.md "Overload"); equal values fix it, and a
  /// floor above the ceiling is lowered to it. Probes,
  /// change streams and lease long polls are not counted.
  std::uint32_t min_inflight = 64;
  std::uint32_t max_inflight = 8'192;
  /// Requests over the limit wait, their bodies unread, this many at most (more get 503
  /// at once; 0: none waits) ...
  std::uint32_t max_queued = 10'000;
  /// ... and this long at most (then 503); a request the queue would keep longer, by its
  /// recent pace, gets 503 at once.
  std::uint32_t queue_timeout_ms = 1'000;
  /// After a 503 from admission control on a kept-alive connection, its next request is
  /// not read for this long (the Retry-After it was told): a client that retries at once
  /// waits in TCP instead of costing the node another refusal. 0: read at once.
  std::uint32_t hold_refused_ms = 1'000;
  /// Origins whose browser pages may read answers (CORS): "*" or a comma list such as
  /// "https://app.example, http://localhost:3000"; empty: no CORS fields (the default).
  std::string cors_origins;
};

/// [storage] — RocksDB.
struct storage_settings {
  std::string path = "./data";
  bool sync = false; ///< fsync (group commit) before acknowledging
  std::size_t block_cache_bytes = 64u << 20;
  std::size_t write_buffer_bytes = 8u << 20;         ///< memtable per shard
  std::size_t total_write_buffer_bytes = 128u << 20; ///< all memtables of the node; 0 = unbounded
  /// Read cache of documents in the shard actors, the node's total (split evenly over its
  /// shards); 0 turns it off.
  std::size_t doc_cache_bytes = 64u << 20;
};

/// [cache] — the TTL cache for session-like data (memory only, docs/caching.md).
struct cache_settings {
  std::size_t max_bytes = 256u << 20;     ///< per node, split over its shards; LRU past it
  std::size_t max_value_bytes = 1u << 20; ///< larger values get 413
  std::uint32_t default_ttl_s = 3'600;    ///< ttl of a PUT without ?ttl=
  std::uint32_t max_ttl_s = 2'592'000;    ///< longest ttl accepted (30 days); more is 400
};

/// [query] — secondary indexes and queries (docs/queries.md).
struct query_settings {
  std::uint32_t default_limit = 100;     ///< limit of a query that names none
  std::uint32_t max_limit = 1'000;       ///< larger limits get 400
  std::uint32_t index_build_batch = 500; ///< documents one index build step reads
};

/// [changes] — the change feed (docs/changes.md).
struct changes_settings {
  /// Write an event per document write (in its batch). Off, writes are cheaper and the
  /// change-feed route answers 404.
  bool enabled = true;
  /// Events kept per collection per shard; older ones are trimmed as new ones come.
  std::uint64_t retention_events = 100'000;
  /// Events older than this are trimmed too; 0 keeps them until the count trims them.
  std::uint32_t retention_s = 86'400;
  /// Bytes a change stream may have queued for a slow client before it is cut (the
  /// client resumes from its last event id). Half of it bounds a replay's read-ahead; it
  /// is also the stream socket's send buffer.
  std::size_t max_buffer_bytes = 1u << 20;
  std::uint32_t heartbeat_ms = 15'000; ///< an idle stream gets a comment line this often
};

/// One member of `cluster.nodes` (`[[cluster.nodes]]` in TOML).
struct node_address {
  std::string id;               ///< a name (letters, digits, '-', '_', '.'); unique
  std::string host;             ///< the interface both ports bind to, and peers dial
  std::uint16_t http_port = 0;  ///< where this node's HTTP edge listens
  std::uint16_t actor_port = 0; ///< where this node's CAF middleman listens for peers

  friend bool operator==(const node_address& a, const node_address& b) {
    return a.id == b.id && a.host == b.host && a.http_port == b.http_port
           && a.actor_port == b.actor_port;
  }
};

/// [node] — who this process is.
struct node_settings {
  std::string id = "local"; ///< must name an entry of `cluster.nodes` when there are any
  /// Run every thread of the node under Linux's SCHED_BATCH: a thread woken by another
  /// does not preempt it, so on a busy core the I/O threads and the CAF workers hand
  /// requests over in batches instead of a context switch per request
  /// (docs/architecture.md "Threads"). Off: the default policy.
  bool batch_scheduling = true;
};

/// [cluster] — the shard map and the members. With no `nodes`, the node runs alone.
struct cluster_settings {
  std::uint32_t shards = 64;
  std::vector<node_address> nodes; ///< every member, this node included; empty: one node
  std::string secret;              ///< shared by all members; required with `nodes`
  /// Mutual TLS on the links between members (docs/cluster.md "Encrypted links"): this
  /// member's certificate chain and private key (PEM files) and the cluster CA that signs
  /// every member's certificate. All three or none; none: the links are plain TCP,
  /// authenticated by the secret alone.
  std::string tls_certificate;
  std::string tls_key;
  std::string tls_ca;
  std::uint32_t heartbeat_ms = 250;         ///< a peer is pinged this often
  std::uint32_t failure_timeout_ms = 2'000; ///< no answer this long: the peer is down
  std::uint32_t reconnect_max_ms = 2'000;   ///< ceiling of the reconnect backoff
  /// Copies of every shard, each a replica of the shard's Raft group on one member
  /// (docs/replication.md); 1: each shard lives on its owner alone. At most the number of
  /// members; more than 1 only in a cluster. 0 until loaded: not set, which load resolves
  /// to copies() (3 with three or more members, else 1).
  std::uint32_t replication_factor = 0;
  /// A replicated shard's group takes a snapshot (a token: the shard is its own
  /// snapshot) after this many log entries, and then keeps `snapshot_trailing` of them
  /// for followers that lag a little; one that lags more gets the shard's image streamed.
  std::uint32_t snapshot_entries = 1'024;
  std::uint32_t snapshot_trailing = 2'048;

  bool clustered() const noexcept {
    return !nodes.empty();
  }
  /// The replication factor in force: as set, or when not set, 3 with three or more
  /// members (a shard survives the loss of one), else 1.
  std::uint32_t copies() const noexcept {
    if (replication_factor != 0) return replication_factor;
    return nodes.size() >= 3 ? 3 : 1;
  }
};

/// [actors] — the CAF actor system.
struct actors_settings {
  unsigned threads = 0;                    ///< CAF scheduler workers; 0 = CPUs in the affinity mask
  std::uint32_t call_timeout_ms = 5'000;   ///< a method call gets 504 after this long
  std::uint32_t idle_timeout_ms = 300'000; ///< an actor idle this long is passivated
  std::uint32_t max_active = 100'000;      ///< active actors per node (LRU passivation)
};

/// One `[jobs.queues.NAME]` table: settings of one job queue on every node. File-only.
struct queue_settings {
  std::string name;          ///< a queue name ([A-Za-z0-9_-]{1,64})
  std::uint32_t workers = 0; ///< in-process workers of this queue on each node; 0: external only

  friend bool operator==(const queue_settings& a, const queue_settings& b) {
    return a.name == b.name && a.workers == b.workers;
  }
};

/// [jobs] — durable job queues (docs/jobs.md).
struct jobs_settings {
  std::uint32_t workers = 4;            ///< in-process workers per queue per node, unless listed
  std::vector<queue_settings> queues;   ///< `[jobs.queues.NAME]` tables, sorted by name
  std::uint32_t retry_base_ms = 500;    ///< first retry delay; doubles per attempt
  std::uint32_t retry_cap_ms = 300'000; ///< ceiling of the retry delay; >= retry_base_ms
  std::uint32_t handler_timeout_ms = 30'000; ///< an in-process handler's lease
  std::uint32_t webhook_timeout_ms = 10'000; ///< the built-in webhook handler's HTTP timeout
  /// CIDR blocks webhooks may reach although they are loopback, private or link-local
  /// ("10.1.0.0/16, 127.0.0.1"); empty: none of those.
  std::string webhook_allow;
  std::uint64_t max_delay_ms = 604'800'000; ///< longest delay_ms accepted (7 days)
  /// (queue, type) pairs, and queues, with series of their own on /metrics; the rest
  /// share the label value "~other".
  std::uint32_t metrics_max_series = 200;

  /// In-process workers of queue `name` on this node.
  std::uint32_t workers_of(const std::string& name) const {
    for (const auto& q : queues)
      if (q.name == name) return q.workers;
    return workers;
  }
};

/// [auth] — bearer tokens for the HTTP API (docs/api.md "Authentication").
struct auth_settings {
  /// A file of accepted tokens and their scopes, read at start-up; empty: the API is open
  /// (fit for a node on loopback or behind a gateway that authenticates).
  std::string tokens_file;
};

/// [log]
struct log_settings {
  std::string level = "info";  ///< trace, debug, info, warn, error, off
  std::string format = "text"; ///< text or json (JSON lines)
  bool access_log = true;      ///< one line per HTTP request
};

/// Everything a node is started with. Plain values: tests build them directly.
struct settings {
  node_settings node;
  http_settings http;
  storage_settings storage;
  cluster_settings cluster;
  actors_settings actors;
  jobs_settings jobs;
  cache_settings cache;
  query_settings query;
  changes_settings changes;
  auth_settings auth;
  log_settings log;
};

/// A configuration that must stop start-up; `key()` names the offending key
/// ("http.port"), or is empty when the file itself cannot be read or parsed.
class config_error : public std::runtime_error {
public:
  config_error(std::string key, const std::string& message)
      : std::runtime_error(key.empty() ? message : key + ": " + message), key_(std::move(key)) {}
  const std::string& key() const noexcept {
    return key_;
  }

private:
  std::string key_;
};

/// Builds settings from the defaults, then the TOML file `file` (when given), then each
/// `section.key=value` override in order. Unknown sections or keys, wrong TOML types and
/// out-of-range values throw `config_error` naming the key. Nothing is opened here.
///
/// With `cluster.nodes`, the member named `node.id` decides where this node listens:
/// `http.host`/`http.port` are taken from it, and `{node}` in `storage.path` is replaced
/// by the id (so one shared file serves every member). `cluster.nodes` and `jobs.queues`
/// are file-only.
settings load(const std::optional<std::string>& file, const std::vector<std::string>& overrides);

/// Same as `load` but from TOML text (for tests); `origin` names it in messages.
settings load_from_string(const std::string& toml_text, const std::vector<std::string>& overrides,
                          const std::string& origin = "<string>");

} // namespace shoal::config
