// SPDX-License-Identifier: Apache-2.0
// Replicated shards on the real binary: three shoal processes on loopback with
// `cluster.replication_factor = 3`, so every shard is a Raft group over all three
// (docs/replication.md). What must hold: writes through any member are acknowledged and
// read back through any other; kill -9 of a member loses no acknowledged write, and its
// shards go on serving from the survivors, reads and writes, through every member left;
// the killed member restarted from its data catches up and serves again.
#include <chrono>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/cluster_suite.hpp"

namespace shoal::test {
namespace {

const std::vector<std::string> three_copies{"cluster.replication_factor=3"};

class ReplicationTest : public cluster_suite {
protected:
  ReplicationTest() : cluster_suite("shoal-replication", {}) {}

  bool start_replicated(const std::string& id) {
    return start(id, {}, three_copies);
  }

  /// PUTs through `via` until it is acknowledged (a group still electing answers 503) or
  /// `limit` passes; the last answer.
  std::optional<http_response> put_until_ok(const std::string& via, const std::string& path,
                                            const std::string& body,
                                            milliseconds limit = milliseconds(15'000)) {
    std::optional<http_response> last;
    eventually(limit, [&] {
      http_client client{http_port(via), 5s};
      last = client.try_request("PUT", path, body, json_type);
      return last && last->status == 200;
    });
    return last;
  }

  /// GETs through `via` until it answers 200 or `limit` passes; the last answer.
  std::optional<http_response> get_until_ok(const std::string& via, const std::string& path,
                                            milliseconds limit = milliseconds(15'000)) {
    std::optional<http_response> last;
    eventually(limit, [&] {
      http_client client{http_port(via), 5s};
      last = client.try_request("GET", path);
      return last && last->status == 200;
    });
    return last;
  }
};

// Verifies writes through any member read back through any other, kill -9 of a member
// loses none of them, its shards serve on from the survivors (reads and new writes), and
// the member restarted from its data serves what was written while it was down.
TEST_F(ReplicationTest, AKilledMemberLosesNoAcknowledgedWriteAndItsShardsServeOn) {
  for (const auto& id : all_ids())
    ASSERT_TRUE(start_replicated(id));
  ASSERT_TRUE(wait_all_up(all_ids())) << views_text();
  load_owners(view("n1"));
  // Documents whose shards n2 owns (the preferred leader of their groups) and others.
  auto ids = ids_owned_by("n2", "r", "doc", 10);
  for (const auto& other : ids_owned_by("n3", "r", "other", 5))
    ids.push_back(other);
  const std::vector<std::string> via{"n1", "n2", "n3"};
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const auto& id = ids[i];
    auto res = put_until_ok(via[i % 3], "/v1/collections/r/docs/" + id,
                            R"({"i":)" + std::to_string(i) + "}");
    ASSERT_TRUE(res && res->status == 200) << id << ": " << describe(res);
  }
  for (std::size_t i = 0; i < ids.size(); ++i) {
    auto res = get_until_ok(via[(i + 1) % 3], "/v1/collections/r/docs/" + ids[i]);
    ASSERT_TRUE(res && res->status == 200) << ids[i] << ": " << describe(res);
    EXPECT_EQ(res->body, R"({"i":)" + std::to_string(i) + "}");
  }

  node("n2").kill9();
  for (const auto& survivor : {"n1", "n3"}) {
    for (std::size_t i = 0; i < ids.size(); ++i) {
      auto res = get_until_ok(survivor, "/v1/collections/r/docs/" + ids[i]);
      ASSERT_TRUE(res && res->status == 200)
        << ids[i] << " through " << survivor << " after n2 was killed: " << describe(res);
      EXPECT_EQ(res->body, R"({"i":)" + std::to_string(i) + "}");
    }
  }
  // n2's shards take new writes without it.
  for (const auto& id : ids_owned_by("n2", "r", "while-down", 5)) {
    auto res = put_until_ok("n3", "/v1/collections/r/docs/" + id, R"({"down":true})");
    ASSERT_TRUE(res && res->status == 200) << id << ": " << describe(res);
  }

  ASSERT_TRUE(start_replicated("n2"));
  ASSERT_TRUE(wait_all_up(all_ids())) << views_text();
  for (const auto& id : ids_owned_by("n2", "r", "while-down", 5)) {
    auto res = get_until_ok("n2", "/v1/collections/r/docs/" + id);
    ASSERT_TRUE(res && res->status == 200) << id << " through the restarted n2: " << describe(res);
    EXPECT_EQ(res->body, R"({"down":true})");
  }
}

} // namespace
} // namespace shoal::test
