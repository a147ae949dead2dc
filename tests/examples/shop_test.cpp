// SPDX-License-Identifier: Apache-2.0
#include "examples/shop/shop.hpp"

#include <cstdint>
#include <optional>
#include <string>

#include <boost/json.hpp>

#include "testkit/actor_test.hpp"

namespace shoal::testing {
namespace {

class ShopTest : public testkit::actor_test {
protected:
  ShopTest() {
    examples::shop::register_types(registry());
  }

  /// The stock of `sku` as the inventory actor answers it.
  std::int64_t stock(const std::string& sku) {
    auto r = call("inventory", sku, "get");
    EXPECT_TRUE(r.ok()) << ::testing::PrintToString(r);
    return r.ok() ? r.body.at("stock").as_int64() : -1;
  }

  /// The stock of `sku` in the store, or -1 when never written.
  std::int64_t stored_stock(const std::string& sku) {
    auto s = persisted_state("inventory", sku);
    return s ? s->at("stock").as_int64() : -1;
  }

  void restock(const std::string& sku, std::int64_t qty) {
    auto r = call("inventory", sku, "restock", {{"qty", qty}});
    ASSERT_TRUE(r.ok()) << ::testing::PrintToString(r);
  }

  static boost::json::object
  order_of(std::initializer_list<std::pair<const char*, std::int64_t>> items) {
    boost::json::array a;
    for (const auto& [sku, qty] : items)
      a.push_back(boost::json::object{{"sku", sku}, {"qty", qty}});
    return boost::json::object{{"items", std::move(a)}};
  }
};

// -- inventory -------------------------------------------------------------------

// Verifies restock, reserve, release and get of one article, in memory and on disk.
TEST_F(ShopTest, InventoryRestockReserveReleaseGet) {
  EXPECT_EQ(stock("apple"), 0);
  EXPECT_EQ(call("inventory", "apple", "restock", {{"qty", 10}}).body,
            (boost::json::object{{"stock", 10}}));
  EXPECT_EQ(call("inventory", "apple", "reserve", {{"qty", 3}}).body.at("stock"), 7);
  EXPECT_EQ(stored_stock("apple"), 7);
  EXPECT_EQ(call("inventory", "apple", "release", {{"qty", 2}}).body.at("stock"), 9);
  EXPECT_EQ(stock("apple"), 9);
  EXPECT_EQ(stored_stock("apple"), 9);
  EXPECT_EQ(stored_stock("pear"), -1); // another article is untouched
}

// Verifies that reserving more than the stock fails with 409 insufficient_stock and
// leaves the stock as it was.
TEST_F(ShopTest, ReserveMoreThanStockIs409AndKeepsStock) {
  restock("apple", 5);
  auto r = call("inventory", "apple", "reserve", {{"qty", 6}});
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(r.code, "insufficient_stock");
  EXPECT_EQ(stock("apple"), 5);
  EXPECT_EQ(stored_stock("apple"), 5);
  EXPECT_EQ(call("inventory", "never-stocked", "reserve", {{"qty", 1}}).code, "insufficient_stock");
  EXPECT_EQ(call("inventory", "apple", "reserve", {{"qty", 5}}).body.at("stock"), 0);
}

// Verifies that inventory methods refuse a missing, non-integer or non-positive qty.
TEST_F(ShopTest, InventoryInvalidQuantityIs400) {
  restock("apple", 5);
  for (auto args :
       {boost::json::object{}, boost::json::object{{"qty", 0}}, boost::json::object{{"qty", -1}},
        boost::json::object{{"qty", "2"}}, boost::json::object{{"qty", 1.5}},
        boost::json::object{{"qty", 2'000'000'000}}}) {
    for (const char* method : {"restock", "reserve", "release"}) {
      auto r = call("inventory", "apple", method, args);
      EXPECT_EQ(r.status, 400) << method << " " << boost::json::serialize(args);
      EXPECT_EQ(r.code, "invalid_args") << method << " " << boost::json::serialize(args);
    }
  }
  EXPECT_EQ(stock("apple"), 5);
}

// -- order -----------------------------------------------------------------------

// Verifies that placing an order over several articles reserves every one of them and
// records the order as placed.
TEST_F(ShopTest, PlaceOrderReservesEveryItem) {
  restock("apple", 10);
  restock("pear", 10);
  restock("plum", 10);
  auto r = call("order", "o1", "place", order_of({{"apple", 1}, {"pear", 2}, {"plum", 3}}));
  ASSERT_TRUE(r.ok()) << ::testing::PrintToString(r);
  EXPECT_EQ(r.body, (boost::json::object{{"status", "placed"}, {"items", 3}}));
  EXPECT_EQ(stock("apple"), 9);
  EXPECT_EQ(stock("pear"), 8);
  EXPECT_EQ(stock("plum"), 7);
  EXPECT_EQ(stored_stock("plum"), 7);
  auto o = call("order", "o1", "get");
  EXPECT_EQ(o.body.at("status"), "placed");
  EXPECT_EQ(o.body.at("items").as_array().size(), 3u);
  auto saved = persisted_state("order", "o1");
  ASSERT_TRUE(saved);
  EXPECT_EQ(saved->at("status"), "placed");
  EXPECT_EQ(saved->at("items").as_array().at(2),
            (boost::json::object{{"sku", "plum"}, {"qty", 3}}));
}

// Verifies that an order failing on its third item releases the first two (stocks back
// to where they were) and fails with 409 insufficient_stock, leaving the order new.
TEST_F(ShopTest, FailedOrderRollsBackEarlierReservations) {
  restock("apple", 10);
  restock("pear", 10);
  restock("plum", 1);
  auto r = call("order", "o1", "place", order_of({{"apple", 4}, {"pear", 5}, {"plum", 2}}));
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(r.code, "insufficient_stock");
  EXPECT_NE(r.message.find("plum"), std::string::npos) << r.message;
  EXPECT_EQ(stock("apple"), 10);
  EXPECT_EQ(stock("pear"), 10);
  EXPECT_EQ(stock("plum"), 1);
  EXPECT_EQ(stored_stock("apple"), 10);
  EXPECT_EQ(stored_stock("pear"), 10);
  EXPECT_EQ(call("order", "o1", "get").body.at("status"), "new");
  EXPECT_EQ(persisted_state("order", "o1"), std::nullopt);
  // After a restock the same order goes through.
  restock("plum", 1);
  EXPECT_TRUE(
    call("order", "o1", "place", order_of({{"apple", 4}, {"pear", 5}, {"plum", 2}})).ok());
  EXPECT_EQ(stock("apple"), 6);
  EXPECT_EQ(stock("plum"), 0);
}

// Verifies rollback when the same article appears twice and the second line fails.
TEST_F(ShopTest, FailedOrderWithRepeatedSkuRestoresStock) {
  restock("apple", 4);
  auto r = call("order", "o1", "place", order_of({{"apple", 2}, {"apple", 3}}));
  EXPECT_EQ(r.code, "insufficient_stock");
  EXPECT_EQ(stock("apple"), 4);
}

// Verifies that placing an order twice fails with 409 already_placed and reserves nothing.
TEST_F(ShopTest, PlacingTwiceIs409AlreadyPlaced) {
  restock("apple", 10);
  ASSERT_TRUE(call("order", "o1", "place", order_of({{"apple", 3}})).ok());
  auto r = call("order", "o1", "place", order_of({{"apple", 3}}));
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(r.code, "already_placed");
  EXPECT_EQ(stock("apple"), 7);
}

// Verifies that malformed item lists are refused with 400 invalid_args and reserve nothing.
TEST_F(ShopTest, InvalidItemsAre400) {
  restock("apple", 10);
  boost::json::array many;
  for (int i = 0; i < 101; ++i)
    many.push_back(boost::json::object{{"sku", "apple"}, {"qty", 1}});
  const boost::json::object bad[] = {
    {},
    {{"items", "apple"}},
    {{"items", boost::json::array{}}},
    {{"items", boost::json::array{"apple"}}},
    {{"items", boost::json::array{boost::json::object{{"qty", 1}}}}},
    {{"items", boost::json::array{boost::json::object{{"sku", 1}, {"qty", 1}}}}},
    {{"items", boost::json::array{boost::json::object{{"sku", "apple"}}}}},
    {{"items", boost::json::array{boost::json::object{{"sku", "apple"}, {"qty", 0}}}}},
    {{"items", boost::json::array{boost::json::object{{"sku", "apple"}, {"qty", "1"}}}}},
    {{"items", std::move(many)}},
  };
  for (const auto& args : bad) {
    auto r = call("order", "o1", "place", args);
    EXPECT_EQ(r.status, 400) << boost::json::serialize(args);
    EXPECT_EQ(r.code, "invalid_args") << boost::json::serialize(args);
  }
  auto raw = call_raw("order", "o1", "place", "[]");
  EXPECT_EQ(raw.status, 400);
  EXPECT_EQ(raw.code, "invalid_args");
  EXPECT_EQ(stock("apple"), 10);
  EXPECT_EQ(call("order", "o1", "get").body.at("status"), "new");
}

// -- durability ------------------------------------------------------------------

// Verifies that stocks and placed orders survive a crash and a restart from the store.
TEST_F(ShopTest, StateSurvivesCrashAndRestart) {
  restock("apple", 10);
  restock("pear", 3);
  ASSERT_TRUE(call("order", "o1", "place", order_of({{"apple", 4}, {"pear", 1}})).ok());
  EXPECT_EQ(call("order", "o2", "place", order_of({{"apple", 1}, {"pear", 9}})).code,
            "insufficient_stock");
  crash_and_restart();
  EXPECT_EQ(active("inventory"), 0);
  EXPECT_EQ(stock("apple"), 6);
  EXPECT_EQ(stock("pear"), 2);
  EXPECT_EQ(call("order", "o1", "get").body.at("status"), "placed");
  EXPECT_EQ(call("order", "o2", "get").body.at("status"), "new");
  EXPECT_EQ(call("order", "o1", "place", order_of({{"apple", 1}})).code, "already_placed");
}

// Verifies that an order placed over articles on several shards, after passivation of
// everything, still sees the stocks from the store.
TEST_F(ShopTest, OrderAfterPassivationSeesPersistedStocks) {
  restock("apple", 2);
  restock("pear", 2);
  passivate_idle();
  EXPECT_EQ(active("inventory"), 0);
  ASSERT_TRUE(call("order", "o1", "place", order_of({{"apple", 2}, {"pear", 2}})).ok());
  EXPECT_EQ(stored_stock("apple"), 0);
  EXPECT_EQ(stored_stock("pear"), 0);
  EXPECT_EQ(activations("inventory"), 4u);
}

} // namespace
} // namespace shoal::testing
