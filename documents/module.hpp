// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "core/reply.hpp"
#include "documents/messages.hpp"
#include "documents/read_cache.hpp"
#include "shard/context.hpp"
#include "shard/doc_change.hpp"

namespace shoal::documents {

struct metrics;

/// The documents of one shard: reads through the read cache, writes of one batch each
/// (the record, plus what the observers add) through the commit gate, and collection
/// statistics as a scan in bounded steps.
///
/// Replies about a document wait until every write of it is durable (the gate's barrier),
/// so with storage.sync nobody observes a write a crash could still take back.
class module {
public:
  using requests = documents::requests;

  struct config {
    std::size_t cache_bytes = 0;     ///< this shard's share of storage.doc_cache_bytes
    documents::metrics* metrics = nullptr; ///< may be null
  };

  /// `observers` follow every write (indexes, the change log); they outlive the module.
  module(shard::context& ctx, config cfg, std::vector<shard::doc_observer*> observers);
  ~module();
  module(const module&) = delete;
  module& operator=(const module&) = delete;

  void serve(doc_get&& req, core::reply_to<stored_doc> to);
  void serve(doc_write&& req, core::reply_to<doc_written> to);
  void serve(collection_stats&& req, core::reply_to<field_stats> to);

  /// From now on every write fails with `why` (the shard's indexes could not be loaded:
  /// a write that skipped its index entries would leave them wrong for good).
  void refuse_writes(core::error why);

private:
  struct stats_scan;
  void step(const std::shared_ptr<stats_scan>& scan);
  /// The stored record of `key`, through the read cache (`count`: a read that fills it
  /// and counts in the metrics). nullopt when absent.
  core::result<std::optional<std::string>> load(const std::string& key, bool count);
  /// Delivers `r` once every write of `key` is durable.
  template <class T>
  void answer_about(const std::string& key, core::reply_to<T> to, core::result<T> r);
  void cache_changed(std::size_t bytes_before);

  shard::context& ctx_;
  config cfg_;
  std::vector<shard::doc_observer*> observers_;
  read_cache cache_;
  std::optional<core::error> refused_;
};

} // namespace shoal::documents
