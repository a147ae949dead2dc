// SPDX-License-Identifier: Apache-2.0
// The cluster keys: [[cluster.nodes]], node.id, cluster.secret and the rules between them.
#include <functional>
#include <string>

#include <gtest/gtest.h>

#include "config/settings.hpp"

namespace {

using shoal::config::config_error;
using shoal::config::load;
using shoal::config::load_from_string;
using shoal::config::settings;

const std::string cluster_3_toml = SHOAL_SOURCE_DIR "/config/cluster-3.toml";

const std::string two_nodes = R"(
[cluster]
secret = "0123456789abcdef"
[[cluster.nodes]]
id = "a"
host = "127.0.0.1"
http_port = 7001
actor_port = 7101
[[cluster.nodes]]
id = "b"
host = "127.0.0.2"
http_port = 7002
actor_port = 7102
[storage]
path = "/var/lib/shoal/{node}/db"
)";

void expect_error(const std::string& toml, const std::vector<std::string>& overrides,
                  const std::string& key, const std::string& fragment) {
  SCOPED_TRACE(toml);
  try {
    load_from_string(toml, overrides);
    ADD_FAILURE() << "no config_error; expected one for " << key;
  } catch (const config_error& e) {
    EXPECT_EQ(e.key(), key) << e.what();
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

// Verifies that the shipped three-node file loads for each member and that the member's
// entry decides where it listens and where its data lives.
TEST(ClusterSettingsTest, ShippedThreeNodeFileLoadsForEachMember) {
  for (int i = 1; i <= 3; ++i) {
    const std::string id = "n" + std::to_string(i);
    const settings s = load(cluster_3_toml, {"node.id=" + id});
    ASSERT_TRUE(s.cluster.clustered());
    ASSERT_EQ(s.cluster.nodes.size(), 3u);
    EXPECT_EQ(s.node.id, id);
    EXPECT_EQ(s.http.host, "127.0.0.1");
    EXPECT_EQ(s.http.port, 8080 + i);
    EXPECT_EQ(s.cluster.nodes[i - 1].actor_port, 9080 + i);
    EXPECT_EQ(s.storage.path, "./data/" + id);
    EXPECT_GE(s.cluster.secret.size(), 16u);
  }
}

// Verifies that the member entry overrides http.host/http.port and {node} is replaced.
TEST(ClusterSettingsTest, MemberEntryDecidesAddressAndPath) {
  const settings s = load_from_string(two_nodes, {"node.id=b", "http.port=1"});
  EXPECT_EQ(s.http.host, "127.0.0.2");
  EXPECT_EQ(s.http.port, 7002);
  EXPECT_EQ(s.storage.path, "/var/lib/shoal/b/db");
  EXPECT_EQ(s.cluster.nodes[0].id, "a");
  EXPECT_EQ(s.cluster.nodes[1].actor_port, 7102);
}

// Verifies that without cluster.nodes nothing is rewritten and no secret is needed.
TEST(ClusterSettingsTest, SingleNodeNeedsNoSecret) {
  const settings s = load_from_string("[storage]\npath = \"d/{node}\"", {"node.id=solo"});
  EXPECT_FALSE(s.cluster.clustered());
  EXPECT_EQ(s.storage.path, "d/{node}");
  EXPECT_EQ(s.node.id, "solo");
}

// Verifies each cross-key rule names the key at fault.
TEST(ClusterSettingsTest, RejectsInconsistentMembers) {
  expect_error(two_nodes, {"node.id=c"}, "node.id", "not one of cluster.nodes");
  expect_error(two_nodes, {}, "node.id", "not one of cluster.nodes"); // default "local"
  expect_error(two_nodes, {"node.id=a b"}, "node.id", "is not a node id");
  auto no_secret = two_nodes;
  const std::string secret_line = "secret = \"0123456789abcdef\"\n";
  no_secret.erase(no_secret.find(secret_line), secret_line.size());
  expect_error(no_secret, {"node.id=a"}, "cluster.secret", "required");
  expect_error(two_nodes, {"node.id=a", "cluster.secret=short"}, "cluster.secret", "at least 16");
  auto dup_id = two_nodes;
  dup_id.replace(dup_id.find("id = \"b\""), 8, "id = \"a\"");
  expect_error(dup_id, {"node.id=a"}, "cluster.nodes", "appears twice");
  auto dup_port = two_nodes;
  dup_port.replace(dup_port.find("127.0.0.2"), 9, "127.0.0.1");
  dup_port.replace(dup_port.find("7102"), 4, "7001");
  expect_error(dup_port, {"node.id=a"}, "cluster.nodes", "used twice");
  expect_error(two_nodes, {"node.id=a", "cluster.heartbeat_ms=3000"}, "cluster.failure_timeout_ms",
               "longer than cluster.heartbeat_ms");
  expect_error(two_nodes, {"node.id=a", "cluster.replication_factor=3"},
               "cluster.replication_factor", "3 copies need as many members");
}

// Verifies that TLS between members takes all three files or none, and only in a cluster.
TEST(ClusterSettingsTest, TlsNeedsAllThreeFilesAndACluster) {
  const std::string three = "[cluster]\nsecret = \"0123456789abcdef0123\"\n"
                            "[[cluster.nodes]]\nid = \"m1\"\nhost = \"127.0.0.1\"\n"
                            "http_port = 7001\nactor_port = 8001\n"
                            "[[cluster.nodes]]\nid = \"m2\"\nhost = \"127.0.0.1\"\n"
                            "http_port = 7002\nactor_port = 8002\n";
  const std::vector<std::string> files = {"node.id=m1", "cluster.tls_certificate=/tls/m1.crt",
                                          "cluster.tls_key=/tls/m1.key",
                                          "cluster.tls_ca=/tls/ca.crt"};
  auto s = load_from_string(three, files);
  EXPECT_EQ(s.cluster.tls_certificate, "/tls/m1.crt");
  EXPECT_EQ(s.cluster.tls_key, "/tls/m1.key");
  EXPECT_EQ(s.cluster.tls_ca, "/tls/ca.crt");
  EXPECT_TRUE(load_from_string(three, {"node.id=m1"}).cluster.tls_ca.empty());
  expect_error(three, {files[0], files[1], files[2]}, "cluster.tls_ca", "together");
  expect_error(three, {files[0], files[2], files[3]}, "cluster.tls_certificate", "together");
  expect_error(three, {files[0], files[1], files[3]}, "cluster.tls_key", "together");
  expect_error("", {files[1], files[2], files[3]}, "cluster.tls_certificate", "cluster.nodes");
}

// Verifies the replication factor's default: 3 copies in a cluster of three or more
// members, 1 with fewer; a factor set explicitly wins, and 0 is no factor.
TEST(ClusterSettingsTest, ReplicationFactorDefaultsToThreeWithThreeMembers) {
  auto members = [](int n) {
    std::string toml = "[cluster]\nsecret = \"0123456789abcdef0123\"\n";
    for (int i = 1; i <= n; ++i)
      toml += "[[cluster.nodes]]\nid = \"m" + std::to_string(i)
              + "\"\nhost = \"127.0.0.1\"\nhttp_port = " + std::to_string(7000 + i)
              + "\nactor_port = " + std::to_string(8000 + i) + "\n";
    return toml;
  };
  EXPECT_EQ(load_from_string(members(3), {"node.id=m1"}).cluster.replication_factor, 3u);
  EXPECT_EQ(load_from_string(members(5), {"node.id=m2"}).cluster.replication_factor, 3u);
  EXPECT_EQ(load_from_string(members(2), {"node.id=m1"}).cluster.replication_factor, 1u);
  EXPECT_EQ(load_from_string("", {}).cluster.replication_factor, 1u);
  EXPECT_EQ(load_from_string(members(3), {"node.id=m1", "cluster.replication_factor=1"})
              .cluster.replication_factor,
            1u);
  EXPECT_EQ(load_from_string(members(5), {"node.id=m1", "cluster.replication_factor=5"})
              .cluster.replication_factor,
            5u);
  expect_error(members(3), {"node.id=m1", "cluster.replication_factor=0"},
               "cluster.replication_factor", "");
  const settings shipped = load(cluster_3_toml, {"node.id=n1"});
  EXPECT_EQ(shipped.cluster.replication_factor, 3u);
}

// Verifies the replication factor: up to the number of members in a cluster, only 1 on
// a single node.
TEST(ClusterSettingsTest, ReplicationFactorFitsTheMembers) {
  auto s = load_from_string(two_nodes, {"node.id=a", "cluster.replication_factor=2"});
  EXPECT_EQ(s.cluster.replication_factor, 2u);
  expect_error("", {"cluster.replication_factor=2"}, "cluster.replication_factor",
               "must be 1 on a single node");
}

// Verifies that a malformed member table names the member and the field.
TEST(ClusterSettingsTest, RejectsMalformedMemberTables) {
  const std::string head = "[cluster]\nsecret = \"0123456789abcdef\"\n";
  expect_error(head + "[[cluster.nodes]]\nid = \"a\"\nhost = \"h\"\nhttp_port = 1\n", {},
               "cluster.nodes[0].actor_port", "missing");
  expect_error(head
                 + "[[cluster.nodes]]\nid = \"a\"\nhost = \"h\"\nhttp_port = 0\nactor_port = 2\n",
               {}, "cluster.nodes[0].http_port", "between 1 and 65535");
  expect_error(head + "[[cluster.nodes]]\nid = 5\n", {}, "cluster.nodes[0].id",
               "expected a string");
  expect_error(head + "[[cluster.nodes]]\nid = \"a\"\nport = 3\n", {}, "cluster.nodes[0].port",
               "unknown key");
  expect_error(head
                 + "[[cluster.nodes]]\nid = \"a/b\"\nhost = \"h\"\nhttp_port = 1\nactor_port = 2\n",
               {}, "cluster.nodes[0].id", "is not a node id");
  expect_error("[cluster]\nnodes = \"a,b\"\n", {}, "cluster.nodes", "array of tables");
  expect_error("", {"cluster.nodes=a"}, "cluster.nodes", "cannot be overridden");
}

} // namespace
