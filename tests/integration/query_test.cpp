// SPDX-License-Identifier: Apache-2.0
// End-to-end tests of secondary indexes and queries (docs/queries.md) against the real
// shoal binary over loopback: the index lifecycle, queries compared with a brute-force
// answer computed here over the documents the test wrote, ordering, paging (also under
// concurrent writes), index_required and allow_scan, explain, and an index built over
// 20 000 existing documents. Each test uses a collection named after itself.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "tests/integration/node_suite.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/metrics_text.hpp"
#include "tests/support/json_members.hpp"

namespace shoal::test {
namespace {

namespace json = boost::json;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

const header_list json_type{{"Content-Type", "application/json"}};

/// Every poll in this file gives up after this long (a loaded 2-core machine included).
constexpr milliseconds patience{60000};

// -- the order of values, computed independently of the node ------------------------------

/// missing < null < false < true < numbers < strings; arrays and objects sort as missing.
int type_rank(const json::value* v) {
  if (v == nullptr) return 0;
  switch (v->kind()) {
  case json::kind::null:
    return 1;
  case json::kind::bool_:
    return v->get_bool() ? 3 : 2;
  case json::kind::int64:
  case json::kind::uint64:
  case json::kind::double_:
    return 4;
  case json::kind::string:
    return 5;
  default:
    return 0;
  }
}

double number(const json::value& v) {
  if (v.is_int64()) return static_cast<double>(v.get_int64());
  if (v.is_uint64()) return static_cast<double>(v.get_uint64());
  return v.get_double();
}

/// -1, 0, 1 comparing the values of `field` in `a` and `b` (JSON objects).
int compare_field(const json::object& a, const json::object& b, const std::string& field) {
  const json::value* va = a.if_contains(field);
  const json::value* vb = b.if_contains(field);
  int ra = type_rank(va);
  int rb = type_rank(vb);
  if (ra != rb) return ra < rb ? -1 : 1;
  if (ra == 4) {
    double x = number(*va);
    double y = number(*vb);
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  if (ra == 5) {
    int c = std::string_view(va->get_string()).compare(std::string_view(vb->get_string()));
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
  }
  return 0;
}

/// The documents a test wrote, by id.
using doc_map = std::map<std::string, json::object>;

/// The ids of the documents of `docs` that pass `match`, in the order of `order_by` (by
/// id without one; ties by id), reversed with `desc`.
std::vector<std::string> brute_force(const doc_map& docs,
                                     const std::function<bool(const json::object&)>& match,
                                     const std::string& order_by = {}, bool desc = false) {
  std::vector<std::pair<std::string, const json::object*>> hits;
  for (const auto& [id, doc] : docs)
    if (match(doc)) hits.emplace_back(id, &doc);
  std::sort(hits.begin(), hits.end(), [&](const auto& x, const auto& y) {
    int c = order_by.empty() ? 0 : compare_field(*x.second, *y.second, order_by);
    if (c == 0) c = x.first < y.first ? -1 : (x.first > y.first ? 1 : 0);
    return desc ? c > 0 : c < 0;
  });
  std::vector<std::string> ids;
  for (const auto& h : hits)
    ids.push_back(h.first);
  return ids;
}

/// Whether `v` is an integer in [lo, hi).
bool int_in(const json::value* v, std::int64_t lo, std::int64_t hi) {
  return v != nullptr && v->is_int64() && v->get_int64() >= lo && v->get_int64() < hi;
}

bool str_is(const json::object& d, std::string_view field, std::string_view value) {
  const auto* v = d.if_contains(field);
  return v != nullptr && v->is_string() && v->get_string() == value;
}

// -- the suites --------------------------------------------------------------------------------

/// One page of a query answer.
struct page {
  unsigned status = 0;
  std::vector<std::string> ids;
  std::vector<json::value> docs; ///< {"id","version","doc"}
  json::value next_cursor;
  std::string body;
};

template <class Config>
class query_suite : public node_suite<Config> {
protected:
  using base = node_suite<Config>;

  static std::string coll_path(std::string_view suffix = {}) {
    return "/v1/collections/" + base::collection() + std::string(suffix);
  }

  /// PUT of document `id` in the test's collection on `c`; records it in `docs`.
  static void put_doc(http_client& c, doc_map* docs, const std::string& id, json::object doc) {
    auto res = c.put(base::doc(id), json::serialize(doc));
    ASSERT_TRUE(res.status == 200 || res.status == 201) << id << ": " << res.body;
    if (docs) (*docs)[id] = std::move(doc);
  }

  void put(doc_map& docs, const std::string& id, json::object doc) {
    put_doc(this->client(), &docs, id, std::move(doc));
  }

  void del(doc_map& docs, const std::string& id) {
    auto res = this->client().del(base::doc(id));
    ASSERT_EQ(res.status, 204u) << res.body;
    docs.erase(id);
  }

  /// PUT of the index on `field`; the answer.
  http_response create_index(std::string_view field) {
    return this->client().put(coll_path("/indexes/") + std::string(field), "");
  }

  /// Polls GET of the index until it is ready; its last progress.
  json::value wait_ready(std::string_view field) {
    auto deadline = steady_clock::now() + patience;
    for (;;) {
      auto res = this->client().get(coll_path("/indexes/") + std::string(field));
      EXPECT_EQ(res.status, 200u) << res.body;
      auto v = res.json();
      if (res.status != 200 || str(v, "state") == "ready") return v;
      if (steady_clock::now() > deadline) {
        ADD_FAILURE() << "index " << field << " not ready: " << res.body;
        return v;
      }
      std::this_thread::sleep_for(milliseconds(20));
    }
  }

  /// Creates the index on `field` and waits until it is ready.
  void index(std::string_view field) {
    auto res = create_index(field);
    ASSERT_TRUE(res.status == 201 || res.status == 200) << res.body;
    auto p = wait_ready(field);
    ASSERT_EQ(str(p, "state"), "ready") << json::serialize(p);
  }

  /// POST of `body` to the query route of `collection` (the test's by default).
  static page query_on(http_client& c, const json::object& body, std::string params = {},
                       std::string collection = {}) {
    if (collection.empty()) collection = base::collection();
    auto res = c.request("POST", "/v1/collections/" + collection + "/query" + params,
                         json::serialize(body), json_type);
    page p;
    p.status = res.status;
    p.body = res.body;
    if (res.status != 200) return p;
    auto v = res.json();
    auto docs = at(v, "docs");
    EXPECT_TRUE(docs.is_array()) << res.body;
    if (docs.is_array())
      for (const auto& d : docs.get_array()) {
        p.ids.push_back(str(d, "id"));
        p.docs.push_back(d);
      }
    p.next_cursor = at(v, "next_cursor");
    return p;
  }

  page query(const json::object& body, std::string params = {}) {
    return query_on(this->client(), body, std::move(params));
  }

  /// Every page of `body` (limit as given), following next_cursor; the ids in order.
  /// Fails when a page is not 200 or there are more than `max_pages`.
  static std::vector<std::string> query_all_on(http_client& c, json::object body,
                                               std::size_t max_pages = 1000,
                                               const std::function<void()>& between = {}) {
    std::vector<std::string> ids;
    body["cursor"] = nullptr;
    for (std::size_t n = 0; n < max_pages; ++n) {
      auto p = query_on(c, body);
      EXPECT_EQ(p.status, 200u) << p.body;
      if (p.status != 200) return ids;
      ids.insert(ids.end(), p.ids.begin(), p.ids.end());
      if (p.next_cursor.is_null()) return ids;
      EXPECT_TRUE(p.next_cursor.is_string()) << p.body;
      body["cursor"] = p.next_cursor;
      if (between) between();
    }
    ADD_FAILURE() << "more than " << max_pages << " pages";
    return ids;
  }

  std::vector<std::string> query_all(json::object body) {
    return query_all_on(this->client(), std::move(body));
  }
};

class QueryTest : public query_suite<default_node> {};

/// A node whose index builds take many small steps over few shards, so that a build over
/// 20 000 documents is seen in progress.
struct slow_build_node {
  static std::vector<std::string> sets() {
    return {"cluster.shards=8", "query.index_build_batch=50"};
  }
};

class IndexBuildTest : public query_suite<slow_build_node> {};

// -- index lifecycle ---------------------------------------------------------------------------

// Verifies create (201, then 200), get, list, drop (204, then 404) of an index.
TEST_F(QueryTest, IndexLifecycle) {
  doc_map docs;
  for (int i = 0; i < 5; ++i)
    put(docs, "d" + std::to_string(i), {{"age", i}, {"address", json::object{{"city", "x"}}}});

  auto created = create_index("age");
  EXPECT_EQ(created.status, 201u) << created.body;
  EXPECT_EQ(created.header("Location"), coll_path("/indexes/age"));
  EXPECT_EQ(str(created.json(), "field"), "age");
  auto progress = wait_ready("age");
  EXPECT_EQ(num(progress, "indexed"), 5);
  EXPECT_EQ(num(progress, "total"), 5);
  auto again = create_index("age");
  EXPECT_EQ(again.status, 200u) << again.body;
  EXPECT_EQ(str(again.json(), "state"), "ready");

  index("address.city");
  auto list = client().get(coll_path("/indexes"));
  ASSERT_EQ(list.status, 200u) << list.body;
  EXPECT_EQ(list.json(), json::parse(R"({"indexes":[
    {"field":"address.city","state":"ready","indexed":5,"total":5},
    {"field":"age","state":"ready","indexed":5,"total":5}]})"));

  EXPECT_EQ(client().del(coll_path("/indexes/age")).status, 204u);
  auto gone = client().get(coll_path("/indexes/age"));
  EXPECT_EQ(gone.status, 404u);
  EXPECT_EQ(gone.error_code(), "not_found");
  EXPECT_EQ(client().del(coll_path("/indexes/age")).status, 404u);
  auto after = client().get(coll_path("/indexes")).json();
  EXPECT_EQ(at(after, "indexes").as_array().size(), 1u);
}

// Verifies an index on an invalid path is 400 invalid_field, and a list of a collection
// with no index is empty.
TEST_F(QueryTest, IndexOnAnInvalidPathIs400) {
  for (auto field : {"a..b", "a.", "a.b.c.d.e.f.g.h.i", "a%20b", "%24where"}) {
    auto res = create_index(field);
    EXPECT_EQ(res.status, 400u) << field;
    EXPECT_EQ(res.error_code(), "invalid_field") << field;
  }
  auto list = client().get(coll_path("/indexes"));
  EXPECT_EQ(list.status, 200u);
  EXPECT_EQ(list.body, R"({"indexes":[]})");
}

// -- queries against brute force ---------------------------------------------------------------

/// 300 documents: status of three, age 0..99 (some missing, one a string), city by path.
doc_map people() {
  doc_map docs;
  const char* statuses[] = {"active", "inactive", "pending"};
  for (int i = 0; i < 300; ++i) {
    json::object d;
    d["status"] = statuses[(i * 7) % 3];
    if (i % 23 != 0) d["age"] = (i * 37) % 100;
    if (i == 5) d["age"] = "unknown";
    d["address"] = json::object{{"city", i % 2 == 0 ? "Paris" : "Oslo"}};
    d["n"] = i;
    char id[16];
    std::snprintf(id, sizeof id, "p%03d", (i * 101) % 300);
    docs[id] = std::move(d);
  }
  return docs;
}

// Verifies equality, range, $in and combined queries answer exactly what a brute-force
// filter of the written documents gives, in order.
TEST_F(QueryTest, QueriesMatchBruteForce) {
  doc_map docs;
  for (auto& [id, d] : people())
    put(docs, id, d);
  index("status");
  index("age");
  index("address.city");
  struct check {
    check(const char* b, std::function<bool(const json::object&)> m, std::string o = {},
          bool d = false)
        : body(b), match(std::move(m)), order_by(std::move(o)), desc(d) {}
    const char* body;
    std::function<bool(const json::object&)> match;
    std::string order_by;
    bool desc;
  };
  std::vector<check> checks{
    {R"({"where":{"status":"active"},"limit":1000})",
     [](const json::object& d) { return str_is(d, "status", "active"); }},
    {R"({"where":{"age":{"$gte":30,"$lt":40}},"limit":1000})",
     [](const json::object& d) { return int_in(d.if_contains("age"), 30, 40); }},
    {R"({"where":{"age":{"$gt":30,"$lte":40}},"order_by":"age","limit":1000})",
     [](const json::object& d) { return int_in(d.if_contains("age"), 31, 41); }, "age"},
    {R"({"where":{"age":{"$in":[1,5,7,99,1000]}},"limit":1000})",
     [](const json::object& d) {
       const auto* a = d.if_contains("age");
       return a && a->is_int64()
              && (a->get_int64() == 1 || a->get_int64() == 5 || a->get_int64() == 7
                  || a->get_int64() == 99);
     }},
    {R"({"where":{"status":"active","age":{"$gte":30,"$lt":60}},"order_by":"age","desc":true,
         "limit":1000})",
     [](const json::object& d) {
       return str_is(d, "status", "active") && int_in(d.if_contains("age"), 30, 60);
     },
     "age", true},
    {R"({"where":{"address.city":"Oslo","status":{"$in":["pending","inactive"]}},"limit":1000})",
     [](const json::object& d) {
       return str_is(d.at("address").as_object(), "city", "Oslo")
              && (str_is(d, "status", "pending") || str_is(d, "status", "inactive"));
     }},
    {R"({"where":{"age":"unknown"},"limit":1000})",
     [](const json::object& d) { return str_is(d, "age", "unknown"); }},
    {R"({"where":{"status":"pending"},"order_by":"age","limit":1000})",
     [](const json::object& d) { return str_is(d, "status", "pending"); }, "age"},
    {R"({"where":{"status":"nobody"},"limit":1000})", [](const json::object&) { return false; }},
  };
  for (const auto& c : checks) {
    auto expected = brute_force(docs, c.match, c.order_by, c.desc);
    auto p = query(json::parse(c.body).as_object());
    ASSERT_EQ(p.status, 200u) << c.body << ": " << p.body;
    EXPECT_EQ(p.ids, expected) << c.body;
    EXPECT_TRUE(p.next_cursor.is_null()) << c.body;
  }
  // Each document comes with its version and as written.
  auto p = query(json::parse(R"({"where":{"status":"active"},"limit":3})").as_object());
  ASSERT_EQ(p.docs.size(), 3u);
  for (const auto& d : p.docs) {
    EXPECT_EQ(num(d, "version"), 1);
    EXPECT_EQ(at(d, "doc"), json::value(docs.at(str(d, "id")))) << json::serialize(d);
  }
}

// Verifies order_by across JSON types (missing < null < false < true < numbers < strings),
// ascending and descending.
TEST_F(QueryTest, OrderByFollowsTypeOrder) {
  doc_map docs;
  std::vector<json::value> values{nullptr,
                                  false,
                                  true,
                                  -3.5,
                                  0,
                                  2,
                                  10,
                                  1e9,
                                  "",
                                  "a",
                                  "b",
                                  json::array{1},
                                  json::object{{"x", 1}}};
  for (std::size_t i = 0; i < values.size(); ++i) {
    put(docs, "t" + std::to_string(i), {{"v", values[i]}, {"g", "all"}});
    put(docs, "u" + std::to_string(i), {{"v", values[values.size() - 1 - i]}, {"g", "all"}});
  }
  put(docs, "missing", {{"g", "all"}});
  index("g");
  auto all = [](const json::object& d) { return str_is(d, "g", "all"); };
  for (bool desc : {false, true}) {
    json::object q{{"where", {{"g", "all"}}}, {"order_by", "v"}, {"desc", desc}, {"limit", 1000}};
    auto p = query(q);
    ASSERT_EQ(p.status, 200u) << p.body;
    EXPECT_EQ(p.ids, brute_force(docs, all, "v", desc)) << "desc " << desc;
  }
  // Paged, in small pages, the order is the same.
  json::object q{{"where", {{"g", "all"}}}, {"order_by", "v"}, {"limit", 4}};
  EXPECT_EQ(query_all(q), brute_force(docs, all, "v"));
}

// Verifies paging with limit 7 over 200 matching documents returns each exactly once, in
// order, with a cursor on every page but the last.
TEST_F(QueryTest, PagingGivesEveryDocumentOnce) {
  doc_map docs;
  for (int i = 0; i < 200; ++i)
    put(docs, "k" + std::to_string(i), {{"group", "g"}, {"n", (i * 13) % 50}});
  for (int i = 0; i < 20; ++i)
    put(docs, "other" + std::to_string(i), {{"group", "h"}, {"n", i}});
  index("group");
  auto in_g = [](const json::object& d) { return str_is(d, "group", "g"); };
  for (const char* order_by : {"", "n"}) {
    for (bool desc : {false, true}) {
      json::object q{{"where", {{"group", "g"}}}, {"desc", desc}, {"limit", 7}};
      if (*order_by) q["order_by"] = order_by;
      json::object first_page = q;
      auto p = query(first_page);
      ASSERT_EQ(p.status, 200u) << p.body;
      EXPECT_EQ(p.ids.size(), 7u);
      EXPECT_TRUE(p.next_cursor.is_string());
      auto ids = query_all(q);
      EXPECT_EQ(ids, brute_force(docs, in_g, order_by, desc)) << order_by << " " << desc;
      EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), 200u);
    }
  }
  // A cursor does not resume another query.
  auto p = query({{"where", {{"group", "g"}}}, {"limit", 7}});
  ASSERT_TRUE(p.next_cursor.is_string());
  auto other = query({{"where", {{"group", "h"}}}, {"limit", 7}, {"cursor", p.next_cursor}});
  EXPECT_EQ(other.status, 400u);
  EXPECT_NE(other.body.find("invalid_cursor"), std::string::npos) << other.body;
  auto forged = query({{"where", {{"group", "g"}}}, {"cursor", "AAAAAAAAAAAAAAAAAAAA"}});
  EXPECT_EQ(forged.status, 400u);
  EXPECT_NE(forged.body.find("invalid_cursor"), std::string::npos) << forged.body;
}

// Verifies paging while another client inserts matching documents and rewrites
// non-matching ones: every document that matched before paging began and was not touched
// appears exactly once, and no document appears twice.
TEST_F(QueryTest, PagingUnderConcurrentWrites) {
  doc_map docs;
  for (int i = 0; i < 200; ++i)
    put(docs, "m" + std::to_string(1000 + i), {{"kind", "match"}, {"n", i % 17}});
  for (int i = 0; i < 50; ++i)
    put(docs, "o" + std::to_string(1000 + i), {{"kind", "other"}, {"n", i}});
  index("kind");
  index("n");

  std::atomic<bool> stop{false};
  std::atomic<int> writes{0};
  std::atomic<int> failures{0};
  std::thread writer([&] {
    http_client c{port()};
    for (int j = 0; !stop.load(); ++j) {
      // A new matching document, its id among those of the others ("m1042.7" sorts
      // between m1042 and m1043), written once.
      auto res = c.put(doc("m" + std::to_string(1000 + (j * 7) % 200) + "." + std::to_string(j)),
                       json::serialize(json::object{{"kind", "match"}, {"n", j % 17}}));
      // A document that does not match, rewritten (also with the order_by field).
      auto res2 = c.put(doc("o" + std::to_string(1000 + j % 50)),
                        json::serialize(json::object{{"kind", "other"}, {"n", j}}));
      if ((res.status != 201 && res.status != 200) || res2.status != 200) failures.fetch_add(1);
      writes.fetch_add(1);
    }
  });
  // Let the writer run between pages.
  auto let_writer_run = [&] {
    int seen = writes.load();
    auto deadline = steady_clock::now() + milliseconds(2000);
    while (writes.load() < seen + 2 && steady_clock::now() < deadline)
      std::this_thread::sleep_for(milliseconds(1));
  };
  let_writer_run();
  std::vector<std::vector<std::string>> runs;
  for (const char* order_by : {"", "n"}) {
    json::object q{{"where", {{"kind", "match"}}}, {"limit", 7}};
    if (*order_by) q["order_by"] = order_by;
    runs.push_back(query_all_on(client(), q, 1000, let_writer_run));
  }
  stop = true;
  writer.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(writes.load(), 20);
  for (const auto& ids : runs) {
    std::map<std::string, int> seen;
    for (const auto& id : ids)
      ++seen[id];
    for (const auto& [id, count] : seen) {
      EXPECT_EQ(count, 1) << id << " appeared " << count << " times";
      EXPECT_EQ(id[0], 'm') << id << " does not match";
    }
    for (int i = 0; i < 200; ++i) {
      auto id = "m" + std::to_string(1000 + i);
      EXPECT_EQ(seen.count(id), 1u) << id << " is missing";
    }
  }
}

// -- scans, explain, missing collections ----------------------------------------------------------

// Verifies a query no index serves is refused with index_required, and answered by a
// full scan with allow_scan.
TEST_F(QueryTest, IndexRequiredUnlessAllowScan) {
  doc_map docs;
  for (int i = 0; i < 60; ++i)
    put(docs, "c" + std::to_string(i), {{"color", i % 3 == 0 ? "red" : "blue"}, {"n", i}});
  auto refused = query({{"where", {{"color", "red"}}}});
  EXPECT_EQ(refused.status, 400u);
  EXPECT_NE(refused.body.find("index_required"), std::string::npos) << refused.body;
  auto red = [](const json::object& d) { return str_is(d, "color", "red"); };
  auto scanned = query({{"where", {{"color", "red"}}}, {"allow_scan", true}, {"limit", 1000}});
  ASSERT_EQ(scanned.status, 200u) << scanned.body;
  EXPECT_EQ(scanned.ids, brute_force(docs, red));
  json::object paged{{"where", {{"color", "red"}}},
                     {"allow_scan", true},
                     {"order_by", "n"},
                     {"desc", true},
                     {"limit", 3}};
  EXPECT_EQ(query_all(paged), brute_force(docs, red, "n", true));
}

// Verifies ?explain=true names the index, the shards asked and the keys estimated, and a
// full scan when there is no index.
TEST_F(QueryTest, ExplainShowsThePlan) {
  doc_map docs;
  for (int i = 0; i < 40; ++i)
    put(docs, "e" + std::to_string(i), {{"age", i % 10}, {"name", "x"}});
  index("age");
  auto res =
    client().request("POST", coll_path("/query?explain=true"), R"({"where":{"age":3}})", json_type);
  ASSERT_EQ(res.status, 200u) << res.body;
  auto plan = at(res.json(), "plan");
  EXPECT_EQ(str(plan, "index"), "age") << res.body;
  EXPECT_EQ(str(plan, "scan"), "index") << res.body;
  EXPECT_EQ(num(plan, "shards"), 64) << res.body; // cluster.shards by default
  EXPECT_GE(num(plan, "estimated_keys"), 4) << res.body;
  EXPECT_EQ(at(plan, "per_shard"), json::value(nullptr)) << res.body;

  auto scan = client().request("POST", coll_path("/query?explain=true"),
                               R"({"where":{"name":"x"},"allow_scan":true})", json_type);
  ASSERT_EQ(scan.status, 200u) << scan.body;
  auto s = at(scan.json(), "plan");
  EXPECT_TRUE(at(s, "index").is_null()) << scan.body;
  EXPECT_EQ(str(s, "scan"), "full") << scan.body;
  EXPECT_GE(num(s, "estimated_keys"), 40) << scan.body;

  auto bad =
    client().request("POST", coll_path("/query?explain=maybe"), R"({"where":{}})", json_type);
  EXPECT_EQ(bad.status, 400u);
}

// Verifies a query on a collection that does not exist is an empty answer.
TEST_F(QueryTest, MissingCollectionIsEmpty) {
  for (const char* body : {R"({"where":{"a":1}})", R"({"where":{}})",
                           R"({"where":{"a":{"$gt":1}},"order_by":"a","desc":true})"}) {
    auto res =
      client().request("POST", "/v1/collections/no-such-collection-here/query", body, json_type);
    EXPECT_EQ(res.status, 200u) << body << ": " << res.body;
    EXPECT_EQ(res.body, R"({"docs":[],"next_cursor":null})") << body;
  }
}

// Verifies that after DELETE of the index its queries need allow_scan again.
TEST_F(QueryTest, DroppedIndexNoLongerServes) {
  doc_map docs;
  for (int i = 0; i < 30; ++i)
    put(docs, "x" + std::to_string(i), {{"s", i % 2 == 0 ? "even" : "odd"}});
  index("s");
  auto even = [](const json::object& d) { return str_is(d, "s", "even"); };
  auto before = query({{"where", {{"s", "even"}}}, {"limit", 1000}});
  ASSERT_EQ(before.status, 200u) << before.body;
  EXPECT_EQ(before.ids, brute_force(docs, even));
  ASSERT_EQ(client().del(coll_path("/indexes/s")).status, 204u);
  auto after = query({{"where", {{"s", "even"}}}});
  EXPECT_EQ(after.status, 400u);
  EXPECT_NE(after.body.find("index_required"), std::string::npos) << after.body;
  // Created again, it is built again from the documents.
  index("s");
  auto again = query({{"where", {{"s", "even"}}}, {"limit", 1000}});
  EXPECT_EQ(again.ids, brute_force(docs, even));
}

// Verifies writes after the index exists keep it exact: new, changed, patched and
// deleted documents are found where they now belong and nowhere else.
TEST_F(QueryTest, WritesAfterTheIndexAreFound) {
  doc_map docs;
  index("status");
  for (int i = 0; i < 20; ++i)
    put(docs, "w" + std::to_string(i), {{"status", i % 2 == 0 ? "active" : "idle"}});
  put(docs, "w0", {{"status", "idle"}});   // active -> idle
  put(docs, "w1", {{"status", "active"}}); // idle -> active
  put(docs, "w2", {{"other", 1}});         // the field removed
  del(docs, "w4");
  del(docs, "w5");
  auto patch = client().patch(doc("w6"), R"({"status":"idle"})");
  ASSERT_EQ(patch.status, 200u) << patch.body;
  docs["w6"]["status"] = "idle";
  for (const char* s : {"active", "idle"}) {
    auto p = query({{"where", {{"status", s}}}, {"limit", 1000}});
    ASSERT_EQ(p.status, 200u) << p.body;
    EXPECT_EQ(p.ids,
              brute_force(docs, [&](const json::object& d) { return str_is(d, "status", s); }))
      << s;
  }
  // A deleted document created again is found again.
  put(docs, "w4", {{"status", "active"}});
  auto p = query({{"where", {{"status", "active"}}}, {"limit", 1000}});
  EXPECT_EQ(p.ids,
            brute_force(docs, [](const json::object& d) { return str_is(d, "status", "active"); }));
}

// Verifies the edge refuses bad queries over HTTP too (the full list is in the unit tests).
TEST_F(QueryTest, BadQueriesAre400) {
  struct bad {
    const char* body;
    const char* code;
  };
  for (auto [body, code] :
       {bad{"{", "invalid_json"}, bad{R"({"where":{"a":{"$regex":1}}})", "invalid_query"},
        bad{R"({"where":{"a":{"$gt":[1]}}})", "invalid_query"},
        bad{R"({"where":{},"limit":0})", "invalid_query"},
        bad{R"({"where":{},"limit":1001})", "invalid_query"},
        bad{R"({"where":{},"cursor":"bm9wZQ"})", "invalid_cursor"}}) {
    auto res = client().request("POST", coll_path("/query"), body, json_type);
    EXPECT_EQ(res.status, 400u) << body;
    EXPECT_EQ(res.error_code(), code) << body << ": " << res.body;
  }
  auto get = client().get(coll_path("/query"));
  EXPECT_EQ(get.status, 405u);
  EXPECT_EQ(get.header("Allow"), "POST, OPTIONS");
}

// -- a build over existing documents
// ----------------------------------------------------------------

// Verifies an index created over 20 000 existing documents reports building, then ready
// with every document indexed, and answers like a full scan.
TEST_F(IndexBuildTest, BuildOverExistingDocuments) {
  constexpr int count = 20000;
  constexpr int writers = 4;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int w = 0; w < writers; ++w)
    threads.emplace_back([&, w] {
      http_client c{port()};
      for (int i = w; i < count; i += writers) {
        auto res = c.put(doc("b" + std::to_string(i)),
                         json::serialize(json::object{{"v", i % 100}, {"i", i}}));
        if (res.status != 201) failures.fetch_add(1);
      }
    });
  for (auto& t : threads)
    t.join();
  ASSERT_EQ(failures.load(), 0);

  const auto visited_before = read_metric(port(), "shoal_index_build_documents_total");
  ASSERT_TRUE(visited_before) << "no shoal_index_build_documents_total";
  auto created = create_index("v");
  ASSERT_EQ(created.status, 201u) << created.body;
  EXPECT_EQ(str(created.json(), "state"), "building") << created.body;
  EXPECT_LT(num(created.json(), "indexed"), count) << created.body;
  // While it builds, queries on it are refused or answered exactly: never a partial answer.
  bool seen_building = false;
  auto deadline = steady_clock::now() + patience;
  json::value last;
  for (;;) {
    auto res = client().get(coll_path("/indexes/v"));
    ASSERT_EQ(res.status, 200u) << res.body;
    last = res.json();
    if (str(last, "state") == "ready") break;
    seen_building = true;
    EXPECT_LE(num(last, "indexed"), num(last, "total")) << res.body;
    auto p = query({{"where", {{"v", 42}}}, {"limit", 1000}});
    if (p.status == 200)
      EXPECT_EQ(p.ids.size(), static_cast<std::size_t>(count / 100));
    else
      EXPECT_NE(p.body.find("index_required"), std::string::npos) << p.body;
    ASSERT_LT(steady_clock::now(), deadline) << "still building: " << res.body;
    std::this_thread::sleep_for(milliseconds(20));
  }
  std::printf("index build over %d documents observed in progress: %s\n", count,
              seen_building ? "yes" : "no (finished before the first poll)");
  EXPECT_EQ(num(last, "indexed"), count) << json::serialize(last);
  EXPECT_EQ(num(last, "total"), count) << json::serialize(last);
  // /metrics: the build visited every document twice (counting, then indexing).
  EXPECT_EQ(read_metric(port(), "shoal_index_build_documents_total"),
            *visited_before + 2.0 * count);

  auto p = query({{"where", {{"v", 42}}}, {"limit", 1000}});
  ASSERT_EQ(p.status, 200u) << p.body;
  std::vector<std::string> expected;
  for (int i = 42; i < count; i += 100)
    expected.push_back("b" + std::to_string(i));
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(p.ids, expected);
  auto range = query({{"where", {{"v", {{"$gte", 10}, {"$lt", 12}}}}}, {"limit", 1000}});
  ASSERT_EQ(range.status, 200u) << range.body;
  EXPECT_EQ(range.ids.size(), static_cast<std::size_t>(2 * count / 100));
  auto scan = query({{"where", {{"v", 42}}}, {"limit", 1000}, {"allow_scan", true}});
  EXPECT_EQ(scan.ids, expected);
}

} // namespace
} // namespace shoal::test
