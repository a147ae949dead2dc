// SPDX-License-Identifier: Apache-2.0
#pragma once

// What a leader's modules read while their writes are proposed but not yet applied
// (docs/replication.md "Where the group lives"): the shard's store with every pending
// batch on top, in log order. A module decides against the latest state, as it does on
// a single node, though its last write is still on its way through consensus. An entry
// leaves the overlay once applied to the store underneath; all of them leave when
// leadership is lost (the host then rebuilds what its modules remember).
//
// Plain C++, single-threaded like the shard host that owns it. Views taken with
// snapshot() copy the pending state and may be read from other threads.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "storage/store.hpp"

namespace shoal::replication {

class overlay_store final : public storage::shard_store {
public:
  /// Reads fall through to `base`, which must outlive the overlay.
  explicit overlay_store(storage::shard_store& base);

  /// A batch proposed at log `index` (greater than every index added before): reads see
  /// it at once.
  void add(std::uint64_t index, const storage::write_batch& batch);

  /// Entries up to `index` are applied to the base store: their effects leave.
  void applied(std::uint64_t index);

  /// Leadership was lost: every pending batch is forgotten.
  void clear();

  /// Whether a pending batch wrote `key` (a put, a delete or a range that covers it).
  bool pending(std::string_view key) const;

  /// Whether nothing is pending.
  bool empty() const noexcept {
    return effects_.empty() && ranges_.empty();
  }

  /// The latest value of `key`: a pending write's, else the store's.
  core::result<std::string> get(std::string_view key) override;

  /// Writes go through consensus, never straight here: `internal`.
  core::result<void> write(const storage::write_batch& batch, bool sync) override;

  /// The store's keys merged with the pending writes, in the scan's order.
  core::result<void> scan(std::string_view prefix, std::string_view from, bool reverse,
                          const storage::scan_fn& fn) override;

  /// The store's snapshot with a copy of what is pending now.
  std::unique_ptr<storage::shard_view> snapshot() override;

  std::uint64_t estimate_num_keys() override;
  std::uint64_t live_data_bytes() override;

  /// The latest pending write of one key: a value, or a delete.
  struct effect {
    std::uint64_t index = 0;
    std::optional<std::string> value;
  };
  /// A pending range delete [begin, end).
  struct range {
    std::string begin;
    std::string end;
    std::uint64_t index = 0;
  };
  using effect_map = std::map<std::string, effect, std::less<>>;

private:
  storage::shard_store& base_;
  effect_map effects_;
  std::vector<range> ranges_;
};

} // namespace shoal::replication
