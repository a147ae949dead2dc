// SPDX-License-Identifier: Apache-2.0
// The leader's overlay must read exactly as the store would with every pending batch
// applied: checked against a reference store that gets every batch at once, over random
// puts, deletes and range deletes, applies in log order, leadership losses, and every
// kind of scan (prefix, start key, reverse, stopped early) and snapshot.
#include "replication/overlay.hpp"

#include <gtest/gtest.h>

#include <deque>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "storage/memory_store.hpp"

namespace shoal::replication {
namespace {

using storage::write_batch;
using listing = std::vector<std::pair<std::string, std::string>>;

listing scan_all(storage::shard_store& s, std::string_view prefix, std::string_view from,
                 bool reverse, std::size_t limit) {
  listing out;
  auto r = s.scan(prefix, from, reverse, [&](std::string_view k, std::string_view v) {
    out.emplace_back(std::string(k), std::string(v));
    return out.size() < limit;
  });
  EXPECT_TRUE(r.ok());
  return out;
}

listing scan_view(storage::shard_view& s, std::string_view prefix, std::string_view from,
                  bool reverse) {
  listing out;
  auto r = s.scan(prefix, from, reverse, [&](std::string_view k, std::string_view v) {
    out.emplace_back(std::string(k), std::string(v));
    return true;
  });
  EXPECT_TRUE(r.ok());
  return out;
}

std::string read(storage::shard_store& s, const std::string& k) {
  auto v = s.get(k);
  return v ? *v : "<" + std::string(core::to_string(v.error().code())) + ">";
}

class overlay_model {
public:
  explicit overlay_model(std::uint64_t seed) : rng_(seed), overlay_(base()) {}

  storage::shard_store& base() {
    return base_store_.shard(0);
  }
  storage::shard_store& reference() {
    return reference_store_.shard(0);
  }

  std::string key() {
    static const char* prefixes[] = {"a", "b", "ab"};
    return std::string(prefixes[rng_() % 3]) + std::to_string(rng_() % 6);
  }

  write_batch random_batch() {
    write_batch b;
    const auto n = 1 + rng_() % 4;
    for (unsigned i = 0; i < n; ++i) {
      const auto roll = rng_() % 10;
      if (roll < 6) {
        b.put(key(), "v" + std::to_string(++values_));
      } else if (roll < 9) {
        b.del(key());
      } else {
        auto x = key();
        auto y = key();
        if (y < x) std::swap(x, y);
        b.del_range(x, y);
      }
    }
    return b;
  }

  void propose() {
    auto b = random_batch();
    ++index_;
    overlay_.add(index_, b);
    ASSERT_TRUE(reference().write(b, false).ok());
    pending_.emplace_back(index_, std::move(b));
  }

  void apply_oldest() {
    if (pending_.empty()) return;
    auto [index, b] = std::move(pending_.front());
    pending_.pop_front();
    ASSERT_TRUE(base().write(b, false).ok());
    overlay_.applied(index);
  }

  /// Leadership lost: the overlay forgets; the reference goes back to the base.
  void lose_leadership() {
    overlay_.clear();
    pending_.clear();
    write_batch reset;
    reset.del_range("", "\xff");
    for (auto& [k, v] : scan_all(base(), "", "", false, SIZE_MAX))
      reset.put(k, v);
    ASSERT_TRUE(reference().write(reset, false).ok());
  }

  void compare(const std::string& when) {
    SCOPED_TRACE(when);
    for (const char* p : {"a", "b"}) {
      for (int i = 0; i < 6; ++i) {
        const auto k = std::string(p) + std::to_string(i);
        ASSERT_EQ(read(overlay_, k), read(reference(), k)) << k;
        const auto k2 = "ab" + std::to_string(i);
        ASSERT_EQ(read(overlay_, k2), read(reference(), k2)) << k2;
      }
    }
    for (const char* prefix : {"", "a", "ab", "b", "a3", "c"}) {
      for (const char* from : {"", "a2", "ab3", "b", "b9", "zz", "0"}) {
        for (bool reverse : {false, true}) {
          for (std::size_t limit : {SIZE_MAX, std::size_t{1}, std::size_t{3}}) {
            ASSERT_EQ(scan_all(overlay_, prefix, from, reverse, limit),
                      scan_all(reference(), prefix, from, reverse, limit))
              << "prefix '" << prefix << "' from '" << from << "' reverse " << reverse << " limit "
              << limit;
          }
        }
      }
    }
  }

  overlay_store& overlay() {
    return overlay_;
  }
  std::mt19937_64& rng() {
    return rng_;
  }

private:
  std::mt19937_64 rng_;
  storage::memory_store base_store_{1};
  storage::memory_store reference_store_{1};
  overlay_store overlay_;
  std::deque<std::pair<std::uint64_t, write_batch>> pending_;
  std::uint64_t index_ = 0;
  std::uint64_t values_ = 0;
};

TEST(OverlayTest, ReadsAsIfEveryPendingBatchWereApplied) {
  for (std::uint64_t seed = 1; seed <= 40; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    overlay_model m(seed);
    for (int step = 0; step < 120; ++step) {
      const auto roll = m.rng()() % 20;
      if (roll < 11) {
        m.propose();
      } else if (roll < 19) {
        m.apply_oldest();
      } else {
        m.lose_leadership();
      }
      if (step % 7 == 0) m.compare("step " + std::to_string(step));
      if (::testing::Test::HasFatalFailure()) return;
    }
    for (int i = 0; i < 1000 && !m.overlay().empty(); ++i)
      m.apply_oldest();
    ASSERT_TRUE(m.overlay().empty()) << "applied entries must leave the overlay";
    m.compare("all applied");
  }
}

TEST(OverlayTest, AViewKeepsWhatWasPendingWhenItWasTaken) {
  overlay_model m(7);
  for (int i = 0; i < 30; ++i)
    m.propose();
  for (int i = 0; i < 10; ++i)
    m.apply_oldest();
  auto view = m.overlay().snapshot();
  auto reference = m.reference().snapshot();
  for (int i = 0; i < 30; ++i) {
    m.propose();
    m.apply_oldest();
  }
  m.lose_leadership();
  for (const char* prefix : {"", "a", "b"}) {
    for (bool reverse : {false, true}) {
      EXPECT_EQ(scan_view(*view, prefix, "", reverse), scan_view(*reference, prefix, "", reverse));
    }
  }
  EXPECT_EQ(view->get("a1").ok(), reference->get("a1").ok());
}

TEST(OverlayTest, PendingNamesTheKeysAPendingBatchWrote) {
  storage::memory_store store(1);
  overlay_store o(store.shard(0));
  write_batch seed;
  seed.put("k1", "stored");
  seed.put("k5", "stored");
  ASSERT_TRUE(store.shard(0).write(seed, false).ok());
  write_batch b;
  b.put("k2", "new");
  b.del("k1");
  b.del_range("k4", "k6");
  o.add(1, b);
  EXPECT_TRUE(o.pending("k1"));
  EXPECT_TRUE(o.pending("k2"));
  EXPECT_TRUE(o.pending("k5")) << "covered by the range";
  EXPECT_FALSE(o.pending("k6")) << "a range's end is not in it";
  EXPECT_FALSE(o.pending("k3"));
  EXPECT_FALSE(o.get("k5").ok());
  o.applied(1);
  EXPECT_TRUE(o.empty());
  EXPECT_EQ(*o.get("k5"), "stored") << "not applied to the store in this test: the store shows";
}

TEST(OverlayTest, WritesDoNotBypassConsensus) {
  storage::memory_store store(1);
  overlay_store o(store.shard(0));
  write_batch b;
  b.put("k", "v");
  auto r = o.write(b, false);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), core::errc::internal);
  EXPECT_FALSE(store.shard(0).get("k").ok());
}

} // namespace
} // namespace shoal::replication
