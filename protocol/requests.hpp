// SPDX-License-Identifier: Apache-2.0
#pragma once

// Every request a shard serves, in one list gathered from the modules' own lists. The
// typed handle, the host's dispatch, the remote stub, the gateway and the edge client
// are all generated from it (docs/architecture.md "The middle"). No CAF here.

#include "actors/messages.hpp"
#include "cache/messages.hpp"
#include "changes/messages.hpp"
#include "core/type_list.hpp"
#include "documents/messages.hpp"
#include "jobs/messages.hpp"
#include "query/messages.hpp"

namespace shoal::protocol {

using shard_requests = core::concat_t<documents::requests, query::requests, changes::requests,
                                      cache::requests, jobs::requests, actors::requests>;

/// The reply type of request `R`.
template <class R>
using reply_of = typename R::reply;

} // namespace shoal::protocol
