// SPDX-License-Identifier: Apache-2.0
#include "query/metrics.hpp"

namespace shoal::query {

void metrics::write(shoal::metrics::text_writer& out) const {
  out.family("shoal_index_build_documents_total", "counter",
             "Documents visited by index builds (counting and indexing).");
  out.sample("shoal_index_build_documents_total", {}, index_build_docs.value());
}

} // namespace shoal::query
