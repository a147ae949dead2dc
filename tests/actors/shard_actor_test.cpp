// SPDX-License-Identifier: Apache-2.0
#include "actors/shard_actor.hpp"

#include <caf/scoped_actor.hpp>

#include "actors/documents.hpp"
#include "storage/memory_store.hpp"
#include "tests/actors/faulty_store.hpp"
#include "tests/actors/shard_fixture.hpp"

namespace shoal::testing {
namespace {

using actors::doc_status;

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
