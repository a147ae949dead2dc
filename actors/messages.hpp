// SPDX-License-Identifier: Apache-2.0
#pragma once

// The messages of virtual actors (docs/actors.md). Plain structs: the edge builds
// actor_call, the hosting module answers it through the actor it runs, and a virtual
// actor writes its state through its shard's commit gate with state_write.

#include <cstdint>
#include <string>

#include "cluster/placement.hpp"
#include "core/result.hpp"
#include "core/type_list.hpp"

namespace shoal::actors {

/// A method's result: serialized JSON.
struct actor_result {
  std::string json;
};

/// A method invocation on the virtual actor (`type`, `id`). Errors: not_found
/// "unknown_actor_type" / "unknown_method", invalid_argument "invalid_args", timeout
/// "call_timeout", internal "actor_failed", application (the method's own failure).
struct actor_call {
  using reply = actor_result;
  std::string type;
  std::string id;
  std::string method;
  std::string args; ///< serialized JSON object
  /// How long the caller will wait for the answer, in ms (0: actors.call_timeout_ms).
  /// A call still queued when its time is up is answered 504 call_timeout without
  /// running, so work nobody waits for any more (a timed-out call cycle) is dropped.
  std::uint32_t budget_ms = 0;
};

struct state_written {};

/// A virtual actor's new state, from the actor to its own shard: one key, written
/// through the commit gate; the reply comes once it is durable.
struct state_write {
  using reply = state_written;
  std::string key;
  std::string value;
};

using requests = core::type_list<actor_call, state_write>;

/// The shard of an actor: the hash of type and id.
inline core::result<std::uint32_t> place(const actor_call& r, const cluster::placement& p) {
  return p.map.shard_of(r.type, r.id);
}

/// Storage key of an actor's state: 'a' ++ type ++ '\0' ++ id (in its shard).
std::string actor_state_key(std::string_view type, std::string_view id);

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, actor_result& x) {
  return f(x.json);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, actor_call& x) {
  return f(x.type, x.id, x.method, x.args, x.budget_ms);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, state_written&) {
  return f();
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, state_write& x) {
  return f(x.key, x.value);
}

} // namespace shoal::actors
