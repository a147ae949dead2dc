// SPDX-License-Identifier: Apache-2.0
#include "util/base64url.hpp"

#include <cstdint>

namespace shoal::util {

namespace {

constexpr std::string_view base64url_alphabet =
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The 6-bit value of a base64url character, or -1.
int base64url_value(char c) noexcept {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

} // namespace

std::string base64url_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() * 4 + 2) / 3);
  std::size_t i = 0;
  auto at = [&](std::size_t k) {
    return static_cast<std::uint32_t>(static_cast<std::uint8_t>(bytes[k]));
  };
  for (; i + 3 <= bytes.size(); i += 3) {
    std::uint32_t n = (at(i) << 16) | (at(i + 1) << 8) | at(i + 2);
    out += base64url_alphabet[(n >> 18) & 63];
    out += base64url_alphabet[(n >> 12) & 63];
    out += base64url_alphabet[(n >> 6) & 63];
    out += base64url_alphabet[n & 63];
  }
  if (bytes.size() - i == 1) {
    std::uint32_t n = at(i) << 16;
    out += base64url_alphabet[(n >> 18) & 63];
    out += base64url_alphabet[(n >> 12) & 63];
  } else if (bytes.size() - i == 2) {
    std::uint32_t n = (at(i) << 16) | (at(i + 1) << 8);
    out += base64url_alphabet[(n >> 18) & 63];
    out += base64url_alphabet[(n >> 12) & 63];
    out += base64url_alphabet[(n >> 6) & 63];
  }
  return out;
}

/// Strict unpadded base64url: only the alphabet, no impossible length, and the unused
/// low bits of the last character zero (so every byte string has exactly one text).
std::optional<std::string> base64url_decode(std::string_view text) {
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() * 3 / 4);
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v = base64url_value(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

} // namespace shoal::util
