// SPDX-License-Identifier: Apache-2.0
#include "host/virtual_actor.hpp"

#include <algorithm>
#include <deque>
#include <exception>
#include <memory>
#include <optional>
#include <utility>

#include <boost/json.hpp>
#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "actors/actor_api.hpp"
#include "actors/actor_metrics.hpp"
#include "cluster/shard_map.hpp"
#include "protocol/errors.hpp"
#include "storage/store.hpp"

namespace shoal::host {

namespace {

using actors::actor_call;
using actors::actor_result;
using actors::actor_type;
using actors::call_result;
using actors::method_context;
using call_target = core::reply_to<actor_result>;
using outcome = core::result<actor_result>;

constexpr char state_format_v1 = 0x01;

core::error call_timeout(std::string message) {
  return {core::errc::timeout, "call_timeout", std::move(message)};
}

using clock_time = caf::actor_clock::time_point;

/// A call or a passivation waiting for its turn.
struct queued {
  std::optional<actor_call> call; ///< empty: the passivation request
  call_target to;
  caf::typed_response_promise<caf::ok_atom> passivated;
  clock_time deadline{}; ///< when the caller stops waiting (calls only)
};

class invocation;

struct vactor_state {
  virtual_actor_config cfg;
  std::string key;
  storage::shard_store* shard = nullptr;
  bool loaded = false;
  boost::json::object state;
  std::string persisted; ///< JSON text of the last written state ("" = never written)
  /// Calls (and a passivation) waiting for their turn; created when the first one has to
  /// wait, since most actors never queue and an empty std::deque still allocates.
  std::unique_ptr<std::deque<queued>> queue;
  std::shared_ptr<invocation> current; ///< the call whose turn it is
  bool stopping = false;
  bool pumping = false; ///< pump() is on the stack: calls that finish in it do not recurse

  static inline const char* name = "shoal.virtual_actor";
};

using vactor_pointer = virtual_actor::stateful_pointer<vactor_state>;

void pump(vactor_pointer self);
void complete(vactor_pointer self, invocation& inv, outcome reply);

/// One method call in progress: the `method_context` the handler sees.
class invocation final : public method_context, public std::enable_shared_from_this<invocation> {
public:
  invocation(vactor_pointer self, const actor_type::method_entry* entry, actor_call call,
             boost::json::object args, call_target to, clock_time deadline)
      : self_(self), entry_(entry), call_(std::move(call)), args_(std::move(args)),
        to_(std::move(to)), started_(std::chrono::steady_clock::now()), deadline_(deadline) {}

  const std::string& type() const noexcept override {
    return call_.type;
  }
  const std::string& id() const noexcept override {
    return call_.id;
  }
  const std::string& method() const noexcept override {
    return call_.method;
  }
  boost::json::object& state() noexcept override {
    return self_->state.state;
  }
  const boost::json::object& args() const noexcept override {
    return args_;
  }

  void reply(boost::json::value result) override {
    if (done_) return;
    done_ = true;
    complete(self_, *this, actor_result{boost::json::serialize(result)});
  }

  void fail(std::uint16_t status, std::string code, std::string message) override {
    if (done_) return;
    done_ = true;
    if (status < 400 || status > 599) status = 500;
    complete(self_, *this, core::error::application(status, std::move(code), std::move(message)));
  }

  void call(std::string type, std::string id, std::string method, boost::json::object args,
            std::function<void(method_context&, call_result)> then) override {
    auto& st = self_->state;
    ++outstanding_;
    auto shard =
      cluster::shard_map{static_cast<std::uint32_t>(st.cfg.peers->handles.size())}.shard_of(type,
                                                                                            id);
    // A nested call gets what is left of this call's time (at most call_timeout): when
    // our caller gives up, so does everything we started for it.
    auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - self_->clock().now());
    auto budget = std::clamp(left, std::chrono::milliseconds(1), st.cfg.call_timeout);
    auto me = shared_from_this();
    auto on_answer = [me, then](call_result result) {
      --me->outstanding_;
      if (me->done_) return; // the method completed without waiting for this answer
      me->run([&] { then(*me, std::move(result)); });
    };
    protocol::ask(self_, st.cfg.peers->handles[shard], budget,
                  actor_call{std::move(type), std::move(id), std::move(method),
                             boost::json::serialize(args),
                             static_cast<std::uint32_t>(budget.count())})
      .then(
        [on_answer](actor_result& r) {
          call_result result;
          boost::json::error_code ec;
          result.value = boost::json::parse(r.json, ec);
          on_answer(std::move(result));
        },
        [on_answer](caf::error& err) {
          if (err.category() == protocol::error_category) {
            auto e = protocol::from_caf(err);
            return on_answer(call_result{core::http_status(e),
                                         {},
                                         std::string(core::api_code(e)),
                                         e.message()});
          }
          bool timeout = err == caf::sec::request_timeout;
          on_answer(call_result{504,
                                {},
                                timeout ? "call_timeout" : "call_failed",
                                timeout ? "the called actor did not answer in time"
                                        : "the call failed: " + caf::to_string(err)});
        });
  }

  /// Runs user code (the handler or a continuation). A throw fails the call with 500
  /// actor_failed; returning without replying, failing or waiting on a call fails it too,
  /// because nothing could complete it any more.
  template <class F>
  void run(F&& f) {
    try {
      f();
    } catch (const std::exception& e) {
      failed(std::string("the method threw: ") + e.what());
    } catch (...) {
      failed("the method threw");
    }
    if (!done_ && outstanding_ == 0) failed("the method returned without replying");
  }

  /// Ends the call with 500 actor_failed: nothing can complete it any more.
  void failed(std::string message) {
    if (done_) return;
    done_ = true;
    complete(self_, *this, core::error{core::errc::internal, "actor_failed", std::move(message)});
  }

  void start() {
    run([this] { entry_->handler(*this); });
  }

  bool read_only() const noexcept {
    return entry_->read_only;
  }
  call_target& target() noexcept {
    return to_;
  }
  std::chrono::steady_clock::time_point started() const noexcept {
    return started_;
  }

private:
  vactor_pointer self_;
  const actor_type::method_entry* entry_;
  actor_call call_;
  boost::json::object args_;
  call_target to_;
  std::chrono::steady_clock::time_point started_;
  clock_time deadline_;
  int outstanding_ = 0;
  bool done_ = false;
};

/// Loads the state once, before the first call; false when the store failed.
bool ensure_loaded(vactor_pointer self, std::string& error) {
  auto& st = self->state;
  if (st.loaded) return true;
  auto stored = st.shard->get(st.key);
  if (!stored && stored.error() == core::errc::not_found) {
    st.loaded = true;
    return true;
  }
  if (!stored) {
    error = stored.error().to_string();
    return false;
  }
  const auto& raw = *stored;
  if (raw.empty() || raw[0] != state_format_v1) {
    error = "stored actor state has an unknown format";
    return false;
  }
  boost::json::error_code ec;
  auto v = boost::json::parse(std::string_view(raw).substr(1), ec);
  if (ec || !v.is_object()) {
    error = "stored actor state is not a JSON object";
    return false;
  }
  st.state = std::move(v.get_object());
  st.persisted = raw.substr(1);
  st.loaded = true;
  return true;
}

/// Puts the state back to what was last persisted (after a failed or thrown method).
void restore(vactor_state& st) {
  if (st.persisted.empty()) {
    st.state = {};
    return;
  }
  st.state = boost::json::parse(st.persisted).get_object();
}

void record(vactor_pointer self, const invocation& inv, const outcome& reply) {
  auto* m =
    self->state.cfg.metrics ? self->state.cfg.metrics->find(inv.type(), inv.method()) : nullptr;
  if (!m) return;
  if (reply)
    m->ok.inc();
  else if (core::http_status(reply.error()) < 500)
    m->error.inc();
  else
    m->failed.inc();
  m->latency.observe(
    std::chrono::duration<double>(std::chrono::steady_clock::now() - inv.started()).count());
}

/// Ends the current turn: deliver, then take the next queued call.
void finish(vactor_pointer self, outcome reply) {
  auto inv = std::move(self->state.current);
  record(self, *inv, reply);
  inv->target().deliver(std::move(reply));
  pump(self);
}

void complete(vactor_pointer self, invocation& inv, outcome reply) {
  auto& st = self->state;
  if (!reply) {
    restore(st);
    return finish(self, std::move(reply));
  }
  if (inv.read_only()) {
    restore(st); // a read-only method must not change the state, even in memory
    return finish(self, std::move(reply));
  }
  auto text = boost::json::serialize(st.state);
  if (text == st.persisted) return finish(self, std::move(reply));
  std::string value;
  value.reserve(text.size() + 1);
  value += state_format_v1;
  value += text;
  // Through the shard's commit gate, and write-then-reply: the turn ends only once the
  // state is durable, so the next call cannot observe (or answer from) a state a crash
  // could still take back. Until then the state in memory is the new one; a failed
  // write puts back the last persisted one.
  protocol::ask(self, st.cfg.host, caf::infinite, actors::state_write{st.key, std::move(value)})
    .then(
      [self, text = std::move(text), reply](actors::state_written&) mutable {
        self->state.persisted = std::move(text);
        finish(self, std::move(reply));
      },
      [self](caf::error& err) {
        restore(self->state);
        auto e = protocol::from_caf(err);
        finish(self, core::error{core::errc::storage_failed, e.message()});
      });
}

/// Runs `next`: a passivation stops the actor; a call is checked and started (it may
/// complete before this returns).
void dispatch(vactor_pointer self, queued next) {
  auto& st = self->state;
  if (!next.call) {
    next.passivated.deliver(caf::ok_atom::value);
    st.stopping = true;
    self->quit();
    return;
  }
  auto& call = *next.call;
  if (self->clock().now() >= next.deadline)
    return next.to.deliver(call_timeout("the caller stopped waiting before this call's turn"));
  std::string error;
  if (!ensure_loaded(self, error))
    return next.to.deliver(core::error{core::errc::storage_failed, error});
  const auto* entry = st.cfg.type->find(call.method);
  if (!entry)
    return next.to.deliver(core::error{
      core::errc::not_found, "unknown_method",
      "actor type '" + call.type + "' has no method '" + call.method + "'"});
  boost::json::error_code ec;
  auto args = call.args.empty() ? boost::json::value(boost::json::object{})
                                : boost::json::parse(call.args, ec);
  if (ec || !args.is_object())
    return next.to.deliver(core::error{core::errc::invalid_argument, "invalid_args",
                                       "the arguments must be a JSON object"});
  st.current = std::make_shared<invocation>(
    self, entry, std::move(call), std::move(args.get_object()), std::move(next.to), next.deadline);
  // Keep the invocation alive through the handler even if it completes synchronously.
  auto inv = st.current;
  inv->start();
}

/// Starts queued calls until one is in progress (or the queue is empty). Calls that
/// complete synchronously end their turn inside this loop; the flag keeps that from
/// recursing, so a long queue cannot grow the stack.
void pump(vactor_pointer self) {
  auto& st = self->state;
  if (st.pumping) return;
  st.pumping = true;
  while (!st.current && st.queue && !st.queue->empty() && !st.stopping) {
    auto next = std::move(st.queue->front());
    st.queue->pop_front();
    dispatch(self, std::move(next));
  }
  st.pumping = false;
}

void enqueue(vactor_pointer self, queued q) {
  auto& st = self->state;
  if (q.call) {
    auto budget =
      q.call->budget_ms != 0 ? std::chrono::milliseconds(q.call->budget_ms) : st.cfg.call_timeout;
    q.deadline = self->clock().now() + budget;
  }
  if (!st.current && !st.stopping && !st.pumping && (!st.queue || st.queue->empty())) {
    // Nothing ahead of it: run it now, without touching (or allocating) the queue.
    st.pumping = true;
    dispatch(self, std::move(q));
    st.pumping = false;
  } else {
    if (!st.queue) st.queue = std::make_unique<std::deque<queued>>();
    st.queue->push_back(std::move(q));
  }
  pump(self);
}

virtual_actor::behavior_type vactor_impl(vactor_pointer self, virtual_actor_config cfg) {
  auto& st = self->state;
  st.key = actors::actor_state_key(cfg.type->name(), cfg.id);
  st.shard = cfg.shard;
  st.cfg = std::move(cfg);
  return {
    protocol::handler<actor_call>(self,
                                  [self](actor_call&& call, call_target to) {
                                    enqueue(self, queued{std::move(call), std::move(to), {}});
                                  }),
    [self](passivate_atom) {
      auto rp = self->make_response_promise<caf::ok_atom>();
      enqueue(self, queued{std::nullopt, {}, rp});
      return rp;
    },
  };
}

} // namespace

virtual_actor spawn_virtual_actor(caf::actor_system& sys, virtual_actor_config cfg) {
  return sys.spawn(vactor_impl, std::move(cfg));
}

} // namespace shoal::host
