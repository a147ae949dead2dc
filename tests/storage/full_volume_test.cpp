// SPDX-License-Identifier: Apache-2.0
// The RocksDB store on a full volume (a small tmpfs; needs root, as in CI): writes fail
// with a message that names no file, reads go on, writes resume by themselves once space
// is freed, and a store on a volume already full opens read-only instead of aborting
// (Debian's librocksdb asserts when its LOG file in the data directory hits ENOSPC).
#include <chrono>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "storage/store.hpp"
#include "tests/storage/storage_test_util.hpp"
#include "tests/support/small_volume.hpp"

namespace shoal::storage {
namespace {

using namespace std::chrono_literals;

class FullVolumeTest : public ::testing::Test {
protected:
  void SetUp() override {
    volume_ = std::make_unique<shoal::test::small_volume>(4096);
    if (!volume_->mounted()) GTEST_SKIP() << "needs root to mount a tmpfs: " << volume_->error();
  }

  rocksdb_options options() {
    rocksdb_options o;
    o.path = (volume_->path() / "data").string();
    o.shards = 2;
    o.block_cache_bytes = 1u << 20;
    o.write_buffer_bytes = 64u << 10;
    o.log = [this](engine_log_level, std::string_view text) {
      std::lock_guard<std::mutex> guard{log_mutex_};
      log_.emplace_back(text);
    };
    return o;
  }

  std::unique_ptr<store> open() {
    auto opened = open_rocksdb_store(options());
    EXPECT_TRUE(test::is_ok("open_rocksdb_store", opened));
    return opened ? std::move(opened).value() : nullptr;
  }

  static result<void> put(shard_store& s, const std::string& key, const std::string& value) {
    write_batch batch;
    batch.put(key, value);
    return s.write(batch, false);
  }

  /// 4 KiB that do not compress (the engine compresses its files).
  static std::string noise(int seed) {
    std::mt19937 random(static_cast<unsigned>(seed));
    std::string out(4096, '\0');
    for (auto& c : out)
      c = static_cast<char>(random());
    return out;
  }

  /// Puts noise(i) at "k<i>" until a write fails; the number written (at most `limit`).
  static int fill_with_writes(shard_store& s, result<void>& failure, int limit = 10'000) {
    for (int i = 0; i < limit; ++i) {
      failure = put(s, "k" + std::to_string(i), noise(i));
      if (!failure) return i;
    }
    return limit;
  }

  /// The value of `key`, "<code>" when the read fails.
  static std::string read(shard_store& s, const std::string& key) {
    auto r = s.get(key);
    if (!r) return std::string("<") + core::to_string(r.error().code()) + ">";
    return *r;
  }

  /// The engine's messages so far.
  std::vector<std::string> log() {
    std::lock_guard<std::mutex> guard{log_mutex_};
    return log_;
  }

  std::unique_ptr<shoal::test::small_volume> volume_;
  std::mutex log_mutex_;
  std::vector<std::string> log_;
};

// Verifies a volume filling up stops writes with storage_failed and a message naming no
// file, reports why through write_problem(), keeps every written key readable, and lets
// writes resume by themselves once space is freed.
TEST_F(FullVolumeTest, WritesStopWithoutAPathAndResumeOnceSpaceIsFreed) {
  auto s = open();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->write_problem(), "");
  auto& shard = s->shard(0);
  result<void> failure = core::ok();
  const int written = fill_with_writes(shard, failure);
  ASSERT_LT(written, 10'000) << "the volume never filled";
  ASSERT_GT(written, 0);
  EXPECT_EQ(test::code_of(failure), errc::storage_failed);
  EXPECT_EQ(test::message_of(failure), "no space left on the data volume") << [&] {
    std::string all;
    for (const auto& line : log())
      all += line + "\n";
    return all;
  }();
  EXPECT_EQ(test::message_of(failure).find(volume_->path().string()), std::string::npos);
  EXPECT_NE(s->write_problem().find("no space left"), std::string::npos) << s->write_problem();
  // Reads go on.
  EXPECT_EQ(read(shard, "k0"), noise(0));
  EXPECT_EQ(read(shard, "k" + std::to_string(written - 1)), noise(written - 1));
  // Space is freed: the engine recovers on its own (it checks every few seconds).
  ASSERT_TRUE(volume_->resize(64 * 1024));
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (!s->write_problem().empty() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(50ms);
  EXPECT_EQ(s->write_problem(), "") << "writes did not resume";
  EXPECT_TRUE(test::is_ok("put after recovery", put(shard, "after", "x")));
  EXPECT_EQ(read(shard, "after"), "x");
  EXPECT_TRUE(test::is_ok("close", s->close()));
  bool stopped = false;
  for (const auto& line : log())
    stopped = stopped || line.find("stopped writing") != std::string::npos;
  EXPECT_TRUE(stopped) << "the engine's error was not logged";
}

// Verifies a store on a volume that is already full opens read-only (no abort): every
// key is readable, writes fail with "the store is read-only", write_problem() says so,
// and it closes cleanly.
TEST_F(FullVolumeTest, AStoreOnAFullVolumeOpensReadOnly) {
  {
    auto s = open();
    ASSERT_TRUE(s);
    for (int i = 0; i < 100; ++i)
      ASSERT_TRUE(test::is_ok("put", put(s->shard(i % 2), "k" + std::to_string(i), "v")));
    ASSERT_TRUE(test::is_ok("close", s->close()));
  }
  volume_->fill();
  ASSERT_LT(volume_->free_bytes(), 4096u);
  auto s = open();
  ASSERT_TRUE(s);
  EXPECT_NE(s->write_problem().find("read-only"), std::string::npos) << s->write_problem();
  for (int i = 0; i < 100; ++i)
    EXPECT_EQ(read(s->shard(i % 2), "k" + std::to_string(i)), "v") << i;
  auto refused = put(s->shard(0), "new", "v");
  EXPECT_EQ(test::code_of(refused), errc::storage_failed);
  EXPECT_EQ(test::message_of(refused), "the store is read-only");
  EXPECT_EQ(test::code_of(s->shard(0).get("new")), errc::not_found);
  EXPECT_TRUE(test::is_ok("close", s->close()));
}

} // namespace
} // namespace shoal::storage
