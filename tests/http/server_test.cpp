// SPDX-License-Identifier: Apache-2.0
// The Beast edge over loopback: a real server with a fake shard client that holds
// document reads and leases until the test answers them, so requests stay in flight for
// as long as a test wants. Nothing sleeps: tests wait for what they can observe (a
// request reaching the shards, a response, the drain starting), each with a deadline.
#include "http/server.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

#include <poll.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "cluster/shard_map.hpp"
#include "documents/messages.hpp"
#include "http/request_metrics.hpp"
#include "jobs/messages.hpp"
#include "protocol/shard_client.hpp"

namespace shoal::http {
namespace {

namespace net = boost::asio;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;

const std::string created_id = "00001000000000000abcd"; // a job of shard 1

/// A shard client of two shards that keeps every document read and every lease until the
/// test answers it, answers job enqueues and gets at once (recording them), and anything
/// else with not_found. Thread-safe: the server's I/O threads ask, the test answers.
class held_shards final : public protocol::client_impl<held_shards> {
public:
  held_shards() : placement_{cluster::shard_map{2}, {}, [] { return std::uint64_t{0}; }} {}

  std::uint32_t shard_count() const noexcept override {
    return placement_.map.shard_count();
  }
  const cluster::placement& placement() const noexcept override {
    return placement_;
  }

  template <class R>
  void send_to(std::uint32_t shard, R&& req, core::reply_to<protocol::reply_of<R>> to) {
    if constexpr (std::is_same_v<R, documents::doc_get>) {
      std::lock_guard<std::mutex> guard{mutex_};
      docs_.push_back(std::move(to));
      cv_.notify_all();
    } else if constexpr (std::is_same_v<R, documents::doc_write>) {
      std::lock_guard<std::mutex> guard{mutex_};
      writes_.push_back(std::move(to)); // never answered until answer_all
      cv_.notify_all();
    } else if constexpr (std::is_same_v<R, jobs::job_enqueue>) {
      {
        std::lock_guard<std::mutex> guard{mutex_};
        enqueues_.emplace_back(shard, req);
      }
      to.deliver(
        jobs::job_enqueued{created_id, R"({"id":")" + created_id + R"(","state":"queued"})", true});
    } else if constexpr (std::is_same_v<R, jobs::job_get>) {
      {
        std::lock_guard<std::mutex> guard{mutex_};
        gets_.emplace_back(shard, req);
      }
      to.deliver(jobs::job_view{req.id, R"({"id":")" + req.id + R"("})"});
    } else {
      to.deliver(core::error{core::errc::not_found, "none here"});
    }
  }

  void lease(jobs::queue_lease&& req, core::reply_to<jobs::leased_jobs> to) override {
    std::lock_guard<std::mutex> guard{mutex_};
    leases_.push_back({std::move(req), std::move(to)});
    cv_.notify_all();
  }

  /// Waits (up to 5 s) until `n` document reads are held.
  bool wait_for_docs(std::size_t n) {
    std::unique_lock<std::mutex> guard{mutex_};
    return cv_.wait_for(guard, 5s, [&] { return docs_.size() >= n; });
  }

  /// Document writes held now.
  std::size_t held_writes() {
    std::lock_guard<std::mutex> guard{mutex_};
    return writes_.size();
  }

  /// Document reads held now.
  std::size_t held_docs() {
    std::lock_guard<std::mutex> guard{mutex_};
    return docs_.size();
  }

  /// Waits (up to 5 s) until `n` leases arrived (answered or not).
  bool wait_for_leases(std::size_t n) {
    std::unique_lock<std::mutex> guard{mutex_};
    return cv_.wait_for(guard, 5s, [&] { return leases_.size() >= n; });
  }

  /// Answers lease `i` (in arrival order) with one job, as the broker would.
  void answer_lease(std::size_t i) {
    core::reply_to<jobs::leased_jobs> to;
    jobs::leased_jobs reply;
    {
      std::lock_guard<std::mutex> guard{mutex_};
      if (i >= leases_.size()) return;
      to = std::move(leases_[i].to);
      reply.jobs.push_back(
        {created_id, leases_[i].request.queue, "t", R"({"a":1})", 1, "lease-1", 0});
    }
    to.deliver(std::move(reply));
  }

  /// Waits (up to 5 s) until `n` document writes are held.
  bool wait_for_writes(std::size_t n) {
    std::unique_lock<std::mutex> guard{mutex_};
    return cv_.wait_for(guard, 5s, [&] { return writes_.size() >= n; });
  }

  /// Answers every held document read with version 1 of {"k":1}, every held write with
  /// version 1, and every lease.
  void answer_all() {
    std::vector<core::reply_to<documents::stored_doc>> docs;
    std::vector<core::reply_to<documents::doc_written>> writes;
    std::size_t leases = 0;
    {
      std::lock_guard<std::mutex> guard{mutex_};
      docs.swap(docs_);
      writes.swap(writes_);
      leases = leases_.size();
    }
    for (auto& to : writes)
      to.deliver(documents::doc_written{1, true});
    for (auto& to : docs)
      to.deliver(documents::stored_doc{1, R"({"k":1})", false});
    for (std::size_t i = 0; i < leases; ++i)
      answer_lease(i);
  }

  std::vector<std::pair<std::uint32_t, jobs::job_enqueue>> enqueues() {
    std::lock_guard<std::mutex> guard{mutex_};
    return enqueues_;
  }
  std::vector<std::pair<std::uint32_t, jobs::job_get>> gets() {
    std::lock_guard<std::mutex> guard{mutex_};
    return gets_;
  }
  std::vector<jobs::queue_lease> leases() {
    std::lock_guard<std::mutex> guard{mutex_};
    std::vector<jobs::queue_lease> out;
    for (const auto& l : leases_)
      out.push_back(l.request);
    return out;
  }

private:
  struct held_lease {
    jobs::queue_lease request;
    core::reply_to<jobs::leased_jobs> to; ///< empty once answered
  };
  cluster::placement placement_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<core::reply_to<documents::stored_doc>> docs_;
  std::vector<core::reply_to<documents::doc_written>> writes_;
  std::vector<held_lease> leases_;
  std::vector<std::pair<std::uint32_t, jobs::job_enqueue>> enqueues_;
  std::vector<std::pair<std::uint32_t, jobs::job_get>> gets_;
};

/// A blocking HTTP/1.1 client connection for the tests.
class client {
public:
  /// `from`: a local address to connect from (any loopback address reaches the server);
  /// null: the kernel's choice. (Binding before connecting picks a port without looking
  /// at the server side's TIME_WAIT entries, whose SYN retries can stall a connect for a
  /// minute; only a test that needs a second client address binds.)
  explicit client(std::uint16_t port, const char* from = nullptr) : socket_(ioc_) {
    socket_.open(tcp::v4());
    if (from != nullptr) socket_.bind({net::ip::make_address(from), 0});
    socket_.connect({net::ip::make_address("127.0.0.1"), port});
  }

  void send(bhttp::verb verb, const std::string& target, const std::string& json_body = {}) {
    request req{verb, target, 11};
    req.set(bhttp::field::host, "127.0.0.1");
    if (!json_body.empty()) {
      req.set(bhttp::field::content_type, "application/json");
      req.body() = json_body;
    }
    req.prepare_payload();
    bhttp::write(socket_, req);
  }

  response receive() {
    response res;
    bhttp::read(socket_, buffer_, res);
    return res;
  }

  response get(const std::string& target) {
    send(bhttp::verb::get, target);
    return receive();
  }

  /// True when the server closed the connection (EOF on the next read).
  bool closed_by_server() {
    boost::system::error_code ec;
    char byte;
    socket_.read_some(net::buffer(&byte, 1), ec);
    return ec == net::error::eof || ec == net::error::connection_reset;
  }

  /// Half-closes: the server reads EOF.
  void shutdown_send() {
    socket_.shutdown(tcp::socket::shutdown_send);
  }

  /// The error of the next read of one byte: eof for a clean close, connection_reset for
  /// a reset, timed_out when nothing came within `limit`.
  boost::system::error_code next_read_error(std::chrono::milliseconds limit = 10s) {
    pollfd p{socket_.native_handle(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(limit.count())) <= 0) return net::error::timed_out;
    boost::system::error_code ec;
    char byte;
    socket_.read_some(net::buffer(&byte, 1), ec);
    return ec;
  }

private:
  net::io_context ioc_;
  tcp::socket socket_;
  boost::beast::flat_buffer buffer_;
};

/// The answer of /healthz, which no shard answer can be mistaken for.
constexpr std::string_view healthy = R"({"status":"ok"})";

class ServerTest : public ::testing::Test {
protected:
  config::http_settings settings;
  held_shards shards;
  request_metrics metrics;
  std::unique_ptr<server> srv;
  std::thread runner;
  std::uint16_t port = 0;
  std::chrono::steady_clock::time_point stopped_at; ///< when `run` returned

  std::mutex drain_mutex;
  std::condition_variable drain_cv;
  bool drain_started = false; ///< env.on_drain was called

  void start() {
    settings.port = 0;
    settings.threads = 2;
    route_env env;
    env.ready = [] { return true; };
    // As the node does (app/node.cpp): the routes take their timeout from the env, the
    // change streams theirs from the settings.
    env.request_timeout_ms = settings.request_timeout_ms;
    env.on_drain = [this] {
      std::lock_guard<std::mutex> guard{drain_mutex};
      drain_started = true;
      drain_cv.notify_all();
    };
    srv = std::make_unique<server>(settings, shards, std::move(env), metrics, server_logs{});
    port = srv->listen();
    runner = std::thread([this] {
      srv->run();
      stopped_at = std::chrono::steady_clock::now();
    });
  }

  /// Waits (bounded) for the drain to start on an I/O thread.
  bool drain_began_within(std::chrono::milliseconds limit) {
    std::unique_lock<std::mutex> guard{drain_mutex};
    return drain_cv.wait_for(guard, limit, [this] { return drain_started; });
  }

  /// Tries new connections until one is refused (true), for at most `limit`.
  bool refuses_connections_within(std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      try {
        client probe{port};
      } catch (const boost::system::system_error&) {
        return true;
      }
      std::this_thread::yield();
    }
    return false;
  }

  /// Waits (bounded) for `run` to return after a drain.
  bool stopped_within(std::chrono::seconds limit) {
    auto done = std::async(std::launch::async, [this] { runner.join(); });
    return done.wait_for(limit) == std::future_status::ready;
  }

  void TearDown() override {
    if (runner.joinable()) {
      srv->drain();
      shards.answer_all();
      runner.join();
    }
    // The server's contract: a shard client releases its reply_tos before the server
    // goes (a node stops its actors first). Answer what is still held, then destroy the
    // server, whose io_context drops the posted answers and with them the last sessions.
    shards.answer_all();
    srv.reset();
  }
};

// Verifies a drain turns readiness off, lets the in-flight request finish, then stops. A
// kept-alive connection idle when the drain starts gets one more request within the
// drain's grace: here a readiness probe, answered 503 not_ready with Connection: close.
TEST_F(ServerTest, DrainFinishesInFlightRequestsThenStops) {
  settings.drain_grace_ms = 5'000;
  start();
  client idle{port};
  EXPECT_EQ(idle.get("/readyz").result(), bhttp::status::ok);
  client busy{port};
  busy.send(bhttp::verb::get, "/v1/collections/c/docs/1");
  ASSERT_TRUE(shards.wait_for_docs(1));
  srv->drain();
  // New connections are refused once the listener is closed (the drain runs on an I/O
  // thread: wait for it to start, then for the first refused connection).
  ASSERT_TRUE(drain_began_within(5s));
  EXPECT_TRUE(srv->draining());
  EXPECT_TRUE(refuses_connections_within(5s));
  auto probe = idle.get("/readyz");
  EXPECT_EQ(probe.result(), bhttp::status::service_unavailable);
  EXPECT_NE(probe.body().find("not_ready"), std::string::npos) << probe.body();
  EXPECT_FALSE(probe.keep_alive());
  EXPECT_EQ(idle.next_read_error(), net::error::eof);
  shards.answer_all();
  auto res = busy.receive();
  EXPECT_EQ(res.result(), bhttp::status::ok);
  EXPECT_EQ(res.body(), R"({"k":1})");
  EXPECT_FALSE(res.keep_alive());
  EXPECT_TRUE(stopped_within(5s));
}

// Verifies a drain drops nothing a keep-alive client already sent: 16 clients send
// request after request; when the drain starts, each gets an answer to every request it
// sent, the last with Connection: close, then a clean close (no reset, no request left
// unanswered), and the server stops.
TEST_F(ServerTest, DrainAnswersEveryRequestAlreadySent) {
  settings.drain_grace_ms = 2'000; // far above a client's turnaround, even under ASan
  start();
  constexpr int clients = 16;
  std::atomic<int> warmed{0};
  std::vector<std::string> failures(clients);
  std::vector<int> answered(clients, 0);
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back([&, i] {
      try {
        client c{port};
        for (;;) {
          auto res = c.get("/healthz");
          if (res.body() != healthy) {
            failures[i] = "unexpected answer " + res.body();
            return;
          }
          if (++answered[i] == 20) warmed.fetch_add(1);
          if (!res.keep_alive()) break;
        }
        auto ec = c.next_read_error();
        if (ec != net::error::eof) failures[i] = "after the last answer: " + ec.message();
      } catch (const std::exception& e) {
        failures[i] = std::string("request lost: ") + e.what();
      }
    });
  }
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (warmed.load() < clients && std::chrono::steady_clock::now() < deadline)
    std::this_thread::yield();
  ASSERT_EQ(warmed.load(), clients);
  srv->drain();
  for (auto& t : threads)
    t.join();
  for (int i = 0; i < clients; ++i)
    EXPECT_EQ(failures[i], "") << "client " << i << " after " << answered[i] << " answers";
  EXPECT_TRUE(stopped_within(5s));
}

// Verifies the drain gives up on a request that never finishes after drain_timeout_ms:
// the server keeps waiting for it that long, then stops with the request unanswered.
TEST_F(ServerTest, DrainGivesUpAfterTimeout) {
  settings.drain_timeout_ms = 200;
  start();
  client busy{port};
  busy.send(bhttp::verb::get, "/v1/collections/c/docs/1");
  ASSERT_TRUE(shards.wait_for_docs(1));
  const auto drain_called = std::chrono::steady_clock::now();
  srv->drain();
  ASSERT_TRUE(stopped_within(5s));
  // A drain that abandoned the request at once would have stopped sooner.
  EXPECT_GE(stopped_at - drain_called, 200ms);
  // Abandoned, not answered: the request is still in flight, and nothing was written.
  EXPECT_EQ(metrics.inflight.value(), 1);
  EXPECT_EQ(metrics.rejected_requests.value(), 0u);
}

// Verifies a shard that does not answer in time gets 504, and the late reply is dropped.
TEST_F(ServerTest, SlowShardGets504AndConnectionGoesOn) {
  settings.request_timeout_ms = 100;
  start();
  client c{port};
  auto res = c.get("/v1/collections/c/docs/1");
  EXPECT_EQ(res.result(), bhttp::status::gateway_timeout);
  EXPECT_EQ(res[bhttp::field::retry_after], "1");
  EXPECT_NE(res.body().find("\"timeout\""), std::string::npos) << res.body();
  ASSERT_TRUE(shards.wait_for_docs(1));
  shards.answer_all(); // too late: must not be written as a second response
  // The late answer ({"k":1}, 200) is posted to the connection before the next request
  // is even sent, so had it been written, it would be read here instead.
  auto next = c.get("/healthz");
  EXPECT_EQ(next.result(), bhttp::status::ok);
  EXPECT_EQ(next.body(), healthy) << "the late answer was written as a response";
}

// Verifies a write the shard does not answer in time gets 504 outcome_unknown without
// Retry-After (it may still be applied: a retry could apply it twice), where a read gets
// 504 timeout with Retry-After.
TEST_F(ServerTest, SlowWriteGets504OutcomeUnknownWithoutRetryAfter) {
  settings.request_timeout_ms = 100;
  start();
  client c{port};
  c.send(bhttp::verb::put, "/v1/collections/c/docs/1", R"({"a":1})");
  auto res = c.receive();
  EXPECT_EQ(res.result(), bhttp::status::gateway_timeout);
  EXPECT_NE(res.body().find("\"outcome_unknown\""), std::string::npos) << res.body();
  EXPECT_EQ(res.count(bhttp::field::retry_after), 0u);
  ASSERT_TRUE(shards.wait_for_writes(1));
  auto read = c.get("/v1/collections/c/docs/1");
  EXPECT_NE(read.body().find("\"timeout\""), std::string::npos) << read.body();
  EXPECT_EQ(read[bhttp::field::retry_after], "1");
}

/// Waits (up to 5 s) until `gauge` reads `n`.
bool gauge_reaches(const metrics::gauge& gauge, std::int64_t n) {
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (gauge.value() != n) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// Verifies a request over the concurrency limit waits for a place without reaching the
// shards, is served once the request ahead of it is answered, and that probes are
// served meanwhile (they are not counted).
TEST_F(ServerTest, OverTheLimitARequestWaitsForAPlace) {
  settings.min_inflight = settings.max_inflight = 1;
  start();
  client first{port};
  client second{port};
  first.send(bhttp::verb::get, "/v1/collections/c/docs/1");
  ASSERT_TRUE(shards.wait_for_docs(1));
  second.send(bhttp::verb::get, "/v1/collections/c/docs/2");
  ASSERT_TRUE(gauge_reaches(metrics.queued_requests, 1));
  EXPECT_EQ(shards.held_docs(), 1u) << "a queued request reached the shards";
  client probe{port};
  EXPECT_EQ(probe.get("/healthz").body(), healthy);
  EXPECT_EQ(probe.get("/metrics").result(), bhttp::status::ok);
  shards.answer_all();
  EXPECT_EQ(first.receive().result(), bhttp::status::ok);
  ASSERT_TRUE(shards.wait_for_docs(1)) << "the queued request was never admitted";
  shards.answer_all();
  auto answered = second.receive();
  EXPECT_EQ(answered.result(), bhttp::status::ok);
  EXPECT_EQ(answered.body(), R"({"k":1})");
  EXPECT_EQ(metrics.queued_requests.value(), 0);
  EXPECT_EQ(metrics.rejected_requests.value(), 0u);
}

// Verifies what waits on purpose passes admission: a lease long poll reaches the broker
// while the only place is taken, but a document that happens to be named "changes" or
// "lease" waits like any other request.
TEST_F(ServerTest, LongPollsPassAdmissionButDocumentsNamedLikeThemWait) {
  settings.min_inflight = settings.max_inflight = 1;
  start();
  client first{port};
  first.send(bhttp::verb::get, "/v1/collections/c/docs/1");
  ASSERT_TRUE(shards.wait_for_docs(1));
  client poll{port};
  poll.send(bhttp::verb::post, "/v1/queues/q/lease", R"({"wait_ms":1000})");
  EXPECT_TRUE(shards.wait_for_leases(1)) << "the long poll waited for admission";
  client named{port};
  named.send(bhttp::verb::get, "/v1/collections/c/docs/changes");
  client lease_doc{port};
  lease_doc.send(bhttp::verb::get, "/v1/queues/q/lease/x");
  EXPECT_TRUE(gauge_reaches(metrics.queued_requests, 2));
  EXPECT_EQ(shards.held_docs(), 1u) << "a document named changes skipped the queue";
  shards.answer_all();
  EXPECT_EQ(first.receive().result(), bhttp::status::ok);
  EXPECT_EQ(poll.receive().result(), bhttp::status::ok);
  ASSERT_TRUE(shards.wait_for_docs(1));
  shards.answer_all();
  EXPECT_EQ(named.receive().result(), bhttp::status::ok);
  EXPECT_EQ(lease_doc.receive().result(), bhttp::status::not_found);
}

// Verifies that with no room to wait (http.max_queued = 0) a request over the limit gets
// 503 overloaded with Retry-After at once, on a connection kept open, and the request
// in flight is unaffected.
TEST_F(ServerTest, OverTheLimitWithNoQueueIs503AtOnce) {
  settings.min_inflight = settings.max_inflight = 1;
  settings.max_queued = 0;
  settings.hold_refused_ms = 0; // the next request on that connection is read at once
  start();
  client first{port};
  client second{port};
  first.send(bhttp::verb::get, "/v1/collections/c/docs/1");
  ASSERT_TRUE(shards.wait_for_docs(1));
  auto res = second.get("/v1/collections/c/docs/2");
  EXPECT_EQ(res.result(), bhttp::status::service_unavailable);
  EXPECT_NE(res.body().find("overloaded"), std::string::npos) << res.body();
  EXPECT_EQ(res[bhttp::field::retry_after], "1");
  EXPECT_EQ(second.get("/healthz").body(), healthy) << "the refused GET's connection stays open";
  shards.answer_all();
  auto answered = first.receive();
  EXPECT_EQ(answered.result(), bhttp::status::ok);
  EXPECT_EQ(answered.body(), R"({"k":1})");
  EXPECT_EQ(metrics.rejected_requests.value(), 1u);
}

// Verifies a connection refused by admission control is not read for
// http.hold_refused_ms: the request its client sends at once is answered only after the
// hold, while another connection is served at once.
TEST_F(ServerTest, ARefusedConnectionIsHeldBeforeItsNextRequest) {
  settings.min_inflight = settings.max_inflight = 1;
  settings.max_queued = 0;
  settings.hold_refused_ms = 1000;
  start();
  client first{port};
  client refused{port};
  first.send(bhttp::verb::get, "/v1/collections/c/docs/1");
  ASSERT_TRUE(shards.wait_for_docs(1));
  EXPECT_EQ(refused.get("/v1/collections/c/docs/2").result(), bhttp::status::service_unavailable);
  const auto asked = std::chrono::steady_clock::now();
  refused.send(bhttp::verb::get, "/healthz");
  client other{port};
  EXPECT_EQ(other.get("/healthz").body(), healthy);
  EXPECT_LT(std::chrono::steady_clock::now() - asked, 1000ms) << "the other connection was held";
  EXPECT_EQ(refused.receive().body(), healthy);
  EXPECT_GE(std::chrono::steady_clock::now() - asked, 1000ms) << "the refused one was read early";
  shards.answer_all();
  EXPECT_EQ(first.receive().result(), bhttp::status::ok);
}

// Verifies a server that stops (its drain timed out) while a request still waits for
// admission ends cleanly: the waiting session goes with the I/O threads, before the
// io_context its socket belongs to (AddressSanitizer catches the use after free).
TEST_F(ServerTest, StoppingWithARequestWaitingForAdmissionEndsCleanly) {
  settings.min_inflight = settings.max_inflight = 1;
  settings.drain_timeout_ms = 200;
  start();
  client first{port};
  first.send(bhttp::verb::get, "/v1/collections/c/docs/1");
  ASSERT_TRUE(shards.wait_for_docs(1));
  // Two wait: when the io_context goes, the end of the first request admits one of them
  // (into a scheduler that is shutting down); the other still waits.
  client second{port};
  client third{port};
  second.send(bhttp::verb::get, "/v1/collections/c/docs/2");
  third.send(bhttp::verb::get, "/v1/collections/c/docs/3");
  ASSERT_TRUE(gauge_reaches(metrics.queued_requests, 2));
  srv->drain();
  ASSERT_TRUE(stopped_within(10s)) << "the drain did not give up";
  EXPECT_EQ(shards.held_docs(), 1u) << "a waiting request reached the shards";
  shards.answer_all();
  srv.reset();
}

// Verifies a request that waits http.queue_timeout_ms without a place gets 503 then,
// never reaching the shards; a refused request whose body was never read closes its
// connection (the body cannot be skipped safely).
TEST_F(ServerTest, AWaitPastTheQueueTimeoutIs503) {
  settings.min_inflight = settings.max_inflight = 1;
  settings.queue_timeout_ms = 100;
  start();
  client first{port};
  client waiting{port};
  first.send(bhttp::verb::get, "/v1/collections/c/docs/1");
  ASSERT_TRUE(shards.wait_for_docs(1));
  const auto sent = std::chrono::steady_clock::now();
  waiting.send(bhttp::verb::put, "/v1/collections/c/docs/2", R"({"a":1})");
  auto res = waiting.receive();
  EXPECT_GE(std::chrono::steady_clock::now() - sent, 100ms);
  EXPECT_EQ(res.result(), bhttp::status::service_unavailable);
  EXPECT_NE(res.body().find("waited 100 ms for admission"), std::string::npos) << res.body();
  EXPECT_FALSE(res.keep_alive());
  EXPECT_EQ(waiting.next_read_error(), net::error::eof);
  EXPECT_EQ(shards.held_writes(), 0u) << "the refused write reached the shards";
  shards.answer_all();
  EXPECT_EQ(first.receive().result(), bhttp::status::ok);
  EXPECT_EQ(metrics.rejected_requests.value(), 1u);
}

// Verifies a connection over http.max_connections gets 503 and is closed when no open
// connection is idle (the one open here has a request in flight).
TEST_F(ServerTest, OverMaxConnectionsIs503AndClosed) {
  settings.max_connections = 1;
  start();
  client first{port};
  first.send(bhttp::verb::get, "/v1/collections/c/docs/1");
  ASSERT_TRUE(shards.wait_for_docs(1));
  client second{port};
  second.send(bhttp::verb::get, "/healthz");
  auto refused = second.receive();
  EXPECT_EQ(refused.result(), bhttp::status::service_unavailable);
  EXPECT_NE(refused.body().find("overloaded"), std::string::npos) << refused.body();
  EXPECT_EQ(second.next_read_error(), net::error::eof) << "closed with a reset, or not closed";
  EXPECT_EQ(metrics.rejected_connections.value(), 1u);
  EXPECT_EQ(metrics.evicted_connections.value(), 0u);
  shards.answer_all();
  auto answered = first.receive();
  EXPECT_EQ(answered.result(), bhttp::status::ok);
  EXPECT_EQ(answered.body(), R"({"k":1})");
  EXPECT_EQ(first.get("/healthz").body(), healthy);
}

// Verifies that at http.max_connections the connection idle longest gives way to a new
// one (closed cleanly, with a FIN), so connections that send nothing cannot lock clients
// out; a connection with a request in flight never gives way.
TEST_F(ServerTest, AtTheLimitTheLongestIdleConnectionGivesWay) {
  settings.max_connections = 3;
  start();
  client busy{port};
  busy.send(bhttp::verb::get, "/v1/collections/c/docs/1");
  ASSERT_TRUE(shards.wait_for_docs(1));
  client silent{port}; // never sends: idle since it connected
  client used{port};
  EXPECT_EQ(used.get("/healthz").body(), healthy); // idle since its answer
  client newcomer{port};
  EXPECT_EQ(newcomer.get("/healthz").body(), healthy);
  EXPECT_EQ(silent.next_read_error(), net::error::eof);
  EXPECT_EQ(metrics.evicted_connections.value(), 1u);
  // Both the used connection and the newcomer are idle now: one of them gives way (which
  // went idle first is decided by the server's write completions, not seen from here).
  client another{port};
  EXPECT_EQ(another.get("/healthz").body(), healthy);
  const bool used_closed = used.next_read_error(2s) == net::error::eof;
  const bool newcomer_closed = newcomer.next_read_error(2s) == net::error::eof;
  EXPECT_NE(used_closed, newcomer_closed) << "exactly one idle connection gives way";
  EXPECT_EQ(metrics.evicted_connections.value(), 2u);
  EXPECT_EQ(metrics.rejected_connections.value(), 0u);
  shards.answer_all();
  EXPECT_EQ(busy.receive().body(), R"({"k":1})");
}

// Verifies http.max_connections_per_client: one more connection from the same address
// gets 503 and is closed; another address is still served.
TEST_F(ServerTest, OverThePerClientLimitIs503) {
  settings.max_connections_per_client = 2;
  start();
  client a{port};
  client b{port};
  EXPECT_EQ(a.get("/healthz").body(), healthy);
  EXPECT_EQ(b.get("/healthz").body(), healthy);
  client c{port};
  c.send(bhttp::verb::get, "/healthz");
  auto refused = c.receive();
  EXPECT_EQ(refused.result(), bhttp::status::service_unavailable);
  EXPECT_NE(refused.body().find("from this client"), std::string::npos) << refused.body();
  EXPECT_EQ(c.next_read_error(), net::error::eof);
  client elsewhere{port, "127.0.0.2"};
  EXPECT_EQ(elsewhere.get("/healthz").body(), healthy);
  EXPECT_EQ(metrics.rejected_connections.value(), 1u);
  // A closed connection frees its place: the client may connect again.
  a.shutdown_send();
  EXPECT_EQ(a.next_read_error(), net::error::eof);
  bool served = false;
  for (int i = 0; i < 200 && !served; ++i) {
    client again{port};
    again.send(bhttp::verb::get, "/healthz");
    served = again.receive().result() == bhttp::status::ok;
  }
  EXPECT_TRUE(served);
}

// Verifies a new connection that sends nothing is closed after header_timeout_ms, not
// after the (long) idle timeout of a kept-alive connection, which a served one keeps.
TEST_F(ServerTest, SilentNewConnectionIsClosedAfterTheHeaderTimeout) {
  settings.header_timeout_ms = 100;
  settings.idle_timeout_ms = 60'000;
  start();
  client kept{port};
  EXPECT_EQ(kept.get("/healthz").body(), healthy);
  client silent{port};
  const auto opened = std::chrono::steady_clock::now();
  EXPECT_EQ(silent.next_read_error(), net::error::eof);
  EXPECT_LT(std::chrono::steady_clock::now() - opened, 5s);
  // The kept-alive connection outlived the header timeout and is still served.
  EXPECT_EQ(kept.get("/healthz").body(), healthy);
}

// Verifies an idle keep-alive connection is closed after idle_timeout_ms.
TEST_F(ServerTest, IdleConnectionIsClosed) {
  settings.idle_timeout_ms = 100;
  start();
  client c{port};
  EXPECT_EQ(c.get("/healthz").result(), bhttp::status::ok);
  EXPECT_TRUE(c.closed_by_server());
}

// Verifies metrics count requests by route and status and track in-flight requests.
TEST_F(ServerTest, MetricsCountRequests) {
  start();
  client c{port};
  c.get("/healthz");
  c.get("/nope");
  metrics::text_writer w;
  metrics.write(w);
  EXPECT_NE(
    w.str().find(R"(shoal_http_requests_total{route="/healthz",method="GET",status="200"} 1)"),
    std::string::npos);
  EXPECT_NE(
    w.str().find(R"(shoal_http_requests_total{route="unknown",method="GET",status="404"} 1)"),
    std::string::npos);
  EXPECT_EQ(metrics.inflight.value(), 0);
}

// Verifies a job call goes through the real server to the shard client (the enqueue to
// the shard of its idempotency key, the get to the shard its id names) and its answer is
// rendered (202 with a Location for a new job).
TEST_F(ServerTest, JobCallReachesTheServiceAndIsRendered) {
  start();
  client c{port};
  c.send(bhttp::verb::post, "/v1/queues/emails/jobs",
         R"({"type":"send","payload":{"to":"a@b"},"idempotency_key":"k1"})");
  auto res = c.receive();
  EXPECT_EQ(res.result(), bhttp::status::accepted);
  EXPECT_EQ(res.body(), R"({"id":")" + created_id + R"(","state":"queued"})");
  EXPECT_EQ(res[bhttp::field::location], "/v1/jobs/" + created_id);
  auto got = c.get("/v1/jobs/" + created_id);
  EXPECT_EQ(got.result(), bhttp::status::ok);
  EXPECT_EQ(got.body(), R"({"id":")" + created_id + R"("})");
  auto enqueues = shards.enqueues();
  ASSERT_EQ(enqueues.size(), 1u);
  EXPECT_EQ(enqueues[0].first, cluster::shard_map{2}.shard_of("emails", "k1"));
  EXPECT_EQ(enqueues[0].second.queue, "emails");
  EXPECT_EQ(enqueues[0].second.type, "send");
  EXPECT_EQ(enqueues[0].second.payload, R"({"to":"a@b"})");
  EXPECT_EQ(enqueues[0].second.idempotency_key, "k1");
  auto gets = shards.gets();
  ASSERT_EQ(gets.size(), 1u);
  EXPECT_EQ(gets[0].first, 1u);
  EXPECT_EQ(gets[0].second.id, created_id);
  metrics::text_writer w;
  metrics.write(w);
  EXPECT_NE(
    w.str().find(
      R"(shoal_http_requests_total{route="/v1/queues/{q}/jobs",method="POST",status="202"} 1)"),
    std::string::npos);
}

// Verifies a lease that waits for work gets wait_ms on top of request_timeout_ms: its
// answer after the 200 ms timeout is rendered (not 504), while a lease without a wait
// times out at 200 ms, and its late answer is dropped.
TEST_F(ServerTest, LeaseWaitExtendsTheTimeout) {
  settings.request_timeout_ms = 200;
  start();
  client waiting{port};
  client plain{port};
  waiting.send(bhttp::verb::post, "/v1/queues/q/lease", R"({"wait_ms":1000,"max":5})");
  ASSERT_TRUE(shards.wait_for_leases(1));
  plain.send(bhttp::verb::post, "/v1/queues/q/lease");
  ASSERT_TRUE(shards.wait_for_leases(2));
  // The lease without a wait times out: 200 ms have passed since the waiting one came in.
  auto late = plain.receive();
  EXPECT_EQ(late.result(), bhttp::status::gateway_timeout);
  EXPECT_NE(late.body().find("200 ms"), std::string::npos) << late.body();
  // The waiting lease still waits (up to 200 + 1000 ms): the broker's answer is rendered.
  shards.answer_lease(0);
  auto res = waiting.receive();
  EXPECT_EQ(res.result(), bhttp::status::ok);
  auto v = boost::json::parse(res.body());
  ASSERT_EQ(v.at("jobs").as_array().size(), 1u);
  EXPECT_EQ(v.at("jobs").at(0).at("payload").at("a").as_int64(), 1);
  EXPECT_EQ(v.at("jobs").at(0).at("lease_id").as_string(), "lease-1");
  auto requests = shards.leases();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].queue, "q");
  EXPECT_EQ(requests[0].wait_ms, 1000u);
  EXPECT_EQ(requests[0].max, 5u);
  EXPECT_EQ(requests[1].wait_ms, 0u);

  shards.answer_lease(1); // the late answer is dropped
  auto next = plain.get("/healthz");
  EXPECT_EQ(next.result(), bhttp::status::ok);
  EXPECT_EQ(next.body(), healthy) << "the late answer was written as a response";
}

} // namespace
} // namespace shoal::http
