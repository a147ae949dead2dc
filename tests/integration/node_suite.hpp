// SPDX-License-Identifier: Apache-2.0
#pragma once

// A gtest fixture that runs one shoal node per test suite: started in SetUpTestSuite on
// an ephemeral loopback port with a fresh data directory, stopped with SIGTERM (and
// checked to exit 0) in TearDownTestSuite. Tests on one node keep apart by writing to
// a collection named after the test.

#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "tests/support/http_client.hpp"
#include "tests/support/shoal_process.hpp"
#include "tests/support/temp_dir.hpp"

namespace shoal::test {

/// The node of the default configuration.
struct default_node {
  static std::vector<std::string> sets() {
    return {};
  }
};

/// `Config::sets()` lists the `--set` overrides of the suite's node. Each distinct
/// `Config` type has its own node.
template <class Config>
class node_suite : public ::testing::Test {
public:
  static void SetUpTestSuite() {
    start_error_.clear();
    dir_ = std::make_unique<temp_dir>("shoal-it");
    try {
      node_ = start_node(*dir_ / "data", *dir_ / "node.log", Config::sets());
    } catch (const std::exception& e) {
      start_error_ = e.what();
    }
  }

  static void TearDownTestSuite() {
    if (node_) {
      auto status = node_->stop(SIGTERM);
      EXPECT_EQ(status, 0) << "the node did not shut down cleanly; log:\n" << node_->log();
    }
    node_.reset();
    dir_.reset();
  }

protected:
  void SetUp() override {
    ASSERT_TRUE(node_) << start_error_;
    ASSERT_TRUE(node_->running()) << "the node died; log:\n" << node_->log();
    client_ = std::make_unique<http_client>(port());
  }

  void TearDown() override {
    if (HasFailure() && node_) {
      auto log = node_->log();
      constexpr std::size_t tail = 4000;
      if (log.size() > tail) log.erase(0, log.size() - tail);
      std::fprintf(stderr, "--- end of the node log ---\n%s\n", log.c_str());
    }
  }

  static std::uint16_t port() {
    return node_->port();
  }

  static shoal_process& node() {
    return *node_;
  }

  /// The running test's name reduced to a valid collection name.
  static std::string collection() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = info != nullptr ? info->name() : "none";
    std::string out;
    for (char c : name) {
      bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
                || c == '_' || c == '-';
      out += ok ? c : '-';
    }
    return out.substr(0, 64);
  }

  /// Target of document `id` in the test's collection; `id` is used as given (encoded).
  static std::string doc(std::string_view id) {
    return "/v1/collections/" + collection() + "/docs/" + std::string(id);
  }

  /// Asserts that the node still answers /healthz on a new connection.
  static void expect_serving() {
    http_client fresh{port(), 5s};
    auto res = fresh.try_request("GET", "/healthz");
    ASSERT_TRUE(res) << "the node stopped serving; log:\n" << node_->log();
    EXPECT_EQ(res->status, 200u);
  }

  /// Asserts that the node still serves and that `target` holds no document.
  static void expect_serving_and_absent(std::string_view target) {
    expect_serving();
    http_client fresh{port(), 5s};
    auto res = fresh.get(target);
    EXPECT_EQ(res.status, 404u) << "something was written to " << target << ": " << res.body;
  }

  http_client& client() {
    return *client_;
  }

private:
  static inline std::unique_ptr<temp_dir> dir_;
  static inline std::unique_ptr<shoal_process> node_;
  static inline std::string start_error_;
  std::unique_ptr<http_client> client_;
};

} // namespace shoal::test
