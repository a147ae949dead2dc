// SPDX-License-Identifier: Apache-2.0
#include "cluster/handshake.hpp"

#include <set>
#include <string>

#include <gtest/gtest.h>

namespace shoal::cluster::handshake {
namespace {

// Verifies the proof is HMAC-SHA256 over the length-prefixed fields. Pinned with openssl:
// printf
// '\x00\x00\x00\x0fshoal-dialer-v1\x00\x00\x00\x01a\x00\x00\x00\x01b\x00\x00\x00\x02n1\x00\x00\x00\x02n2'
//   | openssl dgst -sha256 -hmac 0123456789abcdef
TEST(HandshakeTest, ProofIsPinned) {
  EXPECT_EQ(proof("0123456789abcdef", role::dialer, "a", "b", "n1", "n2"),
            "5380c8c70c536dc2cf8c7c7df1054f50b3bf8ada178ce4019d960d591cebf728");
}

// Verifies that every input changes the proof: the secret, the role (no reflection),
// each id and each nonce (no replay on another connection), and the field boundaries.
TEST(HandshakeTest, EveryInputMatters) {
  const std::string secret = "0123456789abcdef";
  std::set<std::string> proofs{
    proof(secret, role::dialer, "a", "b", "n1", "n2"),
    proof("0123456789abcdeF", role::dialer, "a", "b", "n1", "n2"),
    proof(secret, role::acceptor, "a", "b", "n1", "n2"),
    proof(secret, role::dialer, "b", "a", "n1", "n2"),
    proof(secret, role::dialer, "a", "c", "n1", "n2"),
    proof(secret, role::dialer, "a", "b", "n3", "n2"),
    proof(secret, role::dialer, "a", "b", "n1", "n3"),
    proof(secret, role::dialer, "ab", "", "n1", "n2"),
  };
  EXPECT_EQ(proofs.size(), 8u);
}

// Verifies nonces are 32 hex digits and do not repeat.
TEST(HandshakeTest, NoncesAreFreshHex) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    auto n = make_nonce();
    ASSERT_EQ(n.size(), 32u);
    EXPECT_EQ(n.find_first_not_of("0123456789abcdef"), std::string::npos);
    EXPECT_TRUE(seen.insert(n).second);
  }
}

// Verifies the comparison: equal only for equal strings, also when lengths differ.
TEST(HandshakeTest, SameProofComparesWholeStrings) {
  EXPECT_TRUE(same_proof("abcd", "abcd"));
  EXPECT_FALSE(same_proof("abcd", "abce"));
  EXPECT_FALSE(same_proof("abcd", "abc"));
  EXPECT_FALSE(same_proof("", "a"));
}

} // namespace
} // namespace shoal::cluster::handshake
