// SPDX-License-Identifier: Apache-2.0
#pragma once

// Loopback TCP ports for tests that must name their ports up front (a cluster's members
// list each other's ports in one config file, so port 0 will not do).

#include <cstddef>
#include <cstdint>
#include <vector>

namespace shoal::test {

/// `count` distinct TCP ports that were free on 127.0.0.1 a moment ago: each is bound to
/// port 0 (the kernel picks), all are held until every one is known, then all are closed.
/// Nothing was listening or connected on them, so they are free again at once. Another
/// process may still take one before the test binds it, as with any such scheme.
/// Throws std::system_error when a socket cannot be created or bound.
std::vector<std::uint16_t> free_tcp_ports(std::size_t count);

} // namespace shoal::test
