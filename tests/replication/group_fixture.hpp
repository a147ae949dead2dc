// SPDX-License-Identifier: Apache-2.0
#pragma once

// One shard's Raft group on libraft's deterministic fixture (its in-memory network and
// disk, stepped one event at a time; every step checks election safety and leader
// append-only), each server a replica over its own RocksDB shard on disk. Shared by the
// replica tests and the history tests.

extern "C" {
#include <raft.h>
#include <raft/fixture.h>
}

#include <gtest/gtest.h>

#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "replication/io_guard.hpp"
#include "replication/replica.hpp"
#include "replication/state_machine.hpp"
#include "tests/replication/shard_contents.hpp"
#include "tests/storage/storage_test_util.hpp"

namespace shoal::replication::test {

using storage::write_batch;
using storage::test::temp_dir;

/// What a write or read callback reported, once it ran.
struct outcome {
  bool ran = false;
  std::optional<core::errc> error;
  std::string name;
  std::string message;

  done_fn recorder() {
    return [this](core::result<void> r) {
      EXPECT_FALSE(ran) << "a callback ran twice";
      ran = true;
      if (!r) {
        error = r.error().code();
        name = r.error().name();
        message = r.error().message();
      }
    };
  }
  bool ok() const {
    return ran && !error;
  }
};

class group_fixture : public ::testing::Test {
protected:
  /// Starts `n` servers. Each talks through an io_guard unless `guarded` is false (the
  /// libraft 0.15 defects the guard corrects then show; replica_history_test pins them).
  void start(unsigned n, bool guarded = true) {
    ASSERT_FALSE(dir_.path().empty());
    ASSERT_EQ(raft_fixture_initialize(&f_), 0);
    initialized_ = true;
    for (unsigned i = 0; i < n; ++i) {
      storage::rocksdb_options options;
      options.path = dir_.path() + "/s" + std::to_string(i);
      options.shards = 1;
      options.block_cache_bytes = 1u << 20;
      options.write_buffer_bytes = 1u << 20;
      auto s = storage::open_rocksdb_store(options);
      ASSERT_TRUE(s.ok()) << s.error().to_string();
      stores_.push_back(std::move(*s));
      machines_.push_back(std::make_unique<state_machine>(stores_.back()->shard(0), false));
      ASSERT_EQ(raft_fixture_grow(&f_, machines_.back()->fsm()), 0);
      raft* r = raft_fixture_get(&f_, i);
      machines_.back()->bind(r);
      if (guarded) {
        guards_.push_back(std::make_unique<io_guard>(r->io));
        r->io = guards_.back()->io();
        r->io->data = r;
      }
      replicas_.push_back(std::make_unique<replica>(raft_fixture_get(&f_, i)));
    }
    raft_configuration conf;
    ASSERT_EQ(raft_fixture_configuration(&f_, n, &conf), 0);
    ASSERT_EQ(raft_fixture_bootstrap(&f_, &conf), 0);
    raft_configuration_close(&conf);
    ASSERT_EQ(raft_fixture_start(&f_), 0);
  }

  void TearDown() override {
    // libraft fails what is still pending while the replicas can take the callbacks.
    if (initialized_) {
      raft_fixture_close(&f_);
      initialized_ = false;
    }
    replicas_.clear();
    guards_.clear();
    machines_.clear();
    stores_.clear();
  }

  raft* server(unsigned i) {
    return raft_fixture_get(&f_, i);
  }
  replica& at(unsigned i) {
    return *replicas_.at(i);
  }
  storage::shard_store& shard(unsigned i) {
    return stores_.at(i)->shard(0);
  }

  /// Steps until `pred` holds or `max_ms` of fixture time pass.
  bool step_until(std::function<bool()> pred, unsigned max_ms = 10000) {
    return raft_fixture_step_until(
      &f_, [](raft_fixture*, void* arg) { return (*static_cast<std::function<bool()>*>(arg))(); },
      &pred, max_ms);
  }

  /// Steps until every live server has applied the leader's last entry.
  bool settle(unsigned leader) {
    const auto last = raft_last_index(server(leader));
    return step_until([&] {
      for (unsigned i = 0; i < raft_fixture_n(&f_); ++i) {
        if (raft_fixture_alive(&f_, i) && raft_last_applied(server(i)) < last) {
          return false;
        }
      }
      return true;
    });
  }

  std::map<std::string, std::string> contents(unsigned i) {
    return shard_contents(shard(i));
  }
  std::string value_of(unsigned i, const std::string& key) {
    return shard_value(shard(i), key);
  }
  static write_batch put(const std::string& key, const std::string& value) {
    write_batch b;
    b.put(key, value);
    return b;
  }

  /// The one server that leads, or n when none does (or more than one thinks so).
  unsigned leader_among(std::initializer_list<unsigned> candidates) {
    unsigned found = raft_fixture_n(&f_);
    for (auto i : candidates) {
      if (raft_state(server(i)) == RAFT_LEADER) {
        if (found != raft_fixture_n(&f_)) {
          return raft_fixture_n(&f_);
        }
        found = i;
      }
    }
    return found;
  }

  void isolate(unsigned i) {
    for (unsigned j = 0; j < raft_fixture_n(&f_); ++j) {
      if (j != i) {
        raft_fixture_saturate(&f_, i, j);
        raft_fixture_saturate(&f_, j, i);
      }
    }
  }
  void heal(unsigned i) {
    for (unsigned j = 0; j < raft_fixture_n(&f_); ++j) {
      if (j != i) {
        raft_fixture_desaturate(&f_, i, j);
        raft_fixture_desaturate(&f_, j, i);
      }
    }
  }

  temp_dir dir_;
  raft_fixture f_{};
  bool initialized_ = false;
  std::vector<std::unique_ptr<storage::store>> stores_;
  std::vector<std::unique_ptr<state_machine>> machines_;
  std::vector<std::unique_ptr<replica>> replicas_;
  std::vector<std::unique_ptr<io_guard>> guards_;
};

} // namespace shoal::replication::test
