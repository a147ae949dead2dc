// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "metrics/metrics.hpp"

namespace shoal::documents {

/// The documents modules of a node share these (lock-free atomics).
struct metrics {
  shoal::metrics::counter cache_hits;
  shoal::metrics::counter cache_misses;
  shoal::metrics::gauge cache_bytes;

  void write(shoal::metrics::text_writer& out) const;
};

} // namespace shoal::documents
