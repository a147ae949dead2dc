// SPDX-License-Identifier: Apache-2.0
#pragma once

// The edge without sockets and without CAF, for route tests: a shard client that records
// every request it is asked (a test answers them), a response port that keeps what the
// handlers post, and a harness that routes a request through both.
//
//   testing::edge_harness edge;
//   auto r = edge.go(make_request(verb::get, "/v1/collections/c/docs/1"));
//   auto& get = edge.shards.only<documents::doc_get>();     // what was asked, of which shard
//   edge.shards.answer<documents::doc_get>(0, documents::stored_doc{3, "{}"});
//   auto res = edge.response();                              // what the handler rendered

#include <any>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <typeindex>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "http/exchange.hpp"
#include "http/router.hpp"
#include "protocol/shard_client.hpp"

namespace shoal::testing {

class fake_shards final : public protocol::client_impl<fake_shards> {
public:
  explicit fake_shards(std::uint32_t shards = 4)
      : placement_{cluster::shard_map{shards}, {}, [] { return std::uint64_t{0}; }} {}

  std::uint32_t shard_count() const noexcept override {
    return placement_.map.shard_count();
  }
  const cluster::placement& placement() const noexcept override {
    return placement_;
  }
  /// Which shards count as up (for keyless job placement); empty: all.
  void set_shard_up(std::function<bool(std::uint32_t)> up) {
    placement_.shard_up = std::move(up);
  }

  /// One request as it was asked.
  struct sent {
    std::uint32_t shard;
    std::type_index type;
    std::any request; ///< R
    std::any to;      ///< core::reply_to<R::reply>
  };
  std::vector<sent> log;

  template <class R>
  void send_to(std::uint32_t shard, R&& req, core::reply_to<protocol::reply_of<R>> to) {
    log.push_back(sent{shard, typeid(R), std::any(std::move(req)), std::any(std::move(to))});
  }

  void lease(jobs::queue_lease&& req, core::reply_to<jobs::leased_jobs> to) override {
    log.push_back(sent{0, typeid(jobs::queue_lease), std::any(std::move(req)), std::any(std::move(to))});
  }

  /// The requests of type R, in order, with their shards.
  template <class R>
  std::vector<std::pair<std::uint32_t, R>> all() const {
    std::vector<std::pair<std::uint32_t, R>> out;
    for (const auto& s : log)
      if (s.type == typeid(R)) out.emplace_back(s.shard, std::any_cast<const R&>(s.request));
    return out;
  }

  /// The one request asked (a test failure unless exactly one request, of type R, was).
  template <class R>
  R only() const {
    EXPECT_EQ(log.size(), 1u) << "expected exactly one request";
    auto reqs = all<R>();
    EXPECT_EQ(reqs.size(), 1u) << "expected one request of this type";
    return reqs.empty() ? R{} : reqs.front().second;
  }

  /// Answers the `i`-th request of type R (in asking order) with `r`.
  template <class R>
  void answer(std::size_t i, core::result<protocol::reply_of<R>> r) {
    using T = protocol::reply_of<R>;
    std::size_t n = 0;
    for (auto& s : log) {
      if (s.type != typeid(R)) continue;
      if (n++ != i) continue;
      std::any_cast<core::reply_to<T>&>(s.to).deliver(std::move(r));
      return;
    }
    ADD_FAILURE() << "no request number " << i << " of that type";
  }

  /// Answers every request of type R (of its shard) with what `f(shard, request)` gives.
  template <class R, class F>
  void answer_all(F f) {
    using T = protocol::reply_of<R>;
    for (auto& s : log)
      if (s.type == typeid(R))
        std::any_cast<core::reply_to<T>&>(s.to).deliver(
          f(s.shard, std::any_cast<const R&>(s.request)));
  }

private:
  cluster::placement placement_;
};

/// Keeps what the handlers post, in order.
class captured_port final : public http::response_port {
public:
  void post(std::uint64_t seq, http::response&& res) override {
    posted.emplace_back(seq, std::move(res));
  }
  std::vector<std::pair<std::uint64_t, http::response>> posted;
};

struct edge_harness {
  http::route_env env;
  fake_shards shards;
  std::shared_ptr<captured_port> port = std::make_shared<captured_port>();
  std::uint64_t seq = 0;

  explicit edge_harness(std::uint32_t shard_count = 4) : shards(shard_count) {}

  /// Routes `req` (kept in `last_request`, whose body the route may move out).
  http::routed go(http::request req) {
    last_request = std::move(req);
    http::exchange ex{last_request, env, shards, port, ++seq};
    return http::route(ex);
  }

  /// The response of `r`: given at once, or posted later by the handler (a test failure
  /// when there is neither).
  http::response response(const http::routed& r) const {
    if (auto* res = std::get_if<http::response>(&r.outcome)) return *res;
    EXPECT_FALSE(port->posted.empty()) << "no response was posted";
    if (port->posted.empty()) return {};
    return port->posted.back().second;
  }

  http::request last_request;
};

} // namespace shoal::testing
