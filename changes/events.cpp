// SPDX-License-Identifier: Apache-2.0
// The change feed's codecs: a stored event, the JSON of an event's SSE `data:` and the
// resume point a stream writes as each event's `id:`.
//
// Binary layouts (all integers are unsigned LEB128 varints, minimal length):
//   event:  kind (1 byte: 1 put, 2 delete) | version | time_ms | id length | id | doc
//           (the doc is the rest; a delete has none, a put always has one)
//   position text: "v1." + base64url, unpadded, of shard count | seq × shard count
// Decoders take any bytes: whatever is not exactly one of these (truncated, overlong or
// non-minimal varints, unknown kinds, trailing bytes) is refused, never read past.
#include "changes/events.hpp"

#include <boost/json/serialize.hpp>
#include <boost/json/string_view.hpp>

#include "util/base64url.hpp"

namespace shoal::changes {

namespace {

constexpr std::string_view position_prefix = "v1.";
constexpr std::size_t max_varint_bytes = 10; // 64 bits, 7 per byte

void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

/// Reads bytes front to back; every read fails (and stays failed) rather than overrun.
class reader {
public:
  explicit reader(std::string_view bytes) noexcept : rest_(bytes) {}

  /// A minimal varint of at most 64 bits.
  std::optional<std::uint64_t> varint() noexcept {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < max_varint_bytes; ++i) {
      if (rest_.empty()) return std::nullopt;
      auto byte = static_cast<std::uint8_t>(rest_.front());
      rest_.remove_prefix(1);
      // The tenth byte holds bit 63 only.
      if (i == max_varint_bytes - 1 && byte > 1) return std::nullopt;
      v |= static_cast<std::uint64_t>(byte & 0x7f) << (7 * i);
      if ((byte & 0x80) == 0) {
        if (byte == 0 && i > 0) return std::nullopt; // non-minimal: a trailing zero group
        return v;
      }
    }
    return std::nullopt;
  }

  std::optional<std::string_view> bytes(std::uint64_t n) noexcept {
    if (n > rest_.size()) return std::nullopt;
    auto out = rest_.substr(0, static_cast<std::size_t>(n));
    rest_.remove_prefix(static_cast<std::size_t>(n));
    return out;
  }

  std::optional<std::uint8_t> byte() noexcept {
    if (rest_.empty()) return std::nullopt;
    auto b = static_cast<std::uint8_t>(rest_.front());
    rest_.remove_prefix(1);
    return b;
  }

  std::string_view rest() const noexcept {
    return rest_;
  }

  bool done() const noexcept {
    return rest_.empty();
  }

private:
  std::string_view rest_;
};

} // namespace

// -- events ---------------------------------------------------------------------------------

std::string encode_event(const event& e) {
  std::string out;
  out.reserve(1 + 3 * max_varint_bytes + e.id.size() + e.doc.size());
  out.push_back(static_cast<char>(e.kind));
  put_varint(out, e.version);
  put_varint(out, e.time_ms);
  put_varint(out, e.id.size());
  out += e.id;
  if (e.kind == event_kind::put) out += e.doc;
  return out;
}

std::optional<event> decode_event(std::uint64_t seq, std::string_view bytes) {
  reader r{bytes};
  auto kind = r.byte();
  if (!kind
      || (*kind != static_cast<std::uint8_t>(event_kind::put)
          && *kind != static_cast<std::uint8_t>(event_kind::del)))
    return std::nullopt;
  auto version = r.varint();
  auto time_ms = r.varint();
  auto id_size = r.varint();
  if (!version || !time_ms || !id_size) return std::nullopt;
  auto id = r.bytes(*id_size);
  if (!id || id->empty()) return std::nullopt;
  event e;
  e.seq = seq;
  e.kind = static_cast<event_kind>(*kind);
  e.id.assign(*id);
  e.version = *version;
  e.time_ms = *time_ms;
  auto doc = r.rest();
  // A put always carries its document; a delete never does.
  if ((e.kind == event_kind::put) == doc.empty()) return std::nullopt;
  e.doc.assign(doc);
  return e;
}

// -- batches --------------------------------------------------------------------------------


// -- SSE data -----------------------------------------------------------------------------

std::string event_data_json(const event& e) {
  std::string out;
  out.reserve(32 + e.id.size() + e.doc.size());
  out += R"({"id":)";
  out += boost::json::serialize(boost::json::string_view(e.id.data(), e.id.size()));
  out += R"(,"version":)";
  out += std::to_string(e.version);
  if (e.kind == event_kind::put) {
    out += R"(,"doc":)";
    // The stored document is JSON text already; a put without one (which no shard
    // writes) still gives valid JSON.
    if (e.doc.empty())
      out += "null";
    else
      out += e.doc;
  }
  out += '}';
  return out;
}

// -- positions ----------------------------------------------------------------------------

std::string position::encode() const {
  std::string raw;
  raw.reserve((seqs.size() + 1) * 3);
  put_varint(raw, seqs.size());
  for (auto s : seqs)
    put_varint(raw, s);
  std::string out{position_prefix};
  out += util::base64url_encode(raw);
  return out;
}

std::optional<position> position::decode(std::string_view text, std::uint32_t shards) {
  if (text.substr(0, position_prefix.size()) != position_prefix) return std::nullopt;
  text.remove_prefix(position_prefix.size());
  // The longest text `shards` seqs can take; longer input is refused before decoding.
  const std::size_t max_raw = (static_cast<std::size_t>(shards) + 1) * max_varint_bytes;
  if (text.size() > (max_raw * 4 + 2) / 3) return std::nullopt;
  auto raw = util::base64url_decode(text);
  if (!raw) return std::nullopt;
  reader r{*raw};
  auto count = r.varint();
  if (!count || *count != shards) return std::nullopt;
  position p;
  p.seqs.reserve(shards);
  for (std::uint32_t i = 0; i < shards; ++i) {
    auto seq = r.varint();
    if (!seq) return std::nullopt;
    p.seqs.push_back(*seq);
  }
  if (!r.done()) return std::nullopt;
  return p;
}

} // namespace shoal::changes
