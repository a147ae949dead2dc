// SPDX-License-Identifier: Apache-2.0
#pragma once

// A linearizability checker for the histories the replication tests record (invoke,
// then ok / fail / unknown per operation), for one versioned register that may be
// absent: writes of distinct values, compare-and-set on the version (a PUT with
// If-Match), deletes, and reads. The version counts the writes and deletes that took
// effect (0: never written), as a document's does; value 0 is "absent". The search
// is Wing and Gong's, with Lowe's memo of (operations linearized, state) pairs already tried, as
// Knossos and Porcupine use it; written here because neither is a Debian package. Check one key at
// a time: linearizability is compositional.
//
// Feed it what happened, not what should have: a write that failed for sure (refused
// before it was proposed) is left out; a write whose outcome is unknown keeps `ret` at
// `unknown` (it may take effect at any point after its call, or never: a write put last
// changes nothing any read saw); a read that did not answer is left out.

#include <algorithm>
#include <cstdint>
#include <functional>
#include <limits>
#include <unordered_set>
#include <vector>

namespace shoal::test::lin {

inline constexpr std::int64_t unknown = std::numeric_limits<std::int64_t>::max();

struct op {
  bool write = false;
  std::int64_t value = 0;     ///< the value written, or the value the read saw (0: none yet)
  std::int64_t call = 0;      ///< when it was invoked
  std::int64_t ret = unknown; ///< when its answer arrived
  /// A read: the version it saw (-1: not checked). A compare-and-set: the version it
  /// expected.
  std::int64_t version = -1;
  bool cas = false;         ///< a write that takes effect only at `version`
  bool cas_failed = false;  ///< a compare-and-set answered "precondition failed"
  bool del = false;         ///< a delete (`write` false, `value` unused)
  bool del_missing = false; ///< a delete answered "not found": it saw the register absent
};

/// Whether `ops` is a history of one register that starts at `initial` (version 0): each
/// op takes effect at one instant between its call and its return, a read sees the last
/// write, a compare-and-set succeeds exactly when the version is the one it expected (one
/// of unknown outcome may have done either).
/// Same-time call and return are taken as overlapping (the weaker claim).
inline bool linearizable_register(const std::vector<op>& ops, std::int64_t initial = 0) {
  struct event {
    int id;
    bool is_call;
    std::int64_t time;
    event* match = nullptr; // a call's return
    event* prev = nullptr;
    event* next = nullptr;
  };
  const int n = static_cast<int>(ops.size());
  std::vector<event> events;
  events.reserve(2 * ops.size() + 1);
  for (int i = 0; i < n; ++i) {
    events.push_back({i, true, ops[i].call});
    events.push_back({i, false, ops[i].ret});
  }
  std::vector<event*> order;
  for (auto& e : events) {
    order.push_back(&e);
  }
  std::stable_sort(order.begin(), order.end(), [](const event* a, const event* b) {
    if (a->time != b->time) {
      return a->time < b->time;
    }
    return a->is_call && !b->is_call; // calls first: same-time ops overlap
  });
  for (int i = 0; i < n; ++i) {
    events[2 * i].match = &events[2 * i + 1];
  }
  events.push_back({-1, false, 0}); // the list's head
  event* head = &events.back();
  event* tail = head;
  for (auto* e : order) {
    tail->next = e;
    e->prev = tail;
    tail = e;
  }

  const auto lift = [](event* call) {
    call->prev->next = call->next;
    if (call->next) call->next->prev = call->prev;
    event* r = call->match;
    r->prev->next = r->next;
    if (r->next) r->next->prev = r->prev;
  };
  const auto unlift = [](event* call) {
    event* r = call->match;
    r->prev->next = r;
    if (r->next) r->next->prev = r;
    call->prev->next = call;
    if (call->next) call->next->prev = call;
  };

  const std::size_t words = (ops.size() + 63) / 64;
  std::vector<std::uint64_t> done(words, 0);
  struct reg {
    std::int64_t value;
    std::int64_t version;
    bool operator==(const reg& o) const {
      return value == o.value && version == o.version;
    }
  };
  struct memo_key {
    std::vector<std::uint64_t> done;
    reg state;
    bool operator==(const memo_key& o) const {
      return state == o.state && done == o.done;
    }
  };
  struct memo_hash {
    std::size_t operator()(const memo_key& k) const {
      std::uint64_t h = static_cast<std::uint64_t>(k.state.value) * 0x9e3779b97f4a7c15ull
                        ^ static_cast<std::uint64_t>(k.state.version) * 0xc2b2ae3d27d4eb4full;
      for (auto w : k.done) {
        h ^= w + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
      }
      return static_cast<std::size_t>(h);
    }
  };
  std::unordered_set<memo_key, memo_hash> tried;
  struct frame {
    event* call;
    reg state_before;
  };
  std::vector<frame> stack;
  reg state{initial, 0};
  // Whether op `o` may take effect in `s`, and the state after it.
  const auto step = [](const op& o, const reg& s, reg& next) {
    next = s;
    const bool present = s.value != 0;
    if (o.del) {
      if (o.ret != unknown && o.del_missing) return !present;
      if (o.ret != unknown && !present) return false; // a delete done needs a document
      if (present) next = {0, s.version + 1};         // one of unknown outcome: either way
      return true;
    }
    if (!o.write) return o.value == s.value && (o.version < 0 || o.version == s.version);
    // If-Match names a document that exists (RFC 9110: a missing one fails it).
    const bool matches = present && o.version == s.version;
    if (o.cas && o.ret != unknown) {
      if (o.cas_failed) return !matches;
      if (!matches) return false;
    }
    if (o.cas && !matches) return true; // unknown outcome: it failed, changing nothing
    next = {o.value, s.version + 1};
    return true;
  };

  event* e = head->next;
  while (head->next != nullptr) {
    if (e == nullptr) {
      return false; // cannot happen: a list that is not empty ends with a return
    }
    if (e->is_call) {
      const op& o = ops[static_cast<std::size_t>(e->id)];
      reg next_state{};
      if (step(o, state, next_state)) {
        auto bits = done;
        bits[static_cast<std::size_t>(e->id) / 64] |= 1ull << (e->id % 64);
        if (tried.insert({bits, next_state}).second) {
          stack.push_back({e, state});
          state = next_state;
          done = std::move(bits);
          lift(e);
          e = head->next;
          continue;
        }
      }
      e = e->next;
    } else {
      // An op returned before anything we could linearize explains it: undo the last choice.
      if (stack.empty()) {
        return false;
      }
      const frame f = stack.back();
      stack.pop_back();
      state = f.state_before;
      done[static_cast<std::size_t>(f.call->id) / 64] &= ~(1ull << (f.call->id % 64));
      unlift(f.call);
      e = f.call->next;
    }
  }
  return true;
}

} // namespace shoal::test::lin
