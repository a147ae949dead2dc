// SPDX-License-Identifier: Apache-2.0
#include "replication/replica.hpp"

#include "replication/raft_c.hpp"

#include <cstring>
#include <string>

#include "replication/entry.hpp"

namespace shoal::replication {

using core::errc;
using core::error;

struct replica::pending_write {
  struct raft_apply req {};
  done_fn done;
};

struct replica::pending_read {
  struct raft_barrier req {};
  replica* owner = nullptr;
};

replica::replica(raft* r) : raft_(r) {}

replica::~replica() {
  close(error{errc::shutting_down, "the shard stopped"});
}

void replica::close(const error& err) {
  // A barrier still in flight outlives us inside libraft; its callback must not reach a
  // dead replica.
  if (barrier_) {
    barrier_->owner = nullptr;
    barrier_.release(); // freed by its callback, which libraft runs on close
  }
  auto reads = std::move(reading_);
  reading_.clear();
  for (auto& r : next_reads_)
    reads.push_back(std::move(r));
  next_reads_.clear();
  for (auto& r : reads)
    r(err);
}

bool replica::leader() const noexcept {
  return raft_state(raft_) == RAFT_LEADER;
}

std::uint64_t replica::term() const noexcept {
  return raft_->current_term;
}

leader_hint replica::hint() const noexcept {
  raft_id id = 0;
  const char* address = nullptr;
  raft_leader(raft_, &id, &address);
  return {id};
}

error replica::not_leader() const {
  const auto h = hint();
  std::string message = "this replica does not lead the shard's group";
  if (h.id != 0) {
    message += "; the last known leader is server " + std::to_string(h.id);
  }
  return error{errc::shard_unavailable, "not_leader", std::move(message)};
}

std::uint64_t replica::propose(const storage::write_batch& batch, done_fn done) {
  if (!leader()) {
    done(not_leader());
    return 0;
  }
  const auto bytes = encode_entry(batch);
  raft_buffer buf;
  buf.len = bytes.size();
  buf.base = raft_malloc(buf.len);
  if (buf.base == nullptr) {
    done(error{errc::overloaded, "out of memory for a log entry"});
    return 0;
  }
  std::memcpy(buf.base, bytes.data(), bytes.size());
  auto* p = new pending_write;
  p->done = std::move(done);
  p->req.data = p;
  const int rv = raft_apply(raft_, &p->req, &buf, 1, [](struct raft_apply* req, int status, void*) {
    auto* p = static_cast<pending_write*>(req->data);
    auto done = std::move(p->done);
    delete p;
    if (status == 0) {
      done(core::ok());
    } else {
      done(error{errc::outcome_unknown,
                 std::string("leadership was lost after the write was proposed (")
                   + raft_strerror(status) + "); it may still be committed"});
    }
  });
  if (rv != 0) {
    // Before the entry reached the log libraft leaves the buffer to us; later failures
    // (a failed replication trigger) free it with the discarded entry.
    if (rv == RAFT_NOTLEADER) {
      raft_free(buf.base);
    }
    auto done = std::move(p->done);
    delete p;
    if (rv == RAFT_NOTLEADER) {
      done(not_leader());
    } else {
      done(error{errc::shard_unavailable,
                 std::string("the write was not proposed: ") + raft_strerror(rv)});
    }
    return 0;
  }
  // raft_apply appended the entry to the in-memory log before it returned.
  return raft_last_index(raft_);
}

void replica::read(done_fn done) {
  if (!leader()) {
    done(not_leader());
    return;
  }
  if (barrier_) {
    next_reads_.push_back(std::move(done));
    return;
  }
  reading_.push_back(std::move(done));
  issue_barrier();
}

void replica::issue_barrier() {
  auto p = std::make_unique<pending_read>();
  p->owner = this;
  p->req.data = p.get();
  const int rv = raft_barrier(raft_, &p->req, [](struct raft_barrier* req, int status) {
    auto* p = static_cast<pending_read*>(req->data);
    auto* owner = p->owner;
    if (owner == nullptr) {
      delete p; // the replica is gone (see ~replica)
      return;
    }
    owner->barrier_done(status);
  });
  if (rv != 0) {
    auto reads = std::move(reading_);
    reading_.clear();
    for (auto& r : reads) {
      r(not_leader());
    }
    return;
  }
  ++barriers_;
  barrier_ = std::move(p);
}

void replica::barrier_done(int status) {
  barrier_.reset();
  auto served = std::move(reading_);
  reading_ = std::move(next_reads_);
  next_reads_.clear();
  // The reads that waited go out behind a barrier of their own, proposed before any
  // callback below runs (a callback may read again: it then queues behind this one).
  if (!reading_.empty()) {
    if (status == 0 && leader()) {
      issue_barrier();
    } else {
      auto reads = std::move(reading_);
      reading_.clear();
      for (auto& r : reads) {
        r(not_leader());
      }
    }
  }
  for (auto& r : served) {
    if (status == 0) {
      r(core::ok());
    } else {
      r(not_leader());
    }
  }
}

} // namespace shoal::replication
