// SPDX-License-Identifier: Apache-2.0
// Snapshots without a copy (docs/replication.md "Snapshots"): the frames and tokens keep
// their bytes and refuse damage; an image is read from one consistent view in pieces;
// a staged image replaces a shard's keyspace, also when an install was cut short; and
// two transfers over a hand-driven wire move an image whole, resend what was lost,
// refuse one that does not match its checksum, and keep at most a window in flight.
#include "replication/snapshot_stream.hpp"
#include "replication/snapshot_transfer.hpp"

#include <gtest/gtest.h>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "replication/bytes.hpp"
#include "replication/entry.hpp"
#include "replication/state_machine.hpp"
#include "tests/replication/shard_contents.hpp"
#include "tests/storage/storage_test_util.hpp"
#include "tests/support/faulty_store.hpp"

namespace shoal::replication {
namespace {

using storage::write_batch;
using storage::test::temp_dir;
using test::shard_contents;

std::unique_ptr<storage::store> open_store(const std::string& dir) {
  return test::open_one_shard_store(dir);
}

/// Fills `shard` with `n` keys (and an applied index): a shard that applied `applied`.
std::map<std::string, std::string> fill(storage::shard_store& shard, int n, std::uint64_t applied,
                                        const std::string& tag = "v") {
  write_batch b;
  std::map<std::string, std::string> want;
  for (int i = 0; i < n; ++i) {
    auto k = "d.key" + std::to_string(1000 + i);
    auto v = tag + std::to_string(i) + std::string(40, 'x');
    b.put(k, v);
    want[k] = v;
  }
  b.put(std::string(applied_key), encode_applied(applied));
  EXPECT_TRUE(shard.write(b, false).ok());
  return want;
}

/// The keys and values a run of records holds, in order.
std::vector<std::pair<std::string, std::string>> records_of(std::string_view records) {
  std::vector<std::pair<std::string, std::string>> out;
  bytes::reader in(records);
  while (!in.done()) {
    std::string k;
    std::string v;
    EXPECT_TRUE(in.sized(k) && in.sized(v));
    if (k.empty()) break;
    out.emplace_back(k, v);
  }
  return out;
}

// --- frames and tokens ------------------------------------------------------------------

TEST(SnapshotStreamTest, FramesAndTokensRoundTripAndDamageIsRefused) {
  snapshot_chunk c;
  c.stream = 77;
  c.seq = 3;
  c.from = 2;
  c.from_address = "n2";
  c.records = "some records";
  c.last = true;
  c.applied_index = 41;
  c.keys = 9;
  c.bytes = 12;
  c.checksum = 0xfeedfacecafebeefULL;
  c.install = std::string("\x01install\0message", 16);
  const auto bytes = encode_chunk(c);
  EXPECT_TRUE(is_stream_frame(bytes));
  EXPECT_FALSE(is_ack_frame(bytes));
  auto d = decode_chunk(bytes);
  ASSERT_TRUE(d.ok()) << d.error().to_string();
  EXPECT_EQ(d->stream, 77u);
  EXPECT_EQ(d->seq, 3u);
  EXPECT_EQ(d->from, 2u);
  EXPECT_EQ(d->from_address, "n2");
  EXPECT_EQ(d->records, "some records");
  EXPECT_TRUE(d->last);
  EXPECT_EQ(d->applied_index, 41u);
  EXPECT_EQ(d->keys, 9u);
  EXPECT_EQ(d->bytes, 12u);
  EXPECT_EQ(d->checksum, c.checksum);
  EXPECT_EQ(d->install, c.install);
  for (std::size_t cut = 0; cut < bytes.size(); ++cut)
    EXPECT_FALSE(decode_chunk(bytes.substr(0, cut)).ok()) << "cut at " << cut;
  EXPECT_FALSE(decode_chunk(bytes + "x").ok());

  const auto ack = encode_ack({77, 3, 1, "n1"});
  EXPECT_TRUE(is_stream_frame(ack));
  EXPECT_TRUE(is_ack_frame(ack));
  auto a = decode_ack(ack);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->stream, 77u);
  EXPECT_EQ(a->seq, 3u);
  EXPECT_EQ(a->from_address, "n1");
  EXPECT_FALSE(decode_ack(ack.substr(0, ack.size() - 1)).ok());
  EXPECT_FALSE(is_stream_frame(std::string("\x01", 1))) << "libraft's messages start with 1";

  const auto token = encode_token({snapshot_token::kind::staged, 1234});
  EXPECT_EQ(token.size(), 9u);
  auto t = decode_token(token);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->what, snapshot_token::kind::staged);
  EXPECT_EQ(t->applied_index, 1234u);
  EXPECT_EQ(decode_token(encode_token({snapshot_token::kind::local, 5}))->what,
            snapshot_token::kind::local);
  snapshot_image image;
  image.applied_index = 5;
  EXPECT_FALSE(decode_token(encode_snapshot(image)).has_value()) << "an old full image";
}

// --- the image and the stage ------------------------------------------------------------

class SnapshotStageTest : public test::one_shard_test {
protected:
  /// Everything in the raft-log keyspace under the stage's prefix.
  int staged_keys() {
    int n = 0;
    EXPECT_TRUE(store_->raft_log()
                  .scan_prefix("S",
                               [&](std::string_view, std::string_view) {
                                 ++n;
                                 return true;
                               })
                  .ok());
    return n;
  }
};

TEST_F(SnapshotStageTest, AnImageIsReadInPiecesFromOneViewWithoutItsAppliedIndex) {
  const auto want = fill(shard(), 60, 17);
  image_reader reader(shard(), applied_key);
  write_batch later;
  later.put("d.key0000", "written after the view");
  later.del("d.key1000");
  ASSERT_TRUE(shard().write(later, false).ok());
  auto applied = reader.applied_index();
  ASSERT_TRUE(applied.ok());
  EXPECT_EQ(*applied, 17u);
  std::map<std::string, std::string> got;
  int pieces = 0;
  while (!reader.done()) {
    auto piece = reader.next(300);
    ASSERT_TRUE(piece.ok());
    EXPECT_LT(piece->size(), 300u + 100u) << "a piece is about the size asked for";
    for (auto& [k, v] : records_of(*piece)) {
      EXPECT_TRUE(got.emplace(k, v).second) << "read twice: " << k;
    }
    ++pieces;
  }
  EXPECT_GT(pieces, 5);
  EXPECT_EQ(got, want) << "the view's keys, no later write, no applied index";
  EXPECT_EQ(reader.keys(), 60u);
  auto after = reader.next(300);
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->empty());
}

TEST_F(SnapshotStageTest, AnInstallReplacesTheKeyspaceAndClearsTheStage) {
  temp_dir source_dir;
  auto source = open_store(source_dir.path());
  ASSERT_NE(source, nullptr);
  auto want = fill(source->shard(0), 40, 90, "new");
  fill(shard(), 70, 12, "old"); // more keys than the image: the extra ones must go
  snapshot_stage stage(store_->raft_log(), 0);
  image_reader reader(source->shard(0), applied_key);
  while (!reader.done()) {
    auto piece = reader.next(500);
    ASSERT_TRUE(piece.ok());
    auto added = stage.add(*piece);
    ASSERT_TRUE(added.ok()) << added.error().to_string();
  }
  auto none = stage.sealed();
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value()) << "not whole until sealed";
  EXPECT_FALSE(stage.install_into(shard(), applied_key).ok()) << "nothing sealed";
  EXPECT_EQ(shard_contents(shard()).size(), 71u) << "a refused install changes nothing";
  ASSERT_TRUE(stage.seal(90).ok());
  auto copied = stage.install_into(shard(), applied_key, 1000);
  ASSERT_TRUE(copied.ok()) << copied.error().to_string();
  EXPECT_GT(*copied, 40u * 40u);
  want[std::string(applied_key)] = encode_applied(90);
  EXPECT_EQ(shard_contents(shard()), want);
  EXPECT_EQ(staged_keys(), 0);
  EXPECT_EQ(*read_applied(shard()), 90u);
}

TEST_F(SnapshotStageTest, DamagedRecordsAreRefusedAndStageNothing) {
  snapshot_stage stage(store_->raft_log(), 0);
  std::string records;
  bytes::put_sized(records, "d.a");
  bytes::put_sized(records, "1");
  EXPECT_FALSE(stage.add(records.substr(0, records.size() - 1)).ok());
  std::string empty_key;
  bytes::put_sized(empty_key, "");
  bytes::put_sized(empty_key, "1");
  EXPECT_FALSE(stage.add(empty_key).ok());
  EXPECT_EQ(staged_keys(), 0);
}

// A crash half-way through an install: the old keyspace is gone and only part of the
// image is in. The stage is still sealed, the shard's applied index reads 0, and the
// restore libraft runs on the next start (its stored snapshot is the staged token)
// installs again, whole.
TEST_F(SnapshotStageTest, AnInstallCutShortRunsAgainOnTheNextRestore) {
  temp_dir source_dir;
  auto source = open_store(source_dir.path());
  ASSERT_NE(source, nullptr);
  auto want = fill(source->shard(0), 80, 55, "new");
  fill(shard(), 30, 9, "old");
  snapshot_stage stage(store_->raft_log(), 0);
  image_reader reader(source->shard(0), applied_key);
  while (!reader.done()) {
    auto piece = reader.next(400);
    ASSERT_TRUE(piece.ok());
    ASSERT_TRUE(stage.add(*piece).ok());
  }
  ASSERT_TRUE(stage.seal(55).ok());
  testing::faulty_store faulty(*store_);
  int writes = 0;
  faulty.fail_write_if = [&](const write_batch&) { return ++writes > 3; }; // the "crash"
  EXPECT_FALSE(stage.install_into(faulty.shard(0), applied_key, 500).ok());
  const auto partial = shard_contents(shard());
  EXPECT_FALSE(partial.empty());
  EXPECT_LT(partial.size(), want.size()) << "cut short";
  EXPECT_EQ(partial.count(std::string(applied_key)), 0u);

  // "Restart": a machine over the same shard and stage, restoring the stored token.
  snapshot_stage reopened(store_->raft_log(), 0);
  state_machine sm(shard(), false, &reopened);
  EXPECT_EQ(sm.applied(), 0u);
  ASSERT_TRUE(sm.restore(encode_token({snapshot_token::kind::staged, 55})).ok()) << sm.last_error();
  EXPECT_EQ(sm.applied(), 55u);
  want[std::string(applied_key)] = encode_applied(55);
  EXPECT_EQ(shard_contents(shard()), want);
  EXPECT_EQ(staged_keys(), 0);
  // And once more (libraft restores it on every start): the shard has it, nothing moves.
  ASSERT_TRUE(sm.restore(encode_token({snapshot_token::kind::staged, 55})).ok());
  EXPECT_EQ(shard_contents(shard()), want);
}

TEST_F(SnapshotStageTest, WithAStageSnapshotsAreTokensAndALocalTokenRestoresNothing) {
  fill(shard(), 200, 30);
  snapshot_stage stage(store_->raft_log(), 0);
  state_machine sm(shard(), false, &stage);
  auto snap = sm.snapshot(31);
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ(snap->size(), 9u) << "a token, not a copy of 200 documents";
  auto token = decode_token(*snap);
  ASSERT_TRUE(token.has_value());
  EXPECT_EQ(token->what, snapshot_token::kind::local);
  EXPECT_EQ(token->applied_index, 31u);
  const auto before = shard_contents(shard());
  ASSERT_TRUE(sm.restore(*snap).ok());
  EXPECT_EQ(shard_contents(shard()), before);
  // A staged token past the shard with nothing staged is damage, not silence.
  EXPECT_FALSE(sm.restore(encode_token({snapshot_token::kind::staged, 99})).ok());
  EXPECT_EQ(shard_contents(shard()), before);
  // Without a stage (libraft's fixture), a snapshot is the keyspace.
  state_machine plain(shard(), false);
  auto image = plain.snapshot(31);
  ASSERT_TRUE(image.ok());
  EXPECT_GT(image->size(), 200u * 40u);
}

// --- two transfers over a hand-driven wire ----------------------------------------------

class SnapshotTransferTest : public ::testing::Test {
protected:
  struct side {
    temp_dir dir;
    std::unique_ptr<storage::store> store;
    std::unique_ptr<snapshot_stage> stage;
    std::unique_ptr<snapshot_transfer> transfer;
    std::vector<std::function<void()>> posted;
    std::vector<std::function<void(core::result<void>)>> syncs;
    std::vector<std::pair<std::string, std::uint64_t>> installs;
  };

  void SetUp() override {
    for (std::uint64_t id = 1; id <= 2; ++id) {
      auto& s = sides_[id];
      s = std::make_unique<side>();
      s->store = open_store(s->dir.path());
      ASSERT_NE(s->store, nullptr);
    }
  }

  void start(transfer_options opt) {
    for (std::uint64_t id = 1; id <= 2; ++id) {
      auto* s = sides_[id].get();
      s->stage = std::make_unique<snapshot_stage>(s->store->raft_log(), 0);
      transfer_host h;
      h.now_ms = [this] { return now_; };
      h.send = [this, id](std::uint64_t to, const std::string&, std::string bytes) {
        wire_.emplace_back(id, to, std::move(bytes));
      };
      h.post = [s](std::function<void()> fn) { s->posted.push_back(std::move(fn)); };
      h.after_sync = [s](std::function<void(core::result<void>)> done) {
        s->syncs.push_back(std::move(done));
      };
      h.install = [s](std::string_view install, std::uint64_t applied) {
        s->installs.emplace_back(std::string(install), applied);
      };
      s->transfer =
        std::make_unique<snapshot_transfer>(s->store->shard(0), *s->stage, std::move(h), opt, id);
      s->transfer->identify(id, "n" + std::to_string(id));
    }
  }

  /// Runs what is posted, synced and on the wire until nothing is left; `filter` may
  /// drop or change a frame in transit (return false to drop it).
  void settle(const std::function<bool(std::string&)>& filter = {}) {
    for (int round = 0; round < 100000; ++round) {
      bool any = false;
      for (auto& [id, s] : sides_) {
        auto posted = std::move(s->posted);
        s->posted.clear();
        for (auto& fn : posted)
          fn();
        auto syncs = std::move(s->syncs);
        s->syncs.clear();
        for (auto& fn : syncs)
          fn(core::ok());
        any = any || !posted.empty() || !syncs.empty();
      }
      if (!wire_.empty()) {
        auto [from, to, bytes] = std::move(wire_.front());
        wire_.pop_front();
        any = true;
        if (!filter || filter(bytes)) sides_.at(to)->transfer->deliver(bytes);
      }
      if (!any) return;
    }
    FAIL() << "the transfer never settled";
  }

  side& leader() {
    return *sides_.at(1);
  }
  side& follower() {
    return *sides_.at(2);
  }

  std::map<std::uint64_t, std::unique_ptr<side>> sides_;
  std::deque<std::tuple<std::uint64_t, std::uint64_t, std::string>> wire_;
  std::uint64_t now_ = 1000;
};

TEST_F(SnapshotTransferTest, AnImageArrivesWholeAndOnlyThenIsHandedToLibraft) {
  start({512, 2, 2000, 30000});
  auto want = fill(leader().store->shard(0), 120, 64);
  leader().transfer->send(2, "n2", 60, "the install message");
  // Before any ack: two chunks at most.
  for (auto& fn : std::exchange(leader().posted, {}))
    fn();
  EXPECT_EQ(wire_.size(), 2u) << "the window";
  EXPECT_TRUE(leader().posted.empty()) << "nothing more until an ack";
  settle();
  ASSERT_EQ(follower().installs.size(), 1u);
  EXPECT_EQ(follower().installs[0].first, "the install message");
  EXPECT_EQ(follower().installs[0].second, 64u);
  EXPECT_GT(leader().transfer->stats().chunks_sent, 8u);
  EXPECT_EQ(leader().transfer->stats().streams_finished, 1u);
  EXPECT_EQ(follower().transfer->stats().images_staged, 1u);
  EXPECT_TRUE(follower().stage->handed_over);
  auto sealed = follower().stage->sealed();
  ASSERT_TRUE(sealed.ok() && sealed->has_value());
  EXPECT_EQ(**sealed, 64u);
  ASSERT_TRUE(follower().stage->install_into(follower().store->shard(0), applied_key).ok());
  want[std::string(applied_key)] = encode_applied(64);
  EXPECT_EQ(shard_contents(follower().store->shard(0)), want);
}

TEST_F(SnapshotTransferTest, ALostChunkIsResentAfterTheResendTime) {
  start({512, 3, 2000, 30000});
  auto want = fill(leader().store->shard(0), 100, 8);
  leader().transfer->send(2, "n2", 8, "install");
  bool dropped = false;
  settle([&](std::string& frame) {
    auto c = decode_chunk(frame);
    if (c && c->seq == 2 && !dropped) {
      dropped = true;
      return false;
    }
    return true;
  });
  ASSERT_TRUE(dropped);
  EXPECT_TRUE(follower().installs.empty()) << "stalled at the gap";
  EXPECT_GT(follower().transfer->stats().frames_dropped, 0u) << "the chunks after the gap";
  now_ += 1999;
  leader().transfer->tick();
  EXPECT_TRUE(wire_.empty()) << "not yet";
  now_ += 1;
  leader().transfer->tick();
  settle();
  EXPECT_GT(leader().transfer->stats().chunks_resent, 0u);
  ASSERT_EQ(follower().installs.size(), 1u);
  ASSERT_TRUE(follower().stage->install_into(follower().store->shard(0), applied_key).ok());
  want[std::string(applied_key)] = encode_applied(8);
  EXPECT_EQ(shard_contents(follower().store->shard(0)), want);
}

TEST_F(SnapshotTransferTest, AStreamToAPeerThatStopsAnsweringIsDropped) {
  start({512, 2, 1000, 5000});
  fill(leader().store->shard(0), 100, 3);
  leader().transfer->send(2, "n2", 3, "install");
  settle([](std::string&) { return false; }); // the peer is gone
  ASSERT_TRUE(follower().installs.empty());
  int resends = 0;
  for (int t = 0; t < 10; ++t) {
    now_ += 1000;
    leader().transfer->tick();
    resends += static_cast<int>(wire_.size());
    wire_.clear();
  }
  EXPECT_EQ(leader().transfer->stats().streams_abandoned, 1u);
  EXPECT_EQ(resends, 2 * 4) << "resent each second until the fifth, then dropped";
  now_ += 1000;
  leader().transfer->tick();
  EXPECT_TRUE(wire_.empty()) << "nothing more once dropped";
  // libraft asks again later: a new stream starts.
  leader().transfer->send(2, "n2", 3, "install");
  EXPECT_EQ(leader().transfer->stats().streams_started, 2u);
}

TEST_F(SnapshotTransferTest, AnImageThatDoesNotMatchItsChecksumIsRefused) {
  start({512, 4, 2000, 30000});
  fill(leader().store->shard(0), 50, 5);
  leader().transfer->send(2, "n2", 5, "install");
  settle([&](std::string& frame) {
    auto c = decode_chunk(frame);
    if (c && c->seq == 1) {
      // A value changed in transit, its framing intact: only the checksum can tell.
      auto at = c->records.find("v1");
      if (at != std::string::npos) c->records[at + 1] = '9';
      frame = encode_chunk(*c);
    }
    return true;
  });
  EXPECT_TRUE(follower().installs.empty());
  EXPECT_EQ(follower().transfer->stats().images_refused, 1u);
  auto sealed = follower().stage->sealed();
  ASSERT_TRUE(sealed.ok());
  EXPECT_FALSE(sealed->has_value());
  EXPECT_FALSE(follower().stage->handed_over);
  EXPECT_TRUE(shard_contents(follower().store->shard(0)).empty()) << "the shard untouched";
}

TEST_F(SnapshotTransferTest, ARepeatedRequestKeepsTheStreamAndANewerSnapshotReplacesIt) {
  start({256, 2, 2000, 30000});
  fill(leader().store->shard(0), 60, 30);
  leader().transfer->send(2, "n2", 25, "first");
  for (auto& fn : std::exchange(leader().posted, {}))
    fn();
  leader().transfer->send(2, "n2", 25, "again"); // libraft's install timeout, same snapshot
  // A later snapshot, but one the image covers: the shard had applied 30 when it was read.
  leader().transfer->send(2, "n2", 28, "again");
  EXPECT_EQ(leader().transfer->stats().streams_started, 1u);
  settle();
  ASSERT_EQ(follower().installs.size(), 1u);
  EXPECT_EQ(follower().installs[0].first, "again") << "the stream ends with the latest request";

  follower().stage->handed_over = false; // libraft took it, and installed it
  ASSERT_TRUE(follower().stage->clear().ok());
  follower().installs.clear();
  fill(leader().store->shard(0), 70, 45, "w");
  leader().transfer->send(2, "n2", 40, "older");
  for (auto& fn : std::exchange(leader().posted, {}))
    fn();
  // A snapshot past the image's applied index (the shard applied more since the view
  // was taken): the image does not cover it, so the stream starts over.
  fill(leader().store->shard(0), 70, 46, "z");
  leader().transfer->send(2, "n2", 46, "newer");
  EXPECT_EQ(leader().transfer->stats().streams_started, 3u);
  settle();
  ASSERT_EQ(follower().installs.size(), 1u);
  EXPECT_EQ(follower().installs[0].first, "newer");
  EXPECT_EQ(follower().installs[0].second, 46u);
  EXPECT_GT(leader().transfer->stats().frames_dropped, 0u) << "the acks of the old stream";
}

TEST_F(SnapshotTransferTest, ANewStreamDoesNotClearAnImageLibraftHolds) {
  start({512, 4, 2000, 30000});
  fill(leader().store->shard(0), 30, 12);
  leader().transfer->send(2, "n2", 12, "install");
  settle();
  ASSERT_EQ(follower().installs.size(), 1u);
  ASSERT_TRUE(follower().stage->handed_over);
  // Another leader's stream arrives while libraft installs the first image.
  snapshot_chunk c;
  c.stream = 999;
  c.seq = 0;
  c.from = 1;
  c.from_address = "n1";
  follower().transfer->deliver(encode_chunk(c));
  auto sealed = follower().stage->sealed();
  ASSERT_TRUE(sealed.ok());
  EXPECT_TRUE(sealed->has_value()) << "still staged";
}

} // namespace
} // namespace shoal::replication
