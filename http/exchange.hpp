// SPDX-License-Identifier: Apache-2.0
#pragma once

// What a route handler gets from the session and what it gives back (docs/architecture.md
// "The middle"): the request, the node's services, and one way to answer — a response
// now, a response later (an answer from a shard, rendered by the handler that asked), or
// taking the connection over (the change feed). The session knows nothing else; asking
// the shards is http/ask.hpp, which only route families include.

#include <cstdint>
#include <functional>
#include <memory>
#include <utility>
#include <variant>

#include <boost/beast/core/tcp_stream.hpp>

#include "core/reply.hpp"
#include "http/message.hpp"

namespace shoal::protocol {
class shard_client;
} // namespace shoal::protocol

namespace shoal::http {

struct route_env;
struct server_context;

/// Where answers that arrive later go: the session posts them onto its strand, where an
/// answer to a request that was answered already (it timed out) is dropped.
class response_port {
public:
  virtual ~response_port() = default;
  virtual void post(std::uint64_t seq, response&& res) = 0;
};

/// The answer comes later through the exchange; the session answers 504 after
/// `timeout_ms`.
struct pending {
  std::uint64_t timeout_ms = 0;
  /// The request may change state: without an answer in time its outcome is unknown (504
  /// outcome_unknown, no Retry-After), not a plain timeout.
  bool writes = false;
};

/// The session hands its connection over to `start`, which answers from then on. `req`
/// is the request that was routed (alive for the call only).
struct take_over {
  std::function<void(boost::beast::tcp_stream&& stream, server_context& ctx, std::string request_id,
                     const request& req)>
    start;
};

using route_result = std::variant<response, pending, take_over>;

/// An answer from a shard that renders itself and completes the exchange: one object per
/// request, delivered on the thread the answer arrives on (rendering runs there too).
template <class T, class Render>
class rendered_answer final : public core::answer<T> {
public:
  rendered_answer(std::shared_ptr<response_port> port, std::uint64_t seq, Render render)
      : port_(std::move(port)), seq_(seq), render_(std::move(render)) {}

  void deliver(core::result<T>&& r) override {
    port_->post(seq_, render_(std::move(r)));
  }

private:
  std::shared_ptr<response_port> port_;
  std::uint64_t seq_;
  Render render_;
};

class exchange {
public:
  exchange(request& req, const route_env& env, protocol::shard_client& shards,
           std::shared_ptr<response_port> port, std::uint64_t seq)
      : req(req), env(env), shards(shards), port_(std::move(port)), seq_(seq) {}

  request& req;
  const route_env& env;
  protocol::shard_client& shards;

  unsigned version() const noexcept {
    return req.version();
  }

  /// The reply_to of an answer of type T that `render(core::result<T>&&) -> response`
  /// turns into this exchange's response.
  template <class T, class Render>
  core::reply_to<T> answer(Render render) {
    return core::reply_to<T>{
      std::make_shared<rendered_answer<T, Render>>(port_, seq_, std::move(render))};
  }

private:
  std::shared_ptr<response_port> port_;
  std::uint64_t seq_;
};

} // namespace shoal::http
