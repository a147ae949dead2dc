// SPDX-License-Identifier: Apache-2.0
#pragma once

// How a route family asks the shards for its exchange: the typed request goes out through
// the shard client, and the answer comes back rendered by the handler's `render`, which
// completes the exchange. Only route families include this (it brings in every module's
// messages); the session does not.

#include <cstdint>
#include <utility>
#include <vector>

#include "http/exchange.hpp"
#include "protocol/shard_client.hpp"

namespace shoal::http {

/// Sends `r` to the shard its `place` names; `render(core::result<T>&&) -> response` runs
/// where the answer arrives and its response completes the exchange.
template <class R, class Render>
pending ask(exchange& ex, R r, std::uint64_t timeout_ms, Render render) {
  ex.shards.ask(std::move(r), ex.answer<protocol::reply_of<R>>(std::move(render)));
  return pending{timeout_ms, protocol::changes_state<R>};
}

/// Sends a copy of `r` to every shard; `render(std::vector<core::result<T>>&&)` gets the
/// answers in shard order.
template <class R, class Render>
pending ask_all(exchange& ex, R r, std::uint64_t timeout_ms, Render render) {
  using all = std::vector<core::result<protocol::reply_of<R>>>;
  // A gather always answers with the vector: each shard's failure is in its slot.
  ex.shards.ask_all(std::move(r),
                    ex.answer<all>([render = std::move(render)](core::result<all>&& a) {
                      return render(std::move(a).value());
                    }));
  return pending{timeout_ms, protocol::changes_state<R>};
}

} // namespace shoal::http
