// SPDX-License-Identifier: Apache-2.0
#pragma once

// The project's single CAF type-id block: every message type and atom the actors
// exchange. main.cpp and every test fixture call
// `cfg.add_message_types<caf::id_block::shoal>()`.

#include <cstdint>
#include <string>
#include <vector>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/type_id.hpp>

#include "actors/actor_protocol.hpp"
#include "actors/cache_protocol.hpp"
#include "actors/doc_protocol.hpp"
#include "jobs/protocol.hpp"

namespace shoal::actors {

/// Shard → WAL syncer: "make the WAL durable up to this sequence number".
using wal_sync_atom = caf::atom_constant<caf::atom("wal_sync")>;

/// Shard → virtual actor: finish what is queued, then stop.
using passivate_atom = caf::atom_constant<caf::atom("passivate")>;

/// Shard → itself: look for idle virtual actors.
using idle_tick_atom = caf::atom_constant<caf::atom("idle_tick")>;

/// Shard → itself: expire leases and wake delayed jobs.
using job_tick_atom = caf::atom_constant<caf::atom("job_tick")>;

/// Shard → itself: the next bounded step of building its secondary indexes.
using index_step_atom = caf::atom_constant<caf::atom("idx_step")>;

/// Shard → itself: expire TTL cache entries, trim the change log by age, answer the
/// change-feed reads whose wait ran out.
using shard_tick_atom = caf::atom_constant<caf::atom("shrd_tick")>;

/// Shard → the node's job broker: (queue, type) has due jobs on this shard.
using job_ready_atom = caf::atom_constant<caf::atom("job_ready")>;

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, precondition& x) {
  return f(caf::meta::type_name("precondition"), x.what, x.versions);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, doc_request& x) {
  return f(caf::meta::type_name("doc_request"), x.op, x.collection, x.id, x.body, x.if_match,
           x.if_none_match, x.after, x.limit, x.wait_ms);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, doc_reply& x) {
  return f(caf::meta::type_name("doc_reply"), x.status, x.version, x.body, x.message, x.code);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cache_request& x) {
  return f(caf::meta::type_name("cache_request"), x.op, x.key, x.value, x.content_type, x.ttl_ms);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cache_reply& x) {
  return f(caf::meta::type_name("cache_reply"), x.status, x.value, x.content_type, x.message);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, actor_call& x) {
  return f(caf::meta::type_name("actor_call"), x.type, x.id, x.method, x.args, x.budget_ms);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, actor_reply& x) {
  return f(caf::meta::type_name("actor_reply"), x.status, x.body, x.code, x.message);
}

} // namespace shoal::actors

namespace shoal::jobs {

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, job_request& x) {
  return f(caf::meta::type_name("job_request"), x.op, x.queue, x.id, x.type, x.body, x.key,
           x.delay_ms, x.max_attempts, x.max, x.visibility_ms, x.wait_ms, x.retry, x.types, x.owner,
           x.from_broker);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, leased_job& x) {
  return f(caf::meta::type_name("leased_job"), x.id, x.queue, x.type, x.payload, x.attempt,
           x.lease_id, x.due_ms);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, job_counts& x) {
  return f(caf::meta::type_name("job_counts"), x.queued, x.running, x.succeeded, x.failed, x.dead,
           x.oldest_queued_ms);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, job_reply& x) {
  return f(caf::meta::type_name("job_reply"), x.status, x.body, x.message, x.jobs, x.ready_types,
           x.counts);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, job_run& x) {
  return f(caf::meta::type_name("job_run"), x.id, x.queue, x.type, x.payload, x.attempt);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, job_outcome& x) {
  return f(caf::meta::type_name("job_outcome"), x.ok, x.result, x.error, x.retryable);
}

} // namespace shoal::jobs

CAF_BEGIN_TYPE_ID_BLOCK(shoal, caf::first_custom_type_id)
CAF_ADD_TYPE_ID(shoal, (shoal::actors::precondition))
CAF_ADD_TYPE_ID(shoal, (shoal::actors::doc_request))
CAF_ADD_TYPE_ID(shoal, (shoal::actors::doc_reply))
CAF_ADD_TYPE_ID(shoal, (shoal::actors::actor_call))
CAF_ADD_TYPE_ID(shoal, (shoal::actors::actor_reply))
CAF_ADD_TYPE_ID(shoal, (shoal::jobs::job_request))
CAF_ADD_TYPE_ID(shoal, (shoal::jobs::leased_job))
CAF_ADD_TYPE_ID(shoal, (shoal::jobs::job_counts))
CAF_ADD_TYPE_ID(shoal, (shoal::jobs::job_reply))
CAF_ADD_TYPE_ID(shoal, (shoal::jobs::job_run))
CAF_ADD_TYPE_ID(shoal, (shoal::jobs::job_outcome))
CAF_ADD_TYPE_ID(shoal, (std::vector<shoal::jobs::leased_job>))
CAF_ADD_TYPE_ID(shoal, (shoal::actors::cache_request))
CAF_ADD_TYPE_ID(shoal, (shoal::actors::cache_reply))
CAF_END_TYPE_ID_BLOCK(shoal)

// A reply sink is a pointer into this process: it may travel in local messages only.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(shoal::actors::reply_sink_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(shoal::actors::call_sink_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(shoal::jobs::job_sink_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(shoal::actors::cache_sink_ptr)
