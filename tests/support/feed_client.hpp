// SPDX-License-Identifier: Apache-2.0
#pragma once

// A blocking Server-Sent Events client for tests of the change feed, over a POSIX socket
// on loopback. Every read is bounded by a timeout. It parses what the feed writes: lines
// ending in "\n", fields `event`, `id`, `data` (several data lines are joined with "\n")
// and comments (":..."), a blank line ending each block; as the SSE spec says, an `id:`
// in a block without data still sets the last event id. Unlike a plain HTTP client,
// it can shrink its receive buffer (a slow consumer) and keeps `last_id`. Header-only so
// that the unit tests (tests/changes) and the end-to-end tests (tests/integration) share it.

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace shoal::test {

/// One dispatched SSE event: a block with data.
struct feed_event {
  std::string type; ///< the `event:` field ("message" when absent)
  std::string id;   ///< the `id:` field of this block ("" when it had none)
  std::string data; ///< the `data:` lines joined with "\n"
};

/// One change feed connection: sends the GET at construction, then reads the response.
class feed_client {
public:
  using headers = std::vector<std::pair<std::string, std::string>>;

  /// Connects to 127.0.0.1:`port` and sends `GET target` with `extra` headers.
  /// `receive_buffer` > 0 sets SO_RCVBUF before connecting (a small window makes a client
  /// that does not read stall the server quickly). Throws std::runtime_error on failure.
  feed_client(std::uint16_t port, const std::string& target, const headers& extra = {},
              int receive_buffer = 0, std::string_view method = "GET") {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) throw std::runtime_error("socket: " + std::string(std::strerror(errno)));
    if (receive_buffer > 0)
      ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof(receive_buffer));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      auto err = std::string(std::strerror(errno));
      ::close(fd_);
      fd_ = -1;
      throw std::runtime_error("connect: " + err);
    }
    std::string req = std::string(method) + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    req += "Accept: text/event-stream\r\n";
    for (const auto& [name, value] : extra)
      req += name + ": " + value + "\r\n";
    req += "\r\n";
    std::size_t sent = 0;
    while (sent < req.size()) {
      auto n = ::send(fd_, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) throw std::runtime_error("send: " + std::string(std::strerror(errno)));
      sent += static_cast<std::size_t>(n);
    }
  }

  ~feed_client() {
    close();
  }

  feed_client(const feed_client&) = delete;
  feed_client& operator=(const feed_client&) = delete;

  /// Reads the status line and headers; false when they do not arrive within `timeout`.
  bool read_head(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    std::size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos)
      if (!fill(deadline)) return false;
    std::string_view head(buf_.data(), end);
    auto eol = head.find("\r\n");
    auto status_line = head.substr(0, eol);
    if (status_line.size() < 12) return false;
    status = static_cast<unsigned>(std::stoi(std::string(status_line.substr(9, 3))));
    auto rest = eol == std::string_view::npos ? std::string_view{} : head.substr(eol + 2);
    while (!rest.empty()) {
      auto e = rest.find("\r\n");
      auto line = rest.substr(0, e);
      auto colon = line.find(':');
      if (colon != std::string_view::npos) {
        auto value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ')
          value.remove_prefix(1);
        response_headers.emplace_back(std::string(line.substr(0, colon)), std::string(value));
      }
      if (e == std::string_view::npos) break;
      rest.remove_prefix(e + 2);
    }
    buf_.erase(0, end + 4);
    return true;
  }

  /// The value of header `name` (case-insensitive), if present.
  std::optional<std::string> header(std::string_view name) const {
    for (const auto& [n, v] : response_headers) {
      if (n.size() != name.size()) continue;
      bool same = true;
      for (std::size_t i = 0; i < n.size() && same; ++i)
        same = std::tolower(static_cast<unsigned char>(n[i]))
               == std::tolower(static_cast<unsigned char>(name[i]));
      if (same) return v;
    }
    return std::nullopt;
  }

  /// The body of a non-stream (error) response: Content-Length bytes, read in `timeout`.
  std::string read_body(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    auto length = header("content-length");
    std::size_t want = length ? static_cast<std::size_t>(std::stoul(*length)) : 0;
    while (buf_.size() < want)
      if (!fill(deadline)) break;
    return buf_.substr(0, want);
  }

  /// The next event with data. Blocks without data (an `id:` alone) update `last_id`
  /// only; comments count in `comments`. nullopt on timeout or when the server closed
  /// (`closed()` tells which).
  std::optional<feed_event> next(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      auto eol = buf_.find('\n');
      if (eol == std::string::npos) {
        if (!fill(deadline)) return std::nullopt;
        continue;
      }
      std::string line = buf_.substr(0, eol);
      buf_.erase(0, eol + 1);
      if (line.empty()) {
        // Dispatch: as the SSE spec does, the id applies even to a block without data.
        if (block_has_id_) last_id = block_id_;
        bool has_data = block_has_data_;
        feed_event ev{block_type_.empty() ? "message" : block_type_,
                      block_has_id_ ? block_id_ : std::string(), block_data_};
        block_type_.clear();
        block_id_.clear();
        block_data_.clear();
        block_has_id_ = false;
        block_has_data_ = false;
        if (has_data) return ev;
        continue;
      }
      if (line[0] == ':') {
        ++comments;
        continue;
      }
      auto colon = line.find(':');
      std::string field = line.substr(0, colon);
      std::string value = colon == std::string::npos ? std::string() : line.substr(colon + 1);
      if (!value.empty() && value[0] == ' ') value.erase(0, 1);
      if (field == "event") {
        block_type_ = value;
      } else if (field == "id") {
        block_id_ = value;
        block_has_id_ = true;
      } else if (field == "retry") {
        retry = value;
      } else if (field == "data") {
        if (block_has_data_) block_data_ += '\n';
        block_data_ += value;
        block_has_data_ = true;
      }
    }
  }

  /// True once the server closed the connection (EOF or reset).
  bool closed() const noexcept {
    return closed_;
  }

  /// Waits up to `timeout` for the server to close; bytes that arrive meanwhile are kept.
  bool wait_closed(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!closed_)
      if (!fill(deadline) && !closed_) return false;
    return true;
  }

  void close() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  unsigned status = 0;
  headers response_headers;
  std::string last_id;      ///< the id of the last block that had one
  std::size_t comments = 0; ///< comment lines seen (keep-alives)
  std::string retry;        ///< the last `retry:` value seen (the reconnection time, ms)

private:
  /// Reads what is there, waiting until `deadline`; false on timeout or close.
  bool fill(std::chrono::steady_clock::time_point deadline) {
    if (closed_ || fd_ < 0) return false;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r <= 0) return false;
    char chunk[16384];
    auto n = ::recv(fd_, chunk, sizeof(chunk), 0);
    if (n <= 0) {
      closed_ = true;
      return false;
    }
    buf_.append(chunk, static_cast<std::size_t>(n));
    return true;
  }

  int fd_ = -1;
  bool closed_ = false;
  std::string buf_;
  std::string block_type_;
  std::string block_id_;
  std::string block_data_;
  bool block_has_id_ = false;
  bool block_has_data_ = false;
};

} // namespace shoal::test
