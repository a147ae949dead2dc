// SPDX-License-Identifier: Apache-2.0
#pragma once

// A small shop, as an example of business logic in virtual actors:
//
// - inventory/{sku}: stock of one article.
//     restock {"qty": n} → {"stock": s}
//     reserve {"qty": n} → {"stock": s}, or 409 insufficient_stock
//     release {"qty": n} → {"stock": s}
//     get → {"stock": s}                                    (read-only)
// - order/{id}: an order over several articles.
//     place {"items": [{"sku": "a", "qty": 2}, ...]} → {"status": "placed", "items": n}
//       reserves every item from its inventory actor, one after the other; when one
//       fails, releases what it reserved (newest first) and fails with that error.
//       409 already_placed for an order placed before.
//     get → {"status": "new" | "placed", "items": [...]}   (read-only)

#include "actors/actor_api.hpp"

namespace shoal::examples::shop {

shoal::actors::actor_type make_inventory_type();
shoal::actors::actor_type make_order_type();

/// Registers inventory and order: one line at start-up.
inline void register_types(shoal::actors::actor_registry& registry) {
  registry.add(make_inventory_type());
  registry.add(make_order_type());
}

} // namespace shoal::examples::shop
