// SPDX-License-Identifier: Apache-2.0
#include "changes/metrics.hpp"

namespace shoal::changes {

void metrics::write(shoal::metrics::text_writer& out) const {
  out.family("shoal_change_events_total", "counter", "Change-feed events committed.");
  out.sample("shoal_change_events_total", {}, events.value());
  out.family("shoal_change_waiters", "gauge", "Change-feed reads waiting on shards for events.");
  out.sample("shoal_change_waiters", {}, static_cast<double>(waiters.value()));
}

} // namespace shoal::changes
