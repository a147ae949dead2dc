// SPDX-License-Identifier: Apache-2.0
#pragma once

// Document requests as the edge builds them, for the suites that drive the documents
// module directly or through a shard host.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "documents/messages.hpp"

namespace shoal::testing::docs {

inline documents::doc_write put(std::string collection, std::string id, std::string body) {
  documents::doc_write w;
  w.kind = documents::write_kind::put;
  w.collection = std::move(collection);
  w.id = std::move(id);
  w.body = std::move(body);
  return w;
}

inline documents::doc_write patch(std::string collection, std::string id, std::string body) {
  auto w = put(std::move(collection), std::move(id), std::move(body));
  w.kind = documents::write_kind::patch;
  return w;
}

inline documents::doc_write del(std::string collection, std::string id) {
  auto w = put(std::move(collection), std::move(id), {});
  w.kind = documents::write_kind::del;
  return w;
}

inline documents::doc_get get(std::string collection, std::string id) {
  documents::doc_get g;
  g.collection = std::move(collection);
  g.id = std::move(id);
  return g;
}

/// `If-Match` on these versions.
inline documents::precondition versions(std::vector<std::uint64_t> v) {
  return documents::precondition{documents::precondition::kind::versions, std::move(v)};
}

/// `If-Match: *`.
inline documents::precondition any_version() {
  return documents::precondition{documents::precondition::kind::any, {}};
}

} // namespace shoal::testing::docs
