// SPDX-License-Identifier: Apache-2.0
#include "remote/gateway.hpp"

#include <chrono>
#include <map>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <spdlog/spdlog.h>

#include "protocol/shard_actor.hpp"
#include "cluster/handshake.hpp"
#include "cluster/ownership.hpp"
#include "cluster/replicas.hpp"
#include "remote/raft_transport.hpp"
#include "remote/type_ids.hpp"

namespace shoal::remote {
namespace {

namespace hs = cluster::handshake;

struct challenge {
  std::string peer;
  std::string dialer_nonce;
  std::string acceptor_nonce;
};

struct gateway_state {
  cluster_identity id;
  const protocol::shard_handles* shards = nullptr;
  const cluster::ownership* owners = nullptr;
  caf::actor membership;
  caf::actor raft; ///< the node's Raft transport; may be null (no replicated shard)
  const std::vector<protocol::shard_actor>* replicas = nullptr; ///< by shard; may be null
  const cluster::replica_board* reports = nullptr; ///< this node's replicas; may be null
  std::map<caf::node_id, challenge> challenges;    ///< hello answered, auth pending
  std::map<caf::node_id, std::string> trusted;     ///< CAF node → configured id
  std::map<caf::actor_addr, caf::node_id> dialers; ///< monitored, to forget on down
  /// When each refusal text was last logged: a refused peer redials every few seconds,
  /// so the same refusal is logged again only after a minute.
  std::map<std::string, std::chrono::steady_clock::time_point> refusals;
};

using gateway_pointer = caf::stateful_actor<gateway_state>*;

/// The sender's CAF node, when it is this node or a trusted peer.
bool trusted(gateway_pointer self) {
  const auto& sender = self->current_sender();
  if (!sender) return false;
  if (sender->node() == self->node()) return true;
  return self->state.trusted.count(sender->node()) != 0;
}

caf::error untrusted() {
  return caf::make_error(caf::sec::unexpected_message);
}

/// Logs a refusal at error level, unless the same one was logged in the last minute.
void log_refusal(gateway_state& st, const std::string& text) {
  const auto now = std::chrono::steady_clock::now();
  auto [it, fresh] = st.refusals.emplace(text, now);
  if (!fresh) {
    if (now - it->second < std::chrono::minutes(1)) return;
    it->second = now;
  }
  st.id.log->error("{}", text);
}

/// Local shard `shard` (this node's replica of a replicated one), or null when another
/// node owns it (a peer with another map).
const protocol::shard_actor* local_shard(gateway_pointer self, std::uint32_t shard) {
  auto& st = self->state;
  if (st.replicas != nullptr && shard < st.replicas->size() && (*st.replicas)[shard])
    return &(*st.replicas)[shard];
  if (shard >= st.owners->shard_count() || st.owners->owner(shard) != st.id.self) return nullptr;
  return &st.shards->handles[shard];
}

hello_ack on_hello(gateway_pointer self, hello& h) {
  auto& st = self->state;
  const auto& sender = self->current_sender();
  if (!sender) return hello_ack{"anonymous hello", {}, {}, {}};
  if (h.node == st.id.self || !st.id.is_member(h.node)) {
    log_refusal(st, "refused a connection from node id \"" + h.node
                      + "\": not a member of this cluster");
    return hello_ack{"node id \"" + h.node + "\" is not a member", {}, {}, {}};
  }
  challenge c{h.node, std::move(h.nonce), hs::make_nonce()};
  auto proof = hs::proof(st.id.secret, hs::role::acceptor, c.peer, st.id.self, c.dialer_nonce,
                         c.acceptor_nonce);
  hello_ack ack{{}, st.id.self, c.acceptor_nonce, std::move(proof)};
  st.challenges[sender->node()] = std::move(c);
  return ack;
}

auth_ack on_auth(gateway_pointer self, auth& a) {
  auto& st = self->state;
  const auto& sender = self->current_sender();
  if (!sender) return auth_ack{"anonymous auth"};
  auto it = st.challenges.find(sender->node());
  if (it == st.challenges.end()) return auth_ack{"auth without hello"};
  const challenge c = std::move(it->second);
  st.challenges.erase(it);
  const auto expected =
    hs::proof(st.id.secret, hs::role::dialer, c.peer, st.id.self, c.dialer_nonce, c.acceptor_nonce);
  if (!hs::same_proof(expected, a.proof)) {
    log_refusal(st, "refused node " + c.peer + ": it does not know the cluster secret");
    return auth_ack{"the cluster secret differs"};
  }
  if (a.shards != st.id.shards) {
    log_refusal(st, "refused node " + c.peer
                      + ": it has cluster.shards = " + std::to_string(a.shards) + ", this node has "
                      + std::to_string(st.id.shards));
    return auth_ack{"cluster.shards differs: " + std::to_string(st.id.shards) + " on node "
                    + st.id.self + ", " + std::to_string(a.shards) + " on node " + c.peer};
  }
  if (a.replication_factor != st.id.replication_factor) {
    log_refusal(st, "refused node " + c.peer + ": it has cluster.replication_factor = "
                      + std::to_string(a.replication_factor) + ", this node has "
                      + std::to_string(st.id.replication_factor));
    return auth_ack{"cluster.replication_factor differs: "
                    + std::to_string(st.id.replication_factor) + " on node " + st.id.self + ", "
                    + std::to_string(a.replication_factor) + " on node " + c.peer};
  }
  if (a.members != st.id.members) {
    log_refusal(st, "refused node " + c.peer + ": its cluster.nodes [" + a.members
                      + "] differ from this node's [" + st.id.members + "]");
    return auth_ack{"cluster.nodes differs: node " + st.id.self + " has [" + st.id.members + "]"};
  }
  auto addr = caf::actor_cast<caf::actor_addr>(sender);
  if (st.dialers.emplace(addr, sender->node()).second) self->monitor(addr);
  auto& known = st.trusted[sender->node()];
  if (known.empty()) st.id.log->info("node {} completed the handshake", c.peer);
  known = c.peer;
  if (st.membership) self->send(st.membership, peer_back_atom::value, c.peer);
  return auth_ack{};
}

/// The handler that delivers forwarded requests of type R to the local shard they name:
/// delegated with an empty reply_to, so the host's answer goes straight back to the
/// peer's stub.
template <class R>
auto forward(gateway_pointer self) {
  using T = protocol::reply_of<R>;
  return [self](std::uint32_t shard, R& req) -> caf::result<T> {
    if (!trusted(self)) return untrusted();
    auto* local = local_shard(self, shard);
    if (!local)
      return protocol::to_caf(core::error{core::errc::shard_unavailable,
                                          "node " + self->state.id.self + " does not own shard "
                                            + std::to_string(shard)});
    return self->delegate(*local, std::move(req), core::reply_to<T>{});
  };
}

template <class... Rs>
caf::behavior gateway_behavior(gateway_pointer self, core::type_list<Rs...>) {
  return {
    forward<Rs>(self)...,
    [=](hello& h) { return on_hello(self, h); },
    [=](auth& a) { return on_auth(self, a); },
    [=](refuse_atom, const std::string& node, const std::string& reason) {
      if (!self->state.id.is_member(node)) return;
      log_refusal(self->state, "node " + node + " refused this node: " + reason);
    },
    [=](raft_relay_atom, std::uint32_t shard, std::string& bytes) {
      // Untrusted: dropped, as the error an unknown peer gets elsewhere would tell it
      // nothing more (this message has no reply to carry one).
      if (!trusted(self) || !self->state.raft) return;
      self->send(self->state.raft, raft_relay_atom::value, shard, std::move(bytes));
    },
    [=](raft_relay_atom, raft_batch& batch) {
      if (!trusted(self) || !self->state.raft) return;
      self->send(self->state.raft, raft_relay_atom::value, std::move(batch));
    },
    [=](heartbeat_atom) -> caf::result<heartbeat_atom, replica_reports> {
      if (!trusted(self)) return untrusted();
      replica_reports out;
      if (self->state.reports != nullptr) out.reports = self->state.reports->all();
      return {heartbeat_atom::value, std::move(out)};
    },
  };
}

caf::behavior gateway_impl(caf::stateful_actor<gateway_state>* self, cluster_identity id,
                           const protocol::shard_handles* shards, const cluster::ownership* owners,
                           caf::actor membership, caf::actor raft,
                           const std::vector<protocol::shard_actor>* replicas,
                           const cluster::replica_board* reports) {
  self->state.id = std::move(id);
  self->state.reports = reports;
  self->state.raft = std::move(raft);
  self->state.replicas = replicas;
  self->state.shards = shards;
  self->state.owners = owners;
  self->state.membership = std::move(membership);
  self->set_down_handler([self](caf::down_msg& msg) {
    auto& st = self->state;
    auto it = st.dialers.find(msg.source);
    if (it == st.dialers.end()) return;
    if (auto t = st.trusted.find(it->second); t != st.trusted.end()) {
      st.id.log->info("node {} disconnected", t->second);
      st.trusted.erase(t);
    }
    st.challenges.erase(it->second);
    st.dialers.erase(it);
  });
  return gateway_behavior(self, protocol::shard_requests{});
}

} // namespace

caf::actor spawn_gateway(caf::actor_system& sys, cluster_identity identity,
                         const protocol::shard_handles& shards, const cluster::ownership& owners,
                         caf::actor membership, caf::actor raft,
                         const std::vector<protocol::shard_actor>* replicas,
                         const cluster::replica_board* reports) {
  return sys.spawn(gateway_impl, std::move(identity), &shards, &owners, std::move(membership),
                   std::move(raft), replicas, reports);
}

} // namespace shoal::remote
