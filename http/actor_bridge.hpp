// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <memory>
#include <vector>

#include "cluster/shard_map.hpp"
#include "cluster/view.hpp"
#include "http/shard_service.hpp"

namespace caf {
class actor;
} // namespace caf

namespace shoal::actors {
struct shard_handles;
} // namespace shoal::actors

namespace shoal::http {

/// The one place where the edge meets CAF: a document request or an actor call becomes a
/// message to the owning shard actor, carrying a sink that posts the reply back to the connection's
/// strand. One asynchronous hop, no thread ever waits for an actor.
class actor_bridge final : public shard_service {
public:
  /// `shards` holds one handle per shard, in shard order; `jobs` is the node's job broker
  /// (jobs::spawn_broker); `members`, when given, tells which shards' owners are up, so
  /// that an enqueue without an idempotency key goes to a live shard. All must outlive
  /// the bridge.
  actor_bridge(const actors::shard_handles& shards, cluster::shard_map map, const caf::actor& jobs,
               const cluster::view_board* members = nullptr);
  ~actor_bridge() override;

  void submit(actors::doc_request&& request, actors::reply_sink_ptr sink) override;
  void call(actors::actor_call&& call, actors::call_sink_ptr sink) override;
  void job(jobs::job_request&& request, jobs::job_sink_ptr sink) override;
  std::uint32_t shard_count() const override;
  void submit_to(std::uint32_t shard, actors::doc_request&& request,
                 actors::reply_sink_ptr sink) override;
  void cache(actors::cache_request&& request, actors::cache_sink_ptr sink) override;

private:
  const actors::shard_handles& shards_;
  const caf::actor& jobs_;
  const cluster::view_board* members_;
  cluster::shard_map map_;
};

} // namespace shoal::http
