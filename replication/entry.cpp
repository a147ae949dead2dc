// SPDX-License-Identifier: Apache-2.0
#include "replication/entry.hpp"

#include <xxhash.h>

#include <cstring>

namespace shoal::replication {
namespace {

using core::errc;
using core::error;
using storage::write_batch;

constexpr char entry_format = 0x01;
constexpr char snapshot_format = 0x02;
constexpr std::size_t checksum_size = 8;

void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void put_bytes(std::string& out, std::string_view bytes) {
  put_varint(out, bytes.size());
  out.append(bytes);
}

void put_fixed(std::string& out, std::uint64_t v, bool big_endian) {
  char b[8];
  for (int i = 0; i < 8; ++i) {
    const int shift = big_endian ? 8 * (7 - i) : 8 * i;
    b[i] = static_cast<char>((v >> shift) & 0xff);
  }
  out.append(b, 8);
}

std::uint64_t get_fixed(std::string_view in, bool big_endian) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) {
    const auto byte = static_cast<std::uint64_t>(static_cast<unsigned char>(in[i]));
    v |= byte << (big_endian ? 8 * (7 - i) : 8 * i);
  }
  return v;
}

void put_ops(std::string& out, const write_batch& batch) {
  put_varint(out, batch.size());
  for (const auto& op : batch.ops()) {
    switch (op.kind) {
    case write_batch::op_kind::put:
      out.push_back(1);
      put_bytes(out, op.key);
      put_bytes(out, op.value);
      break;
    case write_batch::op_kind::del:
      out.push_back(2);
      put_bytes(out, op.key);
      break;
    case write_batch::op_kind::del_range:
      out.push_back(3);
      put_bytes(out, op.key);
      put_bytes(out, op.value);
      break;
    }
  }
}

void seal(std::string& out) {
  put_fixed(out, XXH64(out.data(), out.size(), 0), false);
}

error corrupt(std::string_view what) {
  return error{errc::corrupt, "replicated data is damaged: " + std::string(what)};
}

/// Reads from a checked byte range; every read fails rather than run past the end.
class reader {
public:
  explicit reader(std::string_view in) : in_(in) {}

  bool varint(std::uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (in_.empty()) {
        return false;
      }
      const auto b = static_cast<unsigned char>(in_.front());
      in_.remove_prefix(1);
      v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) {
        return true;
      }
    }
    return false; // more than ten bytes: not a varint we wrote
  }
  bool bytes(std::string& out) {
    std::uint64_t n = 0;
    if (!varint(n) || n > in_.size()) {
      return false;
    }
    out.assign(in_.data(), n);
    in_.remove_prefix(n);
    return true;
  }
  bool byte(char& out) {
    if (in_.empty()) {
      return false;
    }
    out = in_.front();
    in_.remove_prefix(1);
    return true;
  }
  bool fixed_be(std::uint64_t& out) {
    if (in_.size() < 8) {
      return false;
    }
    out = get_fixed(in_, true);
    in_.remove_prefix(8);
    return true;
  }
  bool done() const noexcept {
    return in_.empty();
  }

private:
  std::string_view in_;
};

/// The body of `bytes` (format byte dropped) when its checksum matches.
core::result<std::string_view> unseal(std::string_view bytes, char format) {
  if (bytes.size() < 1 + checksum_size) {
    return corrupt("too short");
  }
  if (bytes.front() != format) {
    return corrupt("unknown format");
  }
  const auto body = bytes.substr(0, bytes.size() - checksum_size);
  const auto stored = get_fixed(bytes.substr(body.size()), false);
  if (XXH64(body.data(), body.size(), 0) != stored) {
    return corrupt("checksum mismatch");
  }
  return body.substr(1);
}

core::result<write_batch> read_ops(reader& in, bool puts_only) {
  std::uint64_t n = 0;
  if (!in.varint(n)) {
    return corrupt("no operation count");
  }
  write_batch batch;
  for (std::uint64_t i = 0; i < n; ++i) {
    char kind = 0;
    std::string key;
    std::string value;
    if (!in.byte(kind) || !in.bytes(key)) {
      return corrupt("truncated operation");
    }
    if (kind == 1 || (kind == 3 && !puts_only)) {
      if (!in.bytes(value)) {
        return corrupt("truncated operation");
      }
    } else if (kind != 2 || puts_only) {
      return corrupt("unknown operation");
    }
    if (kind == 1) {
      batch.put(std::move(key), std::move(value));
    } else if (kind == 2) {
      batch.del(std::move(key));
    } else {
      batch.del_range(std::move(key), std::move(value));
    }
  }
  if (!in.done()) {
    return corrupt("bytes after the last operation");
  }
  return batch;
}

} // namespace

std::string encode_entry(const write_batch& batch) {
  std::string out;
  out.reserve(16 + batch.bytes() + 6 * batch.size());
  out.push_back(entry_format);
  put_ops(out, batch);
  seal(out);
  return out;
}

core::result<write_batch> decode_entry(std::string_view bytes) {
  auto body = unseal(bytes, entry_format);
  if (!body) {
    return std::move(body).error();
  }
  reader in(*body);
  return read_ops(in, false);
}

std::string encode_snapshot(const snapshot_image& image) {
  std::string out;
  out.reserve(24 + image.puts.bytes() + 6 * image.puts.size());
  out.push_back(snapshot_format);
  put_fixed(out, image.applied_index, true);
  put_ops(out, image.puts);
  seal(out);
  return out;
}

core::result<snapshot_image> decode_snapshot(std::string_view bytes) {
  auto body = unseal(bytes, snapshot_format);
  if (!body) {
    return std::move(body).error();
  }
  reader in(*body);
  snapshot_image image;
  if (!in.fixed_be(image.applied_index)) {
    return corrupt("no applied index");
  }
  auto ops = read_ops(in, true);
  if (!ops) {
    return std::move(ops).error();
  }
  image.puts = std::move(*ops);
  return image;
}

} // namespace shoal::replication
