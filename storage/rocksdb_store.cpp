// SPDX-License-Identifier: Apache-2.0
// The RocksDB implementation of `store`: the only file that includes <rocksdb/...>.
// `open_rocksdb_store` is declared in "storage/store.hpp".
#include "storage/store.hpp"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <rocksdb/cache.h>
#include <rocksdb/convenience.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
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

/// The one place where a `rocksdb::Status` becomes a `status`.
status to_error(const rocksdb::Status& s) {
  if (s.ok()) return status::ok();
  errc code = errc::io_error;
  switch (s.code()) {
  case rocksdb::Status::kNotFound:
    code = errc::not_found;
    break;
  case rocksdb::Status::kCorruption:
    code = errc::corruption;
    break;
  case rocksdb::Status::kInvalidArgument:
  case rocksdb::Status::kNotSupported:
    code = errc::invalid_argument;
    break;
  case rocksdb::Status::kShutdownInProgress:
    code = errc::unavailable;
    break;
  default: // kIOError and everything else: the engine could not do the I/O asked of it
    code = errc::io_error;
    break;
  }
  return {code, s.ToString()};
}

status closed_error() {
  return {errc::unavailable, "store is closed"};
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

std::string incompatible_count(const std::string& path, std::string_view found,
                               std::uint32_t configured) {
  return "data directory " + path + " has " + std::string(found) + " shards, config says "
         + std::to_string(configured);
}

/// Compares the column families of an existing database with the configured layout,
/// before anything is opened for writing, so a mismatch leaves the directory untouched.
status check_column_families(const rocksdb_options& options, std::vector<std::string> existing) {
  existing.erase(std::remove(existing.begin(), existing.end(), rocksdb::kDefaultColumnFamilyName),
                 existing.end());
  if (existing.size() != options.shards) {
    return {errc::incompatible,
            incompatible_count(options.path, std::to_string(existing.size()), options.shards)};
  }
  // Same count: the names must be exactly shard-00000 … shard-(N-1), which sort as numbers.
  std::sort(existing.begin(), existing.end());
  for (std::uint32_t i = 0; i < options.shards; ++i) {
    if (existing[i] != shard_cf_name(i)) {
      return {errc::incompatible, "data directory " + options.path
                                    + " has unexpected column family '" + existing[i] + "'"};
    }
  }
  return status::ok();
}

/// Reads the stored shard count from a database that exists, through a read-only open
/// that changes nothing on disk; `out` stays empty when the key is absent.
status read_meta_shards(const rocksdb::DBOptions& db_options, const std::string& path,
                        const std::vector<std::string>& families, std::optional<std::string>& out) {
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  descriptors.reserve(families.size());
  for (const auto& name : families)
    descriptors.emplace_back(name, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  if (auto s = rocksdb::DB::OpenForReadOnly(db_options, path, descriptors, &handles, &raw);
      !s.ok()) {
    return to_error(s);
  }
  std::unique_ptr<rocksdb::DB> db(raw);
  std::string value;
  auto s = db->Get(rocksdb::ReadOptions(), db->DefaultColumnFamily(), meta_shards_key, &value);
  for (auto* h : handles)
    db->DestroyColumnFamilyHandle(h);
  if (s.ok()) {
    out = std::move(value);
  } else if (!s.IsNotFound()) {
    return to_error(s);
  }
  return to_error(db->Close());
}

/// For a creation that was interrupted: every column family present must be one of the
/// configured shards; the missing ones are created by the open that follows.
status check_partial_creation(const rocksdb_options& options,
                              const std::vector<std::string>& existing) {
  for (const auto& name : existing) {
    if (name == rocksdb::kDefaultColumnFamilyName) continue;
    bool known = false;
    for (std::uint32_t i = 0; i < options.shards && !known; ++i)
      known = name == shard_cf_name(i);
    if (!known) {
      return {errc::incompatible,
              "data directory " + options.path + " has unexpected column family '" + name + "'"};
    }
  }
  return status::ok();
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

/// One shard's column family. Holds no ownership: the store owns `db` and `cf` and
/// outlives this object; every call checks `closed` before touching them.
/// A shard built with `cf == nullptr` stands for an out-of-range shard index.
class rocksdb_shard final : public shard_store {
public:
  rocksdb_shard(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf, const std::atomic<bool>& closed)
      : db_(db), cf_(cf), closed_(closed) {}

  status get(std::string_view key, std::string& value) override {
    if (auto st = check(); !st) return st;
    rocksdb::PinnableSlice pinned;
    if (auto s = db_->Get(rocksdb::ReadOptions(), cf_, to_slice(key), &pinned); !s.ok()) {
      return to_error(s);
    }
    value.assign(pinned.data(), pinned.size());
    return status::ok();
  }

  status write(const write_batch& batch, bool sync) override {
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
    return to_error(db_->Write(wo, &wb));
  }

  status scan_prefix(std::string_view prefix,
                     const std::function<bool(std::string_view, std::string_view)>& fn) override {
    if (auto st = check(); !st) return st;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf_));
    for (it->Seek(to_slice(prefix)); it->Valid(); it->Next()) {
      const auto key = it->key().ToStringView();
      if (key.substr(0, prefix.size()) != prefix) break;
      if (!fn(key, it->value().ToStringView())) break;
    }
    return to_error(it->status());
  }

  status scan(std::string_view prefix, std::string_view from, bool reverse,
              const std::function<bool(std::string_view, std::string_view)>& fn) override {
    if (auto st = check(); !st) return st;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf_));
    auto has_prefix = [&](std::string_view key) { return key.substr(0, prefix.size()) == prefix; };
    if (!reverse) {
      for (it->Seek(to_slice(std::max(prefix, from))); it->Valid(); it->Next()) {
        const auto key = it->key().ToStringView();
        if (!has_prefix(key)) break;
        if (!fn(key, it->value().ToStringView())) break;
      }
      return to_error(it->status());
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
    return to_error(it->status());
  }

  std::uint64_t estimate_num_keys() override {
    return int_property(rocksdb::DB::Properties::kEstimateNumKeys);
  }

  std::uint64_t live_data_bytes() override {
    return int_property(rocksdb::DB::Properties::kEstimateLiveDataSize);
  }

private:
  status check() const {
    if (closed_.load(std::memory_order_acquire)) return closed_error();
    if (cf_ == nullptr) return {errc::invalid_argument, "shard index out of range"};
    return status::ok();
  }

  /// The property's value, or 0 when the store is closed or the engine does not know it.
  std::uint64_t int_property(const std::string& name) {
    if (!check()) return 0;
    std::uint64_t value = 0;
    if (!db_->GetIntProperty(cf_, name, &value)) return 0;
    return value;
  }

  rocksdb::DB* db_;
  rocksdb::ColumnFamilyHandle* cf_;
  const std::atomic<bool>& closed_;
};

/// Owns the database and its column family handles; `handles_[0]` is the default
/// column family, `handles_[i + 1]` is shard i. Shards run concurrently on their own
/// threads; `close()` must not race with calls still in flight (the store closes last,
/// after its users stopped), but calls made after it returned are safe and fail with
/// `errc::unavailable`.
class rocksdb_store final : public store {
public:
  rocksdb_store(rocksdb::DB* db, std::vector<rocksdb::ColumnFamilyHandle*> handles)
      : db_(db), handles_(std::move(handles)), invalid_shard_(db, nullptr, closed_) {
    shards_.reserve(handles_.size() - 1);
    for (std::size_t i = 1; i < handles_.size(); ++i) {
      shards_.push_back(std::make_unique<rocksdb_shard>(db, handles_[i], closed_));
    }
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

  std::uint64_t latest_sequence() override {
    if (closed_.load(std::memory_order_acquire)) return final_sequence_.load();
    return db_->GetLatestSequenceNumber();
  }

  status sync_wal() override {
    if (closed_.load(std::memory_order_acquire)) return closed_error();
    return to_error(db_->SyncWAL());
  }

  status close() override {
    if (closed_.exchange(true, std::memory_order_acq_rel)) return closed_error();
    final_sequence_.store(db_->GetLatestSequenceNumber());
    // Release everything even when a step fails; report the first failure.
    rocksdb::FlushOptions flush;
    flush.wait = true;
    status result = to_error(db_->Flush(flush, handles_));
    for (auto* handle : handles_) {
      auto s = db_->DestroyColumnFamilyHandle(handle);
      if (result && !s.ok()) result = to_error(s);
    }
    handles_.clear();
    auto s = db_->Close();
    if (result && !s.ok()) result = to_error(s);
    db_.reset();
    return result;
  }

  /// Checks the layout keys in the default column family against `options`; writes them
  /// (synced) when absent, i.e. on creation or after a creation that was interrupted.
  status check_meta(const rocksdb_options& options) {
    const std::string shards = std::to_string(options.shards);
    std::string stored_shards;
    std::string stored_format;
    auto* meta = handles_[0];
    auto s = db_->Get(rocksdb::ReadOptions(), meta, meta_shards_key, &stored_shards);
    if (!s.ok() && !s.IsNotFound()) return to_error(s);
    const bool has_shards = s.ok();
    s = db_->Get(rocksdb::ReadOptions(), meta, meta_format_key, &stored_format);
    if (!s.ok() && !s.IsNotFound()) return to_error(s);
    const bool has_format = s.ok();
    if (has_shards && stored_shards != shards) {
      return {errc::incompatible, incompatible_count(options.path, stored_shards, options.shards)};
    }
    if (has_format && stored_format != format_version) {
      return {errc::incompatible, "data directory " + options.path + " has format " + stored_format
                                    + ", this build reads format " + format_version};
    }
    std::string stored_layout;
    s = db_->Get(rocksdb::ReadOptions(), meta, meta_layout_key, &stored_layout);
    if (!s.ok() && !s.IsNotFound()) return to_error(s);
    const bool has_layout = s.ok() || options.layout.empty();
    if (s.ok() && !options.layout.empty() && stored_layout != options.layout) {
      return {errc::incompatible, "data directory " + options.path + " belongs to " + stored_layout
                                    + ", but this node is " + options.layout
                                    + "; the shards it owns would change and stored keys "
                                      "would become unreachable"};
    }
    if (has_shards && has_format && has_layout) return status::ok();
    rocksdb::WriteBatch wb;
    if (s = wb.Put(meta, meta_shards_key, shards); !s.ok()) return to_error(s);
    if (s = wb.Put(meta, meta_format_key, format_version); !s.ok()) return to_error(s);
    if (!options.layout.empty()) {
      if (s = wb.Put(meta, meta_layout_key, options.layout); !s.ok()) return to_error(s);
    }
    rocksdb::WriteOptions wo;
    wo.sync = true;
    return to_error(db_->Write(wo, &wb));
  }

private:
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  std::atomic<bool> closed_{false};
  std::atomic<std::uint64_t> final_sequence_{0}; ///< latest_sequence() once closed
  std::vector<std::unique_ptr<rocksdb_shard>> shards_;
  rocksdb_shard invalid_shard_;
};

} // namespace

status open_rocksdb_store(const rocksdb_options& options, std::unique_ptr<store>& out) {
  out.reset();
  if (options.path.empty()) return {errc::invalid_argument, "data directory path is empty"};
  if (options.shards == 0 || options.shards > max_shards) {
    return {errc::invalid_argument, "shard count " + std::to_string(options.shards)
                                      + " is outside 1.." + std::to_string(max_shards)};
  }
  std::error_code ec;
  std::filesystem::create_directories(options.path, ec);
  if (ec) {
    return {errc::io_error, "cannot create data directory " + options.path + ": " + ec.message()};
  }

  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.IncreaseParallelism(2);
  db_options.db_write_buffer_size = options.total_write_buffer_bytes;

  // An existing database must already have exactly our column families: check before
  // DB::Open, which would create the missing ones.
  const bool exists = std::filesystem::exists(std::filesystem::path(options.path) / "CURRENT", ec);
  if (ec) {
    return {errc::io_error, "cannot read data directory " + options.path + ": " + ec.message()};
  }
  if (exists) {
    std::vector<std::string> existing;
    if (auto s = rocksdb::DB::ListColumnFamilies(db_options, options.path, &existing); !s.ok()) {
      return to_error(s);
    }
    // The meta key is written last when a directory is created; without it, creation was
    // interrupted (killed while the column families were being made) and may resume.
    std::optional<std::string> stored_shards;
    if (auto st = read_meta_shards(db_options, options.path, existing, stored_shards); !st)
      return st;
    auto st = stored_shards ? check_column_families(options, std::move(existing))
                            : check_partial_creation(options, existing);
    if (!st) return st;
  }

  const auto cf_options = make_cf_options(options);
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  families.reserve(options.shards + 1);
  families.emplace_back(rocksdb::kDefaultColumnFamilyName, cf_options);
  for (std::uint32_t i = 0; i < options.shards; ++i) {
    families.emplace_back(shard_cf_name(i), cf_options);
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  if (auto s = rocksdb::DB::Open(db_options, options.path, families, &handles, &db); !s.ok()) {
    return to_error(s);
  }
  auto opened = std::make_unique<rocksdb_store>(db, std::move(handles));
  if (auto st = opened->check_meta(options); !st) {
    (void)opened->close();
    return st;
  }
  out = std::move(opened);
  return status::ok();
}

} // namespace shoal::storage
