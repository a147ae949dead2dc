// SPDX-License-Identifier: Apache-2.0
// The shard host on CAF's deterministic scheduler (tests/support/host_fixture.hpp):
// documents through its typed messages, the request/response path of actors, and the
// durability it holds with storage.sync (group commit, held replies and reads, failed
// fsyncs), jobs through the same gate, and the broker told of due work.
#include "host/shard_host.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <gtest/gtest.h>

#include "documents/documents.hpp"
#include "jobs/ids.hpp"
#include "jobs/job_queue.hpp"
#include "protocol/errors.hpp"
#include "storage/memory_store.hpp"
#include "tests/support/results.hpp"
#include "tests/support/doc_requests.hpp"
#include "tests/support/faulty_store.hpp"
#include "tests/support/host_fixture.hpp"

namespace shoal::testing {
namespace {

using documents::doc_get;
using documents::doc_write;
using docs::put;
using docs::patch;
using docs::del;
using docs::get;
using docs::versions;
using docs::any_version;
using documents::precondition;

jobs::job_enqueue enqueue_job(std::string queue = "q") {
  jobs::job_enqueue r;
  r.queue = std::move(queue);
  r.type = "t";
  r.payload = "{}";
  r.max_attempts = 3;
  return r;
}


/// The ids of the jobs stored in `shard` (under jobs::job_key(id)).
std::vector<std::string> stored_job_ids(storage::shard_store& shard) {
  const auto prefix = jobs::job_key("");
  std::vector<std::string> ids;
  auto r = shard.scan_prefix(prefix, [&](std::string_view key, std::string_view) {
    ids.emplace_back(key.substr(prefix.size()));
    return true;
  });
  EXPECT_TRUE(r.ok());
  return ids;
}

class ShardHostTest : public host_fixture {
protected:
  /// The hosts stop while the store they use lives.
  ~ShardHostTest() override {
    for (auto& h : hosts)
      caf::anon_send_exit(h, caf::exit_reason::user_shutdown);
    run();
  }

  protocol::shard_actor spawn_host(storage::store& over, std::uint32_t index, bool sync,
                                   host::host_config base = {}) {
    auto h = spawn(over, index, sync, std::move(base));
    hosts.push_back(h);
    return h;
  }

  storage::memory_store store{2};
  faulty_store faulty{store};
  std::vector<protocol::shard_actor> hosts;
};

// Verifies that a first PUT creates version 1 and a second replaces it as version 2.
TEST_F(ShardHostTest, PutCreatesThenReplacesWithGrowingVersions) {
  auto shard = spawn_host(store, 0, false);
  auto r1 = call(shard, put("users", "42", R"({"a":1})"));
  ASSERT_TRUE(r1.ok()) << r1.error().to_string();
  EXPECT_TRUE(r1->created);
  EXPECT_EQ(r1->version, 1u);
  auto r2 = call(shard, put("users", "42", R"({"a":2})"));
  ASSERT_TRUE(r2.ok()) << r2.error().to_string();
  EXPECT_FALSE(r2->created);
  EXPECT_EQ(r2->version, 2u);
  auto r3 = call(shard, get("users", "42"));
  ASSERT_TRUE(r3.ok()) << r3.error().to_string();
  EXPECT_EQ(r3->version, 2u);
  EXPECT_EQ(r3->json, R"({"a":2})");
}

// Verifies that the document lands in the shard's keyspace under the documented key.
TEST_F(ShardHostTest, PutWritesTheRecordUnderTheDocumentKey) {
  auto shard = spawn_host(store, 1, false);
  ASSERT_TRUE(call(shard, put("users", "42", R"({"a":1})")).ok());
  auto raw = store.shard(1).get(documents::key("users", "42"));
  ASSERT_TRUE(raw.ok());
  auto rec = documents::decode(*raw);
  ASSERT_TRUE(rec.has_value());
  EXPECT_EQ(rec->version, 1u);
  EXPECT_EQ(rec->json, R"({"a":1})");
  EXPECT_EQ(code_of(store.shard(0).get(documents::key("users", "42"))), core::errc::not_found);
}

// Verifies GET and DELETE of a missing document answer not_found.
TEST_F(ShardHostTest, MissingDocumentIsNotFound) {
  auto shard = spawn_host(store, 0, false);
  EXPECT_EQ(code_of(call(shard, get("users", "nobody"))), core::errc::not_found);
  EXPECT_EQ(code_of(call(shard, del("users", "nobody"))), core::errc::not_found);
  EXPECT_EQ(code_of(call(shard, patch("users", "nobody", "{}"))), core::errc::not_found);
}

// Verifies that If-Match with another version fails and leaves the document unchanged.
TEST_F(ShardHostTest, IfMatchMismatchFailsAndChangesNothing) {
  auto shard = spawn_host(store, 0, false);
  ASSERT_TRUE(call(shard, put("users", "42", R"({"a":1})")).ok());
  auto req = put("users", "42", R"({"a":9})");
  req.if_match = versions({7});
  auto r = call(shard, req);
  EXPECT_EQ(code_of(r), core::errc::precondition_failed);
  if (!r.ok()) {
    EXPECT_EQ(r.error().message(), "the document is at version 1");
  }
  auto g = call(shard, get("users", "42"));
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->json, R"({"a":1})");
  EXPECT_EQ(g->version, 1u);
  req.if_match = versions({1});
  auto w = call(shard, req);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->version, 2u);
}

// Verifies that If-None-Match: * on PUT fails when the document exists, succeeds when not.
TEST_F(ShardHostTest, IfNoneMatchStarOnPutOnlyCreates) {
  auto shard = spawn_host(store, 0, false);
  auto req = put("users", "42", R"({"a":1})");
  req.if_none_match = any_version();
  auto created = call(shard, req);
  ASSERT_TRUE(created.ok());
  EXPECT_TRUE(created->created);
  EXPECT_EQ(code_of(call(shard, req)), core::errc::precondition_failed);
}

// Verifies that If-Match: * on a missing document fails (RFC 9110 before 404).
TEST_F(ShardHostTest, IfMatchStarOnMissingDocumentFails) {
  auto shard = spawn_host(store, 0, false);
  auto req = put("users", "42", R"({"a":1})");
  req.if_match = any_version();
  EXPECT_EQ(code_of(call(shard, req)), core::errc::precondition_failed);
  EXPECT_EQ(code_of(call(shard, get("users", "42"))), core::errc::not_found);
}

// Verifies that GET with If-None-Match of the current version answers not_modified.
TEST_F(ShardHostTest, GetIfNoneMatchCurrentVersionIsNotModified) {
  auto shard = spawn_host(store, 0, false);
  ASSERT_TRUE(call(shard, put("users", "42", R"({"a":1})")).ok());
  auto req = get("users", "42");
  req.if_none_match = versions({1});
  auto r = call(shard, req);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->not_modified);
  EXPECT_TRUE(r->json.empty());
  req.if_none_match = versions({3});
  auto full = call(shard, req);
  ASSERT_TRUE(full.ok());
  EXPECT_FALSE(full->not_modified);
  EXPECT_EQ(full->json, R"({"a":1})");
}

// Verifies PATCH applies a merge patch and bumps the version.
TEST_F(ShardHostTest, PatchMergesAndBumpsVersion) {
  auto shard = spawn_host(store, 0, false);
  ASSERT_TRUE(call(shard, put("users", "42", R"({"a":1,"b":{"c":2,"d":3}})")).ok());
  auto r = call(shard, patch("users", "42", R"({"a":null,"b":{"c":5},"e":true})"));
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_FALSE(r->created);
  EXPECT_EQ(r->version, 2u);
  EXPECT_EQ(call(shard, get("users", "42"))->json, R"({"b":{"c":5,"d":3},"e":true})");
}

// Verifies DELETE leaves a tombstone: the document is gone for reads, preconditions and
// deletes, and a re-created one continues the versions, so old ETags never match it.
TEST_F(ShardHostTest, DeleteLeavesTombstoneAndVersionsContinue) {
  auto shard = spawn_host(store, 0, false);
  ASSERT_TRUE(call(shard, put("users", "42", R"({"a":1})")).ok());
  ASSERT_TRUE(call(shard, put("users", "42", R"({"a":2})")).ok());
  auto d = call(shard, del("users", "42"));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->version, 3u);
  EXPECT_EQ(code_of(call(shard, get("users", "42"))), core::errc::not_found);
  EXPECT_EQ(code_of(call(shard, del("users", "42"))), core::errc::not_found);
  EXPECT_EQ(code_of(call(shard, patch("users", "42", "{}"))), core::errc::not_found);
  auto stale = put("users", "42", "{}");
  stale.if_match = versions({2});
  EXPECT_EQ(code_of(call(shard, stale)), core::errc::precondition_failed);
  auto created = call(shard, put("users", "42", "{}"));
  ASSERT_TRUE(created.ok());
  EXPECT_TRUE(created->created);
  EXPECT_EQ(created->version, 4u);
}

// Verifies GET honours If-Match (RFC 9110 §13.1.1): a stale version is 412.
TEST_F(ShardHostTest, GetWithStaleIfMatchFails) {
  auto shard = spawn_host(store, 0, false);
  ASSERT_TRUE(call(shard, put("users", "42", R"({"a":1})")).ok());
  auto req = get("users", "42");
  req.if_match = versions({7});
  EXPECT_EQ(code_of(call(shard, req)), core::errc::precondition_failed);
  req.if_match = versions({1});
  EXPECT_TRUE(call(shard, req).ok());
}

// Verifies the request/response interface (an actor sends the request with an empty
// reply_to) answers like the reply_to interface: the reply as the response, an error as
// a caf::error of category shoal.
TEST_F(ShardHostTest, RequestResponseInterfaceAnswers) {
  auto shard = spawn_host(store, 0, false);
  caf::scoped_actor self{sys};
  self->send(shard, put("users", "7", R"({"x":1})"), core::reply_to<documents::doc_written>{});
  run();
  bool got = false;
  self->receive([&](documents::doc_written& r) {
    got = true;
    EXPECT_TRUE(r.created);
    EXPECT_EQ(r.version, 1u);
  });
  EXPECT_TRUE(got);
  self->send(shard, get("users", "nobody"), core::reply_to<documents::stored_doc>{});
  run();
  bool failed = false;
  self->receive([&](caf::error& err) {
    failed = true;
    EXPECT_EQ(err.category(), protocol::error_category);
    EXPECT_EQ(protocol::from_caf(err).code(), core::errc::not_found);
  });
  EXPECT_TRUE(failed);
}

// Verifies that with sync on no write is acknowledged before the WAL syncer ran.
TEST_F(ShardHostTest, SyncModeAcknowledgesOnlyAfterFsync) {
  auto shard = spawn_host(store, 0, true);
  auto c = send(shard, put("users", "42", R"({"a":1})"));
  // Run only the shard: it writes and asks the syncer, but must not answer yet.
  ASSERT_TRUE(sched.prioritize(shard));
  sched.run_once();
  ASSERT_TRUE(store.shard(0).get(documents::key("users", "42")).ok()) << "the put did not run";
  EXPECT_EQ(c->deliveries, 0);
  EXPECT_EQ(store.sync_count(), 0u);
  run();
  EXPECT_EQ(c->deliveries, 1);
  EXPECT_EQ(store.sync_count(), 1u);
  EXPECT_TRUE(c->value().created);
}

// Verifies group commit: many writes queued together share one fsync.
TEST_F(ShardHostTest, SyncModeGroupsConcurrentWritesIntoOneFsync) {
  auto shard = spawn_host(store, 0, true);
  std::vector<std::shared_ptr<capture<documents::doc_written>>> captures;
  for (int i = 0; i < 50; ++i)
    captures.push_back(send(shard, put("users", "u" + std::to_string(i), "{}")));
  run();
  for (auto& c : captures) {
    ASSERT_EQ(c->deliveries, 1);
    EXPECT_TRUE(c->value().created);
  }
  EXPECT_EQ(store.sync_count(), 1u);
}

// Verifies that two shards' writes waiting at the same time share one fsync too.
TEST_F(ShardHostTest, SyncModeSharesFsyncAcrossShards) {
  auto a = spawn_host(store, 0, true);
  auto b = spawn_host(store, 1, true);
  auto s1 = send(a, put("users", "1", "{}"));
  auto s2 = send(b, put("users", "2", "{}"));
  run();
  EXPECT_EQ(s1->deliveries, 1);
  EXPECT_EQ(s2->deliveries, 1);
  EXPECT_EQ(store.sync_count(), 1u);
}

// Verifies that a read of a document whose write awaits fsync waits for it as well.
TEST_F(ShardHostTest, SyncModeReadOfUnsyncedDocumentWaitsForFsync) {
  auto shard = spawn_host(store, 0, true);
  auto w = send(shard, put("users", "42", R"({"a":1})"));
  auto r = send(shard, get("users", "42"));
  auto other = send(shard, get("users", "other"));
  // Run the shard alone for its three messages (the syncer job is left queued).
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(sched.prioritize(shard));
    sched.run_once();
  }
  EXPECT_EQ(w->deliveries, 0);
  EXPECT_EQ(r->deliveries, 0);
  EXPECT_EQ(other->deliveries, 1); // unrelated documents answer at once
  run();
  ASSERT_EQ(r->deliveries, 1);
  EXPECT_EQ(r->value().version, 1u);
  EXPECT_EQ(r->value().json, R"({"a":1})");
}

// Verifies that with sync on a job's 202 waits for the fsync, and so does a read of it,
// while a read of another job answers at once.
TEST_F(ShardHostTest, SyncModeJobEnqueueAndItsReadWaitForFsync) {
  auto shard = spawn_host(store, 0, true);
  auto enqueued = send(shard, enqueue_job());
  ASSERT_TRUE(sched.prioritize(shard));
  sched.run_once();
  // The shard assigns the id: the job is in the store (not yet durable) under it.
  const auto ids = stored_job_ids(store.shard(0));
  ASSERT_EQ(ids.size(), 1u);
  auto read = send(shard, jobs::job_get{ids[0]});
  auto other = send(shard, jobs::job_get{jobs::make_job_id(0, 1)});
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(sched.prioritize(shard));
    sched.run_once();
  }
  EXPECT_EQ(enqueued->deliveries, 0);
  EXPECT_EQ(read->deliveries, 0);
  ASSERT_EQ(other->deliveries, 1); // another job's read answers at once (not found)
  EXPECT_EQ(other->error().code(), core::errc::not_found);
  EXPECT_EQ(store.sync_count(), 0u);
  run();
  ASSERT_EQ(enqueued->deliveries, 1);
  EXPECT_TRUE(enqueued->value().created);
  EXPECT_EQ(enqueued->value().id, ids[0]);
  ASSERT_EQ(read->deliveries, 1);
  EXPECT_EQ(read->value().id, ids[0]);
  EXPECT_NE(read->value().json.find("\"queued\""), std::string::npos) << read->value().json;
  EXPECT_EQ(store.sync_count(), 1u);
}

// Verifies that a job write that fails is reported and leaves no job behind.
TEST_F(ShardHostTest, JobWriteFailureStoresNothing) {
  auto shard = spawn_host(faulty, 0, false);
  faulty.fail_writes = true;
  EXPECT_EQ(code_of(call(shard, enqueue_job())), core::errc::storage_failed);
  faulty.fail_writes = false;
  EXPECT_TRUE(stored_job_ids(store.shard(0)).empty());
  auto counts = call(shard, jobs::queue_stats{"q"});
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->queued, 0u);
  EXPECT_EQ(counts->running, 0u);
}

// Verifies that a failing fsync turns a held job acknowledgement into storage_failed.
TEST_F(ShardHostTest, JobEnqueueIsNotAcknowledgedWhenFsyncFails) {
  auto shard = spawn_host(faulty, 0, true);
  faulty.fail_syncs = true;
  EXPECT_EQ(code_of(call(shard, enqueue_job())), core::errc::storage_failed);
}

// Verifies that the shard tells the broker once when a (queue, type) gets due jobs.
TEST_F(ShardHostTest, DueJobsAreAnnouncedToTheBroker) {
  auto seen = std::make_shared<std::vector<std::string>>();
  auto broker = sys.spawn(
    [](caf::event_based_actor*, std::shared_ptr<std::vector<std::string>> seen) -> caf::behavior {
      return {[seen](protocol::job_ready_atom, const std::string& queue, const std::string& type,
                     std::uint32_t shard) {
        seen->push_back(queue + "/" + type + "@" + std::to_string(shard));
      }};
    },
    seen);
  host::host_config base;
  base.broker = caf::actor_cast<protocol::broker_actor>(broker);
  auto shard = spawn_host(store, 1, false, base);
  auto e1 = send(shard, enqueue_job());
  auto e2 = send(shard, enqueue_job());
  auto e3 = send(shard, enqueue_job("other"));
  run();
  EXPECT_TRUE(e1->value().created);
  EXPECT_TRUE(e2->value().created);
  EXPECT_TRUE(e3->value().created);
  EXPECT_EQ(*seen, (std::vector<std::string>{"q/t@1", "other/t@1"}));
  caf::anon_send_exit(broker, caf::exit_reason::user_shutdown);
}

// Verifies the collection.stats scan: live documents only, numeric values of a path.
TEST_F(ShardHostTest, StatsCountLiveDocumentsAndAggregateAField) {
  auto shard = spawn_host(store, 0, false);
  ASSERT_TRUE(call(shard, put("orders", "a", R"({"total":{"net":10}})")).ok());
  ASSERT_TRUE(call(shard, put("orders", "b", R"({"total":{"net":2.5}})")).ok());
  ASSERT_TRUE(call(shard, put("orders", "c", R"({"total":"n/a"})")).ok());
  ASSERT_TRUE(call(shard, put("orders", "d", R"({"total":{"net":100}})")).ok());
  ASSERT_TRUE(call(shard, del("orders", "d")).ok());
  ASSERT_TRUE(call(shard, put("other", "x", R"({"total":{"net":1000}})")).ok());
  auto stats = call(shard, documents::collection_stats{"orders", "total.net"});
  ASSERT_TRUE(stats.ok()) << stats.error().to_string();
  EXPECT_EQ(stats->count, 3u);
  EXPECT_EQ(stats->numeric, 2u);
  EXPECT_DOUBLE_EQ(stats->min, 2.5);
  EXPECT_DOUBLE_EQ(stats->max, 10);
  EXPECT_DOUBLE_EQ(stats->sum, 12.5);
}

// Verifies that a failing write is reported as storage_failed and nothing is stored.
TEST_F(ShardHostTest, WriteFailureReportsStorageErrorAndStoresNothing) {
  auto shard = spawn_host(faulty, 0, false);
  faulty.fail_writes = true;
  EXPECT_EQ(code_of(call(shard, put("users", "42", "{}"))), core::errc::storage_failed);
  faulty.fail_writes = false;
  EXPECT_EQ(code_of(call(shard, get("users", "42"))), core::errc::not_found);
}

// Verifies that a failing read is reported as storage_failed, not as not_found.
TEST_F(ShardHostTest, ReadFailureReportsStorageError) {
  auto shard = spawn_host(faulty, 0, false);
  faulty.fail_reads = true;
  EXPECT_EQ(code_of(call(shard, get("users", "42"))), core::errc::storage_failed);
  EXPECT_EQ(code_of(call(shard, put("users", "42", "{}"))), core::errc::storage_failed);
}

// Verifies that a failing fsync turns every held acknowledgement into storage_failed.
TEST_F(ShardHostTest, FsyncFailureIsNeverAcknowledged) {
  auto shard = spawn_host(faulty, 0, true);
  faulty.fail_syncs = true;
  auto s1 = send(shard, put("users", "1", "{}"));
  auto s2 = send(shard, put("users", "2", "{}"));
  run();
  ASSERT_EQ(s1->deliveries, 1);
  ASSERT_EQ(s2->deliveries, 1);
  EXPECT_EQ(s1->error().code(), core::errc::storage_failed);
  EXPECT_EQ(s2->error().code(), core::errc::storage_failed);
  // The shard keeps serving once the disk recovers.
  faulty.fail_syncs = false;
  auto r = call(shard, put("users", "3", "{}"));
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_TRUE(r->created);
}

// Verifies a stored record that cannot be decoded is reported, not served.
TEST_F(ShardHostTest, CorruptRecordIsReported) {
  auto shard = spawn_host(store, 0, false);
  storage::write_batch b;
  b.put(documents::key("users", "42"), "garbage");
  ASSERT_TRUE(store.shard(0).write(b, false).ok());
  EXPECT_EQ(code_of(call(shard, get("users", "42"))), core::errc::internal);
}

// Verifies the host's shutdown answers the replies it holds for an fsync: the write
// outcome_unknown (it is in the store, and may be kept), the read behind it
// shutting_down. Nothing unsynced is acknowledged, and nobody waits forever.
TEST_F(ShardHostTest, ShutdownAnswersHeldRepliesShuttingDown) {
  auto shard = spawn_host(store, 0, true);
  auto w = send(shard, put("users", "1", "{}"));
  auto r = send(shard, get("users", "1"));
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(sched.prioritize(shard));
    sched.run_once();
  }
  ASSERT_TRUE(store.shard(0).get(documents::key("users", "1")).ok()) << "the put did not run";
  EXPECT_EQ(w->deliveries, 0);
  EXPECT_EQ(r->deliveries, 0);
  caf::anon_send_exit(shard, caf::exit_reason::user_shutdown);
  ASSERT_TRUE(sched.prioritize(shard));
  sched.run_once();
  ASSERT_EQ(w->deliveries, 1);
  ASSERT_EQ(r->deliveries, 1);
  EXPECT_EQ(w->error().code(), core::errc::outcome_unknown);
  EXPECT_EQ(r->error().code(), core::errc::shutting_down);
  run();
  EXPECT_EQ(w->deliveries, 1) << "the syncer's late answer reached a reply again";
}

} // namespace
} // namespace shoal::testing
