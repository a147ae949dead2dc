// SPDX-License-Identifier: Apache-2.0
#include "remote/membership.hpp"

#include <optional>
#include <random>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/io/middleman.hpp>
#include <caf/io/middleman_actor.hpp>
#include <caf/openssl/manager.hpp>
#include <caf/stateful_actor.hpp>
#include <spdlog/spdlog.h>

#include "cluster/handshake.hpp"
#include "cluster/ownership.hpp"
#include "cluster/replicas.hpp"
#include "cluster/view.hpp"
#include "remote/raft_transport.hpp"
#include "remote/type_ids.hpp"
#include "util/backoff.hpp"

namespace shoal::remote {
namespace {

namespace hs = cluster::handshake;
using clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds first_backoff{100};

struct peer_link {
  config::node_address addr;
  std::vector<remote_shard_actor> stubs;
  cluster::member_state state = cluster::member_state::connecting;
  bool settled = false;         ///< the first dial has finished, one way or another
  bool refused = false;         ///< the last handshake ended in a refusal (by either side)
  caf::actor gateway;           ///< after a completed handshake, until the connection drops
  std::uint64_t generation = 0; ///< bumped per dial and per loss; stale answers compare it
  bool dialing = false;
  std::optional<clock::time_point> last_heartbeat;
  util::backoff redial{first_backoff, first_backoff}; ///< its cap set from the config
  std::string reason = "not connected yet";
  std::vector<cluster::replica_report> reports; ///< with its last heartbeat answer
};

struct membership_state {
  cluster_identity id;
  const cluster::ownership* owners = nullptr;
  cluster::view_board* board = nullptr;
  caf::io::middleman_actor mm;
  caf::actor raft; ///< told where each peer's gateway is; may be null
  const cluster::replica_board* reports = nullptr; ///< this node's replicas; may be null
  std::vector<peer_link> peers;
  std::minstd_rand jitter{std::random_device{}()};
  bool ever_ready = false; ///< see publish()
};

using self_pointer = caf::stateful_actor<membership_state>*;

void publish(self_pointer self) {
  auto& st = self->state;
  auto view = std::make_shared<cluster::cluster_view>();
  view->self = st.id.self;
  bool all_settled = true;
  std::size_t refused = 0;
  std::size_t up = 0;
  std::size_t p = 0;
  for (const auto& node : st.id.nodes) {
    cluster::member_view m;
    m.id = node.id;
    m.http = node.host + ":" + std::to_string(node.http_port);
    if (node.id == st.id.self) {
      m.state = cluster::member_state::up;
      m.last_heartbeat = clock::now();
    } else {
      const auto& peer = st.peers[p++];
      m.state = peer.state;
      m.last_heartbeat = peer.last_heartbeat;
      if (peer.state != cluster::member_state::up) m.reason = peer.reason;
      all_settled = all_settled && peer.settled;
      refused += peer.refused ? 1 : 0;
      up += peer.state == cluster::member_state::up ? 1 : 0;
    }
    view->nodes.push_back(std::move(m));
  }
  view->shard_owners.reserve(st.owners->shard_count());
  if (st.reports != nullptr) {
    // A down peer's last word may be stale: only what the up members say counts.
    auto heard = st.reports->all();
    for (const auto& peer : st.peers)
      if (peer.state == cluster::member_state::up)
        heard.insert(heard.end(), peer.reports.begin(), peer.reports.end());
    view->replicas = cluster::merge_reports(st.owners->shard_count(), heard);
    for (const auto& group : view->replicas)
      view->shard_owners.push_back(group.leader);
  } else {
    for (std::uint32_t s = 0; s < st.owners->shard_count(); ++s)
      view->shard_owners.push_back(st.owners->owner(s));
  }
  // Ready once every peer was tried, unless more of the peers refused this node than
  // accepted it: then it is most likely the one with the odd config and must not take
  // traffic. A refusal alone cannot say which side is wrong, so the node that served
  // first keeps serving: once ready, later refusals only mark those peers down.
  st.ever_ready = st.ever_ready || (all_settled && up >= refused);
  view->ready = st.ever_ready;
  st.board->publish(std::move(view));
}

void tell_stubs(self_pointer self, peer_link& peer) {
  const bool up = peer.state == cluster::member_state::up;
  for (auto& stub : peer.stubs)
    self->send(stub, peer_update_atom::value, peer.addr.id, peer.gateway, up,
               up ? std::string{} : peer.reason);
  if (self->state.raft)
    self->send(self->state.raft, raft_peer_atom::value, peer.addr.id,
               up ? peer.gateway : caf::actor{});
}

void schedule_dial(self_pointer self, std::size_t i) {
  auto& st = self->state;
  auto& peer = st.peers[i];
  const auto delay = peer.redial.next(st.jitter);
  self->delayed_send(self, delay, dial_atom::value, static_cast<std::uint64_t>(i), peer.generation);
}

void set_down(self_pointer self, std::size_t i, std::string reason, bool refused) {
  auto& peer = self->state.peers[i];
  const bool was_up = peer.state == cluster::member_state::up;
  const bool changed = reason != peer.reason || refused != peer.refused;
  // A peer never reached stays `connecting` while this node waits for it.
  if (was_up || refused) peer.state = cluster::member_state::down;
  peer.reports.clear();
  peer.settled = true;
  peer.refused = refused;
  if (was_up) {
    self->state.id.log->warn("node {} is down: {}", peer.addr.id, reason);
  } else if (changed) {
    auto level = refused ? spdlog::level::err : spdlog::level::info;
    self->state.id.log->log(level, "node {} not joined: {}", peer.addr.id, reason);
  }
  peer.reason = std::move(reason);
  tell_stubs(self, peer);
  publish(self);
}

/// A dial or handshake step failed: mark the peer and try again after the backoff.
void dial_failed(self_pointer self, std::size_t i, std::uint64_t generation, std::string reason,
                 bool refused) {
  auto& peer = self->state.peers[i];
  if (peer.generation != generation) return;
  peer.dialing = false;
  if (peer.gateway) return; // a concurrent loss already redials
  set_down(self, i, std::move(reason), refused);
  schedule_dial(self, i);
}

void joined(self_pointer self, std::size_t i, std::uint64_t generation, caf::actor gateway) {
  auto& peer = self->state.peers[i];
  if (peer.generation != generation) return;
  peer.dialing = false;
  peer.gateway = std::move(gateway);
  self->monitor(peer.gateway);
  peer.state = cluster::member_state::up;
  peer.settled = true;
  peer.refused = false;
  peer.reason.clear();
  peer.last_heartbeat = clock::now();
  peer.redial.reset();
  self->state.id.log->info("node {} is up ({}:{})", peer.addr.id, peer.addr.host,
                           peer.addr.actor_port);
  tell_stubs(self, peer);
  publish(self);
}

void handshake(self_pointer self, std::size_t i, std::uint64_t generation, caf::actor gateway) {
  auto& st = self->state;
  const auto timeout = st.id.failure_timeout;
  const auto nonce = hs::make_nonce();
  self->request(gateway, timeout, hello{st.id.self, nonce})
    .then(
      [=](hello_ack& ack) {
        auto& st = self->state;
        const auto& peer = st.peers[i];
        if (!ack.refusal.empty())
          return dial_failed(self, i, generation, "refused by the peer: " + ack.refusal, true);
        if (ack.node != peer.addr.id)
          return dial_failed(self, i, generation,
                             "the actor port answers as node \"" + ack.node + "\"", true);
        const auto expected =
          hs::proof(st.id.secret, hs::role::acceptor, st.id.self, peer.addr.id, nonce, ack.nonce);
        if (!hs::same_proof(expected, ack.proof)) {
          self->send(gateway, refuse_atom::value, st.id.self,
                     std::string{"your proof of the cluster secret is wrong"});
          return dial_failed(self, i, generation, "it does not know the cluster secret", true);
        }
        auth mine{
          hs::proof(st.id.secret, hs::role::dialer, st.id.self, peer.addr.id, nonce, ack.nonce),
          st.id.shards, st.id.members, st.id.replication_factor};
        self->request(gateway, st.id.failure_timeout, std::move(mine))
          .then(
            [=](auth_ack& a) {
              if (!a.refusal.empty())
                return dial_failed(self, i, generation, "refused by the peer: " + a.refusal, true);
              joined(self, i, generation, gateway);
            },
            [=](caf::error& err) {
              dial_failed(self, i, generation, "handshake failed: " + caf::to_string(err), false);
            });
      },
      [=](caf::error& err) {
        dial_failed(self, i, generation, "handshake failed: " + caf::to_string(err), false);
      });
}

void dial(self_pointer self, std::size_t i) {
  auto& st = self->state;
  auto& peer = st.peers[i];
  if (peer.dialing || peer.gateway) return;
  peer.dialing = true;
  const auto generation = ++peer.generation;
  self
    ->request(st.mm, st.id.failure_timeout, caf::connect_atom::value, peer.addr.host,
              peer.addr.actor_port)
    .then(
      [=](caf::node_id&, caf::strong_actor_ptr& ptr, std::set<std::string>&) {
        if (!ptr)
          return dial_failed(self, i, generation, "nothing is published on its actor port", false);
        handshake(self, i, generation, caf::actor_cast<caf::actor>(std::move(ptr)));
      },
      [=](caf::error& err) {
        dial_failed(self, i, generation, "cannot connect: " + caf::to_string(err), false);
      });
}

/// The connection to a peer dropped (its gateway proxy went down).
void lost(self_pointer self, const caf::down_msg& msg) {
  auto& st = self->state;
  for (std::size_t i = 0; i < st.peers.size(); ++i) {
    auto& peer = st.peers[i];
    if (!peer.gateway || peer.gateway.address() != msg.source) continue;
    peer.gateway = nullptr;
    ++peer.generation;
    peer.dialing = false;
    peer.redial.reset();
    set_down(self, i, "connection lost", false);
    schedule_dial(self, i);
  }
}

void tick(self_pointer self) {
  auto& st = self->state;
  const auto now = clock::now();
  for (std::size_t i = 0; i < st.peers.size(); ++i) {
    auto& peer = st.peers[i];
    if (!peer.gateway) continue;
    if (peer.state == cluster::member_state::up && peer.last_heartbeat
        && now - *peer.last_heartbeat > st.id.failure_timeout) {
      set_down(self, i,
               "no heartbeat answer for " + std::to_string(st.id.failure_timeout.count()) + " ms",
               false);
    }
    const auto generation = peer.generation;
    self->request(peer.gateway, st.id.failure_timeout, heartbeat_atom::value)
      .then(
        [=](heartbeat_atom, replica_reports& heard) {
          auto& peer = self->state.peers[i];
          if (peer.generation != generation || !peer.gateway) return;
          peer.last_heartbeat = clock::now();
          peer.reports = std::move(heard.reports);
          if (peer.state != cluster::member_state::up) {
            peer.state = cluster::member_state::up;
            peer.reason.clear();
            self->state.id.log->info("node {} answers again", peer.addr.id);
            tell_stubs(self, peer);
          }
          publish(self);
        },
        [](caf::error&) {
          // Silence is judged by the next tick; a lost connection by the down message.
        });
  }
  publish(self);
  self->delayed_send(self, st.id.heartbeat, tick_atom::value);
}

caf::behavior membership_impl(self_pointer self, cluster_identity id,
                              std::vector<std::vector<remote_shard_actor>> stubs,
                              const cluster::ownership* owners, cluster::view_board* board,
                              caf::actor raft, const cluster::replica_board* reports) {
  auto& st = self->state;
  st.reports = reports;
  st.id = std::move(id);
  st.raft = std::move(raft);
  st.owners = owners;
  st.board = board;
  // Dialing goes through the OpenSSL middleman when the links are TLS: the same messages
  // and answers over an encrypted, mutually authenticated connection.
  st.mm = st.id.tls ? self->system().openssl_manager().actor_handle()
                    : self->system().middleman().actor_handle();
  std::size_t p = 0;
  for (const auto& node : st.id.nodes) {
    if (node.id == st.id.self) continue;
    peer_link link;
    link.addr = node;
    link.redial = util::backoff{first_backoff, st.id.reconnect_max};
    if (p < stubs.size()) link.stubs = std::move(stubs[p]);
    ++p;
    st.peers.push_back(std::move(link));
  }
  self->set_down_handler([self](caf::down_msg& msg) { lost(self, msg); });
  publish(self);
  for (std::size_t i = 0; i < st.peers.size(); ++i)
    dial(self, i);
  self->send(self, tick_atom::value);
  return {
    [=](dial_atom, std::uint64_t i, std::uint64_t generation) {
      if (i < self->state.peers.size() && self->state.peers[i].generation == generation)
        dial(self, i);
    },
    [=](tick_atom) { tick(self); },
    [=](peer_back_atom, const std::string& id) {
      // A peer that just proved itself to our gateway is running: if we have it down
      // (or never reached it), dial now instead of waiting out the backoff.
      auto& peers = self->state.peers;
      for (std::size_t i = 0; i < peers.size(); ++i) {
        auto& peer = peers[i];
        if (peer.addr.id != id || peer.gateway) continue;
        ++peer.generation; // the pending delayed dial and any dial in flight are stale
        peer.dialing = false;
        peer.redial.reset();
        dial(self, i);
      }
    },
  };
}

} // namespace

caf::actor spawn_membership(caf::actor_system& sys, cluster_identity identity,
                            std::vector<std::vector<remote_shard_actor>> stubs,
                            const cluster::ownership& owners, cluster::view_board& board,
                            caf::actor raft, const cluster::replica_board* reports) {
  return sys.spawn(membership_impl, std::move(identity), std::move(stubs), &owners, &board,
                   std::move(raft), reports);
}

} // namespace shoal::remote
