// SPDX-License-Identifier: Apache-2.0
// The admin routes: GET /v1/admin/replicas/{shard}, this node's replica's digest
// (docs/api.md), for comparing the replicas of a shard.
#include <charconv>
#include <cstdio>

#include <boost/json.hpp>

#include "http/route_helpers.hpp"
#include "util/json.hpp"

namespace shoal::http::detail {

namespace bhttp = boost::beast::http;

routed route_replica(exchange& ex, std::string_view shard_text) {
  constexpr auto route = route_id::replica;
  const auto version = ex.version();
  if (ex.req.method() != bhttp::verb::get && ex.req.method() != bhttp::verb::head)
    return refused(route, method_not_allowed(ex.req, read_methods));
  std::uint32_t shard = 0;
  auto [end, ec] = std::from_chars(shard_text.data(), shard_text.data() + shard_text.size(), shard);
  if (ec != std::errc{} || end != shard_text.data() + shard_text.size()
      || shard >= ex.shards.shard_count())
    return refused(
      route,
      core::error{core::errc::invalid_argument, "invalid_shard",
                  "the shard must be a number below " + std::to_string(ex.shards.shard_count())},
      version);
  if (!ex.env.replica_digest)
    return refused(route,
                   core::error{core::errc::not_found, "no_replicas",
                               "this node has no replicated shards (cluster.replication_factor "
                               "is 1)"},
                   version);
  ex.env.replica_digest(
    shard, ex.answer<cluster::replica_digest>([version](core::result<cluster::replica_digest>&& r) {
      return render(std::move(r), version, [version](cluster::replica_digest d) {
        boost::json::object o;
        o["shard"] = d.shard;
        o["node"] = d.node;
        o["applied_index"] = d.applied_index;
        o["keys"] = d.keys;
        char hex[17];
        std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(d.checksum));
        o["checksum"] = hex;
        return plain_json(bhttp::status::ok, util::to_json(o), version);
      });
    }));
  return {route, pending{ex.env.request_timeout_ms, false}};
}

} // namespace shoal::http::detail
