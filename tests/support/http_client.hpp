// SPDX-License-Identifier: Apache-2.0
#pragma once

// Blocking HTTP/1.1 over loopback for end-to-end tests. Every socket operation is bounded
// by a timeout; nothing here waits forever. Beast stays inside http_client.cpp.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/json/value.hpp>

namespace shoal::test {

using namespace std::chrono_literals;

/// Header fields in the order they are sent or received; names keep their spelling.
using header_list = std::vector<std::pair<std::string, std::string>>;

/// A response as received.
struct http_response {
  unsigned status = 0;
  header_list headers;
  std::string body;
  bool keep_alive = true; ///< false when the server announced that it closes

  /// The value of the first field named `name` (case-insensitive), or nullopt.
  std::optional<std::string> header(std::string_view name) const;

  /// How many fields are named `name` (case-insensitive).
  std::size_t header_count(std::string_view name) const;

  /// The body parsed as JSON; a null value when it is not JSON.
  boost::json::value json() const;

  /// `error.code` of a JSON error body, or "" when the body is not one.
  std::string error_code() const;
};

/// A failed connect, write or read (timeouts included): the server gave no HTTP answer.
class transport_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// One keep-alive connection to 127.0.0.1:`port` (or `address`:`port`, an IPv4 or IPv6
/// literal). Not thread-safe: one per thread.
/// The connection is opened on first use and again after the server announced a close.
class http_client {
public:
  explicit http_client(std::uint16_t port, std::chrono::milliseconds timeout = 10s);
  http_client(const std::string& address, std::uint16_t port,
              std::chrono::milliseconds timeout = 10s);
  ~http_client();

  http_client(const http_client&) = delete;
  http_client& operator=(const http_client&) = delete;
  http_client(http_client&&) noexcept;
  http_client& operator=(http_client&&) noexcept;

  /// Sends one request and reads its response; throws transport_error on I/O failure or
  /// timeout (the connection is then closed). `headers` are added as given; a
  /// Content-Length is always set from `body`.
  http_response request(std::string_view method, std::string_view target, std::string body = {},
                        const header_list& headers = {});

  /// As `request`, but returns nullopt on failure and stores the reason in `error`.
  std::optional<http_response> try_request(std::string_view method, std::string_view target,
                                           std::string body = {}, const header_list& headers = {},
                                           std::string* error = nullptr);

  http_response get(std::string_view target, const header_list& headers = {});
  http_response head(std::string_view target, const header_list& headers = {});
  /// PUT with `Content-Type: application/json` unless `headers` name a Content-Type.
  http_response put(std::string_view target, std::string body, const header_list& headers = {});
  /// PATCH with `Content-Type: application/json` unless `headers` name a Content-Type.
  http_response patch(std::string_view target, std::string body, const header_list& headers = {});
  http_response del(std::string_view target, const header_list& headers = {});

  /// TCP connections opened so far (1 after any number of keep-alive requests).
  std::size_t connections_opened() const noexcept;

  /// Closes the connection; the next request opens a new one.
  void close() noexcept;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// What a raw read saw.
struct raw_reply {
  std::string bytes;                   ///< everything received, in order
  bool closed = false;                 ///< the server closed (EOF or reset) in time
  bool reset = false;                  ///< the close was a reset rather than a FIN
  std::chrono::milliseconds elapsed{}; ///< time until the close or the timeout
};

/// A loopback TCP connection for requests no well-behaved client would send.
class raw_connection {
public:
  /// Connects to 127.0.0.1:`port`; throws transport_error when it cannot.
  explicit raw_connection(std::uint16_t port, std::chrono::milliseconds timeout = 10s);
  ~raw_connection();

  raw_connection(const raw_connection&) = delete;
  raw_connection& operator=(const raw_connection&) = delete;

  /// Writes all of `bytes`. False when the server stopped taking them (reset, closed,
  /// timeout), which a server may do after answering early; the reason is in `error`.
  bool send(std::string_view bytes, std::string* error = nullptr);

  /// Half-closes: the server reads EOF; the connection can still be read.
  void shutdown_send();

  /// Reads one response; `head_request` skips the body as a HEAD response has none.
  /// Nullopt (and the reason in `error`) on close, timeout or a malformed response.
  std::optional<http_response> read_response(bool head_request = false,
                                             std::string* error = nullptr);

  /// Reads until the server closes or `timeout` passes; bytes buffered by an earlier
  /// `read_response` come first.
  raw_reply read_until_close(std::chrono::milliseconds timeout);

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// Connects, writes `bytes` (ignoring a refused write), half-closes when asked, and
/// reads until the server closes or `timeout` passes.
raw_reply raw_exchange(std::uint16_t port, std::string_view bytes, bool half_close = false,
                       std::chrono::milliseconds timeout = 5s);

/// Parses the first response in `bytes`; nullopt when they do not start with a complete
/// response. `rest` receives what follows it. `head_request`: the response has no body.
std::optional<http_response>
parse_response(std::string_view bytes, std::string_view* rest = nullptr, bool head_request = false);

} // namespace shoal::test
