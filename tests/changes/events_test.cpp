// SPDX-License-Identifier: Apache-2.0
// The change feed's codecs (changes/events.hpp): stored events, the SSE data of an event
// and resume positions. Round trips at the edges of every field, and garbage of every kind
// refused without a crash (the tests run under ASan/UBSan too). A shard's batch has no
// codec any more: it travels as a typed struct (changes/messages.hpp).
#include "changes/events.hpp"

#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <boost/json.hpp>
#include <gtest/gtest.h>

namespace shoal::changes {
namespace {

constexpr std::uint64_t max64 = std::numeric_limits<std::uint64_t>::max();

event put_event(std::uint64_t seq, std::string id, std::uint64_t version, std::string doc,
                std::uint64_t time_ms = 1'700'000'000'000) {
  event e;
  e.seq = seq;
  e.kind = event_kind::put;
  e.id = std::move(id);
  e.version = version;
  e.doc = std::move(doc);
  e.time_ms = time_ms;
  return e;
}

event del_event(std::uint64_t seq, std::string id, std::uint64_t version,
                std::uint64_t time_ms = 1'700'000'000'000) {
  event e;
  e.seq = seq;
  e.kind = event_kind::del;
  e.id = std::move(id);
  e.version = version;
  e.time_ms = time_ms;
  return e;
}

void expect_same(const event& a, const event& b) {
  EXPECT_EQ(a.seq, b.seq);
  EXPECT_EQ(a.kind, b.kind);
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.version, b.version);
  EXPECT_EQ(a.doc, b.doc);
  EXPECT_EQ(a.time_ms, b.time_ms);
}

/// Every proper prefix of `bytes` (the empty one included).
std::vector<std::string> prefixes(const std::string& bytes) {
  std::vector<std::string> out;
  for (std::size_t n = 0; n < bytes.size(); ++n)
    out.push_back(bytes.substr(0, n));
  return out;
}

// -- events -------------------------------------------------------------------------------

// Verifies a put and a delete survive encode/decode with every field, the seq given apart.
TEST(EventCodec, RoundTripsPutAndDelete) {
  auto put = put_event(7, "user:42", 3, R"({"name":"Ada","n":[1,2]})");
  auto got = decode_event(7, encode_event(put));
  ASSERT_TRUE(got);
  expect_same(*got, put);

  auto del = del_event(8, "user:42", 4);
  auto got_del = decode_event(8, encode_event(del));
  ASSERT_TRUE(got_del);
  expect_same(*got_del, del);
}

// Verifies the largest values of every integer field and a 256-byte id round-trip.
TEST(EventCodec, RoundTripsExtremes) {
  auto e = put_event(max64, std::string(256, 'x'), max64, "{}", max64);
  auto got = decode_event(max64, encode_event(e));
  ASSERT_TRUE(got);
  expect_same(*got, e);
  auto zero = put_event(1, "a", 0, "{}", 0);
  auto got_zero = decode_event(1, encode_event(zero));
  ASSERT_TRUE(got_zero);
  expect_same(*got_zero, zero);
}

// Verifies a delete's doc is not stored even when the caller left one in the struct.
TEST(EventCodec, DeleteDropsDoc) {
  auto e = del_event(1, "a", 2);
  e.doc = R"({"stale":true})";
  auto got = decode_event(1, encode_event(e));
  ASSERT_TRUE(got);
  EXPECT_TRUE(got->doc.empty());
}

// Verifies every truncation of a stored event is refused.
TEST(EventCodec, RefusesTruncations) {
  auto bytes = encode_event(put_event(1, "doc-1", 300, R"({"a":1})"));
  // Dropping bytes of the doc leaves a shorter (still well-formed) doc; everything up to
  // the first doc byte must be refused.
  auto header = bytes.size() - std::string(R"({"a":1})").size();
  for (const auto& p : prefixes(bytes.substr(0, header + 1)))
    EXPECT_FALSE(decode_event(1, p)) << "prefix of " << p.size() << " bytes";
  auto del = encode_event(del_event(1, "doc-1", 300));
  for (const auto& p : prefixes(del))
    EXPECT_FALSE(decode_event(1, p)) << "delete prefix of " << p.size() << " bytes";
}

// Verifies unknown kinds, empty ids, a delete with trailing bytes and bad varints are refused.
TEST(EventCodec, RefusesGarbage) {
  auto good = encode_event(put_event(1, "a", 1, "{}"));
  for (char kind : {'\0', '\3', '\x7f', '\xff'}) {
    auto bad = good;
    bad[0] = kind;
    EXPECT_FALSE(decode_event(1, bad)) << "kind " << static_cast<int>(kind);
  }
  // kind put, version 1, time 0, id length 0: an empty id.
  EXPECT_FALSE(decode_event(1, std::string("\x01\x01\x00\x00{}", 6)));
  // A delete with bytes after the id.
  EXPECT_FALSE(decode_event(1, encode_event(del_event(1, "a", 1)) + "x"));
  // A put without a document.
  EXPECT_FALSE(decode_event(1, std::string("\x01\x01\x00\x01"
                                           "a",
                                           5)));
  // A non-minimal varint (version 1 as 0x81 0x00).
  EXPECT_FALSE(decode_event(1, std::string("\x02\x81\x00\x00\x01"
                                           "a",
                                           6)));
  // An id length beyond the bytes.
  EXPECT_FALSE(decode_event(1, std::string("\x02\x01\x00\x7f"
                                           "a",
                                           5)));
  // A varint over 64 bits (ten bytes, the last with more than bit 63).
  EXPECT_FALSE(decode_event(1, std::string("\x02\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02\x00\x01"
                                           "a",
                                           14)));
  // Eleven continuation bytes.
  EXPECT_FALSE(decode_event(1, std::string(1, '\x02') + std::string(11, '\x80')
                                 + "\x00\x01"
                                   "a"));
  EXPECT_FALSE(decode_event(1, ""));
}

// -- SSE data -----------------------------------------------------------------------------

// Verifies a put's data embeds the stored document verbatim next to id and version.
TEST(EventData, PutEmbedsDocument) {
  auto e = put_event(1, "42", 3, R"({"name":"Ada","tags":["a","b"],"n":1.5})");
  auto text = event_data_json(e);
  EXPECT_EQ(text, R"({"id":"42","version":3,"doc":{"name":"Ada","tags":["a","b"],"n":1.5}})");
  auto v = boost::json::parse(text);
  EXPECT_EQ(v.at("doc").at("name").as_string(), "Ada");
}

// Verifies a delete's data has no doc member.
TEST(EventData, DeleteHasNoDoc) {
  auto e = del_event(2, "42", 4);
  EXPECT_EQ(event_data_json(e), R"({"id":"42","version":4})");
}

// Verifies ids are escaped as JSON strings (quotes, backslashes, controls).
TEST(EventData, EscapesId) {
  auto e = del_event(1, "a\"b\\c\n\x01", 1);
  auto v = boost::json::parse(event_data_json(e));
  EXPECT_EQ(v.at("id").as_string(), "a\"b\\c\n\x01");
  EXPECT_EQ(v.at("version").to_number<std::uint64_t>(), 1u);
}

// Verifies a put whose doc is missing still yields valid JSON (doc null), and large versions.
TEST(EventData, EmptyDocIsNullAndLargeVersion) {
  auto e = put_event(1, "x", max64, "");
  auto v = boost::json::parse(event_data_json(e));
  EXPECT_TRUE(v.at("doc").is_null());
  EXPECT_EQ(v.at("version").to_number<std::uint64_t>(), max64);
}

// -- positions ----------------------------------------------------------------------------

// Verifies positions round-trip for several shard counts and seq magnitudes.
TEST(Position, RoundTrips) {
  for (std::uint32_t shards : {0u, 1u, 2u, 3u, 64u, 1000u}) {
    position p;
    for (std::uint32_t i = 0; i < shards; ++i)
      p.seqs.push_back(i % 4 == 0 ? 0 : (i % 4 == 1 ? 127 : (i % 4 == 2 ? 128 : max64 - i)));
    auto text = p.encode();
    EXPECT_EQ(text.substr(0, 3), "v1.");
    for (char c : text.substr(3)) {
      bool url_safe = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
                      || c == '-' || c == '_';
      EXPECT_TRUE(url_safe) << "'" << c << "' in " << text;
    }
    auto got = position::decode(text, shards);
    ASSERT_TRUE(got) << text;
    EXPECT_EQ(got->seqs, p.seqs);
  }
}

// Verifies the text of a small position is as documented: v1. + base64url(varints).
TEST(Position, KnownText) {
  position p;
  p.seqs = {0, 1, 300};
  // varints 03 00 01 ac 02 -> base64url "AwABrAI".
  EXPECT_EQ(p.encode(), "v1.AwABrAI");
  auto got = position::decode("v1.AwABrAI", 3);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->seqs, (std::vector<std::uint64_t>{0, 1, 300}));
}

// Verifies a position names its shard count: another count is refused.
TEST(Position, RefusesOtherShardCount) {
  position p;
  p.seqs = {1, 2, 3, 4};
  auto text = p.encode();
  EXPECT_TRUE(position::decode(text, 4));
  EXPECT_FALSE(position::decode(text, 3));
  EXPECT_FALSE(position::decode(text, 5));
  EXPECT_FALSE(position::decode(text, 0));
}

// Verifies wrong prefixes, bad base64, padding, truncation, overlong varints and trailing
// bytes are all refused.
TEST(Position, RefusesGarbage) {
  position p;
  p.seqs = {5, 6};
  auto text = p.encode(); // "v1." + base64url(02 05 06) = "v1.AgUG"
  ASSERT_EQ(text, "v1.AgUG");
  for (std::string_view bad :
       {"",         "v1",        "v1.",       "v2.AgUG",   "V1.AgUG", "v1AgUG",  " v1.AgUG",
        "v1.AgUG ", "v1.AgU=",   "v1.AgUG==", "v1.Ag+G",   "v1.Ag/G", "v1.Ag.G", "v1.A",
        "v1.AgU",   "v1.AgUGAA", "v1.AgUGBw", "v1.AoUABg", "v1.AoAF", "start",   "0"}) {
    EXPECT_FALSE(position::decode(bad, 2)) << "'" << bad << "'";
  }
  // "v1.AgUGBw": a third seq (02 05 06 07); "v1.AgUGAA": a trailing zero byte;
  // "v1.AoUABg": 02 85 00 06, a non-minimal varint; "v1.AoAF": 02 80 05, the second seq
  // missing.
  // The unused low bits of the last character must be zero: "AQU" is 01 05, "AQV" would
  // be a second text for it.
  EXPECT_TRUE(position::decode("v1.AQU", 1));
  EXPECT_FALSE(position::decode("v1.AQV", 1));
  // A seq varint of eleven bytes: 01 80×10 01.
  EXPECT_FALSE(position::decode("v1.AYCAgICAgICAgIAB", 1));
  // Ten bytes whose last is above 1: more than 64 bits (01 ff×9 02).
  EXPECT_FALSE(position::decode("v1.Af___________wI", 1));
  // The largest seq is accepted: 01 ff×9 01.
  position big;
  big.seqs = {max64};
  EXPECT_EQ(big.encode(), "v1.Af___________wE");
  EXPECT_TRUE(position::decode(big.encode(), 1));
  // Far too long input for its shard count is refused before decoding.
  EXPECT_FALSE(position::decode("v1." + std::string(100000, 'A'), 2));
}

// Verifies random text after the prefix never crashes and what decodes re-encodes to itself.
TEST(Position, RandomTextIsCanonicalOrRefused) {
  std::mt19937 rng{777};
  std::uniform_int_distribution<int> ch{0, 63};
  std::uniform_int_distribution<int> length{0, 12};
  std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  int accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string text = "v1.";
    auto n = length(rng);
    for (int k = 0; k < n; ++k)
      text += alphabet[static_cast<std::size_t>(ch(rng))];
    for (std::uint32_t shards : {0u, 1u, 2u}) {
      auto got = position::decode(text, shards);
      if (!got) continue;
      ++accepted;
      EXPECT_EQ(got->encode(), text);
      EXPECT_EQ(got->seqs.size(), shards);
    }
  }
  EXPECT_GT(accepted, 0);
}

} // namespace
} // namespace shoal::changes
