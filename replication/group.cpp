// SPDX-License-Identifier: Apache-2.0
#include "replication/group.hpp"

#include "replication/raft_c.hpp"

#include <utility>

#include "replication/io_guard.hpp"
#include "replication/log_store.hpp"
#include "replication/replica.hpp"
#include "replication/snapshot_stream.hpp"
#include "replication/snapshot_transfer.hpp"
#include "replication/state_machine.hpp"

namespace shoal::replication {

using core::errc;
using core::error;

group::group(storage::store& store, group_config cfg, io_host host)
    : store_(store), cfg_(std::move(cfg)),
      log_(std::make_unique<log_store>(store_.raft_log(), cfg_.shard)),
      stage_(std::make_unique<snapshot_stage>(store_.raft_log(), cfg_.shard)),
      io_(std::make_unique<group_io>(*log_, std::move(host))),
      guard_(std::make_unique<io_guard>(io_->io())),
      machine_(
        std::make_unique<state_machine>(store_.shard(cfg_.shard), cfg_.sync_applies, stage_.get())),
      raft_(std::make_unique<raft>()) {
  io_->serve_snapshots(store_.shard(cfg_.shard), *stage_, cfg_.streams);
}

group::~group() = default;

core::result<void> group::start() {
  const auto* self = [&]() -> const group_member* {
    for (const auto& m : cfg_.voters)
      if (m.id == cfg_.self) return &m;
    return nullptr;
  }();
  if (self == nullptr)
    return error{errc::invalid_argument, "server " + std::to_string(cfg_.self)
                                           + " is not a voter of shard "
                                           + std::to_string(cfg_.shard) + "'s group"};
  if (int rv =
        raft_init(raft_.get(), guard_->io(), machine_->fsm(), cfg_.self, self->address.c_str());
      rv != 0)
    return error{errc::internal, std::string("raft_init: ") + raft_strerror(rv)};
  machine_->bind(raft_.get());
  raft_set_election_timeout(raft_.get(), cfg_.election_timeout_ms);
  // A replica that was cut off asks first whether it could win before it bumps its term,
  // so rejoining does not depose a leader the others still follow.
  raft_set_pre_vote(raft_.get(), true);
  raft_set_heartbeat_timeout(raft_.get(), cfg_.heartbeat_timeout_ms);
  raft_set_snapshot_threshold(raft_.get(), cfg_.snapshot_entries);
  raft_set_snapshot_trailing(raft_.get(), cfg_.snapshot_trailing);
  raft_set_install_snapshot_timeout(raft_.get(), cfg_.snapshot_timeout_ms);
  raft_configuration conf;
  raft_configuration_init(&conf);
  for (const auto& m : cfg_.voters) {
    if (int rv = raft_configuration_add(&conf, m.id, m.address.c_str(), RAFT_VOTER); rv != 0) {
      raft_configuration_close(&conf);
      return error{errc::invalid_argument, std::string("the group's voters: ") + raft_strerror(rv)};
    }
  }
  const int booted = raft_bootstrap(raft_.get(), &conf);
  raft_configuration_close(&conf);
  if (booted != 0 && booted != RAFT_CANTBOOTSTRAP) // CANTBOOTSTRAP: it has a log already
    return error{errc::storage_failed, std::string("bootstrapping shard ")
                                         + std::to_string(cfg_.shard)
                                         + "'s group: " + raft_errmsg(raft_.get())};
  if (int rv = raft_start(raft_.get()); rv != 0)
    return error{rv == RAFT_CORRUPT ? errc::corrupt : errc::storage_failed,
                 "starting shard " + std::to_string(cfg_.shard)
                   + "'s group: " + raft_errmsg(raft_.get())};
  // raft_start restored the last snapshot: an image staged for it is installed now,
  // and anything else staged (a stream cut off by a crash) is of no use.
  if (auto cleared = stage_->clear(); !cleared) return std::move(cleared).error();
  replica_ = std::make_unique<replica>(raft_.get());
  io_->count_into(cfg_.counted);
  machine_->count_into(cfg_.counted);
  started_ = true;
  return core::ok();
}

void group::close(std::function<void()> closed) {
  if (!started_) {
    if (closed) closed();
    return;
  }
  closed_ = closed ? std::move(closed) : [] {};
  // Reads still queued in the replica are answered; barriers and proposals libraft
  // fails as it closes.
  replica_->close(error{errc::shutting_down, "the shard stopped"});
  raft_->data = this;
  raft_close(raft_.get(), [](struct raft* r) {
    auto* g = static_cast<group*>(r->data);
    g->started_ = false;
    auto done = std::move(g->closed_);
    done();
  });
}

cluster::replica_role group::role() const noexcept {
  if (!started_) return cluster::replica_role::unavailable;
  switch (raft_state(raft_.get())) {
  case RAFT_FOLLOWER:
    return cluster::replica_role::follower;
  case RAFT_CANDIDATE:
    return cluster::replica_role::candidate;
  case RAFT_LEADER:
    return cluster::replica_role::leader;
  default:
    return cluster::replica_role::unavailable;
  }
}

std::uint64_t group::term() const noexcept {
  return started_ ? raft_->current_term : 0;
}

cluster::replica_report group::report() const {
  cluster::replica_report out;
  out.shard = cfg_.shard;
  for (const auto& m : cfg_.voters) {
    if (m.id == cfg_.self) out.node = m.address;
    out.voters.push_back(m.address);
  }
  out.role = role();
  if (!started_) return out;
  auto* r = raft_.get();
  out.term = r->current_term;
  out.commit_index = r->commit_index;
  out.applied_index = raft_last_applied(r);
  out.last_index = raft_last_index(r);
  raft_id leader = 0;
  const char* address = nullptr;
  raft_leader(r, &leader, &address);
  if (leader != 0 && address != nullptr) out.leader = address;
  if (out.role != cluster::replica_role::leader) return out;
  // libraft keeps one progress entry per server of its configuration, in its order.
  out.match.assign(out.voters.size(), 0);
  for (unsigned i = 0; i < r->configuration.n; ++i) {
    const auto id = r->configuration.servers[i].id;
    for (std::size_t v = 0; v < cfg_.voters.size(); ++v)
      if (cfg_.voters[v].id == id) out.match[v] = r->leader_state.progress[i].match_index;
  }
  return out;
}

void group::deliver(std::string_view bytes) {
  io_->deliver(bytes);
}

} // namespace shoal::replication
