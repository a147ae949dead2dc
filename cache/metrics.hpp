// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "metrics/metrics.hpp"

namespace shoal::cache {

/// The TTL cache modules of a node share these (lock-free atomics).
struct metrics {
  shoal::metrics::counter hits;
  shoal::metrics::counter misses;
  shoal::metrics::counter evictions;
  shoal::metrics::gauge bytes;
  shoal::metrics::gauge entries;

  void write(shoal::metrics::text_writer& out) const;
};

} // namespace shoal::cache
