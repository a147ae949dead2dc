// SPDX-License-Identifier: Apache-2.0
#pragma once

// Which addresses outgoing webhook posts may connect to. A webhook URL comes from whoever
// may enqueue a job, so by default no post reaches this node, its neighbours or the
// cloud's metadata service: loopback, private, link-local, shared (CGNAT), unspecified,
// multicast and reserved addresses are refused, checked on every address the name
// resolves to, right before connecting (a name that resolves to a public address first
// and a private one later gains nothing). An allowlist of CIDR blocks opens exceptions.
// No Asio here: addresses are passed as bytes.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace shoal::util {

class destination_policy {
public:
  /// An IPv4 (4 bytes) or IPv6 (16 bytes) address.
  struct address {
    std::array<std::uint8_t, 16> bytes{};
    bool v6 = false;
  };

  /// The default: every public address, none of the refused ranges.
  destination_policy() = default;

  /// The default plus `allow`: comma-separated CIDR blocks ("127.0.0.1/32, 10.0.0.0/8",
  /// "::1/128"; a bare address is a /32 or /128). Nullopt, with the reason in `error`,
  /// when an entry is not one.
  static std::optional<destination_policy> with_allowed(std::string_view allow, std::string* error);

  /// Nullopt when `a` may be connected to; otherwise why not ("loopback", "private", ...).
  std::optional<std::string> refusal(const address& a) const;

private:
  struct block {
    address base;
    unsigned bits = 0;
  };
  std::vector<block> allowed_;
};

} // namespace shoal::util
