// SPDX-License-Identifier: Apache-2.0
#include "replication/snapshot_transfer.hpp"

#include <algorithm>
#include <deque>
#include <utility>

#include "replication/metrics.hpp"
#include "replication/state_machine.hpp"

namespace shoal::replication {

struct snapshot_transfer::outgoing {
  std::uint64_t stream = 0;
  std::string address;
  std::uint64_t snapshot_index = 0;
  std::string install;
  std::unique_ptr<image_reader> reader;
  std::uint64_t applied_index = 0;
  stream_hash hash;
  std::uint64_t bytes = 0;
  std::uint32_t next_seq = 0;
  std::deque<std::pair<std::uint32_t, std::string>> unacked; ///< frames sent, oldest first
  std::uint64_t last_progress_ms = 0;                        ///< the last ack, or the last resend
  std::uint64_t last_ack_ms = 0;                             ///< the start, or the last ack
  bool producing = false;                                    ///< a produce step is posted
};

struct snapshot_transfer::incoming {
  std::uint64_t stream = 0;
  std::uint64_t from = 0;
  std::string address;
  std::uint32_t next_seq = 0;
  stream_hash hash;
  std::uint64_t bytes = 0;
  std::uint64_t keys = 0;
};

snapshot_transfer::snapshot_transfer(storage::shard_store& shard, snapshot_stage& stage,
                                     transfer_host host, transfer_options opt, std::uint64_t seed)
    : shard_(shard), stage_(stage), host_(std::move(host)), opt_(opt),
      next_stream_(seed * 0x9e3779b97f4a7c15ULL + 1) {}

snapshot_transfer::~snapshot_transfer() {
  *alive_ = false;
}

void snapshot_transfer::identify(std::uint64_t id, std::string address) {
  self_ = id;
  address_ = std::move(address);
}

void snapshot_transfer::send(std::uint64_t to, const std::string& address,
                             std::uint64_t snapshot_index, std::string install) {
  if (auto it = out_.find(to);
      it != out_.end()
      && snapshot_index <= std::max(it->second->snapshot_index, it->second->applied_index)) {
    // libraft asks again (its install timeout) for a snapshot this image covers (the
    // image holds every entry up to its applied index): the stream goes on, and ends
    // with the newer request.
    it->second->install = std::move(install);
    return;
  }
  auto o = std::make_unique<outgoing>();
  o->stream = ++next_stream_;
  o->address = address;
  o->snapshot_index = snapshot_index;
  o->install = std::move(install);
  o->reader = std::make_unique<image_reader>(shard_, applied_key);
  auto applied = o->reader->applied_index();
  if (!applied) return; // libraft's install timeout asks again
  o->applied_index = *applied;
  o->last_progress_ms = o->last_ack_ms = host_.now_ms();
  const auto stream = o->stream;
  out_[to] = std::move(o);
  ++stats_.streams_started;
  produce(to, stream);
}

void snapshot_transfer::produce(std::uint64_t to, std::uint64_t stream) {
  auto it = out_.find(to);
  if (it == out_.end() || it->second->stream != stream) return;
  auto& o = *it->second;
  o.producing = false;
  if (o.reader->done() || o.unacked.size() >= opt_.window) return;
  auto records = o.reader->next(opt_.chunk_bytes);
  if (!records) {
    out_.erase(it); // a read failed: libraft's install timeout starts a new stream
    return;
  }
  snapshot_chunk c;
  c.stream = o.stream;
  c.seq = o.next_seq++;
  c.from = self_;
  c.from_address = address_;
  o.hash.add(*records);
  o.bytes += records->size();
  if (metrics_ != nullptr) metrics_->snapshot_bytes_sent.inc(records->size());
  c.records = std::move(*records);
  c.last = o.reader->done();
  if (c.last) {
    c.applied_index = o.applied_index;
    c.keys = o.reader->keys();
    c.bytes = o.bytes;
    c.checksum = o.hash.value();
    c.install = o.install;
  }
  auto frame = encode_chunk(c);
  o.unacked.emplace_back(c.seq, frame);
  ++stats_.chunks_sent;
  host_.send(to, o.address, std::move(frame));
  if (!c.last && o.unacked.size() < opt_.window) {
    o.producing = true;
    auto alive = alive_;
    host_.post([this, alive, to, stream] {
      if (*alive) produce(to, stream);
    });
  }
}

void snapshot_transfer::deliver(std::string_view bytes) {
  if (is_ack_frame(bytes)) {
    auto a = decode_ack(bytes);
    if (!a) {
      ++stats_.frames_dropped;
      return;
    }
    return on_ack(*a);
  }
  auto c = decode_chunk(bytes);
  if (!c) {
    ++stats_.frames_dropped;
    return;
  }
  on_chunk(std::move(*c));
}

void snapshot_transfer::on_ack(const snapshot_ack& a) {
  auto it = out_.find(a.from);
  if (it == out_.end() || it->second->stream != a.stream) {
    ++stats_.frames_dropped;
    return;
  }
  auto& o = *it->second;
  bool moved = false;
  while (!o.unacked.empty() && o.unacked.front().first <= a.seq) {
    o.unacked.pop_front();
    moved = true;
  }
  if (!moved) return;
  o.last_progress_ms = o.last_ack_ms = host_.now_ms();
  if (o.reader->done() && o.unacked.empty()) {
    ++stats_.streams_finished;
    out_.erase(it);
    return;
  }
  if (!o.producing) produce(a.from, a.stream);
}

void snapshot_transfer::tick() {
  const auto now = host_.now_ms();
  for (auto it = out_.begin(); it != out_.end();) {
    auto& o = it->second;
    if (now - o->last_ack_ms >= opt_.abandon_ms) {
      ++stats_.streams_abandoned;
      it = out_.erase(it);
      continue;
    }
    const auto to = (it++)->first;
    if (o->unacked.empty() || now - o->last_progress_ms < opt_.resend_ms) continue;
    o->last_progress_ms = now;
    for (const auto& [seq, frame] : o->unacked) {
      ++stats_.chunks_sent;
      ++stats_.chunks_resent;
      host_.send(to, o->address, frame);
    }
  }
}

void snapshot_transfer::close() {
  out_.clear();
  in_.reset();
  *alive_ = false;
}

void snapshot_transfer::ack(const incoming& in, std::uint32_t seq) {
  host_.send(in.from, in.address, encode_ack({in.stream, seq, self_, address_}));
}

void snapshot_transfer::abandon_incoming() {
  in_.reset();
  (void)stage_.clear(); // a failed clear leaves bytes the next stream's clear removes
}

void snapshot_transfer::on_chunk(snapshot_chunk c) {
  if (in_ && c.stream == in_->stream) {
    if (c.seq < in_->next_seq) return ack(*in_, c.seq); // a resend: our ack was lost
    if (c.seq > in_->next_seq) {
      ++stats_.frames_dropped; // one before it was lost: the sender resends from there
      return;
    }
  } else {
    // A stream's first chunk replaces any other stream; a later one of a stream not
    // known here (this replica restarted) waits for libraft to start a new one.
    if (c.seq != 0 || stage_.handed_over) {
      ++stats_.frames_dropped;
      return;
    }
    auto cleared = stage_.clear();
    if (!cleared) {
      ++stats_.frames_dropped;
      return;
    }
    in_ = std::make_unique<incoming>();
    in_->stream = c.stream;
    in_->from = c.from;
    in_->address = c.from_address;
  }
  auto staged = stage_.add(c.records);
  if (!staged) {
    ++stats_.frames_dropped;
    return abandon_incoming();
  }
  in_->hash.add(c.records);
  in_->bytes += c.records.size();
  in_->keys += *staged;
  ++in_->next_seq;
  if (!c.last) return ack(*in_, c.seq);
  if (in_->keys != c.keys || in_->bytes != c.bytes || in_->hash.value() != c.checksum
      || !stage_.seal(c.applied_index)) {
    ++stats_.images_refused;
    return abandon_incoming();
  }
  ack(*in_, c.seq);
  in_.reset();
  // Sealed: no new stream may clear it before libraft had its say.
  stage_.handed_over = true;
  auto alive = alive_;
  host_.after_sync([this, alive, install = std::move(c.install),
                    applied = c.applied_index](core::result<void> synced) {
    if (!*alive) return;
    if (!synced) {
      stage_.handed_over = false;
      (void)stage_.clear();
      return;
    }
    ++stats_.images_staged;
    host_.install(install, applied);
  });
}

} // namespace shoal::replication
