// SPDX-License-Identifier: Apache-2.0
#pragma once

// The one error model (docs/architecture.md "The middle"): an error is one `errc`, a
// message for people, and for some codes a stable name clients branch on. Every layer
// returns errors as values (core::result); the edge maps them to HTTP in one table
// (http/errors.cpp), and protocol/errors.cpp carries them between actors.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace shoal::core {

/// Classes of failure. The comment gives the HTTP answer of http/errors.cpp.
enum class errc : std::uint8_t {
  invalid_argument = 1, ///< the request broke a rule; `name` says which (400)
  not_found,            ///< 404 not_found (or the name given)
  precondition_failed,  ///< 412 precondition_failed
  conflict,             ///< the state does not allow it, e.g. stale_lease (409)
  gone,                 ///< 410 gone
  too_large,            ///< 413, e.g. value_too_large
  unsupported,          ///< 415 unsupported_media_type
  storage_failed,       ///< the disk or the store failed; nothing acknowledged (503 storage_unavailable)
  corrupt,              ///< stored bytes failed a check (503 storage_unavailable)
  incompatible,         ///< the data directory was written with another layout (start-up only)
  shutting_down,        ///< the node or shard is stopping (503 shutting_down)
  shard_unavailable,    ///< the node that owns the shard is down or not answering (503)
  overloaded,           ///< too much work in flight (503 overloaded)
  timeout,              ///< no answer in time (504 timeout, or the name given)
  internal,             ///< a broken invariant: a bug (500 internal_error)
  application,          ///< a virtual actor's own failure: it chose the status and the name
  /// A write was sent and no answer came (a timeout, or its node went down with it in
  /// flight): it may or may not have been applied (504 outcome_unknown, no Retry-After).
  outcome_unknown,
};

/// A stable lower-case name of `x`, e.g. "not_found".
const char* to_string(errc x) noexcept;

/// A failure: its class, a message for people, and an optional stable name (the `code`
/// of the JSON error body when it is not the class's default). Cheap to move; a default
/// error is `internal`.
class error {
public:
  error() = default;
  error(errc code, std::string message) : code_(code), message_(std::move(message)) {}
  error(errc code, std::string name, std::string message)
      : code_(code), message_(std::move(message)), name_(std::move(name)) {}

  /// An actor method's own failure, answered with `status` (400..599) and `name`.
  static error application(std::uint16_t status, std::string name, std::string message) {
    error e{errc::application, std::move(name), std::move(message)};
    e.status_ = status;
    return e;
  }

  errc code() const noexcept {
    return code_;
  }
  const std::string& message() const noexcept {
    return message_;
  }
  /// The stable name given at construction; empty: the default of code().
  const std::string& name() const noexcept {
    return name_;
  }
  /// The HTTP status an application error chose; 0 for every other code.
  std::uint16_t status() const noexcept {
    return status_;
  }

  /// "<code>: <message>" (with the name when one was given).
  std::string to_string() const;

  // For serialization (protocol/), which rebuilds errors field by field.
  std::string& message_ref() noexcept {
    return message_;
  }
  std::string& name_ref() noexcept {
    return name_;
  }
  errc& code_ref() noexcept {
    return code_;
  }
  std::uint16_t& status_ref() noexcept {
    return status_;
  }

private:
  errc code_ = errc::internal;
  std::string message_;
  std::string name_;
  std::uint16_t status_ = 0;
};

/// The one table from errors to what a client sees (docs/api.md "Errors"): the HTTP
/// status of `e` (an application error's own status; 500 for a code out of range).
std::uint16_t http_status(const error& e) noexcept;

/// The stable `code` of the JSON error body: the name `e` was given, else its class's
/// default ("not_found", "storage_unavailable", …).
std::string_view api_code(const error& e) noexcept;

inline bool operator==(const error& a, errc b) noexcept {
  return a.code() == b;
}
inline bool operator!=(const error& a, errc b) noexcept {
  return a.code() != b;
}

} // namespace shoal::core
