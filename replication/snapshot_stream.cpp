// SPDX-License-Identifier: Apache-2.0
#include "replication/snapshot_stream.hpp"

#include <xxhash.h>

#include "replication/bytes.hpp"
#include "replication/state_machine.hpp"

namespace shoal::replication {
namespace {

using core::errc;
using core::error;

constexpr char local_token = 0x03;
constexpr char staged_token = 0x04;
constexpr char chunk_frame = 0x02;
constexpr char ack_frame = 0x05;

/// Every key of a shard starts with an ASCII letter (docs/architecture.md).
constexpr std::string_view keyspace_end = "\xff";

error damaged(std::string_view what) {
  return error{errc::corrupt, "a snapshot stream frame is damaged: " + std::string(what)};
}

/// Reads one record; false at the end or on a damaged one (`bad` then says which).
bool next_record(bytes::reader& in, std::string_view& key, std::string_view& value, bool& bad) {
  bad = false;
  if (in.done()) return false;
  if (!in.sized(key) || !in.sized(value) || key.empty()) {
    bad = true;
    return false;
  }
  return true;
}

} // namespace

std::string encode_token(const snapshot_token& t) {
  std::string out;
  out.push_back(t.what == snapshot_token::kind::local ? local_token : staged_token);
  bytes::put_be(out, t.applied_index, 8);
  return out;
}

std::optional<snapshot_token> decode_token(std::string_view in) {
  if (in.size() != 9 || (in[0] != local_token && in[0] != staged_token)) return std::nullopt;
  snapshot_token t;
  t.what = in[0] == local_token ? snapshot_token::kind::local : snapshot_token::kind::staged;
  bytes::reader r(in.substr(1));
  r.be(t.applied_index, 8);
  return t;
}

bool is_stream_frame(std::string_view b) noexcept {
  return !b.empty() && (b[0] == chunk_frame || b[0] == ack_frame);
}

bool is_ack_frame(std::string_view b) noexcept {
  return !b.empty() && b[0] == ack_frame;
}

std::string encode_chunk(const snapshot_chunk& c) {
  std::string out;
  out.reserve(c.records.size() + c.install.size() + 96);
  out.push_back(chunk_frame);
  bytes::put_be(out, c.stream, 8);
  bytes::put_be(out, c.seq, 4);
  bytes::put_be(out, c.from, 8);
  bytes::put_sized(out, c.from_address);
  out.push_back(c.last ? 1 : 0);
  bytes::put_sized(out, c.records);
  if (c.last) {
    bytes::put_be(out, c.applied_index, 8);
    bytes::put_be(out, c.keys, 8);
    bytes::put_be(out, c.bytes, 8);
    bytes::put_be(out, c.checksum, 8);
    bytes::put_sized(out, c.install);
  }
  return out;
}

std::string encode_ack(const snapshot_ack& a) {
  std::string out;
  out.push_back(ack_frame);
  bytes::put_be(out, a.stream, 8);
  bytes::put_be(out, a.seq, 4);
  bytes::put_be(out, a.from, 8);
  bytes::put_sized(out, a.from_address);
  return out;
}

core::result<snapshot_chunk> decode_chunk(std::string_view in) {
  if (in.empty() || in[0] != chunk_frame) return damaged("not a chunk");
  bytes::reader r(in.substr(1));
  snapshot_chunk c;
  std::uint64_t last = 0;
  if (!r.be(c.stream, 8) || !r.num(c.seq, 4) || !r.be(c.from, 8) || !r.sized(c.from_address)
      || !r.be(last, 1) || last > 1 || !r.sized(c.records))
    return damaged("a short header");
  c.last = last == 1;
  if (c.last
      && (!r.be(c.applied_index, 8) || !r.be(c.keys, 8) || !r.be(c.bytes, 8) || !r.be(c.checksum, 8)
          || !r.sized(c.install)))
    return damaged("a short trailer");
  if (!r.done()) return damaged("bytes after the end");
  return c;
}

core::result<snapshot_ack> decode_ack(std::string_view in) {
  if (in.empty() || in[0] != ack_frame) return damaged("not an ack");
  bytes::reader r(in.substr(1));
  snapshot_ack a;
  if (!r.be(a.stream, 8) || !r.num(a.seq, 4) || !r.be(a.from, 8) || !r.sized(a.from_address)
      || !r.done())
    return damaged("a short ack");
  return a;
}

struct stream_hash::state {
  XXH64_state_t* h = XXH64_createState();
  ~state() {
    XXH64_freeState(h);
  }
};

stream_hash::stream_hash() : s_(std::make_unique<state>()) {
  XXH64_reset(s_->h, 0);
}

stream_hash::~stream_hash() = default;

void stream_hash::add(std::string_view b) {
  XXH64_update(s_->h, b.data(), b.size());
}

std::uint64_t stream_hash::value() const {
  return XXH64_digest(s_->h);
}

image_reader::image_reader(storage::shard_store& shard, std::string_view applied_key)
    : view_(shard.snapshot()), applied_key_(applied_key) {}

core::result<std::uint64_t> image_reader::applied_index() {
  return parse_applied(view_->get(applied_key_));
}

core::result<std::string> image_reader::next(std::size_t max_bytes) {
  std::string out;
  if (done_) return out;
  bool stopped = false;
  auto scanned = view_->scan({}, cursor_, false, [&](std::string_view key, std::string_view value) {
    if (key >= keyspace_end) return false;
    if (!out.empty() && out.size() >= max_bytes) {
      cursor_.assign(key);
      stopped = true;
      return false;
    }
    if (key == applied_key_) return true;
    bytes::put_sized(out, key);
    bytes::put_sized(out, value);
    ++keys_;
    return true;
  });
  if (!scanned) return std::move(scanned).error();
  if (!stopped) done_ = true;
  return out;
}

snapshot_stage::snapshot_stage(storage::shard_store& keys, std::uint32_t group) : keys_(keys) {
  prefix_.push_back('S');
  bytes::put_be(prefix_, group, 4);
}

std::string snapshot_stage::key(char kind) const {
  std::string k = prefix_;
  k.push_back(kind);
  return k;
}

core::result<void> snapshot_stage::clear() {
  storage::write_batch b;
  b.del_range(prefix_, prefix_ + std::string(1, '\xff'));
  return keys_.write(b, false);
}

core::result<std::uint64_t> snapshot_stage::add(std::string_view records) {
  storage::write_batch b;
  bytes::reader in(records);
  std::string_view k;
  std::string_view v;
  bool bad = false;
  std::uint64_t n = 0;
  while (next_record(in, k, v, bad)) {
    if (k >= keyspace_end) return damaged("a key outside the shard");
    b.put(key('d') + std::string(k), std::string(v));
    ++n;
  }
  if (bad) return damaged("a short record");
  if (b.empty()) return n;
  auto written = keys_.write(b, false);
  if (!written) return std::move(written).error();
  return n;
}

core::result<void> snapshot_stage::seal(std::uint64_t applied_index) {
  storage::write_batch b;
  std::string v;
  bytes::put_be(v, applied_index, 8);
  b.put(key('m'), std::move(v));
  return keys_.write(b, false);
}

core::result<std::optional<std::uint64_t>> snapshot_stage::sealed() {
  auto v = keys_.get(key('m'));
  if (!v) {
    if (v.error().code() == errc::not_found) return std::optional<std::uint64_t>{};
    return std::move(v).error();
  }
  bytes::reader r(*v);
  std::uint64_t index = 0;
  if (v->size() != 8 || !r.be(index, 8))
    return error{errc::corrupt, "the staged snapshot's index is damaged"};
  return std::optional<std::uint64_t>{index};
}

core::result<std::uint64_t> snapshot_stage::install_into(storage::shard_store& shard,
                                                         std::string_view applied_key,
                                                         std::size_t batch_bytes) {
  auto sealed_at = sealed();
  if (!sealed_at) return std::move(sealed_at).error();
  if (!*sealed_at) return error{errc::internal, "no whole snapshot is staged"};
  // First the old keyspace goes, applied index included: should the process die before
  // the last batch, the shard's applied index reads 0, below the image's, and the next
  // start installs again from the stage, which is only cleared at the end.
  storage::write_batch batch;
  batch.del_range(std::string(), std::string(keyspace_end));
  auto cleared = shard.write(batch, false);
  if (!cleared) return std::move(cleared).error();
  batch.clear();
  std::uint64_t copied = 0;
  core::result<void> failed = core::ok();
  const auto data = key('d');
  auto scanned = keys_.scan_prefix(data, [&](std::string_view k, std::string_view v) {
    batch.put(std::string(k.substr(data.size())), std::string(v));
    copied += k.size() - data.size() + v.size();
    if (batch.bytes() >= batch_bytes) {
      failed = shard.write(batch, false);
      batch.clear();
      if (!failed) return false;
    }
    return true;
  });
  if (!failed) return std::move(failed).error();
  if (!scanned) return std::move(scanned).error();
  batch.put(std::string(applied_key), encode_applied(**sealed_at));
  // Synced: the stage is cleared next, and this replaces what the log no longer holds.
  auto last = shard.write(batch, true);
  if (!last) return std::move(last).error();
  handed_over = false;
  auto dropped = clear();
  if (!dropped) return std::move(dropped).error();
  return copied;
}

} // namespace shoal::replication
