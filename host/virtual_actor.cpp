// SPDX-License-Identifier: Apache-2.0
#include "host/virtual_actor.hpp"

#include <algorithm>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include <boost/json.hpp>
#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "actors/actor_api.hpp"
#include "actors/actor_metrics.hpp"
#include "cluster/shard_map.hpp"
#include "protocol/errors.hpp"
#include "storage/store.hpp"
#include "util/json.hpp"

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

/// A finished call whose answer waits until the state it saw is durable.
struct held {
  std::shared_ptr<invocation> inv;
  outcome reply;
};

/// An outgoing call of a method, sent once the state it saw is durable.
using held_call = std::function<void(bool durable)>;

struct vactor_state {
  virtual_actor_config cfg;
  std::string key;
  storage::shard_store* shard = nullptr;
  bool loaded = false;
  boost::json::object state;
  // The state as JSON text: `durable` is written (and, in sync mode, synced); `latest` is
  // what the last successful call left ("" = empty, never written). They differ while a
  // write is in flight or waits for its turn.
  std::string durable;
  std::string latest;
  // Group commit per actor: while one state write is in flight the next calls still run,
  // but what they answer or send out waits until the state they saw is durable. A write
  // that fails takes back every call after the last durable state.
  bool writing = false;
  std::string writing_text;      ///< what the write in flight writes
  std::uint64_t writes = 0;      ///< writes started; the one in flight is number `writes`
  std::vector<held> in_write;    ///< answers waiting for the write in flight
  std::vector<held> after_write; ///< answers waiting for the write after it
  /// Outgoing calls waiting for durability, with the number of the write they wait for.
  std::vector<std::pair<std::uint64_t, held_call>> calls_out;
  std::uint64_t epoch = 0; ///< bumped when a write fails: calls running then are void
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
        to_(std::move(to)), started_(std::chrono::steady_clock::now()), deadline_(deadline),
        epoch_(self->state.epoch) {}

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
    // What the method built must be JSON that parses back: no infinite number, no
    // nesting past the one depth limit (a state that broke them could not be loaded).
    const char* problem = util::unstorable(result);
    const char* state_problem = read_only() ? nullptr : util::unstorable(self_->state.state);
    if (problem || state_problem)
      return complete(self_, *this,
                      core::error{core::errc::internal, "actor_failed",
                                  std::string(problem ? "the result: " : "the new state: ")
                                    + (problem ? problem : state_problem)});
    complete(self_, *this, actor_result{util::to_json(result)});
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
    auto send = [self = self_, target = st.cfg.peers->handles[shard], budget, on_answer,
                 req = actor_call{std::move(type), std::move(id), std::move(method),
                                  util::to_json(args), static_cast<std::uint32_t>(budget.count())}](
                  bool durable) mutable {
      if (!durable)
        return on_answer(call_result{
          503, {}, "storage_failed", "the state this call was made from could not be written"});
      protocol::ask(self, target, budget, std::move(req))
        .then(
          [on_answer](actor_result& r) {
            call_result result;
            boost::json::error_code ec;
            result.value = util::parse_json(r.json, ec);
            on_answer(std::move(result));
          },
          [on_answer](caf::error& err) {
            if (err.category() == protocol::error_category) {
              auto e = protocol::from_caf(err);
              return on_answer(
                call_result{core::http_status(e), {}, std::string(core::api_code(e)), e.message()});
            }
            bool timeout = err == caf::sec::request_timeout;
            on_answer(call_result{504,
                                  {},
                                  timeout ? "call_timeout" : "call_failed",
                                  timeout ? "the called actor did not answer in time"
                                          : "the call failed: " + caf::to_string(err)});
          });
    };
    // What this method saw may not be durable yet (a write of an earlier call is in
    // flight): nothing derived from it leaves the actor before it is.
    if (st.writing)
      st.calls_out.emplace_back(st.latest == st.writing_text ? st.writes : st.writes + 1,
                                std::move(send));
    else
      send(true);
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
  /// The state it ran on was taken back (a write failed) after it started.
  bool void_() const noexcept {
    return epoch_ != self_->state.epoch;
  }

private:
  vactor_pointer self_;
  const actor_type::method_entry* entry_;
  actor_call call_;
  boost::json::object args_;
  call_target to_;
  std::chrono::steady_clock::time_point started_;
  clock_time deadline_;
  std::uint64_t epoch_;
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
  auto v = util::parse_json(std::string_view(raw).substr(1), ec);
  if (ec || !v.is_object()) {
    error = "stored actor state is not a JSON object";
    return false;
  }
  st.state = std::move(v.get_object());
  st.durable = raw.substr(1);
  st.latest = st.durable;
  st.loaded = true;
  return true;
}

/// Puts the state back to what the last successful call left (after a failed, thrown or
/// read-only method).
void restore(vactor_state& st) {
  if (st.latest.empty()) {
    st.state = {};
    return;
  }
  // `latest` was serialized from a state that passed util::unstorable, so it parses.
  boost::json::error_code ec;
  auto v = util::parse_json(st.latest, ec);
  st.state = !ec && v.is_object() ? std::move(v.get_object()) : boost::json::object{};
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

void deliver(vactor_pointer self, held h) {
  record(self, *h.inv, h.reply);
  h.inv->target().deliver(std::move(h.reply));
}

void start_write(vactor_pointer self);

/// The write in flight ended. Success: its answers and the calls out that waited for it
/// go, and the calls after it get the next write. Failure: the state goes back to the
/// durable one, and every call that saw a later state fails (503 storage_failed), also
/// a call running now (its epoch is void).
void written(vactor_pointer self, const core::error* failure) {
  auto& st = self->state;
  st.writing = false;
  auto answers = std::move(st.in_write);
  st.in_write.clear();
  std::vector<held> later;
  if (failure) {
    ++st.epoch;
    st.latest = st.durable;
    restore(st);
    later = std::move(st.after_write);
    st.after_write.clear();
    for (auto& h : answers)
      h.reply = core::error{core::errc::storage_failed, failure->message()};
    for (auto& h : later)
      h.reply = core::error{core::errc::storage_failed, failure->message()};
  } else {
    st.durable = st.writing_text;
    if (!st.after_write.empty()) {
      if (st.latest == st.durable) {
        later = std::move(st.after_write); // nothing new to write: they saw this state
        st.after_write.clear();
      } else {
        st.in_write = std::move(st.after_write);
        st.after_write.clear();
        start_write(self);
      }
    }
  }
  // Calls out that waited for this write (or, on failure, for any write) go now.
  std::vector<held_call> go;
  auto& out = st.calls_out;
  for (auto it = out.begin(); it != out.end();) {
    if (failure || it->first <= st.writes - (st.writing ? 1 : 0)) {
      go.push_back(std::move(it->second));
      it = out.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& h : answers)
    deliver(self, std::move(h));
  for (auto& h : later)
    deliver(self, std::move(h));
  for (auto& send : go)
    send(failure == nullptr);
  pump(self);
}

/// Writes `latest` through the shard's commit gate (write-then-reply: the answers wait
/// for it, and in sync mode for its fsync).
void start_write(vactor_pointer self) {
  auto& st = self->state;
  st.writing = true;
  st.writing_text = st.latest;
  ++st.writes;
  std::string value;
  value.reserve(st.writing_text.size() + 1);
  value += state_format_v1;
  value += st.writing_text;
  protocol::ask(self, st.cfg.host, caf::infinite, actors::state_write{st.key, std::move(value)})
    .then([self](actors::state_written&) { written(self, nullptr); },
          [self](caf::error& err) {
            auto e = protocol::from_caf(err);
            written(self, &e);
          });
}

/// Ends the current turn with `reply`: it leaves now when the actor has nothing
/// undurable, else it waits for the write that makes what the call saw durable.
void complete(vactor_pointer self, invocation& inv, outcome reply) {
  auto& st = self->state;
  auto current = std::move(st.current);
  if (inv.void_()) {
    // A write failed while it ran: it saw a state that is gone.
    reply = core::error{core::errc::storage_failed,
                        "an earlier state change of this actor could not be written"};
  }
  if (!reply || inv.read_only()) {
    restore(st); // a failed call keeps nothing; a read-only one must not change the state
  } else {
    st.latest = util::to_json(st.state);
  }
  held h{std::move(current), std::move(reply)};
  if (st.writing) {
    if (st.after_write.empty() && st.latest == st.writing_text)
      st.in_write.push_back(std::move(h)); // it saw the state being written
    else
      st.after_write.push_back(std::move(h));
  } else if (st.latest != st.durable) {
    st.in_write.push_back(std::move(h));
    start_write(self);
  } else {
    deliver(self, std::move(h));
  }
  pump(self);
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
    return next.to.deliver(
      core::error{core::errc::not_found, "unknown_method",
                  "actor type '" + call.type + "' has no method '" + call.method + "'"});
  boost::json::error_code ec;
  auto args =
    call.args.empty() ? boost::json::value(boost::json::object{}) : util::parse_json(call.args, ec);
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
    if (!st.queue->front().call && st.writing) break; // passivate once all is durable
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
  if (!st.current && !st.stopping && !st.pumping && (!st.queue || st.queue->empty())
      && (q.call || !st.writing)) {
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
