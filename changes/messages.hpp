// SPDX-License-Identifier: Apache-2.0
#pragma once

// The request the changes module serves: a read of one collection's change log on one
// shard, which the edge's change streams send to every shard (docs/changes.md). Plain
// structs; `inspect` lets CAF serialize them for other nodes.

#include <cstdint>
#include <string>

#include "changes/events.hpp"
#include "core/type_list.hpp"

namespace shoal::changes {

/// The events of `collection` on the shard after sequence `after`, at most `limit`, with
/// the log's bounds. When there are none it waits up to `wait_ms` for the first (a long
/// poll, the change feed's only pacing). `after` = UINT64_MAX: no events, only the
/// bounds (a stream that starts "now"). Errors: gone (the resume point is older than
/// the retention window, or past the newest event), not_found (changes.enabled is off).
struct changes_read {
  using reply = batch;
  std::string collection;
  std::uint64_t after = 0;
  std::uint32_t limit = 0;
  std::uint32_t wait_ms = 0;
};

using requests = core::type_list<changes_read>;

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, event& x) {
  return f(x.seq, x.kind, x.id, x.version, x.doc, x.time_ms);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, batch& x) {
  return f(x.events, x.first, x.last);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, changes_read& x) {
  return f(x.collection, x.after, x.limit, x.wait_ms);
}

} // namespace shoal::changes
