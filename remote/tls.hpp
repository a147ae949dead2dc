// SPDX-License-Identifier: Apache-2.0
#pragma once

// Mutual TLS on the links between members (cluster.tls_*; docs/cluster.md "Encrypted
// links"): CAF's OpenSSL middleman carries the same messages as the plain one, each side
// presenting its certificate and checking the other's against the cluster CA. The HMAC
// handshake on top stays: the certificate admits a machine to the link, the secret
// admits it to the cluster. tls.cpp also holds the workaround that keeps one failed
// connection from dropping the others (CAF 0.17.6 leaves OpenSSL's error queue full).

#include <string>

namespace caf {
class actor_system;
class actor_system_config;
} // namespace caf

namespace shoal::config {
struct cluster_settings;
} // namespace shoal::config

namespace shoal::remote {

/// Why the member's TLS files cannot serve ("" when they can, or when TLS is off): the
/// certificate chain and the key must load as PEM and match, the CA must load, and the
/// certificate must verify against the CA (so that a member finds a wrong file at
/// start-up, not at its first connection). Names the setting, never key material.
std::string check_tls_files(const config::cluster_settings& c);

/// True when the settings turn TLS on (all three files set; settings checked that).
bool tls_enabled(const config::cluster_settings& c);

/// Loads CAF's OpenSSL module into `cfg` with the member's files; call only when
/// tls_enabled(c), before the actor system starts.
void configure_tls(caf::actor_system_config& cfg, const config::cluster_settings& c);

} // namespace shoal::remote
