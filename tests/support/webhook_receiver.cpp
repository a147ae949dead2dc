// SPDX-License-Identifier: Apache-2.0
#include "tests/support/webhook_receiver.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <system_error>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace shoal::test {

namespace {

constexpr std::size_t max_head_bytes = 1u << 20;
constexpr std::size_t max_body_bytes = 16u << 20;

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i]))
        != std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

const char* reason(unsigned status) noexcept {
  switch (status) {
  case 200:
    return "OK";
  case 201:
    return "Created";
  case 202:
    return "Accepted";
  case 204:
    return "No Content";
  case 400:
    return "Bad Request";
  case 404:
    return "Not Found";
  case 408:
    return "Request Timeout";
  case 429:
    return "Too Many Requests";
  case 500:
    return "Internal Server Error";
  case 501:
    return "Not Implemented";
  case 503:
    return "Service Unavailable";
  default:
    return "Status";
  }
}

/// Writes all of `bytes`, giving up on the first error (the client may be gone).
void send_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    auto n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

std::system_error os_error(const char* what) {
  return std::system_error(errno, std::generic_category(), what);
}

} // namespace

// -- received_request ----------------------------------------------------------------------

std::optional<std::string> received_request::header(std::string_view name) const {
  for (const auto& [n, v] : headers)
    if (iequals(n, name)) return v;
  return std::nullopt;
}

std::string received_request::job_id() const {
  return header("X-Shoal-Job-Id").value_or("");
}

unsigned received_request::attempt() const {
  auto v = header("X-Shoal-Attempt");
  if (!v || v->empty()) return 0;
  char* end = nullptr;
  auto n = std::strtoul(v->c_str(), &end, 10);
  return end != nullptr && *end == '\0' ? static_cast<unsigned>(n) : 0;
}

webhook_reply default_webhook_reply(const received_request& req) {
  webhook_reply r;
  if (req.path == "/ok") return r;
  if (req.path == "/fail") {
    r.status = 500;
    r.body = R"({"error":"failing on purpose"})";
  } else if (req.path == "/slow") {
    r.delay = std::chrono::milliseconds(200);
    auto q = req.target.find("?ms=");
    if (q == std::string::npos) q = req.target.find("&ms=");
    if (q != std::string::npos)
      r.delay = std::chrono::milliseconds(std::strtoul(req.target.c_str() + q + 4, nullptr, 10));
  } else if (req.path == "/hang") {
    r.hang = true;
  } else {
    r.status = 404;
    r.body = R"({"error":"no such hook"})";
  }
  return r;
}

// -- webhook_receiver ----------------------------------------------------------------------

webhook_receiver::webhook_receiver(webhook_responder responder) : responder_(std::move(responder)) {
  if (::pipe2(wake_pipe_, O_CLOEXEC) != 0) throw os_error("pipe2");
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) {
    auto e = os_error("socket");
    ::close(wake_pipe_[0]);
    ::close(wake_pipe_[1]);
    throw e;
  }
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0
      || ::listen(listen_fd_, 128) != 0
      || ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    auto e = os_error("bind/listen on 127.0.0.1:0");
    ::close(listen_fd_);
    ::close(wake_pipe_[0]);
    ::close(wake_pipe_[1]);
    throw e;
  }
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { accept_loop(); });
}

webhook_receiver::~webhook_receiver() {
  stop();
}

std::string webhook_receiver::url(std::string_view path_and_query) const {
  return "http://127.0.0.1:" + std::to_string(port_) + std::string(path_and_query);
}

void webhook_receiver::set_responder(webhook_responder responder) {
  std::lock_guard<std::mutex> lock(mu_);
  responder_ = std::move(responder);
}

std::vector<received_request> webhook_receiver::requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return requests_;
}

std::vector<received_request> webhook_receiver::requests_for(std::string_view job_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<received_request> out;
  for (const auto& r : requests_)
    if (r.job_id() == job_id) out.push_back(r);
  return out;
}

std::size_t webhook_receiver::count(std::string_view job_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<std::size_t>(std::count_if(
    requests_.begin(), requests_.end(), [&](const auto& r) { return r.job_id() == job_id; }));
}

std::vector<received_request> webhook_receiver::unanswered() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<received_request> out;
  for (auto seq : unanswered_)
    out.push_back(requests_[seq - 1]);
  return out;
}

bool webhook_receiver::wait_for(
  const std::function<bool(const std::vector<received_request>&)>& pred,
  std::chrono::milliseconds timeout) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    if (pred(requests_)) return true;
    if (changed_.wait_until(lock, deadline) == std::cv_status::timeout) return pred(requests_);
  }
}

void webhook_receiver::hold_answers() {
  std::lock_guard<std::mutex> lock(mu_);
  held_ = true;
}

void webhook_receiver::release_answers() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    held_ = false;
  }
  changed_.notify_all();
}

void webhook_receiver::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  changed_.notify_all();
  // The pipe stays readable from now on: every poll of every thread wakes.
  char byte = 1;
  while (::write(wake_pipe_[1], &byte, 1) < 0 && errno == EINTR) {
  }
  if (acceptor_.joinable()) acceptor_.join();
  std::list<connection> all;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& c : connections_)
      if (c.fd >= 0) ::shutdown(c.fd, SHUT_RDWR);
    all.splice(all.end(), connections_);
  }
  for (auto& c : all)
    if (c.thread.joinable()) c.thread.join();
  ::close(listen_fd_);
  ::close(wake_pipe_[0]);
  ::close(wake_pipe_[1]);
}

void webhook_receiver::reap_finished() {
  std::list<connection> finished;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = connections_.begin(); it != connections_.end();) {
      auto next = std::next(it);
      if (it->done) finished.splice(finished.end(), connections_, it);
      it = next;
    }
  }
  for (auto& c : finished)
    c.thread.join();
}

void webhook_receiver::accept_loop() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_pipe_[0], POLLIN, 0}};
    int n = ::poll(fds, 2, 1000);
    if (n < 0 && errno != EINTR) return;
    if (fds[1].revents != 0) return;
    reap_finished();
    if (n <= 0 || (fds[0].revents & POLLIN) == 0) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      ::close(fd);
      return;
    }
    auto& conn = connections_.emplace_back();
    conn.fd = fd;
    connection* c = &conn;
    conn.thread = std::thread([this, c] { serve(c); });
  }
}

bool webhook_receiver::read_request(int fd, received_request& out) {
  std::string buf;
  char chunk[8192];
  auto fill = [&]() -> bool {
    for (;;) {
      pollfd fds[2] = {{fd, POLLIN, 0}, {wake_pipe_[0], POLLIN, 0}};
      int n = ::poll(fds, 2, -1);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 || fds[1].revents != 0) return false;
      auto got = ::recv(fd, chunk, sizeof chunk, 0);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) return false;
      buf.append(chunk, static_cast<std::size_t>(got));
      return true;
    }
  };
  std::size_t head_end = std::string::npos;
  while ((head_end = buf.find("\r\n\r\n")) == std::string::npos) {
    if (buf.size() > max_head_bytes || !fill()) return false;
  }
  std::string_view head(buf.data(), head_end);
  auto line_end = head.find("\r\n");
  std::string_view request_line = head.substr(0, line_end);
  auto sp1 = request_line.find(' ');
  auto sp2 = request_line.rfind(' ');
  if (sp1 == std::string_view::npos || sp2 == sp1) return false;
  out.method = std::string(request_line.substr(0, sp1));
  out.target = std::string(request_line.substr(sp1 + 1, sp2 - sp1 - 1));
  out.path = out.target.substr(0, out.target.find('?'));
  std::size_t content_length = 0;
  std::string_view rest =
    line_end == std::string_view::npos ? std::string_view{} : head.substr(line_end + 2);
  while (!rest.empty()) {
    auto eol = rest.find("\r\n");
    auto line = rest.substr(0, eol);
    rest = eol == std::string_view::npos ? std::string_view{} : rest.substr(eol + 2);
    auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    auto name = std::string(trim(line.substr(0, colon)));
    auto value = std::string(trim(line.substr(colon + 1)));
    if (iequals(name, "Content-Length"))
      content_length = static_cast<std::size_t>(std::strtoull(value.c_str(), nullptr, 10));
    if (iequals(name, "Transfer-Encoding")) return false; // not needed by the node's client
    out.headers.emplace_back(std::move(name), std::move(value));
  }
  if (content_length > max_body_bytes) return false;
  const auto body_start = head_end + 4;
  while (buf.size() < body_start + content_length)
    if (!fill()) return false;
  out.body = buf.substr(body_start, content_length);
  out.received = std::chrono::steady_clock::now();
  out.received_unix_ms =
    static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count());
  return true;
}

void webhook_receiver::serve(connection* conn) {
  const int fd = conn->fd;
  received_request req;
  if (read_request(fd, req)) {
    webhook_reply reply;
    {
      std::unique_lock<std::mutex> lock(mu_);
      const std::uint64_t seq = requests_.size() + 1;
      req.seq = seq;
      requests_.push_back(req);
      unanswered_.insert(seq);
      auto responder = responder_;
      lock.unlock();
      changed_.notify_all();
      reply = responder ? responder(req) : default_webhook_reply(req);
      lock.lock();
      // Wait out the delay, then for the answers to be released; a hang waits for stop.
      auto due = std::chrono::steady_clock::now() + reply.delay;
      changed_.wait_until(lock, due, [&] { return stopping_; });
      changed_.wait(lock, [&] { return stopping_ || (!held_ && !reply.hang); });
      // From here the answer is decided: held answers (see hold_answers) never get here.
      const bool answer = !stopping_;
      unanswered_.erase(seq);
      lock.unlock();
      changed_.notify_all();
      if (answer) {
        std::string out = "HTTP/1.1 " + std::to_string(reply.status) + " " + reason(reply.status)
                          + "\r\nContent-Type: application/json\r\nContent-Length: "
                          + std::to_string(reply.body.size()) + "\r\nConnection: close\r\n\r\n"
                          + reply.body;
        send_all(fd, out);
      }
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  ::shutdown(fd, SHUT_RDWR);
  ::close(fd);
  conn->fd = -1;
  conn->done = true;
}

} // namespace shoal::test
