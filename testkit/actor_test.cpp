// SPDX-License-Identifier: Apache-2.0
#include "testkit/actor_test.hpp"

#include <stdlib.h>

#include <algorithm>
#include <ostream>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <unordered_set>
#include <utility>
#include <vector>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <caf/abstract_actor.hpp>
#include <caf/atom.hpp>
#include <caf/make_message.hpp>
#include <caf/message_id.hpp>
#include <caf/message_priority.hpp>
#include <caf/send.hpp>
#include <caf/system_messages.hpp>

#include "actors/messages.hpp"
#include "cluster/shard_map.hpp"
#include "host/shard_host.hpp"
#include "protocol/type_ids.hpp"
#include "storage/store.hpp"
#include "util/json.hpp"

namespace shoal::testkit {

namespace {

/// The configuration of a node on the deterministic scheduler.
struct deterministic_config : caf::actor_system_config {
  deterministic_config() {
    set("scheduler.policy", caf::atom("testing"));
    set("logger.file-verbosity", caf::atom("quiet"));
    set("logger.console-verbosity", caf::atom("quiet"));
    protocol::add_message_types(*this);
  }
};

/// Creates `<tmp>/shoal-testkit-XXXXXX`.
std::filesystem::path make_temp_dir() {
  auto pattern = (std::filesystem::temp_directory_path() / "shoal-testkit-XXXXXX").string();
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (!::mkdtemp(buf.data()))
    throw std::system_error(errno, std::generic_category(), "mkdtemp " + pattern);
  return std::filesystem::path(buf.data());
}

/// Enqueues an exit with exit_reason::kill at high priority: the actor handles it before
/// anything already in its mailbox, so it runs no further message (what a kill -9 does).
void kill_now(caf::abstract_actor* a) {
  a->enqueue(nullptr, caf::make_message_id(caf::message_priority::high),
             caf::make_message(caf::exit_msg{a->address(), caf::exit_reason::kill}), nullptr);
}

} // namespace

// -- reply and pending_reply ---------------------------------------------------

void PrintTo(const reply& r, std::ostream* os) {
  *os << "{status " << r.status;
  if (r.ok())
    *os << ", body " << util::to_json(r.body);
  else
    *os << ", code \"" << r.code << "\", message \"" << r.message << '"';
  *os << '}';
}

/// Records what a shard delivers for one call, like the HTTP edge's answer.
class pending_reply::capture final : public core::answer<actors::actor_result> {
public:
  void deliver(core::result<actors::actor_result>&& r) override {
    ++deliveries;
    last = std::move(r);
  }

  int deliveries = 0;
  std::optional<core::result<actors::actor_result>> last;
};

bool pending_reply::ready() const noexcept {
  return capture_->deliveries > 0;
}

int pending_reply::deliveries() const noexcept {
  return capture_->deliveries;
}

reply pending_reply::get() const {
  if (!ready()) return reply{0, nullptr, "no_reply", "no reply arrived"};
  const auto& r = *capture_->last;
  if (!r) {
    // As the HTTP edge renders it: the one table of core/error.hpp.
    const auto& e = r.error();
    return reply{core::http_status(e), nullptr, std::string(core::api_code(e)), e.message()};
  }
  reply out{200, nullptr, {}, {}};
  if (!r->json.empty()) {
    boost::json::error_code ec;
    out.body = util::parse_json(r->json, ec);
    if (ec) {
      out.status = 0;
      out.code = "invalid_reply_body";
      out.message = "the reply body is not JSON: " + r->json;
    }
  }
  return out;
}

// -- actor_test ----------------------------------------------------------------

actor_test::actor_test()
    : cfg_(std::make_unique<deterministic_config>()),
      sys_(std::make_unique<caf::actor_system>(*cfg_)),
      sched_(&dynamic_cast<caf::scheduler::test_coordinator&>(sys_->scheduler())) {}

actor_test::~actor_test() {
  if (started_) {
    stop_node(caf::exit_reason::user_shutdown);
    close_store();
  }
  // Any helper actor the test spawned and left running gets a chance to end, too.
  sched_->run();
  shards_.handles.clear();
  syncer_ = nullptr;
  if (!dir_.empty() && !::getenv("SHOAL_KEEP_TEMP")) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

actors::actor_registry& actor_test::registry() {
  if (started_)
    throw std::logic_error("actor_test::registry(): the node has started; register types "
                           "before the first call");
  return registry_;
}

testkit::settings& actor_test::configure() {
  if (started_)
    throw std::logic_error("actor_test::configure(): the node has started; change settings "
                           "before the first call");
  return settings_;
}

void actor_test::start() {
  if (started_) return;
  if (settings_.shards == 0)
    throw std::logic_error("actor_test: settings.shards must be at least 1");
  dir_ = make_temp_dir();
  open_store();
  started_ = true;
  spawn_node();
}

void actor_test::open_store() {
  storage::rocksdb_options opts;
  opts.path = dir_.string();
  opts.shards = settings_.shards;
  // Small buffers: a test writes little, and many tests may run at once.
  opts.block_cache_bytes = 8u << 20;
  opts.write_buffer_bytes = 1u << 20;
  auto opened = storage::open_rocksdb_store(opts);
  if (!opened)
    throw std::runtime_error("actor_test: cannot open the store at " + opts.path + ": "
                             + opened.error().to_string());
  store_ = std::move(*opened);
}

void actor_test::close_store() {
  if (!store_) return;
  if (auto s = store_->close(); !s)
    ADD_FAILURE() << "closing the store failed: " << s.error().to_string();
  store_.reset();
}

void actor_test::spawn_node() {
  // As app/node.cpp does, except that the syncer is not detached: on the deterministic
  // scheduler it runs as an ordinary job, so a test sees when the fsync happens.
  metrics_ = std::make_unique<actors::actor_metrics>(registry_);
  if (settings_.sync) syncer_ = host::spawn_wal_syncer(*sys_, *store_, false);
  host::host_config base;
  base.store = store_.get();
  base.sync = settings_.sync;
  base.syncer = syncer_;
  base.peers = &shards_; // filled below, before any message can arrive
  base.call_timeout = settings_.call_timeout;
  base.actors.registry = &registry_;
  base.actors.metrics = metrics_.get();
  base.actors.idle_timeout = settings_.idle_timeout;
  base.actors.max_active = settings_.max_active;
  shards_.handles.clear();
  shards_.handles.reserve(settings_.shards);
  for (std::uint32_t i = 0; i < settings_.shards; ++i) {
    auto cfg = base;
    cfg.index = i;
    shards_.handles.push_back(host::spawn_shard_host(*sys_, std::move(cfg)));
  }
}

void actor_test::stop_node(caf::exit_reason reason) {
  // A shard's hosted actors end with it (it sends them an exit, never a passivation).
  for (auto& shard : shards_.handles)
    caf::anon_send_exit(shard, reason);
  if (syncer_) caf::anon_send_exit(syncer_, reason);
  sched_->run();
  shards_.handles.clear();
  syncer_ = nullptr;
}

pending_reply actor_test::send_raw(const std::string& type, const std::string& id,
                                   const std::string& method, std::string args_text) {
  start();
  auto c = std::make_shared<pending_reply::capture>();
  caf::anon_send(shards_.handles[shard_of(type, id)],
                 actors::actor_call{type, id, method, std::move(args_text), 0},
                 core::reply_to<actors::actor_result>{c});
  return pending_reply{std::move(c)};
}

pending_reply actor_test::send(const std::string& type, const std::string& id,
                               const std::string& method, boost::json::object args) {
  return send_raw(type, id, method, util::to_json(args));
}

reply actor_test::call_raw(const std::string& type, const std::string& id,
                           const std::string& method, std::string args_text) {
  auto p = send_raw(type, id, method, std::move(args_text));
  run();
  EXPECT_EQ(p.deliveries(), 1) << "call " << type << "/" << id << "." << method
                               << ": expected exactly one reply after running the scheduler";
  return p.get();
}

reply actor_test::call(const std::string& type, const std::string& id, const std::string& method,
                       boost::json::object args) {
  return call_raw(type, id, method, util::to_json(args));
}

std::optional<boost::json::object> actor_test::persisted_state(const std::string& type,
                                                               const std::string& id) {
  start();
  auto stored = store_->shard(shard_of(type, id)).get(actors::actor_state_key(type, id));
  if (!stored && stored.error() == core::errc::not_found) return std::nullopt;
  if (!stored) {
    ADD_FAILURE() << "reading the state of " << type << "/" << id << ": "
                  << stored.error().to_string();
    return std::nullopt;
  }
  const auto& raw = *stored;
  if (raw.empty() || raw[0] != '\x01') {
    ADD_FAILURE() << "the state of " << type << "/" << id << " has an unknown format byte";
    return std::nullopt;
  }
  boost::json::error_code ec;
  auto v = util::parse_json(std::string_view(raw).substr(1), ec);
  if (ec || !v.is_object()) {
    ADD_FAILURE() << "the state of " << type << "/" << id
                  << " is not a JSON object: " << raw.substr(1);
    return std::nullopt;
  }
  return std::move(v.get_object());
}

void actor_test::passivate_idle() {
  start();
  advance_time(std::max(settings_.idle_timeout, std::chrono::milliseconds(10)));
}

void actor_test::kill_node() {
  // Every actor that is about to run gets a kill it handles first, so none runs another
  // message: not the shards, the syncer, the hosted actors (which also get an exit from
  // their dying shard) nor anything the test spawned. Queued calls are lost unanswered.
  std::unordered_set<caf::abstract_actor*> killed;
  auto kill = [&killed](caf::abstract_actor* a) {
    if (a && killed.insert(a).second) kill_now(a);
  };
  for (auto& shard : shards_.handles)
    kill(caf::actor_cast<caf::abstract_actor*>(shard));
  if (syncer_) kill(caf::actor_cast<caf::abstract_actor*>(syncer_));
  do {
    // Copy first: a kill may add its target to the job queue.
    std::vector<caf::resumable*> jobs(sched_->jobs.begin(), sched_->jobs.end());
    for (auto* job : jobs)
      kill(dynamic_cast<caf::abstract_actor*>(job));
  } while (sched_->try_run_once());
  shards_.handles.clear();
  syncer_ = nullptr;
}

void actor_test::crash_and_restart() {
  start();
  kill_node();
  // The old metrics die with the "process"; nothing refers to them any more.
  metrics_.reset();
  close_store();
  open_store();
  spawn_node();
}

actors::actor_metrics::type_metrics* actor_test::type_metrics(const std::string& type) {
  start();
  auto* t = metrics_->find(type);
  if (!t) ADD_FAILURE() << "no metrics for actor type '" << type << "': is it registered?";
  return t;
}

std::int64_t actor_test::active(const std::string& type) {
  auto* t = type_metrics(type);
  return t ? t->active.value() : 0;
}

std::uint64_t actor_test::activations(const std::string& type) {
  auto* t = type_metrics(type);
  return t ? t->activations.value() : 0;
}

std::uint64_t actor_test::passivations(const std::string& type) {
  auto* t = type_metrics(type);
  return t ? t->passivations.value() : 0;
}

actors::actor_metrics& actor_test::metrics() {
  start();
  return *metrics_;
}

std::size_t actor_test::run() {
  return sched_->run();
}

void actor_test::advance_time(std::chrono::milliseconds d) {
  sched_->advance_time(std::chrono::duration_cast<caf::timespan>(d));
  run();
}

const protocol::shard_handles& actor_test::shards() {
  start();
  return shards_;
}

std::uint32_t actor_test::shard_of(const std::string& type, const std::string& id) const {
  return cluster::shard_map{settings_.shards}.shard_of(type, id);
}

const host::wal_syncer_actor& actor_test::syncer() {
  start();
  return syncer_;
}

storage::store& actor_test::store() {
  start();
  return *store_;
}

} // namespace shoal::testkit
