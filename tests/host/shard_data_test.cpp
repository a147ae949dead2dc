// SPDX-License-Identifier: Apache-2.0
// How the shard host wires its modules (issue 12), driven through its typed messages on
// CAF's deterministic scheduler: each request reaches the module that serves it, the
// documents module tells its observers (the change feed, the indexes) of every write,
// module settings and metrics reach the modules, timers fire on the actor clock, and the
// host's shutdown answers parked reads. With storage.sync a fake WAL syncer completes
// the fsync when the test says. The modules' own behaviour is tested on a manual loop in
// tests/documents, tests/changes, tests/cache and tests/query.
#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <caf/actor_cast.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_response_promise.hpp>
#include <gtest/gtest.h>

#include "actors/messages.hpp"
#include "cache/metrics.hpp"
#include "changes/metrics.hpp"
#include "documents/documents.hpp"
#include "documents/metrics.hpp"
#include "host/shard_host.hpp"
#include "query/metrics.hpp"
#include "query/query.hpp"
#include "query/shard_index.hpp"
#include "storage/memory_store.hpp"
#include "tests/support/results.hpp"
#include "tests/support/doc_requests.hpp"
#include "tests/support/faulty_store.hpp"
#include "tests/support/host_fixture.hpp"

namespace shoal::testing {
namespace {

using namespace std::chrono_literals;
using documents::doc_get;
using documents::doc_write;
using docs::put;
using docs::patch;
using docs::del;
using docs::get;

constexpr auto forever = std::numeric_limits<std::uint64_t>::max();


/// The stable name of `r`'s error ("" when it has none); a test failure for a value.
template <class T>
std::string name_of(const core::result<T>& r) {
  EXPECT_FALSE(r.ok()) << "expected an error";
  return r.ok() ? std::string{} : r.error().name();
}

/// What the fake WAL syncer saw.
struct fake_syncer_log {
  std::uint64_t requests = 0; ///< wal_sync requests received
  std::uint64_t released = 0; ///< requests answered
};

/// The fake syncer's held requests.
struct fake_syncer_state {
  std::vector<caf::typed_response_promise<std::uint64_t>> held;
  static inline const char* name = "test.fake_syncer";
};

/// A WAL syncer whose fsync completes only when told: `(wal_sync_atom, seq)` is held;
/// a bare `wal_sync_atom` syncs the store and answers every held request with the
/// store's latest sequence.
caf::behavior fake_syncer(caf::stateful_actor<fake_syncer_state>* self, storage::store* store,
                          std::shared_ptr<fake_syncer_log> log) {
  return {
    [=](host::wal_sync_atom, std::uint64_t) -> caf::typed_response_promise<std::uint64_t> {
      ++log->requests;
      auto rp = self->make_response_promise<std::uint64_t>();
      self->state.held.push_back(rp);
      return rp;
    },
    [=](host::wal_sync_atom) {
      (void)store->sync_wal();
      const auto durable = store->latest_sequence();
      auto held = std::move(self->state.held);
      self->state.held.clear();
      for (auto& rp : held)
        rp.deliver(durable);
      log->released += held.size();
    },
  };
}

/// A changes read of `collection` after sequence `after`.
changes::changes_read changes_after(std::string collection, std::uint64_t after,
                                    std::uint32_t limit = 100, std::uint32_t wait_ms = 0) {
  return changes::changes_read{std::move(collection), after, limit, wait_ms};
}

/// The parsed form of a client query body (which must be valid), as the edge sends it.
query::query_spec shard_query(std::string_view client_json) {
  auto parsed = query::parse_query(boost::json::parse(client_json), query::query_limits{});
  if (!parsed) {
    ADD_FAILURE() << "test query refused: " << parsed.error().to_string();
    return {};
  }
  return *parsed;
}

/// A query of `collection` with `spec`.
query::query_run query_req(std::string collection, query::query_spec spec) {
  return query::query_run{std::move(collection), std::move(spec)};
}

/// The events of a changes answer; an empty batch (and a failure) when it is an error.
changes::batch batch_of(const core::result<changes::batch>& r) {
  EXPECT_TRUE(r.ok()) << r.error().to_string();
  return r.ok() ? *r : changes::batch{};
}

/// The sequence numbers of a batch's events, in order.
std::vector<std::uint64_t> seqs_of(const changes::batch& b) {
  std::vector<std::uint64_t> out;
  for (const auto& e : b.events)
    out.push_back(e.seq);
  return out;
}

/// The ids of a query answer's hits, in order.
std::vector<std::string> hit_ids(const core::result<query::shard_hits>& r) {
  EXPECT_TRUE(r.ok()) << r.error().to_string();
  std::vector<std::string> ids;
  if (r.ok())
    for (const auto& hit : r->hits)
      ids.push_back(hit.id);
  return ids;
}

/// A reply_to that records, in a log shared with others, the name of each answer as it
/// arrives (the order in which the shard answered), and the answer.
template <class T>
core::reply_to<T> ordered(std::shared_ptr<std::vector<std::string>> log, std::string name,
                          std::shared_ptr<capture<T>> c) {
  return core::reply_to<T>::to([log, name, c](core::result<T>&& r) {
    log->push_back(name);
    ++c->deliveries;
    c->last = std::move(r);
  });
}

/// Shard hosts over a store of the test's choice, on the deterministic scheduler, with
/// this fixture's module metrics and a fake WAL syncer for storage.sync.
class ShardDataTest : public host_fixture {
protected:
  ~ShardDataTest() override {
    // The hosts write to the metrics when they stop: stop them while those live.
    for (auto& s : shards)
      caf::anon_send_exit(s, caf::exit_reason::user_shutdown);
    if (fake) caf::anon_send_exit(fake, caf::exit_reason::user_shutdown);
    run();
  }

  /// Spawns the host of shard 0 over `over` with the module settings of `c` (its
  /// metrics are this fixture's).
  protocol::shard_actor spawn_data(storage::store& over, host::host_config c, bool sync = false) {
    c.index = 0;
    c.store = &over;
    c.sync = sync;
    if (sync) c.syncer = fake_syncer_handle(over);
    c.documents.metrics = &doc_metrics;
    c.changes.metrics = &change_metrics;
    c.cache.metrics = &cache_metrics;
    c.query.metrics = &query_metrics;
    auto s = host::spawn_shard_host(sys, std::move(c));
    shards.push_back(s);
    return s;
  }

  /// Spawns shard 0 over the fault-injecting store with a read cache of `cache_bytes`.
  protocol::shard_actor spawn_cached(std::size_t cache_bytes = 1u << 20) {
    host::host_config c;
    c.documents.cache_bytes = cache_bytes;
    return spawn_data(faulty, c);
  }

  /// The fake syncer (spawned on first use) as the host sees it.
  host::wal_syncer_actor fake_syncer_handle(storage::store& over) {
    if (!fake) fake = sys.spawn(fake_syncer, &over, sync_log);
    return caf::actor_cast<host::wal_syncer_actor>(fake);
  }

  /// Completes the fsync every held sync request waits for.
  void complete_fsync() {
    caf::anon_send(fake, host::wal_sync_atom::value);
    run();
  }

  /// Stops `s` and lets it finish.
  void stop(const protocol::shard_actor& s) {
    caf::anon_send_exit(s, caf::exit_reason::user_shutdown);
    run();
  }

  /// Writes a document straight into the store, past any host.
  void store_directly(const std::string& collection, const std::string& id, std::uint64_t version,
                      const std::string& json) {
    storage::write_batch b;
    b.put(documents::key(collection, id), documents::encode(version, json));
    ASSERT_TRUE(store.shard(0).write(b, false).ok());
  }

  storage::memory_store store{1};
  faulty_store faulty{store};
  documents::metrics doc_metrics;
  changes::metrics change_metrics;
  cache::metrics cache_metrics;
  query::metrics query_metrics;
  std::shared_ptr<fake_syncer_log> sync_log = std::make_shared<fake_syncer_log>();
  caf::actor fake;
  std::vector<protocol::shard_actor> shards;
};

// -- dispatch ----------------------------------------------------------------------

// Verifies the host hands a request of every module to the module that serves it, each
// answered once through its reply_to.
TEST_F(ShardDataTest, EachRequestReachesItsModule) {
  auto shard = spawn_data(store, {});
  auto written = call(shard, put("users", "1", R"({"a":1})"));
  ASSERT_TRUE(written.ok()) << written.error().to_string();
  EXPECT_TRUE(written->created);
  EXPECT_EQ(call(shard, get("users", "1"))->json, R"({"a":1})");
  auto stats = call(shard, documents::collection_stats{"users", "a"});
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->count, 1u);
  auto index = call(shard, query::index_create{"users", "a"});
  ASSERT_TRUE(index.ok()) << index.error().to_string();
  EXPECT_TRUE(index->created);
  EXPECT_EQ(call(shard, query::index_list{"users"})->indexes.size(), 1u);
  EXPECT_EQ(hit_ids(call(shard, query_req("users", shard_query(R"({"where":{"a":1}})")))),
            (std::vector<std::string>{"1"}));
  auto plan = call(shard, query::query_explain{"users", shard_query(R"({"where":{"a":1}})")});
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->index, "a");
  EXPECT_EQ(seqs_of(batch_of(call(shard, changes_after("users", 0)))),
            (std::vector<std::uint64_t>{1}));
  EXPECT_TRUE(call(shard, cache::cache_put{"k", "v", "text/plain", 60000}).ok());
  EXPECT_EQ(call(shard, cache::cache_get{"k"})->value, "v");
  EXPECT_TRUE(call(shard, cache::cache_delete{"k"})->found);
  jobs::job_enqueue job;
  job.queue = "q";
  job.type = "t";
  job.payload = "{}";
  auto enqueued = call(shard, job);
  ASSERT_TRUE(enqueued.ok()) << enqueued.error().to_string();
  EXPECT_EQ(call(shard, jobs::job_get{enqueued->id})->id, enqueued->id);
  EXPECT_EQ(call(shard, jobs::queue_stats{"q"})->queued, 1u);
  // No actor types are registered on this host.
  auto actor = call(shard, actors::actor_call{"counter", "c", "get", "{}", 0});
  EXPECT_EQ(code_of(actor), core::errc::not_found);
  EXPECT_EQ(name_of(actor), "unknown_actor_type");
}

// -- the documents module's settings, with the change feed -------------------------

// Verifies that a failed write (put, patch, delete) leaves the cached version in place:
// reads, from the cache and from the store, return the old document, and the failed
// writes consumed neither versions nor change-feed sequence numbers.
TEST_F(ShardDataTest, ReadCacheKeepsOldVersionWhenTheWriteFails) {
  auto shard = spawn_cached();
  ASSERT_TRUE(call(shard, put("users", "1", R"({"a":1})")).ok());
  EXPECT_EQ(call(shard, get("users", "1"))->version, 1u);
  faulty.fail_writes = true;
  EXPECT_EQ(code_of(call(shard, put("users", "1", R"({"a":2})"))), core::errc::storage_failed);
  EXPECT_EQ(code_of(call(shard, patch("users", "1", R"({"a":3})"))), core::errc::storage_failed);
  EXPECT_EQ(code_of(call(shard, del("users", "1"))), core::errc::storage_failed);
  EXPECT_EQ(code_of(call(shard, put("users", "new", "{}"))), core::errc::storage_failed);
  faulty.fail_writes = false;

  faulty.fail_reads = true; // the cache answers
  auto cached = call(shard, get("users", "1"));
  ASSERT_TRUE(cached.ok()) << cached.error().to_string();
  EXPECT_EQ(cached->version, 1u);
  EXPECT_EQ(cached->json, R"({"a":1})");
  EXPECT_EQ(code_of(call(shard, get("users", "new"))), core::errc::storage_failed);
  faulty.fail_reads = false;
  EXPECT_EQ(code_of(call(shard, get("users", "new"))), core::errc::not_found);
  // The host handed the documents module its metrics: one hit (the cached read).
  EXPECT_EQ(doc_metrics.cache_hits.value(), 1u);
  EXPECT_EQ(doc_metrics.cache_misses.value(), 3u);

  auto next = call(shard, put("users", "1", R"({"a":4})"));
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->version, 2u);
  auto b = batch_of(call(shard, changes_after("users", 0)));
  EXPECT_EQ(seqs_of(b), (std::vector<std::uint64_t>{1, 2}));
  ASSERT_EQ(b.events.size(), 2u);
  EXPECT_EQ(b.events[1].doc, R"({"a":4})");
}

// -- change feed --------------------------------------------------------------------

// Verifies one event per committed write (put, patch, delete) numbered 1..n per
// collection, with the document (none on delete), and reads by position and limit.
TEST_F(ShardDataTest, ChangeFeedRecordsEveryWriteInOrder) {
  auto shard = spawn_data(store, {});
  ASSERT_TRUE(call(shard, put("users", "a", R"({"n":1})")).ok());
  ASSERT_TRUE(call(shard, patch("users", "a", R"({"m":2})")).ok());
  ASSERT_TRUE(call(shard, put("users", "b", R"({"n":3})")).ok());
  ASSERT_TRUE(call(shard, del("users", "a")).ok());
  ASSERT_TRUE(call(shard, put("other", "x", "{}")).ok());
  EXPECT_EQ(code_of(call(shard, get("users", "a"))), core::errc::not_found); // reads: no event
  EXPECT_EQ(change_metrics.events.value(), 5u);

  auto b = batch_of(call(shard, changes_after("users", 0)));
  EXPECT_EQ(b.first, 1u);
  EXPECT_EQ(b.last, 4u); // the newest sequence
  ASSERT_EQ(seqs_of(b), (std::vector<std::uint64_t>{1, 2, 3, 4}));
  EXPECT_EQ(b.events[0].kind, changes::event_kind::put);
  EXPECT_EQ(b.events[0].id, "a");
  EXPECT_EQ(b.events[0].version, 1u);
  EXPECT_EQ(b.events[0].doc, R"({"n":1})");
  EXPECT_EQ(b.events[1].kind, changes::event_kind::put);
  EXPECT_EQ(b.events[1].version, 2u);
  EXPECT_EQ(b.events[1].doc, R"({"n":1,"m":2})");
  EXPECT_EQ(b.events[2].id, "b");
  EXPECT_EQ(b.events[3].kind, changes::event_kind::del);
  EXPECT_EQ(b.events[3].id, "a");
  EXPECT_EQ(b.events[3].version, 3u);
  EXPECT_TRUE(b.events[3].doc.empty());
  EXPECT_GT(b.events[3].time_ms, 0u);

  EXPECT_EQ(seqs_of(batch_of(call(shard, changes_after("users", 1, 2)))),
            (std::vector<std::uint64_t>{2, 3}));
  EXPECT_TRUE(batch_of(call(shard, changes_after("users", 4))).events.empty());
  EXPECT_EQ(seqs_of(batch_of(call(shard, changes_after("other", 0)))),
            (std::vector<std::uint64_t>{1}));
  // Past the newest: a resume point this shard never handed out.
  EXPECT_EQ(code_of(call(shard, changes_after("users", 5))), core::errc::gone);
  // A collection without writes: empty, bounds 1..0.
  auto none = batch_of(call(shard, changes_after("nobody", 0)));
  EXPECT_TRUE(none.events.empty());
  EXPECT_EQ(none.last, 0u);
}

// Verifies a read with nothing new parks (not answered by the clock before its deadline,
// nor by writes to other collections) and is answered by the next write to its collection.
TEST_F(ShardDataTest, ChangeFeedParkedReadIsAnsweredByTheNextWrite) {
  auto shard = spawn_data(store, {});
  ASSERT_TRUE(call(shard, put("users", "a", "{}")).ok());
  auto parked = send(shard, changes_after("users", 1, 100, 60000));
  run();
  EXPECT_EQ(parked->deliveries, 0);
  EXPECT_EQ(change_metrics.waiters.value(), 1);
  advance(59s); // its deadline is a minute away
  EXPECT_EQ(parked->deliveries, 0);
  ASSERT_TRUE(call(shard, put("other", "x", "{}")).ok());
  EXPECT_TRUE(call(shard, get("users", "a")).ok());
  EXPECT_EQ(parked->deliveries, 0);
  ASSERT_TRUE(call(shard, put("users", "b", R"({"k":1})")).ok());
  ASSERT_EQ(parked->deliveries, 1);
  auto b = batch_of(*parked->last);
  ASSERT_EQ(seqs_of(b), (std::vector<std::uint64_t>{2}));
  EXPECT_EQ(b.events[0].id, "b");
  EXPECT_EQ(b.events[0].doc, R"({"k":1})");
  EXPECT_EQ(change_metrics.waiters.value(), 0);
  // Answered once: later writes, and its old deadline, do not deliver again.
  ASSERT_TRUE(call(shard, put("users", "c", "{}")).ok());
  advance(2s);
  EXPECT_EQ(parked->deliveries, 1);
}

// Verifies a parked read with no write is answered, empty, once its wait ran out on the
// actor clock.
TEST_F(ShardDataTest, ChangeFeedParkedReadTimesOutEmpty) {
  auto shard = spawn_data(store, {});
  ASSERT_TRUE(call(shard, put("users", "a", "{}")).ok());
  auto parked = send(shard, changes_after("users", 1, 100, 1));
  run();
  EXPECT_EQ(parked->deliveries, 0);
  advance(1ms);
  ASSERT_EQ(parked->deliveries, 1);
  auto b = batch_of(*parked->last);
  EXPECT_TRUE(b.events.empty());
  EXPECT_EQ(b.last, 1u);
  EXPECT_EQ(change_metrics.waiters.value(), 0);
}

// Verifies a parked read is answered when its wait runs out, also when the change log's
// age trim (a 1 s timer, pending whenever changes.retention_s is on, as by default) was
// scheduled before the read parked: the host arms the earlier timer too.
TEST_F(ShardDataTest, ChangeFeedParkedReadIsAnsweredSoonAfterItsWait) {
  host::host_config c;
  c.changes.keep.max_age_ms = 86'400'000; // the default changes.retention_s
  auto shard = spawn_data(store, c);
  auto parked = send(shard, changes_after("users", 0, 100, 50));
  run();
  EXPECT_EQ(parked->deliveries, 0);
  advance(49ms);
  EXPECT_EQ(parked->deliveries, 0) << "a 50 ms wait was answered before 50 ms";
  // 150 ms of actor-clock time in all: past the 50 ms wait, far from the 1 s trim.
  advance(101ms);
  EXPECT_EQ(parked->deliveries, 1) << "a 50 ms wait was not answered within 150 ms";
}

// Verifies a parked read is told the shard stopped, and the waiters gauge returns to 0.
TEST_F(ShardDataTest, ChangeFeedParkedReadIsAnsweredWhenTheShardStops) {
  auto shard = spawn_data(store, {});
  auto parked = send(shard, changes_after("users", 0, 100, 60000));
  run();
  EXPECT_EQ(parked->deliveries, 0);
  EXPECT_EQ(change_metrics.waiters.value(), 1);
  stop(shard);
  ASSERT_EQ(parked->deliveries, 1);
  EXPECT_EQ(parked->error().code(), core::errc::shutting_down);
  EXPECT_EQ(change_metrics.waiters.value(), 0);
}

// Verifies changes.enabled=false: writes store no change-log event (no 'c' key) and a
// changes read is not_found.
TEST_F(ShardDataTest, ChangeFeedTurnedOffWritesNoEvents) {
  host::host_config c;
  c.changes.enabled = false;
  auto shard = spawn_data(store, c);
  for (int i = 1; i <= 3; ++i) {
    auto w = call(shard, put("users", "u" + std::to_string(i), "{}"));
    ASSERT_TRUE(w.ok());
    EXPECT_TRUE(w->created);
  }
  EXPECT_EQ(code_of(call(shard, changes_after("users", 0))), core::errc::not_found);
  std::size_t events = 0;
  ASSERT_TRUE(store.shard(0)
                .scan_prefix("c",
                             [&](std::string_view, std::string_view) {
                               ++events;
                               return true;
                             })
                .ok());
  EXPECT_EQ(events, 0u);
  EXPECT_EQ(change_metrics.events.value(), 0u);
}

// Verifies that a shard whose index definitions cannot be loaded refuses document writes
// (which would skip their index entries and leave the index wrong once it loads again),
// still serves reads, and refuses index operations.
TEST_F(ShardDataTest, UnloadableIndexDefinitionsRefuseWritesButServeReads) {
  store_directly("users", "1", 1, R"({"a":1})");
  storage::write_batch b;
  b.put(std::string("iusers") + '\0' + "a", "not json");
  ASSERT_TRUE(store.shard(0).write(b, false).ok());
  auto shard = spawn_data(store, {});
  auto w = call(shard, put("users", "2", R"({"a":2})"));
  EXPECT_EQ(code_of(w), core::errc::storage_failed);
  if (!w.ok()) {
    EXPECT_NE(w.error().message().find("indexes"), std::string::npos) << w.error().message();
  }
  EXPECT_EQ(code_of(call(shard, get("users", "2"))), core::errc::not_found);
  EXPECT_TRUE(call(shard, get("users", "1")).ok());
  EXPECT_EQ(code_of(call(shard, query::index_list{"users"})), core::errc::storage_failed);
  EXPECT_EQ(code_of(call(shard, query::index_create{"users", "b"})), core::errc::storage_failed);
}

// Verifies age-based retention on the change log's timer, on the actor clock: old events
// are trimmed, never the newest.
TEST_F(ShardDataTest, ChangeFeedTrimsByAgeOnTheTick) {
  host::host_config c;
  c.changes.keep.max_age_ms = 1;
  auto shard = spawn_data(store, c);
  for (int i = 1; i <= 3; ++i)
    ASSERT_TRUE(call(shard, put("users", "u" + std::to_string(i), "{}")).ok());
  EXPECT_EQ(seqs_of(batch_of(call(shard, changes_after("users", 0)))),
            (std::vector<std::uint64_t>{1, 2, 3}));
  advance(1s); // the trim timer
  EXPECT_EQ(code_of(call(shard, changes_after("users", 0))), core::errc::gone);
  auto b = batch_of(call(shard, changes_after("users", 2)));
  EXPECT_EQ(b.first, 3u);
  EXPECT_EQ(seqs_of(b), (std::vector<std::uint64_t>{3}));
}

// Verifies that with storage.sync an event is not readable before the fsync covering its
// write; once it completes, the event is readable, the parked read is woken, and both
// happen before the write is acknowledged.
TEST_F(ShardDataTest, ChangeFeedWithSyncPublishesAfterTheFsync) {
  auto shard = spawn_data(store, {}, true);
  auto order = std::make_shared<std::vector<std::string>>();
  auto parked = std::make_shared<capture<changes::batch>>();
  caf::anon_send(shard, changes_after("users", 0, 100, 60000), ordered(order, "parked", parked));
  auto write = std::make_shared<capture<documents::doc_written>>();
  caf::anon_send(shard, put("users", "a", R"({"x":1})"), ordered(order, "write", write));
  run();
  EXPECT_EQ(sync_log->requests, 1u);
  EXPECT_EQ(write->deliveries, 0);
  EXPECT_EQ(parked->deliveries, 0);
  auto before = batch_of(call(shard, changes_after("users", 0)));
  EXPECT_TRUE(before.events.empty());
  EXPECT_EQ(before.last, 0u);
  EXPECT_EQ(batch_of(call(shard, changes_after("users", forever))).last, 0u);
  advance(1s); // the clock does not publish either
  EXPECT_EQ(parked->deliveries, 0);

  complete_fsync();
  ASSERT_EQ(parked->deliveries, 1);
  ASSERT_EQ(write->deliveries, 1);
  EXPECT_TRUE(write->value().created);
  EXPECT_EQ(*order, (std::vector<std::string>{"parked", "write"}));
  auto woken = batch_of(*parked->last);
  ASSERT_EQ(seqs_of(woken), (std::vector<std::uint64_t>{1}));
  EXPECT_EQ(woken.events[0].doc, R"({"x":1})");
  EXPECT_EQ(seqs_of(batch_of(call(shard, changes_after("users", 0)))),
            (std::vector<std::uint64_t>{1}));
}

// -- indexes and queries -------------------------------------------------------------

class ShardIndexTest : public ShardDataTest {
protected:
  /// Five people (p5 without an age) in "people" through `shard`.
  void add_people(const protocol::shard_actor& shard) {
    ASSERT_TRUE(call(shard, put("people", "p1", R"({"age":35,"status":"active"})")).ok());
    ASSERT_TRUE(call(shard, put("people", "p2", R"({"age":30,"status":"idle"})")).ok());
    ASSERT_TRUE(call(shard, put("people", "p3", R"({"age":41,"status":"active"})")).ok());
    ASSERT_TRUE(call(shard, put("people", "p4", R"({"age":30,"status":"active"})")).ok());
    ASSERT_TRUE(call(shard, put("people", "p5", R"({"name":"no age"})")).ok());
  }
};

// Verifies index_create creates (then finds) an index, which becomes ready after the
// build steps the shard sends itself, and that a query needs it unless it allows a scan.
TEST_F(ShardIndexTest, IndexIsBuiltAndAnswersQueriesInOrder) {
  auto shard = spawn_data(store, {});
  add_people(shard);
  const auto range = shard_query(R"({"where":{"age":{"$gte":30,"$lt":40}},"order_by":"age"})");
  auto refused = call(shard, query_req("people", range));
  EXPECT_EQ(code_of(refused), core::errc::invalid_argument);
  EXPECT_EQ(name_of(refused), "index_required");

  auto created = call(shard, query::index_create{"people", "age"});
  ASSERT_TRUE(created.ok()) << created.error().to_string();
  EXPECT_TRUE(created->created);
  EXPECT_EQ(created->progress.field, "age");
  auto again = call(shard, query::index_create{"people", "age"});
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->created);
  auto p = call(shard, query::index_get{"people", "age"});
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->ready);
  EXPECT_EQ(p->indexed, 5u);
  EXPECT_EQ(p->total, 5u);
  EXPECT_GE(query_metrics.index_build_docs.value(), 5u);

  auto answer = call(shard, query_req("people", range));
  EXPECT_EQ(hit_ids(answer), (std::vector<std::string>{"p2", "p4", "p1"}));
  ASSERT_TRUE(answer.ok());
  EXPECT_FALSE(answer->more);
  ASSERT_EQ(answer->hits.size(), 3u);
  EXPECT_EQ(answer->hits[2].doc, R"({"age":35,"status":"active"})");
  EXPECT_EQ(answer->hits[2].version, 1u);
  // Other conditions filter what the index finds; descending order.
  EXPECT_EQ(hit_ids(call(shard, query_req("people", shard_query(R"({"where":{"status":"active",
    "age":{"$gte":30}},"order_by":"age","desc":true})")))),
            (std::vector<std::string>{"p3", "p1", "p4"}));
  // The same answer from a full scan.
  EXPECT_EQ(hit_ids(call(shard, query_req("people", shard_query(R"({"where":{"age":{"$gte":30,
    "$lt":40}},"order_by":"age","allow_scan":true})")))),
            (std::vector<std::string>{"p2", "p4", "p1"}));
  // No index fits status alone.
  auto status_only =
    call(shard, query_req("people", shard_query(R"({"where":{"status":"idle"}})")));
  EXPECT_EQ(code_of(status_only), core::errc::invalid_argument);
  EXPECT_EQ(name_of(status_only), "index_required");
}

// Verifies paging on one shard: a limit sets `more`, and resuming after the last sort key
// continues without duplicates or gaps.
TEST_F(ShardIndexTest, QueryPagesResumeAfterTheLastSortKey) {
  auto shard = spawn_data(store, {});
  add_people(shard);
  ASSERT_TRUE(call(shard, query::index_create{"people", "age"}).ok());
  auto spec = shard_query(R"({"where":{"age":{"$gte":0}},"order_by":"age","limit":2})");
  auto page1 = call(shard, query_req("people", spec));
  ASSERT_TRUE(page1.ok()) << page1.error().to_string();
  ASSERT_EQ(page1->hits.size(), 2u);
  EXPECT_TRUE(page1->more);
  EXPECT_EQ(page1->hits[0].id, "p2");
  EXPECT_EQ(page1->hits[1].id, "p4");
  spec.after = page1->hits.back().sort_key;
  auto page2 = call(shard, query_req("people", spec));
  ASSERT_TRUE(page2.ok()) << page2.error().to_string();
  ASSERT_EQ(page2->hits.size(), 2u);
  EXPECT_FALSE(page2->more);
  EXPECT_EQ(page2->hits[0].id, "p1");
  EXPECT_EQ(page2->hits[1].id, "p3");
}

// Verifies progress while the build runs in bounded steps interleaved with requests, and
// that writes during the build (create, patch, delete) leave the index agreeing with a
// full scan; a query meanwhile needs a scan, the index not being ready.
TEST_F(ShardIndexTest, BuildProgressesInStepsAndWritesDuringItAreIndexed) {
  host::host_config c;
  c.query.build_batch = 2;
  auto shard = spawn_data(store, c);
  for (int i = 0; i < 10; ++i)
    ASSERT_TRUE(call(shard, put("people", "p" + std::to_string(i),
                                "{\"age\":" + std::to_string(20 + i) + "}"))
                  .ok());
  // Runs the shard one message at a time until `pending` is answered: build steps the shard
  // sent itself run in turn with the requests.
  auto answer = [&](const auto& pending) {
    for (int i = 0; i < 10 && pending->deliveries == 0; ++i) {
      ASSERT_TRUE(sched.prioritize(shard));
      sched.run_once();
    }
    ASSERT_EQ(pending->deliveries, 1);
  };
  auto created = send(shard, query::index_create{"people", "age"});
  answer(created);
  ASSERT_TRUE(created->value().created);
  auto p0 = created->value().progress;
  EXPECT_FALSE(p0.ready);
  EXPECT_EQ(p0.indexed, 0u);

  const auto all_by_age = R"({"where":{"age":{"$gte":0}},"order_by":"age"})";
  std::vector<query::index_progress> seen;
  bool wrote = false;
  for (int round = 0; round < 50; ++round) {
    auto g = send(shard, query::index_get{"people", "age"});
    answer(g);
    seen.push_back(g->value());
    if (seen.back().ready) break;
    if (!wrote && seen.back().indexed > 0) {
      wrote = true;
      auto q = send(shard, query_req("people", shard_query(all_by_age)));
      answer(q);
      EXPECT_EQ(q->error().code(), core::errc::invalid_argument);
      EXPECT_EQ(q->error().name(), "index_required");
      for (auto req :
           {put("people", "p10", R"({"age":25})"), patch("people", "p0", R"({"age":99})"),
            del("people", "p9"), put("people", "p3", R"({"age":"text"})")}) {
        auto w = send(shard, std::move(req));
        answer(w);
        EXPECT_TRUE(w->last && w->last->ok()) << w->error().to_string();
      }
    }
  }
  ASSERT_FALSE(seen.empty());
  ASSERT_TRUE(seen.back().ready);
  EXPECT_TRUE(wrote);
  bool partway = false;
  for (std::size_t i = 0; i < seen.size(); ++i) {
    if (i > 0) {
      EXPECT_GE(seen[i].indexed, seen[i - 1].indexed);
    }
    partway = partway || (!seen[i].ready && seen[i].indexed > 0 && seen[i].indexed < seen[i].total);
  }
  EXPECT_TRUE(partway) << "no progress report between 0 and total";
  EXPECT_GE(query_metrics.index_build_docs.value(), 10u);

  const std::vector<std::string> expected{"p1", "p2", "p4", "p10", "p5", "p6", "p7", "p8", "p0"};
  EXPECT_EQ(hit_ids(call(shard, query_req("people", shard_query(all_by_age)))), expected);
  EXPECT_EQ(hit_ids(call(shard, query_req("people", shard_query(R"({"where":{"age":{"$gte":0}},
    "order_by":"age","allow_scan":true})")))),
            expected);
  EXPECT_EQ(hit_ids(call(shard, query_req("people", shard_query(R"({"where":{"age":"text"}})")))),
            (std::vector<std::string>{"p3"}));
}

// Verifies writes after the build keep a ready index current (created, changed and
// deleted documents), and the query of a collection without documents answers empty.
TEST_F(ShardIndexTest, WritesMaintainAReadyIndex) {
  auto shard = spawn_data(store, {});
  add_people(shard);
  ASSERT_TRUE(call(shard, query::index_create{"people", "status"}).ok());
  const auto active = shard_query(R"({"where":{"status":"active"}})");
  EXPECT_EQ(hit_ids(call(shard, query_req("people", active))),
            (std::vector<std::string>{"p1", "p3", "p4"}));
  ASSERT_TRUE(call(shard, put("people", "p6", R"({"status":"active"})")).ok());
  ASSERT_TRUE(call(shard, patch("people", "p1", R"({"status":"gone"})")).ok());
  ASSERT_TRUE(call(shard, del("people", "p4")).ok());
  EXPECT_EQ(hit_ids(call(shard, query_req("people", active))),
            (std::vector<std::string>{"p3", "p6"}));
  EXPECT_EQ(hit_ids(call(shard, query_req("people", shard_query(R"({"where":{"status":{"$in":
    ["gone","idle"]}}})")))),
            (std::vector<std::string>{"p1", "p2"}));
  EXPECT_TRUE(hit_ids(call(shard, query_req("nobody", active))).empty());
}

// Verifies index_list, index_drop (not found afterwards, and a query needs a scan again),
// and the refusals: an invalid field path, a dropped or unknown index, a malformed query.
TEST_F(ShardIndexTest, ListDropAndErrors) {
  auto shard = spawn_data(store, {});
  add_people(shard);
  auto empty = call(shard, query::index_list{"people"});
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->indexes.empty());
  EXPECT_TRUE(call(shard, query::index_create{"people", "status"})->created);
  EXPECT_TRUE(call(shard, query::index_create{"people", "meta.score"})->created);
  auto list = call(shard, query::index_list{"people"});
  ASSERT_TRUE(list.ok());
  const auto& indexes = list->indexes;
  ASSERT_EQ(indexes.size(), 2u);
  EXPECT_EQ(indexes[0].field, "meta.score");
  EXPECT_EQ(indexes[1].field, "status");
  EXPECT_TRUE(indexes[1].ready);
  EXPECT_EQ(indexes[1].total, 5u);
  EXPECT_TRUE(call(shard, query::index_list{"other"})->indexes.empty());

  for (const char* bad : {"", "a..b", ".a", "has space", "a.", "x/y"}) {
    auto r = call(shard, query::index_create{"people", bad});
    EXPECT_EQ(code_of(r), core::errc::invalid_argument) << bad;
    EXPECT_EQ(name_of(r), "invalid_field") << bad;
  }

  const auto active = shard_query(R"({"where":{"status":"active"}})");
  EXPECT_EQ(hit_ids(call(shard, query_req("people", active))).size(), 3u);
  EXPECT_TRUE(call(shard, query::index_drop{"people", "status"}).ok());
  EXPECT_EQ(code_of(call(shard, query::index_get{"people", "status"})), core::errc::not_found);
  EXPECT_EQ(code_of(call(shard, query::index_drop{"people", "status"})), core::errc::not_found);
  auto refused = call(shard, query_req("people", active));
  EXPECT_EQ(code_of(refused), core::errc::invalid_argument);
  EXPECT_EQ(name_of(refused), "index_required");
  // The entries went with the definition.
  bool any_entry = false;
  ASSERT_TRUE(store.shard(0)
                .scan_prefix(query::index_entry_prefix("people", "status"),
                             [&](std::string_view, std::string_view) {
                               any_entry = true;
                               return false;
                             })
                .ok());
  EXPECT_FALSE(any_entry);
  auto remaining = call(shard, query::index_list{"people"});
  ASSERT_TRUE(remaining.ok());
  EXPECT_EQ(remaining->indexes.size(), 1u);

  // A query reaches a shard parsed (query_run carries a query_spec); a malformed shard
  // form is refused where it is parsed, when a remote shard's message is read.
  auto malformed = query::parse_shard_json("not json", query::query_limits{});
  ASSERT_FALSE(malformed.ok());
  EXPECT_FALSE(malformed.error().message().empty());
}

// Verifies index definitions survive a shard restart (they are stored), and that with
// storage.sync the answer of index_create waits for the fsync.
TEST_F(ShardIndexTest, IndexDefinitionIsDurable) {
  auto shard = spawn_data(store, {}, true);
  auto written = send(shard, put("people", "p1", R"({"age":1})")); // held for the fsync
  auto created = send(shard, query::index_create{"people", "age"});
  run();
  EXPECT_EQ(written->deliveries, 0);
  EXPECT_EQ(created->deliveries, 0);
  complete_fsync();
  EXPECT_EQ(written->deliveries, 1);
  ASSERT_EQ(created->deliveries, 1);
  EXPECT_TRUE(created->value().created);
  stop(shard);
  auto again = spawn_data(store, {});
  auto p = call(again, query::index_get{"people", "age"});
  ASSERT_TRUE(p.ok()) << p.error().to_string();
  EXPECT_TRUE(p->ready);
  EXPECT_EQ(hit_ids(call(again, query_req("people", shard_query(R"({"where":{"age":1}})")))),
            (std::vector<std::string>{"p1"}));
}

// Verifies that with storage.sync a query does not see a document whose write still
// waits for its fsync (as a get of it waits), so nobody observes a write a crash could
// take back.
TEST_F(ShardIndexTest, QueryWithSyncDoesNotSeeUnsyncedWrites) {
  auto shard = spawn_data(store, {}, true);
  auto w = send(shard, put("people", "p1", R"({"age":1})"));
  auto q = send(shard, query_req("people", shard_query(R"({"where":{},"allow_scan":true})")));
  run();
  EXPECT_EQ(w->deliveries, 0);
  if (q->deliveries == 1) {
    EXPECT_TRUE(hit_ids(*q->last).empty()) << "the query saw p1 before its fsync";
  }
  complete_fsync();
  EXPECT_EQ(w->deliveries, 1);
  EXPECT_EQ(q->deliveries, 1);
  EXPECT_EQ(
    hit_ids(call(shard, query_req("people", shard_query(R"({"where":{},"allow_scan":true})")))),
    (std::vector<std::string>{"p1"}));
}

// -- TTL cache -----------------------------------------------------------------------

// Verifies put/get/del with the content type, and that the gauges follow the entries and
// return to 0 after the delete.
TEST_F(ShardDataTest, TtlCachePutGetDelete) {
  auto shard = spawn_data(store, {});
  EXPECT_TRUE(call(shard, cache::cache_put{"s1", "hello", "application/x-test", 60000}).ok());
  EXPECT_EQ(cache_metrics.entries.value(), 1);
  EXPECT_GT(cache_metrics.bytes.value(), 0);
  auto g = call(shard, cache::cache_get{"s1"});
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->value, "hello");
  EXPECT_EQ(g->content_type, "application/x-test");
  EXPECT_EQ(cache_metrics.hits.value(), 1u);
  EXPECT_TRUE(call(shard, cache::cache_put{"s1", "replaced", "text/plain", 60000}).ok());
  EXPECT_EQ(call(shard, cache::cache_get{"s1"})->value, "replaced");
  EXPECT_EQ(cache_metrics.entries.value(), 1);
  EXPECT_EQ(code_of(call(shard, cache::cache_get{"s2"})), core::errc::not_found);
  EXPECT_EQ(cache_metrics.misses.value(), 1u);
  auto deleted = call(shard, cache::cache_delete{"s1"});
  ASSERT_TRUE(deleted.ok());
  EXPECT_TRUE(deleted->found);
  EXPECT_EQ(code_of(call(shard, cache::cache_get{"s1"})), core::errc::not_found);
  auto again = call(shard, cache::cache_delete{"s1"});
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->found);
  EXPECT_EQ(cache_metrics.entries.value(), 0);
  EXPECT_EQ(cache_metrics.bytes.value(), 0);
}

// Verifies an entry expires after its ttl on the actor clock: a get misses, and the
// cache's timer removes expired entries nobody asks for (the gauges return to 0); a
// long-lived one stays.
TEST_F(ShardDataTest, TtlCacheEntriesExpire) {
  auto shard = spawn_data(store, {});
  EXPECT_TRUE(call(shard, cache::cache_put{"short", "a", "text/plain", 1}).ok());
  EXPECT_TRUE(call(shard, cache::cache_put{"asked", "b", "text/plain", 1}).ok());
  EXPECT_TRUE(call(shard, cache::cache_put{"long", "c", "text/plain", 600000}).ok());
  EXPECT_EQ(cache_metrics.entries.value(), 3);
  advance(10ms);
  EXPECT_EQ(code_of(call(shard, cache::cache_get{"asked"})), core::errc::not_found);
  EXPECT_EQ(cache_metrics.entries.value(), 2);
  advance(1s); // the expiry timer
  EXPECT_EQ(cache_metrics.entries.value(), 1);
  EXPECT_EQ(code_of(call(shard, cache::cache_get{"short"})), core::errc::not_found);
  EXPECT_EQ(call(shard, cache::cache_get{"long"})->value, "c");
  EXPECT_TRUE(call(shard, cache::cache_delete{"long"})->found);
  EXPECT_EQ(cache_metrics.entries.value(), 0);
  EXPECT_EQ(cache_metrics.bytes.value(), 0);
}

// Verifies the host's shutdown takes the TTL cache's entries out of the gauges.
TEST_F(ShardDataTest, TtlCacheGaugesReturnToZeroWhenTheShardStops) {
  auto shard = spawn_data(store, {});
  EXPECT_TRUE(call(shard, cache::cache_put{"a", "1", "text/plain", 60000}).ok());
  EXPECT_TRUE(call(shard, cache::cache_put{"b", "2", "text/plain", 60000}).ok());
  EXPECT_EQ(cache_metrics.entries.value(), 2);
  stop(shard);
  EXPECT_EQ(cache_metrics.entries.value(), 0);
  EXPECT_EQ(cache_metrics.bytes.value(), 0);
}

} // namespace
} // namespace shoal::testing
