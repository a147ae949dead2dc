// SPDX-License-Identifier: Apache-2.0
#pragma once

// Jepsen-style clients for the replicated-shard suites: a few threads put, compare-and-set
// (PUT with If-Match on the last version the client saw), delete and get a few documents through
// the members (each operation through one picked at random), and record every operation
// as invoked, then ok (a 412 of a compare-and-set included: it failed for sure, at its
// point), refused (another 4xx or a 503: it changed nothing) or unknown (504, or no
// answer: it may take effect later, or never). Reads record the version they saw. check() runs the
// linearizability checker (tests/support/linearizability.hpp) over each document's
// history and writes the history of one that fails next to the test's logs.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/support/http_client.hpp"
#include "tests/support/linearizability.hpp"

namespace shoal::test {

class history_clients {
public:
  struct recorded {
    std::size_t key = 0;
    lin::op op;
    bool keep = true;
    std::string via;
    int status = 0;   ///< 0: no answer
    std::string body; ///< of a refusal
  };

  /// `keys` are document ids in collection `collection`; `targets()` names the members a
  /// client may pick from now; `connect(id)` opens a client of member `id`.
  history_clients(std::string collection, std::vector<std::string> keys,
                  std::function<std::vector<std::string>()> targets,
                  std::function<http_client(const std::string&)> connect)
      : collection_(std::move(collection)), keys_(std::move(keys)), targets_(std::move(targets)),
        connect_(std::move(connect)) {}

  ~history_clients() {
    stop();
  }

  /// Starts `n` client threads (seeded `seed`, `seed` + 1, ...), each pausing `pace`
  /// between operations: a pace the checker can follow.
  void start(unsigned n, unsigned seed,
             std::chrono::milliseconds pace = std::chrono::milliseconds(20)) {
    for (unsigned i = 0; i < n; ++i)
      threads_.emplace_back([this, s = seed + i, pace] { run(s, pace); });
  }

  void stop() {
    stop_ = true;
    for (auto& t : threads_)
      t.join();
    threads_.clear();
  }

  /// Microseconds since the clients were created: the clock of every call and ret.
  std::int64_t now_us() const {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now()
                                                                 - t0_)
      .count();
  }

  /// The operations so far (call after stop()).
  const std::vector<recorded>& history() const {
    return history_;
  }

  struct summary {
    int ok_writes = 0;
    int ok_cas = 0;     ///< compare-and-sets answered (done or refused by 412)
    int ok_deletes = 0; ///< deletes answered (204, or 404: nothing to delete)
    int ok_reads = 0;
    int unknown = 0;
    bool linearizable = true;
  };

  /// Checks each document's history (a failure per document that is not linearizable,
  /// its history written to `dir`/history-KEY.txt). SHOAL_DUMP_HISTORY makes every check
  /// fail, to see the files.
  summary check(const std::filesystem::path& dir) const {
    summary out;
    for (std::size_t k = 0; k < keys_.size(); ++k) {
      std::vector<lin::op> ops;
      for (const auto& r : history_) {
        if (r.key != k || !r.keep) continue;
        ops.push_back(r.op);
        if (r.op.ret == lin::unknown)
          ++out.unknown;
        else if (r.op.del)
          ++out.ok_deletes;
        else if (r.op.cas)
          ++out.ok_cas;
        else
          (r.op.write ? out.ok_writes : out.ok_reads) += 1;
      }
      const bool ok = lin::linearizable_register(ops) && !std::getenv("SHOAL_DUMP_HISTORY");
      const auto file = dir / ("history-" + keys_[k] + ".txt");
      EXPECT_TRUE(ok) << "document " << keys_[k] << ": " << ops.size()
                      << " operations are not linearizable; the history is in " << file.string();
      if (ok) continue;
      out.linearizable = false;
      std::ofstream text(file);
      for (const auto& r : history_)
        if (r.key == k)
          text << (r.op.del     ? std::string(r.op.del_missing ? "del(404) " : "del ")
                   : r.op.cas   ? "cas@" + std::to_string(r.op.version) + " "
                   : r.op.write ? "put "
                                : "get@" + std::to_string(r.op.version) + " ")
               << r.op.value << " [" << r.op.call << ", "
               << (r.op.ret == lin::unknown ? std::string("?") : std::to_string(r.op.ret))
               << "] via " << r.via << " status " << r.status << (r.keep ? "" : " (left out)")
               << (r.body.empty() ? "" : " " + r.body) << "\n";
    }
    return out;
  }

private:
  /// The version in a response's ETag ("7"), or -1.
  static std::int64_t version_of(const http_response& res) {
    auto tag = res.header("ETag");
    if (!tag || tag->size() < 3) return -1;
    return std::atoll(tag->substr(1, tag->size() - 2).c_str());
  }

  void run(unsigned seed, std::chrono::milliseconds pace) {
    std::mt19937 rng{seed};
    std::vector<std::int64_t> seen(keys_.size(), 0); ///< the last version seen, per key
    while (!stop_.load()) {
      const auto live = targets_();
      if (live.empty()) {
        std::this_thread::sleep_for(pace);
        continue;
      }
      const auto& via = live[rng() % live.size()];
      const auto k = static_cast<std::size_t>(rng() % keys_.size());
      const auto path = "/v1/collections/" + collection_ + "/docs/" + keys_[k];
      const auto pick = rng() % 9;
      // A compare-and-set needs a version this client saw.
      const bool cas = pick < 2 && seen[k] > 0;
      const bool write = (pick >= 2 && pick < 4) || cas;
      const bool del = pick == 4;
      recorded r{k, {write, 0, now_us(), lin::unknown}, true, via, 0, {}};
      auto c = connect_(via);
      if (del) {
        r.op.del = true;
        auto res = c.try_request("DELETE", path);
        r.status = res ? res->status : 0;
        if (res && res->status >= 300) r.body = res->body;
        if (res && (res->status == 204 || res->status == 404)) {
          r.op.ret = now_us();
          r.op.del_missing = res->status == 404;
        } else if (res && res->status != 504) {
          r.keep = false; // refused: changed nothing
        }
      } else if (write) {
        r.op.value = ++next_value_;
        header_list headers{{"Content-Type", "application/json"}};
        if (cas) {
          r.op.cas = true;
          r.op.version = seen[k];
          headers.emplace_back("If-Match", "\"" + std::to_string(seen[k]) + "\"");
        }
        auto res =
          c.try_request("PUT", path, R"({"v":)" + std::to_string(r.op.value) + "}", headers);
        r.status = res ? res->status : 0;
        if (res && res->status >= 300) r.body = res->body;
        if (res && (res->status == 200 || res->status == 201)) {
          r.op.ret = now_us();
          seen[k] = version_of(*res);
        } else if (cas && res && res->status == 412) {
          r.op.ret = now_us(); // it failed for sure, where it was decided
          r.op.cas_failed = true;
        } else if (res && res->status != 504) {
          r.keep = false; // refused: changed nothing
        }
        // 504, or no answer: unknown, may take effect any time after its call
      } else {
        auto res = c.try_request("GET", path);
        r.status = res ? res->status : 0;
        if (res && res->status >= 300) r.body = res->body;
        if (res && res->status == 200) {
          r.op.value = res->json().at("v").as_int64();
          r.op.version = version_of(*res);
          r.op.ret = now_us();
          seen[k] = r.op.version;
        } else if (res && res->status == 404) {
          r.op.value = 0;
          r.op.version = -1; // absent: never written, or deleted at some version
          r.op.ret = now_us();
        } else {
          r.keep = false; // a read with no answer says nothing
        }
      }
      {
        const std::lock_guard lock{mutex_};
        history_.push_back(std::move(r));
      }
      std::this_thread::sleep_for(pace);
    }
  }

  std::string collection_;
  std::vector<std::string> keys_;
  std::function<std::vector<std::string>()> targets_;
  std::function<http_client(const std::string&)> connect_;
  const std::chrono::steady_clock::time_point t0_ = std::chrono::steady_clock::now();
  std::atomic<bool> stop_{false};
  std::atomic<std::int64_t> next_value_{0};
  std::mutex mutex_;
  std::vector<recorded> history_;
  std::vector<std::thread> threads_;
};

} // namespace shoal::test
