// SPDX-License-Identifier: Apache-2.0
#pragma once

// Three network namespaces on a private test subnet, for partition tests (root only):
// each member runs in its own namespace with its own address (10.A.B.1-3/24), joined by
// veth pairs to a bridge in the test's namespace (10.A.B.254), so the test reaches every
// member and the members reach each other over a real network. cut(a, b) puts blackhole
// routes for each other's address in both namespaces, so their packets are dropped
// (TCP sees silence, not a reset, as with a firewall DROP); heal(a, b) removes them.
// Names carry the test's PID; the destructor deletes the namespaces and the bridge, and
// construction first removes what a killed earlier run left behind.

#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace shoal::test {

class test_network {
public:
  /// The addresses of the members of the namespaces this process would create (what the
  /// cluster config must name before the namespaces exist).
  static std::vector<std::string> member_addresses() {
    std::vector<std::string> out;
    for (int k = 1; k <= 3; ++k)
      out.push_back(prefix() + std::to_string(k));
    return out;
  }

  /// Why namespaces cannot be made here (not root, no `ip`, or a container that allows
  /// none: a probe namespace is made and deleted), or "".
  static std::string unavailable() {
    if (::geteuid() != 0) return "needs root (network namespaces)";
    if (ip_binary().empty()) return "needs iproute2's ip (scripts/setup.sh installs it)";
    const auto probe = "shoalq" + tag();
    if (!run(ip() + " netns add " + probe + " 2>/dev/null"))
      return "this machine allows no network namespaces (ip netns add failed)";
    run(ip() + " netns del " + probe + " 2>/dev/null");
    return {};
  }

  static std::string ip_binary() {
    for (const char* p : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"})
      if (std::filesystem::exists(p)) return p;
    return {};
  }

  test_network() {
    remove_stale();
    ok_ = run(ip() + " link add " + bridge() + " type bridge")
          && run(ip() + " addr add " + prefix() + "254/24 dev " + bridge())
          && run(ip() + " link set " + bridge() + " up");
    for (int k = 1; ok_ && k <= 3; ++k) {
      const auto ns = name(k);
      const auto veth = "shv" + tag() + static_cast<char>('a' + k - 1);
      ok_ =
        run(ip() + " netns add " + ns)
        && run(ip() + " link add " + veth + " type veth peer name eth0 netns " + ns)
        && run(ip() + " link set " + veth + " master " + bridge())
        && run(ip() + " link set " + veth + " up")
        && run(ip() + " -n " + ns + " addr add " + prefix() + std::to_string(k) + "/24 dev eth0")
        && run(ip() + " -n " + ns + " link set eth0 up")
        && run(ip() + " -n " + ns + " link set lo up");
    }
  }

  ~test_network() {
    for (int k = 1; k <= 3; ++k)
      run(ip() + " netns del " + name(k) + " 2>/dev/null");
    run(ip() + " link del " + bridge() + " 2>/dev/null");
  }

  test_network(const test_network&) = delete;
  test_network& operator=(const test_network&) = delete;

  /// Whether every namespace, link and address was made.
  bool ok() const noexcept {
    return ok_;
  }

  /// Member k's namespace (1-based), for `ip netns exec`.
  static std::string name(int k) {
    return "shoalp" + tag() + "-n" + std::to_string(k);
  }

  /// Drops everything between members a and b (1-based), both ways.
  bool cut(int a, int b) {
    return run(ip() + " -n " + name(a) + " route add blackhole " + prefix() + std::to_string(b)
               + "/32")
           && run(ip() + " -n " + name(b) + " route add blackhole " + prefix() + std::to_string(a)
                  + "/32");
  }

  bool heal(int a, int b) {
    const bool x =
      run(ip() + " -n " + name(a) + " route del blackhole " + prefix() + std::to_string(b) + "/32");
    const bool y =
      run(ip() + " -n " + name(b) + " route del blackhole " + prefix() + std::to_string(a) + "/32");
    return x && y;
  }

private:
  static std::string tag() {
    return std::to_string(::getpid());
  }
  static std::string bridge() {
    return "shb" + tag();
  }
  /// "10.A.B." from the PID: runs in parallel get different subnets.
  static std::string prefix() {
    const auto pid = static_cast<unsigned>(::getpid());
    return "10." + std::to_string(200 + pid % 50) + "." + std::to_string(pid / 50 % 250) + ".";
  }
  static std::string ip() {
    return ip_binary();
  }

  static bool run(const std::string& command) {
    const int rc = std::system(command.c_str());
    if (rc != 0 && command.find("2>/dev/null") == std::string::npos)
      std::fprintf(stderr, "test_network: `%s` failed (%d)\n", command.c_str(), rc);
    return rc == 0;
  }

  /// Namespaces, bridges and veths of earlier runs whose process is gone.
  static void remove_stale() {
    const auto list = std::filesystem::path("/run/netns");
    std::error_code ec;
    if (std::filesystem::exists(list, ec)) {
      for (const auto& entry : std::filesystem::directory_iterator(list, ec)) {
        const auto n = entry.path().filename().string();
        if (n.rfind("shoalp", 0) != 0) continue;
        const auto pid = std::atoi(n.c_str() + 6);
        if (pid > 0 && ::kill(pid, 0) != 0) run(ip() + " netns del " + n + " 2>/dev/null");
      }
    }
    for (const auto& entry : std::filesystem::directory_iterator("/sys/class/net", ec)) {
      const auto n = entry.path().filename().string();
      if (n.rfind("shb", 0) != 0 && n.rfind("shv", 0) != 0) continue;
      const auto pid = std::atoi(n.c_str() + 3); // a veth's name ends in a letter after it
      if (pid > 0 && ::kill(pid, 0) != 0) run(ip() + " link del " + n + " 2>/dev/null");
    }
  }

  bool ok_ = false;
};

} // namespace shoal::test
