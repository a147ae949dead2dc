// SPDX-License-Identifier: Apache-2.0
// The secondary index and query routes (docs/queries.md). Each is a gather call: the
// session sends one collection request to every shard and hands the replies, in shard
// order, to the merge built here, which sums index progress or merges query hits in sort
// order. Everything a request can be refused for is decided here, before any shard sees
// it; shards only refuse what depends on their state (index_required).
#include "http/router.hpp"

#include <algorithm>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <queue>
#include <string>
#include <utility>
#include <vector>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include "actors/names.hpp"
#include "http/route_helpers.hpp"
#include "query/query.hpp"
#include "query/shard_index.hpp"
#include "query/values.hpp"

namespace shoal::http::detail {

namespace bhttp = boost::beast::http;
using actors::doc_reply;
using actors::doc_status;

namespace {

constexpr std::string_view index_methods = "GET, HEAD, PUT, DELETE";
constexpr std::string_view query_methods = "POST";

response invalid_name(unsigned version) {
  return error_response(bhttp::status::bad_request, "invalid_name",
                        "collection names are 1 to 64 of [A-Za-z0-9_-]", version);
}

response internal_error(std::string_view message, unsigned version) {
  return error_response(bhttp::status::internal_server_error, "internal_error", message, version);
}

/// "shard 3" for messages.
std::string shard_name(std::size_t i) {
  return "shard " + std::to_string(i);
}

/// The response when some reply is not one of `expected`, or nullopt when all are. A
/// refusal (400 with the shard's code) comes first: the request fails whatever the other
/// shards say. Then an unavailable shard (503, as a single document request would be
/// answered), then anything else (500: a shard broke the protocol).
std::optional<response> failed_gather(std::vector<doc_reply>& replies,
                                      std::initializer_list<doc_status> expected,
                                      unsigned version) {
  for (auto& r : replies)
    if (r.status == doc_status::bad_request)
      return error_response(bhttp::status::bad_request, r.code.empty() ? "bad_request" : r.code,
                            r.message, version);
  for (auto& r : replies)
    if (r.status == doc_status::storage_error || r.status == doc_status::unavailable
        || r.status == doc_status::shard_unavailable)
      return render_doc_reply(doc_call{}, std::move(r), version);
  for (std::size_t i = 0; i < replies.size(); ++i)
    if (std::find(expected.begin(), expected.end(), replies[i].status) == expected.end())
      return internal_error(shard_name(i) + " answered an unexpected status ("
                              + std::to_string(static_cast<int>(replies[i].status)) + ")",
                            version);
  return std::nullopt;
}

// -- index progress --------------------------------------------------------------------------

/// Adds `p` (one shard's progress of the same index) to `into`: counts are summed, and
/// the index is ready only when every shard's part is.
void add_progress(query::index_progress& into, const query::index_progress& p, bool first) {
  if (first) {
    into = p;
    return;
  }
  into.ready = into.ready && p.ready;
  into.indexed += p.indexed;
  into.total += p.total;
}

/// Sums the progress bodies of the replies whose status is in `with`; nullopt when one
/// does not parse (`bad` then names the shard) or when none has such a status.
std::optional<query::index_progress> merge_progress(const std::vector<doc_reply>& replies,
                                                    std::initializer_list<doc_status> with,
                                                    std::string& bad) {
  std::optional<query::index_progress> merged;
  for (std::size_t i = 0; i < replies.size(); ++i) {
    const auto& r = replies[i];
    if (std::find(with.begin(), with.end(), r.status) == with.end()) continue;
    auto p = query::index_progress::from_json(r.body);
    if (!p) {
      bad = shard_name(i);
      return std::nullopt;
    }
    bool first = !merged;
    if (first) merged.emplace();
    add_progress(*merged, *p, first);
  }
  return merged;
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
std::optional<response> check_index_body(const request& req, const route_env& env) {
  if (req.body().empty()) return std::nullopt;
  if (auto err = check_json_media_type(req)) return err;
  auto parsed = parse_json(req.body(), env, req.version());
  if (auto* err = std::get_if<response>(&parsed)) return std::move(*err);
  const auto& v = std::get<boost::json::value>(parsed);
  if (!v.is_object() || !v.get_object().empty())
    return error_response(bhttp::status::bad_request, "unknown_field",
                          "creating an index takes no body (or {})", req.version());
  return std::nullopt;
}

// -- queries ----------------------------------------------------------------------------------

/// Reads `?explain=true|false`; any other parameter, or another value, is refused.
std::optional<response> parse_query_params(const request& req, bool& explain) {
  auto url = boost::urls::parse_origin_form(req.target());
  if (!url) return std::nullopt; // route() parsed it already
  for (auto p : url->params()) {
    if (p.key.empty() && !p.has_value) continue; // a bare "?"
    if (p.key != "explain")
      return error_response(bhttp::status::bad_request, "invalid_query",
                            "unknown query parameter '" + p.key + "' (only explain is taken)",
                            req.version());
    if (p.has_value && p.value == "true") {
      explain = true;
    } else if (p.has_value && p.value == "false") {
      explain = false;
    } else {
      return error_response(bhttp::status::bad_request, "invalid_query",
                            "explain must be true or false", req.version());
    }
  }
  return std::nullopt;
}

/// The JSON text of string `s`, quoted and escaped.
std::string json_string(std::string_view s) {
  return boost::json::serialize(boost::json::string_view(s.data(), s.size()));
}

/// Merges the shards' hits in sort order and renders the first `spec.limit` of them.
response merge_hits(const query::query_spec& spec, std::vector<doc_reply>& replies,
                    unsigned version) {
  std::vector<query::shard_hits> shards;
  shards.reserve(replies.size());
  bool more = false;
  for (std::size_t i = 0; i < replies.size(); ++i) {
    auto decoded = query::decode_hits(replies[i].body);
    if (!decoded) return internal_error(shard_name(i) + " answered malformed query hits", version);
    // A shard's answer must be in order and after the cursor, or pages would repeat or
    // skip documents: refuse it rather than pass that on.
    const auto& hits = decoded->hits;
    for (std::size_t h = 0; h < hits.size(); ++h) {
      bool ordered = h == 0
                     || (spec.desc ? hits[h].sort_key < hits[h - 1].sort_key
                                   : hits[h - 1].sort_key < hits[h].sort_key);
      if (!ordered || !query::after_cursor(spec, hits[h].sort_key) || hits[h].doc.empty()
          || hits[h].doc.front() != '{')
        return internal_error(shard_name(i) + " answered hits out of order or malformed", version);
    }
    more = more || decoded->more;
    shards.push_back(std::move(*decoded));
  }

  // A heap of the next hit of each shard; the top is the next in sort order.
  using head = std::pair<std::size_t, std::size_t>; // shard, position
  auto later = [&](const head& a, const head& b) {
    const auto& ka = shards[a.first].hits[a.second].sort_key;
    const auto& kb = shards[b.first].hits[b.second].sort_key;
    return spec.desc ? ka < kb : kb < ka;
  };
  std::priority_queue<head, std::vector<head>, decltype(later)> heap(later);
  for (std::size_t s = 0; s < shards.size(); ++s)
    if (!shards[s].hits.empty()) heap.push({s, 0});

  std::string body = "{\"docs\":[";
  const query::hit* last = nullptr;
  std::uint32_t taken = 0;
  while (!heap.empty() && taken < spec.limit) {
    auto [s, pos] = heap.top();
    heap.pop();
    const auto& h = shards[s].hits[pos];
    if (taken > 0) body += ',';
    body += "{\"id\":";
    body += json_string(h.id);
    body += ",\"version\":";
    body += std::to_string(h.version);
    body += ",\"doc\":";
    body += h.doc;
    body += '}';
    last = &h;
    ++taken;
    if (pos + 1 < shards[s].hits.size()) heap.push({s, pos + 1});
  }
  more = more || !heap.empty();
  body += "],\"next_cursor\":";
  if (more && last != nullptr)
    body += json_string(query::encode_cursor(spec, last->sort_key));
  else
    body += "null";
  body += '}';
  return plain_json(bhttp::status::ok, std::move(body), version);
}

/// Sums the shards' plans: {"plan":{"index","scan","bounds","shards","estimated_keys"}},
/// with "per_shard" when the shards do not all plan the same way.
response merge_plans(std::vector<doc_reply>& replies, unsigned version) {
  std::vector<query::shard_plan> plans;
  plans.reserve(replies.size());
  for (std::size_t i = 0; i < replies.size(); ++i) {
    auto p = query::plan_from_json(replies[i].body);
    if (!p) return internal_error(shard_name(i) + " answered a malformed plan", version);
    plans.push_back(std::move(*p));
  }
  if (plans.empty()) return internal_error("no shard answered", version);
  const auto& first = plans.front();
  std::uint64_t keys = 0;
  bool same = true;
  bool all_indexed = true;
  for (const auto& p : plans) {
    keys += p.estimated_keys;
    same = same && p.index == first.index && p.bounds == first.bounds;
    all_indexed = all_indexed && !p.index.empty();
  }
  boost::json::object plan;
  if (same && !first.index.empty())
    plan["index"] = first.index;
  else
    plan["index"] = nullptr;
  plan["scan"] = all_indexed ? "index" : "full";
  plan["bounds"] = same ? first.bounds : std::string("mixed");
  plan["shards"] = plans.size();
  plan["estimated_keys"] = keys;
  if (!same) {
    boost::json::array per_shard;
    for (std::size_t i = 0; i < plans.size(); ++i) {
      boost::json::object o;
      o["shard"] = i;
      if (plans[i].index.empty())
        o["index"] = nullptr;
      else
        o["index"] = plans[i].index;
      o["bounds"] = plans[i].bounds;
      o["estimated_keys"] = plans[i].estimated_keys;
      per_shard.push_back(std::move(o));
    }
    plan["per_shard"] = std::move(per_shard);
  }
  boost::json::object out;
  out["plan"] = std::move(plan);
  return plain_json(bhttp::status::ok, boost::json::serialize(out), version);
}

} // namespace

routed route_index_list(const request& req, std::string_view collection) {
  auto version = req.version();
  routed r{route_id::indexes, response{}};
  if (req.method() != bhttp::verb::get && req.method() != bhttp::verb::head) {
    r.outcome = method_not_allowed(read_methods, version);
    return r;
  }
  if (!actors::valid_name(collection)) {
    r.outcome = invalid_name(version);
    return r;
  }
  gather_call call;
  call.request.op = actors::doc_op::index_list;
  call.request.collection.assign(collection);
  call.merge = [](std::vector<doc_reply>&& replies, unsigned version) -> response {
    if (auto err = failed_gather(replies, {doc_status::ok}, version)) return std::move(*err);
    std::map<std::string, query::index_progress> merged;
    for (std::size_t i = 0; i < replies.size(); ++i) {
      boost::json::error_code ec;
      auto v = boost::json::parse(replies[i].body, ec);
      const boost::json::array* list = nullptr;
      if (!ec && v.is_object())
        if (const auto* m = v.get_object().if_contains("indexes")) list = m->if_array();
      if (list == nullptr)
        return internal_error(shard_name(i) + " answered a malformed index list", version);
      for (const auto& item : *list) {
        auto p = query::index_progress::from_json(boost::json::serialize(item));
        if (!p) return internal_error(shard_name(i) + " answered a malformed index list", version);
        auto [it, first] = merged.try_emplace(p->field);
        add_progress(it->second, *p, first);
      }
    }
    std::string body = "{\"indexes\":[";
    bool first = true;
    for (const auto& [field, p] : merged) {
      if (!first) body += ',';
      first = false;
      body += p.to_json();
    }
    body += "]}";
    return plain_json(bhttp::status::ok, std::move(body), version);
  };
  r.outcome = std::move(call);
  return r;
}

routed route_index(request& req, std::string_view collection, std::string_view field,
                   const route_env& env) {
  auto version = req.version();
  routed r{route_id::index, response{}};
  actors::doc_op op;
  switch (req.method()) {
  case bhttp::verb::get:
  case bhttp::verb::head: // the session drops the body of HEAD responses
    op = actors::doc_op::index_get;
    break;
  case bhttp::verb::put:
    op = actors::doc_op::index_put;
    break;
  case bhttp::verb::delete_:
    op = actors::doc_op::index_drop;
    break;
  default:
    r.outcome = method_not_allowed(index_methods, version);
    return r;
  }
  if (!actors::valid_name(collection)) {
    r.outcome = invalid_name(version);
    return r;
  }
  if (!query::valid_path(field)) {
    r.outcome = error_response(bhttp::status::bad_request, "invalid_field",
                               "an index field is a path of 1 to 8 names of [A-Za-z0-9_-]{1,64} "
                               "joined by dots, at most 256 bytes",
                               version);
    return r;
  }
  if (op == actors::doc_op::index_put) {
    if (auto err = check_index_body(req, env)) {
      r.outcome = std::move(*err);
      return r;
    }
  }
  gather_call call;
  call.request.op = op;
  call.request.collection.assign(collection);
  call.request.id.assign(field);
  switch (op) {
  case actors::doc_op::index_put:
    call.merge = [location = index_location(collection, field)](std::vector<doc_reply>&& replies,
                                                                unsigned version) -> response {
      if (auto err = failed_gather(replies, {doc_status::ok, doc_status::created}, version))
        return std::move(*err);
      std::string bad;
      auto merged = merge_progress(replies, {doc_status::ok, doc_status::created}, bad);
      if (!merged) return internal_error(bad + " answered a malformed index progress", version);
      bool created = std::any_of(replies.begin(), replies.end(), [](const doc_reply& x) {
        return x.status == doc_status::created;
      });
      if (!created) return plain_json(bhttp::status::ok, merged->to_json(), version);
      auto res = plain_json(bhttp::status::created, merged->to_json(), version);
      res.set(bhttp::field::location, location);
      return res;
    };
    break;
  case actors::doc_op::index_get:
    call.merge = [](std::vector<doc_reply>&& replies, unsigned version) -> response {
      if (auto err = failed_gather(replies, {doc_status::ok, doc_status::not_found}, version))
        return std::move(*err);
      std::string bad;
      auto merged = merge_progress(replies, {doc_status::ok}, bad);
      if (!merged && !bad.empty())
        return internal_error(bad + " answered a malformed index progress", version);
      if (!merged)
        return error_response(bhttp::status::not_found, "not_found", "no such index", version);
      return plain_json(bhttp::status::ok, merged->to_json(), version);
    };
    break;
  default:
    call.merge = [](std::vector<doc_reply>&& replies, unsigned version) -> response {
      if (auto err = failed_gather(replies, {doc_status::ok, doc_status::not_found}, version))
        return std::move(*err);
      bool dropped = std::any_of(replies.begin(), replies.end(),
                                 [](const doc_reply& x) { return x.status == doc_status::ok; });
      if (!dropped)
        return error_response(bhttp::status::not_found, "not_found", "no such index", version);
      response res{bhttp::status::no_content, version};
      res.prepare_payload();
      return res;
    };
  }
  r.outcome = std::move(call);
  return r;
}

routed route_query(request& req, std::string_view collection, const route_env& env) {
  auto version = req.version();
  routed r{route_id::query, response{}};
  auto refuse = [&](response res) {
    r.outcome = std::move(res);
    return r;
  };
  if (req.method() != bhttp::verb::post) return refuse(method_not_allowed(query_methods, version));
  if (!actors::valid_name(collection)) return refuse(invalid_name(version));
  bool explain = false;
  if (auto err = parse_query_params(req, explain)) return refuse(std::move(*err));
  if (auto err = check_json_media_type(req)) return refuse(std::move(*err));
  auto parsed = parse_json(req.body(), env, version);
  if (auto* err = std::get_if<response>(&parsed)) return refuse(std::move(*err));
  const auto& body = std::get<boost::json::value>(parsed);

  query::query_limits limits;
  limits.default_limit = env.query_default_limit;
  limits.max_limit = env.query_max_limit;
  // parse_query also decodes the cursor into spec.after, refusing one made for another
  // where/order_by/desc (invalid_cursor).
  auto result = query::parse_query(body, limits);
  if (auto* err = std::get_if<query::query_error>(&result))
    return refuse(error_response(bhttp::status::bad_request, err->code, err->message, version));
  auto spec = std::move(std::get<query::query_spec>(result));
  spec.explain = explain;

  gather_call call;
  call.request.op = actors::doc_op::query;
  call.request.collection.assign(collection);
  call.request.body = query::to_shard_json(spec);
  call.merge = [spec = std::move(spec)](std::vector<doc_reply>&& replies,
                                        unsigned version) -> response {
    if (auto err = failed_gather(replies, {doc_status::ok}, version)) return std::move(*err);
    if (spec.explain) return merge_plans(replies, version);
    return merge_hits(spec, replies, version);
  };
  r.outcome = std::move(call);
  return r;
}

} // namespace shoal::http::detail
