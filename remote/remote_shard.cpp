// SPDX-License-Identifier: Apache-2.0
#include "remote/remote_shard.hpp"

#include <functional>
#include <optional>
#include <unordered_map>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>

namespace shoal::remote {
namespace {

/// Where a request can go: a replica's (or the owner's) node.
struct target {
  std::string node;
  caf::actor gateway; ///< its gateway, once a handshake completed
  bool up = false;
  std::string reason = "not connected yet";
  protocol::shard_actor local; ///< set when the target is this node's own replica
  bool reachable() const noexcept {
    return static_cast<bool>(local) || (up && gateway);
  }
};

struct stub_state {
  remote_shard_config cfg;
  std::vector<target> targets; ///< the owner, or the replicas in preference order
  std::size_t leader = 0;      ///< the target that answered last
  std::uint64_t next_id = 0;
  struct pending {
    caf::actor_clock::time_point deadline;
    std::chrono::milliseconds wait;
    std::function<void(core::error)> fail;
    std::size_t target = 0;  ///< where it went (a lost link fails only its requests)
    bool actor_call = false; ///< a late answer is a call timeout, not an unavailable shard
    bool writes = false;     ///< it may change state: lost in flight, its outcome is unknown
  };
  /// Requests in flight, by id. When their target goes down they fail at once; the
  /// sweep fails those past their deadline; an answer that arrives for an id no longer
  /// here was already answered and is dropped.
  std::unordered_map<std::uint64_t, pending> in_flight;
  bool sweep_scheduled = false;

  static inline const char* name = "shoal.remote_shard";
};

constexpr std::chrono::milliseconds sweep_interval{25};

using stub_pointer = remote_shard_actor::stateful_pointer<stub_state>;

core::error down_error(const stub_state& st) {
  if (st.targets.size() == 1)
    return {core::errc::shard_unavailable, "node " + st.targets[0].node + " owns shard "
                                             + std::to_string(st.cfg.shard)
                                             + " and is unavailable: " + st.targets[0].reason};
  std::string why;
  for (const auto& t : st.targets)
    why += (why.empty() ? "" : "; ") + t.node + ": " + t.reason;
  return {core::errc::shard_unavailable,
          "no replica of shard " + std::to_string(st.cfg.shard) + " is reachable (" + why + ")"};
}

/// A replica's refusal that changed nothing and names another place to try.
bool refusal(const core::error& e) {
  return e.code() == core::errc::shard_unavailable
         && (e.name() == "not_leader" || e.name() == "leader_not_ready");
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

core::error late(const stub_state& st, std::size_t target, std::chrono::milliseconds waited,
                 bool actor_call, bool writes) {
  auto message = "node " + st.targets[target].node + " did not answer within "
                 + std::to_string(waited.count()) + " ms";
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

/// The first reachable target from the leader on, at most `tries` of them; the number of
/// targets when none is.
std::size_t pick(const stub_state& st, std::size_t from, std::size_t tries) {
  const auto n = st.targets.size();
  for (std::size_t k = 0; k < tries && k < n; ++k) {
    const auto i = (from + k) % n;
    if (st.targets[i].reachable()) return i;
  }
  return n;
}

template <class R>
void send_to(stub_pointer self, std::uint64_t id, std::size_t target, R req,
             core::reply_to<protocol::reply_of<R>> to, std::size_t tries_left);

/// Sends `req` to the leader as the stub knows it and hands the answer to `to`. A
/// failure goes to `to` as an error: no answer within the budget, a lost connection, or
/// the target marked down while the request was in flight. Exactly one of them happens.
template <class R>
void forward(stub_pointer self, R&& req, core::reply_to<protocol::reply_of<R>> to) {
  auto& st = self->state;
  const auto target = pick(st, st.leader, st.targets.size());
  // Not sent: refused, whatever it is.
  if (target == st.targets.size()) return to.deliver(down_error(st));
  const auto wait = budget(st, req);
  const bool actor_call = std::is_same_v<R, actors::actor_call>;
  constexpr bool writes = protocol::changes_state<R>;
  const auto id = ++st.next_id;
  st.in_flight.emplace(
    id, stub_state::pending{self->clock().now() + wait, wait,
                            [to](core::error e) mutable { to.deliver(std::move(e)); }, target,
                            actor_call, writes});
  if (!st.sweep_scheduled) {
    st.sweep_scheduled = true;
    self->delayed_send(self, sweep_interval, sweep_atom::value);
  }
  send_to(self, id, target, std::move(req), std::move(to), st.targets.size() - 1);
}

/// Sends request `id` to `target`; a refusal from a replica moves it on to the next
/// reachable one while `tries_left` lasts.
template <class R>
void send_to(stub_pointer self, std::uint64_t id, std::size_t target, R req,
             core::reply_to<protocol::reply_of<R>> to, std::size_t tries_left) {
  using T = protocol::reply_of<R>;
  constexpr bool writes = protocol::changes_state<R>;
  auto& st = self->state;
  auto& t = st.targets[target];
  // A copy stays here for a retry elsewhere (requests are small; only replicated shards
  // can retry).
  std::optional<R> again;
  if (tries_left > 0) again = req;
  auto on_reply = [self, id, target, to](T& reply) mutable {
    if (self->state.in_flight.erase(id) == 0) return;
    self->state.leader = target;
    to.deliver(std::move(reply));
  };
  auto on_error = [self, id, target, to, again = std::move(again),
                   tries_left](caf::error& err) mutable {
    auto& st = self->state;
    auto it = st.in_flight.find(id);
    if (it == st.in_flight.end()) return;
    if (err.category() == protocol::error_category) {
      auto e = protocol::from_caf(err);
      if (refusal(e) && again) {
        const auto next = pick(st, target + 1, tries_left);
        if (next != st.targets.size() && next != target) {
          st.leader = next;
          it->second.target = next;
          const auto left = tries_left - ((next + st.targets.size() - target) % st.targets.size());
          return send_to(self, id, next, std::move(*again), std::move(to), left);
        }
      }
      st.in_flight.erase(it);
      return to.deliver(std::move(e));
    }
    const auto pending = std::move(it->second);
    st.in_flight.erase(it);
    if (err == caf::sec::request_timeout)
      return to.deliver(late(st, target, pending.wait, pending.actor_call, writes));
    to.deliver(
      lost("node " + st.targets[target].node + " is unreachable: " + caf::to_string(err), writes));
  };
  if (t.local) {
    self->request(t.local, caf::infinite, std::move(req), core::reply_to<T>{})
      .then(std::move(on_reply), std::move(on_error));
  } else {
    self->request(t.gateway, caf::infinite, st.cfg.shard, std::move(req))
      .then(std::move(on_reply), std::move(on_error));
  }
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
    expired.fail(late(st, expired.target, expired.wait, expired.actor_call, expired.writes));
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
    [self](peer_update_atom, const std::string& node, caf::actor& gateway, bool up,
           std::string& reason) {
      auto& st = self->state;
      std::size_t index = st.targets.size();
      for (std::size_t i = 0; i < st.targets.size(); ++i)
        if (st.targets[i].node == node) index = i;
      if (index == st.targets.size()) return;
      auto& t = st.targets[index];
      t.gateway = std::move(gateway);
      t.up = up && t.gateway;
      t.reason = std::move(reason);
      if (t.up) return;
      // What went to that node is lost with it.
      const auto why = "node " + t.node + " is unavailable: " + t.reason;
      std::vector<stub_state::pending> failed;
      for (auto it = st.in_flight.begin(); it != st.in_flight.end();) {
        if (it->second.target != index) {
          ++it;
          continue;
        }
        failed.push_back(std::move(it->second));
        it = st.in_flight.erase(it);
      }
      for (auto& p : failed)
        p.fail(lost(why, p.writes));
    },
    [self](sweep_atom) { sweep(self); },
  };
}

remote_shard_actor::behavior_type stub_impl(stub_pointer self, remote_shard_config cfg) {
  auto& st = self->state;
  st.cfg = std::move(cfg);
  if (st.cfg.replicas.empty()) {
    st.targets.push_back(target{st.cfg.owner, {}, false, "not connected yet", {}});
  } else {
    for (const auto& node : st.cfg.replicas) {
      target t{node, {}, false, "not connected yet", {}};
      if (node == st.cfg.self) {
        t.local = st.cfg.local;
        t.reason.clear();
      }
      st.targets.push_back(std::move(t));
    }
  }
  return behavior(self, protocol::shard_requests{});
}

} // namespace

remote_shard_actor spawn_remote_shard(caf::actor_system& sys, remote_shard_config cfg) {
  return sys.spawn(stub_impl, std::move(cfg));
}

} // namespace shoal::remote
