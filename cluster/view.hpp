// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cluster/replicas.hpp"

namespace shoal::cluster {

/// How this node sees a member.
enum class member_state {
  connecting, ///< never reached yet; dialing
  up,         ///< handshake done, heartbeats answered within the failure timeout
  down,       ///< lost, silent past the failure timeout, or refused; still redialing
};

const char* to_string(member_state s) noexcept;

struct member_view {
  std::string id;
  std::string http; ///< "host:port"
  member_state state = member_state::connecting;
  /// When this node last heard the member answer a heartbeat (steady clock); none yet:
  /// empty. The node itself is always `up` with its own clock.
  std::optional<std::chrono::steady_clock::time_point> last_heartbeat;
  std::string reason; ///< why it is down (empty when up)
};

/// An immutable snapshot of the cluster as one node sees it; the membership actor
/// publishes a new one on every change, the HTTP edge reads the latest.
struct cluster_view {
  std::string self;
  std::vector<member_view> nodes; ///< every configured member, self included
  /// By shard: its owner; with replicated shards, its leader (empty while none is
  /// known).
  std::vector<std::string> shard_owners;
  /// By shard, with replicated shards (empty otherwise): its group, merged from the
  /// reports of this node's replicas and of the peers it hears (merge_reports).
  std::vector<shard_replicas> replicas;
  bool ready = false; ///< /readyz: see docs/cluster.md
};

/// The latest `cluster_view`: one writer publishes, any thread reads, without locks
/// held across either (an atomic shared_ptr swap).
class view_board {
public:
  void publish(std::shared_ptr<const cluster_view> view) noexcept;
  std::shared_ptr<const cluster_view> read() const noexcept;

private:
  std::shared_ptr<const cluster_view> current_;
};

} // namespace shoal::cluster
