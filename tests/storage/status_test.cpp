// SPDX-License-Identifier: Apache-2.0
#include "storage/status.hpp"

#include <string>
#include <type_traits>

#include <gtest/gtest.h>

#include "storage/store.hpp"

namespace shoal::storage {
namespace {

static_assert(std::is_nothrow_move_constructible_v<status>);
static_assert(std::is_nothrow_default_constructible_v<status>);
static_assert(std::is_nothrow_move_constructible_v<write_batch>);

// Verifies every errc has a stable lower-case name.
TEST(StatusTest, ErrcNamesAreStable) {
  EXPECT_STREQ(to_string(errc::ok), "ok");
  EXPECT_STREQ(to_string(errc::not_found), "not_found");
  EXPECT_STREQ(to_string(errc::io_error), "io_error");
  EXPECT_STREQ(to_string(errc::corruption), "corruption");
  EXPECT_STREQ(to_string(errc::invalid_argument), "invalid_argument");
  EXPECT_STREQ(to_string(errc::incompatible), "incompatible");
  EXPECT_STREQ(to_string(errc::unavailable), "unavailable");
}

// Verifies to_string prints "ok" or "<code>: <message>".
TEST(StatusTest, ToStringJoinsCodeAndMessage) {
  EXPECT_EQ(status::ok().to_string(), "ok");
  EXPECT_EQ(status(errc::io_error, "disk full").to_string(), "io_error: disk full");
}

// Verifies a default status is ok and converts to true; an error converts to false.
TEST(StatusTest, BoolConversionMeansOk) {
  status good;
  EXPECT_TRUE(good.is_ok());
  EXPECT_TRUE(static_cast<bool>(good));
  EXPECT_EQ(good.code(), errc::ok);
  status bad(errc::not_found, "k");
  EXPECT_FALSE(bad.is_ok());
  EXPECT_FALSE(static_cast<bool>(bad));
  EXPECT_EQ(bad.message(), "k");
}

// Verifies write_batch counts ops and key/value bytes and clears both.
TEST(WriteBatchTest, TracksSizeAndBytes) {
  write_batch batch;
  EXPECT_TRUE(batch.empty());
  batch.put("key", "value");
  batch.del("gone");
  EXPECT_EQ(batch.size(), 2u);
  EXPECT_EQ(batch.bytes(), 12u);
  EXPECT_EQ(batch.ops()[1].kind, write_batch::op_kind::del);
  batch.clear();
  EXPECT_TRUE(batch.empty());
  EXPECT_EQ(batch.bytes(), 0u);
}

} // namespace
} // namespace shoal::storage
