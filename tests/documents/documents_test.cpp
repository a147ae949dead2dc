// SPDX-License-Identifier: Apache-2.0
#include "documents/documents.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

namespace shoal::documents {
namespace {

std::string patched(std::string_view target, std::string_view patch) {
  auto t = boost::json::parse(target);
  merge_patch(t, boost::json::parse(patch));
  return boost::json::serialize(t);
}

// Verifies the merge-patch examples of RFC 7396 appendix A.
TEST(MergePatchTest, FollowsRfc7396Examples) {
  EXPECT_EQ(patched(R"({"a":"b"})", R"({"a":"c"})"), R"({"a":"c"})");
  EXPECT_EQ(patched(R"({"a":"b"})", R"({"b":"c"})"), R"({"a":"b","b":"c"})");
  EXPECT_EQ(patched(R"({"a":"b"})", R"({"a":null})"), R"({})");
  EXPECT_EQ(patched(R"({"a":"b","b":"c"})", R"({"a":null})"), R"({"b":"c"})");
  EXPECT_EQ(patched(R"({"a":["b"]})", R"({"a":"c"})"), R"({"a":"c"})");
  EXPECT_EQ(patched(R"({"a":"c"})", R"({"a":["b"]})"), R"({"a":["b"]})");
  EXPECT_EQ(patched(R"({"a":{"b":"c"}})", R"({"a":{"b":"d","c":null}})"), R"({"a":{"b":"d"}})");
  EXPECT_EQ(patched(R"({"a":[{"b":"c"}]})", R"({"a":[1]})"), R"({"a":[1]})");
  EXPECT_EQ(patched(R"(["a","b"])", R"(["c","d"])"), R"(["c","d"])");
  EXPECT_EQ(patched(R"({"a":"b"})", R"(["c"])"), R"(["c"])");
  EXPECT_EQ(patched(R"({"a":"foo"})", "null"), "null");
  EXPECT_EQ(patched(R"({"e":null})", R"({"a":1})"), R"({"e":null,"a":1})");
  EXPECT_EQ(patched(R"([1,2])", R"({"a":"b","c":null})"), R"({"a":"b"})");
  EXPECT_EQ(patched(R"({})", R"({"a":{"bb":{"ccc":null}}})"), R"({"a":{"bb":{}}})");
}

// Verifies a record encodes and decodes to the same version and JSON.
TEST(RecordCodecTest, RoundTrips) {
  for (std::uint64_t v :
       {std::uint64_t{1}, std::uint64_t{255}, std::uint64_t{1} << 40, ~std::uint64_t{0}}) {
    auto bytes = encode(v, R"({"k":"v"})");
    auto rec = decode(bytes);
    ASSERT_TRUE(rec.has_value());
    EXPECT_EQ(rec->version, v);
    EXPECT_EQ(rec->json, R"({"k":"v"})");
  }
}

// Verifies the on-disk record layout: format byte, big-endian version, JSON text.
TEST(RecordCodecTest, LayoutIsStable) {
  auto bytes = encode(0x0102, "{}");
  EXPECT_EQ(bytes, std::string("\x01\0\0\0\0\0\0\x01\x02{}", 11));
}

// Verifies a tombstone decodes as deleted with its version.
TEST(RecordCodecTest, TombstoneRoundTrips) {
  auto bytes = encode_tombstone(9);
  EXPECT_EQ(bytes, std::string("\x02\0\0\0\0\0\0\0\x09", 9));
  auto rec = decode(bytes);
  ASSERT_TRUE(rec.has_value());
  EXPECT_TRUE(rec->deleted);
  EXPECT_EQ(rec->version, 9u);
}

// Verifies truncated bytes and unknown formats are rejected.
TEST(RecordCodecTest, RejectsMalformedBytes) {
  EXPECT_FALSE(decode("").has_value());
  EXPECT_FALSE(decode(std::string("\x01\0\0", 3)).has_value());
  EXPECT_FALSE(decode(std::string("\x03\0\0\0\0\0\0\0\x01{}", 11)).has_value());
  EXPECT_FALSE(decode(std::string("\x02\0\0\0\0\0\0\0\x01{}", 11)).has_value());
}

// Verifies document keys keep collections apart and group a collection under a prefix.
TEST(DocumentKeyTest, SeparatesCollectionAndId) {
  EXPECT_EQ(key("ab", "c"), std::string("dab\0c", 5));
  EXPECT_NE(key("a", "bc"), key("ab", "c"));
  EXPECT_EQ(key("users", "1").rfind(collection_prefix("users"), 0), 0u);
  EXPECT_NE(key("users2", "1").rfind(collection_prefix("users"), 0), 0u);
}

// Verifies precondition matching for *, version lists and missing documents.
TEST(PreconditionTest, MatchesAsRfc9110Says) {
  precondition any{precondition::kind::any, {}};
  precondition list{precondition::kind::versions, {2, 3}};
  precondition absent;
  EXPECT_TRUE(matches(any, 1));
  EXPECT_FALSE(matches(any, std::nullopt));
  EXPECT_TRUE(matches(list, 3));
  EXPECT_FALSE(matches(list, 4));
  EXPECT_FALSE(matches(list, std::nullopt));
  EXPECT_FALSE(matches(absent, 1));
}

// Verifies a PATCH of a stored non-object is refused rather than stored.
TEST(PlanWriteTest, PatchOfCorruptDocumentIsRefused) {
  doc_write req;
  req.kind = write_kind::patch;
  req.body = R"({"a":1})";
  auto stored = encode(4, "[1,2]");
  auto plan = plan_write(req, decode(stored));
  ASSERT_FALSE(plan.ok()) << "a plan to store version " << plan->reply.version;
  EXPECT_EQ(plan.error().code(), core::errc::internal);
}

} // namespace
} // namespace shoal::documents
