// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <string>
#include <utility>

namespace shoal::storage {

/// Outcome classes of a storage call. `ok` is the only success value.
enum class errc : std::uint8_t {
  ok = 0,
  not_found,        ///< the key does not exist (never an empty value)
  io_error,         ///< the disk or file system failed
  corruption,       ///< data on disk failed a checksum or format check
  invalid_argument, ///< the caller broke a precondition (bad shard index, bad options)
  incompatible,     ///< the data directory was written with another layout (shard count, format)
  unavailable,      ///< the store is closed or shutting down
};

/// Returns a stable lower-case name of `code`, e.g. "io_error".
const char* to_string(errc code) noexcept;

/// Result of a storage call: a code plus a human-readable message for logs.
/// Cheap to copy when ok (no allocation).
class [[nodiscard]] status {
public:
  status() noexcept = default;
  status(errc code, std::string message) : code_(code), message_(std::move(message)) {}

  static status ok() noexcept {
    return {};
  }

  bool is_ok() const noexcept {
    return code_ == errc::ok;
  }
  explicit operator bool() const noexcept {
    return is_ok();
  }
  errc code() const noexcept {
    return code_;
  }
  const std::string& message() const noexcept {
    return message_;
  }

  /// "ok" or "<code>: <message>".
  std::string to_string() const;

private:
  errc code_ = errc::ok;
  std::string message_;
};

} // namespace shoal::storage
