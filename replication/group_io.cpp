// SPDX-License-Identifier: Apache-2.0
#include "replication/group_io.hpp"

#include "replication/metrics.hpp"

#include <cstring>
#include <list>
#include <random>

#include "replication/raft_c.hpp"
#include "replication/snapshot_stream.hpp"
#include "replication/snapshot_transfer.hpp"
#include "replication/wire.hpp"

namespace shoal::replication {

/// A request libraft waits on (an append or a snapshot put): completed once, by the
/// fsync it waits for or by close().
struct pending_request {
  bool done = false;
  std::function<void(int status)> complete;
};

struct group_io::state {
  raft_io io{};
  log_store& log;
  io_host host;
  raft_id id = 0;
  std::string address;
  raft_io_tick_cb tick = nullptr;
  raft_io_recv_cb recv = nullptr;
  bool started = false;
  bool closed = false;
  /// An fsync failed: what the log holds past the last synced point is unknown, while
  /// libraft believes the failed appends gone. Nothing more is written until the group
  /// is started again from the store (the host's job: failed()).
  bool failed = false;
  std::mt19937_64 rng;
  std::uint64_t dropped = 0;
  metrics* counted = nullptr;
  std::list<std::shared_ptr<pending_request>> pending;
  /// False once the io is gone: what the host runs later checks it first.
  std::shared_ptr<bool> alive = std::make_shared<bool>(true);
  /// Snapshot streams (serve_snapshots); null: snapshots travel inside the message.
  std::unique_ptr<snapshot_transfer> transfer;
  snapshot_stage* stage = nullptr;
  /// Set when libraft stores a staged image's token: it took the install.
  bool install_taken = false;

  state(log_store& l, io_host h) : log(l), host(std::move(h)), rng(host.seed) {}
};

namespace {

using state = group_io::state;

state& of(raft_io* io) {
  return *static_cast<state*>(io->impl);
}

int fail(state& s, int code, const std::string& message) {
  std::snprintf(s.io.errmsg, sizeof s.io.errmsg, "%s", message.c_str());
  return code;
}

int io_error(state& s, const core::error& e) {
  return fail(s, e.code() == core::errc::corrupt ? RAFT_CORRUPT : RAFT_IOERR, e.message());
}

/// Fails every request still waiting with `status`, the newest first. libraft 0.15
/// truncates its in-memory log from the index of each failed leader append, without
/// checking that index still exists (upstream checks it since); failed oldest first, the
/// second truncation would start past the end of the log and run off it
/// (docs/replication.md "libraft defects we work around").
void fail_waiting(state& s, int status) {
  auto waiting = std::move(s.pending);
  s.pending.clear();
  for (auto it = waiting.rbegin(); it != waiting.rend(); ++it) {
    auto& p = *it;
    if (p->done) continue;
    p->done = true;
    p->complete(status);
  }
}

/// Completes `p` with the outcome of the next fsync (or with RAFT_CANCELED on close). A
/// failed fsync fails every request waiting (see fail_waiting): none of what they wrote
/// can be trusted to be on disk.
void after_sync(state& s, std::shared_ptr<pending_request> p) {
  s.pending.push_back(p);
  auto alive = s.alive;
  state* self = &s;
  s.host.after_sync([alive, self, p](core::result<void> synced) {
    if (!*alive || p->done) return;
    if (!synced) {
      self->failed = true;
      return fail_waiting(*self, RAFT_IOERR);
    }
    p->done = true;
    self->pending.remove(p);
    p->complete(0);
  });
}

void post(state& s, std::function<void()> fn) {
  auto alive = s.alive;
  s.host.post([alive, fn = std::move(fn)] {
    if (*alive) fn();
  });
}

stored_snapshot to_stored(const raft_snapshot& snap) {
  stored_snapshot out;
  out.index = snap.index;
  out.term = snap.term;
  out.config_index = snap.configuration_index;
  for (unsigned i = 0; i < snap.configuration.n; ++i) {
    const auto& server = snap.configuration.servers[i];
    out.config.push_back({server.id, server.address, static_cast<std::uint8_t>(server.role)});
  }
  for (unsigned i = 0; i < snap.n_bufs; ++i) {
    out.data.append(static_cast<const char*>(snap.bufs[i].base), snap.bufs[i].len);
  }
  return out;
}

/// A raft_snapshot libraft owns, or null when memory ran out.
raft_snapshot* to_raft(const stored_snapshot& in) {
  auto* snap = static_cast<raft_snapshot*>(raft_calloc(1, sizeof(raft_snapshot)));
  if (snap == nullptr) return nullptr;
  snap->index = in.index;
  snap->term = in.term;
  snap->configuration_index = in.config_index;
  raft_configuration_init(&snap->configuration);
  for (const auto& server : in.config) {
    if (raft_configuration_add(&snap->configuration, server.id, server.address.c_str(), server.role)
        != 0) {
      raft_configuration_close(&snap->configuration);
      raft_free(snap);
      return nullptr;
    }
  }
  snap->bufs = static_cast<raft_buffer*>(raft_malloc(sizeof(raft_buffer)));
  void* data = raft_malloc(in.data.empty() ? 1 : in.data.size());
  if (snap->bufs == nullptr || data == nullptr) {
    raft_free(snap->bufs);
    raft_free(data);
    raft_configuration_close(&snap->configuration);
    raft_free(snap);
    return nullptr;
  }
  std::memcpy(data, in.data.data(), in.data.size());
  snap->bufs[0].base = data;
  snap->bufs[0].len = in.data.size();
  snap->n_bufs = 1;
  return snap;
}

int m_init(raft_io* io, raft_id id, const char* address) {
  auto& s = of(io);
  s.id = id;
  s.address = address == nullptr ? "" : address;
  if (s.transfer) s.transfer->identify(id, s.address);
  return 0;
}

void m_close(raft_io* io, raft_io_close_cb cb) {
  auto& s = of(io);
  if (s.started && !s.closed) s.host.stop_ticks();
  s.closed = true;
  if (s.transfer) s.transfer->close();
  // Every request still waiting is canceled (the newest first: see fail_waiting) before
  // libraft hears the io is closed.
  auto waiting = std::move(s.pending);
  s.pending.clear();
  for (auto it = waiting.rbegin(); it != waiting.rend(); ++it) {
    post(s, [p = *it] {
      if (p->done) return;
      p->done = true;
      p->complete(RAFT_CANCELED);
    });
  }
  if (cb != nullptr) post(s, [io, cb] { cb(io); });
}

int m_load(raft_io* io, raft_term* term, raft_id* voted_for, raft_snapshot** snapshot,
           raft_index* start_index, raft_entry* entries[], size_t* n_entries) {
  auto& s = of(io);
  auto loaded = s.log.load();
  if (!loaded) return io_error(s, loaded.error());
  *term = loaded->term;
  *voted_for = loaded->vote;
  *snapshot = nullptr;
  *entries = nullptr;
  *n_entries = 0;
  *start_index = loaded->start_index;
  if (loaded->snapshot) {
    *snapshot = to_raft(*loaded->snapshot);
    if (*snapshot == nullptr) return fail(s, RAFT_NOMEM, "no memory for the snapshot");
  }
  const auto n = loaded->entries.size();
  if (n == 0) return 0;
  std::size_t total = 0;
  for (const auto& e : loaded->entries)
    total += e.payload.size();
  auto* list = static_cast<raft_entry*>(raft_calloc(n, sizeof(raft_entry)));
  void* batch = raft_malloc(total == 0 ? 1 : total);
  if (list == nullptr || batch == nullptr) {
    raft_free(list);
    raft_free(batch);
    return fail(s, RAFT_NOMEM, "no memory for the log");
  }
  auto* at = static_cast<char*>(batch);
  for (std::size_t i = 0; i < n; ++i) {
    const auto& e = loaded->entries[i];
    std::memcpy(at, e.payload.data(), e.payload.size());
    list[i].term = e.term;
    list[i].type = e.type;
    list[i].buf.base = at;
    list[i].buf.len = e.payload.size();
    list[i].batch = batch;
    at += e.payload.size();
  }
  *entries = list;
  *n_entries = n;
  return 0;
}

int m_start(raft_io* io, unsigned msecs, raft_io_tick_cb tick, raft_io_recv_cb recv) {
  auto& s = of(io);
  s.tick = tick;
  s.recv = recv;
  s.started = true;
  auto alive = s.alive;
  s.host.start_ticks(msecs, [alive, io] {
    auto& st = of(io);
    if (!*alive || st.closed) return;
    if (st.transfer) st.transfer->tick();
    st.tick(io);
  });
  return 0;
}

int m_bootstrap(raft_io* io, const raft_configuration* conf) {
  auto& s = of(io);
  auto any = s.log.has_state();
  if (!any) return io_error(s, any.error());
  if (*any) return fail(s, RAFT_CANTBOOTSTRAP, "the group already has state");
  raft_buffer buf{};
  if (raft_configuration_encode(conf, &buf) != 0) return fail(s, RAFT_NOMEM, "encode failed");
  stored_entry first{1, RAFT_CHANGE, std::string(static_cast<const char*>(buf.base), buf.len)};
  raft_free(buf.base);
  auto appended = s.log.append(1, {first});
  if (!appended) return io_error(s, appended.error());
  auto termed = s.log.set_term(1); // synced: covers the entry written before it
  if (!termed) return io_error(s, termed.error());
  return 0;
}

int m_recover(raft_io* io, const raft_configuration*) {
  return fail(of(io), RAFT_NOTFOUND, "recover is not supported");
}

/// Refuses a write once an fsync failed (state::failed).
bool refuse_write(state& s) {
  if (!s.failed) return false;
  fail(s, RAFT_IOERR, "an earlier fsync failed: the log takes no more writes until a restart");
  return true;
}

int m_set_term(raft_io* io, raft_term term) {
  auto& s = of(io);
  if (refuse_write(s)) return RAFT_IOERR;
  auto r = s.log.set_term(term);
  return r ? 0 : io_error(s, r.error());
}

int m_set_vote(raft_io* io, raft_id id) {
  auto& s = of(io);
  if (refuse_write(s)) return RAFT_IOERR;
  auto r = s.log.set_vote(id);
  return r ? 0 : io_error(s, r.error());
}

int m_send(raft_io* io, raft_io_send* req, const raft_message* message, raft_io_send_cb cb) {
  auto& s = of(io);
  if (s.closed) return fail(s, RAFT_CANCELED, "closed");
  raft_message mine = *message; // from us, to message->server_id
  mine.server_id = s.id;
  mine.server_address = s.address.c_str();
  if (message->type == RAFT_IO_INSTALL_SNAPSHOT && s.transfer) {
    // The message carries a token; the image follows it as a stream, and the message
    // rides on the stream's last chunk.
    s.transfer->send(message->server_id, message->server_address,
                     message->install_snapshot.last_index, encode_message(mine));
  } else {
    if (s.counted != nullptr && message->type == RAFT_IO_INSTALL_SNAPSHOT)
      s.counted->snapshot_bytes_sent.inc(message->install_snapshot.data.len);
    s.host.send(message->server_id, message->server_address, encode_message(mine));
  }
  req->cb = cb;
  post(s, [req, cb] {
    if (cb != nullptr) cb(req, 0);
  });
  return 0;
}

int m_append(raft_io* io, raft_io_append* req, const raft_entry entries[], unsigned n,
             raft_io_append_cb cb) {
  auto& s = of(io);
  if (s.closed) return fail(s, RAFT_CANCELED, "closed");
  if (refuse_write(s)) return RAFT_IOERR;
  std::vector<stored_entry> batch;
  batch.reserve(n);
  for (unsigned i = 0; i < n; ++i) {
    batch.push_back(
      {entries[i].term, static_cast<std::uint8_t>(entries[i].type),
       std::string(static_cast<const char*>(entries[i].buf.base), entries[i].buf.len)});
  }
  auto written = s.log.append(s.log.last_index() + 1, batch);
  if (!written) return io_error(s, written.error());
  auto p = std::make_shared<pending_request>();
  req->cb = cb;
  p->complete = [req, cb](int status) { cb(req, status); };
  after_sync(s, std::move(p));
  return 0;
}

int m_truncate(raft_io* io, raft_index index) {
  auto& s = of(io);
  if (refuse_write(s)) return RAFT_IOERR;
  auto r = s.log.truncate(index);
  return r ? 0 : io_error(s, r.error());
}

int m_snapshot_put(raft_io* io, unsigned trailing, raft_io_snapshot_put* req,
                   const raft_snapshot* snapshot, raft_io_snapshot_put_cb cb) {
  auto& s = of(io);
  if (s.closed) return fail(s, RAFT_CANCELED, "closed");
  if (refuse_write(s)) return RAFT_IOERR;
  if (trailing == 0 && snapshot->n_bufs == 1) {
    const auto token =
      decode_token({static_cast<const char*>(snapshot->bufs[0].base), snapshot->bufs[0].len});
    if (token && token->what == snapshot_token::kind::staged) s.install_taken = true;
  }
  auto r = s.log.put_snapshot(to_stored(*snapshot), trailing);
  if (!r) return io_error(s, r.error());
  auto p = std::make_shared<pending_request>();
  req->cb = cb;
  p->complete = [req, cb](int status) { cb(req, status); };
  after_sync(s, std::move(p));
  return 0;
}

int m_snapshot_get(raft_io* io, raft_io_snapshot_get* req, raft_io_snapshot_get_cb cb) {
  auto& s = of(io);
  auto stored = s.log.snapshot();
  if (!stored) return io_error(s, stored.error());
  if (!*stored) return fail(s, RAFT_NOTFOUND, "no snapshot");
  raft_snapshot* snap = to_raft(**stored);
  if (snap == nullptr) return fail(s, RAFT_NOMEM, "no memory for the snapshot");
  req->cb = cb;
  post(s, [req, cb, snap] { cb(req, snap, 0); });
  return 0;
}

raft_time m_time(raft_io* io) {
  return of(io).host.now_ms();
}

int m_random(raft_io* io, int min, int max) {
  auto& s = of(io);
  return std::uniform_int_distribution<int>(min, max)(s.rng);
}

} // namespace

group_io::group_io(log_store& log, io_host host)
    : s_(std::make_unique<state>(log, std::move(host))) {
  auto& io = s_->io;
  io.version = 1;
  io.impl = s_.get();
  io.init = m_init;
  io.close = m_close;
  io.load = m_load;
  io.start = m_start;
  io.bootstrap = m_bootstrap;
  io.recover = m_recover;
  io.set_term = m_set_term;
  io.set_vote = m_set_vote;
  io.send = m_send;
  io.append = m_append;
  io.truncate = m_truncate;
  io.snapshot_put = m_snapshot_put;
  io.snapshot_get = m_snapshot_get;
  io.time = m_time;
  io.random = m_random;
  io.async_work = nullptr;
}

group_io::~group_io() {
  *s_->alive = false;
}

raft_io* group_io::io() noexcept {
  return &s_->io;
}

void group_io::deliver(std::string_view bytes) {
  auto& s = *s_;
  if (!s.started || s.closed) {
    ++s.dropped;
    return;
  }
  if (is_stream_frame(bytes)) {
    if (s.transfer) return s.transfer->deliver(bytes);
    ++s.dropped;
    return;
  }
  auto decoded = decode_message(bytes);
  if (!decoded) {
    ++s.dropped;
    return;
  }
  // libraft takes what the message owns (entries, configuration, data); the address is
  // only read during the call.
  s.recv(&s.io, &(*decoded)->msg);
}

void group_io::count_into(metrics* m) noexcept {
  s_->counted = m;
  if (s_->transfer) s_->transfer->count_into(m);
}

namespace {

/// libraft gets the InstallSnapshot its peer sent, with a token for the image staged
/// here as its data. Unless libraft stores that token (it may find the snapshot stale,
/// or be busy), the stage is dropped.
void hand_over(state& s, std::string_view install, std::uint64_t applied_index) {
  auto release = [&s] {
    s.stage->handed_over = false;
    (void)s.stage->clear();
  };
  if (!s.started || s.closed) return release();
  auto decoded = decode_message(install);
  if (!decoded || (*decoded)->msg.type != RAFT_IO_INSTALL_SNAPSHOT) {
    if (decoded) (*decoded)->release();
    ++s.dropped;
    return release();
  }
  auto& args = (*decoded)->msg.install_snapshot;
  const auto token = encode_token({snapshot_token::kind::staged, applied_index});
  void* data = raft_malloc(token.size());
  if (data == nullptr) {
    (*decoded)->release();
    return release();
  }
  std::memcpy(data, token.data(), token.size());
  raft_free(args.data.base);
  args.data.base = data;
  args.data.len = token.size();
  s.install_taken = false;
  s.recv(&s.io, &(*decoded)->msg);
  if (!s.install_taken) release();
}

} // namespace

void group_io::serve_snapshots(storage::shard_store& shard, snapshot_stage& stage,
                               const transfer_options& options) {
  auto& s = *s_;
  s.stage = &stage;
  transfer_host th;
  th.now_ms = s.host.now_ms;
  th.send = s.host.send;
  th.post = s.host.post;
  th.after_sync = s.host.after_sync;
  auto* st = &s;
  th.install = [st](std::string_view install, std::uint64_t applied_index) {
    hand_over(*st, install, applied_index);
  };
  s.transfer =
    std::make_unique<snapshot_transfer>(shard, stage, std::move(th), options, s.host.seed);
  s.transfer->count_into(s.counted);
}

snapshot_transfer::counters group_io::streams() const noexcept {
  return s_->transfer ? s_->transfer->stats() : snapshot_transfer::counters{};
}

std::uint64_t group_io::dropped() const noexcept {
  return s_->dropped;
}

bool group_io::failed() const noexcept {
  return s_->failed;
}

} // namespace shoal::replication
