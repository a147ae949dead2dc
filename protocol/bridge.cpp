// SPDX-License-Identifier: Apache-2.0
#include "protocol/bridge.hpp"

#include <random>

namespace shoal::protocol {

namespace {

/// Random numbers for placing keyless job enqueues, one generator per thread.
std::uint64_t random64() {
  thread_local std::mt19937_64 rng{(std::uint64_t{std::random_device{}()} << 32)
                                   ^ std::random_device{}()};
  return rng();
}

} // namespace

bridge::bridge(const shard_handles& shards, std::uint32_t shard_count, const broker_actor& broker,
               std::function<bool(std::uint32_t)> shard_up)
    : shards_(shards), broker_(broker),
      placement_{cluster::shard_map{shard_count}, std::move(shard_up), random64} {}

void bridge::lease(jobs::queue_lease&& req, core::reply_to<jobs::leased_jobs> to) {
  caf::anon_send(broker_, std::move(req), std::move(to));
}

} // namespace shoal::protocol
