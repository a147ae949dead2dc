// SPDX-License-Identifier: Apache-2.0
// Micro benchmarks of the per-request work that does not touch a socket or a disk:
// routing a document PUT, planning a write, and picking a shard.
//   build/release/bench/shoal_micro_bench

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>

#include "actors/doc_protocol.hpp"
#include "actors/documents.hpp"
#include "cluster/shard_map.hpp"
#include "http/router.hpp"

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

/// http::route of a PUT of a 100-byte document: target parsing, name checks, JSON
/// parse/validate/serialize of the body. The body is copied back in each iteration
/// because route() moves it out.
void BM_RoutePut100(benchmark::State& state) {
  const std::string body = json_doc("doc-000042", 100);
  http::request req{bhttp::verb::put, "/v1/collections/bench/docs/doc-000042", 11};
  req.set(bhttp::field::host, "127.0.0.1");
  req.set(bhttp::field::content_type, "application/json");
  http::route_env env;
  env.ready = [] { return true; };
  env.metrics_text = [] { return std::string{}; };
  for (auto _ : state) {
    req.body() = body;
    req.prepare_payload();
    auto routed = http::route(req, env);
    benchmark::DoNotOptimize(routed);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * body.size()));
}
BENCHMARK(BM_RoutePut100);

actors::doc_request put_request(std::string body) {
  actors::doc_request req;
  req.op = actors::doc_op::put;
  req.collection = "bench";
  req.id = "doc-000042";
  req.body = std::move(body);
  return req;
}

/// plan_write of a PUT that creates a document (no current record).
void BM_PlanWritePutNew(benchmark::State& state) {
  auto req = put_request(json_doc("doc-000042", 100));
  const std::optional<actors::documents::record> none;
  for (auto _ : state) {
    auto plan = actors::documents::plan_write(req, none);
    benchmark::DoNotOptimize(plan);
  }
}
BENCHMARK(BM_PlanWritePutNew);

/// plan_write of a PUT with If-Match that replaces version 7.
void BM_PlanWritePutReplace(benchmark::State& state) {
  auto req = put_request(json_doc("doc-000042", 100));
  req.if_match.what = actors::precondition::kind::versions;
  req.if_match.versions = {7};
  const auto stored = actors::documents::encode(7, json_doc("doc-000042", 100));
  const auto current = actors::documents::decode(stored);
  for (auto _ : state) {
    auto plan = actors::documents::plan_write(req, current);
    benchmark::DoNotOptimize(plan);
  }
}
BENCHMARK(BM_PlanWritePutReplace);

/// plan_write of a merge patch of one member into a stored document of `range(0)` bytes:
/// parse both, merge, serialize.
void BM_PlanWritePatch(benchmark::State& state) {
  actors::doc_request req;
  req.op = actors::doc_op::patch;
  req.collection = "bench";
  req.id = "doc-000042";
  req.body = R"({"n":2,"tags":["a","b"]})";
  const auto stored =
    actors::documents::encode(7, json_doc("doc-000042", static_cast<std::size_t>(state.range(0))));
  const auto current = actors::documents::decode(stored);
  for (auto _ : state) {
    auto plan = actors::documents::plan_write(req, current);
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
