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

/// The requests that change nothing. Any other request may change state: when it was sent
/// and no answer came, its outcome is unknown (504 outcome_unknown), not a refusal.
using read_requests =
  core::type_list<documents::doc_get, documents::collection_stats, query::index_get,
                  query::index_list, query::query_run, query::query_explain, changes::changes_read,
                  cache::cache_get, jobs::job_get, jobs::queue_stats, jobs::job_list>;

namespace detail {
template <class... Rs>
constexpr bool all_served(core::type_list<Rs...>) {
  return (core::contains<shard_requests, Rs>::value && ...);
}
} // namespace detail
static_assert(detail::all_served(read_requests{}), "a read request that no shard serves");

/// True when request `R` may change state.
template <class R>
inline constexpr bool changes_state = !core::contains<read_requests, R>::value;

/// The reply type of request `R`.
template <class R>
using reply_of = typename R::reply;

} // namespace shoal::protocol
