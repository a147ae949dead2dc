// SPDX-License-Identifier: Apache-2.0
#include "documents/metrics.hpp"

namespace shoal::documents {

void metrics::write(shoal::metrics::text_writer& out) const {
  out.family("shoal_doc_cache_hits_total", "counter",
             "Document reads answered from the read cache.");
  out.sample("shoal_doc_cache_hits_total", {}, cache_hits.value());
  out.family("shoal_doc_cache_misses_total", "counter", "Document reads that went to RocksDB.");
  out.sample("shoal_doc_cache_misses_total", {}, cache_misses.value());
  out.family("shoal_doc_cache_bytes", "gauge", "Bytes held by the document read cache.");
  out.sample("shoal_doc_cache_bytes", {}, static_cast<double>(cache_bytes.value()));
}

} // namespace shoal::documents
