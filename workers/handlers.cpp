// SPDX-License-Identifier: Apache-2.0
#include "workers/handlers.hpp"

#include <cmath>
#include <memory>
#include <unordered_map>
#include <utility>

#include <boost/json.hpp>
#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "core/names.hpp"
#include "documents/messages.hpp"
#include "util/json.hpp"

namespace shoal::workers {

void handler_registry::add(std::string type, factory make) {
  handlers_[std::move(type)] = std::move(make);
}

namespace {

using handler_function = std::function<job_outcome(const job_run&)>;

handler_actor::behavior_type function_impl(handler_actor::pointer,
                                           std::shared_ptr<handler_function> fn) {
  return {[fn](job_run& run) -> job_outcome {
    try {
      return (*fn)(run);
    } catch (const std::exception& e) {
      return job_outcome::failure(std::string("the handler threw: ") + e.what(), true);
    }
  }};
}

} // namespace

void handler_registry::add_function(std::string type, handler_function fn) {
  auto shared = std::make_shared<handler_function>(std::move(fn));
  // The function travels as a spawn argument: CAF 0.17 mishandles spawns without one
  // (a null shared_ptr dereference that UBSan reports).
  add(std::move(type),
      [shared](caf::actor_system& sys) { return sys.spawn(function_impl, shared); });
}

const handler_registry::factory* handler_registry::find(std::string_view type) const {
  auto it = handlers_.find(type);
  return it == handlers_.end() ? nullptr : &it->second;
}

std::vector<std::string> handler_registry::types() const {
  std::vector<std::string> out;
  for (const auto& [type, f] : handlers_)
    out.push_back(type);
  return out;
}

namespace {

using webhook_done_atom = caf::atom_constant<caf::atom("hook_done")>;

std::optional<boost::json::object> payload_object(const std::string& payload) {
  boost::json::error_code ec;
  auto v = util::parse_json(payload, ec);
  if (ec || !v.is_object()) return std::nullopt;
  return std::move(v.as_object());
}

// -- webhook -----------------------------------------------------------------------------

using webhook_actor =
  handler_actor::extend<caf::reacts_to<webhook_done_atom, std::uint64_t, job_outcome>>;

struct webhook_state {
  std::uint64_t next = 0;
  std::unordered_map<std::uint64_t, caf::typed_response_promise<job_outcome>> pending;
};

webhook_actor::behavior_type webhook_impl(webhook_actor::stateful_pointer<webhook_state> self,
                                          http_post post, std::chrono::milliseconds timeout) {
  return {
    [=](job_run& run) -> caf::result<job_outcome> {
      auto payload = payload_object(run.payload);
      const boost::json::string* url = nullptr;
      if (payload)
        if (auto it = payload->find("url"); it != payload->end()) url = it->value().if_string();
      if (!url) return job_outcome::failure("the payload needs \"url\": a string", false);
      auto wait = timeout;
      if (auto it = payload->find("timeout_ms"); it != payload->end()) {
        auto* n = it->value().if_int64();
        if (!n || *n < 1 || *n > 600000)
          return job_outcome::failure("\"timeout_ms\" must be an integer 1..600000", false);
        wait = std::chrono::milliseconds(*n);
      }
      bool keep_body = false;
      if (auto it = payload->find("keep_body"); it != payload->end()) {
        auto* b = it->value().if_bool();
        if (!b) return job_outcome::failure("\"keep_body\" must be true or false", false);
        keep_body = *b;
      }
      std::string body;
      if (auto it = payload->find("body"); it != payload->end())
        body = util::to_json(it->value());
      else
        body = run.payload;
      const auto id = ++self->state.next;
      auto rp = self->make_response_promise<job_outcome>();
      self->state.pending.emplace(id, rp);
      // The client calls back on its own thread: only a message goes back from there.
      auto me = caf::actor_cast<webhook_actor>(self);
      std::vector<std::pair<std::string, std::string>> headers{
        {"X-Shoal-Job-Id", run.id}, {"X-Shoal-Attempt", std::to_string(run.attempt)}};
      post(std::string(url->c_str()), std::move(body), wait, std::move(headers), keep_body,
           [me, id](job_outcome outcome) {
             caf::anon_send(me, webhook_done_atom::value, id, std::move(outcome));
           });
      return rp;
    },
    [=](webhook_done_atom, std::uint64_t id, job_outcome& outcome) {
      auto it = self->state.pending.find(id);
      if (it == self->state.pending.end()) return;
      it->second.deliver(std::move(outcome));
      self->state.pending.erase(it);
    },
  };
}

// -- collection.stats --------------------------------------------------------------------

struct stats_gather {
  caf::typed_response_promise<job_outcome> promise;
  std::string collection;
  std::string field;
  std::size_t pending = 0;
  documents::field_stats total;
  std::string failure;
};

/// A JSON number, written as an integer when it is one (1E1 reads badly as 10).
boost::json::value number(double x) {
  if (std::isfinite(x) && x == std::floor(x) && std::fabs(x) < 9007199254740992.0)
    return static_cast<std::int64_t>(x);
  return x;
}

void stats_done(const std::shared_ptr<stats_gather>& g) {
  if (--g->pending != 0) return;
  if (!g->failure.empty()) {
    g->promise.deliver(job_outcome::failure(g->failure, true));
    return;
  }
  boost::json::object o;
  o["collection"] = g->collection;
  o["field"] = g->field;
  o["count"] = g->total.count;
  o["numeric"] = g->total.numeric;
  const bool any = g->total.numeric > 0;
  o["min"] = any ? number(g->total.min) : boost::json::value(nullptr);
  o["max"] = any ? number(g->total.max) : boost::json::value(nullptr);
  o["sum"] = number(g->total.sum);
  o["avg"] = any ? number(g->total.sum / static_cast<double>(g->total.numeric))
                 : boost::json::value(nullptr);
  g->promise.deliver(job_outcome::success(util::to_json(o)));
}

bool valid_path(std::string_view path) {
  if (path.empty() || path.size() > 256) return false;
  std::size_t start = 0;
  while (start <= path.size()) {
    auto dot = path.find('.', start);
    auto part =
      path.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (part.empty()) return false;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return true;
}

handler_actor::behavior_type stats_impl(handler_actor::pointer self,
                                        const protocol::shard_handles* shards) {
  return {
    [=](job_run& run) -> caf::result<job_outcome> {
      auto payload = payload_object(run.payload);
      const boost::json::string* collection = nullptr;
      const boost::json::string* field = nullptr;
      if (payload) {
        if (auto it = payload->find("collection"); it != payload->end())
          collection = it->value().if_string();
        if (auto it = payload->find("field"); it != payload->end()) field = it->value().if_string();
      }
      if (!collection || !core::valid_name(*collection))
        return job_outcome::failure(
          "the payload needs \"collection\": a collection name (1 to 64 of [A-Za-z0-9_-])", false);
      if (!field || !valid_path(*field))
        return job_outcome::failure("the payload needs \"field\": a field name or a dotted path",
                                    false);
      auto g = std::make_shared<stats_gather>();
      g->promise = self->make_response_promise<job_outcome>();
      g->collection = std::string(collection->c_str());
      g->field = std::string(field->c_str());
      g->pending = shards->handles.size();
      for (const auto& shard : shards->handles) {
        protocol::ask(self, shard, caf::infinite,
                      documents::collection_stats{g->collection, g->field})
          .then(
            [g](documents::field_stats& part) {
              g->total.merge(part);
              stats_done(g);
            },
            [g](caf::error& err) {
              if (g->failure.empty())
                g->failure = "a shard failed: " + protocol::from_caf(err).to_string();
              stats_done(g);
            });
      }
      return g->promise;
    },
  };
}

} // namespace

void add_builtin_handlers(handler_registry& registry, const protocol::shard_handles& shards,
                          http_post post, std::chrono::milliseconds timeout) {
  registry.add("webhook", [post, timeout](caf::actor_system& sys) -> handler_actor {
    return sys.spawn(webhook_impl, post, timeout);
  });
  registry.add_function("noop",
                        [](const job_run& run) { return job_outcome::success(run.payload); });
  const auto* all = &shards;
  registry.add("collection.stats", [all](caf::actor_system& sys) -> handler_actor {
    return sys.spawn(stats_impl, all);
  });
}

} // namespace shoal::workers
