// SPDX-License-Identifier: Apache-2.0
#pragma once

// Checks on core::result for the suites of the modules and the host.

#include <gtest/gtest.h>

#include "core/result.hpp"

namespace shoal::testing {

/// The error code of a failed result; a test failure (and `internal`) when it succeeded.
template <class T>
core::errc code_of(const core::result<T>& r) {
  EXPECT_FALSE(r.ok()) << "expected an error";
  return r.ok() ? core::errc::internal : r.error().code();
}

} // namespace shoal::testing
