// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "metrics/metrics.hpp"

namespace shoal::query {

/// The query modules of a node share these (lock-free atomics).
struct metrics {
  shoal::metrics::counter index_build_docs; ///< documents visited by index builds (both phases)

  void write(shoal::metrics::text_writer& out) const;
};

} // namespace shoal::query
