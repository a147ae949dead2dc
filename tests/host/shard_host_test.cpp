// SPDX-License-Identifier: Apache-2.0
#include "actors/shard_actor.hpp"

#include <caf/scoped_actor.hpp>

#include <caf/event_based_actor.hpp>

#include "actors/documents.hpp"
#include "jobs/ids.hpp"
#include "storage/memory_store.hpp"
#include "tests/actors/faulty_store.hpp"
#include "tests/actors/shard_fixture.hpp"

namespace shoal::testing {
namespace {

using actors::doc_status;

/// Records the job reply a shard delivers to the edge.
class job_capture final : public jobs::job_sink {
public:
  void deliver(jobs::job_reply&& reply) override {
    ++deliveries;
    last = std::move(reply);
  }
  int deliveries = 0;
  std::optional<jobs::job_reply> last;
};

std::shared_ptr<job_capture> send_job(const actors::shard_actor& shard, jobs::job_request req) {
  auto sink = std::make_shared<job_capture>();
  caf::anon_send(shard, std::move(req), jobs::job_sink_ptr{sink});
  return sink;
}

jobs::job_request enqueue_job(std::string id, std::string queue = "q") {
  jobs::job_request r;
  r.op = jobs::job_op::enqueue;
  r.id = std::move(id);
  r.queue = std::move(queue);
  r.type = "t";
  r.body = "{}";
  r.max_attempts = 3;
  return r;
}

jobs::job_request get_job(std::string id) {
  jobs::job_request r;
  r.op = jobs::job_op::get;
  r.id = std::move(id);
  return r;
}

class ShardActorTest : public shard_fixture {
protected:
  storage::memory_store store{2};
};

// Verifies that a first PUT creates version 1 and a second replaces it as version 2.
TEST_F(ShardActorTest, PutCreatesThenReplacesWithGrowingVersions) {
  auto shard = spawn(store, 0, false);
  auto r1 = call(shard, put("users", "42", R"({"a":1})"));
  EXPECT_EQ(r1.status, doc_status::created);
  EXPECT_EQ(r1.version, 1u);
  auto r2 = call(shard, put("users", "42", R"({"a":2})"));
  EXPECT_EQ(r2.status, doc_status::ok);
  EXPECT_EQ(r2.version, 2u);
  auto r3 = call(shard, get("users", "42"));
  EXPECT_EQ(r3.status, doc_status::ok);
  EXPECT_EQ(r3.version, 2u);
  EXPECT_EQ(r3.body, R"({"a":2})");
}

// Verifies that the document lands in the shard's keyspace under the documented key.
TEST_F(ShardActorTest, PutWritesTheRecordUnderTheDocumentKey) {
  auto shard = spawn(store, 1, false);
  call(shard, put("users", "42", R"({"a":1})"));
  std::string raw;
  ASSERT_TRUE(store.shard(1).get(actors::documents::key("users", "42"), raw).is_ok());
  auto rec = actors::documents::decode(raw);
  ASSERT_TRUE(rec.has_value());
  EXPECT_EQ(rec->version, 1u);
  EXPECT_EQ(rec->json, R"({"a":1})");
  EXPECT_EQ(store.shard(0).get(actors::documents::key("users", "42"), raw).code(),
            storage::errc::not_found);
}

// Verifies GET and DELETE of a missing document answer not_found.
TEST_F(ShardActorTest, MissingDocumentIsNotFound) {
  auto shard = spawn(store, 0, false);
  EXPECT_EQ(call(shard, get("users", "nobody")).status, doc_status::not_found);
  EXPECT_EQ(call(shard, del("users", "nobody")).status, doc_status::not_found);
  EXPECT_EQ(call(shard, patch("users", "nobody", "{}")).status, doc_status::not_found);
}

// Verifies that If-Match with another version fails and leaves the document unchanged.
TEST_F(ShardActorTest, IfMatchMismatchFailsAndChangesNothing) {
  auto shard = spawn(store, 0, false);
  call(shard, put("users", "42", R"({"a":1})"));
  auto req = put("users", "42", R"({"a":9})");
  req.if_match = versions({7});
  auto r = call(shard, req);
  EXPECT_EQ(r.status, doc_status::precondition_failed);
  EXPECT_EQ(r.version, 1u);
  auto g = call(shard, get("users", "42"));
  EXPECT_EQ(g.body, R"({"a":1})");
  EXPECT_EQ(g.version, 1u);
  req.if_match = versions({1});
  EXPECT_EQ(call(shard, req).version, 2u);
}

// Verifies that If-None-Match: * on PUT fails when the document exists, succeeds when not.
TEST_F(ShardActorTest, IfNoneMatchStarOnPutOnlyCreates) {
  auto shard = spawn(store, 0, false);
  auto req = put("users", "42", R"({"a":1})");
  req.if_none_match = any_version();
  EXPECT_EQ(call(shard, req).status, doc_status::created);
  EXPECT_EQ(call(shard, req).status, doc_status::precondition_failed);
}

// Verifies that If-Match: * on a missing document fails (RFC 9110 before 404).
TEST_F(ShardActorTest, IfMatchStarOnMissingDocumentFails) {
  auto shard = spawn(store, 0, false);
  auto req = put("users", "42", R"({"a":1})");
  req.if_match = any_version();
  EXPECT_EQ(call(shard, req).status, doc_status::precondition_failed);
  EXPECT_EQ(call(shard, get("users", "42")).status, doc_status::not_found);
}

// Verifies that GET with If-None-Match of the current version answers not_modified.
TEST_F(ShardActorTest, GetIfNoneMatchCurrentVersionIsNotModified) {
  auto shard = spawn(store, 0, false);
  call(shard, put("users", "42", R"({"a":1})"));
  auto req = get("users", "42");
  req.if_none_match = versions({1});
  auto r = call(shard, req);
  EXPECT_EQ(r.status, doc_status::not_modified);
  EXPECT_TRUE(r.body.empty());
  req.if_none_match = versions({3});
  EXPECT_EQ(call(shard, req).status, doc_status::ok);
}

// Verifies PATCH applies a merge patch and bumps the version.
TEST_F(ShardActorTest, PatchMergesAndBumpsVersion) {
  auto shard = spawn(store, 0, false);
  call(shard, put("users", "42", R"({"a":1,"b":{"c":2,"d":3}})"));
  auto r = call(shard, patch("users", "42", R"({"a":null,"b":{"c":5},"e":true})"));
  EXPECT_EQ(r.status, doc_status::ok);
  EXPECT_EQ(r.version, 2u);
  EXPECT_EQ(call(shard, get("users", "42")).body, R"({"b":{"c":5,"d":3},"e":true})");
}

// Verifies DELETE leaves a tombstone: the document is gone for reads, preconditions and
// deletes, and a re-created one continues the versions, so old ETags never match it.
TEST_F(ShardActorTest, DeleteLeavesTombstoneAndVersionsContinue) {
  auto shard = spawn(store, 0, false);
  call(shard, put("users", "42", R"({"a":1})"));
  call(shard, put("users", "42", R"({"a":2})"));
  auto d = call(shard, del("users", "42"));
  EXPECT_EQ(d.status, doc_status::ok);
  EXPECT_EQ(d.version, 3u);
  EXPECT_EQ(call(shard, get("users", "42")).status, doc_status::not_found);
  EXPECT_EQ(call(shard, del("users", "42")).status, doc_status::not_found);
  EXPECT_EQ(call(shard, patch("users", "42", "{}")).status, doc_status::not_found);
  auto stale = put("users", "42", "{}");
  stale.if_match = versions({2});
  EXPECT_EQ(call(shard, stale).status, doc_status::precondition_failed);
  auto created = call(shard, put("users", "42", "{}"));
  EXPECT_EQ(created.status, doc_status::created);
  EXPECT_EQ(created.version, 4u);
}

// Verifies GET honours If-Match (RFC 9110 §13.1.1): a stale version is 412.
TEST_F(ShardActorTest, GetWithStaleIfMatchFails) {
  auto shard = spawn(store, 0, false);
  call(shard, put("users", "42", R"({"a":1})"));
  auto req = get("users", "42");
  req.if_match = versions({7});
  EXPECT_EQ(call(shard, req).status, doc_status::precondition_failed);
  req.if_match = versions({1});
  EXPECT_EQ(call(shard, req).status, doc_status::ok);
}

// Verifies the request/response interface answers like the sink interface.
TEST_F(ShardActorTest, RequestResponseInterfaceAnswers) {
  auto shard = spawn(store, 0, false);
  caf::scoped_actor self{sys};
  self->send(shard, put("users", "7", R"({"x":1})"));
  run();
  bool got = false;
  self->receive([&](actors::doc_reply& r) {
    got = true;
    EXPECT_EQ(r.status, doc_status::created);
    EXPECT_EQ(r.version, 1u);
  });
  EXPECT_TRUE(got);
}

// Verifies that with sync on no write is acknowledged before the WAL syncer ran.
TEST_F(ShardActorTest, SyncModeAcknowledgesOnlyAfterFsync) {
  auto shard = spawn(store, 0, true);
  auto sink = send(shard, put("users", "42", R"({"a":1})"));
  // Run only the shard: it writes and asks the syncer, but must not answer yet.
  ASSERT_TRUE(sched.prioritize(shard));
  sched.run_once();
  EXPECT_EQ(sink->deliveries, 0);
  EXPECT_EQ(store.sync_count(), 0u);
  run();
  EXPECT_EQ(sink->deliveries, 1);
  EXPECT_EQ(store.sync_count(), 1u);
  EXPECT_EQ(sink->last->status, doc_status::created);
}

// Verifies group commit: many writes queued together share one fsync.
TEST_F(ShardActorTest, SyncModeGroupsConcurrentWritesIntoOneFsync) {
  auto shard = spawn(store, 0, true);
  std::vector<std::shared_ptr<capture_sink>> sinks;
  for (int i = 0; i < 50; ++i)
    sinks.push_back(send(shard, put("users", "u" + std::to_string(i), "{}")));
  run();
  for (auto& s : sinks) {
    ASSERT_EQ(s->deliveries, 1);
    EXPECT_EQ(s->last->status, doc_status::created);
  }
  EXPECT_EQ(store.sync_count(), 1u);
}

// Verifies that two shards' writes waiting at the same time share one fsync too.
TEST_F(ShardActorTest, SyncModeSharesFsyncAcrossShards) {
  auto a = spawn(store, 0, true);
  auto b = spawn(store, 1, true);
  auto s1 = send(a, put("users", "1", "{}"));
  auto s2 = send(b, put("users", "2", "{}"));
  run();
  EXPECT_EQ(s1->deliveries, 1);
  EXPECT_EQ(s2->deliveries, 1);
  EXPECT_EQ(store.sync_count(), 1u);
}

// Verifies that a read of a document whose write awaits fsync waits for it as well.
TEST_F(ShardActorTest, SyncModeReadOfUnsyncedDocumentWaitsForFsync) {
  auto shard = spawn(store, 0, true);
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
  EXPECT_EQ(r->last->status, doc_status::ok);
  EXPECT_EQ(r->last->version, 1u);
}

// Verifies that with sync on a job's 202 waits for the fsync, and so does a read of it.
TEST_F(ShardActorTest, SyncModeJobEnqueueAndItsReadWaitForFsync) {
  auto shard = spawn(store, 0, true);
  const auto id = jobs::make_job_id(0, 1);
  auto enqueued = send_job(shard, enqueue_job(id));
  auto read = send_job(shard, get_job(id));
  auto other = send_job(shard, get_job(jobs::make_job_id(0, 2)));
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(sched.prioritize(shard));
    sched.run_once();
  }
  EXPECT_EQ(enqueued->deliveries, 0);
  EXPECT_EQ(read->deliveries, 0);
  EXPECT_EQ(other->deliveries, 1); // another job's read answers at once (not found)
  EXPECT_EQ(store.sync_count(), 0u);
  run();
  ASSERT_EQ(enqueued->deliveries, 1);
  EXPECT_EQ(enqueued->last->status, jobs::job_status::created);
  ASSERT_EQ(read->deliveries, 1);
  EXPECT_EQ(read->last->status, jobs::job_status::ok);
  EXPECT_EQ(store.sync_count(), 1u);
}

// Verifies that a job write that fails is reported and leaves no job behind.
TEST_F(ShardActorTest, JobWriteFailureStoresNothing) {
  faulty_store faulty{store};
  auto shard = spawn(faulty, 0, false);
  const auto id = jobs::make_job_id(0, 1);
  faulty.fail_writes = true;
  auto s1 = send_job(shard, enqueue_job(id));
  run();
  ASSERT_EQ(s1->deliveries, 1);
  EXPECT_EQ(s1->last->status, jobs::job_status::storage_error);
  faulty.fail_writes = false;
  auto s2 = send_job(shard, get_job(id));
  run();
  EXPECT_EQ(s2->last->status, jobs::job_status::not_found);
}

// Verifies that a failing fsync turns a held job acknowledgement into storage_error.
TEST_F(ShardActorTest, JobEnqueueIsNotAcknowledgedWhenFsyncFails) {
  faulty_store faulty{store};
  auto shard = spawn(faulty, 0, true);
  faulty.fail_syncs = true;
  auto s = send_job(shard, enqueue_job(jobs::make_job_id(0, 1)));
  run();
  ASSERT_EQ(s->deliveries, 1);
  EXPECT_EQ(s->last->status, jobs::job_status::storage_error);
}

// Verifies that the shard tells the broker once when a (queue, type) gets due jobs.
TEST_F(ShardActorTest, DueJobsAreAnnouncedToTheBroker) {
  auto seen = std::make_shared<std::vector<std::string>>();
  auto broker = sys.spawn(
    [](caf::event_based_actor*, std::shared_ptr<std::vector<std::string>> seen) -> caf::behavior {
      return {[seen](actors::job_ready_atom, const std::string& queue, const std::string& type,
                     std::uint32_t shard) {
        seen->push_back(queue + "/" + type + "@" + std::to_string(shard));
      }};
    },
    seen);
  actors::job_hosting jobs_cfg;
  jobs_cfg.broker = broker;
  auto shard =
    actors::spawn_shard(sys, actors::shard_config{1, &store, false, {}, {}, jobs_cfg, {}});
  send_job(shard, enqueue_job(jobs::make_job_id(1, 1)));
  send_job(shard, enqueue_job(jobs::make_job_id(1, 2)));
  send_job(shard, enqueue_job(jobs::make_job_id(1, 3), "other"));
  run();
  EXPECT_EQ(*seen, (std::vector<std::string>{"q/t@1", "other/t@1"}));
  caf::anon_send_exit(broker, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(shard, caf::exit_reason::user_shutdown);
}

// Verifies the collection.stats scan: live documents only, numeric values of a path.
TEST_F(ShardActorTest, StatsCountLiveDocumentsAndAggregateAField) {
  auto shard = spawn(store, 0, false);
  call(shard, put("orders", "a", R"({"total":{"net":10}})"));
  call(shard, put("orders", "b", R"({"total":{"net":2.5}})"));
  call(shard, put("orders", "c", R"({"total":"n/a"})"));
  call(shard, put("orders", "d", R"({"total":{"net":100}})"));
  call(shard, del("orders", "d"));
  call(shard, put("other", "x", R"({"total":{"net":1000}})"));
  actors::doc_request r;
  r.op = actors::doc_op::stats;
  r.collection = "orders";
  r.body = "total.net";
  auto reply = call(shard, r);
  ASSERT_EQ(reply.status, doc_status::ok) << reply.message;
  auto stats = actors::documents::field_stats::from_json(reply.body);
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->count, 3u);
  EXPECT_EQ(stats->numeric, 2u);
  EXPECT_DOUBLE_EQ(stats->min, 2.5);
  EXPECT_DOUBLE_EQ(stats->max, 10);
  EXPECT_DOUBLE_EQ(stats->sum, 12.5);
}

// Verifies that a failing write is reported as storage_error and nothing is stored.
TEST_F(ShardActorTest, WriteFailureReportsStorageErrorAndStoresNothing) {
  faulty_store faulty{store};
  auto shard = spawn(faulty, 0, false);
  faulty.fail_writes = true;
  EXPECT_EQ(call(shard, put("users", "42", "{}")).status, doc_status::storage_error);
  faulty.fail_writes = false;
  EXPECT_EQ(call(shard, get("users", "42")).status, doc_status::not_found);
}

// Verifies that a failing read is reported as storage_error, not as not_found.
TEST_F(ShardActorTest, ReadFailureReportsStorageError) {
  faulty_store faulty{store};
  auto shard = spawn(faulty, 0, false);
  faulty.fail_reads = true;
  EXPECT_EQ(call(shard, get("users", "42")).status, doc_status::storage_error);
  EXPECT_EQ(call(shard, put("users", "42", "{}")).status, doc_status::storage_error);
}

// Verifies that a failing fsync turns every held acknowledgement into storage_error.
TEST_F(ShardActorTest, FsyncFailureIsNeverAcknowledged) {
  faulty_store faulty{store};
  auto shard = spawn(faulty, 0, true);
  faulty.fail_syncs = true;
  auto s1 = send(shard, put("users", "1", "{}"));
  auto s2 = send(shard, put("users", "2", "{}"));
  run();
  ASSERT_EQ(s1->deliveries, 1);
  ASSERT_EQ(s2->deliveries, 1);
  EXPECT_EQ(s1->last->status, doc_status::storage_error);
  EXPECT_EQ(s2->last->status, doc_status::storage_error);
  // The shard keeps serving once the disk recovers.
  faulty.fail_syncs = false;
  EXPECT_EQ(call(shard, put("users", "3", "{}")).status, doc_status::created);
}

// Verifies a stored record that cannot be decoded is reported, not served.
TEST_F(ShardActorTest, CorruptRecordIsReported) {
  auto shard = spawn(store, 0, false);
  storage::write_batch b;
  b.put(actors::documents::key("users", "42"), "garbage");
  ASSERT_TRUE(store.shard(0).write(b, false).is_ok());
  EXPECT_EQ(call(shard, get("users", "42")).status, doc_status::invalid_document);
}

} // namespace
} // namespace shoal::testing
