// SPDX-License-Identifier: Apache-2.0
#pragma once

// The name rules of the HTTP API (docs/api.md), checked at the edge and trusted below.

#include <string_view>

namespace shoal::core {

/// Names of collections, actor types, methods and queues: [A-Za-z0-9_-]{1,64}.
bool valid_name(std::string_view name) noexcept;

/// Document ids, actor ids, cache keys and idempotency keys: [A-Za-z0-9_.:@-]{1,256},
/// not "." or "..".
bool valid_id(std::string_view id) noexcept;

} // namespace shoal::core
