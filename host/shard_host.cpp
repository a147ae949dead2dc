// SPDX-License-Identifier: Apache-2.0
#include "host/shard_host.hpp"

#include <chrono>
#include <deque>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <tuple>
#include <unordered_map>

#include <caf/actor_system.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include "actors/actor_api.hpp"
#include "host/virtual_actor.hpp"
#include "protocol/errors.hpp"
#include "replication/metrics.hpp"
#include "replication/replica.hpp"
#include "replication/state_machine.hpp"
#include "replication/replicated_path.hpp"
#include "shard/host_context.hpp"
#include "storage/store.hpp"

namespace shoal::host {

namespace {

/// A timer of the shard is due.
using tick_atom = caf::atom_constant<caf::atom("host_tick")>;
/// Deferred work of the shard waits.
using step_atom = caf::atom_constant<caf::atom("host_step")>;

/// A message of the shard's Raft group from another replica (deliver_raft).
using raft_msg_atom = caf::atom_constant<caf::atom("raft_msg")>;
/// The group's io tick (its generation: a stopped tick is not re-armed).
using raft_tick_atom = caf::atom_constant<caf::atom("raft_tick")>;
/// Work the group's io posted for later.
using raft_post_atom = caf::atom_constant<caf::atom("raft_post")>;
/// An admin read of this replica's digest (ask_digest).
using digest_atom = caf::atom_constant<caf::atom("digest")>;
/// The replica's group closed after a failed fsync, or its new start failed: start it
/// again from the store.
using raft_restart_atom = caf::atom_constant<caf::atom("raft_rst")>;

using host_actor = protocol::shard_actor::extend<
  caf::reacts_to<tick_atom>, caf::reacts_to<step_atom>, caf::reacts_to<raft_msg_atom, std::string>,
  caf::reacts_to<raft_tick_atom, std::uint64_t>, caf::reacts_to<raft_post_atom>,
  caf::reacts_to<raft_restart_atom>,
  caf::reacts_to<digest_atom, core::reply_to<cluster::replica_digest>>>;

struct host_state;
using host_pointer = host_actor::stateful_pointer<host_state>;

/// The hosting module's runtime over CAF: virtual actors spawned and monitored by their
/// host. A call that carries an actor's response promise is delegated, so the virtual
/// actor answers that actor itself (a promise is only delivered on its owner's thread).
class caf_runtime final : public actors::actor_runtime {
public:
  caf_runtime(host_pointer self, const host_config& cfg) : self_(self), cfg_(cfg) {}

  handle spawn(const actors::actor_type& type, const std::string& id) override;
  void call(handle h, actors::actor_call&& call, core::reply_to<actors::actor_result> to) override;
  void passivate(handle h, std::function<void()> stopped) override;
  void stop(handle h) override;

  /// The actor at `addr` went down; the handle it had, if it was ours.
  std::optional<handle> gone(const caf::actor_addr& addr);

private:
  host_pointer self_;
  const host_config& cfg_;
  handle next_ = 0;
  std::unordered_map<handle, virtual_actor> actors_;
  std::map<caf::actor_addr, handle> by_addr_;
};

/// What a replicated shard adds to its host: the group, and the io's ticks and posts.
struct raft_state {
  std::unique_ptr<replication::group> group;
  replication::replicated_path* path = nullptr; ///< owned by the context
  std::uint64_t tick_gen = 0;
  unsigned tick_ms = 100;
  std::function<void()> tick;
  std::deque<std::function<void()>> posted;
  bool post_pending = false;
  bool closing = false;
  /// Set from a failed fsync until the group started again from the store (every
  /// request is refused meanwhile); `restart_closing` while its old group closes.
  bool restarting = false;
  bool restart_closing = false;
  caf::error exit_reason; ///< of a stop that came while the old group closed
  /// Why the replica could not start: every request is refused with it.
  std::optional<core::error> broken;
  /// The role and term after the last message, to notice a change.
  cluster::replica_role role = cluster::replica_role::unavailable;
  std::uint64_t term = 0;
  /// What was last put on the node's replica board.
  std::optional<cluster::replica_report> published;
};

struct host_state {
  host_config cfg;
  raft_state raft; ///< used when cfg.replication is set
  std::unique_ptr<shard::host_context> ctx;
  std::unique_ptr<caf_runtime> runtime;
  /// The modules; a request goes to the one whose `requests` list holds its type.
  std::unique_ptr<query::module> query;
  std::unique_ptr<changes::module> changes;
  std::unique_ptr<documents::module> documents;
  std::unique_ptr<cache::module> cache;
  std::unique_ptr<jobs::module> jobs;
  std::unique_ptr<actors::hosting> actors;
  std::map<std::string, shard::clock::time_point> reported; ///< when each failure was logged

  auto modules() {
    return std::tie(*documents, *query, *changes, *cache, *jobs, *actors);
  }

  template <class R, std::size_t I = 0>
  auto& module_for() {
    auto all = modules();
    using M = std::decay_t<std::tuple_element_t<I, decltype(all)>>;
    if constexpr (core::contains_v<typename M::requests, R>)
      return std::get<I>(all);
    else
      return module_for<R, I + 1>();
  }

  bool has_modules() const noexcept {
    return documents != nullptr;
  }

  /// The modules go, the virtual actors (stopped by the hosting module) first.
  void drop_modules() {
    actors.reset();
    runtime.reset();
    jobs.reset();
    cache.reset();
    documents.reset();
    changes.reset();
    query.reset();
  }

  ~host_state() {
    // Held replies fail while the modules that wait for them are alive; then the modules
    // go.
    if (ctx) ctx->close();
    drop_modules();
  }

  static inline const char* name = "shoal.shard_host";
};

caf_runtime::handle caf_runtime::spawn(const actors::actor_type& type, const std::string& id) {
  virtual_actor_config vc;
  vc.type = &type;
  vc.id = id;
  vc.shard = &cfg_.store->shard(cfg_.index);
  vc.host = caf::actor_cast<protocol::shard_actor>(self_);
  vc.peers = cfg_.peers;
  vc.call_timeout = cfg_.call_timeout;
  vc.metrics = cfg_.actors.metrics;
  auto actor = spawn_virtual_actor(self_->system(), std::move(vc));
  self_->monitor(actor);
  const auto h = ++next_;
  by_addr_.emplace(actor.address(), h);
  actors_.emplace(h, std::move(actor));
  return h;
}

void caf_runtime::call(handle h, actors::actor_call&& call,
                       core::reply_to<actors::actor_result> to) {
  auto& actor = actors_.at(h);
  using answer = protocol::promise_answer<actors::actor_result>;
  if (auto* p = dynamic_cast<answer*>(to.target().get())) {
    p->promise().delegate(actor, std::move(call), core::reply_to<actors::actor_result>{});
    return;
  }
  caf::anon_send(actor, std::move(call), std::move(to));
}

void caf_runtime::passivate(handle h, std::function<void()> stopped) {
  self_->request(actors_.at(h), caf::infinite, passivate_atom::value)
    .then([stopped](caf::ok_atom) { stopped(); }, [stopped](caf::error&) { stopped(); });
}

void caf_runtime::stop(handle h) {
  if (auto it = actors_.find(h); it != actors_.end())
    caf::anon_send_exit(it->second, caf::exit_reason::user_shutdown);
}

std::optional<caf_runtime::handle> caf_runtime::gone(const caf::actor_addr& addr) {
  auto it = by_addr_.find(addr);
  if (it == by_addr_.end()) return std::nullopt;
  auto h = it->second;
  by_addr_.erase(it);
  actors_.erase(h);
  return h;
}

/// Logs a background failure, the same text at most once a minute.
void report(host_pointer self, std::string_view what, const core::error& err) {
  auto& st = self->state;
  if (!st.cfg.log) return;
  auto text =
    std::string(what) + " failed on shard " + std::to_string(st.cfg.index) + ": " + err.to_string();
  const auto now = self->clock().now();
  auto [it, fresh] = st.reported.emplace(text, now);
  if (!fresh) {
    if (now - it->second < std::chrono::minutes(1)) return;
    it->second = now;
  }
  st.cfg.log->error("{}", text);
}

shard::host_context::ports make_ports(host_pointer self) {
  shard::host_context::ports p;
  p.now = [self] { return self->clock().now(); };
  p.arm = [self](shard::time_point due) {
    auto wait = std::max(due - self->clock().now(), shard::clock::duration::zero());
    self->delayed_send(self, wait, tick_atom::value);
  };
  p.wake = [self] { self->send(self, step_atom::value); };
  p.request_sync = [self](std::uint64_t wanted) {
    self->request(self->state.cfg.syncer, caf::infinite, wal_sync_atom::value, wanted)
      .then(
        [self](std::uint64_t durable) {
          self->state.ctx->synced(durable);
          self->state.ctx->finish_step();
        },
        [self](caf::error& err) {
          // The WAL could not be made durable: nothing held may be acknowledged.
          auto e = protocol::from_caf(err);
          self->state.ctx->sync_failed(core::error{core::errc::storage_failed, e.message()});
          self->state.ctx->finish_step();
        });
  };
  p.report = [self](std::string_view what, const core::error& err) { report(self, what, err); };
  return p;
}

std::uint64_t unix_ms() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                      std::chrono::system_clock::now().time_since_epoch())
                                      .count());
}

/// Builds the modules over the context: at start for a shard with one copy, whenever
/// the replica starts serving for a replicated one (from the shard as applied so far).
void build_modules(host_pointer self) {
  auto& st = self->state;
  const auto& c = st.cfg;
  auto& ctx = *st.ctx;
  st.query = std::make_unique<query::module>(ctx, c.query);
  st.changes = std::make_unique<changes::module>(ctx, c.changes);
  std::vector<shard::doc_observer*> observers{st.query.get()};
  if (c.changes.enabled) observers.push_back(st.changes.get());
  st.documents = std::make_unique<documents::module>(ctx, c.documents, std::move(observers));
  // Writes need the indexes: one that skipped its index entries would leave them wrong.
  if (const auto& e = st.query->load_error()) st.documents->refuse_writes(*e);
  st.cache = std::make_unique<cache::module>(ctx, c.cache);
  auto jobs_cfg = c.jobs;
  if (c.broker)
    jobs_cfg.announce = [self, broker = c.broker](const std::string& queue,
                                                  const std::string& type) {
      self->send(broker, protocol::job_ready_atom::value, queue, type, self->state.cfg.index);
    };
  if (jobs_cfg.seed == 0) jobs_cfg.seed = (std::uint64_t{std::random_device{}()} << 32) ^ c.index;
  st.jobs = std::make_unique<jobs::module>(ctx, std::move(jobs_cfg));
  st.runtime = std::make_unique<caf_runtime>(self, st.cfg);
  st.actors = std::make_unique<actors::hosting>(ctx, c.actors);
  st.actors->set_runtime(st.runtime.get());
  if (const auto& e = st.jobs->load_error()) report(self, "loading the jobs", *e);
  if (const auto& e = st.query->load_error()) report(self, "loading the indexes", *e);
}

/// Puts the replica's report on the node's board, unless it is what is there already.
void publish_report(host_pointer self) {
  auto& st = self->state;
  auto* board = st.cfg.replication ? st.cfg.replication->board : nullptr;
  if (board == nullptr || !st.raft.group) return;
  auto report = st.raft.group->report();
  if (st.raft.published && *st.raft.published == report) return;
  st.raft.published = report;
  board->publish(std::move(report));
}

/// Counts elections and new leaderships, logs a leadership taken (once per change in
/// the cluster: only the new leader logs it) and publishes the new role at once.
void notice_role(host_pointer self) {
  auto& st = self->state;
  auto& r = st.raft;
  if (!r.group) return;
  const auto role = r.group->role();
  const auto term = r.group->term();
  if (role == r.role && term == r.term) return;
  const bool new_role = role != r.role;
  r.role = role;
  r.term = term;
  auto* counted = st.cfg.replication->group.counted;
  if (new_role && role == cluster::replica_role::candidate && counted != nullptr)
    counted->elections.inc();
  if (new_role && role == cluster::replica_role::leader) {
    if (counted != nullptr) counted->leader_changes.inc();
    if (st.cfg.log)
      st.cfg.log->info("shard {}: this node is the leader now (term {})", st.cfg.index, term);
  }
  publish_report(self);
}

/// The end of every message: completions and timers; for a replicated shard, the
/// modules follow the replica's role (built once it serves, dropped once it stops
/// leading: what they remembered may be stale).
void restart_replica(host_pointer self);

void after_message(host_pointer self) {
  auto& st = self->state;
  st.ctx->finish_step();
  if (st.cfg.replication) notice_role(self);
  auto* path = st.raft.path;
  if (path == nullptr || st.raft.closing || st.raft.restarting) return;
  if (st.raft.group && st.raft.group->io().failed()) return restart_replica(self);
  if (!st.has_modules() && path->serving()) {
    build_modules(self);
    st.ctx->finish_step();
  } else if (st.has_modules() && !path->leading()) {
    st.drop_modules();
    st.ctx->finish_step();
  }
}

/// Why a replicated shard without modules refuses a request now.
core::error refusal(host_state& st) {
  if (st.raft.broken) return *st.raft.broken;
  if (st.raft.closing) return core::error{core::errc::shutting_down, "the shard is stopping"};
  if (st.raft.restarting)
    return core::error{core::errc::shard_unavailable, "restarting",
                       "this node's replica of shard " + std::to_string(st.cfg.index)
                         + " starts again from its store after a failed fsync"};
  return st.raft.path->refusal();
}

std::uint64_t clock_ms(host_pointer self) {
  return static_cast<std::uint64_t>(
    std::chrono::duration_cast<std::chrono::milliseconds>(self->clock().now().time_since_epoch())
      .count());
}

/// The group's io on this actor: its clock, delayed self-messages for ticks, the
/// configured transport, the WAL syncer's fsync, and self-messages for posted work.
replication::io_host make_io_host(host_pointer self) {
  replication::io_host h;
  h.now_ms = [self] { return clock_ms(self); };
  h.start_ticks = [self](unsigned msecs, std::function<void()> tick) {
    auto& r = self->state.raft;
    r.tick = std::move(tick);
    r.tick_ms = msecs;
    const auto gen = ++r.tick_gen;
    self->delayed_send(self, std::chrono::milliseconds(msecs), raft_tick_atom::value, gen);
  };
  h.stop_ticks = [self] { ++self->state.raft.tick_gen; };
  h.send = [self](std::uint64_t to, const std::string& address, std::string bytes) {
    self->state.cfg.replication->send(to, address, std::move(bytes));
  };
  h.after_sync = [self](std::function<void(core::result<void>)> done) {
    auto& st = self->state;
    self
      ->request(st.cfg.syncer, caf::infinite, wal_sync_atom::value, st.cfg.store->latest_sequence())
      .then([done](std::uint64_t) { done(core::ok()); },
            [done](caf::error& err) {
              done(core::error{core::errc::storage_failed, protocol::from_caf(err).message()});
            });
  };
  h.post = [self](std::function<void()> fn) {
    auto& r = self->state.raft;
    r.posted.push_back(std::move(fn));
    if (r.post_pending) return;
    r.post_pending = true;
    self->send(self, raft_post_atom::value);
  };
  h.seed = (std::uint64_t{std::random_device{}()} << 32) ^ self->state.cfg.index;
  return h;
}

/// Starts the shard's replica and its context; the modules come once it serves. An
/// error leaves the host refusing every request (and is reported).
core::result<void> start_replica(host_pointer self) {
  auto& st = self->state;
  const auto& c = st.cfg;
  if (!c.syncer)
    return core::error{core::errc::invalid_argument,
                       "a replicated shard needs the WAL syncer: its log is always fsynced"};
  auto group_cfg = c.replication->group;
  group_cfg.shard = c.index;
  group_cfg.sync_applies = c.sync;
  st.raft.group =
    std::make_unique<replication::group>(*c.store, std::move(group_cfg), make_io_host(self));
  if (auto r = st.raft.group->start(); !r) return r;
  auto path = std::make_unique<replication::replicated_path>(
    st.raft.group->rep(), c.store->shard(c.index), c.replication->group.counted);
  st.raft.path = path.get();
  st.ctx =
    std::make_unique<shard::host_context>(c.index, std::move(path), make_ports(self), unix_ms());
  return core::ok();
}

void start(host_pointer self, host_config cfg) {
  auto& st = self->state;
  st.cfg = std::move(cfg);
  const auto& c = st.cfg;
  if (c.replication) {
    if (auto r = start_replica(self); !r) {
      report(self, "starting the shard's replica", r.error());
      st.raft.broken = core::error{core::errc::shard_unavailable,
                                   "this node's replica of shard " + std::to_string(c.index)
                                     + " could not start: " + r.error().message()};
      st.raft.path = nullptr;
      st.ctx = std::make_unique<shard::host_context>(c.index, *c.store, false, make_ports(self),
                                                     unix_ms());
      publish_report(self); // unavailable, for the cluster view
      return;
    }
    after_message(self);
    return;
  }
  st.ctx =
    std::make_unique<shard::host_context>(c.index, *c.store, c.sync, make_ports(self), unix_ms());
  build_modules(self);
  st.ctx->finish_step();
}

/// After a failed fsync the group's io takes no more writes, while libraft believes the
/// failed appends gone and the store may hold them (group_io::failed). A leader would
/// keep its lead and commit nothing. So the replica closes its group and starts it again
/// from the store, as a restart of the process would: its modules go, what waits is
/// answered (504 for a write that may be kept), and requests are refused meanwhile.
void restart_replica(host_pointer self) {
  auto& st = self->state;
  st.raft.restarting = true;
  st.raft.restart_closing = true;
  report(
    self, "an fsync of the shard's Raft log",
    core::error{core::errc::storage_failed, "the replica closes and starts again from its store"});
  if (auto* m = st.cfg.replication->group.counted) m->group_restarts.inc();
  st.ctx->close();
  st.drop_modules();
  st.raft.group->close([self] {
    // libraft is done with the group, but this runs inside its close: start the new one
    // in a message of its own.
    self->state.raft.restart_closing = false;
    self->send(self, raft_restart_atom::value);
  });
}

/// Starts the group again once the old one closed; tries again each second while the
/// store refuses.
void start_again(host_pointer self) {
  auto& st = self->state;
  if (st.raft.closing) return self->quit(std::move(st.raft.exit_reason));
  st.raft.path = nullptr;
  st.ctx.reset();
  st.raft.group.reset();
  if (auto r = start_replica(self); !r) {
    report(self, "starting the shard's replica again", r.error());
    st.raft.path = nullptr;
    st.ctx.reset();
    st.raft.group.reset();
    self->delayed_send(self, std::chrono::seconds(1), raft_restart_atom::value);
    return;
  }
  st.raft.restarting = false;
  after_message(self);
  publish_report(self);
}

/// A replicated shard stops: what waits is answered, the modules go, and libraft closes
/// (through the io's posted work, so the actor lives on until then).
void stop_replica(host_pointer self, caf::error reason) {
  auto& st = self->state;
  if (st.raft.restart_closing) {
    // The old group is closing for a restart: the stop completes when it has closed.
    st.raft.closing = true;
    st.raft.exit_reason = std::move(reason);
    return;
  }
  if (st.raft.restarting) {
    st.raft.closing = true;
    return self->quit(std::move(reason)); // no group runs between restarts
  }
  if (st.raft.broken || !st.raft.group || !st.raft.group->started()) {
    // Nothing of libraft runs: nothing to wait for.
    st.raft.closing = true;
    if (st.ctx) st.ctx->close();
    return self->quit(std::move(reason));
  }
  if (st.raft.closing) return; // a second exit: the close is under way
  st.raft.closing = true;
  st.ctx->close();
  st.drop_modules();
  st.raft.group->close([self, reason = std::move(reason)]() mutable {
    self->state.raft.path = nullptr;
    self->quit(std::move(reason));
  });
}

template <class... Rs>
host_actor::behavior_type behavior(host_pointer self, core::type_list<Rs...>) {
  return {
    protocol::handler<Rs>(self,
                          [self](Rs&& req, core::reply_to<protocol::reply_of<Rs>> to) {
                            auto& st = self->state;
                            if (!st.has_modules()) return to.deliver(refusal(st));
                            st.template module_for<Rs>().serve(std::move(req), std::move(to));
                            after_message(self);
                          })...,
    [self](tick_atom) {
      if (!self->state.ctx) return; // between two starts of a replica
      self->state.ctx->on_tick();
      after_message(self);
    },
    [self](step_atom) {
      if (!self->state.ctx) return;
      self->state.ctx->on_step();
      after_message(self);
    },
    [self](raft_restart_atom) { start_again(self); },
    [self](raft_msg_atom, std::string& bytes) {
      auto& r = self->state.raft;
      if (!r.group || !r.group->started()) return;
      r.group->deliver(bytes);
      after_message(self);
    },
    [self](raft_tick_atom, std::uint64_t gen) {
      auto& r = self->state.raft;
      if (gen != r.tick_gen || !r.tick) return;
      self->delayed_send(self, std::chrono::milliseconds(r.tick_ms), raft_tick_atom::value, gen);
      r.tick();
      after_message(self);
      publish_report(self); // commit and applied indexes move without a change of role
    },
    [self](digest_atom, core::reply_to<cluster::replica_digest>& to) {
      auto& st = self->state;
      auto& r = st.raft;
      if (!r.group || !r.group->started())
        return to.deliver(st.raft.broken
                            ? *st.raft.broken
                            : core::error{core::errc::shard_unavailable,
                                          "this node's replica of shard "
                                            + std::to_string(st.cfg.index) + " is not running"});
      auto d = r.group->machine().digest();
      if (!d) return to.deliver(std::move(d).error());
      cluster::replica_digest out;
      out.shard = st.cfg.index;
      out.node = r.group->report().node;
      out.applied_index = d->applied_index;
      out.keys = d->keys;
      out.checksum = d->checksum;
      to.deliver(std::move(out));
    },
    [self](raft_post_atom) {
      auto& r = self->state.raft;
      r.post_pending = false;
      // Only what was posted before: what these post runs in the next round.
      auto batch = std::move(r.posted);
      r.posted.clear();
      for (auto& fn : batch)
        fn();
      if (self->state.ctx) after_message(self);
    },
  };
}

host_actor::behavior_type host_impl(host_pointer self, host_config cfg) {
  self->set_down_handler([self](caf::down_msg& msg) {
    auto& st = self->state;
    if (!st.runtime) return;
    if (auto h = st.runtime->gone(msg.source)) st.actors->down(*h);
  });
  if (cfg.replication)
    self->set_exit_handler([self](caf::exit_msg& msg) { stop_replica(self, msg.reason); });
  start(self, std::move(cfg));
  return behavior(self, protocol::shard_requests{});
}

} // namespace

void ask_digest(const protocol::shard_actor& host, core::reply_to<cluster::replica_digest> to) {
  caf::anon_send(caf::actor_cast<caf::actor>(host), digest_atom::value, std::move(to));
}

void deliver_raft(const protocol::shard_actor& host, std::string bytes) {
  caf::anon_send(caf::actor_cast<caf::actor>(host), raft_msg_atom::value, std::move(bytes));
}

protocol::shard_actor spawn_shard_host(caf::actor_system& sys, host_config cfg) {
  return caf::actor_cast<protocol::shard_actor>(sys.spawn(host_impl, std::move(cfg)));
}

} // namespace shoal::host
