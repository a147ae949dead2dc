// SPDX-License-Identifier: Apache-2.0
#include "replication/log_store.hpp"

#include "replication/bytes.hpp"

namespace shoal::replication {
namespace {

using core::errc;
using core::error;

constexpr char term_kind = 't';
constexpr char vote_kind = 'v';
constexpr char snapshot_meta_kind = 's';
constexpr char snapshot_data_kind = 'S';
constexpr char entry_kind = 'e';

using bytes::put_be;
using bytes::reader;

error damaged(std::string_view what) {
  return error{errc::corrupt, "the replication log is damaged: " + std::string(what)};
}

std::string encode_entry_value(const stored_entry& e) {
  std::string out;
  out.reserve(9 + e.payload.size());
  put_be(out, e.term, 8);
  out.push_back(static_cast<char>(e.type));
  out.append(e.payload);
  return out;
}

core::result<stored_entry> decode_entry_value(std::string_view v) {
  reader in(v);
  stored_entry e;
  std::uint64_t type = 0;
  if (!in.be(e.term, 8) || !in.be(type, 1)) return damaged("an entry is too short");
  e.type = static_cast<std::uint8_t>(type);
  e.payload.assign(in.rest());
  return e;
}

std::string encode_snapshot_meta(const stored_snapshot& s) {
  std::string out;
  put_be(out, s.index, 8);
  put_be(out, s.term, 8);
  put_be(out, s.config_index, 8);
  put_be(out, s.config.size(), 4);
  for (const auto& server : s.config) {
    put_be(out, server.id, 8);
    put_be(out, server.role, 1);
    bytes::put_sized(out, server.address);
  }
  return out;
}

core::result<stored_snapshot> decode_snapshot_meta(std::string_view v) {
  reader in(v);
  stored_snapshot s;
  std::uint64_t n = 0;
  if (!in.be(s.index, 8) || !in.be(s.term, 8) || !in.be(s.config_index, 8) || !in.be(n, 4)) {
    return damaged("snapshot metadata is too short");
  }
  for (std::uint64_t i = 0; i < n; ++i) {
    stored_server server;
    std::uint64_t role = 0;
    if (!in.be(server.id, 8) || !in.be(role, 1) || !in.sized(server.address)) {
      return damaged("a server of the snapshot's configuration is truncated");
    }
    server.role = static_cast<std::uint8_t>(role);
    s.config.push_back(std::move(server));
  }
  if (!in.done()) return damaged("bytes after the snapshot metadata");
  return s;
}

core::result<std::uint64_t> read_number(storage::shard_store& keys, const std::string& key) {
  auto v = keys.get(key);
  if (!v) {
    if (v.error().code() == errc::not_found) return std::uint64_t{0};
    return std::move(v).error();
  }
  reader in(*v);
  std::uint64_t n = 0;
  if (!in.be(n, 8) || !in.done()) return damaged("a term or vote is not 8 bytes");
  return n;
}

std::string number(std::uint64_t v) {
  std::string out;
  put_be(out, v, 8);
  return out;
}

} // namespace

log_store::log_store(storage::shard_store& keys, std::uint32_t group) : keys_(keys) {
  prefix_.push_back('L');
  put_be(prefix_, group, 4);
}

std::string log_store::key(char kind) const {
  std::string k = prefix_;
  k.push_back(kind);
  return k;
}

std::string log_store::entry_key(std::uint64_t index) const {
  std::string k = key(entry_kind);
  put_be(k, index, 8);
  return k;
}

core::result<bool> log_store::has_state() {
  bool any = false;
  auto scanned = keys_.scan_prefix(prefix_, [&](std::string_view, std::string_view) {
    any = true;
    return false;
  });
  if (!scanned) return std::move(scanned).error();
  return any;
}

core::result<stored_state> log_store::load() {
  stored_state state;
  auto term = read_number(keys_, key(term_kind));
  if (!term) return std::move(term).error();
  auto vote = read_number(keys_, key(vote_kind));
  if (!vote) return std::move(vote).error();
  state.term = *term;
  state.vote = *vote;
  auto snap = snapshot();
  if (!snap) return std::move(snap).error();
  state.snapshot = std::move(*snap);
  snapshot_index_ = state.snapshot ? state.snapshot->index : 0;

  std::optional<error> problem;
  std::uint64_t expected = 0;
  const auto entries = key(entry_kind);
  auto scanned = keys_.scan_prefix(entries, [&](std::string_view k, std::string_view v) {
    reader in(k.substr(entries.size()));
    std::uint64_t index = 0;
    if (!in.be(index, 8) || !in.done()) {
      problem = damaged("an entry key is not an index");
      return false;
    }
    if (expected != 0 && index != expected) {
      problem = damaged("entry " + std::to_string(expected) + " is missing");
      return false;
    }
    auto e = decode_entry_value(v);
    if (!e) {
      problem = std::move(e).error();
      return false;
    }
    if (expected == 0) state.start_index = index;
    state.entries.push_back(std::move(*e));
    expected = index + 1;
    return true;
  });
  if (!scanned) return std::move(scanned).error();
  if (problem) return std::move(*problem);
  if (state.entries.empty()) {
    state.start_index = snapshot_index_ + 1;
    first_index_ = 0;
    last_index_ = snapshot_index_;
  } else {
    if (state.start_index > snapshot_index_ + 1) {
      return damaged("entries " + std::to_string(snapshot_index_ + 1) + " to "
                     + std::to_string(state.start_index - 1) + " are missing");
    }
    first_index_ = state.start_index;
    last_index_ = state.start_index + state.entries.size() - 1;
  }
  return state;
}

core::result<void> log_store::set_term(std::uint64_t term) {
  storage::write_batch b;
  b.put(key(term_kind), number(term));
  b.del(key(vote_kind));
  return keys_.write(b, true);
}

core::result<void> log_store::set_vote(std::uint64_t server_id) {
  storage::write_batch b;
  b.put(key(vote_kind), number(server_id));
  return keys_.write(b, true);
}

core::result<void> log_store::append(std::uint64_t first_index,
                                     const std::vector<stored_entry>& entries) {
  if (first_index != last_index_ + 1) {
    return error{errc::internal, "append at " + std::to_string(first_index)
                                   + " does not follow the last entry "
                                   + std::to_string(last_index_)};
  }
  if (entries.empty()) return core::ok();
  storage::write_batch b;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    b.put(entry_key(first_index + i), encode_entry_value(entries[i]));
  }
  auto written = keys_.write(b, false);
  if (!written) return written;
  if (first_index_ == 0) first_index_ = first_index;
  last_index_ = first_index + entries.size() - 1;
  return core::ok();
}

core::result<void> log_store::truncate(std::uint64_t index) {
  if (index == 0 || index > last_index_) return core::ok();
  storage::write_batch b;
  b.del_range(entry_key(index), key(static_cast<char>(entry_kind + 1)));
  auto written = keys_.write(b, false);
  if (!written) return written;
  if (first_index_ != 0 && index <= first_index_) {
    first_index_ = 0;
    last_index_ = std::max<std::uint64_t>(snapshot_index_, index - 1);
  } else {
    last_index_ = index - 1;
  }
  return core::ok();
}

core::result<void> log_store::put_snapshot(const stored_snapshot& snapshot, unsigned trailing) {
  storage::write_batch b;
  b.put(key(snapshot_meta_kind), encode_snapshot_meta(snapshot));
  b.put(key(snapshot_data_kind), snapshot.data);
  std::uint64_t keep_from = 0; // entries before it go
  if (trailing == 0) {
    keep_from = last_index_ + 1;
  } else if (snapshot.index > trailing) {
    keep_from = snapshot.index - trailing + 1;
  }
  if (keep_from > 0) {
    b.del_range(entry_key(0), entry_key(keep_from));
  }
  auto written = keys_.write(b, false);
  if (!written) return written;
  snapshot_index_ = snapshot.index;
  if (trailing == 0) {
    first_index_ = 0;
    last_index_ = snapshot.index;
  } else {
    if (first_index_ != 0 && keep_from > first_index_) {
      first_index_ = keep_from > last_index_ ? 0 : keep_from;
    }
    last_index_ = std::max(last_index_, snapshot.index);
  }
  return core::ok();
}

core::result<std::optional<stored_snapshot>> log_store::snapshot() {
  auto meta = keys_.get(key(snapshot_meta_kind));
  if (!meta) {
    if (meta.error().code() == errc::not_found) return std::optional<stored_snapshot>{};
    return std::move(meta).error();
  }
  auto s = decode_snapshot_meta(*meta);
  if (!s) return std::move(s).error();
  auto data = keys_.get(key(snapshot_data_kind));
  if (!data) {
    if (data.error().code() == errc::not_found) return damaged("a snapshot has no data");
    return std::move(data).error();
  }
  s->data = std::move(*data);
  return std::optional<stored_snapshot>(std::move(*s));
}

} // namespace shoal::replication
