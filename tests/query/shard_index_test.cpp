// SPDX-License-Identifier: Apache-2.0
// The secondary indexes and queries of one shard, through the query module (query/module.hpp)
// on a manual loop (tests/support/manual_shard.hpp) over a memory store, wired as a shard
// host wires it: documents are written by the documents module, which hands every write to
// the query module (a doc_observer) so its index entries join the write's batch.
//
// Covered: definitions and their build (counting, then indexing, one bounded step per
// deferred message, resumable after a restart, retried after a failed step), entry
// maintenance by writes, drop, and queries: index choice, bounds, order, cursors, limits,
// refusals, explain, scans in bounded steps over one snapshot. Every query answer is
// compared with a brute-force reference that shares no code with the module (not
// where.matches, not sort_key, not values.hpp's compare or lookup), and every index, key by
// key, with the entries its documents imply.
#include "query/module.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <future>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "documents/documents.hpp"
#include "documents/module.hpp"
#include "query/messages.hpp"
#include "query/metrics.hpp"
#include "query/query.hpp"
#include "query/shard_index.hpp"
#include "query/values.hpp"
#include "storage/memory_store.hpp"
#include "tests/support/faulty_store.hpp"
#include "tests/support/manual_shard.hpp"

namespace shoal::query {
namespace {

namespace json = boost::json;
using key_set = std::set<std::string>;
using testing::capture;
using testing::manual_shard;

// -- the reference ------------------------------------------------------------------------
// An independent reading of a query, from the documented rules (values.hpp, docs/queries.md):
// values order missing < null < false < true < numbers < strings; a condition matches a
// scalar of its own type class (numbers compared exactly, strings bytewise); results are in
// the order of (order_by value, id), where numbers compare as the doubles an index stores.
// It reads the parsed conditions (the parser has its own tests, tests/query/query_test.cpp)
// and nothing else of the module.

static_assert(std::numeric_limits<long double>::digits >= 64,
              "the reference compares int64 and double exactly as long double");

enum class value_class { null, boolean, number, string, other };

value_class class_of(const json::value& v) {
  switch (v.kind()) {
  case json::kind::null:
    return value_class::null;
  case json::kind::bool_:
    return value_class::boolean;
  case json::kind::int64:
  case json::kind::uint64:
  case json::kind::double_:
    return value_class::number;
  case json::kind::string:
    return value_class::string;
  default:
    return value_class::other;
  }
}

template <class T>
int three_way(const T& a, const T& b) {
  return a < b ? -1 : (b < a ? 1 : 0);
}

long double exact_number(const json::value& v) {
  if (v.is_int64()) return static_cast<long double>(v.get_int64());
  if (v.is_uint64()) return static_cast<long double>(v.get_uint64());
  return static_cast<long double>(v.get_double());
}

/// `a` against `b`, two values of one class (not other).
int compare_same_class(const json::value& a, const json::value& b) {
  switch (class_of(a)) {
  case value_class::boolean:
    return three_way(a.get_bool(), b.get_bool());
  case value_class::number:
    return three_way(exact_number(a), exact_number(b));
  case value_class::string:
    // char_traits<char> compares bytes as unsigned char: UTF-8 byte order.
    return three_way(std::string_view(a.get_string()).compare(std::string_view(b.get_string())), 0);
  default:
    return 0;
  }
}

bool same_value(const json::value& a, const json::value& b) {
  return class_of(a) == class_of(b) && class_of(a) != value_class::other
         && compare_same_class(a, b) == 0;
}

/// The value at dotted `path` of `doc`, or nullptr when a step is missing or not an object.
const json::value* field(const json::value& doc, std::string_view path) {
  const json::value* v = &doc;
  for (;;) {
    const auto dot = path.find('.');
    const auto* o = v->if_object();
    if (!o) return nullptr;
    auto it = o->find(path.substr(0, dot));
    if (it == o->end()) return nullptr;
    v = &it->value();
    if (dot == std::string_view::npos) return v;
    path.remove_prefix(dot + 1);
  }
}

/// Whether `bound` admits `v`: same class, and on the right side of it.
bool within(const json::value& v, const json::value& bound, bool inclusive, bool lower) {
  if (class_of(v) != class_of(bound)) return false;
  const int c = compare_same_class(v, bound);
  return lower ? (c > 0 || (c == 0 && inclusive)) : (c < 0 || (c == 0 && inclusive));
}

bool reference_match(const condition& c, const json::value& doc) {
  const json::value* v = field(doc, c.path);
  if (!v || class_of(*v) == value_class::other) return false;
  if (c.eq && !same_value(*v, *c.eq)) return false;
  if (c.has_in && std::none_of(c.in.begin(), c.in.end(), [&](const json::value& x) {
        return same_value(*v, x);
      }))
    return false;
  if (c.lo && !within(*v, *c.lo, c.lo_inclusive, true)) return false;
  if (c.hi && !within(*v, *c.hi, c.hi_inclusive, false)) return false;
  return true;
}

bool reference_match(const query_spec& spec, const json::value& doc) {
  return std::all_of(spec.where.conditions.begin(), spec.where.conditions.end(),
                     [&](const condition& c) { return reference_match(c, doc); });
}

/// Where a document sits in the result order of a query.
struct position {
  int rank = 0; ///< missing (or not scalar) 0, null 1, false 2, true 3, number 4, string 5
  double number = 0;
  std::string text;
  std::string id;
};

position position_of(const query_spec& spec, const json::value& doc, const std::string& id) {
  position p;
  p.id = id;
  if (spec.order_by.empty()) return p;
  const json::value* v = field(doc, spec.order_by);
  if (!v) return p;
  switch (class_of(*v)) {
  case value_class::null:
    p.rank = 1;
    break;
  case value_class::boolean:
    p.rank = v->get_bool() ? 3 : 2;
    break;
  case value_class::number:
    p.rank = 4;
    p.number = static_cast<double>(exact_number(*v));
    break;
  case value_class::string:
    p.rank = 5;
    p.text = std::string(v->get_string());
    break;
  default:
    break;
  }
  return p;
}

int compare_positions(const position& a, const position& b) {
  if (a.rank != b.rank) return three_way(a.rank, b.rank);
  int c = 0;
  if (a.rank == 4) c = three_way(a.number, b.number);
  if (a.rank == 5) c = three_way(a.text.compare(b.text), 0);
  return c != 0 ? c : three_way(a.id.compare(b.id), 0);
}

/// The sort key a hit must carry (the cursor's resume point): the value key of the order_by
/// value (values.hpp, tested in values_test.cpp; "missing" when absent or not scalar), then
/// the id.
std::string expected_sort_key(const query_spec& spec, const json::value& doc,
                              const std::string& id) {
  std::string k;
  if (!spec.order_by.empty()) {
    const json::value* v = field(doc, spec.order_by);
    if (!v || !append_value_key(k, *v)) append_missing_key(k);
  }
  return k + id;
}

/// One hit of the reference answer.
struct reference_hit {
  position at;
  std::string id;
  std::uint64_t version = 0;
  std::string doc;
  std::string sort_key;
};

struct reference_answer {
  std::vector<reference_hit> hits;
  bool more = false;
};

// -- helpers --------------------------------------------------------------------------------

/// Parses a query body as a client sends it (the test's queries are all valid).
query_spec spec_of_json(const json::value& body) {
  query_limits limits;
  limits.max_limit = 1000;
  auto r = parse_query(body, limits);
  if (!r) {
    ADD_FAILURE() << json::serialize(body) << ": " << r.error().to_string();
    return {};
  }
  return *r;
}
query_spec spec_of(std::string_view body) {
  return spec_of_json(json::parse(body));
}

/// Delivers `req` to `m` as one message of `shard` does: served, then the message's end
/// (commit completions run, timers armed). Deferred work (build steps, the further steps of
/// a scan) waits for run_one() or run(), as it waits behind queued messages in a host.
template <class Module, class R>
std::shared_ptr<capture<typename R::reply>> send(manual_shard& shard, Module& m, R req) {
  using T = typename R::reply;
  auto c = std::make_shared<capture<T>>();
  m.serve(std::move(req), core::reply_to<T>::to([c](core::result<T>&& r) {
            ++c->deliveries;
            c->last = std::move(r);
          }));
  shard.ctx().finish_step();
  return c;
}

/// Runs deferred messages one at a time until `c` is answered; how many ran.
template <class T>
std::size_t run_until(manual_shard& shard, const capture<T>& c) {
  std::size_t n = 0;
  while (!c.ready() && n < 1'000'000 && shard.run_one())
    ++n;
  return n;
}

documents::doc_write put_request(std::string collection, std::string id, std::string body) {
  documents::doc_write w;
  w.kind = documents::write_kind::put;
  w.collection = std::move(collection);
  w.id = std::move(id);
  w.body = std::move(body);
  return w;
}

/// Readable form of a hit list, for failure messages.
template <class Hit>
std::string describe(const std::vector<Hit>& hits) {
  std::string out = "[";
  for (const auto& h : hits)
    out += (out.size() > 1 ? " " : "") + h.id + "@" + std::to_string(h.version);
  return out + "]";
}

std::string joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines)
    out += l + "\n";
  return out;
}

/// Whether a query's answer must hold documents: most must (so two empty answers never
/// pass for a correct one), some are meant to find nothing.
enum class expect { some, none };

/// A live document of the model: its version and JSON text.
struct model_doc {
  std::uint64_t version = 0;
  std::string text;
};
using model = std::map<std::string, model_doc>; ///< by id

class ShardIndexTest : public ::testing::Test {
protected:
  static constexpr std::uint32_t default_batch = 5;

  void SetUp() override {
    reopen();
  }

  void TearDown() override {
    if (shard_) {
      EXPECT_TRUE(shard_->reports.empty()) << joined(shard_->reports);
    }
    stop();
  }

  void stop() {
    documents_.reset();
    query_.reset();
    shard_.reset();
  }

  /// Starts the shard again over the same store, as after a crash or a restart: a new
  /// context (what was deferred is gone), a query module loading the definitions, and a
  /// documents module that follows it, wired as host/shard_host.cpp wires them.
  void reopen(std::uint32_t build_batch = default_batch) {
    if (shard_) {
      EXPECT_TRUE(shard_->reports.empty()) << joined(shard_->reports);
    }
    stop();
    batch_ = build_batch;
    shard_ = std::make_unique<manual_shard>(store_);
    query_ = std::make_unique<module>(shard_->ctx(), module::config{build_batch, &metrics_});
    documents_ = std::make_unique<documents::module>(
      shard_->ctx(), documents::module::config{}, std::vector<shard::doc_observer*>{query_.get()});
    if (const auto& e = query_->load_error()) documents_->refuse_writes(*e);
  }

  template <class Module, class R>
  auto send(Module& m, R req) {
    return query::send(*shard_, m, std::move(req));
  }

  /// Writes document `id` of `collection` through the documents module (`after` empty:
  /// deletes it), and the model with it.
  void write_doc(const std::string& collection, const std::string& id, const std::string& after) {
    auto req = put_request(collection, id, after);
    if (after.empty()) req.kind = documents::write_kind::del;
    auto c = send(*documents_, std::move(req));
    ASSERT_TRUE(c->ready()) << "a write answers once committed";
    ASSERT_TRUE(c->last->ok()) << collection << "/" << id << ": " << c->last->error().to_string();
    if (after.empty()) {
      docs_[collection].erase(id);
    } else {
      docs_[collection][id] = {(*c->last)->version, after};
    }
  }
  void put_doc(const std::string& collection, const std::string& id, const std::string& text) {
    write_doc(collection, id, text);
  }
  void del_doc(const std::string& collection, const std::string& id) {
    write_doc(collection, id, {});
  }

  /// Runs one deferred message (a build step, when one is due); checks it read at most the
  /// documents a step may (20 times the batch while counting). False when none was due.
  bool build_step() {
    const auto before = metrics_.index_build_docs.value();
    const bool ran = shard_->run_one();
    EXPECT_LE(metrics_.index_build_docs.value() - before, std::uint64_t{batch_} * 20);
    return ran;
  }

  /// Runs build steps until none is due (bounded).
  void build_all() {
    for (int i = 0; i < 100'000 && build_step(); ++i) {
    }
    EXPECT_EQ(shard_->ctx().deferred(), 0u) << "the build ended";
  }

  core::result<index_state> create(const std::string& collection, const std::string& path) {
    auto c = send(*query_, index_create{collection, path});
    EXPECT_TRUE(c->ready());
    if (!c->ready()) return core::error{core::errc::internal, "no answer"};
    return *c->last;
  }

  /// Creates the index and builds every building index to ready.
  void create_ready(const std::string& collection, const std::string& path) {
    auto s = create(collection, path);
    ASSERT_TRUE(s) << s.error().to_string();
    EXPECT_TRUE(s->created);
    build_all();
    EXPECT_TRUE(progress(collection, path).ready) << collection << "/" << path;
  }

  core::result<index_progress> find(const std::string& collection, const std::string& path) {
    auto c = send(*query_, index_get{collection, path});
    EXPECT_TRUE(c->ready());
    if (!c->ready()) return core::error{core::errc::internal, "no answer"};
    return *c->last;
  }

  index_progress progress(const std::string& collection, const std::string& path) {
    auto p = find(collection, path);
    EXPECT_TRUE(p) << collection << "/" << path << ": " << p.error().to_string();
    return p ? *p : index_progress{};
  }

  std::vector<index_progress> list(const std::string& collection) {
    return send(*query_, index_list{collection})->value().indexes;
  }

  core::result<index_dropped> drop(const std::string& collection, const std::string& path) {
    auto c = send(*query_, index_drop{collection, path});
    EXPECT_TRUE(c->ready());
    if (!c->ready()) return core::error{core::errc::internal, "no answer"};
    return *c->last;
  }

  /// Every key starting with `prefix` in the store.
  key_set keys(std::string_view prefix) {
    key_set out;
    auto r = store_.shard(0).scan_prefix(prefix, [&](std::string_view k, std::string_view v) {
      if (prefix == "x") {
        EXPECT_EQ(v, "") << "an index entry has an empty value";
      }
      out.emplace(k);
      return true;
    });
    EXPECT_TRUE(r) << r.error().to_string();
    return out;
  }

  /// A stored document as the model reads it: as deep as Shoal accepts (64 levels).
  static json::value parse_doc(std::string_view text) {
    json::parse_options opts;
    opts.max_depth = 64;
    return json::parse(text, {}, opts);
  }

  /// The entries of the index on (collection, path) that the model's documents imply.
  key_set expected_entries(const std::string& collection, const std::string& path) {
    key_set out;
    const auto prefix = index_entry_prefix(collection, path);
    for (const auto& [id, d] : docs_[collection]) {
      auto doc = parse_doc(d.text);
      const auto* v = field(doc, path);
      if (!v || class_of(*v) == value_class::other) continue;
      std::string k = prefix;
      EXPECT_TRUE(append_value_key(k, *v));
      out.insert(k + id);
    }
    return out;
  }

  /// The reference answer: the model's matches of `spec` after `after` (none: from the
  /// start), in order, the first `limit`, and whether more match.
  reference_answer brute_force(const std::string& collection, const query_spec& spec,
                               const position* after = nullptr) {
    reference_answer out;
    for (const auto& [id, d] : docs_[collection]) {
      auto doc = parse_doc(d.text);
      if (!reference_match(spec, doc)) continue;
      auto at = position_of(spec, doc, id);
      if (after) {
        const int c = compare_positions(at, *after);
        if (spec.desc ? c >= 0 : c <= 0) continue;
      }
      out.hits.push_back({std::move(at), id, d.version, d.text, expected_sort_key(spec, doc, id)});
    }
    std::sort(out.hits.begin(), out.hits.end(),
              [&](const reference_hit& a, const reference_hit& b) {
                const int c = compare_positions(a.at, b.at);
                return spec.desc ? c > 0 : c < 0;
              });
    if (out.hits.size() > spec.limit) {
      out.hits.resize(spec.limit);
      out.more = true;
    }
    return out;
  }

  /// Where `h` sits in the order of `spec`, by the reference (the resume point of a page
  /// that ended with it).
  static position position_of_hit(const query_spec& spec, const hit& h) {
    return position_of(spec, json::parse(h.doc), h.id);
  }

  /// The module's answer to `spec`, run to its end.
  core::result<shard_hits> answer(const std::string& collection, const query_spec& spec) {
    auto c = send(*query_, query_run{collection, spec});
    run_until(*shard_, *c);
    EXPECT_EQ(c->deliveries, 1);
    if (!c->ready()) return core::error{core::errc::internal, "no answer"};
    return *c->last;
  }

  /// The hits of `spec`, failing when the shard refused.
  shard_hits hits(const std::string& collection, const query_spec& spec) {
    auto a = answer(collection, spec);
    if (!a) {
      ADD_FAILURE() << "refused: " << a.error().to_string();
      return {};
    }
    return *a;
  }

  /// The plan of `spec` (explain), failing when the shard refused.
  shard_plan plan(const std::string& collection, const query_spec& spec) {
    auto c = send(*query_, query_explain{collection, spec});
    run_until(*shard_, *c);
    return c->value();
  }

  /// The refusal of `spec`, which comes at once; an internal error when it was answered.
  core::error refusal(const std::string& collection, const query_spec& spec) {
    auto c = send(*query_, query_run{collection, spec});
    EXPECT_TRUE(c->ready()) << "a refusal comes at once";
    return c->error();
  }

  /// Expects the module's answer to `spec` (from the start) to be the reference's, hit by
  /// hit, and to hold documents (or none, when `want` says so).
  void expect_same(const std::string& collection, const query_spec& spec, const std::string& what,
                   expect want_matches = expect::some) {
    ASSERT_TRUE(spec.after.empty()) << what;
    auto want = brute_force(collection, spec);
    if (want_matches == expect::some) {
      ASSERT_FALSE(want.hits.empty()) << what << ": the data must match this query";
    } else {
      ASSERT_TRUE(want.hits.empty()) << what << ": the data must not match this query";
    }
    auto got = hits(collection, spec);
    expect_equal(got, want, what);
  }

  static void expect_equal(const shard_hits& got, const reference_answer& want,
                           const std::string& what) {
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

  /// Pages through `spec` with `page` hits at a time, resuming after the last hit's sort
  /// key, and expects every page to be the reference's and all of them together to be
  /// every match exactly once, in order. Returns how many documents matched.
  std::size_t expect_paging(const std::string& collection, query_spec spec, std::uint32_t page,
                            const std::string& what) {
    auto all_spec = spec;
    all_spec.limit = 100'000;
    const auto all = brute_force(collection, all_spec);
    spec.limit = page;
    spec.after.clear();
    std::optional<position> resume;
    std::vector<std::string> seen;
    for (int n = 0; n < 10'000; ++n) {
      auto got = hits(collection, spec);
      auto want = brute_force(collection, spec, resume ? &*resume : nullptr);
      std::vector<std::string> got_ids, want_ids;
      for (const auto& h : got.hits)
        got_ids.push_back(h.id);
      for (const auto& h : want.hits)
        want_ids.push_back(h.id);
      EXPECT_EQ(got_ids, want_ids) << what << ", page " << n;
      EXPECT_EQ(got.more, want.more) << what << ", page " << n;
      if (got_ids != want_ids || got.more != want.more) return all.hits.size();
      seen.insert(seen.end(), got_ids.begin(), got_ids.end());
      if (!got.more) break;
      if (got.hits.empty()) {
        ADD_FAILURE() << what << ": more without hits";
        return all.hits.size();
      }
      spec.after = got.hits.back().sort_key;
      resume = position_of_hit(spec, got.hits.back());
    }
    std::vector<std::string> all_ids;
    for (const auto& h : all.hits)
      all_ids.push_back(h.id);
    EXPECT_EQ(seen, all_ids) << what;
    return all.hits.size();
  }

  storage::memory_store store_{1};
  query::metrics metrics_;
  std::uint32_t batch_ = default_batch;
  std::unique_ptr<manual_shard> shard_;
  std::unique_ptr<module> query_;
  std::unique_ptr<documents::module> documents_;
  std::map<std::string, model> docs_; ///< by collection
};

// -- definitions and builds ---------------------------------------------------------------

// Verifies the key layout of entries: 'x' ++ collection ++ '\0' ++ path ++ '\0'.
TEST_F(ShardIndexTest, EntryPrefixLayout) {
  EXPECT_EQ(index_entry_prefix("users", "a.b"), std::string("xusers\0a.b\0", 11));
}

// Verifies create makes a building index with a definition key, finds an existing one
// without creating it again, and lists the collection's indexes by path.
TEST_F(ShardIndexTest, CreateDefinesABuildingIndex) {
  EXPECT_TRUE(list("users").empty());
  auto s = create("users", "age");
  ASSERT_TRUE(s) << s.error().to_string();
  EXPECT_TRUE(s->created);
  EXPECT_EQ(s->progress.field, "age");
  EXPECT_FALSE(s->progress.ready);
  const auto p = progress("users", "age");
  EXPECT_EQ(p.field, "age");
  EXPECT_FALSE(p.ready);
  EXPECT_EQ(p.indexed, 0u);
  EXPECT_EQ(list("users").size(), 1u);
  EXPECT_TRUE(list("other").empty());
  EXPECT_EQ(shard_->ctx().deferred(), 1u) << "the build waits behind the queued messages";
  EXPECT_EQ(keys("i").size(), 1u);
  s = create("users", "age");
  ASSERT_TRUE(s);
  EXPECT_FALSE(s->created);
  EXPECT_EQ(s->progress.field, "age");
  s = create("users", "addr.city");
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->created);
  auto l = list("users");
  ASSERT_EQ(l.size(), 2u);
  EXPECT_EQ(l[0].field, "addr.city");
  EXPECT_EQ(l[1].field, "age");
  auto missing = find("users", "name");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), core::errc::not_found);
  missing = find("other", "age");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), core::errc::not_found);
  // A field that is not a path is refused, and defines nothing.
  auto bad = create("users", "a..b");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), core::errc::invalid_argument);
  EXPECT_EQ(bad.error().name(), "invalid_field");
  EXPECT_EQ(keys("i").size(), 2u);
}

// Verifies the stored form of an index's progress (its definition, an on-disk contract):
// JSON with its state, counts, phase and cursor, which a restart reads back; a definition
// that is not a JSON object is refused. (The progress codec of the wire is gone: replies
// travel as CAF-serialized structs.)
TEST_F(ShardIndexTest, ProgressJson) {
  for (int i = 0; i < 30; ++i)
    put_doc("c", "d" + std::to_string(10 + i), R"({"a":{"b":)" + std::to_string(i) + "}}");
  ASSERT_TRUE(create("c", "a.b"));
  const std::string key = std::string("ic\0a.b", 6);
  auto stored = [&] {
    auto v = store_.shard(0).get(key);
    EXPECT_TRUE(v) << v.error().to_string();
    return v ? json::parse(*v) : json::value{};
  };
  EXPECT_EQ(
    stored(),
    json::parse(R"({"state":"building","indexed":0,"total":0,"phase":"counting","cursor":""})"));
  ASSERT_TRUE(build_step()); // counts all 30 (a counting step reads up to 100)
  ASSERT_TRUE(build_step()); // indexes 5
  EXPECT_EQ(stored(),
            json::parse(
              R"({"state":"building","indexed":5,"total":30,"phase":"indexing","cursor":"d14"})"));
  reopen();
  auto p = progress("c", "a.b");
  EXPECT_FALSE(p.ready);
  EXPECT_EQ(p.indexed, 5u);
  EXPECT_EQ(p.total, 30u);
  build_all();
  EXPECT_EQ(stored(),
            json::parse(R"({"state":"ready","indexed":30,"total":30,"phase":"done","cursor":""})"));
  p = progress("c", "a.b");
  EXPECT_TRUE(p.ready);
  EXPECT_EQ(p.indexed, 30u);
  EXPECT_EQ(p.total, 30u);

  for (const char* foreign : {"", "[]", "not json", "5"}) {
    storage::write_batch batch;
    batch.put(key, foreign);
    ASSERT_TRUE(store_.shard(0).write(batch, false));
    EXPECT_FALSE(shard_index::open(store_.shard(0))) << foreign;
  }
}

// Verifies the build counts the documents first (total grows, indexed stays 0), then
// indexes them (indexed grows up to total), in bounded steps, and ends ready with
// indexed == total == the live documents and exactly their entries.
TEST_F(ShardIndexTest, BuildCountsThenIndexesToReady) {
  reopen(4);
  for (int i = 0; i < 250; ++i) {
    put_doc("users", "d" + std::to_string(1000 + i), R"({"age":)" + std::to_string(i % 7) + "}");
    if (i % 5 == 4) del_doc("users", "d" + std::to_string(1000 + i));
  }
  put_doc("other", "o1", R"({"age":1})");
  const std::uint64_t live = docs_["users"].size();
  ASSERT_EQ(live, 200u);
  ASSERT_TRUE(create("users", "age"));
  std::uint64_t last_total = 0, last_indexed = 0;
  bool counted = false;
  int steps = 0;
  while (steps < 1000 && build_step()) {
    ++steps;
    const auto p = progress("users", "age");
    EXPECT_GE(p.total, last_total);
    EXPECT_GE(p.indexed, last_indexed);
    if (!counted) {
      EXPECT_EQ(p.indexed, 0u) << "no document is indexed while counting";
      if (p.indexed == 0 && p.total == live) counted = true;
    }
    if (!p.ready) {
      EXPECT_LE(p.indexed - last_indexed, 4u) << "a step indexes at most build_batch";
      EXPECT_LE(p.indexed, p.total);
    }
    last_total = p.total;
    last_indexed = p.indexed;
  }
  const auto p = progress("users", "age");
  EXPECT_TRUE(p.ready);
  EXPECT_EQ(p.indexed, live);
  EXPECT_EQ(p.total, live);
  EXPECT_TRUE(counted);
  // Counting 250 keys by 80, then indexing 250 keys by 4 (tombstones count as visited).
  EXPECT_GE(steps, 250 / 4);
  EXPECT_LE(steps, 250 / 80 + 1 + 250 / 4 + 2);
  EXPECT_EQ(keys("x"), expected_entries("users", "age"));
  EXPECT_EQ(keys("x").size(), live);
  EXPECT_EQ(metrics_.index_build_docs.value(), 2u * 250)
    << "both phases visit every key once, tombstones included";
}

// Verifies a build step also ends after about 4 MiB of documents, whatever the batch: with
// 1.5 MiB documents each step reads three, counting and indexing alike.
TEST_F(ShardIndexTest, BuildStepsAreBoundedInBytes) {
  reopen(500);
  const std::string pad(3u << 19, 'p'); // 1.5 MiB
  for (int i = 0; i < 9; ++i)
    put_doc("big", "b" + std::to_string(i),
            R"({"k":)" + std::to_string(i) + R"(,"pad":")" + pad + "\"}");
  ASSERT_TRUE(create("big", "k"));
  std::vector<std::uint64_t> visits;
  for (;;) {
    const auto before = metrics_.index_build_docs.value();
    if (visits.size() >= 20 || !build_step()) break;
    visits.push_back(metrics_.index_build_docs.value() - before);
  }
  EXPECT_TRUE(progress("big", "k").ready);
  // Counting 3 + 3 + 3 (the third step reaches the end and ends the phase); indexing the same.
  EXPECT_EQ(visits, (std::vector<std::uint64_t>{3, 3, 3, 3, 3, 3})) << visits.size();
  EXPECT_EQ(keys("x").size(), 9u);
}

// Verifies a build over an empty collection becomes ready with 0 of 0.
TEST_F(ShardIndexTest, BuildOverEmptyCollection) {
  create_ready("users", "age");
  const auto p = progress("users", "age");
  EXPECT_TRUE(p.ready);
  EXPECT_EQ(p.indexed, 0u);
  EXPECT_EQ(p.total, 0u);
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

// Verifies documents nested as deep as the edge accepts (here 40 levels, past Boost.JSON's
// default of 32) are indexed, by the build and by later writes: they used to fail to
// parse here and were left out of the index without a word.
TEST_F(ShardIndexTest, DeeplyNestedDocumentsAreIndexed) {
  std::string deep = R"({"v":1,"n":)";
  for (int i = 0; i < 39; ++i)
    deep += R"({"a":)";
  deep += "0" + std::string(39, '}') + "}";
  put_doc("c", "built", deep);
  create_ready("c", "v");
  EXPECT_EQ(keys(index_entry_prefix("c", "v")).size(), 1u);
  put_doc("c", "written", deep);
  auto v = keys(index_entry_prefix("c", "v"));
  EXPECT_EQ(v, expected_entries("c", "v"));
  EXPECT_EQ(v.size(), 2u);
}

// -- maintenance by writes ----------------------------------------------------------------

// Verifies writes keep entries right for inserts, value changes, unchanged values (no
// operation at all), deletes, removed fields, and scalars turning into arrays or objects
// and back.
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
  shard::doc_change c;
  c.collection = "users";
  c.id = "b";
  c.before = R"({"age":5,"addr":{"city":"Rome"},"n":1})";
  c.after = R"({"addr":{"city":"Rome"},"age":5.0,"n":2})";
  ASSERT_TRUE(query_->prepare(c, batch));
  EXPECT_TRUE(batch.empty());
  c.collection = "other";
  c.before = "";
  c.after = R"({"age":5})";
  ASSERT_TRUE(query_->prepare(c, batch));
  EXPECT_TRUE(batch.empty());
}

// Verifies a write whose text is unparsable or not an object is treated as no document.
TEST_F(ShardIndexTest, PlanDocumentToleratesBadText) {
  create_ready("users", "age");
  storage::write_batch batch;
  shard::doc_change c;
  c.collection = "users";
  c.id = "a";
  c.before = "not json";
  c.after = R"({"age":1})";
  ASSERT_TRUE(query_->prepare(c, batch));
  ASSERT_EQ(batch.size(), 1u);
  EXPECT_EQ(batch.ops()[0].kind, storage::write_batch::op_kind::put);
  batch.clear();
  c.before = R"({"age":1})";
  c.after = "[1]";
  ASSERT_TRUE(query_->prepare(c, batch));
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
  for (std::uint32_t seed = 1; seed <= 5; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    reopen(seed); // build steps of 1 to 5 documents
    std::mt19937 rng(seed);
    const std::string c = "c" + std::to_string(seed);
    for (int i = 0; i < 120; ++i)
      put_doc(c, "id" + std::to_string(rng() % 400), random_doc(rng));
    ASSERT_TRUE(create(c, "k"));
    int steps = 0;
    for (; steps < 10'000 && build_step(); ++steps) {
      for (int w = rng() % 4; w > 0; --w) {
        auto id = "id" + std::to_string(rng() % 400);
        if (rng() % 4 == 0) {
          if (docs_[c].count(id)) del_doc(c, id);
        } else {
          put_doc(c, id, random_doc(rng));
        }
      }
    }
    EXPECT_GT(steps, 20) << "writes fell between many steps";
    const auto p = progress(c, "k");
    EXPECT_TRUE(p.ready);
    EXPECT_EQ(p.indexed, p.total);
    const auto entries = keys(index_entry_prefix(c, "k"));
    EXPECT_EQ(entries, expected_entries(c, "k"));
    EXPECT_FALSE(entries.empty());

    // The same documents, written into a fresh store, then indexed from scratch.
    storage::memory_store fresh_store{1};
    {
      storage::write_batch batch;
      for (const auto& [id, d] : docs_[c])
        batch.put(documents::key(c, id), documents::encode(d.version, d.text));
      ASSERT_TRUE(fresh_store.shard(0).write(batch, false));
    }
    manual_shard fresh_shard{fresh_store};
    module fresh{fresh_shard.ctx(), module::config{3, nullptr}};
    auto created = query::send(fresh_shard, fresh, index_create{c, "k"});
    ASSERT_TRUE(created->value().created);
    fresh_shard.run();
    key_set fresh_entries;
    ASSERT_TRUE(fresh_store.shard(0).scan_prefix("x", [&](std::string_view k, std::string_view) {
      fresh_entries.emplace(k);
      return true;
    }));
    EXPECT_EQ(entries, fresh_entries);
    auto fresh_progress = query::send(fresh_shard, fresh, index_get{c, "k"})->value();
    EXPECT_TRUE(fresh_progress.ready);
    EXPECT_EQ(fresh_progress.total, docs_[c].size());
  }
}

// -- drop and reopen ----------------------------------------------------------------------

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

  ASSERT_TRUE(drop("users", "age"));
  EXPECT_FALSE(find("users", "age"));
  EXPECT_TRUE(keys(index_entry_prefix("users", "age")).empty());
  EXPECT_EQ(keys(index_entry_prefix("users", "age2")), expected_entries("users", "age2"));
  EXPECT_EQ(keys(index_entry_prefix("users2", "age")), expected_entries("users2", "age"));
  EXPECT_EQ(keys("x").size(), 60u);
  EXPECT_EQ(keys("i").size(), 2u);
  EXPECT_EQ(list("users").size(), 1u);

  put_doc("users", "u100", R"({"age":100,"age2":1})");
  EXPECT_TRUE(keys(index_entry_prefix("users", "age")).empty());
  EXPECT_EQ(keys(index_entry_prefix("users", "age2")), expected_entries("users", "age2"));

  auto again = drop("users", "age");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), core::errc::not_found);
  auto nosuch = drop("nosuch", "age");
  ASSERT_FALSE(nosuch);
  EXPECT_EQ(nosuch.error().code(), core::errc::not_found);
  ASSERT_TRUE(drop("users", "age2"));
  EXPECT_TRUE(list("users").empty());
  // Without an index, a write to the collection plans nothing.
  storage::write_batch batch;
  shard::doc_change c;
  c.collection = "users";
  c.id = "u1";
  c.after = R"({"age":1,"age2":1})";
  ASSERT_TRUE(query_->prepare(c, batch));
  EXPECT_TRUE(batch.empty());

  reopen();
  EXPECT_FALSE(find("users", "age"));
  EXPECT_FALSE(find("users", "age2"));
  EXPECT_TRUE(progress("users2", "age").ready);
}

// Verifies a dropped index is no longer used by queries, and one created again on the
// same path is built from scratch to exactly its documents' entries.
TEST_F(ShardIndexTest, DropThenRecreate) {
  for (int i = 0; i < 20; ++i)
    put_doc("users", "u" + std::to_string(i), R"({"age":)" + std::to_string(i % 4) + "}");
  create_ready("users", "age");
  const auto spec = spec_of(R"({"where":{"age":2}})");
  expect_same("users", spec, "indexed");
  ASSERT_TRUE(drop("users", "age"));
  EXPECT_EQ(refusal("users", spec).name(), "index_required");
  put_doc("users", "u3", R"({"age":2})"); // written while there is no index
  del_doc("users", "u6");
  create_ready("users", "age");
  EXPECT_EQ(progress("users", "age").total, 19u);
  EXPECT_EQ(keys("x"), expected_entries("users", "age"));
  expect_same("users", spec, "re-created");
}

// Verifies dropping an index mid-build removes its definition and partial entries, and
// stops the build.
TEST_F(ShardIndexTest, DropDuringBuild) {
  for (int i = 0; i < 40; ++i)
    put_doc("users", "u" + std::to_string(100 + i), R"({"age":)" + std::to_string(i) + "}");
  ASSERT_TRUE(create("users", "age"));
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(build_step()); // counted, then two steps of entries
  ASSERT_EQ(keys("x").size(), 10u);
  ASSERT_TRUE(drop("users", "age"));
  EXPECT_TRUE(keys("x").empty());
  EXPECT_TRUE(keys("i").empty());
  build_all(); // the step already queued finds nothing to do
  EXPECT_TRUE(keys("x").empty());
  EXPECT_TRUE(keys("i").empty());
  EXPECT_FALSE(shard_->run_one()) << "the build stopped";
}

// Verifies a restarted shard (new modules over the same store, what was queued lost) keeps
// ready definitions (and uses them), and resumes an interrupted build from where it stopped
// — in the counting phase and in the indexing phase — to exactly the entries of a complete
// build.
TEST_F(ShardIndexTest, ReopenKeepsDefinitionsAndResumesBuild) {
  reopen(2);
  for (int i = 0; i < 300; ++i)
    put_doc("users", "u" + std::to_string(1000 + i),
            R"({"age":)" + std::to_string(i % 11) + R"(,"name":"n)" + std::to_string(i % 13)
              + "\"}");
  create_ready("users", "age");
  ASSERT_TRUE(create("users", "name"));
  ASSERT_TRUE(build_step()); // counting: 40 of 300 documents
  auto before = progress("users", "name");
  EXPECT_FALSE(before.ready);
  EXPECT_EQ(before.total, 40u);
  EXPECT_EQ(before.indexed, 0u);

  reopen(2); // interrupted while counting
  EXPECT_TRUE(progress("users", "age").ready);
  auto p = progress("users", "name");
  EXPECT_FALSE(p.ready);
  EXPECT_EQ(p.total, before.total);
  EXPECT_EQ(p.indexed, 0u);
  // The build goes on by itself: finish counting and index some.
  for (int i = 0; i < 10; ++i)
    ASSERT_TRUE(build_step());
  before = progress("users", "name");
  EXPECT_EQ(before.total, 300u);
  EXPECT_GT(before.indexed, 0u);
  EXPECT_LT(before.indexed, 300u);
  const auto partial = keys(index_entry_prefix("users", "name")).size();
  EXPECT_EQ(partial, before.indexed);

  reopen(7); // interrupted while indexing; restarted with another batch size
  p = progress("users", "name");
  EXPECT_EQ(p.indexed, before.indexed);
  EXPECT_EQ(p.total, before.total);
  put_doc("users", "u0000", R"({"name":"first"})"); // before the cursor
  put_doc("users", "u9999", R"({"name":"last"})");  // after it
  del_doc("users", "u1001");
  build_all();
  p = progress("users", "name");
  EXPECT_TRUE(p.ready);
  EXPECT_EQ(p.indexed, p.total);
  EXPECT_EQ(keys(index_entry_prefix("users", "name")), expected_entries("users", "name"));
  EXPECT_EQ(keys(index_entry_prefix("users", "age")), expected_entries("users", "age"));
  // The ready index answers after a restart.
  reopen();
  auto spec = spec_of(R"({"where":{"name":"n3"}})");
  EXPECT_EQ(plan("users", spec).index, "name");
  expect_same("users", spec, "after reopen");
}

// Verifies a corrupt definition is refused instead of guessed: the index loads with a
// corrupt error, the query module answers every request with it, and writes are refused
// (a write that skipped its index entries would leave them wrong for good).
TEST_F(ShardIndexTest, OpenRefusesCorruptDefinition) {
  put_doc("users", "a", R"({"age":1})");
  storage::write_batch batch;
  batch.put(std::string("iusers\0age", 10), "not json");
  ASSERT_TRUE(store_.shard(0).write(batch, false));
  auto idx = shard_index::open(store_.shard(0));
  ASSERT_FALSE(idx);
  EXPECT_EQ(idx.error().code(), core::errc::corrupt) << idx.error().to_string();

  reopen();
  ASSERT_TRUE(query_->load_error());
  EXPECT_EQ(query_->load_error()->code(), core::errc::storage_failed);
  EXPECT_NE(query_->load_error()->message().find("corrupt"), std::string::npos)
    << query_->load_error()->to_string();
  EXPECT_EQ(find("users", "age").error().code(), core::errc::storage_failed);
  EXPECT_EQ(create("users", "name").error().code(), core::errc::storage_failed);
  EXPECT_EQ(answer("users", spec_of(R"({"allow_scan":true})")).error().code(),
            core::errc::storage_failed);
  auto w = send(*documents_, put_request("users", "b", R"({"age":2})"));
  ASSERT_TRUE(w->ready());
  EXPECT_EQ(w->error().code(), core::errc::storage_failed);
  // The module refuses the write itself too, should the documents module not be told.
  storage::write_batch planned;
  shard::doc_change c;
  c.collection = "users";
  c.id = "b";
  c.after = R"({"age":2})";
  EXPECT_FALSE(query_->prepare(c, planned));
  EXPECT_TRUE(planned.empty());
  EXPECT_EQ(store_.shard(0).get(documents::key("users", "b")).error().code(),
            core::errc::not_found);
}

// Verifies an index build proceeds one bounded step per deferred message, behind the
// messages queued meanwhile: requests served between two steps are answered at once and
// see the build's progress so far.
TEST_F(ShardIndexTest, BuildRunsOneStepPerMessage) {
  reopen(10);
  for (int i = 0; i < 100; ++i)
    put_doc("users", "u" + std::to_string(100 + i), R"({"age":)" + std::to_string(i % 9) + "}");
  ASSERT_TRUE(create("users", "age"));
  EXPECT_EQ(progress("users", "age").total, 0u) << "nothing ran inside the request";
  ASSERT_TRUE(build_step()); // counting reads up to 200: all 100
  auto p = progress("users", "age");
  EXPECT_EQ(p.total, 100u);
  EXPECT_EQ(p.indexed, 0u);
  for (std::uint64_t step = 1; step <= 10; ++step) {
    ASSERT_TRUE(build_step()) << step;
    p = progress("users", "age");
    EXPECT_EQ(p.indexed, 10 * step) << "one step of 10 documents per message";
    EXPECT_EQ(p.ready, step == 10);
    // Between two steps: a read answers at once, a write commits at once and keeps the
    // index right wherever the build is.
    auto got = send(*documents_, documents::doc_get{"users", "u150", {}, {}});
    ASSERT_TRUE(got->ready());
    EXPECT_EQ(got->value().version, docs_["users"]["u150"].version);
    put_doc("users", "u" + std::to_string(100 + 10 * step), R"({"age":100})");
  }
  EXPECT_FALSE(shard_->run_one()) << "ready: no step is queued";
  EXPECT_EQ(keys("x"), expected_entries("users", "age"));
  EXPECT_EQ(metrics_.index_build_docs.value(), 200u);
}

// -- queries ------------------------------------------------------------------------------

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

/// A query body, and whether the data matches it.
struct query_case {
  const char* body;
  expect matches = expect::some;
};

// Verifies equality answers from the index, with the reference's answer, for numbers,
// strings, booleans, null and nested paths; and a value nobody has answers empty.
TEST_F(ShardQueryTest, Equality) {
  for (const auto& [body, matches] : std::vector<query_case>{
         {R"({"where":{"age":30}})"},
         {R"({"where":{"age":30.0}})"},
         {R"({"where":{"age":"30"}})"},
         {R"({"where":{"age":null}})"},
         {R"({"where":{"age":{"$eq":25}}})"},
         {R"({"where":{"status":"active"}})"},
         {R"({"where":{"flag":true}})"},
         {R"({"where":{"flag":false}})"},
         {R"({"where":{"addr.city":"Oslo"}})"},
         {R"({"where":{"name":"nab"}})"},
         {R"({"where":{"age":12345}})", expect::none},
         {R"({"where":{"status":"nobody"}})", expect::none},
       }) {
    auto spec = spec_of(body);
    expect_same("users", spec, body, matches);
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
  ASSERT_FALSE(range.hits.empty());
  for (const auto& h : range.hits)
    EXPECT_TRUE(json::parse(h.doc).as_object().at("age").is_number()) << h.doc;
  auto srange = hits("users", spec_of(R"({"where":{"age":{"$lte":"zzz"}},"limit":1000})"));
  ASSERT_FALSE(srange.hits.empty());
  for (const auto& h : srange.hits)
    EXPECT_TRUE(json::parse(h.doc).as_object().at("age").is_string()) << h.doc;
  expect_same("users", spec_of(R"({"where":{"age":{"$gte":0}},"limit":1000})"), "numbers");
  expect_same("users", spec_of(R"({"where":{"age":{"$lte":"zzz"}},"limit":1000})"), "strings");
}

// Verifies $in answers from the index with the reference's answer, values of mixed types.
TEST_F(ShardQueryTest, In) {
  for (const auto& [body, matches] : std::vector<query_case>{
         {R"({"where":{"age":{"$in":[20,30,"30",null]}}})"},
         {R"({"where":{"age":{"$in":[30,20]}},"order_by":"age"})"},
         {R"({"where":{"age":{"$in":[30,20]}},"order_by":"age","desc":true})"},
         {R"({"where":{"status":{"$in":["banned","active"]}},"order_by":"name"})"},
         {R"({"where":{"status":{"$in":[]}}})", expect::none},
         {R"({"where":{"addr.city":{"$in":["Lima","Nowhere"]}},"limit":3})"},
       }) {
    auto spec = spec_of(body);
    expect_same("users", spec, body, matches);
    EXPECT_EQ(plan("users", spec).bounds, "in") << body;
  }
}

// Verifies ranges with both bounds, one bound, exclusive and inclusive edges on values
// that exist, answer from the index as the reference does.
TEST_F(ShardQueryTest, Ranges) {
  for (const auto& [body, matches] : std::vector<query_case>{
         {R"({"where":{"age":{"$gte":25,"$lt":30}}})"},
         {R"({"where":{"age":{"$gt":25,"$lte":30}}})"},
         {R"({"where":{"age":{"$gt":25,"$lt":30}}})"},
         {R"({"where":{"age":{"$gte":25,"$lte":30}}})"},
         {R"({"where":{"age":{"$gte":25}},"limit":1000})"},
         {R"({"where":{"age":{"$gt":25}},"limit":1000})"},
         {R"({"where":{"age":{"$lte":25}},"limit":1000})"},
         {R"({"where":{"age":{"$lt":25}},"limit":1000})"},
         {R"({"where":{"age":{"$gt":20.5,"$lt":21}}})", expect::none},
         {R"({"where":{"age":{"$gte":30,"$lte":30}}})"},
         {R"({"where":{"age":{"$gt":30,"$lt":30}}})", expect::none},
         {R"({"where":{"age":{"$gt":"30"}}})"},
         {R"({"where":{"age":{"$gte":"30","$lt":"41"}}})"},
         {R"({"where":{"name":{"$gte":"nb","$lt":"nc"}},"limit":1000})"},
         {R"({"where":{"name":{"$lt":"nab"}},"limit":1000})"},
         {R"({"where":{"addr.city":{"$gt":"Lima"}},"order_by":"addr.city","desc":true})"},
       }) {
    auto spec = spec_of(body);
    expect_same("users", spec, body, matches);
    EXPECT_EQ(plan("users", spec).bounds, "range") << body;
  }
}

// Verifies ranges over booleans (one type class, two type bytes): $gt false finds the
// true documents, $lt true the false ones, from the index as from a scan.
TEST_F(ShardQueryTest, BooleanRanges) {
  const std::vector<const char*> bodies = {
    R"({"where":{"flag":{"$gt":false}},"limit":1000,"allow_scan":true})",
    R"({"where":{"flag":{"$gte":false}},"limit":1000,"allow_scan":true})",
    R"({"where":{"flag":{"$lt":true}},"limit":1000,"allow_scan":true})",
    R"({"where":{"flag":{"$lte":true}},"limit":1000,"allow_scan":true})",
  };
  for (const char* body : bodies) {
    auto spec = spec_of(body);
    expect_same("users", spec, body);
    EXPECT_EQ(plan("users", spec).bounds, "range") << body;
  }
  ASSERT_TRUE(drop("users", "flag"));
  for (const char* body : bodies) {
    auto spec = spec_of(body);
    expect_same("users", spec, std::string(body) + " by scan");
    EXPECT_EQ(plan("users", spec).bounds, "all") << body;
  }
}

// Verifies order_by the index's own path, ascending and descending, and order_by another
// field, and no order_by (id order), all give the reference's order.
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
      const auto matched = expect_paging("users", spec_of(body), page,
                                         std::string(body) + " by " + std::to_string(page));
      EXPECT_GT(matched, page) << body << ": several pages";
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
  auto e = refusal("users", spec_of(R"({})"));
  EXPECT_EQ(e.code(), core::errc::invalid_argument);
  EXPECT_EQ(e.name(), "index_required");
  e = refusal("users", spec_of(R"({"where":{"level":2}})"));
  EXPECT_EQ(e.code(), core::errc::invalid_argument);
  EXPECT_EQ(e.name(), "index_required");
  EXPECT_NE(e.message().find("level"), std::string::npos) << e.message();
  EXPECT_EQ(refusal("users", spec_of(R"({"where":{"level":2},"order_by":"age"})")).name(),
            "index_required")
    << "order_by alone does not make an index usable";
  // Explain never refuses: it reports the full scan the query would need.
  auto p = plan("users", spec_of(R"({"where":{"level":2}})"));
  EXPECT_EQ(p.index, "");
  EXPECT_EQ(p.bounds, "all");

  ASSERT_TRUE(create("users", "level"));
  ASSERT_TRUE(build_step());
  ASSERT_FALSE(progress("users", "level").ready);
  EXPECT_EQ(refusal("users", spec_of(R"({"where":{"level":2}})")).name(), "index_required")
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

// Verifies full scans with allow_scan answer as the reference: everything, unindexed
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
  const auto gone = before.hits.front().id;
  del_doc("users", gone);
  expect_same("users", spec, "after a delete");
  for (const auto& h : hits("users", spec).hits)
    EXPECT_NE(h.id, gone);
  auto scan = spec_of(R"({"allow_scan":true,"limit":1000})");
  expect_same("users", scan, "scan after a delete");
  for (const auto& h : hits("users", scan).hits) {
    EXPECT_NE(h.id, gone);
    EXPECT_NE(h.id, "u_del");
  }
}

// Verifies explain: the index and bounds chosen, and estimated_keys = the index entries
// in the bounds (or every document key of the collection for a full scan). (The plan's
// JSON codec is gone: plans travel as CAF-serialized structs.)
TEST_F(ShardQueryTest, ExplainPlan) {
  auto count_entries = [&](const std::string& path, auto pred) {
    std::uint64_t n = 0;
    for (const auto& [id, d] : docs_["users"]) {
      auto doc = json::parse(d.text);
      const auto* v = field(doc, path);
      if (v && class_of(*v) != value_class::other && pred(*v)) ++n;
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
  EXPECT_GT(p.estimated_keys, 0u);

  p = plan("users", spec_of(R"({"where":{"age":{"$gt":25,"$lt":30}}})"));
  EXPECT_EQ(p.index, "age");
  EXPECT_EQ(p.bounds, "range");
  // Inclusive bounds: the entries at 25 and 30 are read too.
  EXPECT_EQ(p.estimated_keys, count_entries("age", [](const json::value& v) {
              return v.is_number() && v.to_number<double>() >= 25 && v.to_number<double>() <= 30;
            }));
  EXPECT_GT(p.estimated_keys, 0u);

  p = plan("users", spec_of(R"({"where":{"level":1},"allow_scan":true})"));
  EXPECT_EQ(p.index, "");
  EXPECT_EQ(p.bounds, "all");
  EXPECT_EQ(p.estimated_keys, keys(documents::collection_prefix("users")).size())
    << "every document key, tombstones included";
  EXPECT_GT(p.estimated_keys, docs_["users"].size()) << "the tombstone is read too";
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
    expect_same("users", spec, body);
  }
  // Each value alone matches only its own documents, exactly, though they share a key.
  auto one = spec_of(R"({"where":{"score":9007199254740993},"limit":1000})");
  auto other = spec_of(R"({"where":{"score":9007199254740992},"limit":1000})");
  expect_same("users", one, "2^53 + 1");
  expect_same("users", other, "2^53");
  EXPECT_EQ(brute_force("users", one).hits.size() + brute_force("users", other).hits.size(),
            hits("users", spec_of(R"({"where":{"score":{"$in":[9007199254740992,)"
                                  R"(9007199254740993]}},"limit":1000})"))
              .hits.size());
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
// answer as the reference does, page by page, or are refused exactly when no ready index
// serves a condition and no scan is allowed.
TEST_F(ShardQueryTest, RandomQueriesMatchBruteForce) {
  const std::vector<std::string> paths = {"age", "status", "name", "addr.city", "level"};
  const std::vector<std::string> orders = {"", "age", "name", "level", "status"};
  std::mt19937 rng(7);
  int answered = 0, matched = 0, refused = 0;
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
      EXPECT_EQ(refusal("users", spec).name(), "index_required") << text;
      ++refused;
      continue;
    }
    const auto want = brute_force("users", spec);
    expect_same("users", spec, text, want.hits.empty() ? expect::none : expect::some);
    expect_paging("users", spec, 1 + rng() % 5, text);
    ++answered;
    if (!want.hits.empty()) ++matched;
  }
  // Most random queries must find documents, or matching answers prove little.
  EXPECT_GT(refused, 10);
  EXPECT_GT(matched, answered / 2) << matched << " of " << answered << " answers had documents";
}

// Verifies paging while documents are written between pages: each page is exactly what
// the reference answers at that moment for the same resume point (nothing repeated,
// nothing skipped among the documents that stay put).
TEST_F(ShardQueryTest, PagingUnderConcurrentWrites) {
  for (const char* body : {
         R"({"where":{"age":{"$gte":20,"$lt":40}},"order_by":"age","limit":4})",
         R"({"where":{"age":{"$gte":20,"$lt":40}},"order_by":"age","desc":true,"limit":4})",
         R"({"where":{"status":"active"},"limit":3})",
         R"({"where":{"status":"active"},"desc":true,"limit":3})",
       }) {
    std::mt19937 rng(11);
    auto spec = spec_of(body);
    std::optional<position> resume;
    std::set<std::string> seen;
    int pages = 0;
    for (int page = 0; page < 500; ++page) {
      auto got = hits("users", spec);
      auto want = brute_force("users", spec, resume ? &*resume : nullptr);
      std::vector<std::string> got_ids, want_ids;
      for (const auto& h : got.hits)
        got_ids.push_back(h.id);
      for (const auto& h : want.hits)
        want_ids.push_back(h.id);
      ASSERT_EQ(got_ids, want_ids) << body << " page " << page;
      ASSERT_EQ(got.more, want.more) << body << " page " << page;
      for (const auto& h : got.hits)
        EXPECT_TRUE(seen.insert(h.id + "/" + h.sort_key).second) << body << ": repeated " << h.id;
      ++pages;
      if (!got.more) break;
      spec.after = got.hits.back().sort_key;
      resume = position_of_hit(spec, got.hits.back());
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
    EXPECT_GT(pages, 5) << body;
  }
}

// Verifies a query over many documents runs in several bounded steps, one per message,
// behind the requests that arrive meanwhile: a document read sent between two steps is
// answered at once, and the answer is the reference's.
TEST_F(ShardIndexTest, ScanRunsInSteps) {
  for (int i = 0; i < 3000; ++i) {
    char id[16];
    std::snprintf(id, sizeof id, "s%04d", i);
    put_doc("many", id, R"({"n":)" + std::to_string((i * 7919) % 3000) + "}");
  }
  // Ordered by n over a scan in id order: every document must be read.
  const auto spec = spec_of(R"({"allow_scan":true,"order_by":"n","desc":true,"limit":20})");
  const auto want = brute_force("many", spec);
  ASSERT_EQ(want.hits.size(), 20u);
  auto c = send(*query_, query_run{"many", spec});
  EXPECT_FALSE(c->ready()) << "3000 documents are not read in one step";
  std::size_t steps = 0;
  while (!c->ready() && steps < 1000) {
    auto got = send(*documents_, documents::doc_get{"many", "s1234", {}, {}});
    ASSERT_TRUE(got->ready()) << "a read between two steps of the scan is answered at once";
    EXPECT_EQ(got->value().json, docs_["many"]["s1234"].text);
    ASSERT_TRUE(shard_->run_one());
    ++steps;
  }
  ASSERT_TRUE(c->ready());
  EXPECT_EQ(c->deliveries, 1);
  // 3000 document keys, 256 per step.
  EXPECT_GE(steps, 3000u / 256);
  EXPECT_LE(steps, 3000u / 256 + 2);
  expect_equal(c->value(), want, "scan in steps");
  // Explain counts in steps too.
  auto e = send(*query_, query_explain{"many", spec});
  EXPECT_FALSE(e->ready());
  EXPECT_GT(run_until(*shard_, *e), 1u);
  EXPECT_EQ(e->value().estimated_keys, 3000u);
  // A later page starts reading at its cursor, both ways: one step, not one per 256
  // documents before it.
  for (const bool desc : {false, true}) {
    auto page = spec_of(R"({"allow_scan":true,"limit":5})");
    page.desc = desc;
    page.after = desc ? "s0009" : "s2990";
    auto t = send(*query_, query_run{"many", page});
    ASSERT_TRUE(t->ready()) << "read from the start, not from the cursor";
    std::vector<std::string> ids;
    for (const auto& h : t->value().hits)
      ids.push_back(h.id);
    const std::vector<std::string> want =
      desc ? std::vector<std::string>{"s0008", "s0007", "s0006", "s0005", "s0004"}
           : std::vector<std::string>{"s2991", "s2992", "s2993", "s2994", "s2995"};
    EXPECT_EQ(ids, want);
    EXPECT_TRUE(t->value().more);
  }
}

// Verifies a query sees the shard as it was when it started, however many steps it takes:
// a document updated between two steps so that its index entry moves from the part not yet
// read to the part already read (or back) is neither missed nor returned twice, and comes
// with its content at the start; a scan in id order likewise returns what it started with.
TEST_F(ShardIndexTest, ScanSeesOneSnapshot) {
  struct scenario {
    const char* collection;
    const char* body;
  };
  for (const auto& [c, body] : {
         scenario{"byn", R"({"where":{"n":{"$gte":0}},"order_by":"n","limit":1000})"},
         scenario{"byid", R"({"where":{"n":{"$gte":0}},"limit":1000})"},
         scenario{"scan", R"({"where":{"m":{"$gte":0}},"allow_scan":true,"limit":1000})"},
       }) {
    SCOPED_TRACE(c);
    for (int i = 0; i < 3000; ++i) {
      char id[16];
      std::snprintf(id, sizeof id, "s%04d", i);
      put_doc(c, id, R"({"n":)" + std::to_string(i) + R"(,"m":)" + std::to_string(i) + "}");
    }
    create_ready(c, "n");
    const auto spec = spec_of(body);
    const auto at_start = brute_force(c, spec); // the model as the query starts
    ASSERT_EQ(at_start.hits.size(), 1000u);
    ASSERT_TRUE(at_start.more);
    auto q = send(*query_, query_run{c, spec});
    ASSERT_FALSE(q->ready());
    ASSERT_TRUE(shard_->run_one()); // a second step: the first 512 keys are read
    ASSERT_FALSE(q->ready());
    // Writes to documents read already and not yet: s0900 moves behind what was read,
    // s0005 ahead of it; s0010 and s0700 go; s0020 and s0800 stop matching; s0001 moves
    // within what was read.
    put_doc(c, "s0900", R"({"n":1,"m":1})");
    put_doc(c, "s0005", R"({"n":2950,"m":2950})");
    del_doc(c, "s0010");
    del_doc(c, "s0700");
    put_doc(c, "s0020", R"({"n":"x","m":"x"})");
    put_doc(c, "s0800", R"({"n":"x","m":"x"})");
    put_doc(c, "s0001", R"({"n":-1,"m":-1})");
    run_until(*shard_, *q);
    ASSERT_TRUE(q->ready());
    const auto got = q->value();
    expect_equal(got, at_start, std::string(c) + ": the answer at the start");
    std::set<std::string> ids;
    for (const auto& h : got.hits)
      EXPECT_TRUE(ids.insert(h.id).second) << "twice: " << h.id;
    for (const char* id : {"s0900", "s0005", "s0010", "s0700", "s0020", "s0800", "s0001"})
      EXPECT_EQ(ids.count(id), 1u) << id;
    // The next query sees the writes.
    expect_same(c, spec, std::string(c) + " after the writes");
  }
}

// Verifies a failing build step (the commit fails) is reported as background work that no
// request waits for, not retried at once but a second later on the shard's clock, and that
// the build then goes on to exactly the right entries.
TEST(ShardIndexFailureTest, FailingBuildStepIsReportedAndRetried) {
  storage::memory_store inner{1};
  testing::faulty_store store{inner};
  manual_shard shard{store};
  module q{shard.ctx(), module::config{4, nullptr}};
  documents::module docs{shard.ctx(), {}, {&q}};
  for (int i = 0; i < 10; ++i) {
    auto w = send(shard, docs, put_request("c", "d" + std::to_string(i), R"({"k":1})"));
    EXPECT_EQ(w->value().version, 1u);
  }
  ASSERT_TRUE(send(shard, q, index_create{"c", "k"})->value().created);
  store.fail_writes = true;
  ASSERT_TRUE(shard.run_one()); // the counting step: its commit fails
  ASSERT_EQ(shard.reports.size(), 1u);
  EXPECT_NE(shard.reports[0].find("index build"), std::string::npos) << shard.reports[0];
  EXPECT_NE(shard.reports[0].find("injected write failure"), std::string::npos) << shard.reports[0];
  EXPECT_FALSE(shard.run_one()) << "no retry at once: it would spin on a failing store";
  auto p = send(shard, q, index_get{"c", "k"})->value();
  EXPECT_FALSE(p.ready);
  EXPECT_EQ(p.total, 0u) << "the failed step changed nothing";

  shard.advance(std::chrono::milliseconds(999));
  EXPECT_EQ(shard.reports.size(), 1u) << "not yet";
  shard.advance(std::chrono::milliseconds(1));
  EXPECT_EQ(shard.reports.size(), 2u) << "retried after a second, failing again";

  store.fail_writes = false;
  shard.advance(std::chrono::seconds(1)); // retried, and the build runs on to the end
  EXPECT_EQ(shard.reports.size(), 2u);
  p = send(shard, q, index_get{"c", "k"})->value();
  EXPECT_TRUE(p.ready);
  EXPECT_EQ(p.indexed, 10u);
  EXPECT_EQ(p.total, 10u);
  key_set entries;
  ASSERT_TRUE(inner.shard(0).scan_prefix("x", [&](std::string_view k, std::string_view) {
    entries.emplace(k);
    return true;
  }));
  EXPECT_EQ(entries.size(), 10u);
  auto found = send(shard, q, query_run{"c", spec_of(R"({"where":{"k":1},"limit":100})")});
  EXPECT_EQ(found->value().hits.size(), 10u);
}

// Verifies an indexed query works on memory_store, whose scan callback fetches documents
// from the same shard (a query reads index entries and gets each document inside the
// scan): the query runs on a thread and the test fails after a deadline instead of hanging.
// The store is leaked on purpose when it hangs: the hung thread still holds it.
TEST(ShardIndexMemoryStoreTest, IndexedQueryOnMemoryStoreDoesNotDeadlock) {
  auto* store = new storage::memory_store(1); // NOLINT: leaked if the query hangs
  std::promise<std::size_t> done;
  auto result = done.get_future();
  std::thread([store, done = std::move(done)]() mutable {
    std::size_t found = 0;
    {
      manual_shard shard{*store};
      module q{shard.ctx(), {}};
      documents::module docs{shard.ctx(), {}, {&q}};
      (void)send(shard, docs, put_request("users", "a", R"({"age":30})"));
      (void)send(shard, q, index_create{"users", "age"});
      shard.run();
      auto c = send(shard, q, query_run{"users", spec_of(R"({"where":{"age":30}})")});
      run_until(shard, *c);
      if (c->ready() && c->last->ok()) found = (*c->last)->hits.size();
    } // everything that uses the store is gone before the test may delete it
    done.set_value(found);
  }).detach();
  if (result.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
    FAIL() << "an indexed query on memory_store did not return within 5 s: the query reads "
              "documents from inside a scan callback of the same shard";
  }
  delete store;
  EXPECT_EQ(result.get(), 1u);
}

} // namespace
} // namespace shoal::query
