// SPDX-License-Identifier: Apache-2.0
#include "remote/gateway.hpp"

#include <map>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <spdlog/spdlog.h>

#include "actors/shard_actor.hpp"
#include "cluster/handshake.hpp"
#include "cluster/ownership.hpp"
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
  const actors::shard_handles* shards = nullptr;
  const cluster::ownership* owners = nullptr;
  std::map<caf::node_id, challenge> challenges;    ///< hello answered, auth pending
  std::map<caf::node_id, std::string> trusted;     ///< CAF node → configured id
  std::map<caf::actor_addr, caf::node_id> dialers; ///< monitored, to forget on down
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

/// Local shard `shard`, or null when another node owns it (a peer with another map).
const actors::shard_actor* local_shard(gateway_pointer self, std::uint32_t shard) {
  auto& st = self->state;
  if (shard >= st.owners->shard_count() || st.owners->owner(shard) != st.id.self) return nullptr;
  return &st.shards->handles[shard];
}

hello_ack on_hello(gateway_pointer self, hello& h) {
  auto& st = self->state;
  const auto& sender = self->current_sender();
  if (!sender) return hello_ack{"anonymous hello", {}, {}, {}};
  if (h.node == st.id.self || !st.id.is_member(h.node)) {
    st.id.log->error("refused a connection from node id \"{}\": not a member of this cluster",
                     h.node);
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
    st.id.log->error("refused node {}: it does not know the cluster secret", c.peer);
    return auth_ack{"the cluster secret differs"};
  }
  if (a.shards != st.id.shards) {
    st.id.log->error("refused node {}: it has cluster.shards = {}, this node has {}", c.peer,
                     a.shards, st.id.shards);
    return auth_ack{"cluster.shards differs: " + std::to_string(st.id.shards) + " on node "
                    + st.id.self + ", " + std::to_string(a.shards) + " on node " + c.peer};
  }
  if (a.members != st.id.members) {
    st.id.log->error("refused node {}: its cluster.nodes [{}] differ from this node's [{}]", c.peer,
                     a.members, st.id.members);
    return auth_ack{"cluster.nodes differs: node " + st.id.self + " has [" + st.id.members + "]"};
  }
  auto addr = caf::actor_cast<caf::actor_addr>(sender);
  if (st.dialers.emplace(addr, sender->node()).second) self->monitor(addr);
  auto& known = st.trusted[sender->node()];
  if (known.empty()) st.id.log->info("node {} completed the handshake", c.peer);
  known = c.peer;
  return auth_ack{};
}

caf::behavior gateway_impl(caf::stateful_actor<gateway_state>* self, cluster_identity id,
                           const actors::shard_handles* shards, const cluster::ownership* owners) {
  self->state.id = std::move(id);
  self->state.shards = shards;
  self->state.owners = owners;
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
  return {
    [=](hello& h) { return on_hello(self, h); },
    [=](auth& a) { return on_auth(self, a); },
    [=](refuse_atom, const std::string& node, const std::string& reason) {
      if (!self->state.id.is_member(node)) return;
      self->state.id.log->error("node {} refused this node: {}", node, reason);
    },
    [=](heartbeat_atom) -> caf::result<heartbeat_atom> {
      if (!trusted(self)) return untrusted();
      return heartbeat_atom::value;
    },
    [=](std::uint32_t shard, actors::doc_request& req) -> caf::result<actors::doc_reply> {
      if (!trusted(self)) return untrusted();
      auto* local = local_shard(self, shard);
      if (!local)
        return actors::doc_reply{actors::doc_status::shard_unavailable,
                                 0,
                                 {},
                                 "node " + self->state.id.self + " does not own shard "
                                   + std::to_string(shard)};
      return self->delegate(*local, std::move(req));
    },
    [=](std::uint32_t shard, actors::actor_call& call) -> caf::result<actors::actor_reply> {
      if (!trusted(self)) return untrusted();
      auto* local = local_shard(self, shard);
      if (!local)
        return actors::actor_reply{503,
                                   {},
                                   "shard_unavailable",
                                   "node " + self->state.id.self + " does not own shard "
                                     + std::to_string(shard)};
      return self->delegate(*local, std::move(call));
    },
  };
}

} // namespace

caf::actor spawn_gateway(caf::actor_system& sys, cluster_identity identity,
                         const actors::shard_handles& shards, const cluster::ownership& owners) {
  return sys.spawn(gateway_impl, std::move(identity), &shards, &owners);
}

} // namespace shoal::remote
