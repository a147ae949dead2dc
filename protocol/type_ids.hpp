// SPDX-License-Identifier: Apache-2.0
#pragma once

// The project's single CAF type-id block: every message type and atom actors exchange.
// main.cpp and every test fixture call `protocol::add_message_types(cfg)`.

#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/detail/is_complete.hpp>
#include <caf/fwd.hpp>
#include <caf/meta/load_callback.hpp>
#include <caf/meta/save_callback.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/sec.hpp>
#include <caf/type_id.hpp>

#include "core/reply.hpp"
#include "protocol/requests.hpp"

namespace shoal::protocol {

/// Shard → the node's job broker: (queue, type) has due jobs on this shard.
using job_ready_atom = caf::atom_constant<caf::atom("job_ready")>;

/// Edge → the node's job broker: the node drains; answer parked long polls at once.
using drain_atom = caf::atom_constant<caf::atom("drain")>;

} // namespace shoal::protocol

namespace shoal::query {

// A query_spec travels as its normalized JSON (query::to_shard_json), which the
// receiving node parses back: the where clause holds JSON values.
template <class Inspector, class Message>
typename Inspector::result_type inspect_query(Inspector& f, Message& x) {
  std::string text;
  auto save = caf::meta::save_callback([&]() -> caf::error {
    text = to_shard_json(x.spec);
    return caf::none;
  });
  auto load = caf::meta::load_callback([&]() -> caf::error {
    query_limits limits;
    limits.max_limit = 0xfffffffe;
    auto parsed = parse_shard_json(text, limits);
    if (!parsed) return caf::make_error(caf::sec::invalid_argument, parsed.error().message());
    x.spec = std::move(*parsed);
    return caf::none;
  });
  return f(x.collection, save, text, load);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, query_run& x) {
  return inspect_query(f, x);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, query_explain& x) {
  return inspect_query(f, x);
}

} // namespace shoal::query

// A reply_to is a pointer into this process: it travels in local messages only (a remote
// stub sends the request alone, and the owner's gateway adds an empty one).
namespace caf {
template <class T>
struct allowed_unsafe_message_type<shoal::core::reply_to<T>> : std::true_type {};
} // namespace caf

CAF_BEGIN_TYPE_ID_BLOCK(shoal, caf::first_custom_type_id)
// documents
CAF_ADD_TYPE_ID(shoal, (shoal::documents::doc_get))
CAF_ADD_TYPE_ID(shoal, (shoal::documents::stored_doc))
CAF_ADD_TYPE_ID(shoal, (shoal::documents::doc_write))
CAF_ADD_TYPE_ID(shoal, (shoal::documents::doc_written))
CAF_ADD_TYPE_ID(shoal, (shoal::documents::collection_stats))
CAF_ADD_TYPE_ID(shoal, (shoal::documents::field_stats))
// indexes and queries
CAF_ADD_TYPE_ID(shoal, (shoal::query::index_create))
CAF_ADD_TYPE_ID(shoal, (shoal::query::index_state))
CAF_ADD_TYPE_ID(shoal, (shoal::query::index_get))
CAF_ADD_TYPE_ID(shoal, (shoal::query::index_progress))
CAF_ADD_TYPE_ID(shoal, (shoal::query::index_list))
CAF_ADD_TYPE_ID(shoal, (shoal::query::index_listing))
CAF_ADD_TYPE_ID(shoal, (shoal::query::index_drop))
CAF_ADD_TYPE_ID(shoal, (shoal::query::index_dropped))
CAF_ADD_TYPE_ID(shoal, (shoal::query::query_run))
CAF_ADD_TYPE_ID(shoal, (shoal::query::shard_hits))
CAF_ADD_TYPE_ID(shoal, (shoal::query::query_explain))
CAF_ADD_TYPE_ID(shoal, (shoal::query::shard_plan))
// the change feed
CAF_ADD_TYPE_ID(shoal, (shoal::changes::changes_read))
CAF_ADD_TYPE_ID(shoal, (shoal::changes::batch))
// the TTL cache
CAF_ADD_TYPE_ID(shoal, (shoal::cache::cache_get))
CAF_ADD_TYPE_ID(shoal, (shoal::cache::cache_entry))
CAF_ADD_TYPE_ID(shoal, (shoal::cache::cache_put))
CAF_ADD_TYPE_ID(shoal, (shoal::cache::cache_stored))
CAF_ADD_TYPE_ID(shoal, (shoal::cache::cache_delete))
CAF_ADD_TYPE_ID(shoal, (shoal::cache::cache_deleted))
// jobs
CAF_ADD_TYPE_ID(shoal, (shoal::jobs::job_enqueue))
CAF_ADD_TYPE_ID(shoal, (shoal::jobs::job_enqueued))
CAF_ADD_TYPE_ID(shoal, (shoal::jobs::job_get))
CAF_ADD_TYPE_ID(shoal, (shoal::jobs::job_view))
CAF_ADD_TYPE_ID(shoal, (shoal::jobs::job_lease))
CAF_ADD_TYPE_ID(shoal, (shoal::jobs::lease_grant))
CAF_ADD_TYPE_ID(shoal, (shoal::jobs::job_complete))
CAF_ADD_TYPE_ID(shoal, (shoal::jobs::job_fail))
CAF_ADD_TYPE_ID(shoal, (shoal::jobs::job_retry))
CAF_ADD_TYPE_ID(shoal, (shoal::jobs::job_extend))
CAF_ADD_TYPE_ID(shoal, (shoal::cache::cache_increment))
CAF_ADD_TYPE_ID(shoal, (shoal::cache::cache_count))
CAF_ADD_TYPE_ID(shoal, (shoal::jobs::queue_stats))
CAF_ADD_TYPE_ID(shoal, (shoal::jobs::job_counts))
CAF_ADD_TYPE_ID(shoal, (shoal::jobs::queue_lease))
CAF_ADD_TYPE_ID(shoal, (shoal::jobs::leased_jobs))
// virtual actors
CAF_ADD_TYPE_ID(shoal, (shoal::actors::actor_call))
CAF_ADD_TYPE_ID(shoal, (shoal::actors::actor_result))
CAF_ADD_TYPE_ID(shoal, (shoal::actors::state_write))
CAF_ADD_TYPE_ID(shoal, (shoal::actors::state_written))
// appended, so the ids above stay
CAF_ADD_TYPE_ID(shoal, (shoal::jobs::job_cancel))
CAF_ADD_TYPE_ID(shoal, (shoal::jobs::job_list))
CAF_ADD_TYPE_ID(shoal, (shoal::jobs::job_page))
CAF_END_TYPE_ID_BLOCK(shoal)

namespace shoal::protocol {

namespace detail {
template <class List>
struct all_registered;
template <class... Rs>
struct all_registered<core::type_list<Rs...>>
    : std::bool_constant<((caf::detail::is_complete<caf::type_id<Rs>>::value
                           && caf::detail::is_complete<caf::type_id<reply_of<Rs>>>::value)
                          && ...)> {};
} // namespace detail

static_assert(detail::all_registered<shard_requests>::value,
              "every shard request and its reply needs a CAF_ADD_TYPE_ID line above");

/// Registers the message types above (and the `shoal` error category) with `cfg`.
void add_message_types(caf::actor_system_config& cfg);

} // namespace shoal::protocol
