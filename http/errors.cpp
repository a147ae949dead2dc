// SPDX-License-Identifier: Apache-2.0
#include "http/errors.hpp"
#include "util/json.hpp"

#include <boost/beast/http/field.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

namespace shoal::http {

namespace bhttp = boost::beast::http;

response error_response(bhttp::status status, std::string_view code, std::string_view message,
                        unsigned version) {
  boost::json::object inner;
  inner["code"] = code;
  inner["message"] = message;
  boost::json::object outer;
  outer["error"] = std::move(inner);
  response res{status, version};
  res.set(bhttp::field::content_type, "application/json");
  res.body() = util::to_json(outer);
  res.prepare_payload();
  // A refusal invites a retry; an answer that does not know whether the write happened
  // does not (a retry could apply it twice).
  if ((status == bhttp::status::service_unavailable || status == bhttp::status::gateway_timeout
       || status == bhttp::status::too_many_requests)
      && code != "outcome_unknown")
    res.set(bhttp::field::retry_after, "1");
  return res;
}

namespace {

/// What the body says when the error came without a message: every answer says what
/// happened.
std::string_view default_message(core::errc code) noexcept {
  switch (code) {
  case core::errc::invalid_argument:
    return "the request cannot be served";
  case core::errc::not_found:
    return "not found";
  case core::errc::precondition_failed:
    return "a precondition failed";
  case core::errc::conflict:
    return "the current state does not allow this";
  case core::errc::gone:
    return "no longer kept";
  case core::errc::too_large:
    return "too large";
  case core::errc::unsupported:
    return "the body must be application/json";
  case core::errc::storage_failed:
  case core::errc::corrupt:
    return "the store failed";
  case core::errc::shutting_down:
    return "the node is shutting down";
  case core::errc::shard_unavailable:
    return "the shard's node is not answering";
  case core::errc::overloaded:
    return "too much work in flight";
  case core::errc::timeout:
    return "no answer in time";
  case core::errc::outcome_unknown:
    return "no answer in time: the write may or may not have been applied";
  case core::errc::application:
    return "the method failed";
  case core::errc::incompatible:
  case core::errc::internal:
    break;
  }
  return "internal error";
}

} // namespace

response error_response(const core::error& e, unsigned version) {
  return error_response(static_cast<bhttp::status>(core::http_status(e)), core::api_code(e),
                        e.message().empty() ? default_message(e.code())
                                            : std::string_view(e.message()),
                        version);
}

core::error invalid(std::string name, std::string message) {
  return core::error{core::errc::invalid_argument, std::move(name), std::move(message)};
}

} // namespace shoal::http
