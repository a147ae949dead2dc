// SPDX-License-Identifier: Apache-2.0
#include "documents/module.hpp"

#include <type_traits>
#include <utility>

#include "documents/documents.hpp"
#include "documents/metrics.hpp"

namespace shoal::documents {

/// A collection_stats request in progress: its view, where it stopped, what it counted.
struct module::stats_scan {
  std::unique_ptr<storage::shard_view> view;
  std::string prefix;
  std::string from;
  std::string field;
  field_stats stats;
  core::reply_to<field_stats> to;
};

module::module(shard::context& ctx, config cfg,
               std::vector<shard::doc_observer*> observers) :ctx_(ctx),
  cfg_(cfg), observers_(std::move(observers)), cache_(cfg.cache_bytes) {}

module::~module() {
  if (cfg_.metrics) cfg_.metrics->cache_bytes.add(-static_cast<std::int64_t>(cache_.bytes()));
}

void module::refuse_writes(core::error why) {
  refused_ = std::move(why);
}

void module::cache_changed(std::size_t bytes_before) {
  if (cfg_.metrics)
    cfg_.metrics->cache_bytes.add(static_cast<std::int64_t>(cache_.bytes())
                                  - static_cast<std::int64_t>(bytes_before));
}

core::result<std::optional<std::string>> module::load(const std::string& key, bool count) {
  auto* m = count ? cfg_.metrics : nullptr;
  if (cache_.enabled()) {
    if (const auto* cached = cache_.get(key)) {
      if (m) m->cache_hits.inc();
      return std::optional<std::string>(*cached);
    }
  }
  if (m) m->cache_misses.inc();
  auto raw = ctx_.store().get(key);
  if (!raw) {
    if (raw.error() == core::errc::not_found) return std::optional<std::string>();
    return std::move(raw).error();
  }
  // Only reads fill the cache: caching what is written but never read would evict what
  // is read, and costs every write a copy.
  if (cache_.enabled() && count && decode(*raw)) {
    const auto before = cache_.bytes();
    cache_.put(key, *raw);
    cache_changed(before);
  }
  return std::optional<std::string>(std::move(*raw));
}

template <class T>
void module::answer_about(const std::string& key, core::reply_to<T> to, core::result<T> r) {
  if (!ctx_.pending(key)) return to.deliver(std::move(r));
  ctx_.after_durable(key, [to, r = std::move(r)](core::result<void> durable) mutable {
    if (durable) return to.deliver(std::move(r));
    // A write that was made and then not confirmed may be kept: unknown, not refused.
    if constexpr (std::is_same_v<T, doc_written>)
      if (r) return to.deliver(shard::after_write_failed(std::move(durable).error()));
    to.deliver(std::move(durable).error());
  });
}

void module::serve(doc_get&& req, core::reply_to<stored_doc> to) {
  auto key = documents::key(req.collection, req.id);
  auto stored = load(key, true);
  if (!stored) return answer_about<stored_doc>(key, std::move(to), std::move(stored).error());
  std::optional<record> current;
  if (*stored) {
    current = decode(**stored);
    if (!current)
      return answer_about<stored_doc>(
        key, std::move(to), core::error{core::errc::internal, "stored record is corrupt"});
  }
  answer_about(key, std::move(to), read(req, current));
}

void module::serve(doc_write&& req, core::reply_to<doc_written> to) {
  auto key = documents::key(req.collection, req.id);
  if (refused_) return answer_about<doc_written>(key, std::move(to), *refused_);
  auto stored = load(key, false);
  if (!stored) return answer_about<doc_written>(key, std::move(to), std::move(stored).error());
  std::optional<record> current;
  if (*stored) {
    current = decode(**stored);
    if (!current)
      return answer_about<doc_written>(
        key, std::move(to), core::error{core::errc::internal, "stored record is corrupt"});
  }
  auto plan = plan_write(req, current);
  if (!plan) return answer_about<doc_written>(key, std::move(to), std::move(plan).error());
  if (!plan->write) return answer_about<doc_written>(key, std::move(to), plan->reply);

  // The document, its index entries and its change event: one batch, so a crash keeps
  // all or none of them.
  const auto next = decode(plan->value);
  shard::doc_change change;
  change.collection = req.collection;
  change.id = req.id;
  change.before = current && current->live() ? current->json : std::string_view{};
  change.after = next && next->live() ? next->json : std::string_view{};
  change.version = plan->reply.version;
  change.time_ms = ctx_.wall_ms();
  storage::write_batch batch;
  for (auto* o : observers_)
    if (auto r = o->prepare(change, batch); !r)
      return answer_about<doc_written>(key, std::move(to), std::move(r).error());
  batch.put(key, plan->value);
  // The reply waits for this write to be durable through the barrier on its key below
  // (at once without storage.sync), so the commit needs no completion of its own.
  if (auto committed = ctx_.commit(std::move(batch), nullptr); !committed)
    return to.deliver(std::move(committed).error());
  for (auto* o : observers_)
    o->applied(change);
  // Last: `change.before` may point into the cached record this replaces.
  if (cache_.enabled()) {
    const auto before = cache_.bytes();
    cache_.refresh(key, std::move(plan->value));
    cache_changed(before);
  }
  answer_about<doc_written>(key, std::move(to), plan->reply);
}

void module::serve(collection_stats&& req, core::reply_to<field_stats> to) {
  auto scan = std::make_shared<stats_scan>();
  scan->view = ctx_.store().snapshot();
  if (!scan->view) return to.deliver(core::error{core::errc::shutting_down, "the store is closed"});
  scan->prefix = collection_prefix(req.collection);
  scan->field = std::move(req.field);
  scan->to = std::move(to);
  step(scan);
}

void module::step(const std::shared_ptr<stats_scan>& scan) {
  std::size_t docs = 0;
  std::size_t bytes = 0;
  bool more = false;
  auto r = scan->view->scan(
    scan->prefix, scan->from, false, [&](std::string_view key, std::string_view value) {
      if (docs >= shard::scan_step_keys || bytes >= shard::scan_step_bytes) {
        more = true;
        scan->from.assign(key);
        return false;
      }
      ++docs;
      bytes += value.size();
      auto rec = decode(value);
      if (rec && rec->live()) scan->stats.add_document(rec->json, scan->field);
      return true;
    });
  if (!r) return scan->to.deliver(std::move(r).error());
  if (more) return ctx_.defer([this, scan] { step(scan); });
  // What the scan counted may include writes still waiting for their fsync.
  ctx_.after_all_durable([scan](core::result<void> durable) {
    if (!durable) return scan->to.deliver(std::move(durable).error());
    scan->to.deliver(std::move(scan->stats));
  });
}

} // namespace shoal::documents
