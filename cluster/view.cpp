// SPDX-License-Identifier: Apache-2.0
#include "cluster/view.hpp"

#include <atomic>

namespace shoal::cluster {

const char* to_string(member_state s) noexcept {
  switch (s) {
  case member_state::connecting:
    return "connecting";
  case member_state::up:
    return "up";
  case member_state::down:
    return "down";
  }
  return "unknown";
}

void view_board::publish(std::shared_ptr<const cluster_view> view) noexcept {
  std::atomic_store(&current_, std::move(view));
}

std::shared_ptr<const cluster_view> view_board::read() const noexcept {
  return std::atomic_load(&current_);
}

} // namespace shoal::cluster
