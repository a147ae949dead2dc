// SPDX-License-Identifier: Apache-2.0
#pragma once

// How a core::error travels between actors: as a caf::error of category `shoal`, whose
// code is the errc and whose context carries the name, the message and the status.

#include <caf/atom.hpp>
#include <caf/error.hpp>

#include "core/error.hpp"

namespace shoal::protocol {

/// The CAF error category of core::errc.
constexpr caf::atom_value error_category = caf::atom("shoal");

caf::error to_caf(const core::error& e);

/// Back from CAF: a `shoal` error as it was sent; CAF's own errors (a lost connection, a
/// request timeout, an actor gone) as shard_unavailable or timeout with CAF's words.
core::error from_caf(const caf::error& e);

} // namespace shoal::protocol
