// SPDX-License-Identifier: Apache-2.0
// The job routes of the router (pure): targets and bodies → job_request, every
// validation error, and the rendering of every job reply.
#include "http/router.hpp"

#include <chrono>
#include <string>
#include <vector>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "jobs/ids.hpp"

namespace shoal::http {
namespace {

namespace bhttp = boost::beast::http;

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
  route_env env;

  routed go(bhttp::verb verb, const std::string& target, std::string body = {},
            std::string content_type = "application/json") {
    auto req = make(verb, target, std::move(body), std::move(content_type));
    return route(req, env);
  }

  /// The job request of a routed call (fails the test when there is none).
  static jobs::job_request request_of(const routed& r) {
    EXPECT_TRUE(std::holds_alternative<job_invocation>(r.outcome));
    if (auto* call = std::get_if<job_invocation>(&r.outcome)) return call->request;
    return {};
  }

  /// The response of a routed request that built no call.
  static response response_of(const routed& r) {
    EXPECT_TRUE(std::holds_alternative<response>(r.outcome));
    if (auto* res = std::get_if<response>(&r.outcome)) return *res;
    return {};
  }

  /// Expects `r` to be an error response with `status` and `code`, and no call.
  static void expect_error(const routed& r, bhttp::status status, std::string_view code,
                           const std::string& what) {
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
  auto jr = request_of(r);
  EXPECT_EQ(jr.op, jobs::job_op::enqueue);
  EXPECT_EQ(jr.queue, "emails");
  EXPECT_EQ(jr.id, "");
  EXPECT_EQ(jr.type, "send.welcome-1");
  EXPECT_EQ(jr.body, R"({"to":"a@b","n":[1,2]})");
  EXPECT_EQ(jr.delay_ms, 1500u);
  EXPECT_EQ(jr.max_attempts, 7u);
  EXPECT_EQ(jr.key, "user:42@signup");
}

// Verifies the defaults of an enqueue: empty payload, no delay, 5 attempts, no key.
TEST_F(JobRoutesTest, EnqueueDefaults) {
  auto jr = request_of(go(bhttp::verb::post, "/v1/queues/q/jobs", R"({"type":"t"})"));
  EXPECT_EQ(jr.op, jobs::job_op::enqueue);
  EXPECT_EQ(jr.queue, "q");
  EXPECT_EQ(jr.id, "");
  EXPECT_EQ(jr.type, "t");
  EXPECT_EQ(jr.body, "{}");
  EXPECT_EQ(jr.delay_ms, 0u);
  EXPECT_EQ(jr.max_attempts, 5u);
  EXPECT_EQ(jr.key, "");
}

// Verifies the bounds themselves are accepted, and a whole number written as 1e3 counts.
TEST_F(JobRoutesTest, EnqueueAcceptsTheLimits) {
  std::string type(64, 't');
  std::string key(256, 'k');
  auto jr = request_of(go(bhttp::verb::post, "/v1/queues/" + std::string(64, 'q') + "/jobs",
                          R"({"type":")" + type + R"(","delay_ms":604800000,"max_attempts":100,)"
                            + R"("idempotency_key":")" + key + R"("})"));
  EXPECT_EQ(jr.type, type);
  EXPECT_EQ(jr.delay_ms, 604800000u);
  EXPECT_EQ(jr.max_attempts, 100u);
  EXPECT_EQ(jr.key, key);
  jr = request_of(go(bhttp::verb::post, "/v1/queues/q/jobs",
                     R"({"type":"t","delay_ms":1e3,"max_attempts":1,"payload":{}})"));
  EXPECT_EQ(jr.delay_ms, 1000u);
  EXPECT_EQ(jr.max_attempts, 1u);
  EXPECT_EQ(jr.body, "{}");
}

// Verifies delay_ms is bounded by env.max_job_delay_ms (jobs.max_delay_ms).
TEST_F(JobRoutesTest, EnqueueDelayFollowsTheConfiguredMaximum) {
  env.max_job_delay_ms = 1000;
  EXPECT_EQ(
    request_of(go(bhttp::verb::post, "/v1/queues/q/jobs", R"({"type":"t","delay_ms":1000})"))
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
         {"/v1/jobs/" + job_id + "/retry", R"({"priority":1})"}}) {
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
  for (const auto& target :
       {std::string("/v1/queues/q/jobs"), std::string("/v1/queues/q/lease"), complete,
        "/v1/jobs/" + job_id + "/fail", "/v1/jobs/" + job_id + "/retry"}) {
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
    EXPECT_EQ(request_of(go(bhttp::verb::post, "/v1/queues/q/jobs", R"({"type":"t"})", ct)).op,
              jobs::job_op::enqueue)
      << ct;
}

// -- stats ----------------------------------------------------------------------------------

// Verifies GET and HEAD of a queue ask for its stats.
TEST_F(JobRoutesTest, QueueStatsCall) {
  for (auto verb : {bhttp::verb::get, bhttp::verb::head}) {
    auto r = go(verb, "/v1/queues/emails?x=1");
    EXPECT_EQ(r.route, route_id::queue);
    auto jr = request_of(r);
    EXPECT_EQ(jr.op, jobs::job_op::stats);
    EXPECT_EQ(jr.queue, "emails");
    EXPECT_EQ(jr.id, "");
  }
}

// -- lease ----------------------------------------------------------------------------------

// Verifies a lease builds max, visibility_ms and wait_ms from the body, and leaves the
// broker-only fields alone.
TEST_F(JobRoutesTest, LeaseBuildsEveryField) {
  auto r = go(bhttp::verb::post, "/v1/queues/emails/lease",
              R"({"max":10,"visibility_ms":60000,"wait_ms":2500})");
  EXPECT_EQ(r.route, route_id::queue_lease);
  auto jr = request_of(r);
  EXPECT_EQ(jr.op, jobs::job_op::lease);
  EXPECT_EQ(jr.queue, "emails");
  EXPECT_EQ(jr.max, 10u);
  EXPECT_EQ(jr.visibility_ms, 60000u);
  EXPECT_EQ(jr.wait_ms, 2500u);
  EXPECT_EQ(jr.owner, "");
  EXPECT_TRUE(jr.types.empty());
  EXPECT_FALSE(jr.from_broker);
  EXPECT_EQ(jr.id, "");
}

// Verifies an empty body and {} both lease with the defaults.
TEST_F(JobRoutesTest, LeaseDefaults) {
  for (std::string body : {"", "{}"}) {
    auto jr = request_of(go(bhttp::verb::post, "/v1/queues/q/lease", body));
    EXPECT_EQ(jr.op, jobs::job_op::lease) << body;
    EXPECT_EQ(jr.queue, "q");
    EXPECT_EQ(jr.max, 1u);
    EXPECT_EQ(jr.visibility_ms, 30000u);
    EXPECT_EQ(jr.wait_ms, 0u);
    EXPECT_EQ(jr.owner, "");
    EXPECT_TRUE(jr.types.empty());
    EXPECT_FALSE(jr.from_broker);
  }
}

// Verifies the bounds of a lease are accepted.
TEST_F(JobRoutesTest, LeaseAcceptsTheLimits) {
  auto jr = request_of(go(bhttp::verb::post, "/v1/queues/q/lease",
                          R"({"max":100,"visibility_ms":43200000,"wait_ms":60000})"));
  EXPECT_EQ(jr.max, 100u);
  EXPECT_EQ(jr.visibility_ms, 43200000u);
  EXPECT_EQ(jr.wait_ms, 60000u);
  jr = request_of(
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

// Verifies GET and HEAD of a job ask for it by id.
TEST_F(JobRoutesTest, JobGetCall) {
  for (auto verb : {bhttp::verb::get, bhttp::verb::head}) {
    auto r = go(verb, "/v1/jobs/" + job_id);
    EXPECT_EQ(r.route, route_id::job);
    auto jr = request_of(r);
    EXPECT_EQ(jr.op, jobs::job_op::get);
    EXPECT_EQ(jr.id, job_id);
    EXPECT_EQ(jr.queue, "");
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
}

// Verifies complete carries the lease id and the result serialized (null when absent).
TEST_F(JobRoutesTest, CompleteCall) {
  auto r = go(bhttp::verb::post, "/v1/jobs/" + job_id + "/complete",
              R"({"lease_id":"L-1","result":{ "sent" : true }})");
  EXPECT_EQ(r.route, route_id::job_action);
  auto jr = request_of(r);
  EXPECT_EQ(jr.op, jobs::job_op::complete);
  EXPECT_EQ(jr.id, job_id);
  EXPECT_EQ(jr.key, "L-1");
  EXPECT_EQ(jr.body, R"({"sent":true})");
  EXPECT_EQ(
    request_of(go(bhttp::verb::post, "/v1/jobs/" + job_id + "/complete", R"({"lease_id":"L"})"))
      .body,
    "null");
  EXPECT_EQ(request_of(go(bhttp::verb::post, "/v1/jobs/" + job_id + "/complete",
                          R"({"lease_id":"L","result":42})"))
              .body,
            "42");
  EXPECT_EQ(request_of(go(bhttp::verb::post, "/v1/jobs/" + job_id + "/complete",
                          R"({"lease_id":"L","result":"ok"})"))
              .body,
            R"("ok")");
  EXPECT_EQ(request_of(go(bhttp::verb::post, "/v1/jobs/" + job_id + "/complete",
                          R"({"lease_id":"L","result":null})"))
              .body,
            "null");
}

// Verifies fail carries the lease id, the error and retry, with their defaults.
TEST_F(JobRoutesTest, FailCall) {
  auto jr = request_of(go(bhttp::verb::post, "/v1/jobs/" + job_id + "/fail",
                          R"({"lease_id":"L-2","error":"smtp down","retry":false})"));
  EXPECT_EQ(jr.op, jobs::job_op::fail);
  EXPECT_EQ(jr.id, job_id);
  EXPECT_EQ(jr.key, "L-2");
  EXPECT_EQ(jr.body, "smtp down");
  EXPECT_FALSE(jr.retry);
  jr = request_of(go(bhttp::verb::post, "/v1/jobs/" + job_id + "/fail", R"({"lease_id":"L"})"));
  EXPECT_EQ(jr.key, "L");
  EXPECT_EQ(jr.body, "failed");
  EXPECT_TRUE(jr.retry);
  std::string longest(4096, 'e');
  jr = request_of(go(bhttp::verb::post, "/v1/jobs/" + job_id + "/fail",
                     R"({"lease_id":"L","error":")" + longest + R"(","retry":true})"));
  EXPECT_EQ(jr.body, longest);
  EXPECT_TRUE(jr.retry);
}

// Verifies retry needs no body (an empty one or {}).
TEST_F(JobRoutesTest, RetryCall) {
  for (std::string body : {"", "{}"}) {
    auto r = go(bhttp::verb::post, "/v1/jobs/" + job_id + "/retry", body);
    EXPECT_EQ(r.route, route_id::job_action);
    auto jr = request_of(r);
    EXPECT_EQ(jr.op, jobs::job_op::retry) << body;
    EXPECT_EQ(jr.id, job_id);
    EXPECT_EQ(jr.key, "");
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
  for (const auto& target : {"/v1/jobs/" + job_id + "/cancel", "/v1/jobs/" + job_id + "/",
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
         {bhttp::verb::get, "/v1/queues/q/jobs", "POST", route_id::queue_jobs},
         {bhttp::verb::put, "/v1/queues/q/jobs", "POST", route_id::queue_jobs},
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
    EXPECT_EQ(response_of(r)[bhttp::field::allow], c.allow) << c.target;
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

job_invocation invocation(jobs::job_op op, std::string queue = "q", std::string id = {}) {
  job_invocation call;
  call.request.op = op;
  call.request.queue = std::move(queue);
  call.request.id = std::move(id);
  return call;
}

jobs::job_reply reply_with(jobs::job_status status, std::string body = {},
                           std::string message = {}) {
  jobs::job_reply reply;
  reply.status = status;
  reply.body = std::move(body);
  reply.message = std::move(message);
  return reply;
}

// Verifies a new job is 202 with the reply's body as is and a Location naming the job.
TEST(RenderJobTest, CreatedIs202WithLocation) {
  std::string body = R"({"id":")" + job_id + R"(","state":"queued"})";
  auto res = render_job_reply(invocation(jobs::job_op::enqueue),
                              reply_with(jobs::job_status::created, body), 11);
  EXPECT_EQ(res.result(), bhttp::status::accepted);
  EXPECT_EQ(res.body(), body);
  EXPECT_EQ(res[bhttp::field::location], "/v1/jobs/" + job_id);
  EXPECT_EQ(res[bhttp::field::content_type], "application/json");
}

// Verifies an enqueue that met its idempotency key is 200 with the whole job and the
// same Location.
TEST(RenderJobTest, ExistingIs200WithLocation) {
  std::string body = R"({"id":")" + job_id + R"(","queue":"q","type":"t","state":"running"})";
  auto res = render_job_reply(invocation(jobs::job_op::enqueue),
                              reply_with(jobs::job_status::existing, body), 11);
  EXPECT_EQ(res.result(), bhttp::status::ok);
  EXPECT_EQ(res.body(), body);
  EXPECT_EQ(res[bhttp::field::location], "/v1/jobs/" + job_id);
}

// Verifies get, complete, fail and retry answer 200 with the job as the reply holds it.
TEST(RenderJobTest, OkIsTheJobAsIs) {
  std::string body = R"({"id":")" + job_id + R"(","state":"succeeded","result":null})";
  for (auto op :
       {jobs::job_op::get, jobs::job_op::complete, jobs::job_op::fail, jobs::job_op::retry}) {
    auto res =
      render_job_reply(invocation(op, "", job_id), reply_with(jobs::job_status::ok, body), 11);
    EXPECT_EQ(res.result(), bhttp::status::ok);
    EXPECT_EQ(res.body(), body);
    EXPECT_EQ(res[bhttp::field::location], "");
  }
}

// Verifies stats render the counts and the age of the oldest queued job (null when none).
TEST(RenderJobTest, StatsRenderCountsAndAge) {
  auto reply = reply_with(jobs::job_status::ok);
  reply.counts = {3, 2, 10, 1, 4, 0};
  auto res = render_job_reply(invocation(jobs::job_op::stats, "emails"), std::move(reply), 11);
  ASSERT_EQ(res.result(), bhttp::status::ok);
  auto v = boost::json::parse(res.body()).as_object();
  EXPECT_EQ(v.at("queue").as_string(), "emails");
  const auto& counts = v.at("counts").as_object();
  EXPECT_EQ(counts.size(), 5u);
  EXPECT_EQ(counts.at("queued").to_number<std::uint64_t>(), 3u);
  EXPECT_EQ(counts.at("running").to_number<std::uint64_t>(), 2u);
  EXPECT_EQ(counts.at("succeeded").to_number<std::uint64_t>(), 10u);
  EXPECT_EQ(counts.at("failed").to_number<std::uint64_t>(), 1u);
  EXPECT_EQ(counts.at("dead").to_number<std::uint64_t>(), 4u);
  EXPECT_TRUE(v.at("oldest_queued_age_ms").is_null());

  auto now_ms = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                             std::chrono::system_clock::now().time_since_epoch())
                                             .count());
  reply = reply_with(jobs::job_status::ok);
  reply.counts.queued = 1;
  reply.counts.oldest_queued_ms = now_ms - 5000;
  res = render_job_reply(invocation(jobs::job_op::stats), std::move(reply), 11);
  auto age = boost::json::parse(res.body()).at("oldest_queued_age_ms").to_number<std::uint64_t>();
  EXPECT_GE(age, 5000u);
  EXPECT_LT(age, 65000u);

  // A clock behind the shard's (another node) never makes the age negative.
  reply = reply_with(jobs::job_status::ok);
  reply.counts.oldest_queued_ms = now_ms + 60000;
  res = render_job_reply(invocation(jobs::job_op::stats), std::move(reply), 11);
  EXPECT_EQ(boost::json::parse(res.body()).at("oldest_queued_age_ms").to_number<std::uint64_t>(),
            0u);
}

// Verifies a lease renders its jobs with payloads embedded as JSON, and [] when none.
TEST(RenderJobTest, LeaseRendersJobsWithPayloadAsJson) {
  auto reply = reply_with(jobs::job_status::ok);
  reply.jobs.push_back({job_id, "q", "send", R"({"to":"a@b","n":[1,2]})", 2, "L-9", 12345});
  reply.jobs.push_back({jobs::make_job_id(1, 2), "q", "other", "{}", 1, "L-10", 0});
  auto res = render_job_reply(invocation(jobs::job_op::lease), std::move(reply), 11);
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
    render_job_reply(invocation(jobs::job_op::lease), reply_with(jobs::job_status::ok), 11);
  EXPECT_EQ(empty.result(), bhttp::status::ok);
  EXPECT_EQ(empty.body(), R"({"jobs":[]})");
}

// Verifies every error status of a job reply maps to its HTTP status and code, 503s
// with Retry-After, and the reply's message when it has one.
TEST(RenderJobTest, ErrorStatusesMapToHttp) {
  struct error_case {
    jobs::job_status status;
    bhttp::status http;
    std::string code;
  };
  for (const auto& c : std::vector<error_case>{
         {jobs::job_status::not_found, bhttp::status::not_found, "not_found"},
         {jobs::job_status::stale_lease, bhttp::status::conflict, "stale_lease"},
         {jobs::job_status::wrong_state, bhttp::status::conflict, "wrong_state"},
         {jobs::job_status::invalid, bhttp::status::bad_request, "invalid_job"},
         {jobs::job_status::storage_error, bhttp::status::service_unavailable,
          "storage_unavailable"},
         {jobs::job_status::unavailable, bhttp::status::service_unavailable, "shutting_down"},
         {jobs::job_status::shard_unavailable, bhttp::status::service_unavailable,
          "shard_unavailable"}}) {
    for (auto op : {jobs::job_op::get, jobs::job_op::enqueue, jobs::job_op::lease,
                    jobs::job_op::stats, jobs::job_op::complete}) {
      auto res = render_job_reply(invocation(op, "q", job_id),
                                  reply_with(c.status, {}, "detail from the shard"), 11);
      EXPECT_EQ(res.result(), c.http) << c.code;
      EXPECT_EQ(code_of(res), c.code);
      EXPECT_EQ(message_of(res), "detail from the shard");
      EXPECT_EQ(res[bhttp::field::location], "");
      EXPECT_EQ(res[bhttp::field::retry_after],
                c.http == bhttp::status::service_unavailable ? "1" : "")
        << c.code;
      // Without a message, a default one still says what happened.
      auto bare = render_job_reply(invocation(op), reply_with(c.status), 11);
      EXPECT_EQ(bare.result(), c.http);
      EXPECT_FALSE(message_of(bare).empty()) << c.code;
    }
  }
  EXPECT_EQ(message_of(render_job_reply(invocation(jobs::job_op::get),
                                        reply_with(jobs::job_status::not_found), 11)),
            "no such job");
}

} // namespace
} // namespace shoal::http
