// SPDX-License-Identifier: Apache-2.0
#include "remote/remote_shard.hpp"

#include <functional>
#include <unordered_map>

#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>

namespace shoal::remote {
namespace {

struct stub_state {
  remote_shard_config cfg;
  caf::actor gateway; ///< the owner's gateway, once a handshake completed
  bool up = false;
  std::string reason = "not connected yet";
  std::uint64_t next_id = 0;
  struct pending {
    caf::actor_clock::time_point deadline;
    std::chrono::milliseconds wait;
    std::function<void(core::error)> fail;
    bool actor_call = false; ///< a late answer is a call timeout, not an unavailable shard
    bool writes = false;     ///< it may change state: lost in flight, its outcome is unknown
  };
  /// Requests in flight to the owner, by id. When the owner goes down they fail at once;
  /// the sweep fails those past their deadline; an answer that arrives for an id no
  /// longer here was already answered and is dropped.
  std::unordered_map<std::uint64_t, pending> in_flight;
  bool sweep_scheduled = false;

  static inline const char* name = "shoal.remote_shard";
};

constexpr std::chrono::milliseconds sweep_interval{25};

using stub_pointer = remote_shard_actor::stateful_pointer<stub_state>;

core::error down_error(const stub_state& st) {
  return {core::errc::shard_unavailable, "node " + st.cfg.owner + " owns shard "
                                           + std::to_string(st.cfg.shard)
                                           + " and is unavailable: " + st.reason};
}

/// How long to wait for the owner's answer to `req`: a change-feed read may wait for
/// events at the owner first; an actor call brings its own budget.
template <class R>
std::chrono::milliseconds budget(const stub_state& st, const R&) {
  return st.cfg.failure_timeout;
}
std::chrono::milliseconds budget(const stub_state& st, const changes::changes_read& req) {
  return st.cfg.failure_timeout + std::chrono::milliseconds(req.wait_ms);
}
std::chrono::milliseconds budget(const stub_state& st, const actors::actor_call& call) {
  return call.budget_ms != 0 ? std::chrono::milliseconds(call.budget_ms) : st.cfg.call_timeout;
}

core::error late(const stub_state& st, std::chrono::milliseconds waited, bool actor_call,
                 bool writes) {
  auto message =
    "node " + st.cfg.owner + " did not answer within " + std::to_string(waited.count()) + " ms";
  if (actor_call) return {core::errc::timeout, "call_timeout", std::move(message)};
  if (writes)
    return {core::errc::outcome_unknown,
            std::move(message) + ": the write may or may not have been applied"};
  return {core::errc::shard_unavailable, std::move(message)};
}

/// A request that was sent and then lost with its connection or its node: a read can be
/// refused (nothing changed), a write's outcome is unknown (it may have been applied, or
/// be applied when the node resumes).
core::error lost(std::string why, bool writes) {
  if (!writes) return {core::errc::shard_unavailable, std::move(why)};
  return {core::errc::outcome_unknown,
          std::move(why) + ": the write may or may not have been applied"};
}

/// Sends `req` to the owner's gateway and hands the answer to `to`. A failure goes to
/// `to` as an error: no answer within the budget, a lost connection, or the owner marked
/// down while the request was in flight. Exactly one of them happens.
template <class R>
void forward(stub_pointer self, R&& req, core::reply_to<protocol::reply_of<R>> to) {
  using T = protocol::reply_of<R>;
  auto& st = self->state;
  // Not sent: refused, whatever it is.
  if (!st.up) return to.deliver(down_error(st));
  const auto wait = budget(st, req);
  const bool actor_call = std::is_same_v<R, actors::actor_call>;
  constexpr bool writes = protocol::changes_state<R>;
  const auto id = ++st.next_id;
  st.in_flight.emplace(
    id, stub_state::pending{self->clock().now() + wait, wait,
                            [to](core::error e) mutable { to.deliver(std::move(e)); }, actor_call,
                            writes});
  if (!st.sweep_scheduled) {
    st.sweep_scheduled = true;
    self->delayed_send(self, sweep_interval, sweep_atom::value);
  }
  self->request(st.gateway, caf::infinite, st.cfg.shard, std::move(req))
    .then(
      [self, id, to](T& reply) mutable {
        if (self->state.in_flight.erase(id) != 0) to.deliver(std::move(reply));
      },
      [self, id, to, wait, actor_call](caf::error& err) mutable {
        if (self->state.in_flight.erase(id) == 0) return;
        auto& st = self->state;
        if (err.category() == protocol::error_category) return to.deliver(protocol::from_caf(err));
        if (err == caf::sec::request_timeout) return to.deliver(late(st, wait, actor_call, writes));
        to.deliver(
          lost("node " + st.cfg.owner + " is unreachable: " + caf::to_string(err), writes));
      });
}

/// Fails the requests in flight whose deadline passed; runs while any are in flight.
void sweep(stub_pointer self) {
  auto& st = self->state;
  const auto now = self->clock().now();
  for (auto it = st.in_flight.begin(); it != st.in_flight.end();) {
    if (it->second.deadline > now) {
      ++it;
      continue;
    }
    auto expired = std::move(it->second);
    it = st.in_flight.erase(it);
    expired.fail(late(st, expired.wait, expired.actor_call, expired.writes));
  }
  st.sweep_scheduled = !st.in_flight.empty();
  if (st.sweep_scheduled) self->delayed_send(self, sweep_interval, sweep_atom::value);
}

template <class... Rs>
remote_shard_actor::behavior_type behavior(stub_pointer self, core::type_list<Rs...>) {
  return {
    protocol::handler<Rs>(self,
                          [self](Rs&& req, core::reply_to<protocol::reply_of<Rs>> to) {
                            forward(self, std::move(req), std::move(to));
                          })...,
    [self](peer_update_atom, caf::actor& gateway, bool up, std::string& reason) {
      auto& st = self->state;
      st.gateway = std::move(gateway);
      st.up = up && st.gateway;
      st.reason = std::move(reason);
      if (st.up || st.in_flight.empty()) return;
      auto pending = std::move(st.in_flight);
      st.in_flight.clear();
      const auto why = down_error(st);
      for (auto& entry : pending)
        entry.second.fail(lost(why.message(), entry.second.writes));
    },
    [self](sweep_atom) { sweep(self); },
  };
}

remote_shard_actor::behavior_type stub_impl(stub_pointer self, remote_shard_config cfg) {
  self->state.cfg = std::move(cfg);
  return behavior(self, protocol::shard_requests{});
}

} // namespace

remote_shard_actor spawn_remote_shard(caf::actor_system& sys, remote_shard_config cfg) {
  return sys.spawn(stub_impl, std::move(cfg));
}

} // namespace shoal::remote
