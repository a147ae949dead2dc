// SPDX-License-Identifier: Apache-2.0
// Virtual actors hosted by shard hosts, through the actor test kit (testkit/actor_test.hpp):
// the built-in counter, bad input, faults, call cycles, turns, passivation, durability.
#include "host/virtual_actor.hpp"

#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <caf/send.hpp>

#include "actors/actor_api.hpp"
#include "core/reply.hpp"
#include "documents/messages.hpp"
#include "testkit/actor_test.hpp"

namespace shoal::testing {
namespace {

using actors::call_result;
using actors::method_context;
using namespace std::chrono_literals;

/// Records the answers a shard delivers to one request.
template <class T>
struct answers {
  int deliveries = 0;
  std::optional<core::result<T>> last;

  /// A reply_to that records here.
  static core::reply_to<T> into(const std::shared_ptr<answers>& a) {
    return core::reply_to<T>::to([a](core::result<T>&& r) {
      ++a->deliveries;
      a->last = std::move(r);
    });
  }
};

/// A test type that misbehaves on command. Its state is {"v": ...}.
actors::actor_type make_probe_type() {
  actors::actor_type probe{"probe"};
  probe.method("set", [](method_context& m) {
    m.state()["v"] = m.args().at("v");
    m.reply(m.state());
  });
  probe.read_only("get", [](method_context& m) { m.reply(m.state()); });
  // Changes the state, then throws: the change must not survive.
  probe.method("throw", [](method_context& m) {
    m.state()["v"] = "dirty";
    throw std::runtime_error("boom");
  });
  // Changes the state, then returns without replying or waiting on a call.
  probe.method("silent", [](method_context& m) { m.state()["v"] = "dirty"; });
  // Changes the state, then fails with a business error.
  probe.method("conflict", [](method_context& m) {
    m.state()["v"] = "dirty";
    m.fail(409, "conflict", "refused");
  });
  // A read-only method that changes the state anyway: nothing may be written or kept.
  probe.read_only("sneaky", [](method_context& m) {
    m.state()["v"] = "dirty";
    m.reply(nullptr);
  });
  // Nests {"a": ...} `depth` (an argument) levels deep under "v": a state JSON can hold
  // up to the one depth limit, and one it cannot past it.
  probe.method("nest", [](method_context& m) {
    boost::json::value v = 1;
    for (std::int64_t i = 0; i < m.args().at("depth").as_int64(); ++i)
      v = boost::json::object{{"a", v}};
    m.state()["v"] = v;
    m.reply(true);
  });
  // Puts an infinity in the state, or in the result only: neither can be written as JSON.
  probe.method("infinite", [](method_context& m) {
    m.state()["v"] = std::numeric_limits<double>::infinity();
    m.reply(true);
  });
  probe.read_only("infinite_result",
                  [](method_context& m) { m.reply(std::numeric_limits<double>::infinity()); });
  // Reads counter/{from} and keeps the value: a turn that waits on another actor.
  probe.method("copy", [](method_context& m) {
    m.call("counter", m.args().at("from").as_string().c_str(), "get", {},
           [](method_context& m, call_result r) {
             if (!r.ok()) return m.fail(r.status, r.code, r.message);
             m.state()["v"] = r.value.at("value");
             m.reply(m.state());
           });
  });
  return probe;
}

/// `go` calls `go` of the type `to` with the same id, and replies with the answer or
/// fails with its error: two relays that point at each other make a call cycle
/// A → B → A. `echo` answers at once.
actors::actor_type make_relay_type(std::string name, std::string to) {
  actors::actor_type relay{std::move(name)};
  relay.read_only("echo", [](method_context& m) { m.reply("echo"); });
  relay.method("go", [to](method_context& m) {
    m.call(to, m.id(), "go", {}, [](method_context& m, call_result r) {
      if (!r.ok()) return m.fail(r.status, r.code, r.message);
      m.reply(r.value);
    });
  });
  return relay;
}

class VirtualActorTest : public testkit::actor_test {
protected:
  VirtualActorTest() {
    registry().add(actors::make_counter_type());
    registry().add(make_probe_type());
  }

  /// The counter's value in the store, or -1 when it has none.
  std::int64_t stored_value(const std::string& id) {
    auto s = persisted_state("counter", id);
    return s ? s->at("value").as_int64() : -1;
  }

  /// A PUT and a GET of a document through `shard` (the shard still serves documents).
  void expect_documents_served(std::uint32_t shard, const std::string& id) {
    auto put = std::make_shared<answers<documents::doc_written>>();
    documents::doc_write w;
    w.kind = documents::write_kind::put;
    w.collection = "docs";
    w.id = id;
    w.body = R"({"a":1})";
    caf::anon_send(shards().handles.at(shard), std::move(w),
                   answers<documents::doc_written>::into(put));
    auto get = std::make_shared<answers<documents::stored_doc>>();
    caf::anon_send(shards().handles.at(shard), documents::doc_get{"docs", id, {}, {}},
                   answers<documents::stored_doc>::into(get));
    run();
    ASSERT_EQ(put->deliveries, 1);
    ASSERT_TRUE(put->last->ok()) << put->last->error().to_string();
    EXPECT_TRUE((*put->last)->created);
    ASSERT_EQ(get->deliveries, 1);
    ASSERT_TRUE(get->last->ok()) << get->last->error().to_string();
    EXPECT_EQ((*get->last)->json, R"({"a":1})");
  }
};

// -- the built-in counter --------------------------------------------------------

// Verifies increment (by 1 and by n), get and reset of the built-in counter.
TEST_F(VirtualActorTest, CounterIncrementGetReset) {
  EXPECT_EQ(call("counter", "c", "get").body, (boost::json::object{{"value", 0}}));
  EXPECT_EQ(call("counter", "c", "increment").body.at("value"), 1);
  EXPECT_EQ(call("counter", "c", "increment", {{"by", 41}}).body.at("value"), 42);
  EXPECT_EQ(call("counter", "c", "increment", {{"by", -2}}).body.at("value"), 40);
  EXPECT_EQ(call("counter", "c", "get").body.at("value"), 40);
  EXPECT_EQ(call("counter", "other", "get").body.at("value"), 0);
  auto reset = call("counter", "c", "reset");
  ASSERT_TRUE(reset.ok()) << ::testing::PrintToString(reset);
  EXPECT_EQ(reset.body.at("value"), 0);
  EXPECT_EQ(call("counter", "c", "get").body.at("value"), 0);
}

// Verifies that a method's state change is in the store when its reply arrives.
TEST_F(VirtualActorTest, StateIsPersistedBeforeTheReply) {
  EXPECT_EQ(persisted_state("counter", "c"), std::nullopt);
  auto p = send("counter", "c", "increment", {{"by", 7}});
  run();
  ASSERT_TRUE(p.ready());
  EXPECT_EQ(p.get().body.at("value"), 7);
  EXPECT_EQ(persisted_state("counter", "c"), (boost::json::object{{"value", 7}}));
  call("counter", "c", "reset");
  EXPECT_EQ(stored_value("c"), 0);
}

// Verifies that read-only methods write nothing, even when they change the state.
TEST_F(VirtualActorTest, ReadOnlyMethodWritesNothing) {
  call("counter", "c", "increment", {{"by", 3}});
  call("probe", "p", "set", {{"v", 1}});
  auto before = store().latest_sequence();
  EXPECT_EQ(call("counter", "c", "get").body.at("value"), 3);
  EXPECT_EQ(call("counter", "never-written", "get").body.at("value"), 0);
  EXPECT_TRUE(call("probe", "p", "sneaky").ok());
  EXPECT_EQ(store().latest_sequence(), before);
  EXPECT_EQ(persisted_state("counter", "never-written"), std::nullopt);
  // The change of the read-only method is not kept in memory either.
  EXPECT_EQ(call("probe", "p", "get").body.at("v"), 1);
  EXPECT_EQ(persisted_state("probe", "p")->at("v"), 1);
}

// -- bad input -------------------------------------------------------------------

// Verifies a state nested as deep as the one limit allows (the state object and 63
// objects under "v": 64 levels) is kept, persisted and restored after a read-only call (restore used a
// throwing parse limited to 32 levels), and one past the limit is refused: 500
// actor_failed, the state unchanged.
TEST_F(VirtualActorTest, StateDepthFollowsTheOneLimit) {
  ASSERT_EQ(call("probe", "d", "nest", {{"depth", 40}}).status, 200);
  EXPECT_EQ(call("probe", "d", "get").status, 200); // a read-only call restores the state
  auto deep = call("probe", "d", "nest", {{"depth", 63}}); // with the state: 64 levels
  EXPECT_EQ(deep.status, 200) << deep.code << " " << deep.message;
  EXPECT_EQ(call("probe", "d", "get").status, 200);
  auto over = call("probe", "d", "nest", {{"depth", 64}});
  EXPECT_EQ(over.status, 500);
  EXPECT_EQ(over.code, "actor_failed");
  auto s = persisted_state("probe", "d");
  ASSERT_TRUE(s);
  const boost::json::value* v = &s->at("v");
  int depth = 0;
  while (v->is_object()) {
    v = &v->as_object().at("a");
    ++depth;
  }
  EXPECT_EQ(depth, 63) << "the refused state was written";
}

// Verifies a method whose state or result holds a number JSON cannot write (infinity)
// fails with 500 actor_failed and leaves the state as it was.
TEST_F(VirtualActorTest, NonFiniteNumbersAreRefused) {
  ASSERT_EQ(call("probe", "f", "set", {{"v", 1}}).status, 200);
  auto state = call("probe", "f", "infinite");
  EXPECT_EQ(state.status, 500);
  EXPECT_EQ(state.code, "actor_failed");
  auto result = call("probe", "f", "infinite_result");
  EXPECT_EQ(result.status, 500);
  EXPECT_EQ(result.code, "actor_failed");
  EXPECT_EQ(call("probe", "f", "get").body.at("v"), 1);
  EXPECT_EQ(persisted_state("probe", "f")->at("v"), 1);
}

// Verifies that a call to an unregistered type answers 404 unknown_actor_type.
TEST_F(VirtualActorTest, UnknownTypeIs404) {
  auto r = call("nosuchtype", "x", "get");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.code, "unknown_actor_type");
  EXPECT_EQ(persisted_state("nosuchtype", "x"), std::nullopt);
}

// Verifies that a call to a method the type lacks answers 404 unknown_method.
TEST_F(VirtualActorTest, UnknownMethodIs404) {
  call("counter", "c", "increment");
  auto r = call("counter", "c", "decrement");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.code, "unknown_method");
  EXPECT_EQ(call("counter", "c", "get").body.at("value"), 1);
}

// Verifies that a call to an unknown method does not activate the actor.
TEST_F(VirtualActorTest, UnknownMethodDoesNotActivate) {
  EXPECT_EQ(call("counter", "never", "decrement").code, "unknown_method");
  EXPECT_EQ(active("counter"), 0);
  EXPECT_EQ(activations("counter"), 0u);
}

// Verifies that arguments that are not a JSON object answer 400 invalid_args.
TEST_F(VirtualActorTest, NonObjectArgumentsAre400) {
  for (std::string args : {"[1,2]", "42", "\"by\"", "null", "{\"by\":", "not json"}) {
    auto r = call_raw("counter", "c", "increment", args);
    EXPECT_EQ(r.status, 400) << args;
    EXPECT_EQ(r.code, "invalid_args") << args;
  }
  EXPECT_EQ(call_raw("counter", "c", "increment", "").body.at("value"), 1); // "" is {}
  EXPECT_EQ(stored_value("c"), 1);
}

// -- faults ----------------------------------------------------------------------

// Verifies that a throwing method answers 500 actor_failed, the actor goes back to its
// last persisted state (in memory and on disk) and its shard serves on.
TEST_F(VirtualActorTest, ThrowingMethodIs500AndRestoresState) {
  configure().shards = 1; // everything below shares the shard that saw the throw
  ASSERT_TRUE(call("probe", "p", "set", {{"v", 1}}).ok());
  call("counter", "c", "increment");
  auto r = call("probe", "p", "throw");
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.code, "actor_failed");
  EXPECT_NE(r.message.find("boom"), std::string::npos) << r.message;
  EXPECT_EQ(persisted_state("probe", "p")->at("v"), 1);
  EXPECT_EQ(call("probe", "p", "get").body.at("v"), 1);
  EXPECT_EQ(active("probe"), 1); // the same activation serves on
  EXPECT_EQ(call("counter", "c", "increment").body.at("value"), 2);
  expect_documents_served(0, "after-throw");
  EXPECT_EQ(metrics().find("probe", "throw")->failed.value(), 1u);
}

// Verifies that a throw in a fresh actor (never persisted) leaves it empty.
TEST_F(VirtualActorTest, ThrowingMethodOnFreshActorLeavesNoState) {
  EXPECT_EQ(call("probe", "fresh", "throw").code, "actor_failed");
  EXPECT_EQ(call("probe", "fresh", "get").body, boost::json::object{});
  EXPECT_EQ(persisted_state("probe", "fresh"), std::nullopt);
}

// Verifies that a method returning without replying answers 500 actor_failed and its
// state change is dropped.
TEST_F(VirtualActorTest, MethodReturningWithoutReplyIs500) {
  call("probe", "p", "set", {{"v", 1}});
  auto r = call("probe", "p", "silent");
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.code, "actor_failed");
  EXPECT_EQ(call("probe", "p", "get").body.at("v"), 1);
  EXPECT_EQ(persisted_state("probe", "p")->at("v"), 1);
}

// Verifies that a method failing with 409 keeps the state unchanged.
TEST_F(VirtualActorTest, BusinessErrorKeepsStateUnchanged) {
  call("counter", "c", "increment", {{"by", 5}});
  auto overflow = call("counter", "c", "increment", {{"by", INT64_MAX}});
  EXPECT_EQ(overflow.status, 409);
  EXPECT_EQ(overflow.code, "overflow");
  EXPECT_EQ(call("counter", "c", "get").body.at("value"), 5);
  EXPECT_EQ(stored_value("c"), 5);

  call("probe", "p", "set", {{"v", 1}});
  auto before = store().latest_sequence();
  auto r = call("probe", "p", "conflict");
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(r.code, "conflict");
  EXPECT_EQ(r.message, "refused");
  EXPECT_EQ(store().latest_sequence(), before);
  EXPECT_EQ(call("probe", "p", "get").body.at("v"), 1);
}

// Verifies the design for call cycles: A → B → A cannot complete (A's call from B waits
// behind A's own turn), so it times out with 504 call_timeout after actors.call_timeout
// instead of deadlocking, and the shard serves other actors meanwhile and after. (What
// the cycle leaves behind is dropped: AbandonedCallCycleStops.)
TEST_F(VirtualActorTest, CallCycleTimesOutWith504) {
  configure().shards = 1;
  configure().call_timeout = 1000ms;
  registry().add(make_relay_type("ping", "pong"));
  registry().add(make_relay_type("pong", "ping"));
  auto p = send("ping", "x", "go");
  run();
  EXPECT_FALSE(p.ready());
  // The shard is not blocked while the cycle waits.
  EXPECT_EQ(call("counter", "c", "increment").body.at("value"), 1);
  advance_time(999ms);
  EXPECT_FALSE(p.ready());
  advance_time(1ms);
  ASSERT_TRUE(p.ready());
  EXPECT_EQ(p.get().status, 504);
  EXPECT_EQ(p.get().code, "call_timeout");
  EXPECT_EQ(call("counter", "c", "increment").body.at("value"), 2);
  expect_documents_served(0, "after-cycle");
}

// Verifies that a call cycle whose caller got its 504 stops: nested calls carry what is
// left of their caller's time, so the cycle's leftover call is dropped (504) instead of
// running again; the actors answer other calls at once and can be passivated.
TEST_F(VirtualActorTest, AbandonedCallCycleStops) {
  configure().shards = 1;
  configure().call_timeout = 1000ms;
  registry().add(make_relay_type("ping", "pong"));
  registry().add(make_relay_type("pong", "ping"));
  auto p = send("ping", "x", "go");
  run();
  advance_time(1000ms);
  ASSERT_EQ(p.get().code, "call_timeout");
  for (int i = 0; i < 3; ++i)
    advance_time(1000ms);
  auto failed = metrics().find("ping", "go")->failed.value();
  auto echo = send("ping", "x", "echo");
  run();
  EXPECT_TRUE(echo.ready()) << "an actor of the cycle is still busy with orphaned calls";
  passivate_idle();
  advance_time(1000ms);
  EXPECT_EQ(active("ping"), 0);
  EXPECT_EQ(active("pong"), 0);
  EXPECT_EQ(metrics().find("ping", "go")->failed.value(), failed)
    << "the cycle keeps running without a caller";
}

// Verifies that a turn waiting on another actor's answer holds back the actor's next
// call, which then sees the state that turn left.
TEST_F(VirtualActorTest, TurnWaitingOnCallHoldsBackNextCall) {
  call("counter", "src", "increment", {{"by", 9}});
  auto copy = send("probe", "p", "copy", {{"from", "src"}});
  auto get = send("probe", "p", "get");
  run();
  ASSERT_TRUE(copy.ready());
  ASSERT_TRUE(get.ready());
  EXPECT_EQ(copy.get().body.at("v"), 9);
  EXPECT_EQ(get.get().body.at("v"), 9);
  EXPECT_EQ(persisted_state("probe", "p")->at("v"), 9);
}

// -- turns and lifecycle ---------------------------------------------------------

// Verifies turn-based ordering: calls sent before the scheduler runs execute one at a
// time, in the order sent.
TEST_F(VirtualActorTest, CallsRunOneAtATimeInOrder) {
  std::vector<testkit::pending_reply> replies;
  for (int i = 1; i <= 100; ++i) {
    replies.push_back(send("counter", "c", "increment", {{"by", i}}));
    if (i % 10 == 0) replies.push_back(send("counter", "c", "get"));
  }
  run();
  std::int64_t sum = 0;
  std::size_t k = 0;
  for (int i = 1; i <= 100; ++i) {
    sum += i;
    ASSERT_EQ(replies[k].deliveries(), 1);
    EXPECT_EQ(replies[k++].get().body.at("value"), sum) << "increment " << i;
    if (i % 10 == 0) {
      EXPECT_EQ(replies[k++].get().body.at("value"), sum) << "get after " << i;
    }
  }
  EXPECT_EQ(stored_value("c"), 5050);
}

// Verifies that an actor is activated once for many calls (its state loaded once).
TEST_F(VirtualActorTest, ActivatesOnceForManyCalls) {
  EXPECT_EQ(active("counter"), 0);
  for (int i = 0; i < 50; ++i)
    call("counter", "c", "increment");
  EXPECT_EQ(activations("counter"), 1u);
  EXPECT_EQ(active("counter"), 1);
  EXPECT_EQ(passivations("counter"), 0u);
  EXPECT_EQ(metrics().find("counter", "increment")->ok.value(), 50u);
}

// Verifies idle passivation: the actor stops after idle_timeout, and the next call
// reactivates it with its persisted state.
TEST_F(VirtualActorTest, IdleActorIsPassivatedAndReactivated) {
  for (int i = 0; i < 3; ++i)
    call("counter", "c", "increment");
  EXPECT_EQ(active("counter"), 1);
  passivate_idle();
  EXPECT_EQ(active("counter"), 0);
  EXPECT_EQ(passivations("counter"), 1u);
  EXPECT_EQ(call("counter", "c", "get").body.at("value"), 3);
  EXPECT_EQ(activations("counter"), 2u);
  EXPECT_EQ(active("counter"), 1);
}

// Verifies passivation and reactivation of actors whose state key is longer than a
// short-string buffer (regression: the shard used a key after erasing its storage).
TEST_F(VirtualActorTest, LongIdsArePassivatedAndReactivated) {
  configure().shards = 1;
  configure().max_active = 1;
  const std::string a = "a-counter-with-a-rather-long-identifier";
  const std::string b = "another-counter-with-a-rather-long-identifier";
  call("counter", a, "increment");
  passivate_idle();
  EXPECT_EQ(active("counter"), 0);
  EXPECT_EQ(call("counter", a, "increment").body.at("value"), 2);
  EXPECT_EQ(call("counter", b, "increment").body.at("value"), 1); // evicts a
  EXPECT_EQ(call("counter", a, "get").body.at("value"), 2);       // evicts b
  EXPECT_EQ(call("counter", b, "get").body.at("value"), 1);
  EXPECT_EQ(activations("counter"), 5u);
  EXPECT_EQ(active("counter"), 1);
}

// Verifies that the idle tick passivates only actors unused for idle_timeout.
TEST_F(VirtualActorTest, IdlePassivationSparesRecentlyUsedActors) {
  configure().shards = 1;
  configure().idle_timeout = 60s;
  call("counter", "old", "increment");
  advance_time(40s); // a tick at 30 s finds nothing idle and comes again at 70 s
  call("counter", "recent", "increment");
  advance_time(30s); // the tick at 70 s: "old" idle for 70 s, "recent" for 30 s
  EXPECT_EQ(active("counter"), 1);
  EXPECT_EQ(passivations("counter"), 1u);
  EXPECT_EQ(call("counter", "recent", "get").body.at("value"), 1);
  EXPECT_EQ(activations("counter"), 2u); // "recent" was still active
}

// Verifies the LRU bound: 10,000 distinct actors called in a row never hold more than
// max_active per shard, and every one of their states is persisted.
TEST_F(VirtualActorTest, TenThousandActorsStayWithinMaxActive) {
  configure().shards = 4;
  configure().max_active = 10;
  const std::int64_t bound = 4 * 10;
  constexpr int n = 10000;
  // Long enough that state keys live on the heap, not in a short-string buffer.
  auto id = [](int i) { return "counter-number-" + std::to_string(i); };
  std::int64_t peak = 0;
  for (int i = 0; i < n; ++i) {
    auto r = call("counter", id(i), "increment", {{"by", i}});
    ASSERT_TRUE(r.ok()) << i << ": " << ::testing::PrintToString(r);
    peak = std::max(peak, active("counter"));
    ASSERT_LE(active("counter"), bound) << "after " << i;
  }
  EXPECT_EQ(peak, bound);
  EXPECT_EQ(activations("counter"), static_cast<std::uint64_t>(n));
  EXPECT_EQ(passivations("counter"), static_cast<std::uint64_t>(n - bound));
  // The passivated actors are really gone: the shards, plus at most the bound.
  EXPECT_LE(system().registry().running(), static_cast<std::size_t>(4 + bound));
  for (int i = 0; i < n; ++i)
    ASSERT_EQ(stored_value(id(i)), i) << i;
}

// Verifies that calls arriving while their actor is being passivated (forced by the LRU
// bound) are neither lost nor reordered, and reach a new activation with the state.
TEST_F(VirtualActorTest, CallsDuringPassivationAreKeptInOrder) {
  configure().shards = 1;
  configure().max_active = 1;
  ASSERT_EQ(call("counter", "a", "increment").body.at("value"), 1);
  // All sent before anything runs: "b" evicts "a"; the calls after it find "a" stopping.
  auto a1 = send("counter", "a", "increment");              // queued in "a" before eviction
  auto b1 = send("counter", "b", "increment", {{"by", 5}}); // evicts "a"
  auto a2 = send("counter", "a", "increment", {{"by", 10}});
  auto a3 = send("counter", "a", "get");
  auto a4 = send("counter", "a", "increment", {{"by", 100}});
  auto b2 = send("counter", "b", "get"); // "b" is evicted by "a"'s new activation
  run();
  for (const auto* p : {&a1, &b1, &a2, &a3, &a4, &b2})
    ASSERT_EQ(p->deliveries(), 1);
  EXPECT_EQ(a1.get().body.at("value"), 2);
  EXPECT_EQ(b1.get().body.at("value"), 5);
  EXPECT_EQ(a2.get().body.at("value"), 12);
  EXPECT_EQ(a3.get().body.at("value"), 12);
  EXPECT_EQ(a4.get().body.at("value"), 112);
  EXPECT_EQ(b2.get().body.at("value"), 5);
  EXPECT_EQ(stored_value("a"), 112);
  EXPECT_EQ(stored_value("b"), 5);
  EXPECT_LE(active("counter"), 1);
  EXPECT_GE(passivations("counter"), 2u);
}

// Verifies that calls arriving while an idle actor is being passivated wait for a new
// activation, in order.
TEST_F(VirtualActorTest, CallsDuringIdlePassivationAreKeptInOrder) {
  configure().shards = 1;
  configure().idle_timeout = 10s;
  call("counter", "a", "increment");
  // Fire the idle tick and let only the shard handle it: "a" is now stopping.
  sched().advance_time(std::chrono::duration_cast<caf::timespan>(10s));
  ASSERT_TRUE(sched().prioritize(shards().handles[0]));
  sched().run_once();
  EXPECT_EQ(passivations("counter"), 1u);
  auto a1 = send("counter", "a", "increment", {{"by", 10}});
  auto a2 = send("counter", "a", "get");
  run();
  ASSERT_EQ(a1.deliveries(), 1);
  ASSERT_EQ(a2.deliveries(), 1);
  EXPECT_EQ(a1.get().body.at("value"), 11);
  EXPECT_EQ(a2.get().body.at("value"), 11);
  EXPECT_EQ(activations("counter"), 2u);
}

// -- durability ------------------------------------------------------------------

// Verifies that after a crash and a restart from the store every acknowledged change is
// back, and a call that was never run is neither answered nor applied.
TEST_F(VirtualActorTest, CrashAndRestartKeepsAcknowledgedChanges) {
  for (int i = 0; i < 20; ++i)
    ASSERT_TRUE(call("counter", "c" + std::to_string(i), "increment", {{"by", i + 1}}).ok());
  call("probe", "p", "set", {{"v", "kept"}});
  call("probe", "p", "throw");
  auto unacknowledged = send("counter", "c0", "increment", {{"by", 1000}});
  EXPECT_EQ(active("counter"), 20);
  crash_and_restart();
  EXPECT_FALSE(unacknowledged.ready());
  // Nothing from before survives in memory: only the new shards run.
  EXPECT_EQ(system().registry().running(), shards().handles.size());
  EXPECT_EQ(active("counter"), 0);
  for (int i = 0; i < 20; ++i)
    EXPECT_EQ(call("counter", "c" + std::to_string(i), "get").body.at("value"), i + 1) << i;
  EXPECT_EQ(call("probe", "p", "get").body.at("v"), "kept");
  EXPECT_EQ(activations("counter"), 20u);
  EXPECT_EQ(call("counter", "c0", "increment").body.at("value"), 2);
}

// Verifies that in sync mode a method's reply leaves only after the WAL syncer ran.
TEST_F(VirtualActorTest, SyncModeRepliesOnlyAfterFsync) {
  configure().sync = true;
  auto p = send("counter", "c", "increment");
  auto next = send("counter", "c", "increment");
  // Run everything but the syncer: the write is done, the reply is held.
  run_except(syncer());
  EXPECT_FALSE(p.ready());
  EXPECT_FALSE(next.ready()); // the next turn waits for the fsync as well
  EXPECT_EQ(stored_value("c"), 1);
  EXPECT_TRUE(sched().prioritize(syncer())); // the fsync request is waiting
  run();
  ASSERT_TRUE(p.ready());
  EXPECT_EQ(p.get().body.at("value"), 1);
  ASSERT_TRUE(next.ready());
  EXPECT_EQ(next.get().body.at("value"), 2);
  crash_and_restart();
  EXPECT_EQ(call("counter", "c", "get").body.at("value"), 2);
}

// Verifies that in sync mode a read-only call that ran after an increment (while its
// write waited for the fsync) is answered only after the fsync, with the new value.
TEST_F(VirtualActorTest, SyncModeReadAfterAChangeWaitsForTheFsync) {
  configure().sync = true;
  auto inc = send("counter", "c", "increment");
  auto get = send("counter", "c", "get");
  run_except(syncer());
  EXPECT_FALSE(inc.ready());
  EXPECT_FALSE(get.ready()) << "answered from a state that was not synced";
  run();
  ASSERT_TRUE(get.ready());
  EXPECT_EQ(get.get().body.at("value"), 1);
  EXPECT_EQ(inc.get().body.at("value"), 1);
}

// Verifies the control case: without sync mode the reply needs no syncer.
TEST_F(VirtualActorTest, WithoutSyncModeRepliesAfterTheWrite) {
  auto p = send("counter", "c", "increment");
  EXPECT_FALSE(syncer());
  run();
  ASSERT_TRUE(p.ready());
  EXPECT_EQ(p.get().body.at("value"), 1);
}

// -- the kit itself ----------------------------------------------------------------

// Verifies that the kit refuses registrations and settings once the node has started.
TEST_F(VirtualActorTest, KitFreezesRegistryAndSettingsAfterStart) {
  EXPECT_FALSE(started());
  call("counter", "c", "get");
  EXPECT_TRUE(started());
  EXPECT_THROW(registry(), std::logic_error);
  EXPECT_THROW(configure(), std::logic_error);
  EXPECT_EQ(current_settings().shards, 4u);
}

} // namespace
} // namespace shoal::testing
