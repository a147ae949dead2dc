// SPDX-License-Identifier: Apache-2.0
#include "actors/actor_api.hpp"

#include <stdexcept>

#include "core/names.hpp"

namespace shoal::actors {

void actor_registry::add(actor_type type) {
  if (!core::valid_name(type.name()))
    throw std::invalid_argument("actor type name '" + type.name() + "' breaks [A-Za-z0-9_-]{1,64}");
  for (const auto& [name, entry] : type.methods()) {
    if (!core::valid_name(name))
      throw std::invalid_argument("method name '" + name + "' of actor type '" + type.name()
                                  + "' breaks [A-Za-z0-9_-]{1,64}");
    if (!entry.handler)
      throw std::invalid_argument("method '" + name + "' of actor type '" + type.name()
                                  + "' has no handler");
  }
  auto name = type.name();
  if (!types_.emplace(name, std::move(type)).second)
    throw std::invalid_argument("actor type '" + name + "' is registered twice");
}

const actor_type* actor_registry::find(std::string_view name) const {
  auto it = types_.find(name);
  return it == types_.end() ? nullptr : &it->second;
}

namespace {

std::int64_t current_value(method_context& m) {
  auto it = m.state().find("value");
  return it != m.state().end() && it->value().is_int64() ? it->value().get_int64() : 0;
}

} // namespace

actor_type make_counter_type() {
  actor_type counter{"counter"};
  counter.method("increment", [](method_context& m) {
    std::int64_t by = 1;
    if (auto it = m.args().find("by"); it != m.args().end()) {
      if (!it->value().is_int64()) return m.fail(400, "invalid_args", "\"by\" must be an integer");
      by = it->value().get_int64();
    }
    auto value = current_value(m);
    if ((by > 0 && value > INT64_MAX - by) || (by < 0 && value < INT64_MIN - by))
      return m.fail(409, "overflow", "the counter would overflow");
    value += by;
    m.state()["value"] = value;
    m.reply(boost::json::object{{"value", value}});
  });
  counter.read_only("get", [](method_context& m) {
    m.reply(boost::json::object{{"value", current_value(m)}});
  });
  counter.method("reset", [](method_context& m) {
    m.state()["value"] = 0;
    m.reply(boost::json::object{{"value", 0}});
  });
  return counter;
}

} // namespace shoal::actors
