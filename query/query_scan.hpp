// SPDX-License-Identifier: Apache-2.0
#pragma once

// One shard's answer to a query, computed in bounded steps over a snapshot (so a query
// that reads 200 000 documents holds up no point read for longer than one step, and sees
// one consistent state of the shard however many steps it takes). The query module runs
// one step per message.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"
#include "query/query.hpp"
#include "storage/store.hpp"

namespace shoal::query {

class shard_index;

class query_scan {
public:
  /// Plans the answer to `spec` (with `explain`: the plan instead, which never refuses)
  /// over `view`, using the ready indexes of `index`. Refuses with invalid_argument
  /// "index_required" when no ready index serves a condition and `spec.allow_scan` is off.
  static core::result<std::unique_ptr<query_scan>> start(const shard_index& index,
                                                        std::string_view collection,
                                                        query_spec spec, bool explain,
                                                        std::unique_ptr<storage::shard_view> view);

  /// Reads at most `max_keys` keys and about `max_bytes` of documents; true when the
  /// answer is complete.
  core::result<bool> step(std::size_t max_keys, std::size_t max_bytes);

  /// The answer, once step() returned true.
  shard_hits take_hits();
  shard_plan take_plan();

  ~query_scan();
  query_scan(const query_scan&) = delete;
  query_scan& operator=(const query_scan&) = delete;

private:
  query_scan() = default;
  struct segment {
    std::string lo;
    std::string hi; ///< "" : to the end of the prefix
  };
  bool visit(std::string_view id, std::string_view stored);
  void finish_hits();

  query_spec spec_;
  bool explain_ = false;
  std::unique_ptr<storage::shard_view> view_;
  std::string docs_;   ///< the collection's document prefix
  std::string prefix_; ///< the entry prefix of the index used ("": a full scan)
  std::vector<segment> segments_;
  std::vector<std::size_t> order_; ///< the order segments are read in
  bool in_sort_order_ = false;     ///< the reading order is the result order
  bool reverse_ = false;
  std::string cursor_key_;  ///< where the cursor sits among the keys read ("": nowhere)
  std::size_t position_ = 0; ///< in order_
  std::string from_;         ///< where the current segment resumes ("": its start)
  bool resumed_ = false;     ///< from_ is a resume point of this segment
  bool done_ = false;
  shard_hits out_;
  shard_plan plan_;
  std::uint64_t counted_ = 0;
};

} // namespace shoal::query
