// SPDX-License-Identifier: Apache-2.0
#pragma once

// How a job is stored and shown: its keys in a shard, its record (an on-disk contract,
// docs/jobs.md "Inside"), its JSON, and the retry delays. Pure functions.

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include "jobs/messages.hpp"

namespace shoal::jobs {

/// Key of a job record inside its shard: 'j' ++ id.
std::string job_key(std::string_view id);

/// Key of an idempotency entry: 'k' ++ queue ++ '\0' ++ idempotency key → job id.
std::string idempotency_key(std::string_view queue, std::string_view key);

/// A job as stored: the format byte 0x03, fixed-size fields, then length-prefixed strings.
struct job_record {
  job_state state = job_state::queued;
  std::uint32_t attempts = 0;
  std::uint32_t max_attempts = 0;
  std::uint64_t created_ms = 0;
  std::uint64_t updated_ms = 0;
  std::uint64_t due_ms = 0;      ///< queued/failed: when it may run
  std::uint64_t seq = 0;         ///< order of arrival on its shard, for FIFO among equals
  std::uint64_t leased_ms = 0;   ///< running: when the lease began
  std::uint64_t lease_until = 0; ///< running: when the lease expires
  std::string queue;
  std::string type;
  std::string payload;     ///< serialized JSON object
  std::string result;      ///< serialized JSON; empty: none
  std::string error;       ///< the last error; empty: none
  std::string lease_id;    ///< running only
  std::string owner;       ///< running only: "" external, else a node incarnation
  std::string idempotency; ///< the enqueue's idempotency key, if any
};

std::string encode(const job_record& r);
std::optional<job_record> decode(std::string_view raw);

/// The job as the API shows it: {"id", "queue", "type", "state", "attempts", …}.
std::string render(std::string_view id, const job_record& r);

/// Retry delays: `base * 2^(attempt-1)`, capped, then a uniformly random share of it
/// between half and all (jitter, so that jobs failing together do not retry together).
struct retry_policy {
  std::uint32_t base_ms = 500;
  std::uint32_t cap_ms = 300'000;

  /// The delay before the retry that follows failed attempt number `attempt` (≥ 1).
  std::uint64_t delay(std::uint32_t attempt, std::mt19937_64& rng) const;
};

} // namespace shoal::jobs
