// SPDX-License-Identifier: Apache-2.0
#include "actors/shard_actor.hpp"

#include <deque>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "actors/documents.hpp"
#include "storage/store.hpp"

namespace shoal::actors {

namespace {

/// Where one reply goes: a sink (edge) or a response promise (actors).
struct reply_target {
  reply_sink_ptr sink;
  caf::typed_response_promise<doc_reply> promise;

  void deliver(doc_reply&& reply) {
    if (sink)
      sink->deliver(std::move(reply));
    else
      promise.deliver(std::move(reply));
  }
};

/// A reply held back until the WAL is durable up to `sequence`.
struct held_reply {
  reply_target to;
  doc_reply reply;
  std::uint64_t sequence;
  std::string key;
};

struct shard_state {
  shard_config cfg;
  storage::shard_store* shard = nullptr;
  /// Replies waiting for the syncer, in arrival order (sequences never decrease).
  std::deque<held_reply> held;
  /// Document keys with at least one held reply, and how many.
  std::unordered_map<std::string, std::uint32_t> unsynced;
  std::uint64_t last_sequence = 0; ///< the store's sequence after our last write
  bool sync_in_flight = false;

  ~shard_state() {
    // Only sinks can be told now; promises die with the actor and CAF reports that.
    for (auto& h : held)
      if (h.to.sink)
        h.to.sink->deliver(doc_reply{doc_status::unavailable, 0, {}, "shard stopped"});
  }

  static inline const char* name = "shoal.shard";
};

using shard_pointer = shard_actor::stateful_pointer<shard_state>;

doc_reply storage_failure(const storage::status& s) {
  return doc_reply{doc_status::storage_error, 0, {}, s.to_string()};
}

void request_sync(shard_pointer self);

/// Delivers or holds `reply` for the document `key`.
void respond(shard_pointer self, reply_target to, doc_reply reply, std::string key,
             bool wrote) {
  auto& st = self->state;
  bool must_wait = st.cfg.sync && (wrote || st.unsynced.count(key) > 0);
  if (!must_wait) {
    to.deliver(std::move(reply));
    return;
  }
  ++st.unsynced[key];
  st.held.push_back({std::move(to), std::move(reply), st.last_sequence, std::move(key)});
  request_sync(self);
}

/// Releases every held reply whose write is durable at `durable`.
void release(shard_pointer self, std::uint64_t durable) {
  auto& st = self->state;
  while (!st.held.empty() && st.held.front().sequence <= durable) {
    auto h = std::move(st.held.front());
    st.held.pop_front();
    if (auto it = st.unsynced.find(h.key); it != st.unsynced.end() && --it->second == 0)
      st.unsynced.erase(it);
    h.to.deliver(std::move(h.reply));
  }
}

void request_sync(shard_pointer self) {
  auto& st = self->state;
  if (st.sync_in_flight || st.held.empty())
    return;
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
          h.to.deliver(doc_reply{doc_status::storage_error, 0, {}, message});
        }
        st.unsynced.clear();
      });
}

void handle(shard_pointer self, doc_request&& req, reply_target to) {
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
  if (st.cfg.sync)
    st.last_sequence = st.cfg.store->latest_sequence();
  respond(self, std::move(to), std::move(plan.reply), std::move(key), true);
}

shard_actor::behavior_type shard_impl(shard_pointer self, shard_config cfg) {
  self->state.shard = &cfg.store->shard(cfg.index);
  self->state.cfg = std::move(cfg);
  return {
    [=](doc_request& req) {
      auto rp = self->make_response_promise<doc_reply>();
      handle(self, std::move(req), reply_target{nullptr, rp});
      return rp;
    },
    [=](doc_request& req, reply_sink_ptr& sink) {
      handle(self, std::move(req), reply_target{std::move(sink), {}});
    },
  };
}

} // namespace

shard_actor spawn_shard(caf::actor_system& sys, shard_config cfg) {
  return sys.spawn(shard_impl, std::move(cfg));
}

} // namespace shoal::actors
