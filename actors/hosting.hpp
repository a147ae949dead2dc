// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "actors/messages.hpp"
#include "core/reply.hpp"
#include "shard/context.hpp"

namespace shoal::actors {

class actor_type;
class actor_registry;
class actor_metrics;

/// What the hosting module needs to run actors; the shard host implements it with CAF
/// (host/virtual_actor.hpp), tests with a fake.
class actor_runtime {
public:
  using handle = std::uint64_t;
  virtual ~actor_runtime() = default;

  /// Starts the actor (`type`, `id`). The runtime tells the module with `down` when it
  /// ends without being asked to.
  virtual handle spawn(const actor_type& type, const std::string& id) = 0;

  /// Hands `call` to actor `h`, which runs it in its turn and answers `to`.
  virtual void call(handle h, actor_call&& call, core::reply_to<actor_result> to) = 0;

  /// Asks actor `h` to finish everything queued before this request and stop; `stopped`
  /// runs on the shard's thread once it did (or once it is gone anyway).
  virtual void passivate(handle h, std::function<void()> stopped) = 0;

  /// Stops actor `h` at once (its shard stops).
  virtual void stop(handle h) = 0;
};

/// The virtual actors a shard owns: activates one on its first call, hands it calls in
/// arrival order, tracks use in an LRU list, and passivates actors idle for
/// `idle_timeout` (a timer on the actor clock) or over `max_active`. Passivation is a
/// request the actor answers only after everything queued before it; calls that arrive
/// meanwhile wait here and start the next activation, so none is lost or reordered.
/// It also commits the state writes of its actors.
class hosting {
public:
  using requests = actors::requests;

  struct config {
    const actor_registry* registry = nullptr; ///< the node's types; nullptr hosts none
    actor_metrics* metrics = nullptr;         ///< may be null
    std::chrono::milliseconds idle_timeout{300000};
    std::uint32_t max_active = 100000; ///< per shard; the least recently used goes first
  };

  /// `runtime` must outlive the module; set it before the first call (set_runtime).
  hosting(shard::context& ctx, config cfg);
  /// Stops every hosted actor.
  ~hosting();
  hosting(const hosting&) = delete;
  hosting& operator=(const hosting&) = delete;

  void set_runtime(actor_runtime* runtime) noexcept {
    runtime_ = runtime;
  }

  void serve(actor_call&& call, core::reply_to<actor_result> to);
  void serve(state_write&& req, core::reply_to<state_written> to);

  /// Actor `h` ended without being asked to (it cannot, short of a bug).
  void down(actor_runtime::handle h);

  /// Active (not stopping) actors.
  std::size_t active() const noexcept {
    return lru_.size();
  }

private:
  struct waiting_call {
    actor_call call;
    core::reply_to<actor_result> to;
  };
  struct hosted {
    actor_runtime::handle handle = 0;
    std::list<std::string>::iterator lru; ///< valid while not stopping
    shard::time_point last_used;
    const actor_type* type = nullptr;
    bool stopping = false;
    /// Calls that arrived while stopping, in order; created only then.
    std::unique_ptr<std::deque<waiting_call>> waiting;
  };

  hosted& activate(const actor_type* type, const std::string& key, const std::string& id);
  // `key` is taken by value: callers pass `lru_.front()`, which passivation erases.
  void passivate(std::string key);
  void stopped(const std::string& key);
  void schedule_idle();
  void on_idle();

  shard::context& ctx_;
  config cfg_;
  actor_runtime* runtime_ = nullptr;
  std::unordered_map<std::string, hosted> hosted_;               ///< by state key
  std::unordered_map<actor_runtime::handle, std::string> keys_; ///< handle → state key
  std::list<std::string> lru_; ///< active actors, least recently used first
  std::optional<shard::timer_id> idle_timer_;
};

} // namespace shoal::actors
