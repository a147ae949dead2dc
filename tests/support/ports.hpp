// SPDX-License-Identifier: Apache-2.0
#pragma once

// Loopback TCP ports for tests that must name their ports up front (a cluster's members
// list each other's ports in one config file, so port 0 will not do).

#include <cstddef>
#include <cstdint>
#include <vector>

namespace shoal::test {

/// `count` distinct TCP ports that were free on 127.0.0.1 a moment ago, picked at random
/// from the 10,000 ports below the kernel's ephemeral range, so that no outgoing
/// connection can take one as its local port before the test binds it (only another
/// listener could). Each is bound, all are held until every one is known, then all are
/// closed; nothing was listening or connected on them, so they are free again at once.
/// Throws std::system_error when a socket cannot be created or no free port is found.
std::vector<std::uint16_t> free_tcp_ports(std::size_t count);

/// Ports a fixture keeps from other tests for as long as it lives: picked as
/// free_tcp_ports does, but each stays bound (with SO_REUSEADDR, never listening) until
/// the reservation is destroyed. Another test process picking ports cannot bind one (so
/// two suites running in parallel never get the same port, however late their nodes
/// start), while the nodes under test can: their listeners set SO_REUSEADDR too, and
/// Linux lets such sockets share a port as long as at most one of them listens.
class port_reservation {
public:
  explicit port_reservation(std::size_t count);
  ~port_reservation();
  port_reservation(const port_reservation&) = delete;
  port_reservation& operator=(const port_reservation&) = delete;

  const std::vector<std::uint16_t>& ports() const noexcept {
    return ports_;
  }

private:
  std::vector<int> fds_;
  std::vector<std::uint16_t> ports_;
};

} // namespace shoal::test
