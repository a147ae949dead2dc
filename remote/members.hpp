// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/settings.hpp"

namespace spdlog {
class logger;
} // namespace spdlog

namespace shoal::remote {

/// The member list as one canonical line ("id@host:http/actor, …" sorted by id). Two
/// nodes join only if their lines are equal: the same ids at the same addresses, so both
/// derive the same shard owners and dial the same places.
std::string describe_members(std::vector<config::node_address> nodes);

/// What the gateway and the membership actor of one node share: who this node is, who
/// its peers are and what they must agree on.
struct cluster_identity {
  std::string self;                        ///< node.id
  std::vector<config::node_address> nodes; ///< every member, self included
  std::uint32_t shards = 0;
  std::uint32_t replication_factor = 1; ///< members must agree: it decides the groups
  std::string secret;
  std::string members; ///< describe_members(nodes)
  std::chrono::milliseconds heartbeat{250};
  std::chrono::milliseconds failure_timeout{2000};
  std::chrono::milliseconds reconnect_max{2000};
  /// The links are mutual TLS (cluster.tls_*): publish and dial through CAF's OpenSSL
  /// middleman (remote/tls.hpp), which the actor system must have loaded.
  bool tls = false;
  std::shared_ptr<spdlog::logger> log;

  /// From the node's settings (with cluster.nodes set).
  static cluster_identity from(const config::settings& s, std::shared_ptr<spdlog::logger> log);

  bool is_member(const std::string& id) const;
};

} // namespace shoal::remote
