// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "actors/actor_api.hpp"
#include "metrics/metrics.hpp"

namespace shoal::actors {

/// Metrics of virtual actors, created up front for every registered type and method so
/// that recording is lock-free: active actors, activations and passivations by type;
/// calls by type, method and outcome; call latency by type and method.
class actor_metrics {
public:
  struct method_metrics {
    metrics::counter ok;     ///< replied
    metrics::counter error;  ///< failed with a 4xx (a business error such as 409)
    metrics::counter failed; ///< threw, timed out, or the store failed (5xx)
    metrics::histogram latency{metrics::histogram::latency_bounds()};
  };
  struct type_metrics {
    metrics::gauge active;
    metrics::counter activations;
    metrics::counter passivations;
    std::map<std::string, std::unique_ptr<method_metrics>, std::less<>> methods;
  };

  explicit actor_metrics(const actor_registry& registry);

  /// The metrics of `type`, or nullptr for an unregistered type.
  type_metrics* find(std::string_view type) noexcept;
  method_metrics* find(std::string_view type, std::string_view method) noexcept;

  void write(metrics::text_writer& out) const;

private:
  std::map<std::string, std::unique_ptr<type_metrics>, std::less<>> types_;
};

} // namespace shoal::actors
