// SPDX-License-Identifier: Apache-2.0
#include "remote/remote_shard.hpp"

#include <functional>
#include <unordered_map>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

namespace shoal::remote {
namespace {

using actors::actor_call;
using actors::actor_reply;
using actors::doc_reply;
using actors::doc_request;
using actors::doc_status;

struct stub_state {
  remote_shard_config cfg;
  caf::actor gateway; ///< the owner's gateway, once a handshake completed
  bool up = false;
  std::string reason = "not connected yet";
  std::uint64_t next_id = 0;
  struct pending {
    std::chrono::steady_clock::time_point deadline;
    std::chrono::milliseconds wait;
    std::function<void(const std::string&, bool timed_out)> fail;
  };
  /// Requests in flight to the owner, by id. When the owner goes down they fail at once;
  /// the sweep fails those past their deadline; an answer that arrives for an id no
  /// longer here was already answered and is dropped.
  std::unordered_map<std::uint64_t, pending> in_flight;
  bool sweep_scheduled = false;
};

constexpr std::chrono::milliseconds sweep_interval{25};

using stub_pointer = remote_shard_actor::stateful_pointer<stub_state>;

std::string down_message(const stub_state& st) {
  return "node " + st.cfg.owner + " owns shard " + std::to_string(st.cfg.shard)
         + " and is unavailable: " + st.reason;
}

std::string failure_message(const stub_state& st, const caf::error& err,
                            std::chrono::milliseconds waited) {
  if (err == caf::sec::request_timeout)
    return "node " + st.cfg.owner + " did not answer within " + std::to_string(waited.count())
           + " ms";
  return "node " + st.cfg.owner + " is unreachable: " + caf::to_string(err);
}

doc_reply doc_unavailable(std::string message) {
  return doc_reply{doc_status::shard_unavailable, 0, {}, std::move(message)};
}

jobs::job_reply job_unavailable(std::string message) {
  jobs::job_reply r;
  r.status = jobs::job_status::shard_unavailable;
  r.message = std::move(message);
  return r;
}

actors::cache_reply cache_unavailable(std::string message) {
  actors::cache_reply r;
  r.status = actors::cache_status::shard_unavailable;
  r.message = std::move(message);
  return r;
}

/// How long to wait for the owner's answer to `req`: a change-feed read may wait for
/// events at the owner first.
std::chrono::milliseconds doc_budget(const stub_state& st, const doc_request& req) {
  if (req.op != actors::doc_op::changes) return st.cfg.failure_timeout;
  return st.cfg.failure_timeout + std::chrono::milliseconds(req.wait_ms);
}

actor_reply call_unavailable(std::string message) {
  return actor_reply{503, {}, "shard_unavailable", std::move(message)};
}

std::chrono::milliseconds call_budget(const stub_state& st, const actor_call& call) {
  return call.budget_ms != 0 ? std::chrono::milliseconds(call.budget_ms) : st.cfg.call_timeout;
}

/// Sends `msg` to the owner's gateway and hands the answer to `deliver`. A failure goes
/// to `fail(message, timed_out)`: no answer within `wait`, a lost connection, or the
/// owner marked down while the request was in flight. Exactly one of them runs.
template <class Reply, class Message, class Deliver, class Fail>
void forward(stub_pointer self, Message&& msg, std::chrono::milliseconds wait, Deliver deliver,
             Fail fail) {
  auto& st = self->state;
  const auto id = ++st.next_id;
  st.in_flight.emplace(id,
                       stub_state::pending{std::chrono::steady_clock::now() + wait, wait, fail});
  if (!st.sweep_scheduled) {
    st.sweep_scheduled = true;
    self->delayed_send(self, sweep_interval, sweep_atom::value);
  }
  self->request(st.gateway, caf::infinite, st.cfg.shard, std::forward<Message>(msg))
    .then(
      [self, id, deliver](Reply& reply) mutable {
        if (self->state.in_flight.erase(id) != 0) deliver(std::move(reply));
      },
      [self, id, fail, wait](caf::error& err) mutable {
        if (self->state.in_flight.erase(id) != 0)
          fail(failure_message(self->state, err, wait), false);
      });
}

/// Fails the requests in flight whose deadline passed; runs while any are in flight.
void sweep(stub_pointer self) {
  auto& st = self->state;
  const auto now = std::chrono::steady_clock::now();
  for (auto it = st.in_flight.begin(); it != st.in_flight.end();) {
    if (it->second.deadline > now) {
      ++it;
      continue;
    }
    auto expired = std::move(it->second);
    it = st.in_flight.erase(it);
    expired.fail(failure_message(st, caf::make_error(caf::sec::request_timeout), expired.wait),
                 true);
  }
  st.sweep_scheduled = !st.in_flight.empty();
  if (st.sweep_scheduled) self->delayed_send(self, sweep_interval, sweep_atom::value);
}

remote_shard_actor::behavior_type stub_impl(stub_pointer self, remote_shard_config cfg) {
  self->state.cfg = std::move(cfg);
  return {
    [=](doc_request& req, actors::reply_sink_ptr& sink) {
      auto& st = self->state;
      if (!st.up) return sink->deliver(doc_unavailable(down_message(st)));
      auto budget = doc_budget(st, req);
      forward<doc_reply>(
        self, std::move(req), budget,
        [sink](doc_reply&& reply) { sink->deliver(std::move(reply)); },
        [sink](const std::string& why, bool) { sink->deliver(doc_unavailable(why)); });
    },
    [=](doc_request& req) -> caf::result<doc_reply> {
      auto& st = self->state;
      if (!st.up) return doc_unavailable(down_message(st));
      auto rp = self->make_response_promise<doc_reply>();
      auto budget = doc_budget(st, req);
      forward<doc_reply>(
        self, std::move(req), budget,
        [rp](doc_reply&& reply) mutable { rp.deliver(std::move(reply)); },
        [rp](const std::string& why, bool) mutable { rp.deliver(doc_unavailable(why)); });
      return rp;
    },
    [=](actor_call& call, actors::call_sink_ptr& sink) {
      auto& st = self->state;
      if (!st.up) return sink->deliver(call_unavailable(down_message(st)));
      forward<actor_reply>(
        self, std::move(call), call_budget(st, call),
        [sink](actor_reply&& reply) { sink->deliver(std::move(reply)); },
        [sink](const std::string& why, bool timed_out) {
          sink->deliver(timed_out ? actor_reply{504, {}, "call_timeout", why}
                                  : call_unavailable(why));
        });
    },
    [=](actor_call& call) -> caf::result<actor_reply> {
      auto& st = self->state;
      if (!st.up) return call_unavailable(down_message(st));
      auto rp = self->make_response_promise<actor_reply>();
      forward<actor_reply>(
        self, std::move(call), call_budget(st, call),
        [rp](actor_reply&& reply) mutable { rp.deliver(std::move(reply)); },
        [rp](const std::string& why, bool timed_out) mutable {
          rp.deliver(timed_out ? actor_reply{504, {}, "call_timeout", why} : call_unavailable(why));
        });
      return rp;
    },
    [=](jobs::job_request& req, jobs::job_sink_ptr& sink) {
      auto& st = self->state;
      if (!st.up) return sink->deliver(job_unavailable(down_message(st)));
      forward<jobs::job_reply>(
        self, std::move(req), st.cfg.failure_timeout,
        [sink](jobs::job_reply&& reply) { sink->deliver(std::move(reply)); },
        [sink](const std::string& why, bool) { sink->deliver(job_unavailable(why)); });
    },
    [=](jobs::job_request& req) -> caf::result<jobs::job_reply> {
      auto& st = self->state;
      if (!st.up) return job_unavailable(down_message(st));
      auto rp = self->make_response_promise<jobs::job_reply>();
      forward<jobs::job_reply>(
        self, std::move(req), st.cfg.failure_timeout,
        [rp](jobs::job_reply&& reply) mutable { rp.deliver(std::move(reply)); },
        [rp](const std::string& why, bool) mutable { rp.deliver(job_unavailable(why)); });
      return rp;
    },
    [=](actors::cache_request& req, actors::cache_sink_ptr& sink) {
      auto& st = self->state;
      if (!st.up) return sink->deliver(cache_unavailable(down_message(st)));
      forward<actors::cache_reply>(
        self, std::move(req), st.cfg.failure_timeout,
        [sink](actors::cache_reply&& reply) { sink->deliver(std::move(reply)); },
        [sink](const std::string& why, bool) { sink->deliver(cache_unavailable(why)); });
    },
    [=](actors::cache_request& req) -> caf::result<actors::cache_reply> {
      auto& st = self->state;
      if (!st.up) return cache_unavailable(down_message(st));
      auto rp = self->make_response_promise<actors::cache_reply>();
      forward<actors::cache_reply>(
        self, std::move(req), st.cfg.failure_timeout,
        [rp](actors::cache_reply&& reply) mutable { rp.deliver(std::move(reply)); },
        [rp](const std::string& why, bool) mutable { rp.deliver(cache_unavailable(why)); });
      return rp;
    },
    [=](actors::index_step_atom) {
      // Index builds, timers and caches are the owner's business.
    },
    [=](actors::shard_tick_atom) {},
    [=](actors::idle_tick_atom) {
      // Idle passivation is the owner's business.
    },
    [=](actors::job_tick_atom) {
      // So are the owner's job timers.
    },
    [=](peer_update_atom, caf::actor& gateway, bool up, std::string& reason) {
      auto& st = self->state;
      st.gateway = std::move(gateway);
      st.up = up && st.gateway;
      st.reason = std::move(reason);
      if (st.up || st.in_flight.empty()) return;
      auto pending = std::move(st.in_flight);
      st.in_flight.clear();
      const auto why = down_message(st);
      for (auto& entry : pending)
        entry.second.fail(why, false);
    },
    [=](sweep_atom) { sweep(self); },
  };
}

} // namespace

remote_shard_actor spawn_remote_shard(caf::actor_system& sys, remote_shard_config cfg) {
  return sys.spawn(stub_impl, std::move(cfg));
}

} // namespace shoal::remote
