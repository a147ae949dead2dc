// SPDX-License-Identifier: Apache-2.0
#include "replication/io_guard.hpp"

#include <algorithm>
#include <cstring>

#include "replication/raft_c.hpp"

namespace shoal::replication {

struct io_guard::state {
  raft_io outer{};          ///< what libraft sees: outer.data is libraft's, outer.impl us
  raft_io* inner = nullptr; ///< inner->data is us: only our trampolines get inner
  raft_io_tick_cb tick = nullptr;
  raft_io_recv_cb recv = nullptr;
  raft_io_close_cb close_cb = nullptr;

  /// While libraft handles an AppendEntries, or the completion of the append one caused:
  /// the last index that request vouches for.
  bool in_request = false;
  raft_index request_end = 0;

  std::uint64_t capped_commits = 0;
  std::uint64_t capped_results = 0;
};

namespace {

using state = io_guard::state;

state& of_outer(raft_io* io) {
  return *static_cast<state*>(io->impl);
}
state& of_inner(raft_io* io) {
  return *static_cast<state*>(io->data);
}

/// An append a follower makes for an AppendEntries: its completion answers that request.
struct follower_append {
  raft_io_append mine{};
  state* s = nullptr;
  raft_io_append* theirs = nullptr;
  raft_io_append_cb cb = nullptr;
  raft_index end = 0;
};

/// Passes an inner call's result on, with its message where libraft looks for it.
int pass(state& s, int rv) {
  if (rv != 0) {
    std::memcpy(s.outer.errmsg, s.inner->errmsg, sizeof s.outer.errmsg);
  }
  return rv;
}

void on_tick(raft_io* inner) {
  auto& s = of_inner(inner);
  s.tick(&s.outer);
}

void on_recv(raft_io* inner, raft_message* m) {
  auto& s = of_inner(inner);
  if (m->type != RAFT_IO_APPEND_ENTRIES) {
    s.recv(&s.outer, m);
    return;
  }
  auto& args = m->append_entries;
  const raft_index end = args.prev_log_index + args.n_entries;
  if (args.leader_commit > end) {
    args.leader_commit = end; // defect 2
    ++s.capped_commits;
  }
  const bool was = s.in_request;
  const raft_index was_end = s.request_end;
  s.in_request = true;
  s.request_end = end;
  s.recv(&s.outer, m);
  s.in_request = was;
  s.request_end = was_end;
}

void on_close(raft_io* inner) {
  auto& s = of_inner(inner);
  if (s.close_cb != nullptr) {
    s.close_cb(&s.outer);
  }
}

void on_follower_append_done(raft_io_append* req, int status) {
  auto* p = static_cast<follower_append*>(req->data);
  state& s = *p->s;
  const bool was = s.in_request;
  const raft_index was_end = s.request_end;
  s.in_request = true;
  s.request_end = p->end;
  auto* theirs = p->theirs;
  auto cb = p->cb;
  delete p;
  cb(theirs, status);
  s.in_request = was;
  s.request_end = was_end;
}

int m_init(raft_io* io, raft_id id, const char* address) {
  auto& s = of_outer(io);
  return pass(s, s.inner->init(s.inner, id, address));
}

void m_close(raft_io* io, raft_io_close_cb cb) {
  auto& s = of_outer(io);
  s.close_cb = cb;
  s.inner->close(s.inner, on_close);
}

int m_load(raft_io* io, raft_term* term, raft_id* voted_for, raft_snapshot** snapshot,
           raft_index* start_index, raft_entry* entries[], size_t* n_entries) {
  auto& s = of_outer(io);
  return pass(s,
              s.inner->load(s.inner, term, voted_for, snapshot, start_index, entries, n_entries));
}

int m_start(raft_io* io, unsigned msecs, raft_io_tick_cb tick, raft_io_recv_cb recv) {
  auto& s = of_outer(io);
  s.tick = tick;
  s.recv = recv;
  return pass(s, s.inner->start(s.inner, msecs, on_tick, on_recv));
}

int m_bootstrap(raft_io* io, const raft_configuration* conf) {
  auto& s = of_outer(io);
  return pass(s, s.inner->bootstrap(s.inner, conf));
}

int m_recover(raft_io* io, const raft_configuration* conf) {
  auto& s = of_outer(io);
  return pass(s, s.inner->recover(s.inner, conf));
}

int m_set_term(raft_io* io, raft_term term) {
  auto& s = of_outer(io);
  return pass(s, s.inner->set_term(s.inner, term));
}

int m_set_vote(raft_io* io, raft_id id) {
  auto& s = of_outer(io);
  return pass(s, s.inner->set_vote(s.inner, id));
}

int m_send(raft_io* io, raft_io_send* req, const raft_message* message, raft_io_send_cb cb) {
  auto& s = of_outer(io);
  if (s.in_request && message->type == RAFT_IO_APPEND_ENTRIES_RESULT
      && message->append_entries_result.rejected == 0
      && message->append_entries_result.last_log_index > s.request_end) {
    raft_message capped = *message;
    capped.append_entries_result.last_log_index = s.request_end; // defect 1
    ++s.capped_results;
    return pass(s, s.inner->send(s.inner, req, &capped, cb));
  }
  return pass(s, s.inner->send(s.inner, req, message, cb));
}

int m_append(raft_io* io, raft_io_append* req, const raft_entry entries[], unsigned n,
             raft_io_append_cb cb) {
  auto& s = of_outer(io);
  if (!s.in_request) {
    return pass(s, s.inner->append(s.inner, req, entries, n, cb)); // a leader's own entries
  }
  auto* p = new follower_append;
  p->mine.data = p;
  p->s = &s;
  p->theirs = req;
  p->cb = cb;
  p->end = s.request_end;
  const int rv = s.inner->append(s.inner, &p->mine, entries, n, on_follower_append_done);
  if (rv != 0) {
    delete p;
  }
  return pass(s, rv);
}

int m_truncate(raft_io* io, raft_index index) {
  auto& s = of_outer(io);
  return pass(s, s.inner->truncate(s.inner, index));
}

int m_snapshot_put(raft_io* io, unsigned trailing, raft_io_snapshot_put* req,
                   const raft_snapshot* snapshot, raft_io_snapshot_put_cb cb) {
  auto& s = of_outer(io);
  return pass(s, s.inner->snapshot_put(s.inner, trailing, req, snapshot, cb));
}

int m_snapshot_get(raft_io* io, raft_io_snapshot_get* req, raft_io_snapshot_get_cb cb) {
  auto& s = of_outer(io);
  return pass(s, s.inner->snapshot_get(s.inner, req, cb));
}

raft_time m_time(raft_io* io) {
  auto& s = of_outer(io);
  return s.inner->time(s.inner);
}

int m_random(raft_io* io, int min, int max) {
  auto& s = of_outer(io);
  return s.inner->random(s.inner, min, max);
}

int m_async_work(raft_io* io, raft_io_async_work* req, raft_io_async_work_cb cb) {
  auto& s = of_outer(io);
  return pass(s, s.inner->async_work(s.inner, req, cb));
}

} // namespace

io_guard::io_guard(raft_io* inner) : s_(std::make_unique<state>()) {
  auto& o = s_->outer;
  o.version = inner->version;
  o.impl = s_.get();
  o.init = m_init;
  o.close = m_close;
  o.load = m_load;
  o.start = m_start;
  o.bootstrap = m_bootstrap;
  o.recover = m_recover;
  o.set_term = m_set_term;
  o.set_vote = m_set_vote;
  o.send = m_send;
  o.append = m_append;
  o.truncate = m_truncate;
  o.snapshot_put = m_snapshot_put;
  o.snapshot_get = m_snapshot_get;
  o.time = m_time;
  o.random = m_random;
  o.async_work = inner->version >= 2 ? m_async_work : nullptr;
  s_->inner = inner;
  inner->data = s_.get();
}

io_guard::~io_guard() = default;

raft_io* io_guard::io() noexcept {
  return &s_->outer;
}

std::uint64_t io_guard::capped_commits() const noexcept {
  return s_->capped_commits;
}

std::uint64_t io_guard::capped_results() const noexcept {
  return s_->capped_results;
}

} // namespace shoal::replication
