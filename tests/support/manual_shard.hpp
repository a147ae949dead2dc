// SPDX-License-Identifier: Apache-2.0
#pragma once

// A shard's context on a manual loop, for module tests without CAF: the real
// shard::host_context (gate, timers, deferred steps) over a store of the test's choice,
// with a clock that moves only when the test advances it, deferred steps and timers that
// run only when the test runs the loop, and a WAL syncer the test answers.
//
//   storage::memory_store store{1};
//   testing::manual_shard shard{store};
//   cache::module cache{shard.ctx(), {}};
//   auto put = shard.serve(cache, cache::cache_put{"k", "v", "text/plain", 1000});
//   shard.advance(std::chrono::seconds(2)); // the expiry timer runs; no sleeping

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "core/reply.hpp"
#include "shard/host_context.hpp"
#include "storage/store.hpp"

namespace shoal::testing {

/// What a module answered to one request: nothing yet, or the result (and how often).
template <class T>
struct capture {
  int deliveries = 0;
  std::optional<core::result<T>> last;

  bool ready() const noexcept {
    return deliveries > 0;
  }
  /// The value; a test failure (and a default T) when none or an error arrived.
  T value() const {
    EXPECT_TRUE(ready()) << "no answer arrived";
    if (!ready()) return T{};
    EXPECT_TRUE(last->ok()) << "the answer is an error: " << last->error().to_string();
    return last->ok() ? **last : T{};
  }
  /// The error; a test failure (and an internal error) when none or a value arrived.
  core::error error() const {
    EXPECT_TRUE(ready()) << "no answer arrived";
    if (!ready() || last->ok()) {
      ADD_FAILURE() << "expected an error";
      return core::error{core::errc::internal, "no error"};
    }
    return last->error();
  }
};

class manual_shard {
public:
  /// `sync`: commits wait for `sync()` (the WAL syncer's answer), as with storage.sync.
  explicit manual_shard(storage::store& store, std::uint32_t index = 0, bool sync = false,
                        std::uint64_t wall_ms_at_start = 1'700'000'000'000)
      : store_(store) {
    shard::host_context::ports p;
    p.now = [this] { return now_; };
    p.arm = [this](shard::time_point due) { armed_.insert(due); };
    p.wake = [this] { woken_ = true; };
    p.request_sync = [this](std::uint64_t wanted) { sync_wanted_ = wanted; };
    p.report = [this](std::string_view what, const core::error& err) {
      reports.push_back(std::string(what) + ": " + err.to_string());
    };
    ctx_ = std::make_unique<shard::host_context>(index, store, sync, std::move(p),
                                                 wall_ms_at_start);
  }

  ~manual_shard() {
    ctx_->close();
  }

  shard::host_context& ctx() noexcept {
    return *ctx_;
  }

  /// Runs what a message would: `f`, then the step's end (completions, timers armed),
  /// then every deferred step until none is left.
  template <class F>
  void step(F&& f) {
    f();
    ctx_->finish_step();
    run();
  }

  /// Calls `module.serve(req, reply_to)` as the host would and runs; the capture holds
  /// what arrived so far (a scan or a parked read may answer later).
  template <class Module, class R>
  std::shared_ptr<capture<typename R::reply>> serve(Module& module, R req) {
    using T = typename R::reply;
    auto c = std::make_shared<capture<T>>();
    step([&] {
      module.serve(std::move(req), core::reply_to<T>::to([c](core::result<T>&& r) {
                     ++c->deliveries;
                     c->last = std::move(r);
                   }));
    });
    return c;
  }

  /// Runs deferred steps (each behind the ones before) until none is left; returns how
  /// many wake-ups ran.
  std::size_t run() {
    std::size_t n = 0;
    while (woken_) {
      woken_ = false;
      ++n;
      ctx_->on_step();
      ctx_->finish_step();
    }
    return n;
  }

  /// Runs one wake-up of deferred work (one "message"), if one is due; false when none.
  bool run_one() {
    if (!woken_) return false;
    woken_ = false;
    ctx_->on_step();
    ctx_->finish_step();
    return true;
  }

  /// Moves the clock by `d`, fires the ticks that fall due (each one message) and runs.
  void advance(std::chrono::milliseconds d) {
    now_ += d;
    while (!armed_.empty() && *armed_.begin() <= now_) {
      armed_.erase(armed_.begin());
      ctx_->on_tick();
      ctx_->finish_step();
      run();
    }
    run();
  }

  /// The sequence an fsync was asked for, while one is pending.
  std::optional<std::uint64_t> sync_wanted() const noexcept {
    return sync_wanted_;
  }

  /// Answers the pending fsync as the WAL syncer does (durable up to the store's latest
  /// sequence) and runs. Records a test failure when none is pending.
  void sync() {
    if (!sync_wanted_) {
      ADD_FAILURE() << "no fsync was asked for";
      return;
    }
    sync_wanted_.reset();
    step([&] { ctx_->synced(store_.latest_sequence()); });
  }

  /// Fails the pending fsync with `err` and runs.
  void fail_sync(const core::error& err) {
    sync_wanted_.reset();
    step([&] { ctx_->sync_failed(err); });
  }

  shard::time_point now() const noexcept {
    return now_;
  }

  /// Failures of background work the modules reported.
  std::vector<std::string> reports;

private:
  storage::store& store_;
  std::unique_ptr<shard::host_context> ctx_;
  shard::time_point now_{std::chrono::hours(1)};
  std::multiset<shard::time_point> armed_;
  bool woken_ = false;
  std::optional<std::uint64_t> sync_wanted_;
};

} // namespace shoal::testing
