// SPDX-License-Identifier: Apache-2.0
#include "http/framing.hpp"
#include "util/text.hpp"

#include <vector>

#include <boost/beast/core/string.hpp>

namespace shoal::http {

namespace bhttp = boost::beast::http;

namespace {

using util::trim;

framing_problem bad(std::string message) {
  return {400, "bad_request", std::move(message)};
}

/// The transfer codings of every Transfer-Encoding line, in order (empty elements of
/// the list are skipped, as §5.6.1 allows).
std::vector<std::string_view> codings_of(const bhttp::request_header<bhttp::fields>& req) {
  std::vector<std::string_view> out;
  auto range = req.equal_range(bhttp::field::transfer_encoding);
  for (auto it = range.first; it != range.second; ++it) {
    std::string_view list(it->value().data(), it->value().size());
    while (!list.empty()) {
      auto comma = list.find(',');
      auto item = trim(list.substr(0, comma));
      if (!item.empty()) out.push_back(item);
      if (comma == std::string_view::npos) break;
      list.remove_prefix(comma + 1);
    }
  }
  return out;
}

/// A Host value: reg-name, IPv4 or [IPv6], then an optional :port. Empty is allowed
/// (a URI without authority). No spaces, controls, or delimiters of other URI parts.
bool valid_host(std::string_view host) noexcept {
  for (char c : host) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) return false;
    switch (c) {
    case '/':
    case '?':
    case '#':
    case '@':
    case '"':
    case '<':
    case '>':
    case '\\':
    case '^':
    case '`':
    case '{':
    case '|':
    case '}':
      return false;
    default:
      break;
    }
  }
  return true;
}

} // namespace

std::optional<framing_problem> check_framing(const bhttp::request_header<bhttp::fields>& req) {
  if (req.count(bhttp::field::transfer_encoding) != 0) {
    if (req.version() < 11) return bad("Transfer-Encoding is not allowed in an HTTP/1.0 request");
    auto codings = codings_of(req);
    if (codings.empty()) return bad("Transfer-Encoding names no transfer coding");
    if (!boost::beast::iequals(codings.back(), "chunked"))
      return bad("the last transfer coding must be chunked, not '" + std::string(codings.back())
                 + "'");
    for (std::size_t i = 0; i + 1 < codings.size(); ++i) {
      if (boost::beast::iequals(codings[i], "chunked"))
        return bad("chunked is applied more than once");
      return framing_problem{501, "not_implemented",
                             "transfer coding '" + std::string(codings[i])
                               + "' is not implemented (only chunked is)"};
    }
  }
  if (req.version() >= 11) {
    auto hosts = req.count(bhttp::field::host);
    if (hosts == 0) return bad("an HTTP/1.1 request needs a Host header");
    if (hosts > 1) return bad("more than one Host header");
    auto host = req[bhttp::field::host];
    if (!valid_host(std::string_view(host.data(), host.size())))
      return bad("the Host header is not a host");
  } else if (req.count(bhttp::field::host) > 1) {
    return bad("more than one Host header");
  }
  return std::nullopt;
}

bool fold_detector::feed(std::string_view bytes) noexcept {
  for (char c : bytes) {
    if (folded_) break;
    folded_ = after_line_break_ && (c == ' ' || c == '\t');
    after_line_break_ = c == '\n';
  }
  return folded_;
}

} // namespace shoal::http
