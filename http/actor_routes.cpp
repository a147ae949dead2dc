// SPDX-License-Identifier: Apache-2.0
// The virtual actor route (docs/actors.md): POST /v1/actors/{type}/{id}/method/{method},
// from a request to an actors::actor_call, and from the method's answer to a response.
#include <string>
#include <utility>

#include <boost/beast/http/verb.hpp>

#include "actors/messages.hpp"
#include "core/names.hpp"
#include "http/route_helpers.hpp"

namespace shoal::http::detail {

namespace bhttp = boost::beast::http;

routed route_actor(exchange& ex, std::string_view type, std::string_view id,
                   std::string_view method) {
  auto& req = ex.req;
  const auto version = req.version();
  constexpr auto route = route_id::actor;
  if (req.method() != bhttp::verb::post) return refused(route, method_not_allowed(req, "POST"));
  if (!core::valid_name(type) || !core::valid_name(method))
    return refused(route,
                   invalid("invalid_name", "actor types and methods are 1 to 64 of [A-Za-z0-9_-]"),
                   version);
  if (!core::valid_id(id))
    return refused(
      route, invalid("invalid_name", "actor ids are 1 to 256 of [A-Za-z0-9_.:@-], not . or .."),
      version);
  actors::actor_call call;
  if (req.body().empty()) {
    call.args = "{}";
  } else {
    auto body = parse_object_body(req, ex.env, "invalid_args");
    if (!body) return refused(route, body.error(), version);
    call.args = std::move(*body);
  }
  call.type.assign(type);
  call.id.assign(id);
  call.method.assign(method);
  call.budget_ms = ex.env.actor_call_timeout_ms;
  return {route, ask(ex, std::move(call), ex.env.actor_call_timeout_ms,
                     [version](core::result<actors::actor_result>&& r) {
                       return render(std::move(r), version, [&](actors::actor_result&& a) {
                         return plain_json(bhttp::status::ok, std::move(a.json), version);
                       });
                     })};
}

} // namespace shoal::http::detail
