// SPDX-License-Identifier: Apache-2.0
// The real binary on a small tmpfs (needs root, as in CI): a full data volume answers
// writes 503 storage_unavailable with a message that names no file, reads go on,
// /readyz turns 503 (shoal_storage_writable 0), and writes come back by themselves once
// space is freed; a node started on a full volume serves reads read-only and exits 0.
#include <chrono>
#include <csignal>
#include <random>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "tests/support/http_client.hpp"
#include "tests/support/metrics_text.hpp"
#include "tests/support/shoal_process.hpp"
#include "tests/support/small_volume.hpp"
#include "tests/support/temp_dir.hpp"

namespace shoal::test {
namespace {

using namespace std::chrono_literals;

/// A JSON document of about 4 KiB that does not compress.
std::string noisy_doc(int seed) {
  std::mt19937 random(static_cast<unsigned>(seed));
  static constexpr char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string text(4000, 'x');
  for (auto& c : text)
    c = digits[random() % 36];
  return R"({"noise":")" + text + R"("})";
}

class DiskFullTest : public ::testing::Test {
protected:
  void SetUp() override {
    volume_ = std::make_unique<small_volume>(8 * 1024);
    if (!volume_->mounted()) GTEST_SKIP() << "needs root to mount a tmpfs: " << volume_->error();
  }

  std::unique_ptr<shoal_process> start() {
    return start_node(volume_->path() / "data", logs_ / "node.log",
                      {"cluster.shards=4", "storage.write_buffer_bytes=65536"});
  }

  static std::string doc(int i) {
    return "/v1/collections/full/docs/d" + std::to_string(i);
  }

  std::unique_ptr<small_volume> volume_;
  temp_dir logs_{"shoal-disk-full"};
};

// Verifies the whole cycle of a volume that fills up and is then given space.
TEST_F(DiskFullTest, AFullVolumeRefusesWritesKeepsReadsAndRecoversByItself) {
  auto node = start();
  http_client c{node->port()};
  int written = 0;
  std::optional<http_response> refused;
  for (; written < 5000; ++written) {
    auto r = c.put(doc(written), noisy_doc(written));
    if (r.status != 201) {
      refused = r;
      break;
    }
  }
  ASSERT_TRUE(refused) << "the volume never filled";
  ASSERT_GT(written, 0);
  EXPECT_EQ(refused->status, 503u) << refused->body;
  EXPECT_EQ(refused->error_code(), "storage_unavailable") << refused->body;
  EXPECT_TRUE(refused->header("Retry-After"));
  EXPECT_EQ(refused->body.find(volume_->path().string()), std::string::npos) << refused->body;
  EXPECT_EQ(refused->body.find('/'), std::string::npos) << "a path in: " << refused->body;
  // Reads go on; the refused write left nothing.
  EXPECT_EQ(c.get(doc(0)).status, 200u);
  EXPECT_EQ(c.get(doc(written - 1)).status, 200u);
  EXPECT_EQ(c.get(doc(written)).status, 404u);
  auto ready = c.get("/readyz");
  EXPECT_EQ(ready.status, 503u) << ready.body;
  EXPECT_NE(ready.body.find("no space left"), std::string::npos) << ready.body;
  EXPECT_EQ(read_metric(node->port(), "shoal_storage_writable"), 0.0);
  // Space is freed: the node becomes ready and takes writes again by itself.
  ASSERT_TRUE(volume_->resize(128 * 1024));
  unsigned status = 0;
  for (auto deadline = std::chrono::steady_clock::now() + 60s;
       status != 200 && std::chrono::steady_clock::now() < deadline;) {
    status = c.get("/readyz").status;
    if (status != 200) std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(status, 200u) << "the node did not recover once space was freed";
  EXPECT_EQ(read_metric(node->port(), "shoal_storage_writable"), 1.0);
  EXPECT_EQ(c.put(doc(written), noisy_doc(written)).status, 201u);
  EXPECT_EQ(node->stop(SIGTERM), 0) << node->log();
  EXPECT_EQ(node->log().find("Assertion"), std::string::npos) << node->log();
}

// Verifies a node started on a full volume does not abort: it serves every acknowledged
// document, refuses writes with 503 storage_unavailable, reports not ready, and exits 0.
TEST_F(DiskFullTest, ANodeStartedOnAFullVolumeServesReadsReadOnly) {
  {
    auto node = start();
    http_client c{node->port()};
    for (int i = 0; i < 50; ++i)
      ASSERT_EQ(c.put(doc(i), noisy_doc(i)).status, 201u);
    ASSERT_EQ(node->stop(SIGTERM), 0) << node->log();
  }
  volume_->fill();
  auto node = start();
  ASSERT_TRUE(node->running()) << node->log();
  http_client c{node->port()};
  for (int i = 0; i < 50; ++i)
    EXPECT_EQ(c.get(doc(i)).status, 200u) << i;
  auto refused = c.put(doc(50), noisy_doc(50));
  EXPECT_EQ(refused.status, 503u) << refused.body;
  EXPECT_EQ(refused.error_code(), "storage_unavailable") << refused.body;
  EXPECT_EQ(refused.body.find('/'), std::string::npos) << "a path in: " << refused.body;
  auto ready = c.get("/readyz");
  EXPECT_EQ(ready.status, 503u) << ready.body;
  EXPECT_NE(ready.body.find("read-only"), std::string::npos) << ready.body;
  EXPECT_EQ(node->stop(SIGTERM), 0) << node->log();
}

} // namespace
} // namespace shoal::test
