// SPDX-License-Identifier: Apache-2.0
#include "protocol/type_ids.hpp"

#include <caf/actor_system_config.hpp>
#include <caf/message.hpp>

#include "protocol/errors.hpp"

namespace shoal::protocol {

void add_message_types(caf::actor_system_config& cfg) {
  cfg.add_message_types<caf::id_block::shoal>();
  cfg.add_error_category(error_category, [](std::uint8_t code, caf::atom_value,
                                            const caf::message& context) {
    std::string s = core::to_string(static_cast<core::errc>(code));
    if (context.match_elements<std::string, std::string, std::uint16_t>()) {
      const auto& name = context.get_as<std::string>(0);
      if (!name.empty()) s += " (" + name + ")";
      s += ": " + context.get_as<std::string>(1);
    }
    return s;
  });
}

} // namespace shoal::protocol
