// SPDX-License-Identifier: Apache-2.0
#pragma once

// The one way Shoal parses JSON: bodies at the edge, stored documents, patches, query
// bodies, actor arguments and state, job payloads. One depth limit everywhere (a body the
// edge accepts must not fail to parse later, deeper in the shard), and only numbers JSON
// can write back: Boost.JSON reads 1e999 or a 5,000-digit integer as an infinite double
// and would serialize it as `Infinity`, which is not JSON.

#include <string>
#include <string_view>

#include <boost/json/error.hpp>
#include <boost/json/storage_ptr.hpp>
#include <boost/json/value.hpp>

namespace shoal::util {

/// The deepest nesting of arrays and objects Shoal accepts anywhere.
inline constexpr unsigned json_max_depth = 64;

/// Parses `text`; on failure sets `ec` (too_deep past json_max_depth,
/// exponent_overflow for a number no double can hold) and returns null.
boost::json::value parse_json(std::string_view text, boost::json::error_code& ec,
                              boost::json::storage_ptr sp = {});

/// Why `v` could not be written as JSON and parsed back by parse_json (a number that is
/// infinite or NaN, or nesting deeper than json_max_depth), or nullptr when it can: the
/// check for what code built (an actor's state or result) before it is serialized.
const char* unstorable(const boost::json::value& v) noexcept;

/// `v` as JSON text, as Shoal writes every JSON it stores or answers: as
/// boost::json::serialize, except that a double takes the shortest form that reads back
/// as the same double, written plainly where that is shortest ("21.5", "0.1", "1e+300";
/// Boost.JSON 1.81 writes "2.15E1" and "1E-1"), and keeps a ".0" when integral, so it
/// reads back as a double ("2.0"). A number that is not finite (which parse_json never
/// yields; see unstorable) is written as null.
std::string to_json(const boost::json::value& v);
std::string to_json(const boost::json::object& o);
std::string to_json(const boost::json::array& a);

} // namespace shoal::util
