// SPDX-License-Identifier: Apache-2.0
// libraft's messages through our bytes: every type keeps every field, entries and
// snapshot data keep their bytes, and anything truncated or unknown is refused.
#include "replication/wire.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

namespace shoal::replication {
namespace {

raft_message header(unsigned short type) {
  raft_message m{};
  m.type = type;
  m.server_id = 3;
  m.server_address = "node-3";
  return m;
}

std::unique_ptr<decoded_message> round_trip(const raft_message& m) {
  auto d = decode_message(encode_message(m));
  EXPECT_TRUE(d.ok()) << (d ? "" : d.error().to_string());
  if (!d) return nullptr;
  EXPECT_EQ((*d)->msg.type, m.type);
  EXPECT_EQ((*d)->msg.server_id, 3u);
  EXPECT_STREQ((*d)->msg.server_address, "node-3");
  return std::move(*d);
}

TEST(WireTest, RequestVoteAndItsResult) {
  auto m = header(RAFT_IO_REQUEST_VOTE);
  m.request_vote = {7, 2, 41, 6, true, false};
  auto d = round_trip(m);
  ASSERT_NE(d, nullptr);
  const auto& a = d->msg.request_vote;
  EXPECT_EQ(a.term, 7u);
  EXPECT_EQ(a.candidate_id, 2u);
  EXPECT_EQ(a.last_log_index, 41u);
  EXPECT_EQ(a.last_log_term, 6u);
  EXPECT_TRUE(a.disrupt_leader);
  EXPECT_FALSE(a.pre_vote);

  auto r = header(RAFT_IO_REQUEST_VOTE_RESULT);
  r.request_vote_result = {8, true, raft_tribool_false};
  auto dr = round_trip(r);
  ASSERT_NE(dr, nullptr);
  EXPECT_EQ(dr->msg.request_vote_result.term, 8u);
  EXPECT_TRUE(dr->msg.request_vote_result.vote_granted);
  EXPECT_EQ(dr->msg.request_vote_result.pre_vote, raft_tribool_false);
}

TEST(WireTest, AppendEntriesKeepsEveryEntry) {
  std::string a = "first";
  std::string b(100000, 'x');
  b[5] = '\0';
  raft_entry entries[3] = {};
  entries[0] = {4, RAFT_COMMAND, {a.data(), a.size()}, nullptr};
  entries[1] = {4, RAFT_BARRIER, {nullptr, 0}, nullptr};
  entries[2] = {5, RAFT_CHANGE, {b.data(), b.size()}, nullptr};
  auto m = header(RAFT_IO_APPEND_ENTRIES);
  m.append_entries = {5, 10, 4, 9, entries, 3};
  auto d = round_trip(m);
  ASSERT_NE(d, nullptr);
  auto& got = d->msg.append_entries;
  EXPECT_EQ(got.term, 5u);
  EXPECT_EQ(got.prev_log_index, 10u);
  EXPECT_EQ(got.prev_log_term, 4u);
  EXPECT_EQ(got.leader_commit, 9u);
  ASSERT_EQ(got.n_entries, 3u);
  EXPECT_EQ(std::string(static_cast<char*>(got.entries[0].buf.base), got.entries[0].buf.len), a);
  EXPECT_EQ(got.entries[1].type, RAFT_BARRIER);
  EXPECT_EQ(got.entries[1].buf.len, 0u);
  EXPECT_EQ(got.entries[2].term, 5u);
  EXPECT_EQ(std::string(static_cast<char*>(got.entries[2].buf.base), got.entries[2].buf.len), b);
  EXPECT_EQ(got.entries[0].batch, got.entries[2].batch) << "one batch, freed once by libraft";
  d->release();
}

TEST(WireTest, AppendEntriesResultAndTimeoutNow) {
  auto m = header(RAFT_IO_APPEND_ENTRIES_RESULT);
  m.append_entries_result = {9, 0, 77};
  auto d = round_trip(m);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->msg.append_entries_result.term, 9u);
  EXPECT_EQ(d->msg.append_entries_result.rejected, 0u);
  EXPECT_EQ(d->msg.append_entries_result.last_log_index, 77u);

  auto t = header(RAFT_IO_TIMEOUT_NOW);
  t.timeout_now = {3, 12, 2};
  auto dt = round_trip(t);
  ASSERT_NE(dt, nullptr);
  EXPECT_EQ(dt->msg.timeout_now.last_log_index, 12u);
  EXPECT_EQ(dt->msg.timeout_now.last_log_term, 2u);
}

TEST(WireTest, InstallSnapshotKeepsConfigurationAndData) {
  raft_configuration conf;
  raft_configuration_init(&conf);
  ASSERT_EQ(raft_configuration_add(&conf, 1, "n1", RAFT_VOTER), 0);
  ASSERT_EQ(raft_configuration_add(&conf, 2, "n2", RAFT_STANDBY), 0);
  std::string data = "the shard's keys";
  auto m = header(RAFT_IO_INSTALL_SNAPSHOT);
  m.install_snapshot.term = 6;
  m.install_snapshot.last_index = 300;
  m.install_snapshot.last_term = 5;
  m.install_snapshot.conf = conf;
  m.install_snapshot.conf_index = 1;
  m.install_snapshot.data = {data.data(), data.size()};
  auto d = round_trip(m);
  raft_configuration_close(&conf);
  ASSERT_NE(d, nullptr);
  const auto& got = d->msg.install_snapshot;
  EXPECT_EQ(got.last_index, 300u);
  EXPECT_EQ(got.last_term, 5u);
  EXPECT_EQ(got.conf_index, 1u);
  ASSERT_EQ(got.conf.n, 2u);
  EXPECT_STREQ(got.conf.servers[1].address, "n2");
  EXPECT_EQ(got.conf.servers[1].role, RAFT_STANDBY);
  EXPECT_EQ(std::string(static_cast<char*>(got.data.base), got.data.len), data);
  d->release();
}

TEST(WireTest, TruncatedOrUnknownBytesAreRefused) {
  std::string payload = "p";
  raft_entry e{1, RAFT_COMMAND, {payload.data(), payload.size()}, nullptr};
  auto m = header(RAFT_IO_APPEND_ENTRIES);
  m.append_entries = {1, 0, 0, 0, &e, 1};
  const auto bytes = encode_message(m);
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    auto d = decode_message(bytes.substr(0, n));
    ASSERT_FALSE(d.ok()) << n;
    EXPECT_EQ(d.error().code(), core::errc::corrupt);
  }
  EXPECT_FALSE(decode_message(bytes + "x").ok()) << "bytes after the message";
  auto unknown = bytes;
  unknown[1] = 42;
  EXPECT_FALSE(decode_message(unknown).ok());
  auto version = bytes;
  version[0] = 2;
  EXPECT_FALSE(decode_message(version).ok());
}

} // namespace
} // namespace shoal::replication
