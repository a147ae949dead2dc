// SPDX-License-Identifier: Apache-2.0
// Mutual TLS between members (cluster.tls_*; docs/cluster.md "Encrypted links") on three
// real processes: with TLS, documents cross the links (forwarded writes and reads work)
// and a packet capture of the actor ports finds none of their bytes in clear, while the
// same capture of plain links does (so the capture sees what it should); a member whose
// certificate another CA signed never joins; unusable files stop a member with status 2.
// The capture needs root (CAP_NET_RAW), as in CI; without it those tests skip.
// Certificates come from tests/integration/tls_certs.hpp (the openssl command).
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <unistd.h>

#include "tests/integration/cluster_suite.hpp"
#include "tests/integration/tls_certs.hpp"
#include "tests/support/loopback_capture.hpp"

namespace shoal::test {
namespace {

using namespace std::chrono_literals;

std::string doc_target(std::string_view collection, std::string_view id) {
  return "/v1/collections/" + std::string(collection) + "/docs/" + std::string(id);
}

class ClusterTlsTest : public cluster_suite {
protected:
  ClusterTlsTest() : cluster_suite("shoal-tls", {}) {}

  tls_certs certs_{dir_.path()};

  /// The member's --set options for TLS (tls_certs::sets).
  std::vector<std::string> tls_sets(const std::string& id, const std::string& ca = "ca1",
                                    std::string trusted = {}) const {
    return certs_.sets(id, ca, std::move(trusted));
  }

  bool make_ca(const std::string& ca, const std::vector<std::string>& ids) const {
    return certs_.make(ca, ids);
  }

  std::set<std::uint16_t> actor_ports() const {
    std::set<std::uint16_t> ports;
    for (const auto& m : members_)
      ports.insert(m.actor_port);
    return ports;
  }

  /// Writes documents carrying `marker` through n1 for keys n2 and n3 own, and reads
  /// each back through another member: every byte of them crosses a link.
  void write_across_links(const std::string& marker) {
    for (const auto& owner : {std::string("n2"), std::string("n3")}) {
      for (const auto& d : ids_owned_by(owner, "secrets", "doc", 3)) {
        auto put = client_of("n1").put(doc_target("secrets", d), R"({"card":")" + marker + R"("})",
                                       json_type);
        ASSERT_EQ(put.status, 201u) << d << ": " << put.body;
        auto via = owner == "n2" ? "n3" : "n2";
        auto get = client_of(via).get(doc_target("secrets", d));
        ASSERT_EQ(get.status, 200u) << d << ": " << get.body;
        EXPECT_NE(get.body.find(marker), std::string::npos);
      }
    }
  }

  /// Starts n1..n3 with `sets_of(id)` and waits until all see each other.
  void start_members(const std::function<std::vector<std::string>(const std::string&)>& sets_of) {
    for (const auto& id : all_ids())
      ASSERT_TRUE(start(id, {}, sets_of(id)));
    ASSERT_TRUE(wait_all_up(all_ids())) << "the members did not all come up:\n" << views_text();
    load_owners(view("n1"));
  }
};

// Verifies that with TLS the members serve forwarded writes and reads and that the
// actor ports carry no document byte in clear.
TEST_F(ClusterTlsTest, EncryptedLinksCarryDocumentsButShowNoneOfTheirBytes) {
  ASSERT_TRUE(make_ca("ca1", all_ids()));
  loopback_capture capture{actor_ports()};
  if (!capture.ok()) GTEST_SKIP() << "cannot capture loopback traffic: " << capture.error();
  start_members([&](const std::string& id) { return tls_sets(id); });
  const std::string marker = "4111-1111-1111-1111-tls-marker";
  write_across_links(marker);
  capture.stop();
  EXPECT_GT(capture.segments(), 0u) << "the capture saw no traffic between members";
  EXPECT_EQ(capture.payload().find(marker), std::string::npos)
    << "a document crossed a TLS link in clear";
  EXPECT_EQ(capture.payload().find("secrets"), std::string::npos)
    << "a collection name crossed a TLS link in clear";
}

// Verifies the capture itself: on plain links the same documents are there in clear.
TEST_F(ClusterTlsTest, PlainLinksShowTheSameDocumentsInClear) {
  loopback_capture capture{actor_ports()};
  if (!capture.ok()) GTEST_SKIP() << "cannot capture loopback traffic: " << capture.error();
  start_members([](const std::string&) { return std::vector<std::string>{}; });
  const std::string marker = "4111-1111-1111-1111-plain-marker";
  write_across_links(marker);
  capture.stop();
  EXPECT_NE(capture.payload().find(marker), std::string::npos)
    << "the capture missed what plain links carry (" << capture.segments() << " segments)";
}

// Verifies that a member whose certificate another CA signed never completes a link:
// the others see it down for a failed connection and keep serving their own shards.
TEST_F(ClusterTlsTest, AMemberWithACertificateFromAnotherCaStaysOut) {
  ASSERT_TRUE(make_ca("ca1", {"n1", "n2"}));
  ASSERT_TRUE(make_ca("ca2", {"n3"}));
  ASSERT_TRUE(start("n1", {}, tls_sets("n1")));
  ASSERT_TRUE(start("n2", {}, tls_sets("n2")));
  // n3's files are consistent (its certificate and CA are another cluster's), so it
  // starts; its peers and it refuse each other's certificates.
  ASSERT_TRUE(start("n3", {}, tls_sets("n3", "ca2")));
  ASSERT_TRUE(wait_all_up({"n1", "n2"})) << views_text();
  // Each good member has reached n3's port and failed in the TLS handshake (an
  // observable reason, unlike "ip_connect failed" before n3 listened), not merely not
  // tried yet.
  for (const auto& g : {std::string("n1"), std::string("n2")}) {
    const auto refused_tls = [&] {
      auto v = view(g);
      const auto* e = entry(v, "n3");
      return e && e->contains("reason") && e->at("state").as_string() != "up"
             && contains(json::serialize(e->at("reason")), "disconnect_during_handshake");
    };
    ASSERT_TRUE(eventually(settle_timeout, refused_tls))
      << g << " never reported a refused TLS handshake with n3:\n"
      << views_text();
  }
  EXPECT_NE(state_seen("n1", "n3"), "up");
  EXPECT_NE(state_seen("n3", "n1"), "up");
  // The two good members still serve each other's shards over their TLS link.
  load_owners(view("n1"));
  for (const auto& d : ids_owned_by("n2", "stay", "doc", 2)) {
    auto put = client_of("n1").put(doc_target("stay", d), R"({"x":1})", json_type);
    EXPECT_EQ(put.status, 201u) << put.body;
  }
}

// Verifies that files a member cannot use stop it with status 2 naming the setting.
TEST_F(ClusterTlsTest, UnusableFilesStopTheMemberWith2) {
  ASSERT_TRUE(make_ca("ca1", {"n1", "n2"}));
  ASSERT_TRUE(make_ca("ca2", {"n1"}));
  auto run = [&](const std::vector<std::string>& sets) {
    process_options opts;
    opts.args = {"serve", "--config", config_.string(), "--set", "node.id=n1"};
    for (const auto& s : sets) {
      opts.args.push_back("--set");
      opts.args.push_back(s);
    }
    opts.log_file = dir_ / "refused.log";
    opts.stderr_file = dir_ / "refused.err";
    shoal_process p{std::move(opts)};
    auto status = p.wait_exit(15s);
    return std::make_pair(status, p.stderr_text());
  };
  // The key of another member: it does not belong to the certificate.
  auto sets = tls_sets("n1");
  sets[1] = "cluster.tls_key=" + (dir_ / "ca1-n2.key").string();
  auto [status, err] = run(sets);
  EXPECT_EQ(status, 2);
  EXPECT_TRUE(contains(err, "cluster.tls_key: does not belong")) << err;
  // A certificate the configured CA did not sign.
  std::tie(status, err) = run(tls_sets("n1", "ca2", "ca1"));
  EXPECT_EQ(status, 2);
  EXPECT_TRUE(contains(err, "cluster.tls_certificate: not signed by cluster.tls_ca")) << err;
  // A CA file that is not one.
  sets = tls_sets("n1");
  sets[2] = "cluster.tls_ca=" + (dir_ / "ca1.key").string();
  std::tie(status, err) = run(sets);
  EXPECT_EQ(status, 2);
  EXPECT_TRUE(contains(err, "cluster.tls_ca")) << err;
  // Two of the three settings.
  sets = tls_sets("n1");
  sets.pop_back();
  std::tie(status, err) = run(sets);
  EXPECT_EQ(status, 2);
  EXPECT_TRUE(contains(err, "cluster.tls_ca")) << err;
  EXPECT_FALSE(fs::exists(dir_ / "data-n1")) << "a refused member opened its store";
}

} // namespace
} // namespace shoal::test
