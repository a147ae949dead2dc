// SPDX-License-Identifier: Apache-2.0
#include "jobs/broker.hpp"

#include <algorithm>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/json.hpp>
#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/shard_actor.hpp"
#include "actors/type_ids.hpp"
#include "jobs/handlers.hpp"

namespace shoal::jobs {
namespace {

using lease_timeout_atom = caf::atom_constant<caf::atom("lease_end")>;
using lease_repoll_atom = caf::atom_constant<caf::atom("lease_poll")>;
using start_atom = caf::atom_constant<caf::atom("start")>;
using run_sweep_atom = caf::atom_constant<caf::atom("run_sweep")>;
using drain_atom = caf::atom_constant<caf::atom("drain")>;

constexpr std::chrono::milliseconds repoll_interval{250};
constexpr std::chrono::milliseconds sweep_interval{100};

/// The in-process workers of one queue on this node.
struct pool {
  std::uint32_t workers = 0;      ///< how many jobs may run at once
  std::uint32_t running = 0;      ///< leased and not yet reported
  bool leasing = false;           ///< a lease request is out
  std::vector<std::string> types; ///< the job types a handler is registered for
};

/// A job an in-process handler runs.
struct running_job {
  std::chrono::steady_clock::time_point deadline;
  std::string queue;
  std::uint32_t shard;
  leased_job job;
  handler_actor handler;
};

/// An external worker's lease request, until it is answered.
struct waiter {
  job_request req;
  job_sink_ptr sink;
  std::vector<leased_job> got;
  std::chrono::steady_clock::time_point deadline;
  std::vector<std::uint32_t> remote_todo; ///< other nodes' shards still to ask this round
  bool busy = false;                      ///< a lease request for it is out
  bool parked = false;
};

struct broker_state {
  broker_config cfg;
  std::set<std::uint32_t> local;
  std::vector<std::uint32_t> remote;
  /// queue → type → local shards with due jobs of that type.
  std::map<std::string, std::map<std::string, std::set<std::uint32_t>>, std::less<>> hot;
  std::map<std::string, std::uint32_t, std::less<>> cursor; ///< round robin over shards, per queue
  /// queue → shard → announcements received. A lease reply says which types were due
  /// when the shard served it; an announcement that arrived meanwhile is newer (with
  /// storage.sync the reply waits for the fsync, the announcement does not).
  std::map<std::string, std::map<std::uint32_t, std::uint64_t>, std::less<>> announcements;
  bool draining = false; ///< the node is shutting down: long polls answer at once
  std::map<std::string, pool, std::less<>> pools;
  std::map<std::string, std::vector<handler_actor>, std::less<>> idle; ///< by job type
  std::map<std::uint64_t, waiter> waiters;
  std::map<std::string, std::deque<std::uint64_t>, std::less<>> parked; ///< by queue, in order
  std::uint64_t next_waiter = 0;
  std::unordered_map<std::uint64_t, running_job> runs; ///< by run number
  std::uint64_t next_run = 0;
  bool sweeping = false; ///< a sweep is scheduled

  ~broker_state() {
    // Handlers end with their broker.
    for (auto& [type, handlers] : idle)
      for (auto& h : handlers)
        caf::anon_send_exit(h, caf::exit_reason::user_shutdown);
    for (auto& [id, r] : runs)
      caf::anon_send_exit(r.handler, caf::exit_reason::user_shutdown);
    for (auto& [id, w] : waiters) {
      job_reply r;
      r.status = job_status::unavailable;
      r.message = "the node is shutting down";
      w.sink->deliver(std::move(r));
    }
  }

  static inline const char* name = "shoal.jobs.broker";
};

using broker_pointer = caf::stateful_actor<broker_state>*;

bool wanted(const std::vector<std::string>* types, const std::string& type) {
  return !types || std::find(types->begin(), types->end(), type) != types->end();
}

/// A local shard with due jobs of `queue` (of one of `types`, or any when null), taken
/// round robin so that no shard starves.
std::optional<std::uint32_t> pick(broker_state& st, const std::string& queue,
                                  const std::vector<std::string>* types) {
  auto q = st.hot.find(queue);
  if (q == st.hot.end()) return std::nullopt;
  std::set<std::uint32_t> shards;
  for (const auto& [type, set] : q->second)
    if (wanted(types, type)) shards.insert(set.begin(), set.end());
  if (shards.empty()) return std::nullopt;
  auto& c = st.cursor[queue];
  auto it = shards.upper_bound(c);
  if (it == shards.end()) it = shards.begin();
  c = *it;
  return *it;
}

std::uint64_t announced(broker_state& st, const std::string& queue, std::uint32_t shard) {
  return st.announcements[queue][shard];
}

/// After a lease from local `shard`, sent when `seen` announcements had arrived: exactly
/// `ready` types of `queue` had due jobs there. Types it lacks are forgotten only when
/// no announcement came since; a newer one wins.
void settle(broker_state& st, const std::string& queue, std::uint32_t shard,
            const std::vector<std::string>& ready, std::uint64_t seen) {
  auto& types = st.hot[queue];
  if (announced(st, queue, shard) == seen)
    for (auto& [type, set] : types)
      if (std::find(ready.begin(), ready.end(), type) == ready.end()) set.erase(shard);
  for (const auto& type : ready)
    types[type].insert(shard);
}

void forget(broker_state& st, const std::string& queue, std::uint32_t shard, std::uint64_t seen) {
  settle(st, queue, shard, {}, seen);
}

const actors::shard_actor& handle(broker_state& st, std::uint32_t shard) {
  return st.cfg.shards->handles[shard];
}

// -- in-process workers ------------------------------------------------------------------

void pump(broker_pointer self, const std::string& queue);

handler_actor take_handler(broker_pointer self, const std::string& type) {
  auto& st = self->state;
  auto& idle = st.idle[type];
  if (!idle.empty()) {
    auto h = std::move(idle.back());
    idle.pop_back();
    return h;
  }
  return (*st.cfg.handlers->find(type))(self->system());
}

/// A handler's result must be JSON; anything else is kept as a JSON string.
std::string as_json(std::string result) {
  if (result.empty()) return "null";
  boost::json::error_code ec;
  (void)boost::json::parse(result, ec);
  if (!ec) return result;
  return boost::json::serialize(boost::json::value(result));
}

void report(broker_pointer self, const std::string& queue, std::uint32_t shard,
            const leased_job& job, job_outcome&& outcome) {
  job_request req;
  req.op = outcome.ok ? job_op::complete : job_op::fail;
  req.id = job.id;
  req.key = job.lease_id;
  req.body = outcome.ok ? as_json(std::move(outcome.result)) : std::move(outcome.error);
  req.retry = outcome.retryable;
  req.from_broker = true;
  auto done = [self, queue] {
    auto& p = self->state.pools[queue];
    if (p.running > 0) --p.running;
    pump(self, queue);
  };
  // The shard answers even when the lease went stale meanwhile; either way the slot frees.
  self->request(handle(self->state, shard), caf::infinite, std::move(req))
    .then([done](job_reply&) { done(); }, [done](caf::error&) { done(); });
}

/// Fails the runs past their handler's time; runs every 100 ms while any run. One sweep
/// instead of a timeout per request: CAF registers each request timeout with its clock
/// thread (a mutex and a wake-up per job).
void sweep(broker_pointer self) {
  auto& st = self->state;
  const auto now = std::chrono::steady_clock::now();
  std::vector<std::uint64_t> late;
  for (const auto& [id, r] : st.runs)
    if (r.deadline <= now) late.push_back(id);
  for (auto id : late) {
    auto r = std::move(st.runs.at(id));
    st.runs.erase(id);
    // A handler that is still busy is not used again.
    caf::anon_send_exit(r.handler, caf::exit_reason::kill);
    report(self, r.queue, r.shard, r.job,
           job_outcome::failure("the handler did not answer within "
                                  + std::to_string(st.cfg.settings.handler_timeout_ms) + " ms",
                                true));
  }
  st.sweeping = !st.runs.empty();
  if (st.sweeping) self->delayed_send(self, sweep_interval, run_sweep_atom::value);
}

void run(broker_pointer self, const std::string& queue, std::uint32_t shard, leased_job job) {
  auto& st = self->state;
  ++st.pools[queue].running;
  auto h = take_handler(self, job.type);
  const auto id = ++st.next_run;
  job_run msg{job.id, job.queue, job.type, job.payload, job.attempt};
  st.runs.emplace(id, running_job{std::chrono::steady_clock::now()
                                    + std::chrono::milliseconds(st.cfg.settings.handler_timeout_ms),
                                  queue, shard, std::move(job), h});
  if (!st.sweeping) {
    st.sweeping = true;
    self->delayed_send(self, sweep_interval, run_sweep_atom::value);
  }
  self->request(h, caf::infinite, std::move(msg))
    .then(
      [self, id](job_outcome& outcome) {
        auto& st = self->state;
        auto it = st.runs.find(id);
        if (it == st.runs.end()) return; // timed out and reported already
        auto r = std::move(it->second);
        st.runs.erase(it);
        st.idle[r.job.type].push_back(std::move(r.handler));
        report(self, r.queue, r.shard, r.job, std::move(outcome));
      },
      [self, id](caf::error& err) {
        auto& st = self->state;
        auto it = st.runs.find(id);
        if (it == st.runs.end()) return;
        auto r = std::move(it->second);
        st.runs.erase(it);
        caf::anon_send_exit(r.handler, caf::exit_reason::kill);
        report(self, r.queue, r.shard, r.job,
               job_outcome::failure("the handler failed: " + self->system().render(err), true));
      });
}

/// Leases work for the in-process workers of `queue` while they have room.
void pump(broker_pointer self, const std::string& queue) {
  auto& st = self->state;
  auto pit = st.pools.find(queue);
  if (pit == st.pools.end()) return;
  auto& p = pit->second;
  if (p.leasing || p.running >= p.workers) return;
  auto shard = pick(st, queue, &p.types);
  if (!shard) return;
  p.leasing = true;
  job_request req;
  req.op = job_op::lease;
  req.queue = queue;
  req.max = p.workers - p.running;
  // The lease outlives the handler's time, so a timed-out run is failed by the broker
  // (with its reason) rather than expired by the shard.
  req.visibility_ms = st.cfg.settings.handler_timeout_ms + 5000;
  req.types = p.types;
  req.owner = st.cfg.incarnation;
  req.from_broker = true;
  const auto s = *shard;
  const auto seen = announced(st, queue, s);
  self->request(handle(st, s), caf::infinite, std::move(req))
    .then(
      [self, queue, s, seen](job_reply& reply) {
        auto& st = self->state;
        st.pools[queue].leasing = false;
        if (reply.status != job_status::ok) {
          forget(st, queue, s, seen);
        } else {
          settle(st, queue, s, reply.ready_types, seen);
          for (auto& job : reply.jobs)
            run(self, queue, s, std::move(job));
        }
        pump(self, queue);
      },
      [self, queue, s, seen](caf::error&) {
        auto& st = self->state;
        st.pools[queue].leasing = false;
        forget(st, queue, s, seen);
        pump(self, queue);
      });
}

/// The pool of `queue`, created on first sight when the node runs any of its types.
void ensure_pool(broker_state& st, const std::string& queue) {
  if (st.pools.count(queue) != 0 || !st.cfg.handlers) return;
  auto workers = st.cfg.settings.workers_of(queue);
  if (workers == 0) return;
  auto types = st.cfg.handlers->types();
  if (types.empty()) return;
  pool p;
  p.workers = workers;
  p.types = std::move(types);
  st.pools.emplace(queue, std::move(p));
}

// -- external workers --------------------------------------------------------------------

void fill(broker_pointer self, std::uint64_t id);

void answer(broker_pointer self, std::uint64_t id) {
  auto& st = self->state;
  auto it = st.waiters.find(id);
  if (it == st.waiters.end()) return;
  job_reply r;
  r.jobs = std::move(it->second.got);
  auto sink = std::move(it->second.sink);
  st.waiters.erase(it);
  sink->deliver(std::move(r));
}

/// Wakes the first parked waiter of `queue` if a local shard has work for it.
void wake(broker_pointer self, const std::string& queue) {
  auto& st = self->state;
  auto pit = st.parked.find(queue);
  if (pit == st.parked.end()) return;
  auto& ids = pit->second;
  while (!ids.empty()) {
    auto it = st.waiters.find(ids.front());
    if (it == st.waiters.end() || !it->second.parked) {
      ids.pop_front(); // answered meanwhile
      continue;
    }
    if (!pick(st, queue, nullptr)) return;
    ids.pop_front();
    it->second.parked = false;
    fill(self, it->first);
    return;
  }
}

void park(broker_pointer self, std::uint64_t id) {
  auto& st = self->state;
  auto& w = st.waiters.at(id);
  if (w.parked) return;
  if (st.draining) return answer(self, id);
  w.parked = true;
  st.parked[w.req.queue].push_back(id);
  if (!st.remote.empty()) self->delayed_send(self, repoll_interval, lease_repoll_atom::value, id);
}

void fill(broker_pointer self, std::uint64_t id) {
  auto& st = self->state;
  auto it = st.waiters.find(id);
  if (it == st.waiters.end()) return;
  auto& w = it->second;
  if (w.busy) return;
  if (w.got.size() >= w.req.max) return answer(self, id);
  auto shard = pick(st, w.req.queue, nullptr);
  bool remote = false;
  if (!shard && !w.remote_todo.empty()) {
    shard = w.remote_todo.back();
    w.remote_todo.pop_back();
    remote = true;
  }
  if (!shard) {
    if (!w.got.empty() || std::chrono::steady_clock::now() >= w.deadline) return answer(self, id);
    return park(self, id);
  }
  w.busy = true;
  job_request req;
  req.op = job_op::lease;
  req.queue = w.req.queue;
  req.max = w.req.max - static_cast<std::uint32_t>(w.got.size());
  req.visibility_ms = w.req.visibility_ms;
  req.from_broker = !remote;
  const auto s = *shard;
  const auto queue = w.req.queue;
  const auto seen = remote ? 0 : announced(st, queue, s);
  self->request(handle(st, s), caf::infinite, std::move(req))
    .then(
      [self, id, s, remote, queue, seen](job_reply& reply) {
        auto& st = self->state;
        if (!remote) {
          if (reply.status == job_status::ok)
            settle(st, queue, s, reply.ready_types, seen);
          else
            forget(st, queue, s, seen);
        }
        auto it = st.waiters.find(id);
        if (it == st.waiters.end()) return; // cannot happen: answered only when not busy
        it->second.busy = false;
        for (auto& job : reply.jobs)
          it->second.got.push_back(std::move(job));
        fill(self, id);
        wake(self, queue); // others may be parked while this shard still has work
      },
      [self, id, s, remote, queue, seen](caf::error&) {
        auto& st = self->state;
        if (!remote) forget(st, queue, s, seen);
        if (auto it = st.waiters.find(id); it != st.waiters.end()) it->second.busy = false;
        fill(self, id);
      });
}

void on_lease(broker_pointer self, job_request&& req, job_sink_ptr&& sink) {
  auto& st = self->state;
  const auto id = ++st.next_waiter;
  waiter w;
  w.deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(req.wait_ms);
  w.req = std::move(req);
  w.sink = std::move(sink);
  w.remote_todo = st.remote;
  st.waiters.emplace(id, std::move(w));
  if (st.waiters.at(id).req.wait_ms > 0)
    self->delayed_send(self, std::chrono::milliseconds(st.waiters.at(id).req.wait_ms),
                       lease_timeout_atom::value, id);
  fill(self, id);
}

// -- stats -------------------------------------------------------------------------------

void on_stats(broker_pointer self, job_request&& req, job_sink_ptr&& sink) {
  auto& st = self->state;
  struct gather {
    job_sink_ptr sink;
    std::size_t pending;
    job_counts counts;
    std::string failure;
  };
  auto g = std::make_shared<gather>(gather{std::move(sink), st.cfg.shards->handles.size(), {}, {}});
  auto done = [g] {
    if (--g->pending != 0) return;
    job_reply r;
    if (!g->failure.empty()) {
      r.status = job_status::shard_unavailable;
      r.message = g->failure;
    } else {
      r.counts = g->counts;
    }
    g->sink->deliver(std::move(r));
  };
  for (const auto& shard : st.cfg.shards->handles) {
    self->request(shard, caf::infinite, req)
      .then(
        [g, done](job_reply& reply) {
          if (reply.status == job_status::ok)
            g->counts.add(reply.counts);
          else if (g->failure.empty())
            g->failure = reply.message;
          done();
        },
        [g, done, self](caf::error& err) {
          if (g->failure.empty()) g->failure = self->system().render(err);
          done();
        });
  }
}

caf::behavior running(broker_pointer self) {
  return {
    [=](actors::job_ready_atom, std::string& queue, std::string& type, std::uint32_t shard) {
      auto& st = self->state;
      if (st.local.count(shard) == 0) return;
      ++st.announcements[queue][shard];
      st.hot[queue][type].insert(shard);
      ensure_pool(st, queue);
      if (auto p = st.pools.find(queue); p != st.pools.end() && wanted(&p->second.types, type))
        pump(self, queue);
      wake(self, queue);
    },
    [=](job_request& req, job_sink_ptr& sink) {
      if (req.op == job_op::lease) return on_lease(self, std::move(req), std::move(sink));
      if (req.op == job_op::stats) return on_stats(self, std::move(req), std::move(sink));
      job_reply r;
      r.status = job_status::invalid;
      r.message = "the broker serves lease and stats only";
      sink->deliver(std::move(r));
    },
    [=](run_sweep_atom) { sweep(self); },
    [=](drain_atom) {
      // Long polls would hold the drain for their whole wait: answer them now.
      auto& st = self->state;
      st.draining = true;
      std::vector<std::uint64_t> parked;
      for (const auto& [id, w] : st.waiters)
        if (w.parked) parked.push_back(id);
      for (auto id : parked)
        answer(self, id);
    },
    [=](lease_timeout_atom, std::uint64_t id) {
      auto& st = self->state;
      if (auto it = st.waiters.find(id); it != st.waiters.end() && it->second.parked)
        answer(self, id);
    },
    [=](lease_repoll_atom, std::uint64_t id) {
      auto& st = self->state;
      auto it = st.waiters.find(id);
      if (it == st.waiters.end() || !it->second.parked) return;
      it->second.parked = false; // its entry in `parked` is skipped from now on
      it->second.remote_todo = st.remote;
      fill(self, id);
    },
  };
}

caf::behavior broker_impl(broker_pointer self, broker_config cfg) {
  auto& st = self->state;
  st.local.insert(cfg.local.begin(), cfg.local.end());
  for (std::uint32_t s = 0; s < cfg.shard_count; ++s)
    if (st.local.count(s) == 0) st.remote.push_back(s);
  st.cfg = std::move(cfg);
  // Until the shard handles are complete, everything waits in the mailbox.
  self->set_default_handler(caf::skip);
  return {
    [=](start_atom) {
      self->set_default_handler(caf::print_and_drop);
      self->become(running(self));
    },
  };
}

} // namespace

caf::actor spawn_broker(caf::actor_system& sys, broker_config cfg) {
  return sys.spawn(broker_impl, std::move(cfg));
}

void start_broker(const caf::actor& broker) {
  caf::anon_send(broker, start_atom::value);
}

void drain_broker(const caf::actor& broker) {
  caf::anon_send(broker, drain_atom::value);
}

} // namespace shoal::jobs
