// SPDX-License-Identifier: Apache-2.0
#pragma once

// Exponential backoff with jitter, for retries of a connection: the first delay, doubling
// up to a cap, each spread uniformly over ±20% of its step so that nodes that lost a
// peer together do not retry in lockstep. Pure: the random source is the caller's.

#include <algorithm>
#include <chrono>
#include <random>

namespace shoal::util {

class backoff {
public:
  /// `cap` below `first` is taken as `first`.
  backoff(std::chrono::milliseconds first, std::chrono::milliseconds cap) noexcept
      : first_(first), cap_(std::max(cap, first)), step_(first) {}

  /// The next delay: the current step, jittered; the step then doubles up to the cap.
  template <class Random>
  std::chrono::milliseconds next(Random& random) {
    std::uniform_real_distribution<double> spread(1.0 - jitter, 1.0 + jitter);
    const auto delay =
      std::chrono::milliseconds(static_cast<long>(static_cast<double>(step_.count()) * spread(random)));
    step_ = std::min(step_ * 2, cap_);
    return delay;
  }

  /// Back to the first step (after a success).
  void reset() noexcept {
    step_ = first_;
  }

  /// The step the next delay is jittered around.
  std::chrono::milliseconds step() const noexcept {
    return step_;
  }

  static constexpr double jitter = 0.2;

private:
  std::chrono::milliseconds first_;
  std::chrono::milliseconds cap_;
  std::chrono::milliseconds step_;
};

} // namespace shoal::util
