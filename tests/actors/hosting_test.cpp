// SPDX-License-Identifier: Apache-2.0
// The hosting module of virtual actors (actors::hosting) on a manual loop
// (tests/support/manual_shard.hpp) over a fake runtime that records what the module asks
// of it (spawn, call, passivate, stop) and lets the test answer calls and complete
// passivations: refusals without activation, activation and reuse, LRU and idle
// passivation on the clock, calls that wait for a passivation, down(), state writes
// through the commit gate, and the module's end. No CAF.
#include "actors/hosting.hpp"

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "actors/actor_api.hpp"
#include "actors/actor_metrics.hpp"
#include "storage/memory_store.hpp"
#include "tests/support/manual_shard.hpp"

namespace shoal::actors {
namespace {

using namespace std::chrono_literals;
using handle = actor_runtime::handle;

/// Records what the module asks; the test answers calls and completes passivations.
class fake_runtime final : public actor_runtime {
public:
  struct spawned {
    handle h;
    std::string type;
    std::string id;
  };
  struct call_made {
    handle h;
    actor_call call;
    core::reply_to<actor_result> to;
  };
  struct passivation {
    handle h;
    std::function<void()> stopped;
    shard::time_point at;
  };

  explicit fake_runtime(const testing::manual_shard& shard) : shard_(shard) {}

  handle spawn(const actor_type& type, const std::string& id) override {
    spawns.push_back({++next_, type.name(), id});
    return next_;
  }
  void call(handle h, actor_call&& c, core::reply_to<actor_result> to) override {
    calls.push_back({h, std::move(c), std::move(to)});
  }
  void passivate(handle h, std::function<void()> stopped) override {
    passivations.push_back({h, std::move(stopped), shard_.now()});
  }
  void stop(handle h) override {
    stops.push_back(h);
  }

  /// The handle spawned for actor `id`, most recent first; 0 when none.
  handle of(const std::string& id) const {
    for (auto it = spawns.rbegin(); it != spawns.rend(); ++it)
      if (it->id == id) return it->h;
    return 0;
  }
  /// The methods of the calls handed to `h`, in order.
  std::vector<std::string> methods_of(handle h) const {
    std::vector<std::string> out;
    for (const auto& c : calls)
      if (c.h == h) out.push_back(c.call.method);
    return out;
  }
  /// Whether a passivation of `h` was asked for.
  const passivation* passivation_of(handle h) const {
    for (const auto& p : passivations)
      if (p.h == h) return &p;
    return nullptr;
  }

  std::vector<spawned> spawns;
  std::vector<call_made> calls;
  std::vector<passivation> passivations;
  std::vector<handle> stops;

private:
  const testing::manual_shard& shard_;
  handle next_ = 0;
};

actor_registry make_registry() {
  actor_registry r;
  r.add(make_counter_type());
  return r;
}

actor_call make_call(std::string id, std::string method = "increment") {
  actor_call c;
  c.type = "counter";
  c.id = std::move(id);
  c.method = std::move(method);
  c.args = "{}";
  return c;
}

class HostingTest : public ::testing::Test {
protected:
  /// A module with `max_active` and `idle_timeout` over `shard` and the fake runtime.
  std::unique_ptr<hosting> make(std::uint32_t max_active = 100,
                                std::chrono::milliseconds idle = 300'000ms) {
    hosting::config c;
    c.registry = &registry;
    c.metrics = &metrics;
    c.idle_timeout = idle;
    c.max_active = max_active;
    auto h = std::make_unique<hosting>(shard.ctx(), c);
    h->set_runtime(&rt);
    return h;
  }

  actor_metrics::type_metrics& counter_metrics() {
    return *metrics.find("counter");
  }

  /// Completes the passivation of `h` as the runtime would, on the shard's thread.
  void complete_passivation(handle h) {
    for (auto& p : rt.passivations)
      if (p.h == h && p.stopped) {
        auto stopped = std::move(p.stopped);
        p.stopped = nullptr;
        shard.step([&] { stopped(); });
        return;
      }
    ADD_FAILURE() << "no passivation of actor " << h << " to complete";
  }

  storage::memory_store store{1};
  testing::manual_shard shard{store};
  actor_registry registry = make_registry();
  actor_metrics metrics{registry};
  fake_runtime rt{shard};
};

// Verifies an unknown type or method is refused with not_found "unknown_actor_type" /
// "unknown_method" without activating anything, and so is any call without a registry.
TEST_F(HostingTest, UnknownTypeOrMethodIsRefusedWithoutActivating) {
  auto h = make();
  auto c = make_call("a");
  c.type = "nope";
  auto type = shard.serve(*h, c);
  ASSERT_TRUE(type->ready());
  EXPECT_EQ(type->error().code(), core::errc::not_found);
  EXPECT_EQ(type->error().name(), "unknown_actor_type");
  auto method = shard.serve(*h, make_call("a", "nope"));
  ASSERT_TRUE(method->ready());
  EXPECT_EQ(method->error().code(), core::errc::not_found);
  EXPECT_EQ(method->error().name(), "unknown_method");
  EXPECT_TRUE(rt.spawns.empty());
  EXPECT_TRUE(rt.calls.empty());
  EXPECT_EQ(h->active(), 0u);
  EXPECT_EQ(counter_metrics().activations.value(), 0u);
  EXPECT_EQ(counter_metrics().active.value(), 0);

  hosting none{shard.ctx(), hosting::config{}}; // no registry: hosts no type
  none.set_runtime(&rt);
  auto refused = shard.serve(none, make_call("a"));
  ASSERT_TRUE(refused->ready());
  EXPECT_EQ(refused->error().name(), "unknown_actor_type");
  EXPECT_TRUE(rt.spawns.empty());
}

// Verifies the first call activates the actor (metrics activations and active), later
// calls reuse it in arrival order, and the actor's answer is the call's answer.
TEST_F(HostingTest, FirstCallActivatesAndLaterCallsReuse) {
  auto h = make();
  auto first = shard.serve(*h, make_call("a", "increment"));
  ASSERT_EQ(rt.spawns.size(), 1u);
  EXPECT_EQ(rt.spawns[0].type, "counter");
  EXPECT_EQ(rt.spawns[0].id, "a");
  EXPECT_EQ(counter_metrics().activations.value(), 1u);
  EXPECT_EQ(counter_metrics().active.value(), 1);
  EXPECT_FALSE(first->ready()); // the actor answers, not the module
  auto second = shard.serve(*h, make_call("a", "get"));
  auto third = shard.serve(*h, make_call("a", "reset"));
  EXPECT_EQ(rt.spawns.size(), 1u);
  const auto a = rt.of("a");
  EXPECT_EQ(rt.methods_of(a), (std::vector<std::string>{"increment", "get", "reset"}));
  EXPECT_EQ(counter_metrics().activations.value(), 1u);
  rt.calls[0].to.deliver(actor_result{R"({"value":1})"});
  ASSERT_TRUE(first->ready());
  EXPECT_EQ(first->value().json, R"({"value":1})");
  EXPECT_FALSE(second->ready());

  shard.serve(*h, make_call("b"));
  EXPECT_EQ(rt.spawns.size(), 2u);
  EXPECT_NE(rt.of("b"), a);
  EXPECT_EQ(h->active(), 2u);
  EXPECT_EQ(counter_metrics().activations.value(), 2u);
  EXPECT_EQ(counter_metrics().active.value(), 2);
  EXPECT_TRUE(rt.passivations.empty());
}

// Verifies that over max_active the least recently used actor is passivated (a call
// makes an actor recently used), never the one just called.
TEST_F(HostingTest, MaxActivePassivatesTheLeastRecentlyUsed) {
  auto h = make(2);
  shard.serve(*h, make_call("a"));
  shard.serve(*h, make_call("b"));
  shard.serve(*h, make_call("a")); // b is now the least recently used
  EXPECT_TRUE(rt.passivations.empty());
  shard.serve(*h, make_call("c"));
  ASSERT_EQ(rt.passivations.size(), 1u);
  EXPECT_EQ(rt.passivations[0].h, rt.of("b"));
  EXPECT_EQ(h->active(), 2u);
  EXPECT_EQ(counter_metrics().active.value(), 2);
  EXPECT_EQ(counter_metrics().passivations.value(), 1u);
  shard.serve(*h, make_call("d")); // now a is
  ASSERT_EQ(rt.passivations.size(), 2u);
  EXPECT_EQ(rt.passivations[1].h, rt.of("a"));
  EXPECT_EQ(rt.methods_of(rt.of("c")).size(), 1u);
  EXPECT_EQ(rt.methods_of(rt.of("d")).size(), 1u);
}

// Verifies an idle actor is passivated on the clock once idle_timeout has passed since
// its last call (not before, and within half a timeout after), and a busier one later.
TEST_F(HostingTest, IdleActorsArePassivatedAfterIdleTimeout) {
  auto h = make(100, 1000ms);
  const auto start = shard.now();
  shard.serve(*h, make_call("a"));
  shard.advance(600ms);
  shard.serve(*h, make_call("b"));
  const auto b_used = shard.now();
  for (int i = 0; i < 60; ++i)
    shard.advance(50ms); // 3 s in steps
  const auto* a = rt.passivation_of(rt.of("a"));
  const auto* b = rt.passivation_of(rt.of("b"));
  ASSERT_TRUE(a);
  ASSERT_TRUE(b);
  EXPECT_GE(a->at - start, 1000ms);
  EXPECT_LE(a->at - start, 1500ms);
  EXPECT_GE(b->at - b_used, 1000ms);
  EXPECT_LE(b->at - b_used, 1500ms);
  EXPECT_LT(a->at, b->at);
  EXPECT_EQ(rt.passivations.size(), 2u);
  EXPECT_EQ(h->active(), 0u);
  EXPECT_EQ(counter_metrics().active.value(), 0);
  EXPECT_EQ(counter_metrics().passivations.value(), 2u);
  // Once stopped, the next call activates it again.
  complete_passivation(rt.of("a"));
  shard.serve(*h, make_call("a"));
  EXPECT_EQ(rt.spawns.size(), 3u);
  EXPECT_EQ(rt.methods_of(rt.of("a")).size(), 1u);
}

// Verifies calls that arrive while their actor is being passivated wait (nothing is
// sent to the stopping actor and nothing activates), then start a new activation once
// it stopped, in their order.
TEST_F(HostingTest, CallsDuringAPassivationWaitAndStartANewActivationInOrder) {
  auto h = make(1);
  shard.serve(*h, make_call("a", "increment"));
  const auto old = rt.of("a");
  shard.serve(*h, make_call("b")); // over max_active: a is passivated
  ASSERT_EQ(rt.passivations.size(), 1u);
  ASSERT_EQ(rt.passivations[0].h, old);
  auto x1 = shard.serve(*h, make_call("a", "get"));
  auto x2 = shard.serve(*h, make_call("a", "reset"));
  EXPECT_FALSE(x1->ready());
  EXPECT_FALSE(x2->ready());
  EXPECT_EQ(rt.methods_of(old), std::vector<std::string>{"increment"});
  EXPECT_EQ(rt.spawns.size(), 2u); // a and b only
  complete_passivation(old);
  ASSERT_EQ(rt.spawns.size(), 3u);
  const auto fresh = rt.of("a");
  EXPECT_NE(fresh, old);
  EXPECT_EQ(rt.methods_of(fresh), (std::vector<std::string>{"get", "reset"}));
  EXPECT_EQ(rt.methods_of(old), std::vector<std::string>{"increment"});
  EXPECT_EQ(counter_metrics().activations.value(), 3u);
  // The new activation made b the least recently used over max_active 1.
  ASSERT_EQ(rt.passivations.size(), 2u);
  EXPECT_EQ(rt.passivations[1].h, rt.of("b"));
}

// Verifies down() of an actor forgets it (active, metrics) so that the next call
// activates a new one, and down() of an unknown handle changes nothing.
TEST_F(HostingTest, DownForgetsTheActor) {
  auto h = make();
  shard.serve(*h, make_call("a"));
  shard.serve(*h, make_call("b"));
  const auto a = rt.of("a");
  shard.step([&] { h->down(a); });
  EXPECT_EQ(h->active(), 1u);
  EXPECT_EQ(counter_metrics().active.value(), 1);
  shard.step([&] { h->down(9999); });
  EXPECT_EQ(h->active(), 1u);
  shard.serve(*h, make_call("a"));
  EXPECT_EQ(rt.spawns.size(), 3u);
  EXPECT_NE(rt.of("a"), a);
  EXPECT_EQ(rt.methods_of(rt.of("a")).size(), 1u);
  EXPECT_EQ(h->active(), 2u);
  EXPECT_TRUE(rt.passivations.empty());
}

// Verifies a state write commits through the gate (readable at once) and, with
// storage.sync, is answered only after the fsync; a failed fsync answers its error.
TEST(HostingStateTest, StateWriteCommitsThroughTheGateAndWaitsForTheFsync) {
  storage::memory_store store{1};
  testing::manual_shard shard{store, 0, true};
  hosting h{shard.ctx(), hosting::config{}};
  const auto key = actor_state_key("counter", "a");
  auto w = shard.serve(h, state_write{key, R"({"value":1})"});
  EXPECT_FALSE(w->ready());
  auto stored = store.shard(0).get(key);
  ASSERT_TRUE(stored);
  EXPECT_EQ(*stored, R"({"value":1})");
  ASSERT_TRUE(shard.sync_wanted());
  shard.sync();
  ASSERT_TRUE(w->ready());
  EXPECT_EQ(w->deliveries, 1);
  EXPECT_TRUE(w->last->ok());

  auto lost = shard.serve(h, state_write{key, R"({"value":2})"});
  EXPECT_FALSE(lost->ready());
  shard.fail_sync(core::error{core::errc::storage_failed, "fsync failed"});
  ASSERT_TRUE(lost->ready());
  EXPECT_EQ(lost->error().code(), core::errc::storage_failed);
}

// Verifies that without storage.sync a state write is answered within its step.
TEST(HostingStateTest, StateWriteWithoutSyncIsAnsweredAtOnce) {
  storage::memory_store store{1};
  testing::manual_shard shard{store};
  hosting h{shard.ctx(), hosting::config{}};
  auto w = shard.serve(h, state_write{actor_state_key("counter", "a"), "{}"});
  ASSERT_TRUE(w->ready());
  EXPECT_TRUE(w->last->ok());
  EXPECT_FALSE(shard.sync_wanted());
}

// Verifies the module's end stops every hosted actor (a stopping one too) and answers
// the calls that waited for a passivation with shutting_down.
TEST_F(HostingTest, TheDestructorStopsEveryActorAndAnswersWaitingCalls) {
  auto h = make(1);
  shard.serve(*h, make_call("a"));
  shard.serve(*h, make_call("b")); // a is being passivated
  auto waiting = shard.serve(*h, make_call("a", "get"));
  EXPECT_FALSE(waiting->ready());
  const auto a = rt.of("a");
  const auto b = rt.of("b");
  h.reset();
  ASSERT_EQ(rt.stops.size(), 2u);
  EXPECT_TRUE(std::find(rt.stops.begin(), rt.stops.end(), a) != rt.stops.end());
  EXPECT_TRUE(std::find(rt.stops.begin(), rt.stops.end(), b) != rt.stops.end());
  ASSERT_TRUE(waiting->ready());
  EXPECT_EQ(waiting->deliveries, 1);
  EXPECT_EQ(waiting->error().code(), core::errc::shutting_down);
  EXPECT_EQ(counter_metrics().active.value(), 0);
  EXPECT_EQ(rt.spawns.size(), 2u);
}

} // namespace
} // namespace shoal::actors
