// SPDX-License-Identifier: Apache-2.0
// Admission control on its own (http/admission.hpp), with the test's own clock: places up
// to the limit, the FIFO queue and its wake-ups, waits that run out, the two immediate refusals
// (a full queue, a queue too slow by its recent pace), and the limit following latency.
#include "http/admission.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include <gtest/gtest.h>

namespace shoal::http {
namespace {

using namespace std::chrono_literals;
using clock_type = admission::clock;
using verdict = admission::verdict;

admission::options fixed(std::uint32_t limit, std::uint32_t max_queued = 100,
                         std::chrono::milliseconds timeout = 1000ms) {
  return {limit, limit, max_queued, timeout};
}

/// Runs `count` requests one after another from `t`, each taking `service`; returns the
/// time after the last.
clock_type::time_point serve(admission& a, clock_type::time_point t, int count,
                             std::chrono::microseconds service) {
  for (int i = 0; i < count; ++i) {
    EXPECT_EQ(a.enter(t, [](bool) {}), verdict::admitted);
    t += service;
    a.leave(t, service);
  }
  return t;
}

// Verifies requests are admitted up to the limit, the rest queue, and each that ends
// admits the oldest waiting one (and no other).
TEST(AdmissionTest, OverTheLimitRequestsWaitAndAreAdmittedInOrder) {
  admission a{fixed(2)};
  const auto t = clock_type::now();
  std::vector<std::pair<int, bool>> woken;
  EXPECT_EQ(a.enter(t, [](bool) {}), verdict::admitted);
  EXPECT_EQ(a.enter(t, [](bool) {}), verdict::admitted);
  EXPECT_EQ(a.enter(t, [&](bool in) { woken.emplace_back(3, in); }), verdict::queued);
  EXPECT_EQ(a.enter(t, [&](bool in) { woken.emplace_back(4, in); }), verdict::queued);
  EXPECT_EQ(a.in_flight(), 2u);
  EXPECT_EQ(a.queued(), 2u);
  a.leave(t + 1ms, 1ms);
  EXPECT_EQ(woken, (std::vector<std::pair<int, bool>>{{3, true}}));
  EXPECT_EQ(a.in_flight(), 2u);
  a.leave(t + 2ms, std::nullopt);
  EXPECT_EQ(woken, (std::vector<std::pair<int, bool>>{{3, true}, {4, true}}));
  EXPECT_EQ(a.queued(), 0u);
  // With a place free and nobody waiting, a newcomer goes in.
  a.leave(t + 3ms, 1ms);
  EXPECT_EQ(a.enter(t + 3ms, [](bool) {}), verdict::admitted);
}

// Verifies the limit and the queue's length reach the gauges given, as they change.
TEST(AdmissionTest, TheGaugesFollowTheLimitAndTheQueue) {
  metrics::gauge limit;
  metrics::gauge queued;
  admission a{{3, 3, 10, 1000ms, &limit, &queued}};
  EXPECT_EQ(limit.value(), 3);
  const auto t = clock_type::now();
  for (int i = 0; i < 5; ++i)
    a.enter(t, [](bool) {});
  EXPECT_EQ(queued.value(), 2);
  a.leave(t + 1ms, 1ms);
  EXPECT_EQ(queued.value(), 1);
}

// Verifies a wait ends refused once it reaches the queue timeout, not before: found by
// the sweep (expire) or by the next request that ends or starts, which then admits a
// younger one instead. A refused wait is never admitted later.
TEST(AdmissionTest, AWaitThatRunsOutIsRefused) {
  admission a{fixed(1, 100, 100ms)};
  const auto t = clock_type::now();
  std::vector<std::pair<int, bool>> woken;
  EXPECT_EQ(a.enter(t, [](bool) {}), verdict::admitted);
  EXPECT_EQ(a.enter(t, [&](bool in) { woken.emplace_back(1, in); }), verdict::queued);
  EXPECT_EQ(a.enter(t + 10ms, [&](bool in) { woken.emplace_back(2, in); }), verdict::queued);
  EXPECT_EQ(a.enter(t + 60ms, [&](bool in) { woken.emplace_back(3, in); }), verdict::queued);
  a.expire(t + 99ms);
  EXPECT_TRUE(woken.empty());
  a.expire(t + 100ms);
  EXPECT_EQ(woken, (std::vector<std::pair<int, bool>>{{1, false}}));
  // 2 has waited 110 ms by now, 3 only 50: the end of the admitted one refuses 2 and
  // admits 3.
  a.leave(t + 110ms, 1ms);
  EXPECT_EQ(woken, (std::vector<std::pair<int, bool>>{{1, false}, {2, false}, {3, true}}));
  EXPECT_EQ(a.queued(), 0u);
  EXPECT_EQ(a.in_flight(), 1u);
}

// Verifies clear() drops every waiting request without waking it, and what it held.
TEST(AdmissionTest, ClearDropsTheWaitingWithoutWakingThem) {
  admission a{fixed(1)};
  const auto t = clock_type::now();
  auto held = std::make_shared<int>(0);
  int woken = 0;
  EXPECT_EQ(a.enter(t, [](bool) {}), verdict::admitted);
  EXPECT_EQ(a.enter(t, [held, &woken](bool) { ++woken; }), verdict::queued);
  EXPECT_EQ(held.use_count(), 2);
  a.clear();
  EXPECT_EQ(held.use_count(), 1) << "the wake-up and what it holds must go";
  EXPECT_EQ(a.queued(), 0u);
  a.leave(t + 1ms, 1ms);
  EXPECT_EQ(woken, 0);
}

// Verifies a full queue refuses at once, and with no queue every request over the limit
// is refused.
TEST(AdmissionTest, AFullQueueRefusesAtOnce) {
  const auto t = clock_type::now();
  admission one{fixed(1, 1)};
  EXPECT_EQ(one.enter(t, [](bool) {}), verdict::admitted);
  EXPECT_EQ(one.enter(t, [](bool) {}), verdict::queued);
  EXPECT_EQ(one.enter(t, [](bool) {}), verdict::full);
  admission none{fixed(1, 0)};
  EXPECT_EQ(none.enter(t, [](bool) {}), verdict::admitted);
  EXPECT_EQ(none.enter(t, [](bool) {}), verdict::full);
}

// Verifies a request the queue would hold past the timeout, by the measured pace, is
// refused at once, while a shorter queue still takes requests.
TEST(AdmissionTest, AQueueTooSlowForTheTimeoutRefusesAtOnce) {
  // 10 ms per request, one at a time: 100 requests a second; 100 ms of queue is 10.
  admission a{fixed(1, 1000, 100ms)};
  auto t = serve(a, clock_type::now(), 200, 10ms);
  EXPECT_EQ(a.enter(t, [](bool) {}), verdict::admitted);
  int queued = 0;
  while (a.enter(t, [](bool) {}) == verdict::queued)
    ++queued;
  EXPECT_GE(queued, 8);
  EXPECT_LE(queued, 12);
  EXPECT_EQ(a.enter(t, [](bool) {}), verdict::too_slow);
}

/// Runs `count` requests taking `service` each with the limit always reached: whenever
/// one ends, more arrive until one waits. `parallel` of them are served at once, so
/// the clock moves by service / parallel per request. Returns the time after the last.
clock_type::time_point serve_saturated(admission& a, clock_type::time_point t, int count,
                                       std::chrono::microseconds service, int parallel) {
  auto fill = [&] {
    while (a.enter(t, [](bool) {}) != verdict::queued) {
    }
  };
  fill();
  for (int i = 0; i < count; ++i) {
    t += service / parallel;
    a.leave(t, service);
    fill();
  }
  // Drain: what waits is admitted as places free; nothing more arrives.
  while (a.in_flight() > 0)
    a.leave(t, std::nullopt);
  return t;
}

// Verifies the limit grows while latency stays at its low and the limit is reached,
// stays when it is never reached, shrinks when latency climbs far above its low, and
// stays within http.min_inflight and http.max_inflight.
TEST(AdmissionTest, TheLimitFollowsLatency) {
  admission a{{8, 200, 100'000, 1000ms}};
  EXPECT_EQ(a.limit(), 64u);
  auto t = serve(a, clock_type::now(), 400, 1ms); // one at a time: never reached
  EXPECT_EQ(a.limit(), 64u) << "a limit never reached must not grow";
  // 1 ms a request, four at a time: 4,000 a second, a window per 50 ms.
  t = serve_saturated(a, t, 2000, 1ms, 4);
  EXPECT_GT(a.limit(), 64u);
  t = serve_saturated(a, t, 40'000, 1ms, 4);
  EXPECT_EQ(a.limit(), 200u) << "the ceiling";
  t = serve_saturated(a, t, 400, 10ms, 4); // ten times the latency
  const auto shrunk = a.limit();
  EXPECT_LT(shrunk, 200u);
  serve_saturated(a, t, 2000, 10ms, 4);
  EXPECT_EQ(a.limit(), 8u) << "the floor";
}

// Verifies equal floor and ceiling fix the limit whatever the latency.
TEST(AdmissionTest, EqualBoundsFixTheLimit) {
  admission a{fixed(5)};
  auto t = serve(a, clock_type::now(), 1000, 100us);
  EXPECT_EQ(a.limit(), 5u);
  serve(a, t, 1000, 50ms);
  EXPECT_EQ(a.limit(), 5u);
}

} // namespace
} // namespace shoal::http
