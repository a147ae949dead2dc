// SPDX-License-Identifier: Apache-2.0
#pragma once

// The CAF side of the edge's shard_client: one anon_send per request, carrying its
// reply_to, to the shard (a local host or a remote stub); the answer goes straight from
// the shard to the reply_to. No thread ever waits for an actor.

#include <cstdint>
#include <functional>

#include <caf/send.hpp>

#include "protocol/broker.hpp"
#include "protocol/shard_actor.hpp"
#include "protocol/shard_client.hpp"

namespace shoal::protocol {

class bridge final : public client_impl<bridge> {
public:
  /// `shards` (one handle per shard, in shard order) and `broker` must outlive the
  /// bridge. `shard_up` tells which shards' owners are up (empty: all).
  bridge(const shard_handles& shards, std::uint32_t shard_count, const broker_actor& broker,
         std::function<bool(std::uint32_t)> shard_up);

  std::uint32_t shard_count() const noexcept override {
    return placement_.map.shard_count();
  }
  const cluster::placement& placement() const noexcept override {
    return placement_;
  }
  void lease(jobs::queue_lease&& req, core::reply_to<jobs::leased_jobs> to) override;

  template <class R>
  void send_to(std::uint32_t shard, R&& req, core::reply_to<reply_of<R>> to) {
    caf::anon_send(shards_.handles[shard], std::move(req), std::move(to));
  }

private:
  const shard_handles& shards_;
  const broker_actor& broker_;
  cluster::placement placement_;
};

} // namespace shoal::protocol
