// SPDX-License-Identifier: Apache-2.0
#pragma once

// What the in-process member suites share: the CAF configuration of a member (two
// workers, the middleman, Shoal's message types) and its identity with the short timers
// these suites use, so members find each other and call each other down quickly.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>
#include <spdlog/spdlog.h>

#include "protocol/type_ids.hpp"
#include "remote/members.hpp"
#include "remote/type_ids.hpp"

namespace shoal::remote::in_process {

inline void configure_member(caf::actor_system_config& cfg) {
  cfg.set("scheduler.max-threads", std::size_t{2});
  cfg.load<caf::io::middleman>();
  protocol::add_message_types(cfg);
  cfg.add_message_types<caf::id_block::shoal_remote>();
}

/// Member `self` of `nodes`: heartbeats every 50 ms, down after 500 ms.
inline cluster_identity member_identity(const std::string& self,
                                        const std::vector<config::node_address>& nodes,
                                        std::uint32_t shards, std::string secret,
                                        std::chrono::milliseconds reconnect_max,
                                        std::shared_ptr<spdlog::logger> log) {
  cluster_identity id;
  id.self = self;
  id.nodes = nodes;
  id.shards = shards;
  id.secret = std::move(secret);
  id.members = describe_members(nodes);
  id.heartbeat = std::chrono::milliseconds(50);
  id.failure_timeout = std::chrono::milliseconds(500);
  id.reconnect_max = reconnect_max;
  id.log = std::move(log);
  return id;
}

} // namespace shoal::remote::in_process
