// SPDX-License-Identifier: Apache-2.0
// Indexes, queries, the TTL cache and the change feed over three shoal processes on
// loopback (docs/queries.md, docs/caching.md, docs/changes.md): an index created through
// one member is built on every member's shards; a query through any member gathers every
// shard over CAF and pages through cursors exactly; a cache entry put through one member
// is read through the others; a change stream on one member carries the writes made
// through the others; and with a member killed, queries answer 503 until it is back.

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "tests/integration/cluster_suite.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/feed_client.hpp"

namespace shoal::test {
namespace {

const std::string items = "/v1/collections/items";

class ClusterDataTest : public cluster_suite {
protected:
  ClusterDataTest() : cluster_suite("shoal-cluster-data", "[query]\nindex_build_batch = 50\n") {}

  /// Writes items i0..i{n-1} with k = i % 10 through the members in turn.
  void write_items(int n) {
    std::vector<http_client> clients;
    for (const auto& id : all_ids())
      clients.emplace_back(http_port(id), 5s);
    for (int i = 0; i < n; ++i) {
      auto body = R"({"i":)" + std::to_string(i) + R"(,"k":)" + std::to_string(i % 10) + "}";
      auto res = clients[static_cast<std::size_t>(i) % clients.size()].put(
        items + "/docs/i" + std::to_string(i), body);
      ASSERT_EQ(res.status, 201) << res.body;
    }
  }

  /// Waits until the index on k is ready as seen through `via`.
  bool wait_ready(const std::string& via) {
    return eventually(20s, [&] {
      http_client client{http_port(via), 5s};
      auto res = client.try_request("GET", items + "/indexes/k");
      return res && res->status == 200 && res->json().at("state") == "ready";
    });
  }

  /// Every id a query answers through `via`, following the cursors with `limit` per page.
  std::vector<std::string> query_ids(const std::string& via, const std::string& where, int limit) {
    http_client client{http_port(via), 5s};
    std::vector<std::string> out;
    json::value cursor = nullptr;
    for (int page = 0; page < 200; ++page) {
      json::object body;
      body["where"] = json::parse(where);
      body["order_by"] = "i";
      body["limit"] = limit;
      body["cursor"] = cursor;
      auto res = client.request("POST", items + "/query", json::serialize(body), json_type);
      if (res.status != 200) {
        ADD_FAILURE() << res.status << " " << res.body;
        return out;
      }
      auto v = res.json();
      for (const auto& d : v.at("docs").as_array())
        out.emplace_back(d.at("id").as_string());
      cursor = v.at("next_cursor");
      if (cursor.is_null()) return out;
    }
    ADD_FAILURE() << "paging did not end";
    return out;
  }
};

TEST_F(ClusterDataTest, IndexedQueriesGatherEveryShardThroughAnyMember) {
  start_cluster();
  write_items(300);
  {
    http_client client{http_port("n1"), 5s};
    auto res = client.put(items + "/indexes/k", "");
    ASSERT_EQ(res.status, 201) << res.body;
  }
  ASSERT_TRUE(wait_ready("n2"));
  // The index is on every shard, so progress adds up over the whole cluster.
  {
    http_client client{http_port("n3"), 5s};
    auto v = client.get(items + "/indexes/k").json();
    EXPECT_EQ(v.at("indexed").to_number<std::int64_t>(), 300);
    EXPECT_EQ(v.at("total").to_number<std::int64_t>(), 300);
  }
  // k == 3: items 3, 13, ..., 293 in order of i, through each member, 7 per page.
  std::vector<std::string> expected;
  for (int i = 3; i < 300; i += 10)
    expected.push_back("i" + std::to_string(i));
  for (const auto& via : all_ids())
    EXPECT_EQ(query_ids(via, R"({"k": 3})", 7), expected) << "through " << via;
  // A range over several values, one page at a time.
  auto ranged = query_ids("n2", R"({"k": {"$gte": 8}})", 11);
  EXPECT_EQ(ranged.size(), 60u);
  // The plan names the index and asks every shard of the cluster.
  http_client client{http_port("n3"), 5s};
  auto plan =
    client.request("POST", items + "/query?explain=true", R"({"where": {"k": 3}})", json_type);
  ASSERT_EQ(plan.status, 200) << plan.body;
  EXPECT_EQ(plan.json().at("plan").at("index"), "k") << plan.body;
  EXPECT_EQ(plan.json().at("plan").at("shards").to_number<std::int64_t>(), shard_count)
    << plan.body;
  EXPECT_EQ(plan.json().at("plan").at("estimated_keys").to_number<std::int64_t>(), 30) << plan.body;
}

TEST_F(ClusterDataTest, QueriesAnswer503WhileAMemberIsDownAndWorkAfterItsRestart) {
  start_cluster();
  write_items(100);
  {
    http_client client{http_port("n1"), 5s};
    ASSERT_EQ(client.put(items + "/indexes/k", "").status, 201);
  }
  ASSERT_TRUE(wait_ready("n1"));
  node("n3").kill9();
  ASSERT_TRUE(wait_state("n1", "n3", "down", settle_timeout));
  http_client client{http_port("n1"), 5s};
  auto res = client.try_request("POST", items + "/query", R"({"where": {"k": 1}})", json_type);
  EXPECT_TRUE(is_shard_unavailable(res)) << describe(res);
  ASSERT_TRUE(start("n3"));
  ASSERT_TRUE(wait_all_up(all_ids()));
  EXPECT_EQ(query_ids("n1", R"({"k": 1})", 100).size(), 10u);
}

TEST_F(ClusterDataTest, CacheEntriesAreSharedByEveryMember) {
  start_cluster();
  http_client n1{http_port("n1"), 5s};
  for (int i = 0; i < 40; ++i) {
    auto res = n1.request("PUT", "/v1/cache/session-" + std::to_string(i) + "?ttl=60",
                          "value-" + std::to_string(i), {{"Content-Type", "text/plain"}});
    ASSERT_EQ(res.status, 204) << res.body;
  }
  for (const auto& via : {"n2", "n3"}) {
    http_client client{http_port(via), 5s};
    for (int i = 0; i < 40; ++i) {
      auto res = client.get("/v1/cache/session-" + std::to_string(i));
      ASSERT_EQ(res.status, 200) << via << " " << res.body;
      EXPECT_EQ(res.body, "value-" + std::to_string(i));
      EXPECT_EQ(res.header("Content-Type"), "text/plain");
    }
  }
  http_client n2{http_port("n2"), 5s};
  EXPECT_EQ(n2.del("/v1/cache/session-7").status, 204);
  EXPECT_EQ(n1.get("/v1/cache/session-7").status, 404);
}

TEST_F(ClusterDataTest, AChangeStreamOnOneMemberCarriesWritesMadeThroughTheOthers) {
  start_cluster();
  feed_client stream{http_port("n1"), items + "/changes"};
  ASSERT_TRUE(stream.read_head());
  ASSERT_EQ(stream.status, 200u) << stream.read_body();
  http_client n2{http_port("n2"), 5s};
  http_client n3{http_port("n3"), 5s};
  constexpr int writes = 60;
  for (int i = 0; i < writes; ++i) {
    auto& client = i % 2 == 0 ? n2 : n3;
    auto target = items + "/docs/f" + std::to_string(i % 20);
    ASSERT_LT(client.put(target, R"({"n":)" + std::to_string(i) + "}").status, 300);
  }
  // Every write arrives once, and each document's versions arrive in order.
  std::map<std::string, std::int64_t> last_version;
  int received = 0;
  while (received < writes) {
    auto e = stream.next(10s);
    ASSERT_TRUE(e) << "received " << received << " of " << writes << " events";
    if (e->type != "put") continue;
    auto data = json::parse(e->data);
    auto id = std::string(data.at("id").as_string());
    auto version = data.at("version").to_number<std::int64_t>();
    EXPECT_EQ(version, last_version[id] + 1) << id;
    last_version[id] = version;
    EXPECT_FALSE(e->id.empty());
    ++received;
  }
  EXPECT_EQ(last_version.size(), 20u);
}

} // namespace
} // namespace shoal::test
