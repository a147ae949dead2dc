// SPDX-License-Identifier: Apache-2.0
// End-to-end tests of the change feed (docs/changes.md) against the real shoal binary over
// loopback: the events of puts, patches and deletes in order with their data; resuming
// with Last-Event-ID while writes go on (nothing missed, nothing repeated); ?since=start
// replaying what retention keeps; 410 once retention trimmed the resume point; the 400s
// of the route; a consumer that stops reading (writers go on, the stream is cut with a
// resume point, resuming gets the rest); and resuming across a kill -9 and restart.

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "tests/support/feed_client.hpp"
#include "tests/integration/node_suite.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/metrics_text.hpp"
#include "tests/support/shoal_process.hpp"
#include "tests/support/temp_dir.hpp"

namespace shoal::test {
namespace {

namespace json = boost::json;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

/// Every wait for events gives up after this long (a loaded 2-core machine included).
constexpr milliseconds patience{20000};
/// How long a stream must stay quiet to count as having sent everything.
constexpr milliseconds quiet{500};

/// One event as received.
struct change {
  std::string type;   ///< put, delete, overflow, gone
  std::string sse_id; ///< the `id:` (the resume point after this event)
  std::string doc_id; ///< data.id
  std::int64_t version = 0;
  json::value doc; ///< data.doc (null when absent)
  bool has_doc = false;
  json::value data;
};

change decode(const feed_event& e) {
  change c;
  c.type = e.type;
  c.sse_id = e.id;
  json::error_code ec;
  c.data = json::parse(e.data, ec);
  EXPECT_FALSE(ec) << "data is not JSON: " << e.data;
  if (const auto* o = c.data.if_object()) {
    if (const auto* id = o->if_contains("id"); id && id->is_string())
      c.doc_id = std::string(id->get_string());
    if (const auto* v = o->if_contains("version"); v && v->is_number())
      c.version = v->to_number<std::int64_t>();
    if (const auto* d = o->if_contains("doc")) {
      c.doc = *d;
      c.has_doc = true;
    }
  }
  return c;
}

/// Reads up to `n` events; fewer when the stream ends or `wait` passes.
std::vector<change> take(feed_client& c, std::size_t n, milliseconds wait = patience) {
  std::vector<change> out;
  auto deadline = steady_clock::now() + wait;
  while (out.size() < n) {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - steady_clock::now());
    if (left.count() <= 0) break;
    auto e = c.next(left);
    if (!e) break;
    out.push_back(decode(*e));
  }
  return out;
}

/// "type id vN" of each event, for messages.
std::string describe(const std::vector<change>& events) {
  std::string s;
  for (const auto& e : events)
    s += e.type + " " + e.doc_id + " v" + std::to_string(e.version) + "; ";
  return s;
}

/// GET …/changes`query` with `headers`; asserts a 200 stream and returns it.
std::unique_ptr<feed_client> open_feed(std::uint16_t port, const std::string& collection,
                                       const std::string& query = {},
                                       const feed_client::headers& headers = {},
                                       int receive_buffer = 0) {
  auto c = std::make_unique<feed_client>(port, "/v1/collections/" + collection + "/changes" + query,
                                         headers, receive_buffer);
  EXPECT_TRUE(c->read_head()) << "no response head";
  EXPECT_EQ(c->status, 200u) << c->read_body();
  return c;
}

std::string doc_target(const std::string& collection, const std::string& id) {
  return "/v1/collections/" + collection + "/docs/" + id;
}

/// PUTs `body` as `id`; asserts a 2xx.
void put_doc(http_client& client, const std::string& collection, const std::string& id,
             const std::string& body) {
  auto res = client.put(doc_target(collection, id), body);
  ASSERT_LT(res.status, 300u) << res.status << " " << res.body;
}

// -- one node -----------------------------------------------------------------------------

/// Short heartbeats, so that idle streams show keep-alives quickly.
struct feed_node {
  static std::vector<std::string> sets() {
    return {"changes.heartbeat_ms=500"};
  }
};

class ChangesTest : public node_suite<feed_node> {
protected:
  std::unique_ptr<feed_client> open(const std::string& query = {},
                                    const feed_client::headers& headers = {}) {
    return open_feed(port(), collection(), query, headers);
  }
};

// Verifies puts, a patch and a delete arrive as put/delete events with id, version and
// the document (none on delete), each document's in commit order, with the stream's
// head and keep-alives as documented; writes before a stream without a resume point are
// not sent.
TEST_F(ChangesTest, PutPatchDeleteArriveInOrderWithTheirData) {
  put_doc(client(), collection(), "before", R"({"old":true})");
  auto c = open();
  EXPECT_EQ(c->header("Content-Type"), "text/event-stream");
  EXPECT_EQ(c->header("Cache-Control"), "no-cache");
  EXPECT_EQ(c->header("Connection"), "close");
  EXPECT_FALSE(c->header("Content-Length"));
  EXPECT_TRUE(c->header("X-Request-Id"));
  put_doc(client(), collection(), "a", R"({"name":"Ada"})");
  auto patched = client().patch(doc("a"), R"({"age":36})");
  ASSERT_EQ(patched.status, 200u) << patched.body;
  put_doc(client(), collection(), "b", R"({"k":[1,2],"s":"line\nbreak"})");
  ASSERT_EQ(client().del(doc("a")).status, 204u);
  put_doc(client(), collection(), "a", R"({"again":true})");

  auto got = take(*c, 5);
  ASSERT_EQ(got.size(), 5u) << describe(got);
  std::vector<change> a;
  std::vector<change> b;
  std::set<std::string> ids;
  for (auto& e : got) {
    EXPECT_NE(e.doc_id, "before");
    EXPECT_FALSE(e.sse_id.empty());
    ids.insert(e.sse_id);
    (e.doc_id == "a" ? a : b).push_back(e);
  }
  EXPECT_EQ(ids.size(), 5u) << "every event has its own id";
  ASSERT_EQ(a.size(), 4u) << describe(got);
  EXPECT_EQ(a[0].type, "put");
  EXPECT_EQ(a[0].version, 1);
  EXPECT_EQ(a[0].doc, json::parse(R"({"name":"Ada"})"));
  EXPECT_EQ(a[1].type, "put"); // a patch is a put of the merged document
  EXPECT_EQ(a[1].version, 2);
  EXPECT_EQ(a[1].doc, json::parse(R"({"name":"Ada","age":36})"));
  EXPECT_EQ(a[2].type, "delete");
  EXPECT_EQ(a[2].version, 3);
  EXPECT_FALSE(a[2].has_doc);
  EXPECT_EQ(a[3].type, "put");
  EXPECT_EQ(a[3].version, 4);
  EXPECT_EQ(a[3].doc, json::parse(R"({"again":true})"));
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].doc, json::parse(R"({"k":[1,2],"s":"line\nbreak"})"));
  // Idle now: keep-alive comments, no events.
  auto before = c->comments;
  EXPECT_FALSE(c->next(milliseconds(1300)));
  EXPECT_GT(c->comments, before);
  EXPECT_FALSE(c->closed());
}

// Verifies a client that disconnects and reconnects with Last-Event-ID, while a writer
// keeps writing, gets exactly the events after that id: none missed, none twice.
TEST_F(ChangesTest, ResumeWithLastEventIdWhileWritesContinue) {
  constexpr int writes = 60;
  const auto coll = collection();
  std::atomic<bool> writer_ok{true};
  auto c = open("?since=start");
  std::thread writer([&] {
    http_client w{port()};
    for (int i = 0; i < writes; ++i) {
      auto res =
        w.put(doc_target(coll, "w" + std::to_string(i)), R"({"i":)" + std::to_string(i) + "}");
      if (res.status >= 300) writer_ok = false;
      std::this_thread::sleep_for(milliseconds(5));
    }
  });
  auto first = take(*c, 20);
  ASSERT_EQ(first.size(), 20u) << describe(first);
  const auto resume = first.back().sse_id;
  c.reset(); // disconnect; the writer goes on
  std::this_thread::sleep_for(milliseconds(100));
  auto again = open({}, {{"Last-Event-ID", resume}});
  writer.join();
  ASSERT_TRUE(writer_ok);
  auto rest = take(*again, writes - 20);
  EXPECT_FALSE(again->next(quiet)) << "more events than writes";
  std::multiset<std::string> seen;
  for (auto* part : {&first, &rest})
    for (auto& e : *part) {
      EXPECT_EQ(e.type, "put");
      EXPECT_EQ(e.version, 1);
      seen.insert(e.doc_id);
    }
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(writes)) << describe(rest);
  for (int i = 0; i < writes; ++i)
    EXPECT_EQ(seen.count("w" + std::to_string(i)), 1u) << "w" << i;
}

// Verifies ?since=start and ?since=0 replay the retained events and go on live;
// ?since=now starts at the head like no resume point.
TEST_F(ChangesTest, SinceStartReplaysAndGoesOnLive) {
  for (int i = 0; i < 7; ++i)
    put_doc(client(), collection(), "s" + std::to_string(i), R"({"n":1})");
  for (std::string q : {"?since=start", "?since=0"}) {
    auto c = open(q);
    auto got = take(*c, 7);
    ASSERT_EQ(got.size(), 7u) << q << ": " << describe(got);
    std::set<std::string> docs;
    for (auto& e : got)
      docs.insert(e.doc_id);
    EXPECT_EQ(docs.size(), 7u);
    EXPECT_FALSE(c->next(quiet));
  }
  auto now = open("?since=now");
  EXPECT_FALSE(now->next(quiet));
  put_doc(client(), collection(), "live", R"({"n":2})");
  auto got = take(*now, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].doc_id, "live");
}

// Verifies the route's refusals: malformed resume points (query or header), a bad
// collection name, unknown parameters, other methods, a position of another cluster.
TEST_F(ChangesTest, RefusesBadRequests) {
  const auto base = "/v1/collections/" + collection() + "/changes";
  auto r = client().get(base + "?since=yesterday");
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(r.error_code(), "invalid_resume_point");
  r = client().get(base, {{"Last-Event-ID", "v1.not-a-position!"}});
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(r.error_code(), "invalid_resume_point");
  r = client().get("/v1/collections/bad.name/changes");
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(r.error_code(), "invalid_name");
  r = client().get(base + "?since=start&limit=10");
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(r.error_code(), "unknown_parameter");
  r = client().request("POST", base, "{}", {{"Content-Type", "application/json"}});
  EXPECT_EQ(r.status, 405u);
  EXPECT_EQ(r.header("Allow"), "GET, OPTIONS");
  r = client().head(base);
  EXPECT_EQ(r.status, 405u);
  // "v1.AwABAg": a position of three shards (varints 03 00 01 02); the node has 64.
  r = client().get(base + "?since=v1.AwABAg");
  EXPECT_EQ(r.status, 400u) << r.body;
  EXPECT_EQ(r.error_code(), "invalid_resume_point");
  expect_serving();
}

// Verifies the feed's metrics on /metrics: every committed write is one event, and an
// open, caught-up stream keeps one waiting read at each of the node's 64 shards, all gone
// once the client has left.
TEST_F(ChangesTest, MetricsCountEventsAndWaitingReads) {
  auto value = [&](std::string_view name) { return read_metric(port(), name).value_or(-1); };
  auto wait_for = [&](std::string_view name, double want) {
    double v = value(name);
    for (auto deadline = steady_clock::now() + std::chrono::seconds(10);
         v != want && steady_clock::now() < deadline; v = value(name))
      std::this_thread::sleep_for(milliseconds(5));
    return v;
  };
  ASSERT_EQ(wait_for("shoal_change_waiters", 0), 0) << "reads of earlier streams still wait";
  const double events = value("shoal_change_events_total");
  ASSERT_GE(events, 0) << "no shoal_change_events_total";
  put_doc(client(), collection(), "m", R"({"n":1})");
  ASSERT_EQ(client().patch(doc("m"), R"({"n":2})").status, 200u);
  ASSERT_EQ(client().del(doc("m")).status, 204u);
  EXPECT_EQ(wait_for("shoal_change_events_total", events + 3), events + 3);
  {
    auto c = open();
    EXPECT_EQ(wait_for("shoal_change_waiters", 64), 64) << "a caught-up stream waits at each shard";
  }
  EXPECT_EQ(wait_for("shoal_change_waiters", 0), 0) << "reads of a closed stream kept waiting";
}

// -- browsers -----------------------------------------------------------------------------

struct cors_node {
  static std::vector<std::string> sets() {
    return {"http.cors_origins=https://app.example"};
  }
};

class ChangesCorsTest : public node_suite<cors_node> {};

// Verifies a stream tells an EventSource when to reconnect (retry:) and carries the CORS
// fields for an allowed page's origin only; the routes' preflight answers too.
TEST_F(ChangesCorsTest, AStreamTellsWhenToReconnectAndWhichOriginMayReadIt) {
  auto allowed = open_feed(port(), collection(), {}, {{"Origin", "https://app.example"}});
  EXPECT_EQ(allowed->header("Access-Control-Allow-Origin").value_or(""), "https://app.example");
  EXPECT_EQ(allowed->header("Vary").value_or(""), "Origin");
  ASSERT_EQ(client().put(doc_target(collection(), "a"), R"({"n":1})").status, 201u);
  auto first = take(*allowed, 1);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(allowed->retry, "1000") << "no retry: before the first event";

  auto other = open_feed(port(), collection(), {}, {{"Origin", "https://evil.example"}});
  EXPECT_FALSE(other->header("Access-Control-Allow-Origin")) << "another origin was allowed";

  // A refusal (400 before the stream starts) carries the fields as well, so the page can
  // read why.
  feed_client refused{port(),
                      "/v1/collections/" + collection() + "/changes?since=zzz",
                      {{"Origin", "https://app.example"}}};
  ASSERT_TRUE(refused.read_head());
  EXPECT_EQ(refused.status, 400u);
  EXPECT_EQ(refused.header("Access-Control-Allow-Origin").value_or(""), "https://app.example");

  // The preflight of a document PUT from the page.
  auto pre = client().request("OPTIONS", doc_target(collection(), "a"), {},
                              {{"Origin", "https://app.example"},
                               {"Access-Control-Request-Method", "PUT"},
                               {"Access-Control-Request-Headers", "content-type, if-match"}});
  EXPECT_EQ(pre.status, 204u);
  EXPECT_EQ(pre.header("Access-Control-Allow-Origin").value_or(""), "https://app.example");
  EXPECT_NE(pre.header("Access-Control-Allow-Methods").value_or("").find("PUT"), std::string::npos);
  EXPECT_NE(pre.header("Access-Control-Allow-Headers").value_or("").find("If-Match"),
            std::string::npos);
  // And an answer to a request of the page itself.
  auto got = client().get(doc_target(collection(), "a"), {{"Origin", "https://app.example"}});
  EXPECT_EQ(got.status, 200u);
  EXPECT_EQ(got.header("Access-Control-Allow-Origin").value_or(""), "https://app.example");
  EXPECT_NE(got.header("Access-Control-Expose-Headers").value_or("").find("ETag"),
            std::string::npos);
}

// -- retention ----------------------------------------------------------------------------

struct retention_node {
  static std::vector<std::string> sets() {
    return {"changes.retention_events=5"};
  }
};

class ChangesRetentionTest : public node_suite<retention_node> {};

// Verifies that with changes.retention_events=5, after 20 writes to one document (one
// shard) ?since=start replays the last 5, and resuming from the first event's id is 410.
TEST_F(ChangesRetentionTest, ResumeOlderThanRetentionIsGone) {
  auto live = open_feed(port(), collection());
  // One write at a time, each seen before the next: a stream more than 5 events behind
  // is past retention itself (it gets `gone`), which a fast writer and a slow machine
  // would otherwise make happen here.
  std::vector<change> got;
  for (int i = 0; i < 20; ++i) {
    put_doc(client(), collection(), "k", R"({"i":)" + std::to_string(i) + "}");
    auto one = take(*live, 1);
    ASSERT_EQ(one.size(), 1u) << "write " << i << ": " << describe(got);
    got.push_back(one.front());
  }
  EXPECT_EQ(got.back().version, 20);
  live.reset();

  auto replay = open_feed(port(), collection(), "?since=start");
  auto kept = take(*replay, 5);
  ASSERT_EQ(kept.size(), 5u) << describe(kept);
  EXPECT_EQ(kept.front().version, 16);
  EXPECT_EQ(kept.back().version, 20);
  EXPECT_FALSE(replay->next(quiet));
  replay.reset();

  feed_client early{port(),
                    "/v1/collections/" + collection() + "/changes",
                    {{"Last-Event-ID", got.front().sse_id}}};
  ASSERT_TRUE(early.read_head());
  EXPECT_EQ(early.status, 410u);
  auto body = json::parse(early.read_body());
  EXPECT_EQ(body.at("error").at("code").as_string(), "gone");
  // The last retained events still resume.
  auto recent = open_feed(port(), collection(), {}, {{"Last-Event-ID", got[17].sse_id}});
  auto tail = take(*recent, 2);
  ASSERT_EQ(tail.size(), 2u);
  EXPECT_EQ(tail.back().version, 20);
}

// -- a slow consumer ----------------------------------------------------------------------

struct slow_consumer_node {
  static std::vector<std::string> sets() {
    return {"changes.max_buffer_bytes=4096"};
  }
};

class ChangesSlowConsumerTest : public node_suite<slow_consumer_node> {};

// Verifies a client that reads nothing while 2 MB of events are written does not slow
// the writers, is cut with an overflow event naming its resume point, and gets the rest
// exactly once by resuming there.
TEST_F(ChangesSlowConsumerTest, WritersGoOnAndTheStreamIsCutWithAResumePoint) {
  constexpr int writes = 2000;
  const std::string body = R"({"pad":")" + std::string(1000, 'x') + R"("})";
  // A small receive window: the kernel does not hold the 2 MB for the client.
  auto c = open_feed(port(), collection(), {}, {}, 4096);
  auto slowest = milliseconds(0);
  auto t0 = steady_clock::now();
  for (int i = 0; i < writes; ++i) {
    auto s = steady_clock::now();
    put_doc(client(), collection(), "s" + std::to_string(i), body);
    slowest = std::max(slowest, std::chrono::duration_cast<milliseconds>(steady_clock::now() - s));
    if (HasFatalFailure()) return;
  }
  auto total = std::chrono::duration_cast<milliseconds>(steady_clock::now() - t0);
  std::printf("[ feed     ] %d writes of 1 KB in %lld ms (slowest %lld ms) with a stalled stream\n",
              writes, static_cast<long long>(total.count()),
              static_cast<long long>(slowest.count()));
  EXPECT_LT(slowest, milliseconds(2000)) << "a write waited for the stalled stream";

  std::vector<change> first;
  std::optional<change> overflow;
  while (auto e = c->next(milliseconds(5000))) {
    auto ev = decode(*e);
    if (ev.type == "overflow") {
      overflow = ev;
      break;
    }
    first.push_back(std::move(ev));
  }
  ASSERT_TRUE(overflow) << "the stream was not cut with an overflow after " << first.size()
                        << " events";
  EXPECT_TRUE(c->wait_closed(milliseconds(5000)));
  ASSERT_LT(first.size(), static_cast<std::size_t>(writes));
  const std::string resume(overflow->data.at("resume").as_string());
  EXPECT_EQ(resume, first.empty() ? c->last_id : first.back().sse_id);

  auto again = open_feed(port(), collection(), {}, {{"Last-Event-ID", resume}});
  auto rest = take(*again, writes - first.size(), milliseconds(60000));
  EXPECT_FALSE(again->next(quiet)) << "more events than writes";
  std::multiset<std::string> seen;
  for (auto* part : {&first, &rest})
    for (auto& e : *part) {
      EXPECT_EQ(e.type, "put");
      seen.insert(e.doc_id);
    }
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(writes));
  for (int i = 0; i < writes; ++i)
    ASSERT_EQ(seen.count("s" + std::to_string(i)), 1u) << "s" << i;
}

// -- restart ------------------------------------------------------------------------------

// Verifies a resume point survives kill -9 and a restart: events acknowledged before the
// kill (streamed or not) and written after the restart arrive, none repeated, and a node
// stops cleanly with a stream open.
TEST(ChangesRestartTest, ResumeAcrossKillAndRestart) {
  temp_dir dir{"shoal-feed"};
  const std::string coll = "restart";
  auto node = start_node(dir / "data", dir / "first.log");
  std::vector<std::string> ids;
  {
    http_client client{node->port()};
    auto c = open_feed(node->port(), coll, "?since=start");
    for (int i = 0; i < 10; ++i)
      put_doc(client, coll, "r" + std::to_string(i), R"({"i":)" + std::to_string(i) + "}");
    auto got = take(*c, 10);
    ASSERT_EQ(got.size(), 10u) << describe(got);
    for (auto& e : got)
      ids.push_back(e.sse_id);
    // Acknowledged, never streamed: the kill comes right after.
    for (int i = 10; i < 15; ++i)
      put_doc(client, coll, "r" + std::to_string(i), R"({"i":)" + std::to_string(i) + "}");
  }
  node->kill9();
  node = start_node(dir / "data", dir / "second.log");
  http_client client{node->port()};
  for (int i = 15; i < 20; ++i)
    put_doc(client, coll, "r" + std::to_string(i), R"({"i":)" + std::to_string(i) + "}");

  auto expect_from = [&](const std::string& id, int from) {
    auto c = open_feed(node->port(), coll, {}, {{"Last-Event-ID", id}});
    auto got = take(*c, static_cast<std::size_t>(20 - from));
    ASSERT_EQ(got.size(), static_cast<std::size_t>(20 - from)) << describe(got);
    std::set<std::string> docs;
    for (auto& e : got)
      docs.insert(e.doc_id);
    for (int i = from; i < 20; ++i)
      EXPECT_EQ(docs.count("r" + std::to_string(i)), 1u) << "r" << i << " after " << from;
    EXPECT_FALSE(c->next(quiet)) << "more events than writes";
  };
  expect_from(ids[9], 10);
  expect_from(ids[4], 5);

  // A stream open while the node stops: it ends, and the node exits cleanly.
  auto open_stream = open_feed(node->port(), coll);
  EXPECT_EQ(node->stop(SIGTERM), 0) << node->log();
  EXPECT_TRUE(open_stream->wait_closed(milliseconds(5000)));
}

} // namespace
} // namespace shoal::test
