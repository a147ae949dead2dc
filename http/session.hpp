// SPDX-License-Identifier: Apache-2.0
#pragma once

// Internal to http/: the per-connection state machine and what sessions share.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>

#include "http/exchange.hpp"
#include "http/framing.hpp"
#include "http/http_date.hpp"
#include "http/router.hpp"
#include "http/server_context.hpp"

namespace shoal::http {

/// One HTTP connection: do_wait → do_read → on_read → route() → (answer now | wait for
/// the handler's answer | hand the connection over) → finish → on_write → do_wait …
/// It closes with a lingering close (do_close): our side is shut, and what the client
/// still sends is read and dropped for a bounded time, so the kernel never answers
/// unread bytes with a reset that would destroy the last response.
/// Every handler runs on the connection's strand; a later answer is posted onto it. One
/// request is processed at a time, so pipelined requests are answered in order. The
/// session knows HTTP only: what a request means is its route family's business.
class session : public std::enable_shared_from_this<session>, public response_port {
public:
  session(boost::asio::ip::tcp::socket&& socket, server_context& ctx);
  ~session() override;

  /// Waits for the first request, or answers 503 and closes when `joined` refused it
  /// (over a limit). `joined`: the server's connection table's verdict on it, taken when
  /// it was accepted (so the table's order is the order of the accepts).
  void start(connection_table::admission joined);

  /// From any thread: if the connection waits for a request, close it (it gives way to a
  /// new one). A request already begun is served.
  void evict();

  /// From any thread: the server drains. A connection waiting for a request waits a short
  /// grace for one more, answered with `Connection: close`; then it closes.
  void on_drain();

  /// The answer of request `seq`, from any thread: posted onto the strand, where it
  /// completes the request unless that was answered already (it timed out).
  void post(std::uint64_t seq, response&& res) override;

private:
  void do_wait();
  void on_wait(boost::beast::error_code ec, std::size_t bytes);
  void do_read();
  void read_header();
  void on_header_bytes(boost::beast::error_code ec, std::size_t bytes);
  void on_header(boost::beast::error_code ec, std::size_t bytes);
  void reject_framing(const framing_problem& problem);
  void admit();
  void on_admitted(bool admitted);
  void shed(std::string message);
  void after_admission();
  void leave_admission(bool count);
  void on_continue_sent(boost::beast::error_code ec, std::size_t bytes);
  void read_body();
  void on_read(boost::beast::error_code ec, std::size_t bytes);
  void handle();
  void on_response(std::uint64_t seq, response&& res);
  void hand_over(take_over&& next);
  void arm_timeout(std::uint64_t seq, std::uint64_t ms);
  void on_timeout(std::uint64_t seq, boost::beast::error_code ec);
  void reject_request(boost::beast::error_code ec);
  void finish(response&& res);
  void on_write(bool keep_alive, boost::beast::error_code ec, std::size_t bytes);
  void on_hold_end(boost::beast::error_code ec);
  void refuse(std::string message);
  void do_close();
  void on_linger(boost::beast::error_code ec, std::size_t bytes);
  std::string request_id_from(const request& req);
  void log_access(unsigned status, std::size_t body_bytes, double seconds);

  server_context& ctx_;
  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
  fold_detector folds_; ///< over the header block of the request being read
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  boost::asio::steady_timer timer_;
  std::unique_ptr<boost::beast::http::response<boost::beast::http::empty_body>> continue_;
  request req_;
  response res_;
  route_id route_ = route_id::unknown;
  std::string request_id_;
  date_cache dates_; ///< this connection's Date header
  std::chrono::steady_clock::time_point started_;
  std::uint64_t seq_ = 0;
  std::uint64_t timeout_ms_ = 0;
  bool writes_ = false; ///< the request awaited may change state
  bool awaiting_ = false;
  bool in_flight_ = false;
  bool keep_alive_ = true;
  bool waiting_ = false;  ///< a read for the first byte of a request is pending
  bool woken_ = false;    ///< that read was cancelled by evict() or on_drain()
  bool evicted_ = false;  ///< close instead of waiting again
  bool closing_ = false;  ///< do_close ran: the connection only lingers
  bool served_ = false;   ///< a request was read on this connection
  bool admitted_ = false; ///< holds a place in ctx_.admit until its answer
  bool queued_ = false;   ///< waits in ctx_.admit's queue
  bool refused_ = false;  ///< the answer being written is admission's 503
  std::chrono::steady_clock::time_point admitted_at_;
  std::chrono::steady_clock::time_point queued_at_;
  std::optional<connection_table::slot> slot_; ///< in ctx_.connections, once admitted
};

} // namespace shoal::http
