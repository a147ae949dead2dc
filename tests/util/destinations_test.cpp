// SPDX-License-Identifier: Apache-2.0
// The destination policy of outgoing webhooks: which addresses are refused by default,
// and what an allowlist opens.
#include "util/destinations.hpp"

#include <arpa/inet.h>

#include <string>

#include <gtest/gtest.h>

namespace shoal::util {
namespace {

destination_policy::address ip(const std::string& text) {
  destination_policy::address a;
  if (inet_pton(AF_INET, text.c_str(), a.bytes.data()) == 1) return a;
  EXPECT_EQ(inet_pton(AF_INET6, text.c_str(), a.bytes.data()), 1) << text;
  a.v6 = true;
  return a;
}

// Verifies the default refuses loopback, private, link-local (the cloud metadata
// address), shared, unspecified, multicast and reserved addresses, in IPv4, IPv6 and
// IPv4-mapped IPv6, and lets public ones through.
TEST(DestinationPolicyTest, TheDefaultRefusesEveryNonPublicRange) {
  const destination_policy p;
  for (const char* refused :
       {"127.0.0.1", "127.255.0.9", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1",
        "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1", "255.255.255.255", "::1", "::",
        "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
        "::ffff:169.254.169.254"})
    EXPECT_TRUE(p.refusal(ip(refused))) << refused;
  for (const char* allowed :
       {"8.8.8.8", "1.1.1.1", "172.32.0.1", "172.15.255.255", "100.128.0.1", "192.169.0.1",
        "2001:4860:4860::8888", "::ffff:8.8.8.8"})
    EXPECT_FALSE(p.refusal(ip(allowed))) << allowed << ": " << p.refusal(ip(allowed)).value_or("");
  EXPECT_EQ(p.refusal(ip("169.254.169.254")).value_or(""), "link-local (cloud metadata)");
  EXPECT_EQ(p.refusal(ip("127.0.0.1")).value_or(""), "loopback");
}

// Verifies an allowlist opens exactly its blocks, bare addresses are single hosts, and
// IPv4 blocks also open IPv4-mapped addresses.
TEST(DestinationPolicyTest, AnAllowlistOpensExactlyItsBlocks) {
  std::string why;
  auto p = destination_policy::with_allowed(" 127.0.0.1, 10.1.0.0/16 ,fd00::/8", &why);
  ASSERT_TRUE(p) << why;
  EXPECT_FALSE(p->refusal(ip("127.0.0.1")));
  EXPECT_TRUE(p->refusal(ip("127.0.0.2")));
  EXPECT_FALSE(p->refusal(ip("10.1.255.255")));
  EXPECT_TRUE(p->refusal(ip("10.2.0.0")));
  EXPECT_FALSE(p->refusal(ip("fd00::5")));
  EXPECT_TRUE(p->refusal(ip("fc00::5")));
  EXPECT_FALSE(p->refusal(ip("::ffff:127.0.0.1")));
  EXPECT_TRUE(p->refusal(ip("::1")));
}

// Verifies malformed allowlists are refused with the entry named.
TEST(DestinationPolicyTest, MalformedEntriesAreRefused) {
  for (const char* bad : {"localhost", "10.0.0.0/33", "::1/129", "10.0.0.0/", "10.0.0.0/x",
                          "1.2.3", "10.0.0.0/8,nope"}) {
    std::string why;
    EXPECT_FALSE(destination_policy::with_allowed(bad, &why)) << bad;
    EXPECT_FALSE(why.empty()) << bad;
  }
  EXPECT_TRUE(destination_policy::with_allowed("", nullptr));
}

} // namespace
} // namespace shoal::util
