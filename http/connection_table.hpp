// SPDX-License-Identifier: Apache-2.0
#pragma once

// Internal to http/: the open HTTP connections of a server, for three decisions no single
// connection can make alone: whether a new connection may stay (http.max_connections,
// http.max_connections_per_client), which idle connection gives way when the server is
// full (the one idle longest), and whom to tell when a drain starts.

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace shoal::http {

class session;

class connection_table {
  struct member {
    std::weak_ptr<session> owner;
    std::string client; ///< the peer's address
    bool idle = true;
  };

public:
  /// A member's place; it stays valid while the member moves between the idle and the
  /// busy list (a splice), until `leave`.
  using slot = std::list<member>::iterator;

  enum class verdict { admitted, full, client_full };

  struct admission {
    verdict outcome = verdict::full;
    slot at{};                      ///< the new member's slot (when admitted)
    std::weak_ptr<session> evicted; ///< an idle member that must give way (may be empty)
  };

  /// `max_per_client` 0: no limit per client.
  connection_table(std::uint32_t max_connections, std::uint32_t max_per_client)
      : max_(max_connections), max_per_client_(max_per_client) {}

  connection_table(const connection_table&) = delete;
  connection_table& operator=(const connection_table&) = delete;

  /// A new connection from `client`, idle until it begins a request. `open` counts every
  /// open connection, this one excluded (change streams included, which are not
  /// members). When the server is full the member idle longest is evicted to make room;
  /// with none idle, the newcomer is refused. A client at its own limit is refused even
  /// when the server has room.
  admission admit(std::weak_ptr<session> owner, std::string client, std::int64_t open);

  /// The member waits for a request (evictable, oldest first) or has begun one. O(1), no
  /// allocation: a splice between two lists.
  void idle(slot at);
  void busy(slot at);

  /// The member's connection is gone.
  void leave(slot at);

  /// Every member, for a drain to tell.
  std::vector<std::weak_ptr<session>> members() const;

  std::size_t size() const;
  std::size_t idle_count() const;

private:
  const std::uint32_t max_;
  const std::uint32_t max_per_client_;
  mutable std::mutex mutex_; ///< sessions run on many I/O threads; held for O(1) steps
  std::list<member> idle_;   ///< oldest first
  std::list<member> busy_;   ///< in a request, or evicted and closing
  std::unordered_map<std::string, std::uint32_t> per_client_;
};

} // namespace shoal::http
