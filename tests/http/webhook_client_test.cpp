// SPDX-License-Identifier: Apache-2.0
#include "http/webhook_client.hpp"

#include <array>
#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace shoal::http {
namespace {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = net::ip::tcp;
using outcome = webhook_result::outcome;
using namespace std::chrono_literals;

/// A request as the test server received it; header names in lower case.
struct seen_request {
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers;
  std::string body;
};

/// A tiny HTTP/1.1 server on 127.0.0.1 with its own io_context and thread. It reads one
/// request per connection, records it, and then does what the test asked for: answer with
/// a status and body, never answer (the connection stays open), or close at once without
/// reading anything. With a TLS context it speaks https.
class test_server {
public:
  explicit test_server(ssl::context* tls = nullptr) : tls_(tls), acceptor_(ioc_) {
    tcp::endpoint ep{net::ip::make_address("127.0.0.1"), 0};
    acceptor_.open(ep.protocol());
    acceptor_.bind(ep);
    acceptor_.listen(net::socket_base::max_listen_connections);
    port_ = acceptor_.local_endpoint().port();
    do_accept();
    thread_ = std::thread([this] { ioc_.run(); });
  }

  ~test_server() {
    ioc_.stop();
    thread_.join();
  }

  test_server(const test_server&) = delete;
  test_server& operator=(const test_server&) = delete;

  void answer(unsigned status, std::string body = {}) {
    std::lock_guard<std::mutex> guard{mutex_};
    mode_ = mode::answer;
    status_ = status;
    body_ = std::move(body);
  }

  void never_answer() {
    std::lock_guard<std::mutex> guard{mutex_};
    mode_ = mode::never_answer;
  }

  void close_at_once() {
    std::lock_guard<std::mutex> guard{mutex_};
    mode_ = mode::close_at_once;
  }

  std::uint16_t port() const {
    return port_;
  }

  std::string url(const std::string& path_and_query) const {
    return std::string(tls_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_)
           + path_and_query;
  }

  /// Waits (bounded) until `n` requests were received.
  bool wait_requests(std::size_t n, std::chrono::milliseconds limit = 5s) {
    std::unique_lock<std::mutex> guard{mutex_};
    return cv_.wait_for(guard, limit, [&] { return seen_.size() >= n; });
  }

  std::vector<seen_request> requests() {
    std::lock_guard<std::mutex> guard{mutex_};
    return seen_;
  }

private:
  enum class mode { answer, never_answer, close_at_once };

  struct connection {
    explicit connection(tcp::socket s) : socket(std::move(s)) {}
    tcp::socket socket;
    std::optional<ssl::stream<tcp::socket&>> tls;
    beast::flat_buffer buffer;
    bhttp::request<bhttp::string_body> request;
    bhttp::response<bhttp::string_body> response;
  };
  using connection_ptr = std::shared_ptr<connection>;

  template <class F>
  static void with_stream(connection& c, F&& f) {
    if (c.tls)
      f(*c.tls);
    else
      f(c.socket);
  }

  void do_accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
      if (ec) return;
      auto c = std::make_shared<connection>(std::move(socket));
      mode m;
      {
        std::lock_guard<std::mutex> guard{mutex_};
        m = mode_;
      }
      if (m == mode::close_at_once) {
        boost::system::error_code ignored;
        c->socket.close(ignored);
      } else if (tls_) {
        c->tls.emplace(c->socket, *tls_);
        c->tls->async_handshake(ssl::stream_base::server, [this, c](boost::system::error_code e) {
          if (!e) do_read(c);
        });
      } else {
        do_read(c);
      }
      do_accept();
    });
  }

  void do_read(const connection_ptr& c) {
    with_stream(*c, [&](auto& stream) {
      bhttp::async_read(stream, c->buffer, c->request,
                        [this, c](boost::system::error_code ec, std::size_t) {
                          if (!ec) on_request(c);
                        });
    });
  }

  void on_request(const connection_ptr& c) {
    seen_request seen;
    seen.method = std::string(c->request.method_string());
    seen.target = std::string(c->request.target());
    for (const auto& field : c->request) {
      std::string name(field.name_string());
      for (auto& ch : name)
        ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      seen.headers[name] = std::string(field.value());
    }
    seen.body = c->request.body();
    mode m;
    {
      std::lock_guard<std::mutex> guard{mutex_};
      seen_.push_back(std::move(seen));
      m = mode_;
      c->response.result(status_);
      c->response.body() = body_;
      cv_.notify_all();
    }
    if (m != mode::answer) {
      held_.push_back(c); // never answered; closed when the server stops
      return;
    }
    c->response.version(11);
    c->response.set(bhttp::field::content_type, "text/plain");
    c->response.keep_alive(false);
    c->response.prepare_payload();
    with_stream(*c, [&](auto& stream) {
      bhttp::async_write(stream, c->response, [c](boost::system::error_code, std::size_t) {
        boost::system::error_code ignored;
        c->socket.shutdown(tcp::socket::shutdown_send, ignored);
        c->socket.close(ignored);
      });
    });
  }

  ssl::context* tls_;
  net::io_context ioc_;
  tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  std::vector<connection_ptr> held_; // server thread only
  std::thread thread_;

  std::mutex mutex_;
  std::condition_variable cv_;
  mode mode_ = mode::answer;
  unsigned status_ = 200;
  std::string body_;
  std::vector<seen_request> seen_;
};

/// Collects callbacks. Every wait is bounded; must outlive the client it is used with.
class collector {
public:
  std::function<void(webhook_result)> callback() {
    return [this](webhook_result r) {
      std::lock_guard<std::mutex> guard{mutex_};
      results_.push_back(std::move(r));
      threads_.push_back(std::this_thread::get_id());
      cv_.notify_all();
    };
  }

  bool wait_for(std::size_t n, std::chrono::milliseconds limit = 5s) {
    std::unique_lock<std::mutex> guard{mutex_};
    return cv_.wait_for(guard, limit, [&] { return results_.size() >= n; });
  }

  std::vector<webhook_result> results() {
    std::lock_guard<std::mutex> guard{mutex_};
    return results_;
  }

  std::vector<std::thread::id> threads() {
    std::lock_guard<std::mutex> guard{mutex_};
    return threads_;
  }

private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<webhook_result> results_;
  std::vector<std::thread::id> threads_;
};

/// Posts once and waits (bounded) for the one callback.
std::optional<webhook_result> post_one(webhook_client& client, const std::string& url,
                                       std::string body = R"({"k":1})",
                                       std::chrono::milliseconds timeout = 5s) {
  collector got;
  client.post(url, std::move(body), timeout, got.callback());
  if (!got.wait_for(1, timeout + 5s)) return std::nullopt;
  return got.results().front();
}

/// A port on 127.0.0.1 with nothing listening: bound once, then closed.
std::uint16_t closed_port() {
  net::io_context ioc;
  tcp::acceptor a(ioc, tcp::endpoint{net::ip::make_address("127.0.0.1"), 0});
  auto port = a.local_endpoint().port();
  a.close();
  return port;
}

/// The test servers listen on loopback, which the default destination policy refuses.
util::destination_policy loopback_allowed() {
  return *util::destination_policy::with_allowed("127.0.0.0/8, ::1", nullptr);
}

// Verifies the default destination policy refuses loopback however the URL names it (an
// address, "localhost", a decimal IPv4 number, an IPv4-mapped IPv6 address) and the cloud
// metadata address, after resolving and before connecting: nothing reaches the server,
// and the outcome is forbidden (not retryable).
TEST(webhook_client, the_default_policy_refuses_loopback_and_link_local_destinations) {
  test_server server;
  server.answer(200, "{}");
  webhook_client client;
  const auto port = std::to_string(server.port());
  for (const std::string& url :
       {server.url("/a"), "http://localhost:" + port + "/a", "http://2130706433:" + port + "/a",
        "http://[::ffff:127.0.0.1]:" + port + "/a", std::string("http://169.254.169.254/latest")}) {
    auto r = post_one(client, url, "{}");
    ASSERT_TRUE(r) << url;
    EXPECT_EQ(r->what, outcome::forbidden) << url << ": " << r->message;
    EXPECT_FALSE(r->retryable());
    EXPECT_NE(r->message.find("webhook_allow"), std::string::npos) << r->message;
  }
  EXPECT_FALSE(server.wait_requests(1, std::chrono::milliseconds(200)))
    << "a refused post reached the server";
}

// Verifies an allowlist opens exactly its blocks: 127.0.0.1/32 reaches the server, and the
// post still goes through its policy check when the name resolves.
TEST(webhook_client, an_allowlist_opens_its_blocks) {
  test_server server;
  server.answer(200, "{}");
  webhook_client client{1, *util::destination_policy::with_allowed("127.0.0.1/32", nullptr)};
  auto r = post_one(client, server.url("/a"), "{}");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->what, outcome::success) << r->message;
  auto other = post_one(client, "http://127.0.0.2:" + std::to_string(server.port()) + "/a", "{}");
  ASSERT_TRUE(other);
  EXPECT_EQ(other->what, outcome::forbidden) << other->message;
}

// Verifies "localhost" and names under it are loopback without asking a resolver (RFC
// 6761): refused by default, and reached when loopback is allowed, on a machine whose
// /etc/hosts knows them or not. A name that merely contains "localhost" is not one.
TEST(webhook_client, localhost_names_are_loopback_without_a_resolver) {
  test_server server;
  server.answer(200, "{}");
  const auto port = std::to_string(server.port());
  webhook_client refusing;
  webhook_client allowing{1, *util::destination_policy::with_allowed("127.0.0.1/32", nullptr)};
  for (const std::string host : {"localhost", "LocalHost.", "api.localhost"}) {
    const auto url = "http://" + host + ":" + port + "/a";
    auto refused = post_one(refusing, url, "{}");
    ASSERT_TRUE(refused) << url;
    EXPECT_EQ(refused->what, outcome::forbidden) << url << ": " << refused->message;
    auto reached = post_one(allowing, url, "{}");
    ASSERT_TRUE(reached) << url;
    EXPECT_EQ(reached->what, outcome::success) << url << ": " << reached->message;
  }
  auto lookalike = post_one(refusing, "http://notlocalhost.invalid:" + port + "/a", "{}");
  ASSERT_TRUE(lookalike);
  EXPECT_NE(lookalike->what, outcome::success);
  EXPECT_EQ(lookalike->message.find("not allowed"), std::string::npos)
    << "a lookalike name went through the resolver, not the loopback rule: " << lookalike->message;
}

TEST(webhook_client, success_and_the_request_the_server_saw) {
  test_server server;
  server.answer(200, R"({"ok":true})");
  webhook_client client{1, loopback_allowed()};
  auto r = post_one(client, server.url("/hooks/a?x=1&y=two"), R"({"event":"created"})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->what, outcome::success) << r->message;
  EXPECT_EQ(r->status, 200u);
  EXPECT_EQ(r->body, R"({"ok":true})");
  EXPECT_FALSE(r->retryable());
  auto port = std::to_string(server.port());
  EXPECT_EQ(r->message, "POST http://127.0.0.1:" + port + "/hooks/a answered 200");

  ASSERT_TRUE(server.wait_requests(1));
  auto seen = server.requests().at(0);
  EXPECT_EQ(seen.method, "POST");
  EXPECT_EQ(seen.target, "/hooks/a?x=1&y=two");
  EXPECT_EQ(seen.headers["host"], "127.0.0.1:" + port);
  EXPECT_EQ(seen.headers["content-type"], "application/json");
  EXPECT_EQ(seen.headers["user-agent"], "shoal-webhook");
  EXPECT_EQ(seen.headers["content-length"], std::to_string(seen.body.size()));
  EXPECT_EQ(seen.body, R"({"event":"created"})");
}

TEST(webhook_client, empty_path_posts_to_slash) {
  test_server server;
  webhook_client client{1, loopback_allowed()};
  auto r = post_one(client, server.url(""));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->what, outcome::success) << r->message;
  ASSERT_TRUE(server.wait_requests(1));
  EXPECT_EQ(server.requests().at(0).target, "/");
}

TEST(webhook_client, other_2xx_are_success) {
  test_server server;
  webhook_client client{1, loopback_allowed()};
  for (unsigned status : {201u, 202u, 204u}) {
    server.answer(status);
    auto r = post_one(client, server.url("/x"));
    ASSERT_TRUE(r) << status;
    EXPECT_EQ(r->what, outcome::success) << r->message;
    EXPECT_EQ(r->status, status);
    EXPECT_FALSE(r->retryable());
  }
}

TEST(webhook_client, 4xx_and_3xx_are_rejected_and_final) {
  test_server server;
  webhook_client client{1, loopback_allowed()};
  for (unsigned status : {400u, 401u, 404u, 410u, 301u}) {
    server.answer(status, "no");
    auto r = post_one(client, server.url("/x"));
    ASSERT_TRUE(r) << status;
    EXPECT_EQ(r->what, outcome::rejected) << r->message;
    EXPECT_EQ(r->status, status);
    EXPECT_EQ(r->body, "no");
    EXPECT_FALSE(r->retryable()) << status;
    EXPECT_NE(r->message.find("answered " + std::to_string(status)), std::string::npos);
  }
}

TEST(webhook_client, 408_and_429_are_rejected_but_retryable) {
  test_server server;
  webhook_client client{1, loopback_allowed()};
  for (unsigned status : {408u, 429u}) {
    server.answer(status);
    auto r = post_one(client, server.url("/x"));
    ASSERT_TRUE(r) << status;
    EXPECT_EQ(r->what, outcome::rejected) << r->message;
    EXPECT_EQ(r->status, status);
    EXPECT_TRUE(r->retryable()) << status;
  }
}

TEST(webhook_client, 5xx_is_a_retryable_server_error) {
  test_server server;
  webhook_client client{1, loopback_allowed()};
  for (unsigned status : {500u, 503u}) {
    server.answer(status, "busy");
    auto r = post_one(client, server.url("/x"));
    ASSERT_TRUE(r) << status;
    EXPECT_EQ(r->what, outcome::server_error) << r->message;
    EXPECT_EQ(r->status, status);
    EXPECT_EQ(r->body, "busy");
    EXPECT_TRUE(r->retryable());
    auto expected = "POST " + server.url("/x") + " answered " + std::to_string(status);
    EXPECT_EQ(r->message, expected);
  }
}

TEST(webhook_client, connection_refused_is_a_connect_error) {
  auto port = std::to_string(closed_port());
  webhook_client client{1, loopback_allowed()};
  auto r = post_one(client, "http://127.0.0.1:" + port + "/x");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->what, outcome::connect_error) << r->message;
  EXPECT_EQ(r->status, 0u);
  EXPECT_TRUE(r->retryable());
  EXPECT_EQ(r->message.rfind("connect to 127.0.0.1:" + port + " failed: ", 0), 0u) << r->message;
}

TEST(webhook_client, server_that_never_answers_times_out) {
  test_server server;
  server.never_answer();
  webhook_client client{1, loopback_allowed()};
  auto start = std::chrono::steady_clock::now();
  auto r = post_one(client, server.url("/slow?token=secret"), "{}", 200ms);
  auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(r);
  EXPECT_EQ(r->what, outcome::timeout) << r->message;
  EXPECT_TRUE(r->retryable());
  EXPECT_EQ(r->message, "POST " + server.url("/slow") + ": no answer within 200 ms");
  EXPECT_GE(elapsed, 190ms);
  EXPECT_LT(elapsed, 3s);
}

TEST(webhook_client, zero_timeout_times_out_at_once) {
  test_server server;
  server.never_answer();
  webhook_client client{1, loopback_allowed()};
  auto r = post_one(client, server.url("/x"), "{}", 0ms);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->what, outcome::timeout) << r->message;
}

TEST(webhook_client, connection_closed_without_an_answer_is_a_connect_error) {
  test_server server;
  server.close_at_once();
  webhook_client client{1, loopback_allowed()};
  auto r = post_one(client, server.url("/x"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->what, outcome::connect_error) << r->message;
  EXPECT_EQ(r->status, 0u);
  EXPECT_TRUE(r->retryable());
}

TEST(webhook_client, invalid_urls_are_reported_through_the_callback) {
  webhook_client client{1, loopback_allowed()};
  for (const char* url :
       {"", "ftp://x", "http://", "not a url", "http:///path", "mailto:a@b.c",
        "http://user:pw@127.0.0.1/x", "http://127.0.0.1:70000/x", "https://[v1.x]/"}) {
    collector got;
    EXPECT_NO_THROW(client.post(url, "{}", 1s, got.callback()));
    ASSERT_TRUE(got.wait_for(1)) << url;
    auto r = got.results().front();
    EXPECT_EQ(r.what, outcome::invalid_url) << url;
    EXPECT_FALSE(r.retryable());
    EXPECT_EQ(r.message.rfind("invalid URL: ", 0), 0u) << r.message;
    EXPECT_NE(got.threads().front(), std::this_thread::get_id()) << "not on a client thread";
  }
}

TEST(webhook_client, large_body_is_truncated_to_4_KiB) {
  test_server server;
  std::string big(100 * 1024, 'a');
  for (std::size_t i = 0; i < big.size(); ++i)
    big[i] = static_cast<char>('a' + i % 26);
  server.answer(200, big);
  webhook_client client{1, loopback_allowed()};
  auto r = post_one(client, server.url("/x"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->what, outcome::success) << r->message;
  EXPECT_EQ(r->body.size(), webhook_result::max_body);
  EXPECT_EQ(r->body, big.substr(0, webhook_result::max_body));
}

TEST(webhook_client, body_over_the_read_cap_keeps_status_and_beginning) {
  test_server server;
  std::string huge(2 * webhook_result::max_read, 'z');
  huge.replace(0, 5, "start");
  server.answer(503, huge);
  webhook_client client{1, loopback_allowed()};
  auto r = post_one(client, server.url("/x"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->what, outcome::server_error) << r->message;
  EXPECT_EQ(r->status, 503u);
  EXPECT_EQ(r->body, huge.substr(0, webhook_result::max_body));
}

TEST(webhook_client, many_concurrent_posts_each_get_one_callback) {
  constexpr int n = 50;
  test_server server;
  server.answer(200, "ok");
  std::array<std::atomic<int>, n> calls{};
  std::array<std::atomic<int>, n> successes{};
  std::atomic<int> total{0};
  std::mutex mutex;
  std::condition_variable cv;
  {
    webhook_client client(4, loopback_allowed());
    for (int i = 0; i < n; ++i) {
      client.post(server.url("/n?i=" + std::to_string(i)), "{\"n\":" + std::to_string(i) + "}", 5s,
                  [&, i](webhook_result r) {
                    calls[i].fetch_add(1);
                    if (r.what == outcome::success) successes[i].fetch_add(1);
                    std::lock_guard<std::mutex> guard{mutex};
                    total.fetch_add(1);
                    cv.notify_all();
                  });
    }
    std::unique_lock<std::mutex> guard{mutex};
    ASSERT_TRUE(cv.wait_for(guard, 10s, [&] { return total.load() >= n; }));
  }
  // The client is gone: no callback can come late.
  for (int i = 0; i < n; ++i) {
    EXPECT_EQ(calls[i].load(), 1) << i;
    EXPECT_EQ(successes[i].load(), 1) << i;
  }
  std::set<std::string> bodies;
  for (const auto& seen : server.requests())
    bodies.insert(seen.body);
  EXPECT_EQ(bodies.size(), static_cast<std::size_t>(n));
}

TEST(webhook_client, destroying_with_posts_in_flight_calls_every_callback) {
  test_server server;
  server.never_answer();
  collector got;
  constexpr std::size_t n = 10;
  auto client = std::make_unique<webhook_client>(2, loopback_allowed());
  for (std::size_t i = 0; i < n; ++i)
    client->post(server.url("/x"), "{}", 30s, got.callback());
  ASSERT_TRUE(server.wait_requests(n));
  auto start = std::chrono::steady_clock::now();
  client.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  ASSERT_TRUE(got.wait_for(n, 0ms)); // all called back before the destructor returned
  for (const auto& r : got.results()) {
    EXPECT_EQ(r.what, outcome::connect_error);
    EXPECT_EQ(r.message, "POST " + server.url("/x") + ": client stopped");
  }
}

TEST(webhook_client, destroying_right_after_posting_calls_every_callback) {
  test_server server;
  server.never_answer();
  collector got;
  constexpr std::size_t n = 20;
  {
    webhook_client client(3, loopback_allowed());
    for (std::size_t i = 0; i < n; ++i)
      client.post(server.url("/x"), "{}", 30s, got.callback());
    client.post("ftp://x", "{}", 30s, got.callback());
  }
  ASSERT_TRUE(got.wait_for(n + 1, 0ms));
  EXPECT_EQ(got.results().size(), n + 1);
}

TEST(webhook_client, posting_from_a_callback_during_destruction_reports_stopped) {
  test_server server;
  server.never_answer();
  collector got;
  auto client = std::make_unique<webhook_client>(1, loopback_allowed());
  webhook_client* raw = client.get();
  auto again = got.callback();
  client->post(server.url("/x"), "{}", 30s, [raw, again, &server](webhook_result r) {
    raw->post(server.url("/retry"), "{}", 30s, again); // a retry while the client stops
    again(std::move(r));
  });
  ASSERT_TRUE(server.wait_requests(1));
  client.reset();
  ASSERT_TRUE(got.wait_for(2, 0ms));
  for (const auto& r : got.results()) {
    EXPECT_EQ(r.what, outcome::connect_error);
    EXPECT_NE(r.message.find("client stopped"), std::string::npos) << r.message;
  }
}

TEST(webhook_client, retryable_by_outcome) {
  auto result = [](outcome what, unsigned status = 0) {
    webhook_result r;
    r.what = what;
    r.status = status;
    return r;
  };
  EXPECT_FALSE(result(outcome::success, 200).retryable());
  EXPECT_FALSE(result(outcome::rejected, 404).retryable());
  EXPECT_TRUE(result(outcome::rejected, 408).retryable());
  EXPECT_TRUE(result(outcome::rejected, 429).retryable());
  EXPECT_TRUE(result(outcome::server_error, 500).retryable());
  EXPECT_TRUE(result(outcome::connect_error).retryable());
  EXPECT_TRUE(result(outcome::timeout).retryable());
  EXPECT_FALSE(result(outcome::invalid_url).retryable());
  EXPECT_STREQ(to_string(outcome::server_error), "server_error");
}

// ---- https ------------------------------------------------------------------------------

/// A self-signed certificate (its own trust anchor) whose subjectAltName is `san`.
struct test_certificate {
  std::string cert_pem;
  std::string key_pem;
};

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(n));
}

test_certificate make_certificate(const char* san) {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-256"), EVP_PKEY_free);
  std::unique_ptr<X509, decltype(&X509_free)> cert(X509_new(), X509_free);
  if (!key || !cert) return {};
  X509* x = cert.get();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_set_pubkey(x, key.get());
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("shoal webhook test"), -1, -1,
                             0);
  X509_set_issuer_name(x, name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
  for (auto [nid, value] : {std::pair{NID_subject_alt_name, san},
                            std::pair{NID_basic_constraints, "critical,CA:TRUE"}}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    if (!ext) return {};
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
  }
  if (X509_sign(x, key.get(), EVP_sha256()) == 0) return {};
  test_certificate out;
  std::unique_ptr<BIO, decltype(&BIO_free)> cert_bio(BIO_new(BIO_s_mem()), BIO_free);
  std::unique_ptr<BIO, decltype(&BIO_free)> key_bio(BIO_new(BIO_s_mem()), BIO_free);
  PEM_write_bio_X509(cert_bio.get(), x);
  PEM_write_bio_PrivateKey(key_bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  out.cert_pem = bio_text(cert_bio.get());
  out.key_pem = bio_text(key_bio.get());
  return out;
}

/// An https test server with a certificate for `san`; while it lives, the default verify
/// paths of new clients trust that certificate alone (SSL_CERT_FILE).
class tls_fixture {
public:
  explicit tls_fixture(const char* san, bool trusted) : context_(ssl::context::tls_server) {
    auto cert = make_certificate(san);
    ok_ = !cert.cert_pem.empty();
    if (!ok_) return;
    context_.use_certificate_chain(net::buffer(cert.cert_pem));
    context_.use_private_key(net::buffer(cert.key_pem), ssl::context::pem);
    // Untrusted: an empty file, and the system's directory does not know the certificate.
    file_ = testing::TempDir() + "shoal_webhook_ca_" + std::to_string(::getpid()) + ".pem";
    std::ofstream(file_) << (trusted ? cert.cert_pem : std::string());
    ::setenv("SSL_CERT_FILE", file_.c_str(), 1);
    server_.emplace(&context_);
  }

  ~tls_fixture() {
    ::unsetenv("SSL_CERT_FILE");
    if (!file_.empty()) std::remove(file_.c_str());
  }

  bool ok() const {
    return ok_;
  }

  test_server& server() {
    return *server_;
  }

private:
  ssl::context context_;
  bool ok_ = false;
  std::string file_;
  std::optional<test_server> server_;
};

TEST(webhook_client, https_with_a_trusted_certificate) {
  tls_fixture tls("IP:127.0.0.1", true);
  ASSERT_TRUE(tls.ok());
  tls.server().answer(202, "queued");
  webhook_client client{1, loopback_allowed()};
  auto r = post_one(client, tls.server().url("/secure?a=b"), R"({"tls":true})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->what, outcome::success) << r->message;
  EXPECT_EQ(r->status, 202u);
  EXPECT_EQ(r->body, "queued");
  ASSERT_TRUE(tls.server().wait_requests(1));
  auto seen = tls.server().requests().at(0);
  EXPECT_EQ(seen.target, "/secure?a=b");
  EXPECT_EQ(seen.body, R"({"tls":true})");
}

TEST(webhook_client, https_with_an_untrusted_certificate_fails) {
  tls_fixture tls("IP:127.0.0.1", false);
  ASSERT_TRUE(tls.ok());
  webhook_client client{1, loopback_allowed()};
  auto r = post_one(client, tls.server().url("/x"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->what, outcome::connect_error) << r->message;
  EXPECT_NE(r->message.find("TLS handshake"), std::string::npos) << r->message;
  EXPECT_NE(r->message.find("certificate verify failed"), std::string::npos) << r->message;
  EXPECT_TRUE(tls.server().requests().empty());
}

TEST(webhook_client, https_with_a_certificate_for_another_host_fails) {
  tls_fixture tls("IP:127.0.0.2", true); // trusted, but not for 127.0.0.1
  ASSERT_TRUE(tls.ok());
  webhook_client client{1, loopback_allowed()};
  auto r = post_one(client, tls.server().url("/x"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->what, outcome::connect_error) << r->message;
  EXPECT_NE(r->message.find("certificate verify failed"), std::string::npos) << r->message;
  EXPECT_TRUE(tls.server().requests().empty());
}

} // namespace
} // namespace shoal::http
