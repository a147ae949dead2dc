// SPDX-License-Identifier: Apache-2.0
#include "http/errors.hpp"

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
  res.body() = boost::json::serialize(outer);
  res.prepare_payload();
  if (status == bhttp::status::service_unavailable || status == bhttp::status::gateway_timeout
      || status == bhttp::status::too_many_requests)
    res.set(bhttp::field::retry_after, "1");
  return res;
}

response error_response(const core::error& e, unsigned version) {
  return error_response(static_cast<bhttp::status>(core::http_status(e)), core::api_code(e),
                        e.message(), version);
}

core::error invalid(std::string name, std::string message) {
  return core::error{core::errc::invalid_argument, std::move(name), std::move(message)};
}

} // namespace shoal::http
