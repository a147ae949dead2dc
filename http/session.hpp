// SPDX-License-Identifier: Apache-2.0
#pragma once

// Internal to http/: the per-connection state machine and what sessions share.

#include <atomic>
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

#include "config/settings.hpp"
#include "http/router.hpp"
#include "http/server.hpp"

namespace shoal::http {

class shard_service;
class request_metrics;

/// Shared by all sessions of a server; lives as long as the server.
struct server_context {
  const config::http_settings& settings;
  shard_service& shards;
  route_env env;
  request_metrics& metrics;
  server_logs logs;
  std::atomic<bool> draining{false};
  std::atomic<std::uint64_t> next_request_id{0};
  std::string request_id_prefix; ///< random per process, so ids differ across restarts
};

/// One HTTP connection: do_wait → do_read → on_read → (route | shard call) → finish →
/// on_write → do_wait … Every handler runs on the connection's strand; a shard's reply
/// is posted onto it. One request is processed at a time, so pipelined requests are
/// answered in order.
class session : public std::enable_shared_from_this<session> {
public:
  /// `reject`: answer 503 at once and close (over http.max_connections).
  session(boost::asio::ip::tcp::socket&& socket, server_context& ctx, bool reject);
  ~session();

  void start();

  /// Completes the shard call number `seq` (on the strand).
  void on_reply(std::uint64_t seq, actors::doc_reply&& reply);
  void on_reply(std::uint64_t seq, actors::actor_reply&& reply);
  void on_reply(std::uint64_t seq, jobs::job_reply&& reply);
  void on_reply(std::uint64_t seq, actors::cache_reply&& reply);
  /// One shard's reply to a gather_call (number `seq`).
  void on_gather_reply(std::uint64_t seq, std::uint32_t shard, actors::doc_reply&& reply);
  boost::asio::any_io_executor executor() {
    return stream_.get_executor();
  }

private:
  void do_wait();
  void on_wait(boost::beast::error_code ec, std::size_t bytes);
  void do_read();
  void on_header(boost::beast::error_code ec, std::size_t bytes);
  void on_continue_sent(boost::beast::error_code ec, std::size_t bytes);
  void read_body();
  void on_read(boost::beast::error_code ec, std::size_t bytes);
  void handle();
  void send_job(std::uint64_t seq, job_invocation&& invocation);
  void send_gather(std::uint64_t seq, gather_call&& call);
  void hand_over_changes(change_feed_call&& call);
  void arm_timeout(std::uint64_t seq, std::uint64_t ms);
  void on_timeout(std::uint64_t seq, boost::beast::error_code ec);
  void reject_request(boost::beast::error_code ec);
  void finish(response&& res);
  void on_write(bool keep_alive, boost::beast::error_code ec, std::size_t bytes);
  void do_close();
  std::string request_id_from(const request& req);
  void log_access(unsigned status, std::size_t body_bytes, double seconds);

  server_context& ctx_;
  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  boost::asio::steady_timer timer_;
  std::unique_ptr<boost::beast::http::response<boost::beast::http::empty_body>> continue_;
  request req_;
  response res_;
  doc_call call_;
  job_invocation job_call_;     ///< op, queue and id of the job call in flight (for rendering)
  cache_invocation cache_call_; ///< op and key of the cache call in flight
  /// The gather call in flight: its merge, the replies so far (by shard), how many are due.
  gather_call gather_;
  std::vector<actors::doc_reply> gathered_;
  std::uint32_t gather_pending_ = 0;
  route_id route_ = route_id::unknown;
  std::string request_id_;
  std::chrono::steady_clock::time_point started_;
  std::uint64_t seq_ = 0;
  std::uint64_t timeout_ms_ = 0;
  bool awaiting_ = false;
  bool in_flight_ = false;
  bool keep_alive_ = true;
  bool reject_;
};

} // namespace shoal::http
