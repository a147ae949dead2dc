// SPDX-License-Identifier: Apache-2.0
#include "remote/remote_shard.hpp"

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
};

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

actor_reply call_failed(const stub_state& st, const caf::error& err,
                        std::chrono::milliseconds waited) {
  if (err == caf::sec::request_timeout)
    return actor_reply{504, {}, "call_timeout", failure_message(st, err, waited)};
  return actor_reply{503, {}, "shard_unavailable", failure_message(st, err, waited)};
}

std::chrono::milliseconds call_budget(const stub_state& st, const actor_call& call) {
  return call.budget_ms != 0 ? std::chrono::milliseconds(call.budget_ms) : st.cfg.call_timeout;
}

remote_shard_actor::behavior_type stub_impl(stub_pointer self, remote_shard_config cfg) {
  self->state.cfg = std::move(cfg);
  return {
    [=](doc_request& req, actors::reply_sink_ptr& sink) {
      auto& st = self->state;
      if (!st.up) return sink->deliver(doc_unavailable(down_message(st)));
      const auto wait = st.cfg.failure_timeout;
      self->request(st.gateway, wait, st.cfg.shard, std::move(req))
        .then([sink](doc_reply& reply) { sink->deliver(std::move(reply)); },
              [self, sink, wait](caf::error& err) {
                sink->deliver(doc_unavailable(failure_message(self->state, err, wait)));
              });
    },
    [=](doc_request& req) -> caf::result<doc_reply> {
      auto& st = self->state;
      if (!st.up) return doc_unavailable(down_message(st));
      auto rp = self->make_response_promise<doc_reply>();
      const auto wait = st.cfg.failure_timeout;
      self->request(st.gateway, wait, st.cfg.shard, std::move(req))
        .then([rp](doc_reply& reply) mutable { rp.deliver(std::move(reply)); },
              [self, rp, wait](caf::error& err) mutable {
                rp.deliver(doc_unavailable(failure_message(self->state, err, wait)));
              });
      return rp;
    },
    [=](actor_call& call, actors::call_sink_ptr& sink) {
      auto& st = self->state;
      if (!st.up) return sink->deliver(actor_reply{503, {}, "shard_unavailable", down_message(st)});
      const auto wait = call_budget(st, call);
      self->request(st.gateway, wait, st.cfg.shard, std::move(call))
        .then([sink](actor_reply& reply) { sink->deliver(std::move(reply)); },
              [self, sink, wait](caf::error& err) {
                sink->deliver(call_failed(self->state, err, wait));
              });
    },
    [=](actor_call& call) -> caf::result<actor_reply> {
      auto& st = self->state;
      if (!st.up) return actor_reply{503, {}, "shard_unavailable", down_message(st)};
      auto rp = self->make_response_promise<actor_reply>();
      const auto wait = call_budget(st, call);
      self->request(st.gateway, wait, st.cfg.shard, std::move(call))
        .then([rp](actor_reply& reply) mutable { rp.deliver(std::move(reply)); },
              [self, rp, wait](caf::error& err) mutable {
                rp.deliver(call_failed(self->state, err, wait));
              });
      return rp;
    },
    [=](actors::idle_tick_atom) {
      // Idle passivation is the owner's business.
    },
    [=](peer_update_atom, caf::actor& gateway, bool up, std::string& reason) {
      auto& st = self->state;
      st.gateway = std::move(gateway);
      st.up = up && st.gateway;
      st.reason = std::move(reason);
    },
  };
}

} // namespace

remote_shard_actor spawn_remote_shard(caf::actor_system& sys, remote_shard_config cfg) {
  return sys.spawn(stub_impl, std::move(cfg));
}

} // namespace shoal::remote
