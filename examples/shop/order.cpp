// SPDX-License-Identifier: Apache-2.0
#include "examples/shop/shop.hpp"

#include <memory>
#include <string>
#include <vector>

namespace shoal::examples::shop {

using shoal::actors::call_result;
using shoal::actors::method_context;

namespace {

struct item {
  std::string sku;
  std::int64_t qty;
};

using items_ptr = std::shared_ptr<const std::vector<item>>;

/// Parses {"items": [{"sku", "qty"}, ...]}; fails `m` and returns null when malformed.
items_ptr parse_items(method_context& m) {
  auto it = m.args().find("items");
  if (it == m.args().end() || !it->value().is_array() || it->value().get_array().empty()
      || it->value().get_array().size() > 100) {
    m.fail(400, "invalid_args", "\"items\" must be an array of 1 to 100 items");
    return nullptr;
  }
  auto items = std::make_shared<std::vector<item>>();
  for (const auto& v : it->value().get_array()) {
    const auto* o = v.if_object();
    const auto* sku = o ? o->if_contains("sku") : nullptr;
    const auto* qty = o ? o->if_contains("qty") : nullptr;
    if (!sku || !sku->is_string() || !qty || !qty->is_int64() || qty->get_int64() <= 0) {
      m.fail(400, "invalid_args", "each item needs a \"sku\" string and a positive \"qty\"");
      return nullptr;
    }
    items->push_back({std::string(sku->get_string()), qty->get_int64()});
  }
  return items;
}

/// Releases items [0, n) newest first, then fails the order with `cause`.
void roll_back(method_context& m, items_ptr items, std::size_t n, call_result cause) {
  if (n == 0) {
    auto status = cause.status >= 400 ? cause.status : std::uint16_t{500};
    return m.fail(status, cause.code, "order not placed: " + cause.message);
  }
  const auto& it = (*items)[n - 1];
  m.call("inventory", it.sku, "release", boost::json::object{{"qty", it.qty}},
         [items, n, cause](method_context& m, call_result) {
           // A release that fails is not retried here; the stock stays reserved and the
           // error the order reports is still the original cause.
           roll_back(m, items, n - 1, cause);
         });
}

/// Reserves items [i, end), then marks the order placed.
void reserve_from(method_context& m, items_ptr items, std::size_t i) {
  if (i == items->size()) {
    boost::json::array placed;
    for (const auto& it : *items)
      placed.push_back(boost::json::object{{"sku", it.sku}, {"qty", it.qty}});
    m.state()["status"] = "placed";
    m.state()["items"] = std::move(placed);
    return m.reply(boost::json::object{{"status", "placed"},
                                       {"items", static_cast<std::int64_t>(items->size())}});
  }
  const auto& it = (*items)[i];
  m.call("inventory", it.sku, "reserve", boost::json::object{{"qty", it.qty}},
         [items, i](method_context& m, call_result r) {
           if (r.ok()) return reserve_from(m, items, i + 1);
           roll_back(m, items, i, std::move(r));
         });
}

} // namespace

shoal::actors::actor_type make_order_type() {
  shoal::actors::actor_type order{"order"};
  order.method("place", [](method_context& m) {
    if (auto it = m.state().find("status"); it != m.state().end() && it->value() == "placed")
      return m.fail(409, "already_placed", "order " + m.id() + " was placed before");
    auto items = parse_items(m);
    if (!items) return;
    reserve_from(m, items, 0);
  });
  order.read_only("get", [](method_context& m) {
    auto status = m.state().find("status");
    auto items = m.state().find("items");
    m.reply(boost::json::object{
      {"status", status != m.state().end() ? status->value() : boost::json::value("new")},
      {"items", items != m.state().end() ? items->value() : boost::json::array{}}});
  });
  return order;
}

} // namespace shoal::examples::shop
