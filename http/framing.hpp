// SPDX-License-Identifier: Apache-2.0
#pragma once

// Checks of a request's framing that Beast's parser leaves to the server (RFC 9112): a
// request whose body length cannot be trusted is answered and its connection closed, so
// no byte of it can run as a next request (request smuggling).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/message.hpp>

namespace shoal::http {

struct framing_problem {
  std::uint16_t status; ///< 400, or 501 for a transfer coding Shoal does not implement
  std::string code;     ///< the API error code
  std::string message;
};

/// The problem with the header of a request, or nullopt when its framing is sound:
/// - Transfer-Encoding: only `chunked`, once, and not in an HTTP/1.0 request (§6.1,
///   §6.3); a final coding other than chunked is 400, another coding before it 501;
/// - Host: exactly one in an HTTP/1.1 request, with a value that can be a host and port
///   (§3.2).
std::optional<framing_problem>
check_framing(const boost::beast::http::request_header<boost::beast::http::fields>& req);

/// Finds a field folded over several lines (obs-fold: a line break followed by a space
/// or a tab, §5.2) in a header block fed in pieces, as the parser consumes it. Beast's
/// parser would accept a fold (joining the lines with a space); Shoal refuses it.
class fold_detector {
public:
  /// Feeds the next bytes of the header block; true once a fold was seen.
  bool feed(std::string_view bytes) noexcept;

private:
  bool after_line_break_ = false;
  bool folded_ = false;
};

} // namespace shoal::http
