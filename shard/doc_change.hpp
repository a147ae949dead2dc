// SPDX-License-Identifier: Apache-2.0
#pragma once

// A document write as the modules that follow documents see it (secondary indexes, the
// change log). The documents module tells its observers about every write; they add to
// the write's own batch before the commit, so a crash keeps all of it or none, and update
// their memory once it is applied. Observers never reach into each other.

#include <cstdint>
#include <string_view>

#include "core/result.hpp"
#include "storage/store.hpp"

namespace shoal::shard {

/// One document write. Views are valid during the observer call only.
struct doc_change {
  std::string_view collection;
  std::string_view id;
  std::string_view before; ///< the JSON text before the write; empty: no live document
  std::string_view after;  ///< the JSON text after it; empty: deleted
  std::uint64_t version = 0; ///< the version the write gives the document
  std::uint64_t time_ms = 0; ///< when it happened (context::wall_ms)
};

class doc_observer {
public:
  virtual ~doc_observer() = default;

  /// Adds to `batch` what follows from `c`. An error refuses the whole write: nothing is
  /// committed and the writer gets the error.
  virtual core::result<void> prepare(const doc_change& c, storage::write_batch& batch) = 0;

  /// The batch prepared for `c` was applied (it was the latest prepare).
  virtual void applied(const doc_change& c) = 0;
};

} // namespace shoal::shard
