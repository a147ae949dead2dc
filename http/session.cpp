// SPDX-License-Identifier: Apache-2.0
#include "http/session.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/read_size.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/object.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "http/errors.hpp"
#include "http/framing.hpp"
#include "http/request_metrics.hpp"

namespace shoal::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;

namespace {

/// How long a closing connection reads (and drops) what its client still sends.
constexpr std::chrono::milliseconds max_linger{1000};

/// Requests admission control leaves alone: the probes and /metrics (a node under load
/// must still say how it is), OPTIONS, and what waits on purpose, which would hold a
/// place for its whole wait: change streams (/v1/collections/{c}/changes) and lease long
/// polls (/v1/queues/{q}/lease). A document named "changes" is not one of them.
bool exempt(const bhttp::request_header<>& h) {
  if (h.method() == bhttp::verb::options) return true;
  auto path = std::string_view(h.target());
  path = path.substr(0, path.find('?'));
  if (path == "/healthz" || path == "/readyz" || path == "/metrics") return true;
  // /v1/{family}/{name}/{what}: exactly four segments.
  auto waits = [&](std::string_view family, std::string_view what) {
    if (path.substr(0, family.size()) != family) return false;
    auto rest = path.substr(family.size());
    const auto slash = rest.find('/');
    return slash != 0 && slash != std::string_view::npos && rest.substr(slash + 1) == what;
  };
  return waits("/v1/collections/", "changes") || waits("/v1/queues/", "lease");
}

bool valid_request_id(std::string_view id) noexcept {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id)
    if (c < 0x21 || c > 0x7e || c == '"' || c == '\\') return false;
  return true;
}

} // namespace

session::session(net::ip::tcp::socket&& socket, server_context& ctx)
    : ctx_(ctx), stream_(std::move(socket)), timer_(stream_.get_executor()) {
  ctx_.metrics.connections.add(1);
}

session::~session() {
  leave_admission(false);
  if (closing_) ctx_.closing.fetch_sub(1, std::memory_order_relaxed);
  if (in_flight_) ctx_.metrics.inflight.add(-1);
  if (slot_) ctx_.connections.leave(*slot_);
  ctx_.metrics.connections.add(-1);
}

void session::start(connection_table::admission a) {
  if (a.outcome == connection_table::verdict::admitted) slot_ = a.at;
  // Start on the strand so that no handler of this session runs concurrently.
  net::dispatch(stream_.get_executor(), [self = shared_from_this(), a = std::move(a)] {
    switch (a.outcome) {
    case connection_table::verdict::admitted:
      if (auto idle = a.evicted.lock()) {
        self->ctx_.metrics.evicted_connections.inc();
        idle->evict();
      }
      return self->do_wait();
    case connection_table::verdict::full:
      return self->refuse("too many connections");
    case connection_table::verdict::client_full:
      return self->refuse("too many connections from this client");
    }
  });
}

void session::refuse(std::string message) {
  ctx_.metrics.rejected_connections.inc();
  keep_alive_ = false;
  started_ = std::chrono::steady_clock::now();
  request_id_ = request_id_from(req_);
  finish(error_response(core::error{core::errc::overloaded, std::move(message)}, 11));
}

void session::evict() {
  net::post(stream_.get_executor(), [self = shared_from_this()] {
    if (!self->waiting_) return; // a request began meanwhile: it is served
    self->evicted_ = true;
    self->woken_ = true;
    self->stream_.cancel();
  });
}

void session::on_drain() {
  net::post(stream_.get_executor(), [self = shared_from_this()] {
    if (!self->waiting_) return; // busy: its answer carries Connection: close
    self->woken_ = true;
    self->stream_.cancel(); // wait again, for the drain's grace only
  });
}

void session::do_wait() {
  if (buffer_.size() > 0) return do_read(); // a pipelined request is already here
  if (evicted_) return do_close();
  // Wait for the first byte of the next request: a new connection as long as a request
  // may take (so connections that never send free their place soon), a kept-alive one
  // for the idle timeout, and during a drain only for the drain's grace.
  if (ctx_.draining.load(std::memory_order_relaxed)) {
    stream_.expires_at(std::chrono::steady_clock::time_point(
      std::chrono::nanoseconds(ctx_.drain_idle_until.load(std::memory_order_relaxed))));
  } else {
    stream_.expires_after(std::chrono::milliseconds(served_ ? ctx_.settings.idle_timeout_ms
                                                            : ctx_.settings.header_timeout_ms));
  }
  waiting_ = true;
  if (slot_) ctx_.connections.idle(*slot_);
  stream_.async_read_some(buffer_.prepare(4096),
                          beast::bind_front_handler(&session::on_wait, shared_from_this()));
}

void session::on_wait(beast::error_code ec, std::size_t bytes) {
  waiting_ = false;
  if (slot_) ctx_.connections.busy(*slot_);
  const bool woken = std::exchange(woken_, false);
  // Woken by an eviction or a drain with nothing read: close, or wait for the grace.
  if (woken && ec == net::error::operation_aborted) return do_wait();
  if (ec) return do_close(); // timeout, EOF or reset between requests: nothing to answer
  buffer_.commit(bytes);
  do_read();
}

void session::do_read() {
  parser_.emplace();
  folds_ = {};
  parser_->header_limit(static_cast<std::uint32_t>(ctx_.settings.max_header_bytes));
  parser_->body_limit(ctx_.settings.max_body_bytes);
  // The whole request, header and body, must arrive within the header timeout.
  stream_.expires_after(std::chrono::milliseconds(ctx_.settings.header_timeout_ms));
  // The header first: a body over the limit is refused from its Content-Length, and a
  // client that sent "Expect: 100-continue" is told to go on before it sends the body.
  read_header();
}

void session::read_header() {
  // Beast's parser consumes the header as it arrives (need_more may still consume a
  // part); the bytes it consumes are the raw header block, checked for folded lines.
  if (buffer_.size() > 0) {
    beast::error_code ec;
    const auto data = buffer_.data();
    const auto used = parser_->put(data, ec);
    const bool folded = folds_.feed(std::string_view(static_cast<const char*>(data.data()), used));
    buffer_.consume(used);
    if (folded)
      return reject_framing(framing_problem{
        400, "bad_request", "a header field is folded over several lines (obs-fold)"});
    if (ec != bhttp::error::need_more) return on_header(ec, used);
  }
  stream_.async_read_some(buffer_.prepare(beast::read_size(buffer_, 65536)),
                          beast::bind_front_handler(&session::on_header_bytes, shared_from_this()));
}

void session::on_header_bytes(beast::error_code ec, std::size_t bytes) {
  if (ec == net::error::eof) {
    // Closed before a whole header: nothing to answer when nothing of a request came.
    if (!parser_->got_some() && buffer_.size() == 0) return do_close();
    ec = bhttp::error::partial_message;
  }
  if (ec) return on_read(ec, 0);
  buffer_.commit(bytes);
  read_header();
}

void session::reject_framing(const framing_problem& problem) {
  keep_alive_ = false;
  started_ = std::chrono::steady_clock::now();
  req_ = {};
  request_id_ = request_id_from(parser_->get());
  route_ = route_id::unknown;
  finish(
    error_response(static_cast<bhttp::status>(problem.status), problem.code, problem.message, 11));
}

void session::on_header(beast::error_code ec, std::size_t bytes) {
  if (ec) return on_read(ec, bytes);
  // A request whose body length cannot be trusted is answered and its connection
  // closed before anything of its body is read (request smuggling).
  if (auto problem = check_framing(parser_->get())) return reject_framing(*problem);
  if (exempt(parser_->get())) return after_admission();
  admit();
}

void session::admit() {
  const auto now = std::chrono::steady_clock::now();
  auto verdict = ctx_.admit.enter(now, [self = shared_from_this()](bool admitted) {
    net::post(self->stream_.get_executor(), [self, admitted] { self->on_admitted(admitted); });
  });
  switch (verdict) {
  case admission::verdict::admitted:
    admitted_ = true;
    admitted_at_ = now;
    return after_admission();
  case admission::verdict::queued:
    // The socket is not read meanwhile: the body stays in the kernel's buffers. The
    // wait ends in on_admitted, admitted or refused (the server's sweep ends the
    // waits that run out).
    queued_ = true;
    queued_at_ = now;
    return;
  case admission::verdict::full:
    return shed(fmt::format("{} requests are waiting already", ctx_.settings.max_queued));
  case admission::verdict::too_slow:
    return shed(fmt::format("the requests waiting would take longer than {} ms",
                            ctx_.settings.queue_timeout_ms));
  }
}

void session::on_admitted(bool admitted) {
  if (!queued_) return;
  queued_ = false;
  if (!admitted)
    return shed(fmt::format("waited {} ms for admission", ctx_.settings.queue_timeout_ms));
  admitted_ = true;
  admitted_at_ = std::chrono::steady_clock::now();
  ctx_.metrics.queue_wait.observe(std::chrono::duration<double>(admitted_at_ - queued_at_).count());
  after_admission();
}

void session::shed(std::string message) {
  ctx_.metrics.rejected_requests.inc();
  refused_ = true;
  started_ = std::chrono::steady_clock::now();
  // A body still unread cannot be skipped safely: such a connection closes.
  const bool whole = parser_->is_done();
  req_ = parser_->release();
  keep_alive_ = whole && req_.keep_alive();
  request_id_ = request_id_from(req_);
  route_ = route_id::unknown;
  finish(error_response(core::error{core::errc::overloaded, std::move(message)}, req_.version()));
}

void session::leave_admission(bool count) {
  if (!admitted_) return;
  admitted_ = false;
  const auto now = std::chrono::steady_clock::now();
  ctx_.admit.leave(now, count
                          ? std::optional<std::chrono::steady_clock::duration>(now - admitted_at_)
                          : std::nullopt);
}

void session::after_admission() {
  if (parser_->is_done()) return on_read({}, 0);
  auto expect = parser_->get()[bhttp::field::expect];
  if (beast::iequals(expect, "100-continue")) {
    continue_ = std::make_unique<bhttp::response<bhttp::empty_body>>(bhttp::status::continue_, 11);
    return bhttp::async_write(
      stream_, *continue_,
      beast::bind_front_handler(&session::on_continue_sent, shared_from_this()));
  }
  read_body();
}

void session::on_continue_sent(beast::error_code ec, std::size_t) {
  continue_.reset();
  if (ec) return do_close();
  read_body();
}

void session::read_body() {
  bhttp::async_read(stream_, buffer_, *parser_,
                    beast::bind_front_handler(&session::on_read, shared_from_this()));
}

void session::on_read(beast::error_code ec, std::size_t) {
  if (ec == bhttp::error::end_of_stream) return do_close();
  if (ec) return reject_request(ec);
  req_ = parser_->release();
  served_ = true;
  handle();
}

void session::reject_request(beast::error_code ec) {
  // The connection cannot carry on after a broken request: answer if the client can
  // still hear it, then close.
  if (ec == net::error::connection_reset || ec == net::error::broken_pipe
      || ec == net::error::operation_aborted || ec == beast::error::timeout)
    return do_close();
  keep_alive_ = false;
  started_ = std::chrono::steady_clock::now();
  req_ = {};
  request_id_ = request_id_from(req_);
  route_ = route_id::unknown;
  // A timed-out tcp_stream has closed its socket already: nothing can be answered.
  if (ec == beast::error::timeout) return do_close();
  if (ec == bhttp::error::header_limit)
    return finish(error_response(bhttp::status::request_header_fields_too_large, "header_too_large",
                                 "the header block is too large", 11));
  if (ec == bhttp::error::body_limit)
    return finish(
      error_response(bhttp::status::payload_too_large, "body_too_large",
                     fmt::format("the body exceeds {} bytes", ctx_.settings.max_body_bytes), 11));
  finish(error_response(bhttp::status::bad_request, "bad_request",
                        "malformed HTTP request: " + ec.message(), 11));
}

std::string session::request_id_from(const request& req) {
  if (auto it = req.find("x-request-id"); it != req.end() && valid_request_id(it->value()))
    return std::string(it->value());
  auto n = ctx_.next_request_id.fetch_add(1, std::memory_order_relaxed);
  return fmt::format("{}-{:x}", ctx_.request_id_prefix, n);
}

void session::handle() {
  started_ = std::chrono::steady_clock::now();
  request_id_ = request_id_from(req_);
  keep_alive_ = req_.keep_alive();
  in_flight_ = true;
  ctx_.metrics.inflight.add(1);
  // The number first: a handler may be answered on another thread before route() returns
  // (the answer is posted to this strand, so it runs after this function).
  const auto seq = ++seq_;
  exchange ex{req_, ctx_.env, ctx_.shards, shared_from_this(), seq};
  auto routed = route(ex);
  route_ = routed.route;
  if (auto* res = std::get_if<response>(&routed.outcome)) return finish(std::move(*res));
  if (auto* next = std::get_if<take_over>(&routed.outcome)) return hand_over(std::move(*next));
  awaiting_ = true;
  const auto& wait = std::get<pending>(routed.outcome);
  writes_ = wait.writes;
  arm_timeout(seq, wait.timeout_ms);
}

void session::post(std::uint64_t seq, response&& res) {
  net::post(stream_.get_executor(),
            [self = shared_from_this(), seq, res = std::move(res)]() mutable {
              self->on_response(seq, std::move(res));
            });
}

void session::on_response(std::uint64_t seq, response&& res) {
  if (seq != seq_ || !awaiting_) return; // answered already (timeout); the late one is dropped
  awaiting_ = false;
  timer_.cancel();
  finish(std::move(res));
}

void session::hand_over(take_over&& next) {
  // The new owner answers from here on and counts the request in the route metrics once
  // its status is known. The access log gets status 0 here: the answer is the stream's.
  auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  if (in_flight_) {
    in_flight_ = false;
    ctx_.metrics.inflight.add(-1);
  }
  leave_admission(false); // not a request that ended: the stream's life is its own
  log_access(0, 0, seconds);
  next.start(std::move(stream_), ctx_, request_id_, req_);
}

void session::arm_timeout(std::uint64_t seq, std::uint64_t ms) {
  timeout_ms_ = ms;
  timer_.expires_after(std::chrono::milliseconds(ms));
  timer_.async_wait(beast::bind_front_handler(&session::on_timeout, shared_from_this(), seq));
}

void session::on_timeout(std::uint64_t seq, beast::error_code ec) {
  if (ec || seq != seq_ || !awaiting_) return;
  awaiting_ = false;
  // A write may still be applied after this answer: say that its outcome is unknown.
  if (writes_)
    return finish(error_response(
      core::error{core::errc::outcome_unknown,
                  fmt::format("no answer within {} ms: the write may or may not have been applied",
                              timeout_ms_)},
      req_.version()));
  finish(error_response(
    core::error{core::errc::timeout, fmt::format("no answer within {} ms", timeout_ms_)},
    req_.version()));
}

void session::finish(response&& res) {
  // An unreadable request (reject_framing) left req_ empty: answered in the usual shape.
  if (res.result_int() >= 400 && wants_problem(req_[bhttp::field::accept])) to_problem(res);
  ctx_.cors.apply(req_, res);
  auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  auto status = res.result_int();
  auto body_bytes = res.body().size();
  if (req_.method() == bhttp::verb::head && body_bytes > 0) {
    // HEAD: the headers of the GET, Content-Length included, and no body.
    res.body().clear();
    res.content_length(body_bytes);
  }
  res.set("x-request-id", request_id_);
  res.set(bhttp::field::server, "shoal");
  res.set(bhttp::field::date, dates_.now());
  // Responses written during a drain close their connection.
  res.keep_alive(keep_alive_ && !ctx_.draining.load(std::memory_order_relaxed));
  if (in_flight_) {
    in_flight_ = false;
    ctx_.metrics.inflight.add(-1);
  }
  leave_admission(true);
  ctx_.metrics.record(route_, req_.method_string(), status, seconds);
  log_access(status, body_bytes, seconds);
  res_ = std::move(res);
  bhttp::async_write(
    stream_, res_,
    beast::bind_front_handler(&session::on_write, shared_from_this(), res_.keep_alive()));
}

void session::log_access(unsigned status, std::size_t body_bytes, double seconds) {
  auto* log = ctx_.logs.access.get();
  if (!log) return;
  auto micros = static_cast<long long>(seconds * 1e6);
  if (ctx_.logs.access_json) {
    boost::json::object o;
    o["request_id"] = request_id_;
    o["method"] = std::string_view(req_.method_string());
    o["target"] = std::string_view(req_.target());
    o["route"] = route_label(route_);
    o["status"] = status;
    o["bytes"] = body_bytes;
    o["duration_us"] = micros;
    // The access logger's JSON pattern supplies the braces and the common members.
    auto members = boost::json::serialize(o);
    log->info("{}", std::string_view(members).substr(1, members.size() - 2));
  } else {
    log->info("{} {} {} {}B {}us rid={}", std::string_view(req_.method_string()),
              std::string_view(req_.target()), status, body_bytes, micros, request_id_);
  }
}

void session::on_write(bool keep_alive, beast::error_code ec, std::size_t) {
  if (ec) return do_close();
  res_ = {};
  // A response that promised keep-alive keeps it, even if a drain began meanwhile: the
  // client may send its next request at once, and it gets the drain's grace to do so.
  if (!keep_alive) return do_close();
  if (std::exchange(refused_, false) && ctx_.settings.hold_refused_ms > 0
      && !ctx_.draining.load(std::memory_order_relaxed)) {
    // Told to come back later: what it sends meanwhile waits unread.
    timer_.expires_after(std::chrono::milliseconds(ctx_.settings.hold_refused_ms));
    return timer_.async_wait(beast::bind_front_handler(&session::on_hold_end, shared_from_this()));
  }
  do_wait();
}

void session::on_hold_end(beast::error_code ec) {
  if (ec) return do_close();
  do_wait();
}

void session::do_close() {
  if (closing_) return;
  closing_ = true;
  leave_admission(false);
  ctx_.closing.fetch_add(1, std::memory_order_relaxed);
  // A lingering close: shut our side (the client reads the end after our last response),
  // then read and drop what the client still sends until it closes too. Closing with
  // unread bytes would make the kernel send a reset, which can destroy that response.
  beast::error_code ec;
  stream_.socket().shutdown(net::ip::tcp::socket::shutdown_send, ec);
  if (ec) return stream_.close(); // closed already (a timeout) or never connected
  buffer_.consume(buffer_.size());
  stream_.expires_after(
    std::min(max_linger, std::chrono::milliseconds(ctx_.settings.header_timeout_ms)));
  stream_.async_read_some(buffer_.prepare(4096),
                          beast::bind_front_handler(&session::on_linger, shared_from_this()));
}

void session::on_linger(beast::error_code ec, std::size_t) {
  if (ec) return stream_.close(); // the client closed, reset, or lingered too long
  stream_.async_read_some(buffer_.prepare(4096),
                          beast::bind_front_handler(&session::on_linger, shared_from_this()));
}

} // namespace shoal::http
