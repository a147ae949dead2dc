// SPDX-License-Identifier: Apache-2.0
// The secondary indexes of one shard (query/shard_index.hpp) over a memory store:
// definitions and their build (counting, then indexing, in bounded steps, resumable
// after a reopen), entry maintenance by plan_document, drop, and query execution by
// run(): index choice, bounds, order, cursors, limits, refusals and explain. Every query
// answer is compared with a brute-force filter and sort over the documents the test
// wrote; every index is compared, key by key, with the entries its documents imply.
#include "query/shard_index.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <future>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/json.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "actors/documents.hpp"
#include "query/query.hpp"
#include "query/values.hpp"
#include "storage/memory_store.hpp"
#include "tests/storage/storage_test_util.hpp"

namespace shoal::query {
namespace {

namespace json = boost::json;
namespace documents = actors::documents;
using key_set = std::set<std::string>;

/// How the shard actor stores documents (actors/documents.hpp), as shard_index sees it.
document_layout layout() {
  document_layout l;
  l.prefix = [](std::string_view collection) { return documents::collection_prefix(collection); };
  l.decode = [](std::string_view stored, std::uint64_t& version, std::string_view& text) {
    auto r = documents::decode(stored);
    if (!r || !r->live()) return false;
    version = r->version;
    text = r->json;
    return true;
  };
  return l;
}

/// A live document of the model: its version and JSON text.
struct model_doc {
  std::uint64_t version = 0;
  std::string text;
};
using model = std::map<std::string, model_doc>; ///< by id

/// Parses a query body as a client sends it (the test's queries are all valid).
query_spec spec_of_json(const json::value& body) {
  query_limits limits;
  limits.max_limit = 1000;
  auto r = parse_query(body, limits);
  if (auto* e = std::get_if<query_error>(&r)) {
    ADD_FAILURE() << json::serialize(body) << ": " << e->code << ": " << e->message;
    return {};
  }
  return std::get<query_spec>(r);
}
query_spec spec_of(std::string_view body) {
  return spec_of_json(json::parse(body));
}

/// One build step of at most `max_docs` documents; checks that it visited at most the
/// documents a step may read (20 times more while counting).
storage::status step(shard_index& idx, std::uint32_t max_docs) {
  std::uint32_t visited = 0;
  auto s = idx.build_step(max_docs, visited);
  EXPECT_LE(visited, max_docs * 20);
  return s;
}

/// Readable form of a hit list, for failure messages.
std::string describe(const std::vector<hit>& hits) {
  std::string out = "[";
  for (const auto& h : hits)
    out += (out.size() > 1 ? " " : "") + h.id + "@" + std::to_string(h.version);
  return out + "]";
}

class ShardIndexTest : public ::testing::Test {
protected:
  void SetUp() override {
    reopen();
  }

  /// Opens a new shard_index over the store, as after a restart.
  void reopen() {
    idx_.reset();
    ASSERT_OK(shard_index::open(shard_, layout(), idx_));
    ASSERT_NE(idx_, nullptr);
  }

  /// Writes document `id` of `collection` as the shard actor does: its index entry
  /// changes and the record in one batch, the version one past the stored one.
  void put_doc(const std::string& collection, const std::string& id, const std::string& text) {
    write_doc(collection, id, text);
  }
  void del_doc(const std::string& collection, const std::string& id) {
    write_doc(collection, id, {});
  }
  void write_doc(const std::string& collection, const std::string& id, const std::string& after) {
    const auto key = documents::key(collection, id);
    std::string stored;
    std::string before;
    std::uint64_t version = 0;
    auto s = shard_.get(key, stored);
    if (s) {
      auto r = documents::decode(stored);
      ASSERT_TRUE(r.has_value());
      version = r->version;
      if (r->live()) before.assign(r->json);
    } else {
      ASSERT_EQ(s.code(), storage::errc::not_found);
    }
    storage::write_batch batch;
    if (idx_->indexed(collection)) idx_->plan_document(batch, collection, id, before, after);
    batch.put(key, after.empty() ? documents::encode_tombstone(version + 1)
                                 : documents::encode(version + 1, after));
    ASSERT_OK(shard_.write(batch, false));
    if (after.empty()) {
      docs_[collection].erase(id);
    } else {
      docs_[collection][id] = {version + 1, after};
    }
  }

  /// Runs build steps of `max_docs` until no index is building (bounded).
  void build_all(std::uint32_t max_docs = 5) {
    for (int i = 0; i < 100'000 && idx_->building(); ++i)
      ASSERT_OK(step(*idx_, max_docs));
    ASSERT_FALSE(idx_->building());
  }

  /// Creates the index and builds every building index to ready.
  void create_ready(const std::string& collection, const std::string& path) {
    bool created = false;
    ASSERT_OK(idx_->create(collection, path, created));
    EXPECT_TRUE(created);
    build_all();
  }

  /// Every key starting with `prefix` in the store.
  key_set keys(std::string_view prefix) {
    key_set out;
    EXPECT_OK(store_.shard(0).scan_prefix(prefix, [&](std::string_view k, std::string_view v) {
      if (prefix == "x") {
        EXPECT_EQ(v, "") << "an index entry has an empty value";
      }
      out.emplace(k);
      return true;
    }));
    return out;
  }

  /// The entries of the index on (collection, path) that the model's documents imply.
  key_set expected_entries(const std::string& collection, const std::string& path) {
    key_set out;
    const auto prefix = index_entry_prefix(collection, path);
    for (const auto& [id, d] : docs_[collection]) {
      auto doc = json::parse(d.text);
      const auto* v = lookup(doc, path);
      if (!v || !is_scalar(*v)) continue;
      std::string k = prefix;
      EXPECT_TRUE(append_value_key(k, *v));
      out.insert(k + id);
    }
    return out;
  }

  /// The answer of the model: the matches of `spec` after its cursor, in order, the
  /// first `limit`, and whether more match.
  shard_hits brute_force(const std::string& collection, const query_spec& spec) {
    shard_hits out;
    for (const auto& [id, d] : docs_[collection]) {
      auto doc = json::parse(d.text);
      if (!spec.where.matches(doc)) continue;
      auto key = sort_key(spec, doc, id);
      if (!after_cursor(spec, key)) continue;
      out.hits.push_back(hit{key, id, d.version, d.text});
    }
    std::sort(out.hits.begin(), out.hits.end(), [&](const hit& a, const hit& b) {
      return spec.desc ? a.sort_key > b.sort_key : a.sort_key < b.sort_key;
    });
    if (out.hits.size() > spec.limit) {
      out.hits.resize(spec.limit);
      out.more = true;
    }
    return out;
  }

  /// The hits of `spec`, failing when the shard refused or answered a plan.
  shard_hits hits(const std::string& collection, const query_spec& spec) {
    auto a = idx_->run(collection, spec);
    if (auto* e = std::get_if<query_error>(&a)) {
      ADD_FAILURE() << "refused: " << e->code << ": " << e->message;
      return {};
    }
    if (!std::holds_alternative<shard_hits>(a)) {
      ADD_FAILURE() << "not hits";
      return {};
    }
    return std::get<shard_hits>(a);
  }

  /// The plan of `spec` (explain), failing when the shard refused.
  shard_plan plan(const std::string& collection, query_spec spec) {
    spec.explain = true;
    auto a = idx_->run(collection, spec);
    if (auto* e = std::get_if<query_error>(&a)) {
      ADD_FAILURE() << "refused: " << e->code << ": " << e->message;
      return {};
    }
    if (!std::holds_alternative<shard_plan>(a)) {
      ADD_FAILURE() << "not a plan";
      return {};
    }
    return std::get<shard_plan>(a);
  }

  /// The refusal of `spec`, or an empty code when it was answered.
  query_error refusal(const std::string& collection, const query_spec& spec) {
    auto a = idx_->run(collection, spec);
    if (auto* e = std::get_if<query_error>(&a)) return *e;
    return {};
  }

  /// Expects the shard's answer to `spec` to be the model's, hit by hit.
  void expect_same(const std::string& collection, const query_spec& spec, const std::string& what) {
    auto got = hits(collection, spec);
    auto want = brute_force(collection, spec);
    ASSERT_EQ(got.hits.size(), want.hits.size())
      << what << ": got " << describe(got.hits) << " want " << describe(want.hits);
    for (std::size_t i = 0; i < want.hits.size(); ++i) {
      EXPECT_EQ(got.hits[i].id, want.hits[i].id) << what << " #" << i;
      EXPECT_EQ(got.hits[i].sort_key, want.hits[i].sort_key) << what << " #" << i;
      EXPECT_EQ(got.hits[i].version, want.hits[i].version) << what << " #" << i;
      EXPECT_EQ(got.hits[i].doc, want.hits[i].doc) << what << " #" << i;
    }
    EXPECT_EQ(got.more, want.more) << what;
  }

  /// Pages through `spec` with `page` hits at a time, resuming after the last hit's
  /// sort key, and expects every page to be the model's and all of them together to be
  /// every match exactly once, in order.
  void expect_paging(const std::string& collection, query_spec spec, std::uint32_t page,
                     const std::string& what) {
    auto all_spec = spec;
    all_spec.limit = 100'000;
    const auto all = brute_force(collection, all_spec);
    spec.limit = page;
    spec.after.clear();
    std::vector<std::string> seen;
    for (int n = 0; n < 10'000; ++n) {
      auto got = hits(collection, spec);
      auto want = brute_force(collection, spec);
      std::vector<std::string> got_ids, want_ids;
      for (const auto& h : got.hits)
        got_ids.push_back(h.id);
      for (const auto& h : want.hits)
        want_ids.push_back(h.id);
      ASSERT_EQ(got_ids, want_ids) << what << ", page " << n;
      ASSERT_EQ(got.more, want.more) << what << ", page " << n;
      seen.insert(seen.end(), got_ids.begin(), got_ids.end());
      if (!got.more) break;
      ASSERT_FALSE(got.hits.empty()) << what << ": more without hits";
      spec.after = got.hits.back().sort_key;
    }
    std::vector<std::string> all_ids;
    for (const auto& h : all.hits)
      all_ids.push_back(h.id);
    EXPECT_EQ(seen, all_ids) << what;
  }

  storage::memory_store store_{1};
  storage::shard_store& shard_ = store_.shard(0);
  std::unique_ptr<shard_index> idx_;
  std::map<std::string, model> docs_; ///< by collection
};

// -- definitions and builds ---------------------------------------------------------

// Verifies the key layout of entries: 'x' ++ collection ++ '\0' ++ path ++ '\0'.
TEST_F(ShardIndexTest, EntryPrefixLayout) {
  EXPECT_EQ(index_entry_prefix("users", "a.b"), std::string("xusers\0a.b\0", 11));
}

// Verifies create makes a building index with a definition key, finds an existing one
// without creating it again, and lists the collection's indexes by path.
TEST_F(ShardIndexTest, CreateDefinesABuildingIndex) {
  EXPECT_FALSE(idx_->indexed("users"));
  EXPECT_FALSE(idx_->building());
  bool created = false;
  ASSERT_OK(idx_->create("users", "age", created));
  EXPECT_TRUE(created);
  const auto* p = idx_->find("users", "age");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->field, "age");
  EXPECT_FALSE(p->ready);
  EXPECT_EQ(p->indexed, 0u);
  EXPECT_TRUE(idx_->indexed("users"));
  EXPECT_FALSE(idx_->indexed("other"));
  EXPECT_TRUE(idx_->building());
  EXPECT_EQ(keys("i").size(), 1u);
  ASSERT_OK(idx_->create("users", "age", created));
  EXPECT_FALSE(created);
  ASSERT_OK(idx_->create("users", "addr.city", created));
  EXPECT_TRUE(created);
  auto list = idx_->list("users");
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].field, "addr.city");
  EXPECT_EQ(list[1].field, "age");
  EXPECT_TRUE(idx_->list("other").empty());
  EXPECT_EQ(idx_->find("users", "name"), nullptr);
  EXPECT_EQ(idx_->find("other", "age"), nullptr);
}

// Verifies progress JSON round-trips and refuses foreign text.
TEST_F(ShardIndexTest, ProgressJson) {
  index_progress p{"a.b", false, 3, 10};
  auto back = index_progress::from_json(p.to_json());
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->field, "a.b");
  EXPECT_FALSE(back->ready);
  EXPECT_EQ(back->indexed, 3u);
  EXPECT_EQ(back->total, 10u);
  EXPECT_EQ(json::parse(p.to_json()).as_object().at("state"), "building");
  p.ready = true;
  EXPECT_EQ(json::parse(p.to_json()).as_object().at("state"), "ready");
  EXPECT_FALSE(index_progress::from_json("").has_value());
  EXPECT_FALSE(index_progress::from_json("[]").has_value());
  EXPECT_FALSE(index_progress::from_json(R"({"field":"a","state":"odd","indexed":1,"total":1})"));
  EXPECT_FALSE(
    index_progress::from_json(R"({"field":"a","state":"ready","indexed":-1,"total":1})"));
}

// Verifies the build counts the documents first (total grows, indexed stays 0), then
// indexes them (indexed grows up to total), in bounded steps, and ends ready with
// indexed == total == the live documents and exactly their entries.
TEST_F(ShardIndexTest, BuildCountsThenIndexesToReady) {
  for (int i = 0; i < 250; ++i) {
    put_doc("users", "d" + std::to_string(1000 + i), R"({"age":)" + std::to_string(i % 7) + "}");
    if (i % 5 == 4) del_doc("users", "d" + std::to_string(1000 + i));
  }
  put_doc("other", "o1", R"({"age":1})");
  const std::uint64_t live = docs_["users"].size();
  ASSERT_EQ(live, 200u);
  bool created = false;
  ASSERT_OK(idx_->create("users", "age", created));
  std::uint64_t last_total = 0, last_indexed = 0;
  bool counted = false;
  int steps = 0;
  while (idx_->building() && steps < 1000) {
    ASSERT_OK(step(*idx_, 4));
    ++steps;
    const auto* p = idx_->find("users", "age");
    ASSERT_NE(p, nullptr);
    EXPECT_GE(p->total, last_total);
    EXPECT_GE(p->indexed, last_indexed);
    if (!counted) {
      EXPECT_EQ(p->indexed, 0u) << "no document is indexed while counting";
      if (p->indexed == 0 && p->total == live) counted = true;
    }
    if (!p->ready) {
      EXPECT_LE(p->indexed - last_indexed, 4u) << "a step indexes at most max_docs";
      EXPECT_LE(p->indexed, p->total);
    }
    last_total = p->total;
    last_indexed = p->indexed;
  }
  const auto* p = idx_->find("users", "age");
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(p->ready);
  EXPECT_EQ(p->indexed, live);
  EXPECT_EQ(p->total, live);
  EXPECT_TRUE(counted);
  // Counting 250 keys by 80, then indexing 250 keys by 4 (tombstones count as visited).
  EXPECT_GE(steps, 250 / 4);
  EXPECT_LE(steps, 250 / 80 + 1 + 250 / 4 + 2);
  EXPECT_EQ(keys("x"), expected_entries("users", "age"));
  EXPECT_EQ(keys("x").size(), live);
}

// Verifies a build step also ends after about 4 MiB of documents, whatever max_docs: with
// 1.5 MiB documents each step reads three, counting and indexing alike.
TEST_F(ShardIndexTest, BuildStepsAreBoundedInBytes) {
  const std::string pad(3u << 19, 'p'); // 1.5 MiB
  for (int i = 0; i < 9; ++i)
    put_doc("big", "b" + std::to_string(i),
            R"({"k":)" + std::to_string(i) + R"(,"pad":")" + pad + "\"}");
  bool created = false;
  ASSERT_OK(idx_->create("big", "k", created));
  std::vector<std::uint32_t> visits;
  while (idx_->building() && visits.size() < 20) {
    std::uint32_t visited = 0;
    ASSERT_OK(idx_->build_step(500, visited));
    visits.push_back(visited);
  }
  EXPECT_FALSE(idx_->building());
  // Counting 3 + 3 + 3 (the third step reaches the end and ends the phase); indexing the same.
  EXPECT_EQ(visits, (std::vector<std::uint32_t>{3, 3, 3, 3, 3, 3})) << visits.size();
  EXPECT_EQ(keys("x").size(), 9u);
}

// Verifies a build over an empty collection becomes ready with 0 of 0.
TEST_F(ShardIndexTest, BuildOverEmptyCollection) {
  create_ready("users", "age");
  const auto* p = idx_->find("users", "age");
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(p->ready);
  EXPECT_EQ(p->indexed, 0u);
  EXPECT_EQ(p->total, 0u);
  EXPECT_TRUE(keys("x").empty());
}

// Verifies the build derives entries for scalars only: null, booleans, numbers and
// strings (NUL bytes included) get one; arrays, objects and missing fields get none;
// dotted paths reach into objects.
TEST_F(ShardIndexTest, BuildIndexesScalarsOnly) {
  put_doc("c", "null", R"({"v":null,"o":{"p":1}})");
  put_doc("c", "false", R"({"v":false,"o":{"p":"x"}})");
  put_doc("c", "true", R"({"v":true,"o":{"p":[1]}})");
  put_doc("c", "int", R"({"v":-3,"o":7})");
  put_doc("c", "dbl", R"({"v":2.5})");
  put_doc("c", "str", R"({"v":"a\u0000b"})");
  put_doc("c", "arr", R"({"v":[1,2]})");
  put_doc("c", "obj", R"({"v":{"a":1}})");
  put_doc("c", "none", R"({"w":1})");
  create_ready("c", "v");
  create_ready("c", "o.p");
  auto v = keys(index_entry_prefix("c", "v"));
  EXPECT_EQ(v, expected_entries("c", "v"));
  EXPECT_EQ(v.size(), 6u);
  auto op = keys(index_entry_prefix("c", "o.p"));
  EXPECT_EQ(op, expected_entries("c", "o.p"));
  EXPECT_EQ(op.size(), 2u);
}

// -- maintenance by plan_document ---------------------------------------------------

// Verifies plan_document keeps entries right for inserts, value changes, unchanged
// values (no operation at all), deletes, removed fields, and scalars turning into arrays
// or objects and back.
TEST_F(ShardIndexTest, PlanDocumentMaintainsEntries) {
  create_ready("users", "age");
  create_ready("users", "addr.city");
  auto check = [&](const std::string& step) {
    EXPECT_EQ(keys(index_entry_prefix("users", "age")), expected_entries("users", "age")) << step;
    EXPECT_EQ(keys(index_entry_prefix("users", "addr.city")),
              expected_entries("users", "addr.city"))
      << step;
  };
  put_doc("users", "a", R"({"age":30,"addr":{"city":"Oslo"}})");
  check("insert");
  EXPECT_EQ(keys("x").size(), 2u);
  put_doc("users", "a", R"({"age":31,"addr":{"city":"Oslo"}})");
  check("value change");
  put_doc("users", "a", R"({"age":"31","addr":{"city":"Oslo"}})");
  check("type change");
  put_doc("users", "a", R"({"addr":{"city":"Oslo"}})");
  check("field removed");
  EXPECT_EQ(keys(index_entry_prefix("users", "age")).size(), 0u);
  put_doc("users", "a", R"({"age":5,"addr":{"city":["Oslo"]}})");
  check("non-scalar nested value");
  put_doc("users", "a", R"({"age":{"y":5},"addr":"Oslo"})");
  check("object value, parent not an object");
  EXPECT_TRUE(keys("x").empty());
  put_doc("users", "a", R"({"age":5,"addr":{"city":"Rome"}})");
  put_doc("users", "b", R"({"age":5,"addr":{"city":"Rome"}})");
  check("two documents, one value");
  del_doc("users", "a");
  check("delete");
  put_doc("users", "a", R"({"age":6})");
  check("re-create after delete");

  // An unchanged value plans nothing; a collection without indexes plans nothing.
  storage::write_batch batch;
  idx_->plan_document(batch, "users", "b", R"({"age":5,"addr":{"city":"Rome"},"n":1})",
                      R"({"addr":{"city":"Rome"},"age":5.0,"n":2})");
  EXPECT_TRUE(batch.empty());
  idx_->plan_document(batch, "other", "b", "", R"({"age":5})");
  EXPECT_TRUE(batch.empty());
}

// Verifies plan_document on an unparsable or non-object text treats it as no document.
TEST_F(ShardIndexTest, PlanDocumentToleratesBadText) {
  create_ready("users", "age");
  storage::write_batch batch;
  idx_->plan_document(batch, "users", "a", "not json", R"({"age":1})");
  ASSERT_EQ(batch.size(), 1u);
  EXPECT_EQ(batch.ops()[0].kind, storage::write_batch::op_kind::put);
  batch.clear();
  idx_->plan_document(batch, "users", "a", R"({"age":1})", "[1]");
  ASSERT_EQ(batch.size(), 1u);
  EXPECT_EQ(batch.ops()[0].kind, storage::write_batch::op_kind::del);
}

/// A random document for the build-under-writes test.
std::string random_doc(std::mt19937& rng) {
  switch (rng() % 8) {
  case 0:
    return R"({"k":"s)" + std::to_string(rng() % 5) + R"("})";
  case 1:
    return R"({"other":1})";
  case 2:
    return R"({"k":[1]})";
  case 3:
    return R"({"k":null})";
  default:
    return R"({"k":)" + std::to_string(static_cast<int>(rng() % 20) - 5) + "}";
  }
}

// Verifies a build interleaved with writes (inserts before and after the cursor,
// updates, deletes, removed fields) ends with exactly the entries that a fresh full
// build over the final documents has: every 'x' key compared.
TEST_F(ShardIndexTest, BuildWithConcurrentWritesEqualsFreshBuild) {
  for (int seed = 1; seed <= 5; ++seed) {
    storage::memory_store fresh_store{1};
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937 rng(seed);
    const std::string c = "c" + std::to_string(seed);
    for (int i = 0; i < 120; ++i)
      put_doc(c, "id" + std::to_string(rng() % 400), random_doc(rng));
    bool created = false;
    ASSERT_OK(idx_->create(c, "k", created));
    for (int steps = 0; idx_->building() && steps < 10'000; ++steps) {
      ASSERT_OK(step(*idx_, 1 + rng() % 6));
      for (int w = rng() % 4; w > 0; --w) {
        auto id = "id" + std::to_string(rng() % 400);
        if (rng() % 4 == 0) {
          if (docs_[c].count(id)) del_doc(c, id);
        } else {
          put_doc(c, id, random_doc(rng));
        }
      }
    }
    ASSERT_FALSE(idx_->building());
    const auto* p = idx_->find(c, "k");
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(p->ready);
    EXPECT_EQ(p->indexed, p->total);
    const auto entries = keys(index_entry_prefix(c, "k"));
    EXPECT_EQ(entries, expected_entries(c, "k"));

    // The same documents, written into a fresh store, then indexed from scratch.
    {
      storage::write_batch batch;
      for (const auto& [id, d] : docs_[c])
        batch.put(documents::key(c, id), documents::encode(d.version, d.text));
      ASSERT_OK(fresh_store.shard(0).write(batch, false));
    }
    auto& fresh_shard = fresh_store.shard(0);
    std::unique_ptr<shard_index> fresh;
    ASSERT_OK(shard_index::open(fresh_shard, layout(), fresh));
    ASSERT_OK(fresh->create(c, "k", created));
    for (int i = 0; i < 10'000 && fresh->building(); ++i)
      ASSERT_OK(step(*fresh, 3));
    key_set fresh_entries;
    ASSERT_OK(fresh_store.shard(0).scan_prefix("x", [&](std::string_view k, std::string_view) {
      fresh_entries.emplace(k);
      return true;
    }));
    EXPECT_EQ(entries, fresh_entries);
    EXPECT_EQ(fresh->find(c, "k")->total, docs_[c].size());
  }
}

// -- drop and reopen ----------------------------------------------------------------

// Verifies drop deletes the definition and every entry of that index, and nothing of the
// other indexes (also one whose path extends the dropped one's), and that writes after
// the drop plan nothing for it.
TEST_F(ShardIndexTest, DropRemovesEntriesAndDefinition) {
  for (int i = 0; i < 30; ++i) {
    const auto id = "u" + std::to_string(i);
    put_doc("users", id,
            R"({"age":)" + std::to_string(i) + R"(,"age2":)" + std::to_string(i % 3) + "}");
    put_doc("users2", id, R"({"age":)" + std::to_string(i) + "}");
  }
  create_ready("users", "age");
  create_ready("users", "age2");
  create_ready("users2", "age");
  ASSERT_EQ(keys("x").size(), 90u);
  ASSERT_EQ(keys("i").size(), 3u);

  bool found = false;
  ASSERT_OK(idx_->drop("users", "age", found));
  EXPECT_TRUE(found);
  EXPECT_EQ(idx_->find("users", "age"), nullptr);
  EXPECT_TRUE(keys(index_entry_prefix("users", "age")).empty());
  EXPECT_EQ(keys(index_entry_prefix("users", "age2")), expected_entries("users", "age2"));
  EXPECT_EQ(keys(index_entry_prefix("users2", "age")), expected_entries("users2", "age"));
  EXPECT_EQ(keys("x").size(), 60u);
  EXPECT_EQ(keys("i").size(), 2u);
  EXPECT_TRUE(idx_->indexed("users"));

  put_doc("users", "u100", R"({"age":100,"age2":1})");
  EXPECT_TRUE(keys(index_entry_prefix("users", "age")).empty());
  EXPECT_EQ(keys(index_entry_prefix("users", "age2")), expected_entries("users", "age2"));

  ASSERT_OK(idx_->drop("users", "age", found));
  EXPECT_FALSE(found);
  ASSERT_OK(idx_->drop("nosuch", "age", found));
  EXPECT_FALSE(found);
  ASSERT_OK(idx_->drop("users", "age2", found));
  EXPECT_TRUE(found);
  EXPECT_FALSE(idx_->indexed("users"));
  EXPECT_TRUE(idx_->list("users").empty());

  reopen();
  EXPECT_EQ(idx_->find("users", "age"), nullptr);
  EXPECT_EQ(idx_->find("users", "age2"), nullptr);
  ASSERT_NE(idx_->find("users2", "age"), nullptr);
  EXPECT_TRUE(idx_->find("users2", "age")->ready);
}

// Verifies a dropped index is no longer used by queries, and one created again on the
// same path is built from scratch to exactly its documents' entries.
TEST_F(ShardIndexTest, DropThenRecreate) {
  for (int i = 0; i < 20; ++i)
    put_doc("users", "u" + std::to_string(i), R"({"age":)" + std::to_string(i % 4) + "}");
  create_ready("users", "age");
  const auto spec = spec_of(R"({"where":{"age":2}})");
  expect_same("users", spec, "indexed");
  bool found = false;
  ASSERT_OK(idx_->drop("users", "age", found));
  ASSERT_TRUE(found);
  EXPECT_EQ(refusal("users", spec).code, "index_required");
  put_doc("users", "u3", R"({"age":2})"); // written while there is no index
  del_doc("users", "u6");
  create_ready("users", "age");
  EXPECT_EQ(idx_->find("users", "age")->total, 19u);
  EXPECT_EQ(keys("x"), expected_entries("users", "age"));
  expect_same("users", spec, "re-created");
}

// Verifies dropping an index mid-build removes its definition and partial entries, and
// stops the build.
TEST_F(ShardIndexTest, DropDuringBuild) {
  for (int i = 0; i < 40; ++i)
    put_doc("users", "u" + std::to_string(100 + i), R"({"age":)" + std::to_string(i) + "}");
  bool created = false;
  ASSERT_OK(idx_->create("users", "age", created));
  for (int i = 0; i < 3; ++i)
    ASSERT_OK(step(*idx_, 5)); // counted, then two steps of entries
  ASSERT_FALSE(keys("x").empty());
  bool found = false;
  ASSERT_OK(idx_->drop("users", "age", found));
  EXPECT_TRUE(found);
  EXPECT_FALSE(idx_->building());
  EXPECT_TRUE(keys("x").empty());
  EXPECT_TRUE(keys("i").empty());
  ASSERT_OK(step(*idx_, 5)); // nothing to do, no crash
  EXPECT_TRUE(keys("x").empty());
}

// Verifies a reopened shard_index keeps ready definitions (and uses them), and resumes
// an interrupted build from where it stopped — in the counting phase and in the indexing
// phase — to exactly the entries of a complete build.
TEST_F(ShardIndexTest, ReopenKeepsDefinitionsAndResumesBuild) {
  for (int i = 0; i < 300; ++i)
    put_doc("users", "u" + std::to_string(1000 + i),
            R"({"age":)" + std::to_string(i % 11) + R"(,"name":"n)" + std::to_string(i % 13)
              + "\"}");
  create_ready("users", "age");
  bool created = false;
  ASSERT_OK(idx_->create("users", "name", created));
  ASSERT_OK(step(*idx_, 2)); // counting: 40 of 300 documents
  auto before = *idx_->find("users", "name");
  EXPECT_FALSE(before.ready);
  EXPECT_EQ(before.total, 40u);
  EXPECT_EQ(before.indexed, 0u);

  reopen(); // interrupted while counting
  ASSERT_NE(idx_->find("users", "age"), nullptr);
  EXPECT_TRUE(idx_->find("users", "age")->ready);
  const auto* p = idx_->find("users", "name");
  ASSERT_NE(p, nullptr);
  EXPECT_FALSE(p->ready);
  EXPECT_EQ(p->total, before.total);
  EXPECT_EQ(p->indexed, 0u);
  EXPECT_TRUE(idx_->building());
  // Finish counting and index some.
  for (int i = 0; i < 10; ++i)
    ASSERT_OK(step(*idx_, 2));
  before = *idx_->find("users", "name");
  EXPECT_EQ(before.total, 300u);
  EXPECT_GT(before.indexed, 0u);
  EXPECT_LT(before.indexed, 300u);
  const auto partial = keys(index_entry_prefix("users", "name")).size();
  EXPECT_EQ(partial, before.indexed);

  reopen(); // interrupted while indexing
  p = idx_->find("users", "name");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->indexed, before.indexed);
  EXPECT_EQ(p->total, before.total);
  put_doc("users", "u0000", R"({"name":"first"})"); // before the cursor
  put_doc("users", "u9999", R"({"name":"last"})");  // after it
  del_doc("users", "u1001");
  build_all(7);
  p = idx_->find("users", "name");
  EXPECT_TRUE(p->ready);
  EXPECT_EQ(p->indexed, p->total);
  EXPECT_EQ(keys(index_entry_prefix("users", "name")), expected_entries("users", "name"));
  EXPECT_EQ(keys(index_entry_prefix("users", "age")), expected_entries("users", "age"));
  // The ready index answers after a reopen.
  reopen();
  auto spec = spec_of(R"({"where":{"name":"n3"}})");
  EXPECT_EQ(plan("users", spec).index, "name");
  expect_same("users", spec, "after reopen");
}

// Verifies open refuses a corrupt definition instead of guessing.
TEST_F(ShardIndexTest, OpenRefusesCorruptDefinition) {
  storage::write_batch batch;
  batch.put(std::string("iusers\0age", 10), "not json");
  ASSERT_OK(store_.shard(0).write(batch, false));
  std::unique_ptr<shard_index> idx;
  auto s = shard_index::open(shard_, layout(), idx);
  EXPECT_EQ(s.code(), storage::errc::corruption) << s.to_string();
  EXPECT_EQ(idx, nullptr);
}

// -- queries ------------------------------------------------------------------------

/// A collection of varied documents with ready indexes on age, status, name, flag,
/// addr.city and score; "level" is not indexed.
class ShardQueryTest : public ShardIndexTest {
protected:
  void SetUp() override {
    ShardIndexTest::SetUp();
    std::mt19937 rng(20240607);
    const char* statuses[] = {"active", "inactive", "banned"};
    const char* cities[] = {"Oslo", "Rome", "Lima", "Pune"};
    for (int i = 0; i < 150; ++i) {
      json::object o;
      const auto r = rng() % 100;
      if (r < 70) {
        o["age"] = static_cast<std::int64_t>(18 + rng() % 30);
      } else if (r < 75) {
        o["age"] = 20.5 + static_cast<double>(rng() % 10);
      } else if (r < 82) {
        o["age"] = (rng() % 2) ? "30" : "41";
      } else if (r < 85) {
        o["age"] = nullptr;
      } else if (r < 88) {
        o["age"] = json::array{1, 2};
      } else if (r < 90) {
        o["age"] = json::object{{"v", 1}};
      } else if (r < 92) {
        o["age"] = (rng() % 2) == 0;
      } // else missing
      if (rng() % 10 != 0) o["status"] = statuses[rng() % 3];
      o["flag"] = (rng() % 3) == 0;
      std::string name = "n";
      for (int k = 0; k < 2; ++k)
        name += static_cast<char>('a' + rng() % 3);
      if (rng() % 15 == 0) name += '\0'; // a NUL inside the value key
      if (rng() % 15 == 0) name = std::string(1, '\0') + "z";
      o["name"] = name;
      if (rng() % 4 != 0) o["addr"] = json::object{{"city", cities[rng() % 4]}};
      o["level"] = static_cast<std::int64_t>(rng() % 5);
      if (rng() % 6 == 0) o["score"] = (rng() % 2) ? 9007199254740992LL : 9007199254740993LL;
      char id[16];
      std::snprintf(id, sizeof id, "u%03d", static_cast<int>(rng() % 400));
      put_doc("users", id, json::serialize(o));
    }
    // Some odd ids, and deleted documents (tombstones) that must never show up.
    put_doc("users", "a", R"({"age":30,"status":"active","name":"naa","level":1})");
    put_doc("users", "zz-1", R"({"age":30,"status":"active","name":"naa","level":1})");
    put_doc("users", "u_del", R"({"age":30,"status":"active","name":"naa","level":1})");
    del_doc("users", "u_del");
    for (const char* path : {"age", "status", "name", "flag", "addr.city", "score"})
      create_ready("users", path);
  }
};

// Verifies equality answers from the index, with the model's answer, for numbers,
// strings, booleans, null and nested paths; and a value nobody has answers empty.
TEST_F(ShardQueryTest, Equality) {
  for (const char* body : {
         R"({"where":{"age":30}})",
         R"({"where":{"age":30.0}})",
         R"({"where":{"age":"30"}})",
         R"({"where":{"age":null}})",
         R"({"where":{"age":{"$eq":25}}})",
         R"({"where":{"status":"active"}})",
         R"({"where":{"flag":true}})",
         R"({"where":{"flag":false}})",
         R"({"where":{"addr.city":"Oslo"}})",
         R"({"where":{"name":"nab"}})",
         R"({"where":{"age":12345}})",
         R"({"where":{"status":"nobody"}})",
       }) {
    auto spec = spec_of(body);
    expect_same("users", spec, body);
    EXPECT_EQ(plan("users", spec).bounds, "eq") << body;
  }
}

// Verifies numbers and strings never match each other: 30 finds only numbers, "30"
// only strings, and ranges stay within their type.
TEST_F(ShardQueryTest, TypesAreSeparate) {
  auto num = hits("users", spec_of(R"({"where":{"age":30},"limit":1000})"));
  auto str = hits("users", spec_of(R"({"where":{"age":"30"},"limit":1000})"));
  ASSERT_FALSE(num.hits.empty());
  ASSERT_FALSE(str.hits.empty());
  for (const auto& h : num.hits)
    EXPECT_TRUE(json::parse(h.doc).as_object().at("age").is_number()) << h.doc;
  for (const auto& h : str.hits)
    EXPECT_TRUE(json::parse(h.doc).as_object().at("age").is_string()) << h.doc;
  auto range = hits("users", spec_of(R"({"where":{"age":{"$gte":0}},"limit":1000})"));
  for (const auto& h : range.hits)
    EXPECT_TRUE(json::parse(h.doc).as_object().at("age").is_number()) << h.doc;
  auto srange = hits("users", spec_of(R"({"where":{"age":{"$lte":"zzz"}},"limit":1000})"));
  ASSERT_FALSE(srange.hits.empty());
  for (const auto& h : srange.hits)
    EXPECT_TRUE(json::parse(h.doc).as_object().at("age").is_string()) << h.doc;
  expect_same("users", spec_of(R"({"where":{"age":{"$gte":0}},"limit":1000})"), "numbers");
  expect_same("users", spec_of(R"({"where":{"age":{"$lte":"zzz"}},"limit":1000})"), "strings");
}

// Verifies $in answers from the index with the model's answer, values of mixed types.
TEST_F(ShardQueryTest, In) {
  for (const char* body : {
         R"({"where":{"age":{"$in":[20,30,"30",null]}}})",
         R"({"where":{"age":{"$in":[30,20]}},"order_by":"age"})",
         R"({"where":{"age":{"$in":[30,20]}},"order_by":"age","desc":true})",
         R"({"where":{"status":{"$in":["banned","active"]}},"order_by":"name"})",
         R"({"where":{"status":{"$in":[]}}})",
         R"({"where":{"addr.city":{"$in":["Lima","Nowhere"]}},"limit":3})",
       }) {
    auto spec = spec_of(body);
    expect_same("users", spec, body);
    EXPECT_EQ(plan("users", spec).bounds, "in") << body;
  }
}

// Verifies ranges with both bounds, one bound, exclusive and inclusive edges on values
// that exist, answer from the index as the model does.
TEST_F(ShardQueryTest, Ranges) {
  for (const char* body : {
         R"({"where":{"age":{"$gte":25,"$lt":30}}})",
         R"({"where":{"age":{"$gt":25,"$lte":30}}})",
         R"({"where":{"age":{"$gt":25,"$lt":30}}})",
         R"({"where":{"age":{"$gte":25,"$lte":30}}})",
         R"({"where":{"age":{"$gte":25}},"limit":1000})",
         R"({"where":{"age":{"$gt":25}},"limit":1000})",
         R"({"where":{"age":{"$lte":25}},"limit":1000})",
         R"({"where":{"age":{"$lt":25}},"limit":1000})",
         R"({"where":{"age":{"$gt":20.5,"$lt":21}}})",
         R"({"where":{"age":{"$gte":30,"$lte":30}}})",
         R"({"where":{"age":{"$gt":30,"$lt":30}}})",
         R"({"where":{"age":{"$gt":"30"}}})",
         R"({"where":{"age":{"$gte":"30","$lt":"41"}}})",
         R"({"where":{"name":{"$gte":"nb","$lt":"nc"}},"limit":1000})",
         R"({"where":{"name":{"$lt":"nab"}},"limit":1000})",
         R"({"where":{"addr.city":{"$gt":"Lima"}},"order_by":"addr.city","desc":true})",
       }) {
    auto spec = spec_of(body);
    expect_same("users", spec, body);
    EXPECT_EQ(plan("users", spec).bounds, "range") << body;
  }
}

// Verifies ranges over booleans (one type class, two type bytes): $gt false finds the
// true documents, $lt true the false ones, from the index as from a scan.
TEST_F(ShardQueryTest, BooleanRanges) {
  for (const char* body : {
         R"({"where":{"flag":{"$gt":false}},"limit":1000})",
         R"({"where":{"flag":{"$gte":false}},"limit":1000})",
         R"({"where":{"flag":{"$lt":true}},"limit":1000})",
         R"({"where":{"flag":{"$lte":true}},"limit":1000})",
       }) {
    auto spec = spec_of(body);
    auto want = brute_force("users", spec);
    ASSERT_FALSE(want.hits.empty()) << body;
    expect_same("users", spec, body);
  }
}

// Verifies order_by the index's own path, ascending and descending, and order_by another
// field, and no order_by (id order), all give the model's order.
TEST_F(ShardQueryTest, Ordering) {
  for (const char* body : {
         R"({"where":{"age":{"$gte":20,"$lt":40}},"order_by":"age"})",
         R"({"where":{"age":{"$gte":20,"$lt":40}},"order_by":"age","desc":true})",
         R"({"where":{"age":{"$gte":20,"$lt":40}},"order_by":"name"})",
         R"({"where":{"age":{"$gte":20,"$lt":40}},"order_by":"name","desc":true})",
         R"({"where":{"age":{"$gte":20,"$lt":40}}})",
         R"({"where":{"age":{"$gte":20,"$lt":40}},"desc":true})",
         R"({"where":{"status":"active"},"order_by":"status"})",
         R"({"where":{"status":"active"},"order_by":"status","desc":true})",
         R"({"where":{"status":"active"},"order_by":"age"})",
         R"({"where":{"status":"active"},"order_by":"level","desc":true})",
         R"({"where":{"status":"active"}})",
         R"({"where":{"status":"active"},"desc":true})",
         R"({"where":{"status":"active"},"order_by":"missing.field"})",
       }) {
    expect_same("users", spec_of(body), body);
  }
}

// Verifies several conditions: the other conditions filter the index's candidates.
TEST_F(ShardQueryTest, SeveralConditions) {
  for (const char* body : {
         R"({"where":{"status":"active","age":{"$gte":25,"$lt":35}}})",
         R"({"where":{"status":"active","level":2}})",
         R"({"where":{"age":{"$gte":25},"level":{"$in":[1,2]}},"order_by":"age"})",
         R"({"where":{"flag":true,"addr.city":"Rome","level":{"$lt":3}},"desc":true})",
       }) {
    expect_same("users", spec_of(body), body);
  }
}

// Verifies the index choice: equality over $in over a range, whatever the order of the
// conditions; an unindexed condition never chosen.
TEST_F(ShardQueryTest, IndexChoice) {
  auto p = plan("users", spec_of(R"({"where":{"age":{"$gte":25},"status":"active"}})"));
  EXPECT_EQ(p.index, "status");
  EXPECT_EQ(p.bounds, "eq");
  p = plan("users", spec_of(R"({"where":{"age":{"$in":[1,2]},"status":{"$lt":"b"}}})"));
  EXPECT_EQ(p.index, "age");
  EXPECT_EQ(p.bounds, "in");
  p = plan("users", spec_of(R"({"where":{"level":3,"name":{"$gt":"n"}}})"));
  EXPECT_EQ(p.index, "name");
  EXPECT_EQ(p.bounds, "range");
}

// Verifies paging with spec.after = the last hit's sort key visits every match exactly
// once, in order, ascending and descending, whatever the plan and page size.
TEST_F(ShardQueryTest, PagingVisitsEveryMatchOnce) {
  for (const char* body : {
         R"({"where":{"age":{"$gte":20,"$lt":40}},"order_by":"age"})",
         R"({"where":{"age":{"$gte":20,"$lt":40}},"order_by":"age","desc":true})",
         R"({"where":{"age":{"$gte":20,"$lt":40}}})",
         R"({"where":{"age":{"$gte":20,"$lt":40}},"desc":true})",
         R"({"where":{"age":{"$gte":20,"$lt":40}},"order_by":"name","desc":true})",
         R"({"where":{"status":"active"}})",
         R"({"where":{"status":"active"},"desc":true})",
         R"({"where":{"status":"active"},"order_by":"status","desc":true})",
         R"({"where":{"status":"active"},"order_by":"level"})",
         R"({"where":{"age":{"$in":[20,25,30,"30"]}},"order_by":"age"})",
         R"({"where":{"age":{"$in":[20,25,30,"30"]}},"order_by":"age","desc":true})",
         R"({"where":{"age":{"$in":[20,25,30]}},"desc":true})",
         R"({"where":{"name":{"$gte":"n"}},"order_by":"name"})",
         R"({"where":{"name":{"$gte":"n"}},"order_by":"name","desc":true})",
         R"({"where":{"name":{"$lt":"o"}},"order_by":"name","desc":true})",
         R"({"allow_scan":true})",
         R"({"allow_scan":true,"desc":true})",
         R"({"allow_scan":true,"order_by":"age","desc":true})",
         R"({"where":{"level":{"$gte":2}},"allow_scan":true,"order_by":"level"})",
       }) {
    for (std::uint32_t page : {1u, 2u, 7u}) {
      expect_paging("users", spec_of(body), page,
                    std::string(body) + " by " + std::to_string(page));
    }
  }
}

// Verifies limit: exactly `limit` hits and more = true when more match, more = false when
// exactly `limit` match.
TEST_F(ShardQueryTest, LimitAndMore) {
  auto all = brute_force("users", spec_of(R"({"where":{"status":"active"},"limit":1000})"));
  const auto n = static_cast<std::uint32_t>(all.hits.size());
  ASSERT_GT(n, 3u);
  for (const char* order : {"", R"(,"order_by":"age")", R"(,"desc":true)"}) {
    auto body = std::string(R"({"where":{"status":"active"})") + order;
    for (std::uint32_t limit : {1u, 3u, n - 1, n, n + 1}) {
      auto spec = spec_of(body + R"(,"limit":)" + std::to_string(limit) + "}");
      auto got = hits("users", spec);
      EXPECT_EQ(got.hits.size(), std::min(limit, n)) << body << " limit " << limit;
      EXPECT_EQ(got.more, limit < n) << body << " limit " << limit;
      expect_same("users", spec, body + " limit " + std::to_string(limit));
    }
  }
}

// Verifies a query that no ready index serves is refused with index_required unless it
// allows a scan: no conditions, an unindexed field, and an index still building.
TEST_F(ShardQueryTest, IndexRequiredWithoutAllowScan) {
  EXPECT_EQ(refusal("users", spec_of(R"({})")).code, "index_required");
  auto e = refusal("users", spec_of(R"({"where":{"level":2}})"));
  EXPECT_EQ(e.code, "index_required");
  EXPECT_NE(e.message.find("level"), std::string::npos) << e.message;
  EXPECT_EQ(refusal("users", spec_of(R"({"where":{"level":2},"order_by":"age"})")).code,
            "index_required")
    << "order_by alone does not make an index usable";
  // Explain never refuses: it reports the full scan the query would need.
  auto p = plan("users", spec_of(R"({"where":{"level":2}})"));
  EXPECT_EQ(p.index, "");
  EXPECT_EQ(p.bounds, "all");

  bool created = false;
  ASSERT_OK(idx_->create("users", "level", created));
  ASSERT_OK(step(*idx_, 3));
  ASSERT_TRUE(idx_->building());
  EXPECT_EQ(refusal("users", spec_of(R"({"where":{"level":2}})")).code, "index_required")
    << "a building index is not used";
  p = plan("users", spec_of(R"({"where":{"level":2},"allow_scan":true})"));
  EXPECT_EQ(p.index, "");
  EXPECT_EQ(p.bounds, "all");
  expect_same("users", spec_of(R"({"where":{"level":2},"allow_scan":true})"), "while building");
  build_all();
  p = plan("users", spec_of(R"({"where":{"level":2}})"));
  EXPECT_EQ(p.index, "level");
  expect_same("users", spec_of(R"({"where":{"level":2}})"), "once ready");
}

// Verifies full scans with allow_scan answer as the model: everything, unindexed
// conditions, id order both ways, other orders.
TEST_F(ShardQueryTest, FullScanEqualsBruteForce) {
  for (const char* body : {
         R"({"allow_scan":true,"limit":1000})",
         R"({"allow_scan":true,"limit":5})",
         R"({"allow_scan":true,"desc":true,"limit":5})",
         R"({"allow_scan":true,"order_by":"level","limit":1000})",
         R"({"allow_scan":true,"order_by":"age","desc":true,"limit":17})",
         R"({"where":{"level":{"$gt":1,"$lte":3}},"allow_scan":true,"limit":1000})",
         R"({"where":{"level":{"$in":[0,4]}},"allow_scan":true,"desc":true})",
       }) {
    auto spec = spec_of(body);
    expect_same("users", spec, body);
    EXPECT_EQ(plan("users", spec).bounds, "all") << body;
  }
  // With an index at hand, allow_scan does not force a scan, and both agree.
  auto indexed = spec_of(R"({"where":{"age":{"$gte":30}},"allow_scan":true,"limit":1000})");
  EXPECT_EQ(plan("users", indexed).index, "age");
  expect_same("users", indexed, "indexed with allow_scan");
}

// Verifies a collection without documents on this shard answers empty hits, even with
// no index and no allow_scan, and its explain is an empty plan.
TEST_F(ShardQueryTest, EmptyCollectionAnswersEmpty) {
  for (const char* body : {R"({"where":{"level":2}})", R"({})", R"({"where":{"age":30}})"}) {
    auto got = hits("nosuch", spec_of(body));
    EXPECT_TRUE(got.hits.empty()) << body;
    EXPECT_FALSE(got.more) << body;
    EXPECT_EQ(plan("nosuch", spec_of(body)).estimated_keys, 0u) << body;
  }
}

// Verifies deleted documents (tombstones) never show up, by index or by scan, and a
// document deleted after indexing is gone from the answers at once.
TEST_F(ShardQueryTest, DeletedDocumentsNeverShowUp) {
  auto spec = spec_of(R"({"where":{"age":30},"limit":1000})");
  auto before = hits("users", spec);
  ASSERT_FALSE(before.hits.empty());
  for (const auto& h : before.hits)
    EXPECT_NE(h.id, "u_del");
  del_doc("users", before.hits.front().id);
  expect_same("users", spec, "after a delete");
  expect_same("users", spec_of(R"({"allow_scan":true,"limit":1000})"), "scan after a delete");
}

// Verifies explain: the index and bounds chosen, and estimated_keys = the index entries
// in the bounds (or every document key of the collection for a full scan).
TEST_F(ShardQueryTest, ExplainPlan) {
  auto count_entries = [&](const std::string& path, auto pred) {
    std::uint64_t n = 0;
    for (const auto& [id, d] : docs_["users"]) {
      auto doc = json::parse(d.text);
      const auto* v = lookup(doc, path);
      if (v && is_scalar(*v) && pred(*v)) ++n;
    }
    return n;
  };
  auto p = plan("users", spec_of(R"({"where":{"age":30}})"));
  EXPECT_EQ(p.index, "age");
  EXPECT_EQ(p.bounds, "eq");
  EXPECT_EQ(p.estimated_keys, count_entries("age", [](const json::value& v) {
              return v.is_number() && v.to_number<double>() == 30;
            }));
  EXPECT_GT(p.estimated_keys, 0u);

  p = plan("users", spec_of(R"({"where":{"status":{"$in":["active","banned"]}}})"));
  EXPECT_EQ(p.index, "status");
  EXPECT_EQ(p.bounds, "in");
  EXPECT_EQ(p.estimated_keys, count_entries("status", [](const json::value& v) {
              return v == "active" || v == "banned";
            }));

  p = plan("users", spec_of(R"({"where":{"age":{"$gt":25,"$lt":30}}})"));
  EXPECT_EQ(p.index, "age");
  EXPECT_EQ(p.bounds, "range");
  // Inclusive bounds: the entries at 25 and 30 are read too.
  EXPECT_EQ(p.estimated_keys, count_entries("age", [](const json::value& v) {
              return v.is_number() && v.to_number<double>() >= 25 && v.to_number<double>() <= 30;
            }));

  p = plan("users", spec_of(R"({"where":{"level":1},"allow_scan":true})"));
  EXPECT_EQ(p.index, "");
  EXPECT_EQ(p.bounds, "all");
  EXPECT_EQ(p.estimated_keys, keys(documents::collection_prefix("users")).size())
    << "every document key, tombstones included";

  // The plan JSON round-trips.
  auto back = plan_from_json(to_json(p));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->bounds, "all");
  EXPECT_EQ(back->estimated_keys, p.estimated_keys);
}

// Verifies $in values that differ as numbers but share a value key (integers beyond
// 2^53 map to one double) read their index segment once: no document twice.
TEST_F(ShardQueryTest, InWithValuesSharingAKey) {
  for (
    const char* body : {
      R"({"where":{"score":{"$in":[9007199254740992,9007199254740993]}},"limit":1000})",
      R"({"where":{"score":{"$in":[9007199254740992,9007199254740993]}},"order_by":"score","limit":1000})",
    }) {
    auto spec = spec_of(body);
    auto want = brute_force("users", spec);
    ASSERT_FALSE(want.hits.empty());
    expect_same("users", spec, body);
  }
}

/// A random scalar for a condition on `path`, drawn near the collection's values.
json::value random_value(std::mt19937& rng, const std::string& path) {
  if (path == "age" || path == "level") {
    switch (rng() % 6) {
    case 0:
      return (rng() % 2) ? "30" : "35";
    case 1:
      return 20.5 + static_cast<double>(rng() % 10);
    default:
      return static_cast<std::int64_t>(path == "age" ? 15 + rng() % 40 : rng() % 6);
    }
  }
  if (path == "flag") return (rng() % 2) == 0;
  if (path == "status") {
    const char* v[] = {"active", "inactive", "banned", "b", "z"};
    return v[rng() % 5];
  }
  if (path == "addr.city") {
    const char* v[] = {"Oslo", "Rome", "Lima", "Pune", "M"};
    return v[rng() % 5];
  }
  std::string name = "n";
  for (int k = rng() % 3; k > 0; --k)
    name += static_cast<char>('a' + rng() % 3);
  return json::value(name);
}

// Verifies random queries (random conditions, orders, directions, limits, allow_scan)
// answer as the model does, page by page, or are refused exactly when no ready index
// serves a condition and no scan is allowed.
TEST_F(ShardQueryTest, RandomQueriesMatchBruteForce) {
  const std::vector<std::string> paths = {"age", "status", "name", "addr.city", "level"};
  const std::vector<std::string> orders = {"", "age", "name", "level", "status"};
  std::mt19937 rng(7);
  for (int q = 0; q < 300; ++q) {
    json::object where;
    bool served = false;
    for (int c = 1 + rng() % 2; c > 0; --c) {
      const auto& path = paths[rng() % paths.size()];
      json::object ops;
      const auto v = random_value(rng, path);
      switch (rng() % 4) {
      case 0:
        ops["$eq"] = v;
        break;
      case 1: {
        json::array in;
        for (int k = 1 + rng() % 3; k > 0; --k)
          in.push_back(random_value(rng, path));
        ops["$in"] = in;
        break;
      }
      default: {
        // One or two bounds of the first value's type class.
        auto w = random_value(rng, path);
        const bool same = (v.is_number() && w.is_number()) || (v.is_string() && w.is_string())
                          || (v.is_bool() && w.is_bool());
        const bool lower_first = rng() % 2;
        ops[lower_first ? ((rng() % 2) ? "$gt" : "$gte") : ((rng() % 2) ? "$lt" : "$lte")] = v;
        if (same && rng() % 2)
          ops[lower_first ? ((rng() % 2) ? "$lt" : "$lte") : ((rng() % 2) ? "$gt" : "$gte")] = w;
      }
      }
      where[path] = ops;
      if (path != "level") served = true;
    }
    json::object body;
    body["where"] = where;
    const auto& order = orders[rng() % orders.size()];
    if (!order.empty()) body["order_by"] = order;
    body["desc"] = rng() % 2 == 0;
    body["limit"] = 1 + rng() % 12;
    const bool scan = rng() % 3 == 0;
    body["allow_scan"] = scan;
    const auto text = json::serialize(body);
    auto spec = spec_of_json(body);
    if (!served && !scan) {
      EXPECT_EQ(refusal("users", spec).code, "index_required") << text;
      continue;
    }
    expect_same("users", spec, text);
    expect_paging("users", spec, 1 + rng() % 5, text);
  }
}

// Verifies paging while documents are written between pages: each page is exactly what
// the model answers at that moment for the same resume point (nothing repeated, nothing
// skipped among the documents that stay put).
TEST_F(ShardQueryTest, PagingUnderConcurrentWrites) {
  for (const char* body : {
         R"({"where":{"age":{"$gte":20,"$lt":40}},"order_by":"age","limit":4})",
         R"({"where":{"age":{"$gte":20,"$lt":40}},"order_by":"age","desc":true,"limit":4})",
         R"({"where":{"status":"active"},"limit":3})",
         R"({"where":{"status":"active"},"desc":true,"limit":3})",
       }) {
    std::mt19937 rng(11);
    auto spec = spec_of(body);
    std::set<std::string> seen;
    for (int page = 0; page < 500; ++page) {
      auto got = hits("users", spec);
      auto want = brute_force("users", spec);
      std::vector<std::string> got_ids, want_ids;
      for (const auto& h : got.hits)
        got_ids.push_back(h.id);
      for (const auto& h : want.hits)
        want_ids.push_back(h.id);
      ASSERT_EQ(got_ids, want_ids) << body << " page " << page;
      for (const auto& h : got.hits)
        EXPECT_TRUE(seen.insert(h.id + "/" + h.sort_key).second) << body << ": repeated " << h.id;
      if (!got.more) break;
      spec.after = got.hits.back().sort_key;
      // Writes between pages: new documents, changed values, deletes.
      for (int w = 0; w < 3; ++w) {
        const auto id = "w" + std::to_string(rng() % 60);
        if (rng() % 4 == 0) {
          if (docs_["users"].count(id)) del_doc("users", id);
        } else {
          put_doc("users", id,
                  R"({"age":)" + std::to_string(15 + rng() % 30) + R"(,"status":")"
                    + ((rng() % 2) ? "active" : "banned") + "\"}");
        }
      }
    }
  }
}

// Verifies an indexed query works directly on memory_store, whose scan holds the
// shard's lock while its callback runs. shard_index::run calls get() from inside its
// scan callback, so this would hang: the query runs on a thread and the test fails after
// a timeout instead of hanging. The store is leaked on purpose: a hung thread still
// holds it.
TEST(ShardIndexMemoryStoreTest, IndexedQueryOnMemoryStoreDoesNotDeadlock) {
  auto* store = new storage::memory_store(1); // NOLINT: leaked if the query hangs
  std::promise<std::size_t> done;
  auto result = done.get_future();
  std::thread([store, done = std::move(done)]() mutable {
    auto& shard = store->shard(0);
    storage::write_batch batch;
    batch.put(documents::key("users", "a"), documents::encode(1, R"({"age":30})"));
    (void)shard.write(batch, false);
    std::unique_ptr<shard_index> idx;
    (void)shard_index::open(shard, layout(), idx);
    bool created = false;
    (void)idx->create("users", "age", created);
    for (int i = 0; i < 10 && idx->building(); ++i)
      (void)step(*idx, 10);
    query_spec spec = spec_of(R"({"where":{"age":30}})");
    auto a = idx->run("users", spec);
    const auto* h = std::get_if<shard_hits>(&a);
    done.set_value(h ? h->hits.size() : 0);
  }).detach();
  if (result.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
    FAIL() << "shard_index::run on memory_store did not return within 5 s: it calls "
              "shard_store::get from inside a scan callback, and memory_store's scan holds "
              "the shard's (non-recursive) mutex";
  }
  delete store;
  EXPECT_EQ(result.get(), 1u);
}

} // namespace
} // namespace shoal::query
