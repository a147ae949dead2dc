// SPDX-License-Identifier: Apache-2.0
#include "cluster/handshake.hpp"

#include <array>
#include <cstdint>
#include <stdexcept>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

namespace shoal::cluster::handshake {
namespace {

std::string to_hex(const unsigned char* data, std::size_t size) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out(size * 2, '0');
  for (std::size_t i = 0; i < size; ++i) {
    out[2 * i] = digits[data[i] >> 4];
    out[2 * i + 1] = digits[data[i] & 0x0f];
  }
  return out;
}

void append_field(std::string& out, std::string_view field) {
  const auto n = static_cast<std::uint32_t>(field.size());
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((n >> shift) & 0xff));
  out.append(field);
}

} // namespace

std::string make_nonce() {
  std::array<unsigned char, 16> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1)
    throw std::runtime_error("RAND_bytes failed: no randomness for a handshake nonce");
  return to_hex(bytes.data(), bytes.size());
}

std::string proof(std::string_view secret, role who, std::string_view dialer,
                  std::string_view acceptor, std::string_view dialer_nonce,
                  std::string_view acceptor_nonce) {
  std::string input;
  append_field(input, who == role::dialer ? "shoal-dialer-v1" : "shoal-acceptor-v1");
  append_field(input, dialer);
  append_field(input, acceptor);
  append_field(input, dialer_nonce);
  append_field(input, acceptor_nonce);
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int mac_size = 0;
  if (HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
           reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac.data(),
           &mac_size)
      == nullptr)
    throw std::runtime_error("HMAC-SHA256 failed");
  return to_hex(mac.data(), mac_size);
}

bool same_proof(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

} // namespace shoal::cluster::handshake
