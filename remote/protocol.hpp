// SPDX-License-Identifier: Apache-2.0
#pragma once

// The node-to-node handshake messages (docs/cluster.md). Plain structs; their CAF type
// ids are in remote/type_ids.hpp. Forwarded work needs no new types: a peer sends
// (shard, doc_request), (shard, actor_call) or (shard, job_request) to the owner's
// gateway and gets the shard's doc_reply, actor_reply or job_reply back.

#include <cstdint>
#include <string>
#include <vector>

#include "cluster/replicas.hpp"

namespace shoal::remote {

/// Dialer → acceptor's gateway, first message on a new connection.
struct hello {
  std::string node;  ///< the dialer's configured id
  std::string nonce; ///< the dialer's challenge
};

/// Acceptor → dialer. Either a refusal (an id the acceptor does not know), or the
/// acceptor's own challenge and its proof of the secret over both nonces.
struct hello_ack {
  std::string refusal;
  std::string node;  ///< the acceptor's configured id
  std::string nonce; ///< the acceptor's challenge
  std::string proof; ///< handshake::proof(role::acceptor, …)
};

/// Dialer → acceptor, once the acceptor's proof checked out: the dialer's proof, then
/// what both sides must agree on before any work flows.
struct auth {
  std::string proof;                    ///< handshake::proof(role::dialer, …)
  std::uint32_t shards = 0;             ///< cluster.shards
  std::string members;                  ///< the canonical member list (describe_members)
  std::uint32_t replication_factor = 1; ///< cluster.replication_factor
};

/// Acceptor → dialer: empty `refusal` means the dialer is now a trusted peer.
struct auth_ack {
  std::string refusal;
};

/// Raft messages of several shards for one node, sent as one (raft_relay_atom, batch):
/// `bytes[i]` is for the local replica of `shards[i]`, in the order they were sent.
struct raft_batch {
  std::vector<std::uint32_t> shards;
  std::vector<std::string> bytes;
};

/// A gateway's answer to a heartbeat: how its node's replicas stand (empty without
/// replicated shards), for the asking node's cluster view.
struct replica_reports {
  std::vector<cluster::replica_report> reports;
};

} // namespace shoal::remote
