// SPDX-License-Identifier: Apache-2.0
#include "remote/raft_transport.hpp"

#include <map>
#include <tuple>
#include <utility>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>

#include "host/shard_host.hpp"
#include "remote/protocol.hpp"
#include "remote/type_ids.hpp"

namespace shoal::remote {
namespace {

/// Transport → itself: send what is queued for the peers.
using flush_atom = caf::atom_constant<caf::atom("raft_fl")>;

struct transport_state {
  std::string self;                                     ///< this node's id
  std::map<std::string, caf::actor> gateways;           ///< peers whose link is up
  std::map<std::uint32_t, protocol::shard_actor> local; ///< this node's replicas
  std::map<std::string, raft_batch> outbox;             ///< by peer, until the flush
  bool flush_pending = false;
  std::uint64_t sent = 0;
  std::uint64_t relayed = 0;
  std::uint64_t dropped = 0;
  static inline const char* name = "shoal.raft_transport";
};

using transport_pointer = caf::stateful_actor<transport_state>*;

/// Hands a relayed message to the local replica of `shard`, or drops it (and counts).
void deliver(transport_pointer self, std::uint32_t shard, std::string bytes) {
  auto& st = self->state;
  auto it = st.local.find(shard);
  if (it == st.local.end()) {
    ++st.dropped;
    return;
  }
  ++st.relayed;
  host::deliver_raft(it->second, std::move(bytes));
}

caf::behavior transport_impl(transport_pointer self, std::string node) {
  self->state.self = std::move(node);
  return {
    [self](raft_peer_atom, const std::string& node, caf::actor& gateway) {
      auto& st = self->state;
      if (gateway)
        st.gateways[node] = std::move(gateway);
      else
        st.gateways.erase(node);
    },
    [self](raft_local_atom, std::uint32_t shard, protocol::shard_actor& host) {
      self->state.local[shard] = std::move(host);
    },
    [self](raft_send_atom, const std::string& node, std::uint32_t shard, std::string& bytes) {
      auto& st = self->state;
      if (st.gateways.count(node) == 0) {
        ++st.dropped;
        return;
      }
      auto& batch = st.outbox[node];
      batch.shards.push_back(shard);
      batch.bytes.push_back(std::move(bytes));
      if (st.flush_pending) return;
      st.flush_pending = true;
      self->send(self, flush_atom::value);
    },
    [self](flush_atom) {
      auto& st = self->state;
      st.flush_pending = false;
      for (auto& [node, batch] : st.outbox) {
        if (batch.shards.empty()) continue;
        auto it = st.gateways.find(node);
        if (it == st.gateways.end()) {
          st.dropped += batch.shards.size();
        } else if (batch.shards.size() == 1) {
          ++st.sent;
          self->send(it->second, raft_relay_atom::value, batch.shards.front(),
                     std::move(batch.bytes.front()));
        } else {
          st.sent += batch.shards.size();
          self->send(it->second, raft_relay_atom::value, std::move(batch));
        }
        batch = raft_batch{};
      }
    },
    [self](raft_relay_atom, std::uint32_t shard, std::string& bytes) {
      deliver(self, shard, std::move(bytes));
    },
    [self](raft_relay_atom, raft_batch& batch) {
      for (std::size_t i = 0; i < batch.shards.size() && i < batch.bytes.size(); ++i)
        deliver(self, batch.shards[i], std::move(batch.bytes[i]));
    },
    [self](raft_stats_atom) {
      auto& st = self->state;
      return std::make_tuple(st.sent, st.relayed, st.dropped);
    },
  };
}

} // namespace

caf::actor spawn_raft_transport(caf::actor_system& sys, std::string self) {
  // (An argument also keeps CAF 0.17 from binding a reference to its null empty
  // argument tuple, which UBSan reports.)
  return sys.spawn(transport_impl, std::move(self));
}

std::function<void(std::uint64_t, const std::string&, std::string)>
raft_sender(caf::actor transport, std::uint32_t shard) {
  return [transport = std::move(transport), shard](std::uint64_t, const std::string& node,
                                                   std::string bytes) {
    caf::anon_send(transport, raft_send_atom::value, node, shard, std::move(bytes));
  };
}

} // namespace shoal::remote
