// SPDX-License-Identifier: Apache-2.0
#include "replication/state_machine.hpp"

#include "replication/metrics.hpp"

#include "replication/raft_c.hpp"

#include <cstring>
#include <memory>

#include <xxhash.h>

#include "replication/entry.hpp"
#include "replication/snapshot_stream.hpp"

namespace shoal::replication {
namespace {

using core::errc;
using core::error;

/// Every key of a shard starts with an ASCII letter (docs/architecture.md), so
/// ["", "\xff") is all of them.
constexpr std::string_view keyspace_end = "\xff";

state_machine& self(raft_fsm* fsm) {
  return *static_cast<state_machine*>(fsm->data);
}

int to_raft(const error& e) {
  return e.code() == errc::corrupt ? RAFT_CORRUPT : RAFT_IOERR;
}

} // namespace

core::result<std::uint64_t> parse_applied(core::result<std::string> raw) {
  if (!raw) {
    if (raw.error().code() == errc::not_found) return std::uint64_t{0};
    return std::move(raw).error();
  }
  if (raw->size() != 8) return error{errc::corrupt, "the shard's applied index is damaged"};
  std::uint64_t index = 0;
  for (unsigned char c : *raw)
    index = (index << 8) | c;
  return index;
}

core::result<std::uint64_t> read_applied(storage::shard_store& shard) {
  return parse_applied(shard.get(applied_key));
}

std::string encode_applied(std::uint64_t index) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i)
    out[static_cast<std::size_t>(i)] = static_cast<char>((index >> (8 * (7 - i))) & 0xff);
  return out;
}

state_machine::state_machine(storage::shard_store& shard, bool sync, snapshot_stage* stage)
    : shard_(shard), sync_(sync), stage_(stage), fsm_(std::make_unique<raft_fsm>()) {
  auto applied = read_applied(shard_);
  // A damaged index reads as 0: every entry after libraft's snapshot is then applied
  // again, which rewrites the same keys; last_error() says what happened.
  if (applied) {
    applied_ = *applied;
  } else {
    last_error_ = applied.error().message();
  }
  std::memset(fsm_.get(), 0, sizeof(raft_fsm));
  fsm_->version = 1;
  fsm_->data = this;
  fsm_->apply = [](raft_fsm* fsm, const raft_buffer* buf, void** result) -> int {
    auto& sm = self(fsm);
    *result = nullptr;
    // libraft 0.15 passes no index; it sets last_applied only after apply returns.
    const auto index = raft_last_applied(sm.raft_) + 1;
    auto r = sm.apply(index, {static_cast<const char*>(buf->base), buf->len});
    return r ? 0 : to_raft(r.error());
  };
  fsm_->snapshot = [](raft_fsm* fsm, raft_buffer* bufs[], unsigned* n_bufs) -> int {
    auto& sm = self(fsm);
    auto image = sm.snapshot(raft_last_applied(sm.raft_));
    if (!image) {
      return to_raft(image.error());
    }
    auto* list = static_cast<raft_buffer*>(raft_malloc(sizeof(raft_buffer)));
    void* base = list == nullptr ? nullptr : raft_malloc(image->size());
    if (base == nullptr) {
      raft_free(list);
      return RAFT_NOMEM;
    }
    std::memcpy(base, image->data(), image->size());
    list[0].base = base;
    list[0].len = image->size();
    *bufs = list;
    *n_bufs = 1;
    return 0;
  };
  fsm_->restore = [](raft_fsm* fsm, raft_buffer* buf) -> int {
    auto& sm = self(fsm);
    auto r = sm.restore({static_cast<const char*>(buf->base), buf->len});
    if (!r) {
      return to_raft(r.error());
    }
    if (sm.metrics_ != nullptr && sm.stage_ == nullptr)
      sm.metrics_->snapshot_bytes_installed.inc(buf->len);
    raft_free(buf->base); // on success the buffer is ours (libraft's snapshotRestore)
    return 0;
  };
}

state_machine::~state_machine() = default;

raft_fsm* state_machine::fsm() noexcept {
  return fsm_.get();
}

void state_machine::bind(raft* r) noexcept {
  raft_ = r;
}

core::result<void> state_machine::remember(core::result<void> r) {
  if (r) {
    last_error_.clear();
  } else {
    last_error_ = r.error().message();
  }
  return r;
}

core::result<void> state_machine::apply(std::uint64_t index, std::string_view entry) {
  if (index <= applied_) {
    return core::ok();
  }
  auto batch = decode_entry(entry);
  if (!batch) {
    return remember(std::move(batch).error());
  }
  batch->put(std::string(applied_key),
             encode_applied(index)); // last: no range of the batch covers it
  auto written = shard_.write(*batch, sync_);
  if (!written) {
    return remember(std::move(written));
  }
  applied_ = index;
  return remember(core::ok());
}

core::result<std::string> state_machine::snapshot(std::uint64_t index) {
  if (stage_ != nullptr) return encode_token({snapshot_token::kind::local, index});
  snapshot_image image;
  image.applied_index = index;
  auto view = shard_.snapshot();
  auto scanned = view->scan({}, {}, false, [&](std::string_view key, std::string_view value) {
    if (key != applied_key) {
      image.puts.put(std::string(key), std::string(value));
    }
    return true;
  });
  if (!scanned) {
    return std::move(scanned).error();
  }
  return encode_snapshot(image);
}

core::result<state_machine::digest_value> state_machine::digest() {
  digest_value out;
  out.applied_index = applied_;
  std::unique_ptr<XXH64_state_t, decltype(&XXH64_freeState)> hash{XXH64_createState(),
                                                                  &XXH64_freeState};
  if (!hash) return core::error{core::errc::internal, "no memory for a digest"};
  XXH64_reset(hash.get(), 0);
  auto feed = [&](std::string_view bytes) {
    const std::uint64_t n = bytes.size();
    XXH64_update(hash.get(), &n, sizeof n);
    XXH64_update(hash.get(), bytes.data(), bytes.size());
  };
  auto view = shard_.snapshot();
  auto scanned = view->scan({}, {}, false, [&](std::string_view key, std::string_view value) {
    feed(key);
    feed(value);
    ++out.keys;
    return true;
  });
  if (!scanned) return std::move(scanned).error();
  out.checksum = XXH64_digest(hash.get());
  return out;
}

core::result<void> state_machine::restore_staged(std::uint64_t applied_index) {
  if (stage_ == nullptr)
    return core::error{core::errc::internal, "a staged snapshot, but this shard has no stage"};
  if (applied_index <= applied_) {
    stage_->handed_over = false;
    return stage_->clear(); // the shard holds it already
  }
  auto copied = stage_->install_into(shard_, applied_key);
  if (!copied) return std::move(copied).error();
  applied_ = applied_index;
  if (metrics_ != nullptr) metrics_->snapshot_bytes_installed.inc(*copied);
  return core::ok();
}

core::result<void> state_machine::restore(std::string_view snapshot) {
  if (auto token = decode_token(snapshot)) {
    // A local token stands for the shard's own data, which the WAL made durable before
    // the token (the token's write waits for a later fsync of the same WAL).
    if (token->what == snapshot_token::kind::local) return remember(core::ok());
    return remember(restore_staged(token->applied_index));
  }
  auto image = decode_snapshot(snapshot);
  if (!image) {
    return remember(std::move(image).error());
  }
  if (image->applied_index <= applied_) {
    return remember(core::ok());
  }
  storage::write_batch batch;
  batch.del_range(std::string(), std::string(keyspace_end));
  for (const auto& op : image->puts.ops()) {
    batch.put(op.key, op.value);
  }
  batch.put(std::string(applied_key), encode_applied(image->applied_index));
  // Always synced: a restore replaces what the log no longer holds.
  auto written = shard_.write(batch, true);
  if (!written) {
    return remember(std::move(written));
  }
  applied_ = image->applied_index;
  return remember(core::ok());
}

} // namespace shoal::replication
