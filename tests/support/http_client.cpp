// SPDX-License-Identifier: Apache-2.0
#include "tests/support/http_client.hpp"

#include <cctype>

#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address_v4.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>

namespace shoal::test {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

using response_parser = bhttp::response_parser<bhttp::string_body>;

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i]))
        != std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

void configure(response_parser& p, bool head_request) {
  p.header_limit(1u << 20);
  p.body_limit(std::uint64_t{64} << 20);
  if (head_request) p.skip(true);
}

http_response to_response(bhttp::response<bhttp::string_body>&& res) {
  http_response out;
  out.status = res.result_int();
  for (const auto& field : res)
    out.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  out.keep_alive = res.keep_alive();
  out.body = std::move(res.body());
  return out;
}

/// A loopback socket whose every operation runs on a private io_context under a
/// deadline: Beast's tcp_stream closes the socket when it passes, so a stuck server
/// surfaces as `beast::error::timeout` instead of a hang.
struct loopback_stream {
  explicit loopback_stream(std::chrono::milliseconds t) : timeout(t) {}

  beast::error_code connect(std::uint16_t port) {
    return connect(net::ip::address_v4::loopback(), port);
  }

  beast::error_code connect(const net::ip::address& address, std::uint16_t port) {
    beast::error_code result;
    stream.expires_after(timeout);
    stream.async_connect(tcp::endpoint(address, port), [&](beast::error_code ec) { result = ec; });
    run();
    return result;
  }

  beast::error_code write(std::string_view bytes) {
    beast::error_code result;
    stream.expires_after(timeout);
    net::async_write(stream, net::buffer(bytes.data(), bytes.size()),
                     [&](beast::error_code ec, std::size_t) { result = ec; });
    run();
    return result;
  }

  template <class Message>
  beast::error_code write_message(Message& msg) {
    beast::error_code result;
    stream.expires_after(timeout);
    bhttp::async_write(stream, msg, [&](beast::error_code ec, std::size_t) { result = ec; });
    run();
    return result;
  }

  beast::error_code read(response_parser& parser) {
    beast::error_code result;
    stream.expires_after(timeout);
    bhttp::async_read(stream, buffer, parser,
                      [&](beast::error_code ec, std::size_t) { result = ec; });
    run();
    return result;
  }

  beast::error_code read_some(std::string& out, std::chrono::steady_clock::time_point deadline) {
    beast::error_code result;
    char chunk[16384];
    stream.expires_at(deadline);
    stream.async_read_some(net::buffer(chunk), [&](beast::error_code ec, std::size_t n) {
      out.append(chunk, n);
      result = ec;
    });
    run();
    return result;
  }

  void run() {
    ioc.restart();
    ioc.run();
  }

  void close() noexcept {
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream.close();
    buffer.clear();
  }

  std::chrono::milliseconds timeout;
  net::io_context ioc{1};
  beast::tcp_stream stream{ioc};
  beast::flat_buffer buffer;
};

bool has_header(const header_list& headers, std::string_view name) {
  for (const auto& [k, v] : headers)
    if (iequals(k, name)) return true;
  return false;
}

header_list with_json_type(const header_list& headers) {
  if (has_header(headers, "content-type")) return headers;
  header_list out = headers;
  out.emplace_back("Content-Type", "application/json");
  return out;
}

} // namespace

// -- http_response ------------------------------------------------------------

std::optional<std::string> http_response::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (iequals(k, name)) return v;
  return std::nullopt;
}

std::size_t http_response::header_count(std::string_view name) const {
  std::size_t n = 0;
  for (const auto& [k, v] : headers)
    if (iequals(k, name)) ++n;
  return n;
}

boost::json::value http_response::json() const {
  boost::json::error_code ec;
  auto v = boost::json::parse(body, ec);
  if (ec) return nullptr;
  return v;
}

std::string http_response::error_code() const {
  auto v = json();
  if (!v.is_object()) return {};
  const auto* err = v.get_object().if_contains("error");
  if (err == nullptr || !err->is_object()) return {};
  const auto* code = err->get_object().if_contains("code");
  if (code == nullptr || !code->is_string()) return {};
  return std::string(code->get_string());
}

// -- http_client --------------------------------------------------------------

struct http_client::impl {
  impl(std::string a, std::uint16_t p, std::chrono::milliseconds t)
      : address(net::ip::make_address(a)), host(std::move(a)), port(p), conn(t) {}

  net::ip::address address;
  std::string host;
  std::uint16_t port;
  loopback_stream conn;
  bool open = false;
  std::size_t opened = 0;
};

http_client::http_client(std::uint16_t port, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<impl>("127.0.0.1", port, timeout)) {}

http_client::http_client(const std::string& address, std::uint16_t port,
                         std::chrono::milliseconds timeout)
    : impl_(std::make_unique<impl>(address, port, timeout)) {}

http_client::~http_client() = default;
http_client::http_client(http_client&&) noexcept = default;
http_client& http_client::operator=(http_client&&) noexcept = default;

std::optional<http_response> http_client::try_request(std::string_view method,
                                                      std::string_view target, std::string body,
                                                      const header_list& headers,
                                                      std::string* error) {
  auto& d = *impl_;
  auto fail = [&](std::string_view what, const beast::error_code& ec) {
    if (error) *error = std::string(what) + ": " + ec.message();
    d.conn.close();
    d.open = false;
    return std::nullopt;
  };
  if (!d.open) {
    if (auto ec = d.conn.connect(d.address, d.port)) return fail("connect", ec);
    d.open = true;
    ++d.opened;
  }
  bhttp::request<bhttp::string_body> req;
  req.method_string(beast::string_view(method.data(), method.size()));
  req.target(beast::string_view(target.data(), target.size()));
  req.version(11);
  req.set(bhttp::field::host, d.host + ":" + std::to_string(d.port));
  for (const auto& [name, value] : headers)
    req.insert(name, value);
  req.body() = std::move(body);
  req.prepare_payload();
  if (auto ec = d.conn.write_message(req)) return fail("write", ec);
  response_parser parser;
  configure(parser, req.method() == bhttp::verb::head);
  if (auto ec = d.conn.read(parser)) return fail("read", ec);
  auto res = to_response(parser.release());
  if (!res.keep_alive) {
    d.conn.close();
    d.open = false;
  }
  return res;
}

http_response http_client::request(std::string_view method, std::string_view target,
                                   std::string body, const header_list& headers) {
  std::string error;
  auto res = try_request(method, target, std::move(body), headers, &error);
  if (!res) throw transport_error(std::string(method) + " " + std::string(target) + ": " + error);
  return std::move(*res);
}

http_response http_client::get(std::string_view target, const header_list& headers) {
  return request("GET", target, {}, headers);
}

http_response http_client::head(std::string_view target, const header_list& headers) {
  return request("HEAD", target, {}, headers);
}

http_response http_client::put(std::string_view target, std::string body,
                               const header_list& headers) {
  return request("PUT", target, std::move(body), with_json_type(headers));
}

http_response http_client::patch(std::string_view target, std::string body,
                                 const header_list& headers) {
  return request("PATCH", target, std::move(body), with_json_type(headers));
}

http_response http_client::del(std::string_view target, const header_list& headers) {
  return request("DELETE", target, {}, headers);
}

std::size_t http_client::connections_opened() const noexcept {
  return impl_->opened;
}

void http_client::close() noexcept {
  impl_->conn.close();
  impl_->open = false;
}

// -- raw_connection -----------------------------------------------------------

struct raw_connection::impl {
  explicit impl(std::chrono::milliseconds t) : conn(t) {}
  loopback_stream conn;
};

raw_connection::raw_connection(std::uint16_t port, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<impl>(timeout)) {
  if (auto ec = impl_->conn.connect(port))
    throw transport_error("connect to port " + std::to_string(port) + ": " + ec.message());
}

raw_connection::~raw_connection() = default;

bool raw_connection::send(std::string_view bytes, std::string* error) {
  auto ec = impl_->conn.write(bytes);
  if (ec && error) *error = "write: " + ec.message();
  return !ec;
}

void raw_connection::shutdown_send() {
  beast::error_code ignored;
  impl_->conn.stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

std::optional<http_response> raw_connection::read_response(bool head_request, std::string* error) {
  response_parser parser;
  configure(parser, head_request);
  if (auto ec = impl_->conn.read(parser)) {
    if (error) *error = "read: " + ec.message();
    return std::nullopt;
  }
  return to_response(parser.release());
}

raw_reply raw_connection::read_until_close(std::chrono::milliseconds timeout) {
  auto& conn = impl_->conn;
  raw_reply out;
  auto start = std::chrono::steady_clock::now();
  auto deadline = start + timeout;
  auto buffered = conn.buffer.data();
  out.bytes.assign(static_cast<const char*>(buffered.data()), buffered.size());
  conn.buffer.consume(buffered.size());
  for (;;) {
    auto ec = conn.read_some(out.bytes, deadline);
    if (!ec) continue;
    if (ec == net::error::eof) {
      out.closed = true;
    } else if (ec == net::error::connection_reset) {
      out.closed = true;
      out.reset = true;
    } else if (ec != beast::error::timeout) {
      out.closed = true; // any other socket error also means the server is gone
    }
    break;
  }
  out.elapsed =
    std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  return out;
}

// -- free functions -----------------------------------------------------------

raw_reply raw_exchange(std::uint16_t port, std::string_view bytes, bool half_close,
                       std::chrono::milliseconds timeout) {
  raw_connection conn{port, timeout};
  conn.send(bytes); // a server may answer and close before taking everything
  if (half_close) conn.shutdown_send();
  return conn.read_until_close(timeout);
}

std::optional<http_response> parse_response(std::string_view bytes, std::string_view* rest,
                                            bool head_request) {
  response_parser parser;
  configure(parser, head_request);
  parser.eager(true);
  std::string_view in = bytes;
  beast::error_code ec;
  while (!parser.is_done()) {
    if (in.empty()) {
      // A response delimited by the end of the connection ends with the bytes.
      if (!parser.is_header_done() || !parser.need_eof()) return std::nullopt;
      parser.put_eof(ec);
      if (ec) return std::nullopt;
      break;
    }
    auto n = parser.put(net::buffer(in.data(), in.size()), ec);
    in.remove_prefix(n);
    if (ec == bhttp::error::need_more) {
      ec = {};
      if (n == 0 && !in.empty()) return std::nullopt; // an incomplete header can never complete
      continue;
    }
    if (ec) return std::nullopt;
  }
  if (rest) *rest = in;
  return to_response(parser.release());
}

} // namespace shoal::test
