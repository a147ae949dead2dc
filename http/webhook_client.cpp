// SPDX-License-Identifier: Apache-2.0
#include "http/webhook_client.hpp"

#include <algorithm>
#include <cctype>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>
#include <fmt/format.h>
#include <openssl/ssl.h>

// Asio's TLS layer is compiled once, here, the only user of it; the rest of Asio and Beast
// is compiled in http/beast_src.cpp.
#include <boost/asio/ssl/impl/src.hpp>

namespace shoal::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace urls = boost::urls;
using tcp = net::ip::tcp;
using outcome = webhook_result::outcome;

bool webhook_result::retryable() const noexcept {
  switch (what) {
  case outcome::server_error:
  case outcome::connect_error:
  case outcome::timeout:
    return true;
  case outcome::rejected:
    return status == 408 || status == 429;
  case outcome::success:
  case outcome::invalid_url:
  case outcome::forbidden:
    return false;
  }
  return false;
}

const char* to_string(webhook_result::outcome what) noexcept {
  switch (what) {
  case outcome::success:
    return "success";
  case outcome::rejected:
    return "rejected";
  case outcome::server_error:
    return "server_error";
  case outcome::connect_error:
    return "connect_error";
  case outcome::timeout:
    return "timeout";
  case outcome::invalid_url:
    return "invalid_url";
  case outcome::forbidden:
    return "forbidden";
  }
  return "unknown";
}

namespace {

/// A response body that keeps its first `webhook_result::max_body` bytes, drops the rest,
/// and stops the read with `body_limit` after `webhook_result::max_read` bytes. Unlike
/// the parser's own body limit, which refuses a long Content-Length before reading any of
/// the body, this keeps the beginning of a long body.
struct capped_body {
  using value_type = std::string;

  class reader {
  public:
    template <bool isRequest, class Fields>
    reader(bhttp::header<isRequest, Fields>&, value_type& body) : body_(body) {}

    void init(const boost::optional<std::uint64_t>&, beast::error_code& ec) {
      ec = {};
    }

    template <class ConstBufferSequence>
    std::size_t put(const ConstBufferSequence& buffers, beast::error_code& ec) {
      ec = {};
      std::size_t n = 0;
      for (auto it = net::buffer_sequence_begin(buffers); it != net::buffer_sequence_end(buffers);
           ++it) {
        net::const_buffer b = *it;
        auto keep = std::min(b.size(), webhook_result::max_body - body_.size());
        body_.append(static_cast<const char*>(b.data()), keep);
        n += b.size();
      }
      read_ += n;
      if (read_ > webhook_result::max_read) ec = bhttp::error::body_limit;
      return n;
    }

    void finish(beast::error_code& ec) {
      ec = {};
    }

  private:
    value_type& body_;
    std::size_t read_ = 0;
  };
};

/// The parts of a webhook URL one post needs.
struct endpoint_url {
  bool tls = false;
  bool ip_literal = false;
  std::string host;        ///< for the resolver and TLS: decoded, no brackets around IPv6
  std::uint16_t port = 0;  ///< explicit or the scheme's default
  std::string host_header; ///< as written in the URL, with the port if one was written
  std::string target;      ///< path and query, at least "/"
  std::string display;     ///< scheme://host[:port]/path for messages: no query, no fragment
  std::string authority;   ///< host:port for messages
};

/// Takes `url` apart, or says in `why` what is wrong with it.
std::optional<endpoint_url> parse_url(std::string_view url, std::string& why) {
  auto parsed = urls::parse_uri(url);
  if (!parsed) {
    why = "not an absolute URL";
    return std::nullopt;
  }
  const urls::url_view& u = *parsed;
  endpoint_url e;
  if (u.scheme_id() == urls::scheme::https) {
    e.tls = true;
  } else if (u.scheme_id() != urls::scheme::http) {
    why = fmt::format("unsupported scheme \"{}\"", std::string_view(u.scheme()));
    return std::nullopt;
  }
  if (!u.has_authority() || u.encoded_host().empty()) {
    why = "no host";
    return std::nullopt;
  }
  if (u.has_userinfo()) {
    // Credentials would have to become an Authorization header; put them in the body or
    // the query instead.
    why = "credentials in the URL are not supported";
    return std::nullopt;
  }
  switch (u.host_type()) {
  case urls::host_type::name:
    e.host = u.host_name();
    break;
  case urls::host_type::ipv4:
    e.host = u.host_ipv4_address().to_string();
    e.ip_literal = true;
    break;
  case urls::host_type::ipv6:
    e.host = u.host_ipv6_address().to_string();
    e.ip_literal = true;
    break;
  default:
    why = "unsupported host";
    return std::nullopt;
  }
  // An empty port ("http://h:/") means the default one (RFC 3986, 3.2.3).
  bool explicit_port = u.has_port() && !u.port().empty();
  if (explicit_port) {
    e.port = u.port_number();
    if (e.port == 0) {
      why = "port out of range";
      return std::nullopt;
    }
  } else {
    e.port = e.tls ? 443 : 80;
  }
  std::string host(u.encoded_host());
  e.host_header = explicit_port ? fmt::format("{}:{}", host, e.port) : host;
  e.authority = fmt::format("{}:{}", host, e.port);
  e.target = u.encoded_target();
  if (e.target.empty() || e.target.front() != '/') e.target.insert(0, "/");
  e.display = fmt::format("{}://{}{}", e.tls ? "https" : "http", e.host_header,
                          std::string_view(u.encoded_path()));
  return e;
}

class call;

/// The posts in flight, so that the client's destructor can cut them short. Each entry
/// is added once and removed once; the lock is never held for longer than that.
class call_registry {
public:
  /// False once `stop_all` ran: the post is not started.
  bool add(const std::shared_ptr<call>& c) {
    std::lock_guard<std::mutex> guard{mutex_};
    if (stopping_) return false;
    calls_.emplace(c.get(), c);
    return true;
  }

  void remove(const call* c) {
    std::lock_guard<std::mutex> guard{mutex_};
    calls_.erase(c);
  }

  /// Refuses every later `add` and returns the calls still alive.
  std::vector<std::shared_ptr<call>> stop_all() {
    std::lock_guard<std::mutex> guard{mutex_};
    stopping_ = true;
    std::vector<std::shared_ptr<call>> alive;
    for (auto& [ptr, weak] : calls_)
      if (auto c = weak.lock()) alive.push_back(std::move(c));
    return alive;
  }

private:
  std::mutex mutex_;
  bool stopping_ = false;
  std::unordered_map<const call*, std::weak_ptr<call>> calls_;
};

/// Whether `host` is "localhost" or a name under it, in any case.
bool is_localhost_name(std::string_view host) {
  if (!host.empty() && host.back() == '.') host.remove_suffix(1); // the root label
  constexpr std::string_view name = "localhost";
  if (host.size() < name.size()) return false;
  const auto tail = host.substr(host.size() - name.size());
  const bool same = std::equal(tail.begin(), tail.end(), name.begin(), [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) == b;
  });
  return same && (host.size() == name.size() || host[host.size() - name.size() - 1] == '.');
}

/// One post: resolve → connect → (TLS handshake) → write → read → callback, every step on
/// the call's own strand, with one deadline timer over all of them. Whatever ends the call
/// first (an answer, an error, the deadline, `stop`) calls `done`; `finished_` makes sure
/// nothing else does.
class call : public std::enable_shared_from_this<call> {
public:
  using callback = std::function<void(webhook_result)>;

  call(net::io_context& ioc, ssl::context& tls, call_registry& registry,
       const util::destination_policy& destinations, endpoint_url url, std::string json_body,
       std::chrono::milliseconds timeout, const webhook_client::header_list& headers, callback done)
      : strand_(net::make_strand(ioc)), resolver_(strand_), socket_(strand_), deadline_(strand_),
        tls_context_(tls), registry_(registry), destinations_(destinations), url_(std::move(url)),
        timeout_(timeout), done_(std::move(done)) {
    request_.method(bhttp::verb::post);
    request_.target(url_.target);
    request_.version(11);
    request_.set(bhttp::field::host, url_.host_header);
    request_.set(bhttp::field::user_agent, "shoal-webhook");
    request_.set(bhttp::field::content_type, "application/json");
    request_.set(bhttp::field::connection, "close");
    for (const auto& [name, value] : headers)
      request_.set(name, value);
    request_.body() = std::move(json_body);
    request_.prepare_payload();
    parser_.body_limit(boost::none); // capped_body enforces max_read itself
  }

  ~call() {
    registry_.remove(this);
  }

  call(const call&) = delete;
  call& operator=(const call&) = delete;

  net::strand<net::io_context::executor_type> executor() const {
    return strand_;
  }

  /// Runs on the strand.
  void start() {
    if (finished_) return;
    started_ = true;
    deadline_.expires_after(timeout_);
    deadline_.async_wait(beast::bind_front_handler(&call::on_deadline, shared_from_this()));
    if (url_.ip_literal) {
      // No lookup: Asio runs every lookup of an io_context on one background thread, so
      // a slow DNS server would hold up the others.
      boost::system::error_code ec;
      auto address = net::ip::make_address(url_.host, ec);
      if (ec) return fail(fmt::format("bad address {}: {}", url_.host, ec.message()));
      endpoints_.emplace_back(address, url_.port);
      return connect_allowed();
    }
    if (is_localhost_name(url_.host)) {
      // "localhost" and "*.localhost" are loopback by definition (RFC 6761 6.3), whatever
      // a resolver or /etc/hosts would say (or whether there is one).
      endpoints_.emplace_back(net::ip::address_v4::loopback(), url_.port);
      endpoints_.emplace_back(net::ip::address_v6::loopback(), url_.port);
      return connect_allowed();
    }
    resolver_.async_resolve(url_.host, std::to_string(url_.port),
                            beast::bind_front_handler(&call::on_resolve, shared_from_this()));
  }

  /// Cuts the call short ("client stopped"). Runs on the strand.
  void stop() {
    if (finished_) return;
    stopped_ = true;
    if (!started_) return fail({}); // nothing pending whose error would end the call
    cancel_io();
  }

private:
  void on_deadline(beast::error_code ec) {
    if (ec || finished_) return; // cancelled by finish
    timed_out_ = true;
    cancel_io();
  }

  /// Makes the pending operation complete with an error, which `fail` then explains.
  void cancel_io() {
    resolver_.cancel();
    beast::error_code ignored;
    socket_.close(ignored);
  }

  void on_resolve(beast::error_code ec, const tcp::resolver::results_type& results) {
    if (ec) return fail(fmt::format("resolve {} failed: {}", url_.host, ec.message()));
    for (const auto& r : results)
      endpoints_.push_back(r.endpoint());
    connect_allowed();
  }

  /// Drops the endpoints the destination policy refuses, then connects to the first of
  /// the rest that answers. With none left, nothing is sent: `forbidden`.
  void connect_allowed() {
    std::string refused;
    std::vector<tcp::endpoint> allowed;
    for (const auto& e : endpoints_) {
      util::destination_policy::address a;
      const auto ip = e.address();
      if (ip.is_v4()) {
        auto b = ip.to_v4().to_bytes();
        std::copy(b.begin(), b.end(), a.bytes.begin());
      } else {
        auto b = ip.to_v6().to_bytes();
        std::copy(b.begin(), b.end(), a.bytes.begin());
        a.v6 = true;
      }
      if (auto why = destinations_.refusal(a)) {
        if (refused.empty()) refused = ip.to_string() + " (" + *why + ")";
        continue;
      }
      allowed.push_back(e);
    }
    if (allowed.empty()) {
      webhook_result r;
      r.what = outcome::forbidden;
      r.message = fmt::format("POST {}: the destination {} is not allowed; jobs.webhook_allow "
                              "can allow it",
                              url_.display, refused);
      return finish(std::move(r));
    }
    endpoints_ = std::move(allowed);
    net::async_connect(socket_, endpoints_,
                       beast::bind_front_handler(&call::on_connect, shared_from_this()));
  }

  void on_connect(beast::error_code ec, const tcp::endpoint&) {
    if (ec) return fail(fmt::format("connect to {} failed: {}", url_.authority, ec.message()));
    if (!url_.tls) return do_write();
    tls_.emplace(socket_, tls_context_);
    // SNI is for host names only (RFC 6066, 3).
    if (!url_.ip_literal && !SSL_set_tlsext_host_name(tls_->native_handle(), url_.host.c_str()))
      return fail(fmt::format("TLS with {} failed: cannot set the server name", url_.authority));
    tls_->set_verify_mode(ssl::verify_peer);
    tls_->set_verify_callback(ssl::host_name_verification(url_.host));
    tls_->async_handshake(ssl::stream_base::client,
                          beast::bind_front_handler(&call::on_handshake, shared_from_this()));
  }

  void on_handshake(beast::error_code ec) {
    if (ec)
      return fail(fmt::format("TLS handshake with {} failed: {}", url_.authority, ec.message()));
    do_write();
  }

  void do_write() {
    with_stream([this](auto& stream) {
      bhttp::async_write(stream, request_,
                         beast::bind_front_handler(&call::on_write, shared_from_this()));
    });
  }

  void on_write(beast::error_code ec, std::size_t) {
    if (ec) return fail(fmt::format("POST {}: write failed: {}", url_.display, ec.message()));
    with_stream([this](auto& stream) {
      bhttp::async_read(stream, buffer_, parser_,
                        beast::bind_front_handler(&call::on_read, shared_from_this()));
    });
  }

  void on_read(beast::error_code ec, std::size_t) {
    // Without a length or chunking, a body ends where the connection does; a TLS peer
    // that closes without close_notify reports that as a truncated stream. The status is
    // already known, so take what arrived.
    bool ended_by_close =
      ec == ssl::error::stream_truncated && parser_.is_header_done() && parser_.need_eof();
    // A body over max_read is not read further (capped_body): the status counts.
    if (!ec || ec == bhttp::error::body_limit || ended_by_close) return answered();
    if (ec == bhttp::error::end_of_stream
        || (ec == ssl::error::stream_truncated && !parser_.is_header_done()))
      return fail(fmt::format("POST {}: connection closed without an answer", url_.display));
    if (ec == bhttp::error::partial_message || ec == ssl::error::stream_truncated)
      return fail(
        fmt::format("POST {}: connection closed before the answer was complete", url_.display));
    fail(fmt::format("POST {}: read failed: {}", url_.display, ec.message()));
  }

  void answered() {
    auto& res = parser_.get();
    webhook_result r;
    r.status = res.result_int();
    if (r.status >= 200 && r.status < 300)
      r.what = outcome::success;
    else if (r.status >= 500 && r.status < 600)
      r.what = outcome::server_error;
    else
      r.what = outcome::rejected;
    r.body = std::move(res.body());
    r.message = fmt::format("POST {} answered {}", url_.display, r.status);
    finish(std::move(r));
  }

  /// Ends the call after an error. The deadline and `stop` cancel the pending operation,
  /// whose error then says nothing useful: they take precedence over it.
  void fail(std::string message) {
    webhook_result r;
    if (timed_out_) {
      r.what = outcome::timeout;
      r.message = fmt::format("POST {}: no answer within {} ms", url_.display, timeout_.count());
    } else if (stopped_) {
      r.what = outcome::connect_error;
      r.message = fmt::format("POST {}: client stopped", url_.display);
    } else {
      r.what = outcome::connect_error;
      r.message = std::move(message);
    }
    if (parser_.is_header_done()) r.status = parser_.get().result_int();
    finish(std::move(r));
  }

  void finish(webhook_result r) {
    if (finished_) return;
    finished_ = true;
    deadline_.cancel();
    cancel_io();
    auto done = std::move(done_);
    if (done) done(std::move(r));
  }

  template <class F>
  void with_stream(F&& f) {
    if (tls_)
      f(*tls_);
    else
      f(socket_);
  }

  net::strand<net::io_context::executor_type> strand_;
  tcp::resolver resolver_;
  tcp::socket socket_;
  std::optional<ssl::stream<tcp::socket&>> tls_; // over socket_, for https only
  net::steady_timer deadline_;
  ssl::context& tls_context_;
  call_registry& registry_;
  const util::destination_policy& destinations_;
  endpoint_url url_;
  std::vector<tcp::endpoint> endpoints_; // resolved (or an IP literal), then the allowed ones
  std::chrono::milliseconds timeout_;
  callback done_;
  bhttp::request<bhttp::string_body> request_;
  beast::flat_buffer buffer_;
  bhttp::response_parser<capped_body> parser_;
  bool started_ = false;
  bool timed_out_ = false;
  bool stopped_ = false;
  bool finished_ = false;
};

ssl::context make_tls_context() {
  ssl::context ctx{ssl::context::tls_client};
  SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
  // On failure no certificate verifies, and every https post reports why.
  boost::system::error_code ignored;
  ctx.set_default_verify_paths(ignored);
  ctx.set_verify_mode(ssl::verify_peer);
  return ctx;
}

} // namespace

// Members are destroyed in reverse order: the io_context (and any handler it still holds)
// goes before the registry and the TLS context that calls refer to.
struct webhook_client::impl {
  impl(unsigned n, util::destination_policy policy)
      : destinations(std::move(policy)), tls(make_tls_context()), ioc(static_cast<int>(n)),
        work(net::make_work_guard(ioc)) {
    threads.reserve(n);
    for (unsigned i = 0; i < n; ++i)
      threads.emplace_back([this] { ioc.run(); });
  }

  /// Calls `done` with `r` on a client thread.
  void report(call::callback done, webhook_result r) {
    net::post(ioc, [done = std::move(done), r = std::move(r)]() mutable {
      if (done) done(std::move(r));
    });
  }

  void shutdown() {
    for (auto& c : registry.stop_all())
      net::post(c->executor(), [c] { c->stop(); });
    // Once every call has called back, the io_context runs out of work and the threads end.
    work.reset();
    for (auto& t : threads)
      t.join();
  }

  call_registry registry;
  const util::destination_policy destinations;
  ssl::context tls;
  net::io_context ioc;
  net::executor_work_guard<net::io_context::executor_type> work;
  std::vector<std::thread> threads;
};

webhook_client::webhook_client(unsigned threads, util::destination_policy destinations)
    : impl_(std::make_unique<impl>(std::max(1u, threads), std::move(destinations))) {}

webhook_client::~webhook_client() {
  impl_->shutdown();
}

void webhook_client::post(std::string url, std::string json_body, std::chrono::milliseconds timeout,
                          std::function<void(webhook_result)> done) {
  post(std::move(url), std::move(json_body), timeout, {}, std::move(done));
}

void webhook_client::post(std::string url, std::string json_body, std::chrono::milliseconds timeout,
                          header_list headers, std::function<void(webhook_result)> done) {
  auto& d = *impl_;
  std::string why;
  auto parsed = parse_url(url, why);
  if (!parsed) {
    d.report(std::move(done), {outcome::invalid_url, 0, {}, fmt::format("invalid URL: {}", why)});
    return;
  }
  auto display = parsed->display;
  auto c = std::make_shared<call>(d.ioc, d.tls, d.registry, d.destinations, std::move(*parsed),
                                  std::move(json_body), timeout, headers, std::move(done));
  if (!d.registry.add(c)) {
    // Posted from a callback while the client is being destroyed: `c` never starts and
    // reports "client stopped".
    net::post(c->executor(), [c] { c->stop(); });
    return;
  }
  net::post(c->executor(), [c] { c->start(); });
}

} // namespace shoal::http
