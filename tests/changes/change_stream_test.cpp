// SPDX-License-Identifier: Apache-2.0
// The change feed's HTTP edge against a fake shard side: the route's checks
// (detail::route_changes, called directly) and the Server-Sent Events stream
// (http/change_stream.cpp) served by a real http::server whose shard_service is
// `fake_feed`, an in-memory change log per shard that follows the shard protocol of
// doc_op::changes (long polls, bounds, gone, "from now"). The fake lets these tests
// make every situation on demand: a shard that is down, a resume point trimmed under a
// stream, a client that stops reading.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "changes/events.hpp"
#include "http/request_metrics.hpp"
#include "http/route_helpers.hpp"
#include "http/server.hpp"
#include "http/shard_service.hpp"
#include "tests/support/feed_client.hpp"

namespace shoal::http {
namespace {

namespace bhttp = boost::beast::http;
using actors::doc_reply;
using actors::doc_request;
using actors::doc_status;
using changes::event;
using changes::event_kind;
using std::chrono::milliseconds;
using test::feed_client;
using test::feed_event;

constexpr std::uint64_t from_now = std::numeric_limits<std::uint64_t>::max();

// -- the fake shard side ------------------------------------------------------------------

/// Change logs of one collection on `shards` shards, answering doc_op::changes as the
/// shard actors do: events after `after` (at most `limit`), a long poll of up to
/// `wait_ms` when there are none, `gone` for a trimmed or unknown resume point, the
/// bounds alone for "from now". Replies are delivered outside the lock, from the calling
/// thread (a write wakes parked reads) or from the fake's timer thread (expired waits).
class fake_feed final : public shard_service {
public:
  fake_feed(std::uint32_t shards, std::size_t retention) : shards_(shards), retention_(retention) {
    timer_ = std::thread([this] { run_timer(); });
  }

  ~fake_feed() override {
    shutdown();
  }

  void submit(doc_request&&, actors::reply_sink_ptr sink) override {
    sink->deliver(doc_reply{doc_status::bad_request, 0, {}, "not here", "bad_request"});
  }

  std::uint32_t shard_count() const override {
    return static_cast<std::uint32_t>(shards_.size());
  }

  void submit_to(std::uint32_t shard, doc_request&& req, actors::reply_sink_ptr sink) override {
    std::optional<doc_reply> reply;
    {
      std::lock_guard<std::mutex> guard{mutex_};
      ++requests_;
      if (req.op != actors::doc_op::changes || shard >= shards_.size()) {
        reply = doc_reply{doc_status::bad_request, 0, {}, "unexpected request", "bad_request"};
      } else {
        auto& s = shards_[shard];
        reply = answer(s, req, false);
        if (!reply) {
          auto deadline = std::chrono::steady_clock::now() + milliseconds(req.wait_ms);
          s.parked.push_back({std::move(req), std::move(sink), deadline});
          max_parked_ = std::max(max_parked_, s.parked.size());
          return;
        }
      }
    }
    sink->deliver(std::move(*reply));
  }

  void cache(actors::cache_request&&, actors::cache_sink_ptr sink) override {
    sink->deliver(actors::cache_reply{actors::cache_status::not_found, {}, {}, "none"});
  }

  void call(actors::actor_call&&, actors::call_sink_ptr sink) override {
    sink->deliver(actors::actor_reply{404, {}, "unknown_actor_type", "none"});
  }

  void job(jobs::job_request&&, jobs::job_sink_ptr sink) override {
    jobs::job_reply r;
    r.status = jobs::job_status::not_found;
    sink->deliver(std::move(r));
  }

  /// Commits a write of document `id` on `shard`: the next seq, the document's next
  /// version. Wakes the reads parked on the shard.
  std::uint64_t write(std::uint32_t shard, event_kind kind, const std::string& id,
                      std::string doc = {}) {
    std::vector<std::pair<actors::reply_sink_ptr, doc_reply>> out;
    std::uint64_t seq = 0;
    {
      std::lock_guard<std::mutex> guard{mutex_};
      auto& s = shards_[shard];
      event e;
      e.seq = seq = ++s.last;
      e.kind = kind;
      e.id = id;
      e.version = ++versions_[id];
      if (kind == event_kind::put)
        e.doc = doc.empty() ? R"({"v":)" + std::to_string(e.version) + "}" : doc;
      s.log.push_back(std::move(e));
      while (s.log.size() > retention_) {
        s.log.erase(s.log.begin());
        s.first = s.log.front().seq;
      }
      wake(s, false, out);
    }
    for (auto& [sink, reply] : out)
      sink->deliver(std::move(reply));
    return seq;
  }

  /// The next answer of `shard` is `status` (a parked read gets it at once).
  void inject(std::uint32_t shard, doc_status status) {
    std::vector<std::pair<actors::reply_sink_ptr, doc_reply>> out;
    {
      std::lock_guard<std::mutex> guard{mutex_};
      auto& s = shards_[shard];
      s.inject = status;
      wake(s, false, out);
    }
    for (auto& [sink, reply] : out)
      sink->deliver(std::move(reply));
  }

  /// Most reads parked on one shard at once so far.
  std::size_t max_parked() {
    std::lock_guard<std::mutex> guard{mutex_};
    return max_parked_;
  }

  /// Reads received so far.
  std::size_t requests() {
    std::lock_guard<std::mutex> guard{mutex_};
    return requests_;
  }

  /// Events handed out in replies so far.
  std::size_t events_returned() {
    std::lock_guard<std::mutex> guard{mutex_};
    return events_returned_;
  }

  /// Stops the timer thread and answers every parked read (its stream may be gone).
  void shutdown() {
    {
      std::lock_guard<std::mutex> guard{mutex_};
      if (stopped_) return;
      stopped_ = true;
    }
    cv_.notify_all();
    if (timer_.joinable()) timer_.join();
    std::vector<std::pair<actors::reply_sink_ptr, doc_reply>> out;
    {
      std::lock_guard<std::mutex> guard{mutex_};
      for (auto& s : shards_)
        wake(s, true, out);
    }
    for (auto& [sink, reply] : out)
      sink->deliver(std::move(reply));
  }

private:
  struct parked_read {
    doc_request req;
    actors::reply_sink_ptr sink;
    std::chrono::steady_clock::time_point deadline;
  };

  struct shard_log {
    std::vector<event> log;
    std::uint64_t first = 1;
    std::uint64_t last = 0;
    std::optional<doc_status> inject;
    std::vector<parked_read> parked;
  };

  static doc_reply ok(changes::batch&& b) {
    doc_reply r;
    r.status = doc_status::ok;
    r.body = changes::encode_batch(b);
    return r;
  }

  /// The answer to `req` now, or nullopt to keep waiting (unless `final`).
  std::optional<doc_reply> answer(shard_log& s, const doc_request& req, bool final) {
    if (s.inject) {
      doc_reply r;
      r.status = *s.inject;
      r.message = "injected";
      s.inject.reset();
      return r;
    }
    changes::batch b;
    b.first = s.log.empty() ? s.last + 1 : s.first;
    b.last = s.last;
    if (req.after == from_now) return ok(std::move(b));
    if (req.after > s.last || req.after + 1 < b.first) {
      doc_reply r;
      r.status = doc_status::gone;
      r.message = "trimmed";
      return r;
    }
    for (const auto& e : s.log)
      if (e.seq > req.after && b.events.size() < req.limit) b.events.push_back(e);
    if (b.events.empty() && req.wait_ms > 0 && !final) return std::nullopt;
    events_returned_ += b.events.size();
    return ok(std::move(b));
  }

  /// Answers the parked reads of `s` that can be answered (all of them when `final`).
  void wake(shard_log& s, bool final,
            std::vector<std::pair<actors::reply_sink_ptr, doc_reply>>& out) {
    auto now = std::chrono::steady_clock::now();
    std::vector<parked_read> keep;
    for (auto& p : s.parked) {
      auto r = answer(s, p.req, final || now >= p.deadline);
      if (r)
        out.emplace_back(std::move(p.sink), std::move(*r));
      else
        keep.push_back(std::move(p));
    }
    s.parked = std::move(keep);
  }

  void run_timer() {
    std::unique_lock<std::mutex> lock{mutex_};
    while (!stopped_) {
      cv_.wait_for(lock, milliseconds(10));
      if (stopped_) break;
      std::vector<std::pair<actors::reply_sink_ptr, doc_reply>> out;
      for (auto& s : shards_)
        wake(s, false, out);
      lock.unlock();
      for (auto& [sink, reply] : out)
        sink->deliver(std::move(reply));
      lock.lock();
    }
  }

  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<shard_log> shards_;
  std::size_t retention_;
  std::map<std::string, std::uint64_t> versions_;
  std::size_t max_parked_ = 0;
  std::size_t requests_ = 0;
  std::size_t events_returned_ = 0;
  bool stopped_ = false;
  std::thread timer_;
};

// -- the route ------------------------------------------------------------------------------

request make_request(bhttp::verb verb, std::string target,
                     std::vector<std::pair<std::string, std::string>> headers = {}) {
  request req{verb, target, 11};
  for (auto& [n, v] : headers)
    req.set(n, v);
  return req;
}

routed route_of(request req) {
  route_env env;
  return route(req, env);
}

std::string since_of(const routed& r) {
  auto* call = std::get_if<change_feed_call>(&r.outcome);
  return call ? call->since : "<not a change feed call>";
}

std::string error_code(const routed& r) {
  auto* res = std::get_if<response>(&r.outcome);
  if (!res) return "<no response>";
  auto v = boost::json::parse(res->body());
  return std::string(v.at("error").at("code").as_string());
}

std::string pos_text(std::vector<std::uint64_t> seqs) {
  changes::position p;
  p.seqs = std::move(seqs);
  return p.encode();
}

// Verifies the resume grammar: nothing or "now" is from now, "start"/"0" the oldest, an
// event id itself; the collection is passed on.
TEST(ChangeRoute, ResumePoints) {
  auto r = route_of(make_request(bhttp::verb::get, "/v1/collections/users/changes"));
  EXPECT_EQ(r.route, route_id::changes);
  ASSERT_TRUE(std::holds_alternative<change_feed_call>(r.outcome));
  EXPECT_EQ(std::get<change_feed_call>(r.outcome).collection, "users");
  EXPECT_EQ(since_of(r), "");
  EXPECT_EQ(
    since_of(route_of(make_request(bhttp::verb::get, "/v1/collections/u/changes?since=now"))), "");
  EXPECT_EQ(
    since_of(route_of(make_request(bhttp::verb::get, "/v1/collections/u/changes?since=start"))),
    "start");
  EXPECT_EQ(since_of(route_of(make_request(bhttp::verb::get, "/v1/collections/u/changes?since=0"))),
            "start");
  auto id = pos_text({3, 0, 9});
  EXPECT_EQ(
    since_of(route_of(make_request(bhttp::verb::get, "/v1/collections/u/changes?since=" + id))),
    id);
  EXPECT_EQ(since_of(route_of(make_request(bhttp::verb::get, "/v1/collections/u/changes",
                                           {{"Last-Event-ID", id}}))),
            id);
  // An empty query member is ignored.
  EXPECT_EQ(since_of(route_of(make_request(bhttp::verb::get, "/v1/collections/u/changes?"))), "");
}

// Verifies a node with changes.enabled=false answers the route 404 (it writes no events).
TEST(ChangeRoute, TurnedOffIsNotFound) {
  route_env env;
  env.changes_enabled = false;
  auto req = make_request(bhttp::verb::get, "/v1/collections/users/changes");
  auto r = route(req, env);
  auto* res = std::get_if<response>(&r.outcome);
  ASSERT_NE(res, nullptr);
  EXPECT_EQ(res->result(), bhttp::status::not_found);
  EXPECT_EQ(error_code(r), "not_found");
}

// Verifies Last-Event-ID wins over ?since= (an EventSource reconnecting to a URL with
// since=start must go on from its last event), and an empty header counts as none.
TEST(ChangeRoute, LastEventIdWins) {
  auto id = pos_text({1, 2});
  auto r = route_of(make_request(bhttp::verb::get, "/v1/collections/u/changes?since=start",
                                 {{"Last-Event-ID", id}}));
  EXPECT_EQ(since_of(r), id);
  auto empty = route_of(make_request(bhttp::verb::get, "/v1/collections/u/changes?since=start",
                                     {{"Last-Event-ID", ""}}));
  EXPECT_EQ(since_of(empty), "start");
  // The header wins even when it is the malformed one.
  auto bad = route_of(make_request(bhttp::verb::get, "/v1/collections/u/changes?since=start",
                                   {{"Last-Event-ID", "v1.%%%"}}));
  EXPECT_EQ(error_code(bad), "invalid_resume_point");
}

// Verifies malformed resume points are refused with 400 invalid_resume_point.
TEST(ChangeRoute, RefusesMalformedResumePoints) {
  for (std::string bad : {"v1.", "v1.AgUH==", "v2.AgUG", "yesterday", "-1", "v1.AoUABg", "Start",
                          "v1.AgUGBw", "v1.________", ""}) {
    auto r = route_of(make_request(bhttp::verb::get, "/v1/collections/u/changes?since=" + bad));
    EXPECT_EQ(error_code(r), "invalid_resume_point") << "since=" << bad;
    auto* res = std::get_if<response>(&r.outcome);
    ASSERT_TRUE(res);
    EXPECT_EQ(res->result(), bhttp::status::bad_request);
    if (bad.empty()) continue;
    auto h = route_of(
      make_request(bhttp::verb::get, "/v1/collections/u/changes", {{"Last-Event-ID", bad}}));
    EXPECT_EQ(error_code(h), "invalid_resume_point") << "Last-Event-ID: " << bad;
  }
  // A shard count over the cluster maximum (65537) cannot name any cluster.
  changes::position huge;
  huge.seqs.assign(65537, 0);
  EXPECT_EQ(error_code(route_of(
              make_request(bhttp::verb::get, "/v1/collections/u/changes?since=" + huge.encode()))),
            "invalid_resume_point");
}

// Verifies unknown, repeated and valueless parameters, bad names and other methods.
TEST(ChangeRoute, RefusesOtherInput) {
  EXPECT_EQ(
    error_code(route_of(make_request(bhttp::verb::get, "/v1/collections/u/changes?limit=5"))),
    "unknown_parameter");
  EXPECT_EQ(error_code(route_of(
              make_request(bhttp::verb::get, "/v1/collections/u/changes?since=0&since=start"))),
            "invalid_resume_point");
  EXPECT_EQ(error_code(route_of(make_request(bhttp::verb::get, "/v1/collections/u/changes?since"))),
            "invalid_resume_point");
  EXPECT_EQ(error_code(route_of(make_request(bhttp::verb::get, "/v1/collections/b%20d/changes"))),
            "invalid_name");
  EXPECT_EQ(error_code(route_of(make_request(
              bhttp::verb::get, "/v1/collections/" + std::string(65, 'a') + "/changes"))),
            "invalid_name");
  for (auto verb : {bhttp::verb::head, bhttp::verb::post, bhttp::verb::put, bhttp::verb::delete_}) {
    auto r = route_of(make_request(verb, "/v1/collections/u/changes"));
    EXPECT_EQ(error_code(r), "method_not_allowed");
    auto* res = std::get_if<response>(&r.outcome);
    ASSERT_TRUE(res);
    EXPECT_EQ((*res)[bhttp::field::allow], "GET");
  }
}

// -- the stream -----------------------------------------------------------------------------

struct stream_options {
  std::uint32_t shards = 2;
  std::size_t retention = 1'000'000;
  std::size_t max_buffer_bytes = 1u << 20;
  std::uint32_t heartbeat_ms = 15'000;
  std::uint32_t idle_timeout_ms = 60'000;
};

/// One received event, decoded.
struct got_event {
  std::string type;
  std::string id;
  boost::json::value data;
  std::vector<std::uint64_t> seqs; ///< the position in `id`
};

class ChangeStreamTest : public ::testing::Test {
protected:
  void start(stream_options o = {}) {
    opts = o;
    feed = std::make_unique<fake_feed>(o.shards, o.retention);
    settings.port = 0;
    settings.threads = 2;
    settings.idle_timeout_ms = o.idle_timeout_ms;
    route_env env;
    env.ready = [] { return true; };
    env.changes_max_buffer_bytes = o.max_buffer_bytes;
    env.changes_heartbeat_ms = o.heartbeat_ms;
    srv = std::make_unique<server>(settings, *feed, std::move(env), metrics, server_logs{});
    port = srv->listen();
    runner = std::thread([this] { srv->run(); });
  }

  void TearDown() override {
    if (!srv) return;
    srv->drain();
    runner.join();
    // Every sink goes back before the server (and its io_context) does.
    feed->shutdown();
    srv.reset();
  }

  static std::string target(std::string_view query = {}) {
    return "/v1/collections/c1/changes" + std::string(query);
  }

  /// Opens a stream and reads its head; asserts a 200.
  std::unique_ptr<feed_client> open(std::string_view query = {}, feed_client::headers h = {},
                                    int receive_buffer = 0) {
    auto c = std::make_unique<feed_client>(port, target(query), h, receive_buffer);
    EXPECT_TRUE(c->read_head());
    EXPECT_EQ(c->status, 200u) << c->read_body();
    return c;
  }

  got_event decode(const feed_event& e) {
    got_event g{e.type, e.id, {}, {}};
    boost::system::error_code ec;
    g.data = boost::json::parse(e.data, ec);
    EXPECT_FALSE(ec) << e.data;
    if (!e.id.empty()) {
      auto p = changes::position::decode(e.id, opts.shards);
      EXPECT_TRUE(p) << e.id;
      if (p) g.seqs = p->seqs;
    }
    return g;
  }

  /// The next `n` events; fewer when the stream ends or `patience` passes.
  std::vector<got_event> take(feed_client& c, std::size_t n,
                              milliseconds patience = milliseconds(10000)) {
    std::vector<got_event> out;
    auto deadline = std::chrono::steady_clock::now() + patience;
    while (out.size() < n) {
      auto left =
        std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      auto e = c.next(left);
      if (!e) break;
      out.push_back(decode(*e));
    }
    return out;
  }

  /// Asserts nothing but comments arrive for `quiet`.
  void expect_no_event(feed_client& c, milliseconds quiet = milliseconds(300)) {
    auto e = c.next(quiet);
    EXPECT_FALSE(e) << "unexpected event " << e->type << " " << e->data;
  }

  /// Waits (bounded) until the server counts no open connection: every stream ended.
  bool all_closed(milliseconds patience = milliseconds(5000)) {
    auto deadline = std::chrono::steady_clock::now() + patience;
    while (std::chrono::steady_clock::now() < deadline) {
      if (metrics.connections.value() == 0) return true;
      std::this_thread::sleep_for(milliseconds(10));
    }
    return false;
  }

  stream_options opts;
  config::http_settings settings;
  request_metrics metrics;
  std::unique_ptr<fake_feed> feed;
  std::unique_ptr<server> srv;
  std::thread runner;
  std::uint16_t port = 0;
};

// Verifies the response head: 200, text/event-stream, no-cache, Connection: close, no
// Content-Length, an X-Request-Id; then an id-only block with the starting position.
TEST_F(ChangeStreamTest, HeadAndStartingPosition) {
  start();
  feed->write(0, event_kind::put, "a");
  feed->write(0, event_kind::put, "b");
  feed->write(1, event_kind::put, "c");
  auto c = open({}, {{"X-Request-Id", "feed-1"}});
  EXPECT_EQ(c->header("content-type"), "text/event-stream");
  EXPECT_EQ(c->header("cache-control"), "no-cache");
  EXPECT_EQ(c->header("connection"), "close");
  EXPECT_EQ(c->header("x-request-id"), "feed-1");
  EXPECT_FALSE(c->header("content-length"));
  EXPECT_FALSE(c->header("transfer-encoding"));
  // From now: the writes before the stream are not sent, and the position says so.
  expect_no_event(*c);
  auto p = changes::position::decode(c->last_id, 2);
  ASSERT_TRUE(p) << c->last_id;
  EXPECT_EQ(p->seqs, (std::vector<std::uint64_t>{2, 1}));
}

// Verifies puts and deletes arrive in commit order with their data and an id that is the
// position after each; a doc with line breaks is split into data lines and joined back.
TEST_F(ChangeStreamTest, StreamsPutsAndDeletesInOrder) {
  start();
  auto c = open();
  feed->write(0, event_kind::put, "a", R"({"name":"Ada"})");
  feed->write(1, event_kind::put, "x:1", "{\n\"multi\":\r\n\"line\"}");
  feed->write(0, event_kind::put, "a", R"({"name":"Ada L."})");
  feed->write(0, event_kind::del, "a");
  auto got = take(*c, 4);
  ASSERT_EQ(got.size(), 4u);
  // Shard 0's events in order; shard 1's between them in some order.
  std::vector<got_event> s0;
  for (auto& g : got)
    if (g.data.at("id").as_string() == "a") s0.push_back(g);
  ASSERT_EQ(s0.size(), 3u);
  EXPECT_EQ(s0[0].type, "put");
  EXPECT_EQ(s0[0].data.at("version").to_number<int>(), 1);
  EXPECT_EQ(s0[0].data.at("doc").at("name").as_string(), "Ada");
  EXPECT_EQ(s0[1].data.at("doc").at("name").as_string(), "Ada L.");
  EXPECT_EQ(s0[2].type, "delete");
  EXPECT_EQ(s0[2].data.at("version").to_number<int>(), 3);
  EXPECT_FALSE(s0[2].data.as_object().contains("doc"));
  EXPECT_EQ(s0[0].seqs[0], 1u);
  EXPECT_EQ(s0[2].seqs[0], 3u);
  for (auto& g : got)
    if (g.data.at("id").as_string() == "x:1") {
      EXPECT_EQ(g.data.at("doc").at("multi").as_string(), "line");
      EXPECT_EQ(g.seqs[1], 1u);
    }
  // The last id covers everything.
  EXPECT_EQ(changes::position::decode(got.back().id, 2)->seqs, (std::vector<std::uint64_t>{3, 1}));
  EXPECT_LE(feed->max_parked(), 1u) << "more than one read out per shard";
}

// Verifies a resume with Last-Event-ID gets exactly the events after it, writes made
// while disconnected included, none twice.
TEST_F(ChangeStreamTest, ResumeGetsExactlyTheRest) {
  start();
  for (int i = 0; i < 6; ++i)
    feed->write(static_cast<std::uint32_t>(i % 2), event_kind::put, "d" + std::to_string(i));
  std::string resume;
  {
    auto c = open("?since=start");
    auto got = take(*c, 6);
    ASSERT_EQ(got.size(), 6u);
    resume = got[2].id; // stop after the third event; the rest must come again
  }
  for (int i = 6; i < 10; ++i)
    feed->write(static_cast<std::uint32_t>(i % 2), event_kind::put, "d" + std::to_string(i));
  auto c = open({}, {{"Last-Event-ID", resume}});
  auto got = take(*c, 7);
  ASSERT_EQ(got.size(), 7u);
  expect_no_event(*c);
  std::set<std::string> ids;
  for (auto& g : got)
    ids.insert(std::string(g.data.at("id").as_string()));
  EXPECT_EQ(ids.size(), 7u);
  auto before = changes::position::decode(resume, 2)->seqs;
  for (auto& g : got) {
    // Each event is after the resume point on its shard.
    bool newer = g.seqs[0] > before[0] || g.seqs[1] > before[1];
    EXPECT_TRUE(newer) << g.id;
  }
  EXPECT_EQ(got.back().seqs, (std::vector<std::uint64_t>{5, 5}));
}

// Verifies ?since=start (and 0) replays what retention kept, from the oldest kept event.
TEST_F(ChangeStreamTest, SinceStartReplaysRetention) {
  stream_options o;
  o.retention = 5;
  start(o);
  for (int i = 0; i < 8; ++i)
    feed->write(0, event_kind::put, "k" + std::to_string(i));
  for (std::string q : {"?since=start", "?since=0"}) {
    auto c = open(q);
    auto got = take(*c, 5);
    ASSERT_EQ(got.size(), 5u) << q;
    EXPECT_EQ(got.front().seqs[0], 4u);
    EXPECT_EQ(got.back().seqs[0], 8u);
    EXPECT_EQ(got.front().data.at("id").as_string(), "k3");
    expect_no_event(*c);
  }
}

// Verifies a resume point older than retention is answered 410 gone before any stream.
TEST_F(ChangeStreamTest, TrimmedResumePointIsGone) {
  stream_options o;
  o.retention = 5;
  start(o);
  for (int i = 0; i < 20; ++i)
    feed->write(0, event_kind::put, "k");
  feed_client c{port, target("?since=" + pos_text({1, 0}))};
  ASSERT_TRUE(c.read_head());
  EXPECT_EQ(c.status, 410u);
  auto body = boost::json::parse(c.read_body());
  EXPECT_EQ(body.at("error").at("code").as_string(), "gone");
  EXPECT_EQ(c.header("content-type"), "application/json");
  EXPECT_TRUE(c.wait_closed(milliseconds(5000)));
  // A resume point ahead of the log (this log never had it) is gone as well.
  feed_client ahead{port, target("?since=" + pos_text({99, 0}))};
  ASSERT_TRUE(ahead.read_head());
  EXPECT_EQ(ahead.status, 410u);
}

// Verifies a position for another shard count is 400, and an unavailable shard at the
// start is 503 shard_unavailable with Retry-After.
TEST_F(ChangeStreamTest, RefusedBeforeStreaming) {
  start();
  feed_client other{port, target("?since=" + pos_text({1, 2, 3}))};
  ASSERT_TRUE(other.read_head());
  EXPECT_EQ(other.status, 400u);
  EXPECT_EQ(boost::json::parse(other.read_body()).at("error").at("code").as_string(),
            "invalid_resume_point");
  feed->inject(1, doc_status::shard_unavailable);
  feed_client down{port, target()};
  ASSERT_TRUE(down.read_head());
  EXPECT_EQ(down.status, 503u);
  EXPECT_EQ(boost::json::parse(down.read_body()).at("error").at("code").as_string(),
            "shard_unavailable");
  EXPECT_EQ(down.header("retry-after"), "1");
  EXPECT_TRUE(all_closed());
}

// Verifies a shard that answers shard_unavailable mid-stream is asked again later and
// the stream goes on without losing its events.
TEST_F(ChangeStreamTest, RetriesUnavailableShardMidStream) {
  start();
  auto c = open();
  feed->inject(0, doc_status::shard_unavailable); // answers the parked read at once
  feed->write(0, event_kind::put, "after-outage");
  feed->write(1, event_kind::put, "other");
  auto got = take(*c, 2, milliseconds(5000));
  ASSERT_EQ(got.size(), 2u);
  std::set<std::string> ids;
  for (auto& g : got)
    ids.insert(std::string(g.data.at("id").as_string()));
  EXPECT_EQ(ids, (std::set<std::string>{"after-outage", "other"}));
  EXPECT_FALSE(c->closed());
}

// Verifies a shard that says gone mid-stream (trimmed under the stream) ends it with a
// `gone` event.
TEST_F(ChangeStreamTest, GoneMidStreamEndsWithGoneEvent) {
  start();
  auto c = open();
  feed->inject(1, doc_status::gone);
  auto got = take(*c, 1, milliseconds(5000));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].type, "gone");
  EXPECT_TRUE(got[0].data.as_object().contains("message"));
  EXPECT_TRUE(c->wait_closed(milliseconds(5000)));
  EXPECT_TRUE(all_closed());
}

// Verifies a stream from "start" that sent nothing of a shard yet takes a gone (its
// oldest events trimmed before it read them) as "start from the oldest kept now" and
// goes on; once an event of the shard was sent, gone ends the stream.
TEST_F(ChangeStreamTest, StartStreamGoesOnAfterTrimBeforeFirstRead) {
  start();
  auto c = open("?since=start");
  feed->inject(0, doc_status::gone);
  feed->write(0, event_kind::put, "kept");
  auto got = take(*c, 1, milliseconds(5000));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].type, "put");
  EXPECT_EQ(got[0].data.at("id").as_string(), "kept");
  feed->inject(0, doc_status::gone);
  auto end = take(*c, 1, milliseconds(5000));
  ASSERT_EQ(end.size(), 1u);
  EXPECT_EQ(end[0].type, "gone");
  EXPECT_TRUE(c->wait_closed(milliseconds(5000)));
}

// Verifies an idle stream gets keep-alive comments every heartbeat.
TEST_F(ChangeStreamTest, KeepAliveWhenIdle) {
  stream_options o;
  o.heartbeat_ms = 150;
  start(o);
  auto c = open();
  expect_no_event(*c, milliseconds(800));
  EXPECT_GE(c->comments, 2u);
  // Events still flow after the long polls timed out and were asked again.
  feed->write(1, event_kind::put, "late");
  auto got = take(*c, 1, milliseconds(5000));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].data.at("id").as_string(), "late");
}

// Verifies a client that leaves ends its stream at once although its reads are parked
// at the shards (a long heartbeat: no write would notice).
TEST_F(ChangeStreamTest, ClientLeavingEndsStream) {
  start();
  {
    auto c = open();
    EXPECT_EQ(metrics.connections.value(), 1);
  }
  EXPECT_TRUE(all_closed(milliseconds(3000)));
  // Late replies to the ended stream are dropped.
  feed->write(0, event_kind::put, "nobody");
  EXPECT_TRUE(all_closed(milliseconds(100)));
}

// Verifies a client that stops reading while many events come is cut with an overflow
// event naming its resume point, and resuming there gets the rest: every event exactly
// once, in order per shard. At most one read per shard is ever out.
TEST_F(ChangeStreamTest, OverflowCutsSlowClientWithResumePoint) {
  stream_options o;
  o.shards = 4;
  o.max_buffer_bytes = 4096;
  start(o);
  auto c = open({}, {}, 4096);
  const std::string doc = R"({"pad":")" + std::string(1000, 'x') + R"("})";
  constexpr int total = 2000; // about 2 MB
  std::map<std::uint32_t, std::uint64_t> last_seq;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < total; ++i) {
    auto shard = static_cast<std::uint32_t>(i % 4);
    last_seq[shard] = feed->write(shard, event_kind::put, "d" + std::to_string(i), doc);
  }
  auto write_time = std::chrono::steady_clock::now() - t0;
  EXPECT_LT(write_time, std::chrono::seconds(5)) << "the writers were held up by the stream";
  std::this_thread::sleep_for(milliseconds(200));
  std::vector<got_event> first;
  std::optional<got_event> overflow;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    auto e = c->next(milliseconds(2000));
    if (!e) break;
    auto g = decode(*e);
    if (g.type == "overflow") {
      overflow = g;
      break;
    }
    first.push_back(std::move(g));
  }
  ASSERT_TRUE(overflow) << "no overflow event after " << first.size() << " events";
  EXPECT_TRUE(c->wait_closed(milliseconds(5000)));
  EXPECT_LT(first.size(), static_cast<std::size_t>(total));
  std::string resume(overflow->data.at("resume").as_string());
  EXPECT_EQ(resume, first.empty() ? c->last_id : first.back().id);
  // Resume: the rest, no gap, no repeat, on one more connection (a replay is paced by
  // the client's reading and does not overflow).
  auto again = open({}, {{"Last-Event-ID", resume}});
  auto rest = take(*again, static_cast<std::size_t>(total) - first.size(), milliseconds(20000));
  expect_no_event(*again);
  std::map<std::uint32_t, std::uint64_t> seen;
  std::size_t n = 0;
  for (auto* part : {&first, &rest})
    for (auto& g : *part) {
      ASSERT_EQ(g.type, "put");
      ++n;
      // Within a shard, seqs go up by one: nothing skipped, nothing twice.
      auto id = std::string(g.data.at("id").as_string());
      auto i = std::stoi(id.substr(1));
      auto shard = static_cast<std::uint32_t>(i % 4);
      EXPECT_EQ(g.seqs[shard], seen[shard] + 1) << id;
      seen[shard] = g.seqs[shard];
    }
  EXPECT_EQ(n, static_cast<std::size_t>(total));
  EXPECT_EQ(seen, last_seq);
  EXPECT_LE(feed->max_parked(), 1u);
}

// Verifies a replay much larger than the byte limit is paced by the client's reading:
// while the client reads nothing, the stream reads little of the backlog from the shards;
// once it reads, everything arrives on the one connection, without an overflow.
TEST_F(ChangeStreamTest, ReplayIsPacedByTheClient) {
  stream_options o;
  o.max_buffer_bytes = 16 * 1024;
  start(o);
  const std::string doc = R"({"pad":")" + std::string(1000, 'y') + R"("})";
  // About 11 MB, 700 times the limit and more than loopback socket buffers take (the
  // sender's grows to tcp_wmem's maximum, 4 MiB by default).
  constexpr int total = 10000;
  for (int i = 0; i < total; ++i)
    feed->write(static_cast<std::uint32_t>(i % 2), event_kind::put, "r" + std::to_string(i), doc);
  auto c = open("?since=start", {}, 4096);
  std::this_thread::sleep_for(milliseconds(500));
  // What the socket buffers hold plus the queue: far from the whole backlog.
  EXPECT_LT(feed->events_returned(), static_cast<std::size_t>(total) / 2);
  auto got = take(*c, total, milliseconds(60000));
  ASSERT_EQ(got.size(), static_cast<std::size_t>(total));
  for (auto& g : got)
    ASSERT_EQ(g.type, "put");
  EXPECT_FALSE(c->closed());
  EXPECT_EQ(got.back().seqs, (std::vector<std::uint64_t>{5000, 5000}));
}

// Verifies a client that takes no bytes for http.idle_timeout_ms is cut (no overflow:
// the queue stopped growing), and resuming from its last event gets the rest.
TEST_F(ChangeStreamTest, StalledClientIsCut) {
  stream_options o;
  o.max_buffer_bytes = 1u << 20;
  o.idle_timeout_ms = 300;
  o.shards = 1;
  start(o);
  auto c = open({}, {}, 4096);
  const std::string doc = R"({"pad":")" + std::string(1000, 'z') + R"("})";
  constexpr int total = 3000; // 3 MB: more than the socket buffers and the queue hold
  for (int i = 0; i < total; ++i)
    feed->write(0, event_kind::put, "s" + std::to_string(i), doc);
  std::this_thread::sleep_for(milliseconds(1500));
  EXPECT_TRUE(all_closed(milliseconds(3000))) << "the stalled stream was not cut";
  std::vector<got_event> first;
  while (auto e = c->next(milliseconds(2000)))
    first.push_back(decode(*e));
  EXPECT_TRUE(c->closed());
  ASSERT_LT(first.size(), static_cast<std::size_t>(total));
  for (auto& g : first)
    ASSERT_NE(g.type, "overflow");
  auto again = open({}, {{"Last-Event-ID", c->last_id}});
  auto rest = take(*again, static_cast<std::size_t>(total) - first.size(), milliseconds(20000));
  ASSERT_EQ(first.size() + rest.size(), static_cast<std::size_t>(total));
  EXPECT_EQ(rest.front().seqs[0], (first.empty() ? 0 : first.back().seqs[0]) + 1);
  EXPECT_EQ(rest.back().seqs[0], static_cast<std::uint64_t>(total));
}

} // namespace
} // namespace shoal::http
