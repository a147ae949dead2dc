// SPDX-License-Identifier: Apache-2.0
#pragma once

// CAF type ids of the node-to-node messages, in a block after the actors' block.
// Whoever loads the middleman calls `cfg.add_message_types<caf::id_block::shoal_remote>()`.

#include <caf/atom.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/type_id.hpp>

#include "protocol/type_ids.hpp"
#include "remote/protocol.hpp"

namespace shoal::cluster {

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, replica_report& x) {
  return f(caf::meta::type_name("replica_report"), x.shard, x.node, x.role, x.leader, x.term,
           x.commit_index, x.applied_index, x.last_index, x.voters, x.match);
}

} // namespace shoal::cluster

namespace shoal::remote {

/// Membership → a peer's gateway: "are you there?"; the gateway answers with the same atom
/// and its node's replica_reports.
using heartbeat_atom = caf::atom_constant<caf::atom("heartbeat")>;
/// Dialer → acceptor: "your proof was wrong; I will not serve you" (for the acceptor's log).
using refuse_atom = caf::atom_constant<caf::atom("refuse")>;
/// Membership → remote shard stub: the owner's gateway and whether it is up.
using peer_update_atom = caf::atom_constant<caf::atom("peer_upd")>;
/// Membership → itself: dial a peer (carries the peer index and the dial generation).
using dial_atom = caf::atom_constant<caf::atom("dial")>;
/// Membership → itself: send heartbeats and check for silent peers.
using tick_atom = caf::atom_constant<caf::atom("tick")>;
/// Remote shard stub → itself: fail the requests in flight whose time is up.
using sweep_atom = caf::atom_constant<caf::atom("sweep")>;
/// Gateway → membership: this peer just completed a handshake with us, so it is back;
/// dial it now instead of at the end of the backoff.
using peer_back_atom = caf::atom_constant<caf::atom("peer_back")>;

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, hello& x) {
  return f(caf::meta::type_name("hello"), x.node, x.nonce);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, hello_ack& x) {
  return f(caf::meta::type_name("hello_ack"), x.refusal, x.node, x.nonce, x.proof);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, auth& x) {
  return f(caf::meta::type_name("auth"), x.proof, x.shards, x.members, x.replication_factor);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, auth_ack& x) {
  return f(caf::meta::type_name("auth_ack"), x.refusal);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, raft_batch& x) {
  return f(caf::meta::type_name("raft_batch"), x.shards, x.bytes);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, replica_reports& x) {
  return f(caf::meta::type_name("replica_reports"), x.reports);
}

} // namespace shoal::remote

CAF_BEGIN_TYPE_ID_BLOCK(shoal_remote, caf::id_block::shoal::end)
CAF_ADD_TYPE_ID(shoal_remote, (shoal::remote::hello))
CAF_ADD_TYPE_ID(shoal_remote, (shoal::remote::hello_ack))
CAF_ADD_TYPE_ID(shoal_remote, (shoal::remote::auth))
CAF_ADD_TYPE_ID(shoal_remote, (shoal::remote::auth_ack))
CAF_ADD_TYPE_ID(shoal_remote, (shoal::remote::replica_reports))
CAF_ADD_TYPE_ID(shoal_remote, (shoal::remote::raft_batch))
CAF_END_TYPE_ID_BLOCK(shoal_remote)
