// SPDX-License-Identifier: Apache-2.0
#include "actors/shard_actor.hpp"

#include <algorithm>
#include <deque>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <random>
#include <utility>
#include <variant>

#include <caf/actor_system.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "actors/actor_api.hpp"
#include "actors/actor_metrics.hpp"
#include "actors/documents.hpp"
#include "actors/reply_target.hpp"
#include "actors/virtual_actor.hpp"
#include "storage/store.hpp"

namespace shoal::actors {

namespace {

using doc_target = reply_target<doc_reply, reply_sink>;
using job_target = reply_target<jobs::job_reply, jobs::job_sink>;

struct held_doc {
  doc_target to;
  doc_reply reply;
  std::string key;
};

struct held_job {
  job_target to;
  jobs::job_reply reply;
  std::vector<std::string> keys;
};

/// A reply held back until the WAL is durable up to `sequence`.
struct held_reply {
  std::variant<held_doc, held_job> what;
  std::uint64_t sequence;
};

using call_target = reply_target<actor_reply, call_sink>;

/// A call for an actor that is being passivated: it waits for the next activation.
struct waiting_call {
  actor_call call;
  call_target to;
};

/// A virtual actor this shard has activated.
struct hosted_actor {
  virtual_actor handle;
  std::list<std::string>::iterator lru; ///< valid while not stopping
  caf::actor_clock::time_point last_used;
  const actor_type* type = nullptr;
  bool stopping = false;
  /// Calls that arrived while stopping, in order; created only then (an empty
  /// std::deque allocates, and most actors never see a call while stopping).
  std::unique_ptr<std::deque<waiting_call>> waiting;
};

struct shard_state {
  shard_config cfg;
  /// Active and stopping virtual actors by state key.
  std::unordered_map<std::string, hosted_actor> hosted;
  std::unordered_map<caf::actor_addr, std::string> hosted_keys; ///< address → state key
  std::list<std::string> lru; ///< active (not stopping) actors, least recently used first
  bool tick_scheduled = false;
  storage::shard_store* shard = nullptr;
  /// Replies waiting for the syncer, in arrival order (sequences never decrease).
  std::deque<held_reply> held;
  /// Document keys with at least one held reply, and how many.
  std::unordered_map<std::string, std::uint32_t> unsynced;
  std::uint64_t last_sequence = 0; ///< the store's sequence after our last write
  bool sync_in_flight = false;
  /// The shard's jobs; null when their records could not be loaded (job requests then
  /// fail with storage_error and `jobs_error`).
  std::unique_ptr<jobs::job_queue> jobs;
  std::string jobs_error;
  /// When the job timer is due to fire (Unix ms); 0: not scheduled.
  std::uint64_t job_wakeup = 0;

  ~shard_state() {
    // Only sinks can be told now; promises die with the actor and CAF reports that.
    for (auto& h : held) {
      if (auto* d = std::get_if<held_doc>(&h.what); d && d->to.sink)
        d->to.sink->deliver(doc_reply{doc_status::unavailable, 0, {}, "shard stopped"});
      if (auto* j = std::get_if<held_job>(&h.what); j && j->to.sink)
        j->to.sink->deliver(
          jobs::job_reply{jobs::job_status::unavailable, {}, "shard stopped", {}, {}, {}});
    }
    // The hosted actors end with their shard.
    for (auto& [key, h] : hosted)
      caf::anon_send_exit(h.handle, caf::exit_reason::user_shutdown);
  }

  static inline const char* name = "shoal.shard";
};

using shard_pointer = shard_actor::stateful_pointer<shard_state>;

doc_reply storage_failure(const storage::status& s) {
  return doc_reply{doc_status::storage_error, 0, {}, s.to_string()};
}

void request_sync(shard_pointer self);

/// Delivers or holds `reply` for the document `key`.
void respond(shard_pointer self, doc_target to, doc_reply reply, std::string key, bool wrote) {
  auto& st = self->state;
  bool must_wait = st.cfg.sync && (wrote || st.unsynced.count(key) > 0);
  if (!must_wait) {
    to.deliver(std::move(reply));
    return;
  }
  ++st.unsynced[key];
  st.held.push_back({held_doc{std::move(to), std::move(reply), std::move(key)}, st.last_sequence});
  request_sync(self);
}

/// As above for a job reply about the job keys `keys`.
void respond(shard_pointer self, job_target to, jobs::job_reply reply,
             std::vector<std::string> keys, bool wrote) {
  auto& st = self->state;
  bool must_wait = st.cfg.sync && wrote;
  for (std::size_t i = 0; i < keys.size() && st.cfg.sync && !must_wait; ++i)
    must_wait = st.unsynced.count(keys[i]) > 0;
  if (!must_wait) {
    to.deliver(std::move(reply));
    return;
  }
  for (const auto& k : keys)
    ++st.unsynced[k];
  st.held.push_back({held_job{std::move(to), std::move(reply), std::move(keys)}, st.last_sequence});
  request_sync(self);
}

void forget_unsynced(shard_state& st, const std::string& key) {
  if (auto it = st.unsynced.find(key); it != st.unsynced.end() && --it->second == 0)
    st.unsynced.erase(it);
}

/// Releases every held reply whose write is durable at `durable`.
void release(shard_pointer self, std::uint64_t durable) {
  auto& st = self->state;
  while (!st.held.empty() && st.held.front().sequence <= durable) {
    auto h = std::move(st.held.front());
    st.held.pop_front();
    if (auto* d = std::get_if<held_doc>(&h.what)) {
      forget_unsynced(st, d->key);
      d->to.deliver(std::move(d->reply));
    } else {
      auto& j = std::get<held_job>(h.what);
      for (const auto& k : j.keys)
        forget_unsynced(st, k);
      j.to.deliver(std::move(j.reply));
    }
  }
}

void request_sync(shard_pointer self) {
  auto& st = self->state;
  if (st.sync_in_flight || st.held.empty()) return;
  st.sync_in_flight = true;
  auto wanted = st.held.back().sequence;
  self->request(st.cfg.syncer, caf::infinite, wal_sync_atom::value, wanted)
    .then(
      [=](std::uint64_t durable) {
        self->state.sync_in_flight = false;
        release(self, durable);
        request_sync(self);
      },
      [=](caf::error& err) {
        // The WAL could not be made durable: nothing held may be acknowledged.
        auto& st = self->state;
        st.sync_in_flight = false;
        auto message = self->system().render(err);
        while (!st.held.empty()) {
          auto h = std::move(st.held.front());
          st.held.pop_front();
          if (auto* d = std::get_if<held_doc>(&h.what))
            d->to.deliver(doc_reply{doc_status::storage_error, 0, {}, message});
          else
            std::get<held_job>(h.what).to.deliver(
              jobs::job_reply{jobs::job_status::storage_error, {}, message, {}, {}, {}});
        }
        st.unsynced.clear();
      });
}

/// The live documents of a collection on this shard and the aggregates of one field.
doc_reply collection_stats(shard_state& st, const doc_request& req) {
  documents::field_stats stats;
  auto s = st.shard->scan_prefix(documents::collection_prefix(req.collection),
                                 [&](std::string_view, std::string_view value) {
                                   auto r = documents::decode(value);
                                   if (r && !r->deleted) stats.add_document(r->json, req.body);
                                   return true;
                                 });
  if (!s) return storage_failure(s);
  return doc_reply{doc_status::ok, 0, stats.to_json(), {}};
}

void handle(shard_pointer self, doc_request&& req, doc_target to) {
  auto& st = self->state;
  auto key = documents::key(req.collection, req.id);
  std::string raw;
  std::optional<documents::record> current;
  if (auto s = st.shard->get(key, raw); s.is_ok()) {
    current = documents::decode(raw);
    if (!current) {
      respond(self, std::move(to),
              doc_reply{doc_status::invalid_document, 0, {}, "stored record is corrupt"},
              std::move(key), false);
      return;
    }
  } else if (s.code() != storage::errc::not_found) {
    respond(self, std::move(to), storage_failure(s), std::move(key), false);
    return;
  }
  if (req.op == doc_op::get) {
    respond(self, std::move(to), documents::read(req, current), std::move(key), false);
    return;
  }
  if (req.op == doc_op::stats) {
    respond(self, std::move(to), collection_stats(st, req), std::move(key), false);
    return;
  }
  auto plan = documents::plan_write(req, current);
  if (plan.what == documents::write_plan::action::none) {
    respond(self, std::move(to), std::move(plan.reply), std::move(key), false);
    return;
  }
  storage::write_batch batch;
  batch.put(key, std::move(plan.value));
  // Never fsync here: with storage.sync the syncer does it once for many writes.
  if (auto s = st.shard->write(batch, false); !s) {
    respond(self, std::move(to), storage_failure(s), std::move(key), false);
    return;
  }
  if (st.cfg.sync) st.last_sequence = st.cfg.store->latest_sequence();
  respond(self, std::move(to), std::move(plan.reply), std::move(key), true);
}

// -- jobs ----------------------------------------------------------------------

std::uint64_t now_ms() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                      std::chrono::system_clock::now().time_since_epoch())
                                      .count());
}

/// Tells the broker about newly due (queue, type) pairs and arms the job timer for the
/// next lease expiry or delayed job. Runs after every job operation and tick.
void after_jobs(shard_pointer self, std::uint64_t now) {
  auto& st = self->state;
  if (!st.jobs) return;
  auto ready = st.jobs->take_announcements(now);
  if (st.cfg.jobs.broker)
    for (auto& [queue, type] : ready)
      caf::anon_send(st.cfg.jobs.broker, job_ready_atom::value, std::move(queue), std::move(type),
                     st.cfg.index);
  auto next = st.jobs->next_wakeup();
  if (!next || (st.job_wakeup != 0 && st.job_wakeup <= *next)) return;
  st.job_wakeup = *next;
  auto wait = std::chrono::milliseconds(*next > now ? *next - now : 0);
  self->delayed_send(self, wait, job_tick_atom::value);
}

void on_job_tick(shard_pointer self) {
  auto& st = self->state;
  st.job_wakeup = 0;
  if (!st.jobs) return;
  auto now = now_ms();
  auto step = st.jobs->expire(now);
  if (step.wrote && st.cfg.sync) st.last_sequence = st.cfg.store->latest_sequence();
  after_jobs(self, now);
}

void handle_job(shard_pointer self, jobs::job_request&& req, job_target to) {
  auto& st = self->state;
  if (!st.jobs) {
    to.deliver(jobs::job_reply{jobs::job_status::storage_error, {}, st.jobs_error, {}, {}, {}});
    return;
  }
  auto now = now_ms();
  auto step = st.jobs->apply(std::move(req), now);
  if (step.wrote && st.cfg.sync) st.last_sequence = st.cfg.store->latest_sequence();
  // Announce before replying: a worker that leases right after its 202 then finds the
  // broker told already (both messages reach the broker in send order).
  after_jobs(self, now);
  respond(self, std::move(to), std::move(step.reply), std::move(step.keys), step.wrote);
}

void start_jobs(shard_pointer self) {
  auto& st = self->state;
  std::random_device seed;
  auto q =
    std::make_unique<jobs::job_queue>(*st.shard, st.cfg.index, st.cfg.jobs.retry,
                                      st.cfg.jobs.metrics, (std::uint64_t{seed()} << 32) ^ seed());
  auto now = now_ms();
  if (auto s = q->recover(now, st.cfg.jobs.incarnation); !s) {
    st.jobs_error = "the jobs of shard " + std::to_string(st.cfg.index)
                    + " could not be loaded: " + s.to_string();
    return;
  }
  st.jobs = std::move(q);
  after_jobs(self, now);
}

// -- virtual actor hosting ---------------------------------------------------

void route_call(shard_pointer self, actor_call&& call, call_target to);

void schedule_tick(shard_pointer self) {
  auto& st = self->state;
  if (st.tick_scheduled || st.lru.empty()) return;
  st.tick_scheduled = true;
  auto interval = std::max(st.cfg.hosting.idle_timeout / 2, std::chrono::milliseconds(10));
  self->delayed_send(self, interval, idle_tick_atom::value);
}

/// Called when a passivated actor confirmed it stopped: calls that waited for it start a
/// new activation, in their order.
void on_stopped(shard_pointer self, const std::string& key) {
  auto& st = self->state;
  auto it = st.hosted.find(key);
  if (it == st.hosted.end() || !it->second.stopping) return;
  auto waiting = std::move(it->second.waiting);
  st.hosted_keys.erase(it->second.handle.address());
  st.hosted.erase(it);
  if (waiting)
    for (auto& w : *waiting)
      route_call(self, std::move(w.call), std::move(w.to));
}

// `key` is taken by value: callers pass `st.lru.front()`, which `lru.erase` destroys.
void passivate(shard_pointer self, std::string key) {
  auto& st = self->state;
  auto& h = st.hosted.at(key);
  h.stopping = true;
  st.lru.erase(h.lru);
  if (auto* m = st.cfg.hosting.metrics ? st.cfg.hosting.metrics->find(h.type->name()) : nullptr) {
    m->active.add(-1);
    m->passivations.inc();
  }
  // The actor answers once everything queued before this request is done; until then
  // new calls wait here, so none is lost and none overtakes an earlier one.
  self->request(h.handle, caf::infinite, passivate_atom::value)
    .then([self, key](caf::ok_atom) { on_stopped(self, key); },
          [self, key](caf::error&) { on_stopped(self, key); });
}

hosted_actor& activate(shard_pointer self, const actor_type* type, const std::string& key,
                       const std::string& id) {
  auto& st = self->state;
  const auto& h = st.cfg.hosting;
  virtual_actor_config vc;
  vc.type = type;
  vc.id = id;
  vc.shard = st.cfg.index;
  vc.store = st.cfg.store;
  vc.sync = st.cfg.sync;
  vc.syncer = st.cfg.syncer;
  vc.peers = h.peers;
  vc.call_timeout = h.call_timeout;
  vc.metrics = h.metrics;
  auto handle = spawn_virtual_actor(self->system(), std::move(vc));
  self->monitor(handle);
  st.hosted_keys.emplace(handle.address(), key);
  auto& entry = st.hosted[key];
  entry.handle = std::move(handle);
  entry.type = type;
  entry.lru = st.lru.insert(st.lru.end(), key);
  if (auto* m = h.metrics ? h.metrics->find(type->name()) : nullptr) {
    m->active.add(1);
    m->activations.inc();
  }
  return entry;
}

void route_call(shard_pointer self, actor_call&& call, call_target to) {
  auto& st = self->state;
  const auto& h = st.cfg.hosting;
  const actor_type* type = h.registry ? h.registry->find(call.type) : nullptr;
  if (!type) {
    to.deliver(actor_reply{404, {}, "unknown_actor_type", "no actor type '" + call.type + "'"});
    return;
  }
  if (!type->find(call.method)) {
    // Refused here, so that a wrong method name does not activate (load) the actor.
    to.deliver(actor_reply{404,
                           {},
                           "unknown_method",
                           "actor type '" + call.type + "' has no method '" + call.method + "'"});
    return;
  }
  auto key = actor_state_key(call.type, call.id);
  auto it = st.hosted.find(key);
  if (it != st.hosted.end() && it->second.stopping) {
    auto& waiting = it->second.waiting;
    if (!waiting) waiting = std::make_unique<std::deque<waiting_call>>();
    waiting->push_back({std::move(call), std::move(to)});
    return;
  }
  auto& entry = it != st.hosted.end() ? it->second : activate(self, type, key, call.id);
  entry.last_used = self->clock().now();
  st.lru.splice(st.lru.end(), st.lru, entry.lru); // most recently used last
  if (to.sink)
    self->send(entry.handle, std::move(call), std::move(to.sink));
  else
    to.promise.delegate(entry.handle, std::move(call));
  // Over the bound: the least recently used go first (never the one just called).
  while (st.lru.size() > std::max<std::uint32_t>(h.max_active, 1))
    passivate(self, st.lru.front());
  schedule_tick(self);
}

void on_idle_tick(shard_pointer self) {
  auto& st = self->state;
  st.tick_scheduled = false;
  auto now = self->clock().now();
  while (!st.lru.empty()) {
    auto& h = st.hosted.at(st.lru.front());
    if (now - h.last_used < st.cfg.hosting.idle_timeout) break;
    passivate(self, st.lru.front());
  }
  schedule_tick(self);
}

/// A hosted actor went down without being passivated (it cannot, short of a bug).
void on_actor_down(shard_pointer self, const caf::down_msg& msg) {
  auto& st = self->state;
  auto k = st.hosted_keys.find(msg.source);
  if (k == st.hosted_keys.end()) return;
  auto key = k->second;
  st.hosted_keys.erase(k);
  auto it = st.hosted.find(key);
  if (it == st.hosted.end() || it->second.stopping) return; // a passivation: on_stopped handles it
  st.lru.erase(it->second.lru);
  if (auto* m =
        st.cfg.hosting.metrics ? st.cfg.hosting.metrics->find(it->second.type->name()) : nullptr)
    m->active.add(-1);
  st.hosted.erase(it);
}

shard_actor::behavior_type shard_impl(shard_pointer self, shard_config cfg) {
  self->state.shard = &cfg.store->shard(cfg.index);
  self->state.cfg = std::move(cfg);
  self->set_down_handler([self](caf::down_msg& msg) { on_actor_down(self, msg); });
  start_jobs(self);
  return {
    [=](doc_request& req) {
      auto rp = self->make_response_promise<doc_reply>();
      handle(self, std::move(req), doc_target{nullptr, rp});
      return rp;
    },
    [=](doc_request& req, reply_sink_ptr& sink) {
      handle(self, std::move(req), doc_target{std::move(sink), {}});
    },
    [=](actor_call& call) {
      auto rp = self->make_response_promise<actor_reply>();
      route_call(self, std::move(call), call_target{nullptr, rp});
      return rp;
    },
    [=](actor_call& call, call_sink_ptr& sink) {
      route_call(self, std::move(call), call_target{std::move(sink), {}});
    },
    [=](idle_tick_atom) { on_idle_tick(self); },
    [=](jobs::job_request& req) {
      auto rp = self->make_response_promise<jobs::job_reply>();
      handle_job(self, std::move(req), job_target{nullptr, rp});
      return rp;
    },
    [=](jobs::job_request& req, jobs::job_sink_ptr& sink) {
      handle_job(self, std::move(req), job_target{std::move(sink), {}});
    },
    [=](job_tick_atom) { on_job_tick(self); },
  };
}

} // namespace

shard_actor spawn_shard(caf::actor_system& sys, shard_config cfg) {
  return sys.spawn(shard_impl, std::move(cfg));
}

} // namespace shoal::actors
