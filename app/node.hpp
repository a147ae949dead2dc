// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "config/settings.hpp"

namespace shoal::actors {
class actor_registry;
} // namespace shoal::actors

namespace shoal::workers {
class handler_registry;
} // namespace shoal::workers

namespace shoal::app {

/// Runs one node with `settings`, the actor types of `registry` and the job handlers of
/// `job_handlers` (the built-in `webhook` and `collection.stats` are added) until a signal
/// drains it. Returns the process exit status: 0 after a clean shutdown, 1 when start-up fails
/// (the store cannot be opened, the address cannot be bound), with the reason logged.
int serve(const config::settings& settings, const actors::actor_registry& registry,
          const workers::handler_registry& job_handlers);

} // namespace shoal::app
