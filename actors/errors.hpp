// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <string>

#include <caf/atom.hpp>
#include <caf/error.hpp>
#include <caf/make_message.hpp>

namespace shoal::actors {

/// Errors actors return to other actors (the HTTP edge sees `doc_status` instead).
enum class errc : std::uint8_t {
  storage_failed = 1, ///< the store returned an error; the message says which
};

std::string to_string(errc x);

/// The CAF error category of `errc`.
constexpr caf::atom_value errc_category = caf::atom("shoal");

inline caf::error make_error(errc x, std::string context) {
  return {static_cast<std::uint8_t>(x), errc_category, caf::make_message(std::move(context))};
}

} // namespace shoal::actors
