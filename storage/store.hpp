// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace shoal::storage {

using core::errc;
using core::error;
template <class T>
using result = core::result<T>;

/// Called for each key of a scan with its value; return false to stop. Views are valid
/// only during the call.
using scan_fn = std::function<bool(std::string_view key, std::string_view value)>;

/// An ordered list of puts and deletes applied atomically to one shard.
class write_batch {
public:
  enum class op_kind : std::uint8_t { put, del, del_range };
  struct op {
    op_kind kind;
    std::string key;
    std::string value; ///< empty for `del`; the exclusive end key for `del_range`
  };

  void put(std::string key, std::string value) {
    bytes_ += key.size() + value.size();
    ops_.push_back({op_kind::put, std::move(key), std::move(value)});
  }
  void del(std::string key) {
    bytes_ += key.size();
    ops_.push_back({op_kind::del, std::move(key), {}});
  }
  /// Deletes every key in [begin, end).
  void del_range(std::string begin, std::string end) {
    bytes_ += begin.size() + end.size();
    ops_.push_back({op_kind::del_range, std::move(begin), std::move(end)});
  }
  void clear() noexcept {
    ops_.clear();
    bytes_ = 0;
  }
  const std::vector<op>& ops() const noexcept {
    return ops_;
  }
  bool empty() const noexcept {
    return ops_.empty();
  }
  std::size_t size() const noexcept {
    return ops_.size();
  }
  /// Sum of key and value sizes, for batch bounding.
  std::size_t bytes() const noexcept {
    return bytes_;
  }

private:
  std::vector<op> ops_;
  std::size_t bytes_ = 0;
};

/// A consistent, read-only view of one shard as it was when the view was taken: what
/// commits later is not seen. A long scan keeps one across its steps, so it neither
/// misses nor repeats a key that a write moves meanwhile. A view may outlive the store's
/// close() (its reads then fail with shutting_down), not the store object.
class shard_view {
public:
  virtual ~shard_view() = default;

  /// The value of `key`, or `errc::not_found`.
  virtual result<std::string> get(std::string_view key) = 0;

  /// As shard_store::scan, over the view.
  virtual result<void> scan(std::string_view prefix, std::string_view from, bool reverse,
                            const scan_fn& fn) = 0;
};

/// The keyspace of one shard (a RocksDB column family). Thread-safe: the shard host and
/// the virtual actors it hosts read it from different threads. Every write goes through
/// the shard host's commit gate (docs/architecture.md), so each key has one writer.
class shard_store {
public:
  virtual ~shard_store() = default;

  /// The value of `key`, or `errc::not_found` (an error without a message: misses are
  /// common and cheap).
  virtual result<std::string> get(std::string_view key) = 0;

  /// Applies `batch` atomically. With `sync`, the WAL is fsynced before returning;
  /// without it, the write reaches the WAL file (the OS page cache) before returning,
  /// so it survives the process being killed but not the machine losing power.
  virtual result<void> write(const write_batch& batch, bool sync) = 0;

  /// Calls `fn(key, value)` for the keys starting with `prefix`, in key order, until `fn`
  /// returns false: forward from the first key >= `from`, or with `reverse` backward from
  /// the last key <= `from`. An empty `from` starts at the first (forward) or last
  /// (reverse) key of the prefix. `fn` may read this shard, never write it.
  virtual result<void> scan(std::string_view prefix, std::string_view from, bool reverse,
                            const scan_fn& fn) = 0;

  /// scan(prefix, "", false, fn).
  result<void> scan_prefix(std::string_view prefix, const scan_fn& fn) {
    return scan(prefix, {}, false, fn);
  }

  /// A consistent view of the shard as it is now.
  virtual std::unique_ptr<shard_view> snapshot() = 0;

  /// The engine's estimate of the number of keys (RocksDB "rocksdb.estimate-num-keys").
  virtual std::uint64_t estimate_num_keys() = 0;

  /// The engine's estimate of live data bytes ("rocksdb.estimate-live-data-size").
  virtual std::uint64_t live_data_bytes() = 0;
};

/// One node's store: a fixed number of shards in one database. Thread-safe across shards.
class store {
public:
  virtual ~store() = default;

  virtual std::uint32_t shard_count() const noexcept = 0;

  /// The keyspace of shard `index` (< shard_count()). The reference lives as long as the store.
  virtual shard_store& shard(std::uint32_t index) = 0;

  /// The keyspace where replicated shards keep their Raft logs, terms and votes
  /// (replication::log_store, one prefix per shard): beside the shards, so that a shard's
  /// snapshot or restore never touches its log. The reference lives as long as the store.
  virtual shard_store& raft_log() = 0;

  /// Sequence number of the last write applied to any shard (monotonic).
  virtual std::uint64_t latest_sequence() = 0;

  /// Fsyncs the WAL: every write that returned before this call started is durable
  /// when it returns ok. Safe to call concurrently with writes. Blocks on disk I/O:
  /// call it from a thread that may block (the WAL syncer), never from an I/O thread.
  virtual result<void> sync_wal() = 0;

  /// Flushes memtables and closes the database. Further calls fail with
  /// `errc::shutting_down`.
  virtual result<void> close() = 0;

  /// Why writes fail now (the volume is full, the store was opened read-only), in words
  /// without file paths; empty while writes can succeed. Reads work either way.
  virtual std::string write_problem() const {
    return {};
  }
};

/// How much a message of the engine matters.
enum class engine_log_level { info, warn, error };

/// Options for `open_rocksdb_store`.
struct rocksdb_options {
  std::string path;                          ///< data directory, created when missing
  std::uint32_t shards = 64;                 ///< number of shard column families
  std::size_t block_cache_bytes = 64u << 20; ///< shared LRU block cache
  std::size_t write_buffer_bytes = 8u << 20; ///< memtable size per shard
  /// All memtables of the node together (RocksDB db_write_buffer_size): past it the
  /// largest is flushed. 0 = no node-wide bound (each shard may hold 2 full memtables).
  std::size_t total_write_buffer_bytes = 128u << 20;
  /// Where the engine's own messages go (warnings and errors, and whether writes stopped
  /// or resumed), instead of a LOG file in the data directory: a log file on a full volume
  /// must not take the process down. May be called on RocksDB's threads. Null: dropped.
  std::function<void(engine_log_level, std::string_view)> log;
  /// Which shards this directory serves, as a caller-defined text (the node id and the
  /// member list of a cluster). Remembered on first open, like the shard count: opening
  /// with another layout fails with `errc::incompatible`, since the shards this node
  /// owns would change and stored keys would become unreachable. Empty: not checked.
  std::string layout;
};

/// Opens (or creates) the RocksDB database at `options.path` with one column family per
/// shard, named "shard-00000" … Opening a directory written with another shard count
/// or layout fails with `errc::incompatible` and a message naming both. When the volume
/// is full, an existing store opens read-only (see `store::write_problem`). Errors of a
/// store once open name no file; errors of the open itself name the directory.
result<std::unique_ptr<store>> open_rocksdb_store(const rocksdb_options& options);

} // namespace shoal::storage
