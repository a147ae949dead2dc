// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>
#include <string_view>

namespace shoal::cluster {

/// The proofs of the node-to-node handshake (docs/cluster.md). CAF 0.17's wire protocol
/// has no authentication, so before a node serves a peer, each side proves it knows the
/// cluster secret without sending it: a challenge-response over fresh nonces from both
/// sides, bound to both node ids and to the side's role, so a proof cannot be replayed
/// on another connection or reflected back at its sender.
namespace handshake {

/// Who computes a proof: the node that dialed, or the node that was dialed.
enum class role { dialer, acceptor };

/// 16 bytes from the OS's CSPRNG (OpenSSL RAND_bytes), as 32 hex digits.
std::string make_nonce();

/// HMAC-SHA256(secret, role ‖ dialer ‖ acceptor ‖ dialer_nonce ‖ acceptor_nonce), hex.
/// Each field is length-prefixed, so no two inputs share an encoding.
std::string proof(std::string_view secret, role who, std::string_view dialer,
                  std::string_view acceptor, std::string_view dialer_nonce,
                  std::string_view acceptor_nonce);

/// Compares two proofs in time independent of where they differ.
bool same_proof(std::string_view a, std::string_view b) noexcept;

} // namespace handshake
} // namespace shoal::cluster
