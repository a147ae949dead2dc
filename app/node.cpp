// SPDX-License-Identifier: Apache-2.0
#include "app/node.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cerrno>
#include <fstream>
#include <sstream>
#include <random>
#include <thread>

#include <sched.h>

#include <boost/json.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/exit_reason.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <spdlog/spdlog.h>

#include "actors/actor_api.hpp"
#include "actors/actor_metrics.hpp"
#include "app/logging.hpp"
#include "cache/metrics.hpp"
#include "changes/metrics.hpp"
#include "cluster/ownership.hpp"
#include "cluster/replicas.hpp"
#include "replication/metrics.hpp"
#include "cluster/view.hpp"
#include "documents/metrics.hpp"
#include "host/shard_host.hpp"
#include "host/wal_syncer.hpp"
#include "http/auth.hpp"
#include "http/request_metrics.hpp"
#include "http/server.hpp"
#include "http/webhook_client.hpp"
#include "jobs/job_metrics.hpp"
#include "metrics/metrics.hpp"
#include "protocol/bridge.hpp"
#include "protocol/type_ids.hpp"
#include "query/metrics.hpp"
#include "remote/cluster_runtime.hpp"
#include "remote/raft_transport.hpp"
#include "remote/tls.hpp"
#include "remote/type_ids.hpp"
#include "storage/store.hpp"
#include "util/destinations.hpp"
#include "util/json.hpp"
#include "workers/broker.hpp"
#include "workers/handlers.hpp"

namespace shoal::app {

namespace {

/// `n`, or for 0 the CPUs this process may run on (its affinity mask, so a node pinned
/// with taskset or a cpuset gets one thread per CPU it actually has).
unsigned or_cores(unsigned n) {
  if (n != 0) return n;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
    return static_cast<unsigned>(CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

void write_storage_metrics(metrics::text_writer& out, storage::store& store) {
  out.family("shoal_shard_keys_estimate", "gauge",
             "RocksDB estimate-num-keys of each shard's column family.");
  std::uint64_t live = 0;
  for (std::uint32_t i = 0; i < store.shard_count(); ++i) {
    auto& shard = store.shard(i);
    auto label = std::to_string(i);
    out.sample("shoal_shard_keys_estimate", {{"shard", label}}, shard.estimate_num_keys());
    live += shard.live_data_bytes();
  }
  out.family("shoal_storage_live_data_bytes", "gauge",
             "RocksDB estimate-live-data-size summed over shards.");
  out.sample("shoal_storage_live_data_bytes", {}, live);
  out.family("shoal_storage_writable", "gauge",
             "1 while the store can write; 0 when the volume is full or it opened read-only.");
  out.sample("shoal_storage_writable", {}, std::uint64_t{store.write_problem().empty()});
}

/// The node ids of the cluster, or just this node's id when it runs alone.
std::vector<std::string> member_ids(const config::settings& settings) {
  std::vector<std::string> ids;
  for (const auto& n : settings.cluster.nodes)
    ids.push_back(n.id);
  if (ids.empty()) ids.push_back(settings.node.id);
  return ids;
}

/// What a data directory is bound to (storage::rocksdb_options::layout).
std::string storage_layout(const config::settings& settings) {
  if (!settings.cluster.clustered()) return "a single node";
  auto ids = member_ids(settings);
  std::sort(ids.begin(), ids.end());
  std::string list;
  for (const auto& id : ids)
    list += (list.empty() ? "" : ", ") + id;
  auto layout = "node " + settings.node.id + " of the cluster [" + list + "]";
  // Replicated shards keep their data through their Raft logs: a directory written with
  // one copy per shard holds only what its node owned, and one written with replicas
  // holds groups the other factor would not find. Either way it is refused.
  const auto copies = settings.cluster.copies();
  if (copies > 1) layout += " with " + std::to_string(copies) + " copies of each shard";
  return layout;
}

/// Whether the owner of each shard is up, by the latest view on `board` (a keyless job
/// enqueue goes to a shard whose owner is up).
std::function<bool(std::uint32_t)> shard_up(const cluster::view_board& board) {
  return [&board](std::uint32_t shard) {
    auto view = board.read();
    if (!view || shard >= view->shard_owners.size()) return true;
    const auto& owner = view->shard_owners[shard];
    if (owner == view->self) return true;
    for (const auto& m : view->nodes)
      if (m.id == owner) return m.state == cluster::member_state::up;
    return false;
  };
}

/// The view of a node that runs alone: itself, up, owning every shard.
std::shared_ptr<const cluster::cluster_view> single_node_view(const config::settings& settings,
                                                              const cluster::ownership& owners) {
  auto view = std::make_shared<cluster::cluster_view>();
  view->self = settings.node.id;
  cluster::member_view self;
  self.id = settings.node.id;
  self.http = settings.http.host + ":" + std::to_string(settings.http.port);
  self.state = cluster::member_state::up;
  self.last_heartbeat = std::chrono::steady_clock::now();
  view->nodes.push_back(std::move(self));
  for (std::uint32_t s = 0; s < owners.shard_count(); ++s)
    view->shard_owners.push_back(owners.owner(s));
  view->ready = true;
  return view;
}

void write_cluster_metrics(metrics::text_writer& out, const cluster::view_board& board) {
  auto view = board.read();
  if (!view) return;
  out.family("shoal_cluster_member_up", "gauge",
             "1 when this node sees the member up (itself included), else 0.");
  for (const auto& m : view->nodes)
    out.sample("shoal_cluster_member_up", {{"node", m.id}},
               std::uint64_t{m.state == cluster::member_state::up});
  out.family("shoal_cluster_ready", "gauge",
             "1 when the cluster lets this node serve (/readyz also needs a writable store).");
  out.sample("shoal_cluster_ready", {}, std::uint64_t{view->ready});
  if (view->replicas.empty()) return;
  std::uint64_t leaderless = 0;
  for (const auto& group : view->replicas)
    leaderless += group.leader.empty() ? 1 : 0;
  out.family("shoal_cluster_shards_without_leader", "gauge",
             "Replicated shards for which this node knows no leader (they answer 503).");
  out.sample("shoal_cluster_shards_without_leader", {}, leaderless);
}

/// This process among all runs of the node: in-process job leases carry it, so the next
/// run knows that the jobs they held died with this one.
/// The tokens of auth.tokens_file (null when none is set), or nullopt when the file
/// cannot be read, is malformed or lists no token: a configuration error (said on stderr
/// as load's are; the node does not start).
std::optional<std::shared_ptr<const http::token_table>> load_tokens(const std::string& path,
                                                                    spdlog::logger& log) {
  if (path.empty()) return std::shared_ptr<const http::token_table>{};
  auto refuse = [](const std::string& why) {
    std::fprintf(stderr, "shoal: configuration error: auth.tokens_file: %s\n", why.c_str());
    return std::nullopt;
  };
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  if (in) text << in.rdbuf();
  if (!in) return refuse("cannot read " + path);
  auto parsed = http::token_table::parse(text.str());
  if (!parsed) return refuse(parsed.error().message());
  // An empty file would open the API without a word: refused instead.
  if (parsed->empty()) return refuse(path + " lists no token");
  log.info("bearer tokens required: {} token(s) from {}", parsed->size(), path);
  return std::make_shared<const http::token_table>(std::move(*parsed));
}

std::string make_incarnation() {
  std::random_device rd;
  char buf[24];
  std::snprintf(buf, sizeof buf, "%08x%08x", rd(), rd());
  return buf;
}

/// The webhook handler's outcome from the client's result: the status, and the body
/// (its first 4 KiB) only when the job asked for it.
workers::job_outcome webhook_outcome(http::webhook_result&& r, bool keep_body) {
  if (r.what != http::webhook_result::outcome::success)
    return workers::job_outcome::failure(std::move(r.message), r.retryable());
  boost::json::object o;
  o["status"] = r.status;
  if (!keep_body) return workers::job_outcome::success(util::to_json(o));
  boost::json::error_code ec;
  auto body = util::parse_json(r.body, ec);
  if (!ec)
    o["body"] = std::move(body);
  else
    o["body"] = r.body;
  return workers::job_outcome::success(util::to_json(o));
}

/// The fsync stall tests inject (SHOAL_TEST_FSYNC_STALL_MS, docs/testing.md): a disk
/// whose fsync is slow, so that a process test can stop a node while writes wait for it.
/// Zero when unset or not a number.
std::chrono::milliseconds injected_fsync_stall() {
  const char* text = std::getenv("SHOAL_TEST_FSYNC_STALL_MS");
  if (text == nullptr || *text == '\0') return {};
  char* end = nullptr;
  const auto ms = std::strtoul(text, &end, 10);
  if (*end != '\0' || ms > 600'000) return {};
  return std::chrono::milliseconds(ms);
}

/// Puts the calling thread under SCHED_BATCH; the threads it starts later inherit the
/// policy. A woken SCHED_BATCH thread does not preempt the running one (the tick does),
/// so a thread that hands work to another on the same core goes on with its batch
/// instead of switching at once. No privilege is needed. Returns why it failed ("": it
/// did not).
std::string use_batch_scheduling() {
  sched_param param{};
  param.sched_priority = 0;
  if (sched_setscheduler(0, SCHED_BATCH, &param) != 0) return std::strerror(errno);
  return {};
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

} // namespace

int serve(const config::settings& settings, const actors::actor_registry& registry,
          const workers::handler_registry& job_handlers) {
  // First, so that every thread the node starts (loggers, RocksDB, CAF, Asio) inherits it.
  const auto batch_error = settings.node.batch_scheduling ? use_batch_scheduling() : "";
  auto logs = make_loggers(settings.log);
  if (!batch_error.empty())
    logs.storage->warn("node.batch_scheduling: SCHED_BATCH refused ({}); the default policy "
                       "stays",
                       batch_error);
  auto start_time = now_seconds();

  auto tokens = load_tokens(settings.auth.tokens_file, *logs.http);
  if (!tokens) return 2;
  if (auto why = remote::check_tls_files(settings.cluster); !why.empty()) {
    std::fprintf(stderr, "shoal: configuration error: %s\n", why.c_str());
    return 2;
  }

  storage::rocksdb_options opts;
  opts.path = settings.storage.path;
  opts.shards = settings.cluster.shards;
  opts.block_cache_bytes = settings.storage.block_cache_bytes;
  opts.write_buffer_bytes = settings.storage.write_buffer_bytes;
  opts.total_write_buffer_bytes = settings.storage.total_write_buffer_bytes;
  // Which shards this node owns follows from its id and the member ids (not their
  // addresses), so a data directory is bound to them; a node alone owns everything.
  opts.layout = storage_layout(settings);
  opts.log = [log = logs.storage](storage::engine_log_level level, std::string_view text) {
    switch (level) {
    case storage::engine_log_level::info:
      log->info("rocksdb: {}", text);
      break;
    case storage::engine_log_level::warn:
      log->warn("rocksdb: {}", text);
      break;
    case storage::engine_log_level::error:
      log->error("rocksdb: {}", text);
      break;
    }
  };
  auto opened = storage::open_rocksdb_store(opts);
  if (!opened) {
    logs.storage->error("cannot open the store at {}: {}", opts.path, opened.error().to_string());
    return 1;
  }
  auto store = std::move(*opened);
  logs.storage->info("opened {} with {} shards (sync={})", opts.path, opts.shards,
                     settings.storage.sync);
  if (auto problem = store->write_problem(); !problem.empty())
    logs.storage->error("the store cannot write: {}", problem);

  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", or_cores(settings.actors.threads));
  // CAF's idle workers poll in 50 µs sleeps for ~25 ms before they block on a condition
  // variable. Under request load that costs a context switch per sleep and delays every
  // hop by up to 50 µs. A short spin, then the condition variable (which an enqueue
  // signals), served 1.4x the hot-GET rate at half the p99 (docs/benchmarks.md).
  cfg.set("work-stealing.aggressive-poll-attempts", std::size_t{10});
  cfg.set("work-stealing.moderate-poll-attempts", std::size_t{0});
  protocol::add_message_types(cfg);
  const bool clustered = settings.cluster.clustered();
  if (clustered) {
    cfg.load<caf::io::middleman>();
    if (remote::tls_enabled(settings.cluster)) remote::configure_tls(cfg, settings.cluster);
    cfg.add_message_types<caf::id_block::shoal_remote>();
  }
  int status = 0;
  // Outgoing HTTP of the webhook job handler; outlives the actors that post through it.
  // (jobs.webhook_allow was checked with the rest of the configuration.)
  http::webhook_client webhooks{
    1, *util::destination_policy::with_allowed(settings.jobs.webhook_allow, nullptr)};
  // The modules' metrics outlive the shard hosts, which update them.
  jobs::job_metrics job_metrics{settings.jobs.metrics_max_series, settings.cluster.shards};
  documents::metrics document_metrics;
  query::metrics query_metrics;
  changes::metrics change_metrics;
  cache::metrics cache_metrics;
  replication::metrics replication_metrics;
  // How this node's replicas stand (replicated shards only), for the view and metrics.
  cluster::replica_board replica_reports{settings.cluster.shards};
  {
    caf::actor_system sys{cfg};
    host::wal_syncer_actor syncer;
    const auto replication_factor = settings.cluster.copies();
    // Replicated shards always fsync their Raft logs, whatever storage.sync says.
    if (settings.storage.sync || replication_factor > 1) {
      const auto stall = injected_fsync_stall();
      if (stall.count() > 0)
        logs.storage->warn("every fsync stalls {} ms (SHOAL_TEST_FSYNC_STALL_MS, a test fault)",
                           stall.count());
      syncer = host::spawn_wal_syncer(sys, *store, true, stall);
    }
    actors::actor_metrics actor_metrics{registry};
    remote::placed_shards shards;
    // This node's shards get shard hosts; every other node's shard gets a stub that
    // forwards to its owner (docs/cluster.md).
    const cluster::ownership owners{member_ids(settings), settings.cluster.shards};
    // The job broker first: shards announce their work to it as soon as they start.
    auto handlers = job_handlers;
    workers::add_builtin_handlers(
      handlers, shards.handles,
      [&webhooks](std::string url, std::string body, std::chrono::milliseconds timeout,
                  std::vector<std::pair<std::string, std::string>> headers, bool keep_body,
                  std::function<void(workers::job_outcome)> done) {
        webhooks.post(std::move(url), std::move(body), timeout, std::move(headers),
                      [keep_body, done = std::move(done)](http::webhook_result r) {
                        done(webhook_outcome(std::move(r), keep_body));
                      });
      },
      std::chrono::milliseconds(settings.jobs.webhook_timeout_ms));
    workers::broker_config broker_cfg;
    broker_cfg.shards = &shards.handles;
    broker_cfg.shard_count = settings.cluster.shards;
    // With replicas, every node that holds one asks its leader (through the shard's stub).
    broker_cfg.local = owners.replica_shards_of(settings.node.id, replication_factor);
    broker_cfg.ask_all = replication_factor > 1;
    broker_cfg.replicas = &shards.replicas; // filled below, with the handles
    broker_cfg.handlers = &handlers;
    broker_cfg.settings = settings.jobs;
    broker_cfg.incarnation = make_incarnation();
    broker_cfg.metrics = &job_metrics;
    // What every shard host of this node hosts; the node-wide memory bounds are split
    // evenly over the shards this node owns.
    host::host_config base;
    base.store = store.get();
    base.sync = settings.storage.sync;
    base.syncer = syncer;
    base.peers = &shards.handles; // filled below, before any message can arrive
    base.call_timeout = std::chrono::milliseconds(settings.actors.call_timeout_ms);
    base.log = logs.storage;
    {
      const auto local = std::max<std::size_t>(1, owners.shards_of(settings.node.id).size());
      base.documents.cache_bytes = settings.storage.doc_cache_bytes / local;
      base.documents.metrics = &document_metrics;
      base.query.build_batch = settings.query.index_build_batch;
      base.query.metrics = &query_metrics;
      base.changes.enabled = settings.changes.enabled;
      base.changes.keep.max_events = settings.changes.retention_events;
      base.changes.keep.max_age_ms = std::uint64_t{settings.changes.retention_s} * 1000;
      base.changes.metrics = &change_metrics;
      base.cache.max_bytes = settings.cache.max_bytes / local;
      base.cache.metrics = &cache_metrics;
      base.jobs.retry = jobs::retry_policy{settings.jobs.retry_base_ms, settings.jobs.retry_cap_ms};
      base.jobs.metrics = &job_metrics;
      base.jobs.incarnation = broker_cfg.incarnation;
      base.actors.registry = &registry;
      base.actors.metrics = &actor_metrics;
      base.actors.idle_timeout = std::chrono::milliseconds(settings.actors.idle_timeout_ms);
      // The node-wide bound, split over the shards (rounded up).
      base.actors.max_active =
        (settings.actors.max_active + settings.cluster.shards - 1) / settings.cluster.shards;
    }
    auto broker = workers::spawn_broker(sys, std::move(broker_cfg));
    base.broker = broker;
    caf::actor raft_transport;
    const auto failure_timeout = std::chrono::milliseconds(settings.cluster.failure_timeout_ms);
    const auto call_timeout = std::chrono::milliseconds(settings.actors.call_timeout_ms);
    if (replication_factor > 1) {
      raft_transport = remote::spawn_raft_transport(sys, settings.node.id);
      shards = remote::place_replicated_shards(
        sys, settings.node.id, owners, replication_factor, failure_timeout, call_timeout,
        [&](std::uint32_t i, replication::group_config group) {
          auto cfg = base;
          cfg.index = i;
          host::replication_config rc;
          rc.group = std::move(group);
          // A group elects anew after about the time the membership takes to call a
          // member down (libraft randomizes the timeout to 1-2 times this); its leader
          // heartbeats at least four times per timeout.
          rc.group.election_timeout_ms =
            std::max<unsigned>(150, settings.cluster.failure_timeout_ms / 2);
          rc.group.heartbeat_timeout_ms =
            std::min<unsigned>(settings.cluster.heartbeat_ms, rc.group.election_timeout_ms / 4);
          rc.group.snapshot_entries = settings.cluster.snapshot_entries;
          rc.group.snapshot_trailing = settings.cluster.snapshot_trailing;
          rc.send = remote::raft_sender(raft_transport, i);
          rc.board = &replica_reports;
          rc.group.counted = &replication_metrics;
          cfg.replication = std::move(rc);
          auto replica = host::spawn_shard_host(sys, std::move(cfg));
          caf::anon_send(raft_transport, remote::raft_local_atom::value, i, replica);
          return replica;
        });
    } else {
      shards = remote::place_shards(sys, settings.node.id, owners, failure_timeout, call_timeout,
                                    [&](std::uint32_t i) {
                                      auto cfg = base;
                                      cfg.index = i;
                                      return host::spawn_shard_host(sys, std::move(cfg));
                                    });
    }
    workers::start_broker(broker);
    cluster::view_board board;
    remote::cluster_actors members;
    if (clustered) {
      auto started = remote::start_cluster(
        sys, remote::cluster_identity::from(settings, logs.cluster), shards, owners, board,
        raft_transport, replication_factor > 1 ? &replica_reports : nullptr);
      if (!started) {
        logs.cluster->error("cannot listen for peers on the actor port of node {}: {}",
                            settings.node.id, sys.render(started.error()));
        status = 1;
      } else {
        members = std::move(*started);
        logs.cluster->info("node {} listens for peers ({} of {} shards are local)",
                           settings.node.id, owners.shards_of(settings.node.id).size(),
                           settings.cluster.shards);
      }
    } else {
      board.publish(single_node_view(settings, owners));
    }

    protocol::bridge bridge{shards.handles, settings.cluster.shards, broker,
                            // A replicated shard is up while a majority of its replicas
                            // is, which its stub finds out by itself.
                            clustered && replication_factor == 1
                              ? shard_up(board)
                              : std::function<bool(std::uint32_t)>{}};
    http::request_metrics request_metrics;
    metrics::registry collectors;
    collectors.add([&](metrics::text_writer& out) { request_metrics.write(out); });
    collectors.add([&](metrics::text_writer& out) { actor_metrics.write(out); });
    collectors.add([&](metrics::text_writer& out) { job_metrics.write(out); });
    collectors.add([&](metrics::text_writer& out) { document_metrics.write(out); });
    collectors.add([&](metrics::text_writer& out) { cache_metrics.write(out); });
    collectors.add([&](metrics::text_writer& out) { query_metrics.write(out); });
    collectors.add([&](metrics::text_writer& out) { change_metrics.write(out); });
    collectors.add([&](metrics::text_writer& out) { write_storage_metrics(out, *store); });
    collectors.add([](metrics::text_writer& out) {
      out.family("shoal_build_info", "gauge", "1, labelled with the version of this binary.");
      out.sample("shoal_build_info", {{"version", SHOAL_VERSION}}, 1.0);
    });
    collectors.add(
      [&](metrics::text_writer& out) { metrics::write_process_metrics(out, start_time); });
    collectors.add([&board](metrics::text_writer& out) { write_cluster_metrics(out, board); });
    if (replication_factor > 1)
      collectors.add(
        [&](metrics::text_writer& out) { replication_metrics.write(out, replica_reports); });

    http::route_env env;
    // The store is open and the shards are spawned; in a cluster the membership decides.
    env.ready = [&board] {
      auto view = board.read();
      return view && view->ready;
    };
    env.write_problem = [&store] { return store->write_problem(); };
    env.cluster_view = [&board] { return board.read(); };
    if (replication_factor > 1)
      env.replica_digest = [&shards](std::uint32_t shard,
                                     core::reply_to<cluster::replica_digest> to) {
        if (shard >= shards.replicas.size() || !shards.replicas[shard])
          return to.deliver(
            core::error{core::errc::not_found, "no_replica",
                        "this node holds no replica of shard " + std::to_string(shard)});
        host::ask_digest(shards.replicas[shard], std::move(to));
      };
    env.metrics_text = [&collectors] { return collectors.render(); };
    env.on_drain = [&broker] { workers::drain_broker(broker); };
    env.tokens = *tokens;
    env.actor_call_timeout_ms = settings.actors.call_timeout_ms;
    env.max_job_delay_ms = settings.jobs.max_delay_ms;
    env.cache_max_value_bytes = settings.cache.max_value_bytes;
    env.cache_default_ttl_s = settings.cache.default_ttl_s;
    env.cache_max_ttl_s = settings.cache.max_ttl_s;
    env.query_default_limit = settings.query.default_limit;
    env.query_max_limit = settings.query.max_limit;
    env.changes_enabled = settings.changes.enabled;
    env.changes_max_buffer_bytes = settings.changes.max_buffer_bytes;
    env.changes_heartbeat_ms = settings.changes.heartbeat_ms;
    auto http_settings = settings.http;
    http_settings.threads = or_cores(http_settings.threads);
    http::server server{http_settings, bridge, std::move(env), request_metrics,
                        http::server_logs{logs.http, logs.access, settings.log.format == "json"}};
    if (status == 0) try {
        auto port = server.listen();
        logs.main->info("listening on http://{}:{}", settings.http.host, port);
        server.run();
      } catch (const std::exception& e) {
        logs.main->error("cannot serve on {}:{}: {}", settings.http.host, settings.http.port,
                         e.what());
        status = 1;
      }
    // The edge is drained: stop the actors, then close the store they write to. The
    // broker and the shards go first, while the links to the peers are still up: what a
    // shard answers as it stops (a read held for an fsync gets shutting_down, a write
    // outcome_unknown) travels ahead of the link's close, so a peer's caller gets that
    // answer rather than "connection lost". Then the cluster's actors, then the syncer.
    {
      caf::scoped_actor self{sys};
      std::size_t stopping = 0;
      auto stop = [&](const auto& actor) {
        if (!actor) return;
        self->monitor(actor);
        caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
        ++stopping;
      };
      stop(broker);
      for (auto& shard : shards.handles.handles)
        stop(shard);
      for (auto& replica : shards.replicas)
        stop(replica);
      for (bool waiting = true; waiting && stopping > 0;)
        self->receive([&](const caf::down_msg&) { --stopping; },
                      caf::after(std::chrono::seconds(10)) >> [&] { waiting = false; });
      if (stopping > 0) logs.main->warn("{} shard actors did not stop in 10 s", stopping);
    }
    if (members.membership)
      caf::anon_send_exit(members.membership, caf::exit_reason::user_shutdown);
    if (members.gateway) caf::anon_send_exit(members.gateway, caf::exit_reason::user_shutdown);
    if (raft_transport) caf::anon_send_exit(raft_transport, caf::exit_reason::user_shutdown);
    if (syncer) caf::anon_send_exit(syncer, caf::exit_reason::user_shutdown);
    sys.await_all_actors_done();
  }
  if (auto s = store->close(); !s) {
    logs.storage->error("closing the store failed: {}", s.error().to_string());
    status = 1;
  } else {
    logs.storage->info("store flushed and closed");
  }
  logs.main->info("stopped");
  return status;
}

} // namespace shoal::app
