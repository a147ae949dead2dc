// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "util/destinations.hpp"

// This header is included by code that must not see Beast or Asio: everything about
// sockets lives in webhook_client.cpp, behind a pimpl.

namespace shoal::http {

/// What became of one webhook post.
struct webhook_result {
  enum class outcome : std::uint8_t {
    success,       ///< a 2xx status
    rejected,      ///< any other 1xx, 3xx or 4xx status (redirects are not followed)
    server_error,  ///< a 5xx status
    connect_error, ///< resolve, connect, TLS, write or read failed; the connection closed
                   ///< before a complete answer; or the client was destroyed first
    timeout,       ///< the deadline passed before the answer was complete
    invalid_url,   ///< the URL cannot be posted to; nothing was sent
    forbidden,     ///< every address of the host is refused by the destination policy;
                   ///< nothing was sent
  };

  /// At most this many bytes of the response body are kept in `body`.
  static constexpr std::size_t max_body = 4 * 1024;
  /// A response body is read up to this many bytes. A longer one is not read further:
  /// its status counts as usual and `body` holds its first `max_body` bytes.
  static constexpr std::size_t max_read = 1024 * 1024;

  outcome what = outcome::connect_error;
  unsigned status = 0; ///< the HTTP status when a response header was received, else 0
  std::string body;    ///< the response body, truncated to `max_body` bytes
  /// For humans and logs, e.g. "POST http://h:1/x answered 503",
  /// "connect to h:1 failed: Connection refused", "POST http://h:1/x: no answer within
  /// 200 ms". The query of the URL is left out: webhook URLs often carry tokens there.
  std::string message;

  /// Whether posting again later may succeed: true for `server_error`, `connect_error`
  /// and `timeout`, and also for the two 4xx statuses that ask for a retry, 408 (Request
  /// Timeout) and 429 (Too Many Requests), although their outcome is `rejected`. Every
  /// other rejection and `invalid_url` are final.
  bool retryable() const noexcept;
};

/// Name of an outcome ("success", "rejected", ...), for logs and metrics labels.
const char* to_string(webhook_result::outcome what) noexcept;

/// Outgoing HTTP for the built-in "webhook" job handler: POSTs a JSON body to a URL and
/// reports the outcome through a callback, without ever blocking the caller.
///
/// - URLs are `http://host[:port]/path?query` or `https://...`; the fragment is not
///   sent. https verifies the peer against the system's default verify paths (which
///   honour `SSL_CERT_FILE` and `SSL_CERT_DIR`), checks that the certificate names the
///   host, and sends SNI for host names. Anything else (another scheme, no host, user
///   credentials in the URL, a port out of range, text that is no URL) is `invalid_url`,
///   reported through the callback like every other outcome, never thrown.
/// - The request carries Host, Content-Type: application/json, User-Agent: shoal-webhook,
///   Content-Length and Connection: close.
/// - One overall deadline covers resolve, connect, TLS handshake, write and read.
/// - Each post uses a connection of its own, closed once the answer is read. (Keeping
///   connections per host:port open for the next post is a possible improvement.)
class webhook_client {
public:
  /// Starts `threads` I/O threads (at least one) on an io_context the client owns, and
  /// loads the system's trust store for https (tens of milliseconds: make one client and
  /// keep it, rather than one per post). Posts connect only to addresses `destinations`
  /// allows (by default no loopback, private or link-local one), checked on the resolved
  /// addresses right before connecting.
  explicit webhook_client(unsigned threads = 1, util::destination_policy destinations = {});

  /// Cancels every post still in flight, waits for their callbacks and joins the
  /// threads: every accepted post gets exactly one callback, and those cut short report
  /// `connect_error` with a message ending in "client stopped". Must not run on one of
  /// the client's own threads (that is, not inside a callback), nor concurrently with
  /// `post`.
  ~webhook_client();

  webhook_client(const webhook_client&) = delete;
  webhook_client& operator=(const webhook_client&) = delete;

  /// POSTs `json_body` to `url`, giving up after `timeout` (zero or less: at once).
  /// Never blocks the caller. `done` is called exactly once, on one of the client's
  /// threads, with the result; it should be quick (it runs on an I/O thread) and must
  /// not throw. Thread-safe.
  void post(std::string url, std::string json_body, std::chrono::milliseconds timeout,
            std::function<void(webhook_result)> done);

  /// Extra request header fields (name, value), set after the fixed ones.
  using header_list = std::vector<std::pair<std::string, std::string>>;

  /// As above, with `headers` added to the request.
  void post(std::string url, std::string json_body, std::chrono::milliseconds timeout,
            header_list headers, std::function<void(webhook_result)> done);

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace shoal::http
