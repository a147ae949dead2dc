// SPDX-License-Identifier: Apache-2.0
// The data features of the shard actor (issue 6), driven through its messages on CAF's
// deterministic scheduler: the document read cache (write-through, served without the
// store, untouched by failed writes, disabled at 0 bytes), the change feed (events,
// bounds, parked reads, retention, publication after the fsync with storage.sync),
// secondary indexes and queries, and the TTL cache.
#include <chrono>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_response_promise.hpp>
#include <gtest/gtest.h>

#include "actors/doc_cache.hpp"
#include "actors/documents.hpp"
#include "actors/shard_actor.hpp"
#include "actors/shard_metrics.hpp"
#include "actors/type_ids.hpp"
#include "changes/events.hpp"
#include "query/query.hpp"
#include "query/shard_index.hpp"
#include "storage/memory_store.hpp"
#include "tests/actors/faulty_store.hpp"
#include "tests/actors/shard_fixture.hpp"

namespace shoal::testing {
namespace {

using actors::doc_op;
using actors::doc_status;

constexpr auto forever = std::numeric_limits<std::uint64_t>::max();

/// Document requests, as the edge builds them.
actors::doc_request put(std::string collection, std::string id, std::string body) {
  actors::doc_request r;
  r.op = doc_op::put;
  r.collection = std::move(collection);
  r.id = std::move(id);
  r.body = std::move(body);
  return r;
}

actors::doc_request get(std::string collection, std::string id) {
  actors::doc_request r;
  r.op = doc_op::get;
  r.collection = std::move(collection);
  r.id = std::move(id);
  return r;
}

actors::doc_request patch(std::string collection, std::string id, std::string body) {
  auto r = put(std::move(collection), std::move(id), std::move(body));
  r.op = doc_op::patch;
  return r;
}

actors::doc_request del(std::string collection, std::string id) {
  auto r = get(std::move(collection), std::move(id));
  r.op = doc_op::del;
  return r;
}

actors::precondition versions(std::vector<std::uint64_t> v) {
  return actors::precondition{actors::precondition::kind::versions, std::move(v)};
}

/// Records the cache reply a shard delivers to the edge.
class cache_capture final : public actors::cache_sink {
public:
  void deliver(actors::cache_reply&& reply) override {
    ++deliveries;
    last = std::move(reply);
  }
  int deliveries = 0;
  std::optional<actors::cache_reply> last;
};

/// A doc reply sink that also notes, in a log shared with other sinks, when it was
/// answered: the order in which the shard delivered replies.
class ordered_sink final : public actors::reply_sink {
public:
  ordered_sink(std::shared_ptr<std::vector<std::string>> log, std::string name)
      : log_(std::move(log)), name_(std::move(name)) {}
  void deliver(actors::doc_reply&& reply) override {
    log_->push_back(name_);
    ++deliveries;
    last = std::move(reply);
  }
  int deliveries = 0;
  std::optional<actors::doc_reply> last;

private:
  std::shared_ptr<std::vector<std::string>> log_;
  std::string name_;
};

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
    [=](actors::wal_sync_atom, std::uint64_t) -> caf::typed_response_promise<std::uint64_t> {
      ++log->requests;
      auto rp = self->make_response_promise<std::uint64_t>();
      self->state.held.push_back(rp);
      return rp;
    },
    [=](actors::wal_sync_atom) {
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
actors::doc_request changes_after(std::string collection, std::uint64_t after,
                                  std::uint32_t limit = 100, std::uint32_t wait_ms = 0) {
  actors::doc_request r;
  r.op = doc_op::changes;
  r.collection = std::move(collection);
  r.after = after;
  r.limit = limit;
  r.wait_ms = wait_ms;
  return r;
}

/// An index operation on the field path `field` of `collection`.
actors::doc_request index_op(doc_op op, std::string collection, std::string field = {}) {
  actors::doc_request r;
  r.op = op;
  r.collection = std::move(collection);
  r.id = std::move(field);
  return r;
}

/// The normalized shard form of a client query body (which must be valid).
std::string shard_query(std::string_view client_json) {
  auto parsed = query::parse_query(boost::json::parse(client_json), query::query_limits{});
  if (auto* e = std::get_if<query::query_error>(&parsed)) {
    ADD_FAILURE() << "test query refused: " << e->message;
    return {};
  }
  return query::to_shard_json(std::get<query::query_spec>(parsed));
}

/// A query of `collection` with the shard form `shard_json`.
actors::doc_request query_req(std::string collection, std::string shard_json) {
  actors::doc_request r;
  r.op = doc_op::query;
  r.collection = std::move(collection);
  r.body = std::move(shard_json);
  return r;
}

/// The events of a changes reply; an empty batch (and a failure) when it is not one.
changes::batch batch_of(const actors::doc_reply& r) {
  EXPECT_EQ(r.status, doc_status::ok) << r.message;
  auto b = changes::decode_batch(r.body);
  EXPECT_TRUE(b.has_value()) << "not a change batch";
  return b.value_or(changes::batch{});
}

/// The sequence numbers of a batch's events, in order.
std::vector<std::uint64_t> seqs_of(const changes::batch& b) {
  std::vector<std::uint64_t> out;
  for (const auto& e : b.events)
    out.push_back(e.seq);
  return out;
}

/// The ids of a query reply's hits, in order.
std::vector<std::string> hit_ids(const actors::doc_reply& r) {
  EXPECT_EQ(r.status, doc_status::ok) << r.code << ": " << r.message;
  auto h = query::decode_hits(r.body);
  EXPECT_TRUE(h.has_value()) << "not shard hits";
  std::vector<std::string> ids;
  if (h)
    for (const auto& hit : h->hits)
      ids.push_back(hit.id);
  return ids;
}

/// The index progress in a reply's body.
query::index_progress progress_of(const actors::doc_reply& r) {
  auto p = query::index_progress::from_json(r.body);
  EXPECT_TRUE(p.has_value()) << "not index progress: " << r.body;
  return p.value_or(query::index_progress{});
}

/// Shard actors with data features over a store of the test's choice, on the
/// deterministic scheduler, with a fake WAL syncer for storage.sync.
class ShardDataTest : public ::testing::Test {
protected:
  deterministic_config cfg;
  caf::actor_system sys{cfg};
  caf::scheduler::test_coordinator& sched =
    dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler());

  void run() {
    sched.run();
  }

  /// Sends `req` to `shard` with a fresh sink (delivery happens on `run()`).
  std::shared_ptr<capture_sink> send(const actors::shard_actor& shard, actors::doc_request req) {
    auto sink = std::make_shared<capture_sink>();
    caf::anon_send(shard, std::move(req), actors::reply_sink_ptr{sink});
    return sink;
  }

  /// Sends `req`, runs the scheduler until idle, and returns the reply.
  actors::doc_reply call(const actors::shard_actor& shard, actors::doc_request req) {
    auto sink = send(shard, std::move(req));
    run();
    EXPECT_EQ(sink->deliveries, 1);
    return sink->last.value_or(
      actors::doc_reply{actors::doc_status::unavailable, 0, {}, "no reply"});
  }

  ~ShardDataTest() override {
    // The shards write to `metrics` when they stop: stop them while it lives.
    for (auto& s : shards)
      caf::anon_send_exit(s, caf::exit_reason::user_shutdown);
    if (fake) caf::anon_send_exit(fake, caf::exit_reason::user_shutdown);
    run();
  }

  /// Spawns shard 0 over `over` with `data` (its metrics are this fixture's).
  actors::shard_actor spawn_data(storage::store& over, actors::data_hosting data,
                                 bool sync = false) {
    data.metrics = &metrics;
    actors::shard_config c;
    c.index = 0;
    c.store = &over;
    c.sync = sync;
    if (sync) c.syncer = fake_syncer_handle(over);
    c.data = data;
    auto s = actors::spawn_shard(sys, std::move(c));
    shards.push_back(s);
    return s;
  }

  /// Spawns shard 0 over the fault-injecting store with a read cache of `cache_bytes`.
  actors::shard_actor spawn_cached(std::size_t cache_bytes = 1u << 20) {
    actors::data_hosting d;
    d.doc_cache_bytes = cache_bytes;
    return spawn_data(faulty, d);
  }

  /// The fake syncer (spawned on first use) as the shard sees it.
  actors::wal_syncer_actor fake_syncer_handle(storage::store& over) {
    if (!fake) fake = sys.spawn(fake_syncer, &over, sync_log);
    return caf::actor_cast<actors::wal_syncer_actor>(fake);
  }

  /// Completes the fsync every held sync request waits for.
  void complete_fsync() {
    caf::anon_send(fake, actors::wal_sync_atom::value);
    run();
  }

  /// Stops `s` and lets it finish.
  void stop(const actors::shard_actor& s) {
    caf::anon_send_exit(s, caf::exit_reason::user_shutdown);
    run();
  }

  std::shared_ptr<cache_capture> send_cache(const actors::shard_actor& s,
                                            actors::cache_request req) {
    auto sink = std::make_shared<cache_capture>();
    caf::anon_send(s, std::move(req), actors::cache_sink_ptr{sink});
    return sink;
  }

  actors::cache_reply call_cache(const actors::shard_actor& s, actors::cache_request req) {
    auto sink = send_cache(s, std::move(req));
    run();
    EXPECT_EQ(sink->deliveries, 1);
    return sink->last.value_or(actors::cache_reply{actors::cache_status::unavailable, {}, {}, {}});
  }

  /// Fires the shard's due timers (its tick) and runs what they start.
  void tick() {
    sched.trigger_timeouts();
    run();
  }

  /// Writes a document straight into the store, past any shard actor.
  void store_directly(const std::string& collection, const std::string& id, std::uint64_t version,
                      const std::string& json) {
    storage::write_batch b;
    b.put(actors::documents::key(collection, id), actors::documents::encode(version, json));
    ASSERT_TRUE(store.shard(0).write(b, false).is_ok());
  }

  storage::memory_store store{1};
  faulty_store faulty{store};
  actors::shard_metrics metrics;
  std::shared_ptr<fake_syncer_log> sync_log = std::make_shared<fake_syncer_log>();
  caf::actor fake;
  std::vector<actors::shard_actor> shards;
};

/// TTL cache requests.
actors::cache_request cache_put(std::string key, std::string value, std::uint64_t ttl_ms,
                                std::string type = "text/plain") {
  actors::cache_request r;
  r.op = actors::cache_op::put;
  r.key = std::move(key);
  r.value = std::move(value);
  r.content_type = std::move(type);
  r.ttl_ms = ttl_ms;
  return r;
}

actors::cache_request cache_get(std::string key) {
  actors::cache_request r;
  r.op = actors::cache_op::get;
  r.key = std::move(key);
  return r;
}

actors::cache_request cache_del(std::string key) {
  auto r = cache_get(std::move(key));
  r.op = actors::cache_op::del;
  return r;
}

// -- document read cache ----------------------------------------------------------

// Verifies that with the read cache a get after each acknowledged write (put, patch,
// delete, re-create) sees that write, although every previous version was cached.
TEST_F(ShardDataTest, ReadCacheReadAfterWriteSeesEachWrite) {
  auto shard = spawn_cached();
  EXPECT_EQ(call(shard, put("users", "1", R"({"a":1})")).status, doc_status::created);
  auto g1 = call(shard, get("users", "1"));
  EXPECT_EQ(g1.version, 1u);
  EXPECT_EQ(g1.body, R"({"a":1})");
  EXPECT_EQ(call(shard, put("users", "1", R"({"a":2})")).version, 2u);
  auto g2 = call(shard, get("users", "1"));
  EXPECT_EQ(g2.version, 2u);
  EXPECT_EQ(g2.body, R"({"a":2})");
  EXPECT_EQ(call(shard, patch("users", "1", R"({"b":true})")).version, 3u);
  auto g3 = call(shard, get("users", "1"));
  EXPECT_EQ(g3.version, 3u);
  EXPECT_EQ(g3.body, R"({"a":2,"b":true})");
  EXPECT_EQ(call(shard, del("users", "1")).version, 4u);
  EXPECT_EQ(call(shard, get("users", "1")).status, doc_status::not_found);
  auto re = call(shard, put("users", "1", R"({"c":3})"));
  EXPECT_EQ(re.status, doc_status::created);
  EXPECT_EQ(re.version, 5u);
  auto g5 = call(shard, get("users", "1"));
  EXPECT_EQ(g5.status, doc_status::ok);
  EXPECT_EQ(g5.version, 5u);
  EXPECT_EQ(g5.body, R"({"c":3})");
  // An ETag of an old version no longer answers not_modified.
  auto inm = get("users", "1");
  inm.if_none_match = versions({4});
  EXPECT_EQ(call(shard, inm).status, doc_status::ok);
}

// Verifies a document read once from the store is served from the cache afterwards:
// with every store read failing, get and If-None-Match still answer, and the hit and miss
// counters move; an uncached document does reach the (failing) store.
TEST_F(ShardDataTest, ReadCacheServesRepeatedGetsWithoutTheStore) {
  store_directly("users", "1", 3, R"({"a":1})");
  auto shard = spawn_cached();
  auto first = call(shard, get("users", "1"));
  EXPECT_EQ(first.status, doc_status::ok);
  EXPECT_EQ(first.version, 3u);
  EXPECT_EQ(metrics.doc_cache_misses.value(), 1u);
  EXPECT_EQ(metrics.doc_cache_hits.value(), 0u);
  EXPECT_GT(metrics.doc_cache_bytes.value(), 0);

  faulty.fail_reads = true;
  auto second = call(shard, get("users", "1"));
  EXPECT_EQ(second.status, doc_status::ok) << second.message;
  EXPECT_EQ(second.version, 3u);
  EXPECT_EQ(second.body, R"({"a":1})");
  EXPECT_EQ(metrics.doc_cache_hits.value(), 1u);

  auto inm = get("users", "1");
  inm.if_none_match = versions({3});
  auto nm = call(shard, inm);
  EXPECT_EQ(nm.status, doc_status::not_modified);
  EXPECT_EQ(nm.version, 3u);
  EXPECT_TRUE(nm.body.empty());
  inm.if_none_match = versions({2});
  EXPECT_EQ(call(shard, inm).body, R"({"a":1})");
  EXPECT_EQ(metrics.doc_cache_hits.value(), 3u);

  // Not cached: the failing store is asked, and the failure is reported.
  EXPECT_EQ(call(shard, get("users", "2")).status, doc_status::storage_error);
  EXPECT_EQ(metrics.doc_cache_misses.value(), 2u);
  EXPECT_EQ(metrics.doc_cache_hits.value(), 3u);
}

// Verifies the fill policy: reads fill the cache and writes refresh what it holds (served
// and patched with store reads failing, a delete's tombstone included), while a document
// that was only written is not cached.
TEST_F(ShardDataTest, ReadCacheIsFilledByReadsAndRefreshedByWrites) {
  auto shard = spawn_cached();
  call(shard, put("users", "1", R"({"a":0})"));
  call(shard, put("users", "2", R"({"a":2})"));
  call(shard, put("users", "3", R"({"a":3})"));
  EXPECT_EQ(call(shard, get("users", "1")).status, doc_status::ok); // a miss: now cached
  EXPECT_EQ(call(shard, get("users", "2")).status, doc_status::ok); // a miss: now cached
  call(shard, put("users", "1", R"({"a":1})"));
  call(shard, del("users", "2"));
  faulty.fail_reads = true;
  auto g = call(shard, get("users", "1"));
  EXPECT_EQ(g.status, doc_status::ok) << g.message;
  EXPECT_EQ(g.body, R"({"a":1})");
  EXPECT_EQ(call(shard, get("users", "2")).status, doc_status::not_found);
  // Written, never read: not cached, so the failing store answers.
  EXPECT_EQ(call(shard, get("users", "3")).status, doc_status::storage_error);
  // A write reads the current version through the cache too.
  auto p = call(shard, patch("users", "1", R"({"b":2})"));
  EXPECT_EQ(p.status, doc_status::ok) << p.message;
  EXPECT_EQ(p.version, 3u);
  EXPECT_EQ(call(shard, get("users", "1")).body, R"({"a":1,"b":2})");
  EXPECT_EQ(metrics.doc_cache_misses.value(), 3u);
  EXPECT_EQ(metrics.doc_cache_hits.value(), 3u);
  // Only gets count: the writes' own lookups are neither hits nor misses.
  faulty.fail_reads = false;
  std::string raw;
  ASSERT_TRUE(store.shard(0).get(actors::documents::key("users", "1"), raw).is_ok());
  EXPECT_EQ(actors::documents::decode(raw)->version, 3u);
}

// Verifies that a failed write (put, patch, delete) leaves the cached version in place:
// reads, from the cache and from the store, return the old document, and the failed
// writes consumed neither versions nor change-feed sequence numbers.
TEST_F(ShardDataTest, ReadCacheKeepsOldVersionWhenTheWriteFails) {
  auto shard = spawn_cached();
  call(shard, put("users", "1", R"({"a":1})"));
  EXPECT_EQ(call(shard, get("users", "1")).version, 1u);
  faulty.fail_writes = true;
  EXPECT_EQ(call(shard, put("users", "1", R"({"a":2})")).status, doc_status::storage_error);
  EXPECT_EQ(call(shard, patch("users", "1", R"({"a":3})")).status, doc_status::storage_error);
  EXPECT_EQ(call(shard, del("users", "1")).status, doc_status::storage_error);
  EXPECT_EQ(call(shard, put("users", "new", "{}")).status, doc_status::storage_error);
  faulty.fail_writes = false;

  faulty.fail_reads = true; // the cache answers
  auto cached = call(shard, get("users", "1"));
  EXPECT_EQ(cached.status, doc_status::ok) << cached.message;
  EXPECT_EQ(cached.version, 1u);
  EXPECT_EQ(cached.body, R"({"a":1})");
  EXPECT_EQ(call(shard, get("users", "new")).status, doc_status::storage_error);
  faulty.fail_reads = false;
  EXPECT_EQ(call(shard, get("users", "new")).status, doc_status::not_found);

  auto next = call(shard, put("users", "1", R"({"a":4})"));
  EXPECT_EQ(next.version, 2u);
  auto b = batch_of(call(shard, changes_after("users", 0)));
  EXPECT_EQ(seqs_of(b), (std::vector<std::uint64_t>{1, 2}));
  ASSERT_EQ(b.events.size(), 2u);
  EXPECT_EQ(b.events[1].doc, R"({"a":4})");
}

// Verifies storage.doc_cache_bytes = 0 disables the cache: with store reads failing,
// every get fails, and nothing is counted as cached.
TEST_F(ShardDataTest, ReadCacheDisabledAtZeroBytes) {
  auto shard = spawn_cached(0);
  call(shard, put("users", "1", R"({"a":1})"));
  EXPECT_EQ(call(shard, get("users", "1")).status, doc_status::ok);
  faulty.fail_reads = true;
  EXPECT_EQ(call(shard, get("users", "1")).status, doc_status::storage_error);
  EXPECT_EQ(call(shard, get("users", "1")).status, doc_status::storage_error);
  EXPECT_EQ(metrics.doc_cache_hits.value(), 0u);
  EXPECT_EQ(metrics.doc_cache_bytes.value(), 0);
}

// Verifies the cache bound: the least recently used document is evicted, a document
// larger than the bound is not cached, and the bytes gauge stays within the bound and
// returns to 0 when the shard stops.
TEST_F(ShardDataTest, ReadCacheEvictsWithinItsBound) {
  const std::string json = R"({"v":"0123456789"})";
  const auto cost = actors::documents::key("users", "d1").size()
                    + actors::documents::encode(1, json).size() + actors::doc_cache::entry_overhead;
  const std::size_t bound = 2 * cost + cost / 2; // two documents fit, three do not
  auto shard = spawn_cached(bound);
  // Reads fill the cache: write all four, then read each once.
  for (const char* id : {"d1", "d2", "d3"})
    call(shard, put("users", id, json));
  call(shard, put("users", "big", "{\"v\":\"" + std::string(bound, 'x') + "\"}"));
  for (const char* id : {"d1", "d2", "d3", "big"})
    EXPECT_EQ(call(shard, get("users", id)).status, doc_status::ok) << id;
  EXPECT_LE(metrics.doc_cache_bytes.value(), static_cast<std::int64_t>(bound));
  EXPECT_GT(metrics.doc_cache_bytes.value(), 0);
  faulty.fail_reads = true;
  EXPECT_EQ(call(shard, get("users", "big")).status, doc_status::storage_error);
  EXPECT_EQ(call(shard, get("users", "d3")).status, doc_status::ok);
  EXPECT_EQ(call(shard, get("users", "d2")).status, doc_status::ok);
  EXPECT_EQ(call(shard, get("users", "d1")).status, doc_status::storage_error);
  stop(shard);
  EXPECT_EQ(metrics.doc_cache_bytes.value(), 0);
}

// Verifies the cache does not let a read overtake the fsync with storage.sync: a cached
// write is not served before it is durable.
TEST_F(ShardDataTest, ReadCacheWaitsForTheFsyncWithSync) {
  actors::data_hosting d;
  d.doc_cache_bytes = 1u << 20;
  auto shard = spawn_data(store, d, true);
  auto w = send(shard, put("users", "1", R"({"a":1})"));
  auto r = send(shard, get("users", "1"));
  run();
  EXPECT_EQ(sync_log->requests, 1u);
  EXPECT_EQ(w->deliveries, 0);
  EXPECT_EQ(r->deliveries, 0);
  complete_fsync();
  ASSERT_EQ(w->deliveries, 1);
  ASSERT_EQ(r->deliveries, 1);
  EXPECT_EQ(r->last->status, doc_status::ok);
  EXPECT_EQ(r->last->body, R"({"a":1})");
  // Durable now: served from the cache at once (the held read filled it).
  EXPECT_EQ(call(shard, get("users", "1")).version, 1u);
  EXPECT_EQ(metrics.doc_cache_hits.value(), 1u);
}

// -- change feed --------------------------------------------------------------------

// Verifies one event per committed write (put, patch, delete) numbered 1..n per
// collection, with the document (none on delete), and reads by position and limit.
TEST_F(ShardDataTest, ChangeFeedRecordsEveryWriteInOrder) {
  auto shard = spawn_data(store, {});
  call(shard, put("users", "a", R"({"n":1})"));
  call(shard, patch("users", "a", R"({"m":2})"));
  call(shard, put("users", "b", R"({"n":3})"));
  call(shard, del("users", "a"));
  call(shard, put("other", "x", "{}"));
  EXPECT_EQ(call(shard, get("users", "a")).status, doc_status::not_found); // reads: no event
  EXPECT_EQ(metrics.change_events.value(), 5u);

  auto reply = call(shard, changes_after("users", 0));
  EXPECT_EQ(reply.version, 4u); // the newest sequence
  auto b = batch_of(reply);
  EXPECT_EQ(b.first, 1u);
  EXPECT_EQ(b.last, 4u);
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
  EXPECT_EQ(call(shard, changes_after("users", 5)).status, doc_status::gone);
  // A collection without writes: empty, bounds 1..0.
  auto none = batch_of(call(shard, changes_after("nobody", 0)));
  EXPECT_TRUE(none.events.empty());
  EXPECT_EQ(none.last, 0u);
}

// Verifies after = UINT64_MAX ("from now") answers at once with the bounds only, even
// with a wait.
TEST_F(ShardDataTest, ChangeFeedFromNowReturnsBoundsOnly) {
  auto shard = spawn_data(store, {});
  for (int i = 0; i < 3; ++i)
    call(shard, put("users", "u" + std::to_string(i), "{}"));
  auto sink = send(shard, changes_after("users", forever, 100, 60000));
  run();
  ASSERT_EQ(sink->deliveries, 1);
  auto b = batch_of(*sink->last);
  EXPECT_TRUE(b.events.empty());
  EXPECT_EQ(b.first, 1u);
  EXPECT_EQ(b.last, 3u);
  EXPECT_EQ(sink->last->version, 3u);
  EXPECT_EQ(metrics.change_waiters.value(), 0);
}

// Verifies a read with nothing new parks (not answered by ticks before its deadline, nor
// by writes to other collections) and is answered by the next write to its collection.
TEST_F(ShardDataTest, ChangeFeedParkedReadIsAnsweredByTheNextWrite) {
  auto shard = spawn_data(store, {});
  call(shard, put("users", "a", "{}"));
  auto parked = send(shard, changes_after("users", 1, 100, 60000));
  run();
  EXPECT_EQ(parked->deliveries, 0);
  EXPECT_EQ(metrics.change_waiters.value(), 1);
  tick(); // its deadline is a minute away
  EXPECT_EQ(parked->deliveries, 0);
  call(shard, put("other", "x", "{}"));
  EXPECT_EQ(call(shard, get("users", "a")).status, doc_status::ok);
  EXPECT_EQ(parked->deliveries, 0);
  call(shard, put("users", "b", R"({"k":1})"));
  ASSERT_EQ(parked->deliveries, 1);
  auto b = batch_of(*parked->last);
  ASSERT_EQ(seqs_of(b), (std::vector<std::uint64_t>{2}));
  EXPECT_EQ(b.events[0].id, "b");
  EXPECT_EQ(b.events[0].doc, R"({"k":1})");
  EXPECT_EQ(metrics.change_waiters.value(), 0);
  // Answered once: later writes do not deliver again.
  call(shard, put("users", "c", "{}"));
  EXPECT_EQ(parked->deliveries, 1);
}

// Verifies a parked read with no write is answered, empty, once its wait ran out.
TEST_F(ShardDataTest, ChangeFeedParkedReadTimesOutEmpty) {
  auto shard = spawn_data(store, {});
  call(shard, put("users", "a", "{}"));
  auto parked = send(shard, changes_after("users", 1, 100, 1));
  run();
  EXPECT_EQ(parked->deliveries, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  tick();
  ASSERT_EQ(parked->deliveries, 1);
  auto b = batch_of(*parked->last);
  EXPECT_TRUE(b.events.empty());
  EXPECT_EQ(b.last, 1u);
  EXPECT_EQ(metrics.change_waiters.value(), 0);
}

// Verifies a parked read is answered soon after its wait runs out, also when the shard's
// idle tick (1 s, pending whenever the change log trims by age: changes.retention_s is on
// by default) was scheduled before the read parked.
TEST_F(ShardDataTest, ChangeFeedParkedReadIsAnsweredSoonAfterItsWait) {
  actors::data_hosting d;
  d.change_retention_ms = 86'400'000; // the default changes.retention_s
  auto shard = spawn_data(store, d);
  auto parked = send(shard, changes_after("users", 0, 100, 50));
  run();
  EXPECT_EQ(parked->deliveries, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
  // 150 ms of actor-clock time: past the 100 ms waiter tick, far from the 1 s idle tick.
  sched.advance_time(std::chrono::milliseconds(150));
  run();
  EXPECT_EQ(parked->deliveries, 1) << "a 50 ms wait was not answered within 150 ms";
}

// Verifies a parked read is told the shard stopped, and the waiters gauge returns to 0.
TEST_F(ShardDataTest, ChangeFeedParkedReadIsAnsweredWhenTheShardStops) {
  auto shard = spawn_data(store, {});
  auto parked = send(shard, changes_after("users", 0, 100, 60000));
  run();
  EXPECT_EQ(parked->deliveries, 0);
  EXPECT_EQ(metrics.change_waiters.value(), 1);
  stop(shard);
  ASSERT_EQ(parked->deliveries, 1);
  EXPECT_EQ(parked->last->status, doc_status::unavailable);
  EXPECT_EQ(metrics.change_waiters.value(), 0);
}

// Verifies count-based retention: a resume point whose next events were trimmed is gone,
// the oldest kept one resumes exactly.
TEST_F(ShardDataTest, ChangeFeedTrimmedResumePointIsGone) {
  actors::data_hosting d;
  d.change_retention = 3;
  auto shard = spawn_data(store, d);
  for (int i = 1; i <= 5; ++i)
    call(shard, put("users", "u" + std::to_string(i), "{}"));
  EXPECT_EQ(call(shard, changes_after("users", 0)).status, doc_status::gone);
  auto gone = call(shard, changes_after("users", 1, 100, 60000)); // never parks
  EXPECT_EQ(gone.status, doc_status::gone);
  EXPECT_FALSE(gone.message.empty());
  auto b = batch_of(call(shard, changes_after("users", 2)));
  EXPECT_EQ(b.first, 3u);
  EXPECT_EQ(seqs_of(b), (std::vector<std::uint64_t>{3, 4, 5}));
}

// Verifies changes.enabled=false: writes store no change-log event (no 'c' key) and a
// changes read is not_found.
TEST_F(ShardDataTest, ChangeFeedTurnedOffWritesNoEvents) {
  actors::data_hosting d;
  d.change_log = false;
  auto shard = spawn_data(store, d);
  for (int i = 1; i <= 3; ++i)
    EXPECT_EQ(call(shard, put("users", "u" + std::to_string(i), "{}")).status, doc_status::created);
  EXPECT_EQ(call(shard, changes_after("users", 0)).status, doc_status::not_found);
  std::size_t events = 0;
  ASSERT_TRUE(store.shard(0)
                .scan_prefix("c",
                             [&](std::string_view, std::string_view) {
                               ++events;
                               return true;
                             })
                .is_ok());
  EXPECT_EQ(events, 0u);
}

// Verifies that a shard whose index definitions cannot be loaded refuses document writes
// (which would skip their index entries and leave the index wrong once it loads again),
// still serves reads, and refuses index operations.
TEST_F(ShardDataTest, UnloadableIndexDefinitionsRefuseWritesButServeReads) {
  store_directly("users", "1", 1, R"({"a":1})");
  storage::write_batch b;
  b.put(std::string("iusers") + '\0' + "a", "not json");
  ASSERT_TRUE(store.shard(0).write(b, false).is_ok());
  auto shard = spawn_data(store, actors::data_hosting{});
  auto w = call(shard, put("users", "2", R"({"a":2})"));
  EXPECT_EQ(w.status, doc_status::storage_error);
  EXPECT_NE(w.message.find("indexes"), std::string::npos) << w.message;
  EXPECT_EQ(call(shard, get("users", "2")).status, doc_status::not_found);
  EXPECT_EQ(call(shard, get("users", "1")).status, doc_status::ok);
}

// Verifies age-based retention on the shard tick: old events are trimmed, never the
// newest.
TEST_F(ShardDataTest, ChangeFeedTrimsByAgeOnTheTick) {
  actors::data_hosting d;
  d.change_retention_ms = 1;
  auto shard = spawn_data(store, d);
  for (int i = 1; i <= 3; ++i)
    call(shard, put("users", "u" + std::to_string(i), "{}"));
  EXPECT_EQ(seqs_of(batch_of(call(shard, changes_after("users", 0)))),
            (std::vector<std::uint64_t>{1, 2, 3}));
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  tick();
  EXPECT_EQ(call(shard, changes_after("users", 0)).status, doc_status::gone);
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
  auto parked = std::make_shared<ordered_sink>(order, "parked");
  caf::anon_send(shard, changes_after("users", 0, 100, 60000), actors::reply_sink_ptr{parked});
  auto write = std::make_shared<ordered_sink>(order, "write");
  caf::anon_send(shard, put("users", "a", R"({"x":1})"), actors::reply_sink_ptr{write});
  run();
  EXPECT_EQ(sync_log->requests, 1u);
  EXPECT_EQ(write->deliveries, 0);
  EXPECT_EQ(parked->deliveries, 0);
  auto before = batch_of(call(shard, changes_after("users", 0)));
  EXPECT_TRUE(before.events.empty());
  EXPECT_EQ(before.last, 0u);
  EXPECT_EQ(call(shard, changes_after("users", forever)).version, 0u);
  tick(); // the tick does not publish either
  EXPECT_EQ(parked->deliveries, 0);

  complete_fsync();
  ASSERT_EQ(parked->deliveries, 1);
  ASSERT_EQ(write->deliveries, 1);
  EXPECT_EQ(write->last->status, doc_status::created);
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
  void add_people(const actors::shard_actor& shard) {
    call(shard, put("people", "p1", R"({"age":35,"status":"active"})"));
    call(shard, put("people", "p2", R"({"age":30,"status":"idle"})"));
    call(shard, put("people", "p3", R"({"age":41,"status":"active"})"));
    call(shard, put("people", "p4", R"({"age":30,"status":"active"})"));
    call(shard, put("people", "p5", R"({"name":"no age"})"));
  }
};

// Verifies index_put creates (then finds) an index, which becomes ready after the build
// steps the shard sends itself, and that a query needs it unless it allows a scan.
TEST_F(ShardIndexTest, IndexIsBuiltAndAnswersQueriesInOrder) {
  auto shard = spawn_data(store, {});
  add_people(shard);
  const auto range = shard_query(R"({"where":{"age":{"$gte":30,"$lt":40}},"order_by":"age"})");
  auto refused = call(shard, query_req("people", range));
  EXPECT_EQ(refused.status, doc_status::bad_request);
  EXPECT_EQ(refused.code, "index_required");

  auto created = call(shard, index_op(doc_op::index_put, "people", "age"));
  EXPECT_EQ(created.status, doc_status::created);
  EXPECT_EQ(progress_of(created).field, "age");
  auto again = call(shard, index_op(doc_op::index_put, "people", "age"));
  EXPECT_EQ(again.status, doc_status::ok);
  auto p = progress_of(call(shard, index_op(doc_op::index_get, "people", "age")));
  EXPECT_TRUE(p.ready);
  EXPECT_EQ(p.indexed, 5u);
  EXPECT_EQ(p.total, 5u);
  EXPECT_GE(metrics.index_build_docs.value(), 5u);

  auto answer = call(shard, query_req("people", range));
  EXPECT_EQ(hit_ids(answer), (std::vector<std::string>{"p2", "p4", "p1"}));
  auto hits = query::decode_hits(answer.body);
  ASSERT_TRUE(hits);
  EXPECT_FALSE(hits->more);
  EXPECT_EQ(hits->hits[2].doc, R"({"age":35,"status":"active"})");
  EXPECT_EQ(hits->hits[2].version, 1u);
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
  EXPECT_EQ(status_only.status, doc_status::bad_request);
  EXPECT_EQ(status_only.code, "index_required");
}

// Verifies paging on one shard: a limit sets `more`, and resuming after the last sort key
// continues without duplicates or gaps.
TEST_F(ShardIndexTest, QueryPagesResumeAfterTheLastSortKey) {
  auto shard = spawn_data(store, {});
  add_people(shard);
  call(shard, index_op(doc_op::index_put, "people", "age"));
  auto parsed = query::parse_query(
    boost::json::parse(R"({"where":{"age":{"$gte":0}},"order_by":"age","limit":2})"),
    query::query_limits{});
  auto spec = std::get<query::query_spec>(parsed);
  auto page1 =
    query::decode_hits(call(shard, query_req("people", query::to_shard_json(spec))).body);
  ASSERT_TRUE(page1);
  ASSERT_EQ(page1->hits.size(), 2u);
  EXPECT_TRUE(page1->more);
  EXPECT_EQ(page1->hits[0].id, "p2");
  EXPECT_EQ(page1->hits[1].id, "p4");
  spec.after = page1->hits.back().sort_key;
  auto page2 =
    query::decode_hits(call(shard, query_req("people", query::to_shard_json(spec))).body);
  ASSERT_TRUE(page2);
  ASSERT_EQ(page2->hits.size(), 2u);
  EXPECT_FALSE(page2->more);
  EXPECT_EQ(page2->hits[0].id, "p1");
  EXPECT_EQ(page2->hits[1].id, "p3");
}

// Verifies progress while the build runs in bounded steps interleaved with requests, and
// that writes during the build (create, patch, delete) leave the index agreeing with a
// full scan; a query meanwhile needs a scan, the index not being ready.
TEST_F(ShardIndexTest, BuildProgressesInStepsAndWritesDuringItAreIndexed) {
  actors::data_hosting d;
  d.index_build_batch = 2;
  auto shard = spawn_data(store, d);
  for (int i = 0; i < 10; ++i)
    call(shard, put("people", "p" + std::to_string(i), "{\"age\":" + std::to_string(20 + i) + "}"));
  // Runs the shard one message at a time until `sink` is answered: build steps the shard
  // sent itself run in turn with the requests.
  auto answer = [&](const std::shared_ptr<capture_sink>& sink) {
    for (int i = 0; i < 10 && sink->deliveries == 0; ++i) {
      ASSERT_TRUE(sched.prioritize(shard));
      sched.run_once();
    }
    ASSERT_EQ(sink->deliveries, 1);
  };
  auto created = send(shard, index_op(doc_op::index_put, "people", "age"));
  answer(created);
  EXPECT_EQ(created->last->status, doc_status::created);
  auto p0 = progress_of(*created->last);
  EXPECT_FALSE(p0.ready);
  EXPECT_EQ(p0.indexed, 0u);

  const auto all_by_age = R"({"where":{"age":{"$gte":0}},"order_by":"age"})";
  std::vector<query::index_progress> seen;
  bool wrote = false;
  for (int round = 0; round < 50; ++round) {
    auto g = send(shard, index_op(doc_op::index_get, "people", "age"));
    answer(g);
    seen.push_back(progress_of(*g->last));
    if (seen.back().ready) break;
    if (!wrote && seen.back().indexed > 0) {
      wrote = true;
      auto q = send(shard, query_req("people", shard_query(all_by_age)));
      answer(q);
      EXPECT_EQ(q->last->status, doc_status::bad_request);
      EXPECT_EQ(q->last->code, "index_required");
      for (auto req :
           {put("people", "p10", R"({"age":25})"), patch("people", "p0", R"({"age":99})"),
            del("people", "p9"), put("people", "p3", R"({"age":"text"})")}) {
        auto w = send(shard, std::move(req));
        answer(w);
        EXPECT_TRUE(w->last->status == doc_status::ok || w->last->status == doc_status::created)
          << w->last->message;
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
  EXPECT_GE(metrics.index_build_docs.value(), 10u);

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
  call(shard, index_op(doc_op::index_put, "people", "status"));
  const auto active = shard_query(R"({"where":{"status":"active"}})");
  EXPECT_EQ(hit_ids(call(shard, query_req("people", active))),
            (std::vector<std::string>{"p1", "p3", "p4"}));
  call(shard, put("people", "p6", R"({"status":"active"})"));
  call(shard, patch("people", "p1", R"({"status":"gone"})"));
  call(shard, del("people", "p4"));
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
  auto empty = call(shard, index_op(doc_op::index_list, "people"));
  EXPECT_EQ(empty.status, doc_status::ok);
  EXPECT_EQ(boost::json::parse(empty.body), boost::json::parse(R"({"indexes":[]})"));
  EXPECT_EQ(call(shard, index_op(doc_op::index_put, "people", "status")).status,
            doc_status::created);
  EXPECT_EQ(call(shard, index_op(doc_op::index_put, "people", "meta.score")).status,
            doc_status::created);
  auto list = boost::json::parse(call(shard, index_op(doc_op::index_list, "people")).body);
  const auto& indexes = list.at("indexes").as_array();
  ASSERT_EQ(indexes.size(), 2u);
  EXPECT_EQ(indexes[0].at("field").as_string(), "meta.score");
  EXPECT_EQ(indexes[1].at("field").as_string(), "status");
  EXPECT_EQ(indexes[1].at("state").as_string(), "ready");
  EXPECT_EQ(indexes[1].at("total").to_number<std::int64_t>(), 5);
  EXPECT_EQ(boost::json::parse(call(shard, index_op(doc_op::index_list, "other")).body),
            boost::json::parse(R"({"indexes":[]})"));

  for (const char* bad : {"", "a..b", ".a", "has space", "a.", "x/y"}) {
    auto r = call(shard, index_op(doc_op::index_put, "people", bad));
    EXPECT_EQ(r.status, doc_status::bad_request) << bad;
    EXPECT_EQ(r.code, "invalid_field") << bad;
  }

  const auto active = shard_query(R"({"where":{"status":"active"}})");
  EXPECT_EQ(hit_ids(call(shard, query_req("people", active))).size(), 3u);
  EXPECT_EQ(call(shard, index_op(doc_op::index_drop, "people", "status")).status, doc_status::ok);
  EXPECT_EQ(call(shard, index_op(doc_op::index_get, "people", "status")).status,
            doc_status::not_found);
  EXPECT_EQ(call(shard, index_op(doc_op::index_drop, "people", "status")).status,
            doc_status::not_found);
  auto refused = call(shard, query_req("people", active));
  EXPECT_EQ(refused.status, doc_status::bad_request);
  EXPECT_EQ(refused.code, "index_required");
  // The entries went with the definition.
  bool any_entry = false;
  ASSERT_TRUE(store.shard(0)
                .scan_prefix(query::index_entry_prefix("people", "status"),
                             [&](std::string_view, std::string_view) {
                               any_entry = true;
                               return false;
                             })
                .is_ok());
  EXPECT_FALSE(any_entry);
  auto remaining = boost::json::parse(call(shard, index_op(doc_op::index_list, "people")).body);
  EXPECT_EQ(remaining.at("indexes").as_array().size(), 1u);

  auto malformed = call(shard, query_req("people", "not json"));
  EXPECT_EQ(malformed.status, doc_status::bad_request);
  EXPECT_FALSE(malformed.code.empty());
}

// Verifies index definitions survive a shard restart (they are stored), and that with
// storage.sync the 201 of index_put waits for the fsync.
TEST_F(ShardIndexTest, IndexDefinitionIsDurable) {
  auto shard = spawn_data(store, {}, true);
  auto written = send(shard, put("people", "p1", R"({"age":1})")); // held for the fsync
  auto created = send(shard, index_op(doc_op::index_put, "people", "age"));
  run();
  EXPECT_EQ(written->deliveries, 0);
  EXPECT_EQ(created->deliveries, 0);
  complete_fsync();
  EXPECT_EQ(written->deliveries, 1);
  ASSERT_EQ(created->deliveries, 1);
  EXPECT_EQ(created->last->status, doc_status::created);
  stop(shard);
  auto again = spawn_data(store, {});
  auto p = call(again, index_op(doc_op::index_get, "people", "age"));
  EXPECT_EQ(p.status, doc_status::ok);
  EXPECT_TRUE(progress_of(p).ready);
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
  EXPECT_EQ(call_cache(shard, cache_put("s1", "hello", 60000, "application/x-test")).status,
            actors::cache_status::ok);
  EXPECT_EQ(metrics.cache_entries.value(), 1);
  EXPECT_GT(metrics.cache_bytes.value(), 0);
  auto g = call_cache(shard, cache_get("s1"));
  EXPECT_EQ(g.status, actors::cache_status::ok);
  EXPECT_EQ(g.value, "hello");
  EXPECT_EQ(g.content_type, "application/x-test");
  EXPECT_EQ(metrics.cache_hits.value(), 1u);
  call_cache(shard, cache_put("s1", "replaced", 60000));
  EXPECT_EQ(call_cache(shard, cache_get("s1")).value, "replaced");
  EXPECT_EQ(metrics.cache_entries.value(), 1);
  EXPECT_EQ(call_cache(shard, cache_get("s2")).status, actors::cache_status::not_found);
  EXPECT_EQ(metrics.cache_misses.value(), 1u);
  EXPECT_EQ(call_cache(shard, cache_del("s1")).status, actors::cache_status::ok);
  EXPECT_EQ(call_cache(shard, cache_get("s1")).status, actors::cache_status::not_found);
  EXPECT_EQ(call_cache(shard, cache_del("s1")).status, actors::cache_status::not_found);
  EXPECT_EQ(metrics.cache_entries.value(), 0);
  EXPECT_EQ(metrics.cache_bytes.value(), 0);
}

// Verifies an entry expires after its ttl: a get misses, and the shard tick removes
// expired entries nobody asks for (the gauges return to 0); a long-lived one stays.
TEST_F(ShardDataTest, TtlCacheEntriesExpire) {
  auto shard = spawn_data(store, {});
  call_cache(shard, cache_put("short", "a", 1));
  call_cache(shard, cache_put("asked", "b", 1));
  call_cache(shard, cache_put("long", "c", 600000));
  EXPECT_EQ(metrics.cache_entries.value(), 3);
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(call_cache(shard, cache_get("asked")).status, actors::cache_status::not_found);
  EXPECT_EQ(metrics.cache_entries.value(), 2);
  tick();
  EXPECT_EQ(metrics.cache_entries.value(), 1);
  EXPECT_EQ(call_cache(shard, cache_get("short")).status, actors::cache_status::not_found);
  EXPECT_EQ(call_cache(shard, cache_get("long")).value, "c");
  call_cache(shard, cache_del("long"));
  EXPECT_EQ(metrics.cache_entries.value(), 0);
  EXPECT_EQ(metrics.cache_bytes.value(), 0);
}

// Verifies a value over the shard's share of cache.max_bytes is refused (and the old value
// of its key removed), and that entries past the bound evict the least recently used.
TEST_F(ShardDataTest, TtlCacheTooLargeAndEviction) {
  actors::data_hosting d;
  d.ttl_cache_bytes = 700;
  auto shard = spawn_data(store, d);
  call_cache(shard, cache_put("k", "small", 60000));
  auto big = call_cache(shard, cache_put("k", std::string(700, 'x'), 60000));
  EXPECT_EQ(big.status, actors::cache_status::too_large);
  EXPECT_FALSE(big.message.empty());
  EXPECT_EQ(call_cache(shard, cache_get("k")).status, actors::cache_status::not_found);
  EXPECT_EQ(metrics.cache_entries.value(), 0);
  EXPECT_EQ(metrics.cache_bytes.value(), 0);

  // An entry costs key + value + content type + ttl_cache::entry_overhead: 1 + 200 + 10 +
  // 96 = 307 bytes, so two fit in 700 and three do not.
  const std::string value(200, 'v');
  call_cache(shard, cache_put("a", value, 60000));
  call_cache(shard, cache_put("b", value, 60000));
  EXPECT_EQ(call_cache(shard, cache_get("a")).status, actors::cache_status::ok); // a: recent
  call_cache(shard, cache_put("c", value, 60000));
  EXPECT_EQ(call_cache(shard, cache_get("b")).status, actors::cache_status::not_found);
  EXPECT_EQ(call_cache(shard, cache_get("a")).status, actors::cache_status::ok);
  EXPECT_EQ(call_cache(shard, cache_get("c")).status, actors::cache_status::ok);
  EXPECT_EQ(metrics.cache_evictions.value(), 1u);
  EXPECT_EQ(metrics.cache_entries.value(), 2);
  EXPECT_LE(metrics.cache_bytes.value(), 700);
  stop(shard);
  EXPECT_EQ(metrics.cache_entries.value(), 0);
  EXPECT_EQ(metrics.cache_bytes.value(), 0);
}

} // namespace
} // namespace shoal::testing
