// SPDX-License-Identifier: Apache-2.0
#include "protocol/errors.hpp"

#include <caf/make_message.hpp>
#include <caf/message.hpp>
#include <caf/sec.hpp>
#include <caf/to_string.hpp>

namespace shoal::protocol {

caf::error to_caf(const core::error& e) {
  return caf::error{static_cast<std::uint8_t>(e.code()), error_category,
                    caf::make_message(e.name(), e.message(), e.status())};
}

core::error from_caf(const caf::error& e) {
  if (e.category() == error_category) {
    core::error out;
    out.code_ref() = static_cast<core::errc>(e.code());
    const auto& ctx = e.context();
    if (ctx.match_elements<std::string, std::string, std::uint16_t>()) {
      out.name_ref() = ctx.get_as<std::string>(0);
      out.message_ref() = ctx.get_as<std::string>(1);
      out.status_ref() = ctx.get_as<std::uint16_t>(2);
    }
    return out;
  }
  if (e == caf::sec::request_timeout) return {core::errc::timeout, "no answer in time"};
  return {core::errc::shard_unavailable, caf::to_string(e)};
}

} // namespace shoal::protocol
