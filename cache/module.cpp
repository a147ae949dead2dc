// SPDX-License-Identifier: Apache-2.0
#include "cache/module.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "cache/metrics.hpp"

namespace shoal::cache {

namespace {

constexpr std::chrono::seconds expiry_interval{1};
constexpr std::size_t expiry_batch = 10000; ///< entries removed per tick at most

} // namespace

module::module(shard::context& ctx, config cfg)
  // Versions start from the clock (in microseconds' worth of room per ms), so an ETag a
  // client kept from before a restart of the node does not match a new entry.
  :ctx_(ctx),
  cfg_(cfg), cache_(cfg.max_bytes), last_version_(ctx.wall_ms() * 1000) {}

module::~module() {
  if (timer_) ctx_.cancel(*timer_);
  if (auto* m = cfg_.metrics) {
    m->bytes.add(-static_cast<std::int64_t>(cache_.bytes()));
    m->entries.add(-static_cast<std::int64_t>(cache_.size()));
  }
}

void module::account(std::size_t bytes, std::size_t size, std::uint64_t evictions) {
  if (auto* m = cfg_.metrics) {
    m->bytes.add(static_cast<std::int64_t>(cache_.bytes()) - static_cast<std::int64_t>(bytes));
    m->entries.add(static_cast<std::int64_t>(cache_.size()) - static_cast<std::int64_t>(size));
    m->evictions.inc(cache_.evictions() - evictions);
  }
}

void module::serve(cache_get&& req, core::reply_to<cache_entry> to) {
  const auto bytes = cache_.bytes();
  const auto size = cache_.size();
  const auto evictions = cache_.evictions();
  const auto* e = cache_.get(req.key, ctx_.wall_ms());
  if (auto* m = cfg_.metrics) (e ? m->hits : m->misses).inc();
  account(bytes, size, evictions); // a get removes the expired entry it finds
  if (!e) return to.deliver(core::error{core::errc::not_found, "no such cache entry"});
  to.deliver(cache_entry{e->value, e->content_type, e->version});
}

void module::serve(cache_put&& req, core::reply_to<cache_stored> to) {
  const auto now = ctx_.wall_ms();
  if (req.only_if_absent || req.only_if_present || !req.if_versions.empty()) {
    const auto* current = cache_.peek(req.key, now);
    const bool holds =
      (!req.only_if_absent || !current) && (!req.only_if_present || current)
      && (req.if_versions.empty()
          || (current
              && std::find(req.if_versions.begin(), req.if_versions.end(), current->version)
                   != req.if_versions.end()));
    if (!holds)
      return to.deliver(core::error{core::errc::precondition_failed,
                                    !current             ? "there is no live entry of this key"
                                    : req.only_if_absent ? "the key holds a live entry"
                                                         : "the entry's version does not match"});
  }
  auto stored = store(req.key, std::move(req.value), std::move(req.content_type), now + req.ttl_ms);
  if (!stored) return to.deliver(std::move(stored).error());
  to.deliver(cache_stored{*stored});
}

core::result<std::uint64_t> module::store(const std::string& key, std::string value,
                                          std::string content_type, std::uint64_t expires_ms) {
  const auto bytes = cache_.bytes();
  const auto size = cache_.size();
  const auto evictions = cache_.evictions();
  const auto version = ++last_version_;
  const auto put = cache_.put(key, std::move(value), std::move(content_type), expires_ms, version);
  account(bytes, size, evictions);
  schedule_expiry();
  if (put == ttl_cache::put_result::too_large)
    return core::error{core::errc::too_large, "value_too_large",
                       "the entry is larger than this shard's share of cache.max_bytes ("
                         + std::to_string(cache_.max_bytes()) + " bytes)"};
  return version;
}

void module::serve(cache_delete&& req, core::reply_to<cache_deleted> to) {
  const auto bytes = cache_.bytes();
  const auto size = cache_.size();
  const auto evictions = cache_.evictions();
  const bool found = cache_.erase(req.key, ctx_.wall_ms());
  account(bytes, size, evictions);
  to.deliver(cache_deleted{found});
}

namespace {

/// The integer an entry holds: its whole value, as JSON writes one (an optional minus,
/// then digits); nullopt for anything else.
std::optional<std::int64_t> counter_of(std::string_view value) {
  std::int64_t n = 0;
  if (value.empty() || value.front() == '+') return std::nullopt;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
  if (ec != std::errc{} || end != value.data() + value.size()) return std::nullopt;
  return n;
}

} // namespace

void module::serve(cache_increment&& req, core::reply_to<cache_count> to) {
  const auto now = ctx_.wall_ms();
  std::int64_t value = req.by;
  std::uint64_t expires = now + req.ttl_ms;
  const auto* current = cache_.peek(req.key, now);
  if (current) {
    auto held = counter_of(current->value);
    if (!held)
      return to.deliver(core::error{core::errc::conflict, "not_a_counter",
                                    "the entry of this key does not hold an integer"});
    if (__builtin_add_overflow(*held, req.by, &value))
      return to.deliver(core::error{core::errc::conflict, "counter_overflow",
                                    "the sum leaves the range of a 64-bit integer"});
    expires = current->expires_at_ms; // a window ends when it ends, however often it counts
  }
  const bool created = !current; // `current` dangles once the entry is replaced
  auto stored = store(req.key, std::to_string(value), "application/json", expires);
  if (!stored) return to.deliver(std::move(stored).error());
  to.deliver(cache_count{value, *stored, created});
}

void module::schedule_expiry() {
  if (timer_ || cache_.size() == 0) return;
  timer_ = ctx_.schedule(ctx_.now() + expiry_interval, [this] {
    timer_.reset();
    expire();
    schedule_expiry();
  });
}

void module::expire() {
  const auto bytes = cache_.bytes();
  const auto size = cache_.size();
  const auto evictions = cache_.evictions();
  cache_.expire(ctx_.wall_ms(), expiry_batch);
  account(bytes, size, evictions);
}

} // namespace shoal::cache
