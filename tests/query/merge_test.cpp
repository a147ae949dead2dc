// SPDX-License-Identifier: Apache-2.0
// What the edge makes of every shard's answer (query/merge.hpp): the k-way merge of hits
// in sort order, cut at the limit with a cursor only when more remain; the refusal of
// answers a shard cannot have meant; which failure wins (a refusal, then any other);
// explain plans summed or reported shard by shard; index progress summed for PUT, GET,
// DELETE and the list. The merge checks of the old HTTP route tests live here now; their
// HTTP rendering stays in tests/http.
#include "query/merge.hpp"

#include <string>
#include <vector>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "core/error.hpp"
#include "query/query.hpp"

namespace shoal::query {
namespace {

namespace json = boost::json;
using core::errc;

/// Parses a client query body (the test's are all valid).
query_spec spec_of(std::string_view body) {
  auto r = parse_query(json::parse(body), query_limits{});
  if (!r) {
    ADD_FAILURE() << body << ": " << r.error().to_string();
    return {};
  }
  return *r;
}

/// A hit for document `id` with {"age": age, "id": id}, keyed as the shards of `spec` key it.
hit hit_of(const query_spec& spec, std::string id, int age, std::uint64_t version = 1) {
  json::object doc;
  doc["age"] = age;
  doc["id"] = id;
  hit h;
  h.doc = json::serialize(doc);
  h.sort_key = sort_key(spec, doc, id);
  h.id = std::move(id);
  h.version = version;
  return h;
}

core::result<shard_hits> hits(std::vector<hit> list, bool more = false) {
  return shard_hits{std::move(list), more};
}

core::error failure(errc code, std::string message = "down") {
  return core::error{code, std::move(message)};
}

/// The answers of shards, in shard order.
template <class T>
std::vector<core::result<T>> answers(std::initializer_list<core::result<T>> list) {
  return std::vector<core::result<T>>(list);
}

std::vector<std::string> ids_of(const core::result<page>& p) {
  EXPECT_TRUE(p.ok()) << p.error().to_string();
  std::vector<std::string> out;
  if (p)
    for (const auto& h : p->docs)
      out.push_back(h.id);
  return out;
}

// -- merging hits -------------------------------------------------------------------------

// Verifies hits of three shards come out in ascending sort order, documents passed on
// verbatim with their ids and versions, and no cursor when nothing is left.
TEST(MergeHitsTest, MergesAscendingAcrossThreeShards) {
  auto spec = spec_of(R"({"where":{},"order_by":"age","allow_scan":true})");
  auto d = hit_of(spec, "d", 7, 4);
  auto p =
    merge_hits(spec, answers<shard_hits>({hits({hit_of(spec, "a", 1), d}),
                                          hits({hit_of(spec, "b", 3), hit_of(spec, "e", 9)}),
                                          hits({hit_of(spec, "c", 5), hit_of(spec, "f", 11)})}));
  EXPECT_EQ(ids_of(p), (std::vector<std::string>{"a", "b", "c", "d", "e", "f"}));
  ASSERT_TRUE(p);
  EXPECT_FALSE(p->next_cursor);
  EXPECT_EQ(p->docs[3].version, 4u);
  EXPECT_EQ(p->docs[3].doc, R"({"age":7,"id":"d"})");
  EXPECT_EQ(p->docs[3].sort_key, d.sort_key);
}

// Verifies descending queries merge in descending order, ties on the value ordered by id.
TEST(MergeHitsTest, MergesDescendingAcrossThreeShards) {
  auto spec = spec_of(R"({"where":{},"order_by":"age","desc":true,"allow_scan":true})");
  auto p = merge_hits(spec, answers<shard_hits>({hits({hit_of(spec, "z", 9), hit_of(spec, "b", 2)}),
                                                 hits({hit_of(spec, "y", 9), hit_of(spec, "c", 1)}),
                                                 hits({hit_of(spec, "x", 5)})}));
  EXPECT_EQ(ids_of(p), (std::vector<std::string>{"z", "y", "x", "b", "c"}));
  ASSERT_TRUE(p);
  EXPECT_FALSE(p->next_cursor);
}

// Verifies the merge orders by document id when there is no order_by, empty shards included.
TEST(MergeHitsTest, MergesByIdWithoutOrderBy) {
  auto spec = spec_of(R"({"where":{"age":{"$gte":0}}})");
  auto p = merge_hits(
    spec, answers<shard_hits>({hits({hit_of(spec, "k2", 1), hit_of(spec, "k5", 0)}), hits({}),
                               hits({hit_of(spec, "k1", 9), hit_of(spec, "k3", 9)})}));
  EXPECT_EQ(ids_of(p), (std::vector<std::string>{"k1", "k2", "k3", "k5"}));
}

// Verifies the merge stops at the limit and returns a cursor when more remain, whether
// the rest is in the answers or only announced by a shard's `more`; no cursor when exactly
// the limit matched, nor on an empty answer.
TEST(MergeHitsTest, LimitCutsAndCursorMarksTheRest) {
  auto spec = spec_of(R"({"where":{},"order_by":"age","limit":3,"allow_scan":true})");
  auto cut = merge_hits(
    spec, answers<shard_hits>({hits({hit_of(spec, "a", 1), hit_of(spec, "d", 4)}),
                               hits({hit_of(spec, "b", 2)}), hits({hit_of(spec, "c", 3)})}));
  EXPECT_EQ(ids_of(cut), (std::vector<std::string>{"a", "b", "c"}));
  ASSERT_TRUE(cut);
  ASSERT_TRUE(cut->next_cursor);
  EXPECT_EQ(decode_cursor(spec, *cut->next_cursor), hit_of(spec, "c", 3).sort_key)
    << "the cursor resumes after the last document returned";

  auto announced = merge_hits(
    spec, answers<shard_hits>(
            {hits({hit_of(spec, "a", 1), hit_of(spec, "b", 2), hit_of(spec, "c", 3)}, true),
             hits({}), hits({})}));
  EXPECT_EQ(ids_of(announced), (std::vector<std::string>{"a", "b", "c"}));
  ASSERT_TRUE(announced);
  EXPECT_TRUE(announced->next_cursor);

  auto exact = merge_hits(
    spec, answers<shard_hits>({hits({hit_of(spec, "a", 1)}), hits({hit_of(spec, "b", 2)}),
                               hits({hit_of(spec, "c", 3)})}));
  EXPECT_EQ(ids_of(exact).size(), 3u);
  ASSERT_TRUE(exact);
  EXPECT_FALSE(exact->next_cursor);

  auto empty = merge_hits(spec, answers<shard_hits>({hits({}), hits({}), hits({})}));
  EXPECT_TRUE(ids_of(empty).empty());
  ASSERT_TRUE(empty);
  EXPECT_FALSE(empty->next_cursor);

  // A shard with more but nothing to show gives no cursor: there is no position to resume.
  auto nothing = merge_hits(spec, answers<shard_hits>({hits({}, true)}));
  EXPECT_TRUE(ids_of(nothing).empty());
  ASSERT_TRUE(nothing);
  EXPECT_FALSE(nothing->next_cursor);
}

// Verifies a returned cursor, parsed back with the same query, resumes after the last
// document returned: the next page's merge accepts only what follows it.
TEST(MergeHitsTest, CursorRoundTripFeedsAfter) {
  const std::string q = R"("where":{"age":{"$gte":1}},"order_by":"age","limit":2)";
  auto spec = spec_of("{" + q + "}");
  auto b = hit_of(spec, "b", 2);
  auto first = merge_hits(
    spec,
    answers<shard_hits>({hits({hit_of(spec, "a", 1), hit_of(spec, "c", 3)}), hits({b}), hits({})}));
  ASSERT_EQ(ids_of(first), (std::vector<std::string>{"a", "b"}));
  ASSERT_TRUE(first->next_cursor);

  auto next = spec_of("{" + q + R"(,"cursor":")" + *first->next_cursor + "\"}");
  EXPECT_EQ(next.after, b.sort_key);
  auto page =
    merge_hits(next, answers<shard_hits>({hits({hit_of(spec, "c", 3)}), hits({}), hits({})}));
  EXPECT_EQ(ids_of(page), (std::vector<std::string>{"c"}));
  ASSERT_TRUE(page);
  EXPECT_FALSE(page->next_cursor);

  auto behind =
    merge_hits(next, answers<shard_hits>({hits({hit_of(spec, "a", 1)}), hits({}), hits({})}));
  ASSERT_FALSE(behind);
  EXPECT_EQ(behind.error().code(), errc::internal) << behind.error().to_string();
  auto at = merge_hits(next, answers<shard_hits>({hits({}), hits({b}), hits({})}));
  ASSERT_FALSE(at) << "the cursor's own document is not after it";
  EXPECT_EQ(at.error().code(), errc::internal);

  // Descending: after means before the cursor's key.
  auto desc = spec_of(R"({"where":{},"order_by":"age","desc":true,"limit":1,"allow_scan":true})");
  desc.after = hit_of(desc, "m", 5).sort_key;
  auto down = merge_hits(desc, answers<shard_hits>({hits({hit_of(desc, "l", 4)})}));
  EXPECT_EQ(ids_of(down), (std::vector<std::string>{"l"}));
  auto up = merge_hits(desc, answers<shard_hits>({hits({hit_of(desc, "n", 6)})}));
  ASSERT_FALSE(up);
  EXPECT_EQ(up.error().code(), errc::internal);
}

// Verifies a shard's refusal (invalid_argument) becomes the answer with its name and
// message, even when another shard is down, before or after it.
TEST(MergeHitsTest, ShardRefusalComesFirst) {
  auto spec = spec_of(R"({"where":{"age":3}})");
  const core::error refusal{errc::invalid_argument, "index_required",
                            "no index on age; add allow_scan"};
  for (int order = 0; order < 2; ++order) {
    std::vector<core::result<shard_hits>> a;
    a.push_back(hits({hit_of(spec, "a", 3)}));
    a.push_back(order == 0 ? core::result<shard_hits>(refusal)
                           : core::result<shard_hits>(failure(errc::shard_unavailable)));
    a.push_back(order == 0 ? core::result<shard_hits>(failure(errc::shard_unavailable))
                           : core::result<shard_hits>(refusal));
    auto p = merge_hits(spec, std::move(a));
    ASSERT_FALSE(p) << order;
    EXPECT_EQ(p.error().code(), errc::invalid_argument) << order;
    EXPECT_EQ(p.error().name(), "index_required") << order;
    EXPECT_EQ(p.error().message(), "no index on age; add allow_scan") << order;
  }
}

// Verifies an unavailable shard fails the whole answer (it would be incomplete), with its
// own code and message.
TEST(MergeHitsTest, UnavailableShardFailsTheAnswer) {
  auto spec = spec_of(R"({"where":{"age":3}})");
  for (auto code :
       {errc::shard_unavailable, errc::storage_failed, errc::shutting_down, errc::timeout}) {
    auto p = merge_hits(spec, answers<shard_hits>({hits({hit_of(spec, "a", 3)}), hits({}),
                                                   failure(code, "node n2 is down")}));
    ASSERT_FALSE(p) << core::to_string(code);
    EXPECT_EQ(p.error().code(), code);
    EXPECT_EQ(p.error().message(), "node n2 is down");
  }
}

// Verifies answers a shard cannot have meant are refused as internal, never a wrong page:
// hits out of order (or repeated), before the cursor, or documents that are not objects.
TEST(MergeHitsTest, MalformedShardAnswersAreInternal) {
  auto spec = spec_of(R"({"where":{},"order_by":"age","allow_scan":true})");
  auto expect_internal = [&](const query_spec& s, std::vector<core::result<shard_hits>> a,
                             const char* what) {
    auto p = merge_hits(s, std::move(a));
    ASSERT_FALSE(p) << what;
    EXPECT_EQ(p.error().code(), errc::internal) << what << ": " << p.error().to_string();
    EXPECT_NE(p.error().message().find("shard 1"), std::string::npos)
      << what << ": names the shard: " << p.error().message();
  };
  expect_internal(
    spec,
    answers<shard_hits>({hits({}), hits({hit_of(spec, "b", 2), hit_of(spec, "a", 1)}), hits({})}),
    "unordered");
  expect_internal(
    spec, answers<shard_hits>({hits({}), hits({hit_of(spec, "a", 1), hit_of(spec, "a", 1)})}),
    "repeated");
  auto desc = spec_of(R"({"where":{},"order_by":"age","desc":true,"allow_scan":true})");
  expect_internal(
    desc, answers<shard_hits>({hits({}), hits({hit_of(desc, "a", 1), hit_of(desc, "b", 2)})}),
    "ascending in a descending query");
  auto not_object = hit_of(spec, "a", 1);
  not_object.doc = "[1]";
  expect_internal(spec, answers<shard_hits>({hits({}), hits({not_object})}), "not an object");
  auto empty_doc = hit_of(spec, "a", 1);
  empty_doc.doc.clear();
  expect_internal(spec, answers<shard_hits>({hits({}), hits({empty_doc})}), "no document");
  auto after = spec;
  after.after = hit_of(spec, "m", 5).sort_key;
  expect_internal(after,
                  answers<shard_hits>({hits({hit_of(spec, "n", 6)}), hits({hit_of(spec, "a", 1)})}),
                  "before the cursor");
  // A well-formed answer of the same shapes passes.
  EXPECT_TRUE(
    merge_hits(spec, answers<shard_hits>({hits({hit_of(spec, "a", 1), hit_of(spec, "b", 2)})})));
}

// Verifies first_failure: nullopt when every answer is a value or an expected error; a
// refusal wherever it is, else the first other failure, in shard order.
TEST(FirstFailureTest, RefusalThenFirstOtherFailure) {
  using r = core::result<int>;
  EXPECT_FALSE(first_failure(std::vector<r>{}));
  EXPECT_FALSE(first_failure(std::vector<r>{1, 2}));
  EXPECT_FALSE(first_failure(std::vector<r>{1, failure(errc::not_found)}, {errc::not_found}));
  auto e = first_failure(std::vector<r>{1, failure(errc::not_found)});
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code(), errc::not_found) << "not_found fails unless expected";

  e = first_failure(std::vector<r>{failure(errc::storage_failed, "first"),
                                   failure(errc::shard_unavailable, "second"), 3});
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code(), errc::storage_failed);
  EXPECT_EQ(e->message(), "first");

  e = first_failure(std::vector<r>{failure(errc::storage_failed), failure(errc::not_found),
                                   core::error{errc::invalid_argument, "bad", "refused"}},
                    {errc::not_found});
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code(), errc::invalid_argument);
  EXPECT_EQ(e->name(), "bad");

  e = first_failure(std::vector<r>{failure(errc::not_found), failure(errc::internal, "x")},
                    {errc::not_found});
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code(), errc::internal) << "an expected error never hides another";
}

// -- explain ------------------------------------------------------------------------------

// Verifies plans that agree are summed: the one index, its bounds, the shard count and
// the estimated keys, and no per-shard list; full scans likewise, without an index.
TEST(MergePlansTest, SumsPlansThatAgree) {
  auto p = merge_plans(answers<shard_plan>(
    {shard_plan{"age", "range", 4}, shard_plan{"age", "range", 0}, shard_plan{"age", "range", 7}}));
  ASSERT_TRUE(p) << p.error().to_string();
  EXPECT_EQ(p->index, std::optional<std::string>("age"));
  EXPECT_TRUE(p->all_indexed);
  EXPECT_EQ(p->bounds, "range");
  EXPECT_EQ(p->shards, 3u);
  EXPECT_EQ(p->estimated_keys, 11u);
  EXPECT_TRUE(p->per_shard.empty());

  auto scan =
    merge_plans(answers<shard_plan>({shard_plan{"", "all", 5}, shard_plan{"", "all", 6}}));
  ASSERT_TRUE(scan);
  EXPECT_FALSE(scan->index);
  EXPECT_FALSE(scan->all_indexed);
  EXPECT_EQ(scan->bounds, "all");
  EXPECT_EQ(scan->shards, 2u);
  EXPECT_EQ(scan->estimated_keys, 11u);
  EXPECT_TRUE(scan->per_shard.empty());
}

// Verifies shards that plan differently (an index still building on one) are reported one
// by one, in shard order, as "mixed" without one index.
TEST(MergePlansTest, ReportsShardsThatDisagree) {
  auto p = merge_plans(answers<shard_plan>(
    {shard_plan{"age", "eq", 2}, shard_plan{"", "all", 40}, shard_plan{"age", "eq", 1}}));
  ASSERT_TRUE(p);
  EXPECT_FALSE(p->index);
  EXPECT_FALSE(p->all_indexed);
  EXPECT_EQ(p->bounds, "mixed");
  EXPECT_EQ(p->shards, 3u);
  EXPECT_EQ(p->estimated_keys, 43u);
  ASSERT_EQ(p->per_shard.size(), 3u);
  EXPECT_EQ(p->per_shard[0].index, "age");
  EXPECT_EQ(p->per_shard[1].index, "");
  EXPECT_EQ(p->per_shard[1].bounds, "all");
  EXPECT_EQ(p->per_shard[1].estimated_keys, 40u);
  EXPECT_EQ(p->per_shard[2].index, "age");
  EXPECT_EQ(p->per_shard[2].bounds, "eq");
  EXPECT_EQ(p->per_shard[2].estimated_keys, 1u);

  // Every shard on an index, but not the same one: indexed, yet no one index.
  auto two =
    merge_plans(answers<shard_plan>({shard_plan{"age", "eq", 2}, shard_plan{"status", "eq", 3}}));
  ASSERT_TRUE(two);
  EXPECT_FALSE(two->index);
  EXPECT_TRUE(two->all_indexed);
  EXPECT_EQ(two->bounds, "mixed");
  EXPECT_EQ(two->per_shard.size(), 2u);
}

// Verifies a failing shard fails the plan (a refusal first), and no answer at all is internal.
TEST(MergePlansTest, Failures) {
  auto down = merge_plans(
    answers<shard_plan>({shard_plan{"age", "eq", 2}, failure(errc::shard_unavailable)}));
  ASSERT_FALSE(down);
  EXPECT_EQ(down.error().code(), errc::shard_unavailable);
  auto refused = merge_plans(answers<shard_plan>(
    {failure(errc::shard_unavailable), core::error{errc::invalid_argument, "x", "y"}}));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), errc::invalid_argument);
  auto none = merge_plans({});
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code(), errc::internal);
}

// -- indexes ------------------------------------------------------------------------------

index_progress progress(std::string field, bool ready, std::uint64_t indexed, std::uint64_t total) {
  return index_progress{std::move(field), ready, indexed, total};
}

void expect_progress(const index_progress& p, const std::string& field, bool ready,
                     std::uint64_t indexed, std::uint64_t total) {
  EXPECT_EQ(p.field, field);
  EXPECT_EQ(p.ready, ready) << field;
  EXPECT_EQ(p.indexed, indexed) << field;
  EXPECT_EQ(p.total, total) << field;
}

// Verifies PUT of an index sums the shards' progress (building while any part builds) and
// is created when any shard created it: an index only some shards had (a PUT interrupted
// by a failure) is created again.
TEST(MergeIndexTest, CreatedSumsProgress) {
  auto created =
    merge_created(answers<index_state>({index_state{progress("address.city", false, 0, 10), true},
                                        index_state{progress("address.city", true, 5, 5), true},
                                        index_state{progress("address.city", false, 3, 7), true}}));
  ASSERT_TRUE(created) << created.error().to_string();
  EXPECT_TRUE(created->created);
  expect_progress(created->progress, "address.city", false, 8, 22);

  auto existing =
    merge_created(answers<index_state>({index_state{progress("age", true, 4, 4), false},
                                        index_state{progress("age", true, 6, 6), false}}));
  ASSERT_TRUE(existing);
  EXPECT_FALSE(existing->created);
  expect_progress(existing->progress, "age", true, 10, 10);

  auto partly =
    merge_created(answers<index_state>({index_state{progress("age", true, 4, 4), false},
                                        index_state{progress("age", false, 0, 6), true}}));
  ASSERT_TRUE(partly);
  EXPECT_TRUE(partly->created);
  expect_progress(partly->progress, "age", false, 4, 10);

  auto down = merge_created(answers<index_state>(
    {index_state{progress("age", true, 4, 4), true}, failure(errc::storage_failed)}));
  ASSERT_FALSE(down);
  EXPECT_EQ(down.error().code(), errc::storage_failed);
  auto refused = merge_created(answers<index_state>(
    {failure(errc::storage_failed), core::error{errc::invalid_argument, "invalid_field", "no"}}));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().name(), "invalid_field");
  auto none = merge_created({});
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code(), errc::internal);
}

// Verifies GET of an index sums the shards that have it (building while any part builds);
// not_found from some shards is tolerated, from all is not_found; any other failure fails.
TEST(MergeIndexTest, ProgressOfTheShardsThatHaveIt) {
  auto building = merge_progress(answers<index_progress>(
    {progress("age", true, 3, 3), progress("age", false, 1, 9), failure(errc::not_found)}));
  ASSERT_TRUE(building) << building.error().to_string();
  expect_progress(*building, "age", false, 4, 12);

  auto first_missing = merge_progress(answers<index_progress>(
    {failure(errc::not_found), progress("age", true, 2, 2), progress("age", true, 5, 5)}));
  ASSERT_TRUE(first_missing);
  expect_progress(*first_missing, "age", true, 7, 7);

  auto missing =
    merge_progress(answers<index_progress>({failure(errc::not_found), failure(errc::not_found)}));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), errc::not_found);

  auto down = merge_progress(
    answers<index_progress>({progress("age", true, 3, 3), failure(errc::shard_unavailable)}));
  ASSERT_FALSE(down);
  EXPECT_EQ(down.error().code(), errc::shard_unavailable);
  auto down_and_missing = merge_progress(
    answers<index_progress>({failure(errc::not_found), failure(errc::shard_unavailable)}));
  ASSERT_FALSE(down_and_missing);
  EXPECT_EQ(down_and_missing.error().code(), errc::shard_unavailable)
    << "an unavailable shard may have it: not a 404";
}

// Verifies DELETE of an index is done when some shard dropped it, not_found when none had
// it, and fails when a shard failed.
TEST(MergeIndexTest, Dropped) {
  EXPECT_TRUE(merge_dropped(answers<index_dropped>({index_dropped{}, failure(errc::not_found)})));
  EXPECT_TRUE(merge_dropped(answers<index_dropped>({failure(errc::not_found), index_dropped{}})));
  auto missing =
    merge_dropped(answers<index_dropped>({failure(errc::not_found), failure(errc::not_found)}));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), errc::not_found);
  auto down =
    merge_dropped(answers<index_dropped>({index_dropped{}, failure(errc::storage_failed, "disk")}));
  ASSERT_FALSE(down);
  EXPECT_EQ(down.error().code(), errc::storage_failed);
  EXPECT_EQ(down.error().message(), "disk");
}

// Verifies the index list merges each field over the shards, sorted by field: counts
// summed, building while any part builds; a shard failing fails the list.
TEST(MergeIndexTest, ListingsMergeByField) {
  auto merged = merge_listings(answers<index_listing>(
    {index_listing{{progress("status", true, 2, 2), progress("age", true, 1, 1)}},
     index_listing{{progress("age", false, 0, 5), progress("status", true, 3, 3)}},
     index_listing{{}}, index_listing{{progress("name", true, 4, 4)}}}));
  ASSERT_TRUE(merged) << merged.error().to_string();
  ASSERT_EQ(merged->indexes.size(), 3u);
  expect_progress(merged->indexes[0], "age", false, 1, 6);
  expect_progress(merged->indexes[1], "name", true, 4, 4);
  expect_progress(merged->indexes[2], "status", true, 5, 5);

  auto none = merge_listings(answers<index_listing>({index_listing{}, index_listing{}}));
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->indexes.empty());

  auto down =
    merge_listings(answers<index_listing>({index_listing{}, failure(errc::shard_unavailable)}));
  ASSERT_FALSE(down);
  EXPECT_EQ(down.error().code(), errc::shard_unavailable);
}

} // namespace
} // namespace shoal::query
