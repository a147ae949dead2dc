// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace shoal::jobs {

/// A job id names its shard: 5 lowercase hex digits of the shard number, then 16 of a
/// number the shard assigns in sequence ("0002a0192c8e1f6400001" is on shard 42). So
/// `GET /v1/jobs/{id}` finds the shard without a lookup, the shard of an enqueue can be
/// chosen freely (by the idempotency key, or at random), and a shard's new jobs have
/// consecutive keys.
inline constexpr std::size_t job_id_length = 21;

std::string make_job_id(std::uint32_t shard, std::uint64_t sequence);

/// The shard an id names, or nullopt when `id` is not a job id.
std::optional<std::uint32_t> job_shard(std::string_view id) noexcept;

} // namespace shoal::jobs
