// SPDX-License-Identifier: Apache-2.0
// Micro benchmarks of the per-request work that does not touch a socket or a disk:
// routing a document PUT (parse, validate, ask, render the answer), planning a write,
// and picking a shard.
//   build/release/bench/shoal_micro_bench

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include <benchmark/benchmark.h>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>

#include "cluster/shard_map.hpp"
#include "documents/documents.hpp"
#include "documents/messages.hpp"
#include "http/exchange.hpp"
#include "http/router.hpp"
#include "protocol/shard_client.hpp"

namespace {

namespace bhttp = boost::beast::http;
using namespace shoal;

/// A JSON object of exactly `bytes` bytes: {"id":"<id>","pad":"xxx..."}.
std::string json_doc(const std::string& id, std::size_t bytes) {
  std::string doc = R"({"id":")" + id + R"(","pad":")";
  doc.append(bytes > doc.size() + 2 ? bytes - doc.size() - 2 : 0, 'x');
  doc += "\"}";
  return doc;
}

/// A shard client that answers a document write at once (version 1, created), or drops
/// it unanswered when `answer` is off, and refuses anything else: the route's work
/// without a shard behind it.
class answering_shards final : public protocol::client_impl<answering_shards> {
public:
  explicit answering_shards(bool answer) : answer_(answer) {}

  std::uint32_t shard_count() const noexcept override {
    return placement_.map.shard_count();
  }
  const cluster::placement& placement() const noexcept override {
    return placement_;
  }
  void lease(jobs::queue_lease&&, core::reply_to<jobs::leased_jobs> to) override {
    to.deliver(core::error{core::errc::unsupported, "not in this benchmark"});
  }
  template <class R>
  void send_to(std::uint32_t, R&&, core::reply_to<protocol::reply_of<R>> to) {
    if constexpr (std::is_same_v<R, documents::doc_write>) {
      if (answer_) to.deliver(documents::doc_written{1, true});
    } else {
      to.deliver(core::error{core::errc::unsupported, "not in this benchmark"});
    }
  }

private:
  bool answer_;
  cluster::placement placement_{cluster::shard_map{64}, {}, [] { return std::uint64_t{0}; }};
};

/// Keeps the last response it is given.
class last_response final : public http::response_port {
public:
  void post(std::uint64_t, http::response&& res) override {
    last = std::move(res);
  }
  http::response last;
};

/// http::route of a PUT of a 100-byte document: target parsing, name checks, JSON
/// parse/validate/serialize of the body, placement and the reply_to; with range(0) = 1
/// the shard's answer is rendered too (the 201 and its headers). The body is copied back
/// in each iteration because route() moves it out.
void BM_RoutePut100(benchmark::State& state) {
  const bool answered = state.range(0) == 1;
  const std::string body = json_doc("doc-000042", 100);
  http::request req{bhttp::verb::put, "/v1/collections/bench/docs/doc-000042", 11};
  req.set(bhttp::field::host, "127.0.0.1");
  req.set(bhttp::field::content_type, "application/json");
  http::route_env env;
  env.ready = [] { return true; };
  env.metrics_text = [] { return std::string{}; };
  answering_shards shards{answered};
  auto port = std::make_shared<last_response>();
  std::uint64_t seq = 0;
  for (auto _ : state) {
    req.body() = body;
    req.prepare_payload();
    http::exchange ex{req, env, shards, port, ++seq};
    auto routed = http::route(ex);
    benchmark::DoNotOptimize(routed);
  }
  if (answered && port->last.result_int() != 201)
    state.SkipWithError(("the PUT was answered " + std::to_string(port->last.result_int())).c_str());
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * body.size()));
}
BENCHMARK(BM_RoutePut100)->ArgName("answered")->Arg(0)->Arg(1);

documents::doc_write put_request(std::string body) {
  documents::doc_write req;
  req.kind = documents::write_kind::put;
  req.collection = "bench";
  req.id = "doc-000042";
  req.body = std::move(body);
  return req;
}

/// plan_write of a PUT that creates a document (no current record).
void BM_PlanWritePutNew(benchmark::State& state) {
  auto req = put_request(json_doc("doc-000042", 100));
  const std::optional<documents::record> none;
  for (auto _ : state) {
    auto plan = documents::plan_write(req, none);
    benchmark::DoNotOptimize(plan);
  }
}
BENCHMARK(BM_PlanWritePutNew);

/// plan_write of a PUT with If-Match that replaces version 7.
void BM_PlanWritePutReplace(benchmark::State& state) {
  auto req = put_request(json_doc("doc-000042", 100));
  req.if_match.what = documents::precondition::kind::versions;
  req.if_match.versions = {7};
  const auto stored = documents::encode(7, json_doc("doc-000042", 100));
  const auto current = documents::decode(stored);
  for (auto _ : state) {
    auto plan = documents::plan_write(req, current);
    benchmark::DoNotOptimize(plan);
  }
}
BENCHMARK(BM_PlanWritePutReplace);

/// plan_write of a merge patch of one member into a stored document of `range(0)` bytes:
/// parse both, merge, serialize.
void BM_PlanWritePatch(benchmark::State& state) {
  documents::doc_write req;
  req.kind = documents::write_kind::patch;
  req.collection = "bench";
  req.id = "doc-000042";
  req.body = R"({"n":2,"tags":["a","b"]})";
  const auto stored =
    documents::encode(7, json_doc("doc-000042", static_cast<std::size_t>(state.range(0))));
  const auto current = documents::decode(stored);
  for (auto _ : state) {
    auto plan = documents::plan_write(req, current);
    benchmark::DoNotOptimize(plan);
  }
}
BENCHMARK(BM_PlanWritePatch)->Arg(100)->Arg(1000);

/// shard_map::shard_of (XXH64 of collection ++ NUL ++ id, mod 64) over 1,024 ids.
void BM_ShardOf(benchmark::State& state) {
  const cluster::shard_map map{64};
  std::vector<std::string> ids;
  for (int i = 0; i < 1024; ++i)
    ids.push_back("doc-" + std::to_string(1000000 + i));
  std::size_t i = 0;
  for (auto _ : state) {
    auto shard = map.shard_of("bench", ids[i++ & 1023]);
    benchmark::DoNotOptimize(shard);
  }
}
BENCHMARK(BM_ShardOf);

} // namespace
