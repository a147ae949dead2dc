// SPDX-License-Identifier: Apache-2.0
#pragma once

// The fixture of the replicated-shard suites (replication_test.cpp,
// replication_cycles_test.cpp): three shoal processes with cluster.replication_factor = 3
// and helpers that find leaders, retry through elections and read the members' logs.

#include <algorithm>
#include <atomic>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/cluster_suite.hpp"

namespace shoal::test {

inline const std::vector<std::string> three_copies{"cluster.replication_factor=3"};

/// Stops and joins a test's client threads however its body ends: an ASSERT returns
/// early, and a joinable std::thread destroyed would terminate the whole binary.
struct thread_guard {
  std::atomic<bool>& stop;
  std::vector<std::thread>& threads;
  ~thread_guard() {
    stop = true;
    for (auto& t : threads)
      if (t.joinable()) t.join();
  }
};

class ReplicationTest : public cluster_suite {
protected:
  explicit ReplicationTest(const char* name = "shoal-replication",
                           std::vector<std::string> hosts = {})
      : cluster_suite(name, {}, std::move(hosts)) {}

  bool start_replicated(const std::string& id) {
    return start(id, {}, three_copies);
  }

  /// PUTs through `via` until it is acknowledged (a group still electing answers 503) or
  /// `limit` passes; the last answer.
  std::optional<http_response> put_until_ok(const std::string& via, const std::string& path,
                                            const std::string& body,
                                            milliseconds limit = milliseconds(15'000)) {
    std::optional<http_response> last;
    eventually(limit, [&] {
      auto client = client_of(via, 5s);
      last = client.try_request("PUT", path, body, json_type);
      return last && last->status == 200;
    });
    return last;
  }

  /// Waits until every one of `observers` names a leader for every shard, the same one,
  /// and takes those leaders as the owners (`owner_of`, `ids_owned_by`).
  bool wait_leaders(const std::vector<std::string>& observers,
                    milliseconds limit = milliseconds(20'000)) {
    return eventually(limit, [&] {
      json::value first;
      for (const auto& observer : observers) {
        auto v = view(observer);
        if (!v.is_object()) return false;
        const auto& owners = v.at("shards").at("owners").as_object();
        for (const auto& [shard, leader] : owners)
          if (leader.is_null()) return false;
        if (first.is_null())
          first = v;
        else if (first.at("shards").at("owners") != owners)
          return false;
      }
      load_owners(first);
      return true;
    });
  }

  /// The member that leads the most shards, by the owners loaded last.
  std::string busiest_leader() const {
    std::map<std::string, int> led;
    for (std::uint32_t s = 0; s < shard_count; ++s)
      ++led[owners_[s]];
    return std::max_element(led.begin(), led.end(),
                            [](const auto& a, const auto& b) { return a.second < b.second; })
      ->first;
  }

  /// How many lines of `id`'s logs (every run so far) say it took the lead of `shard` in
  /// `term`.
  int leadership_lines(const std::string& id, std::uint32_t shard, std::uint64_t term) {
    const auto line = "shard " + std::to_string(shard) + ": this node is the leader now (term "
                      + std::to_string(term) + ")";
    int n = 0;
    for (const auto& log : logs_of(id))
      for (auto at = log.find(line); at != std::string::npos; at = log.find(line, at + 1))
        ++n;
    return n;
  }

  /// `id`'s replica of `shard`: its digest (GET /v1/admin/replicas/{shard}), or null.
  json::value digest(const std::string& id, std::uint32_t shard) {
    auto client = client_of(id, 5s);
    auto res = client.try_request("GET", "/v1/admin/replicas/" + std::to_string(shard));
    if (!res || res->status != 200) return nullptr;
    return res->json();
  }

  /// Waits until every one of `ids` reports the same applied index, key count and
  /// checksum for every shard; a failure names the shard and what each member said.
  void expect_replicas_converge(const std::vector<std::string>& ids,
                                milliseconds limit = milliseconds(20'000)) {
    for (std::uint32_t s = 0; s < shard_count; ++s) {
      std::string last;
      const bool same = eventually(limit, [&] {
        std::vector<json::value> all;
        for (const auto& id : ids)
          all.push_back(digest(id, s));
        last.clear();
        for (std::size_t i = 0; i < all.size(); ++i)
          last += ids[i] + ": " + json::serialize(all[i]) + "\n";
        for (const auto& d : all)
          if (!d.is_object() || d.at("applied_index") != all[0].at("applied_index")
              || d.at("keys") != all[0].at("keys") || d.at("checksum") != all[0].at("checksum"))
            return false;
        return true;
      });
      EXPECT_TRUE(same) << "shard " << s << " differs between replicas:\n" << last;
    }
  }

  /// GETs through `via` until it answers 200 or `limit` passes; the last answer.
  std::optional<http_response> get_until_ok(const std::string& via, const std::string& path,
                                            milliseconds limit = milliseconds(15'000)) {
    std::optional<http_response> last;
    eventually(limit, [&] {
      auto client = client_of(via, 5s);
      last = client.try_request("GET", path);
      return last && last->status == 200;
    });
    return last;
  }
};

} // namespace shoal::test
