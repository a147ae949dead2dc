// SPDX-License-Identifier: Apache-2.0
#pragma once

// The messages of virtual actors. Plain structs with no CAF include, like
// doc_protocol.hpp: the edge builds them, actors exchange them (type ids in type_ids.hpp).

#include <cstdint>
#include <memory>
#include <string>

namespace shoal::actors {

/// A method invocation on the virtual actor (`type`, `id`).
struct actor_call {
  std::string type;
  std::string id;
  std::string method;
  std::string args; ///< serialized JSON object
  /// How long the caller will wait for the answer, in ms (0: actors.call_timeout_ms).
  /// A call still queued when its time is up is answered 504 call_timeout without
  /// running, so work nobody waits for any more (a timed-out call cycle) is dropped.
  std::uint32_t budget_ms = 0;
};

/// The answer to an `actor_call`: `status` is an HTTP status; 200 carries the method's
/// JSON result in `body`, anything else an error `code` and `message`.
struct actor_reply {
  std::uint16_t status = 200;
  std::string body; ///< serialized JSON result (status 200)
  std::string code; ///< stable error code, e.g. "unknown_method", "insufficient_stock"
  std::string message;

  bool ok() const noexcept {
    return status == 200;
  }
};

/// Where a reply to the edge goes; as `reply_sink` for documents: called exactly once,
/// on a CAF worker thread, and must only hand the reply over.
class call_sink {
public:
  virtual ~call_sink() = default;
  virtual void deliver(actor_reply&& reply) = 0;
};

using call_sink_ptr = std::shared_ptr<call_sink>;

} // namespace shoal::actors
