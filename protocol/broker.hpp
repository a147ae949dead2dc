// SPDX-License-Identifier: Apache-2.0
#pragma once

// The typed handle of the node's job broker (workers/broker.hpp): shards announce due
// work to it, the edge leases for external workers through it, and a drain makes its
// long polls answer at once.

#include <cstdint>
#include <string>

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "core/reply.hpp"
#include "jobs/messages.hpp"
#include "protocol/type_ids.hpp"

namespace shoal::protocol {

using broker_actor = caf::typed_actor<
  caf::reacts_to<job_ready_atom, std::string, std::string, std::uint32_t>,
  caf::replies_to<jobs::queue_lease, core::reply_to<jobs::leased_jobs>>::with<jobs::leased_jobs>,
  caf::reacts_to<drain_atom>>;

} // namespace shoal::protocol
