// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "metrics/metrics.hpp"

namespace shoal::changes {

/// The changes modules of a node share these (lock-free atomics).
struct metrics {
  shoal::metrics::counter events; ///< events committed to change logs
  shoal::metrics::gauge waiters;  ///< reads parked on shards, waiting for events

  void write(shoal::metrics::text_writer& out) const;
};

} // namespace shoal::changes
