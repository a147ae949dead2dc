// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <array>
#include <memory>
#include <string_view>

#include "http/router.hpp"
#include "metrics/metrics.hpp"

namespace shoal::http {

/// Request metrics of the edge: counts by route, method and status, a latency histogram
/// by route, requests in flight and connections. All lock-free: the counters of every
/// (route, method, status) exist up front, so recording never allocates or locks.
class request_metrics {
public:
  request_metrics();

  /// Records one finished request. `method` is the request's method token.
  void record(route_id route, std::string_view method, unsigned status, double seconds) noexcept;

  /// Appends every family to `out`.
  void write(metrics::text_writer& out) const;

  metrics::gauge inflight;               ///< requests parsed and not yet answered
  metrics::gauge connections;            ///< open connections
  metrics::counter rejected_connections; ///< closed at once: over a connection limit
  metrics::counter evicted_connections;  ///< idle ones closed to make room for a new one
  metrics::counter rejected_requests;    ///< answered 503 by admission control
  metrics::gauge concurrency_limit;      ///< the adaptive limit (http/admission.hpp)
  metrics::gauge queued_requests;        ///< waiting for admission
  /// How long the requests that waited for admission waited (and were admitted).
  metrics::histogram queue_wait{metrics::histogram::latency_bounds()};

private:
  static constexpr std::size_t method_count = 8; // GET HEAD PUT PATCH DELETE POST OPTIONS other
  static constexpr unsigned first_status = 100;
  static constexpr std::size_t status_count = 500; // 100..599
  using status_counters = std::array<metrics::counter, status_count>;

  std::unique_ptr<status_counters[]> counts_; // [route * method_count + method]
  std::array<std::unique_ptr<metrics::histogram>, route_count> latency_;
};

} // namespace shoal::http
