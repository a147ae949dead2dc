// SPDX-License-Identifier: Apache-2.0
// The RocksDB implementation of `store`: the only file that includes <rocksdb/...>.
// `open_rocksdb_store` is declared in "storage/store.hpp".
#include "storage/store.hpp"

#include <algorithm>
#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <mutex>
#include <set>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <rocksdb/cache.h>
#include <rocksdb/convenience.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/listener.h>
#include <rocksdb/options.h>
#include <rocksdb/snapshot.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

namespace shoal::storage {

namespace {

/// Column family names carry five digits: "shard-00000" … "shard-99999".
constexpr std::uint32_t max_shards = 100000;

/// Keys in the default column family that describe the layout of the directory.
constexpr const char* meta_shards_key = "shoal.meta.shards";
constexpr const char* meta_format_key = "shoal.meta.format";
constexpr const char* meta_layout_key = "shoal.meta.layout";
constexpr const char* format_version = "1";

/// What went wrong, in words that name no file: the message of a runtime error reaches
/// clients, and RocksDB's own text carries the paths of the data directory.
std::string describe(const rocksdb::Status& s) {
  if (s.IsNoSpace()) return "no space left on the data volume";
  switch (s.code()) {
  case rocksdb::Status::kCorruption:
    return "stored data is corrupt";
  case rocksdb::Status::kShutdownInProgress:
    return "the store is shutting down";
  case rocksdb::Status::kNotSupported:
    return "the store is read-only";
  case rocksdb::Status::kIOError:
    return "the data volume failed an I/O operation";
  case rocksdb::Status::kBusy:
  case rocksdb::Status::kTryAgain:
  case rocksdb::Status::kTimedOut:
    return "the storage engine is busy";
  default:
    return "the storage engine failed";
  }
}

errc code_of(const rocksdb::Status& s) {
  switch (s.code()) {
  case rocksdb::Status::kNotFound:
    return errc::not_found;
  case rocksdb::Status::kCorruption:
    return errc::corrupt;
  case rocksdb::Status::kShutdownInProgress:
    return errc::shutting_down;
  default: // kIOError and everything else: the engine could not do what was asked of it
    return errc::storage_failed;
  }
}

/// The one place where a `rocksdb::Status` of a running store becomes a `core::error`.
error to_error(const rocksdb::Status& s) {
  if (s.IsNotFound()) return error{errc::not_found, {}};
  return {code_of(s), describe(s)};
}

/// A failure while opening, for the operator: RocksDB's whole text, paths included.
error to_open_error(const rocksdb::Status& s) {
  if (s.IsNotFound()) return error{errc::not_found, s.ToString()};
  return {code_of(s), s.ToString()};
}

/// What the store knows of its ability to write, shared with the engine's listener
/// (which RocksDB calls on its own threads).
struct engine_state {
  enum problem : int { none, no_space, io_error, read_only };
  std::atomic<int> writes{none};
  std::function<void(engine_log_level, std::string_view)> log;

  void say(engine_log_level level, std::string_view text) const {
    if (log) log(level, text);
  }
};

/// The error of a failed write: a volume the engine found full says so, whatever status
/// the write itself got (a write after a compaction hit the full volume gets the
/// engine's background error, not a no-space status of its own).
error to_write_error(const rocksdb::Status& s, const engine_state& engine) {
  if (!s.IsNoSpace() && engine.writes.load() == engine_state::no_space)
    return {errc::storage_failed, describe(rocksdb::Status::NoSpace())};
  return to_error(s);
}

/// RocksDB's info log, sent to the node's log instead of a LOG file in the data
/// directory (Debian's librocksdb asserts when that file hits a full volume). Info-level
/// chatter (option dumps, compaction reports) is dropped.
class engine_logger final : public rocksdb::Logger {
public:
  explicit engine_logger(std::shared_ptr<const engine_state> state)
      : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL), state_(std::move(state)) {}

  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
  }
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    if (level < GetInfoLogLevel()) return;
    char text[1024];
    std::vsnprintf(text, sizeof text, format, ap);
    state_->say(level >= rocksdb::InfoLogLevel::ERROR_LEVEL ? engine_log_level::error
                                                            : engine_log_level::warn,
                text);
  }

private:
  std::shared_ptr<const engine_state> state_;
};

/// Follows the engine's background error: set when it stops writes (a full volume, a
/// failed WAL append), cleared when its automatic recovery succeeds.
class engine_listener final : public rocksdb::EventListener {
public:
  explicit engine_listener(std::shared_ptr<engine_state> state) : state_(std::move(state)) {}

  void OnBackgroundError(rocksdb::BackgroundErrorReason, rocksdb::Status* error) override {
    if (error == nullptr || error->ok()) return;
    state_->writes.store(error->IsNoSpace() ? engine_state::no_space : engine_state::io_error);
    state_->say(engine_log_level::error, "the store stopped writing: " + error->ToString());
  }

  void OnErrorRecoveryEnd(const rocksdb::BackgroundErrorRecoveryInfo& info) override {
    if (!info.new_bg_error.ok()) return;
    int expected = engine_state::no_space;
    if (!state_->writes.compare_exchange_strong(expected, engine_state::none)) {
      expected = engine_state::io_error;
      state_->writes.compare_exchange_strong(expected, engine_state::none);
    }
    state_->say(engine_log_level::info, "the store writes again");
  }

private:
  std::shared_ptr<engine_state> state_;
};

/// ok, or the error of `s`.
result<void> check_status(const rocksdb::Status& s) {
  if (s.ok()) return core::ok();
  return to_error(s);
}

/// ok, or the error of `s` while opening.
result<void> check_open_status(const rocksdb::Status& s) {
  if (s.ok()) return core::ok();
  return to_open_error(s);
}

error closed_error() {
  return {errc::shutting_down, "store is closed"};
}

rocksdb::Slice to_slice(std::string_view s) {
  return {s.data(), s.size()};
}

/// "shard-00042" for index 42.
std::string shard_cf_name(std::uint32_t index) {
  char name[24];
  std::snprintf(name, sizeof name, "shard-%05u", static_cast<unsigned>(index));
  return name;
}

/// The column family of the replicated shards' Raft logs (store::raft_log).
constexpr const char* raft_log_cf_name = "raft-log";

std::string incompatible_count(const std::string& path, std::string_view found,
                               std::uint32_t configured) {
  return "data directory " + path + " has " + std::string(found) + " shards, config says "
         + std::to_string(configured);
}

/// Compares the column families of an existing database with the configured layout,
/// before anything is opened for writing, so a mismatch leaves the directory untouched.
result<void> check_column_families(const rocksdb_options& options,
                                   std::vector<std::string> existing) {
  existing.erase(std::remove(existing.begin(), existing.end(), rocksdb::kDefaultColumnFamilyName),
                 existing.end());
  existing.erase(std::remove(existing.begin(), existing.end(), raft_log_cf_name), existing.end());
  if (existing.size() != options.shards) {
    return error{errc::incompatible,
                 incompatible_count(options.path, std::to_string(existing.size()), options.shards)};
  }
  // Same count: the names must be exactly shard-00000 … shard-(N-1), which sort as numbers.
  std::sort(existing.begin(), existing.end());
  for (std::uint32_t i = 0; i < options.shards; ++i) {
    if (existing[i] != shard_cf_name(i)) {
      return error{errc::incompatible, "data directory " + options.path
                                         + " has unexpected column family '" + existing[i] + "'"};
    }
  }
  return core::ok();
}

/// Reads the stored shard count from a database that exists, through a read-only open
/// that changes nothing on disk. the stored shard count (nullopt when the key is absent).
result<std::optional<std::string>> read_meta_shards(const rocksdb::DBOptions& db_options,
                                                    const std::string& path,
                                                    const std::vector<std::string>& families) {
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  descriptors.reserve(families.size());
  for (const auto& name : families)
    descriptors.emplace_back(name, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  if (auto s = rocksdb::DB::OpenForReadOnly(db_options, path, descriptors, &handles, &raw);
      !s.ok()) {
    return to_open_error(s);
  }
  std::unique_ptr<rocksdb::DB> db(raw);
  std::string value;
  auto s = db->Get(rocksdb::ReadOptions(), db->DefaultColumnFamily(), meta_shards_key, &value);
  for (auto* h : handles)
    db->DestroyColumnFamilyHandle(h);
  std::optional<std::string> out;
  if (s.ok()) {
    out = std::move(value);
  } else if (!s.IsNotFound()) {
    return to_open_error(s);
  }
  if (auto closed = db->Close(); !closed.ok()) return to_open_error(closed);
  return out;
}

/// For a creation that was interrupted: every column family present must be one of the
/// configured shards; the missing ones are created by the open that follows.
result<void> check_partial_creation(const rocksdb_options& options,
                                    const std::vector<std::string>& existing) {
  for (const auto& name : existing) {
    if (name == rocksdb::kDefaultColumnFamilyName || name == raft_log_cf_name) continue;
    bool known = false;
    for (std::uint32_t i = 0; i < options.shards && !known; ++i)
      known = name == shard_cf_name(i);
    if (!known) {
      return error{errc::incompatible, "data directory " + options.path
                                         + " has unexpected column family '" + name + "'"};
    }
  }
  return core::ok();
}

/// Column family options shared by every shard: block cache, bloom filter, compression.
rocksdb::ColumnFamilyOptions make_cf_options(const rocksdb_options& options) {
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  rocksdb::ColumnFamilyOptions cf;
  cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  cf.write_buffer_size = options.write_buffer_bytes;
  const auto supported = rocksdb::GetSupportedCompressions();
  const bool has_lz4 =
    std::find(supported.begin(), supported.end(), rocksdb::kLZ4Compression) != supported.end();
  cf.compression = has_lz4 ? rocksdb::kLZ4Compression : rocksdb::kNoCompression;
  return cf;
}

/// Reads of one column family under `ro` (the latest state, or a snapshot's).
class cf_reader {
public:
  cf_reader(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf) : db_(db), cf_(cf) {}

  result<std::string> get(const rocksdb::ReadOptions& ro, std::string_view key) {
    rocksdb::PinnableSlice pinned;
    if (auto s = db_->Get(ro, cf_, to_slice(key), &pinned); !s.ok()) return to_error(s);
    return std::string(pinned.data(), pinned.size());
  }

  result<void> scan(const rocksdb::ReadOptions& ro, std::string_view prefix, std::string_view from,
                    bool reverse, const scan_fn& fn) {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf_));
    auto has_prefix = [&](std::string_view key) { return key.substr(0, prefix.size()) == prefix; };
    if (!reverse) {
      for (it->Seek(to_slice(std::max(prefix, from))); it->Valid(); it->Next()) {
        const auto key = it->key().ToStringView();
        if (!has_prefix(key)) break;
        if (!fn(key, it->value().ToStringView())) break;
      }
      return check_status(it->status());
    }
    // The least key above the prefix's range ("" when none is: all bytes 0xff).
    std::string bound(prefix);
    while (!bound.empty() && static_cast<unsigned char>(bound.back()) == 0xff)
      bound.pop_back();
    if (!bound.empty())
      bound.back() = static_cast<char>(static_cast<unsigned char>(bound.back()) + 1);
    if (!from.empty() && (bound.empty() || from < std::string_view(bound))) {
      it->SeekForPrev(to_slice(from));
    } else if (bound.empty()) {
      it->SeekToLast();
    } else {
      // The last key before the bound (a start past the prefix starts there too).
      it->SeekForPrev(bound);
      if (it->Valid() && it->key().ToStringView() == bound) it->Prev();
    }
    for (; it->Valid(); it->Prev()) {
      const auto key = it->key().ToStringView();
      if (!has_prefix(key)) break;
      if (!fn(key, it->value().ToStringView())) break;
    }
    return check_status(it->status());
  }

protected:
  rocksdb::DB* db_;
  rocksdb::ColumnFamilyHandle* cf_;
};

class rocksdb_view;

/// The views alive on a store. close() releases their snapshots before it closes the
/// database (RocksDB refuses to close with a snapshot held, and one released after the
/// close would leak); a view destroyed earlier releases its own.
struct view_registry {
  std::mutex mutex;
  std::set<rocksdb_view*> live;
};

/// A RocksDB snapshot of one column family. It may outlive the store's close (reads then
/// fail with shutting_down), but not the store object itself.
class rocksdb_view final : public shard_view {
public:
  rocksdb_view(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf, const std::atomic<bool>& closed,
               view_registry& views)
      : reader_(db, cf), db_(db), snapshot_(db->GetSnapshot()), closed_(closed), views_(views) {
    ro_.snapshot = snapshot_;
    std::lock_guard<std::mutex> lock{views_.mutex};
    views_.live.insert(this);
  }
  ~rocksdb_view() override {
    std::lock_guard<std::mutex> lock{views_.mutex};
    // Still registered: the store is open, and the snapshot is this view's to release.
    if (views_.live.erase(this) != 0) db_->ReleaseSnapshot(snapshot_);
  }
  rocksdb_view(const rocksdb_view&) = delete;
  rocksdb_view& operator=(const rocksdb_view&) = delete;

  /// The store closes: releases the snapshot (called under the registry's lock).
  void release_for_close() {
    db_->ReleaseSnapshot(snapshot_);
  }

  result<std::string> get(std::string_view key) override {
    if (closed_.load(std::memory_order_acquire)) return closed_error();
    return reader_.get(ro_, key);
  }

  result<void> scan(std::string_view prefix, std::string_view from, bool reverse,
                    const scan_fn& fn) override {
    if (closed_.load(std::memory_order_acquire)) return closed_error();
    return reader_.scan(ro_, prefix, from, reverse, fn);
  }

private:
  cf_reader reader_;
  rocksdb::DB* db_;
  const rocksdb::Snapshot* snapshot_;
  rocksdb::ReadOptions ro_;
  const std::atomic<bool>& closed_;
  view_registry& views_;
};

/// One shard's column family. Holds no ownership: the store owns `db` and `cf` and
/// outlives this object; every call checks `closed` before touching them.
/// A shard built with `cf == nullptr` stands for an out-of-range shard index.
class rocksdb_shard final : public shard_store, private cf_reader {
public:
  rocksdb_shard(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf, const std::atomic<bool>& closed,
                view_registry& views, const engine_state& engine)
      : cf_reader(db, cf), closed_(closed), views_(views), engine_(engine) {}

  result<std::string> get(std::string_view key) override {
    if (auto st = check(); !st) return std::move(st).error();
    return cf_reader::get(rocksdb::ReadOptions(), key);
  }

  result<void> write(const write_batch& batch, bool sync) override {
    if (auto st = check(); !st) return st;
    // Reserve the header (12 bytes) plus, per record, a tag, a column family id and two
    // length varints, so the batch is built without reallocation.
    rocksdb::WriteBatch wb(12 + batch.bytes() + 16 * batch.size());
    for (const auto& op : batch.ops()) {
      rocksdb::Status s;
      switch (op.kind) {
      case write_batch::op_kind::put:
        s = wb.Put(cf_, op.key, op.value);
        break;
      case write_batch::op_kind::del:
        s = wb.Delete(cf_, op.key);
        break;
      case write_batch::op_kind::del_range:
        s = wb.DeleteRange(cf_, op.key, op.value);
        break;
      }
      if (!s.ok()) return to_error(s);
    }
    rocksdb::WriteOptions wo;
    wo.sync = sync;
    if (auto s = db_->Write(wo, &wb); !s.ok()) return to_write_error(s, engine_);
    return core::ok();
  }

  result<void> scan(std::string_view prefix, std::string_view from, bool reverse,
                    const scan_fn& fn) override {
    if (auto st = check(); !st) return st;
    return cf_reader::scan(rocksdb::ReadOptions(), prefix, from, reverse, fn);
  }

  std::unique_ptr<shard_view> snapshot() override {
    if (!check()) return nullptr;
    return std::make_unique<rocksdb_view>(db_, cf_, closed_, views_);
  }

  std::uint64_t estimate_num_keys() override {
    return int_property(rocksdb::DB::Properties::kEstimateNumKeys);
  }

  std::uint64_t live_data_bytes() override {
    return int_property(rocksdb::DB::Properties::kEstimateLiveDataSize);
  }

private:
  result<void> check() const {
    if (closed_.load(std::memory_order_acquire)) return closed_error();
    if (cf_ == nullptr) return error{errc::internal, "shard index out of range"};
    return core::ok();
  }

  /// The property's value, or 0 when the store is closed or the engine does not know it.
  std::uint64_t int_property(const std::string& name) {
    if (!check()) return 0;
    std::uint64_t value = 0;
    if (!db_->GetIntProperty(cf_, name, &value)) return 0;
    return value;
  }

  const std::atomic<bool>& closed_;
  view_registry& views_;
  const engine_state& engine_;
};

/// Owns the database and its column family handles; `handles_[0]` is the default
/// column family, `handles_[i + 1]` is shard i. Shards run concurrently on their own
/// threads; `close()` must not race with calls still in flight (the store closes last,
/// after its users stopped), but calls made after it returned are safe and fail with
/// `errc::unavailable`.
class rocksdb_store final : public store {
public:
  rocksdb_store(rocksdb::DB* db, std::vector<rocksdb::ColumnFamilyHandle*> handles,
                std::shared_ptr<engine_state> engine)
      : db_(db), handles_(std::move(handles)), engine_(std::move(engine)),
        invalid_shard_(db, nullptr, closed_, views_, *engine_) {
    // handles_: the default family, the shards in order, the Raft logs' family.
    shards_.reserve(handles_.size() - 2);
    for (std::size_t i = 1; i + 1 < handles_.size(); ++i) {
      shards_.push_back(
        std::make_unique<rocksdb_shard>(db, handles_[i], closed_, views_, *engine_));
    }
    raft_log_ = std::make_unique<rocksdb_shard>(db, handles_.back(), closed_, views_, *engine_);
  }

  rocksdb_store(const rocksdb_store&) = delete;
  rocksdb_store& operator=(const rocksdb_store&) = delete;
  rocksdb_store(rocksdb_store&&) = delete; // shards hold references to closed_
  rocksdb_store& operator=(rocksdb_store&&) = delete;

  ~rocksdb_store() override {
    // A failure here has no one to report to; call close() first to see it.
    if (!closed_.load()) (void)close();
  }

  std::uint32_t shard_count() const noexcept override {
    return static_cast<std::uint32_t>(shards_.size());
  }

  shard_store& shard(std::uint32_t index) override {
    if (index >= shards_.size()) return invalid_shard_;
    return *shards_[index];
  }

  shard_store& raft_log() override {
    return *raft_log_;
  }

  std::uint64_t latest_sequence() override {
    if (closed_.load(std::memory_order_acquire)) return final_sequence_.load();
    return db_->GetLatestSequenceNumber();
  }

  result<void> sync_wal() override {
    if (closed_.load(std::memory_order_acquire)) return closed_error();
    return check_status(db_->SyncWAL());
  }

  std::string write_problem() const override {
    switch (engine_->writes.load()) {
    case engine_state::no_space:
      return "no space left on the data volume: writes resume by themselves once space is freed";
    case engine_state::io_error:
      return "the data volume failed a write: writes resume once the engine recovers";
    case engine_state::read_only:
      return "opened read-only: the data volume was full at start-up; restart the node once "
             "space is freed";
    default:
      return {};
    }
  }

  result<void> close() override {
    if (closed_.exchange(true, std::memory_order_acq_rel)) return closed_error();
    final_sequence_.store(db_->GetLatestSequenceNumber());
    {
      // Views still alive give up their snapshots now (their reads fail from here on).
      std::lock_guard<std::mutex> lock{views_.mutex};
      for (auto* v : views_.live)
        v->release_for_close();
      views_.live.clear();
    }
    // Release everything even when a step fails; report the first failure. A store that
    // cannot write (read-only, or a full volume) is not flushed: its WAL holds every
    // acknowledged write, and the next open replays it.
    result<void> outcome = core::ok();
    if (write_problem().empty()) {
      rocksdb::FlushOptions flush;
      flush.wait = true;
      outcome = check_status(db_->Flush(flush, handles_));
    }
    for (auto* handle : handles_) {
      auto s = db_->DestroyColumnFamilyHandle(handle);
      if (outcome && !s.ok()) outcome = to_error(s);
    }
    handles_.clear();
    auto s = db_->Close();
    if (!s.ok() && !write_problem().empty()) {
      // The engine reports its background error again on close; nothing more is lost.
      engine_->say(engine_log_level::warn, "closed a store that could not write: " + s.ToString());
    } else if (outcome && !s.ok()) {
      outcome = to_error(s);
    }
    db_.reset();
    return outcome;
  }

  /// Checks the layout keys in the default column family against `options`; writes them
  /// (synced) when absent, i.e. on creation or after a creation that was interrupted.
  result<void> check_meta(const rocksdb_options& options) {
    const std::string shards = std::to_string(options.shards);
    std::string stored_shards;
    std::string stored_format;
    auto* meta = handles_[0];
    auto s = db_->Get(rocksdb::ReadOptions(), meta, meta_shards_key, &stored_shards);
    if (!s.ok() && !s.IsNotFound()) return to_open_error(s);
    const bool has_shards = s.ok();
    s = db_->Get(rocksdb::ReadOptions(), meta, meta_format_key, &stored_format);
    if (!s.ok() && !s.IsNotFound()) return to_open_error(s);
    const bool has_format = s.ok();
    if (has_shards && stored_shards != shards) {
      return error{errc::incompatible,
                   incompatible_count(options.path, stored_shards, options.shards)};
    }
    if (has_format && stored_format != format_version) {
      return error{errc::incompatible, "data directory " + options.path + " has format "
                                         + stored_format + ", this build reads format "
                                         + format_version};
    }
    std::string stored_layout;
    s = db_->Get(rocksdb::ReadOptions(), meta, meta_layout_key, &stored_layout);
    if (!s.ok() && !s.IsNotFound()) return to_open_error(s);
    const bool has_layout = s.ok() || options.layout.empty();
    if (s.ok() && !options.layout.empty() && stored_layout != options.layout) {
      return error{errc::incompatible, "data directory " + options.path + " belongs to "
                                         + stored_layout + ", but this node is " + options.layout
                                         + "; the shards it owns would change and stored keys "
                                           "would become unreachable. Start it with the "
                                           "cluster settings it was written with, or give it "
                                           "an empty storage.path (data does not move between "
                                           "layouts; see docs/replication.md, \"Upgrading\")"};
    }
    if (has_shards && has_format && has_layout) return core::ok();
    rocksdb::WriteBatch wb;
    if (s = wb.Put(meta, meta_shards_key, shards); !s.ok()) return to_open_error(s);
    if (s = wb.Put(meta, meta_format_key, format_version); !s.ok()) return to_open_error(s);
    if (!options.layout.empty()) {
      if (s = wb.Put(meta, meta_layout_key, options.layout); !s.ok()) return to_open_error(s);
    }
    rocksdb::WriteOptions wo;
    wo.sync = true;
    return check_open_status(db_->Write(wo, &wb));
  }

private:
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  std::shared_ptr<engine_state> engine_;
  std::atomic<bool> closed_{false};
  view_registry views_;                          ///< before the shards, which refer to it
  std::atomic<std::uint64_t> final_sequence_{0}; ///< latest_sequence() once closed
  std::vector<std::unique_ptr<rocksdb_shard>> shards_;
  std::unique_ptr<rocksdb_shard> raft_log_;
  rocksdb_shard invalid_shard_;
};

} // namespace

result<std::unique_ptr<store>> open_rocksdb_store(const rocksdb_options& options) {
  if (options.path.empty()) return error{errc::invalid_argument, "data directory path is empty"};
  if (options.shards == 0 || options.shards > max_shards) {
    return error{errc::invalid_argument, "shard count " + std::to_string(options.shards)
                                           + " is outside 1.." + std::to_string(max_shards)};
  }
  std::error_code ec;
  std::filesystem::create_directories(options.path, ec);
  if (ec) {
    return error{errc::storage_failed,
                 "cannot create data directory " + options.path + ": " + ec.message()};
  }

  auto engine = std::make_shared<engine_state>();
  engine->log = options.log;
  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.IncreaseParallelism(2);
  db_options.db_write_buffer_size = options.total_write_buffer_bytes;
  db_options.info_log = std::make_shared<engine_logger>(engine);
  db_options.listeners.push_back(std::make_shared<engine_listener>(engine));

  // An existing database must already have exactly our column families: check before
  // anything is opened for writing.
  const bool exists = std::filesystem::exists(std::filesystem::path(options.path) / "CURRENT", ec);
  if (ec) {
    return error{errc::storage_failed,
                 "cannot read data directory " + options.path + ": " + ec.message()};
  }
  std::vector<std::string> existing;
  if (exists) {
    if (auto s = rocksdb::DB::ListColumnFamilies(db_options, options.path, &existing); !s.ok()) {
      return to_open_error(s);
    }
    // The meta key is written last when a directory is created; without it, creation was
    // interrupted (killed while the column families were being made) and may resume.
    auto stored_shards = read_meta_shards(db_options, options.path, existing);
    if (!stored_shards) return std::move(stored_shards).error();
    auto st = *stored_shards ? check_column_families(options, existing)
                             : check_partial_creation(options, existing);
    if (!st) return std::move(st).error();
  }

  // Open the families that exist, then create the missing shards in one batch: RocksDB
  // rewrites its OPTIONS file once per batch, where DB::Open's
  // create_missing_column_families rewrites it once per family (quadratic in the shards).
  const auto cf_options = make_cf_options(options);
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  families.emplace_back(rocksdb::kDefaultColumnFamilyName, cf_options);
  std::vector<std::uint32_t> opened_shards; // shard of families[i + 1]
  std::vector<std::string> missing;
  std::vector<std::uint32_t> missing_shards;
  // Index `options.shards` stands for the Raft logs' family (after the shards).
  for (std::uint32_t i = 0; i <= options.shards; ++i) {
    auto name = i < options.shards ? shard_cf_name(i) : std::string(raft_log_cf_name);
    if (std::find(existing.begin(), existing.end(), name) != existing.end()) {
      families.emplace_back(name, cf_options);
      opened_shards.push_back(i);
    } else {
      missing.push_back(std::move(name));
      missing_shards.push_back(i);
    }
  }
  std::vector<rocksdb::ColumnFamilyHandle*> opened_handles;
  rocksdb::DB* db = nullptr;
  if (auto s = rocksdb::DB::Open(db_options, options.path, families, &opened_handles, &db);
      !s.ok()) {
    // A full volume: an existing store still serves reads, opened read-only (which
    // writes nothing). Its writes fail until the node restarts with space.
    // (A directory from before the Raft logs' family lacks it: read-only, it stays absent,
    // and the node has no replicated shard to serve anyway.)
    const bool only_raft_log_missing =
      missing.empty() || (missing.size() == 1 && missing.front() == raft_log_cf_name);
    if (!s.IsNoSpace() || !exists || !only_raft_log_missing) return to_open_error(s);
    engine->say(engine_log_level::error,
                "the data volume is full; opening the store read-only: " + s.ToString());
    opened_handles.clear();
    if (auto ro =
          rocksdb::DB::OpenForReadOnly(db_options, options.path, families, &opened_handles, &db);
        !ro.ok()) {
      return to_open_error(ro);
    }
    engine->writes.store(engine_state::read_only);
    missing.clear();
  }
  // handles[0] is the default family, handles[1 + i] shard i, the last the Raft logs'.
  std::vector<rocksdb::ColumnFamilyHandle*> handles(options.shards + 2, nullptr);
  handles[0] = opened_handles[0];
  for (std::size_t k = 0; k < opened_shards.size(); ++k)
    handles[1 + opened_shards[k]] = opened_handles[1 + k];
  if (!missing.empty()) {
    std::vector<rocksdb::ColumnFamilyHandle*> created;
    auto s = db->CreateColumnFamilies(cf_options, missing, &created);
    for (std::size_t k = 0; k < created.size(); ++k)
      handles[1 + missing_shards[k]] = created[k];
    if (!s.ok()) {
      for (auto* h : handles)
        if (h) db->DestroyColumnFamilyHandle(h);
      (void)db->Close();
      delete db;
      return to_open_error(s);
    }
  }
  auto opened = std::make_unique<rocksdb_store>(db, std::move(handles), std::move(engine));
  if (auto st = opened->check_meta(options); !st) {
    (void)opened->close();
    return std::move(st).error();
  }
  return std::unique_ptr<store>(std::move(opened));
}

} // namespace shoal::storage
