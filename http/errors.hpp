// SPDX-License-Identifier: Apache-2.0
#pragma once

// The edge's error responses, all through one table: core::http_status and
// core::api_code (core/error.hpp) map every error to its status and stable code; this
// renders the JSON body `{"error":{"code":..,"message":..}}`. HTTP-level refusals that
// are not errors of a request's content (405 with Allow, 431) use the same body.

#include <string>
#include <string_view>

#include <boost/beast/http/status.hpp>

#include "core/error.hpp"
#include "http/message.hpp"

namespace shoal::http {

/// The response for `e`: its status and code from the one table, its message, and
/// Retry-After on 503 and 504.
response error_response(const core::error& e, unsigned version);

/// A JSON error with an explicit status (HTTP-level answers: 405, 431, 408…).
response error_response(boost::beast::http::status status, std::string_view code,
                        std::string_view message, unsigned version);

/// 400 with `name` as the code: a request that broke a rule of the API.
core::error invalid(std::string name, std::string message);

/// The media type of a Content-Type value or of one Accept range: parameters and the
/// blanks around it dropped ("application/json; charset=utf-8" -> "application/json").
std::string_view media_type_of(std::string_view value);

/// Whether `value` names the media type `media`, ignoring case and parameters.
bool media_type_is(std::string_view value, std::string_view media);

/// Whether an Accept header asks for RFC 9457 problem details
/// (application/problem+json among its media ranges, not with q=0).
bool wants_problem(std::string_view accept);

/// Rewrites an error response of ours (a `{"error":{"code","message"}}` body) as problem
/// details: `{"type":"about:blank","title","status","detail","code"}` as
/// application/problem+json, headers kept. Anything else is left as it is.
void to_problem(response& res);

} // namespace shoal::http
