// SPDX-License-Identifier: Apache-2.0
#pragma once

// Counters the shard actors of a node share: the document read cache, the TTL cache,
// index builds and the change feed. Lock-free: each is an atomic.

#include "metrics/metrics.hpp"

namespace shoal::actors {

struct shard_metrics {
  metrics::counter doc_cache_hits;
  metrics::counter doc_cache_misses;
  metrics::gauge doc_cache_bytes;
  metrics::counter cache_hits;
  metrics::counter cache_misses;
  metrics::counter cache_evictions;
  metrics::gauge cache_bytes;
  metrics::gauge cache_entries;
  metrics::counter index_build_docs; ///< documents visited by index builds (both phases)
  metrics::counter change_events;    ///< events appended to change logs
  metrics::gauge change_waiters;     ///< change-feed reads parked on shards

  void write(metrics::text_writer& out) const;
};

} // namespace shoal::actors
