// SPDX-License-Identifier: Apache-2.0
#include "http/session.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/object.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "http/change_stream.hpp"
#include "http/shard_service.hpp"
#include "http/request_metrics.hpp"

namespace shoal::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;

namespace {

/// Hands a shard's reply to the connection's strand. The shard (or a virtual actor)
/// calls `deliver` on a CAF worker thread; posting is the only thing done there.
template <class Sink, class Reply>
class session_sink final : public Sink {
public:
  session_sink(std::shared_ptr<session> s, std::uint64_t seq) : session_(std::move(s)), seq_(seq) {}

  void deliver(Reply&& reply) override {
    auto s = std::move(session_);
    auto ex = s->executor();
    net::post(ex, [s = std::move(s), seq = seq_, reply = std::move(reply)]() mutable {
      s->on_reply(seq, std::move(reply));
    });
  }

private:
  std::shared_ptr<session> session_;
  std::uint64_t seq_;
};

using doc_sink = session_sink<actors::reply_sink, actors::doc_reply>;
using actor_sink = session_sink<actors::call_sink, actors::actor_reply>;
using job_reply_sink = session_sink<jobs::job_sink, jobs::job_reply>;
using cache_reply_sink = session_sink<actors::cache_sink, actors::cache_reply>;

/// Hands one shard's reply to a gather call to the connection's strand.
class gather_sink final : public actors::reply_sink {
public:
  gather_sink(std::shared_ptr<session> s, std::uint64_t seq, std::uint32_t shard)
      : session_(std::move(s)), seq_(seq), shard_(shard) {}

  void deliver(actors::doc_reply&& reply) override {
    auto s = std::move(session_);
    auto ex = s->executor();
    net::post(ex,
              [s = std::move(s), seq = seq_, shard = shard_, reply = std::move(reply)]() mutable {
                s->on_gather_reply(seq, shard, std::move(reply));
              });
  }

private:
  std::shared_ptr<session> session_;
  std::uint64_t seq_;
  std::uint32_t shard_;
};

bool valid_request_id(std::string_view id) noexcept {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id)
    if (c < 0x21 || c > 0x7e || c == '"' || c == '\\') return false;
  return true;
}

} // namespace

session::session(net::ip::tcp::socket&& socket, server_context& ctx, bool reject)
    : ctx_(ctx), stream_(std::move(socket)), timer_(stream_.get_executor()), reject_(reject) {
  ctx_.metrics.connections.add(1);
}

session::~session() {
  if (in_flight_) ctx_.metrics.inflight.add(-1);
  ctx_.metrics.connections.add(-1);
}

void session::start() {
  // Start on the strand so that no handler of this session runs concurrently.
  net::dispatch(stream_.get_executor(), [self = shared_from_this()] {
    if (self->reject_) {
      self->ctx_.metrics.rejected_connections.inc();
      self->keep_alive_ = false;
      self->started_ = std::chrono::steady_clock::now();
      self->request_id_ = self->request_id_from(self->req_);
      self->finish(error_response(bhttp::status::service_unavailable, "overloaded",
                                  "too many connections", 11));
      return;
    }
    self->do_wait();
  });
}

void session::do_wait() {
  if (buffer_.size() > 0) return do_read(); // a pipelined request is already here
  // Idle keep-alive: wait for the first byte of the next request.
  stream_.expires_after(std::chrono::milliseconds(ctx_.settings.idle_timeout_ms));
  stream_.async_read_some(buffer_.prepare(4096),
                          beast::bind_front_handler(&session::on_wait, shared_from_this()));
}

void session::on_wait(beast::error_code ec, std::size_t bytes) {
  if (ec) return do_close(); // idle timeout, EOF or reset between requests: nothing to answer
  buffer_.commit(bytes);
  do_read();
}

void session::do_read() {
  parser_.emplace();
  parser_->header_limit(static_cast<std::uint32_t>(ctx_.settings.max_header_bytes));
  parser_->body_limit(ctx_.settings.max_body_bytes);
  // The whole request, header and body, must arrive within the header timeout.
  stream_.expires_after(std::chrono::milliseconds(ctx_.settings.header_timeout_ms));
  // The header first: a body over the limit is refused from its Content-Length, and a
  // client that sent "Expect: 100-continue" is told to go on before it sends the body.
  bhttp::async_read_header(stream_, buffer_, *parser_,
                           beast::bind_front_handler(&session::on_header, shared_from_this()));
}

void session::on_header(beast::error_code ec, std::size_t bytes) {
  if (ec) return on_read(ec, bytes);
  if (parser_->is_done()) return on_read(ec, bytes);
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
  if (ctx_.metrics.inflight.value() > static_cast<std::int64_t>(ctx_.settings.max_inflight)) {
    ctx_.metrics.rejected_requests.inc();
    route_ = route_id::unknown;
    return finish(error_response(bhttp::status::service_unavailable, "overloaded",
                                 "too many requests in flight", req_.version()));
  }
  auto routed = route(req_, ctx_.env);
  route_ = routed.route;
  if (auto* res = std::get_if<response>(&routed.outcome)) return finish(std::move(*res));
  awaiting_ = true;
  auto seq = ++seq_;
  if (auto* invocation = std::get_if<actor_invocation>(&routed.outcome)) {
    arm_timeout(seq, ctx_.env.actor_call_timeout_ms);
    ctx_.shards.call(std::move(invocation->call),
                     std::make_shared<actor_sink>(shared_from_this(), seq));
    return;
  }
  if (auto* invocation = std::get_if<job_invocation>(&routed.outcome))
    return send_job(seq, std::move(*invocation));
  if (auto* invocation = std::get_if<cache_invocation>(&routed.outcome)) {
    cache_call_ = cache_invocation{};
    cache_call_.request.op = invocation->request.op;
    cache_call_.request.key = invocation->request.key;
    arm_timeout(seq, ctx_.settings.request_timeout_ms);
    ctx_.shards.cache(std::move(invocation->request),
                      std::make_shared<cache_reply_sink>(shared_from_this(), seq));
    return;
  }
  if (auto* gather = std::get_if<gather_call>(&routed.outcome))
    return send_gather(seq, std::move(*gather));
  if (auto* feed = std::get_if<change_feed_call>(&routed.outcome)) {
    awaiting_ = false;
    return hand_over_changes(std::move(*feed));
  }
  call_ = std::move(std::get<doc_call>(routed.outcome));
  // The shard gets the request (body included); keep what rendering the reply needs.
  actors::doc_request outgoing = std::move(call_.request);
  call_.request = actors::doc_request{};
  call_.request.op = outgoing.op;
  call_.request.collection = outgoing.collection;
  call_.request.id = outgoing.id;
  arm_timeout(seq, ctx_.settings.request_timeout_ms);
  ctx_.shards.submit(std::move(outgoing), std::make_shared<doc_sink>(shared_from_this(), seq));
}

void session::send_job(std::uint64_t seq, job_invocation&& invocation) {
  auto& outgoing = invocation.request;
  // Keep what rendering the reply needs; the service gets the request (body included).
  job_call_ = job_invocation{};
  job_call_.request.op = outgoing.op;
  job_call_.request.queue = outgoing.queue;
  job_call_.request.id = outgoing.id;
  // A lease may wait for work at the broker: the answer is due only after that wait.
  std::uint64_t timeout = ctx_.settings.request_timeout_ms;
  if (outgoing.op == jobs::job_op::lease) timeout += outgoing.wait_ms;
  arm_timeout(seq, timeout);
  ctx_.shards.job(std::move(outgoing), std::make_shared<job_reply_sink>(shared_from_this(), seq));
}

void session::send_gather(std::uint64_t seq, gather_call&& call) {
  const auto shards = ctx_.shards.shard_count();
  gather_ = gather_call{};
  gather_.merge = std::move(call.merge);
  gathered_.clear();
  gathered_.resize(shards);
  gather_pending_ = shards;
  arm_timeout(seq, ctx_.settings.request_timeout_ms);
  for (std::uint32_t i = 0; i < shards; ++i) {
    auto copy = i + 1 == shards ? std::move(call.request) : call.request;
    ctx_.shards.submit_to(i, std::move(copy),
                          std::make_shared<gather_sink>(shared_from_this(), seq, i));
  }
}

void session::on_gather_reply(std::uint64_t seq, std::uint32_t shard, actors::doc_reply&& reply) {
  if (seq != seq_ || !awaiting_ || shard >= gathered_.size()) return;
  gathered_[shard] = std::move(reply);
  if (--gather_pending_ > 0) return;
  awaiting_ = false;
  timer_.cancel();
  auto merge = std::move(gather_.merge);
  gather_ = gather_call{};
  finish(merge(std::move(gathered_), req_.version()));
  gathered_.clear();
}

void session::hand_over_changes(change_feed_call&& call) {
  // The stream answers from here on and counts the request in the route metrics once its
  // status is known. The access log gets status 0 here: the answer is the stream's.
  auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  if (in_flight_) {
    in_flight_ = false;
    ctx_.metrics.inflight.add(-1);
  }
  log_access(0, 0, seconds);
  start_change_stream(std::move(stream_), ctx_, std::move(call), request_id_, req_.version());
}

void session::arm_timeout(std::uint64_t seq, std::uint64_t ms) {
  timeout_ms_ = ms;
  timer_.expires_after(std::chrono::milliseconds(ms));
  timer_.async_wait(beast::bind_front_handler(&session::on_timeout, shared_from_this(), seq));
}

void session::on_reply(std::uint64_t seq, actors::doc_reply&& reply) {
  if (seq != seq_ || !awaiting_) return; // answered already (timeout); the late reply is dropped
  awaiting_ = false;
  timer_.cancel();
  finish(render_doc_reply(call_, std::move(reply), req_.version()));
}

void session::on_reply(std::uint64_t seq, actors::actor_reply&& reply) {
  if (seq != seq_ || !awaiting_) return;
  awaiting_ = false;
  timer_.cancel();
  finish(render_actor_reply(std::move(reply), req_.version()));
}

void session::on_reply(std::uint64_t seq, jobs::job_reply&& reply) {
  if (seq != seq_ || !awaiting_) return;
  awaiting_ = false;
  timer_.cancel();
  finish(render_job_reply(job_call_, std::move(reply), req_.version()));
}

void session::on_reply(std::uint64_t seq, actors::cache_reply&& reply) {
  if (seq != seq_ || !awaiting_) return;
  awaiting_ = false;
  timer_.cancel();
  finish(render_cache_reply(cache_call_, std::move(reply), req_.version()));
}

void session::on_timeout(std::uint64_t seq, beast::error_code ec) {
  if (ec || seq != seq_ || !awaiting_) return;
  awaiting_ = false;
  finish(error_response(bhttp::status::gateway_timeout, "timeout",
                        fmt::format("no answer within {} ms", timeout_ms_), req_.version()));
}

void session::finish(response&& res) {
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
  // Responses written during a drain close their connection.
  res.keep_alive(keep_alive_ && !ctx_.draining.load(std::memory_order_relaxed));
  if (in_flight_) {
    in_flight_ = false;
    ctx_.metrics.inflight.add(-1);
  }
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
  if (!keep_alive || ctx_.draining.load(std::memory_order_relaxed)) return do_close();
  do_wait();
}

void session::do_close() {
  beast::error_code ec;
  stream_.socket().shutdown(net::ip::tcp::socket::shutdown_send, ec);
  stream_.cancel();
}

} // namespace shoal::http
