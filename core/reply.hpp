// SPDX-License-Identifier: Apache-2.0
#pragma once

// The one reply path (docs/architecture.md "The middle"): `reply_to<T>` is where the one
// answer to a request goes. The HTTP edge's answer posts to a connection's strand, a
// requesting actor's answer is its CAF response promise (protocol/), a test's is a
// lambda. No CAF here.

#include <memory>
#include <type_traits>
#include <utility>

#include "core/result.hpp"

namespace shoal::core {

/// Receives the answer to one request. `deliver` is called at most once, on whatever
/// thread produced the answer (usually a CAF worker): it must not block, only hand the
/// result over.
template <class T>
class answer {
public:
  virtual ~answer() = default;
  virtual void deliver(result<T>&& r) = 0;
};

/// A handle to the answer of one request. Copies share the answer; the first `deliver`
/// through any copy hands the result over and empties that copy, so a handler that
/// answers twice by mistake cannot reach the caller twice through the same handle.
/// Empty (default) means "the caller is an actor that waits for a response message".
template <class T>
class reply_to {
public:
  using value_type = T;

  reply_to() = default;
  explicit reply_to(std::shared_ptr<answer<T>> to) : to_(std::move(to)) {}

  /// A reply_to that calls `f(result<T>&&)`.
  template <class F>
  static reply_to to(F f) {
    struct fn_answer final : answer<T> {
      explicit fn_answer(F f) : f(std::move(f)) {}
      void deliver(result<T>&& r) override {
        f(std::move(r));
      }
      F f;
    };
    return reply_to{std::make_shared<fn_answer>(std::move(f))};
  }

  explicit operator bool() const noexcept {
    return to_ != nullptr;
  }

  /// The answer itself (for a transport that must treat some answers apart).
  const std::shared_ptr<answer<T>>& target() const noexcept {
    return to_;
  }

  /// Hands `r` to the answer (nothing when empty).
  void deliver(result<T> r) {
    if (auto to = std::move(to_)) to->deliver(std::move(r));
  }

private:
  std::shared_ptr<answer<T>> to_;
};

} // namespace shoal::core
