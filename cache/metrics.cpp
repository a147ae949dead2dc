// SPDX-License-Identifier: Apache-2.0
#include "cache/metrics.hpp"

namespace shoal::cache {

void metrics::write(shoal::metrics::text_writer& out) const {
  out.family("shoal_cache_hits_total", "counter", "TTL cache gets that found a live entry.");
  out.sample("shoal_cache_hits_total", {}, hits.value());
  out.family("shoal_cache_misses_total", "counter", "TTL cache gets that found none.");
  out.sample("shoal_cache_misses_total", {}, misses.value());
  out.family("shoal_cache_evictions_total", "counter",
             "TTL cache entries evicted to stay within cache.max_bytes.");
  out.sample("shoal_cache_evictions_total", {}, evictions.value());
  out.family("shoal_cache_bytes", "gauge", "Bytes held by the TTL cache.");
  out.sample("shoal_cache_bytes", {}, static_cast<double>(bytes.value()));
  out.family("shoal_cache_entries", "gauge", "Entries in the TTL cache.");
  out.sample("shoal_cache_entries", {}, static_cast<double>(entries.value()));
}

} // namespace shoal::cache
