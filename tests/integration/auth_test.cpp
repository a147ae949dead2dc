// SPDX-License-Identifier: Apache-2.0
// Bearer tokens on the real binary (docs/api.md "Authentication"): a node started with
// auth.tokens_file answers 401/403 as JSON before any data is touched, lets each scope do
// its part, keeps the probes open; a tokens file it cannot use stops it with status 2.
#include <chrono>
#include <csignal>
#include <fstream>
#include <memory>
#include <string>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "tests/support/http_client.hpp"
#include "tests/support/shoal_process.hpp"
#include "tests/support/temp_dir.hpp"

namespace shoal::test {
namespace {

using namespace std::chrono_literals;

std::string code_of(const http_response& res) {
  auto v = boost::json::parse(res.body);
  return std::string(v.at("error").at("code").as_string());
}

header_list bearer(const std::string& token) {
  return {{"Authorization", "Bearer " + token}};
}

class AuthTest : public ::testing::Test {
protected:
  std::filesystem::path write_tokens(const std::string& text) {
    auto file = dir_ / "tokens";
    std::ofstream(file) << text;
    return file;
  }

  temp_dir dir_{"shoal-auth"};
};

// Verifies each scope against the routes it guards, on a running node.
TEST_F(AuthTest, ANodeWithTokensRefusesWhatATokenMayNotDo) {
  // "prom-token" is given by its SHA-256 (printf %s prom-token | sha256sum).
  auto tokens =
    write_tokens("# test tokens\n"
                 "app-token data the app\n"
                 "ops-token admin,data ops\n"
                 "sha256:bf251d4f388936e45e546a258ff863e9b1acc75f0d91c589651df4a70b9e1ccf"
                 " metrics prometheus\n");
  auto node = start_node(dir_ / "data", dir_ / "node.log", {"auth.tokens_file=" + tokens.string()});
  http_client c{node->port()};
  const std::string doc = "/v1/collections/guarded/docs/a";

  // The probes stay open, so a load balancer needs no token.
  EXPECT_EQ(c.get("/healthz").status, 200u);
  EXPECT_EQ(c.get("/readyz").status, 200u);

  // No token, or a wrong one: 401 as JSON with a challenge, and nothing written.
  auto none = c.put(doc, R"({"n":1})");
  EXPECT_EQ(none.status, 401u);
  EXPECT_EQ(code_of(none), "unauthorized");
  EXPECT_EQ(none.header("WWW-Authenticate").value_or(""), R"(Bearer realm="shoal")");
  auto wrong = c.put(doc, R"({"n":1})", bearer("app-tokenX"));
  EXPECT_EQ(wrong.status, 401u);
  EXPECT_EQ(code_of(wrong), "invalid_token");
  EXPECT_EQ(c.get(doc, bearer("app-token")).status, 404u) << "a refused write was applied";

  // The data scope reads and writes data.
  EXPECT_EQ(c.put(doc, R"({"n":1})", bearer("app-token")).status, 201u);
  EXPECT_EQ(c.get(doc, bearer("app-token")).status, 200u);
  EXPECT_EQ(c.get(doc).status, 401u) << "a read without a token was answered";

  // Index changes are admin's: 403 naming the scope for the data token.
  auto forbidden = c.put("/v1/collections/guarded/indexes/n", "", bearer("app-token"));
  EXPECT_EQ(forbidden.status, 403u);
  EXPECT_EQ(code_of(forbidden), "insufficient_scope");
  EXPECT_EQ(c.get("/v1/collections/guarded/indexes", bearer("app-token")).body.find("\"n\""),
            std::string::npos)
    << "a forbidden index change was applied";
  auto created = c.put("/v1/collections/guarded/indexes/n", "", bearer("ops-token"));
  EXPECT_EQ(created.status, 201u) << created.body;

  // Monitoring: the metrics token reads /metrics and the cluster view, and nothing else.
  EXPECT_EQ(c.get("/metrics").status, 401u);
  EXPECT_EQ(c.get("/metrics", bearer("app-token")).status, 403u);
  EXPECT_EQ(c.get("/metrics", bearer("prom-token")).status, 200u);
  EXPECT_EQ(c.get("/v1/cluster", bearer("prom-token")).status, 200u);
  EXPECT_EQ(c.get(doc, bearer("prom-token")).status, 403u);

  EXPECT_EQ(node->stop(SIGTERM), 0) << node->log();
  EXPECT_EQ(node->log().find("app-token"), std::string::npos) << "the log shows a token";
}

class AuthConfigTest : public AuthTest {
protected:
  /// Starts shoal with `tokens_file` and returns its exit status.
  int run(const std::string& tokens_file) {
    process_options opts;
    opts.args = serve_args(dir_ / "data", {"auth.tokens_file=" + tokens_file});
    opts.log_file = dir_ / "stdout.log";
    opts.stderr_file = dir_ / "stderr.log";
    process_ = std::make_unique<shoal_process>(std::move(opts));
    return process_->wait_exit(15s);
  }

  /// Checks that the refusal was said as a configuration error and opened nothing.
  void expect_refused(const std::string& says) {
    auto err = process_->stderr_text();
    EXPECT_NE(err.find("shoal: configuration error: auth.tokens_file: "), std::string::npos) << err;
    EXPECT_NE(err.find(says), std::string::npos) << err;
    EXPECT_FALSE(std::filesystem::exists(dir_ / "data")) << "the store was opened";
  }

  std::unique_ptr<shoal_process> process_;
};

// Verifies a tokens file that cannot be used stops the node before it opens anything.
TEST_F(AuthConfigTest, AnUnusableTokensFileExitsWith2) {
  EXPECT_EQ(run((dir_ / "missing").string()), 2);
  expect_refused("cannot read");

  EXPECT_EQ(run(write_tokens("# nothing but a comment\n").string()), 2);
  expect_refused("lists no token");

  EXPECT_EQ(run(write_tokens("s3cret-value data\ns3cret-value2 root\n").string()), 2);
  expect_refused("line 2: unknown scope \"root\"");
  EXPECT_EQ(process_->stderr_text().find("s3cret"), std::string::npos) << "the error shows a token";
}

} // namespace
} // namespace shoal::test
