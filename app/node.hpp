// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "config/settings.hpp"

namespace shoal::actors {
class actor_registry;
} // namespace shoal::actors

namespace shoal::app {

/// Runs one node with `settings` and the actor types of `registry` until a signal drains
/// it. Returns the process exit status: 0 after a clean shutdown, 1 when start-up fails
/// (the store cannot be opened, the address cannot be bound), with the reason logged.
int serve(const config::settings& settings, const actors::actor_registry& registry);

} // namespace shoal::app
