// SPDX-License-Identifier: Apache-2.0
#pragma once

// Internal to http/: the helpers every route family uses (defined in router.cpp) and the
// route families that `route()` dispatches to, one file each. Only sources of http/
// include this header: it adds Boost.JSON to the Beast message types.

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <boost/beast/http/status.hpp>
#include <boost/json/storage_ptr.hpp>
#include <boost/json/value.hpp>

#include "core/result.hpp"
#include "documents/messages.hpp"
#include "http/ask.hpp"
#include "http/errors.hpp"
#include "http/router.hpp"

namespace shoal::http {

/// Parses an If-Match / If-None-Match value: "*" or a comma-separated list of entity
/// tags. Weak tags (W/"1") count only with `weak_match` (If-None-Match uses the weak
/// comparison, If-Match the strong one); a tag that is not a quoted decimal version can
/// match no document and is dropped. nullopt when the value is malformed (an unquoted
/// token, an unterminated quote, an empty list).
std::optional<documents::precondition> parse_entity_tags(std::string_view value, bool weak_match);

} // namespace shoal::http

namespace shoal::http::detail {

/// The Allow value of the read-only routes (the session drops the body of HEAD responses).
inline constexpr std::string_view read_methods = "GET, HEAD";

/// What a route answers a method it does not take: to OPTIONS, 204 with `allow` (and
/// OPTIONS) as Allow, plus Accept-Patch where PATCH is allowed; to anything else, 405
/// method_not_allowed with the same Allow.
response method_not_allowed(const request& req, std::string_view allow);

/// The strong entity tag of a version: "\"7\"".
std::string etag(std::uint64_t version);

/// The merge-patch media types PATCH takes (RFC 7396), as Accept-Patch lists them.
inline constexpr std::string_view accepted_patches =
  "application/merge-patch+json, application/json";

/// 404 not_found "no such route".
response no_such_route(unsigned version);

/// A response with `status` and `body`, which is JSON already, as application/json.
response plain_json(boost::beast::http::status status, std::string body, unsigned version);

/// 204 No Content.
response no_content(unsigned version);

/// 415 unsupported_media_type when the request names a Content-Type that is not JSON
/// (application/json or */*+json); a request without one is fine.
std::optional<core::error> check_json_media_type(const request& req);

/// Parses `text` as JSON by the one rule (util/json.hpp), allocating from `sp`;
/// 400 invalid_json on failure.
core::result<boost::json::value> parse_json(std::string_view text, const route_env& env,
                                            boost::json::storage_ptr sp = {});

/// Parses and normalizes a body that must be a JSON object (its serialized form, with
/// 415, invalid_json, or `not_object` for valid JSON that is not an object).
core::result<std::string> parse_object_body(const request& req, const route_env& env,
                                            std::string not_object);

/// The routed outcome of a refusal.
inline routed refused(route_id id, const core::error& e, unsigned version) {
  return {id, error_response(e, version)};
}
inline routed refused(route_id id, response res) {
  return {id, std::move(res)};
}

/// The response to an answer: `ok(value)` for a value, the one error table otherwise.
template <class T, class Ok>
response render(core::result<T>&& r, unsigned version, Ok&& ok) {
  if (!r) return error_response(r.error(), version);
  return ok(std::move(r).value());
}

// -- route families -------------------------------------------------------------------------

/// GET, HEAD, PUT, PATCH, DELETE /v1/collections/{c}/docs/{id} (document_routes.cpp).
routed route_document(exchange& ex, std::string_view collection, std::string_view id);

/// GET, HEAD /v1/admin/replicas/{shard} (admin_routes.cpp).
routed route_replica(exchange& ex, std::string_view shard);

/// POST /v1/actors/{type}/{id}/method/{method} (actor_routes.cpp).
routed route_actor(exchange& ex, std::string_view type, std::string_view id,
                   std::string_view method);

/// The job queue routes (job_routes.cpp).
/// /v1/queues/{q}/jobs: POST enqueues (route_enqueue), GET and HEAD list the queue's
/// jobs in one state, a page at a time.
routed route_queue_jobs(exchange& ex, std::string_view queue);
routed route_enqueue(exchange& ex, std::string_view queue);
routed route_queue_stats(exchange& ex, std::string_view queue);
routed route_lease(exchange& ex, std::string_view queue);
routed route_job_get(exchange& ex, std::string_view id);
/// POST /v1/jobs/{id}/{action}: complete, fail or retry; any other action is no route.
routed route_job_action(exchange& ex, std::string_view id, std::string_view action);

/// GET, HEAD, PUT, DELETE /v1/cache/{key} (cache_routes.cpp).
routed route_cache(exchange& ex, std::string_view key);
routed route_cache_increment(exchange& ex, std::string_view key);

/// Indexes and queries (query_routes.cpp).
routed route_index_list(exchange& ex, std::string_view collection);
routed route_index(exchange& ex, std::string_view collection, std::string_view field);
routed route_query(exchange& ex, std::string_view collection);

/// GET /v1/collections/{c}/changes[?since=...] (change_routes.cpp).
routed route_changes(exchange& ex, std::string_view collection);

} // namespace shoal::http::detail
