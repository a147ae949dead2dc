// SPDX-License-Identifier: Apache-2.0
#include "actors/shard_metrics.hpp"

namespace shoal::actors {

namespace {

void counter(metrics::text_writer& out, const char* name, const char* help,
             const metrics::counter& c) {
  out.family(name, "counter", help);
  out.sample(name, {}, c.value());
}

void gauge(metrics::text_writer& out, const char* name, const char* help, const metrics::gauge& g) {
  out.family(name, "gauge", help);
  out.sample(name, {}, static_cast<double>(g.value()));
}

} // namespace

void shard_metrics::write(metrics::text_writer& out) const {
  counter(out, "shoal_doc_cache_hits_total", "Document reads answered from the read cache.",
          doc_cache_hits);
  counter(out, "shoal_doc_cache_misses_total", "Document reads that went to RocksDB.",
          doc_cache_misses);
  gauge(out, "shoal_doc_cache_bytes", "Bytes held by the document read cache.", doc_cache_bytes);
  counter(out, "shoal_cache_hits_total", "TTL cache gets that found a live entry.", cache_hits);
  counter(out, "shoal_cache_misses_total", "TTL cache gets that found none.", cache_misses);
  counter(out, "shoal_cache_evictions_total",
          "TTL cache entries evicted to stay within cache.max_bytes.", cache_evictions);
  gauge(out, "shoal_cache_bytes", "Bytes held by the TTL cache.", cache_bytes);
  gauge(out, "shoal_cache_entries", "Entries in the TTL cache.", cache_entries);
  counter(out, "shoal_index_build_documents_total",
          "Documents visited by index builds (counting and indexing).", index_build_docs);
  counter(out, "shoal_change_events_total", "Change-feed events committed.", change_events);
  gauge(out, "shoal_change_waiters", "Change-feed reads waiting on shards for events.",
        change_waiters);
}

} // namespace shoal::actors
