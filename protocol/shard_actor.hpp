// SPDX-License-Identifier: Apache-2.0
#pragma once

// The typed handle of a shard, generated from protocol::shard_requests: for each request
// R, `replies_to<R, reply_to<T>>::with<T>`. The HTTP edge sends (R, reply_to) with
// anon_send and gets its answer through the reply_to; an actor sends (R, empty reply_to)
// as a request and gets T (or a caf::error of category `shoal`) as its response. The
// shard host, the remote stub and the gateway build their handlers from the same list.

#include <utility>
#include <vector>

#include <caf/actor_cast.hpp>
#include <caf/delegated.hpp>
#include <caf/replies_to.hpp>
#include <caf/result.hpp>
#include <caf/typed_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "core/reply.hpp"
#include "protocol/errors.hpp"
#include "protocol/requests.hpp"
#include "protocol/type_ids.hpp"

namespace shoal::protocol {

template <class R>
using shard_signature =
  typename caf::replies_to<R, core::reply_to<reply_of<R>>>::template with<reply_of<R>>;

template <class List>
struct shard_actor_of;
template <class... Rs>
struct shard_actor_of<core::type_list<Rs...>> {
  using type = caf::typed_actor<shard_signature<Rs>...>;
};

/// A shard: a local shard host, or a stub for a shard another node owns.
using shard_actor = shard_actor_of<shard_requests>::type;

/// Every shard of the cluster as this node addresses it, in shard order.
struct shard_handles {
  std::vector<shard_actor> handles;
};

/// An answer that fulfils the CAF response promise of a requesting actor. It must be
/// delivered on the thread of the actor that made the promise (CAF sends from that
/// actor's execution unit): the host answers in its own handlers, and hands a call that
/// carries one to a virtual actor by delegation instead (host/virtual_actor.cpp).
template <class T>
class promise_answer final : public core::answer<T> {
public:
  explicit promise_answer(caf::typed_response_promise<T> rp) : rp_(std::move(rp)) {}

  void deliver(core::result<T>&& r) override {
    if (r)
      rp_.deliver(std::move(r).value());
    else
      rp_.deliver(to_caf(r.error()));
  }

  caf::typed_response_promise<T>& promise() noexcept {
    return rp_;
  }

private:
  caf::typed_response_promise<T> rp_;
};

template <class T>
core::reply_to<T> promise_reply(caf::typed_response_promise<T> rp) {
  return core::reply_to<T>{std::make_shared<promise_answer<T>>(std::move(rp))};
}

/// The handler of request R for an actor `self` whose `serve(R&&, reply_to<T>)` answers
/// it: an empty reply_to (an actor asked) becomes `self`'s response promise.
template <class R, class Self, class Serve>
auto handler(Self* self, Serve serve) {
  using T = reply_of<R>;
  return [self, serve](R& req, core::reply_to<T>& to) mutable -> caf::result<T> {
    if (to) {
      serve(std::move(req), std::move(to));
      return caf::delegated<T>{};
    }
    auto rp = self->template make_response_promise<T>();
    serve(std::move(req), promise_reply(rp));
    return rp;
  };
}

/// Sends `req` from actor `self` to `shard` as a request (`.then(T&, caf::error&)`).
template <class Self, class Handle, class R, class Timeout>
auto ask(Self* self, const Handle& shard, Timeout timeout, R req) {
  return self->request(shard, timeout, std::move(req), core::reply_to<reply_of<R>>{});
}

} // namespace shoal::protocol
