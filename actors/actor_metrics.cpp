// SPDX-License-Identifier: Apache-2.0
#include "actors/actor_metrics.hpp"

namespace shoal::actors {

actor_metrics::actor_metrics(const actor_registry& registry) {
  for (const auto& [name, type] : registry.types()) {
    auto t = std::make_unique<type_metrics>();
    for (const auto& [method, entry] : type.methods())
      t->methods.emplace(method, std::make_unique<method_metrics>());
    types_.emplace(name, std::move(t));
  }
}

actor_metrics::type_metrics* actor_metrics::find(std::string_view type) noexcept {
  auto it = types_.find(type);
  return it == types_.end() ? nullptr : it->second.get();
}

actor_metrics::method_metrics* actor_metrics::find(std::string_view type,
                                                   std::string_view method) noexcept {
  auto* t = find(type);
  if (!t) return nullptr;
  auto it = t->methods.find(method);
  return it == t->methods.end() ? nullptr : it->second.get();
}

void actor_metrics::write(metrics::text_writer& out) const {
  out.family("shoal_actors_active", "gauge", "Active (activated, not passivated) actors by type.");
  for (const auto& [name, t] : types_)
    out.sample("shoal_actors_active", {{"type", name}}, static_cast<double>(t->active.value()));
  out.family("shoal_actor_activations_total", "counter", "Actor activations by type.");
  for (const auto& [name, t] : types_)
    out.sample("shoal_actor_activations_total", {{"type", name}}, t->activations.value());
  out.family("shoal_actor_passivations_total", "counter", "Actor passivations by type.");
  for (const auto& [name, t] : types_)
    out.sample("shoal_actor_passivations_total", {{"type", name}}, t->passivations.value());
  out.family("shoal_actor_calls_total", "counter",
             "Method calls by type, method and outcome (ok, error = 4xx, failed = 5xx).");
  for (const auto& [name, t] : types_) {
    for (const auto& [method, m] : t->methods) {
      out.sample("shoal_actor_calls_total", {{"type", name}, {"method", method}, {"outcome", "ok"}},
                 m->ok.value());
      out.sample("shoal_actor_calls_total",
                 {{"type", name}, {"method", method}, {"outcome", "error"}}, m->error.value());
      out.sample("shoal_actor_calls_total",
                 {{"type", name}, {"method", method}, {"outcome", "failed"}}, m->failed.value());
    }
  }
  out.family("shoal_actor_call_duration_seconds", "histogram",
             "Time from a call's turn starting to its reply, by type and method.");
  for (const auto& [name, t] : types_)
    for (const auto& [method, m] : t->methods)
      out.histogram("shoal_actor_call_duration_seconds", {{"type", name}, {"method", method}},
                    m->latency);
}

} // namespace shoal::actors
