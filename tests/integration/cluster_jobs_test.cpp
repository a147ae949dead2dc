// SPDX-License-Identifier: Apache-2.0
// Job queues in a cluster (docs/jobs.md, "Inside" → Cluster): three real shoal processes
// on 127.0.0.1 (cluster_suite.hpp), each test with fresh members and data. They check
// that job requests reach the owner of the job's shard from any node, that each node's
// in-process workers run the jobs of its own shards, that an external lease on one node
// takes the other nodes' jobs (at once, and by a long poll that re-asks them), and that
// the jobs of a killed member are unavailable until it restarts and then run.
//
// Which member owns a job follows from its id alone: the first 5 hex digits are its
// shard (jobs/ids.hpp), and the fixture knows every shard's owner. A test that needs jobs
// on a given member enqueues them with idempotency keys whose (queue, key) shard that
// member owns: the key decides the shard.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "tests/integration/cluster_suite.hpp"
#include "tests/support/http_client.hpp"

namespace shoal::test {
namespace {

/// The broker asks the other nodes' shards again this often for a parked long poll.
constexpr milliseconds repoll_interval{250};
/// A parked poll on one node must see a job enqueued on another node's shard by then:
/// the next repoll round, with a second of slack for a loaded two-core machine.
constexpr milliseconds repoll_bound = repoll_interval + milliseconds(1000);

/// `[jobs.queues.NAME]` tables are file-only: they go into the shared cluster file.
/// `held-*`, `ext` and `poll` have no in-process workers on any node; `work` (and every
/// other queue) has the default four per node.
constexpr std::string_view jobs_toml = R"([jobs]
retry_base_ms = 200
retry_cap_ms = 1000

[jobs.queues.held-a]
workers = 0

[jobs.queues.held-b]
workers = 0

[jobs.queues.held-c]
workers = 0

[jobs.queues.ext]
workers = 0

[jobs.queues.poll]
workers = 0
)";

/// A job type no node has a handler for: only external workers run it.
constexpr std::string_view external_type = "external";

std::string job_target(std::string_view id) {
  return "/v1/jobs/" + std::string(id);
}

std::string queue_target(std::string_view queue) {
  return "/v1/queues/" + std::string(queue);
}

/// The shard a job id names (its first 5 hex digits), or nullopt when it is not a job id.
std::optional<std::uint32_t> job_shard(std::string_view id) {
  if (id.size() != 21) return std::nullopt;
  for (char c : id)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return std::nullopt;
  return static_cast<std::uint32_t>(std::stoul(std::string(id.substr(0, 5)), nullptr, 16));
}

/// An enqueue body: `type`, `payload`, and optionally an idempotency key and a delay.
std::string enqueue_body(std::string_view type, const json::value& payload,
                         const std::string& key = {}, std::uint64_t delay_ms = 0) {
  json::object o;
  o["type"] = type;
  o["payload"] = payload;
  if (!key.empty()) o["idempotency_key"] = key;
  if (delay_ms != 0) o["delay_ms"] = delay_ms;
  return json::serialize(o);
}

/// The value of the sample `series` (`name{labels}`) in a /metrics text; 0 when absent.
double sample_value(const std::string& text, const std::string& series) {
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);)
    if (line.size() > series.size() && line.compare(0, series.size(), series) == 0
        && line[series.size()] == ' ')
      return std::strtod(line.c_str() + series.size() + 1, nullptr);
  return 0;
}

std::string by_type(std::string_view name, std::string_view queue, std::string_view type) {
  return std::string(name) + "{queue=\"" + std::string(queue) + "\",type=\"" + std::string(type)
         + "\"}";
}

std::string by_state(std::string_view queue, std::string_view state) {
  return "shoal_jobs{queue=\"" + std::string(queue) + "\",state=\"" + std::string(state) + "\"}";
}

/// The "jobs" of a lease answer, by id; empty when the answer is not one.
std::map<std::string, json::object> leased_by_id(const http_response& res) {
  std::map<std::string, json::object> out;
  auto v = res.json();
  if (!v.is_object() || !v.as_object().contains("jobs") || !v.at("jobs").is_array()) return out;
  for (const auto& j : v.at("jobs").as_array())
    if (j.is_object() && j.as_object().contains("id") && j.at("id").is_string())
      out[std::string(j.at("id").as_string())] = j.as_object();
  return out;
}

// ===========================================================================
// The fixture: cluster_suite with the queues above in the shared file.
// ===========================================================================

class ClusterJobsTest : public cluster_suite {
protected:
  ClusterJobsTest() : cluster_suite("shoal-cluster-jobs", std::string(jobs_toml)) {}

  /// The member owning the shard job `id` names; "" for an id that names none.
  std::string owner_of_job(std::string_view id) const {
    auto shard = job_shard(id);
    if (!shard || *shard >= owners_.size()) return {};
    return owners_[*shard];
  }

  /// A well-formed job id on a shard of `owner` that no enqueue made.
  std::string unknown_job_on(const std::string& owner) const {
    for (std::uint32_t s = 0; s < shard_count; ++s) {
      if (owners_.at(s) != owner) continue;
      char shard_hex[8];
      std::snprintf(shard_hex, sizeof shard_hex, "%05x", s);
      return std::string(shard_hex) + "0123456789abcdef";
    }
    return {};
  }

  /// POST /v1/queues/{queue}/jobs through `via`; the answer, or nullopt with a failure.
  std::optional<http_response> enqueue(const std::string& via, std::string_view queue,
                                       const std::string& body) {
    http_client client{http_port(via), 5s};
    std::string error;
    auto res = client.try_request("POST", queue_target(queue) + "/jobs", body, json_type, &error);
    if (!res) ADD_FAILURE() << "enqueue via " << via << " got no answer: " << error;
    return res;
  }

  /// Enqueues and expects 202 with a well-formed id and its Location; returns the id, or
  /// "" with a failure recorded.
  std::string enqueue_new(const std::string& via, std::string_view queue, const std::string& body) {
    auto res = enqueue(via, queue, body);
    if (!res) return {};
    if (res->status != 202) {
      ADD_FAILURE() << "enqueue via " << via << " into " << queue << ": " << describe(res);
      return {};
    }
    auto v = res->json();
    const auto* id = v.is_object() ? v.as_object().if_contains("id") : nullptr;
    if (id == nullptr || !id->is_string() || !job_shard(id->as_string())) {
      ADD_FAILURE() << "enqueue via " << via << ": no job id in " << res->body;
      return {};
    }
    std::string job(id->as_string());
    EXPECT_EQ(v, json::parse(R"({"id":")" + job + R"(","state":"queued"})")) << res->body;
    EXPECT_EQ(res->header("Location"), job_target(job)) << res->body;
    return job;
  }

  /// GET /v1/jobs/{id} through `via`.
  std::optional<http_response> get_job(const std::string& via, std::string_view id) {
    http_client client{http_port(via), 5s};
    return client.try_request("GET", job_target(id));
  }

  /// The job as JSON through `via`; null when the answer is not 200.
  json::value job_json(const std::string& via, std::string_view id) {
    auto res = get_job(via, id);
    if (!res || res->status != 200) return nullptr;
    return res->json();
  }

  /// The "state" of job `id` through `via`, or "".
  std::string job_state(const std::string& via, std::string_view id) {
    auto v = job_json(via, id);
    if (!v.is_object() || !v.at("state").is_string()) return {};
    return std::string(v.at("state").as_string());
  }

  /// GET /v1/queues/{queue} through `via`.
  std::optional<http_response> queue_stats(const std::string& via, std::string_view queue) {
    http_client client{http_port(via), 5s};
    return client.try_request("GET", queue_target(queue));
  }

  /// The "counts" of `queue` through `via`; null when the answer is not 200.
  json::value counts(const std::string& via, std::string_view queue) {
    auto res = queue_stats(via, queue);
    if (!res || res->status != 200) return nullptr;
    auto v = res->json();
    return v.is_object() && v.as_object().contains("counts") ? v.at("counts") : json::value();
  }

  /// POST /v1/queues/{queue}/lease through `via` with `body`.
  std::optional<http_response> lease(const std::string& via, std::string_view queue,
                                     const std::string& body,
                                     std::chrono::milliseconds timeout = 10s) {
    http_client client{http_port(via), timeout};
    std::string error;
    auto res = client.try_request("POST", queue_target(queue) + "/lease", body, json_type, &error);
    if (!res) ADD_FAILURE() << "lease via " << via << " got no answer: " << error;
    return res;
  }

  /// POST /v1/jobs/{id}/{action} through `via` with `body`.
  std::optional<http_response> act(const std::string& via, std::string_view id,
                                   std::string_view action, const std::string& body) {
    http_client client{http_port(via), 5s};
    return client.try_request("POST", job_target(id) + "/" + std::string(action), body, json_type);
  }

  /// The /metrics text of `id` ("" when it does not answer).
  std::string metrics_text(const std::string& id) {
    http_client client{http_port(id), 5s};
    auto res = client.try_request("GET", "/metrics");
    return res && res->status == 200 ? res->body : std::string{};
  }

  /// How many of `jobs` each member owns (every member listed, 0 included).
  std::map<std::string, std::size_t> owned_counts(const std::vector<std::string>& jobs) const {
    std::map<std::string, std::size_t> out;
    for (const auto& m : all_ids())
      out[m] = 0;
    for (const auto& j : jobs)
      ++out[owner_of_job(j)];
    return out;
  }

  /// Counts of a queue with `n` jobs all in `state` (and oldest_queued_age_ms aside).
  static json::value all_in(std::string_view state, std::size_t n) {
    json::object c{{"queued", 0}, {"running", 0}, {"succeeded", 0},
                   {"failed", 0}, {"dead", 0},    {"cancelled", 0}};
    c[state] = n;
    return c;
  }
};

// ===========================================================================
// 1. Enqueue through any node, read from every node.
// ===========================================================================

// Verifies jobs enqueued through every member land on every member's shards (the answering
// node need not own them), that each reads the same from every member, that an unknown id
// on any member's shard is 404 from every member, that an idempotency key meets its first
// job through any member, and that queue counts are the same from every member.
TEST_F(ClusterJobsTest, EnqueuedJobsReadTheSameFromEveryNode) {
  start_cluster();
  if (HasFatalFailure()) return;
  const auto ids = all_ids();
  const std::vector<std::string> queues{"held-a", "held-b", "held-c"};
  constexpr int per_node_and_queue = 8;

  struct sent {
    std::string id;
    std::string queue;
    std::string via;
    json::value payload;
  };
  std::vector<sent> jobs;
  for (const auto& queue : queues)
    for (int i = 0; i < per_node_and_queue; ++i)
      for (const auto& via : ids) {
        json::value payload = {{"queue", queue}, {"via", via}, {"n", i}};
        auto id = enqueue_new(via, queue, enqueue_body("noop", payload));
        ASSERT_FALSE(id.empty());
        jobs.push_back({id, queue, via, payload});
      }
  // Idempotency keys, one per owner: the first enqueue stores, the repeats through the
  // other members meet it (200, the job as it is, the same Location).
  std::map<std::string, std::size_t> keyed_per_queue;
  for (const auto& owner : ids) {
    const auto key = ids_owned_by(owner, "held-a", "key-" + owner, 1).at(0);
    json::value payload = {{"key", key}};
    const auto body = enqueue_body("noop", payload, key);
    auto id = enqueue_new(ids[0], "held-a", body);
    ASSERT_FALSE(id.empty());
    EXPECT_EQ(owner_of_job(id), owner) << id << ": the key decides the shard";
    jobs.push_back({id, "held-a", ids[0], payload});
    ++keyed_per_queue["held-a"];
    for (std::size_t k = 1; k < ids.size(); ++k) {
      auto again = enqueue(ids[k], "held-a", body);
      ASSERT_TRUE(again);
      EXPECT_EQ(again->status, 200u) << key << " via " << ids[k] << ": " << again->body;
      EXPECT_EQ(again->header("Location"), job_target(id));
      auto v = again->json();
      ASSERT_TRUE(v.is_object()) << again->body;
      EXPECT_EQ(v.at("id"), json::value(id)) << again->body;
      EXPECT_EQ(v.at("idempotency_key"), json::value(key)) << again->body;
    }
  }

  // Spread: every member owns some of them, and many were answered by another member.
  std::vector<std::string> job_ids;
  for (const auto& j : jobs)
    job_ids.push_back(j.id);
  auto per_owner = owned_counts(job_ids);
  std::size_t forwarded = 0;
  for (const auto& j : jobs)
    if (owner_of_job(j.id) != j.via) ++forwarded;
  for (const auto& [owner, n] : per_owner)
    EXPECT_GT(n, 0u) << owner << " owns none of " << jobs.size() << " jobs";
  EXPECT_GT(forwarded, 0u);
  std::printf("[ jobs     ] %zu jobs (n1 owns %zu, n2 %zu, n3 %zu); %zu answered by a node that "
              "does not own them\n",
              jobs.size(), per_owner["n1"], per_owner["n2"], per_owner["n3"], forwarded);
  std::fflush(stdout);

  // Every job from every member: 200 and the same body, as enqueued and still queued (no
  // node runs these queues).
  for (const auto& j : jobs) {
    std::optional<json::value> first;
    for (const auto& via : ids) {
      auto res = get_job(via, j.id);
      ASSERT_TRUE(res) << j.id << " via " << via;
      ASSERT_EQ(res->status, 200u)
        << j.id << " (owner " << owner_of_job(j.id) << ") via " << via << ": " << res->body;
      auto v = res->json();
      ASSERT_TRUE(v.is_object()) << res->body;
      if (!first) {
        first = v;
        EXPECT_EQ(v.at("id"), json::value(j.id));
        EXPECT_EQ(v.at("queue"), json::value(j.queue));
        EXPECT_EQ(v.at("type"), json::value("noop"));
        EXPECT_EQ(v.at("state"), json::value("queued")) << res->body;
        EXPECT_EQ(v.at("attempts"), json::value(0));
        EXPECT_EQ(v.at("payload"), j.payload);
        EXPECT_TRUE(v.at("result").is_null());
        EXPECT_TRUE(v.at("error").is_null());
      } else {
        EXPECT_EQ(v, *first) << j.id << " reads otherwise via " << via;
      }
    }
  }

  // An id no enqueue made, on each member's shards: 404 from every member.
  for (const auto& owner : ids) {
    const auto unknown = unknown_job_on(owner);
    ASSERT_EQ(owner_of_job(unknown), owner);
    for (const auto& via : ids) {
      auto res = get_job(via, unknown);
      ASSERT_TRUE(res);
      EXPECT_EQ(res->status, 404u) << unknown << " via " << via << ": " << res->body;
      EXPECT_EQ(res->error_code(), "not_found") << res->body;
    }
  }

  // Queue counts ask every shard of the cluster: the same from every member.
  for (const auto& queue : queues) {
    const auto expected =
      all_in("queued", per_node_and_queue * ids.size() + keyed_per_queue[queue]);
    for (const auto& via : ids) {
      auto res = queue_stats(via, queue);
      ASSERT_TRUE(res);
      ASSERT_EQ(res->status, 200u) << queue << " via " << via << ": " << res->body;
      auto v = res->json();
      EXPECT_EQ(v.at("queue"), json::value(queue));
      EXPECT_EQ(v.at("counts"), expected) << queue << " via " << via << ": " << res->body;
      EXPECT_TRUE(v.at("oldest_queued_age_ms").is_number()) << res->body;
    }
  }

  // Each member counts the enqueues of its own shards.
  std::map<std::string, std::size_t> held_a_owned;
  for (const auto& j : jobs)
    if (j.queue == "held-a") ++held_a_owned[owner_of_job(j.id)];
  for (const auto& id : ids) {
    auto text = metrics_text(id);
    EXPECT_EQ(sample_value(text, by_type("shoal_jobs_enqueued_total", "held-a", "noop")),
              static_cast<double>(held_a_owned[id]))
      << id;
    EXPECT_EQ(sample_value(text, by_state("held-a", "queued")),
              static_cast<double>(held_a_owned[id]))
      << id;
  }
}

// ===========================================================================
// 2. In-process workers run their own shards' jobs.
// ===========================================================================

// Verifies that the in-process workers of the cluster run every job to succeeded, each on
// the node that owns its shard: every member's completed counter and job gauge equal the
// number of jobs its shards hold, and the sum is the number of jobs.
TEST_F(ClusterJobsTest, InProcessWorkersRunTheJobsOfTheirOwnShards) {
  start_cluster();
  if (HasFatalFailure()) return;
  const auto ids = all_ids();
  const std::string queue = "work";
  constexpr int keyless = 45;
  constexpr int keyed_per_owner = 5; // so that every member surely has some

  std::vector<std::string> jobs;
  std::map<std::string, json::value> payloads;
  const auto started = clock_type::now();
  for (int i = 0; i < keyless; ++i) {
    json::value payload = {{"n", i}};
    auto id =
      enqueue_new(ids[static_cast<std::size_t>(i) % 3], queue, enqueue_body("noop", payload));
    ASSERT_FALSE(id.empty());
    jobs.push_back(id);
    payloads[id] = payload;
  }
  for (const auto& owner : ids)
    for (const auto& key : ids_owned_by(owner, queue, "run-" + owner, keyed_per_owner)) {
      json::value payload = {{"key", key}};
      auto id = enqueue_new(ids[jobs.size() % 3], queue, enqueue_body("noop", payload, key));
      ASSERT_FALSE(id.empty());
      EXPECT_EQ(owner_of_job(id), owner) << id;
      jobs.push_back(id);
      payloads[id] = payload;
    }
  const auto total = jobs.size();

  const auto done = all_in("succeeded", total);
  ASSERT_TRUE(eventually(15s, [&] { return counts(ids[0], queue) == done; }))
    << "not every job succeeded: " << json::serialize(counts(ids[0], queue));
  std::printf("[ jobs     ] %zu noop jobs enqueued and succeeded in %lld ms\n", total,
              static_cast<long long>(since(started).count()));
  std::fflush(stdout);
  for (const auto& via : ids)
    EXPECT_EQ(counts(via, queue), done) << via;

  // Each job ran once, with its payload as the result, read through a member that does
  // not own it.
  for (const auto& id : jobs) {
    const auto owner = owner_of_job(id);
    const auto& via = ids[(std::find(ids.begin(), ids.end(), owner) - ids.begin() + 1) % 3];
    auto v = job_json(via, id);
    ASSERT_TRUE(v.is_object()) << id << " via " << via;
    EXPECT_EQ(v.at("state"), json::value("succeeded")) << json::serialize(v);
    EXPECT_EQ(v.at("attempts"), json::value(1)) << json::serialize(v);
    EXPECT_EQ(v.at("result"), payloads[id]) << json::serialize(v);
  }

  // Completions are counted where the job's shard is: on every member exactly its own.
  const auto owned = owned_counts(jobs);
  double sum = 0;
  for (const auto& id : ids) {
    auto text = metrics_text(id);
    ASSERT_FALSE(text.empty()) << id;
    const auto completed = sample_value(text, by_type("shoal_jobs_completed_total", queue, "noop"));
    std::printf("[ jobs     ] %s owns %zu of the jobs and counts %.0f completions\n", id.c_str(),
                owned.at(id), completed);
    EXPECT_GT(completed, 0) << id << " ran none of the jobs";
    EXPECT_EQ(completed, static_cast<double>(owned.at(id))) << id;
    EXPECT_EQ(sample_value(text, by_state(queue, "succeeded")), static_cast<double>(owned.at(id)))
      << id;
    EXPECT_EQ(sample_value(text, by_type("shoal_jobs_failed_total", queue, "noop")), 0) << id;
    sum += completed;
  }
  std::fflush(stdout);
  EXPECT_EQ(sum, static_cast<double>(total));
}

// ===========================================================================
// 3. An external lease on one node takes the other nodes' jobs.
// ===========================================================================

// Verifies a lease on n1 (wait_ms 0) of a queue without in-process workers takes the jobs
// of n2's and n3's shards; that complete, fail and retry through any member reach the
// owner; that a stale lease is refused; and that the results read the same everywhere.
TEST_F(ClusterJobsTest, ExternalLeaseOnOneNodeTakesTheOtherNodesJobs) {
  start_cluster();
  if (HasFatalFailure()) return;
  const auto ids = all_ids();
  const std::string a = "n1";
  const std::string queue = "ext";
  constexpr std::size_t per_owner = 6;

  std::map<std::string, json::value> payloads;
  std::size_t k = 0;
  for (const auto* owner : {"n2", "n3"})
    for (const auto& key : ids_owned_by(owner, queue, "lease", per_owner)) {
      json::value payload = {{"key", key}};
      auto id = enqueue_new(ids[k++ % 3], queue, enqueue_body(external_type, payload, key));
      ASSERT_FALSE(id.empty());
      ASSERT_EQ(owner_of_job(id), owner) << id;
      payloads[id] = payload;
    }
  std::set<std::string> all;
  for (const auto& [id, p] : payloads)
    all.insert(id);
  ASSERT_EQ(all.size(), 2 * per_owner);
  for (const auto& via : ids)
    EXPECT_EQ(counts(via, queue), all_in("queued", all.size())) << via;

  // One lease on n1, which owns none of them: it gets every one, at once.
  auto start = clock_type::now();
  auto res = lease(a, queue, R"({"max":100,"wait_ms":0,"visibility_ms":60000})");
  const auto took = since(start);
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200u) << res->body;
  auto leased = leased_by_id(*res);
  std::set<std::string> got;
  for (const auto& [id, job] : leased) {
    got.insert(id);
    EXPECT_EQ(job.at("type"), json::value(external_type)) << json::serialize(job);
    EXPECT_EQ(job.at("attempt"), json::value(1)) << json::serialize(job);
    EXPECT_EQ(job.at("payload"), payloads[id]) << json::serialize(job);
    EXPECT_TRUE(job.at("lease_id").is_string() && !job.at("lease_id").as_string().empty())
      << json::serialize(job);
  }
  EXPECT_EQ(got, all) << res->body;
  EXPECT_LT(took, at_once) << "a lease with wait_ms 0 must not wait";
  std::printf("[ jobs     ] a lease on %s took %zu jobs of the other nodes in %lld ms\n", a.c_str(),
              got.size(), static_cast<long long>(took.count()));
  std::fflush(stdout);
  ASSERT_EQ(got, all);
  for (const auto& via : ids)
    EXPECT_EQ(counts(via, queue), all_in("running", all.size())) << via;
  for (const auto& id : all) {
    auto v = job_json(ids[2], id);
    ASSERT_TRUE(v.is_object()) << id;
    EXPECT_EQ(v.at("state"), json::value("running")) << json::serialize(v);
    EXPECT_TRUE(v.as_object().contains("lease_expires_at")) << json::serialize(v);
  }
  // Nothing left: the next lease on n1 is empty.
  res = lease(a, queue, R"({"max":100,"wait_ms":0})");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200u);
  EXPECT_EQ(res->json(), json::parse(R"({"jobs":[]})")) << res->body;

  // Complete all but one through n1; the last fails for good through n1, is brought back
  // through n3, leased again through n2 and completed through n3.
  const std::string odd = *all.begin();
  std::map<std::string, json::value> results;
  for (const auto& id : all) {
    const auto lease_id = std::string(leased.at(id).at("lease_id").as_string());
    if (id == odd) {
      auto r =
        act(a, id, "fail", R"({"lease_id":")" + lease_id + R"(","error":"no good","retry":false})");
      ASSERT_TRUE(r);
      ASSERT_EQ(r->status, 200u) << r->body;
      EXPECT_EQ(r->json().at("state"), json::value("dead")) << r->body;
      EXPECT_EQ(r->json().at("error"), json::value("no good")) << r->body;
      continue;
    }
    json::value result = {{"done", id}};
    auto r = act(a, id, "complete",
                 R"({"lease_id":")" + lease_id + R"(","result":)" + json::serialize(result) + "}");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200u) << id << " (owner " << owner_of_job(id) << "): " << r->body;
    EXPECT_EQ(r->json().at("state"), json::value("succeeded")) << r->body;
    EXPECT_EQ(r->json().at("result"), result) << r->body;
    results[id] = result;
    // The same lease again, through another member: stale, and nothing changes.
    auto again = act(ids[1], id, "complete", R"({"lease_id":")" + lease_id + R"(","result":1})");
    ASSERT_TRUE(again);
    EXPECT_EQ(again->status, 409u) << again->body;
    EXPECT_EQ(again->error_code(), "stale_lease") << again->body;
  }
  {
    auto r = act(ids[2], odd, "retry", "");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200u) << r->body;
    EXPECT_EQ(r->json().at("state"), json::value("queued")) << r->body;
    EXPECT_EQ(r->json().at("attempts"), json::value(0)) << r->body;
    auto l = lease(ids[1], queue, R"({"max":100,"wait_ms":0})");
    ASSERT_TRUE(l);
    auto again = leased_by_id(*l);
    ASSERT_EQ(again.size(), 1u) << l->body;
    ASSERT_EQ(again.begin()->first, odd) << l->body;
    EXPECT_EQ(again.begin()->second.at("attempt"), json::value(1)) << l->body;
    json::value result = {{"second", true}};
    auto c = act(ids[2], odd, "complete",
                 R"({"lease_id":")" + std::string(again.begin()->second.at("lease_id").as_string())
                   + R"(","result":{"second":true}})");
    ASSERT_TRUE(c);
    ASSERT_EQ(c->status, 200u) << c->body;
    results[odd] = result;
  }

  // Every member reads every job succeeded with its result; the counts agree.
  for (const auto& id : all)
    for (const auto& via : ids) {
      auto v = job_json(via, id);
      ASSERT_TRUE(v.is_object()) << id << " via " << via;
      EXPECT_EQ(v.at("state"), json::value("succeeded")) << via << ": " << json::serialize(v);
      EXPECT_EQ(v.at("result"), results[id]) << via << ": " << json::serialize(v);
    }
  for (const auto& via : ids)
    EXPECT_EQ(counts(via, queue), all_in("succeeded", all.size())) << via;
  // The owners counted the completions, n1 (which leased them all) none.
  std::vector<std::string> list(all.begin(), all.end());
  const auto owned = owned_counts(list);
  for (const auto& id : ids)
    EXPECT_EQ(
      sample_value(metrics_text(id), by_type("shoal_jobs_completed_total", queue, external_type)),
      static_cast<double>(owned.at(id)))
      << id;
}

// ===========================================================================
// 4. A long poll on one node and work on another.
// ===========================================================================

// Verifies a parked long poll on n1 gets a job enqueued on a shard of n2 or n3 within
// about a second (the broker re-asks the other nodes every 250 ms), gets a job on its own
// shards at once, and without work answers [] when wait_ms is up, not before.
TEST_F(ClusterJobsTest, LongPollOnOneNodeSeesJobsOnOtherNodesShards) {
  start_cluster();
  if (HasFatalFailure()) return;
  const std::string a = "n1";
  const std::string queue = "poll";

  // Nothing comes: [] after wait_ms.
  {
    auto start = clock_type::now();
    auto res = lease(a, queue, R"({"max":1,"wait_ms":700})");
    const auto took = since(start);
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200u);
    EXPECT_EQ(res->json(), json::parse(R"({"jobs":[]})")) << res->body;
    EXPECT_GE(took, milliseconds(700) - milliseconds(20)) << "answered before wait_ms";
    EXPECT_LT(took, milliseconds(700) + at_once);
  }

  // Then a poll per owner; the job is enqueued through its owner while the poll is parked.
  struct poll_round {
    std::string owner;
    milliseconds bound;
  };
  for (const auto& r :
       {poll_round{"n2", repoll_bound}, poll_round{"n3", repoll_bound}, poll_round{a, at_once}}) {
    const auto key = ids_owned_by(r.owner, queue, "poll-" + r.owner, 1).at(0);
    std::atomic<bool> answered{false};
    std::optional<http_response> reply;
    clock_type::time_point answered_at;
    std::thread poller([&] {
      http_client client{http_port(a), 15s};
      reply = client.try_request("POST", queue_target(queue) + "/lease",
                                 R"({"max":1,"wait_ms":10000,"visibility_ms":30000})", json_type);
      answered_at = clock_type::now();
      answered = true;
    });
    // Parked for a few repoll rounds before anything arrives, and the job comes between
    // two rounds (the rounds start with the poll).
    std::this_thread::sleep_for(3 * repoll_interval + repoll_interval / 2);
    EXPECT_FALSE(answered.load()) << "the poll was answered with nothing to give";
    const auto id = enqueue_new(r.owner, queue, enqueue_body(external_type, {{"k", key}}, key));
    const auto enqueued_at = clock_type::now();
    poller.join();
    ASSERT_FALSE(id.empty());
    ASSERT_EQ(owner_of_job(id), r.owner);
    ASSERT_TRUE(reply) << "the poll got no answer";
    ASSERT_EQ(reply->status, 200u) << reply->body;
    auto got = leased_by_id(*reply);
    ASSERT_EQ(got.size(), 1u) << "the poll on " << a << " did not get the job on a shard of "
                              << r.owner << ": " << reply->body;
    EXPECT_EQ(got.begin()->first, id) << reply->body;
    const auto waited = std::chrono::duration_cast<milliseconds>(answered_at - enqueued_at);
    std::printf("[ jobs     ] a poll parked on %s got the job on %s's shard %lld ms after the "
                "enqueue\n",
                a.c_str(), r.owner.c_str(), static_cast<long long>(waited.count()));
    std::fflush(stdout);
    EXPECT_LT(waited, r.bound) << "job on " << r.owner;
    // Done through another member.
    auto c = act(r.owner == "n3" ? "n2" : "n3", id, "complete",
                 R"({"lease_id":")" + std::string(got.begin()->second.at("lease_id").as_string())
                   + R"(","result":null})");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->status, 200u) << c->body;
  }
  for (const auto& via : all_ids())
    EXPECT_EQ(counts(via, queue), all_in("succeeded", 3)) << via;
}

// ===========================================================================
// 5. The owner of jobs is killed, and restarted.
// ===========================================================================

// Verifies that while the owner of a job's shard is down (kill -9), reading, completing,
// failing and retrying it through another member answer 503 shard_unavailable with
// Retry-After at once, queue counts too, and an enqueue to its shards stores nothing; that
// the live members keep serving and running their own jobs, and a lease on one of them
// still takes the other live member's jobs; and that after the restart every job is back:
// an external lease taken before the kill still completes, and the dead member's queued
// (delayed) noop jobs run to succeeded.
TEST_F(ClusterJobsTest, JobsOfAKilledOwnerAreUnavailableUntilItRestarts) {
  start_cluster();
  if (HasFatalFailure()) return;
  const auto ids = all_ids();
  const std::string victim = "n3";
  const std::vector<std::string> survivors{"n1", "n2"};
  constexpr std::uint64_t delay_ms = 2500;

  // On the victim: a job that already ran, one leased by an external worker through n1,
  // and delayed noop jobs that are still queued at the kill. On n2: delayed noop jobs.
  const auto ran = enqueue_new(
    "n1", "work",
    enqueue_body("noop", {{"ran", true}}, ids_owned_by(victim, "work", "ran", 1).at(0)));
  ASSERT_FALSE(ran.empty());
  ASSERT_EQ(owner_of_job(ran), victim);
  ASSERT_TRUE(eventually(10s, [&] { return job_state("n2", ran) == "succeeded"; }))
    << json::serialize(job_json("n2", ran));
  const auto ran_body = job_json("n1", ran);

  const auto held = enqueue_new(
    "n2", "ext",
    enqueue_body(external_type, {{"held", true}}, ids_owned_by(victim, "ext", "held", 1).at(0)));
  ASSERT_FALSE(held.empty());
  ASSERT_EQ(owner_of_job(held), victim);
  auto l = lease("n1", "ext", R"({"max":10,"wait_ms":0,"visibility_ms":60000})");
  ASSERT_TRUE(l);
  auto leased = leased_by_id(*l);
  ASSERT_EQ(leased.size(), 1u) << l->body;
  ASSERT_EQ(leased.begin()->first, held);
  const auto held_lease = std::string(leased.begin()->second.at("lease_id").as_string());

  const auto delayed_from = clock_type::now();
  std::map<std::string, json::value> delayed; // id -> payload
  for (const auto& owner : {victim, std::string("n2")})
    for (const auto& key : ids_owned_by(owner, "work", "late-" + owner, 4)) {
      json::value payload = {{"late", key}};
      auto id =
        enqueue_new(ids[delayed.size() % 3], "work", enqueue_body("noop", payload, key, delay_ms));
      ASSERT_FALSE(id.empty());
      ASSERT_EQ(owner_of_job(id), owner);
      delayed[id] = payload;
    }
  for (const auto& [id, payload] : delayed)
    ASSERT_EQ(job_state("n1", id), "queued") << id;
  ASSERT_LT(since(delayed_from), milliseconds(delay_ms) - milliseconds(500))
    << "too slow to kill the owner before its delayed jobs are due";

  node(victim).kill9();
  EXPECT_EQ(node(victim).exit_status(), std::optional<int>(128 + SIGKILL));
  for (const auto& s : survivors)
    ASSERT_TRUE(wait_state(s, victim, "down", request_bound))
      << s << " does not show " << victim << " down:\n"
      << views_text();

  // Through either survivor: every request about the victim's jobs is 503 at once.
  const auto refused_key = ids_owned_by(victim, "work", "refused", 1).at(0);
  for (const auto& s : survivors) {
    auto check = [&](const char* what, const std::optional<http_response>& res,
                     clock_type::time_point start) {
      EXPECT_TRUE(is_shard_unavailable(res)) << what << " via " << s;
      EXPECT_LT(since(start), at_once) << what << " via " << s << ": the owner is known down";
    };
    auto start = clock_type::now();
    check("GET of a finished job", get_job(s, ran), start);
    start = clock_type::now();
    check("GET of a leased job", get_job(s, held), start);
    start = clock_type::now();
    check("complete", act(s, held, "complete", R"({"lease_id":")" + held_lease + R"("})"), start);
    start = clock_type::now();
    check("fail", act(s, held, "fail", R"({"lease_id":")" + held_lease + R"(","error":"x"})"),
          start);
    start = clock_type::now();
    check("retry", act(s, ran, "retry", ""), start);
    for (const auto& [id, payload] : delayed) {
      if (owner_of_job(id) != victim) continue;
      start = clock_type::now();
      check("GET of a delayed job", get_job(s, id), start);
    }
    for (const auto* queue : {"work", "ext"}) {
      start = clock_type::now();
      check("queue counts", queue_stats(s, queue), start);
    }
    start = clock_type::now();
    check("enqueue to its shard",
          enqueue(s, "work", enqueue_body("noop", {{"refused", true}}, refused_key)), start);
  }

  // The survivors keep serving their own jobs and running them: n2's delayed jobs run.
  for (const auto& [id, payload] : delayed) {
    if (owner_of_job(id) == victim) continue;
    EXPECT_TRUE(
      eventually(milliseconds(delay_ms) + 10s, [&] { return job_state("n1", id) == "succeeded"; }))
      << id << ": " << json::serialize(job_json("n1", id));
  }
  // A lease on n1 still takes n2's external jobs; the dead member's shards give nothing.
  {
    const auto id = enqueue_new(
      "n2", "ext",
      enqueue_body(external_type, {{"live", true}}, ids_owned_by("n2", "ext", "live", 1).at(0)));
    ASSERT_FALSE(id.empty());
    auto start = clock_type::now();
    auto res = lease("n1", "ext", R"({"max":100,"wait_ms":0})");
    EXPECT_LT(since(start), at_once) << "a lease waited for the dead member";
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200u) << res->body;
    auto got = leased_by_id(*res);
    ASSERT_EQ(got.size(), 1u) << res->body;
    EXPECT_EQ(got.begin()->first, id);
    auto c = act("n2", id, "complete",
                 R"({"lease_id":")" + std::string(got.begin()->second.at("lease_id").as_string())
                   + R"(","result":1})");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->status, 200u) << c->body;
  }
  // A keyless enqueue may go to any shard, so it goes to one whose owner is up: none is
  // refused, and none lands on the dead member's shards.
  {
    std::size_t stored = 0;
    std::size_t refused = 0;
    for (int i = 0; i < 30; ++i) {
      auto res = enqueue(survivors[static_cast<std::size_t>(i) % 2], "keyless",
                         enqueue_body(external_type, {{"i", i}}));
      ASSERT_TRUE(res);
      if (res->status == 202) {
        ++stored;
        auto id = std::string(res->json().at("id").as_string());
        EXPECT_NE(owner_of_job(id), victim) << id << " was stored on the dead member's shard";
      } else {
        ++refused;
        EXPECT_TRUE(is_shard_unavailable(res));
      }
    }
    EXPECT_EQ(refused, 0u) << "keyless enqueues went to the dead member's shards";
    EXPECT_EQ(stored, 30u);
  }

  // Restarted on its data: everything is back.
  ASSERT_TRUE(start(victim));
  ASSERT_TRUE(wait_all_up(ids)) << "the restarted member did not rejoin:\n" << views_text();
  for (const auto& s : survivors) {
    EXPECT_EQ(job_json(s, ran), ran_body) << "the finished job changed, via " << s;
    auto v = job_json(s, held);
    ASSERT_TRUE(v.is_object()) << held << " via " << s;
    EXPECT_EQ(v.at("state"), json::value("running"))
      << "the lease must survive kill -9: " << json::serialize(v);
  }
  // The external lease taken before the kill still holds.
  {
    auto c = act("n1", held, "complete", R"({"lease_id":")" + held_lease + R"(","result":"late"})");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->status, 200u) << c->body;
    EXPECT_EQ(job_state("n2", held), "succeeded");
  }
  // The dead member's delayed jobs run now, to succeeded, once each.
  for (const auto& [id, payload] : delayed) {
    EXPECT_TRUE(
      eventually(milliseconds(delay_ms) + 10s, [&] { return job_state("n2", id) == "succeeded"; }))
      << id << " (owner " << owner_of_job(id) << "): " << json::serialize(job_json("n2", id));
    auto v = job_json("n1", id);
    ASSERT_TRUE(v.is_object()) << id;
    EXPECT_EQ(v.at("attempts"), json::value(1)) << json::serialize(v);
    EXPECT_EQ(v.at("result"), payload) << json::serialize(v);
  }
  // The enqueue refused during the outage stored nothing: the key is new.
  {
    auto res = enqueue("n2", "work", enqueue_body("noop", {{"refused", true}}, refused_key));
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 202u) << "the refused enqueue was stored after all: " << res->body;
  }
  // Counts are whole again, the same from every member.
  std::optional<json::value> first;
  for (const auto& via : ids) {
    auto c = counts(via, "ext");
    EXPECT_TRUE(c.is_object()) << via;
    if (!first)
      first = c;
    else
      EXPECT_EQ(c, *first) << via;
  }
  EXPECT_EQ(*first, all_in("succeeded", 2));
  // "work": the finished job, the delayed ones and the enqueue made after the restart.
  const auto work_done = all_in("succeeded", 1 + delayed.size() + 1);
  EXPECT_TRUE(eventually(10s, [&] { return counts("n1", "work") == work_done; }))
    << json::serialize(counts("n1", "work"));
  for (const auto& via : ids)
    EXPECT_EQ(counts(via, "work"), work_done) << via;
}

} // namespace
} // namespace shoal::test
