// SPDX-License-Identifier: Apache-2.0
#include "tests/support/ports.hpp"

#include <cerrno>
#include <fstream>
#include <random>
#include <system_error>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace shoal::test {

namespace {

/// Closes the descriptors it holds when it goes out of scope.
struct held_sockets {
  std::vector<int> fds;
  ~held_sockets() {
    for (int fd : fds)
      ::close(fd);
  }
};

/// The first port of the kernel's ephemeral range (net.ipv4.ip_local_port_range),
/// from which it picks the local port of every outgoing connection and of bind(0).
std::uint16_t ephemeral_start() {
  std::ifstream in("/proc/sys/net/ipv4/ip_local_port_range");
  unsigned low = 0;
  unsigned high = 0;
  if (in >> low >> high && low > 2048 && low <= 65535) return static_cast<std::uint16_t>(low);
  return 32768; // Linux's default
}

/// `count` distinct ports bound on loopback, their sockets added to `held`; with
/// `reusable`, each socket gets SO_REUSEADDR once bound.
std::vector<std::uint16_t> pick_ports(std::size_t count, bool reusable, std::vector<int>& held) {
  // Ports below the ephemeral range: a port picked from inside it could be taken, before
  // the test binds it, as the local port of any outgoing connection on the machine (a
  // node dialing its peers, say). Below it, only another listener can take one.
  const std::uint16_t high = ephemeral_start();
  const std::uint16_t low = high > 12'000 ? static_cast<std::uint16_t>(high - 10'000) : 1'025;
  std::minstd_rand pick{std::random_device{}()};
  std::uniform_int_distribution<unsigned> in_range(low, high - 1u);
  std::vector<std::uint16_t> ports;
  ports.reserve(count);
  for (int tries = 0; ports.size() < count; ++tries) {
    if (tries > 10'000)
      throw std::system_error(EADDRINUSE, std::generic_category(), "no free port");
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "socket");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(in_range(pick)));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    // A port in use (or in TIME_WAIT, or reserved by another test) fails to bind: try
    // another. Every socket stays bound until all are found, so no port is returned twice.
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd);
      continue;
    }
    held.push_back(fd);
    // Bound without SO_REUSEADDR, so the bind above excluded every other socket; set
    // now, it lets the node under test (whose listener sets it too) bind the port, while
    // a picker that does not set it still cannot.
    const int on = 1;
    if (reusable) ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    ports.push_back(ntohs(addr.sin_port));
  }
  return ports;
}

} // namespace

std::vector<std::uint16_t> free_tcp_ports(std::size_t count) {
  held_sockets held;
  return pick_ports(count, false, held.fds);
}

port_reservation::port_reservation(std::size_t count) {
  try {
    ports_ = pick_ports(count, true, fds_);
  } catch (...) {
    for (int fd : fds_)
      ::close(fd);
    throw;
  }
}

port_reservation::~port_reservation() {
  for (int fd : fds_)
    ::close(fd);
}

} // namespace shoal::test
