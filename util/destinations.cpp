// SPDX-License-Identifier: Apache-2.0
#include "util/destinations.hpp"
#include "util/text.hpp"

#include <arpa/inet.h>

#include <cstring>

namespace shoal::util {
namespace {

using address = destination_policy::address;

/// True when the first `bits` bits of `a` and `b` agree.
bool same_prefix(const std::uint8_t* a, const std::uint8_t* b, unsigned bits) {
  const unsigned whole = bits / 8;
  if (std::memcmp(a, b, whole) != 0) return false;
  const unsigned rest = bits % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
  return (a[whole] & mask) == (b[whole] & mask);
}

struct range {
  std::array<std::uint8_t, 16> base;
  unsigned bits;
  const char* why;
};

// IPv4 ranges no webhook may reach by default (RFC 6890 special-purpose blocks).
const range v4_refused[] = {
  {{0, 0, 0, 0}, 8, "unspecified"},
  {{10, 0, 0, 0}, 8, "private"},
  {{100, 64, 0, 0}, 10, "shared (carrier-grade NAT)"},
  {{127, 0, 0, 0}, 8, "loopback"},
  {{169, 254, 0, 0}, 16, "link-local (cloud metadata)"},
  {{172, 16, 0, 0}, 12, "private"},
  {{192, 0, 0, 0}, 24, "IETF protocol assignments"},
  {{192, 168, 0, 0}, 16, "private"},
  {{198, 18, 0, 0}, 15, "benchmarking"},
  {{224, 0, 0, 0}, 4, "multicast"},
  {{240, 0, 0, 0}, 4, "reserved"},
};

// IPv6 ranges; an IPv4-mapped address (::ffff:a.b.c.d) is judged as its IPv4 address.
const range v6_refused[] = {
  {{}, 128, "unspecified"},
  {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128, "loopback"},
  {{0xfc}, 7, "unique local (private)"},
  {{0xfe, 0x80}, 10, "link-local"},
  {{0xff}, 8, "multicast"},
};

bool is_v4_mapped(const address& a) {
  static const std::uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return a.v6 && std::memcmp(a.bytes.data(), prefix, 12) == 0;
}

std::optional<address> parse_address(const std::string& text) {
  address a;
  if (inet_pton(AF_INET, text.c_str(), a.bytes.data()) == 1) return a;
  if (inet_pton(AF_INET6, text.c_str(), a.bytes.data()) == 1) {
    a.v6 = true;
    return a;
  }
  return std::nullopt;
}

} // namespace

std::optional<destination_policy> destination_policy::with_allowed(std::string_view allow,
                                                                   std::string* error) {
  destination_policy p;
  while (!allow.empty()) {
    const auto comma = allow.find(',');
    auto entry = trim(allow.substr(0, comma));
    allow = comma == std::string_view::npos ? std::string_view{} : allow.substr(comma + 1);
    if (entry.empty()) continue;
    const auto slash = entry.find('/');
    auto a = parse_address(std::string(entry.substr(0, slash)));
    if (!a) {
      if (error) *error = "\"" + std::string(entry) + "\" is not an IP address or CIDR block";
      return std::nullopt;
    }
    const unsigned max_bits = a->v6 ? 128 : 32;
    unsigned bits = max_bits;
    if (slash != std::string_view::npos) {
      auto digits = entry.substr(slash + 1);
      bits = 0;
      bool ok = !digits.empty() && digits.size() <= 3;
      for (char c : digits) {
        ok = ok && c >= '0' && c <= '9';
        bits = bits * 10 + static_cast<unsigned>(c - '0');
      }
      if (!ok || bits > max_bits) {
        if (error) *error = "\"" + std::string(entry) + "\" has a bad prefix length";
        return std::nullopt;
      }
    }
    p.allowed_.push_back({*a, bits});
  }
  return p;
}

std::optional<std::string> destination_policy::refusal(const address& in) const {
  address a = in;
  if (is_v4_mapped(in)) {
    a = address{};
    std::memcpy(a.bytes.data(), in.bytes.data() + 12, 4);
  }
  for (const auto& b : allowed_)
    if (b.base.v6 == a.v6 && same_prefix(a.bytes.data(), b.base.bytes.data(), b.bits))
      return std::nullopt;
  const auto check = [&](const auto& ranges) -> std::optional<std::string> {
    for (const auto& r : ranges)
      if (same_prefix(a.bytes.data(), r.base.data(), r.bits)) return std::string(r.why);
    return std::nullopt;
  };
  return a.v6 ? check(v6_refused) : check(v4_refused);
}

} // namespace shoal::util
