// SPDX-License-Identifier: Apache-2.0
// End-to-end tests of virtual actors over HTTP against the real shoal binary on loopback
// sockets: POST /v1/actors/{type}/{id}/method/{method} with the built-in counter and the
// shop example (inventory, order), the error contract of the route, request ids, the
// actor metrics, the bound on active actors (max_active), idle passivation, turn-based
// concurrency and a restart on the same data directory.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "tests/integration/node_suite.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/metrics_text.hpp"
#include "tests/support/shoal_process.hpp"
#include "tests/support/temp_dir.hpp"

namespace shoal::test {
namespace {

namespace json = boost::json;

const header_list json_type{{"Content-Type", "application/json"}};

/// The target of `method` of the actor (`type`, `id`); the parts are used as given.
std::string actor(std::string_view type, std::string_view id, std::string_view method) {
  return "/v1/actors/" + std::string(type) + "/" + std::string(id) + "/method/"
         + std::string(method);
}

/// POSTs `body` (as application/json when not empty; an empty body is sent bare).
http_response post(http_client& c, const std::string& target, std::string body = {},
                   header_list headers = {}) {
  if (!body.empty()) headers.insert(headers.end(), json_type.begin(), json_type.end());
  return c.request("POST", target, std::move(body), headers);
}

/// `"value"` of a counter reply, or nullopt when the reply is not {"value": int}.
std::optional<std::int64_t> value_of(const http_response& res) {
  auto v = res.json();
  const auto* o = v.if_object();
  const auto* n = o ? o->if_contains("value") : nullptr;
  if (!n || !n->is_int64()) return std::nullopt;
  return n->get_int64();
}

/// Calls `get` of counter `id` and returns its value; a gtest failure when it cannot.
std::optional<std::int64_t> counter_value(http_client& c, const std::string& id) {
  auto res = post(c, actor("counter", id, "get"));
  EXPECT_EQ(res.status, 200u) << id << ": " << res.body;
  return value_of(res);
}

/// Checks that counter `id` holds `expected`, counting a failure (no answer, not 200, wrong
/// value) in `failures`; after `max_failures` it only counts, so a wedged node cannot keep a
/// test busy for call_timeout per check.
void expect_counter(http_client& c, const std::string& id, std::int64_t expected, int& failures,
                    int max_failures = 3) {
  if (failures >= max_failures) {
    ++failures;
    return;
  }
  std::string error;
  auto res = c.try_request("POST", actor("counter", id, "get"), {}, {}, &error);
  if (res && res->status == 200 && value_of(*res) == expected) return;
  ++failures;
  ADD_FAILURE() << "counter " << id << " (state key of " << 9 + id.size() << " bytes): expected "
                << expected << ", got "
                << (res ? std::to_string(res->status) + " " + res->body : "no answer: " + error);
}

// -- Prometheus text ---------------------------------------------------------

/// GET /metrics; a gtest failure when it is not 200.
std::string metrics_text(http_client& c) {
  auto res = c.get("/metrics");
  EXPECT_EQ(res.status, 200u) << res.body;
  return res.body;
}

/// Active actors over every type, from shoal_actors_active.
double active_actors(http_client& c) {
  return metric(metrics_text(c), "shoal_actors_active").value_or(-1);
}

// ===========================================================================
// The counter, the route's contract and the shop on one node of the default config.
// Tests keep apart by using actor ids named after the test.
// ===========================================================================

struct actor_node : default_node {};

class ActorApiTest : public node_suite<actor_node> {
protected:
  /// An actor id unique to the running test: "<TestName>-<suffix>".
  static std::string id(std::string_view suffix = "x") {
    return collection().substr(0, 200) + "-" + std::string(suffix);
  }

  /// Asserts that `res` is an error with `status` and `code` in a JSON body.
  static void expect_error(const http_response& res, unsigned status, std::string_view code,
                           std::string_view what) {
    EXPECT_EQ(res.status, status) << what << ": " << res.body;
    EXPECT_EQ(res.error_code(), code) << what << ": " << res.body;
    EXPECT_EQ(res.header("Content-Type"), "application/json") << what;
  }
};

// Verifies counter increment {"by": n} answers {"value": v} with the running total.
TEST_F(ActorApiTest, CounterIncrementReturnsTheNewValue) {
  auto target = actor("counter", id(), "increment");
  auto res = post(client(), target, R"({"by":5})");
  ASSERT_EQ(res.status, 200u) << res.body;
  EXPECT_EQ(res.header("Content-Type"), "application/json");
  EXPECT_EQ(res.json(), json::parse(R"({"value":5})"));
  EXPECT_EQ(post(client(), target, R"({"by":3})").json(), json::parse(R"({"value":8})"));
  EXPECT_EQ(post(client(), target, R"({"by":-10})").json(), json::parse(R"({"value":-2})"));
  EXPECT_EQ(post(client(), target, R"({"by":0})").json(), json::parse(R"({"value":-2})"));
}

// Verifies counter get answers the current value without changing it, and 0 for a new counter.
TEST_F(ActorApiTest, CounterGetReturnsTheValueWithoutChangingIt) {
  EXPECT_EQ(counter_value(client(), id("fresh")), 0);
  ASSERT_EQ(post(client(), actor("counter", id(), "increment"), R"({"by":42})").status, 200u);
  EXPECT_EQ(counter_value(client(), id()), 42);
  EXPECT_EQ(counter_value(client(), id()), 42);
  EXPECT_EQ(post(client(), actor("counter", id(), "get"), "{}").json(),
            json::parse(R"({"value":42})"));
}

// Verifies counter reset sets the value to 0 and later increments count from there.
TEST_F(ActorApiTest, CounterResetSetsZero) {
  ASSERT_EQ(post(client(), actor("counter", id(), "increment"), R"({"by":9})").status, 200u);
  auto res = post(client(), actor("counter", id(), "reset"));
  ASSERT_EQ(res.status, 200u) << res.body;
  EXPECT_EQ(res.json(), json::parse(R"({"value":0})"));
  EXPECT_EQ(counter_value(client(), id()), 0);
  EXPECT_EQ(value_of(post(client(), actor("counter", id(), "increment"), R"({"by":2})")), 2);
}

// Verifies an empty body is taken as {}: increment without "by" adds 1, same as with {}.
TEST_F(ActorApiTest, EmptyBodyIsAnEmptyObject) {
  auto target = actor("counter", id(), "increment");
  auto bare = post(client(), target);
  ASSERT_EQ(bare.status, 200u) << bare.body;
  EXPECT_EQ(value_of(bare), 1);
  EXPECT_EQ(value_of(post(client(), target, "{}")), 2);
  // An empty body with a JSON Content-Type is still {}.
  auto typed = client().request("POST", target, {}, json_type);
  EXPECT_EQ(typed.status, 200u) << typed.body;
  EXPECT_EQ(value_of(typed), 3);
  EXPECT_EQ(counter_value(client(), id()), 3);
}

// Verifies a call to an unregistered actor type answers 404 unknown_actor_type.
TEST_F(ActorApiTest, UnknownTypeReturns404UnknownActorType) {
  expect_error(post(client(), actor("nosuchtype", id(), "get")), 404, "unknown_actor_type",
               "nosuchtype");
  expect_error(post(client(), actor("Counter", id(), "get"), "{}"), 404, "unknown_actor_type",
               "type names are case-sensitive");
  // The longest valid type name is a name, just not a registered one.
  expect_error(post(client(), actor(std::string(64, 't'), id(), "get")), 404, "unknown_actor_type",
               "64-character type");
  expect_serving();
}

// Verifies a call to a method the type lacks answers 404 unknown_method and changes nothing.
TEST_F(ActorApiTest, UnknownMethodReturns404UnknownMethod) {
  ASSERT_EQ(post(client(), actor("counter", id(), "increment"), R"({"by":4})").status, 200u);
  expect_error(post(client(), actor("counter", id(), "decrement"), R"({"by":1})"), 404,
               "unknown_method", "counter.decrement");
  expect_error(post(client(), actor("counter", id(), "Increment")), 404, "unknown_method",
               "method names are case-sensitive");
  expect_error(post(client(), actor("counter", id(), std::string(64, 'm'))), 404, "unknown_method",
               "64-character method");
  expect_error(post(client(), actor("inventory", id(), "increment")), 404, "unknown_method",
               "inventory.increment");
  expect_error(post(client(), actor("order", id(), "reserve")), 404, "unknown_method",
               "order.reserve");
  EXPECT_EQ(counter_value(client(), id()), 4);
}

// Verifies type, id and method names outside their grammar answer 400 invalid_name.
TEST_F(ActorApiTest, BadNamesReturn400InvalidName) {
  const std::string x = id();
  const std::vector<std::pair<std::string, std::string>> cases{
    {"type with '.'", actor("count.er", x, "get")},
    {"65-character type", actor(std::string(65, 't'), x, "get")},
    {"empty type", actor("", x, "get")},
    {"type with %2F", actor("coun%2Fter", x, "get")},
    {"257-character id", actor("counter", std::string(257, 'i'), "increment")},
    {"empty id", actor("counter", "", "increment")},
    {"id ..", actor("counter", "..", "increment")},
    {"id %2E%2E", actor("counter", "%2E%2E", "increment")},
    {"id .", actor("counter", ".", "increment")},
    {"id with %2F", actor("counter", "a%2Fb", "increment")},
    {"id with %20", actor("counter", "a%20b", "increment")},
    {"non-ASCII id", actor("counter", "caf%C3%A9", "increment")},
    {"method with a space", actor("counter", x, "incr%20ement")},
    {"method with '.'", actor("counter", x, "incr.ement")},
    {"65-character method", actor("counter", x, std::string(65, 'm'))},
    {"empty method", actor("counter", x, "")},
  };
  for (const auto& [what, target] : cases) {
    expect_error(post(client(), target, R"({"by":1})"), 400, "invalid_name", what);
    expect_error(post(client(), target), 400, "invalid_name", what + " (empty body)");
  }
  // Nothing reached a counter: neither halves of the slashed id nor the valid one.
  EXPECT_EQ(counter_value(client(), "a"), 0);
  EXPECT_EQ(counter_value(client(), "b"), 0);
  EXPECT_EQ(counter_value(client(), x), 0);
  expect_serving();
}

// Verifies the longest valid id (256 characters of the id alphabet) is accepted.
TEST_F(ActorApiTest, LongestIdIsAccepted) {
  std::string longest = "a.b:c@d_e-f";
  longest += std::string(256 - longest.size(), 'z');
  auto res = post(client(), actor("counter", longest, "increment"), R"({"by":7})");
  EXPECT_EQ(res.status, 200u) << res.body;
  EXPECT_EQ(value_of(res), 7);
  EXPECT_EQ(counter_value(client(), longest), 7);
}

// Verifies a body that is not JSON answers 400 invalid_json and leaves the state unchanged.
TEST_F(ActorApiTest, InvalidJsonBodyReturns400InvalidJson) {
  ASSERT_EQ(post(client(), actor("counter", id(), "increment"), R"({"by":2})").status, 200u);
  for (const char* body :
       {R"({"by":)", R"({'by':1})", R"({"by":1}})", "{,}", "nul", "{\"by\":1} x"})
    expect_error(post(client(), actor("counter", id(), "increment"), body), 400, "invalid_json",
                 body);
  EXPECT_EQ(counter_value(client(), id()), 2);
}

// Verifies a JSON body that is not an object answers 400 invalid_args and changes nothing.
TEST_F(ActorApiTest, NonObjectBodyReturns400InvalidArgs) {
  ASSERT_EQ(post(client(), actor("counter", id(), "increment"), R"({"by":2})").status, 200u);
  for (const char* body : {"[1]", "[]", R"("by")", "1", "null", "true"})
    expect_error(post(client(), actor("counter", id(), "increment"), body), 400, "invalid_args",
                 body);
  EXPECT_EQ(counter_value(client(), id()), 2);
}

// Verifies a body with a non-JSON Content-Type answers 415 and changes nothing.
TEST_F(ActorApiTest, NonJsonContentTypeReturns415) {
  auto res = client().request("POST", actor("counter", id(), "increment"), R"({"by":2})",
                              {{"Content-Type", "text/plain"}});
  expect_error(res, 415, "unsupported_media_type", "text/plain");
  EXPECT_EQ(counter_value(client(), id()), 0);
}

// Verifies a method's own argument errors (400, 409) answer the method's code and change nothing.
TEST_F(ActorApiTest, MethodErrorsKeepTheState) {
  auto target = actor("counter", id(), "increment");
  ASSERT_EQ(post(client(), target, R"({"by":3})").status, 200u);
  expect_error(post(client(), target, R"({"by":"x"})"), 400, "invalid_args", "by string");
  expect_error(post(client(), target, R"({"by":1.5})"), 400, "invalid_args", "by fraction");
  auto big = std::to_string(std::numeric_limits<std::int64_t>::max());
  expect_error(post(client(), target, R"({"by":)" + big + "}"), 409, "overflow", "overflow");
  EXPECT_EQ(counter_value(client(), id()), 3);
}

// Verifies GET (and PUT, DELETE, PATCH, HEAD) on the actor route answer 405 with Allow: POST.
TEST_F(ActorApiTest, NonPostOnTheRouteReturns405WithAllowPost) {
  auto target = actor("counter", id(), "increment");
  for (const char* method : {"GET", "PUT", "DELETE", "PATCH"}) {
    auto res = client().request(method, target, {}, {});
    expect_error(res, 405, "method_not_allowed", method);
    EXPECT_EQ(res.header("Allow"), "POST, OPTIONS") << method;
  }
  auto head = client().head(target);
  EXPECT_EQ(head.status, 405u);
  EXPECT_EQ(head.header("Allow"), "POST, OPTIONS");
  EXPECT_TRUE(head.body.empty());
  EXPECT_EQ(counter_value(client(), id()), 0) << "a non-POST reached the counter";
}

// Verifies paths near the actor route (missing or extra segments) answer 404 not_found.
TEST_F(ActorApiTest, NearMissPathsReturn404NotFound) {
  for (const std::string& target :
       {std::string("/v1/actors/counter/x/method"), std::string("/v1/actors/counter/x"),
        std::string("/v1/actors/counter/x/method/get/extra"),
        std::string("/v1/actors/counter/x/methods/get"),
        std::string("/v2/actors/counter/x/method/get")})
    expect_error(post(client(), target), 404, "not_found", target);
}

// Verifies every actor response carries an X-Request-Id, echoing the client's when given.
TEST_F(ActorApiTest, RequestIdIsPresentOnActorResponses) {
  std::vector<http_response> responses;
  responses.push_back(post(client(), actor("counter", id(), "increment")));      // 200
  responses.push_back(post(client(), actor("counter", id(), "nope")));           // 404
  responses.push_back(post(client(), actor("nope", id(), "get")));               // 404
  responses.push_back(post(client(), actor("count.er", id(), "get")));           // 400
  responses.push_back(post(client(), actor("counter", id(), "increment"), "{")); // 400
  responses.push_back(client().get(actor("counter", id(), "get")));              // 405
  std::set<std::string> ids;
  for (const auto& res : responses) {
    auto rid = res.header("X-Request-Id");
    ASSERT_TRUE(rid) << "status " << res.status << " has no X-Request-Id: " << res.body;
    EXPECT_FALSE(rid->empty()) << res.status;
    EXPECT_EQ(res.header_count("X-Request-Id"), 1u) << res.status;
    ids.insert(*rid);
  }
  EXPECT_EQ(ids.size(), responses.size()) << "generated request ids repeat";
  const header_list mine{{"X-Request-Id", "actor-trace-7"}};
  EXPECT_EQ(post(client(), actor("counter", id(), "increment"), {}, mine).header("X-Request-Id"),
            "actor-trace-7");
  EXPECT_EQ(post(client(), actor("counter", id(), "nope"), {}, mine).header("X-Request-Id"),
            "actor-trace-7");
}

// Verifies the shop over HTTP: restock, a placed order reserves stock, a second place is 409.
TEST_F(ActorApiTest, ShopOrderPlacedReservesStock) {
  auto apples = id("apples");
  auto pears = id("pears");
  auto res = post(client(), actor("inventory", apples, "restock"), R"({"qty":10})");
  ASSERT_EQ(res.status, 200u) << res.body;
  EXPECT_EQ(res.json(), json::parse(R"({"stock":10})"));
  ASSERT_EQ(post(client(), actor("inventory", pears, "restock"), R"({"qty":4})").status, 200u);
  EXPECT_EQ(post(client(), actor("inventory", pears, "restock"), R"({"qty":1})").json(),
            json::parse(R"({"stock":5})"));

  json::object items{{"items", json::array{json::object{{"sku", apples}, {"qty", 3}},
                                           json::object{{"sku", pears}, {"qty", 5}}}}};
  res = post(client(), actor("order", id("o1"), "place"), json::serialize(items));
  ASSERT_EQ(res.status, 200u) << res.body;
  EXPECT_EQ(res.json(), json::parse(R"({"status":"placed","items":2})"));
  EXPECT_EQ(post(client(), actor("inventory", apples, "get")).json(),
            json::parse(R"({"stock":7})"));
  EXPECT_EQ(post(client(), actor("inventory", pears, "get")).json(), json::parse(R"({"stock":0})"));

  auto placed = post(client(), actor("order", id("o1"), "get"));
  ASSERT_EQ(placed.status, 200u) << placed.body;
  EXPECT_EQ(placed.json().at("status"), "placed");
  EXPECT_EQ(placed.json().at("items"), items.at("items"));

  // Placing it again is refused and reserves nothing more.
  expect_error(post(client(), actor("order", id("o1"), "place"), json::serialize(items)), 409,
               "already_placed", "second place");
  EXPECT_EQ(post(client(), actor("inventory", apples, "get")).json(),
            json::parse(R"({"stock":7})"));
}

// Verifies a failing order (one item short) answers 409 and rolls back: stock unchanged, order new.
TEST_F(ActorApiTest, ShopFailingOrderIsRolledBack) {
  auto a = id("a");
  auto b = id("b");
  auto c = id("c");
  ASSERT_EQ(post(client(), actor("inventory", a, "restock"), R"({"qty":10})").status, 200u);
  ASSERT_EQ(post(client(), actor("inventory", b, "restock"), R"({"qty":6})").status, 200u);
  ASSERT_EQ(post(client(), actor("inventory", c, "restock"), R"({"qty":1})").status, 200u);

  // a and b can be reserved, c is short: a and b must be released again.
  json::object items{{"items", json::array{json::object{{"sku", a}, {"qty", 4}},
                                           json::object{{"sku", b}, {"qty", 6}},
                                           json::object{{"sku", c}, {"qty", 2}}}}};
  auto res = post(client(), actor("order", id("o"), "place"), json::serialize(items));
  expect_error(res, 409, "insufficient_stock", "short order");
  for (const auto& [sku, stock] : {std::pair{a, 10}, std::pair{b, 6}, std::pair{c, 1}}) {
    auto get = post(client(), actor("inventory", sku, "get"));
    EXPECT_EQ(get.json(), json::parse(R"({"stock":)" + std::to_string(stock) + "}"))
      << sku << " after the rollback: " << get.body;
  }
  auto order = post(client(), actor("order", id("o"), "get"));
  EXPECT_EQ(order.json(), json::parse(R"({"status":"new","items":[]})")) << order.body;

  // The first item short: nothing reserved at all. An unknown sku has stock 0.
  json::object first_short{{"items", json::array{json::object{{"sku", id("none")}, {"qty", 1}},
                                                 json::object{{"sku", a}, {"qty", 1}}}}};
  expect_error(post(client(), actor("order", id("o2"), "place"), json::serialize(first_short)), 409,
               "insufficient_stock", "first item short");
  EXPECT_EQ(post(client(), actor("inventory", a, "get")).json(), json::parse(R"({"stock":10})"));

  // The failed order can still be placed once the stock is there.
  ASSERT_EQ(post(client(), actor("inventory", c, "restock"), R"({"qty":1})").status, 200u);
  res = post(client(), actor("order", id("o"), "place"), json::serialize(items));
  EXPECT_EQ(res.status, 200u) << res.body;
  for (const auto& [sku, stock] : {std::pair{a, 6}, std::pair{b, 0}, std::pair{c, 0}})
    EXPECT_EQ(post(client(), actor("inventory", sku, "get")).json(),
              json::parse(R"({"stock":)" + std::to_string(stock) + "}"))
      << sku;
}

// Verifies bad shop arguments answer 400 invalid_args without touching any stock.
TEST_F(ActorApiTest, ShopBadArgumentsReturn400InvalidArgs) {
  auto sku = id("s");
  ASSERT_EQ(post(client(), actor("inventory", sku, "restock"), R"({"qty":2})").status, 200u);
  for (const char* body : {"", "{}", R"({"qty":0})", R"({"qty":-1})", R"({"qty":"2"})"})
    expect_error(post(client(), actor("inventory", sku, "reserve"), body), 400, "invalid_args",
                 body);
  for (const char* body : {"{}", R"({"items":[]})", R"({"items":[{"sku":1,"qty":1}]})"})
    expect_error(post(client(), actor("order", id("o"), "place"), body), 400, "invalid_args", body);
  EXPECT_EQ(post(client(), actor("inventory", sku, "get")).json(), json::parse(R"({"stock":2})"));
}

// Verifies /metrics has the actor families: active, (de)activations, calls by outcome, latency.
TEST_F(ActorApiTest, MetricsExposeActorFamilies) {
  auto before = metrics_text(client());
  const label_set inc{{"type", "counter"}, {"method", "increment"}};
  auto count = [&](const std::string& text, const char* outcome) {
    auto labels = inc;
    labels["outcome"] = outcome;
    return metric(text, "shoal_actor_calls_total", labels).value_or(-1);
  };
  auto target = actor("counter", id(), "increment");
  for (int i = 0; i < 3; ++i)
    ASSERT_EQ(post(client(), target).status, 200u);
  ASSERT_EQ(post(client(), target, R"({"by":"x"})").status, 400u);

  auto after = metrics_text(client());
  for (const char* family :
       {"shoal_actors_active", "shoal_actor_activations_total", "shoal_actor_passivations_total",
        "shoal_actor_calls_total", "shoal_actor_call_duration_seconds"}) {
    EXPECT_NE(after.find(std::string("# TYPE ") + family + " "), std::string::npos)
      << "no TYPE line for " << family;
  }
  for (const char* type : {"counter", "inventory", "order"}) {
    EXPECT_TRUE(metric(after, "shoal_actors_active", {{"type", type}})) << type;
    EXPECT_TRUE(metric(after, "shoal_actor_activations_total", {{"type", type}})) << type;
    EXPECT_TRUE(metric(after, "shoal_actor_passivations_total", {{"type", type}})) << type;
  }
  EXPECT_GE(metric(after, "shoal_actors_active", {{"type", "counter"}}).value_or(0), 1.0);
  EXPECT_GE(metric(after, "shoal_actor_activations_total", {{"type", "counter"}}).value_or(0), 1.0);
  EXPECT_EQ(count(after, "ok") - count(before, "ok"), 3.0);
  EXPECT_EQ(count(after, "error") - count(before, "error"), 1.0);
  EXPECT_EQ(count(after, "failed") - count(before, "failed"), 0.0);
  for (const char* outcome : {"ok", "error", "failed"})
    EXPECT_TRUE(metric(after, "shoal_actor_calls_total",
                       {{"type", "order"}, {"method", "place"}, {"outcome", outcome}}))
      << "order.place outcome " << outcome;
  auto hist_count = [&](const std::string& text) {
    return metric(text, "shoal_actor_call_duration_seconds_count", inc).value_or(-1);
  };
  EXPECT_EQ(hist_count(after) - hist_count(before), 4.0);
  auto inf = inc;
  inf["le"] = "+Inf";
  EXPECT_EQ(metric(after, "shoal_actor_call_duration_seconds_bucket", inf),
            metric(after, "shoal_actor_call_duration_seconds_count", inc));
  EXPECT_TRUE(metric(after, "shoal_actor_call_duration_seconds_sum", inc));
  // The route has its own HTTP label.
  EXPECT_TRUE(metric(after, "shoal_http_requests_total",
                     {{"route", "/v1/actors/{type}/{id}/method/{method}"}}))
    << "no HTTP sample for the actor route";
}

// Verifies 8 connections incrementing one counter get every value 1..N exactly once (turn-based).
TEST_F(ActorApiTest, ConcurrentIncrementsOnOneCounterAreExact) {
  constexpr int threads_n = 8;
  constexpr int per_thread = 200;
  const auto target = actor("counter", id(), "increment");
  std::vector<std::vector<std::int64_t>> seen(threads_n);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < threads_n; ++t) {
    threads.emplace_back([&, t] {
      http_client c{port(), 10s};
      for (int i = 0; i < per_thread; ++i) {
        auto res = c.try_request("POST", target, R"({"by":1})", json_type);
        auto v = res && res->status == 200 ? value_of(*res) : std::nullopt;
        if (!v) {
          ++failures;
          continue;
        }
        seen[static_cast<std::size_t>(t)].push_back(*v);
      }
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(failures.load(), 0);
  std::vector<std::int64_t> all;
  for (const auto& s : seen) {
    EXPECT_TRUE(std::is_sorted(s.begin(), s.end())) << "a client saw the counter go back";
    all.insert(all.end(), s.begin(), s.end());
  }
  std::sort(all.begin(), all.end());
  std::vector<std::int64_t> expected(threads_n * per_thread);
  for (std::size_t i = 0; i < expected.size(); ++i)
    expected[i] = static_cast<std::int64_t>(i) + 1;
  EXPECT_EQ(all, expected) << "every increment sees its own value, 1..N";
  EXPECT_EQ(counter_value(client(), id()), threads_n * per_thread);
}

// ===========================================================================
// The bound on active actors: max_active=64 over the default 64 shards, one per shard.
// ===========================================================================

struct bounded_node {
  static std::vector<std::string> sets() {
    return {"actors.max_active=64"};
  }
};
class ActorBoundTest : public node_suite<bounded_node> {};

constexpr double bound_active = 64 + 64; ///< max_active plus per-shard rounding

// Verifies 10,000 distinct counters all answer, active stays bounded, passivated ones keep values.
TEST_F(ActorBoundTest, TenThousandDistinctCountersStayBounded) {
  constexpr int n = 10'000;
  auto& c = client();
  auto before = metrics_text(c);
  auto by = [](int i) { return (i % 13) + 1; };
  auto name = [](int i) { return "many-" + std::to_string(i); };
  auto start = std::chrono::steady_clock::now();
  int bad = 0;
  double peak = 0;
  for (int i = 0; i < n; ++i) {
    auto res =
      post(c, actor("counter", name(i), "increment"), R"({"by":)" + std::to_string(by(i)) + "}");
    if (res.status != 200 || value_of(res) != by(i)) {
      if (++bad <= 5) ADD_FAILURE() << name(i) << ": " << res.status << " " << res.body;
    }
    if (i % 1000 == 999) peak = std::max(peak, active_actors(c));
  }
  auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("[ actors   ] %d distinct counters in %.2f s (%.0f calls/s)\n", n, seconds,
              n / seconds);
  EXPECT_EQ(bad, 0);
  EXPECT_EQ(c.connections_opened(), 1u) << "the keep-alive connection was not kept";

  auto after = metrics_text(c);
  auto active = metric(after, "shoal_actors_active").value_or(-1);
  EXPECT_GE(active, 0);
  EXPECT_LE(active, bound_active) << "more actors active than max_active allows";
  EXPECT_LE(peak, bound_active) << "the active gauge went over the bound during the run";
  auto delta = [&](const char* family) {
    return metric(after, family, {{"type", "counter"}}).value_or(0)
           - metric(before, family, {{"type", "counter"}}).value_or(0);
  };
  EXPECT_GE(delta("shoal_actor_activations_total"), n);
  EXPECT_GE(delta("shoal_actor_passivations_total"), n - bound_active)
    << "passivations were not counted";
  EXPECT_EQ(metric(after, "shoal_actor_calls_total",
                   {{"type", "counter"}, {"method", "increment"}, {"outcome", "ok"}})
                .value_or(0)
              - metric(before, "shoal_actor_calls_total",
                       {{"type", "counter"}, {"method", "increment"}, {"outcome", "ok"}})
                  .value_or(0),
            n);

  // A sample read back (most were passivated long ago) has its value, from the store.
  int failures = 0;
  for (int i = 0; i < n; i += 97)
    expect_counter(c, name(i), by(i), failures);
  expect_counter(c, name(n - 1), by(n - 1), failures);
  EXPECT_EQ(failures, 0) << "passivated counters that did not answer their value";
  EXPECT_LE(active_actors(c), bound_active);
}

// Verifies LRU-passivated actors come back with their value whatever the length of their id.
TEST_F(ActorBoundTest, PassivatedActorsAnswerAgainWhateverTheirIdLength) {
  auto& c = client();
  // State keys are "a" + type + NUL + id: "counter" ids of 6 and 7 characters straddle
  // the 15 characters a std::string holds without a heap allocation.
  std::vector<std::string> ids;
  for (std::size_t len : {1u, 5u, 6u, 7u, 8u, 20u, 64u, 256u}) {
    auto id = "L" + std::to_string(len) + "-";
    id.resize(len, 'x'); // exactly `len` characters
    ids.push_back(id);
  }
  for (std::size_t i = 0; i < ids.size(); ++i)
    ASSERT_EQ(
      post(c, actor("counter", ids[i], "increment"), R"({"by":)" + std::to_string(i + 100) + "}")
        .status,
      200u)
      << ids[i];
  // 1,000 other counters over 64 shards with one active actor each: every shard is hit
  // (a shard missed by all has probability (63/64)^1000 < 1e-6), so all of the above
  // are passivated.
  auto passivated_before =
    metric(metrics_text(c), "shoal_actor_passivations_total", {{"type", "counter"}}).value_or(0);
  for (int i = 0; i < 1000; ++i)
    ASSERT_EQ(post(c, actor("counter", "filler-" + std::to_string(i), "increment")).status, 200u);
  EXPECT_GE(
    metric(metrics_text(c), "shoal_actor_passivations_total", {{"type", "counter"}}).value_or(0)
      - passivated_before,
    1000 - bound_active);
  int failures = 0;
  for (std::size_t i = 0; i < ids.size(); ++i)
    expect_counter(c, ids[i], static_cast<std::int64_t>(i + 100), failures, 100);
  EXPECT_EQ(failures, 0) << "passivated actors that never came back";
}

// Verifies calls racing with passivation (8 connections, 100 counters) lose no increment.
TEST_F(ActorBoundTest, ChurnUnderConcurrentCallsLosesNoIncrement) {
  constexpr int threads_n = 8;
  constexpr int per_thread = 400;
  constexpr int counters = 100;
  std::vector<std::vector<int>> sent(threads_n, std::vector<int>(counters, 0));
  std::vector<std::vector<std::int64_t>> last(threads_n, std::vector<std::int64_t>(counters, 0));
  std::atomic<int> failures{0};
  std::atomic<int> went_back{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < threads_n; ++t) {
    threads.emplace_back([&, t] {
      http_client c{port(), 10s};
      // A lost call costs call_timeout (5 s): give up after a few rather than run for minutes.
      for (int i = 0; i < per_thread && failures.load() < 8; ++i) {
        int k = (i * 37 + t * 11) % counters;
        auto res =
          c.try_request("POST", actor("counter", "churn-" + std::to_string(k), "increment"),
                        R"({"by":1})", json_type);
        auto v = res && res->status == 200 ? value_of(*res) : std::nullopt;
        if (!v) {
          ++failures;
          continue;
        }
        auto& l = last[static_cast<std::size_t>(t)][static_cast<std::size_t>(k)];
        if (*v <= l) ++went_back; // calls of one client to one counter are answered in order
        l = *v;
        ++sent[static_cast<std::size_t>(t)][static_cast<std::size_t>(k)];
      }
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(went_back.load(), 0) << "a counter's value went back between calls of one client";
  int read_failures = 0;
  for (int k = 0; k < counters; ++k) {
    int total = 0;
    for (int t = 0; t < threads_n; ++t)
      total += sent[static_cast<std::size_t>(t)][static_cast<std::size_t>(k)];
    expect_counter(client(), "churn-" + std::to_string(k), total, read_failures);
  }
  EXPECT_EQ(read_failures, 0);
  EXPECT_LE(active_actors(client()), bound_active);
}

// ===========================================================================
// Idle passivation: idle_timeout_ms=200.
// ===========================================================================

struct idle_node {
  static std::vector<std::string> sets() {
    return {"actors.idle_timeout_ms=200"};
  }
};
class ActorIdleTest : public node_suite<idle_node> {};

// Verifies idle actors are passivated (active gauge 0) and later calls get the persisted value.
TEST_F(ActorIdleTest, IdleActorsArePassivatedAndComeBackWithTheirState) {
  auto& c = client();
  auto before = metrics_text(c);
  constexpr int n = 5;
  // Short and long ids: state keys on both sides of std::string's small-string buffer.
  auto idle_id = [](int i) {
    return i % 2 == 0 ? "i" + std::to_string(i) : "idle-counter-" + std::to_string(i);
  };
  for (int i = 0; i < n; ++i)
    ASSERT_EQ(
      post(c, actor("counter", idle_id(i), "increment"), R"({"by":)" + std::to_string(10 + i) + "}")
        .status,
      200u);
  ASSERT_EQ(post(c, actor("inventory", "idle-inventory-sku", "restock"), R"({"qty":3})").status,
            200u);
  auto last_call = std::chrono::steady_clock::now();
  auto first = active_actors(c);
  if (std::chrono::steady_clock::now() - last_call < 100ms) {
    EXPECT_GE(first, n + 1.0) << "the called actors were not active right after their calls";
  }

  // Poll until the gauge drops to 0; bounded well above the ~0.2-0.3 s it should take.
  double active = first;
  auto deadline = last_call + 10s;
  while (active != 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(50ms);
    active = active_actors(c);
  }
  auto idle_for = std::chrono::duration<double>(std::chrono::steady_clock::now() - last_call);
  std::printf("[ actors   ] active gauge reached %g after %.2f s idle\n", active, idle_for.count());
  ASSERT_EQ(active, 0.0) << "idle actors were not passivated within 10 s";
  EXPECT_LT(idle_for.count(), 3.0) << "passivation took far longer than idle_timeout_ms=200";

  auto mid = metrics_text(c);
  EXPECT_GE(metric(mid, "shoal_actor_passivations_total", {{"type", "counter"}}).value_or(0)
              - metric(before, "shoal_actor_passivations_total", {{"type", "counter"}}).value_or(0),
            n);
  EXPECT_GE(metric(mid, "shoal_actor_passivations_total", {{"type", "inventory"}}).value_or(0),
            1.0);

  // Later calls activate them again from the store.
  int failures = 0;
  for (int i = 0; i < n; ++i)
    expect_counter(c, idle_id(i), 10 + i, failures, n);
  EXPECT_EQ(failures, 0) << "idle-passivated counters that did not come back";
  EXPECT_EQ(value_of(post(c, actor("counter", idle_id(0), "increment"))), 11);
  EXPECT_EQ(post(c, actor("inventory", "idle-inventory-sku", "get")).json(),
            json::parse(R"({"stock":3})"));
  auto after = metrics_text(c);
  EXPECT_GE(metric(after, "shoal_actor_activations_total", {{"type", "counter"}}).value_or(0)
              - metric(mid, "shoal_actor_activations_total", {{"type", "counter"}}).value_or(0),
            n)
    << "the later calls did not activate the passivated counters again";
}

// ===========================================================================
// Restart on the same data directory.
// ===========================================================================

class ActorLifecycleTest : public ::testing::Test {
protected:
  std::unique_ptr<shoal_process> start(std::string_view log_name) {
    return start_node(dir_ / "data", dir_ / std::string(log_name));
  }

  temp_dir dir_{"shoal-actor-life"};
};

// Verifies a restart (SIGTERM, start on the same data dir) keeps counter, inventory, order state.
TEST_F(ActorLifecycleTest, RestartKeepsActorState) {
  {
    auto node = start("first.log");
    http_client c{node->port()};
    for (int i = 0; i < 20; ++i)
      ASSERT_EQ(post(c, actor("counter", "r-" + std::to_string(i), "increment"),
                     R"({"by":)" + std::to_string(i + 1) + "}")
                  .status,
                200u);
    ASSERT_EQ(post(c, actor("counter", "r-0", "increment"), R"({"by":100})").status, 200u);
    ASSERT_EQ(post(c, actor("counter", "zeroed", "increment"), R"({"by":5})").status, 200u);
    ASSERT_EQ(post(c, actor("counter", "zeroed", "reset")).status, 200u);
    ASSERT_EQ(post(c, actor("inventory", "r-sku", "restock"), R"({"qty":9})").status, 200u);
    ASSERT_EQ(
      post(c, actor("order", "r-order", "place"), R"({"items":[{"sku":"r-sku","qty":4}]})").status,
      200u);
    c.close();
    ASSERT_EQ(node->stop(SIGTERM), 0) << node->log();
  }
  auto node = start("second.log");
  http_client c{node->port()};
  EXPECT_EQ(counter_value(c, "r-0"), 101);
  for (int i = 1; i < 20; ++i)
    EXPECT_EQ(counter_value(c, "r-" + std::to_string(i)), i + 1) << i;
  EXPECT_EQ(counter_value(c, "zeroed"), 0);
  EXPECT_EQ(post(c, actor("inventory", "r-sku", "get")).json(), json::parse(R"({"stock":5})"));
  auto order = post(c, actor("order", "r-order", "get"));
  EXPECT_EQ(order.json().at("status"), "placed") << order.body;
  EXPECT_EQ(post(c, actor("order", "r-order", "place"), R"({"items":[{"sku":"r-sku","qty":1}]})")
              .error_code(),
            "already_placed");
  // Increments continue from the persisted value.
  EXPECT_EQ(value_of(post(c, actor("counter", "r-1", "increment"))), 3);
  c.close();
  EXPECT_EQ(node->stop(SIGTERM), 0) << node->log();
}

} // namespace
} // namespace shoal::test
