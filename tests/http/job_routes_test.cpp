// SPDX-License-Identifier: Apache-2.0
// The job routes without sockets: targets and bodies → the typed jobs requests (and the
// shard each is asked of, through tests/support/edge.hpp's fake shard client), every
// validation error, and the rendering of every answer a shard or the broker can give.
#include "http/router.hpp"

#include <chrono>
#include <string>
#include <vector>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "cluster/shard_map.hpp"
#include "jobs/ids.hpp"
#include "jobs/messages.hpp"
#include "tests/support/edge.hpp"

namespace shoal::http {
namespace {

namespace bhttp = boost::beast::http;

/// The fixture's cluster has 64 shards, so the job ids below name shards it has.
constexpr std::uint32_t shard_count = 64;

const std::string job_id = jobs::make_job_id(42, 0xbe07d2a1c);

/// A request; a body (when given) goes with a Content-Type.
request make(bhttp::verb verb, const std::string& target, std::string body = {},
             std::string content_type = "application/json") {
  request req{verb, target, 11};
  if (!body.empty()) {
    req.set(bhttp::field::content_type, content_type);
    req.body() = std::move(body);
  }
  req.prepare_payload();
  return req;
}

std::string code_of(const response& res) {
  auto v = boost::json::parse(res.body());
  return std::string(v.at("error").at("code").as_string());
}

std::string message_of(const response& res) {
  auto v = boost::json::parse(res.body());
  return std::string(v.at("error").at("message").as_string());
}

class JobRoutesTest : public ::testing::Test {
protected:
  shoal::testing::edge_harness edge{shard_count};
  route_env& env = edge.env;

  /// Routes a request afresh: what earlier requests asked or were answered is forgotten.
  routed go(bhttp::verb verb, const std::string& target, std::string body = {},
            std::string content_type = "application/json") {
    edge.shards.log.clear();
    edge.port->posted.clear();
    return edge.go(make(verb, target, std::move(body), std::move(content_type)));
  }

  /// The one request of type R that routing `r` asked (fails the test when there is none).
  template <class R>
  R request_of(const routed& r) const {
    EXPECT_TRUE(std::holds_alternative<pending>(r.outcome)) << "the route did not ask";
    return edge.shards.only<R>();
  }

  /// The shard the one request asked went to.
  std::uint32_t shard_asked() const {
    EXPECT_EQ(edge.shards.log.size(), 1u);
    return edge.shards.log.empty() ? ~0u : edge.shards.log.front().shard;
  }

  /// The response of a routed request that asked nothing.
  response response_of(const routed& r) const {
    EXPECT_TRUE(std::holds_alternative<response>(r.outcome));
    EXPECT_TRUE(edge.shards.log.empty()) << "a refused request asked a shard";
    if (auto* res = std::get_if<response>(&r.outcome)) return *res;
    return {};
  }

  /// Expects `r` to be an error response with `status` and `code`, and no request asked.
  void expect_error(const routed& r, bhttp::status status, std::string_view code,
                    const std::string& what) const {
    EXPECT_TRUE(edge.shards.log.empty()) << what << ": a refused request asked a shard";
    ASSERT_TRUE(std::holds_alternative<response>(r.outcome)) << what;
    const auto& res = std::get<response>(r.outcome);
    EXPECT_EQ(res.result(), status) << what;
    EXPECT_EQ(code_of(res), code) << what;
    EXPECT_EQ(res[bhttp::field::content_type], "application/json") << what;
  }
};

// -- enqueue ------------------------------------------------------------------------------

// Verifies an enqueue builds the request from every member of the body.
TEST_F(JobRoutesTest, EnqueueBuildsEveryField) {
  auto r = go(bhttp::verb::post, "/v1/queues/emails/jobs",
              R"({"type":"send.welcome-1","payload":{ "to" : "a@b", "n":[1,2]},"delay_ms":1500,
                  "max_attempts":7,"idempotency_key":"user:42@signup"})");
  EXPECT_EQ(r.route, route_id::queue_jobs);
  auto jr = request_of<jobs::job_enqueue>(r);
  EXPECT_EQ(jr.queue, "emails");
  EXPECT_EQ(jr.type, "send.welcome-1");
  EXPECT_EQ(jr.payload, R"({"to":"a@b","n":[1,2]})");
  EXPECT_EQ(jr.delay_ms, 1500u);
  EXPECT_EQ(jr.max_attempts, 7u);
  EXPECT_EQ(jr.idempotency_key, "user:42@signup");
  // The same key in the same queue meets its first job: the shard the key hashes to.
  EXPECT_EQ(shard_asked(), cluster::shard_map{shard_count}.shard_of("emails", "user:42@signup"));
  EXPECT_EQ(std::get<pending>(r.outcome).timeout_ms, env.request_timeout_ms);
}

// Verifies the defaults of an enqueue: empty payload, no delay, 5 attempts, no key (so
// any shard that is up will do).
TEST_F(JobRoutesTest, EnqueueDefaults) {
  auto jr =
    request_of<jobs::job_enqueue>(go(bhttp::verb::post, "/v1/queues/q/jobs", R"({"type":"t"})"));
  EXPECT_EQ(jr.queue, "q");
  EXPECT_EQ(jr.type, "t");
  EXPECT_EQ(jr.payload, "{}");
  EXPECT_EQ(jr.delay_ms, 0u);
  EXPECT_EQ(jr.max_attempts, 5u);
  EXPECT_EQ(jr.idempotency_key, "");
  EXPECT_EQ(shard_asked(), 0u); // the harness's random number is always 0
  edge.shards.set_shard_up([](std::uint32_t s) { return s >= 5; });
  request_of<jobs::job_enqueue>(go(bhttp::verb::post, "/v1/queues/q/jobs", R"({"type":"t"})"));
  EXPECT_EQ(shard_asked(), 5u);
}

// Verifies the bounds themselves are accepted, and a whole number written as 1e3 counts.
TEST_F(JobRoutesTest, EnqueueAcceptsTheLimits) {
  std::string type(64, 't');
  std::string key(256, 'k');
  auto jr = request_of<jobs::job_enqueue>(
    go(bhttp::verb::post, "/v1/queues/" + std::string(64, 'q') + "/jobs",
       R"({"type":")" + type + R"(","delay_ms":604800000,"max_attempts":100,)"
         + R"("idempotency_key":")" + key + R"("})"));
  EXPECT_EQ(jr.type, type);
  EXPECT_EQ(jr.delay_ms, 604800000u);
  EXPECT_EQ(jr.max_attempts, 100u);
  EXPECT_EQ(jr.idempotency_key, key);
  jr = request_of<jobs::job_enqueue>(
    go(bhttp::verb::post, "/v1/queues/q/jobs",
       R"({"type":"t","delay_ms":1e3,"max_attempts":1,"payload":{}})"));
  EXPECT_EQ(jr.delay_ms, 1000u);
  EXPECT_EQ(jr.max_attempts, 1u);
  EXPECT_EQ(jr.payload, "{}");
}

// Verifies delay_ms is bounded by env.max_job_delay_ms (jobs.max_delay_ms).
TEST_F(JobRoutesTest, EnqueueDelayFollowsTheConfiguredMaximum) {
  env.max_job_delay_ms = 1000;
  EXPECT_EQ(request_of<jobs::job_enqueue>(
              go(bhttp::verb::post, "/v1/queues/q/jobs", R"({"type":"t","delay_ms":1000})"))
              .delay_ms,
            1000u);
  auto r = go(bhttp::verb::post, "/v1/queues/q/jobs", R"({"type":"t","delay_ms":1001})");
  expect_error(r, bhttp::status::bad_request, "invalid_job", "delay over the maximum");
  EXPECT_NE(message_of(response_of(r)).find("delay_ms must be an integer from 0 to 1000"),
            std::string::npos);
}

// Verifies each malformed member of an enqueue is 400 invalid_job naming the member and
// its allowed range, and builds no call.
TEST_F(JobRoutesTest, EnqueueInvalidMembersAreInvalidJob) {
  struct bad_case {
    std::string body;
    std::string names; ///< expected in the message
  };
  std::vector<bad_case> cases{
    {R"({})", "type"},
    {R"({"payload":{}})", "type"},
    {R"({"type":""})", "type"},
    {R"({"type":"a b"})", "type"},
    {R"({"type":"a/b"})", "type"},
    {R"({"type":"a:b"})", "type"},
    {R"({"type":")" + std::string(65, 't') + R"("})", "type"},
    {R"({"type":5})", "type"},
    {R"({"type":null})", "type"},
    {R"({"type":"t","payload":[1]})", "payload must be a JSON object"},
    {R"({"type":"t","payload":"s"})", "payload must be a JSON object"},
    {R"({"type":"t","payload":null})", "payload must be a JSON object"},
    {R"({"type":"t","payload":1})", "payload must be a JSON object"},
    {R"({"type":"t","delay_ms":-1})", "delay_ms must be an integer from 0 to 604800000"},
    {R"({"type":"t","delay_ms":1.5})", "delay_ms must be an integer from 0 to 604800000"},
    {R"({"type":"t","delay_ms":"10"})", "delay_ms must be an integer from 0 to 604800000"},
    {R"({"type":"t","delay_ms":604800001})", "delay_ms must be an integer from 0 to 604800000"},
    {R"({"type":"t","delay_ms":18446744073709551615})", "delay_ms"},
    {R"({"type":"t","delay_ms":1e300})", "delay_ms"},
    {R"({"type":"t","delay_ms":true})", "delay_ms"},
    {R"({"type":"t","max_attempts":0})", "max_attempts must be an integer from 1 to 100"},
    {R"({"type":"t","max_attempts":101})", "max_attempts must be an integer from 1 to 100"},
    {R"({"type":"t","max_attempts":"5"})", "max_attempts must be an integer from 1 to 100"},
    {R"({"type":"t","max_attempts":-5})", "max_attempts must be an integer from 1 to 100"},
    {R"({"type":"t","idempotency_key":""})", "idempotency_key"},
    {R"({"type":"t","idempotency_key":"a b"})", "idempotency_key"},
    {R"({"type":"t","idempotency_key":".."})", "idempotency_key"},
    {R"({"type":"t","idempotency_key":")" + std::string(257, 'k') + R"("})", "idempotency_key"},
    {R"({"type":"t","idempotency_key":5})", "idempotency_key"},
  };
  for (const auto& c : cases) {
    auto r = go(bhttp::verb::post, "/v1/queues/q/jobs", c.body);
    expect_error(r, bhttp::status::bad_request, "invalid_job", c.body.substr(0, 60));
    if (auto* res = std::get_if<response>(&r.outcome)) {
      EXPECT_NE(message_of(*res).find(c.names), std::string::npos)
        << c.body.substr(0, 60) << " → " << message_of(*res);
    }
  }
}

// Verifies a member the API does not know is 400 unknown_field naming it, on every job
// route with a body.
TEST_F(JobRoutesTest, UnknownMembersAreUnknownField) {
  struct unknown_case {
    std::string target;
    std::string body;
  };
  for (const auto& c : std::vector<unknown_case>{
         {"/v1/queues/q/jobs", R"({"type":"t","priority":1})"},
         {"/v1/queues/q/lease", R"({"max":1,"priority":1})"},
         {"/v1/jobs/" + job_id + "/complete", R"({"lease_id":"l","priority":1})"},
         {"/v1/jobs/" + job_id + "/fail", R"({"lease_id":"l","priority":1})"},
         {"/v1/jobs/" + job_id + "/retry", R"({"priority":1})"},
         {"/v1/jobs/" + job_id + "/cancel", R"({"priority":1})"}}) {
    auto r = go(bhttp::verb::post, c.target, c.body);
    expect_error(r, bhttp::status::bad_request, "unknown_field", c.target);
    if (auto* res = std::get_if<response>(&r.outcome)) {
      EXPECT_NE(message_of(*res).find("\"priority\""), std::string::npos) << message_of(*res);
    }
  }
}

// Verifies a bad queue name is 400 invalid_name on every queue route.
TEST_F(JobRoutesTest, BadQueueNamesAreInvalidName) {
  for (std::string q : {std::string(65, 'q'), std::string("a.b"), std::string("a%20b"),
                        std::string("caf%C3%A9"), std::string("a%2Fb")}) {
    expect_error(go(bhttp::verb::post, "/v1/queues/" + q + "/jobs", R"({"type":"t"})"),
                 bhttp::status::bad_request, "invalid_name", "enqueue " + q);
    expect_error(go(bhttp::verb::get, "/v1/queues/" + q), bhttp::status::bad_request,
                 "invalid_name", "stats " + q);
    expect_error(go(bhttp::verb::post, "/v1/queues/" + q + "/lease"), bhttp::status::bad_request,
                 "invalid_name", "lease " + q);
  }
  expect_error(go(bhttp::verb::get, "/v1/queues/"), bhttp::status::bad_request, "invalid_name",
               "empty queue name");
}

// Verifies bodies that are not JSON objects: 415 for another media type, invalid_json for
// broken or too deep JSON (or a missing body where one is required), invalid_job for JSON
// that is not an object.
TEST_F(JobRoutesTest, BadBodiesAreRefused) {
  const std::string complete = "/v1/jobs/" + job_id + "/complete";
  for (const auto& target : {std::string("/v1/queues/q/jobs"), std::string("/v1/queues/q/lease"),
                             complete, "/v1/jobs/" + job_id + "/fail",
                             "/v1/jobs/" + job_id + "/retry", "/v1/jobs/" + job_id + "/cancel"}) {
    expect_error(go(bhttp::verb::post, target, "{}", "text/plain"),
                 bhttp::status::unsupported_media_type, "unsupported_media_type", target);
    expect_error(go(bhttp::verb::post, target, "{"), bhttp::status::bad_request, "invalid_json",
                 target);
    expect_error(go(bhttp::verb::post, target, "[1]"), bhttp::status::bad_request, "invalid_job",
                 target);
    expect_error(go(bhttp::verb::post, target, "\"s\""), bhttp::status::bad_request, "invalid_job",
                 target);
  }
  std::string deep =
    R"({"type":"t","payload":{"a":)" + std::string(100, '[') + std::string(100, ']') + "}}";
  expect_error(go(bhttp::verb::post, "/v1/queues/q/jobs", deep), bhttp::status::bad_request,
               "invalid_json", "deep payload");
  // A body is required by enqueue, complete and fail.
  expect_error(go(bhttp::verb::post, "/v1/queues/q/jobs"), bhttp::status::bad_request,
               "invalid_json", "empty enqueue");
  expect_error(go(bhttp::verb::post, complete), bhttp::status::bad_request, "invalid_json",
               "empty complete");
  // JSON variants of the media type pass.
  for (auto ct : {"application/json; charset=utf-8", "Application/JSON", "application/x+json"})
    EXPECT_EQ(request_of<jobs::job_enqueue>(
                go(bhttp::verb::post, "/v1/queues/q/jobs", R"({"type":"t"})", ct))
                .type,
              "t")
      << ct;
}

// -- listing --------------------------------------------------------------------------------

// Verifies GET and HEAD of a queue's jobs ask every shard for its page of the state asked,
// with the limit (100 unless given) and the cursor (none unless given).
TEST_F(JobRoutesTest, JobListCall) {
  auto r = go(bhttp::verb::get, "/v1/queues/emails/jobs?state=dead");
  EXPECT_EQ(r.route, route_id::queue_jobs);
  ASSERT_TRUE(std::holds_alternative<pending>(r.outcome));
  auto asked = edge.shards.all<jobs::job_list>();
  ASSERT_EQ(asked.size(), shard_count);
  for (std::uint32_t i = 0; i < shard_count; ++i) {
    EXPECT_EQ(asked[i].first, i);
    EXPECT_EQ(asked[i].second.queue, "emails");
    EXPECT_EQ(asked[i].second.state, static_cast<std::uint8_t>(jobs::job_state::dead));
    EXPECT_EQ(asked[i].second.after, "");
    EXPECT_EQ(asked[i].second.limit, 100u);
  }
  r = go(bhttp::verb::head, "/v1/queues/emails/jobs?limit=5&state=cancelled&cursor=" + job_id);
  asked = edge.shards.all<jobs::job_list>();
  ASSERT_EQ(asked.size(), shard_count);
  EXPECT_EQ(asked[7].second.state, static_cast<std::uint8_t>(jobs::job_state::cancelled));
  EXPECT_EQ(asked[7].second.after, job_id);
  EXPECT_EQ(asked[7].second.limit, 5u);
}

// Verifies a bad list query is 400 naming what is wrong, and asks no shard.
TEST_F(JobRoutesTest, BadJobListQueriesAre400) {
  struct bad_case {
    std::string query;
    std::string code;
  };
  for (const auto& c : std::vector<bad_case>{{"", "invalid_state"},
                                             {"?state=lost", "invalid_state"},
                                             {"?state=dead&state=queued", "invalid_state"},
                                             {"?state=dead&limit=0", "invalid_limit"},
                                             {"?state=dead&limit=1001", "invalid_limit"},
                                             {"?state=dead&limit=x", "invalid_limit"},
                                             {"?state=dead&limit=", "invalid_limit"},
                                             {"?state=dead&limit=5&limit=6", "invalid_limit"},
                                             {"?state=dead&cursor=zz", "invalid_cursor"},
                                             {"?state=dead&sort=id", "unknown_parameter"}}) {
    auto r = go(bhttp::verb::get, "/v1/queues/q/jobs" + c.query);
    expect_error(r, bhttp::status::bad_request, c.code, c.query);
    EXPECT_TRUE(edge.shards.log.empty()) << c.query;
  }
  expect_error(go(bhttp::verb::get, "/v1/queues/a.b/jobs?state=dead"), bhttp::status::bad_request,
               "invalid_name", "bad queue name");
}

// -- stats ----------------------------------------------------------------------------------

// Verifies GET and HEAD of a queue ask every shard for its stats.
TEST_F(JobRoutesTest, QueueStatsCall) {
  for (auto verb : {bhttp::verb::get, bhttp::verb::head}) {
    auto r = go(verb, "/v1/queues/emails?x=1");
    EXPECT_EQ(r.route, route_id::queue);
    ASSERT_TRUE(std::holds_alternative<pending>(r.outcome));
    auto asked = edge.shards.all<jobs::queue_stats>();
    ASSERT_EQ(asked.size(), shard_count);
    EXPECT_EQ(edge.shards.log.size(), shard_count);
    for (std::uint32_t i = 0; i < shard_count; ++i) {
      EXPECT_EQ(asked[i].first, i);
      EXPECT_EQ(asked[i].second.queue, "emails");
    }
  }
}

// -- lease ----------------------------------------------------------------------------------

// Verifies a lease builds max, visibility_ms and wait_ms from the body and goes to the
// node's broker (whose own fields, owner, types and from_broker, are not in the edge's
// queue_lease at all), and that its answer may take wait_ms on top of the timeout.
TEST_F(JobRoutesTest, LeaseBuildsEveryField) {
  auto r = go(bhttp::verb::post, "/v1/queues/emails/lease",
              R"({"max":10,"visibility_ms":60000,"wait_ms":2500})");
  EXPECT_EQ(r.route, route_id::queue_lease);
  auto jr = request_of<jobs::queue_lease>(r);
  EXPECT_EQ(jr.queue, "emails");
  EXPECT_EQ(jr.max, 10u);
  EXPECT_EQ(jr.visibility_ms, 60000u);
  EXPECT_EQ(jr.wait_ms, 2500u);
  EXPECT_TRUE(edge.shards.all<jobs::job_lease>().empty()) << "a lease goes to the broker";
  ASSERT_TRUE(std::holds_alternative<pending>(r.outcome));
  EXPECT_EQ(std::get<pending>(r.outcome).timeout_ms, env.request_timeout_ms + 2500);
}

// Verifies an empty body and {} both lease with the defaults.
TEST_F(JobRoutesTest, LeaseDefaults) {
  for (std::string body : {"", "{}"}) {
    auto jr = request_of<jobs::queue_lease>(go(bhttp::verb::post, "/v1/queues/q/lease", body));
    EXPECT_EQ(jr.queue, "q") << body;
    EXPECT_EQ(jr.max, 1u);
    EXPECT_EQ(jr.visibility_ms, 30000u);
    EXPECT_EQ(jr.wait_ms, 0u);
  }
}

// Verifies the bounds of a lease are accepted.
TEST_F(JobRoutesTest, LeaseAcceptsTheLimits) {
  auto jr =
    request_of<jobs::queue_lease>(go(bhttp::verb::post, "/v1/queues/q/lease",
                                     R"({"max":100,"visibility_ms":43200000,"wait_ms":60000})"));
  EXPECT_EQ(jr.max, 100u);
  EXPECT_EQ(jr.visibility_ms, 43200000u);
  EXPECT_EQ(jr.wait_ms, 60000u);
  jr = request_of<jobs::queue_lease>(
    go(bhttp::verb::post, "/v1/queues/q/lease", R"({"max":1,"visibility_ms":1000,"wait_ms":0})"));
  EXPECT_EQ(jr.max, 1u);
  EXPECT_EQ(jr.visibility_ms, 1000u);
}

// Verifies each out-of-range or mistyped lease member is 400 invalid_job naming it.
TEST_F(JobRoutesTest, LeaseInvalidMembersAreInvalidJob) {
  struct bad_case {
    std::string body;
    std::string names;
  };
  for (const auto& c : std::vector<bad_case>{
         {R"({"max":0})", "max must be an integer from 1 to 100"},
         {R"({"max":101})", "max must be an integer from 1 to 100"},
         {R"({"max":"1"})", "max must be an integer from 1 to 100"},
         {R"({"max":1.5})", "max must be an integer from 1 to 100"},
         {R"({"visibility_ms":999})", "visibility_ms must be an integer from 1000 to 43200000"},
         {R"({"visibility_ms":43200001})",
          "visibility_ms must be an integer from 1000 to 43200000"},
         {R"({"visibility_ms":null})", "visibility_ms must be an integer from 1000 to 43200000"},
         {R"({"wait_ms":-1})", "wait_ms must be an integer from 0 to 60000"},
         {R"({"wait_ms":60001})", "wait_ms must be an integer from 0 to 60000"},
         {R"({"wait_ms":[]})", "wait_ms must be an integer from 0 to 60000"}}) {
    auto r = go(bhttp::verb::post, "/v1/queues/q/lease", c.body);
    expect_error(r, bhttp::status::bad_request, "invalid_job", c.body);
    if (auto* res = std::get_if<response>(&r.outcome)) {
      EXPECT_NE(message_of(*res).find(c.names), std::string::npos) << message_of(*res);
    }
  }
}

// -- one job --------------------------------------------------------------------------------

// Verifies GET and HEAD of a job ask for it by id, of the shard the id names.
TEST_F(JobRoutesTest, JobGetCall) {
  for (auto verb : {bhttp::verb::get, bhttp::verb::head}) {
    auto r = go(verb, "/v1/jobs/" + job_id);
    EXPECT_EQ(r.route, route_id::job);
    EXPECT_EQ(request_of<jobs::job_get>(r).id, job_id);
    EXPECT_EQ(shard_asked(), 42u);
  }
}

// Verifies an id that is not a job id is 404 not_found "no such job" without a call, on
// every route of one job.
TEST_F(JobRoutesTest, NotAJobIdIs404WithoutCall) {
  std::string upper = job_id;
  upper[20] = 'C';
  for (const auto& id : {std::string("abc"), job_id + "0", job_id.substr(1), upper,
                         std::string(20, '0') + "g", std::string("..")}) {
    auto get = go(bhttp::verb::get, "/v1/jobs/" + id);
    expect_error(get, bhttp::status::not_found, "not_found", "get " + id);
    EXPECT_EQ(message_of(response_of(get)), "no such job");
    EXPECT_EQ(get.route, route_id::job);
    expect_error(go(bhttp::verb::post, "/v1/jobs/" + id + "/complete", R"({"lease_id":"l"})"),
                 bhttp::status::not_found, "not_found", "complete " + id);
    expect_error(go(bhttp::verb::post, "/v1/jobs/" + id + "/fail", R"({"lease_id":"l"})"),
                 bhttp::status::not_found, "not_found", "fail " + id);
    expect_error(go(bhttp::verb::post, "/v1/jobs/" + id + "/retry"), bhttp::status::not_found,
                 "not_found", "retry " + id);
  }
  // A well-formed id of a shard this cluster does not have: refused by the placement of
  // the request, before any shard is asked.
  const auto beyond = jobs::make_job_id(shard_count, 7);
  for (auto verb : {bhttp::verb::get, bhttp::verb::post}) {
    auto r = go(verb, "/v1/jobs/" + beyond + (verb == bhttp::verb::post ? "/retry" : ""));
    EXPECT_TRUE(edge.shards.log.empty());
    auto res = edge.response(r);
    EXPECT_EQ(res.result(), bhttp::status::not_found);
    EXPECT_EQ(code_of(res), "not_found");
    EXPECT_EQ(message_of(res), "no such job");
  }
}

// Verifies complete carries the lease id and the result serialized (null when absent).
TEST_F(JobRoutesTest, CompleteCall) {
  const std::string target = "/v1/jobs/" + job_id + "/complete";
  auto r = go(bhttp::verb::post, target, R"({"lease_id":"L-1","result":{ "sent" : true }})");
  EXPECT_EQ(r.route, route_id::job_action);
  auto jr = request_of<jobs::job_complete>(r);
  EXPECT_EQ(jr.id, job_id);
  EXPECT_EQ(jr.lease_id, "L-1");
  EXPECT_EQ(jr.result, R"({"sent":true})");
  EXPECT_FALSE(jr.from_broker);
  EXPECT_EQ(shard_asked(), 42u);
  EXPECT_EQ(
    request_of<jobs::job_complete>(go(bhttp::verb::post, target, R"({"lease_id":"L"})")).result,
    "null");
  EXPECT_EQ(
    request_of<jobs::job_complete>(go(bhttp::verb::post, target, R"({"lease_id":"L","result":42})"))
      .result,
    "42");
  EXPECT_EQ(request_of<jobs::job_complete>(
              go(bhttp::verb::post, target, R"({"lease_id":"L","result":"ok"})"))
              .result,
            R"("ok")");
  EXPECT_EQ(request_of<jobs::job_complete>(
              go(bhttp::verb::post, target, R"({"lease_id":"L","result":null})"))
              .result,
            "null");
}

// Verifies fail carries the lease id, the error and retry, with their defaults.
TEST_F(JobRoutesTest, FailCall) {
  const std::string target = "/v1/jobs/" + job_id + "/fail";
  auto jr = request_of<jobs::job_fail>(
    go(bhttp::verb::post, target, R"({"lease_id":"L-2","error":"smtp down","retry":false})"));
  EXPECT_EQ(jr.id, job_id);
  EXPECT_EQ(jr.lease_id, "L-2");
  EXPECT_EQ(jr.error, "smtp down");
  EXPECT_FALSE(jr.retry);
  EXPECT_FALSE(jr.from_broker);
  EXPECT_EQ(shard_asked(), 42u);
  jr = request_of<jobs::job_fail>(go(bhttp::verb::post, target, R"({"lease_id":"L"})"));
  EXPECT_EQ(jr.lease_id, "L");
  EXPECT_EQ(jr.error, "failed");
  EXPECT_TRUE(jr.retry);
  std::string longest(4096, 'e');
  jr = request_of<jobs::job_fail>(
    go(bhttp::verb::post, target, R"({"lease_id":"L","error":")" + longest + R"(","retry":true})"));
  EXPECT_EQ(jr.error, longest);
  EXPECT_TRUE(jr.retry);
}

// Verifies extend asks the job's shard with the lease id and the new visibility (30 s
// when not given), and refuses what is not a lease id or a visibility in 1 s .. 12 h.
TEST_F(JobRoutesTest, ExtendCall) {
  const std::string target = "/v1/jobs/" + job_id + "/extend";
  auto r = go(bhttp::verb::post, target, R"({"lease_id":"L-3","visibility_ms":60000})");
  EXPECT_EQ(r.route, route_id::job_action);
  auto jr = request_of<jobs::job_extend>(r);
  EXPECT_EQ(jr.id, job_id);
  EXPECT_EQ(jr.lease_id, "L-3");
  EXPECT_EQ(jr.visibility_ms, 60000u);
  EXPECT_EQ(shard_asked(), 42u);
  jr = request_of<jobs::job_extend>(go(bhttp::verb::post, target, R"({"lease_id":"L"})"));
  EXPECT_EQ(jr.visibility_ms, 30000u);
  for (const std::string body :
       {R"({})", R"({"lease_id":""})", R"({"lease_id":"L","visibility_ms":999})",
        R"({"lease_id":"L","visibility_ms":43200001})", R"({"lease_id":"L","visibility_ms":"1s"})"})
    expect_error(go(bhttp::verb::post, target, body), bhttp::status::bad_request, "invalid_job",
                 body);
  expect_error(go(bhttp::verb::post, target, R"({"lease_id":"L","wait_ms":1})"),
               bhttp::status::bad_request, "unknown_field", "wait_ms");
}

// Verifies retry needs no body (an empty one or {}).
TEST_F(JobRoutesTest, RetryCall) {
  for (std::string body : {"", "{}"}) {
    auto r = go(bhttp::verb::post, "/v1/jobs/" + job_id + "/retry", body);
    EXPECT_EQ(r.route, route_id::job_action);
    EXPECT_EQ(request_of<jobs::job_retry>(r).id, job_id) << body;
    EXPECT_EQ(shard_asked(), 42u);
  }
}

// Verifies cancel needs no body (an empty one or {}) and asks the job's shard.
TEST_F(JobRoutesTest, CancelCall) {
  for (std::string body : {"", "{}"}) {
    auto r = go(bhttp::verb::post, "/v1/jobs/" + job_id + "/cancel", body);
    EXPECT_EQ(r.route, route_id::job_action);
    EXPECT_EQ(request_of<jobs::job_cancel>(r).id, job_id) << body;
    EXPECT_EQ(shard_asked(), 42u);
  }
}

// Verifies the lease id, error and retry members of complete and fail are validated.
TEST_F(JobRoutesTest, CompleteAndFailInvalidMembersAreInvalidJob) {
  struct bad_case {
    std::string action;
    std::string body;
    std::string names;
  };
  for (const auto& c : std::vector<bad_case>{
         {"complete", R"({})", "lease_id"},
         {"complete", R"({"result":1})", "lease_id"},
         {"complete", R"({"lease_id":""})", "lease_id"},
         {"complete", R"({"lease_id":7})", "lease_id"},
         {"fail", R"({})", "lease_id"},
         {"fail", R"({"lease_id":null})", "lease_id"},
         {"fail", R"({"lease_id":"L","error":5})", "error must be a string of at most 4096 bytes"},
         {"fail", R"({"lease_id":"L","error":")" + std::string(4097, 'e') + R"("})",
          "error must be a string of at most 4096 bytes"},
         {"fail", R"({"lease_id":"L","retry":"no"})", "retry must be true or false"},
         {"fail", R"({"lease_id":"L","retry":0})", "retry must be true or false"}}) {
    auto r = go(bhttp::verb::post, "/v1/jobs/" + job_id + "/" + c.action, c.body);
    expect_error(r, bhttp::status::bad_request, "invalid_job",
                 c.action + " " + c.body.substr(0, 40));
    if (auto* res = std::get_if<response>(&r.outcome)) {
      EXPECT_NE(message_of(*res).find(c.names), std::string::npos) << message_of(*res);
    }
  }
}

// Verifies an unknown action or queue sub-resource is the generic 404 of no route.
TEST_F(JobRoutesTest, UnknownActionIsNoRoute) {
  for (const auto& target : {"/v1/jobs/" + job_id + "/abort", "/v1/jobs/" + job_id + "/",
                             std::string("/v1/queues/q/other"), std::string("/v1/queues/q/jobs/x"),
                             "/v1/jobs/" + job_id + "/retry/x", std::string("/v1/queues")}) {
    auto r = go(bhttp::verb::post, target);
    EXPECT_EQ(r.route, route_id::unknown) << target;
    expect_error(r, bhttp::status::not_found, "not_found", target);
    EXPECT_EQ(message_of(response_of(r)), "no such route") << target;
  }
}

// Verifies the methods of each job route: others get 405 with the Allow header.
TEST_F(JobRoutesTest, WrongMethodIs405WithAllow) {
  struct method_case {
    bhttp::verb verb;
    std::string target;
    std::string allow;
    route_id route;
  };
  for (const auto& c : std::vector<method_case>{
         {bhttp::verb::delete_, "/v1/queues/q/jobs", "GET, HEAD, POST", route_id::queue_jobs},
         {bhttp::verb::put, "/v1/queues/q/jobs", "GET, HEAD, POST", route_id::queue_jobs},
         {bhttp::verb::post, "/v1/queues/q", "GET, HEAD", route_id::queue},
         {bhttp::verb::delete_, "/v1/queues/q", "GET, HEAD", route_id::queue},
         {bhttp::verb::get, "/v1/queues/q/lease", "POST", route_id::queue_lease},
         {bhttp::verb::post, "/v1/jobs/" + job_id, "GET, HEAD", route_id::job},
         {bhttp::verb::delete_, "/v1/jobs/" + job_id, "GET, HEAD", route_id::job},
         {bhttp::verb::get, "/v1/jobs/" + job_id + "/complete", "POST", route_id::job_action},
         {bhttp::verb::put, "/v1/jobs/" + job_id + "/fail", "POST", route_id::job_action},
         {bhttp::verb::head, "/v1/jobs/" + job_id + "/retry", "POST", route_id::job_action}}) {
    auto r = go(c.verb, c.target);
    EXPECT_EQ(r.route, c.route) << c.target;
    expect_error(r, bhttp::status::method_not_allowed, "method_not_allowed", c.target);
    EXPECT_EQ(response_of(r)[bhttp::field::allow], c.allow + ", OPTIONS") << c.target;
  }
}

// Verifies the metric labels of the job routes.
TEST(JobRouteLabelsTest, LabelsNameTheRoutes) {
  EXPECT_STREQ(route_label(route_id::queue_jobs), "/v1/queues/{q}/jobs");
  EXPECT_STREQ(route_label(route_id::queue), "/v1/queues/{q}");
  EXPECT_STREQ(route_label(route_id::queue_lease), "/v1/queues/{q}/lease");
  EXPECT_STREQ(route_label(route_id::job), "/v1/jobs/{id}");
  EXPECT_STREQ(route_label(route_id::job_action), "/v1/jobs/{id}/{action}");
  EXPECT_STREQ(route_label(route_id::unknown), "unknown");
  EXPECT_EQ(static_cast<std::size_t>(route_id::unknown) + 1, route_count);
}

// -- rendering ------------------------------------------------------------------------------

/// The rendering of what shards and the broker answer to the job routes.
class RenderJobTest : public JobRoutesTest {
protected:
  /// Routes a request that asks for an R, answers it with `answer` and returns what the
  /// handler rendered.
  template <class R>
  response render(bhttp::verb verb, const std::string& target, std::string body,
                  core::result<protocol::reply_of<R>> answer) {
    auto r = go(verb, target, std::move(body));
    EXPECT_TRUE(std::holds_alternative<pending>(r.outcome)) << target;
    EXPECT_EQ(edge.shards.all<R>().size(), 1u) << target;
    edge.shards.answer<R>(0, std::move(answer));
    EXPECT_EQ(edge.port->posted.size(), 1u) << target;
    return edge.response(r);
  }

  /// GET /v1/queues/q with every shard answering `answer(shard)`.
  template <class F>
  response render_stats(const std::string& queue, F answer) {
    auto r = go(bhttp::verb::get, "/v1/queues/" + queue);
    EXPECT_EQ(edge.shards.all<jobs::queue_stats>().size(), shard_count);
    edge.shards.answer_all<jobs::queue_stats>(
      [&](std::uint32_t shard, const jobs::queue_stats&) { return answer(shard); });
    EXPECT_EQ(edge.port->posted.size(), 1u) << "a gather answers once, when all answered";
    return edge.response(r);
  }

  template <class R>
  struct asks {
    using type = R;
  };

  /// Calls `f(asks<R>{}, verb, target, body)` with a request of each job route and the
  /// request type R it asks.
  template <class F>
  void for_each_route(F f) {
    f(asks<jobs::job_get>{}, bhttp::verb::get, "/v1/jobs/" + job_id, "");
    f(asks<jobs::job_enqueue>{}, bhttp::verb::post, "/v1/queues/q/jobs", R"({"type":"t"})");
    f(asks<jobs::queue_lease>{}, bhttp::verb::post, "/v1/queues/q/lease", "");
    f(asks<jobs::job_complete>{}, bhttp::verb::post, "/v1/jobs/" + job_id + "/complete",
      R"({"lease_id":"L"})");
    f(asks<jobs::job_fail>{}, bhttp::verb::post, "/v1/jobs/" + job_id + "/fail",
      R"({"lease_id":"L"})");
    f(asks<jobs::job_retry>{}, bhttp::verb::post, "/v1/jobs/" + job_id + "/retry", "");
  }
};

// Verifies a new job is 202 with the reply's body as is and a Location naming the job.
TEST_F(RenderJobTest, CreatedIs202WithLocation) {
  std::string body = R"({"id":")" + job_id + R"(","state":"queued"})";
  auto res = render<jobs::job_enqueue>(bhttp::verb::post, "/v1/queues/q/jobs", R"({"type":"t"})",
                                       jobs::job_enqueued{job_id, body, true});
  EXPECT_EQ(res.result(), bhttp::status::accepted);
  EXPECT_EQ(res.body(), body);
  EXPECT_EQ(res[bhttp::field::location], "/v1/jobs/" + job_id);
  EXPECT_EQ(res[bhttp::field::content_type], "application/json");
}

// Verifies an enqueue that met its idempotency key is 200 with the whole job and the
// same Location.
TEST_F(RenderJobTest, ExistingIs200WithLocation) {
  std::string body = R"({"id":")" + job_id + R"(","queue":"q","type":"t","state":"running"})";
  auto res = render<jobs::job_enqueue>(bhttp::verb::post, "/v1/queues/q/jobs",
                                       R"({"type":"t","idempotency_key":"k"})",
                                       jobs::job_enqueued{job_id, body, false});
  EXPECT_EQ(res.result(), bhttp::status::ok);
  EXPECT_EQ(res.body(), body);
  EXPECT_EQ(res[bhttp::field::location], "/v1/jobs/" + job_id);
}

// Verifies get, complete, fail and retry answer 200 with the job as the reply holds it.
TEST_F(RenderJobTest, OkIsTheJobAsIs) {
  std::string body = R"({"id":")" + job_id + R"(","state":"succeeded","result":null})";
  const jobs::job_view view{job_id, body};
  for (const auto& res :
       {render<jobs::job_get>(bhttp::verb::get, "/v1/jobs/" + job_id, "", view),
        render<jobs::job_complete>(bhttp::verb::post, "/v1/jobs/" + job_id + "/complete",
                                   R"({"lease_id":"L"})", view),
        render<jobs::job_fail>(bhttp::verb::post, "/v1/jobs/" + job_id + "/fail",
                               R"({"lease_id":"L"})", view),
        render<jobs::job_retry>(bhttp::verb::post, "/v1/jobs/" + job_id + "/retry", "", view)}) {
    EXPECT_EQ(res.result(), bhttp::status::ok);
    EXPECT_EQ(res.body(), body);
    EXPECT_EQ(res[bhttp::field::location], "");
    EXPECT_EQ(res[bhttp::field::content_type], "application/json");
  }
}

// Verifies a job list answers the first `limit` jobs of all shards in id order, with the
// last one's id as next_cursor when more follow (more jobs than the limit, or a shard
// that had more) and null when not; one shard's failure is the answer.
TEST_F(RenderJobTest, JobListMergesEveryShardsPageInIdOrder) {
  auto view = [](std::uint32_t shard, std::uint64_t seq) {
    auto id = jobs::make_job_id(shard, seq);
    return jobs::job_view{id, R"({"id":")" + id + R"("})"};
  };
  auto list = [&](std::string query, auto answer) {
    auto r = go(bhttp::verb::get, "/v1/queues/q/jobs?state=dead" + query);
    EXPECT_EQ(edge.shards.all<jobs::job_list>().size(), shard_count);
    edge.shards.answer_all<jobs::job_list>(
      [&](std::uint32_t shard, const jobs::job_list&) { return answer(shard); });
    EXPECT_EQ(edge.port->posted.size(), 1u) << "a gather answers once, when all answered";
    return edge.response(r);
  };
  // Shards 3 and 1 hold two jobs each, answered in shard order: the page sorts by id.
  auto page = [&](std::uint32_t shard) -> core::result<jobs::job_page> {
    jobs::job_page p;
    if (shard == 3 || shard == 1) p.jobs = {view(shard, 2), view(shard, 9)};
    return p;
  };
  auto res = list("&limit=3", page);
  ASSERT_EQ(res.result(), bhttp::status::ok);
  auto body = boost::json::parse(res.body()).as_object();
  ASSERT_EQ(body.at("jobs").as_array().size(), 3u);
  EXPECT_EQ(body.at("jobs").as_array()[0].at("id"), jobs::make_job_id(1, 2).c_str());
  EXPECT_EQ(body.at("jobs").as_array()[1].at("id"), jobs::make_job_id(1, 9).c_str());
  EXPECT_EQ(body.at("jobs").as_array()[2].at("id"), jobs::make_job_id(3, 2).c_str());
  EXPECT_EQ(body.at("next_cursor"), jobs::make_job_id(3, 2).c_str());

  res = list("&limit=4", page);
  body = boost::json::parse(res.body()).as_object();
  EXPECT_EQ(body.at("jobs").as_array().size(), 4u);
  EXPECT_TRUE(body.at("next_cursor").is_null()) << res.body();

  // A shard that filled its page has more: the cursor continues after its last.
  res = list("&limit=1", [&](std::uint32_t shard) -> core::result<jobs::job_page> {
    jobs::job_page p;
    if (shard == 5) {
      p.jobs = {view(5, 1)};
      p.more = true;
    }
    return p;
  });
  body = boost::json::parse(res.body()).as_object();
  EXPECT_EQ(body.at("next_cursor"), jobs::make_job_id(5, 1).c_str());

  res = list("", [&](std::uint32_t shard) -> core::result<jobs::job_page> {
    if (shard == 9) return core::error{core::errc::shard_unavailable, "node down"};
    return jobs::job_page{};
  });
  EXPECT_EQ(res.result(), bhttp::status::service_unavailable);
}

// Verifies stats render the counts summed over every shard and the age of the oldest
// queued job on any shard (null when none).
TEST_F(RenderJobTest, StatsRenderCountsAndAge) {
  auto res = render_stats("emails", [](std::uint32_t shard) {
    if (shard == 3) return jobs::job_counts{1, 2, 3, 0, 4, 1, 0};
    if (shard == 40) return jobs::job_counts{2, 0, 7, 1, 0, 2, 0};
    return jobs::job_counts{};
  });
  ASSERT_EQ(res.result(), bhttp::status::ok);
  EXPECT_EQ(res[bhttp::field::content_type], "application/json");
  auto v = boost::json::parse(res.body()).as_object();
  EXPECT_EQ(v.at("queue").as_string(), "emails");
  const auto& counts = v.at("counts").as_object();
  EXPECT_EQ(counts.size(), 6u);
  EXPECT_EQ(counts.at("queued").to_number<std::uint64_t>(), 3u);
  EXPECT_EQ(counts.at("running").to_number<std::uint64_t>(), 2u);
  EXPECT_EQ(counts.at("succeeded").to_number<std::uint64_t>(), 10u);
  EXPECT_EQ(counts.at("failed").to_number<std::uint64_t>(), 1u);
  EXPECT_EQ(counts.at("dead").to_number<std::uint64_t>(), 4u);
  EXPECT_EQ(counts.at("cancelled").to_number<std::uint64_t>(), 3u);
  EXPECT_TRUE(v.at("oldest_queued_age_ms").is_null());

  auto now_ms = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                             std::chrono::system_clock::now().time_since_epoch())
                                             .count());
  res = render_stats("q", [&](std::uint32_t shard) {
    jobs::job_counts c;
    if (shard == 1) c = {1, 0, 0, 0, 0, 0, now_ms - 1000};
    if (shard == 2) c = {1, 0, 0, 0, 0, 0, now_ms - 5000}; // the oldest of all shards
    return c;
  });
  auto age = boost::json::parse(res.body()).at("oldest_queued_age_ms").to_number<std::uint64_t>();
  EXPECT_GE(age, 5000u);
  EXPECT_LT(age, 65000u);

  // A clock behind the shard's (another node) never makes the age negative.
  res = render_stats("q", [&](std::uint32_t shard) {
    jobs::job_counts c;
    if (shard == 0) c = {1, 0, 0, 0, 0, 0, now_ms + 60000};
    return c;
  });
  EXPECT_EQ(boost::json::parse(res.body()).at("oldest_queued_age_ms").to_number<std::uint64_t>(),
            0u);
}

// Verifies a lease renders its jobs with payloads embedded as JSON, and [] when none.
TEST_F(RenderJobTest, LeaseRendersJobsWithPayloadAsJson) {
  jobs::leased_jobs leased;
  leased.jobs.push_back({job_id, "q", "send", R"({"to":"a@b","n":[1,2]})", 2, "L-9", 12345});
  leased.jobs.push_back({jobs::make_job_id(1, 2), "q", "other", "{}", 1, "L-10", 0});
  auto res = render<jobs::queue_lease>(bhttp::verb::post, "/v1/queues/q/lease", "", leased);
  ASSERT_EQ(res.result(), bhttp::status::ok);
  auto v = boost::json::parse(res.body()).as_object();
  EXPECT_EQ(v.size(), 1u);
  const auto& list = v.at("jobs").as_array();
  ASSERT_EQ(list.size(), 2u);
  const auto& first = list[0].as_object();
  EXPECT_EQ(first.size(), 5u);
  EXPECT_EQ(first.at("id").as_string(), job_id);
  EXPECT_EQ(first.at("type").as_string(), "send");
  ASSERT_TRUE(first.at("payload").is_object());
  EXPECT_EQ(boost::json::serialize(first.at("payload")), R"({"to":"a@b","n":[1,2]})");
  EXPECT_EQ(first.at("attempt").to_number<int>(), 2);
  EXPECT_EQ(first.at("lease_id").as_string(), "L-9");
  EXPECT_TRUE(list[1].at("payload").is_object());
  EXPECT_EQ(list[1].at("lease_id").as_string(), "L-10");

  auto empty =
    render<jobs::queue_lease>(bhttp::verb::post, "/v1/queues/q/lease", "", jobs::leased_jobs{});
  EXPECT_EQ(empty.result(), bhttp::status::ok);
  EXPECT_EQ(empty.body(), R"({"jobs":[]})");
}

// Verifies every error a job request can end with maps to its HTTP status and code, 503s
// with Retry-After, and the error's message when it has one.
TEST_F(RenderJobTest, ErrorStatusesMapToHttp) {
  struct error_case {
    core::error error; ///< as the jobs module, the broker or the transport make it
    bhttp::status http;
    std::string code;
  };
  const std::vector<error_case> cases{
    {{core::errc::not_found, "detail from the shard"}, bhttp::status::not_found, "not_found"},
    {{core::errc::conflict, "stale_lease", "detail from the shard"},
     bhttp::status::conflict,
     "stale_lease"},
    {{core::errc::conflict, "wrong_state", "detail from the shard"},
     bhttp::status::conflict,
     "wrong_state"},
    {{core::errc::invalid_argument, "invalid_job", "detail from the shard"},
     bhttp::status::bad_request,
     "invalid_job"},
    {{core::errc::storage_failed, "detail from the shard"},
     bhttp::status::service_unavailable,
     "storage_unavailable"},
    {{core::errc::shutting_down, "detail from the shard"},
     bhttp::status::service_unavailable,
     "shutting_down"},
    {{core::errc::shard_unavailable, "detail from the shard"},
     bhttp::status::service_unavailable,
     "shard_unavailable"}};
  auto check = [](const response& res, const error_case& c, const std::string& what) {
    EXPECT_EQ(res.result(), c.http) << c.code << " " << what;
    EXPECT_EQ(code_of(res), c.code) << what;
    EXPECT_EQ(res[bhttp::field::content_type], "application/json") << what;
    EXPECT_EQ(res[bhttp::field::location], "") << what;
    EXPECT_EQ(res[bhttp::field::retry_after],
              c.http == bhttp::status::service_unavailable ? "1" : "")
      << c.code << " " << what;
  };
  for (const auto& c : cases) {
    for_each_route(
      [&](auto asked, bhttp::verb verb, const std::string& target, const std::string& body) {
        using R = typename decltype(asked)::type;
        auto res = render<R>(verb, target, body, c.error);
        check(res, c, target);
        EXPECT_EQ(message_of(res), "detail from the shard") << target;
        // Without a message, a default one still says what happened.
        core::error bare = c.error;
        bare.message_ref().clear();
        auto plain = render<R>(verb, target, body, bare);
        check(plain, c, target);
        EXPECT_FALSE(message_of(plain).empty()) << c.code << " " << target;
      });
    // Stats: one shard's failure is the answer (the counts would be wrong).
    auto stats = render_stats("q", [&](std::uint32_t shard) -> core::result<jobs::job_counts> {
      if (shard == 17) return c.error;
      return jobs::job_counts{1, 0, 0, 0, 0, 0};
    });
    check(stats, c, "stats");
    EXPECT_EQ(message_of(stats), "detail from the shard");
  }
}

} // namespace
} // namespace shoal::http
