// SPDX-License-Identifier: Apache-2.0
#include "storage/status.hpp"

namespace shoal::storage {

const char* to_string(errc code) noexcept {
  switch (code) {
  case errc::ok:
    return "ok";
  case errc::not_found:
    return "not_found";
  case errc::io_error:
    return "io_error";
  case errc::corruption:
    return "corruption";
  case errc::invalid_argument:
    return "invalid_argument";
  case errc::incompatible:
    return "incompatible";
  case errc::unavailable:
    return "unavailable";
  }
  // Only reachable through a cast of an out-of-range integer.
  return "unknown";
}

std::string status::to_string() const {
  if (is_ok()) return "ok";
  std::string result = storage::to_string(code_);
  result += ": ";
  result += message_;
  return result;
}

} // namespace shoal::storage
