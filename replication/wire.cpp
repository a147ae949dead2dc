// SPDX-License-Identifier: Apache-2.0
#include "replication/wire.hpp"

#include "replication/bytes.hpp"

#include <cstring>

namespace shoal::replication {
namespace {

using core::errc;
using core::error;

constexpr char wire_version = 0x01;

using bytes::reader;

/// Builds a message's bytes.
class writer {
public:
  void be(std::uint64_t v, int width) {
    bytes::put_be(out, v, width);
  }
  void sized(const void* data, std::size_t n) {
    bytes::put_sized(out, std::string_view(static_cast<const char*>(data), n));
  }
  void text(const char* s) {
    sized(s, s == nullptr ? 0 : std::strlen(s));
  }
  std::string out;
};

void put_config(writer& w, const raft_configuration& c) {
  w.be(c.n, 4);
  for (unsigned i = 0; i < c.n; ++i) {
    w.be(c.servers[i].id, 8);
    w.be(static_cast<std::uint64_t>(c.servers[i].role), 1);
    w.text(c.servers[i].address);
  }
}

bool get_config(reader& r, raft_configuration& c) {
  raft_configuration_init(&c);
  std::uint64_t n = 0;
  if (!r.be(n, 4)) return false;
  for (std::uint64_t i = 0; i < n; ++i) {
    std::uint64_t id = 0;
    std::uint64_t role = 0;
    std::string_view address;
    if (!r.be(id, 8) || !r.be(role, 1) || !r.sized(address)) return false;
    const std::string a(address);
    if (raft_configuration_add(&c, id, a.c_str(), static_cast<int>(role)) != 0) return false;
  }
  return true;
}

error malformed(std::string_view what) {
  return error{errc::corrupt, "a replication message is malformed: " + std::string(what)};
}

} // namespace

std::string encode_message(const raft_message& m) {
  writer w;
  w.out.push_back(wire_version);
  w.be(m.type, 1);
  w.be(m.server_id, 8);
  w.text(m.server_address);
  switch (m.type) {
  case RAFT_IO_REQUEST_VOTE: {
    const auto& a = m.request_vote;
    w.be(a.term, 8);
    w.be(a.candidate_id, 8);
    w.be(a.last_log_index, 8);
    w.be(a.last_log_term, 8);
    w.be(a.disrupt_leader ? 1 : 0, 1);
    w.be(a.pre_vote ? 1 : 0, 1);
    break;
  }
  case RAFT_IO_REQUEST_VOTE_RESULT: {
    const auto& a = m.request_vote_result;
    w.be(a.term, 8);
    w.be(a.vote_granted ? 1 : 0, 1);
    w.be(static_cast<std::uint64_t>(a.pre_vote), 1);
    break;
  }
  case RAFT_IO_APPEND_ENTRIES: {
    const auto& a = m.append_entries;
    w.be(a.term, 8);
    w.be(a.prev_log_index, 8);
    w.be(a.prev_log_term, 8);
    w.be(a.leader_commit, 8);
    w.be(a.n_entries, 4);
    for (unsigned i = 0; i < a.n_entries; ++i) {
      w.be(a.entries[i].term, 8);
      w.be(a.entries[i].type, 1);
      w.sized(a.entries[i].buf.base, a.entries[i].buf.len);
    }
    break;
  }
  case RAFT_IO_APPEND_ENTRIES_RESULT: {
    const auto& a = m.append_entries_result;
    w.be(a.term, 8);
    w.be(a.rejected, 8);
    w.be(a.last_log_index, 8);
    break;
  }
  case RAFT_IO_INSTALL_SNAPSHOT: {
    const auto& a = m.install_snapshot;
    w.be(a.term, 8);
    w.be(a.last_index, 8);
    w.be(a.last_term, 8);
    put_config(w, a.conf);
    w.be(a.conf_index, 8);
    w.sized(a.data.base, a.data.len);
    break;
  }
  case RAFT_IO_TIMEOUT_NOW: {
    const auto& a = m.timeout_now;
    w.be(a.term, 8);
    w.be(a.last_log_index, 8);
    w.be(a.last_log_term, 8);
    break;
  }
  default:
    break; // decode refuses it
  }
  return std::move(w.out);
}

void decoded_message::release() noexcept {
  if (msg.type == RAFT_IO_APPEND_ENTRIES) {
    auto& a = msg.append_entries;
    if (a.entries != nullptr) {
      if (a.n_entries > 0) raft_free(a.entries[0].batch);
      raft_free(a.entries);
    }
    a.entries = nullptr;
    a.n_entries = 0;
  } else if (msg.type == RAFT_IO_INSTALL_SNAPSHOT) {
    raft_configuration_close(&msg.install_snapshot.conf);
    raft_free(msg.install_snapshot.data.base);
    msg.install_snapshot.data.base = nullptr;
  }
  msg.type = 0;
}

core::result<std::unique_ptr<decoded_message>> decode_message(std::string_view bytes) {
  auto d = std::make_unique<decoded_message>();
  auto& m = d->msg;
  reader r(bytes);
  std::uint64_t version = 0;
  std::string_view address;
  if (!r.be(version, 1) || version != static_cast<std::uint64_t>(wire_version)) {
    return malformed("unknown version");
  }
  std::uint64_t type = 0;
  if (!r.be(type, 1) || !r.num(m.server_id, 8) || !r.sized(address)) {
    return malformed("truncated header");
  }
  d->address.assign(address);
  bool ok = true;
  switch (type) {
  case RAFT_IO_REQUEST_VOTE: {
    m.type = RAFT_IO_REQUEST_VOTE;
    auto& a = m.request_vote;
    std::uint64_t disrupt = 0;
    std::uint64_t pre = 0;
    ok = r.num(a.term, 8) && r.num(a.candidate_id, 8) && r.num(a.last_log_index, 8)
         && r.num(a.last_log_term, 8) && r.be(disrupt, 1) && r.be(pre, 1);
    a.disrupt_leader = disrupt != 0;
    a.pre_vote = pre != 0;
    break;
  }
  case RAFT_IO_REQUEST_VOTE_RESULT: {
    m.type = RAFT_IO_REQUEST_VOTE_RESULT;
    auto& a = m.request_vote_result;
    std::uint64_t granted = 0;
    std::uint64_t pre = 0;
    ok = r.num(a.term, 8) && r.be(granted, 1) && r.be(pre, 1) && pre <= raft_tribool_false;
    a.vote_granted = granted != 0;
    a.pre_vote = static_cast<raft_tribool>(pre);
    break;
  }
  case RAFT_IO_APPEND_ENTRIES: {
    m.type = RAFT_IO_APPEND_ENTRIES;
    auto& a = m.append_entries;
    std::uint64_t n = 0;
    ok = r.num(a.term, 8) && r.num(a.prev_log_index, 8) && r.num(a.prev_log_term, 8)
         && r.num(a.leader_commit, 8) && r.be(n, 4);
    if (!ok || n == 0) break;
    // Two passes: sizes first (so one batch holds every payload), then the copy.
    struct span {
      std::uint64_t term, type;
      std::string_view bytes;
    };
    std::unique_ptr<span[]> spans(new (std::nothrow) span[n]);
    if (!spans || n > bytes.size()) {
      ok = false;
      break;
    }
    std::size_t total = 0;
    for (std::uint64_t i = 0; i < n && ok; ++i) {
      ok = r.be(spans[i].term, 8) && r.be(spans[i].type, 1) && r.sized(spans[i].bytes);
      total += spans[i].bytes.size();
    }
    if (!ok) break;
    a.entries = static_cast<raft_entry*>(raft_calloc(n, sizeof(raft_entry)));
    void* batch = raft_malloc(total == 0 ? 1 : total);
    if (a.entries == nullptr || batch == nullptr) {
      raft_free(a.entries);
      raft_free(batch);
      a.entries = nullptr;
      return error{errc::overloaded, "out of memory for replication entries"};
    }
    a.n_entries = static_cast<unsigned>(n);
    auto* at = static_cast<char*>(batch);
    for (std::uint64_t i = 0; i < n; ++i) {
      std::memcpy(at, spans[i].bytes.data(), spans[i].bytes.size());
      a.entries[i].term = spans[i].term;
      a.entries[i].type = static_cast<unsigned short>(spans[i].type);
      a.entries[i].buf.base = at;
      a.entries[i].buf.len = spans[i].bytes.size();
      a.entries[i].batch = batch;
      at += spans[i].bytes.size();
    }
    break;
  }
  case RAFT_IO_APPEND_ENTRIES_RESULT: {
    m.type = RAFT_IO_APPEND_ENTRIES_RESULT;
    auto& a = m.append_entries_result;
    ok = r.num(a.term, 8) && r.num(a.rejected, 8) && r.num(a.last_log_index, 8);
    break;
  }
  case RAFT_IO_INSTALL_SNAPSHOT: {
    m.type = RAFT_IO_INSTALL_SNAPSHOT;
    auto& a = m.install_snapshot;
    std::string_view data;
    ok = r.num(a.term, 8) && r.num(a.last_index, 8) && r.num(a.last_term, 8)
         && get_config(r, a.conf) && r.num(a.conf_index, 8) && r.sized(data);
    if (!ok) break;
    a.data.base = raft_malloc(data.empty() ? 1 : data.size());
    if (a.data.base == nullptr) {
      d->release();
      return error{errc::overloaded, "out of memory for a snapshot"};
    }
    std::memcpy(a.data.base, data.data(), data.size());
    a.data.len = data.size();
    break;
  }
  case RAFT_IO_TIMEOUT_NOW: {
    m.type = RAFT_IO_TIMEOUT_NOW;
    auto& a = m.timeout_now;
    ok = r.num(a.term, 8) && r.num(a.last_log_index, 8) && r.num(a.last_log_term, 8);
    break;
  }
  default:
    return malformed("unknown type " + std::to_string(type));
  }
  if (!ok || !r.done()) {
    d->release();
    return malformed(ok ? "bytes after the message" : "truncated fields");
  }
  m.server_address = d->address.c_str();
  return d;
}

} // namespace shoal::replication
