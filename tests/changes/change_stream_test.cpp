// SPDX-License-Identifier: Apache-2.0
// The change feed's HTTP edge against a fake shard side: the route's checks (http::route
// through the edge harness of tests/support/edge.hpp) and the Server-Sent Events stream
// (http/change_stream.cpp) served by a real http::server whose protocol::shard_client is
// `fake_feed`, an in-memory change log per shard that answers changes::changes_read as
// the changes module does (long polls, bounds, gone, "from now"). The fake lets these
// tests make every situation on demand: a shard that is down, a resume point trimmed
// under a stream, a client that stops reading. Nothing sleeps: a test waits, with a
// deadline, for what it can observe (a read arriving at the fake, reads parked there,
// bytes from the socket, a log line of the server).
#include <algorithm>
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
#include <type_traits>
#include <utility>
#include <vector>

#include <boost/json.hpp>
#include <gtest/gtest.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/base_sink.h>

#include "changes/events.hpp"
#include "changes/messages.hpp"
#include "http/request_metrics.hpp"
#include "http/router.hpp"
#include "http/server.hpp"
#include "protocol/shard_client.hpp"
#include "tests/support/edge.hpp"
#include "tests/support/feed_client.hpp"

namespace shoal::http {
namespace {

namespace bhttp = boost::beast::http;
using changes::event;
using changes::event_kind;
using std::chrono::milliseconds;
using test::feed_client;
using test::feed_event;

constexpr std::uint64_t from_now = std::numeric_limits<std::uint64_t>::max();

// -- the fake shard side ------------------------------------------------------------------

/// Change logs of one collection on `shards` shards, answering changes::changes_read as
/// the changes module does: events after `after` (at most `limit`), a long poll of up to
/// `wait_ms` when there are none, `gone` for a trimmed or unknown resume point, the
/// bounds alone for "from now". Every other request is refused. Answers are delivered
/// outside the lock, from the asking thread (an answer at once), the writing thread (a
/// write wakes parked reads) or the fake's timer thread (waits that ran out). Each
/// change of state (a read arriving, parking or being answered) is signalled to the
/// tests that wait for one.
class fake_feed final : public protocol::client_impl<fake_feed> {
public:
  fake_feed(std::uint32_t shards, std::size_t retention)
      : shards_(shards), retention_(retention), placement_{cluster::shard_map{shards}, {}, {}} {
    timer_ = std::thread([this] { run_timer(); });
  }

  ~fake_feed() override {
    shutdown();
  }

  std::uint32_t shard_count() const noexcept override {
    return static_cast<std::uint32_t>(shards_.size());
  }

  const cluster::placement& placement() const noexcept override {
    return placement_;
  }

  void lease(jobs::queue_lease&&, core::reply_to<jobs::leased_jobs> to) override {
    to.deliver(core::error{core::errc::internal, "the fake shards have no broker"});
  }

  /// protocol::client_impl's sender of every request type.
  template <class R>
  void send_to(std::uint32_t shard, R&& req, core::reply_to<protocol::reply_of<R>> to) {
    if constexpr (std::is_same_v<R, changes::changes_read>)
      read(shard, std::move(req), std::move(to));
    else
      to.deliver(core::error{core::errc::internal, "the fake shards answer changes reads only"});
  }

  /// One read as the fake received it.
  struct read_seen {
    std::uint32_t shard;
    changes::changes_read req;
  };

  /// Commits a write of document `id` on `shard`: the next seq, the document's next
  /// version. Wakes the reads parked on the shard.
  std::uint64_t write(std::uint32_t shard, event_kind kind, const std::string& id,
                      std::string doc = {}) {
    std::vector<answer_out> out;
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
    deliver(out);
    return seq;
  }

  /// The next answer of `shard` is the error `code` (a parked read gets it at once).
  void inject(std::uint32_t shard, core::errc code) {
    std::vector<answer_out> out;
    {
      std::lock_guard<std::mutex> guard{mutex_};
      auto& s = shards_[shard];
      s.inject = code;
      wake(s, false, out);
    }
    deliver(out);
  }

  /// Waits until `pred()` holds, looked at under the fake's lock whenever its state
  /// changes; false when `patience` passes first.
  template <class Pred>
  bool wait_until(Pred pred, milliseconds patience = milliseconds(10000)) {
    std::unique_lock<std::mutex> lock{mutex_};
    return changed_.wait_for(lock, patience, pred);
  }

  /// Every read received so far, for a wait_until predicate (which runs under the lock).
  const std::vector<read_seen>& reads_while_waiting() const noexcept {
    return reads_;
  }

  /// Waits until `n` reads are parked on `shard`.
  bool wait_parked(std::uint32_t shard, std::size_t n = 1,
                   milliseconds patience = milliseconds(10000)) {
    return wait_until([&] { return shards_[shard].parked.size() >= n; }, patience);
  }

  /// Waits until a read is parked on every shard: a stream that is at the head everywhere.
  bool wait_all_parked(milliseconds patience = milliseconds(10000)) {
    return wait_until(
      [&] {
        return std::all_of(shards_.begin(), shards_.end(),
                           [](const shard_log& s) { return !s.parked.empty(); });
      },
      patience);
  }

  /// Waits until `n` reads arrived in all.
  bool wait_reads(std::size_t n, milliseconds patience = milliseconds(10000)) {
    return wait_until([&] { return reads_.size() >= n; }, patience);
  }

  /// Waits until the answers handed out held `n` events in all.
  bool wait_events_returned(std::size_t n, milliseconds patience = milliseconds(10000)) {
    return wait_until([&] { return events_returned_ >= n; }, patience);
  }

  /// Reads parked on `shard` now.
  std::size_t parked(std::uint32_t shard) {
    std::lock_guard<std::mutex> guard{mutex_};
    return shards_[shard].parked.size();
  }

  /// Most reads parked on one shard at once so far.
  std::size_t max_parked() {
    std::lock_guard<std::mutex> guard{mutex_};
    return max_parked_;
  }

  /// Every read received so far, in order.
  std::vector<read_seen> reads() {
    std::lock_guard<std::mutex> guard{mutex_};
    return reads_;
  }

  /// Events handed out in answers so far.
  std::size_t events_returned() {
    std::lock_guard<std::mutex> guard{mutex_};
    return events_returned_;
  }

  /// Stops the timer thread and answers every parked read (its stream may be gone), so
  /// the fake holds no answer of the server's any more.
  void shutdown() {
    {
      std::lock_guard<std::mutex> guard{mutex_};
      if (stopped_) return;
      stopped_ = true;
    }
    changed_.notify_all();
    if (timer_.joinable()) timer_.join();
    std::vector<answer_out> out;
    {
      std::lock_guard<std::mutex> guard{mutex_};
      for (auto& s : shards_)
        wake(s, true, out);
    }
    deliver(out);
  }

private:
  using clock = std::chrono::steady_clock;
  using answer = core::result<changes::batch>;
  using answer_out = std::pair<core::reply_to<changes::batch>, answer>;

  struct parked_read {
    changes::changes_read req;
    core::reply_to<changes::batch> to;
    clock::time_point deadline;
  };

  struct shard_log {
    std::vector<event> log;
    std::uint64_t first = 1;
    std::uint64_t last = 0;
    std::optional<core::errc> inject;
    std::vector<parked_read> parked;
  };

  void read(std::uint32_t shard, changes::changes_read&& req, core::reply_to<changes::batch> to) {
    std::optional<answer> now;
    {
      std::lock_guard<std::mutex> guard{mutex_};
      reads_.push_back({shard, req});
      if (shard >= shards_.size()) {
        now = core::error{core::errc::internal, "no such shard"};
      } else {
        auto& s = shards_[shard];
        now = answer_now(s, req, false);
        if (!now) {
          auto deadline = clock::now() + milliseconds(req.wait_ms);
          s.parked.push_back({std::move(req), std::move(to), deadline});
          max_parked_ = std::max(max_parked_, s.parked.size());
        }
      }
    }
    changed_.notify_all();
    if (now) to.deliver(std::move(*now));
  }

  /// The answer to `req` now, or nullopt to keep waiting (unless `final`).
  std::optional<answer> answer_now(shard_log& s, const changes::changes_read& req, bool final) {
    if (s.inject) {
      core::error e{*s.inject, "injected"};
      s.inject.reset();
      return answer{std::move(e)};
    }
    changes::batch b;
    b.first = s.log.empty() ? s.last + 1 : s.first;
    b.last = s.last;
    if (req.after == from_now) return answer{std::move(b)};
    if (req.after > s.last || req.after + 1 < b.first)
      return answer{core::error{core::errc::gone, "trimmed"}};
    for (const auto& e : s.log)
      if (e.seq > req.after && b.events.size() < req.limit) b.events.push_back(e);
    if (b.events.empty() && req.limit > 0 && req.wait_ms > 0 && !final) return std::nullopt;
    events_returned_ += b.events.size();
    return answer{std::move(b)};
  }

  /// Answers the parked reads of `s` that can be answered (all of them when `final`).
  void wake(shard_log& s, bool final, std::vector<answer_out>& out) {
    auto now = clock::now();
    std::vector<parked_read> keep;
    for (auto& p : s.parked) {
      auto r = answer_now(s, p.req, final || now >= p.deadline);
      if (r)
        out.emplace_back(std::move(p.to), std::move(*r));
      else
        keep.push_back(std::move(p));
    }
    s.parked = std::move(keep);
  }

  void deliver(std::vector<answer_out>& out) {
    changed_.notify_all();
    for (auto& [to, r] : out)
      to.deliver(std::move(r));
  }

  /// Answers each parked read when its wait runs out: sleeps until the earliest deadline
  /// or until the state changes.
  void run_timer() {
    std::unique_lock<std::mutex> lock{mutex_};
    while (!stopped_) {
      std::optional<clock::time_point> next;
      for (const auto& s : shards_)
        for (const auto& p : s.parked)
          if (!next || p.deadline < *next) next = p.deadline;
      if (next)
        changed_.wait_until(lock, *next);
      else
        changed_.wait(lock);
      if (stopped_) break;
      std::vector<answer_out> out;
      for (auto& s : shards_)
        wake(s, false, out);
      if (out.empty()) continue;
      lock.unlock();
      deliver(out);
      lock.lock();
    }
  }

  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<shard_log> shards_;
  std::size_t retention_;
  cluster::placement placement_;
  std::map<std::string, std::uint64_t> versions_;
  std::vector<read_seen> reads_;
  std::size_t max_parked_ = 0;
  std::size_t events_returned_ = 0;
  bool stopped_ = false;
  std::thread timer_;
};

/// A log sink that signals each line the server logs: a change stream logs "ended" as it
/// closes, just before it is released.
class signal_sink final : public spdlog::sinks::base_sink<std::mutex> {
public:
  std::mutex lines_mutex;
  std::condition_variable line_logged;
  std::size_t lines = 0;

protected:
  void sink_it_(const spdlog::details::log_msg&) override {
    {
      std::lock_guard<std::mutex> guard{lines_mutex};
      ++lines;
    }
    line_logged.notify_all();
  }
  void flush_() override {}
};

// -- the server -----------------------------------------------------------------------------

std::string pos_text(std::vector<std::uint64_t> seqs) {
  changes::position p;
  p.seqs = std::move(seqs);
  return p.encode();
}

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

/// A real http::server on a loopback port over a fake_feed.
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
    sink = std::make_shared<signal_sink>();
    auto log = std::make_shared<spdlog::logger>("http", sink);
    log->set_level(spdlog::level::debug);
    server_logs logs;
    logs.http = std::move(log);
    srv = std::make_unique<server>(settings, *feed, std::move(env), metrics, std::move(logs));
    port = srv->listen();
    runner = std::thread([this] { srv->run(); });
  }

  void TearDown() override {
    if (!srv) return;
    srv->drain();
    runner.join();
    // Every answer goes back before the server (and its io_context) does.
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

  /// Asserts nothing but comments and id-only blocks arrive for `quiet`.
  void expect_no_event(feed_client& c, milliseconds quiet = milliseconds(300)) {
    auto e = c.next(quiet);
    EXPECT_FALSE(e) << "unexpected event " << e->type << " " << e->data;
  }

  /// Reads the stream until `n` comments (keep-alives) arrived in all, asserting that no
  /// event comes meanwhile; false when `patience` passes first.
  bool wait_comments(feed_client& c, std::size_t n, milliseconds patience) {
    auto deadline = std::chrono::steady_clock::now() + patience;
    while (c.comments < n) {
      auto left =
        std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || c.closed()) return false;
      // next() counts the comments it reads; it returns at the first event, or after the
      // slice, so the count is looked at again.
      auto e = c.next(std::min(left, milliseconds(50)));
      EXPECT_FALSE(e) << "unexpected event " << e->type << " " << e->data;
    }
    return true;
  }

  /// Waits (bounded) until the server counts no open connection: every stream ended. A
  /// stream logs as it closes and is released right after, so each log line wakes the
  /// wait, and a short slice covers the release that follows the last one.
  bool all_closed(milliseconds patience = milliseconds(5000)) {
    auto deadline = std::chrono::steady_clock::now() + patience;
    std::unique_lock<std::mutex> lock{sink->lines_mutex};
    while (metrics.connections.value() != 0) {
      auto now = std::chrono::steady_clock::now();
      if (now >= deadline) return false;
      sink->line_logged.wait_until(lock, std::min(deadline, now + milliseconds(5)));
    }
    return true;
  }

  stream_options opts;
  config::http_settings settings;
  request_metrics metrics;
  std::shared_ptr<signal_sink> sink;
  std::unique_ptr<fake_feed> feed;
  std::unique_ptr<server> srv;
  std::thread runner;
  std::uint16_t port = 0;
};

// -- the route ------------------------------------------------------------------------------

request make_request(bhttp::verb verb, std::string target,
                     std::vector<std::pair<std::string, std::string>> headers = {}) {
  request req{verb, target, 11};
  for (auto& [n, v] : headers)
    req.set(n, v);
  return req;
}

std::string error_code(const routed& r) {
  auto* res = std::get_if<response>(&r.outcome);
  if (!res) return "<no response>";
  auto v = boost::json::parse(res->body());
  return std::string(v.at("error").at("code").as_string());
}

/// The route, called without a socket (http::route through the edge harness), and what
/// the stream it hands the connection to makes of a resume point, observed on a real
/// server: the collection and the position its first reads start from.
class ChangeRoute : public ChangeStreamTest {
protected:
  routed route_of(request req) {
    return edge.go(std::move(req));
  }

  /// What a stream started by `req` reads.
  struct stream_start {
    std::string collection;
    /// "" (from now), "start" (from the oldest kept event) or the position it resumes.
    std::string since;
  };

  /// Routes `req`, which must be handed over to a change stream, then sends it to the
  /// server (three shards whose logs hold 4, 2 and 10 events, none trimmed): the first
  /// read each shard gets after the bounds is at the stream's starting position.
  stream_start stream_of(request req) {
    auto r = route_of(req);
    EXPECT_EQ(r.route, route_id::changes);
    if (!std::holds_alternative<take_over>(r.outcome))
      return {"", "<not handed to a stream: " + error_code(r) + ">"};
    if (!srv) {
      stream_options o;
      o.shards = 3;
      start(o);
      for (std::uint32_t shard = 0; shard < 3; ++shard)
        for (std::uint64_t i = 0; i < log_sizes[shard]; ++i)
          feed->write(shard, event_kind::put, "d" + std::to_string(i));
    }
    const auto from = feed->reads().size();
    feed_client::headers headers;
    for (const auto& field : req)
      headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    stream_start out;
    {
      feed_client c{port, std::string(req.target()), headers};
      EXPECT_TRUE(c.read_head());
      EXPECT_EQ(c.status, 200u);
      // One read of the bounds per shard, then one at the starting position.
      std::vector<std::optional<std::uint64_t>> at(3);
      auto started = [&] {
        return std::all_of(at.begin(), at.end(), [](const auto& a) { return a.has_value(); });
      };
      EXPECT_TRUE(feed->wait_until([&] {
        const auto& reads = feed->reads_while_waiting();
        for (auto i = from; i < reads.size(); ++i) {
          const auto& r = reads[i];
          if (r.req.after == from_now || at[r.shard]) continue;
          at[r.shard] = r.req.after;
          out.collection = r.req.collection;
        }
        return started();
      }))
        << "the stream did not start reading every shard";
      if (!started()) return out;
      std::vector<std::uint64_t> seqs;
      for (const auto& a : at)
        seqs.push_back(*a);
      if (seqs == std::vector<std::uint64_t>{log_sizes[0], log_sizes[1], log_sizes[2]})
        out.since = "";
      else if (seqs == std::vector<std::uint64_t>{0, 0, 0})
        out.since = "start";
      else
        out.since = pos_text(seqs);
    }
    // The client left: once its stream ended, the next one's reads are its own.
    EXPECT_TRUE(all_closed());
    return out;
  }

  std::string since_of(request req) {
    return stream_of(std::move(req)).since;
  }

  static constexpr std::uint64_t log_sizes[3] = {4, 2, 10};
  testing::edge_harness edge{3};
};

// Verifies the resume grammar: nothing or "now" is from now, "start"/"0" the oldest, an
// event id itself; the collection is passed on.
TEST_F(ChangeRoute, ResumePoints) {
  auto users = stream_of(make_request(bhttp::verb::get, "/v1/collections/users/changes"));
  EXPECT_EQ(users.collection, "users");
  EXPECT_EQ(users.since, "");
  EXPECT_EQ(since_of(make_request(bhttp::verb::get, "/v1/collections/u/changes?since=now")), "");
  EXPECT_EQ(since_of(make_request(bhttp::verb::get, "/v1/collections/u/changes?since=start")),
            "start");
  EXPECT_EQ(since_of(make_request(bhttp::verb::get, "/v1/collections/u/changes?since=0")), "start");
  auto id = pos_text({3, 0, 9});
  EXPECT_EQ(since_of(make_request(bhttp::verb::get, "/v1/collections/u/changes?since=" + id)), id);
  EXPECT_EQ(
    since_of(make_request(bhttp::verb::get, "/v1/collections/u/changes", {{"Last-Event-ID", id}})),
    id);
  // An empty query member is ignored.
  EXPECT_EQ(since_of(make_request(bhttp::verb::get, "/v1/collections/u/changes?")), "");
}

// Verifies a node with changes.enabled=false answers the route 404 (it writes no events).
TEST_F(ChangeRoute, TurnedOffIsNotFound) {
  edge.env.changes_enabled = false;
  auto r = route_of(make_request(bhttp::verb::get, "/v1/collections/users/changes"));
  EXPECT_EQ(r.route, route_id::changes);
  auto* res = std::get_if<response>(&r.outcome);
  ASSERT_NE(res, nullptr);
  EXPECT_EQ(res->result(), bhttp::status::not_found);
  EXPECT_EQ(error_code(r), "not_found");
  EXPECT_TRUE(edge.shards.log.empty());
}

// Verifies Last-Event-ID wins over ?since= (an EventSource reconnecting to a URL with
// since=start must go on from its last event), and an empty header counts as none.
TEST_F(ChangeRoute, LastEventIdWins) {
  auto id = pos_text({1, 2, 3});
  EXPECT_EQ(since_of(make_request(bhttp::verb::get, "/v1/collections/u/changes?since=start",
                                  {{"Last-Event-ID", id}})),
            id);
  EXPECT_EQ(since_of(make_request(bhttp::verb::get, "/v1/collections/u/changes?since=start",
                                  {{"Last-Event-ID", ""}})),
            "start");
  // The header wins even when it is the malformed one.
  auto bad = route_of(make_request(bhttp::verb::get, "/v1/collections/u/changes?since=start",
                                   {{"Last-Event-ID", "v1.%%%"}}));
  EXPECT_EQ(error_code(bad), "invalid_resume_point");
}

// Verifies malformed resume points are refused with 400 invalid_resume_point.
TEST_F(ChangeRoute, RefusesMalformedResumePoints) {
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
  EXPECT_TRUE(edge.shards.log.empty()) << "a refusal asks no shard";
}

// Verifies unknown, repeated and valueless parameters, bad names and other methods.
TEST_F(ChangeRoute, RefusesOtherInput) {
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
    EXPECT_EQ((*res)[bhttp::field::allow], "GET, OPTIONS");
  }
}

// -- the stream -----------------------------------------------------------------------------

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
  // From now: the stream waits at the head of both logs, so the writes before it are not
  // sent, and the position says so.
  ASSERT_TRUE(feed->wait_all_parked());
  for (const auto& r : feed->reads())
    if (r.req.after != from_now) {
      EXPECT_EQ(r.req.after, r.shard == 0 ? 2u : 1u);
    }
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
  feed->inject(1, core::errc::shard_unavailable);
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
  ASSERT_TRUE(feed->wait_all_parked());
  const auto reads_before = feed->reads().size();
  feed->inject(0, core::errc::shard_unavailable); // answers the parked read at once
  feed->write(0, event_kind::put, "after-outage");
  feed->write(1, event_kind::put, "other");
  auto got = take(*c, 2, milliseconds(5000));
  ASSERT_EQ(got.size(), 2u);
  std::set<std::string> ids;
  for (auto& g : got)
    ids.insert(std::string(g.data.at("id").as_string()));
  EXPECT_EQ(ids, (std::set<std::string>{"after-outage", "other"}));
  EXPECT_FALSE(c->closed());
  // Shard 0 was asked again after its error.
  bool asked_again = false;
  auto reads = feed->reads();
  for (auto i = reads_before; i < reads.size(); ++i)
    asked_again = asked_again || reads[i].shard == 0;
  EXPECT_TRUE(asked_again);
}

// Verifies a shard that says gone mid-stream (trimmed under the stream) ends it with a
// `gone` event.
TEST_F(ChangeStreamTest, GoneMidStreamEndsWithGoneEvent) {
  start();
  auto c = open();
  ASSERT_TRUE(feed->wait_parked(1));
  feed->inject(1, core::errc::gone);
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
  ASSERT_TRUE(feed->wait_parked(0));
  feed->inject(0, core::errc::gone);
  feed->write(0, event_kind::put, "kept");
  auto got = take(*c, 1, milliseconds(5000));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].type, "put");
  EXPECT_EQ(got[0].data.at("id").as_string(), "kept");
  ASSERT_TRUE(feed->wait_parked(0)); // the next read, after the event it sent
  feed->inject(0, core::errc::gone);
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
  EXPECT_TRUE(wait_comments(*c, 2, milliseconds(5000))) << c->comments << " keep-alives";
  // The long polls (wait_ms = the heartbeat) ran out and were asked again: a bounds read
  // and at least two long polls per shard.
  EXPECT_TRUE(feed->wait_reads(6)) << feed->reads().size() << " reads";
  for (const auto& r : feed->reads())
    if (r.req.after != from_now) {
      EXPECT_EQ(r.req.wait_ms, 150u);
    }
  // Events still flow after the long polls timed out and were asked again.
  feed->write(1, event_kind::put, "late");
  auto got = take(*c, 1, milliseconds(5000));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].data.at("id").as_string(), "late");
}

// Verifies a client that leaves ends its stream at once although its reads are parked
// at the shards (a long heartbeat: no write would notice), and the late answers to those
// reads are dropped.
TEST_F(ChangeStreamTest, ClientLeavingEndsStream) {
  start();
  {
    auto c = open();
    EXPECT_EQ(metrics.connections.value(), 1);
    ASSERT_TRUE(feed->wait_all_parked());
  }
  EXPECT_TRUE(all_closed(milliseconds(3000)));
  ASSERT_EQ(feed->parked(0), 1u) << "the stream ended while its read was parked";
  // The late answer reaches the ended stream's read, which drops it: the stream asks
  // nothing more and no connection comes back.
  const auto reads_before = feed->reads().size();
  feed->write(0, event_kind::put, "nobody");
  EXPECT_EQ(feed->parked(0), 0u) << "the write answered the parked read";
  EXPECT_FALSE(feed->wait_reads(reads_before + 1, milliseconds(300)))
    << "the ended stream read again after its late answer";
  EXPECT_EQ(metrics.connections.value(), 0);
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
  // No wait before reading: every answer the writes woke was posted to the stream's
  // strand before the last write returned, so the stream takes them all (and decides on
  // the overflow) before any write completion the client's reading causes.
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
  // The replay starts...
  ASSERT_TRUE(feed->wait_events_returned(1, milliseconds(5000))) << "the replay did not start";
  // ...and stops while the client reads nothing. The shards answer a catch-up read at
  // once, so a stream that did not wait for its client would read half the backlog
  // (five reads) well within this wait.
  EXPECT_FALSE(feed->wait_events_returned(total / 2, milliseconds(1000)))
    << "the stream read " << feed->events_returned() << " events for a client that reads none";
  const auto unread = feed->events_returned();
  EXPECT_LT(unread, static_cast<std::size_t>(total) / 2);
  // Reading moves it on.
  auto got = take(*c, total, milliseconds(60000));
  ASSERT_EQ(got.size(), static_cast<std::size_t>(total));
  for (auto& g : got)
    ASSERT_EQ(g.type, "put");
  EXPECT_FALSE(c->closed());
  EXPECT_EQ(got.back().seqs, (std::vector<std::uint64_t>{5000, 5000}));
  EXPECT_GE(feed->events_returned(), static_cast<std::size_t>(total));
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
  EXPECT_TRUE(all_closed(milliseconds(5000))) << "the stalled stream was not cut";
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
