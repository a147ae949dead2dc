// SPDX-License-Identifier: Apache-2.0
// The changes module of one shard (changes/module.hpp) on a manual loop
// (tests/support/manual_shard.hpp), over a memory store, fed by the documents module as a
// shard host wires them: one event per write in the write's own batch, numbered per
// collection; readable at once, or with storage.sync once the fsync covering the write
// is done (or failed: the write stays readable); reads that find nothing new parked until
// the collection's next event or their own deadline on the manual clock; gone, not_found
// (changes.enabled off), age retention on its 1 s timer, parked reads answered
// shutting_down when the module goes, and the metrics. No sleeping: time moves only when
// a test advances it.
#include "changes/module.hpp"

#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "changes/metrics.hpp"
#include "documents/module.hpp"
#include "storage/memory_store.hpp"
#include "tests/support/manual_shard.hpp"

namespace shoal::testing {
namespace {

using std::chrono::milliseconds;

constexpr auto forever = std::numeric_limits<std::uint64_t>::max();

/// Document writes, as the edge builds them.
documents::doc_write put(std::string collection, std::string id, std::string body) {
  documents::doc_write w;
  w.kind = documents::write_kind::put;
  w.collection = std::move(collection);
  w.id = std::move(id);
  w.body = std::move(body);
  return w;
}

documents::doc_write patch(std::string collection, std::string id, std::string body) {
  auto w = put(std::move(collection), std::move(id), std::move(body));
  w.kind = documents::write_kind::patch;
  return w;
}

documents::doc_write del(std::string collection, std::string id) {
  auto w = put(std::move(collection), std::move(id), {});
  w.kind = documents::write_kind::del;
  return w;
}

documents::doc_get get(std::string collection, std::string id) {
  documents::doc_get g;
  g.collection = std::move(collection);
  g.id = std::move(id);
  return g;
}

/// A changes read of `collection` after sequence `after`.
changes::changes_read changes_after(std::string collection, std::uint64_t after,
                                    std::uint32_t limit = 100, std::uint32_t wait_ms = 0) {
  return changes::changes_read{std::move(collection), after, limit, wait_ms};
}

/// The sequence numbers of a batch's events, in order.
std::vector<std::uint64_t> seqs_of(const changes::batch& b) {
  std::vector<std::uint64_t> out;
  for (const auto& e : b.events)
    out.push_back(e.seq);
  return out;
}

using seqs = std::vector<std::uint64_t>;

/// A shard with a changes module and a documents module that reports its writes to it,
/// wired as host/shard_host.cpp wires them.
class ChangesModuleTest : public ::testing::Test {
protected:
  /// Starts the shard and its modules; `cfg.metrics` is this fixture's. With `sync`, commits
  /// wait for the test's fsync (storage.sync). With changes.enabled off the host leaves
  /// the module out of the observers; here it stays in, so the module itself must log
  /// nothing.
  void start(changes::module::config cfg = {}, bool sync = false) {
    cfg.metrics = &metrics;
    shard.emplace(store, 0, sync);
    changes.emplace(shard->ctx(), cfg);
    docs.emplace(shard->ctx(), documents::module::config{},
                 std::vector<shard::doc_observer*>{&*changes});
  }

  ~ChangesModuleTest() override {
    stop();
  }

  /// Stops as the host does: what waits for an fsync fails while the modules live (timers
  /// and deferred work are dropped), then the documents module goes, then the changes
  /// module.
  void stop() {
    if (shard) shard->ctx().close();
    docs.reset();
    changes.reset();
  }

  /// Sends a request to the module that serves it and runs the loop; the capture holds
  /// what arrived so far.
  auto send(changes::changes_read req) {
    return shard->serve(*changes, std::move(req));
  }
  template <class R>
  auto send(R req) {
    return shard->serve(*docs, std::move(req));
  }

  /// Sends `req` to `module` as serve() does, with an answer that also notes `name` in
  /// `order` when it arrives: the order in which the shard answered.
  template <class M, class R>
  auto send_noted(M& module, R req, std::shared_ptr<std::vector<std::string>> order,
                  std::string name) {
    using T = typename R::reply;
    auto c = std::make_shared<capture<T>>();
    auto to = core::reply_to<T>::to([c, order, name](core::result<T>&& r) {
      order->push_back(name);
      ++c->deliveries;
      c->last = std::move(r);
    });
    shard->step([&] { module.serve(std::move(req), std::move(to)); });
    return c;
  }

  /// Sends `req` and returns its answer, which must have arrived.
  template <class R>
  core::result<typename R::reply> call(R req) {
    auto c = send(std::move(req));
    EXPECT_EQ(c->deliveries, 1) << "no single answer arrived";
    if (!c->ready()) return core::error{core::errc::internal, "no answer"};
    return *c->last;
  }

  /// The batch a read answers (a test failure and an empty batch when it fails).
  changes::batch batch_of(changes::changes_read req) {
    auto r = call(std::move(req));
    EXPECT_TRUE(r.ok()) << r.error().to_string();
    return r ? *r : changes::batch{};
  }

  /// The error code a request is answered with (a test failure when it succeeds).
  template <class R>
  core::errc error_of(R req) {
    auto r = call(std::move(req));
    EXPECT_FALSE(r.ok()) << "expected an error";
    return r ? core::errc::internal : r.error().code();
  }

  /// Change-log keys in the store (over all collections).
  std::size_t stored_events() {
    std::size_t n = 0;
    auto s = store.shard(0).scan_prefix("c", [&](std::string_view, std::string_view) {
      ++n;
      return true;
    });
    EXPECT_TRUE(s.ok());
    return n;
  }

  storage::memory_store store{1};
  changes::metrics metrics;
  std::optional<manual_shard> shard;
  std::optional<changes::module> changes;
  std::optional<documents::module> docs;
};

// Verifies one event per committed write (put, patch, delete) numbered 1..n per
// collection, with the document (none on delete), and reads by position and limit.
TEST_F(ChangesModuleTest, ChangeFeedRecordsEveryWriteInOrder) {
  start();
  ASSERT_TRUE(call(put("users", "a", R"({"n":1})")).ok());
  ASSERT_TRUE(call(patch("users", "a", R"({"m":2})")).ok());
  ASSERT_TRUE(call(put("users", "b", R"({"n":3})")).ok());
  ASSERT_TRUE(call(del("users", "a")).ok());
  ASSERT_TRUE(call(put("other", "x", "{}")).ok());
  EXPECT_EQ(error_of(get("users", "a")), core::errc::not_found); // reads: no event
  EXPECT_EQ(metrics.events.value(), 5u);

  auto b = batch_of(changes_after("users", 0));
  EXPECT_EQ(b.first, 1u);
  EXPECT_EQ(b.last, 4u); // the newest sequence
  ASSERT_EQ(seqs_of(b), (seqs{1, 2, 3, 4}));
  EXPECT_EQ(b.events[0].kind, changes::event_kind::put);
  EXPECT_EQ(b.events[0].id, "a");
  EXPECT_EQ(b.events[0].version, 1u);
  EXPECT_EQ(b.events[0].doc, R"({"n":1})");
  EXPECT_EQ(b.events[0].time_ms, shard->ctx().wall_ms()); // the commit time
  EXPECT_EQ(b.events[1].kind, changes::event_kind::put);
  EXPECT_EQ(b.events[1].version, 2u);
  EXPECT_EQ(b.events[1].doc, R"({"n":1,"m":2})");
  EXPECT_EQ(b.events[2].id, "b");
  EXPECT_EQ(b.events[3].kind, changes::event_kind::del);
  EXPECT_EQ(b.events[3].id, "a");
  EXPECT_EQ(b.events[3].version, 3u);
  EXPECT_TRUE(b.events[3].doc.empty());
  EXPECT_GT(b.events[3].time_ms, 0u);

  EXPECT_EQ(seqs_of(batch_of(changes_after("users", 1, 2))), (seqs{2, 3}));
  EXPECT_TRUE(batch_of(changes_after("users", 4)).events.empty());
  EXPECT_EQ(seqs_of(batch_of(changes_after("other", 0))), (seqs{1}));
  // Past the newest: a resume point this shard never handed out.
  EXPECT_EQ(error_of(changes_after("users", 5)), core::errc::gone);
  // A collection without writes: empty, bounds 1..0.
  auto none = batch_of(changes_after("nobody", 0));
  EXPECT_TRUE(none.events.empty());
  EXPECT_EQ(none.last, 0u);
  EXPECT_EQ(metrics.waiters.value(), 0) << "reads with wait_ms 0 never park";
}

// Verifies a write that fails (a precondition) logs no event and leaves no gap: the next
// write gets the next sequence.
TEST_F(ChangesModuleTest, FailedWriteLogsNoEvent) {
  start();
  ASSERT_TRUE(call(put("users", "a", "{}")).ok());
  EXPECT_EQ(error_of(patch("users", "missing", R"({"x":1})")), core::errc::not_found);
  ASSERT_TRUE(call(put("users", "b", "{}")).ok());
  auto b = batch_of(changes_after("users", 0));
  EXPECT_EQ(seqs_of(b), (seqs{1, 2}));
  ASSERT_EQ(b.events.size(), 2u);
  EXPECT_EQ(b.events[1].id, "b");
  EXPECT_EQ(metrics.events.value(), 2u);
  EXPECT_EQ(stored_events(), 2u);
}

// Verifies after = UINT64_MAX ("from now") answers at once with the bounds only, even
// with a wait.
TEST_F(ChangesModuleTest, ChangeFeedFromNowReturnsBoundsOnly) {
  start();
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(call(put("users", "u" + std::to_string(i), "{}")).ok());
  auto answer = send(changes_after("users", forever, 100, 60000));
  ASSERT_EQ(answer->deliveries, 1);
  auto b = answer->value();
  EXPECT_TRUE(b.events.empty());
  EXPECT_EQ(b.first, 1u);
  EXPECT_EQ(b.last, 3u);
  EXPECT_EQ(metrics.waiters.value(), 0);
}

// Verifies a read with nothing new parks (not answered by timers before its deadline, nor
// by writes to other collections) and is answered by the next write to its collection.
TEST_F(ChangesModuleTest, ChangeFeedParkedReadIsAnsweredByTheNextWrite) {
  start();
  ASSERT_TRUE(call(put("users", "a", "{}")).ok());
  auto parked = send(changes_after("users", 1, 100, 60000));
  EXPECT_EQ(parked->deliveries, 0);
  EXPECT_EQ(metrics.waiters.value(), 1);
  shard->advance(milliseconds(59'999)); // its deadline is a minute away
  EXPECT_EQ(parked->deliveries, 0);
  ASSERT_TRUE(call(put("other", "x", "{}")).ok());
  EXPECT_TRUE(call(get("users", "a")).ok());
  EXPECT_EQ(parked->deliveries, 0);
  ASSERT_TRUE(call(put("users", "b", R"({"k":1})")).ok());
  ASSERT_EQ(parked->deliveries, 1);
  auto b = parked->value();
  ASSERT_EQ(seqs_of(b), (seqs{2}));
  EXPECT_EQ(b.events[0].id, "b");
  EXPECT_EQ(b.events[0].doc, R"({"k":1})");
  EXPECT_EQ(b.last, 2u);
  EXPECT_EQ(metrics.waiters.value(), 0);
  // Answered once: later writes and its old deadline do not deliver again.
  ASSERT_TRUE(call(put("users", "c", "{}")).ok());
  shard->advance(milliseconds(1000));
  EXPECT_EQ(parked->deliveries, 1);
  EXPECT_EQ(metrics.waiters.value(), 0);
}

// Verifies a parked read with no write is answered, empty, once its wait ran out on the
// clock (not a millisecond before).
TEST_F(ChangesModuleTest, ChangeFeedParkedReadTimesOutEmpty) {
  start();
  ASSERT_TRUE(call(put("users", "a", "{}")).ok());
  auto parked = send(changes_after("users", 1, 100, 10));
  EXPECT_EQ(parked->deliveries, 0);
  shard->advance(milliseconds(9));
  EXPECT_EQ(parked->deliveries, 0);
  EXPECT_EQ(metrics.waiters.value(), 1);
  shard->advance(milliseconds(1));
  ASSERT_EQ(parked->deliveries, 1);
  auto b = parked->value();
  EXPECT_TRUE(b.events.empty());
  EXPECT_EQ(b.last, 1u);
  EXPECT_EQ(metrics.waiters.value(), 0);
  // Its wait is over: the next write does not answer it again.
  ASSERT_TRUE(call(put("users", "b", "{}")).ok());
  EXPECT_EQ(parked->deliveries, 1);
}

// Verifies a parked read is answered when its own wait runs out, also while the change
// log's age trim (changes.retention_s on, as by default) keeps a 1 s timer of its own.
TEST_F(ChangesModuleTest, ChangeFeedParkedReadIsAnsweredSoonAfterItsWait) {
  changes::module::config cfg;
  cfg.keep.max_age_ms = 86'400'000; // the default changes.retention_s
  start(cfg);
  auto parked = send(changes_after("users", 0, 100, 50));
  EXPECT_EQ(parked->deliveries, 0);
  shard->advance(milliseconds(49));
  EXPECT_EQ(parked->deliveries, 0);
  shard->advance(milliseconds(1));
  EXPECT_EQ(parked->deliveries, 1) << "a 50 ms wait was not answered at 50 ms";
  EXPECT_TRUE(parked->value().events.empty());
}

// Verifies each parked read has its own deadline: reads parked at different times with
// different waits are answered each at its own end, in any order of parking.
TEST_F(ChangesModuleTest, ParkedReadsHaveTheirOwnDeadlines) {
  start();
  auto slow = send(changes_after("users", 0, 100, 300)); // due at 300
  shard->advance(milliseconds(50));
  auto fast = send(changes_after("users", 0, 100, 100));  // due at 150
  auto other = send(changes_after("teams", 0, 100, 200)); // due at 250
  EXPECT_EQ(metrics.waiters.value(), 3);
  shard->advance(milliseconds(99)); // 149
  EXPECT_EQ(fast->deliveries, 0);
  shard->advance(milliseconds(1)); // 150
  EXPECT_EQ(fast->deliveries, 1);
  EXPECT_EQ(slow->deliveries, 0);
  EXPECT_EQ(other->deliveries, 0);
  EXPECT_EQ(metrics.waiters.value(), 2);
  shard->advance(milliseconds(100)); // 250
  EXPECT_EQ(other->deliveries, 1);
  EXPECT_EQ(slow->deliveries, 0);
  EXPECT_EQ(metrics.waiters.value(), 1);
  shard->advance(milliseconds(49)); // 299
  EXPECT_EQ(slow->deliveries, 0);
  shard->advance(milliseconds(1)); // 300
  EXPECT_EQ(slow->deliveries, 1);
  EXPECT_EQ(metrics.waiters.value(), 0);
  for (const auto* c : {&fast, &other, &slow})
    EXPECT_TRUE((*c)->value().events.empty());
}

// Verifies reads parked at the same point get the same answer from one write, reads at
// another point or with another limit get their own, and a read woken by a write does
// not fire again at its old deadline.
TEST_F(ChangesModuleTest, ParkedReadsAtTheSamePointGetTheSameAnswer) {
  start();
  ASSERT_TRUE(call(put("users", "a", R"({"n":1})")).ok());
  std::vector<std::shared_ptr<capture<changes::batch>>> same;
  for (int i = 0; i < 3; ++i)
    same.push_back(send(changes_after("users", 1, 100, 1000 + 100 * i)));
  auto one = send(changes_after("users", 1, 1, 5000));
  EXPECT_EQ(metrics.waiters.value(), 4);
  // One write wakes them all.
  ASSERT_TRUE(call(put("users", "b", R"({"n":2})")).ok());
  EXPECT_EQ(metrics.waiters.value(), 0);
  for (const auto& c : same) {
    ASSERT_EQ(c->deliveries, 1);
    auto b = c->value();
    ASSERT_EQ(seqs_of(b), (seqs{2}));
    EXPECT_EQ(b.events[0].id, "b");
    EXPECT_EQ(b.events[0].doc, R"({"n":2})");
    EXPECT_EQ(b.last, 2u);
  }
  ASSERT_EQ(one->deliveries, 1);
  EXPECT_EQ(seqs_of(one->value()), (seqs{2}));
  // The reads go on from 2; their old deadlines pass without another answer.
  auto next = send(changes_after("users", 2, 100, 10'000));
  shard->advance(milliseconds(5000));
  for (const auto& c : same)
    EXPECT_EQ(c->deliveries, 1);
  EXPECT_EQ(one->deliveries, 1);
  EXPECT_EQ(next->deliveries, 0);
  EXPECT_EQ(metrics.waiters.value(), 1);
  ASSERT_TRUE(call(put("users", "c", "{}")).ok());
  ASSERT_EQ(next->deliveries, 1);
  EXPECT_EQ(seqs_of(next->value()), (seqs{3}));
}

// Verifies a parked read is told the shard stopped (shutting_down) when the module goes,
// and the waiters gauge returns to 0.
TEST_F(ChangesModuleTest, ChangeFeedParkedReadIsAnsweredWhenTheShardStops) {
  start();
  auto parked = send(changes_after("users", 0, 100, 60000));
  auto other = send(changes_after("teams", 0, 100, 60000));
  EXPECT_EQ(parked->deliveries, 0);
  EXPECT_EQ(metrics.waiters.value(), 2);
  stop();
  ASSERT_EQ(parked->deliveries, 1);
  EXPECT_EQ(parked->error().code(), core::errc::shutting_down);
  ASSERT_EQ(other->deliveries, 1);
  EXPECT_EQ(other->error().code(), core::errc::shutting_down);
  EXPECT_EQ(metrics.waiters.value(), 0);
}

// Verifies count-based retention: a resume point whose next events were trimmed is gone
// (also with a wait: it never parks), the oldest kept one resumes exactly.
TEST_F(ChangesModuleTest, ChangeFeedTrimmedResumePointIsGone) {
  changes::module::config cfg;
  cfg.keep.max_events = 3;
  start(cfg);
  for (int i = 1; i <= 5; ++i)
    ASSERT_TRUE(call(put("users", "u" + std::to_string(i), "{}")).ok());
  EXPECT_EQ(error_of(changes_after("users", 0)), core::errc::gone);
  auto gone = call(changes_after("users", 1, 100, 60000)); // never parks
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code(), core::errc::gone);
  EXPECT_FALSE(gone.error().message().empty());
  EXPECT_EQ(metrics.waiters.value(), 0);
  auto b = batch_of(changes_after("users", 2));
  EXPECT_EQ(b.first, 3u);
  EXPECT_EQ(seqs_of(b), (seqs{3, 4, 5}));
  EXPECT_EQ(stored_events(), 3u);
}

// Verifies changes.enabled=false: writes store no change-log event (no 'c' key) and a
// changes read is not_found, with or without a wait.
TEST_F(ChangesModuleTest, ChangeFeedTurnedOffWritesNoEvents) {
  changes::module::config cfg;
  cfg.enabled = false;
  start(cfg);
  for (int i = 1; i <= 3; ++i) {
    auto w = call(put("users", "u" + std::to_string(i), "{}"));
    ASSERT_TRUE(w.ok());
    EXPECT_TRUE(w->created);
  }
  EXPECT_EQ(error_of(changes_after("users", 0)), core::errc::not_found);
  EXPECT_EQ(error_of(changes_after("users", 0, 100, 60000)), core::errc::not_found);
  EXPECT_EQ(stored_events(), 0u);
  EXPECT_EQ(metrics.events.value(), 0u);
  EXPECT_EQ(metrics.waiters.value(), 0);
}

// Verifies age-based retention runs on the module's 1 s timer: events older than the
// limit stay until the timer fires, then are trimmed (deleted from the store), never the
// newest.
TEST_F(ChangesModuleTest, ChangeFeedTrimsByAgeOnTheTick) {
  changes::module::config cfg;
  cfg.keep.max_age_ms = 1;
  start(cfg);
  for (int i = 1; i <= 3; ++i)
    ASSERT_TRUE(call(put("users", "u" + std::to_string(i), "{}")).ok());
  EXPECT_EQ(seqs_of(batch_of(changes_after("users", 0))), (seqs{1, 2, 3}));
  shard->advance(milliseconds(999)); // older than 1 ms, but the timer is not due
  EXPECT_EQ(seqs_of(batch_of(changes_after("users", 0))), (seqs{1, 2, 3}));
  EXPECT_EQ(stored_events(), 3u);
  shard->advance(milliseconds(1));
  EXPECT_EQ(error_of(changes_after("users", 0)), core::errc::gone);
  auto b = batch_of(changes_after("users", 2));
  EXPECT_EQ(b.first, 3u);
  EXPECT_EQ(seqs_of(b), (seqs{3}));
  EXPECT_EQ(stored_events(), 1u);
  EXPECT_TRUE(shard->reports.empty()) << shard->reports.front();
  // The timer goes on: a later old event is trimmed a second later, the newest kept.
  ASSERT_TRUE(call(put("users", "u4", "{}")).ok());
  shard->advance(milliseconds(1000));
  EXPECT_EQ(seqs_of(batch_of(changes_after("users", 3))), (seqs{4}));
  EXPECT_EQ(error_of(changes_after("users", 2)), core::errc::gone);
  EXPECT_EQ(stored_events(), 1u);
}

// Verifies that with storage.sync an event is not readable before the fsync covering its
// write; once it completes, the event is readable, the parked read is woken, and both
// happen before the write is acknowledged.
TEST_F(ChangesModuleTest, ChangeFeedWithSyncPublishesAfterTheFsync) {
  start({}, true);
  auto order = std::make_shared<std::vector<std::string>>();
  auto parked = send_noted(*changes, changes_after("users", 0, 100, 60000), order, "parked");
  auto write = send_noted(*docs, put("users", "a", R"({"x":1})"), order, "write");
  ASSERT_TRUE(shard->sync_wanted());
  EXPECT_EQ(write->deliveries, 0);
  EXPECT_EQ(parked->deliveries, 0);
  auto before = batch_of(changes_after("users", 0));
  EXPECT_TRUE(before.events.empty());
  EXPECT_EQ(before.last, 0u);
  EXPECT_EQ(batch_of(changes_after("users", forever)).last, 0u);
  EXPECT_EQ(metrics.events.value(), 1u) << "committed, not yet readable";
  shard->advance(milliseconds(1000)); // timers do not publish either
  EXPECT_EQ(parked->deliveries, 0);
  EXPECT_EQ(write->deliveries, 0);

  shard->sync();
  ASSERT_EQ(parked->deliveries, 1);
  ASSERT_EQ(write->deliveries, 1);
  EXPECT_TRUE(write->value().created);
  EXPECT_EQ(*order, (std::vector<std::string>{"parked", "write"}));
  auto woken = parked->value();
  ASSERT_EQ(seqs_of(woken), (seqs{1}));
  EXPECT_EQ(woken.events[0].doc, R"({"x":1})");
  EXPECT_EQ(seqs_of(batch_of(changes_after("users", 0))), (seqs{1}));
  EXPECT_FALSE(shard->sync_wanted());
}

// Verifies that with storage.sync a failed fsync still publishes the event (the write
// stays in the store, where reads see it), answers the parked read with it, and fails the
// write's acknowledgement; the next write's event follows it.
TEST_F(ChangesModuleTest, ChangeFeedPublishesAfterAFailedFsync) {
  start({}, true);
  auto parked = send(changes_after("users", 0, 100, 60000));
  auto write = send(put("users", "a", R"({"x":1})"));
  ASSERT_TRUE(shard->sync_wanted());
  EXPECT_TRUE(batch_of(changes_after("users", 0)).events.empty());
  shard->fail_sync(core::error{core::errc::storage_failed, "fsync: EIO"});
  ASSERT_EQ(write->deliveries, 1);
  EXPECT_EQ(write->error().code(), core::errc::storage_failed);
  ASSERT_EQ(parked->deliveries, 1);
  EXPECT_EQ(seqs_of(parked->value()), (seqs{1}));
  auto b = batch_of(changes_after("users", 0));
  ASSERT_EQ(seqs_of(b), (seqs{1}));
  EXPECT_EQ(b.events[0].doc, R"({"x":1})");
  EXPECT_TRUE(call(get("users", "a")).ok()) << "the write stays readable";

  auto next = send(put("users", "b", "{}"));
  ASSERT_TRUE(shard->sync_wanted());
  shard->sync();
  ASSERT_EQ(next->deliveries, 1);
  EXPECT_TRUE(next->value().created);
  EXPECT_EQ(seqs_of(batch_of(changes_after("users", 1))), (seqs{2}));
}

// Verifies the waiters gauge counts the reads parked at this moment: up when a read
// parks, down when it is answered by a write, by its deadline or by the module stopping;
// reads answered at once never count.
TEST_F(ChangesModuleTest, WaitersGaugeFollowsParkedReads) {
  start();
  ASSERT_TRUE(call(put("users", "a", "{}")).ok());
  EXPECT_EQ(metrics.waiters.value(), 0);
  auto by_write = send(changes_after("users", 1, 100, 60000));
  EXPECT_EQ(metrics.waiters.value(), 1);
  auto by_time = send(changes_after("teams", 0, 100, 100));
  EXPECT_EQ(metrics.waiters.value(), 2);
  auto by_stop = send(changes_after("other", 0, 100, 60000));
  EXPECT_EQ(metrics.waiters.value(), 3);
  ASSERT_EQ(batch_of(changes_after("users", 0, 100, 60000)).events.size(), 1u);
  EXPECT_EQ(metrics.waiters.value(), 3) << "a read with events is answered at once";
  ASSERT_TRUE(call(put("users", "b", "{}")).ok());
  EXPECT_EQ(by_write->deliveries, 1);
  EXPECT_EQ(metrics.waiters.value(), 2);
  shard->advance(milliseconds(100));
  EXPECT_EQ(by_time->deliveries, 1);
  EXPECT_EQ(metrics.waiters.value(), 1);
  stop();
  EXPECT_EQ(by_stop->deliveries, 1);
  EXPECT_EQ(metrics.waiters.value(), 0);
}

} // namespace
} // namespace shoal::testing
