// SPDX-License-Identifier: Apache-2.0
#pragma once

// How the HTTP edge reaches shards, without seeing CAF: one sender per request type
// (generated from protocol::shard_requests), placement by each request's own `place`,
// and a gather over every shard. The CAF implementation is protocol/bridge.hpp; tests
// implement `client_impl` with fakes.

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "cluster/placement.hpp"
#include "core/reply.hpp"
#include "protocol/requests.hpp"

namespace shoal::protocol {

/// Sends requests of type `R` to a shard.
template <class R>
class sender {
public:
  /// Hands `req` to shard `shard` (< shard_count()); the answer goes to `to`, exactly
  /// once, usually on another thread. Never blocks.
  virtual void send(std::uint32_t shard, R&& req, core::reply_to<reply_of<R>> to) = 0;

protected:
  ~sender() = default;
};

template <class List>
struct senders_of;
template <class... Rs>
struct senders_of<core::type_list<Rs...>> : sender<Rs>... {};

class shard_client : public senders_of<shard_requests> {
public:
  virtual ~shard_client() = default;

  /// How many shards the cluster has (the same on every node).
  virtual std::uint32_t shard_count() const noexcept = 0;

  /// What `place` functions use: the shard map, which shards answer, a random number.
  virtual const cluster::placement& placement() const noexcept = 0;

  /// The node's job broker: a lease for external workers, which may wait for work.
  virtual void lease(jobs::queue_lease&& req, core::reply_to<jobs::leased_jobs> to) = 0;

  /// Sends `req` to the shard its `place` names (an error from `place` is the answer).
  template <class R>
  void ask(R req, core::reply_to<reply_of<R>> to) {
    auto shard = place(req, placement());
    if (!shard) return to.deliver(std::move(shard).error());
    ask(*shard, std::move(req), std::move(to));
  }

  /// Sends `req` to shard `shard`.
  template <class R>
  void ask(std::uint32_t shard, R req, core::reply_to<reply_of<R>> to) {
    static_cast<sender<R>&>(*this).send(shard, std::move(req), std::move(to));
  }

  /// Sends a copy of `req` to every shard; `to` gets the answers in shard order once all
  /// arrived (on the thread of the last one).
  template <class R>
  void ask_all(R req, core::reply_to<std::vector<core::result<reply_of<R>>>> to);
};

/// Implements every sender of a shard_client by calling
/// `Impl::send_to<R>(shard, req, to)` (CRTP).
template <class Impl, class Base, class List>
struct client_chain;
template <class Impl, class Base>
struct client_chain<Impl, Base, core::type_list<>> : Base {};
template <class Impl, class Base, class R, class... Rs>
struct client_chain<Impl, Base, core::type_list<R, Rs...>>
    : client_chain<Impl, Base, core::type_list<Rs...>> {
  void send(std::uint32_t shard, R&& req, core::reply_to<reply_of<R>> to) override {
    static_cast<Impl*>(this)->template send_to<R>(shard, std::move(req), std::move(to));
  }
};
template <class Impl>
using client_impl = client_chain<Impl, shard_client, shard_requests>;

// -- implementation ------------------------------------------------------------------------

namespace detail {

/// The answers of a gather so far: each shard writes its own slot; the last one to
/// arrive (the countdown's release/acquire makes the others' writes visible to it)
/// hands them all over.
template <class T>
struct gather {
  gather(std::size_t n, core::reply_to<std::vector<core::result<T>>> to)
      : slots(n), left(n), to(std::move(to)) {}
  std::vector<std::optional<core::result<T>>> slots;
  std::atomic<std::size_t> left;
  core::reply_to<std::vector<core::result<T>>> to;

  void arrive(std::size_t i, core::result<T>&& r) {
    slots[i].emplace(std::move(r));
    if (left.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    std::vector<core::result<T>> all;
    all.reserve(slots.size());
    for (auto& s : slots)
      all.push_back(std::move(*s));
    to.deliver(std::move(all));
  }
};

} // namespace detail

template <class R>
void shard_client::ask_all(R req, core::reply_to<std::vector<core::result<reply_of<R>>>> to) {
  using T = reply_of<R>;
  const auto n = shard_count();
  if (n == 0) return to.deliver(std::vector<core::result<T>>{});
  auto g = std::make_shared<detail::gather<T>>(n, std::move(to));
  for (std::uint32_t i = 0; i < n; ++i) {
    auto copy = i + 1 == n ? std::move(req) : req;
    ask(i, std::move(copy),
        core::reply_to<T>::to([g, i](core::result<T>&& r) { g->arrive(i, std::move(r)); }));
  }
}

} // namespace shoal::protocol
