// SPDX-License-Identifier: Apache-2.0
#pragma once

// What the replication history tests share: one recorded operation on one of a few
// keys, the seed count a variable sets, and the per-key linearizability verdict over a
// whole log (tests/support/linearizability.hpp).

#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "tests/support/linearizability.hpp"

namespace shoal::replication::test {

struct recorded {
  int key = 0;
  shoal::test::lin::op op;
  bool failed = false; ///< refused for sure (a write) or not answered usefully (a read)
};

/// The number in the environment variable `name`, or `fallback` when unset or not
/// positive.
inline int seeds_from(const char* name, int fallback) {
  const char* v = std::getenv(name);
  const int n = v ? std::atoi(v) : 0;
  return n > 0 ? n : fallback;
}

/// One line per operation: what it wrote or read, when it was called and answered.
inline std::string show(const std::vector<shoal::test::lin::op>& history) {
  std::string out;
  for (const auto& op : history) {
    out += op.write ? "  put " : "  get ";
    out += std::to_string(op.value) + "  [" + std::to_string(op.call) + ", ";
    out += op.ret == shoal::test::lin::unknown ? std::string("?") : std::to_string(op.ret);
    out += "]\n";
  }
  return out;
}

struct history_verdict {
  int ok_writes = 0;
  int unknown_writes = 0;
  int ok_reads = 0;
  std::vector<std::string> not_linearizable; ///< each failing key's name and history
};

/// Checks each of `keys` keys' history in `log`: refusals are left out, a read that got
/// no answer too, a write with an unknown outcome stays open-ended.
inline history_verdict check_histories(const std::vector<recorded>& log, int keys,
                                       const std::function<std::string(int)>& name_of) {
  history_verdict v;
  for (int k = 0; k < keys; ++k) {
    std::vector<shoal::test::lin::op> history;
    for (const auto& rec : log) {
      if (rec.key != k || rec.failed) continue;
      if (!rec.op.write && rec.op.ret == shoal::test::lin::unknown) continue;
      if (rec.op.write)
        (rec.op.ret == shoal::test::lin::unknown ? v.unknown_writes : v.ok_writes) += 1;
      else
        v.ok_reads += 1;
      history.push_back(rec.op);
    }
    if (!shoal::test::lin::linearizable_register(history))
      v.not_linearizable.push_back(name_of(k) + " (" + std::to_string(history.size())
                                   + " operations):\n" + show(history));
  }
  return v;
}

} // namespace shoal::replication::test
