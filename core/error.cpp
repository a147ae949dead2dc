// SPDX-License-Identifier: Apache-2.0
#include "core/error.hpp"

namespace shoal::core {

const char* to_string(errc x) noexcept {
  switch (x) {
  case errc::invalid_argument:
    return "invalid_argument";
  case errc::not_found:
    return "not_found";
  case errc::precondition_failed:
    return "precondition_failed";
  case errc::conflict:
    return "conflict";
  case errc::gone:
    return "gone";
  case errc::too_large:
    return "too_large";
  case errc::unsupported:
    return "unsupported";
  case errc::storage_failed:
    return "storage_failed";
  case errc::corrupt:
    return "corrupt";
  case errc::incompatible:
    return "incompatible";
  case errc::shutting_down:
    return "shutting_down";
  case errc::shard_unavailable:
    return "shard_unavailable";
  case errc::overloaded:
    return "overloaded";
  case errc::timeout:
    return "timeout";
  case errc::outcome_unknown:
    return "outcome_unknown";
  case errc::internal:
    return "internal";
  case errc::application:
    return "application";
  }
  return "unknown";
}

std::uint16_t http_status(const error& e) noexcept {
  switch (e.code()) {
  case errc::invalid_argument:
    return 400;
  case errc::not_found:
    return 404;
  case errc::precondition_failed:
    return 412;
  case errc::conflict:
    return 409;
  case errc::gone:
    return 410;
  case errc::too_large:
    return 413;
  case errc::unsupported:
    return 415;
  case errc::storage_failed:
  case errc::corrupt:
  case errc::shutting_down:
  case errc::shard_unavailable:
  case errc::overloaded:
    return 503;
  case errc::timeout:
  case errc::outcome_unknown:
    return 504;
  case errc::incompatible:
  case errc::internal:
    return 500;
  case errc::application:
    return e.status() >= 400 && e.status() <= 599 ? e.status() : 500;
  }
  return 500;
}

std::string_view api_code(const error& e) noexcept {
  if (!e.name().empty()) return e.name();
  switch (e.code()) {
  case errc::invalid_argument:
    return "bad_request";
  case errc::not_found:
    return "not_found";
  case errc::precondition_failed:
    return "precondition_failed";
  case errc::conflict:
    return "conflict";
  case errc::gone:
    return "gone";
  case errc::too_large:
    return "too_large";
  case errc::unsupported:
    return "unsupported_media_type";
  case errc::storage_failed:
  case errc::corrupt:
    return "storage_unavailable";
  case errc::shutting_down:
    return "shutting_down";
  case errc::shard_unavailable:
    return "shard_unavailable";
  case errc::overloaded:
    return "overloaded";
  case errc::timeout:
    return "timeout";
  case errc::outcome_unknown:
    return "outcome_unknown";
  case errc::incompatible:
  case errc::internal:
  case errc::application:
    return "internal_error";
  }
  return "internal_error";
}

std::string error::to_string() const {
  std::string s = core::to_string(code_);
  if (!name_.empty()) {
    s += " (";
    s += name_;
    s += ')';
  }
  if (!message_.empty()) {
    s += ": ";
    s += message_;
  }
  return s;
}

} // namespace shoal::core
