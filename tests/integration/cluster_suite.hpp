// SPDX-License-Identifier: Apache-2.0
#pragma once

// What the multi-process cluster suites share: three real shoal processes on 127.0.0.1,
// each with its own HTTP and actor port (free ports picked at start), one shared TOML
// file per test and `--set node.id=…`; the membership's short timeouts, the bounds the
// tests check with `margin` on top, and a gtest fixture that starts the members, waits
// for them to see each other, knows which member owns which shard, and stops every
// member by its PID at the end of the test.

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <signal.h>

#include "cluster/ownership.hpp"
#include "cluster/shard_map.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/ports.hpp"
#include "tests/support/shoal_process.hpp"
#include "tests/support/temp_dir.hpp"

namespace shoal::test {

namespace fs = std::filesystem;
namespace json = boost::json;
using clock_type = std::chrono::steady_clock;
using std::chrono::milliseconds;

inline constexpr std::uint32_t shard_count = 16;
inline constexpr int heartbeat_ms = 100;
inline constexpr int failure_timeout_ms = 1000;
inline constexpr int reconnect_max_ms = 500;
inline constexpr int call_timeout_ms = 2000; ///< actors.call_timeout_ms: an actor call's budget
inline const std::string test_secret = "cluster-test-secret-0123456789";

/// Slack on top of every bound the product promises (a loaded two-core machine).
inline constexpr milliseconds margin{2000};
/// The longest any request may take: a silent owner is given up after the failure timeout.
inline constexpr milliseconds request_bound = milliseconds(failure_timeout_ms) + margin;
/// An answer that did not wait for a silent owner (well under the failure timeout).
inline constexpr milliseconds at_once{800};
/// Members finding each other (first dial, or a redial after at most reconnect_max_ms).
inline constexpr milliseconds settle_timeout{20'000};

inline const header_list json_type{{"Content-Type", "application/json"}};

inline bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

inline std::string describe(const std::optional<http_response>& res,
                            const std::string& error = {}) {
  if (!res) return "no answer (" + error + ")";
  return std::to_string(res->status) + " " + res->body;
}

/// 503 shard_unavailable with `Retry-After: 1`, as for every shard whose owner is away.
inline ::testing::AssertionResult is_shard_unavailable(const std::optional<http_response>& res) {
  if (!res) return ::testing::AssertionFailure() << "no answer";
  if (res->status != 503 || res->error_code() != "shard_unavailable"
      || res->header("Retry-After") != "1")
    return ::testing::AssertionFailure()
           << res->status << " " << res->body
           << " (Retry-After: " << res->header("Retry-After").value_or("none") << ")";
  return ::testing::AssertionSuccess();
}

/// True when `res` is 504 outcome_unknown without Retry-After: a write that was sent to
/// its owner and lost with it (it may or may not have been applied).
inline ::testing::AssertionResult is_outcome_unknown(const std::optional<http_response>& res) {
  if (!res) return ::testing::AssertionFailure() << "no answer";
  if (res->status != 504 || res->error_code() != "outcome_unknown" || res->header("Retry-After"))
    return ::testing::AssertionFailure()
           << res->status << " " << res->body
           << " (Retry-After: " << res->header("Retry-After").value_or("none") << ")";
  return ::testing::AssertionSuccess();
}

/// Polls `done` every 20 ms until it holds or `timeout` passed; true when it held.
inline bool eventually(milliseconds timeout, const std::function<bool()>& done) {
  const auto deadline = clock_type::now() + timeout;
  for (;;) {
    if (done()) return true;
    if (clock_type::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(20));
  }
}

inline milliseconds since(clock_type::time_point start) {
  return std::chrono::duration_cast<milliseconds>(clock_type::now() - start);
}

/// One member as listed in `[[cluster.nodes]]`.
struct member {
  std::string id;
  std::uint16_t http_port = 0;
  std::uint16_t actor_port = 0;
  std::string host = "127.0.0.1"; ///< its HTTP and actor address
};

/// What a config file says about the cluster.
struct cluster_spec {
  std::vector<member> nodes;
  std::uint32_t shards = shard_count;
  std::string secret = test_secret;
  /// cluster.replication_factor; 0 leaves it out (the default: 3 with three members).
  /// The cluster suites test one copy per shard unless they say otherwise.
  std::uint32_t replication_factor = 1;
  std::string extra_toml; ///< appended to the file as is
};

inline std::string to_toml(const cluster_spec& spec, const fs::path& data_root) {
  std::ostringstream out;
  out << "[cluster]\n"
      << "shards = " << spec.shards << "\n"
      << "secret = \"" << spec.secret << "\"\n"
      << "heartbeat_ms = " << heartbeat_ms << "\n"
      << "failure_timeout_ms = " << failure_timeout_ms << "\n"
      << "reconnect_max_ms = " << reconnect_max_ms << "\n";
  if (spec.replication_factor != 0)
    out << "replication_factor = " << spec.replication_factor << "\n";
  for (const auto& n : spec.nodes)
    out << "\n[[cluster.nodes]]\n"
        << "id = \"" << n.id << "\"\n"
        << "host = \"" << n.host << "\"\n"
        << "http_port = " << n.http_port << "\n"
        << "actor_port = " << n.actor_port << "\n";
  // {node} becomes node.id: one file serves every member, each with its own data.
  out << "\n[storage]\npath = \"" << (data_root / "data-{node}").string() << "\"\n"
      << "\n[actors]\ncall_timeout_ms = " << call_timeout_ms << "\n"
      << "\n[log]\naccess_log = false\n";
  if (!spec.extra_toml.empty()) out << "\n" << spec.extra_toml;
  return out.str();
}

// ===========================================================================
// The fixture: three members n1..n3 on free loopback ports, started on demand.
// ===========================================================================

class cluster_suite : public ::testing::Test {
protected:
  cluster_suite() : cluster_suite("shoal-cluster", {}) {}

  /// The test's directory is `<tmp>/<dir_prefix>-XXXXXX`; `extra_toml` goes at the end of
  /// the shared config file (tables that can only be set in a file).
  /// `hosts`, when given, are the members' addresses (else all 127.0.0.1); their ports
  /// are still picked free on loopback, which is as good as any elsewhere.
  cluster_suite(std::string_view dir_prefix, std::string extra_toml,
                std::vector<std::string> hosts = {})
      : dir_{dir_prefix} {
    const auto& ports = reserved_.ports();
    for (std::size_t i = 0; i < 3; ++i) {
      members_.push_back(member{"n" + std::to_string(i + 1), ports[i], ports[3 + i]});
      if (i < hosts.size()) members_.back().host = hosts[i];
    }
    cluster_spec spec;
    spec.nodes = members_;
    spec.extra_toml = std::move(extra_toml);
    config_ = write_config("cluster.toml", spec);
  }

  void TearDown() override {
    // A stopped member first gets SIGCONT, so that it can shut down (or be killed).
    for (auto& [id, node] : nodes_)
      if (node && node->running()) ::kill(node->pid(), SIGCONT);
    if (HasFailure()) dump_logs();
    for (auto& [id, node] : nodes_) {
      if (!node || !node->running()) continue;
      auto status = node->stop(SIGTERM);
      EXPECT_EQ(status, 0) << id << " did not shut down cleanly; log:\n" << tail(node->log());
    }
  }

  /// Writes `spec` as TOML into the test's directory and returns its path.
  fs::path write_config(const std::string& name, const cluster_spec& spec) {
    auto path = dir_ / name;
    std::ofstream(path) << to_toml(spec, dir_.path());
    return path;
  }

  static std::string tail(std::string log, std::size_t bytes = 6000) {
    if (log.size() > bytes) log.erase(0, log.size() - bytes);
    return log;
  }

  /// The logs of every run of member `id` so far, oldest first.
  std::vector<std::string> logs_of(const std::string& id) const {
    std::vector<std::string> out;
    const auto mine = [&](const shoal_process& p) {
      return p.log_file().filename().string().rfind(id + "-", 0) == 0;
    };
    for (const auto& p : retired_)
      if (mine(*p)) out.push_back(p->log());
    if (auto it = nodes_.find(id); it != nodes_.end() && it->second)
      out.push_back(it->second->log());
    return out;
  }

  void dump_logs() {
    for (const auto& node : retired_)
      std::fprintf(stderr, "--- %s (earlier run) ---\n%s\n", node->log_file().c_str(),
                   tail(node->log()).c_str());
    for (const auto& [id, node] : nodes_)
      if (node)
        std::fprintf(stderr, "--- %s ---\n%s\n", node->log_file().c_str(),
                     tail(node->log()).c_str());
    std::fprintf(stderr, "--- views ---\n%s\n", views_text().c_str());
  }

  /// Starts member `id` with `config` (the shared good file by default), `sets` as more
  /// `--set` options and `env` ("NAME=value") in its environment; waits until it listens.
  /// Records a failure and returns false when it does not come up.
  bool start(const std::string& id, const fs::path& config = {},
             const std::vector<std::string>& sets = {}, std::vector<std::string> env = {}) {
    auto& slot = nodes_[id];
    if (slot) {
      EXPECT_FALSE(slot->running()) << id << " is already running";
      retired_.push_back(std::move(slot));
    }
    process_options opts;
    opts.args = {"serve", "--config", (config.empty() ? config_ : config).string(), "--set",
                 "node.id=" + id};
    for (const auto& set : sets) {
      opts.args.push_back("--set");
      opts.args.push_back(set);
    }
    if (auto pre = launcher(id); !pre.empty()) {
      opts.args.insert(opts.args.begin(), opts.binary);
      opts.args.insert(opts.args.begin(), pre.begin() + 1, pre.end());
      opts.binary = pre.front();
    }
    opts.env = std::move(env);
    opts.log_file = dir_ / (id + "-" + std::to_string(++starts_[id]) + ".log");
    slot = std::make_unique<shoal_process>(std::move(opts));
    if (!slot->wait_listening(20s)) {
      ADD_FAILURE() << id << " did not start listening; log:\n" << slot->log();
      return false;
    }
    EXPECT_EQ(slot->port(), http_port(id)) << "the HTTP port must come from cluster.nodes";
    return true;
  }

  bool start_all() {
    for (const auto& m : members_)
      if (!start(m.id)) return false;
    return true;
  }

  shoal_process& node(const std::string& id) {
    return *nodes_.at(id);
  }

  const member& member_of(const std::string& id) const {
    for (const auto& m : members_)
      if (m.id == id) return m;
    throw std::out_of_range("no member " + id);
  }

  std::uint16_t http_port(const std::string& id) const {
    return member_of(id).http_port;
  }

  /// A client of member `id`'s HTTP address.
  http_client client_of(const std::string& id, milliseconds timeout = 5s) const {
    const auto& m = member_of(id);
    return http_client{m.host, m.http_port, timeout};
  }

  /// What a member is started under: a command and its arguments put before the shoal
  /// binary (empty: the binary itself). A suite that runs members in network namespaces
  /// returns `ip netns exec NS`.
  virtual std::vector<std::string> launcher(const std::string& /*id*/) const {
    return {};
  }

  std::vector<std::string> all_ids() const {
    std::vector<std::string> ids;
    for (const auto& m : members_)
      ids.push_back(m.id);
    return ids;
  }

  /// GET /v1/cluster of `id`; a null value when it does not answer 200 with JSON.
  json::value view(const std::string& id) {
    auto client = client_of(id, 5s);
    auto res = client.try_request("GET", "/v1/cluster");
    if (!res || res->status != 200) return nullptr;
    return res->json();
  }

  std::string views_text() {
    std::string out;
    for (const auto& m : members_) {
      auto it = nodes_.find(m.id);
      if (it == nodes_.end() || !it->second || !it->second->running()) continue;
      out += m.id + ": " + json::serialize(view(m.id)) + "\n";
    }
    return out;
  }

  /// The entry of `id` in a /v1/cluster body, or null.
  static const json::object* entry(const json::value& v, std::string_view id) {
    if (!v.is_object()) return nullptr;
    const auto* nodes = v.as_object().if_contains("nodes");
    if (nodes == nullptr || !nodes->is_array()) return nullptr;
    for (const auto& n : nodes->as_array()) {
      if (!n.is_object()) continue;
      const auto* nid = n.as_object().if_contains("id");
      if (nid != nullptr && nid->is_string() && nid->as_string() == id) return &n.as_object();
    }
    return nullptr;
  }

  /// The state `observer` reports for `id` ("up", "down", "connecting"), or "".
  std::string state_seen(const std::string& observer, const std::string& id) {
    auto v = view(observer);
    const auto* e = entry(v, id);
    if (e == nullptr) return {};
    const auto* s = e->if_contains("state");
    return s != nullptr && s->is_string() ? std::string(s->as_string()) : std::string{};
  }

  /// Waits until `observer` reports `id` in `state`.
  bool wait_state(const std::string& observer, const std::string& id, const std::string& state,
                  milliseconds timeout) {
    return eventually(timeout, [&] { return state_seen(observer, id) == state; });
  }

  /// Waits until every member of `ids` reports every member of `ids` up.
  bool wait_all_up(const std::vector<std::string>& ids, milliseconds timeout = settle_timeout) {
    return eventually(timeout, [&] {
      for (const auto& observer : ids) {
        auto v = view(observer);
        for (const auto& id : ids) {
          const auto* e = entry(v, id);
          if (e == nullptr || e->at("state") != "up") return false;
        }
      }
      return true;
    });
  }

  /// Takes the shard owners from a /v1/cluster body (for `owner_of`).
  void load_owners(const json::value& v) {
    owners_.assign(shard_count, std::string{});
    const auto& owners = v.at("shards").at("owners").as_object();
    for (std::uint32_t s = 0; s < shard_count; ++s)
      owners_[s] = std::string(owners.at(std::to_string(s)).as_string());
  }

  /// Takes the shard owners from the rendezvous order (cluster::ownership) instead of a
  /// view: with replicated shards a view names each shard's current leader, while this
  /// is its preferred one (the first of its replicas).
  void load_preferred_owners() {
    const cluster::ownership preferred{all_ids(), shard_count};
    owners_.clear();
    for (std::uint32_t s = 0; s < shard_count; ++s)
      owners_.push_back(preferred.owner(s));
  }

  /// The member owning the shard of (`space`, `id`); `space` is a collection or an actor type.
  std::string owner_of(std::string_view space, std::string_view id) const {
    return owners_.at(cluster::shard_map{shard_count}.shard_of(space, id));
  }

  /// `count` ids "<prefix>-N" whose (`space`, id) shard `owner` owns.
  std::vector<std::string> ids_owned_by(const std::string& owner, std::string_view space,
                                        const std::string& prefix, std::size_t count) const {
    std::vector<std::string> out;
    for (int i = 0; out.size() < count && i < 1'000'000; ++i) {
      auto id = prefix + "-" + std::to_string(i);
      if (owner_of(space, id) == owner) out.push_back(std::move(id));
    }
    return out;
  }

  /// Starts n1..n3 with the shared file, waits until each sees all up, loads the owners.
  void start_cluster() {
    ASSERT_TRUE(start_all());
    ASSERT_TRUE(wait_all_up(all_ids())) << "the members did not all come up:\n" << views_text();
    auto v = view("n1");
    ASSERT_TRUE(v.is_object());
    load_owners(v);
  }

  temp_dir dir_;
  /// The members' ports, kept from other test processes while this test runs.
  port_reservation reserved_{6};
  std::vector<member> members_;
  fs::path config_;
  std::map<std::string, std::unique_ptr<shoal_process>> nodes_;
  std::vector<std::unique_ptr<shoal_process>> retired_; ///< earlier runs, for their logs
  std::map<std::string, int> starts_;
  std::vector<std::string> owners_;
};

} // namespace shoal::test
