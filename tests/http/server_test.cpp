// SPDX-License-Identifier: Apache-2.0
#include "http/server.hpp"

#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "http/shard_service.hpp"
#include "http/request_metrics.hpp"

namespace shoal::http {
namespace {

namespace net = boost::asio;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;

/// A doc service that keeps every sink until the test answers it: requests stay in
/// flight for as long as the test wants.
class held_service final : public shard_service {
public:
  void submit(actors::doc_request&& request, actors::reply_sink_ptr sink) override {
    std::lock_guard<std::mutex> guard{mutex_};
    held_.push_back({std::move(request), std::move(sink)});
    cv_.notify_all();
  }

  void call(actors::actor_call&&, actors::call_sink_ptr sink) override {
    sink->deliver(actors::actor_reply{404, {}, "unknown_actor_type", "none here"});
  }

  std::uint32_t shard_count() const override {
    return 1;
  }

  void submit_to(std::uint32_t, actors::doc_request&& request,
                 actors::reply_sink_ptr sink) override {
    submit(std::move(request), std::move(sink));
  }

  void cache(actors::cache_request&&, actors::cache_sink_ptr sink) override {
    sink->deliver(actors::cache_reply{actors::cache_status::not_found, {}, {}, "none here"});
  }

  /// Records the request and answers it: an enqueue with a created job, a lease with
  /// one job, anything else with the job. After `job_delay` when set (from a thread of
  /// its own, as a broker that waits for work would).
  void job(jobs::job_request&& request, jobs::job_sink_ptr sink) override {
    jobs::job_reply reply;
    reply.status = jobs::job_status::ok;
    if (request.op == jobs::job_op::enqueue) {
      reply.status = jobs::job_status::created;
      reply.body = R"({"id":"00001000000000000abcd","state":"queued"})";
    } else if (request.op == jobs::job_op::lease) {
      reply.jobs.push_back(
        {"00001000000000000abcd", request.queue, "t", R"({"a":1})", 1, "lease-1", 0});
    } else {
      reply.body = R"({"id":")" + request.id + R"("})";
    }
    std::lock_guard<std::mutex> guard{mutex_};
    jobs_.push_back(request);
    if (job_delay.count() == 0) {
      sink->deliver(std::move(reply));
      return;
    }
    delayed_.emplace_back(
      [delay = job_delay, sink = std::move(sink), reply = std::move(reply)]() mutable {
        std::this_thread::sleep_for(delay);
        sink->deliver(std::move(reply));
      });
  }

  /// The job requests received so far.
  std::vector<jobs::job_request> jobs() {
    std::lock_guard<std::mutex> guard{mutex_};
    return jobs_;
  }

  std::chrono::milliseconds job_delay{0};

  /// Waits until `n` requests are held (bounded).
  bool wait_for(std::size_t n) {
    std::unique_lock<std::mutex> guard{mutex_};
    return cv_.wait_for(guard, std::chrono::seconds(5), [&] { return held_.size() >= n; });
  }

  /// Answers every held request with version 1.
  void answer_all() {
    std::vector<entry> held;
    std::vector<std::thread> delayed;
    {
      std::lock_guard<std::mutex> guard{mutex_};
      held.swap(held_);
      delayed.swap(delayed_);
    }
    for (auto& e : held)
      e.sink->deliver(actors::doc_reply{actors::doc_status::ok, 1, R"({"k":1})", {}});
    for (auto& t : delayed) // the delayed job replies
      t.join();
  }

private:
  struct entry {
    actors::doc_request request;
    actors::reply_sink_ptr sink;
  };
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<entry> held_;
  std::vector<jobs::job_request> jobs_;
  std::vector<std::thread> delayed_;
};

/// A blocking HTTP/1.1 client connection for the tests.
class client {
public:
  explicit client(std::uint16_t port) : socket_(ioc_) {
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

private:
  net::io_context ioc_;
  tcp::socket socket_;
  boost::beast::flat_buffer buffer_;
};

class ServerTest : public ::testing::Test {
protected:
  config::http_settings settings;
  held_service service;
  request_metrics metrics;
  std::unique_ptr<server> srv;
  std::thread runner;
  std::uint16_t port = 0;

  void start() {
    settings.port = 0;
    settings.threads = 2;
    route_env env;
    env.ready = [] { return true; };
    srv = std::make_unique<server>(settings, service, std::move(env), metrics, server_logs{});
    port = srv->listen();
    runner = std::thread([this] { srv->run(); });
  }

  /// Waits (bounded) for `run` to return after a drain.
  bool stopped_within(std::chrono::seconds limit) {
    auto done = std::async(std::launch::async, [this] { runner.join(); });
    return done.wait_for(limit) == std::future_status::ready;
  }

  void TearDown() override {
    if (runner.joinable()) {
      srv->drain();
      service.answer_all();
      runner.join();
    }
    // The server's contract: a service releases its sinks before the server goes (a node
    // stops its actors first). Answer what is still held, then destroy the server, whose
    // io_context drops the posted replies and with them the last sessions.
    service.answer_all();
    srv.reset();
  }
};

// Verifies a drain turns readiness off, lets the in-flight request finish, then stops.
TEST_F(ServerTest, DrainFinishesInFlightRequestsThenStops) {
  start();
  client busy{port};
  busy.send(bhttp::verb::get, "/v1/collections/c/docs/1");
  ASSERT_TRUE(service.wait_for(1));
  srv->drain();
  // (Readiness during a drain is covered by the lifecycle tests of the real binary; a
  // probe here races the drain closing idle keep-alive connections.)
  // New connections are refused once the listener is closed (the drain runs on an I/O
  // thread: wait for it to start).
  for (int i = 0; i < 500 && !srv->draining(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_THROW(client{port}, boost::system::system_error);
  service.answer_all();
  auto res = busy.receive();
  EXPECT_EQ(res.result(), bhttp::status::ok);
  EXPECT_EQ(res.body(), R"({"k":1})");
  EXPECT_FALSE(res.keep_alive());
  EXPECT_TRUE(stopped_within(std::chrono::seconds(5)));
}

// Verifies the drain gives up on a request that never finishes after drain_timeout_ms.
TEST_F(ServerTest, DrainGivesUpAfterTimeout) {
  settings.drain_timeout_ms = 200;
  start();
  client busy{port};
  busy.send(bhttp::verb::get, "/v1/collections/c/docs/1");
  ASSERT_TRUE(service.wait_for(1));
  srv->drain();
  EXPECT_TRUE(stopped_within(std::chrono::seconds(5)));
}

// Verifies a shard that does not answer in time gets 504, and the late reply is dropped.
TEST_F(ServerTest, SlowShardGets504AndConnectionGoesOn) {
  settings.request_timeout_ms = 100;
  start();
  client c{port};
  auto res = c.get("/v1/collections/c/docs/1");
  EXPECT_EQ(res.result(), bhttp::status::gateway_timeout);
  EXPECT_EQ(res[bhttp::field::retry_after], "1");
  service.answer_all(); // too late: must not be written as a second response
  EXPECT_EQ(c.get("/healthz").result(), bhttp::status::ok);
}

// Verifies requests over http.max_inflight get 503 overloaded instead of queuing.
TEST_F(ServerTest, OverMaxInflightIs503) {
  settings.max_inflight = 1;
  start();
  client first{port};
  client second{port};
  first.send(bhttp::verb::get, "/v1/collections/c/docs/1");
  ASSERT_TRUE(service.wait_for(1));
  auto res = second.get("/v1/collections/c/docs/2");
  EXPECT_EQ(res.result(), bhttp::status::service_unavailable);
  EXPECT_NE(res.body().find("overloaded"), std::string::npos);
  service.answer_all();
  EXPECT_EQ(first.receive().result(), bhttp::status::ok);
  EXPECT_EQ(metrics.rejected_requests.value(), 1u);
}

// Verifies connections over http.max_connections get 503 and are closed.
TEST_F(ServerTest, OverMaxConnectionsIs503AndClosed) {
  settings.max_connections = 1;
  start();
  client first{port};
  EXPECT_EQ(first.get("/healthz").result(), bhttp::status::ok);
  client second{port};
  second.send(bhttp::verb::get, "/healthz");
  EXPECT_EQ(second.receive().result(), bhttp::status::service_unavailable);
  EXPECT_TRUE(second.closed_by_server());
  EXPECT_EQ(first.get("/healthz").result(), bhttp::status::ok);
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

// Verifies a job call goes through the real server to the service's `job` and its reply
// is rendered (202 with a Location for a new job).
TEST_F(ServerTest, JobCallReachesTheServiceAndIsRendered) {
  start();
  client c{port};
  c.send(bhttp::verb::post, "/v1/queues/emails/jobs",
         R"({"type":"send","payload":{"to":"a@b"},"idempotency_key":"k1"})");
  auto res = c.receive();
  EXPECT_EQ(res.result(), bhttp::status::accepted);
  EXPECT_EQ(res.body(), R"({"id":"00001000000000000abcd","state":"queued"})");
  EXPECT_EQ(res[bhttp::field::location], "/v1/jobs/00001000000000000abcd");
  auto got = c.get("/v1/jobs/00001000000000000abcd");
  EXPECT_EQ(got.result(), bhttp::status::ok);
  EXPECT_EQ(got.body(), R"({"id":"00001000000000000abcd"})");
  auto requests = service.jobs();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].op, jobs::job_op::enqueue);
  EXPECT_EQ(requests[0].queue, "emails");
  EXPECT_EQ(requests[0].type, "send");
  EXPECT_EQ(requests[0].body, R"({"to":"a@b"})");
  EXPECT_EQ(requests[0].key, "k1");
  EXPECT_EQ(requests[1].op, jobs::job_op::get);
  EXPECT_EQ(requests[1].id, "00001000000000000abcd");
  metrics::text_writer w;
  metrics.write(w);
  EXPECT_NE(
    w.str().find(
      R"(shoal_http_requests_total{route="/v1/queues/{q}/jobs",method="POST",status="202"} 1)"),
    std::string::npos);
}

// Verifies a lease that waits for work gets wait_ms on top of request_timeout_ms: an
// answer after 300 ms is rendered (not 504), while the same delay without a wait times out.
TEST_F(ServerTest, LeaseWaitExtendsTheTimeout) {
  settings.request_timeout_ms = 200;
  service.job_delay = std::chrono::milliseconds(300);
  start();
  client c{port};
  c.send(bhttp::verb::post, "/v1/queues/q/lease", R"({"wait_ms":1000,"max":5})");
  auto res = c.receive();
  EXPECT_EQ(res.result(), bhttp::status::ok);
  auto v = boost::json::parse(res.body());
  ASSERT_EQ(v.at("jobs").as_array().size(), 1u);
  EXPECT_EQ(v.at("jobs").at(0).at("payload").at("a").as_int64(), 1);
  EXPECT_EQ(v.at("jobs").at(0).at("lease_id").as_string(), "lease-1");
  auto requests = service.jobs();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].wait_ms, 1000u);
  EXPECT_EQ(requests[0].max, 5u);

  c.send(bhttp::verb::post, "/v1/queues/q/lease");
  auto late = c.receive();
  EXPECT_EQ(late.result(), bhttp::status::gateway_timeout);
  EXPECT_NE(late.body().find("200 ms"), std::string::npos) << late.body();
  service.answer_all(); // the late reply is dropped
  EXPECT_EQ(c.get("/healthz").result(), bhttp::status::ok);
}

} // namespace
} // namespace shoal::http
