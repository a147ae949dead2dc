// SPDX-License-Identifier: Apache-2.0
// In-process nodes: two or three CAF actor systems in one test process, each with its
// own middleman, talking over loopback exactly as separate processes do. Fast cases of
// the handshake, trust, forwarding and failure detection; the multi-process suite
// (tests/integration/cluster_test.cpp) covers the binary.
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <gtest/gtest.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include "actors/actor_api.hpp"
#include "actors/shard_actor.hpp"
#include "cluster/handshake.hpp"
#include "cluster/ownership.hpp"
#include "cluster/shard_map.hpp"
#include "cluster/view.hpp"
#include "examples/shop/shop.hpp"
#include "remote/cluster_runtime.hpp"
#include "remote/type_ids.hpp"
#include "storage/memory_store.hpp"
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
};

/// One in-process member: actor system with middleman, memory store, shards hosting the
/// counter, gateway and membership.
class test_node {
public:
  explicit test_node(const node_spec& spec)
      : store_(spec.shards), owners_(ids(spec.nodes), spec.shards) {
    registry_.add(actors::make_counter_type());
    examples::shop::register_types(registry_);
    cfg_.set("scheduler.max-threads", std::size_t{2});
    cfg_.load<caf::io::middleman>();
    cfg_.add_message_types<caf::id_block::shoal>();
    cfg_.add_message_types<caf::id_block::shoal_remote>();
    sys_ = std::make_unique<caf::actor_system>(cfg_);
    sink = std::make_shared<capture_sink>();
    auto log = std::make_shared<spdlog::logger>("cluster-" + spec.self, sink);
    cluster_identity id;
    id.self = spec.self;
    id.nodes = spec.nodes;
    id.shards = spec.shards;
    id.secret = spec.secret;
    id.members = describe_members(spec.nodes);
    id.heartbeat = 50ms;
    id.failure_timeout = 500ms;
    id.reconnect_max = spec.reconnect_max;
    id.log = log;
    hosting_.registry = &registry_;
    hosting_.peers = &placed_.handles;
    placed_ = place_shards(*sys_, spec.self, owners_, id.failure_timeout, 2s, [&](std::uint32_t i) {
      return actors::spawn_shard(*sys_,
                                 actors::shard_config{i, &store_, false, {}, hosting_, {}, {}});
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
  const actors::shard_actor& shard(std::uint32_t i) const {
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
  actors::hosting_config hosting_;
  cluster::ownership owners_;
  placed_shards placed_;
  cluster_actors actors_;
};

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

actors::doc_reply ask(caf::actor_system& sys, const actors::shard_actor& shard,
                      actors::doc_request req) {
  caf::scoped_actor self{sys};
  actors::doc_reply out{actors::doc_status::storage_error, 0, {}, "no answer"};
  self->request(shard, 5s, std::move(req))
    .receive([&](actors::doc_reply& r) { out = std::move(r); },
             [&](caf::error& e) { out.message = caf::to_string(e); });
  return out;
}

actors::doc_request put(std::string collection, std::string id, std::string body) {
  actors::doc_request r;
  r.op = actors::doc_op::put;
  r.collection = std::move(collection);
  r.id = std::move(id);
  r.body = std::move(body);
  return r;
}

actors::doc_request get(std::string collection, std::string id) {
  actors::doc_request r;
  r.op = actors::doc_op::get;
  r.collection = std::move(collection);
  r.id = std::move(id);
  return r;
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
  EXPECT_EQ(created.status, actors::doc_status::created) << created.message;
  EXPECT_EQ(created.version, 1u);
  // The owner's local shard has it, and a's stub reads it back.
  auto local = ask(b.sys(), b.shard(shard), get("users", id));
  EXPECT_EQ(local.status, actors::doc_status::ok);
  EXPECT_EQ(local.body, R"({"n":1})");
  auto via_stub = ask(a.sys(), a.shard(shard), get("users", id));
  EXPECT_EQ(via_stub.body, R"({"n":1})");
  // Nothing was written on the non-owner.
  std::string value;
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
  caf::scoped_actor self{a.sys()};
  for (int expected : {2, 4}) {
    actors::actor_reply reply;
    self
      ->request(a.shard(shard), 5s,
                actors::actor_call{"counter", id, "increment", R"({"by":2})", 0})
      .receive([&](actors::actor_reply& r) { reply = std::move(r); },
               [&](caf::error& e) { reply.message = caf::to_string(e); });
    EXPECT_EQ(reply.status, 200) << reply.message;
    EXPECT_EQ(reply.body, R"({"value":)" + std::to_string(expected) + "}");
  }
}

actors::actor_reply call(test_node& via, const std::string& type, const std::string& id,
                         const std::string& method, const std::string& args) {
  cluster::shard_map map{via.owners().shard_count()};
  caf::scoped_actor self{via.sys()};
  actors::actor_reply reply{0, {}, "no_answer", {}};
  self
    ->request(via.shard(map.shard_of(type, id)), 5s, actors::actor_call{type, id, method, args, 0})
    .receive([&](actors::actor_reply& r) { reply = std::move(r); },
             [&](caf::error& e) { reply.message = caf::to_string(e); });
  return reply;
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
  EXPECT_EQ(call(b, "inventory", sku_a, "restock", R"({"qty":5})").body, R"({"stock":5})");
  EXPECT_EQ(call(a, "inventory", sku_b, "restock", R"({"qty":1})").body, R"({"stock":1})");
  const auto order1 = id_owned_by(a.owners(), "a", "order", "o-");
  auto placed =
    call(b, "order", order1, "place",
         R"({"items":[{"sku":")" + sku_a + R"(","qty":2},{"sku":")" + sku_b + R"(","qty":1}]})");
  EXPECT_EQ(placed.status, 200) << placed.code << " " << placed.message;
  EXPECT_EQ(call(a, "inventory", sku_a, "get", "{}").body, R"({"stock":3})");
  EXPECT_EQ(call(a, "inventory", sku_b, "get", "{}").body, R"({"stock":0})");
  // b's inventory is empty now: the second order fails there and releases a's stock.
  const auto order2 = id_owned_by(a.owners(), "a", "order", "p-");
  auto failed =
    call(a, "order", order2, "place",
         R"({"items":[{"sku":")" + sku_a + R"(","qty":1},{"sku":")" + sku_b + R"(","qty":1}]})");
  EXPECT_EQ(failed.status, 409);
  EXPECT_EQ(failed.code, "insufficient_stock");
  EXPECT_EQ(call(b, "inventory", sku_a, "get", "{}").body, R"({"stock":3})");
}

/// Stands in for an owner's gateway that holds every document request until told
/// `ok_atom`, then answers them all with `answer`.
struct held_requests {
  std::vector<caf::response_promise> promises;
  std::vector<caf::response_promise> calls; ///< actor calls: never answered
};

caf::behavior slow_gateway(caf::stateful_actor<held_requests>* self, actors::doc_reply answer) {
  return {
    [=](std::uint32_t, actors::doc_request&) {
      auto rp = self->make_response_promise();
      self->state.promises.push_back(rp);
      return rp;
    },
    [=](std::uint32_t, actors::actor_call&) {
      auto rp = self->make_response_promise();
      self->state.calls.push_back(rp);
      return rp;
    },
    [=](caf::ok_atom) {
      for (auto& rp : self->state.promises)
        rp.deliver(answer);
      self->state.promises.clear();
    },
  };
}

// Verifies a stub fails its requests in flight as soon as the owner goes down, rather than
// at their timeout, and drops the owner's late answer (every request is answered once).
TEST(RemoteShardTest, InFlightRequestsFailWhenTheOwnerGoesDown) {
  caf::actor_system_config cfg;
  cfg.add_message_types<caf::id_block::shoal>();
  cfg.add_message_types<caf::id_block::shoal_remote>();
  caf::actor_system sys{cfg};
  auto gateway = sys.spawn(slow_gateway, actors::doc_reply{actors::doc_status::ok, 7, "{}", {}});
  auto stub = spawn_remote_shard(sys, remote_shard_config{3, "b", 10s, 10s});
  caf::anon_send(stub, peer_update_atom::value, gateway, true, std::string{});
  caf::scoped_actor self{sys};
  // Plain sends: the replies come back as ordinary messages, collected below.
  for (int i = 0; i < 2; ++i)
    self->send(stub, get("users", "k" + std::to_string(i)));
  // Let both requests reach the gateway, then take the owner down.
  std::this_thread::sleep_for(100ms);
  auto started = std::chrono::steady_clock::now();
  caf::anon_send(stub, peer_update_atom::value, caf::actor{}, false,
                 std::string{"connection lost"});
  std::vector<actors::doc_reply> replies;
  for (int i = 0; i < 2; ++i)
    self->receive([&](actors::doc_reply& r) { replies.push_back(std::move(r)); },
                  caf::after(5s) >> [] {});
  EXPECT_LT(std::chrono::steady_clock::now() - started, 2s);
  ASSERT_EQ(replies.size(), 2u);
  for (const auto& r : replies) {
    EXPECT_EQ(r.status, actors::doc_status::shard_unavailable);
    EXPECT_NE(r.message.find("connection lost"), std::string::npos) << r.message;
  }
  // The owner's late answers must not reach anyone a second time.
  caf::anon_send(gateway, caf::ok_atom::value);
  bool extra = false;
  self->receive([&](actors::doc_reply&) { extra = true; }, caf::after(300ms) >> [] {});
  EXPECT_FALSE(extra);
  // Down: new requests are refused at once, without reaching the gateway.
  auto down = ask(sys, stub, get("users", "k9"));
  EXPECT_EQ(down.status, actors::doc_status::shard_unavailable);
  EXPECT_NE(down.message.find("node b owns shard 3"), std::string::npos) << down.message;
  caf::anon_send_exit(stub, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(gateway, caf::exit_reason::user_shutdown);
}

// Verifies a request the owner does not answer fails at its deadline (the stub's sweep),
// as 503 for documents and 504 call_timeout for actor calls, and only once.
TEST(RemoteShardTest, SilentOwnerFailsRequestsAtTheirDeadline) {
  caf::actor_system_config cfg;
  cfg.add_message_types<caf::id_block::shoal>();
  cfg.add_message_types<caf::id_block::shoal_remote>();
  caf::actor_system sys{cfg};
  auto gateway = sys.spawn(slow_gateway, actors::doc_reply{actors::doc_status::ok, 7, "{}", {}});
  auto stub = spawn_remote_shard(sys, remote_shard_config{3, "b", 200ms, 10s});
  caf::anon_send(stub, peer_update_atom::value, gateway, true, std::string{});
  const auto started = std::chrono::steady_clock::now();
  auto reply = ask(sys, stub, get("users", "k1"));
  const auto waited = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(reply.status, actors::doc_status::shard_unavailable);
  EXPECT_NE(reply.message.find("did not answer within 200 ms"), std::string::npos) << reply.message;
  EXPECT_GE(waited, 200ms);
  EXPECT_LT(waited, 2s);
  // An actor call with a budget of 100 ms (the slow gateway never answers calls).
  caf::scoped_actor self{sys};
  actors::actor_reply call_reply;
  self->request(stub, 5s, actors::actor_call{"counter", "c", "increment", "{}", 100})
    .receive([&](actors::actor_reply& r) { call_reply = std::move(r); }, [](caf::error&) {});
  EXPECT_EQ(call_reply.status, 504);
  EXPECT_EQ(call_reply.code, "call_timeout");
  // The late answer to the document request goes nowhere.
  caf::anon_send(gateway, caf::ok_atom::value);
  bool extra = false;
  self->receive([&](actors::doc_reply&) { extra = true; }, caf::after(300ms) >> [] {});
  EXPECT_FALSE(extra);
  caf::anon_send_exit(stub, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(gateway, caf::exit_reason::user_shutdown);
}

// Verifies a change-feed read may wait at the owner for its wait_ms on top of the failure
// timeout: the owner answering after 300 ms is not a failure with a 200 ms timeout when
// the read asked to wait 400 ms, while a plain read would have failed at 200 ms.
TEST(RemoteShardTest, ChangeReadsMayWaitTheirWaitOnTopOfTheFailureTimeout) {
  caf::actor_system_config cfg;
  cfg.add_message_types<caf::id_block::shoal>();
  cfg.add_message_types<caf::id_block::shoal_remote>();
  caf::actor_system sys{cfg};
  auto gateway = sys.spawn(slow_gateway, actors::doc_reply{actors::doc_status::ok, 7, "{}", {}});
  auto stub = spawn_remote_shard(sys, remote_shard_config{3, "b", 200ms, 10s});
  caf::anon_send(stub, peer_update_atom::value, gateway, true, std::string{});
  actors::doc_request changes;
  changes.op = actors::doc_op::changes;
  changes.collection = "users";
  changes.after = 0;
  changes.limit = 100;
  changes.wait_ms = 400;
  // The owner answers after 300 ms: past the failure timeout, within the wait.
  std::thread owner([&] {
    std::this_thread::sleep_for(300ms);
    caf::anon_send(gateway, caf::ok_atom::value);
  });
  auto reply = ask(sys, stub, std::move(changes));
  owner.join();
  EXPECT_EQ(reply.status, actors::doc_status::ok) << reply.message;
  EXPECT_EQ(reply.version, 7u);
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
  EXPECT_EQ(reply.status, actors::doc_status::shard_unavailable);
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
  std::this_thread::sleep_for(2s); // dials at ~0.1, 0.3, 0.7, 1.5 s; the next after 2.5 s
  test_node b{{"b", members}};
  const auto started = std::chrono::steady_clock::now();
  ASSERT_TRUE(eventually([&] { return a.state_of("b") == cluster::member_state::up; }, 5s));
  EXPECT_LT(std::chrono::steady_clock::now() - started, 350ms);
}

// Verifies a CAF node that never completed the handshake gets nothing from a gateway:
// no document, no heartbeat, no write; and an id outside the member list is refused.
TEST(RemoteTest, UntrustedPeerGetsNothing) {
  auto members = loopback_members({"a", "b"});
  test_node b{{"b", members}};
  caf::actor_system_config cfg;
  cfg.load<caf::io::middleman>();
  cfg.add_message_types<caf::id_block::shoal>();
  cfg.add_message_types<caf::id_block::shoal_remote>();
  caf::actor_system stranger{cfg};
  auto gateway = stranger.middleman().remote_actor(members[1].host, members[1].actor_port);
  ASSERT_TRUE(gateway) << stranger.render(gateway.error());
  caf::scoped_actor self{stranger};
  auto [id, shard] = key_owned_by(b.owners(), "b", "users");
  bool refused = false;
  self->request(*gateway, 2s, shard, put("users", id, "{}"))
    .receive([&](actors::doc_reply&) {}, [&](caf::error&) { refused = true; });
  EXPECT_TRUE(refused);
  refused = false;
  self->request(*gateway, 2s, heartbeat_atom::value)
    .receive([&](heartbeat_atom) {}, [&](caf::error&) { refused = true; });
  EXPECT_TRUE(refused);
  // A known id without the secret: the hello is answered, a forged auth is refused.
  hello_ack ack;
  self->request(*gateway, 2s, hello{"a", cluster::handshake::make_nonce()})
    .receive([&](hello_ack& x) { ack = std::move(x); }, [&](caf::error&) {});
  EXPECT_TRUE(ack.refusal.empty());
  auth_ack verdict;
  self->request(*gateway, 2s, auth{std::string(64, '0'), 8, describe_members(members)})
    .receive([&](auth_ack& x) { verdict = std::move(x); }, [&](caf::error&) {});
  EXPECT_EQ(verdict.refusal, "the cluster secret differs");
  refused = false;
  self->request(*gateway, 2s, shard, put("users", id, "{}"))
    .receive([&](actors::doc_reply&) {}, [&](caf::error&) { refused = true; });
  EXPECT_TRUE(refused);
  // An id that is not a member.
  self->request(*gateway, 2s, hello{"mallory", cluster::handshake::make_nonce()})
    .receive([&](hello_ack& x) { ack = std::move(x); }, [&](caf::error&) {});
  EXPECT_NE(ack.refusal.find("not a member"), std::string::npos);
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
  ASSERT_EQ(ask(a.sys(), a.shard(shard), put("users", id, "{}")).status,
            actors::doc_status::created);
  b->stop();
  ASSERT_TRUE(eventually([&] { return a.state_of("b") == cluster::member_state::down; }, 2s));
  auto started = std::chrono::steady_clock::now();
  auto reply = ask(a.sys(), a.shard(shard), get("users", id));
  EXPECT_EQ(reply.status, actors::doc_status::shard_unavailable);
  EXPECT_NE(reply.message.find("node b"), std::string::npos) << reply.message;
  EXPECT_LT(std::chrono::steady_clock::now() - started, 400ms); // known down: no waiting
  b = std::make_unique<test_node>(node_spec{"b", members});
  ASSERT_TRUE(eventually([&] { return a.state_of("b") == cluster::member_state::up; }));
  // The new b has a fresh memory store: the put lands again as version 1.
  EXPECT_EQ(ask(a.sys(), a.shard(shard), put("users", id, "{}")).status,
            actors::doc_status::created);
}

} // namespace
} // namespace shoal::remote
