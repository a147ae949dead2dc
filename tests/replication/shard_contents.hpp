// SPDX-License-Identifier: Apache-2.0
#pragma once

// What a replica's shard holds, for comparing replicas: every key and value, and one
// value (or "<error name>").

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "storage/store.hpp"

namespace shoal::replication::test {

inline std::map<std::string, std::string> shard_contents(storage::shard_store& shard) {
  std::map<std::string, std::string> out;
  const auto scanned = shard.scan_prefix({}, [&](std::string_view k, std::string_view v) {
    out.emplace(std::string(k), std::string(v));
    return true;
  });
  EXPECT_TRUE(scanned.ok());
  return out;
}

inline std::string shard_value(storage::shard_store& shard, const std::string& key) {
  auto v = shard.get(key);
  return v ? *v : "<" + std::string(core::to_string(v.error().code())) + ">";
}

} // namespace shoal::replication::test
