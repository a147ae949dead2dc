// SPDX-License-Identifier: Apache-2.0
// The change log of one shard (changes/change_log.hpp) over a memory store: gapless
// sequences, reads after a sequence with a limit, publication, the "gone" answers,
// count and age retention (an age trim is a plan the caller writes), recovery of the
// bounds by a new log over the same store, and appends whose batch is never written.
#include "changes/change_log.hpp"

#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/result.hpp"
#include "storage/memory_store.hpp"
#include "tests/support/results.hpp"

namespace shoal::changes {
namespace {

using shoal::testing::code_of;

using ::testing::IsEmpty;

constexpr std::uint64_t max64 = std::numeric_limits<std::uint64_t>::max();

/// Predicate formatter for ASSERT_OK / EXPECT_OK: prints the error of a failed result.
template <class T>
::testing::AssertionResult is_ok(const char* expr, const core::result<T>& r) {
  if (r) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << expr << " returned " << r.error().to_string();
}
#define ASSERT_OK(expr) ASSERT_PRED_FORMAT1(is_ok, expr)
#define EXPECT_OK(expr) EXPECT_PRED_FORMAT1(is_ok, expr)


/// The event of the `n`-th write of a test: a put of document "doc-n" at version n,
/// committed at time 1000 * n (a delete for every 4th).
event nth_event(std::uint64_t n) {
  event e;
  e.kind = n % 4 == 0 ? event_kind::del : event_kind::put;
  e.id = "doc-" + std::to_string(n);
  e.version = n;
  if (e.kind == event_kind::put) e.doc = R"({"n":)" + std::to_string(n) + "}";
  e.time_ms = 1000 * n;
  return e;
}

class ChangeLogTest : public ::testing::Test {
protected:
  storage::shard_store& shard() {
    return store_.shard(0);
  }

  /// Appends event `e` to `collection` in its own batch, writes and commits it; with
  /// `publish`, publishes it too. Returns the pending record.
  pending write(change_log& log, std::string_view collection, event e, bool publish = true) {
    storage::write_batch batch;
    auto p = log.append(batch, collection, std::move(e));
    EXPECT_OK(p);
    if (!p) return pending{};
    EXPECT_OK(shard().write(batch, false));
    log.commit(*p);
    if (publish) log.publish(collection, p->seq);
    return *p;
  }

  /// Writes events nth_event(from) .. nth_event(to) to `collection`.
  void write_range(change_log& log, std::string_view collection, std::uint64_t from,
                   std::uint64_t to, bool publish = true) {
    for (auto n = from; n <= to; ++n)
      write(log, collection, nth_event(n), publish);
  }

  /// What a read answered: a batch, or the code of its error (gone; any other error is a
  /// test failure here).
  struct answer {
    std::optional<core::errc> error;
    batch b;
    bool ok() const {
      return !error;
    }
    bool gone() const {
      return error == core::errc::gone;
    }
    std::vector<std::uint64_t> seqs() const {
      std::vector<std::uint64_t> out;
      for (const auto& e : b.events)
        out.push_back(e.seq);
      return out;
    }
  };
  answer read(change_log& log, std::string_view collection, std::uint64_t after,
              std::uint32_t limit = 1000) {
    answer a;
    auto r = log.read(collection, after, limit);
    if (r) {
      a.b = std::move(*r);
    } else {
      a.error = r.error().code();
      EXPECT_EQ(r.error().code(), core::errc::gone) << r.error().to_string();
    }
    return a;
  }

  /// The bounds of `collection` (first, last) as a read from UINT64_MAX answers them.
  std::pair<std::uint64_t, std::uint64_t> bounds(change_log& log, std::string_view collection) {
    auto a = read(log, collection, max64);
    EXPECT_TRUE(a.ok());
    return {a.b.first, a.b.last};
  }

  /// What an age trim did: whether one was planned, and how many events it deleted.
  struct trim_outcome {
    bool planned = false;
    std::size_t deleted = 0;
  };
  /// Plans an age trim at `now_ms`, checks that planning writes nothing, writes the plan's
  /// batch as the caller must and reports it trimmed. `deleted` counts the change-log keys
  /// the batch removed from the store.
  trim_outcome trim(change_log& log, std::uint64_t now_ms, std::size_t max_deletes) {
    trim_outcome out;
    const auto before = stored_events();
    auto plan = log.plan_trim(now_ms, max_deletes);
    EXPECT_OK(plan);
    if (!plan || !*plan) return out;
    EXPECT_EQ(stored_events(), before) << "planning a trim deletes nothing";
    out.planned = true;
    EXPECT_OK(shard().write((*plan)->batch, false));
    log.trimmed(**plan);
    out.deleted = before - stored_events();
    return out;
  }

  /// The number of change-log events stored, over all collections.
  std::size_t stored_events() {
    std::size_t n = 0;
    EXPECT_OK(shard().scan_prefix("c", [&](std::string_view, std::string_view) {
      ++n;
      return true;
    }));
    return n;
  }

  /// The sequences of the events stored for `collection`, from the keys themselves.
  std::vector<std::uint64_t> stored_seqs(std::string_view collection) {
    std::vector<std::uint64_t> out;
    const auto p = change_log::prefix(collection);
    EXPECT_OK(shard().scan_prefix(p, [&](std::string_view k, std::string_view) {
      EXPECT_EQ(k.size(), p.size() + 8) << "a change-log key is prefix ++ 8 bytes";
      std::uint64_t seq = 0;
      for (auto c : k.substr(p.size()))
        seq = (seq << 8) | static_cast<unsigned char>(c);
      out.push_back(seq);
      return true;
    }));
    return out;
  }

  static std::vector<std::uint64_t> iota(std::uint64_t from, std::uint64_t to) {
    std::vector<std::uint64_t> out;
    for (auto n = from; n <= to; ++n)
      out.push_back(n);
    return out;
  }

  storage::memory_store store_{1};
};

// Verifies the key layout: 'c' ++ collection ++ '\0' ++ seq as 8 bytes big-endian.
TEST_F(ChangeLogTest, KeyLayout) {
  EXPECT_EQ(change_log::prefix("users"), std::string("cusers\0", 7));
  EXPECT_EQ(change_log::key("users", 0x0102), std::string("cusers\0\0\0\0\0\0\0\x01\x02", 15));
}

// Verifies appends number a collection's events 1..n without gaps, and a read returns
// them all in order with the fields they were appended with.
TEST_F(ChangeLogTest, SequencesStartAtOneWithoutGaps) {
  change_log log(shard(), {});
  for (std::uint64_t n = 1; n <= 12; ++n) {
    auto p = write(log, "users", nth_event(n));
    EXPECT_EQ(p.seq, n);
    EXPECT_EQ(p.collection, "users");
    EXPECT_EQ(p.trimmed_to, 0u);
  }
  auto a = read(log, "users", 0);
  EXPECT_TRUE(a.ok());
  EXPECT_EQ(a.seqs(), iota(1, 12));
  EXPECT_EQ(a.b.first, 1u);
  EXPECT_EQ(a.b.last, 12u);
  for (const auto& e : a.b.events) {
    auto want = nth_event(e.seq);
    EXPECT_EQ(e.kind, want.kind) << e.seq;
    EXPECT_EQ(e.id, want.id) << e.seq;
    EXPECT_EQ(e.version, want.version) << e.seq;
    EXPECT_EQ(e.doc, want.doc) << e.seq;
    EXPECT_EQ(e.time_ms, want.time_ms) << e.seq;
  }
  EXPECT_EQ(stored_seqs("users"), iota(1, 12));
}

// Verifies each collection has its own sequence, and a collection whose name extends
// another's ("user" / "users") sees only its own events.
TEST_F(ChangeLogTest, CollectionsAreNumberedIndependently) {
  change_log log(shard(), {});
  for (std::uint64_t n = 1; n <= 5; ++n) {
    EXPECT_EQ(write(log, "user", nth_event(n)).seq, n);
    EXPECT_EQ(write(log, "users", nth_event(n)).seq, n);
  }
  EXPECT_EQ(write(log, "users", nth_event(6)).seq, 6u);
  EXPECT_EQ(read(log, "user", 0).seqs(), iota(1, 5));
  EXPECT_EQ(read(log, "users", 0).seqs(), iota(1, 6));
  EXPECT_EQ(stored_seqs("user"), iota(1, 5));
  auto none = read(log, "other", 0);
  EXPECT_TRUE(none.ok());
  EXPECT_THAT(none.b.events, IsEmpty());
  EXPECT_EQ(none.b.first, 1u);
  EXPECT_EQ(none.b.last, 0u);
}

// Verifies read returns the events strictly after `after`, at most `limit` of them.
TEST_F(ChangeLogTest, ReadAfterWithLimit) {
  change_log log(shard(), {});
  write_range(log, "c", 1, 10);
  EXPECT_EQ(read(log, "c", 3, 4).seqs(), iota(4, 7));
  EXPECT_EQ(read(log, "c", 7, 4).seqs(), iota(8, 10));
  EXPECT_EQ(read(log, "c", 9, 1).seqs(), iota(10, 10));
  auto at_end = read(log, "c", 10);
  EXPECT_TRUE(at_end.ok());
  EXPECT_THAT(at_end.b.events, IsEmpty());
  EXPECT_EQ(at_end.b.last, 10u);
  auto no_limit = read(log, "c", 0, 0);
  EXPECT_TRUE(no_limit.ok());
  EXPECT_THAT(no_limit.b.events, IsEmpty());
}

// Verifies paging with limit and the last seq returned visits every event exactly once.
TEST_F(ChangeLogTest, PagingVisitsEveryEventOnce) {
  change_log log(shard(), {});
  write_range(log, "c", 1, 23);
  std::vector<std::uint64_t> seen;
  std::uint64_t after = 0;
  for (int pages = 0; pages < 100; ++pages) {
    auto a = read(log, "c", after, 5);
    ASSERT_TRUE(a.ok());
    if (a.b.events.empty()) break;
    for (const auto& e : a.b.events)
      seen.push_back(e.seq);
    after = a.b.events.back().seq;
  }
  EXPECT_EQ(seen, iota(1, 23));
}

// Verifies committed events are invisible until published, publication makes the tail
// visible up to the published seq, and a publish past the newest is clamped to it.
TEST_F(ChangeLogTest, UnpublishedTailIsInvisibleUntilPublished) {
  change_log log(shard(), {});
  write_range(log, "c", 1, 3);
  write_range(log, "c", 4, 8, false);
  auto a = read(log, "c", 0);
  EXPECT_EQ(a.seqs(), iota(1, 3));
  EXPECT_EQ(a.b.last, 3u) << "last is the newest published";
  auto published = log.published("c");
  ASSERT_OK(published);
  EXPECT_EQ(*published, 3u);
  // A reader at the published end is not "gone"; one past it is.
  EXPECT_TRUE(read(log, "c", 3).ok());
  EXPECT_TRUE(read(log, "c", 5).gone());

  log.publish("c", 6);
  EXPECT_EQ(read(log, "c", 0).seqs(), iota(1, 6));
  EXPECT_EQ(read(log, "c", 5).seqs(), iota(6, 6));
  log.publish("c", 5); // never backwards
  EXPECT_EQ(read(log, "c", 0).seqs(), iota(1, 6));
  log.publish("c", 1000);
  published = log.published("c");
  ASSERT_OK(published);
  EXPECT_EQ(*published, 8u) << "publication never passes the newest committed event";
  EXPECT_EQ(read(log, "c", 0).seqs(), iota(1, 8));
}

// Verifies after == UINT64_MAX answers the bounds only (a stream starting now), whatever
// the log holds, and never gone.
TEST_F(ChangeLogTest, ReadFromMaxReturnsBoundsOnly) {
  change_log log(shard(), {});
  auto empty = read(log, "c", max64);
  EXPECT_TRUE(empty.ok());
  EXPECT_THAT(empty.b.events, IsEmpty());
  EXPECT_EQ(empty.b.first, 1u);
  EXPECT_EQ(empty.b.last, 0u);

  write_range(log, "c", 1, 4);
  write_range(log, "c", 5, 5, false);
  auto a = read(log, "c", max64);
  EXPECT_TRUE(a.ok());
  EXPECT_THAT(a.b.events, IsEmpty());
  EXPECT_EQ(a.b.first, 1u);
  EXPECT_EQ(a.b.last, 4u);
}

// Verifies a read after a seq past the newest published one is gone (a resume point the
// log never handed out, e.g. from before a data loss).
TEST_F(ChangeLogTest, ReadPastNewestIsGone) {
  change_log log(shard(), {});
  EXPECT_TRUE(read(log, "c", 1).gone());
  write_range(log, "c", 1, 3);
  auto a = read(log, "c", 4);
  EXPECT_TRUE(a.gone());
  EXPECT_THAT(a.b.events, IsEmpty());
  EXPECT_EQ(bounds(log, "c"), std::make_pair(std::uint64_t{1}, std::uint64_t{3}))
    << "a gone read changes no bound";
}

// Verifies count retention: with max_events 3 each append past the bound deletes the
// oldest event in its own batch, and reads of trimmed events are gone.
TEST_F(ChangeLogTest, CountRetentionTrimsOldestAndReportsGone) {
  change_log log(shard(), retention{3, 0});
  write_range(log, "c", 1, 3);
  EXPECT_EQ(stored_seqs("c"), iota(1, 3));
  auto p4 = write(log, "c", nth_event(4));
  EXPECT_EQ(p4.trimmed_to, 1u);
  auto p5 = write(log, "c", nth_event(5));
  EXPECT_EQ(p5.trimmed_to, 2u);
  EXPECT_EQ(stored_seqs("c"), iota(3, 5));

  auto a = read(log, "c", 2);
  EXPECT_TRUE(a.ok()) << "after 2, events 3.. are all kept";
  EXPECT_EQ(a.seqs(), iota(3, 5));
  EXPECT_EQ(a.b.first, 3u);
  EXPECT_EQ(a.b.last, 5u);
  for (std::uint64_t after : {0, 1}) {
    auto g = read(log, "c", after);
    EXPECT_TRUE(g.gone()) << "after " << after;
    EXPECT_THAT(g.b.events, IsEmpty());
    EXPECT_EQ(bounds(log, "c").first, 3u);
  }
  EXPECT_TRUE(read(log, "c", max64).ok());
}

// Verifies the oldest event's deletion travels in the new event's batch: before the
// batch is written the oldest is still stored; after, it is gone with the new one there.
TEST_F(ChangeLogTest, TrimIsInTheSameBatch) {
  change_log log(shard(), retention{3, 0});
  write_range(log, "c", 1, 3);
  storage::write_batch batch;
  batch.put("d-the-document", "v");
  auto appended = log.append(batch, "c", nth_event(4));
  ASSERT_OK(appended);
  const auto& p = *appended;
  ASSERT_EQ(p.seq, 4u);
  ASSERT_EQ(p.trimmed_to, 1u);
  bool deletes_oldest = false, puts_new = false;
  for (const auto& op : batch.ops()) {
    if (op.kind == storage::write_batch::op_kind::del && op.key == change_log::key("c", 1))
      deletes_oldest = true;
    if (op.kind == storage::write_batch::op_kind::put && op.key == change_log::key("c", 4))
      puts_new = true;
  }
  EXPECT_TRUE(deletes_oldest);
  EXPECT_TRUE(puts_new);
  EXPECT_EQ(stored_seqs("c"), iota(1, 3)) << "nothing is written before the batch";
  ASSERT_OK(shard().write(batch, false));
  log.commit(p);
  EXPECT_EQ(stored_seqs("c"), iota(2, 4));
}

// Verifies max_events 0 is taken as 1: the newest event is always kept.
TEST_F(ChangeLogTest, RetentionOfZeroKeepsTheNewest) {
  change_log log(shard(), retention{0, 0});
  write_range(log, "c", 1, 4);
  EXPECT_EQ(stored_seqs("c"), iota(4, 4));
  EXPECT_EQ(read(log, "c", 3).seqs(), iota(4, 4));
  EXPECT_TRUE(read(log, "c", 2).gone());
}

// Verifies a new change_log over the same store (a restart) recovers each collection's
// bounds from the keys: it reads what is stored, continues the sequence, and keeps
// enforcing retention from the recovered first seq.
TEST_F(ChangeLogTest, BoundsRecoveredAfterRestart) {
  {
    change_log log(shard(), retention{5, 0});
    write_range(log, "a", 1, 8);
    write_range(log, "b", 1, 2);
  }
  change_log log(shard(), retention{5, 0});
  auto published = log.published("a");
  ASSERT_OK(published);
  EXPECT_EQ(*published, 8u);
  auto a = read(log, "a", 3);
  EXPECT_TRUE(a.ok());
  EXPECT_EQ(a.seqs(), iota(4, 8));
  EXPECT_EQ(a.b.first, 4u);
  EXPECT_EQ(a.b.last, 8u);
  EXPECT_TRUE(read(log, "a", 2).gone());

  auto p = write(log, "a", nth_event(9));
  EXPECT_EQ(p.seq, 9u);
  EXPECT_EQ(p.trimmed_to, 4u);
  EXPECT_EQ(stored_seqs("a"), iota(5, 9));
  EXPECT_EQ(write(log, "b", nth_event(3)).seq, 3u);
  EXPECT_EQ(read(log, "b", 0).seqs(), iota(1, 3));
}

// Verifies a restart over a store with events never published (committed, then the
// process ended before the fsync) publishes them: they are in the store.
TEST_F(ChangeLogTest, RestartPublishesWhatIsStored) {
  {
    change_log log(shard(), {});
    write_range(log, "a", 1, 2);
    write_range(log, "a", 3, 4, false);
  }
  change_log log(shard(), {});
  EXPECT_EQ(read(log, "a", 0).seqs(), iota(1, 4));
}

// Verifies an append whose batch is never written (the write failed) advances nothing:
// not the sequence, not the bounds, not the store; the next append reuses the seq.
TEST_F(ChangeLogTest, UncommittedAppendAdvancesNothing) {
  change_log log(shard(), retention{3, 0});
  write_range(log, "c", 1, 3);
  {
    storage::write_batch dropped;
    auto p = log.append(dropped, "c", nth_event(4));
    ASSERT_OK(p);
    EXPECT_EQ(p->seq, 4u);
    EXPECT_EQ(p->trimmed_to, 1u);
  } // never written, never committed
  auto a = read(log, "c", 0);
  EXPECT_TRUE(a.ok());
  EXPECT_EQ(a.seqs(), iota(1, 3));
  EXPECT_EQ(a.b.first, 1u);
  EXPECT_EQ(a.b.last, 3u);
  log.publish("c", 4);
  EXPECT_EQ(read(log, "c", 0).b.last, 3u) << "an uncommitted seq cannot be published";
  EXPECT_TRUE(read(log, "c", 4).gone());
  EXPECT_EQ(stored_seqs("c"), iota(1, 3));

  auto p = write(log, "c", nth_event(4));
  EXPECT_EQ(p.seq, 4u);
  EXPECT_EQ(p.trimmed_to, 1u);
  EXPECT_EQ(read(log, "c", 1).seqs(), iota(2, 4));
}

// Verifies the first-ever append of a collection, uncommitted, leaves it empty.
TEST_F(ChangeLogTest, UncommittedFirstAppendLeavesCollectionEmpty) {
  change_log log(shard(), {});
  storage::write_batch dropped;
  auto p = log.append(dropped, "c", nth_event(1));
  ASSERT_OK(p);
  EXPECT_EQ(p->seq, 1u);
  auto a = read(log, "c", 0);
  EXPECT_TRUE(a.ok());
  EXPECT_EQ(a.b.first, 1u);
  EXPECT_EQ(a.b.last, 0u);
  EXPECT_EQ(write(log, "c", nth_event(1)).seq, 1u);
  EXPECT_EQ(read(log, "c", 0).seqs(), iota(1, 1));
}

// Verifies an age trim deletes the events older than now - max_age, keeps the rest, and
// moves the first bound so older resume points are gone; its plan deletes nothing and
// moves no bound until the caller writes it and reports it trimmed.
TEST_F(ChangeLogTest, TrimByAgeDeletesOldEvents) {
  change_log log(shard(), retention{100, 3500});
  write_range(log, "c", 1, 10); // event n at time 1000 n
  {
    auto plan = log.plan_trim(10'000, 100); // cutoff 6500: events 1..6 go
    ASSERT_OK(plan);
    ASSERT_TRUE(*plan);
    EXPECT_EQ((*plan)->upto, (std::vector<std::pair<std::string, std::uint64_t>>{{"c", 6}}));
    EXPECT_EQ(stored_seqs("c"), iota(1, 10)) << "a plan is not written";
    EXPECT_EQ(bounds(log, "c").first, 1u) << "a plan moves no bound";
    EXPECT_EQ(read(log, "c", 0).seqs(), iota(1, 10));
  } // dropped: the next plan is the same
  auto t = trim(log, 10'000, 100);
  EXPECT_TRUE(t.planned);
  EXPECT_EQ(t.deleted, 6u);
  EXPECT_EQ(stored_seqs("c"), iota(7, 10));
  auto a = read(log, "c", 6);
  EXPECT_TRUE(a.ok());
  EXPECT_EQ(a.seqs(), iota(7, 10));
  EXPECT_EQ(a.b.first, 7u);
  EXPECT_TRUE(read(log, "c", 5).gone());
  // Nothing more is old enough.
  t = trim(log, 10'000, 100);
  EXPECT_FALSE(t.planned);
  EXPECT_EQ(t.deleted, 0u);
  EXPECT_EQ(stored_seqs("c"), iota(7, 10));
}

// Verifies an event exactly at the cutoff is kept (only strictly older ones go).
TEST_F(ChangeLogTest, TrimByAgeKeepsEventAtCutoff) {
  change_log log(shard(), retention{100, 1000});
  write_range(log, "c", 1, 5);
  auto t = trim(log, 4000, 100); // cutoff 3000
  EXPECT_EQ(t.deleted, 2u);
  EXPECT_EQ(stored_seqs("c"), iota(3, 5));
}

// Verifies an age trim never deletes a collection's newest event, however old, so the
// sequence survives a restart.
TEST_F(ChangeLogTest, TrimByAgeKeepsTheNewest) {
  {
    change_log log(shard(), retention{100, 10});
    write_range(log, "c", 1, 5);
    EXPECT_EQ(trim(log, 1'000'000, 100).deleted, 4u);
    EXPECT_EQ(stored_seqs("c"), iota(5, 5));
    auto again = trim(log, 1'000'000, 100);
    EXPECT_FALSE(again.planned);
    EXPECT_EQ(again.deleted, 0u);
    EXPECT_EQ(read(log, "c", 4).seqs(), iota(5, 5));
    EXPECT_TRUE(read(log, "c", 3).gone());
  }
  change_log log(shard(), retention{100, 10});
  EXPECT_EQ(write(log, "c", nth_event(6)).seq, 6u);
}

// Verifies an age trim plans at most `max_deletes` deletions, oldest first, over all
// collections together, and later plans continue.
TEST_F(ChangeLogTest, TrimByAgeIsBounded) {
  change_log log(shard(), retention{100, 10});
  write_range(log, "a", 1, 6);
  write_range(log, "b", 1, 6);
  auto t = trim(log, 1'000'000, 3);
  EXPECT_EQ(t.deleted, 3u);
  EXPECT_EQ(stored_seqs("a").size() + stored_seqs("b").size(), 9u);
  std::size_t total = t.deleted;
  for (int i = 0; i < 10 && t.deleted > 0; ++i) {
    t = trim(log, 1'000'000, 3);
    EXPECT_LE(t.deleted, 3u);
    total += t.deleted;
  }
  EXPECT_EQ(total, 10u);
  EXPECT_EQ(stored_seqs("a"), iota(6, 6));
  EXPECT_EQ(stored_seqs("b"), iota(6, 6));
  EXPECT_EQ(read(log, "a", 5).seqs(), iota(6, 6));
  EXPECT_TRUE(read(log, "b", 4).gone());
}

// Verifies an age trim plans nothing without an age limit, or before the clock passes it.
TEST_F(ChangeLogTest, TrimByAgeWithoutLimitDoesNothing) {
  change_log no_age(shard(), retention{100, 0});
  write_range(no_age, "c", 1, 3);
  auto none = no_age.plan_trim(1'000'000'000, 100);
  ASSERT_OK(none);
  EXPECT_FALSE(*none);
  change_log young(shard(), retention{100, 1'000'000});
  ASSERT_OK(young.published("c")); // loaded: only the clock keeps its events
  auto early = young.plan_trim(5, 100);
  ASSERT_OK(early);
  EXPECT_FALSE(*early);
  EXPECT_EQ(stored_seqs("c"), iota(1, 3));
  // The same log a little later trims (so the answers above are the clock's doing).
  auto later = young.plan_trim(1'000'000 + 2500, 100);
  ASSERT_OK(later);
  EXPECT_TRUE(*later);
}

// Verifies an append that the count bound trims after an age trim moved `first` keeps
// the bounds right (the pending trim is older than the new first).
TEST_F(ChangeLogTest, CountTrimAfterAgeTrimKeepsBounds) {
  change_log log(shard(), retention{3, 10});
  write_range(log, "c", 1, 3);
  storage::write_batch batch;
  auto appended = log.append(batch, "c", nth_event(4));
  ASSERT_OK(appended);
  const auto& p = *appended;
  ASSERT_EQ(p.trimmed_to, 1u);
  ASSERT_EQ(trim(log, 1'000'000, 100).deleted, 2u); // deletes 1 and 2
  ASSERT_OK(shard().write(batch, false));
  log.commit(p);
  log.publish("c", p.seq);
  auto a = read(log, "c", 2);
  EXPECT_TRUE(a.ok());
  EXPECT_EQ(a.seqs(), iota(3, 4));
  EXPECT_EQ(a.b.first, 3u);
  EXPECT_EQ(stored_seqs("c"), iota(3, 4));
}

// Verifies a corrupt stored event makes the read fail with corruption (not a crash, not
// a silent gap).
TEST_F(ChangeLogTest, CorruptEventFailsTheRead) {
  change_log log(shard(), {});
  write_range(log, "c", 1, 3);
  storage::write_batch batch;
  batch.put(change_log::key("c", 2), "\x7fgarbage");
  ASSERT_OK(shard().write(batch, false));
  auto r = log.read("c", 0, 10);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), core::errc::corrupt) << r.error().to_string();
}

// Verifies storage failures are returned: a closed store fails append and read.
TEST_F(ChangeLogTest, ClosedStoreFails) {
  change_log log(shard(), {});
  ASSERT_OK(store_.close());
  storage::write_batch batch;
  EXPECT_EQ(code_of(log.append(batch, "c", nth_event(1))), core::errc::shutting_down);
  EXPECT_TRUE(batch.empty());
  EXPECT_EQ(code_of(log.read("c", 0, 10)), core::errc::shutting_down);
  EXPECT_EQ(code_of(log.published("c")), core::errc::shutting_down);
}

// Verifies a read stops after about max_batch_bytes of documents (always returning at
// least one event), however high its limit: a batch stays small with large documents.
TEST_F(ChangeLogTest, ReadIsBoundedInBytes) {
  change_log log{shard(), retention{}};
  const std::string big = "\"" + std::string(change_log::max_batch_bytes / 2, 'x') + "\"";
  for (std::uint64_t n = 1; n <= 5; ++n) {
    auto e = nth_event(1);
    e.kind = event_kind::put;
    e.doc = R"({"big":)" + big + "}";
    write(log, "big", e);
  }
  auto first = read(log, "big", 0, 1000);
  EXPECT_EQ(first.seqs(), iota(1, 2)); // the second passes the bound: the read stops
  EXPECT_EQ(read(log, "big", 2, 1000).seqs(), iota(3, 4));
  EXPECT_EQ(read(log, "big", 4, 1000).seqs(), iota(5, 5));
  // One event larger than the bound alone still comes back.
  auto e = nth_event(6);
  e.kind = event_kind::put;
  e.doc = R"({"huge":")" + std::string(change_log::max_batch_bytes * 2, 'y') + "\"}";
  write(log, "big", e);
  EXPECT_EQ(read(log, "big", 5, 1000).seqs(), iota(6, 6));
}

} // namespace
} // namespace shoal::changes
