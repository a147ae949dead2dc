// SPDX-License-Identifier: Apache-2.0
#include "actors/shard_actor.hpp"

#include <algorithm>
#include <deque>
#include <limits>
#include <list>
#include <set>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <random>
#include <tuple>
#include <utility>
#include <variant>

#include <caf/actor_system.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "actors/actor_api.hpp"
#include "actors/actor_metrics.hpp"
#include "actors/doc_cache.hpp"
#include "actors/documents.hpp"
#include "actors/shard_metrics.hpp"
#include "actors/reply_target.hpp"
#include "actors/virtual_actor.hpp"
#include "cache/ttl_cache.hpp"
#include "changes/change_log.hpp"
#include "query/shard_index.hpp"
#include "query/values.hpp"
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
using cache_target = reply_target<cache_reply, cache_sink>;

/// A change-feed read waiting for the collection's next event.
struct change_waiter {
  std::uint64_t after;
  std::uint32_t limit;
  std::chrono::steady_clock::time_point deadline;
  doc_target to;
};

/// Change-log events written but not yet readable: with storage.sync they become
/// readable when the fsync covering `sequence` is done.
struct unpublished_event {
  std::uint64_t sequence;
  std::string collection;
  std::uint64_t seq;
};

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
  /// Secondary indexes; null when their definitions could not be loaded.
  std::unique_ptr<query::shard_index> indexes;
  std::string indexes_error;
  bool build_scheduled = false;
  std::unique_ptr<changes::change_log> log;
  std::deque<unpublished_event> unpublished;
  /// Change-feed reads parked until their collection gets an event, by collection.
  std::unordered_map<std::string, std::vector<change_waiter>> waiters;
  std::size_t waiter_count = 0;
  std::unique_ptr<doc_cache> docs;
  std::unique_ptr<cache::ttl_cache> ttl;
  /// When each shard tick in flight fires (actor clock). A read that parks while only a
  /// later (idle) tick is pending gets an earlier one of its own.
  std::multiset<caf::actor_clock::time_point> shard_ticks;
  std::uint64_t next_trim_ms = 0;

  ~shard_state() {
    // Only sinks can be told now; promises die with the actor and CAF reports that.
    for (auto& [collection, list] : waiters)
      for (auto& w : list)
        if (w.to.sink)
          w.to.sink->deliver(doc_reply{doc_status::unavailable, 0, {}, "shard stopped"});
    if (cfg.data.metrics) {
      cfg.data.metrics->change_waiters.add(-static_cast<std::int64_t>(waiter_count));
      if (docs) cfg.data.metrics->doc_cache_bytes.add(-static_cast<std::int64_t>(docs->bytes()));
      if (ttl) {
        cfg.data.metrics->cache_bytes.add(-static_cast<std::int64_t>(ttl->bytes()));
        cfg.data.metrics->cache_entries.add(-static_cast<std::int64_t>(ttl->size()));
      }
    }
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
void publish(shard_pointer self, const std::string& collection, std::uint64_t seq);

void release(shard_pointer self, std::uint64_t durable) {
  auto& st = self->state;
  // Change events covered by the fsync become readable before their writes are answered.
  while (!st.unpublished.empty() && st.unpublished.front().sequence <= durable) {
    auto e = std::move(st.unpublished.front());
    st.unpublished.pop_front();
    publish(self, e.collection, e.seq);
  }
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
        // The writes stay in the store, where reads see them: so does the change feed.
        while (!st.unpublished.empty()) {
          auto e = std::move(st.unpublished.front());
          st.unpublished.pop_front();
          publish(self, e.collection, e.seq);
        }
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

doc_reply bad_request(std::string code, std::string message) {
  doc_reply r;
  r.status = doc_status::bad_request;
  r.code = std::move(code);
  r.message = std::move(message);
  return r;
}

std::uint64_t now_ms() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                      std::chrono::system_clock::now().time_since_epoch())
                                      .count());
}

// -- periodic work: change-feed waits, TTL expiry, change-log trimming -------------

constexpr std::chrono::milliseconds waiter_tick{100};
constexpr std::chrono::milliseconds idle_shard_tick{1000};

void schedule_shard_tick(shard_pointer self) {
  auto& st = self->state;
  const bool needed = st.waiter_count > 0 || (st.ttl && st.ttl->size() > 0)
                      || (st.log && st.cfg.data.change_retention_ms > 0);
  if (!needed) return;
  const auto interval = st.waiter_count > 0 ? waiter_tick : idle_shard_tick;
  const auto due = self->clock().now() + interval;
  if (!st.shard_ticks.empty() && *st.shard_ticks.begin() <= due) return;
  st.shard_ticks.insert(due);
  self->delayed_send(self, interval, shard_tick_atom::value);
}

/// The reply to a change-feed read, from the log (an empty batch when nothing is new).
doc_reply read_changes(shard_state& st, const std::string& collection, std::uint64_t after,
                       std::uint32_t limit) {
  changes::batch b;
  changes::change_log::read_result r;
  if (auto s = st.log->read(collection, after, limit, b, r); !s) return storage_failure(s);
  if (r == changes::change_log::read_result::gone) {
    doc_reply reply;
    reply.status = doc_status::gone;
    reply.message = "events after " + std::to_string(after) + " of " + collection
                    + " on this shard are no longer kept (oldest kept: " + std::to_string(b.first)
                    + ", newest: " + std::to_string(b.last) + ")";
    return reply;
  }
  return doc_reply{doc_status::ok, b.last, changes::encode_batch(b), {}};
}

void answer_changes(shard_state& st, const std::string& collection, std::uint64_t after,
                    std::uint32_t limit, doc_target& to) {
  to.deliver(read_changes(st, collection, after, limit));
}

/// Events of `collection` became readable: answer the reads waiting for them. Streams
/// that are caught up all wait at the same point, so each distinct (after, limit) is read
/// and encoded once and its reply copied to every reader.
void wake_waiters(shard_pointer self, const std::string& collection) {
  auto& st = self->state;
  auto it = st.waiters.find(collection);
  if (it == st.waiters.end()) return;
  auto list = std::move(it->second);
  st.waiters.erase(it);
  st.waiter_count -= list.size();
  if (st.cfg.data.metrics)
    st.cfg.data.metrics->change_waiters.add(-static_cast<std::int64_t>(list.size()));
  std::sort(list.begin(), list.end(), [](const change_waiter& a, const change_waiter& b) {
    return std::tie(a.after, a.limit) < std::tie(b.after, b.limit);
  });
  for (std::size_t i = 0; i < list.size();) {
    auto reply = read_changes(st, collection, list[i].after, list[i].limit);
    auto j = i + 1;
    while (j < list.size() && list[j].after == list[i].after && list[j].limit == list[i].limit)
      ++j;
    for (auto k = i; k + 1 < j; ++k)
      list[k].to.deliver(doc_reply{reply});
    list[j - 1].to.deliver(std::move(reply));
    i = j;
  }
}

void publish(shard_pointer self, const std::string& collection, std::uint64_t seq) {
  self->state.log->publish(collection, seq);
  wake_waiters(self, collection);
}

void on_shard_tick(shard_pointer self) {
  auto& st = self->state;
  // Ticks fire in the order they are due: this is the earliest in flight.
  if (!st.shard_ticks.empty()) st.shard_ticks.erase(st.shard_ticks.begin());
  const auto now = std::chrono::steady_clock::now();
  if (st.waiter_count > 0) {
    for (auto it = st.waiters.begin(); it != st.waiters.end();) {
      auto& list = it->second;
      auto keep = std::partition(list.begin(), list.end(),
                                 [&](const change_waiter& w) { return w.deadline > now; });
      for (auto w = keep; w != list.end(); ++w)
        answer_changes(st, it->first, w->after, w->limit, w->to);
      const auto expired = static_cast<std::size_t>(list.end() - keep);
      st.waiter_count -= expired;
      if (st.cfg.data.metrics)
        st.cfg.data.metrics->change_waiters.add(-static_cast<std::int64_t>(expired));
      list.erase(keep, list.end());
      it = list.empty() ? st.waiters.erase(it) : std::next(it);
    }
  }
  const auto wall = now_ms();
  if (st.ttl && st.ttl->size() > 0) {
    const auto bytes = st.ttl->bytes();
    const auto size = st.ttl->size();
    st.ttl->expire(wall, 10000);
    if (auto* m = st.cfg.data.metrics) {
      m->cache_bytes.add(static_cast<std::int64_t>(st.ttl->bytes())
                         - static_cast<std::int64_t>(bytes));
      m->cache_entries.add(static_cast<std::int64_t>(st.ttl->size())
                           - static_cast<std::int64_t>(size));
    }
  }
  if (st.log && st.cfg.data.change_retention_ms > 0 && wall >= st.next_trim_ms) {
    st.next_trim_ms = wall + 1000;
    std::size_t deleted = 0;
    (void)st.log->trim_by_age(wall, 10000, deleted);
  }
  schedule_shard_tick(self);
}

// -- documents ------------------------------------------------------------------

/// Reads the stored record of `key`, through the read cache.
storage::status read_record(shard_state& st, const std::string& key, bool count, std::string& raw,
                            const std::string*& found) {
  found = nullptr;
  auto* m = count ? st.cfg.data.metrics : nullptr;
  if (st.docs) {
    if (const auto* cached = st.docs->get(key)) {
      if (m) m->doc_cache_hits.inc();
      found = cached;
      return storage::status::ok();
    }
  }
  if (m) m->doc_cache_misses.inc();
  auto s = st.shard->get(key, raw);
  if (s.code() == storage::errc::not_found) return storage::status::ok();
  if (!s) return s;
  found = &raw;
  // Only reads fill the cache: caching what is written but never read would evict what
  // is read, and costs every write a copy.
  if (st.docs && count && documents::decode(raw)) {
    const auto before = st.docs->bytes();
    st.docs->put(key, raw);
    if (m)
      m->doc_cache_bytes.add(static_cast<std::int64_t>(st.docs->bytes())
                             - static_cast<std::int64_t>(before));
  }
  return storage::status::ok();
}

void handle_collection(shard_pointer self, doc_request&& req, doc_target to);

void handle(shard_pointer self, doc_request&& req, doc_target to) {
  auto& st = self->state;
  switch (req.op) {
  case doc_op::get:
  case doc_op::put:
  case doc_op::patch:
  case doc_op::del:
    break;
  default:
    return handle_collection(self, std::move(req), std::move(to));
  }
  auto key = documents::key(req.collection, req.id);
  std::string raw;
  const std::string* stored = nullptr;
  if (auto s = read_record(st, key, req.op == doc_op::get, raw, stored); !s) {
    respond(self, std::move(to), storage_failure(s), std::move(key), false);
    return;
  }
  std::optional<documents::record> current;
  if (stored) {
    current = documents::decode(*stored);
    if (!current) {
      respond(self, std::move(to),
              doc_reply{doc_status::invalid_document, 0, {}, "stored record is corrupt"},
              std::move(key), false);
      return;
    }
  }
  if (req.op == doc_op::get) {
    respond(self, std::move(to), documents::read(req, current), std::move(key), false);
    return;
  }
  // Writes need the indexes: one that skipped its index entries would leave them wrong
  // for good once the definitions load again.
  if (!st.indexes) {
    respond(self, std::move(to), doc_reply{doc_status::storage_error, 0, {}, st.indexes_error},
            std::move(key), false);
    return;
  }
  auto plan = documents::plan_write(req, current);
  if (plan.what == documents::write_plan::action::none) {
    respond(self, std::move(to), std::move(plan.reply), std::move(key), false);
    return;
  }
  // The document, its index entries and its change event: one batch, so a crash keeps
  // all or none of them.
  storage::write_batch batch;
  const auto after = documents::decode(plan.value);
  const std::string_view before_json =
    current && current->live() ? current->json : std::string_view{};
  const std::string_view after_json = after && after->live() ? after->json : std::string_view{};
  if (st.indexes && st.indexes->indexed(req.collection))
    st.indexes->plan_document(batch, req.collection, req.id, before_json, after_json);
  changes::pending event;
  if (st.log) {
    changes::event e;
    e.kind = after_json.empty() ? changes::event_kind::del : changes::event_kind::put;
    e.id = req.id;
    e.version = plan.reply.version;
    e.doc.assign(after_json);
    e.time_ms = now_ms();
    if (auto s = st.log->append(batch, req.collection, std::move(e), event); !s) {
      respond(self, std::move(to), storage_failure(s), std::move(key), false);
      return;
    }
  }
  batch.put(key, plan.value);
  // Never fsync here: with storage.sync the syncer does it once for many writes.
  if (auto s = st.shard->write(batch, false); !s) {
    respond(self, std::move(to), storage_failure(s), std::move(key), false);
    return;
  }
  if (st.log) {
    st.log->commit(event);
    if (st.cfg.data.metrics) st.cfg.data.metrics->change_events.inc();
  }
  if (st.docs) {
    const auto bytes = st.docs->bytes();
    st.docs->refresh(key, std::move(plan.value));
    if (auto* m = st.cfg.data.metrics)
      m->doc_cache_bytes.add(static_cast<std::int64_t>(st.docs->bytes())
                             - static_cast<std::int64_t>(bytes));
  }
  if (st.cfg.sync) {
    st.last_sequence = st.cfg.store->latest_sequence();
    if (st.log) st.unpublished.push_back({st.last_sequence, req.collection, event.seq});
  } else if (st.log) {
    publish(self, req.collection, event.seq);
  }
  respond(self, std::move(to), std::move(plan.reply), std::move(key), true);
}

// -- indexes, queries, the change feed --------------------------------------------

void schedule_build(shard_pointer self) {
  auto& st = self->state;
  if (st.build_scheduled || !st.indexes || !st.indexes->building()) return;
  st.build_scheduled = true;
  // Behind whatever is queued: builds never hold up requests for long.
  self->send(self, index_step_atom::value);
}

void on_index_step(shard_pointer self) {
  auto& st = self->state;
  st.build_scheduled = false;
  if (!st.indexes || !st.indexes->building()) return;
  std::uint32_t visited = 0;
  if (auto s = st.indexes->build_step(st.cfg.data.index_build_batch, visited); !s) {
    // Try again later rather than spin on a failing store.
    st.build_scheduled = true;
    self->delayed_send(self, std::chrono::seconds(1), index_step_atom::value);
    return;
  }
  if (st.cfg.data.metrics) st.cfg.data.metrics->index_build_docs.inc(visited);
  schedule_build(self);
}

/// Definitions are held like document writes with storage.sync: a 201 is durable.
void respond_written(shard_pointer self, doc_target to, doc_reply reply, const std::string& what) {
  auto& st = self->state;
  if (st.cfg.sync) st.last_sequence = st.cfg.store->latest_sequence();
  respond(self, std::move(to), std::move(reply), "index:" + what, true);
}

/// Answers a read of many documents (a query, stats). It may see any write of this shard,
/// so with storage.sync it waits until the writes still waiting for their fsync are
/// durable, as a get waits for its document's write.
void respond_read(shard_pointer self, doc_target to, doc_reply reply) {
  auto& st = self->state;
  if (!st.cfg.sync || st.held.empty()) return to.deliver(std::move(reply));
  respond(self, std::move(to), std::move(reply), "~collection-read", true);
}

void handle_collection(shard_pointer self, doc_request&& req, doc_target to) {
  auto& st = self->state;
  if (req.op == doc_op::stats) return respond_read(self, std::move(to), collection_stats(st, req));
  if (req.op == doc_op::changes) {
    if (!st.log)
      return to.deliver(
        doc_reply{doc_status::not_found, 0, {}, "the change feed is turned off (changes.enabled)"});
    changes::batch b;
    changes::change_log::read_result r;
    if (auto s = st.log->read(req.collection, req.after, req.limit, b, r); !s)
      return to.deliver(storage_failure(s));
    const bool empty = b.events.empty() && r == changes::change_log::read_result::ok;
    if (empty && req.limit > 0 && req.after != std::numeric_limits<std::uint64_t>::max()
        && req.wait_ms > 0) {
      st.waiters[req.collection].push_back(
        {req.after, req.limit,
         std::chrono::steady_clock::now() + std::chrono::milliseconds(req.wait_ms), std::move(to)});
      ++st.waiter_count;
      if (st.cfg.data.metrics) st.cfg.data.metrics->change_waiters.add(1);
      schedule_shard_tick(self);
      return;
    }
    return answer_changes(st, req.collection, req.after, req.limit, to);
  }
  if (!st.indexes) return to.deliver(doc_reply{doc_status::storage_error, 0, {}, st.indexes_error});
  auto& idx = *st.indexes;
  switch (req.op) {
  case doc_op::index_put: {
    if (!query::valid_path(req.id))
      return to.deliver(bad_request("invalid_field", "\"" + req.id + "\" is not a field path"));
    bool created = false;
    if (auto s = idx.create(req.collection, req.id, created); !s)
      return to.deliver(storage_failure(s));
    doc_reply reply{created ? doc_status::created : doc_status::ok,
                    0,
                    idx.find(req.collection, req.id)->to_json(),
                    {}};
    if (created) schedule_build(self);
    if (!created) return to.deliver(std::move(reply));
    return respond_written(self, std::move(to), std::move(reply), req.collection + "/" + req.id);
  }
  case doc_op::index_get: {
    const auto* p = idx.find(req.collection, req.id);
    if (!p) return to.deliver(doc_reply{doc_status::not_found, 0, {}, "no such index"});
    return to.deliver(doc_reply{doc_status::ok, 0, p->to_json(), {}});
  }
  case doc_op::index_list: {
    std::string body = "{\"indexes\":[";
    bool first = true;
    for (const auto& p : idx.list(req.collection)) {
      if (!first) body += ',';
      first = false;
      body += p.to_json();
    }
    body += "]}";
    return to.deliver(doc_reply{doc_status::ok, 0, std::move(body), {}});
  }
  case doc_op::index_drop: {
    bool found = false;
    if (auto s = idx.drop(req.collection, req.id, found); !s) return to.deliver(storage_failure(s));
    if (!found) return to.deliver(doc_reply{doc_status::not_found, 0, {}, "no such index"});
    return respond_written(self, std::move(to), doc_reply{doc_status::ok, 0, {}, {}},
                           req.collection + "/" + req.id);
  }
  case doc_op::query: {
    query::query_limits limits;
    limits.max_limit = std::numeric_limits<std::uint32_t>::max() - 1;
    auto parsed = query::parse_shard_json(req.body, limits);
    if (auto* e = std::get_if<query::query_error>(&parsed))
      return to.deliver(bad_request(e->code, e->message));
    auto answer = idx.run(req.collection, std::get<query::query_spec>(parsed));
    if (auto* e = std::get_if<query::query_error>(&answer)) {
      if (e->code == "storage_error")
        return to.deliver(doc_reply{doc_status::storage_error, 0, {}, e->message});
      return to.deliver(bad_request(e->code, e->message));
    }
    if (auto* plan = std::get_if<query::shard_plan>(&answer))
      return to.deliver(doc_reply{doc_status::ok, 0, query::to_json(*plan), {}});
    return respond_read(
      self, std::move(to),
      doc_reply{doc_status::ok, 0, query::encode_hits(std::get<query::shard_hits>(answer)), {}});
  }
  default:
    return to.deliver(bad_request("invalid_operation", "not a collection operation"));
  }
}

// -- jobs ----------------------------------------------------------------------

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

// -- TTL cache, and the start of the data features -----------------------------

void handle_cache(shard_pointer self, cache_request&& req, cache_target to) {
  auto& st = self->state;
  auto& cache = *st.ttl;
  auto* m = st.cfg.data.metrics;
  const auto now = now_ms();
  const auto bytes = cache.bytes();
  const auto size = cache.size();
  const auto evictions = cache.evictions();
  cache_reply reply;
  switch (req.op) {
  case cache_op::get:
    if (const auto* e = cache.get(req.key, now)) {
      reply.value = e->value;
      reply.content_type = e->content_type;
      if (m) m->cache_hits.inc();
    } else {
      reply.status = cache_status::not_found;
      if (m) m->cache_misses.inc();
    }
    break;
  case cache_op::put:
    if (cache.put(req.key, std::move(req.value), std::move(req.content_type), now + req.ttl_ms)
        == cache::ttl_cache::put_result::too_large) {
      reply.status = cache_status::too_large;
      reply.message = "the entry is larger than this shard's share of cache.max_bytes ("
                      + std::to_string(cache.max_bytes()) + " bytes)";
    }
    break;
  case cache_op::del:
    if (!cache.erase(req.key, now)) reply.status = cache_status::not_found;
    break;
  }
  if (m) {
    m->cache_bytes.add(static_cast<std::int64_t>(cache.bytes()) - static_cast<std::int64_t>(bytes));
    m->cache_entries.add(static_cast<std::int64_t>(cache.size()) - static_cast<std::int64_t>(size));
    m->cache_evictions.inc(cache.evictions() - evictions);
  }
  to.deliver(std::move(reply));
  schedule_shard_tick(self);
}

void start_data(shard_pointer self) {
  auto& st = self->state;
  const auto& d = st.cfg.data;
  st.ttl = std::make_unique<cache::ttl_cache>(d.ttl_cache_bytes);
  if (d.doc_cache_bytes > 0) st.docs = std::make_unique<doc_cache>(d.doc_cache_bytes);
  if (d.change_log)
    st.log = std::make_unique<changes::change_log>(
      *st.shard, changes::retention{d.change_retention, d.change_retention_ms});
  query::document_layout layout;
  layout.prefix = [](std::string_view collection) {
    return documents::collection_prefix(collection);
  };
  layout.decode = [](std::string_view stored, std::uint64_t& version, std::string_view& json) {
    auto r = documents::decode(stored);
    if (!r || !r->live()) return false;
    version = r->version;
    json = r->json;
    return true;
  };
  if (auto s = query::shard_index::open(*st.shard, std::move(layout), st.indexes); !s) {
    st.indexes_error = "the indexes of shard " + std::to_string(st.cfg.index)
                       + " could not be loaded: " + s.to_string();
    schedule_shard_tick(self);
    return;
  }
  schedule_build(self); // a build a restart interrupted goes on
  schedule_shard_tick(self);
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
  start_data(self);
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
    [=](cache_request& req) {
      auto rp = self->make_response_promise<cache_reply>();
      handle_cache(self, std::move(req), cache_target{nullptr, rp});
      return rp;
    },
    [=](cache_request& req, cache_sink_ptr& sink) {
      handle_cache(self, std::move(req), cache_target{std::move(sink), {}});
    },
    [=](index_step_atom) { on_index_step(self); },
    [=](shard_tick_atom) { on_shard_tick(self); },
  };
}

} // namespace

shard_actor spawn_shard(caf::actor_system& sys, shard_config cfg) {
  return sys.spawn(shard_impl, std::move(cfg));
}

} // namespace shoal::actors
