// SPDX-License-Identifier: Apache-2.0
#include "http/errors.hpp"
#include "util/json.hpp"
#include "util/text.hpp"

#include <boost/beast/core/string.hpp>
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
  return error_response(
    static_cast<bhttp::status>(core::http_status(e)), core::api_code(e),
    e.message().empty() ? default_message(e.code()) : std::string_view(e.message()), version);
}

core::error invalid(std::string name, std::string message) {
  return core::error{core::errc::invalid_argument, std::move(name), std::move(message)};
}

using util::trim;

std::string_view media_type_of(std::string_view value) {
  return trim(value.substr(0, value.find(';')));
}

bool media_type_is(std::string_view value, std::string_view media) {
  return boost::beast::iequals(media_type_of(value), media);
}

bool wants_problem(std::string_view accept) {
  while (!accept.empty()) {
    const auto comma = accept.find(',');
    auto range = accept.substr(0, comma);
    accept = comma == std::string_view::npos ? std::string_view{} : accept.substr(comma + 1);
    if (!media_type_is(range, "application/problem+json")) continue;
    const auto semi = range.find(';');
    // q=0 means "not this one"; any other weight asks for it.
    bool refused = false;
    for (auto params = semi == std::string_view::npos ? std::string_view{} : range.substr(semi + 1);
         !params.empty();) {
      const auto next = params.find(';');
      auto param = trim(params.substr(0, next));
      params = next == std::string_view::npos ? std::string_view{} : params.substr(next + 1);
      if (param.size() >= 2 && (param[0] == 'q' || param[0] == 'Q') && param[1] == '=') {
        auto q = param.substr(2);
        refused = !q.empty() && q.find_first_not_of("0.") == std::string_view::npos;
      }
    }
    if (!refused) return true;
  }
  return false;
}

void to_problem(response& res) {
  if (res[bhttp::field::content_type] != "application/json") return;
  boost::json::error_code ec;
  auto body = util::parse_json(res.body(), ec);
  if (ec || !body.is_object()) return;
  const auto* error = body.get_object().if_contains("error");
  if (!error || !error->is_object()) return;
  const auto* code = error->get_object().if_contains("code");
  const auto* message = error->get_object().if_contains("message");
  if (!code || !code->is_string() || !message || !message->is_string()) return;
  boost::json::object problem;
  problem["type"] = "about:blank";
  problem["title"] = std::string_view(bhttp::obsolete_reason(res.result()));
  problem["status"] = res.result_int();
  problem["detail"] = *message;
  problem["code"] = *code;
  res.set(bhttp::field::content_type, "application/problem+json");
  res.body() = util::to_json(problem);
  res.prepare_payload();
}

} // namespace shoal::http
