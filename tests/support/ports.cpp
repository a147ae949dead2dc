// SPDX-License-Identifier: Apache-2.0
#include "tests/support/ports.hpp"

#include <cerrno>
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

} // namespace

std::vector<std::uint16_t> free_tcp_ports(std::size_t count) {
  held_sockets held;
  std::vector<std::uint16_t> ports;
  ports.reserve(count);
  while (ports.size() < count) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "socket");
    held.fds.push_back(fd);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = 0;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
      throw std::system_error(errno, std::generic_category(), "bind 127.0.0.1:0");
    socklen_t len = sizeof addr;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
      throw std::system_error(errno, std::generic_category(), "getsockname");
    // Every socket is still bound, so the kernel cannot hand out the same port twice.
    ports.push_back(ntohs(addr.sin_port));
  }
  return ports;
}

} // namespace shoal::test
