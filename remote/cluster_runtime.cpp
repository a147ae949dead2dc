// SPDX-License-Identifier: Apache-2.0
#include "remote/cluster_runtime.hpp"

#include <algorithm>

#include <caf/actor_system.hpp>
#include <caf/exit_reason.hpp>
#include <caf/io/middleman.hpp>
#include <caf/openssl/publish.hpp>
#include <caf/send.hpp>

#include "cluster/ownership.hpp"
#include "remote/gateway.hpp"
#include "remote/membership.hpp"

namespace shoal::remote {

placed_shards place_shards(caf::actor_system& sys, const std::string& self,
                           const cluster::ownership& owners,
                           std::chrono::milliseconds failure_timeout,
                           std::chrono::milliseconds call_timeout,
                           const std::function<protocol::shard_actor(std::uint32_t)>& spawn_local) {
  placed_shards out;
  const auto& nodes = owners.nodes();
  const auto self_index =
    static_cast<std::uint32_t>(std::find(nodes.begin(), nodes.end(), self) - nodes.begin());
  out.stubs_by_peer.resize(nodes.size() - 1);
  out.handles.handles.reserve(owners.shard_count());
  for (std::uint32_t i = 0; i < owners.shard_count(); ++i) {
    const auto owner = owners.owner_index(i);
    if (owner == self_index) {
      out.handles.handles.push_back(spawn_local(i));
      continue;
    }
    remote_shard_config cfg;
    cfg.shard = i;
    cfg.owner = owners.owner(i);
    cfg.failure_timeout = failure_timeout;
    cfg.call_timeout = call_timeout;
    auto stub = spawn_remote_shard(sys, std::move(cfg));
    out.handles.handles.push_back(stub);
    out.stubs_by_peer[owner < self_index ? owner : owner - 1].push_back(std::move(stub));
  }
  return out;
}

placed_shards place_replicated_shards(
  caf::actor_system& sys, const std::string& self, const cluster::ownership& owners,
  std::uint32_t replication_factor, std::chrono::milliseconds failure_timeout,
  std::chrono::milliseconds call_timeout,
  const std::function<protocol::shard_actor(std::uint32_t, replication::group_config)>&
    spawn_replica) {
  placed_shards out;
  const auto& nodes = owners.nodes();
  const auto self_index =
    static_cast<std::uint32_t>(std::find(nodes.begin(), nodes.end(), self) - nodes.begin());
  out.stubs_by_peer.resize(nodes.size() - 1);
  out.replicas.resize(owners.shard_count());
  out.handles.handles.reserve(owners.shard_count());
  for (std::uint32_t i = 0; i < owners.shard_count(); ++i) {
    const auto members = owners.replicas_of(i, replication_factor);
    replication::group_config group;
    group.shard = i;
    // A member's server id is its place in cluster.nodes, plus one: the same everywhere.
    for (auto n : members)
      group.voters.push_back({std::uint64_t{n} + 1, nodes[n]});
    if (std::find(members.begin(), members.end(), self_index) != members.end()) {
      group.self = std::uint64_t{self_index} + 1;
      out.replicas[i] = spawn_replica(i, group);
    }
    remote_shard_config cfg;
    cfg.shard = i;
    cfg.failure_timeout = failure_timeout;
    cfg.call_timeout = call_timeout;
    for (auto n : members)
      cfg.replicas.push_back(nodes[n]);
    cfg.self = self;
    cfg.local = out.replicas[i];
    auto stub = spawn_remote_shard(sys, std::move(cfg));
    out.handles.handles.push_back(stub);
    for (auto n : members)
      if (n != self_index) out.stubs_by_peer[n < self_index ? n : n - 1].push_back(stub);
  }
  return out;
}

caf::expected<cluster_actors> start_cluster(caf::actor_system& sys, cluster_identity identity,
                                            placed_shards& shards, const cluster::ownership& owners,
                                            cluster::view_board& board, caf::actor raft,
                                            const cluster::replica_board* reports) {
  const auto self = std::find_if(identity.nodes.begin(), identity.nodes.end(),
                                 [&](const auto& n) { return n.id == identity.self; });
  if (self == identity.nodes.end())
    return caf::make_error(caf::sec::invalid_argument, "node.id is not one of cluster.nodes");
  const auto address = *self;
  const bool tls = identity.tls;
  cluster_actors out;
  out.membership =
    spawn_membership(sys, identity, std::move(shards.stubs_by_peer), owners, board, raft, reports);
  out.gateway = spawn_gateway(sys, std::move(identity), shards.handles, owners, out.membership,
                              raft, &shards.replicas, reports);
  auto port =
    tls ? caf::openssl::publish(out.gateway, address.actor_port, address.host.c_str(), true)
        : sys.middleman().publish(out.gateway, address.actor_port, address.host.c_str(), true);
  if (!port) {
    caf::anon_send_exit(out.membership, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(out.gateway, caf::exit_reason::user_shutdown);
    return std::move(port.error());
  }
  return out;
}

} // namespace shoal::remote
