// SPDX-License-Identifier: Apache-2.0
#include "http/request_metrics.hpp"

#include <string>

namespace shoal::http {

namespace {

constexpr std::array<std::string_view, 8> method_labels{"GET",    "HEAD", "PUT",     "PATCH",
                                                        "DELETE", "POST", "OPTIONS", "other"};

std::size_t method_index(std::string_view method) noexcept {
  for (std::size_t i = 0; i + 1 < method_labels.size(); ++i)
    if (method == method_labels[i]) return i;
  return method_labels.size() - 1;
}

} // namespace

request_metrics::request_metrics()
    : counts_(std::make_unique<status_counters[]>(route_count * method_count)) {
  for (auto& h : latency_)
    h = std::make_unique<metrics::histogram>(metrics::histogram::latency_bounds());
}

void request_metrics::record(route_id route, std::string_view method, unsigned status,
                             double seconds) noexcept {
  auto r = static_cast<std::size_t>(route);
  if (status >= first_status && status < first_status + status_count)
    counts_[r * method_count + method_index(method)][status - first_status].inc();
  latency_[r]->observe(seconds);
}

void request_metrics::write(metrics::text_writer& out) const {
  out.family("shoal_http_requests_total", "counter", "HTTP requests by route, method and status.");
  for (std::size_t r = 0; r < route_count; ++r) {
    auto route = route_label(static_cast<route_id>(r));
    for (std::size_t m = 0; m < method_count; ++m) {
      const auto& counters = counts_[r * method_count + m];
      for (std::size_t s = 0; s < status_count; ++s) {
        auto v = counters[s].value();
        if (v == 0) continue;
        auto code = std::to_string(first_status + s);
        out.sample("shoal_http_requests_total",
                   {{"route", route}, {"method", method_labels[m]}, {"status", code}}, v);
      }
    }
  }
  out.family("shoal_http_request_duration_seconds", "histogram",
             "Time from a parsed request to its response being queued, by route.");
  for (std::size_t r = 0; r < route_count; ++r)
    out.histogram("shoal_http_request_duration_seconds",
                  {{"route", route_label(static_cast<route_id>(r))}}, *latency_[r]);
  out.family("shoal_http_requests_in_flight", "gauge", "Requests being processed.");
  out.sample("shoal_http_requests_in_flight", {}, static_cast<double>(inflight.value()));
  out.family("shoal_http_connections", "gauge", "Open HTTP connections.");
  out.sample("shoal_http_connections", {}, static_cast<double>(connections.value()));
  out.family("shoal_http_rejected_connections_total", "counter",
             "Connections refused with 503: over http.max_connections with none idle, or over "
             "http.max_connections_per_client.");
  out.sample("shoal_http_rejected_connections_total", {}, rejected_connections.value());
  out.family("shoal_http_evicted_connections_total", "counter",
             "Idle connections closed to make room for a new one at http.max_connections.");
  out.sample("shoal_http_evicted_connections_total", {}, evicted_connections.value());
  out.family("shoal_http_rejected_requests_total", "counter",
             "Requests answered 503 overloaded by admission control: the queue was full, "
             "would have taken longer than http.queue_timeout_ms, or did.");
  out.sample("shoal_http_rejected_requests_total", {}, rejected_requests.value());
  out.family("shoal_http_concurrency_limit", "gauge",
             "Requests admitted to the shards at once: adapts to latency between "
             "http.min_inflight and http.max_inflight.");
  out.sample("shoal_http_concurrency_limit", {}, static_cast<double>(concurrency_limit.value()));
  out.family("shoal_http_queued_requests", "gauge", "Requests waiting for admission.");
  out.sample("shoal_http_queued_requests", {}, static_cast<double>(queued_requests.value()));
  out.family("shoal_http_queue_wait_seconds", "histogram",
             "How long requests that waited for admission waited before they were admitted.");
  out.histogram("shoal_http_queue_wait_seconds", {}, queue_wait);
}

} // namespace shoal::http
