// SPDX-License-Identifier: Apache-2.0
// The vocabulary every layer shares: errors and their one table to HTTP (core/error.hpp),
// results (core/result.hpp), the reply path (core/reply.hpp), type lists
// (core/type_list.hpp) and the name rules (core/names.hpp).
#include "core/error.hpp"

#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "core/names.hpp"
#include "core/reply.hpp"
#include "core/result.hpp"
#include "core/type_list.hpp"

namespace shoal::core {

/// Prints an errc by its name in gtest messages.
void PrintTo(errc x, std::ostream* os) {
  *os << to_string(x);
}

namespace {

static_assert(std::is_nothrow_move_constructible_v<error>);
static_assert(std::is_nothrow_default_constructible_v<error>);
static_assert(std::is_nothrow_move_constructible_v<result<std::string>>);
static_assert(std::is_nothrow_move_constructible_v<result<void>>);
static_assert(std::is_nothrow_move_constructible_v<reply_to<std::string>>);

/// One row of the error table: a code, its name, its HTTP status and its API code.
struct table_row {
  errc code;
  const char* name;
  std::uint16_t status;
  const char* api;
};

/// Every errc, in declaration order, as docs/api.md "Errors" and http/errors.cpp answer it.
const std::vector<table_row> every_code = {
  {errc::invalid_argument, "invalid_argument", 400, "bad_request"},
  {errc::not_found, "not_found", 404, "not_found"},
  {errc::precondition_failed, "precondition_failed", 412, "precondition_failed"},
  {errc::conflict, "conflict", 409, "conflict"},
  {errc::gone, "gone", 410, "gone"},
  {errc::too_large, "too_large", 413, "too_large"},
  {errc::unsupported, "unsupported", 415, "unsupported_media_type"},
  {errc::storage_failed, "storage_failed", 503, "storage_unavailable"},
  {errc::corrupt, "corrupt", 503, "storage_unavailable"},
  {errc::incompatible, "incompatible", 500, "internal_error"},
  {errc::shutting_down, "shutting_down", 503, "shutting_down"},
  {errc::shard_unavailable, "shard_unavailable", 503, "shard_unavailable"},
  {errc::overloaded, "overloaded", 503, "overloaded"},
  {errc::timeout, "timeout", 504, "timeout"},
  {errc::internal, "internal", 500, "internal_error"},
  {errc::application, "application", 500, "internal_error"},
  {errc::outcome_unknown, "outcome_unknown", 504, "outcome_unknown"},
};

// -- errors -------------------------------------------------------------------------------

// Verifies the table above lists every errc exactly once, so the tests below cover all.
TEST(ErrorTest, TableCoversEveryCode) {
  ASSERT_EQ(every_code.size(), static_cast<std::size_t>(errc::outcome_unknown));
  for (std::size_t i = 0; i < every_code.size(); ++i) {
    EXPECT_EQ(static_cast<std::size_t>(every_code[i].code), i + 1) << every_code[i].name;
  }
}

// Verifies every errc has a stable lower-case name, and a code outside the enum is
// "unknown".
TEST(ErrorTest, ErrcNamesAreStable) {
  for (const auto& row : every_code) {
    EXPECT_STREQ(to_string(row.code), row.name);
  }
  EXPECT_STREQ(to_string(static_cast<errc>(0)), "unknown");
  EXPECT_STREQ(to_string(static_cast<errc>(200)), "unknown");
}

// Verifies error::to_string prints "<code>: <message>", with the name in parentheses when
// one was given, and the code alone when there is no message.
TEST(ErrorTest, ToStringJoinsCodeAndMessage) {
  EXPECT_EQ(error(errc::storage_failed, "disk full").to_string(), "storage_failed: disk full");
  EXPECT_EQ(error(errc::conflict, "stale_lease", "the lease expired").to_string(),
            "conflict (stale_lease): the lease expired");
  EXPECT_EQ(error(errc::not_found, "").to_string(), "not_found");
  EXPECT_EQ(error(errc::conflict, "stale_lease", "").to_string(), "conflict (stale_lease)");
  EXPECT_EQ(error::application(418, "teapot", "short and stout").to_string(),
            "application (teapot): short and stout");
}

// Verifies a default error is internal, with no message, no name and no status.
TEST(ErrorTest, DefaultErrorIsInternal) {
  error e;
  EXPECT_EQ(e.code(), errc::internal);
  EXPECT_EQ(e.message(), "");
  EXPECT_EQ(e.name(), "");
  EXPECT_EQ(e.status(), 0u);
  EXPECT_EQ(http_status(e), 500u);
  EXPECT_EQ(api_code(e), "internal_error");
}

// Verifies an error keeps its code and message, has no name or status of its own, and
// compares equal to its code only.
TEST(ErrorTest, KeepsCodeAndMessage) {
  error e{errc::gone, "the job was deleted"};
  EXPECT_EQ(e.code(), errc::gone);
  EXPECT_EQ(e.message(), "the job was deleted");
  EXPECT_EQ(e.name(), "");
  EXPECT_EQ(e.status(), 0u);
  EXPECT_TRUE(e == errc::gone);
  EXPECT_FALSE(e != errc::gone);
  EXPECT_FALSE(e == errc::not_found);
  EXPECT_TRUE(e != errc::not_found);
}

// Verifies the HTTP status of every errc (an application error without a status of its
// own is 500).
TEST(ErrorTest, HttpStatusOfEveryCode) {
  for (const auto& row : every_code) {
    EXPECT_EQ(http_status(error{row.code, "m"}), row.status) << row.name;
  }
}

// Verifies the API code of every errc without a name of its own.
TEST(ErrorTest, ApiCodeOfEveryCode) {
  for (const auto& row : every_code) {
    EXPECT_EQ(api_code(error{row.code, "m"}), row.api) << row.name;
  }
}

// Verifies a code outside the enum (bytes from a broken peer) is a 500 internal_error.
TEST(ErrorTest, CodeOutOfRangeIsInternalError) {
  for (auto raw : {0, 18, 255}) {
    error e{static_cast<errc>(raw), "garbage"};
    EXPECT_EQ(http_status(e), 500u) << raw;
    EXPECT_EQ(api_code(e), "internal_error") << raw;
  }
}

// Verifies an application error answers with the status and name it chose, inside
// 400..599 inclusive.
TEST(ErrorTest, ApplicationErrorKeepsStatusAndName) {
  auto e = error::application(418, "teapot", "short and stout");
  EXPECT_EQ(e.code(), errc::application);
  EXPECT_EQ(e.status(), 418u);
  EXPECT_EQ(e.name(), "teapot");
  EXPECT_EQ(e.message(), "short and stout");
  EXPECT_EQ(http_status(e), 418u);
  EXPECT_EQ(api_code(e), "teapot");
  EXPECT_EQ(http_status(error::application(400, "low", "")), 400u);
  EXPECT_EQ(http_status(error::application(599, "high", "")), 599u);
}

// Verifies an application error whose status is outside 400..599 answers 500, keeping
// its name; one without a name is internal_error.
TEST(ErrorTest, ApplicationErrorOutOfRangeStatusIs500) {
  for (std::uint16_t status : {0, 1, 200, 302, 399, 600, 999, 65535}) {
    auto e = error::application(status, "odd", "m");
    EXPECT_EQ(http_status(e), 500u) << status;
    EXPECT_EQ(api_code(e), "odd") << status;
    EXPECT_EQ(e.status(), status) << "the error keeps what it was given";
  }
  EXPECT_EQ(api_code(error::application(422, "", "m")), "internal_error");
  EXPECT_EQ(http_status(error::application(422, "", "m")), 422u);
}

// Verifies a status set on an error of another class changes nothing: only application
// errors choose their status.
TEST(ErrorTest, StatusMattersForApplicationErrorsOnly) {
  error e{errc::conflict, "m"};
  e.status_ref() = 418;
  EXPECT_EQ(http_status(e), 409u);
}

// Verifies a named error answers with its name as the API code and its class's status.
TEST(ErrorTest, NamedErrorsKeepTheirName) {
  error invalid{errc::invalid_argument, "invalid_name", "collection name too long"};
  EXPECT_EQ(invalid.name(), "invalid_name");
  EXPECT_EQ(invalid.message(), "collection name too long");
  EXPECT_EQ(api_code(invalid), "invalid_name");
  EXPECT_EQ(http_status(invalid), 400u);

  error stale{errc::conflict, "stale_lease", "m"};
  EXPECT_EQ(api_code(stale), "stale_lease");
  EXPECT_EQ(http_status(stale), 409u);

  error big{errc::too_large, "value_too_large", "m"};
  EXPECT_EQ(api_code(big), "value_too_large");
  EXPECT_EQ(http_status(big), 413u);

  error index{errc::precondition_failed, "index_required", "m"};
  EXPECT_EQ(api_code(index), "index_required");
  EXPECT_EQ(http_status(index), 412u);

  // A name survives a move and a copy.
  error moved = std::move(stale);
  EXPECT_EQ(api_code(moved), "stale_lease");
  error copy = moved;
  EXPECT_EQ(copy.name(), "stale_lease");
  EXPECT_EQ(copy.code(), errc::conflict);
}

// Verifies the serialization accessors rebuild an error field by field.
TEST(ErrorTest, RefAccessorsRebuildAnError) {
  error e;
  e.code_ref() = errc::application;
  e.name_ref() = "teapot";
  e.message_ref() = "short";
  e.status_ref() = 418;
  EXPECT_EQ(e.code(), errc::application);
  EXPECT_EQ(e.name(), "teapot");
  EXPECT_EQ(e.message(), "short");
  EXPECT_EQ(http_status(e), 418u);
  EXPECT_EQ(api_code(e), "teapot");
}

// -- results ------------------------------------------------------------------------------

// Verifies a result built from a value is ok and gives the value by every accessor.
TEST(ResultTest, ValueIsOk) {
  result<std::string> r = std::string("hello");
  EXPECT_TRUE(r.ok());
  EXPECT_TRUE(static_cast<bool>(r));
  EXPECT_EQ(r.value(), "hello");
  EXPECT_EQ(*r, "hello");
  EXPECT_EQ(r->size(), 5u);
  r.value() += "!";
  EXPECT_EQ(*r, "hello!");
  const auto& c = r;
  EXPECT_EQ(c.value(), "hello!");
  EXPECT_EQ(c->size(), 6u);
}

// Verifies a result built from an error is not ok and gives the error.
TEST(ResultTest, ErrorIsNotOk) {
  result<std::string> r = error{errc::not_found, "no such key"};
  EXPECT_FALSE(r.ok());
  EXPECT_FALSE(static_cast<bool>(r));
  EXPECT_EQ(r.error().code(), errc::not_found);
  EXPECT_EQ(r.error().message(), "no such key");
}

// Verifies a result of an int holds zero as a value, not as a failure.
TEST(ResultTest, FalsyValueIsStillOk) {
  result<int> zero = 0;
  EXPECT_TRUE(zero.ok());
  EXPECT_EQ(*zero, 0);
  result<bool> no = false;
  EXPECT_TRUE(no.ok());
  EXPECT_FALSE(*no);
}

// Verifies std::in_place builds the value from constructor arguments.
TEST(ResultTest, InPlaceBuildsValue) {
  result<std::pair<int, std::string>> r{std::in_place, 7, "seven"};
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->first, 7);
  EXPECT_EQ(r->second, "seven");
}

// Verifies a move-only value moves in and out of a result.
TEST(ResultTest, MovesValueOut) {
  result<std::unique_ptr<int>> r = std::make_unique<int>(42);
  ASSERT_TRUE(r.ok());
  std::unique_ptr<int> p = std::move(r).value();
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(*p, 42);

  result<std::unique_ptr<int>> q = std::make_unique<int>(7);
  std::unique_ptr<int> via_star = *std::move(q);
  ASSERT_NE(via_star, nullptr);
  EXPECT_EQ(*via_star, 7);
}

// Verifies moving a result keeps what it held: the value or the error.
TEST(ResultTest, MoveConstructionKeepsState) {
  result<std::string> a = std::string("value");
  result<std::string> b = std::move(a);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*b, "value");

  result<std::string> e = error{errc::conflict, "stale_lease", "m"};
  result<std::string> f = std::move(e);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.error().code(), errc::conflict);
  EXPECT_EQ(f.error().name(), "stale_lease");
}

// Verifies the error moves out of a failed result whole.
TEST(ResultTest, MovesErrorOut) {
  result<int> r = error{errc::timeout, "lease_timeout", "took too long"};
  error e = std::move(r).error();
  EXPECT_EQ(e.code(), errc::timeout);
  EXPECT_EQ(e.name(), "lease_timeout");
  EXPECT_EQ(e.message(), "took too long");

  result<void> v = error{errc::gone, "m"};
  error g = std::move(v).error();
  EXPECT_EQ(g.code(), errc::gone);
  EXPECT_EQ(g.message(), "m");
}

// Verifies a default result<void> is ok and converts to true; an error converts to false
// and keeps its code and message.
TEST(ResultTest, BoolConversionMeansOk) {
  result<void> good;
  EXPECT_TRUE(good.ok());
  EXPECT_TRUE(static_cast<bool>(good));
  result<void> bad = error{errc::not_found, "k"};
  EXPECT_FALSE(bad.ok());
  EXPECT_FALSE(static_cast<bool>(bad));
  EXPECT_EQ(bad.error().code(), errc::not_found);
  EXPECT_EQ(bad.error().message(), "k");
  result<std::string> value = std::string();
  EXPECT_TRUE(static_cast<bool>(value)) << "an empty value is still a value";
  result<std::string> failed = error{errc::internal, "m"};
  EXPECT_FALSE(static_cast<bool>(failed));
}

// Verifies result<void>: default and core::ok() succeed, an error fails and keeps it
// through moves and assignments.
TEST(ResultTest, VoidResult) {
  result<void> def;
  EXPECT_TRUE(def.ok());
  EXPECT_TRUE(static_cast<bool>(def));
  result<void> good = ok();
  EXPECT_TRUE(good.ok());
  result<void> bad = error{errc::storage_failed, "disk full"};
  EXPECT_FALSE(bad.ok());
  EXPECT_FALSE(static_cast<bool>(bad));
  EXPECT_EQ(bad.error().code(), errc::storage_failed);
  EXPECT_EQ(bad.error().message(), "disk full");
  result<void> moved = std::move(bad);
  ASSERT_FALSE(moved.ok());
  EXPECT_EQ(moved.error().message(), "disk full");
  result<void> assigned = ok();
  assigned = std::move(moved);
  EXPECT_FALSE(assigned.ok());
  assigned = ok();
  EXPECT_TRUE(assigned.ok());
}

// Verifies an error converts into a result of any type, as returned by a function.
TEST(ResultTest, ErrorConvertsToAnyResult) {
  auto fails = []() -> result<std::vector<int>> { return error{errc::overloaded, "busy"}; };
  auto works = []() -> result<std::vector<int>> { return std::vector<int>{1, 2}; };
  auto r = fails();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), errc::overloaded);
  auto w = works();
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->size(), 2u);
}

// -- the reply path -----------------------------------------------------------------------

/// What a reply_to made by `recorder` received.
template <class T>
struct received {
  int calls = 0;
  std::vector<result<T>> results;
};

template <class T>
reply_to<T> recorder(const std::shared_ptr<received<T>>& into) {
  return reply_to<T>::to([into](result<T>&& r) {
    ++into->calls;
    into->results.push_back(std::move(r));
  });
}

// Verifies reply_to::to delivers a value to the lambda once, and the handle is empty after.
TEST(ReplyTest, ToDeliversOnce) {
  auto got = std::make_shared<received<int>>();
  auto reply = recorder(got);
  EXPECT_TRUE(static_cast<bool>(reply));
  EXPECT_NE(reply.target(), nullptr);
  reply.deliver(5);
  ASSERT_EQ(got->calls, 1);
  ASSERT_TRUE(got->results[0].ok());
  EXPECT_EQ(*got->results[0], 5);
  EXPECT_FALSE(static_cast<bool>(reply));
  EXPECT_EQ(reply.target(), nullptr);
}

// Verifies a second deliver through the same handle reaches nobody.
TEST(ReplyTest, SecondDeliverThroughSameHandleDoesNothing) {
  auto got = std::make_shared<received<int>>();
  auto reply = recorder(got);
  reply.deliver(1);
  reply.deliver(2);
  reply.deliver(error{errc::internal, "late"});
  ASSERT_EQ(got->calls, 1);
  EXPECT_EQ(*got->results[0], 1);
}

// Verifies an error is delivered as an error.
TEST(ReplyTest, DeliversErrors) {
  auto got = std::make_shared<received<std::string>>();
  auto reply = recorder(got);
  reply.deliver(error{errc::not_found, "doc_not_found", "no such document"});
  ASSERT_EQ(got->calls, 1);
  ASSERT_FALSE(got->results[0].ok());
  EXPECT_EQ(got->results[0].error().code(), errc::not_found);
  EXPECT_EQ(got->results[0].error().name(), "doc_not_found");
}

// Verifies copies share one answer: a copy delivers to the same lambda, empties only
// itself, and the other copies still point at the answer.
TEST(ReplyTest, CopiesShareTheAnswer) {
  auto got = std::make_shared<received<int>>();
  auto original = recorder(got);
  auto copy = original;
  EXPECT_EQ(copy.target(), original.target());
  const auto target = original.target();
  copy.deliver(3);
  ASSERT_EQ(got->calls, 1);
  EXPECT_EQ(*got->results[0], 3);
  EXPECT_FALSE(static_cast<bool>(copy));
  EXPECT_TRUE(static_cast<bool>(original));
  EXPECT_EQ(original.target(), target);
  // The answer is shared, not duplicated: the original reaches the same lambda.
  original.deliver(4);
  ASSERT_EQ(got->calls, 2);
  EXPECT_EQ(*got->results[1], 4);
  EXPECT_FALSE(static_cast<bool>(original));
}

// Verifies a moved-from handle is empty and the moved-to one delivers.
TEST(ReplyTest, MoveTransfersTheAnswer) {
  auto got = std::make_shared<received<int>>();
  auto from = recorder(got);
  auto to = std::move(from);
  EXPECT_FALSE(static_cast<bool>(from)); // NOLINT(bugprone-use-after-move)
  from.deliver(1);
  EXPECT_EQ(got->calls, 0);
  to.deliver(2);
  ASSERT_EQ(got->calls, 1);
  EXPECT_EQ(*got->results[0], 2);
}

// Verifies an empty reply_to (an actor caller) ignores deliver.
TEST(ReplyTest, EmptyReplyToIgnoresDeliver) {
  reply_to<int> empty;
  EXPECT_FALSE(static_cast<bool>(empty));
  EXPECT_EQ(empty.target(), nullptr);
  empty.deliver(1);
  empty.deliver(error{errc::internal, "m"});
  EXPECT_FALSE(static_cast<bool>(empty));
  reply_to<int> null{std::shared_ptr<answer<int>>{}};
  EXPECT_FALSE(static_cast<bool>(null));
  null.deliver(1);
}

/// An answer that counts its deliveries and records the last value.
struct counting_answer final : answer<std::string> {
  void deliver(result<std::string>&& r) override {
    ++deliveries;
    last = r.ok() ? *r : "<" + std::string(to_string(r.error().code())) + ">";
  }
  int deliveries = 0;
  std::string last;
};

// Verifies a reply_to over an answer object delivers to it and then lets it go: the
// handle holds no reference after the one deliver.
TEST(ReplyTest, DeliverReleasesTheAnswer) {
  auto target = std::make_shared<counting_answer>();
  std::weak_ptr<counting_answer> watch = target;
  reply_to<std::string> reply{target};
  EXPECT_EQ(reply.target(), target);
  reply.deliver(std::string("done"));
  EXPECT_EQ(target->deliveries, 1);
  EXPECT_EQ(target->last, "done");
  target.reset();
  EXPECT_TRUE(watch.expired()) << "the delivered handle still holds the answer";
}

// Verifies a lambda holding move-only state works, and is destroyed once delivered.
TEST(ReplyTest, MoveOnlyLambdaAndValue) {
  auto got = std::make_shared<received<std::unique_ptr<int>>>();
  auto token = std::make_unique<int>(9);
  auto held = std::make_shared<int>(0);
  std::weak_ptr<int> watch = held;
  auto reply = reply_to<std::unique_ptr<int>>::to(
    [got, token = std::move(token), held = std::move(held)](result<std::unique_ptr<int>>&& r) {
      ++got->calls;
      EXPECT_EQ(*token, 9);
      got->results.push_back(std::move(r));
    });
  EXPECT_FALSE(watch.expired());
  reply.deliver(std::make_unique<int>(10));
  ASSERT_EQ(got->calls, 1);
  ASSERT_TRUE(got->results[0].ok());
  EXPECT_EQ(**got->results[0], 10);
  EXPECT_TRUE(watch.expired()) << "the lambda outlived its one delivery";
}

// Verifies reply_to<void> delivers success and failure.
TEST(ReplyTest, VoidReplies) {
  auto got = std::make_shared<received<void>>();
  auto a = recorder(got);
  auto b = recorder(got);
  a.deliver(ok());
  b.deliver(error{errc::shutting_down, "stopping"});
  ASSERT_EQ(got->calls, 2);
  EXPECT_TRUE(got->results[0].ok());
  ASSERT_FALSE(got->results[1].ok());
  EXPECT_EQ(got->results[1].error().code(), errc::shutting_down);
}

// -- type lists ---------------------------------------------------------------------------

struct a {};
struct b {};
struct c {};

static_assert(type_list<>::size == 0);
static_assert(type_list<a, b, c>::size == 3);
static_assert(std::is_same_v<concat_t<>, type_list<>>);
static_assert(std::is_same_v<concat_t<type_list<a>>, type_list<a>>);
static_assert(std::is_same_v<concat_t<type_list<>, type_list<>>, type_list<>>);
static_assert(std::is_same_v<concat_t<type_list<a>, type_list<b, c>>, type_list<a, b, c>>);
static_assert(
  std::is_same_v<concat_t<type_list<a, b>, type_list<>, type_list<c>>, type_list<a, b, c>>);
static_assert(std::is_same_v<concat_t<type_list<c>, type_list<b>, type_list<a>, type_list<a>>,
                             type_list<c, b, a, a>>,
              "concat keeps order and duplicates");
static_assert(contains_v<type_list<a, b>, a>);
static_assert(contains_v<type_list<a, b>, b>);
static_assert(!contains_v<type_list<a, b>, c>);
static_assert(!contains_v<type_list<>, a>);
static_assert(!contains_v<type_list<a>, const a>, "contains compares exact types");
static_assert(!contains_v<type_list<int>, long>);
static_assert(contains_v<concat_t<type_list<a>, type_list<c>>, c>);

// Verifies for_each_type calls the function once per type, in list order.
TEST(TypeListTest, ForEachTypeVisitsInOrder) {
  std::vector<std::size_t> sizes;
  for_each_type(type_list<char, std::uint32_t, std::uint16_t, std::uint64_t>{},
                [&](auto tag) { sizes.push_back(sizeof(typename decltype(tag)::type)); });
  EXPECT_EQ(sizes, (std::vector<std::size_t>{1, 4, 2, 8}));
  int calls = 0;
  for_each_type(type_list<>{}, [&](auto) { ++calls; });
  EXPECT_EQ(calls, 0);
}

// -- names --------------------------------------------------------------------------------

// Verifies names are 1 to 64 characters: empty and 65 are refused, 1 and 64 accepted.
TEST(NamesTest, ValidNameLengthBoundaries) {
  EXPECT_FALSE(valid_name(""));
  EXPECT_TRUE(valid_name("a"));
  EXPECT_TRUE(valid_name(std::string(64, 'c')));
  EXPECT_FALSE(valid_name(std::string(65, 'c')));
}

// Verifies names take [A-Za-z0-9_-] and refuse the characters right outside each range,
// the separators ids allow, and non-ASCII bytes.
TEST(NamesTest, ValidNameCharacters) {
  EXPECT_TRUE(valid_name("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"));
  EXPECT_TRUE(valid_name("-"));
  EXPECT_TRUE(valid_name("_"));
  for (char bad : {'@', '[', '`', '{', '/', ':', '.', ' ', '%', '\0', '\x7f'}) {
    const std::string name = std::string("a") + bad + "b";
    EXPECT_FALSE(valid_name(name)) << "character " << static_cast<int>(bad);
  }
  EXPECT_FALSE(valid_name("caf\xc3\xa9"));
  EXPECT_FALSE(valid_name("a/b"));
  EXPECT_FALSE(valid_name("a.b"));
  EXPECT_FALSE(valid_name("."));
  EXPECT_FALSE(valid_name(".."));
}

// Verifies ids are 1 to 256 characters: empty and 257 are refused, 1 and 256 accepted.
TEST(NamesTest, ValidIdLengthBoundaries) {
  EXPECT_FALSE(valid_id(""));
  EXPECT_TRUE(valid_id("i"));
  EXPECT_TRUE(valid_id(std::string(256, 'i')));
  EXPECT_FALSE(valid_id(std::string(257, 'i')));
}

// Verifies ids take [A-Za-z0-9_.:@-] and refuse what lies outside, including the bytes
// right next to each allowed range, path separators and non-ASCII bytes.
TEST(NamesTest, ValidIdCharacters) {
  EXPECT_TRUE(valid_id("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:@-"));
  EXPECT_TRUE(valid_id("user@example.com"));
  EXPECT_TRUE(valid_id("order:2024-01-01"));
  for (char bad : {'[', '`', '{', '/', '?', ' ', '%', '#', '\\', '\0', '\x01', '\x7f'}) {
    const std::string id = std::string("a") + bad + "b";
    EXPECT_FALSE(valid_id(id)) << "character " << static_cast<int>(bad);
  }
  EXPECT_FALSE(valid_id("caf\xc3\xa9"));
  EXPECT_FALSE(valid_id(std::string("a\0b", 3)));
}

// Verifies "." and ".." are refused as ids (they would name directories in a path), but
// ids that merely contain or start with dots are fine.
TEST(NamesTest, DotIdsAreRefused) {
  EXPECT_FALSE(valid_id("."));
  EXPECT_FALSE(valid_id(".."));
  EXPECT_TRUE(valid_id("..."));
  EXPECT_TRUE(valid_id(".a"));
  EXPECT_TRUE(valid_id("a.."));
  EXPECT_TRUE(valid_id("a.b"));
}

} // namespace
} // namespace shoal::core
