// SPDX-License-Identifier: Apache-2.0
#pragma once

// How JSON values order, for indexes, queries and cursors. Values compare by JSON type
// first, then by value:
//
//   missing < null < false < true < numbers (numerically) < strings (bytewise, UTF-8)
//
// Arrays and objects are not comparable: they are never indexed, and a query may not
// compare against them. A *value key* is a byte string whose bytewise order is this
// order, and no value key is a prefix of another, so `value_key ++ id` orders by value
// then id. Value keys are stored in index entries: an on-disk contract
// (docs/architecture.md "Indexes").

#include <optional>
#include <string>
#include <string_view>

#include <boost/json/value.hpp>

namespace shoal::query {

/// Whether `v` can be compared, indexed and used in a condition: null, bool, number, string.
bool is_scalar(const boost::json::value& v) noexcept;

/// Appends the value key of scalar `v` to `out`. Layout: one type byte (missing 0x01,
/// null 0x02, false 0x03, true 0x04, number 0x05, string 0x06); a number is then the 8
/// bytes of its IEEE double in an order-preserving transform (-0 as +0); a string is its
/// bytes with 0x00 written as 0x00 0xFF, then 0x00 0x01. Returns false (and appends
/// nothing) when `v` is not scalar.
bool append_value_key(std::string& out, const boost::json::value& v);

/// Appends the value key of "missing" (a document without the field).
void append_missing_key(std::string& out);

/// The value key of scalar `v`, or nullopt.
std::optional<std::string> value_key(const boost::json::value& v);

/// The rank of `v`'s type in the order above: null 0, bool 1, number 2, string 3; arrays
/// (4) and objects (5), never compared by contract, rank last so the order stays total.
/// Ranges match only values of their bounds' rank.
int type_rank(const boost::json::value& v) noexcept;

/// -1, 0 or 1 by the order above. Numbers compare exactly (int64/uint64/double mixed),
/// so two numbers can differ while their value keys (doubles) are equal. Both scalar.
int compare(const boost::json::value& a, const boost::json::value& b) noexcept;

/// The value at a dotted path ("a.b.c") of `doc`, or nullptr when a step is missing or
/// not an object.
const boost::json::value* lookup(const boost::json::value& doc, std::string_view path) noexcept;

/// Field paths of indexes, conditions and order_by: 1 to 8 names of
/// [A-Za-z0-9_-]{1,64}, separated by single dots, at most 256 bytes in all.
bool valid_path(std::string_view path) noexcept;

} // namespace shoal::query
