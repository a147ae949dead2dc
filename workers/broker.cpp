// SPDX-License-Identifier: Apache-2.0
#include "workers/broker.hpp"

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
#include <caf/exit_reason.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "jobs/job_metrics.hpp"
#include "protocol/errors.hpp"
#include "util/json.hpp"
#include "workers/handlers.hpp"

namespace shoal::workers {
namespace {

using namespace jobs; // the messages of jobs and leases

using lease_timeout_atom = caf::atom_constant<caf::atom("lease_end")>;
using lease_repoll_atom = caf::atom_constant<caf::atom("lease_poll")>;
using start_atom = caf::atom_constant<caf::atom("start")>;
using run_sweep_atom = caf::atom_constant<caf::atom("run_sweep")>;
using cooled_atom = caf::atom_constant<caf::atom("cooled")>;
using protocol::drain_atom;
using protocol::job_ready_atom;

using clock_time = caf::actor_clock::time_point;

/// The broker's own messages besides its public interface: start, timers, the sweep.
using broker_impl = protocol::broker_actor::extend<
  caf::reacts_to<start_atom>, caf::reacts_to<lease_timeout_atom, std::uint64_t>,
  caf::reacts_to<lease_repoll_atom, std::uint64_t>, caf::reacts_to<run_sweep_atom>,
  caf::reacts_to<cooled_atom, std::string, std::uint32_t>>;

constexpr std::chrono::milliseconds repoll_interval{250};
constexpr std::chrono::milliseconds sweep_interval{100};
/// How long a local shard whose lease failed rests before it is asked again.
constexpr std::chrono::milliseconds cooldown{250};

/// The in-process workers of one queue on this node.
struct pool {
  std::uint32_t workers = 0;      ///< how many jobs may run at once
  std::uint32_t running = 0;      ///< leased and not yet reported
  bool leasing = false;           ///< a lease request is out
  std::vector<std::string> types; ///< the job types a handler is registered for
};

/// A job an in-process handler runs.
struct running_job {
  clock_time deadline;
  std::string queue;
  std::uint32_t shard;
  leased_job job;
  handler_actor handler;
};

/// An external worker's lease request, until it is answered.
struct waiter {
  queue_lease req;
  core::reply_to<leased_jobs> to;
  std::vector<leased_job> got;
  clock_time deadline;
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
  /// queue → local shards whose last lease failed: still hot, not picked until their
  /// cooldown ends.
  std::map<std::string, std::set<std::uint32_t>, std::less<>> cooling;
  bool draining = false; ///< the node is shutting down: long polls answer at once
  std::map<std::string, pool, std::less<>> pools;
  std::map<std::string, std::vector<handler_actor>, std::less<>> idle; ///< by job type
  std::map<std::uint64_t, waiter> waiters;
  std::map<std::string, std::deque<std::uint64_t>, std::less<>> parked; ///< by queue, in order
  std::uint64_t next_waiter = 0;
  std::unordered_map<std::uint64_t, running_job> runs; ///< by run number
  std::uint64_t next_run = 0;
  bool sweeping = false; ///< a sweep is scheduled
  bool started = false;
  std::vector<std::function<void()>> early; ///< what arrived before start_broker

  ~broker_state() {
    // Handlers end with their broker.
    for (auto& [type, handlers] : idle)
      for (auto& h : handlers)
        caf::anon_send_exit(h, caf::exit_reason::user_shutdown);
    for (auto& [id, r] : runs)
      caf::anon_send_exit(r.handler, caf::exit_reason::user_shutdown);
    for (auto& [id, w] : waiters)
      w.to.deliver(core::error{core::errc::shutting_down, "the node is shutting down"});
  }

  static inline const char* name = "shoal.jobs.broker";
};

using broker_pointer = broker_impl::stateful_pointer<broker_state>;

bool wanted(const std::vector<std::string>* types, const std::string& type) {
  return !types || std::find(types->begin(), types->end(), type) != types->end();
}

/// A local shard with due jobs of `queue` (of one of `types`, or any when null), taken
/// round robin so that no shard starves.
std::optional<std::uint32_t> pick(broker_state& st, const std::string& queue,
                                  const std::vector<std::string>* types) {
  auto q = st.hot.find(queue);
  if (q == st.hot.end()) return std::nullopt;
  const auto cool = st.cooling.find(queue);
  std::set<std::uint32_t> shards;
  for (const auto& [type, set] : q->second)
    if (wanted(types, type))
      for (auto s : set)
        if (cool == st.cooling.end() || cool->second.count(s) == 0) shards.insert(s);
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

const protocol::shard_actor& handle(broker_state& st, std::uint32_t shard) {
  return st.cfg.shards->handles[shard];
}

/// The shard that announced work: this node's own replica of it where there is one (a
/// stub could send the lease to another node, whose failure says nothing of this one).
const protocol::shard_actor& local_handle(broker_state& st, std::uint32_t shard) {
  if (st.cfg.replicas && shard < st.cfg.replicas->size() && (*st.cfg.replicas)[shard])
    return (*st.cfg.replicas)[shard];
  return handle(st, shard);
}

/// A lease from local `shard` failed with `err`. A replica that refuses because it does
/// not serve (no longer leads, is restarting or stopping) dropped its jobs with their
/// announcements: forget it, it announces afresh when it serves again. Any other failure
/// (a failing store, an unknown outcome) leaves its due jobs announced there, so it would
/// not announce them again: keep it, and ask again after a pause.
void lease_failed(broker_pointer self, const std::string& queue, std::uint32_t shard,
                  std::uint64_t seen, const caf::error& err) {
  auto& st = self->state;
  const auto e = protocol::from_caf(err);
  if (e.code() == core::errc::shard_unavailable || e.code() == core::errc::shutting_down)
    return forget(st, queue, shard, seen);
  if (!st.cooling[queue].insert(shard).second) return;
  self->delayed_send(self, cooldown, cooled_atom::value, queue, shard);
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
  (void)util::parse_json(result, ec);
  if (!ec) return result;
  return util::to_json(boost::json::value(result));
}

/// Sends a run's outcome to the replica that leased it (the leader then); one that
/// stopped serving meanwhile refuses, and the outcome goes through the shard's stub to
/// whichever replica leads now. Either way the slot frees: the shard answers even a lease
/// that went stale.
template <class Msg>
void send_outcome(broker_pointer self, const std::string& queue, std::uint32_t shard, Msg msg) {
  auto done = [self, queue] {
    auto& p = self->state.pools[queue];
    if (p.running > 0) --p.running;
    pump(self, queue);
  };
  auto& st = self->state;
  const auto& local = local_handle(st, shard);
  const bool has_stub = local != handle(st, shard);
  std::optional<Msg> again;
  if (has_stub) again = msg;
  protocol::ask(self, local, caf::infinite, std::move(msg))
    .then([done](job_view&) { done(); },
          [self, shard, done, again = std::move(again)](caf::error& err) mutable {
            if (!again || protocol::from_caf(err).code() != core::errc::shard_unavailable)
              return done();
            protocol::ask(self, handle(self->state, shard), caf::infinite, std::move(*again))
              .then([done](job_view&) { done(); }, [done](caf::error&) { done(); });
          });
}

void report(broker_pointer self, const std::string& queue, std::uint32_t shard,
            const leased_job& job, job_outcome&& outcome) {
  if (outcome.ok)
    send_outcome(self, queue, shard,
                 job_complete{job.id, job.lease_id, as_json(std::move(outcome.result)), true});
  else
    send_outcome(self, queue, shard,
                 job_fail{job.id, job.lease_id, std::move(outcome.error), outcome.retryable, true});
}

/// Fails the runs past their handler's time; runs every 100 ms while any run. One sweep
/// instead of a timeout per request: CAF registers each request timeout with its clock
/// thread (a mutex and a wake-up per job).
void sweep(broker_pointer self) {
  auto& st = self->state;
  const auto now = self->clock().now();
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
  st.runs.emplace(id, running_job{self->clock().now()
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
  job_lease req;
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
  protocol::ask(self, local_handle(st, s), caf::infinite, std::move(req))
    .then(
      [self, queue, s, seen](lease_grant& grant) {
        auto& st = self->state;
        st.pools[queue].leasing = false;
        settle(st, queue, s, grant.ready_types, seen);
        for (auto& job : grant.jobs)
          run(self, queue, s, std::move(job));
        pump(self, queue);
      },
      [self, queue, s, seen](caf::error& err) {
        auto& st = self->state;
        st.pools[queue].leasing = false;
        lease_failed(self, queue, s, seen, err);
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

void count_waiters(const broker_state& st) {
  if (st.cfg.metrics)
    st.cfg.metrics->lease_waiters.set(static_cast<std::int64_t>(st.waiters.size()));
}

void answer(broker_pointer self, std::uint64_t id) {
  auto& st = self->state;
  auto it = st.waiters.find(id);
  if (it == st.waiters.end()) return;
  leased_jobs r{std::move(it->second.got)};
  auto to = std::move(it->second.to);
  st.waiters.erase(it);
  count_waiters(st);
  to.deliver(std::move(r));
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
    if (!w.got.empty() || self->clock().now() >= w.deadline) return answer(self, id);
    return park(self, id);
  }
  w.busy = true;
  job_lease req;
  req.queue = w.req.queue;
  req.max = w.req.max - static_cast<std::uint32_t>(w.got.size());
  req.visibility_ms = w.req.visibility_ms;
  req.from_broker = !remote;
  const auto s = *shard;
  const auto queue = w.req.queue;
  const auto seen = remote ? 0 : announced(st, queue, s);
  protocol::ask(self, remote ? handle(st, s) : local_handle(st, s), caf::infinite, std::move(req))
    .then(
      [self, id, s, remote, queue, seen](lease_grant& grant) {
        auto& st = self->state;
        if (!remote) settle(st, queue, s, grant.ready_types, seen);
        auto it = st.waiters.find(id);
        if (it == st.waiters.end()) return; // cannot happen: answered only when not busy
        it->second.busy = false;
        for (auto& job : grant.jobs)
          it->second.got.push_back(std::move(job));
        fill(self, id);
        wake(self, queue); // others may be parked while this shard still has work
      },
      [self, id, s, remote, queue, seen](caf::error& err) {
        auto& st = self->state;
        if (!remote) lease_failed(self, queue, s, seen, err);
        if (auto it = st.waiters.find(id); it != st.waiters.end()) it->second.busy = false;
        fill(self, id);
      });
}

void on_lease(broker_pointer self, queue_lease&& req, core::reply_to<leased_jobs>&& to) {
  auto& st = self->state;
  const auto id = ++st.next_waiter;
  waiter w;
  w.deadline = self->clock().now() + std::chrono::milliseconds(req.wait_ms);
  w.req = std::move(req);
  w.to = std::move(to);
  w.remote_todo = st.remote;
  st.waiters.emplace(id, std::move(w));
  count_waiters(st);
  if (st.waiters.at(id).req.wait_ms > 0)
    self->delayed_send(self, std::chrono::milliseconds(st.waiters.at(id).req.wait_ms),
                       lease_timeout_atom::value, id);
  fill(self, id);
}

void on_ready(broker_pointer self, std::string& queue, std::string& type, std::uint32_t shard) {
  auto& st = self->state;
  if (st.local.count(shard) == 0) return;
  ++st.announcements[queue][shard];
  st.hot[queue][type].insert(shard);
  ensure_pool(st, queue);
  if (auto p = st.pools.find(queue); p != st.pools.end() && wanted(&p->second.types, type))
    pump(self, queue);
  wake(self, queue);
}

void on_drain(broker_pointer self) {
  // Long polls would hold the drain for their whole wait: answer them now.
  auto& st = self->state;
  st.draining = true;
  std::vector<std::uint64_t> parked;
  for (const auto& [id, w] : st.waiters)
    if (w.parked) parked.push_back(id);
  for (auto id : parked)
    answer(self, id);
}

broker_impl::behavior_type broker_behavior(broker_pointer self, broker_config cfg) {
  auto& st = self->state;
  st.local.insert(cfg.local.begin(), cfg.local.end());
  for (std::uint32_t s = 0; s < cfg.shard_count; ++s)
    if (st.local.count(s) == 0 || cfg.ask_all) st.remote.push_back(s);
  st.cfg = std::move(cfg);
  // Until the shard handles are complete, what arrives waits (in order) for start.
  auto later = [self](auto fn) {
    auto& st = self->state;
    if (st.started) return fn();
    st.early.push_back(std::move(fn));
  };
  return {
    [=](job_ready_atom, std::string& queue, std::string& type, std::uint32_t shard) {
      later([=]() mutable { on_ready(self, queue, type, shard); });
    },
    protocol::handler<queue_lease>(self,
                                   [=](queue_lease&& req, core::reply_to<leased_jobs> to) {
                                     later([=]() mutable {
                                       on_lease(self, std::move(req), std::move(to));
                                     });
                                   }),
    [=](drain_atom) { later([=] { on_drain(self); }); },
    [=](start_atom) {
      auto& st = self->state;
      st.started = true;
      auto early = std::move(st.early);
      for (auto& fn : early)
        fn();
    },
    [=](run_sweep_atom) { sweep(self); },
    [=](cooled_atom, const std::string& queue, std::uint32_t shard) {
      auto& st = self->state;
      if (auto c = st.cooling.find(queue); c != st.cooling.end()) c->second.erase(shard);
      pump(self, queue);
      wake(self, queue);
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

} // namespace

protocol::broker_actor spawn_broker(caf::actor_system& sys, broker_config cfg) {
  return caf::actor_cast<protocol::broker_actor>(sys.spawn(broker_behavior, std::move(cfg)));
}

void start_broker(const protocol::broker_actor& broker) {
  caf::anon_send(caf::actor_cast<broker_impl>(broker), start_atom::value);
}

void drain_broker(const protocol::broker_actor& broker) {
  caf::anon_send(broker, drain_atom::value);
}

} // namespace shoal::workers
