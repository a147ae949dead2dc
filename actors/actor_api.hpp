// SPDX-License-Identifier: Apache-2.0
#pragma once

// The public API for writing virtual actor types. An actor of type T with id X always
// exists logically; Shoal activates it on the shard that owns (T, X) on its first call,
// keeps its state (a JSON object) in that shard's store, and passivates it when idle.
// See docs/actors.md.
//
//   shoal::actors::actor_type counter{"counter"};
//   counter.method("increment", [](shoal::actors::method_context& m) {
//     auto value = m.state()["value"].to_number<std::int64_t>() + 1;
//     m.state()["value"] = value;
//     m.reply(boost::json::object{{"value", value}});
//   });
//   registry.add(std::move(counter));

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

namespace shoal::actors {

/// The answer of another actor to `method_context::call`: a JSON result, or an error
/// with an HTTP status and a stable code (504 `call_timeout` when it did not answer).
struct call_result {
  std::uint16_t status = 200;
  boost::json::value value; ///< the result when ok()
  std::string code;
  std::string message;

  bool ok() const noexcept {
    return status == 200;
  }
};

/// One method invocation, handed to the method's handler. Turn-based: until the method
/// completes (reply or fail), the actor takes no other call, so its state is its own.
/// The context stays valid until completion, across `call` continuations.
class method_context {
public:
  virtual ~method_context() = default;

  virtual const std::string& type() const noexcept = 0;
  virtual const std::string& id() const noexcept = 0;
  virtual const std::string& method() const noexcept = 0;

  /// The actor's state. Changes are persisted when the method replies (write-then-reply)
  /// and dropped when it fails or throws.
  virtual boost::json::object& state() noexcept = 0;

  /// The call's arguments (a JSON object; `{}` for an empty body).
  virtual const boost::json::object& args() const noexcept = 0;

  /// Completes the method with `result`. The state is written (unless the method is
  /// read-only or left it unchanged) and durable before the result leaves.
  virtual void reply(boost::json::value result) = 0;

  /// Completes the method with an error (`status` is an HTTP status, `code` a stable
  /// identifier such as "insufficient_stock"); state changes are dropped.
  virtual void fail(std::uint16_t status, std::string code, std::string message) = 0;

  /// Calls `method` of the actor (`type`, `id`), on whichever shard owns it, without
  /// blocking a thread. `then` runs in this actor's turn once the answer arrives; it may
  /// call again, reply or fail. A call that gets no answer within actors.call_timeout_ms
  /// yields status 504, code "call_timeout".
  virtual void call(std::string type, std::string id, std::string method, boost::json::object args,
                    std::function<void(method_context&, call_result)> then) = 0;
};

using method_handler = std::function<void(method_context&)>;

/// A user-defined actor type: a name and its methods.
class actor_type {
public:
  struct method_entry {
    method_handler handler;
    bool read_only = false;
  };

  /// `name` must match [A-Za-z0-9_-]{1,64}; `add` checks it.
  explicit actor_type(std::string name) : name_(std::move(name)) {}

  /// Adds a method that may change the state.
  actor_type& method(std::string name, method_handler handler) {
    methods_[std::move(name)] = method_entry{std::move(handler), false};
    return *this;
  }

  /// Adds a method that only reads the state: nothing is written after it.
  actor_type& read_only(std::string name, method_handler handler) {
    methods_[std::move(name)] = method_entry{std::move(handler), true};
    return *this;
  }

  const std::string& name() const noexcept {
    return name_;
  }

  /// The method called `name`, or nullptr.
  const method_entry* find(std::string_view name) const {
    auto it = methods_.find(name);
    return it == methods_.end() ? nullptr : &it->second;
  }

  const std::map<std::string, method_entry, std::less<>>& methods() const noexcept {
    return methods_;
  }

private:
  std::string name_;
  std::map<std::string, method_entry, std::less<>> methods_;
};

/// The actor types of a node. Filled at start-up, then only read (shared by all shards
/// without a lock).
class actor_registry {
public:
  /// Registers `type`. Throws std::invalid_argument for an invalid or duplicate name or
  /// a method name that breaks [A-Za-z0-9_-]{1,64}.
  void add(actor_type type);

  /// The type called `name`, or nullptr.
  const actor_type* find(std::string_view name) const;

  const std::map<std::string, actor_type, std::less<>>& types() const noexcept {
    return types_;
  }

private:
  std::map<std::string, actor_type, std::less<>> types_;
};

/// The built-in `counter` type: increment {"by": n} → {"value": v}, get, reset.
actor_type make_counter_type();

} // namespace shoal::actors
