// SPDX-License-Identifier: Apache-2.0
// The documents module of one shard on a manual loop (tests/support/manual_shard.hpp),
// without CAF: puts, patches, deletes and gets with versions and preconditions,
// tombstones, replies held until the write is durable with storage.sync, observers that
// add to a write's batch, refused writes, the read cache and its metrics, and
// collection_stats as a scan in bounded steps over a snapshot.
#include "documents/module.hpp"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "documents/documents.hpp"
#include "documents/metrics.hpp"
#include "storage/memory_store.hpp"
#include "tests/support/results.hpp"
#include "tests/support/doc_requests.hpp"
#include "tests/support/faulty_store.hpp"
#include "tests/support/manual_shard.hpp"

namespace shoal::testing {
namespace {

using docs::any_version;
using docs::del;
using docs::get;
using docs::patch;
using docs::put;
using docs::versions;
using documents::doc_get;
using documents::doc_write;
using documents::precondition;

documents::collection_stats stats_of(std::string collection, std::string field) {
  return documents::collection_stats{std::move(collection), std::move(field)};
}

/// A doc_observer that records what it is told, adds one key of its own to every write's
/// batch ('o' ++ tag ++ '\0' ++ id -> the version), and fails `prepare` on command.
class recording_observer final : public shard::doc_observer {
public:
  struct change {
    std::string collection;
    std::string id;
    std::string before;
    std::string after;
    std::uint64_t version = 0;
    std::uint64_t time_ms = 0;
  };

  recording_observer(std::string tag, storage::shard_store& store)
      : tag_(std::move(tag)), store_(store) {}

  /// The key this observer adds for document `id`.
  std::string key_of(std::string_view id) const {
    std::string k = "o" + tag_;
    k += '\0';
    k += id;
    return k;
  }

  core::result<void> prepare(const shard::doc_change& c, storage::write_batch& batch) override {
    prepared.push_back(copy(c));
    if (fail) return *fail;
    batch.put(key_of(c.id), std::to_string(c.version));
    return core::ok();
  }

  void applied(const shard::doc_change& c) override {
    applied_changes.push_back(copy(c));
    // The batch is applied before the observers hear of it: both keys are readable.
    const bool own = store_.get(key_of(c.id)).ok();
    const bool doc = store_.get(documents::key(c.collection, c.id)).ok();
    visible_when_applied.push_back(own && doc);
  }

  std::vector<change> prepared;
  std::vector<change> applied_changes;
  std::vector<bool> visible_when_applied;
  std::optional<core::error> fail;

private:
  static change copy(const shard::doc_change& c) {
    return change{std::string(c.collection), std::string(c.id), std::string(c.before),
                  std::string(c.after),      c.version,         c.time_ms};
  }

  std::string tag_;
  storage::shard_store& store_;
};

/// One documents module over shard 0 of a memory store (behind a fault-injecting
/// wrapper) on a manual loop; `make` builds it with the settings a test wants.
class DocumentsModuleTest : public ::testing::Test {
protected:
  /// (Re)builds the shard (with storage.sync when `sync`) and its module with a read
  /// cache of `cache_bytes` and `observers`.
  void make(std::size_t cache_bytes = 0, bool sync = false,
            std::vector<shard::doc_observer*> observers = {}) {
    docs.reset();
    shard.reset();
    shard = std::make_unique<manual_shard>(faulty, 0, sync);
    docs = std::make_unique<documents::module>(
      shard->ctx(), documents::module::config{cache_bytes, &metrics}, std::move(observers));
  }

  void SetUp() override {
    make();
  }

  void TearDown() override {
    docs.reset();
    shard.reset();
  }

  /// Serves `req` and runs the loop until idle; returns what arrived.
  template <class R>
  std::shared_ptr<capture<typename R::reply>> send(R req) {
    return shard->serve(*docs, std::move(req));
  }

  /// Serves `req`, runs, and returns the one answer (a test failure when none arrived).
  template <class R>
  core::result<typename R::reply> call(R req) {
    auto c = send(std::move(req));
    EXPECT_EQ(c->deliveries, 1);
    if (!c->last) return core::error{core::errc::internal, "no answer"};
    return *c->last;
  }

  /// Serves `req` as one message (its step ends, completions run) without running the
  /// deferred work it leaves: a scan stays where its first step stopped.
  template <class R>
  std::shared_ptr<capture<typename R::reply>> serve_only(R req) {
    using T = typename R::reply;
    auto c = std::make_shared<capture<T>>();
    docs->serve(std::move(req), core::reply_to<T>::to([c](core::result<T>&& r) {
                  ++c->deliveries;
                  c->last = std::move(r);
                }));
    shard->ctx().finish_step();
    return c;
  }

  /// Writes a document straight into the store, past the module.
  void store_directly(const std::string& collection, const std::string& id, std::uint64_t version,
                      const std::string& json) {
    storage::write_batch b;
    b.put(documents::key(collection, id), documents::encode(version, json));
    ASSERT_TRUE(store.shard(0).write(b, false).ok());
  }

  /// The record stored for (collection, id); nullopt when there is none.
  std::optional<std::string> stored(const std::string& collection, const std::string& id) {
    auto raw = store.shard(0).get(documents::key(collection, id));
    if (!raw) {
      EXPECT_EQ(raw.error().code(), core::errc::not_found) << raw.error().to_string();
      return std::nullopt;
    }
    return *raw;
  }

  storage::memory_store store{1};
  faulty_store faulty{store};
  documents::metrics metrics;
  std::unique_ptr<manual_shard> shard;
  std::unique_ptr<documents::module> docs;
};

// -- writes and reads -----------------------------------------------------------------

// Verifies that a first PUT creates version 1, a second replaces it as version 2, and a
// get returns the latest document and version.
TEST_F(DocumentsModuleTest, PutCreatesThenReplacesWithGrowingVersions) {
  auto r1 = call(put("users", "42", R"({"a":1})"));
  ASSERT_TRUE(r1.ok()) << r1.error().to_string();
  EXPECT_TRUE(r1->created);
  EXPECT_EQ(r1->version, 1u);
  auto r2 = call(put("users", "42", R"({"a":2})"));
  ASSERT_TRUE(r2.ok()) << r2.error().to_string();
  EXPECT_FALSE(r2->created);
  EXPECT_EQ(r2->version, 2u);
  auto g = call(get("users", "42"));
  ASSERT_TRUE(g.ok()) << g.error().to_string();
  EXPECT_EQ(g->version, 2u);
  EXPECT_EQ(g->json, R"({"a":2})");
  EXPECT_FALSE(g->not_modified);
  auto raw = stored("users", "42");
  ASSERT_TRUE(raw);
  EXPECT_EQ(*raw, documents::encode(2, R"({"a":2})"));
}

// Verifies get, patch and delete of a document that never existed answer not_found and
// store nothing.
TEST_F(DocumentsModuleTest, MissingDocumentIsNotFound) {
  EXPECT_EQ(code_of(call(get("users", "nobody"))), core::errc::not_found);
  EXPECT_EQ(code_of(call(patch("users", "nobody", "{}"))), core::errc::not_found);
  EXPECT_EQ(code_of(call(del("users", "nobody"))), core::errc::not_found);
  EXPECT_FALSE(stored("users", "nobody"));
  EXPECT_EQ(store.latest_sequence(), 0u);
}

// Verifies the write preconditions: If-Match of another version is 412 and changes
// nothing, If-Match of the current one writes; If-None-Match: * only creates; If-Match: *
// on a missing document is 412 (RFC 9110 evaluates it before the 404).
TEST_F(DocumentsModuleTest, WritePreconditionsDecideBeforeAnythingIsWritten) {
  ASSERT_TRUE(call(put("users", "42", R"({"a":1})")).ok());
  const auto before = store.latest_sequence();
  auto stale = put("users", "42", R"({"a":9})");
  stale.if_match = versions({7});
  auto refused = call(stale);
  EXPECT_EQ(code_of(refused), core::errc::precondition_failed);
  EXPECT_EQ(store.latest_sequence(), before);
  auto g = call(get("users", "42"));
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->version, 1u);
  EXPECT_EQ(g->json, R"({"a":1})");
  stale.if_match = versions({3, 1});
  auto matched = call(stale);
  ASSERT_TRUE(matched.ok()) << matched.error().to_string();
  EXPECT_EQ(matched->version, 2u);

  auto create_only = put("users", "7", "{}");
  create_only.if_none_match = any_version();
  auto created = call(create_only);
  ASSERT_TRUE(created.ok());
  EXPECT_TRUE(created->created);
  EXPECT_EQ(code_of(call(create_only)), core::errc::precondition_failed);

  auto replace_only = put("users", "8", "{}");
  replace_only.if_match = any_version();
  EXPECT_EQ(code_of(call(replace_only)), core::errc::precondition_failed);
  EXPECT_EQ(code_of(call(get("users", "8"))), core::errc::not_found);
  auto delete_stale = del("users", "42");
  delete_stale.if_match = versions({1});
  EXPECT_EQ(code_of(call(delete_stale)), core::errc::precondition_failed);
  EXPECT_EQ(call(get("users", "42"))->version, 2u);
}

// Verifies the read preconditions: If-None-Match of the current version is not_modified
// (with the version, without the text), of another version the document; a stale
// If-Match is 412.
TEST_F(DocumentsModuleTest, GetPreconditions) {
  ASSERT_TRUE(call(put("users", "42", R"({"a":1})")).ok());
  auto inm = get("users", "42");
  inm.if_none_match = versions({1});
  auto nm = call(inm);
  ASSERT_TRUE(nm.ok());
  EXPECT_TRUE(nm->not_modified);
  EXPECT_EQ(nm->version, 1u);
  EXPECT_TRUE(nm->json.empty());
  inm.if_none_match = any_version();
  EXPECT_TRUE(call(inm)->not_modified);
  inm.if_none_match = versions({3});
  auto full = call(inm);
  ASSERT_TRUE(full.ok());
  EXPECT_FALSE(full->not_modified);
  EXPECT_EQ(full->json, R"({"a":1})");

  auto im = get("users", "42");
  im.if_match = versions({7});
  EXPECT_EQ(code_of(call(im)), core::errc::precondition_failed);
  im.if_match = versions({1});
  EXPECT_EQ(call(im)->json, R"({"a":1})");
  auto missing = get("users", "nobody");
  missing.if_match = any_version();
  EXPECT_EQ(code_of(call(missing)), core::errc::precondition_failed);
}

// Verifies PATCH applies an RFC 7396 merge patch and bumps the version.
TEST_F(DocumentsModuleTest, PatchMergesAndBumpsVersion) {
  ASSERT_TRUE(call(put("users", "42", R"({"a":1,"b":{"c":2,"d":3}})")).ok());
  auto r = call(patch("users", "42", R"({"a":null,"b":{"c":5},"e":true})"));
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_FALSE(r->created);
  EXPECT_EQ(r->version, 2u);
  EXPECT_EQ(call(get("users", "42"))->json, R"({"b":{"c":5,"d":3},"e":true})");
}

// Verifies a PATCH that changes nothing (`{}`, or members set to what they are) writes
// nothing: the reply names the current version, the store sees no write and observers
// (the change feed) hear of nothing; a PATCH that changes something still bumps it.
TEST_F(DocumentsModuleTest, APatchThatChangesNothingWritesNothing) {
  recording_observer feed{"f", store.shard(0)};
  make(0, false, {&feed});
  ASSERT_TRUE(call(put("users", "42", R"({"a":1,"b":{"c":2}})")).ok());
  const auto writes = store.latest_sequence();
  for (const char* nothing : {"{}", R"({"a":1})", R"({"b":{"c":2}})", R"({"gone":null})"}) {
    auto r = call(patch("users", "42", nothing));
    ASSERT_TRUE(r.ok()) << nothing << ": " << r.error().to_string();
    EXPECT_EQ(r->version, 1u) << nothing;
    EXPECT_FALSE(r->created);
  }
  EXPECT_EQ(store.latest_sequence(), writes) << "a patch that changed nothing was written";
  EXPECT_EQ(feed.applied_changes.size(), 1u)
    << "the change feed heard of a patch that changed nothing";
  auto changed = call(patch("users", "42", R"({"a":2})"));
  ASSERT_TRUE(changed.ok());
  EXPECT_EQ(changed->version, 2u);
  EXPECT_EQ(store.latest_sequence(), writes + 1);
  // Preconditions still apply to a patch that would change nothing.
  auto stale = patch("users", "42", "{}");
  stale.if_match = versions({1});
  EXPECT_EQ(code_of(call(stale)), core::errc::precondition_failed);
}

// Verifies PATCH works on documents and patches nested as deep as the edge accepts (the
// one limit, 64): at 40 levels both parsed with Boost.JSON's default of 32 before, and
// the PATCH answered 500.
TEST_F(DocumentsModuleTest, PatchOfDeeplyNestedDocuments) {
  auto nested = [](int depth, const std::string& leaf) {
    std::string s;
    for (int i = 0; i < depth; ++i)
      s += R"({"a":)";
    return s + leaf + std::string(static_cast<std::size_t>(depth), '}');
  };
  ASSERT_TRUE(call(put("users", "deep", nested(40, "1"))).ok());
  auto r = call(patch("users", "deep", nested(40, "2")));
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(call(get("users", "deep"))->json, nested(40, "2"));
  ASSERT_TRUE(call(put("users", "edge", nested(63, "{}"))).ok()); // 64 levels in all
  auto edge = call(patch("users", "edge", nested(63, R"({"b":1})")));
  ASSERT_TRUE(edge.ok()) << edge.error().to_string();
  EXPECT_EQ(call(get("users", "edge"))->json, nested(63, R"({"b":1})"));
}

// Verifies DELETE leaves a tombstone that keeps the version sequence: the document is
// gone for reads, patches, deletes and If-Match, and a re-created one continues the
// versions, so an old ETag never names it.
TEST_F(DocumentsModuleTest, TombstoneKeepsTheVersionSequence) {
  ASSERT_TRUE(call(put("users", "42", R"({"a":1})")).ok());
  ASSERT_TRUE(call(put("users", "42", R"({"a":2})")).ok());
  auto d = call(del("users", "42"));
  ASSERT_TRUE(d.ok()) << d.error().to_string();
  EXPECT_EQ(d->version, 3u);
  EXPECT_FALSE(d->created);
  auto raw = stored("users", "42");
  ASSERT_TRUE(raw);
  EXPECT_EQ(*raw, documents::encode_tombstone(3));
  EXPECT_EQ(code_of(call(get("users", "42"))), core::errc::not_found);
  EXPECT_EQ(code_of(call(del("users", "42"))), core::errc::not_found);
  EXPECT_EQ(code_of(call(patch("users", "42", "{}"))), core::errc::not_found);
  auto stale = put("users", "42", "{}");
  stale.if_match = versions({2});
  EXPECT_EQ(code_of(call(stale)), core::errc::precondition_failed);
  auto inm = get("users", "42");
  inm.if_none_match = versions({3});
  EXPECT_EQ(code_of(call(inm)), core::errc::not_found);

  auto again = call(put("users", "42", R"({"b":1})"));
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->created);
  EXPECT_EQ(again->version, 4u);
  auto g = call(get("users", "42"));
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->version, 4u);
  EXPECT_EQ(g->json, R"({"b":1})");
}

// Verifies storage failures: a failed write answers storage_failed and stores nothing, a
// failed read answers storage_failed (not not_found), and a write whose current record
// cannot be read is refused the same way.
TEST_F(DocumentsModuleTest, StorageFailuresAreReportedAndStoreNothing) {
  faulty.fail_writes = true;
  EXPECT_EQ(code_of(call(put("users", "42", "{}"))), core::errc::storage_failed);
  faulty.fail_writes = false;
  EXPECT_FALSE(stored("users", "42"));
  EXPECT_EQ(code_of(call(get("users", "42"))), core::errc::not_found);
  faulty.fail_reads = true;
  EXPECT_EQ(code_of(call(get("users", "42"))), core::errc::storage_failed);
  EXPECT_EQ(code_of(call(put("users", "42", "{}"))), core::errc::storage_failed);
  faulty.fail_reads = false;
  EXPECT_FALSE(stored("users", "42"));
}

// Verifies a stored record that cannot be decoded answers internal to reads and writes,
// and is left as it is.
TEST_F(DocumentsModuleTest, CorruptRecordIsReportedNotServed) {
  storage::write_batch b;
  b.put(documents::key("users", "42"), "garbage");
  ASSERT_TRUE(store.shard(0).write(b, false).ok());
  EXPECT_EQ(code_of(call(get("users", "42"))), core::errc::internal);
  EXPECT_EQ(code_of(call(put("users", "42", "{}"))), core::errc::internal);
  EXPECT_EQ(stored("users", "42"), std::optional<std::string>("garbage"));
}

// -- durability (storage.sync) ----------------------------------------------------------

// Verifies that with storage.sync a write is applied at once but answered only after the
// fsync, that a get of that document waits for the same fsync, and that a get of another
// document answers at once.
TEST_F(DocumentsModuleTest, SyncWriteAndItsReadWaitForTheFsync) {
  make(0, true);
  auto w = send(put("users", "42", R"({"a":1})"));
  EXPECT_FALSE(w->ready());
  ASSERT_TRUE(shard->sync_wanted());
  EXPECT_TRUE(stored("users", "42")) << "the write is applied before its fsync";
  auto r = send(get("users", "42"));
  auto other = send(get("users", "other"));
  EXPECT_FALSE(r->ready()) << "a read showed a write a crash could still take back";
  ASSERT_TRUE(other->ready()) << "a read of another document waited for the fsync";
  EXPECT_EQ(other->error().code(), core::errc::not_found);

  shard->sync();
  ASSERT_EQ(w->deliveries, 1);
  EXPECT_TRUE(w->value().created);
  EXPECT_EQ(w->value().version, 1u);
  ASSERT_EQ(r->deliveries, 1);
  EXPECT_EQ(r->value().version, 1u);
  EXPECT_EQ(r->value().json, R"({"a":1})");
  EXPECT_FALSE(shard->sync_wanted());
  // Durable now: a read answers at once.
  auto again = send(get("users", "42"));
  ASSERT_TRUE(again->ready());
  EXPECT_EQ(again->value().version, 1u);
}

// Verifies that a refused write (a precondition) with storage.sync still waits for the
// fsync of an earlier write of its document: its answer reveals that write's version.
TEST_F(DocumentsModuleTest, SyncRefusalAboutAnUnsyncedWriteWaitsForTheFsync) {
  make(0, true);
  auto w = send(put("users", "42", R"({"a":1})"));
  auto create_only = put("users", "42", "{}");
  create_only.if_none_match = any_version();
  auto refused = send(create_only);
  EXPECT_FALSE(w->ready());
  EXPECT_FALSE(refused->ready());
  shard->sync();
  ASSERT_TRUE(w->ready());
  ASSERT_EQ(refused->deliveries, 1);
  EXPECT_EQ(refused->error().code(), core::errc::precondition_failed);
}

// Verifies that a failed fsync answers storage_failed to the held write and to the read
// waiting for it, that the write stays readable afterwards (it is in the store), and that
// the module serves on once the disk recovers.
TEST_F(DocumentsModuleTest, FailedFsyncAnswersStorageFailed) {
  make(0, true);
  auto w1 = send(put("users", "1", "{}"));
  auto w2 = send(put("users", "2", "{}"));
  auto r = send(get("users", "1"));
  ASSERT_TRUE(shard->sync_wanted());
  shard->fail_sync(core::error{core::errc::storage_failed, "injected fsync failure"});
  ASSERT_EQ(w1->deliveries, 1);
  ASSERT_EQ(w2->deliveries, 1);
  ASSERT_EQ(r->deliveries, 1);
  EXPECT_EQ(w1->error().code(), core::errc::storage_failed);
  EXPECT_EQ(w2->error().code(), core::errc::storage_failed);
  EXPECT_EQ(r->error().code(), core::errc::storage_failed);

  auto later = send(get("users", "1"));
  ASSERT_TRUE(later->ready());
  EXPECT_EQ(later->value().version, 1u);
  auto w3 = send(put("users", "3", "{}"));
  EXPECT_FALSE(w3->ready());
  shard->sync();
  ASSERT_EQ(w3->deliveries, 1);
  EXPECT_TRUE(w3->value().created);
}

// -- observers ----------------------------------------------------------------------------

// Verifies observers see every write (collection, id, before, after, version, time on
// the shard's clock), prepared before the commit and told after it, and that what they
// add to the batch is committed with the document in one write.
TEST_F(DocumentsModuleTest, ObserversSeeEveryWriteAndAddToItsBatch) {
  recording_observer first{"a", store.shard(0)};
  recording_observer second{"b", store.shard(0)};
  make(0, false, {&first, &second});
  const auto start = shard->ctx().wall_ms();

  ASSERT_TRUE(call(put("users", "1", R"({"a":1})")).ok());
  EXPECT_EQ(store.latest_sequence(), 1u) << "the document and the observers' keys: one write";
  shard->advance(std::chrono::milliseconds(5000));
  ASSERT_TRUE(call(patch("users", "1", R"({"b":2})")).ok());
  ASSERT_TRUE(call(del("users", "1")).ok());
  ASSERT_TRUE(call(put("users", "1", R"({"c":3})")).ok());
  EXPECT_EQ(store.latest_sequence(), 4u);
  // Reads and refused writes tell nobody.
  ASSERT_TRUE(call(get("users", "1")).ok());
  EXPECT_EQ(code_of(call(patch("users", "nobody", "{}"))), core::errc::not_found);

  for (auto* o : {&first, &second}) {
    ASSERT_EQ(o->prepared.size(), 4u);
    ASSERT_EQ(o->applied_changes.size(), 4u);
    const auto& c = o->applied_changes;
    EXPECT_EQ(c[0].collection, "users");
    EXPECT_EQ(c[0].id, "1");
    EXPECT_EQ(c[0].before, "");
    EXPECT_EQ(c[0].after, R"({"a":1})");
    EXPECT_EQ(c[0].version, 1u);
    EXPECT_EQ(c[0].time_ms, start);
    EXPECT_EQ(c[1].before, R"({"a":1})");
    EXPECT_EQ(c[1].after, R"({"a":1,"b":2})");
    EXPECT_EQ(c[1].version, 2u);
    EXPECT_EQ(c[1].time_ms, start + 5000);
    EXPECT_EQ(c[2].before, R"({"a":1,"b":2})");
    EXPECT_EQ(c[2].after, "") << "a delete leaves no document";
    EXPECT_EQ(c[2].version, 3u);
    EXPECT_EQ(c[3].before, "") << "a re-created document had none before";
    EXPECT_EQ(c[3].after, R"({"c":3})");
    EXPECT_EQ(c[3].version, 4u);
    for (std::size_t i = 0; i < 4; ++i)
      EXPECT_EQ(o->prepared[i].after, c[i].after) << i;
    EXPECT_EQ(o->visible_when_applied, (std::vector<bool>{true, true, true, true}));
    auto own = store.shard(0).get(o->key_of("1"));
    ASSERT_TRUE(own.ok());
    EXPECT_EQ(*own, "4");
  }
}

// Verifies an error from an observer's prepare refuses the write with that error and
// leaves the store unchanged: neither the document nor what an earlier observer added is
// written, nobody is told it was applied, and the cached record stays.
TEST_F(DocumentsModuleTest, ObserverErrorRefusesTheWrite) {
  recording_observer first{"a", store.shard(0)};
  recording_observer second{"b", store.shard(0)};
  make(1u << 20, false, {&first, &second});
  ASSERT_TRUE(call(put("users", "1", R"({"a":1})")).ok());
  ASSERT_TRUE(call(get("users", "1")).ok()); // cached now
  const auto before = store.latest_sequence();

  second.fail = core::error{core::errc::invalid_argument, "index_value", "refused by an observer"};
  for (auto w : {patch("users", "1", R"({"a":2})"), put("users", "2", "{}"), del("users", "1")}) {
    auto r = call(w);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), core::errc::invalid_argument);
    EXPECT_EQ(r.error().name(), "index_value");
    EXPECT_EQ(r.error().message(), "refused by an observer");
  }
  EXPECT_EQ(store.latest_sequence(), before);
  EXPECT_EQ(stored("users", "1"), std::optional<std::string>(documents::encode(1, R"({"a":1})")));
  EXPECT_FALSE(stored("users", "2"));
  EXPECT_FALSE(store.shard(0).get(first.key_of("2")).ok());
  EXPECT_EQ(*store.shard(0).get(first.key_of("1")), "1");
  EXPECT_EQ(first.prepared.size(), 4u);
  EXPECT_EQ(first.applied_changes.size(), 1u);
  EXPECT_EQ(second.applied_changes.size(), 1u);
  // The cache still holds version 1: served with store reads failing.
  faulty.fail_reads = true;
  auto g = call(get("users", "1"));
  ASSERT_TRUE(g.ok()) << g.error().to_string();
  EXPECT_EQ(g->version, 1u);
  EXPECT_EQ(g->json, R"({"a":1})");
  faulty.fail_reads = false;

  second.fail.reset();
  auto ok = call(patch("users", "1", R"({"a":2})"));
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->version, 2u) << "a refused write consumed no version";
}

// Verifies a write the store refuses is not told to the observers (their keys are not
// stored either: they were in the same batch).
TEST_F(DocumentsModuleTest, FailedCommitIsNotAppliedForObservers) {
  recording_observer o{"a", store.shard(0)};
  make(0, false, {&o});
  faulty.fail_writes = true;
  EXPECT_EQ(code_of(call(put("users", "1", "{}"))), core::errc::storage_failed);
  faulty.fail_writes = false;
  EXPECT_EQ(o.prepared.size(), 1u);
  EXPECT_TRUE(o.applied_changes.empty());
  EXPECT_FALSE(store.shard(0).get(o.key_of("1")).ok());
  EXPECT_FALSE(stored("users", "1"));
}

// Verifies refuse_writes: every later put, patch and delete fails with the given error and
// stores nothing, while reads are still served.
TEST_F(DocumentsModuleTest, RefusedWritesFailWithTheReasonAndReadsGoOn) {
  ASSERT_TRUE(call(put("users", "1", R"({"a":1})")).ok());
  const auto before = store.latest_sequence();
  docs->refuse_writes(core::error{core::errc::storage_failed, "the indexes could not be loaded"});
  for (auto w : {put("users", "1", "{}"), patch("users", "1", "{}"), del("users", "1"),
                 put("users", "2", "{}")}) {
    auto r = call(w);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), core::errc::storage_failed);
    EXPECT_EQ(r.error().message(), "the indexes could not be loaded");
  }
  EXPECT_EQ(store.latest_sequence(), before);
  auto g = call(get("users", "1"));
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->version, 1u);
  EXPECT_EQ(code_of(call(get("users", "2"))), core::errc::not_found);
}

// -- the read cache -----------------------------------------------------------------------

// Verifies that with the read cache a get after each acknowledged write (put, patch,
// delete, re-create) sees that write, although every previous version was cached.
TEST_F(DocumentsModuleTest, ReadCacheReadAfterWriteSeesEachWrite) {
  make(1u << 20);
  EXPECT_TRUE(call(put("users", "1", R"({"a":1})"))->created);
  auto g1 = call(get("users", "1"));
  EXPECT_EQ(g1->version, 1u);
  EXPECT_EQ(g1->json, R"({"a":1})");
  EXPECT_EQ(call(put("users", "1", R"({"a":2})"))->version, 2u);
  auto g2 = call(get("users", "1"));
  EXPECT_EQ(g2->version, 2u);
  EXPECT_EQ(g2->json, R"({"a":2})");
  EXPECT_EQ(call(patch("users", "1", R"({"b":true})"))->version, 3u);
  auto g3 = call(get("users", "1"));
  EXPECT_EQ(g3->version, 3u);
  EXPECT_EQ(g3->json, R"({"a":2,"b":true})");
  EXPECT_EQ(call(del("users", "1"))->version, 4u);
  EXPECT_EQ(code_of(call(get("users", "1"))), core::errc::not_found);
  auto re = call(put("users", "1", R"({"c":3})"));
  ASSERT_TRUE(re.ok());
  EXPECT_TRUE(re->created);
  EXPECT_EQ(re->version, 5u);
  auto g5 = call(get("users", "1"));
  ASSERT_TRUE(g5.ok());
  EXPECT_EQ(g5->version, 5u);
  EXPECT_EQ(g5->json, R"({"c":3})");
  // An ETag of an old version no longer answers not_modified.
  auto inm = get("users", "1");
  inm.if_none_match = versions({4});
  auto full = call(inm);
  ASSERT_TRUE(full.ok());
  EXPECT_FALSE(full->not_modified);
}

// Verifies a document read once from the store is served from the cache afterwards:
// with every store read failing, get and If-None-Match still answer, and the hit and miss
// counters move; an uncached document does reach the (failing) store.
TEST_F(DocumentsModuleTest, ReadCacheServesRepeatedGetsWithoutTheStore) {
  store_directly("users", "1", 3, R"({"a":1})");
  make(1u << 20);
  auto first = call(get("users", "1"));
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->version, 3u);
  EXPECT_EQ(metrics.cache_misses.value(), 1u);
  EXPECT_EQ(metrics.cache_hits.value(), 0u);
  EXPECT_GT(metrics.cache_bytes.value(), 0);

  faulty.fail_reads = true;
  auto second = call(get("users", "1"));
  ASSERT_TRUE(second.ok()) << second.error().to_string();
  EXPECT_EQ(second->version, 3u);
  EXPECT_EQ(second->json, R"({"a":1})");
  EXPECT_EQ(metrics.cache_hits.value(), 1u);

  auto inm = get("users", "1");
  inm.if_none_match = versions({3});
  auto nm = call(inm);
  ASSERT_TRUE(nm.ok());
  EXPECT_TRUE(nm->not_modified);
  EXPECT_EQ(nm->version, 3u);
  EXPECT_TRUE(nm->json.empty());
  inm.if_none_match = versions({2});
  EXPECT_EQ(call(inm)->json, R"({"a":1})");
  EXPECT_EQ(metrics.cache_hits.value(), 3u);

  // Not cached: the failing store is asked, and the failure is reported.
  EXPECT_EQ(code_of(call(get("users", "2"))), core::errc::storage_failed);
  EXPECT_EQ(metrics.cache_misses.value(), 2u);
  EXPECT_EQ(metrics.cache_hits.value(), 3u);
}

// Verifies the fill policy: reads fill the cache and writes refresh what it holds (served
// and patched with store reads failing, a delete's tombstone included), while a document
// that was only written is not cached.
TEST_F(DocumentsModuleTest, ReadCacheIsFilledByReadsAndRefreshedByWrites) {
  make(1u << 20);
  ASSERT_TRUE(call(put("users", "1", R"({"a":0})")).ok());
  ASSERT_TRUE(call(put("users", "2", R"({"a":2})")).ok());
  ASSERT_TRUE(call(put("users", "3", R"({"a":3})")).ok());
  EXPECT_TRUE(call(get("users", "1")).ok()); // a miss: now cached
  EXPECT_TRUE(call(get("users", "2")).ok()); // a miss: now cached
  ASSERT_TRUE(call(put("users", "1", R"({"a":1})")).ok());
  ASSERT_TRUE(call(del("users", "2")).ok());
  faulty.fail_reads = true;
  auto g = call(get("users", "1"));
  ASSERT_TRUE(g.ok()) << g.error().to_string();
  EXPECT_EQ(g->json, R"({"a":1})");
  EXPECT_EQ(code_of(call(get("users", "2"))), core::errc::not_found);
  // Written, never read: not cached, so the failing store answers.
  EXPECT_EQ(code_of(call(get("users", "3"))), core::errc::storage_failed);
  // A write reads the current version through the cache too.
  auto p = call(patch("users", "1", R"({"b":2})"));
  ASSERT_TRUE(p.ok()) << p.error().to_string();
  EXPECT_EQ(p->version, 3u);
  EXPECT_EQ(call(get("users", "1"))->json, R"({"a":1,"b":2})");
  EXPECT_EQ(metrics.cache_misses.value(), 3u);
  EXPECT_EQ(metrics.cache_hits.value(), 3u);
  // Only gets count: the writes' own lookups are neither hits nor misses.
  faulty.fail_reads = false;
  auto raw = stored("users", "1");
  ASSERT_TRUE(raw);
  EXPECT_EQ(documents::decode(*raw)->version, 3u);
}

// Verifies storage.doc_cache_bytes = 0 disables the cache: with store reads failing,
// every get fails, and nothing is counted as cached.
TEST_F(DocumentsModuleTest, ReadCacheDisabledAtZeroBytes) {
  make(0);
  ASSERT_TRUE(call(put("users", "1", R"({"a":1})")).ok());
  EXPECT_TRUE(call(get("users", "1")).ok());
  faulty.fail_reads = true;
  EXPECT_EQ(code_of(call(get("users", "1"))), core::errc::storage_failed);
  EXPECT_EQ(code_of(call(get("users", "1"))), core::errc::storage_failed);
  EXPECT_EQ(metrics.cache_hits.value(), 0u);
  EXPECT_EQ(metrics.cache_bytes.value(), 0);
}

// Verifies the cache bound: the least recently used document is evicted, a document
// larger than the bound is not cached, and the bytes gauge stays within the bound and
// returns to 0 when the module goes.
TEST_F(DocumentsModuleTest, ReadCacheEvictsWithinItsBound) {
  const std::string json = R"({"v":"0123456789"})";
  const auto cost = documents::key("users", "d1").size() + documents::encode(1, json).size()
                    + documents::read_cache::entry_overhead;
  const std::size_t bound = 2 * cost + cost / 2; // two documents fit, three do not
  make(bound);
  // Reads fill the cache: write all four, then read each once.
  for (const char* id : {"d1", "d2", "d3"})
    ASSERT_TRUE(call(put("users", id, json)).ok());
  ASSERT_TRUE(call(put("users", "big", "{\"v\":\"" + std::string(bound, 'x') + "\"}")).ok());
  for (const char* id : {"d1", "d2", "d3", "big"})
    EXPECT_TRUE(call(get("users", id)).ok()) << id;
  EXPECT_LE(metrics.cache_bytes.value(), static_cast<std::int64_t>(bound));
  EXPECT_GT(metrics.cache_bytes.value(), 0);
  faulty.fail_reads = true;
  EXPECT_EQ(code_of(call(get("users", "big"))), core::errc::storage_failed);
  EXPECT_TRUE(call(get("users", "d3")).ok());
  EXPECT_TRUE(call(get("users", "d2")).ok());
  EXPECT_EQ(code_of(call(get("users", "d1"))), core::errc::storage_failed);
  docs.reset();
  EXPECT_EQ(metrics.cache_bytes.value(), 0);
}

// Verifies the cache does not let a read overtake the fsync with storage.sync: a cached
// write is not served before it is durable.
TEST_F(DocumentsModuleTest, ReadCacheWaitsForTheFsyncWithSync) {
  make(1u << 20, true);
  auto w = send(put("users", "1", R"({"a":1})"));
  auto r = send(get("users", "1"));
  EXPECT_TRUE(shard->sync_wanted());
  EXPECT_EQ(w->deliveries, 0);
  EXPECT_EQ(r->deliveries, 0);
  shard->sync();
  ASSERT_EQ(w->deliveries, 1);
  ASSERT_EQ(r->deliveries, 1);
  EXPECT_EQ(r->value().version, 1u);
  EXPECT_EQ(r->value().json, R"({"a":1})");
  // Durable now: served from the cache at once (the held read filled it).
  auto again = send(get("users", "1"));
  ASSERT_TRUE(again->ready());
  EXPECT_EQ(again->value().version, 1u);
  EXPECT_EQ(metrics.cache_hits.value(), 1u);
}

// Verifies a write refreshes a cached record in place (the bytes gauge follows its new
// size) and a write of an uncached document adds nothing to the cache.
TEST_F(DocumentsModuleTest, ReadCacheWriteRefreshesTheCachedRecord) {
  make(1u << 20);
  ASSERT_TRUE(call(put("users", "1", R"({"a":1})")).ok());
  EXPECT_EQ(metrics.cache_bytes.value(), 0) << "a write alone fills nothing";
  ASSERT_TRUE(call(get("users", "1")).ok());
  const auto small = metrics.cache_bytes.value();
  const std::string bigger = R"({"a":")" + std::string(100, 'x') + R"("})";
  ASSERT_TRUE(call(put("users", "1", bigger)).ok());
  EXPECT_EQ(metrics.cache_bytes.value(), small + 100 + 2 - 1)
    << "the cached record is the new one, at its own size";
  ASSERT_TRUE(call(put("users", "2", "{}")).ok());
  EXPECT_EQ(metrics.cache_bytes.value(), small + 101);
  EXPECT_EQ(metrics.cache_misses.value(), 1u);
  faulty.fail_reads = true;
  auto g = call(get("users", "1"));
  ASSERT_TRUE(g.ok()) << g.error().to_string();
  EXPECT_EQ(g->version, 2u);
  EXPECT_EQ(g->json, bigger);
  EXPECT_EQ(metrics.cache_hits.value(), 1u);
}

// -- collection_stats ---------------------------------------------------------------------

// Verifies the collection.stats scan: live documents only, numeric values of a dotted
// path, other collections apart.
TEST_F(DocumentsModuleTest, StatsCountLiveDocumentsAndAggregateAField) {
  ASSERT_TRUE(call(put("orders", "a", R"({"total":{"net":10}})")).ok());
  ASSERT_TRUE(call(put("orders", "b", R"({"total":{"net":2.5}})")).ok());
  ASSERT_TRUE(call(put("orders", "c", R"({"total":"n/a"})")).ok());
  ASSERT_TRUE(call(put("orders", "d", R"({"total":{"net":100}})")).ok());
  ASSERT_TRUE(call(del("orders", "d")).ok());
  ASSERT_TRUE(call(put("other", "x", R"({"total":{"net":1000}})")).ok());
  auto s = call(stats_of("orders", "total.net"));
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  EXPECT_EQ(s->count, 3u);
  EXPECT_EQ(s->numeric, 2u);
  EXPECT_DOUBLE_EQ(s->min, 2.5);
  EXPECT_DOUBLE_EQ(s->max, 10);
  EXPECT_DOUBLE_EQ(s->sum, 12.5);
  auto none = call(stats_of("nobody", "total"));
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->count, 0u);
}

// Verifies the stats scan runs in bounded steps: with more than shard::scan_step_keys
// documents it answers only after more than one deferred step, and writes served between
// its steps to documents it has not reached yet (two new ones, a changed one, a deleted
// one) are not counted: it reads one snapshot.
TEST_F(DocumentsModuleTest, StatsScanRunsInStepsOverASnapshot) {
  const std::size_t n = 2 * shard::scan_step_keys + 10;
  for (std::size_t i = 0; i < n; ++i) {
    char id[16];
    std::snprintf(id, sizeof id, "o%05zu", i);
    store_directly("orders", id, 1, R"({"v":1})");
  }
  auto s = serve_only(stats_of("orders", "v"));
  EXPECT_FALSE(s->ready()) << "the whole collection was scanned in one step";

  // Between the steps, past where the first step stopped.
  std::vector<std::shared_ptr<capture<documents::doc_written>>> writes{
    serve_only(put("orders", "z1", R"({"v":1000})")),
    serve_only(put("orders", "z2", R"({"v":1000})")),
    serve_only(put("orders", "o00500", R"({"v":500})")),
    serve_only(del("orders", "o00400")),
  };
  for (const auto& w : writes) {
    ASSERT_EQ(w->deliveries, 1);
    EXPECT_TRUE(w->last->ok());
  }
  EXPECT_FALSE(s->ready());

  std::size_t steps = 0;
  while (!s->ready() && shard->run_one())
    ++steps;
  EXPECT_GT(steps, 1u) << "expected more than one further step for " << n << " documents";
  ASSERT_EQ(s->deliveries, 1);
  const auto stats = s->value();
  EXPECT_EQ(stats.count, n);
  EXPECT_EQ(stats.numeric, n);
  EXPECT_DOUBLE_EQ(stats.sum, static_cast<double>(n));
  EXPECT_DOUBLE_EQ(stats.max, 1);

  // A new scan sees the writes.
  auto after = call(stats_of("orders", "v"));
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->count, n + 1);
  EXPECT_DOUBLE_EQ(after->sum, static_cast<double>(n) - 2 + 500 + 2000);
  EXPECT_DOUBLE_EQ(after->max, 1000);
}

// Verifies with storage.sync the stats answer waits for the fsync of a write it may have
// counted.
TEST_F(DocumentsModuleTest, StatsWithSyncWaitForUnsyncedWrites) {
  make(0, true);
  auto w = send(put("orders", "a", R"({"v":2})"));
  auto s = send(stats_of("orders", "v"));
  EXPECT_FALSE(w->ready());
  EXPECT_FALSE(s->ready());
  shard->sync();
  ASSERT_TRUE(w->ready());
  ASSERT_EQ(s->deliveries, 1);
  EXPECT_EQ(s->value().count, 1u);
  EXPECT_DOUBLE_EQ(s->value().sum, 2);
}

} // namespace
} // namespace shoal::testing
