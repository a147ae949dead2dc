// SPDX-License-Identifier: Apache-2.0
// The change feed's Server-Sent Events stream (docs/changes.md). One change_stream per
// GET /v1/collections/{c}/changes, on the connection's strand:
//
//   opening   one read of the bounds (after = from now, no wait) per shard: where "now"
//             and "start" are, and whether a resume point is inside every shard's log.
//             A refusal (410 gone, 503) is still an HTTP error response, as no byte of
//             the stream is out yet.
//   streaming the 200 header and an `id:` with the starting position, then reads: a
//             shard whose log has events past the stream's position gets catch-up reads,
//             sized to a budget (half of changes.max_buffer_bytes, less what is queued
//             and what other reads hold), so a replay runs at the client's pace; a shard
//             at the head of its log gets a long poll (wait_ms = changes.heartbeat_ms),
//             held back only while half the byte limit waits to be written. Events are
//             written in arrival order, each with the position after it as its `id:`.
//             When the answers of long polls take the queue past the byte limit, the
//             client does not keep up with the writes: `event: overflow` names the
//             resume point and the stream ends.
//   closing   the queued bytes are flushed (each write within http.idle_timeout_ms),
//             then the socket is closed.
//
// Memory: at most one read per shard is out, and the queue is bounded by the byte limit
// plus the batches of the reads out. The answers hold the stream weakly: answers after the
// end are dropped, and a stream lives as long as its pending socket operations and timers.
#include "http/change_stream.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/socket_base.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "changes/messages.hpp"
#include "http/errors.hpp"
#include "http/http_date.hpp"
#include "http/request_metrics.hpp"
#include "http/server_context.hpp"
#include "protocol/shard_client.hpp"
#include "util/json.hpp"

namespace shoal::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;

namespace {

/// `after` of a read that starts from now: the shard answers at once with its bounds.
constexpr std::uint64_t from_now = std::numeric_limits<std::uint64_t>::max();
/// Most events one shard read returns.
constexpr std::uint32_t max_batch_events = 1000;
/// First guess of an event's size on the wire, before any was written.
constexpr std::size_t initial_event_bytes = 512;
/// A shard that answered an error mid-stream is asked again after this long.
constexpr std::chrono::milliseconds retry_delay{500};
/// The `retry:` a stream starts with: an EventSource reconnects after this many ms.
constexpr std::uint32_t reconnect_ms = 1000;
/// Most bytes handed to one write: each write must finish within http.idle_timeout_ms.
constexpr std::size_t max_write_bytes = 64 * 1024;

/// Appends `data` as SSE `data:` lines: a line break inside it (which normalized JSON
/// never has) starts another `data:` line, which a client joins back with "\n".
void append_data_lines(std::string& out, std::string_view data) {
  out += "data: ";
  std::size_t from = 0;
  while (true) {
    auto brk = data.find_first_of("\r\n", from);
    if (brk == std::string_view::npos) break;
    out.append(data.substr(from, brk - from));
    out += "\ndata: ";
    from = brk + 1;
    if (data[brk] == '\r' && from < data.size() && data[from] == '\n') ++from;
  }
  out.append(data.substr(from));
  out += '\n';
}

class change_stream;

using read_answer = core::result<changes::batch>;

/// Hands one shard's answer to the stream's strand. An answer destroyed without being
/// delivered (its shard went away) counts as shard_unavailable, so no shard is waited
/// for forever.
class stream_answer final : public core::answer<changes::batch> {
public:
  stream_answer(std::weak_ptr<change_stream> stream, std::uint32_t shard)
      : stream_(std::move(stream)), shard_(shard) {}

  ~stream_answer() override {
    if (delivered_) return;
    try {
      hand_over(
        core::error{core::errc::shard_unavailable, "the shard dropped the change feed's read"});
    } catch (...) {
      // Out of memory while posting: the stream's write timeout ends it eventually.
    }
  }

  void deliver(read_answer&& r) override {
    delivered_ = true;
    hand_over(std::move(r));
  }

private:
  void hand_over(read_answer&& r);

  std::weak_ptr<change_stream> stream_;
  std::uint32_t shard_;
  bool delivered_ = false;
};

class change_stream : public std::enable_shared_from_this<change_stream> {
public:
  change_stream(beast::tcp_stream&& stream, server_context& ctx, std::string collection,
                std::string since, std::string request_id, const request& req)
      : ctx_(ctx), stream_(std::move(stream)), timer_(stream_.get_executor()),
        collection_(std::move(collection)), since_(std::move(since)),
        request_id_(std::move(request_id)), version_(req.version()),
        problem_(wants_problem(req[bhttp::field::accept])), cors_origin_(req[bhttp::field::origin]),
        max_bytes_(std::max<std::size_t>(ctx.env.changes_max_buffer_bytes, 2)),
        heartbeat_(std::max<std::uint32_t>(ctx.env.changes_heartbeat_ms, 1)) {
    // The session that accepted the connection is gone; the stream counts it from here.
    ctx_.metrics.connections.add(1);
  }

  /// Counts the request in the route metrics once its status is known (200 when the
  /// stream starts, or the error it was refused with).
  void record(unsigned status) {
    auto seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    ctx_.metrics.record(route_id::changes, "GET", status, seconds);
  }

  ~change_stream() {
    ctx_.metrics.connections.add(-1);
  }

  change_stream(const change_stream&) = delete;
  change_stream& operator=(const change_stream&) = delete;

  net::any_io_executor executor() {
    return stream_.get_executor();
  }

  void start() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->open(); });
  }

  /// One shard's answer, on the strand.
  void on_reply(std::uint32_t shard, read_answer&& reply) {
    if (phase_ != phase::opening && phase_ != phase::streaming) return;
    if (shard >= shards_.size() || shards_[shard].out == read_kind::none) return;
    auto& s = shards_[shard];
    const auto kind = s.out;
    s.out = read_kind::none;
    reserved_ -= s.reserved;
    s.reserved = 0;
    if (phase_ == phase::opening) {
      on_open_reply(shard, std::move(reply));
    } else {
      on_stream_reply(shard, kind, std::move(reply));
      issue_catch_up(); // the budget this read held is free again
    }
    pump();
  }

private:
  enum class phase : std::uint8_t { opening, streaming, closing, closed };
  /// Where the stream starts.
  enum class origin : std::uint8_t { now, oldest, resume };
  /// What a shard's outstanding read is.
  enum class read_kind : std::uint8_t {
    none,
    bounds,   ///< opening: the log's bounds, at once (after = from now)
    catch_up, ///< events the log is known to have: answered at once, paid from the budget
    live,     ///< a long poll at the head of the log: answered when the next write comes
  };

  struct shard_state {
    read_kind out = read_kind::none; ///< at most one read per shard is out
    std::size_t reserved = 0;        ///< bytes of the budget a catch-up read holds
    bool parked = false;             ///< at the head, waiting for the queue to drain
    bool behind = false;             ///< in `behind_`: waiting for budget to catch up
    bool from_start = false;         ///< a stream from "start" that sent none of its events yet
    std::uint64_t last = 0;          ///< the newest seq the shard reported
    std::unique_ptr<net::steady_timer> retry;
  };

  // -- opening ------------------------------------------------------------------------------

  void open() {
    // The session's header timeout must not apply to the stream's reads and writes.
    stream_.expires_never();
    // The kernel's send buffer would otherwise grow to megabytes (tcp_wmem) for a client
    // that does not read: the byte limit bounds it as well as the queue.
    beast::error_code ignored;
    stream_.socket().set_option(
      net::socket_base::send_buffer_size(
        static_cast<int>(std::min<std::size_t>(max_bytes_, std::numeric_limits<int>::max()))),
      ignored);
    const auto count = ctx_.shards.shard_count();
    shards_.resize(count);
    watch_client();
    if (since_.empty()) {
      origin_ = origin::now;
      position_.seqs.assign(count, 0);
    } else if (since_ == "start") {
      origin_ = origin::oldest;
      position_.seqs.assign(count, 0);
    } else {
      auto p = changes::position::decode(since_, count);
      if (!p)
        return fail(invalid("invalid_resume_point",
                            "the resume point belongs to a cluster of another shard count (this "
                            "one has "
                              + std::to_string(count) + " shards)"));
      origin_ = origin::resume;
      position_ = std::move(*p);
    }
    timer_.expires_after(std::chrono::milliseconds(ctx_.settings.request_timeout_ms));
    timer_.async_wait(
      beast::bind_front_handler(&change_stream::on_open_timeout, shared_from_this()));
    for (std::uint32_t i = 0; i < count; ++i)
      read(i, read_kind::bounds, from_now, 1, 0);
    if (count == 0) {
      begin_streaming();
      pump();
    }
  }

  void on_open_timeout(beast::error_code ec) {
    if (ec || phase_ != phase::opening) return;
    fail(core::error{core::errc::timeout, "a shard did not answer within "
                                            + std::to_string(ctx_.settings.request_timeout_ms)
                                            + " ms"});
  }

  /// The bounds of one shard's log: where "now" and "start" are, and whether a resume
  /// point is still (or ever was) in the log. Any refusal is the HTTP answer.
  void on_open_reply(std::uint32_t shard, read_answer&& b) {
    if (!b) return fail(error_response(b.error(), version_), "refused");
    auto& seq = position_.seqs[shard];
    shards_[shard].last = b->last;
    switch (origin_) {
    case origin::now:
      seq = b->last;
      break;
    case origin::oldest:
      seq = b->first > 0 ? b->first - 1 : 0;
      shards_[shard].from_start = true;
      break;
    case origin::resume:
      // The shard's own rule (doc_protocol.hpp): trimmed, or never in this log.
      if (seq + 1 < b->first || seq > b->last)
        return fail(
          core::error{core::errc::gone, "the resume point is outside the retained events of shard "
                                          + std::to_string(shard) + " (" + std::to_string(b->first)
                                          + ".." + std::to_string(b->last)
                                          + "); start again without one or with since=start"});
      break;
    }
    if (++opened_ < shards_.size()) return;
    begin_streaming();
  }

  /// Every shard answered: the header, the starting position, then the reads.
  void begin_streaming() {
    phase_ = phase::streaming;
    record(200);
    timer_.cancel();
    std::string head = version_ == 10 ? "HTTP/1.0 200 OK\r\n" : "HTTP/1.1 200 OK\r\n";
    head += "Content-Type: text/event-stream\r\n"
            "Cache-Control: no-cache\r\n"
            "Connection: close\r\n"
            "X-Accel-Buffering: no\r\n"
            "Server: shoal\r\n"
            "Date: ";
    head += http_date_now();
    head += "\r\nX-Request-Id: ";
    head += request_id_;
    head += "\r\n";
    head += ctx_.cors.header_lines(cors_origin_);
    head += "\r\n";
    // An id alone sets the client's last event id without an event: a client that
    // leaves before any event still resumes from here. `retry:` tells an EventSource to
    // reconnect after a second (a drain or a cut stream ends it on purpose).
    last_id_ = position_.encode();
    head += "retry: " + std::to_string(reconnect_ms) + "\nid: " + last_id_ + "\n\n";
    enqueue(std::move(head));
    log_debug("started at {}", last_id_);
    if (draining()) return finish("node draining");
    for (std::uint32_t i = 0; i < shards_.size(); ++i)
      next_read(i);
    arm_heartbeat();
  }

  // -- streaming ----------------------------------------------------------------------------

  void on_stream_reply(std::uint32_t shard, read_kind kind, read_answer&& b) {
    const auto code = b ? core::errc{} : b.error().code();
    if (b) {
      auto& s = shards_[shard];
      s.last = b->last; // the latest answer is the freshest (a log can also shrink)
      if (kind == read_kind::bounds) {
        // A stream from "start" whose oldest event was trimmed before it was read: go on
        // from the oldest event kept now.
        position_.seqs[shard] = b->first > 0 ? b->first - 1 : 0;
        return next_read(shard);
      }
      if (!append(shard, *b, kind == read_kind::live)) return;
      if (draining()) return finish("node draining");
      return next_read(shard);
    }
    if (code == core::errc::gone) {
      if (shards_[shard].from_start) {
        // Nothing of this shard was sent yet on a stream from the oldest event: the
        // oldest is just younger now (retention trims as writes come).
        return read(shard, read_kind::bounds, from_now, 1, 0);
      }
      // The shard trimmed events this stream had not read yet: no resume point can
      // recover them.
      boost::json::object o;
      o["message"] = b.error().message().empty() ? "events of shard " + std::to_string(shard)
                                                     + " were trimmed before they were read"
                                                 : b.error().message();
      std::string msg = "event: gone\n";
      append_data_lines(msg, util::to_json(o));
      msg += '\n';
      enqueue(std::move(msg));
      return finish("gone");
    }
    // shard_unavailable (its node is down), shutting down, a store error: ask again
    // later without ending the stream.
    retry_later(shard);
  }

  /// Queues the events of `b` that are new for `shard`. Events of a live read that take
  /// the queue past the byte limit overflow the stream (false): the client does not keep
  /// up with the writes. Catch-up reads were sized to fit and never overflow.
  bool append(std::uint32_t shard, const changes::batch& b, bool live) {
    auto& seq = position_.seqs[shard];
    for (const auto& e : b.events) {
      if (e.seq <= seq) continue; // delivered already
      seq = e.seq;
      shards_[shard].from_start = false;
      last_id_ = position_.encode();
      std::string msg =
        e.kind == changes::event_kind::del ? "event: delete\nid: " : "event: put\nid: ";
      msg += last_id_;
      msg += '\n';
      append_data_lines(msg, changes::event_data_json(e));
      msg += '\n';
      event_bytes_ += msg.size();
      ++events_;
      // One event larger than the limit on its own does not overflow an empty queue.
      const bool had_bytes = queued_ > 0;
      enqueue(std::move(msg));
      if (live && had_bytes && queued_ > max_bytes_) {
        overflow();
        return false;
      }
    }
    return true;
  }

  /// The next read of `shard`: a catch-up read (when its log has events past the
  /// stream's position) waits for budget; a live read waits only while the queue holds
  /// half the byte limit or more.
  void next_read(std::uint32_t shard) {
    if (phase_ != phase::streaming) return;
    auto& s = shards_[shard];
    if (s.out != read_kind::none || s.behind) return;
    if (position_.seqs[shard] < s.last) {
      s.behind = true;
      s.parked = false;
      behind_.push_back(shard);
      return issue_catch_up();
    }
    if (queued_ >= low_water()) {
      s.parked = true;
      return;
    }
    s.parked = false;
    read(shard, read_kind::live, position_.seqs[shard], live_limit(), heartbeat_);
  }

  /// Starts catch-up reads, oldest waiter first, while the budget (half the byte limit,
  /// less what is queued and what reads out already hold) has room for their events.
  /// One read may always be out, however large its events, so a stream always advances.
  void issue_catch_up() {
    while (!behind_.empty() && phase_ == phase::streaming) {
      if (queued_ >= low_water()) return; // the client must take bytes first
      const auto avg = average_event_bytes();
      const auto used = queued_ + reserved_;
      const auto budget = used < low_water() ? low_water() - used : 0;
      if (reserved_ > 0 && budget < avg) return; // wait for the reads out
      auto shard = behind_.front();
      behind_.pop_front();
      auto& s = shards_[shard];
      s.behind = false;
      auto limit = std::clamp<std::size_t>(budget / avg, 1, max_batch_events);
      s.reserved = limit * avg;
      reserved_ += s.reserved;
      read(shard, read_kind::catch_up, position_.seqs[shard], static_cast<std::uint32_t>(limit),
           heartbeat_);
    }
  }

  /// The queue has room again: parked shards read again, waiting ones catch up.
  void resume_reads() {
    if (phase_ != phase::streaming || queued_ >= low_water()) return;
    issue_catch_up();
    for (std::uint32_t i = 0; i < shards_.size(); ++i)
      if (shards_[i].parked) next_read(i);
  }

  void retry_later(std::uint32_t shard) {
    auto& s = shards_[shard];
    if (!s.retry) s.retry = std::make_unique<net::steady_timer>(stream_.get_executor());
    s.retry->expires_after(retry_delay);
    s.retry->async_wait([self = shared_from_this(), shard](beast::error_code ec) {
      if (!ec) self->next_read(shard);
    });
  }

  void read(std::uint32_t shard, read_kind kind, std::uint64_t after, std::uint32_t limit,
            std::uint32_t wait_ms) {
    shards_[shard].out = kind;
    ctx_.shards.ask(
      shard, changes::changes_read{collection_, after, limit, wait_ms},
      core::reply_to<changes::batch>{std::make_shared<stream_answer>(weak_from_this(), shard)});
  }

  std::size_t low_water() const noexcept {
    return max_bytes_ / 2;
  }

  std::size_t average_event_bytes() const noexcept {
    return events_ > 0 ? std::max<std::size_t>(event_bytes_ / events_, 1) : initial_event_bytes;
  }

  /// Events per live read: a burst on every shard at once should fill at most a quarter
  /// of the byte limit at the average event size (more waits for a catch-up read).
  std::uint32_t live_limit() const {
    auto shards = std::max<std::size_t>(shards_.size(), 1);
    auto n = max_bytes_ / 4 / shards / average_event_bytes();
    return static_cast<std::uint32_t>(std::clamp<std::size_t>(n, 1, max_batch_events));
  }

  void arm_heartbeat() {
    timer_.expires_after(std::chrono::milliseconds(heartbeat_));
    timer_.async_wait(beast::bind_front_handler(&change_stream::on_heartbeat, shared_from_this()));
  }

  void on_heartbeat(beast::error_code ec) {
    if (ec || phase_ != phase::streaming) return;
    if (draining()) {
      finish("node draining");
      return pump();
    }
    if (!wrote_since_beat_) enqueue(": keepalive\n\n");
    wrote_since_beat_ = false;
    arm_heartbeat();
    pump();
  }

  /// The client fell too far behind: flush what is queued, say where to resume, close.
  void overflow() {
    std::string msg = "event: overflow\ndata: {\"resume\":\"";
    msg += last_id_; // base64url: nothing to escape
    msg += "\"}\n\n";
    enqueue(std::move(msg));
    finish("overflow");
  }

  // -- writing ------------------------------------------------------------------------------

  void enqueue(std::string bytes) {
    queued_ += bytes.size();
    wrote_since_beat_ = true;
    pending_.push_back(std::move(bytes));
  }

  void pump() {
    if (writing_ || phase_ == phase::closed || phase_ == phase::opening) return;
    if (pending_.empty()) {
      if (phase_ == phase::closing) close_now();
      return;
    }
    out_.clear();
    while (!pending_.empty()
           && (out_.empty() || out_.size() + pending_.front().size() <= max_write_bytes)) {
      out_ += pending_.front();
      pending_.pop_front();
    }
    writing_ = true;
    // The pending client read is not affected: a timeout set while it is out applies to
    // writes only. A client that takes nothing for this long is cut.
    stream_.expires_after(std::chrono::milliseconds(ctx_.settings.idle_timeout_ms));
    net::async_write(stream_, net::buffer(out_),
                     beast::bind_front_handler(&change_stream::on_write, shared_from_this()));
  }

  void on_write(beast::error_code ec, std::size_t) {
    writing_ = false;
    if (ec) return close_now(ec == beast::error::timeout ? "client stalled" : "write failed");
    queued_ -= out_.size();
    out_.clear();
    resume_reads();
    pump();
  }

  /// Ends the stream after the queued bytes are written.
  void finish(const char* reason) {
    if (phase_ == phase::closing || phase_ == phase::closed) return;
    phase_ = phase::closing;
    end_reason_ = reason;
    cancel_timers();
  }

  /// An error answer while no byte of the stream is out yet.
  void fail(const core::error& e) {
    fail(error_response(e, version_), "refused");
  }

  void fail(response&& res, const char* reason) {
    phase_ = phase::closing;
    end_reason_ = reason;
    cancel_timers();
    record(res.result_int());
    if (problem_) to_problem(res);
    res.set("x-request-id", request_id_);
    res.set(bhttp::field::server, "shoal");
    res.set(bhttp::field::date, http_date_now());
    res.keep_alive(false);
    ctx_.cors.apply(cors_origin_, false, res);
    log_debug("refused: {}", res.result_int());
    error_ = std::make_unique<response>(std::move(res));
    writing_ = true;
    stream_.expires_after(std::chrono::milliseconds(ctx_.settings.idle_timeout_ms));
    bhttp::async_write(stream_, *error_,
                       [self = shared_from_this()](beast::error_code, std::size_t) {
                         self->writing_ = false;
                         self->close_now(self->end_reason_);
                       });
  }

  // -- the client ---------------------------------------------------------------------------

  /// Keeps a read out for the life of the stream: an EOF or reset from an idle client
  /// ends the stream at once. Anything the client sends is ignored.
  void watch_client() {
    stream_.async_read_some(
      net::buffer(inbound_),
      beast::bind_front_handler(&change_stream::on_client_read, shared_from_this()));
  }

  void on_client_read(beast::error_code ec, std::size_t) {
    if (phase_ == phase::closed) return;
    if (ec) return close_now("client left");
    watch_client();
  }

  void close_now(const char* reason) {
    if (phase_ == phase::closed) return;
    if (end_reason_ == nullptr) end_reason_ = reason;
    phase_ = phase::closed;
    cancel_timers();
    beast::error_code ignored;
    stream_.socket().shutdown(net::ip::tcp::socket::shutdown_send, ignored);
    stream_.close();
    pending_.clear();
    log_debug("ended ({}) after {} events at {}", end_reason_, events_, last_id_);
  }

  void close_now() {
    close_now("done");
  }

  void cancel_timers() {
    timer_.cancel();
    for (auto& s : shards_)
      if (s.retry) s.retry->cancel();
  }

  bool draining() const {
    return ctx_.draining.load(std::memory_order_relaxed);
  }

  /// A debug line of the http log, formatted only when it is written.
  template <class... Args>
  void log_debug(fmt::format_string<Args...> format, Args&&... args) {
    auto* log = ctx_.logs.http.get();
    if (!log || !log->should_log(spdlog::level::debug)) return;
    log->debug("change stream rid={} collection={}: {}", request_id_, collection_,
               fmt::format(format, std::forward<Args>(args)...));
  }

  server_context& ctx_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  beast::tcp_stream stream_;
  net::steady_timer timer_; ///< opening: the deadline; streaming: the heartbeat
  std::string collection_;
  std::string since_;
  std::string request_id_;
  unsigned version_;
  bool problem_ = false;    ///< refusals as problem details (the client's Accept asked)
  std::string cors_origin_; ///< the request's Origin, for the CORS fields
  std::size_t max_bytes_;
  std::uint32_t heartbeat_;

  phase phase_ = phase::opening;
  origin origin_ = origin::now;
  std::vector<shard_state> shards_;
  std::size_t opened_ = 0;           ///< shards whose bounds arrived
  std::deque<std::uint32_t> behind_; ///< shards waiting for a catch-up read, oldest first
  std::size_t reserved_ = 0;         ///< budget held by catch-up reads out
  changes::position position_;
  std::string last_id_; ///< the position after the last event queued

  std::deque<std::string> pending_; ///< queued, not yet handed to a write
  std::string out_;                 ///< the bytes of the write in flight
  std::size_t queued_ = 0;          ///< bytes in pending_ and out_
  bool writing_ = false;
  bool wrote_since_beat_ = false;
  std::unique_ptr<response> error_;
  std::array<char, 512> inbound_{};

  std::uint64_t events_ = 0;
  std::uint64_t event_bytes_ = 0;
  const char* end_reason_ = nullptr;
};

void stream_answer::hand_over(read_answer&& r) {
  auto s = stream_.lock();
  if (!s) return; // the stream ended: the answer is dropped
  auto ex = s->executor();
  net::post(ex, [s = std::move(s), shard = shard_, r = std::move(r)]() mutable {
    s->on_reply(shard, std::move(r));
  });
}

} // namespace

void start_change_stream(boost::beast::tcp_stream&& stream, server_context& ctx,
                         std::string collection, std::string since, std::string request_id,
                         const request& req) {
  std::make_shared<change_stream>(std::move(stream), ctx, std::move(collection), std::move(since),
                                  std::move(request_id), req)
    ->start();
}

} // namespace shoal::http
