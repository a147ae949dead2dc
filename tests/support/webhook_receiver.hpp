// SPDX-License-Identifier: Apache-2.0
#pragma once

// An HTTP/1.1 server inside the test process, for the built-in `webhook` job handler to
// post to: it listens on 127.0.0.1 (an ephemeral port), records every request, and
// answers each with what a test-provided function decides (a status, a body, a delay, or
// no answer at all). Plain sockets and one thread per connection; nothing here blocks
// without a way out: `stop()` (and the destructor) wakes and joins every thread, even
// those holding a request that is never to be answered.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "tests/support/http_client.hpp"

namespace shoal::test {

/// One request as the receiver read it.
struct received_request {
  std::uint64_t seq = 0;                          ///< 1, 2, … in order of arrival
  std::chrono::steady_clock::time_point received; ///< when the whole request was read
  std::uint64_t received_unix_ms = 0;             ///< the same moment on the system clock
  std::string method;
  std::string target; ///< as sent: path and query
  std::string path;   ///< the target without its query
  header_list headers;
  std::string body;

  /// The first header named `name` (case-insensitive), or nullopt.
  std::optional<std::string> header(std::string_view name) const;
  /// X-Shoal-Job-Id, or "" when absent.
  std::string job_id() const;
  /// X-Shoal-Attempt as a number, 0 when absent or not a number.
  unsigned attempt() const;
};

/// How to answer one request.
struct webhook_reply {
  unsigned status = 200;
  std::string body = R"({"ok":true})";
  /// Wait this long before answering (while answers are held, longer).
  std::chrono::milliseconds delay{0};
  /// Never answer: the connection stays open until the client closes it or the receiver
  /// stops.
  bool hang = false;
};

/// Decides the answer to a request; called on the connection's thread, possibly on
/// several threads at once.
using webhook_responder = std::function<webhook_reply(const received_request&)>;

/// The answers by path: /ok → 200, /fail → 500, /gone → 404, /slow → 200 after `ms` of
/// the query (/slow?ms=300; default 200) milliseconds, /hang → no answer; any other path
/// → 404.
webhook_reply default_webhook_reply(const received_request& req);

class webhook_receiver {
public:
  /// Listens on 127.0.0.1:0 at once; throws std::system_error when it cannot.
  explicit webhook_receiver(webhook_responder responder = default_webhook_reply);
  /// `stop()`.
  ~webhook_receiver();

  webhook_receiver(const webhook_receiver&) = delete;
  webhook_receiver& operator=(const webhook_receiver&) = delete;

  std::uint16_t port() const noexcept {
    return port_;
  }

  /// "http://127.0.0.1:PORT" ++ `path_and_query`.
  std::string url(std::string_view path_and_query) const;

  /// Replaces the responder for requests read from now on.
  void set_responder(webhook_responder responder);

  /// Every request so far, in order of arrival.
  std::vector<received_request> requests() const;
  /// The requests carrying X-Shoal-Job-Id `job_id`, in order of arrival.
  std::vector<received_request> requests_for(std::string_view job_id) const;
  /// How many requests carried X-Shoal-Job-Id `job_id`.
  std::size_t count(std::string_view job_id) const;
  /// Requests read whose answer has not begun (delayed, held or hanging), in order of
  /// arrival. After `hold_answers()`, none of these is answered before `release_answers()`.
  std::vector<received_request> unanswered() const;

  /// Waits until `pred(requests())` holds or `timeout` passes; returns the last result.
  /// `pred` runs under the receiver's lock: it must not call the receiver.
  bool wait_for(const std::function<bool(const std::vector<received_request>&)>& pred,
                std::chrono::milliseconds timeout) const;

  /// While held, no answer leaves: a delay that ends waits for `release_answers()`.
  /// Lets a test know that requests read before a kill were not answered before it.
  void hold_answers();
  void release_answers();

  /// Closes the listener and every connection, wakes every waiting answer and joins all
  /// threads. Idempotent.
  void stop();

private:
  struct connection {
    int fd = -1;
    bool done = false;
    std::thread thread;
  };

  void accept_loop();
  void serve(connection* conn);
  /// Reads one request into `out`; false on EOF, error or stop.
  bool read_request(int fd, received_request& out);
  /// Joins the threads of finished connections.
  void reap_finished();

  int listen_fd_ = -1;
  int wake_pipe_[2] = {-1, -1}; ///< written once by stop(): every poll sees it readable
  std::uint16_t port_ = 0;
  std::thread acceptor_;

  mutable std::mutex mu_;
  mutable std::condition_variable changed_; ///< a request arrived or was answered, or stop
  webhook_responder responder_;
  std::vector<received_request> requests_;
  std::set<std::uint64_t> unanswered_; ///< seq of requests not answered yet
  std::list<connection> connections_;
  bool held_ = false;
  bool stopping_ = false;
};

} // namespace shoal::test
