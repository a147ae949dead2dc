// SPDX-License-Identifier: Apache-2.0
#include "http/server.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <random>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "http/request_metrics.hpp"
#include "http/session.hpp"

namespace shoal::http {

namespace net = boost::asio;
using tcp = net::ip::tcp;

struct server::impl {
  impl(const config::http_settings& s, protocol::shard_client& shards, route_env env,
       request_metrics& m, server_logs logs)
      : ctx{s,
            shards,
            std::move(env),
            cors_policy{s.cors_origins},
            m,
            std::move(logs),
            {s.max_connections, s.max_connections_per_client},
            admission::options{s.min_inflight, s.max_inflight, s.max_queued,
                               std::chrono::milliseconds(s.queue_timeout_ms), &m.concurrency_limit,
                               &m.queued_requests},
            {},
            {},
            {},
            {},
            {}},
        ioc(static_cast<int>(threads_for(s))), acceptor(ioc), signals(ioc, SIGINT, SIGTERM),
        drain_timer(ioc), queue_timer(ioc) {
    std::random_device rd;
    ctx.request_id_prefix = fmt::format("{:08x}", rd());
    // One source for the wait on a shard's answer: the http settings.
    ctx.env.request_timeout_ms = s.request_timeout_ms;
    // Readiness also turns false as soon as a drain starts.
    auto ready = std::move(ctx.env.ready);
    ctx.env.ready = [this, ready = std::move(ready)] {
      return !ctx.draining.load(std::memory_order_relaxed) && (!ready || ready());
    };
  }

  static unsigned threads_for(const config::http_settings& s) {
    if (s.threads != 0) return s.threads;
    return std::max(1u, std::thread::hardware_concurrency());
  }

  void do_accept() {
    acceptor.async_accept(
      net::make_strand(ioc), [this](boost::system::error_code ec, tcp::socket socket) {
        if (ec == net::error::operation_aborted || !acceptor.is_open()) return; // closed by a drain
        if (ec) {
          // Out of file descriptors and the like: log and keep accepting.
          if (ctx.logs.http) ctx.logs.http->warn("accept failed: {}", ec.message());
        } else if (auto peer = socket.remote_endpoint(ec); !ec) {
          // Admitted here, in the order of the accepts; the gauge counts the new session.
          auto s = std::make_shared<session>(std::move(socket), ctx);
          auto joined = ctx.connections.admit(s, peer.address().to_string(),
                                              ctx.metrics.connections.value() - 1
                                                - ctx.closing.load(std::memory_order_relaxed));
          s->start(std::move(joined));
        } // else: gone before it was accepted
        do_accept();
      });
  }

  void on_signal(boost::system::error_code ec, int signal) {
    if (ec) return;
    if (ctx.draining.load()) {
      if (ctx.logs.http) ctx.logs.http->warn("signal {} during drain: stopping now", signal);
      ioc.stop();
      return;
    }
    if (ctx.logs.http) ctx.logs.http->info("signal {}: draining", signal);
    begin_drain();
    signals.async_wait([this](auto e, int s) { on_signal(e, s); });
  }

  void begin_drain() {
    if (draining_started.exchange(true)) return;
    const auto now = std::chrono::steady_clock::now();
    const auto timeout = std::chrono::milliseconds(ctx.settings.drain_timeout_ms);
    drain_deadline = now + timeout;
    // A connection waiting for a request may have one on the wire already: it waits this
    // much longer for it, answers it with Connection: close, and closes.
    ctx.drain_idle_until.store(
      std::chrono::duration_cast<std::chrono::nanoseconds>(
        (now + std::min(timeout, std::chrono::milliseconds(ctx.settings.drain_grace_ms)))
          .time_since_epoch())
        .count(),
      std::memory_order_relaxed);
    // The grace is set before any session can see the drain.
    ctx.draining.store(true);
    if (ctx.env.on_drain) ctx.env.on_drain();
    boost::system::error_code ignored;
    acceptor.close(ignored);
    for (auto& member : ctx.connections.members())
      if (auto s = member.lock()) s->on_drain();
    check_drained();
  }

  void check_drained() {
    // Done when every HTTP connection closed (after its last answer and a lingering
    // close). Change streams end with "node draining" on their own and are not waited for.
    auto inflight = ctx.metrics.inflight.value();
    if ((inflight <= 0 && ctx.connections.size() == 0)
        || std::chrono::steady_clock::now() >= drain_deadline) {
      if (ctx.logs.http) {
        if (inflight > 0)
          ctx.logs.http->warn("drain timeout: {} requests still in flight", inflight);
        else
          ctx.logs.http->info("drained");
      }
      ioc.stop();
      return;
    }
    drain_timer.expires_after(std::chrono::milliseconds(10));
    drain_timer.async_wait([this](boost::system::error_code ec) {
      if (!ec) check_drained();
    });
  }

  /// Ends the admission waits that ran out, a tenth of http.queue_timeout_ms after
  /// another (1 to 100 ms): one timer for the whole queue instead of one per request.
  void sweep_queue() {
    const auto period = std::chrono::milliseconds(
      std::clamp<std::uint32_t>(ctx.settings.queue_timeout_ms / 10, 1, 100));
    queue_timer.expires_after(period);
    queue_timer.async_wait([this](boost::system::error_code ec) {
      if (ec) return;
      ctx.admit.expire(std::chrono::steady_clock::now());
      sweep_queue();
    });
  }

  server_context ctx;
  net::io_context ioc;
  tcp::acceptor acceptor;
  net::signal_set signals;
  net::steady_timer drain_timer;
  net::steady_timer queue_timer;
  std::chrono::steady_clock::time_point drain_deadline;
  /// begin_drain may run on two I/O threads at once (a signal and server::drain).
  std::atomic<bool> draining_started{false};
};

server::server(const config::http_settings& settings, protocol::shard_client& shards, route_env env,
               request_metrics& metrics, server_logs logs)
    : impl_(std::make_unique<impl>(settings, shards, std::move(env), metrics, std::move(logs))) {}

server::~server() = default;

std::uint16_t server::listen() {
  auto& a = impl_->acceptor;
  tcp::endpoint ep{net::ip::make_address(impl_->ctx.settings.host), impl_->ctx.settings.port};
  a.open(ep.protocol());
  a.set_option(net::socket_base::reuse_address(true));
  a.bind(ep);
  a.listen(net::socket_base::max_listen_connections);
  return a.local_endpoint().port();
}

void server::run() {
  auto& d = *impl_;
  d.signals.async_wait([&d](auto ec, int s) { d.on_signal(ec, s); });
  d.sweep_queue();
  d.do_accept();
  std::vector<std::thread> threads;
  auto n = impl::threads_for(d.ctx.settings);
  for (unsigned i = 1; i < n; ++i)
    threads.emplace_back([&d] { d.ioc.run(); });
  d.ioc.run();
  for (auto& t : threads)
    t.join();
  // Requests still waiting for admission hold their sessions, whose sockets belong to
  // the io_context: they go now, before it does.
  d.ctx.admit.clear();
}

void server::drain() {
  net::post(impl_->ioc, [d = impl_.get()] { d->begin_drain(); });
}

bool server::draining() const noexcept {
  return impl_->ctx.draining.load();
}

} // namespace shoal::http
