// SPDX-License-Identifier: Apache-2.0
#pragma once

// The actor test kit: a GoogleTest fixture that hosts virtual actors exactly as a node
// does (shard hosts with the node's hosting settings, a WAL syncer in sync mode) over a
// temporary real RocksDB store, on CAF's deterministic test scheduler. Nothing runs until
// the test runs the scheduler; time moves only when the test advances it. See
// docs/testing.md.
//
//   class InventoryTest : public shoal::testkit::actor_test {
//   protected:
//     InventoryTest() { shoal::examples::shop::register_types(registry()); }
//   };
//
//   // Verifies that a reservation lowers the stock.
//   TEST_F(InventoryTest, ReserveLowersStock) {
//     ASSERT_TRUE(call("inventory", "apple", "restock", {{"qty", 5}}).ok());
//     auto r = call("inventory", "apple", "reserve", {{"qty", 2}});
//     EXPECT_EQ(r.body.at("stock"), 3);
//     EXPECT_EQ(persisted_state("inventory", "apple")->at("stock"), 3);
//   }

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/exit_reason.hpp>
#include <caf/resumable.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <gtest/gtest.h>

#include "actors/actor_api.hpp"
#include "actors/actor_metrics.hpp"
#include "host/wal_syncer.hpp"
#include "protocol/shard_actor.hpp"
#include "storage/store.hpp"

namespace shoal::testkit {

/// The answer to a method call, as the HTTP edge would render it.
struct reply {
  /// HTTP status: 200 for a result; 4xx/5xx for an error. 0 means no reply arrived.
  std::uint16_t status = 0;
  /// The method's JSON result when ok(); null otherwise.
  boost::json::value body;
  /// Stable error code ("unknown_method", "insufficient_stock", ...); empty when ok().
  std::string code;
  /// Human-readable error message; empty when ok().
  std::string message;

  /// True for status 200.
  bool ok() const noexcept {
    return status == 200;
  }
};

/// Prints a reply in GoogleTest failure messages.
void PrintTo(const reply& r, std::ostream* os);

/// A call sent with `actor_test::send` whose reply arrives while the scheduler runs.
/// Cheap to copy: copies share the same reply.
class pending_reply {
public:
  /// True once the reply arrived.
  bool ready() const noexcept;

  /// How many replies arrived (a correct host delivers exactly one).
  int deliveries() const noexcept;

  /// The reply, or a reply with status 0 and code "no_reply" while none arrived.
  reply get() const;

private:
  friend class actor_test;
  class capture;
  explicit pending_reply(std::shared_ptr<capture> c) : capture_(std::move(c)) {}
  std::shared_ptr<capture> capture_;
};

/// What the fixture hosts; change it through `actor_test::configure()` before start.
struct settings {
  /// Shards of the node (and column families of the store).
  std::uint32_t shards = 4;
  /// storage.sync: replies wait for the WAL syncer's fsync (group commit).
  bool sync = false;
  /// actors.call_timeout: how long an actor-to-actor call waits before 504 call_timeout.
  std::chrono::milliseconds call_timeout{5000};
  /// actors.idle_timeout: an actor unused this long is passivated by the idle tick.
  std::chrono::milliseconds idle_timeout{300000};
  /// Active actors per shard (not per node); over it the least recently used is passivated.
  std::uint32_t max_active = 100000;
};

/// A GoogleTest fixture hosting virtual actors on CAF's deterministic scheduler over a
/// temporary RocksDB store (a fresh directory, removed when the test ends).
///
/// Register types in `registry()` and change `configure()` in the test's constructor or
/// before the first call; the node starts lazily on the first call (or `start()`), after
/// which both are frozen. Every helper runs on the test's thread: actors run only inside
/// `run()`, `call()`, `advance_time()` and the other helpers that say they run.
class actor_test : public ::testing::Test {
public:
  /// Creates the actor system on the deterministic scheduler; the node starts later.
  actor_test();

  /// Shuts the node down (exit_reason::user_shutdown), runs, closes the store and removes
  /// its directory (kept when the environment sets SHOAL_KEEP_TEMP).
  ~actor_test() override;

  actor_test(const actor_test&) = delete;
  actor_test& operator=(const actor_test&) = delete;

  // -- set-up ------------------------------------------------------------------

  /// The node's actor types: add yours before start. Throws std::logic_error once started
  /// (shards read the registry without a lock, as in a node).
  actors::actor_registry& registry();

  /// The hosting settings, for change before start. Throws std::logic_error once started.
  testkit::settings& configure();

  /// The settings in effect.
  const testkit::settings& current_settings() const noexcept {
    return settings_;
  }

  /// Opens the store, creates the metrics and spawns the syncer (sync mode) and the shard
  /// hosts. Called by every helper that needs the node; calling it again does nothing.
  /// Throws std::runtime_error when the store cannot be opened.
  void start();

  /// True once `start()` ran.
  bool started() const noexcept {
    return started_;
  }

  // -- calls -------------------------------------------------------------------

  /// Calls `method` of (`type`, `id`) as the HTTP edge does (an actor_call with a reply_to,
  /// to the shard that owns the actor), runs the scheduler until idle and returns
  /// the reply. Records a test failure unless exactly one reply arrived; then the result
  /// has status 0 and code "no_reply" (e.g. a call waiting on a timer: use `send`).
  reply call(const std::string& type, const std::string& id, const std::string& method,
             boost::json::object args = {});

  /// As `call`, with `args_text` sent verbatim as the serialized arguments (for malformed
  /// or non-object arguments; "" means `{}`, as an empty HTTP body).
  reply call_raw(const std::string& type, const std::string& id, const std::string& method,
                 std::string args_text);

  /// Sends the call without running anything; the reply arrives during a later run.
  /// Calls sent one after the other reach the owning shard in that order.
  pending_reply send(const std::string& type, const std::string& id, const std::string& method,
                     boost::json::object args = {});

  /// As `send`, with `args_text` sent verbatim as the serialized arguments.
  pending_reply send_raw(const std::string& type, const std::string& id, const std::string& method,
                         std::string args_text);

  // -- state -------------------------------------------------------------------

  /// The state of (`type`, `id`) as stored (not as held in memory): read straight from
  /// the owning shard's keyspace under actors::actor_state_key, whose value is a format
  /// byte 0x01 followed by the JSON text. nullopt when never written; records a test
  /// failure (and returns nullopt) when the read fails or the value is malformed.
  std::optional<boost::json::object> persisted_state(const std::string& type,
                                                     const std::string& id);

  // -- lifecycle ---------------------------------------------------------------

  /// Moves the actor clock past actors.idle_timeout (at least 10 ms, the idle tick's
  /// shortest period) and runs: every actor unused during that span is passivated.
  /// Request timeouts that fall in the span fire too.
  void passivate_idle();

  /// Simulates kill -9 and a restart from disk. Kills the shards, the syncer, the hosted
  /// actors and any other actor with work queued (exit_reason::kill, delivered ahead of
  /// their mailboxes, so nothing more runs: no passivation, queued calls are lost without
  /// a reply), closes and reopens the store from its directory, and spawns a fresh node
  /// over it with fresh metrics. Actors come back only with what the store holds.
  void crash_and_restart();

  // -- metrics -----------------------------------------------------------------

  /// Active actors of `type` (the shoal_actors_active gauge); records a test failure and
  /// returns 0 for an unregistered type.
  std::int64_t active(const std::string& type);

  /// Activations of `type` since (re)start; 0 and a test failure for an unregistered type.
  std::uint64_t activations(const std::string& type);

  /// Passivations of `type` since (re)start; 0 and a test failure for an unregistered type.
  std::uint64_t passivations(const std::string& type);

  /// The node's actor metrics (calls by method and outcome, latency). Starts the node.
  /// Replaced by `crash_and_restart()`.
  actors::actor_metrics& metrics();

  // -- scheduler and time --------------------------------------------------------

  /// Runs every ready job until none is left (timers do not fire); returns how many ran.
  std::size_t run();

  /// Runs every ready job except those of `handle` (e.g. `syncer()`), until only those
  /// are left; returns how many ran.
  template <class Handle>
  std::size_t run_except(const Handle& handle) {
    auto* skip = dynamic_cast<caf::resumable*>(caf::actor_cast<caf::abstract_actor*>(handle));
    return sched().run_jobs_filtered([skip](caf::resumable* job) { return job != skip; });
  }

  /// Moves the actor clock forward by `d`, fires the timers that fall due (delayed
  /// messages, request timeouts, idle ticks) and runs until idle.
  void advance_time(std::chrono::milliseconds d);

  /// CAF's deterministic scheduler, for finer steps (run_once, prioritize, peek).
  caf::scheduler::test_coordinator& sched() noexcept {
    return *sched_;
  }

  /// The actor system (for spawning helper actors in a test).
  caf::actor_system& system() noexcept {
    return *sys_;
  }

  // -- node --------------------------------------------------------------------

  /// The shard hosts, indexed by shard number. Starts the node.
  const protocol::shard_handles& shards();

  /// The shard that owns (`type`, `id`) (cluster::shard_map over current_settings().shards).
  std::uint32_t shard_of(const std::string& type, const std::string& id) const;

  /// The WAL syncer; invalid unless current_settings().sync. Starts the node.
  const host::wal_syncer_actor& syncer();

  /// The store; replaced by `crash_and_restart()`. Starts the node.
  storage::store& store();

  /// The store's directory (removed when the fixture ends).
  const std::filesystem::path& store_path() const noexcept {
    return dir_;
  }

private:
  void spawn_node();
  void stop_node(caf::exit_reason reason);
  void kill_node();
  void open_store();
  void close_store();
  actors::actor_metrics::type_metrics* type_metrics(const std::string& type);

  testkit::settings settings_;
  actors::actor_registry registry_;
  std::unique_ptr<caf::actor_system_config> cfg_;
  std::unique_ptr<caf::actor_system> sys_;
  caf::scheduler::test_coordinator* sched_ = nullptr;
  std::filesystem::path dir_;
  std::unique_ptr<storage::store> store_;
  std::unique_ptr<actors::actor_metrics> metrics_;
  host::wal_syncer_actor syncer_;
  protocol::shard_handles shards_;
  bool started_ = false;
};

} // namespace shoal::testkit
