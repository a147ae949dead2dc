// SPDX-License-Identifier: Apache-2.0
#pragma once

// What crosses loopback TCP connections on some ports, read with a packet socket (needs
// CAP_NET_RAW: root, as in CI), for tests that check what a link carries in clear. A
// thread reads IPv4 packets on `lo` until stop() and keeps the TCP payloads whose source
// or destination port is one of the given ones. Header-only; Linux only.

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <set>
#include <string>
#include <thread>

namespace shoal::test {

class loopback_capture {
public:
  explicit loopback_capture(std::set<std::uint16_t> ports) : ports_(std::move(ports)) {
    fd_ = ::socket(AF_PACKET, SOCK_DGRAM, htons(ETH_P_IP));
    if (fd_ < 0) {
      error_ = std::string("packet socket: ") + std::strerror(errno);
      return;
    }
    sockaddr_ll at{};
    at.sll_family = AF_PACKET;
    at.sll_protocol = htons(ETH_P_IP);
    at.sll_ifindex = static_cast<int>(::if_nametoindex("lo"));
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&at), sizeof(at)) != 0) {
      error_ = std::string("bind to lo: ") + std::strerror(errno);
      ::close(fd_);
      fd_ = -1;
      return;
    }
    reader_ = std::thread([this] { read_until_stopped(); });
  }

  ~loopback_capture() {
    stop();
  }

  loopback_capture(const loopback_capture&) = delete;
  loopback_capture& operator=(const loopback_capture&) = delete;

  /// False when the socket could not be opened (then error() says why).
  bool ok() const noexcept {
    return fd_ >= 0;
  }
  const std::string& error() const noexcept {
    return error_;
  }

  /// Stops reading (idempotent); what was read stays.
  void stop() {
    stopping_ = true;
    if (reader_.joinable()) reader_.join();
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  /// The payload bytes seen so far, in arrival order (both directions, all connections).
  std::string payload() const {
    std::lock_guard lock(mutex_);
    return payload_;
  }

  /// Packets with a payload kept so far.
  std::size_t segments() const {
    std::lock_guard lock(mutex_);
    return segments_;
  }

private:
  void read_until_stopped() {
    unsigned char buf[70000];
    while (!stopping_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      auto n = ::recv(fd_, buf, sizeof(buf), MSG_DONTWAIT);
      if (n > 0) keep(buf, static_cast<std::size_t>(n));
    }
  }

  /// Keeps the TCP payload of one IPv4 packet when one of its ports is watched.
  void keep(const unsigned char* ip, std::size_t n) {
    if (n < 20 || (ip[0] >> 4) != 4 || ip[9] != IPPROTO_TCP) return;
    const std::size_t ihl = (ip[0] & 0x0f) * 4u;
    const std::size_t total = std::min<std::size_t>(n, (std::size_t{ip[2]} << 8) | ip[3]);
    if (total < ihl + 20) return;
    const unsigned char* tcp = ip + ihl;
    const auto src = static_cast<std::uint16_t>((tcp[0] << 8) | tcp[1]);
    const auto dst = static_cast<std::uint16_t>((tcp[2] << 8) | tcp[3]);
    if (!ports_.count(src) && !ports_.count(dst)) return;
    const std::size_t offset = ihl + (tcp[12] >> 4) * 4u;
    if (offset >= total) return;
    std::lock_guard lock(mutex_);
    payload_.append(reinterpret_cast<const char*>(ip + offset), total - offset);
    ++segments_;
  }

  std::set<std::uint16_t> ports_;
  int fd_ = -1;
  std::string error_;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mutex_;
  std::string payload_;
  std::size_t segments_ = 0;
  std::thread reader_;
};

} // namespace shoal::test
