// SPDX-License-Identifier: Apache-2.0
#include "examples/shop/shop.hpp"

#include <cstdint>
#include <optional>

namespace shoal::examples::shop {

using shoal::actors::method_context;

namespace {

constexpr std::int64_t max_qty = 1'000'000'000;

/// The "qty" argument: a positive integer up to max_qty, or nullopt after failing `m`.
std::optional<std::int64_t> quantity(method_context& m) {
  auto it = m.args().find("qty");
  if (it == m.args().end() || !it->value().is_int64() || it->value().get_int64() <= 0
      || it->value().get_int64() > max_qty) {
    m.fail(400, "invalid_args", "\"qty\" must be an integer from 1 to 1000000000");
    return std::nullopt;
  }
  return it->value().get_int64();
}

std::int64_t stock(method_context& m) {
  auto it = m.state().find("stock");
  return it != m.state().end() && it->value().is_int64() ? it->value().get_int64() : 0;
}

void answer_stock(method_context& m, std::int64_t value) {
  m.state()["stock"] = value;
  m.reply(boost::json::object{{"stock", value}});
}

} // namespace

shoal::actors::actor_type make_inventory_type() {
  shoal::actors::actor_type inventory{"inventory"};
  inventory.method("restock", [](method_context& m) {
    auto qty = quantity(m);
    if (!qty) return;
    if (stock(m) > max_qty * 10 - *qty)
      return m.fail(409, "stock_limit", "stock would exceed the limit");
    answer_stock(m, stock(m) + *qty);
  });
  inventory.method("reserve", [](method_context& m) {
    auto qty = quantity(m);
    if (!qty) return;
    if (stock(m) < *qty)
      return m.fail(409, "insufficient_stock",
                    "only " + std::to_string(stock(m)) + " of " + m.id() + " in stock");
    answer_stock(m, stock(m) - *qty);
  });
  inventory.method("release", [](method_context& m) {
    auto qty = quantity(m);
    if (!qty) return;
    answer_stock(m, stock(m) + *qty);
  });
  inventory.read_only("get", [](method_context& m) {
    m.reply(boost::json::object{{"stock", stock(m)}});
  });
  return inventory;
}

} // namespace shoal::examples::shop
