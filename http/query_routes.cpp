// SPDX-License-Identifier: Apache-2.0
// The secondary index and query routes (docs/queries.md). Each asks every shard
// (exchange::ask_all) and renders what query/merge.hpp makes of the answers: summed index
// progress, or the query's hits merged in sort order. Everything a request can be refused
// for is decided here, before any shard sees it; shards only refuse what depends on
// their state (index_required).
#include <string>
#include <utility>
#include <vector>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>

#include "core/names.hpp"
#include "http/route_helpers.hpp"
#include "query/merge.hpp"
#include "query/values.hpp"
#include "util/json.hpp"

namespace shoal::http::detail {

namespace bhttp = boost::beast::http;

namespace {

constexpr std::string_view index_methods = "GET, HEAD, PUT, DELETE";

core::error invalid_collection() {
  return invalid("invalid_name", "collection names are 1 to 64 of [A-Za-z0-9_-]");
}

/// {"field","state":"building"|"ready","indexed","total"}
boost::json::object progress_json(const query::index_progress& p) {
  boost::json::object o;
  o["field"] = p.field;
  o["state"] = p.ready ? "ready" : "building";
  o["indexed"] = p.indexed;
  o["total"] = p.total;
  return o;
}

std::string index_location(std::string_view collection, std::string_view field) {
  std::string s = "/v1/collections/";
  s.append(collection);
  s += "/indexes/";
  s.append(field);
  return s;
}

/// An index PUT takes no body: an empty one, or an empty JSON object, so that a later
/// option is never silently ignored by a node that does not know it.
std::optional<core::error> check_index_body(const request& req, const route_env& env) {
  if (req.body().empty()) return std::nullopt;
  if (auto err = check_json_media_type(req)) return err;
  auto parsed = parse_json(req.body(), env);
  if (!parsed) return std::move(parsed).error();
  if (!parsed->is_object() || !parsed->get_object().empty())
    return invalid("unknown_field", "creating an index takes no body (or {})");
  return std::nullopt;
}

/// Reads `?explain=true|false`; any other parameter, or another value, is refused.
std::optional<core::error> parse_query_params(const request& req, bool& explain) {
  auto url = boost::urls::parse_origin_form(req.target());
  if (!url) return std::nullopt; // route() parsed it already
  for (auto p : url->params()) {
    if (p.key.empty() && !p.has_value) continue; // a bare "?"
    if (p.key != "explain")
      return invalid("invalid_query",
                     "unknown query parameter '" + p.key + "' (only explain is taken)");
    if (p.has_value && p.value == "true") {
      explain = true;
    } else if (p.has_value && p.value == "false") {
      explain = false;
    } else {
      return invalid("invalid_query", "explain must be true or false");
    }
  }
  return std::nullopt;
}

/// The JSON text of string `s`, quoted and escaped.
std::string json_string(std::string_view s) {
  return boost::json::serialize(boost::json::string_view(s.data(), s.size()));
}

/// {"docs":[{"id","version","doc"}...],"next_cursor":...}; documents are spliced in as
/// the JSON text they are stored as.
std::string page_json(const query::page& p) {
  std::string body = "{\"docs\":[";
  bool first = true;
  for (const auto& h : p.docs) {
    if (!first) body += ',';
    first = false;
    body += "{\"id\":";
    body += json_string(h.id);
    body += ",\"version\":";
    body += std::to_string(h.version);
    body += ",\"doc\":";
    body += h.doc;
    body += '}';
  }
  body += "],\"next_cursor\":";
  body += p.next_cursor ? json_string(*p.next_cursor) : std::string("null");
  body += '}';
  return body;
}

/// {"plan":{"index","scan","bounds","shards","estimated_keys"[,"per_shard"]}}
std::string plan_json(const query::plan_summary& s) {
  boost::json::object plan;
  if (s.index)
    plan["index"] = *s.index;
  else
    plan["index"] = nullptr;
  plan["scan"] = s.all_indexed ? "index" : "full";
  plan["bounds"] = s.bounds;
  plan["shards"] = s.shards;
  plan["estimated_keys"] = s.estimated_keys;
  if (!s.per_shard.empty()) {
    boost::json::array per_shard;
    for (std::size_t i = 0; i < s.per_shard.size(); ++i) {
      const auto& p = s.per_shard[i];
      boost::json::object o;
      o["shard"] = i;
      if (p.index.empty())
        o["index"] = nullptr;
      else
        o["index"] = p.index;
      o["bounds"] = p.bounds;
      o["estimated_keys"] = p.estimated_keys;
      per_shard.push_back(std::move(o));
    }
    plan["per_shard"] = std::move(per_shard);
  }
  boost::json::object out;
  out["plan"] = std::move(plan);
  return util::to_json(out);
}

template <class T>
using answers = std::vector<core::result<T>>;

} // namespace

routed route_index_list(exchange& ex, std::string_view collection) {
  const auto version = ex.version();
  constexpr auto route = route_id::indexes;
  if (ex.req.method() != bhttp::verb::get && ex.req.method() != bhttp::verb::head)
    return refused(route, method_not_allowed(ex.req, read_methods));
  if (!core::valid_name(collection)) return refused(route, invalid_collection(), version);
  return {route, ask_all(ex, query::index_list{std::string(collection)}, ex.env.request_timeout_ms,
                         [version](answers<query::index_listing>&& a) {
                           return render(query::merge_listings(std::move(a)), version,
                                         [&](query::index_listing&& l) {
                                           boost::json::array list;
                                           for (const auto& p : l.indexes)
                                             list.push_back(progress_json(p));
                                           boost::json::object o;
                                           o["indexes"] = std::move(list);
                                           return plain_json(bhttp::status::ok, util::to_json(o),
                                                             version);
                                         });
                         })};
}

routed route_index(exchange& ex, std::string_view collection, std::string_view field) {
  auto& req = ex.req;
  const auto version = req.version();
  constexpr auto route = route_id::index;
  const auto method = req.method();
  if (method != bhttp::verb::get && method != bhttp::verb::head && method != bhttp::verb::put
      && method != bhttp::verb::delete_)
    return refused(route, method_not_allowed(ex.req, index_methods));
  if (!core::valid_name(collection)) return refused(route, invalid_collection(), version);
  if (!query::valid_path(field))
    return refused(route,
                   invalid("invalid_field",
                           "an index field is a path of 1 to 8 names of [A-Za-z0-9_-]{1,64} "
                           "joined by dots, at most 256 bytes"),
                   version);
  const auto timeout = ex.env.request_timeout_ms;
  std::string c(collection);
  std::string f(field);
  if (method == bhttp::verb::put) {
    if (auto err = check_index_body(req, ex.env)) return refused(route, *err, version);
    return {route,
            ask_all(ex, query::index_create{c, f}, timeout,
                    [version, location = index_location(c, f)](answers<query::index_state>&& a) {
                      return render(
                        query::merge_created(std::move(a)), version, [&](query::index_state&& s) {
                          auto res =
                            plain_json(s.created ? bhttp::status::created : bhttp::status::ok,
                                       util::to_json(progress_json(s.progress)), version);
                          if (s.created) res.set(bhttp::field::location, location);
                          return res;
                        });
                    })};
  }
  if (method == bhttp::verb::delete_)
    return {
      route,
      ask_all(ex, query::index_drop{c, f}, timeout, [version](answers<query::index_dropped>&& a) {
        return render(query::merge_dropped(std::move(a)), version,
                      [&](query::index_dropped&&) { return no_content(version); });
      })};
  return {
    route,
    ask_all(ex, query::index_get{c, f}, timeout, [version](answers<query::index_progress>&& a) {
      return render(query::merge_progress(std::move(a)), version, [&](query::index_progress&& p) {
        return plain_json(bhttp::status::ok, util::to_json(progress_json(p)), version);
      });
    })};
}

routed route_query(exchange& ex, std::string_view collection) {
  auto& req = ex.req;
  const auto version = req.version();
  constexpr auto route = route_id::query;
  if (req.method() != bhttp::verb::post) return refused(route, method_not_allowed(ex.req, "POST"));
  if (!core::valid_name(collection)) return refused(route, invalid_collection(), version);
  bool explain = false;
  if (auto err = parse_query_params(req, explain)) return refused(route, *err, version);
  if (auto err = check_json_media_type(req)) return refused(route, *err, version);
  auto body = parse_json(req.body(), ex.env);
  if (!body) return refused(route, body.error(), version);
  query::query_limits limits;
  limits.default_limit = ex.env.query_default_limit;
  limits.max_limit = ex.env.query_max_limit;
  // parse_query also decodes the cursor into spec.after, refusing one made for another
  // where/order_by/desc (invalid_cursor).
  auto spec = query::parse_query(*body, limits);
  if (!spec) return refused(route, spec.error(), version);
  const auto timeout = ex.env.request_timeout_ms;
  if (explain)
    return {route, ask_all(ex, query::query_explain{std::string(collection), *spec}, timeout,
                           [version](answers<query::shard_plan>&& a) {
                             return render(query::merge_plans(std::move(a)), version,
                                           [&](query::plan_summary&& s) {
                                             return plain_json(bhttp::status::ok, plan_json(s),
                                                               version);
                                           });
                           })};
  return {route, ask_all(ex, query::query_run{std::string(collection), *spec}, timeout,
                         [version, spec = *spec](answers<query::shard_hits>&& a) {
                           return render(
                             query::merge_hits(spec, std::move(a)), version, [&](query::page&& p) {
                               return plain_json(bhttp::status::ok, page_json(p), version);
                             });
                         })};
}

} // namespace shoal::http::detail
