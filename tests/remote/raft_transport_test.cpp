// SPDX-License-Identifier: Apache-2.0
// A replicated shard across in-process nodes: three CAF actor systems in one test
// process, each with its own middleman on loopback, its cluster actors (gateway and
// membership, which authenticate each other as separate processes do) and its Raft
// transport (remote/raft_transport.hpp), and each hosting one replica of the same shard
// over a store of its own. What must hold: the replicas elect a leader through the
// transport alone (gateway relays from trusted peers only), a write through it reaches
// every node, and when the leader's node goes away another node's replica serves every
// acknowledged write.
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/exit_reason.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include "cluster/ownership.hpp"
#include "cluster/view.hpp"
#include "documents/documents.hpp"
#include "host/shard_host.hpp"
#include "host/wal_syncer.hpp"
#include "protocol/errors.hpp"
#include "protocol/type_ids.hpp"
#include "remote/cluster_runtime.hpp"
#include "remote/raft_transport.hpp"
#include "remote/remote_shard.hpp"
#include "remote/type_ids.hpp"
#include "storage/memory_store.hpp"
#include "tests/remote/in_process.hpp"
#include "tests/support/doc_requests.hpp"
#include "tests/support/ports.hpp"

namespace shoal::remote {
namespace {

using namespace std::chrono_literals;
namespace docs = testing::docs;

/// The cluster's shard 1 is replicated on all three nodes; shard 0 is placed as usual.
constexpr std::uint32_t replicated = 1;

/// One in-process member with one replica of the replicated shard. The cluster's own
/// shards (placed as usual) live in `store_`; the replica in `replica_store_`.
class replica_node {
public:
  replica_node(const std::string& self, const std::vector<config::node_address>& nodes)
      : store_(2), replica_store_(2), owners_(ids(nodes), 2) {
    for (const auto& n : nodes)
      if (n.id == self) address_ = n;
    in_process::configure_member(cfg_);
    sys_ = std::make_unique<caf::actor_system>(cfg_);
    auto id = in_process::member_identity(
      self, nodes, 2, "0123456789abcdef-secret", 200ms,
      std::make_shared<spdlog::logger>("cluster-" + self,
                                       std::make_shared<spdlog::sinks::null_sink_mt>()));
    transport_ = spawn_raft_transport(*sys_, self);
    // The memory store's fsync only counts: the syncer needs no thread of its own.
    syncer_ = host::spawn_wal_syncer(*sys_, replica_store_, false);
    host::host_config rc;
    rc.index = replicated;
    rc.store = &replica_store_;
    rc.syncer = syncer_;
    host::replication_config rep;
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      rep.group.voters.push_back({i + 1, nodes[i].id});
      if (nodes[i].id == self) rep.group.self = i + 1;
    }
    rep.group.election_timeout_ms = 300;
    rep.group.heartbeat_timeout_ms = 50;
    rep.send = raft_sender(transport_, replicated);
    rc.replication = std::move(rep);
    replica_ = host::spawn_shard_host(*sys_, std::move(rc));
    caf::anon_send(transport_, raft_local_atom::value, replicated, replica_);
    host::host_config base;
    base.store = &store_;
    base.peers = &placed_.handles;
    placed_ = place_shards(*sys_, self, owners_, id.failure_timeout, 2s, [&](std::uint32_t i) {
      auto c = base;
      c.index = i;
      return host::spawn_shard_host(*sys_, std::move(c));
    });
    // The stub the edge would use for the replicated shard: it finds the leader among
    // the three, this node's own replica included. Every peer's link updates it.
    remote_shard_config sc;
    sc.shard = replicated;
    sc.failure_timeout = id.failure_timeout;
    sc.call_timeout = 2s;
    for (const auto& n : nodes)
      sc.replicas.push_back(n.id);
    sc.self = self;
    sc.local = replica_;
    router_ = spawn_remote_shard(*sys_, std::move(sc));
    for (auto& peer_stubs : placed_.stubs_by_peer)
      peer_stubs.push_back(router_);
    placed_.replicas.resize(2);
    placed_.replicas[replicated] = replica_;
    auto started = start_cluster(*sys_, std::move(id), placed_, owners_, board_, transport_);
    EXPECT_TRUE(started) << sys_->render(started.error());
    if (started) actors_ = *started;
  }

  ~replica_node() {
    stop();
  }

  /// Stops the node: its replica first (which closes libraft), then the rest.
  void stop() {
    if (!sys_) return;
    caf::anon_send_exit(replica_, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(router_, caf::exit_reason::user_shutdown);
    for (auto& s : placed_.handles.handles)
      caf::anon_send_exit(s, caf::exit_reason::user_shutdown);
    for (auto& a : {actors_.membership, actors_.gateway, transport_})
      if (a) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(syncer_, caf::exit_reason::user_shutdown);
    sys_->await_all_actors_done();
    sys_.reset();
  }

  bool running() const {
    return sys_ != nullptr;
  }

  /// Asks the replica as an actor does; the answer or the error.
  template <class R>
  core::result<protocol::reply_of<R>> ask(R req) {
    using T = protocol::reply_of<R>;
    caf::scoped_actor self{*sys_};
    core::result<T> out{core::error{core::errc::internal, "no answer"}};
    self->request(replica_, 5s, std::move(req), core::reply_to<T>{})
      .receive([&](T& r) { out = std::move(r); },
               [&](caf::error& e) { out = protocol::from_caf(e); });
    return out;
  }

  /// Asks the replicated shard through this node's stub, as the edge would.
  template <class R>
  core::result<protocol::reply_of<R>> ask_stub(R req) {
    using T = protocol::reply_of<R>;
    caf::scoped_actor self{*sys_};
    core::result<T> out{core::error{core::errc::internal, "no answer"}};
    self->request(router_, 5s, std::move(req), core::reply_to<T>{})
      .receive([&](T& r) { out = std::move(r); },
               [&](caf::error& e) { out = protocol::from_caf(e); });
    return out;
  }

  /// The version of (c, `id`) in this node's applied replica; 0 when absent.
  std::uint64_t applied_version(const std::string& id) {
    auto raw = replica_store_.shard(replicated).get(documents::key("c", id));
    if (!raw) return 0;
    auto rec = documents::decode(*raw);
    return rec ? rec->version : 0;
  }

  /// Where this node's gateway listens (for a stranger to dial).
  const config::node_address& address() const {
    return address_;
  }

  /// The transport's (sent, relayed, dropped) counts.
  std::tuple<std::uint64_t, std::uint64_t, std::uint64_t> transport_stats() {
    caf::scoped_actor self{*sys_};
    std::tuple<std::uint64_t, std::uint64_t, std::uint64_t> out{};
    self->request(transport_, 5s, raft_stats_atom::value)
      .receive(
        [&](std::uint64_t s, std::uint64_t r, std::uint64_t d) {
          out = {s, r, d};
        },
        [](caf::error&) {});
    return out;
  }

private:
  static std::vector<std::string> ids(const std::vector<config::node_address>& nodes) {
    std::vector<std::string> out;
    for (const auto& n : nodes)
      out.push_back(n.id);
    return out;
  }

  config::node_address address_;
  caf::actor_system_config cfg_;
  std::unique_ptr<caf::actor_system> sys_;
  storage::memory_store store_;
  storage::memory_store replica_store_;
  cluster::ownership owners_;
  cluster::view_board board_;
  placed_shards placed_;
  cluster_actors actors_;
  caf::actor transport_;
  host::wal_syncer_actor syncer_;
  protocol::shard_actor replica_;
  remote_shard_actor router_;
};

std::vector<config::node_address> three_members() {
  auto ports = test::free_tcp_ports(6);
  std::vector<config::node_address> out;
  for (int i = 0; i < 3; ++i)
    out.push_back({"n" + std::to_string(i + 1), "127.0.0.1", ports[2 * i], ports[2 * i + 1]});
  return out;
}

/// Three members on free loopback ports, each with its replica.
std::vector<std::unique_ptr<replica_node>> three_nodes() {
  const auto members = three_members();
  std::vector<std::unique_ptr<replica_node>> nodes;
  for (const auto& m : members)
    nodes.push_back(std::make_unique<replica_node>(m.id, members));
  return nodes;
}

bool refused(const core::error& e) {
  return e.code() == core::errc::shard_unavailable
         && (e.name() == "not_leader" || e.name() == "leader_not_ready");
}

/// The node whose replica serves (answers a GET with anything but a refusal), polled
/// every 20 ms for up to 15 s.
std::optional<std::size_t> serving(std::vector<std::unique_ptr<replica_node>>& nodes) {
  const auto deadline = std::chrono::steady_clock::now() + 15s;
  while (std::chrono::steady_clock::now() < deadline) {
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      if (!nodes[i]->running()) continue;
      auto r = nodes[i]->ask(docs::get("c", "probe"));
      if (r || !refused(r.error())) return i;
    }
    std::this_thread::sleep_for(20ms);
  }
  return std::nullopt;
}

bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds limit = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return pred();
}

// Verifies three nodes' replicas elect a leader over the transport, a write through it
// reaches every node, and the followers refuse with not_leader.
TEST(RaftTransportTest, ReplicasOnThreeNodesElectAndReplicateOverTheNodeLinks) {
  auto nodes = three_nodes();
  auto leader = serving(nodes);
  ASSERT_TRUE(leader) << "no replica was elected";
  auto w = nodes[*leader]->ask(docs::put("c", "a", R"({"v":1})"));
  ASSERT_TRUE(w.ok()) << w.error().to_string();
  EXPECT_EQ(w->version, 1u);
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    EXPECT_TRUE(eventually([&] { return nodes[i]->applied_version("a") == 1; }))
      << "node " << i << " never applied the write";
    if (i == *leader) continue;
    auto r = nodes[i]->ask(docs::get("c", "a"));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().name(), "not_leader") << r.error().to_string();
  }
  auto [sent, relayed, dropped] = nodes[*leader]->transport_stats();
  EXPECT_GT(sent, 0u);
  auto [fsent, frelayed, fdropped] = nodes[(*leader + 1) % 3]->transport_stats();
  EXPECT_GT(frelayed, 0u) << "the follower's transport delivered nothing";
  (void)relayed;
  (void)dropped;
  (void)fsent;
  (void)fdropped;
}

// Verifies that when the leader's node stops, another node's replica is elected and
// serves every write the first one acknowledged.
TEST(RaftTransportTest, AnotherNodeServesEveryAcknowledgedWriteWhenTheLeadersNodeStops) {
  auto nodes = three_nodes();
  auto first = serving(nodes);
  ASSERT_TRUE(first);
  for (int v = 1; v <= 5; ++v) {
    auto w = nodes[*first]->ask(docs::put("c", "d" + std::to_string(v), std::to_string(v)));
    ASSERT_TRUE(w.ok()) << v << ": " << w.error().to_string();
  }
  nodes[*first]->stop();
  auto second = serving(nodes);
  ASSERT_TRUE(second) << "no replica was elected after the leader's node stopped";
  ASSERT_NE(*second, *first);
  for (int v = 1; v <= 5; ++v) {
    auto got = nodes[*second]->ask(docs::get("c", "d" + std::to_string(v)));
    ASSERT_TRUE(got.ok()) << v << ": " << got.error().to_string();
    EXPECT_EQ(got->json, std::to_string(v));
  }
}

// Verifies every node's stub finds the leader, wherever it is (this node's own replica,
// or another node's), writes and reads through any node agree, and after the leader's
// node stops the survivors' stubs find the new leader by themselves.
TEST(RaftTransportTest, EveryNodesStubFindsTheLeader) {
  auto nodes = three_nodes();
  auto leader = serving(nodes);
  ASSERT_TRUE(leader);
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    auto w = nodes[i]->ask_stub(docs::put("c", "k", std::to_string(i)));
    ASSERT_TRUE(w.ok()) << "through node " << i << ": " << w.error().to_string();
    EXPECT_EQ(w->version, i + 1);
    for (auto& n : nodes) {
      auto r = n->ask_stub(docs::get("c", "k"));
      ASSERT_TRUE(r.ok()) << r.error().to_string();
      EXPECT_EQ(r->json, std::to_string(i));
    }
  }
  nodes[*leader]->stop();
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    if (!nodes[i]->running()) continue;
    // While the survivors elect, a request may be refused (503) or lost with the old
    // leader (504): the stub answers at once either way, and finds the new leader.
    bool written = false;
    for (int attempt = 0; attempt < 100 && !written; ++attempt) {
      auto w = nodes[i]->ask_stub(docs::put("c", "after" + std::to_string(i), "1"));
      written = w.ok();
      if (!written) std::this_thread::sleep_for(100ms);
    }
    EXPECT_TRUE(written) << "node " << i << "'s stub never found the new leader";
    auto r = nodes[i]->ask_stub(docs::get("c", "k"));
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_EQ(r->json, "2");
  }
}

// Verifies a CAF node that never completed the handshake cannot reach a replica: its
// relayed Raft message is dropped by the gateway (the transport delivers nothing more)
// and the group is undisturbed.
TEST(RaftTransportTest, AStrangersRelayIsDropped) {
  auto nodes = three_nodes();
  auto leader = serving(nodes);
  ASSERT_TRUE(leader);
  auto& target = *nodes[(*leader + 1) % 3];
  caf::actor_system_config cfg;
  cfg.load<caf::io::middleman>();
  protocol::add_message_types(cfg);
  cfg.add_message_types<caf::id_block::shoal_remote>();
  caf::actor_system stranger{cfg};
  auto gateway =
    stranger.middleman().remote_actor(target.address().host, target.address().actor_port);
  ASSERT_TRUE(gateway) << stranger.render(gateway.error());
  caf::scoped_actor self{stranger};
  // Heartbeats stop while nothing is relayed: the counts below move only for the group.
  const auto before = std::get<1>(target.transport_stats());
  for (int i = 0; i < 50; ++i)
    self->send(*gateway, raft_relay_atom::value, replicated, std::string(64, 'x'));
  // The gateway handles one sender's messages in order: once this is refused, the
  // relays were handled (and whatever they caused is in the transport's mailbox first).
  std::optional<caf::error> refusal;
  self->request(*gateway, 2s, heartbeat_atom::value)
    .receive([&](heartbeat_atom) {}, [&](caf::error& e) { refusal = std::move(e); });
  ASSERT_TRUE(refusal) << "the stranger's heartbeat was answered";
  const auto after = std::get<1>(target.transport_stats());
  // The group's own traffic (a heartbeat every 50 ms from the leader) goes on meanwhile:
  // far fewer than the stranger's 50 messages.
  EXPECT_LT(after - before, 50u) << "the stranger's relays reached the transport";
  auto w = nodes[*leader]->ask(docs::put("c", "after", "1"));
  EXPECT_TRUE(w.ok()) << w.error().to_string();
}

} // namespace
} // namespace shoal::remote
