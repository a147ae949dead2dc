// SPDX-License-Identifier: Apache-2.0
#pragma once

// The timers of one shard's modules, in one queue: the host arms a single delayed message
// on the actor clock for the earliest, so every module's time is the actor clock's and
// one scheme serves them all.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <unordered_map>
#include <utility>

#include "shard/context.hpp"

namespace shoal::shard {

class timer_queue {
public:
  timer_id add(time_point due, std::function<void()> fn);

  /// Forgets timer `id` (nothing when it ran or was cancelled).
  void cancel(timer_id id);

  /// When the earliest timer is due; nullopt when none is.
  std::optional<time_point> next_due() const;

  /// Runs, in due order, every timer due at `now`; timers they add run in a later call.
  /// Returns how many ran.
  std::size_t run_due(time_point now);

  std::size_t size() const noexcept {
    return by_due_.size();
  }

private:
  using key = std::pair<time_point, timer_id>;
  std::map<key, std::function<void()>> by_due_;
  std::unordered_map<timer_id, time_point> due_of_;
  timer_id next_id_ = 0;
};

} // namespace shoal::shard
