// SPDX-License-Identifier: Apache-2.0
#include "remote/members.hpp"

#include <algorithm>

namespace shoal::remote {

std::string describe_members(std::vector<config::node_address> nodes) {
  std::sort(nodes.begin(), nodes.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  std::string out;
  for (const auto& n : nodes) {
    if (!out.empty()) out += ", ";
    out +=
      n.id + "@" + n.host + ":" + std::to_string(n.http_port) + "/" + std::to_string(n.actor_port);
  }
  return out;
}

cluster_identity cluster_identity::from(const config::settings& s,
                                        std::shared_ptr<spdlog::logger> log) {
  cluster_identity id;
  id.self = s.node.id;
  id.nodes = s.cluster.nodes;
  id.shards = s.cluster.shards;
  id.replication_factor = s.cluster.replication_factor;
  id.secret = s.cluster.secret;
  id.members = describe_members(s.cluster.nodes);
  id.heartbeat = std::chrono::milliseconds(s.cluster.heartbeat_ms);
  id.failure_timeout = std::chrono::milliseconds(s.cluster.failure_timeout_ms);
  id.reconnect_max = std::chrono::milliseconds(s.cluster.reconnect_max_ms);
  id.tls = !s.cluster.tls_certificate.empty();
  id.log = std::move(log);
  return id;
}

bool cluster_identity::is_member(const std::string& id) const {
  return std::any_of(nodes.begin(), nodes.end(), [&](const auto& n) { return n.id == id; });
}

} // namespace shoal::remote
