// SPDX-License-Identifier: Apache-2.0
#pragma once

// `result<T>`: a value or a core::error, returned instead of a status plus out-parameters.
// A small std::expected for C++17.

#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

#include "core/error.hpp"

namespace shoal::core {

template <class T>
class [[nodiscard]] result {
public:
  static_assert(!std::is_same_v<std::decay_t<T>, core::error>, "result<error> is meaningless");

  result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
  result(core::error e) : v_(std::in_place_index<1>, std::move(e)) {}
  /// Builds the value in place.
  template <class... Args>
  explicit result(std::in_place_t, Args&&... args)
      : v_(std::in_place_index<0>, std::forward<Args>(args)...) {}

  bool ok() const noexcept {
    return v_.index() == 0;
  }
  explicit operator bool() const noexcept {
    return ok();
  }

  /// The value; call only when ok().
  T& value() & noexcept {
    return *std::get_if<0>(&v_);
  }
  const T& value() const& noexcept {
    return *std::get_if<0>(&v_);
  }
  T&& value() && noexcept {
    return std::move(*std::get_if<0>(&v_));
  }
  T& operator*() & noexcept {
    return value();
  }
  const T& operator*() const& noexcept {
    return value();
  }
  T&& operator*() && noexcept {
    return std::move(*this).value();
  }
  T* operator->() noexcept {
    return &value();
  }
  const T* operator->() const noexcept {
    return &value();
  }

  /// The error; call only when !ok().
  const core::error& error() const& noexcept {
    return *std::get_if<1>(&v_);
  }
  core::error&& error() && noexcept {
    return std::move(*std::get_if<1>(&v_));
  }

private:
  std::variant<T, core::error> v_;
};

/// Success or an error, for calls that produce nothing.
template <>
class [[nodiscard]] result<void> {
public:
  result() = default;
  result(core::error e) : e_(std::move(e)) {}

  bool ok() const noexcept {
    return !e_;
  }
  explicit operator bool() const noexcept {
    return ok();
  }
  const core::error& error() const& noexcept {
    return *e_;
  }
  core::error&& error() && noexcept {
    return std::move(*e_);
  }

private:
  std::optional<core::error> e_;
};

/// The success of a result<void>.
inline result<void> ok() {
  return {};
}

} // namespace shoal::core
