// SPDX-License-Identifier: Apache-2.0
// In-process nodes: two or three CAF actor systems in one test process, each with its
// own middleman, talking over loopback exactly as separate processes do. Each member
// runs shard hosts (host::spawn_shard_host) for its own shards and the generic remote
// stub (remote/remote_shard.hpp) for the others, which forwards typed requests to the
// owner's gateway. Fast cases of the handshake, trust, forwarding and failure detection;
// the multi-process suite (tests/integration/cluster_test.cpp) covers the binary.
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <gtest/gtest.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include "actors/actor_api.hpp"
#include "cluster/handshake.hpp"
#include "cluster/ownership.hpp"
#include "cluster/shard_map.hpp"
#include "cluster/view.hpp"
#include "examples/shop/shop.hpp"
#include "host/shard_host.hpp"
#include "protocol/shard_actor.hpp"
#include "protocol/type_ids.hpp"
#include "remote/cluster_runtime.hpp"
#include "remote/type_ids.hpp"
#include "storage/memory_store.hpp"
#include "tests/remote/in_process.hpp"
#include "tests/support/ports.hpp"

namespace shoal::remote {
namespace {

using namespace std::chrono_literals;

/// Log lines, kept for assertions.
class capture_sink final : public spdlog::sinks::base_sink<std::mutex> {
public:
  bool contains(const std::string& text) {
    std::lock_guard<std::mutex> guard(mutex_);
    for (const auto& line : lines_)
      if (line.find(text) != std::string::npos) return true;
    return false;
  }

protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    lines_.emplace_back(msg.payload.data(), msg.payload.size());
  }
  void flush_() override {}

private:
  std::vector<std::string> lines_;
};

struct node_spec {
  std::string self;
  std::vector<config::node_address> nodes;
  std::string secret = "0123456789abcdef-secret";
  std::uint32_t shards = 8;
  std::chrono::milliseconds reconnect_max = 200ms;
  std::uint32_t replication_factor = 1; ///< compared in the handshake only (no replicas here)
};

/// One in-process member: actor system with middleman, memory store, shard hosts (with
/// the counter and the shop's actor types) for its shards, stubs for the others, gateway
/// and membership.
class test_node {
public:
  explicit test_node(const node_spec& spec)
      : store_(spec.shards), owners_(ids(spec.nodes), spec.shards) {
    registry_.add(actors::make_counter_type());
    examples::shop::register_types(registry_);
    in_process::configure_member(cfg_);
    sys_ = std::make_unique<caf::actor_system>(cfg_);
    sink = std::make_shared<capture_sink>();
    auto id = in_process::member_identity(
      spec.self, spec.nodes, spec.shards, spec.secret, spec.reconnect_max,
      std::make_shared<spdlog::logger>("cluster-" + spec.self, sink));
    id.replication_factor = spec.replication_factor;
    host::host_config base;
    base.store = &store_;
    base.peers = &placed_.handles; // filled by place_shards before any message arrives
    base.actors.registry = &registry_;
    placed_ = place_shards(*sys_, spec.self, owners_, id.failure_timeout, 2s, [&](std::uint32_t i) {
      auto cfg = base;
      cfg.index = i;
      return host::spawn_shard_host(*sys_, std::move(cfg));
    });
    auto started = start_cluster(*sys_, std::move(id), placed_, owners_, board);
    EXPECT_TRUE(started) << sys_->render(started.error());
    if (started) actors_ = *started;
  }

  ~test_node() {
    stop();
  }

  void stop() {
    if (!sys_) return;
    for (auto& a : {actors_.membership, actors_.gateway})
      if (a) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    for (auto& s : placed_.handles.handles)
      caf::anon_send_exit(s, caf::exit_reason::user_shutdown);
    sys_->await_all_actors_done();
    sys_.reset();
  }

  caf::actor_system& sys() {
    return *sys_;
  }
  const cluster::ownership& owners() const {
    return owners_;
  }
  const protocol::shard_actor& shard(std::uint32_t i) const {
    return placed_.handles.handles[i];
  }
  storage::store& store() {
    return store_;
  }

  /// The state of member `id` in this node's latest view.
  cluster::member_state state_of(const std::string& id) const {
    auto view = board.read();
    if (!view) return cluster::member_state::connecting; // not published yet
    for (const auto& m : view->nodes)
      if (m.id == id) return m.state;
    return cluster::member_state::connecting;
  }
  std::string reason_of(const std::string& id) const {
    auto view = board.read();
    if (!view) return {};
    for (const auto& m : view->nodes)
      if (m.id == id) return m.reason;
    return {};
  }
  bool ready() const {
    auto view = board.read();
    return view && view->ready;
  }

  cluster::view_board board;
  std::shared_ptr<capture_sink> sink;

private:
  static std::vector<std::string> ids(const std::vector<config::node_address>& nodes) {
    std::vector<std::string> out;
    for (const auto& n : nodes)
      out.push_back(n.id);
    return out;
  }

  caf::actor_system_config cfg_;
  std::unique_ptr<caf::actor_system> sys_;
  storage::memory_store store_;
  actors::actor_registry registry_;
  cluster::ownership owners_;
  placed_shards placed_;
  cluster_actors actors_;
};

/// A stub for shard 3, owned by node "b".
remote_shard_config stub_config(std::chrono::milliseconds failure_timeout,
                                std::chrono::milliseconds call_timeout) {
  remote_shard_config cfg;
  cfg.shard = 3;
  cfg.owner = "b";
  cfg.failure_timeout = failure_timeout;
  cfg.call_timeout = call_timeout;
  return cfg;
}

/// Polls `pred` every 10 ms for up to `limit`.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = 5s) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return pred();
}

std::vector<config::node_address> loopback_members(std::initializer_list<const char*> ids) {
  auto ports = test::free_tcp_ports(2 * ids.size());
  std::vector<config::node_address> out;
  for (const char* id : ids) {
    out.push_back({id, "127.0.0.1", ports.back(), ports[ports.size() - 2]});
    ports.resize(ports.size() - 2);
  }
  return out;
}

/// An id in `space` (a collection or an actor type) whose shard `owner` owns, and the shard.
std::pair<std::string, std::uint32_t> key_owned_by(const cluster::ownership& owners,
                                                   const std::string& owner,
                                                   const std::string& space,
                                                   const std::string& prefix = "k") {
  cluster::shard_map map{owners.shard_count()};
  for (int i = 0;; ++i) {
    auto id = prefix + std::to_string(i);
    auto shard = map.shard_of(space, id);
    if (owners.owner(shard) == owner) return {id, shard};
  }
}

/// The id part of `key_owned_by`, for actor keys (space = the actor type).
std::string id_owned_by(const cluster::ownership& owners, const std::string& owner,
                        const std::string& space, const std::string& prefix) {
  return key_owned_by(owners, owner, space, prefix).first;
}

/// Whether `a` and `b` see each other up.
bool joined(const test_node& a, const std::string& a_id, const test_node& b,
            const std::string& b_id) {
  return a.state_of(b_id) == cluster::member_state::up
         && b.state_of(a_id) == cluster::member_state::up;
}

/// Asks `shard` for `req` as an actor does (a request with an empty reply_to) and waits
/// up to 5 s: the answer, or the error (an internal "no answer" when none came).
template <class Handle, class R>
core::result<protocol::reply_of<R>> ask(caf::actor_system& sys, const Handle& shard, R req) {
  using T = protocol::reply_of<R>;
  caf::scoped_actor self{sys};
  core::result<T> out{core::error{core::errc::internal, "no answer"}};
  self->request(shard, 5s, std::move(req), core::reply_to<T>{})
    .receive([&](T& r) { out = std::move(r); },
             [&](caf::error& e) { out = protocol::from_caf(e); });
  return out;
}

documents::doc_write put(std::string collection, std::string id, std::string body) {
  documents::doc_write r;
  r.kind = documents::write_kind::put;
  r.collection = std::move(collection);
  r.id = std::move(id);
  r.body = std::move(body);
  return r;
}

documents::doc_get get(std::string collection, std::string id) {
  documents::doc_get r;
  r.collection = std::move(collection);
  r.id = std::move(id);
  return r;
}

/// The message of a failed result, or "" for a value (for test output).
template <class T>
std::string error_of(const core::result<T>& r) {
  return r ? std::string{} : r.error().to_string();
}

// Verifies two members complete the handshake both ways, both become ready, and a
// document written through one node's stub lands on the owner and reads back from both.
TEST(RemoteTest, MembersJoinAndForwardDocuments) {
  auto members = loopback_members({"a", "b"});
  test_node a{{"a", members}};
  test_node b{{"b", members}};
  ASSERT_TRUE(eventually([&] { return joined(a, "a", b, "b"); }));
  EXPECT_TRUE(a.ready());
  EXPECT_TRUE(b.ready());
  auto [id, shard] = key_owned_by(a.owners(), "b", "users");
  auto created = ask(a.sys(), a.shard(shard), put("users", id, R"({"n":1})"));
  ASSERT_TRUE(created) << error_of(created);
  EXPECT_TRUE(created->created);
  EXPECT_EQ(created->version, 1u);
  // The owner's local shard has it, and a's stub reads it back.
  auto local = ask(b.sys(), b.shard(shard), get("users", id));
  ASSERT_TRUE(local) << error_of(local);
  EXPECT_EQ(local->version, 1u);
  EXPECT_EQ(local->json, R"({"n":1})");
  auto via_stub = ask(a.sys(), a.shard(shard), get("users", id));
  ASSERT_TRUE(via_stub) << error_of(via_stub);
  EXPECT_EQ(via_stub->json, R"({"n":1})");
  // Nothing was written on the non-owner.
  EXPECT_EQ(a.store().shard(shard).estimate_num_keys(), 0u);
}

// Verifies a virtual actor call through a stub runs on the owner, once per call.
TEST(RemoteTest, ActorCallsAreForwardedToTheOwner) {
  auto members = loopback_members({"a", "b"});
  test_node a{{"a", members}};
  test_node b{{"b", members}};
  ASSERT_TRUE(eventually([&] { return a.state_of("b") == cluster::member_state::up; }));
  cluster::shard_map map{a.owners().shard_count()};
  std::string id;
  for (int i = 0; id.empty(); ++i)
    if (a.owners().owner(map.shard_of("counter", "c" + std::to_string(i))) == "b")
      id = "c" + std::to_string(i);
  auto shard = map.shard_of("counter", id);
  for (int expected : {2, 4}) {
    auto reply = ask(a.sys(), a.shard(shard),
                     actors::actor_call{"counter", id, "increment", R"({"by":2})", 0});
    ASSERT_TRUE(reply) << error_of(reply);
    EXPECT_EQ(reply->json, R"({"value":)" + std::to_string(expected) + "}");
  }
}

core::result<actors::actor_result> call(test_node& via, const std::string& type,
                                        const std::string& id, const std::string& method,
                                        const std::string& args) {
  cluster::shard_map map{via.owners().shard_count()};
  return ask(via.sys(), via.shard(map.shard_of(type, id)),
             actors::actor_call{type, id, method, args, 0});
}

/// The JSON result of a call that succeeded, or the error's text.
std::string body_of(const core::result<actors::actor_result>& r) {
  return r ? r->json : r.error().to_string();
}

// Verifies virtual actors call each other across nodes: an order on node a reserves
// stock from inventories on a and on b, and rolls back the one on a when b's fails.
TEST(RemoteTest, ActorsCallEachOtherAcrossNodes) {
  auto members = loopback_members({"a", "b"});
  test_node a{{"a", members}};
  test_node b{{"b", members}};
  ASSERT_TRUE(eventually([&] { return joined(a, "a", b, "b"); }));
  const auto sku_a = id_owned_by(a.owners(), "a", "inventory", "sku-a");
  const auto sku_b = id_owned_by(a.owners(), "b", "inventory", "sku-b");
  // Restock through the other node each time, so both directions forward.
  EXPECT_EQ(body_of(call(b, "inventory", sku_a, "restock", R"({"qty":5})")), R"({"stock":5})");
  EXPECT_EQ(body_of(call(a, "inventory", sku_b, "restock", R"({"qty":1})")), R"({"stock":1})");
  const auto order1 = id_owned_by(a.owners(), "a", "order", "o-");
  auto placed =
    call(b, "order", order1, "place",
         R"({"items":[{"sku":")" + sku_a + R"(","qty":2},{"sku":")" + sku_b + R"(","qty":1}]})");
  EXPECT_TRUE(placed) << error_of(placed);
  EXPECT_EQ(body_of(call(a, "inventory", sku_a, "get", "{}")), R"({"stock":3})");
  EXPECT_EQ(body_of(call(a, "inventory", sku_b, "get", "{}")), R"({"stock":0})");
  // b's inventory is empty now: the second order fails there and releases a's stock.
  const auto order2 = id_owned_by(a.owners(), "a", "order", "p-");
  auto failed =
    call(a, "order", order2, "place",
         R"({"items":[{"sku":")" + sku_a + R"(","qty":1},{"sku":")" + sku_b + R"(","qty":1}]})");
  ASSERT_FALSE(failed);
  EXPECT_EQ(core::http_status(failed.error()), 409);
  EXPECT_EQ(core::api_code(failed.error()), "insufficient_stock");
  EXPECT_EQ(body_of(call(b, "inventory", sku_a, "get", "{}")), R"({"stock":3})");
}

/// The answers of requests sent with a reply_to, as they arrive (any thread).
template <class T>
class answers {
public:
  /// A reply_to whose every delivery is kept here.
  core::reply_to<T> to() {
    return core::reply_to<T>::to([self = shared()](core::result<T>&& r) {
      std::lock_guard<std::mutex> guard{self->mutex};
      self->got.push_back(std::move(r));
      self->cv.notify_all();
    });
  }

  /// Waits until `n` answers arrived, for at most `limit`.
  bool wait_for(std::size_t n, std::chrono::milliseconds limit = 5s) {
    std::unique_lock<std::mutex> guard{state_->mutex};
    return state_->cv.wait_for(guard, limit, [&] { return state_->got.size() >= n; });
  }

  std::size_t count() {
    std::lock_guard<std::mutex> guard{state_->mutex};
    return state_->got.size();
  }

  std::vector<core::result<T>> all() {
    std::lock_guard<std::mutex> guard{state_->mutex};
    return state_->got;
  }

private:
  struct state {
    std::mutex mutex;
    std::condition_variable cv;
    std::vector<core::result<T>> got;
  };
  std::shared_ptr<state> shared() {
    return state_;
  }
  std::shared_ptr<state> state_ = std::make_shared<state>();
};

/// What the slow gateway below did, for the test to wait on.
struct gateway_probe {
  std::mutex mutex;
  std::condition_variable cv;
  std::size_t held = 0;     ///< requests it holds (or held)
  std::size_t answered = 0; ///< held requests it answered on ok_atom

  void bump(std::size_t gateway_probe::*counter, std::size_t n = 1) {
    std::lock_guard<std::mutex> guard{mutex};
    this->*counter += n;
    cv.notify_all();
  }
  bool wait(std::size_t gateway_probe::*counter, std::size_t n,
            std::chrono::milliseconds limit = 5s) {
    std::unique_lock<std::mutex> guard{mutex};
    return cv.wait_for(guard, limit, [&] { return this->*counter >= n; });
  }
};

/// Stands in for an owner's gateway (a peer sends it `(shard, request)`): it holds every
/// document read and change read until told `ok_atom`, then answers them all (version 7);
/// it never answers actor calls; it answers cache reads at once ("marker": every message
/// the stub got before the answer to one has been handled).
struct held_requests {
  std::vector<caf::response_promise> docs;
  std::vector<caf::response_promise> reads;
  std::vector<caf::response_promise> calls; ///< never answered
  std::shared_ptr<gateway_probe> probe;
};

caf::behavior slow_gateway(caf::stateful_actor<held_requests>* self,
                           std::shared_ptr<gateway_probe> probe) {
  self->state.probe = std::move(probe);
  auto hold = [self](std::vector<caf::response_promise>& where) {
    auto rp = self->make_response_promise();
    where.push_back(rp);
    self->state.probe->bump(&gateway_probe::held);
    return rp;
  };
  return {
    [=](std::uint32_t, documents::doc_get&) { return hold(self->state.docs); },
    [=](std::uint32_t, changes::changes_read&) { return hold(self->state.reads); },
    [=](std::uint32_t, actors::actor_call&) { return hold(self->state.calls); },
    [=](std::uint32_t, cache::cache_get&) {
      return cache::cache_entry{"marker", "text/plain"};
    },
    [=](caf::ok_atom) {
      auto& st = self->state;
      const auto n = st.docs.size() + st.reads.size();
      for (auto& rp : st.docs)
        rp.deliver(documents::stored_doc{7, "{}", false});
      for (auto& rp : st.reads) {
        changes::batch b;
        b.first = 1;
        b.last = 7;
        rp.deliver(std::move(b));
      }
      st.docs.clear();
      st.reads.clear();
      st.probe->bump(&gateway_probe::answered, n);
    },
  };
}

struct stub_system_config : caf::actor_system_config {
  stub_system_config() {
    protocol::add_message_types(*this);
    add_message_types<caf::id_block::shoal_remote>();
  }
};

/// Sends a cache read through `stub`, which the slow gateway answers at once, and waits
/// for its answer: whatever reached the stub before it (a late answer) has been handled.
bool stub_caught_up(const remote_shard_actor& stub) {
  answers<cache::cache_entry> marker;
  caf::anon_send(stub, cache::cache_get{"marker"}, marker.to());
  if (!marker.wait_for(1)) return false;
  auto got = marker.all();
  return got.size() == 1 && got[0] && got[0]->value == "marker";
}

// Verifies a stub fails its requests in flight as soon as the owner goes down, rather than
// at their timeout, and drops the owner's late answer (every request is answered once).
TEST(RemoteShardTest, InFlightRequestsFailWhenTheOwnerGoesDown) {
  stub_system_config cfg;
  caf::actor_system sys{cfg};
  auto probe = std::make_shared<gateway_probe>();
  auto gateway = sys.spawn(slow_gateway, probe);
  auto stub = spawn_remote_shard(sys, stub_config(10s, 10s));
  caf::anon_send(stub, peer_update_atom::value, std::string("b"), gateway, true, std::string{});
  // Sent as the edge sends: each answer comes back through its reply_to.
  answers<documents::stored_doc> got;
  for (int i = 0; i < 2; ++i)
    caf::anon_send(stub, get("users", "k" + std::to_string(i)), got.to());
  // Both requests reached the gateway; then the owner goes down.
  ASSERT_TRUE(probe->wait(&gateway_probe::held, 2));
  auto started = std::chrono::steady_clock::now();
  caf::anon_send(stub, peer_update_atom::value, std::string("b"), caf::actor{}, false,
                 std::string{"connection lost"});
  ASSERT_TRUE(got.wait_for(2));
  EXPECT_LT(std::chrono::steady_clock::now() - started, 2s);
  for (const auto& r : got.all()) {
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), core::errc::shard_unavailable);
    EXPECT_EQ(core::http_status(r.error()), 503);
    EXPECT_NE(r.error().message().find("connection lost"), std::string::npos)
      << r.error().message();
  }
  // The owner's late answers must not reach anyone a second time: once the gateway sent
  // them, they are in the stub's mailbox ahead of the next request.
  caf::anon_send(gateway, caf::ok_atom::value);
  ASSERT_TRUE(probe->wait(&gateway_probe::answered, 2));
  // Down: new requests are refused at once, without reaching the gateway.
  auto down = ask(sys, stub, get("users", "k9"));
  ASSERT_FALSE(down);
  EXPECT_EQ(down.error().code(), core::errc::shard_unavailable);
  EXPECT_NE(down.error().message().find("node b owns shard 3"), std::string::npos)
    << down.error().message();
  EXPECT_EQ(got.count(), 2u) << "a late answer was delivered a second time";
  {
    std::lock_guard<std::mutex> guard{probe->mutex};
    EXPECT_EQ(probe->held, 2u);
  }
  caf::anon_send_exit(stub, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(gateway, caf::exit_reason::user_shutdown);
}

// Verifies a request the owner does not answer fails at its deadline (the stub's sweep),
// as 503 for documents and 504 call_timeout for actor calls, and only once.
TEST(RemoteShardTest, SilentOwnerFailsRequestsAtTheirDeadline) {
  stub_system_config cfg;
  caf::actor_system sys{cfg};
  auto probe = std::make_shared<gateway_probe>();
  auto gateway = sys.spawn(slow_gateway, probe);
  auto stub = spawn_remote_shard(sys, stub_config(200ms, 10s));
  caf::anon_send(stub, peer_update_atom::value, std::string("b"), gateway, true, std::string{});
  answers<documents::stored_doc> got;
  const auto started = std::chrono::steady_clock::now();
  caf::anon_send(stub, get("users", "k1"), got.to());
  ASSERT_TRUE(got.wait_for(1));
  const auto waited = std::chrono::steady_clock::now() - started;
  auto reply = got.all().front();
  ASSERT_FALSE(reply);
  EXPECT_EQ(reply.error().code(), core::errc::shard_unavailable);
  EXPECT_EQ(core::http_status(reply.error()), 503);
  EXPECT_NE(reply.error().message().find("did not answer within 200 ms"), std::string::npos)
    << reply.error().message();
  EXPECT_GE(waited, 200ms);
  EXPECT_LT(waited, 2s);
  // An actor call with a budget of 100 ms (the slow gateway never answers calls).
  auto call_reply = ask(sys, stub, actors::actor_call{"counter", "c", "increment", "{}", 100});
  ASSERT_FALSE(call_reply);
  EXPECT_EQ(call_reply.error().code(), core::errc::timeout);
  EXPECT_EQ(core::http_status(call_reply.error()), 504);
  EXPECT_EQ(core::api_code(call_reply.error()), "call_timeout");
  // The late answer to the document request goes nowhere.
  caf::anon_send(gateway, caf::ok_atom::value);
  ASSERT_TRUE(probe->wait(&gateway_probe::answered, 1));
  ASSERT_TRUE(stub_caught_up(stub));
  EXPECT_EQ(got.count(), 1u) << "a late answer was delivered a second time";
  caf::anon_send_exit(stub, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(gateway, caf::exit_reason::user_shutdown);
}

// Verifies a change-feed read may wait at the owner for its wait_ms on top of the failure
// timeout: the owner answering after a plain read failed at the 200 ms timeout is not a
// failure for a read that asked to wait 400 ms.
TEST(RemoteShardTest, ChangeReadsMayWaitTheirWaitOnTopOfTheFailureTimeout) {
  stub_system_config cfg;
  caf::actor_system sys{cfg};
  auto probe = std::make_shared<gateway_probe>();
  auto gateway = sys.spawn(slow_gateway, probe);
  auto stub = spawn_remote_shard(sys, stub_config(200ms, 10s));
  caf::anon_send(stub, peer_update_atom::value, std::string("b"), gateway, true, std::string{});
  changes::changes_read changes;
  changes.collection = "users";
  changes.after = 0;
  changes.limit = 100;
  changes.wait_ms = 400;
  answers<changes::batch> read;
  caf::anon_send(stub, std::move(changes), read.to());
  ASSERT_TRUE(probe->wait(&gateway_probe::held, 1));
  // A plain read sent after it fails at the failure timeout: by then the change read has
  // waited past 200 ms too, and is still waiting.
  answers<documents::stored_doc> plain;
  caf::anon_send(stub, get("users", "k1"), plain.to());
  ASSERT_TRUE(plain.wait_for(1));
  ASSERT_FALSE(plain.all().front());
  EXPECT_NE(plain.all().front().error().message().find("did not answer within 200 ms"),
            std::string::npos);
  EXPECT_EQ(read.count(), 0u) << "the change read failed at the failure timeout";
  // The owner answers now: past the failure timeout, within the wait.
  caf::anon_send(gateway, caf::ok_atom::value);
  ASSERT_TRUE(read.wait_for(1));
  auto reply = read.all().front();
  ASSERT_TRUE(reply) << error_of(reply);
  EXPECT_EQ(reply->last, 7u);
  caf::anon_send_exit(stub, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(gateway, caf::exit_reason::user_shutdown);
}

// Verifies a wrong secret is refused with a log line on both sides and no data flows;
// the node that served first (alone) stays ready, the refused newcomer never is.
TEST(RemoteTest, WrongSecretIsRefusedOnBothSides) {
  auto members = loopback_members({"a", "b"});
  test_node a{{"a", members, "0123456789abcdef-secret"}};
  ASSERT_TRUE(eventually([&] { return a.ready(); })); // b does not answer yet: a runs alone
  test_node b{{"b", members, "another-secret-0123456"}};
  ASSERT_TRUE(eventually([&] {
    return a.sink->contains("does not know the cluster secret")
           && b.sink->contains("does not know the cluster secret")
           && a.sink->contains("node b refused this node")
           && b.sink->contains("node a refused this node");
  }));
  EXPECT_EQ(a.state_of("b"), cluster::member_state::down);
  EXPECT_NE(a.reason_of("b").find("cluster secret"), std::string::npos) << a.reason_of("b");
  EXPECT_TRUE(a.ready());
  EXPECT_FALSE(b.ready());
  auto [id, shard] = key_owned_by(a.owners(), "b", "users");
  auto reply = ask(a.sys(), a.shard(shard), put("users", id, "{}"));
  ASSERT_FALSE(reply);
  EXPECT_EQ(reply.error().code(), core::errc::shard_unavailable);
  EXPECT_EQ(b.store().shard(shard).estimate_num_keys(), 0u);
}

// Verifies a member with another shard count is refused, naming both counts, and the
// newcomer is not ready while the node that served first stays ready.
TEST(RemoteTest, ShardCountMismatchIsRefused) {
  auto members = loopback_members({"a", "b"});
  test_node a{{"a", members, "0123456789abcdef-secret", 8}};
  ASSERT_TRUE(eventually([&] { return a.ready(); }));
  test_node b{{"b", members, "0123456789abcdef-secret", 16}};
  ASSERT_TRUE(eventually([&] {
    return a.sink->contains("refused node b: it has cluster.shards = 16, this node has 8")
           && b.sink->contains("refused node a: it has cluster.shards = 8, this node has 16");
  }));
  ASSERT_TRUE(eventually([&] { return a.state_of("b") == cluster::member_state::down; }));
  EXPECT_NE(a.reason_of("b").find("cluster.shards differs"), std::string::npos) << a.reason_of("b");
  EXPECT_TRUE(a.ready());
  EXPECT_FALSE(b.ready());
}

// Verifies members with another replication factor refuse each other, naming both: they
// would build different groups for the same shards.
TEST(RemoteTest, ReplicationFactorMismatchIsRefused) {
  auto members = loopback_members({"a", "b"});
  node_spec sa{"a", members};
  node_spec sb{"b", members};
  sb.replication_factor = 2;
  test_node a{sa};
  test_node b{sb};
  ASSERT_TRUE(eventually([&] {
    return a.sink->contains(
             "refused node b: it has cluster.replication_factor = 2, this node has 1")
           && b.sink->contains(
             "refused node a: it has cluster.replication_factor = 1, this node has 2");
  }));
  // a's view follows its own dial to b, which b refuses: wait for that to be published.
  EXPECT_TRUE(eventually([&] {
    return a.state_of("b") == cluster::member_state::down
           && a.reason_of("b").find("cluster.replication_factor differs") != std::string::npos;
  }))
    << cluster::to_string(a.state_of("b")) << ": " << a.reason_of("b");
}

// Verifies members with different node lists refuse each other.
TEST(RemoteTest, MemberListMismatchIsRefused) {
  auto members = loopback_members({"a", "b"});
  auto other = members;
  auto spare = test::free_tcp_ports(2);
  other.push_back({"c", "127.0.0.1", spare[0], spare[1]});
  test_node a{{"a", members}};
  test_node b{{"b", other}};
  ASSERT_TRUE(eventually([&] {
    return a.sink->contains("refused node b: its cluster.nodes")
           && b.sink->contains("refused node a: its cluster.nodes");
  }));
  EXPECT_NE(a.state_of("b"), cluster::member_state::up);
}

// Verifies a peer that comes back is taken up as soon as it completes a handshake with
// us, not at the end of our backoff: a has been redialing b for two seconds (next dial
// at 2.5 s or later), b starts and dials a, and a marks b up at once.
TEST(RemoteTest, ReturningPeerIsUpWithoutWaitingForTheBackoff) {
  auto members = loopback_members({"a", "b"});
  node_spec spec_a{"a", members};
  spec_a.reconnect_max = 60s;
  test_node a{spec_a};
  ASSERT_TRUE(eventually([&] { return a.ready(); }));
  // Real time must pass for a's backoff to grow; no event tells how many dials failed
  // (the view is republished on every heartbeat tick), so this one wait stays a sleep.
  std::this_thread::sleep_for(2s); // dials at ~0.1, 0.3, 0.7, 1.5 s; the next after 2.5 s
  test_node b{{"b", members}};
  const auto started = std::chrono::steady_clock::now();
  ASSERT_TRUE(eventually([&] { return a.state_of("b") == cluster::member_state::up; }, 5s));
  EXPECT_LT(std::chrono::steady_clock::now() - started, 350ms);
}

// Verifies a CAF node that never completed the handshake gets nothing from a gateway:
// no document, no heartbeat, no write, each refused with exactly the error a message the
// gateway does not know gets (so the refusal tells a stranger nothing, and is no
// timeout); and an id outside the member list is refused.
TEST(RemoteTest, UntrustedPeerGetsNothing) {
  auto members = loopback_members({"a", "b"});
  test_node b{{"b", members}};
  caf::actor_system_config cfg;
  cfg.load<caf::io::middleman>();
  protocol::add_message_types(cfg);
  cfg.add_message_types<caf::id_block::shoal_remote>();
  caf::actor_system stranger{cfg};
  auto gateway = stranger.middleman().remote_actor(members[1].host, members[1].actor_port);
  ASSERT_TRUE(gateway) << stranger.render(gateway.error());
  caf::scoped_actor self{stranger};
  auto [id, shard] = key_owned_by(b.owners(), "b", "users");
  // The error of a message no gateway handles.
  std::optional<caf::error> unknown;
  self->request(*gateway, 2s, std::string("no such message"))
    .receive([&](const caf::message&) {}, [&](caf::error& e) { unknown = std::move(e); });
  ASSERT_TRUE(unknown) << "an unknown message was answered";
  ASSERT_NE(*unknown, caf::make_error(caf::sec::request_timeout)) << "an unknown message timed out";
  // What a request of the stranger got: its error, or nullopt when it was answered.
  std::optional<caf::error> refusal;
  auto refused_as_unknown = [&] { return refusal && *refusal == *unknown; };
  self->request(*gateway, 2s, shard, put("users", id, "{}"))
    .receive([&](documents::doc_written&) {}, [&](caf::error& e) { refusal = std::move(e); });
  EXPECT_TRUE(refused_as_unknown()) << (refusal ? stranger.render(*refusal) : "answered");
  refusal.reset();
  self->request(*gateway, 2s, shard, get("users", id))
    .receive([&](documents::stored_doc&) {}, [&](caf::error& e) { refusal = std::move(e); });
  EXPECT_TRUE(refused_as_unknown()) << (refusal ? stranger.render(*refusal) : "answered");
  refusal.reset();
  self->request(*gateway, 2s, heartbeat_atom::value)
    .receive([&](heartbeat_atom) {}, [&](caf::error& e) { refusal = std::move(e); });
  EXPECT_TRUE(refused_as_unknown()) << (refusal ? stranger.render(*refusal) : "answered");
  // A known id without the secret: the hello is answered, a forged auth is refused.
  std::optional<hello_ack> ack;
  std::string failure;
  self->request(*gateway, 2s, hello{"a", cluster::handshake::make_nonce()})
    .receive([&](hello_ack& x) { ack = std::move(x); },
             [&](caf::error& e) { failure = caf::to_string(e); });
  ASSERT_TRUE(ack) << "the hello got no answer: " << failure;
  EXPECT_TRUE(ack->refusal.empty()) << ack->refusal;
  EXPECT_EQ(ack->node, "b");
  EXPECT_FALSE(ack->nonce.empty());
  EXPECT_FALSE(ack->proof.empty());
  std::optional<auth_ack> verdict;
  self->request(*gateway, 2s, auth{std::string(64, '0'), 8, describe_members(members)})
    .receive([&](auth_ack& x) { verdict = std::move(x); },
             [&](caf::error& e) { failure = caf::to_string(e); });
  ASSERT_TRUE(verdict) << "the auth got no answer: " << failure;
  EXPECT_EQ(verdict->refusal, "the cluster secret differs");
  refusal.reset();
  self->request(*gateway, 2s, shard, put("users", id, "{}"))
    .receive([&](documents::doc_written&) {}, [&](caf::error& e) { refusal = std::move(e); });
  EXPECT_TRUE(refused_as_unknown()) << (refusal ? stranger.render(*refusal) : "answered");
  // An id that is not a member.
  std::optional<hello_ack> stranger_ack;
  self->request(*gateway, 2s, hello{"mallory", cluster::handshake::make_nonce()})
    .receive([&](hello_ack& x) { stranger_ack = std::move(x); },
             [&](caf::error& e) { failure = caf::to_string(e); });
  ASSERT_TRUE(stranger_ack) << "the hello got no answer: " << failure;
  EXPECT_NE(stranger_ack->refusal.find("not a member"), std::string::npos) << stranger_ack->refusal;
  EXPECT_EQ(b.store().shard(shard).estimate_num_keys(), 0u);
  self->send_exit(*gateway, caf::exit_reason::user_shutdown); // a no-op for a remote proxy
}

// Verifies that when a member goes away its peer marks it down within the failure
// timeout, answers its shards with shard_unavailable at once, and takes it back when a
// new process with the same id comes up on the same port.
TEST(RemoteTest, LostMemberIsDownThenRejoins) {
  auto members = loopback_members({"a", "b"});
  test_node a{{"a", members}};
  auto b = std::make_unique<test_node>(node_spec{"b", members});
  ASSERT_TRUE(eventually([&] { return a.state_of("b") == cluster::member_state::up; }));
  auto [id, shard] = key_owned_by(a.owners(), "b", "users");
  auto first = ask(a.sys(), a.shard(shard), put("users", id, "{}"));
  ASSERT_TRUE(first) << error_of(first);
  ASSERT_TRUE(first->created);
  b->stop();
  ASSERT_TRUE(eventually([&] { return a.state_of("b") == cluster::member_state::down; }, 2s));
  auto started = std::chrono::steady_clock::now();
  auto reply = ask(a.sys(), a.shard(shard), get("users", id));
  ASSERT_FALSE(reply);
  EXPECT_EQ(reply.error().code(), core::errc::shard_unavailable);
  EXPECT_NE(reply.error().message().find("node b"), std::string::npos) << reply.error().message();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 400ms); // known down: no waiting
  b = std::make_unique<test_node>(node_spec{"b", members});
  ASSERT_TRUE(eventually([&] { return a.state_of("b") == cluster::member_state::up; }));
  // The new b has a fresh memory store: the put lands again as version 1.
  auto again = ask(a.sys(), a.shard(shard), put("users", id, "{}"));
  ASSERT_TRUE(again) << error_of(again);
  EXPECT_TRUE(again->created);
  EXPECT_EQ(again->version, 1u);
}

} // namespace
} // namespace shoal::remote
