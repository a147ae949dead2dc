// SPDX-License-Identifier: Apache-2.0
// The document routes (docs/api.md "Documents"): GET, HEAD, PUT, PATCH and DELETE of
// /v1/collections/{c}/docs/{id}, from a request to a documents::doc_get or doc_write
// with every check the edge makes, and from the answer to a response.
#include <string>
#include <utility>
#include <variant>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/json.hpp>

#include "core/names.hpp"
#include "http/route_helpers.hpp"
#include "util/json.hpp"

namespace shoal::http::detail {

namespace bhttp = boost::beast::http;

namespace {

constexpr std::string_view document_methods = "GET, HEAD, PUT, PATCH, DELETE";

std::optional<core::error> parse_preconditions(const request& req,
                                               documents::precondition& if_match,
                                               documents::precondition& if_none_match) {
  if (auto h = req.find(bhttp::field::if_match); h != req.end()) {
    auto p = parse_entity_tags(h->value(), false);
    if (!p)
      return invalid("invalid_header", "If-Match must be \"*\" or a list of quoted entity tags");
    if_match = std::move(*p);
  }
  if (auto h = req.find(bhttp::field::if_none_match); h != req.end()) {
    auto p = parse_entity_tags(h->value(), true);
    if (!p)
      return invalid("invalid_header",
                     "If-None-Match must be \"*\" or a list of quoted entity tags");
    if_none_match = std::move(*p);
  }
  return std::nullopt;
}

std::string id_version_body(std::string_view id, std::uint64_t version) {
  boost::json::object o;
  o["id"] = id;
  o["version"] = version;
  return util::to_json(o);
}

response render_get(core::result<documents::stored_doc>&& r, unsigned version) {
  return render(std::move(r), version, [version](documents::stored_doc&& d) {
    if (d.not_modified) {
      response res{bhttp::status::not_modified, version};
      res.set(bhttp::field::etag, etag(d.version));
      return res;
    }
    auto res = plain_json(bhttp::status::ok, std::move(d.json), version);
    res.set(bhttp::field::etag, etag(d.version));
    return res;
  });
}

} // namespace

routed route_document(exchange& ex, std::string_view collection, std::string_view id) {
  auto& req = ex.req;
  const auto version = req.version();
  constexpr auto route = route_id::document;
  std::optional<documents::write_kind> kind;
  switch (req.method()) {
  case bhttp::verb::get:
  case bhttp::verb::head: // the session drops the body of HEAD responses
    break;
  case bhttp::verb::put:
    kind = documents::write_kind::put;
    break;
  case bhttp::verb::patch:
    kind = documents::write_kind::patch;
    break;
  case bhttp::verb::delete_:
    kind = documents::write_kind::del;
    break;
  default:
    return refused(route, method_not_allowed(req, document_methods));
  }
  if (!core::valid_name(collection))
    return refused(route, invalid("invalid_name", "collection names are 1 to 64 of [A-Za-z0-9_-]"),
                   version);
  if (!core::valid_id(id))
    return refused(
      route, invalid("invalid_name", "document ids are 1 to 256 of [A-Za-z0-9_.:@-], not . or .."),
      version);
  documents::precondition if_match;
  documents::precondition if_none_match;
  if (auto err = parse_preconditions(req, if_match, if_none_match))
    return refused(route, *err, version);
  const auto timeout = ex.env.request_timeout_ms;
  if (!kind) {
    documents::doc_get get{std::string(collection), std::string(id), std::move(if_match),
                           std::move(if_none_match)};
    return {route, ask(ex, std::move(get), timeout,
                       [version](auto&& r) { return render_get(std::move(r), version); })};
  }
  documents::doc_write write;
  write.kind = *kind;
  if (*kind == documents::write_kind::patch) {
    // A merge patch (RFC 7396) only: a JSON Patch (application/json-patch+json) or any
    // other kind is 415, with the kinds this route takes (RFC 5789 Accept-Patch).
    const auto ct = req[bhttp::field::content_type];
    if (!ct.empty() && !media_type_is(ct, "application/merge-patch+json")
        && !media_type_is(ct, "application/json")) {
      auto res = error_response(
        bhttp::status::unsupported_media_type, "unsupported_media_type",
        "PATCH takes a JSON merge patch (application/merge-patch+json or application/json)",
        version);
      res.set("Accept-Patch", accepted_patches);
      return refused(route, std::move(res));
    }
  }
  if (*kind != documents::write_kind::del) {
    auto body = parse_object_body(req, ex.env, "invalid_document");
    if (!body) return refused(route, body.error(), version);
    write.body = std::move(*body);
  }
  write.collection.assign(collection);
  write.id.assign(id);
  write.if_match = std::move(if_match);
  write.if_none_match = std::move(if_none_match);
  const auto del = *kind == documents::write_kind::del;
  return {route, ask(ex, std::move(write), timeout,
                     [version, del, collection = std::string(collection),
                      id = std::string(id)](core::result<documents::doc_written>&& r) {
                       return render(std::move(r), version, [&](documents::doc_written&& w) {
                         if (del) return no_content(version);
                         auto res =
                           plain_json(w.created ? bhttp::status::created : bhttp::status::ok,
                                      id_version_body(id, w.version), version);
                         res.set(bhttp::field::etag, etag(w.version));
                         if (w.created)
                           res.set(bhttp::field::location,
                                   "/v1/collections/" + collection + "/docs/" + id);
                         return res;
                       });
                     })};
}

} // namespace shoal::http::detail
