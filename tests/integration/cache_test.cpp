// SPDX-License-Identifier: Apache-2.0
// End-to-end tests of the TTL cache (docs/caching.md) against the real shoal binary over
// loopback: the PUT/GET/HEAD/DELETE round trip with a binary body and its Content-Type,
// expiry by ttl (read and unread entries), the configured default ttl, the error contract
// (each refusal changes nothing), hit/miss metrics, and eviction under cache.max_bytes:
// the oldest entries go, the newest stay, a recently read entry outlives unread ones, and
// the bytes gauge stays within the bound.
//
// Eviction is per shard: each shard holds cache.max_bytes / shards. The eviction tests
// compute which shard owns each key with the shard map of the product (space "~cache"),
// so their expectations are exact per shard, with one entry of slack for rounding.

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "cache/messages.hpp"
#include "cluster/shard_map.hpp"
#include "tests/integration/node_suite.hpp"
#include "tests/support/http_client.hpp"

namespace shoal::test {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

/// Every poll in this file gives up after this long (a loaded 2-core machine included).
constexpr milliseconds patience{15000};

/// cache.max_value_bytes of the main suite's node.
constexpr std::size_t max_value_bytes = 4096;

/// ttl of entries that must outlive the test (seconds).
const std::string long_ttl = "?ttl=600";

std::string cache_target(std::string_view key, std::string_view query = {}) {
  return "/v1/cache/" + std::string(key) + std::string(query);
}

/// The sum of every sample of the family `name` (whatever its labels); nullopt when the
/// text has no sample of it.
std::optional<double> metric_sum(std::string_view text, std::string_view name) {
  std::optional<double> sum;
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto eol = text.find('\n', pos);
    auto line =
      text.substr(pos, eol == std::string_view::npos ? std::string_view::npos : eol - pos);
    pos = eol == std::string_view::npos ? text.size() : eol + 1;
    if (line.empty() || line[0] == '#' || line.substr(0, name.size()) != name) continue;
    auto rest = line.substr(name.size());
    if (!rest.empty() && rest[0] == '{') {
      auto close = rest.find('}');
      if (close == std::string_view::npos) continue;
      rest = rest.substr(close + 1);
    }
    if (rest.empty() || rest[0] != ' ') continue; // another family with this prefix
    try {
      sum = sum.value_or(0) + std::stod(std::string(rest.substr(1)));
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }
  return sum;
}

/// Every byte value, twice: a body no text encoding would keep as is.
std::string binary_value() {
  std::string v;
  for (int round = 0; round < 2; ++round)
    for (int b = 0; b < 256; ++b)
      v += static_cast<char>(b);
  return v;
}

/// Shared by the suites: cache calls and expectations on one client.
template <class Config>
class cache_suite : public node_suite<Config> {
protected:
  using base = node_suite<Config>;

  /// A key of this test; `suffix` tells several apart.
  static std::string key(std::string_view suffix = {}) {
    auto k = base::collection();
    if (!suffix.empty()) k = k.substr(0, 200) + "." + std::string(suffix);
    return k;
  }

  /// PUT with exactly the headers given (none: no Content-Type at all).
  http_response put_raw(std::string_view k, std::string_view query, std::string body,
                        const header_list& headers = {}) {
    return this->client().request("PUT", cache_target(k, query), std::move(body), headers);
  }

  /// PUT that must be stored (204).
  void put_ok(std::string_view k, std::string_view query, std::string body,
              const header_list& headers = {}) {
    auto res = put_raw(k, query, std::move(body), headers);
    EXPECT_EQ(res.status, 204u) << k << ": " << res.body;
  }

  http_response get(std::string_view k) {
    return this->client().get(cache_target(k));
  }

  /// The GET status of `k`.
  unsigned status_of(std::string_view k) {
    return get(k).status;
  }

  /// Expects `k` to hold `value` with `content_type`.
  void expect_value(std::string_view k, std::string_view value, std::string_view content_type,
                    std::string_view what) {
    auto res = get(k);
    EXPECT_EQ(res.status, 200u) << what << ": " << res.body;
    EXPECT_TRUE(res.body == value) << what << ": the value changed (" << res.body.size()
                                   << " bytes, expected " << value.size() << ")";
    EXPECT_EQ(res.header("Content-Type").value_or(""), content_type) << what;
  }

  /// Expects `res` to be a JSON error with `status` and `code`.
  static void expect_error(const http_response& res, unsigned status, std::string_view code,
                           std::string_view what) {
    EXPECT_EQ(res.status, status) << what << ": " << res.body;
    EXPECT_EQ(res.error_code(), code) << what << ": " << res.body;
    EXPECT_EQ(res.header("Content-Type"), "application/json") << what;
  }

  std::string metrics() {
    auto res = this->client().get("/metrics");
    EXPECT_EQ(res.status, 200u);
    return res.body;
  }

  /// The family `name` summed over its samples; -1 when /metrics has none.
  double metric_of(std::string_view name) {
    return metric_sum(metrics(), name).value_or(-1);
  }

  /// Polls until `pred(metric_of(name))` holds or `patience` passes; the last value.
  template <class Pred>
  double wait_metric(std::string_view name, Pred pred) {
    auto deadline = steady_clock::now() + patience;
    for (;;) {
      double v = metric_of(name);
      if (pred(v) || steady_clock::now() > deadline) return v;
      std::this_thread::sleep_for(milliseconds(20));
    }
  }
};

// ===========================================================================
// The API: round trip, expiry, default ttl, error contract, metrics
// ===========================================================================

/// A short default ttl (so that its expiry is seen) and a small value limit (so that 413
/// is reached below http.max_body_bytes).
struct cache_node {
  static std::vector<std::string> sets() {
    return {"cache.default_ttl_s=1", "cache.max_value_bytes=" + std::to_string(max_value_bytes)};
  }
};

class CacheTest : public cache_suite<cache_node> {};

// Verifies PUT → 204, GET → 200 with the bytes and Content-Type as put (and no-store),
// HEAD → the GET's headers without a body, DELETE → 204, then GET → 404.
TEST_F(CacheTest, PutGetHeadDeleteRoundTripKeepsBytesAndContentType) {
  const auto k = key();
  const auto value = binary_value();
  const std::string type = "application/x-shoal-test; v=1";
  put_ok(k, long_ttl, value, {{"Content-Type", type}});

  auto res = get(k);
  ASSERT_EQ(res.status, 200u) << res.body;
  EXPECT_TRUE(res.body == value) << "the bytes changed: " << res.body.size() << " bytes back";
  EXPECT_EQ(res.header("Content-Type"), type);
  EXPECT_EQ(res.header("Cache-Control"), "no-store");
  EXPECT_EQ(res.header("Content-Length"), std::to_string(value.size()));

  auto head = client().head(cache_target(k));
  EXPECT_EQ(head.status, 200u);
  EXPECT_EQ(head.header("Content-Type"), type);
  EXPECT_EQ(head.header("Content-Length"), std::to_string(value.size()));
  EXPECT_EQ(head.body, "");

  auto del = client().del(cache_target(k));
  EXPECT_EQ(del.status, 204u) << del.body;
  EXPECT_EQ(del.body, "");
  expect_error(get(k), 404, "not_found", "GET after DELETE");
  EXPECT_EQ(client().head(cache_target(k)).status, 404u);
}

// Verifies a rate-limit window can be built safely (docs/caching.md): If-None-Match: *
// creates the window once, GET gives its ETag, a PUT If-Match that ETag wins once and a
// second one with the same ETag is 412 with nothing changed.
TEST_F(CacheTest, ConditionalPutsMakeACompareAndSet) {
  const auto k = key("window");
  const header_list create{{"Content-Type", "text/plain"}, {"If-None-Match", "*"}};
  auto first = put_raw(k, long_ttl, "1", create);
  ASSERT_EQ(first.status, 204u) << first.body;
  ASSERT_TRUE(first.header("ETag"));
  auto again = put_raw(k, long_ttl, "1", create);
  expect_error(again, 412, "precondition_failed", "a second create");
  auto read = get(k);
  ASSERT_EQ(read.status, 200u);
  EXPECT_EQ(read.body, "1");
  EXPECT_EQ(read.header("ETag"), first.header("ETag"));
  const header_list swap{{"Content-Type", "text/plain"}, {"If-Match", *read.header("ETag")}};
  auto won = put_raw(k, long_ttl, "2", swap);
  EXPECT_EQ(won.status, 204u) << won.body;
  EXPECT_NE(won.header("ETag"), read.header("ETag"));
  auto lost = put_raw(k, long_ttl, "2-too", swap);
  expect_error(lost, 412, "precondition_failed", "a stale If-Match");
  EXPECT_EQ(get(k).body, "2");
}

// Verifies increments over HTTP: 8 clients at once add exactly what they sent (each in one
// step of the key's shard), the counter reads back as a JSON integer, a decrement works,
// and an entry that is not an integer is 409 not_a_counter and keeps its value.
TEST_F(CacheTest, ConcurrentIncrementsLoseNothing) {
  const auto k = key("hits");
  const std::string target = "/v1/cache/" + k + "/increment";
  constexpr int clients = 8;
  constexpr int each = 40;
  std::vector<int> ok(clients, 0);
  {
    std::vector<std::thread> threads;
    for (int c = 0; c < clients; ++c)
      threads.emplace_back([&, c] {
        http_client mine{port(), std::chrono::seconds(5)};
        for (int i = 0; i < each; ++i) {
          auto res = mine.try_request("POST", target, R"({"by":1,"ttl":600})",
                                      {{"Content-Type", "application/json"}});
          if (res && res->status == 200) ++ok[c];
        }
      });
    for (auto& t : threads)
      t.join();
  }
  int acknowledged = 0;
  for (int n : ok)
    acknowledged += n;
  EXPECT_EQ(acknowledged, clients * each);
  auto read = get(k);
  ASSERT_EQ(read.status, 200u) << read.body;
  EXPECT_EQ(read.body, std::to_string(acknowledged));
  EXPECT_EQ(read.header("Content-Type").value_or(""), "application/json");
  auto down =
    client().request("POST", target, R"({"by":-20})", {{"Content-Type", "application/json"}});
  ASSERT_EQ(down.status, 200u) << down.body;
  EXPECT_EQ(down.json(), boost::json::parse("{\"value\":" + std::to_string(acknowledged - 20)
                                            + ",\"created\":false}"));

  const auto session = key("session");
  put_ok(session, long_ttl, R"({"user":7})", {{"Content-Type", "application/json"}});
  expect_error(client().request("POST", "/v1/cache/" + session + "/increment"), 409,
               "not_a_counter", "an increment of a JSON object");
  expect_value(session, R"({"user":7})", "application/json", "after a refused increment");
}

// Verifies DELETE of a key that holds nothing is 204 too (idempotent, as documented).
TEST_F(CacheTest, DeleteOfAnAbsentKeyIs204) {
  const auto k = key();
  EXPECT_EQ(client().del(cache_target(k)).status, 204u);
  put_ok(k, long_ttl, "v");
  EXPECT_EQ(client().del(cache_target(k)).status, 204u);
  EXPECT_EQ(client().del(cache_target(k)).status, 204u);
  EXPECT_EQ(status_of(k), 404u);
}

// Verifies a second PUT replaces value and Content-Type; an empty body is a value; a PUT
// without Content-Type is served as application/octet-stream.
TEST_F(CacheTest, PutReplacesAndEmptyBodyAndDefaultContentType) {
  const auto k = key();
  put_ok(k, long_ttl, "first", {{"Content-Type", "text/plain"}});
  put_ok(k, long_ttl, "second", {{"Content-Type", "application/json"}});
  expect_value(k, "second", "application/json", "replaced");
  put_ok(k, long_ttl, "");
  expect_value(k, "", "application/octet-stream", "empty, no Content-Type");
  put_ok(k, long_ttl, "x");
  expect_value(k, "x", "application/octet-stream", "no Content-Type");
}

// Verifies GET of a key never stored is 404 not_found.
TEST_F(CacheTest, GetOfAnUnknownKeyIs404) {
  expect_error(get(key()), 404, "not_found", "never stored");
}

// Verifies ttl=1: the entry is served at once and is 404 within a bounded time, never
// before a second has passed since the PUT was sent.
TEST_F(CacheTest, EntryExpiresAfterItsTtl) {
  const auto k = key();
  auto sent = steady_clock::now();
  put_ok(k, "?ttl=1", "short-lived", {{"Content-Type", "text/plain"}});
  auto first = get(k);
  auto first_at = steady_clock::now();
  if (first_at - sent < milliseconds(900)) {
    // (A machine so loaded that the GET came after the ttl cannot check this part.)
    EXPECT_EQ(first.status, 200u) << first.body;
    EXPECT_EQ(first.body, "short-lived");
  }
  auto deadline = sent + milliseconds(1000) + patience;
  unsigned status = 200;
  steady_clock::time_point gone_at;
  while (steady_clock::now() < deadline) {
    auto res = get(k);
    gone_at = steady_clock::now();
    status = res.status;
    if (status != 200) break;
    std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_EQ(status, 404u) << "the entry did not expire";
  // The shard stamps the expiry after it got the PUT, which was after `sent`.
  EXPECT_GE(gone_at - sent, milliseconds(1000) - milliseconds(50));
}

// Verifies the ttl of a PUT without ?ttl= is cache.default_ttl_s (1 s on this node).
TEST_F(CacheTest, MissingTtlUsesTheConfiguredDefault) {
  const auto k = key();
  const auto kept = key("kept");
  auto sent = steady_clock::now();
  put_ok(k, "", "default ttl");
  put_ok(kept, "?ttl=60", "explicit ttl");
  auto deadline = sent + milliseconds(1000) + patience;
  unsigned status = 200;
  while (steady_clock::now() < deadline) {
    status = status_of(k);
    if (status != 200) break;
    std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_EQ(status, 404u) << "the default ttl (1 s) did not apply";
  EXPECT_GE(steady_clock::now() - sent, milliseconds(950));
  // An explicit ttl is not overridden by the default.
  expect_value(kept, "explicit ttl", "application/octet-stream", "explicit ttl");
}

/// A node of its own for the expiry of unread entries, so the entries gauge counts only
/// that test's entries.
struct expiry_node {
  static std::vector<std::string> sets() {
    return {"cache.default_ttl_s=1"};
  }
};

class CacheExpiryTest : public cache_suite<expiry_node> {};

// Verifies expired entries leave memory without being read: the entries gauge counts
// exactly the 20 new entries, and comes back to 0 once their ttl has passed (the shards
// expire on a timer).
TEST_F(CacheExpiryTest, UnreadEntriesExpireOnATimer) {
  ASSERT_EQ(metric_of("shoal_cache_entries"), 0) << "a fresh node holds no entries";
  for (int i = 0; i < 20; ++i)
    put_ok(key(std::to_string(i)), "?ttl=2", "v");
  EXPECT_EQ(metric_of("shoal_cache_entries"), 20) << "the gauge did not count the new entries";
  auto after = wait_metric("shoal_cache_entries", [&](double v) { return v <= 0; });
  EXPECT_EQ(after, 0) << "unread expired entries stayed in memory";
}

// Verifies every refusal is the documented 4xx and changes nothing: the old value and its
// Content-Type are still served afterwards.
TEST_F(CacheTest, RefusedRequestsAre4xxAndChangeNothing) {
  const auto k = key();
  const std::string type = "text/x-old";
  put_ok(k, long_ttl, "old value", {{"Content-Type", type}});

  struct refused {
    std::string query;
    std::string body;
    unsigned status;
    std::string code;
  };
  const std::string over(max_value_bytes + 1, 'v');
  for (const auto& r : std::vector<refused>{
         {"?ttl=0", "new", 400, "invalid_ttl"},
         {"?ttl=-5", "new", 400, "invalid_ttl"},
         {"?ttl=1.5", "new", 400, "invalid_ttl"},
         {"?ttl=abc", "new", 400, "invalid_ttl"},
         {"?ttl=", "new", 400, "invalid_ttl"},
         {"?ttl=2592001", "new", 400, "invalid_ttl"}, // cache.max_ttl_s + 1
         {"?ttl=99999999999999999999", "new", 400, "invalid_ttl"},
         {"?ttl=5&ttl=5", "new", 400, "invalid_ttl"},
         {"?ttl=5&colour=red", "new", 400, "unknown_parameter"},
         {"?tll=5", "new", 400, "unknown_parameter"},
         {"", over, 413, "value_too_large"},
         {long_ttl, over, 413, "value_too_large"},
       }) {
    auto res = put_raw(k, r.query, r.body, {{"Content-Type", "text/x-new"}});
    expect_error(res, r.status, r.code, "PUT" + r.query);
    expect_value(k, "old value", type, "after PUT" + r.query);
  }
  // Other methods: 405 with Allow, nothing stored or removed.
  for (std::string method : {"POST", "PATCH"}) {
    auto res = client().request(method, cache_target(k), "new", {{"Content-Type", "text/x-new"}});
    expect_error(res, 405, "method_not_allowed", method);
    EXPECT_EQ(res.header("Allow"), "GET, HEAD, PUT, DELETE, OPTIONS") << method;
  }
  // A query on DELETE is refused, so the entry stays.
  expect_error(client().del(cache_target(k, "?force=1")), 400, "unknown_parameter", "DELETE?force");
  expect_value(k, "old value", type, "after the other methods");
}

// Verifies a value of exactly cache.max_value_bytes is stored.
TEST_F(CacheTest, ValueOfExactlyTheMaximumIsStored) {
  const auto k = key();
  const std::string value(max_value_bytes, 'm');
  put_ok(k, long_ttl, value);
  expect_value(k, value, "application/octet-stream", "max_value_bytes");
}

// Verifies the key rules over HTTP: 400 invalid_key for keys outside
// [A-Za-z0-9_.:@-]{1,256} (and . and ..), for every method; the longest key works.
TEST_F(CacheTest, KeyRules) {
  for (std::string bad : {std::string("..%2F.."), std::string("a%2Fb"), std::string("a%20b"),
                          std::string("caf%C3%A9"), std::string(257, 'k'), std::string("a~b")}) {
    expect_error(get(bad), 400, "invalid_key", "GET " + bad.substr(0, 20));
    expect_error(put_raw(bad, long_ttl, "v"), 400, "invalid_key", "PUT " + bad.substr(0, 20));
    expect_error(client().del(cache_target(bad)), 400, "invalid_key",
                 "DELETE " + bad.substr(0, 20));
  }
  const std::string longest(256, 'k');
  put_ok(longest, long_ttl, "longest");
  expect_value(longest, "longest", "application/octet-stream", "256-byte key");
  const std::string punctuated = "user:42@site.example_a-b";
  put_ok(punctuated, long_ttl, "p");
  expect_value(punctuated, "p", "application/octet-stream", "punctuation");
}

// Verifies /metrics counts cache hits and misses: a GET of a live entry is a hit, a GET
// of an absent or expired one a miss.
TEST_F(CacheTest, MetricsCountHitsAndMisses) {
  const auto k = key();
  put_ok(k, long_ttl, "v");
  auto hits = metric_of("shoal_cache_hits_total");
  auto misses = metric_of("shoal_cache_misses_total");
  ASSERT_GE(hits, 0) << "no shoal_cache_hits_total in /metrics";
  ASSERT_GE(misses, 0) << "no shoal_cache_misses_total in /metrics";
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(status_of(k), 200u);
  for (int i = 0; i < 2; ++i)
    EXPECT_EQ(status_of(key("absent")), 404u);
  EXPECT_EQ(wait_metric("shoal_cache_hits_total", [&](double v) { return v >= hits + 3; }),
            hits + 3);
  EXPECT_EQ(wait_metric("shoal_cache_misses_total", [&](double v) { return v >= misses + 2; }),
            misses + 2);
  // The live entry is counted in bytes; nothing was evicted on this roomy node.
  EXPECT_GT(metric_of("shoal_cache_bytes"), 0);
  EXPECT_EQ(metric_of("shoal_cache_evictions_total"), 0);
}

// Verifies the document read cache's counters on /metrics: a document's first GET is a
// miss (it then sits in the cache), the next ones hits, and a conditional GET answered 304
// from the cache is a hit too.
TEST_F(CacheTest, DocumentReadsCountInTheReadCacheMetrics) {
  auto put = client().put("/v1/collections/readcache/docs/d1", R"({"a":1})");
  ASSERT_EQ(put.status, 201u) << put.body;
  const auto hits = metric_of("shoal_doc_cache_hits_total");
  const auto misses = metric_of("shoal_doc_cache_misses_total");
  ASSERT_GE(hits, 0) << "no shoal_doc_cache_hits_total in /metrics";
  ASSERT_GE(misses, 0) << "no shoal_doc_cache_misses_total in /metrics";
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(client().get("/v1/collections/readcache/docs/d1").status, 200u);
  EXPECT_EQ(client().get("/v1/collections/readcache/docs/d1", {{"If-None-Match", "\"1\""}}).status,
            304u);
  EXPECT_EQ(wait_metric("shoal_doc_cache_misses_total", [&](double v) { return v >= misses + 1; }),
            misses + 1);
  EXPECT_EQ(wait_metric("shoal_doc_cache_hits_total", [&](double v) { return v >= hits + 3; }),
            hits + 3);
  EXPECT_GT(metric_of("shoal_doc_cache_bytes"), 0);
}

// ===========================================================================
// Eviction under cache.max_bytes (the minimum, 1 MiB) over four shards
// ===========================================================================

constexpr std::size_t node_max_bytes = 1u << 20;
constexpr std::uint32_t node_shards = 4;
constexpr std::size_t shard_share = node_max_bytes / node_shards;
constexpr std::size_t value_bytes = 10 * 1024;
/// What an entry counts for (cache/ttl_cache.hpp): key + value + content type + 96.
constexpr std::size_t entry_overhead = 96;
const std::string value_type = "application/octet-stream";

struct small_cache_node {
  static std::vector<std::string> sets() {
    return {"cache.max_bytes=" + std::to_string(node_max_bytes),
            "cluster.shards=" + std::to_string(node_shards)};
  }
};

class CacheEvictionTest : public cache_suite<small_cache_node> {
protected:
  /// How many entries of a `key_size`-byte key and a 10 KiB value one shard holds.
  static std::size_t capacity(std::size_t key_size) {
    return shard_share / (key_size + value_bytes + value_type.size() + entry_overhead);
  }

  static std::uint32_t shard_of(std::string_view k) {
    return cluster::shard_map(node_shards).shard_of(cache::space, k);
  }

  /// `n` keys `<prefix>NNNNN` (all the same length) in order, only those of `shard` when
  /// it is given.
  static std::vector<std::string> keys(std::string_view prefix, std::size_t n,
                                       std::optional<std::uint32_t> shard = std::nullopt) {
    std::vector<std::string> out;
    for (std::size_t i = 0; out.size() < n; ++i) {
      auto digits = std::to_string(i);
      auto k = std::string(prefix) + std::string(5 - digits.size(), '0') + digits;
      if (!shard || shard_of(k) == *shard) out.push_back(k);
    }
    return out;
  }

  static std::string value_for(std::string_view k) {
    std::string v(value_bytes, '.');
    std::copy(k.begin(), k.end(), v.begin()); // tells the values apart
    return v;
  }
};

// Verifies ~3 MiB of 10 KiB values into a 1 MiB cache: in each shard the newest entries
// that fit its share are served and the older ones are 404; the bytes gauge stays within
// cache.max_bytes and the evictions counter counts the rest.
TEST_F(CacheEvictionTest, OldestEntriesAreEvictedAndTheBytesStayWithinTheBound) {
  const auto all = keys("ev-", 300); // 3 MiB of values
  const auto cap = capacity(all.front().size());
  ASSERT_GE(cap, 20u);
  auto evictions_before = metric_of("shoal_cache_evictions_total");
  ASSERT_GE(evictions_before, 0) << "no shoal_cache_evictions_total in /metrics";
  for (const auto& k : all)
    put_ok(k, long_ttl, value_for(k));

  // Per shard, the keys in the order they were put.
  std::map<std::uint32_t, std::vector<std::string>> by_shard;
  for (const auto& k : all)
    by_shard[shard_of(k)].push_back(k);
  ASSERT_EQ(by_shard.size(), node_shards);
  std::size_t expected_live = 0;
  for (const auto& [shard, list] : by_shard) {
    ASSERT_GT(list.size(), cap + 2) << "shard " << shard << " got too few keys to overflow";
    expected_live += cap;
    // Slack of one entry either way for how the node splits max_bytes over its shards.
    for (std::size_t i = 0; i + cap + 1 < list.size(); ++i)
      EXPECT_EQ(status_of(list[i]), 404u) << list[i] << " (shard " << shard << ") survived";
    for (std::size_t i = list.size() - (cap - 1); i < list.size(); ++i) {
      auto res = get(list[i]);
      EXPECT_EQ(res.status, 200u) << list[i] << " (shard " << shard << ") was evicted";
      EXPECT_TRUE(res.body == value_for(list[i])) << list[i] << ": another value";
    }
  }
  // The first keys put are gone everywhere, the last one is there.
  for (std::size_t i = 0; i < 10; ++i)
    EXPECT_EQ(status_of(all[i]), 404u) << all[i];
  EXPECT_EQ(status_of(all.back()), 200u);

  // Nearly full: every shard holds about `cap` entries (the gauges may lag a little).
  const double low_bytes = static_cast<double>(node_shards * (cap - 1) * value_bytes);
  auto bytes = wait_metric("shoal_cache_bytes", [&](double v) { return v >= low_bytes; });
  EXPECT_GE(bytes, low_bytes) << "shoal_cache_bytes (-1: not in /metrics)";
  EXPECT_LE(bytes, static_cast<double>(node_max_bytes));
  const double low_entries = static_cast<double>(expected_live - node_shards);
  auto entries = wait_metric("shoal_cache_entries", [&](double v) { return v >= low_entries; });
  EXPECT_GE(entries, low_entries) << "shoal_cache_entries (-1: not in /metrics)";
  EXPECT_LE(entries, static_cast<double>(expected_live + node_shards));
  auto evicted = wait_metric("shoal_cache_evictions_total", [&](double v) {
    return v >= evictions_before + static_cast<double>(all.size() - expected_live - node_shards);
  });
  EXPECT_GE(evicted - evictions_before,
            static_cast<double>(all.size() - expected_live - node_shards));
  EXPECT_LE(evicted - evictions_before, static_cast<double>(all.size()));
}

// Verifies eviction is least recently used within a shard: of keys all owned by one
// shard, the first one put but read since outlives the ones put right after it.
TEST_F(CacheEvictionTest, RecentlyReadEntryOutlivesUnreadOnes) {
  constexpr std::uint32_t shard = 1;
  const auto list = keys("lru-", 80, shard);
  const auto cap = capacity(list.front().size());
  ASSERT_GE(cap, 20u);
  ASSERT_GE(list.size(), cap + 10);
  // Room for all of these (whatever else the shard holds is older and goes first).
  const std::size_t first_batch = cap - 5;
  for (std::size_t i = 0; i < first_batch; ++i)
    put_ok(list[i], long_ttl, value_for(list[i]));
  for (std::size_t i = 0; i < first_batch; ++i)
    ASSERT_EQ(status_of(list[i]), 200u) << list[i] << " was evicted before the shard was full";
  // The verification above read every key in order; read the first one again so it is
  // the most recently used of them.
  ASSERT_EQ(status_of(list[0]), 200u);
  // 10 more: about 5 of the batch must go, least recently used first: list[1], list[2]...
  for (std::size_t i = first_batch; i < first_batch + 10; ++i)
    put_ok(list[i], long_ttl, value_for(list[i]));
  EXPECT_EQ(status_of(list[1]), 404u) << "the least recently used entry survived";
  EXPECT_EQ(status_of(list[2]), 404u);
  EXPECT_EQ(status_of(list[3]), 404u);
  auto res = get(list[0]);
  EXPECT_EQ(res.status, 200u) << "the recently read entry was evicted before unread ones";
  EXPECT_TRUE(res.body == value_for(list[0]));
  for (std::size_t i = 7; i < first_batch + 10; ++i)
    EXPECT_EQ(status_of(list[i]), 200u) << list[i];
}

// Verifies a value that fits cache.max_value_bytes but not one shard's share of
// cache.max_bytes is refused with 413 and leaves the key empty.
TEST_F(CacheEvictionTest, ValueOverTheShardShareIs413) {
  const auto k = key();
  put_ok(k, long_ttl, "small");
  auto res = put_raw(k, long_ttl, std::string(shard_share, 'x'));
  expect_error(res, 413, "value_too_large", "over the shard's share");
  EXPECT_EQ(status_of(k), 404u) << "the old value of a refused PUT must not survive";
}

} // namespace
} // namespace shoal::test
