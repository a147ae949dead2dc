// SPDX-License-Identifier: Apache-2.0
// The bytes of the replicated log and of snapshots: every operation round-trips, and
// damage of any kind is refused before anything is applied.
#include "replication/entry.hpp"

#include <xxhash.h>

#include <gtest/gtest.h>

#include <string>

namespace shoal::replication {
namespace {

using storage::write_batch;
using namespace std::string_literals;

write_batch sample() {
  write_batch b;
  b.put("dusers\0"
        "42"s,
        R"({"name":"Ada"})");
  b.put(std::string("k\0\xff", 3), std::string()); // binary key, empty value
  b.del("dusers\0"
        "41"s);
  b.del_range("x", "y");
  b.put(std::string(300, 'k'), std::string(70000, 'v')); // multi-byte varints
  return b;
}

void expect_same(const write_batch& a, const write_batch& b) {
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a.ops()[i].kind, b.ops()[i].kind) << i;
    EXPECT_EQ(a.ops()[i].key, b.ops()[i].key) << i;
    EXPECT_EQ(a.ops()[i].value, b.ops()[i].value) << i;
  }
}

/// `body` with a correct checksum: bytes that pass the checksum but not the parser.
std::string sealed(std::string body) {
  const auto sum = XXH64(body.data(), body.size(), 0);
  for (int i = 0; i < 8; ++i) {
    body.push_back(static_cast<char>((sum >> (8 * i)) & 0xff));
  }
  return body;
}

TEST(EntryTest, EveryKindOfOperationRoundTrips) {
  const auto batch = sample();
  auto decoded = decode_entry(encode_entry(batch));
  ASSERT_TRUE(decoded.ok()) << decoded.error().to_string();
  expect_same(*decoded, batch);
}

TEST(EntryTest, AnEmptyBatchRoundTrips) {
  auto decoded = decode_entry(encode_entry(write_batch{}));
  ASSERT_TRUE(decoded.ok());
  EXPECT_TRUE(decoded->empty());
}

TEST(EntryTest, AnyFlippedBitIsRefused) {
  write_batch b;
  b.put("a", "1");
  b.del("b");
  const auto bytes = encode_entry(b);
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      auto damaged = bytes;
      damaged[i] = static_cast<char>(damaged[i] ^ (1 << bit));
      auto r = decode_entry(damaged);
      ASSERT_FALSE(r.ok()) << "byte " << i << " bit " << bit;
      EXPECT_EQ(r.error().code(), core::errc::corrupt);
    }
  }
}

TEST(EntryTest, EveryTruncationIsRefused) {
  const auto bytes = encode_entry(sample());
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    auto r = decode_entry(bytes.substr(0, n));
    ASSERT_FALSE(r.ok()) << n;
    EXPECT_EQ(r.error().code(), core::errc::corrupt);
  }
}

TEST(EntryTest, AWellSealedButMalformedBodyIsRefused) {
  // format, one op announced, none present
  EXPECT_FALSE(decode_entry(sealed(std::string("\x01\x01", 2))).ok());
  // an unknown op kind
  EXPECT_FALSE(decode_entry(sealed(std::string("\x01\x01\x07\x01k", 5))).ok());
  // a key length past the end
  EXPECT_FALSE(decode_entry(sealed(std::string("\x01\x01\x02\x09k", 5))).ok());
  // a byte after the last op
  EXPECT_FALSE(decode_entry(sealed(std::string("\x01\x01\x02\x01kz", 6))).ok());
  // the same without the extra byte is fine: the checks above are of the body only
  auto good = decode_entry(sealed(std::string("\x01\x01\x02\x01k", 5)));
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(good->ops().at(0).key, "k");
}

TEST(EntryTest, ASnapshotRoundTripsWithItsIndex) {
  snapshot_image image;
  image.applied_index = 0x0102030405060708ull;
  image.puts.put("a", "1");
  image.puts.put(std::string("b\0", 2), "");
  auto decoded = decode_snapshot(encode_snapshot(image));
  ASSERT_TRUE(decoded.ok()) << decoded.error().to_string();
  EXPECT_EQ(decoded->applied_index, image.applied_index);
  expect_same(decoded->puts, image.puts);
}

TEST(EntryTest, AnEntryIsNotASnapshotNorTheOtherWayRound) {
  write_batch b;
  b.put("a", "1");
  EXPECT_FALSE(decode_snapshot(encode_entry(b)).ok());
  snapshot_image image;
  image.puts = b;
  EXPECT_FALSE(decode_entry(encode_snapshot(image)).ok());
}

TEST(EntryTest, ASnapshotHoldsPutsOnly) {
  // format 2, index 1, one op: a delete of "k"
  std::string body("\x02", 1);
  body.append(std::string(7, '\0') + "\x01");
  body.append(std::string("\x01\x02\x01k", 4));
  auto r = decode_snapshot(sealed(body));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), core::errc::corrupt);
}

} // namespace
} // namespace shoal::replication
