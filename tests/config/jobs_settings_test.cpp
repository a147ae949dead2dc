// SPDX-License-Identifier: Apache-2.0
// The [jobs] keys: the scalar keys, the [jobs.queues.NAME] tables and the retry rule.
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "config/settings.hpp"

namespace {

using shoal::config::config_error;
using shoal::config::jobs_settings;
using shoal::config::load;
using shoal::config::load_from_string;
using shoal::config::queue_settings;
using shoal::config::settings;

const std::string single_node_toml = SHOAL_SOURCE_DIR "/config/single-node.toml";

void expect_error(const std::string& toml, const std::vector<std::string>& overrides,
                  const std::string& key, const std::string& fragment) {
  SCOPED_TRACE(toml);
  try {
    load_from_string(toml, overrides);
    ADD_FAILURE() << "no config_error; expected one for " << key;
  } catch (const config_error& e) {
    EXPECT_EQ(e.key(), key) << e.what();
    EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

void expect_jobs_defaults(const jobs_settings& j) {
  EXPECT_EQ(j.workers, 4u);
  EXPECT_TRUE(j.queues.empty());
  EXPECT_EQ(j.retry_base_ms, 500u);
  EXPECT_EQ(j.retry_cap_ms, 300'000u);
  EXPECT_EQ(j.handler_timeout_ms, 30'000u);
  EXPECT_EQ(j.webhook_timeout_ms, 10'000u);
  EXPECT_EQ(j.max_delay_ms, 604'800'000u);
  EXPECT_EQ(j.metrics_max_series, 200u);
  EXPECT_EQ(j.workers_of("emails"), 4u);
}

// -- defaults -------------------------------------------------------------------

// Verifies that no file, the shipped single-node file and an empty [jobs] give the defaults.
TEST(JobsSettingsTest, Defaults) {
  expect_jobs_defaults(load(std::nullopt, {}).jobs);
  expect_jobs_defaults(load(single_node_toml, {}).jobs);
  expect_jobs_defaults(load_from_string("[jobs]\n", {}).jobs);
  expect_jobs_defaults(load_from_string("[jobs.queues]\n", {}).jobs);
}

// -- scalar keys ------------------------------------------------------------------

// Verifies that each file value lands in its own field.
TEST(JobsSettingsTest, FileValuesApplied) {
  const settings s = load_from_string(R"(
    [jobs]
    workers = 0
    retry_base_ms = 1000
    retry_cap_ms = 2000
    handler_timeout_ms = 100
    webhook_timeout_ms = 600000
    max_delay_ms = 31536000000
    metrics_max_series = 7
    webhook_allow = "10.0.0.0/8, 127.0.0.1"
  )",
                                      {});
  EXPECT_EQ(s.jobs.workers, 0u);
  EXPECT_EQ(s.jobs.retry_base_ms, 1000u);
  EXPECT_EQ(s.jobs.retry_cap_ms, 2000u);
  EXPECT_EQ(s.jobs.handler_timeout_ms, 100u);
  EXPECT_EQ(s.jobs.webhook_timeout_ms, 600'000u);
  EXPECT_EQ(s.jobs.max_delay_ms, 31'536'000'000u);
  EXPECT_EQ(s.jobs.metrics_max_series, 7u);
  EXPECT_EQ(s.jobs.webhook_allow, "10.0.0.0/8, 127.0.0.1");
  EXPECT_EQ(s.jobs.workers_of("any"), 0u);
}

// Verifies that the scalar keys are overridable and that an override beats the file.
TEST(JobsSettingsTest, OverridesApplied) {
  EXPECT_EQ(load_from_string("", {"jobs.workers=9"}).jobs.workers, 9u);
  const settings s = load_from_string("[jobs]\nworkers = 2\nmax_delay_ms = 5\n",
                                      {"jobs.workers=9", "jobs.max_delay_ms=0"});
  EXPECT_EQ(s.jobs.workers, 9u);
  EXPECT_EQ(s.jobs.workers_of("emails"), 9u);
  EXPECT_EQ(s.jobs.max_delay_ms, 0u);
}

// Verifies the inclusive bounds of every [jobs] key.
TEST(JobsSettingsTest, BoundaryValuesAccepted) {
  const settings low = load_from_string("", {"jobs.workers=0", "jobs.retry_base_ms=1",
                                             "jobs.retry_cap_ms=1", "jobs.handler_timeout_ms=100",
                                             "jobs.webhook_timeout_ms=100", "jobs.max_delay_ms=0"});
  EXPECT_EQ(low.jobs.workers, 0u);
  EXPECT_EQ(low.jobs.retry_base_ms, 1u);
  EXPECT_EQ(low.jobs.retry_cap_ms, 1u);
  EXPECT_EQ(low.jobs.handler_timeout_ms, 100u);
  EXPECT_EQ(low.jobs.webhook_timeout_ms, 100u);
  EXPECT_EQ(low.jobs.max_delay_ms, 0u);
  const settings high =
    load_from_string("", {"jobs.workers=256", "jobs.retry_base_ms=60000",
                          "jobs.retry_cap_ms=86400000", "jobs.handler_timeout_ms=3600000",
                          "jobs.webhook_timeout_ms=600000", "jobs.max_delay_ms=31536000000"});
  EXPECT_EQ(high.jobs.workers, 256u);
  EXPECT_EQ(high.jobs.retry_base_ms, 60'000u);
  EXPECT_EQ(high.jobs.retry_cap_ms, 86'400'000u);
  EXPECT_EQ(high.jobs.handler_timeout_ms, 3'600'000u);
  EXPECT_EQ(high.jobs.webhook_timeout_ms, 600'000u);
  EXPECT_EQ(high.jobs.max_delay_ms, 31'536'000'000u);
}

// Verifies that each key just outside its range, below and above, names the key and the range.
TEST(JobsSettingsTest, OutOfRangeRejected) {
  struct range_case {
    std::string name;
    std::string low; ///< TOML text just below the minimum
    std::string high;
    std::string range;
  };
  const std::vector<range_case> cases = {
    {"workers", "-1", "257", "between 0 and 256"},
    {"retry_base_ms", "0", "60001", "between 1 and 60000"},
    {"retry_cap_ms", "0", "86400001", "between 1 and 86400000"},
    {"handler_timeout_ms", "99", "3600001", "between 100 and 3600000"},
    {"webhook_timeout_ms", "99", "600001", "between 100 and 600000"},
    {"max_delay_ms", "-1", "31536000001", "between 0 and 31536000000"},
  };
  for (const auto& c : cases) {
    const std::string key = "jobs." + c.name;
    expect_error("[jobs]\n" + c.name + " = " + c.low + "\n", {}, key,
                 "must be " + c.range + ", got " + c.low);
    expect_error("[jobs]\n" + c.name + " = " + c.high + "\n", {}, key,
                 "must be " + c.range + ", got " + c.high);
    expect_error("", {key + "=" + c.high}, key, "must be " + c.range + ", got " + c.high);
  }
  expect_error("", {"jobs.workers=-1"}, "jobs.workers", "expected an unsigned integer");
}

// Verifies that a [jobs] key of the wrong TOML type or an unknown one is rejected by name.
TEST(JobsSettingsTest, WrongTypeOrUnknownKeyRejected) {
  expect_error("[jobs]\nworkers = \"4\"\n", {}, "jobs.workers",
               "expected an integer, got a string");
  expect_error("[jobs]\nmax_delay_ms = 1.5\n", {}, "jobs.max_delay_ms",
               "expected an integer, got a float");
  expect_error("[jobs]\nworker = 4\n", {}, "jobs.worker",
               "unknown key; known keys in [jobs]: workers, retry_base_ms, retry_cap_ms, "
               "handler_timeout_ms, webhook_timeout_ms, webhook_allow, max_delay_ms, "
               "metrics_max_series, queues");
  expect_error("", {"jobs.retries=3"}, "jobs.retries", "known keys in [jobs]");
  expect_error("[jobs]\nwebhook_allow = \"10.0.0.0/8, intranet\"\n", {}, "jobs.webhook_allow",
               "\"intranet\" is not an IP address or CIDR block");
  expect_error("", {"jobs.webhook_allow=10.0.0.0/40"}, "jobs.webhook_allow", "bad prefix length");
}

// Verifies the cross-key rule: the retry ceiling must not be below the first retry delay.
TEST(JobsSettingsTest, RetryCapBelowBaseRejected) {
  expect_error("[jobs]\nretry_base_ms = 1000\nretry_cap_ms = 999\n", {}, "jobs.retry_cap_ms",
               "must be at least jobs.retry_base_ms (1000), got 999");
  expect_error("", {"jobs.retry_cap_ms=499"}, "jobs.retry_cap_ms",
               "at least jobs.retry_base_ms (500)");
  // The rule sees the final values, whatever their order or source.
  expect_error("[jobs]\nretry_cap_ms = 2000\n", {"jobs.retry_base_ms=2001"}, "jobs.retry_cap_ms",
               "at least jobs.retry_base_ms (2001)");
  const settings equal = load_from_string("[jobs]\nretry_base_ms = 700\nretry_cap_ms = 700\n", {});
  EXPECT_EQ(equal.jobs.retry_cap_ms, 700u);
}

// -- [jobs.queues.NAME] -----------------------------------------------------------

// Verifies that queue tables are stored sorted by name and that workers_of() falls back to
// jobs.workers for a queue without a table.
TEST(JobsSettingsTest, QueueTablesParsed) {
  const settings s = load_from_string(R"(
    [jobs]
    workers = 2
    [jobs.queues.emails]
    workers = 8
    [jobs.queues.Batch-reports_2]
    workers = 0
  )",
                                      {});
  ASSERT_EQ(s.jobs.queues.size(), 2u);
  EXPECT_EQ(s.jobs.queues[0], (queue_settings{"Batch-reports_2", 0}));
  EXPECT_EQ(s.jobs.queues[1], (queue_settings{"emails", 8}));
  EXPECT_EQ(s.jobs.workers_of("emails"), 8u);
  EXPECT_EQ(s.jobs.workers_of("Batch-reports_2"), 0u);
  EXPECT_EQ(s.jobs.workers_of("thumbnails"), 2u);
  EXPECT_EQ(s.jobs.workers_of("Emails"), 2u);
}

// Verifies that queue tables need no [jobs] header and may be written inline.
TEST(JobsSettingsTest, QueueTablesInOtherTomlForms) {
  const settings dotted = load_from_string("[jobs.queues.a]\nworkers = 256\n", {});
  ASSERT_EQ(dotted.jobs.queues.size(), 1u);
  EXPECT_EQ(dotted.jobs.workers_of("a"), 256u);
  EXPECT_EQ(dotted.jobs.workers, 4u);
  const settings inline_tables =
    load_from_string("[jobs]\nqueues = { b = { workers = 1 }, a = { workers = 3 } }\n", {});
  ASSERT_EQ(inline_tables.jobs.queues.size(), 2u);
  EXPECT_EQ(inline_tables.jobs.queues[0], (queue_settings{"a", 3}));
  EXPECT_EQ(inline_tables.jobs.queues[1], (queue_settings{"b", 1}));
}

// Verifies that a queue name outside [A-Za-z0-9_-]{1,64} is rejected by its key.
TEST(JobsSettingsTest, InvalidQueueNameRejected) {
  expect_error("[jobs.queues.\"a b\"]\nworkers = 1\n", {}, "jobs.queues.a b",
               "\"a b\" is not a queue name (1-64 letters, digits, '-', '_')");
  expect_error("[jobs.queues.\"a.b\"]\nworkers = 1\n", {}, "jobs.queues.a.b",
               "is not a queue name");
  expect_error("[jobs.queues.\"\"]\nworkers = 1\n", {}, "jobs.queues.", "is not a queue name");
  expect_error("[jobs.queues.\"é\"]\nworkers = 1\n", {}, "jobs.queues.é", "is not a queue name");
  const std::string longest(64, 'q');
  EXPECT_EQ(
    load_from_string("[jobs.queues." + longest + "]\nworkers = 1\n", {}).jobs.workers_of(longest),
    1u);
  const std::string too_long(65, 'q');
  expect_error("[jobs.queues." + too_long + "]\nworkers = 1\n", {}, "jobs.queues." + too_long,
               "is not a queue name");
}

// Verifies that a queue table accepts `workers` only, and requires it.
TEST(JobsSettingsTest, UnknownOrMissingQueueKeyRejected) {
  expect_error("[jobs.queues.emails]\nworker = 8\n", {}, "jobs.queues.emails.worker",
               "unknown key; known keys: workers");
  expect_error("[jobs.queues.emails]\nworkers = 8\nretry_base_ms = 10\n", {},
               "jobs.queues.emails.retry_base_ms", "unknown key");
  expect_error("[jobs.queues.emails.sub]\nworkers = 8\n", {}, "jobs.queues.emails.sub",
               "unknown key");
  expect_error("[jobs.queues.emails]\n", {}, "jobs.queues.emails.workers", "missing");
}

// Verifies that a queue's workers must be an integer in 0..256.
TEST(JobsSettingsTest, BadQueueWorkersRejected) {
  expect_error("[jobs.queues.emails]\nworkers = \"8\"\n", {}, "jobs.queues.emails.workers",
               "expected an integer, got a string");
  expect_error("[jobs.queues.emails]\nworkers = 8.0\n", {}, "jobs.queues.emails.workers",
               "expected an integer, got a float");
  expect_error("[jobs.queues.emails]\nworkers = true\n", {}, "jobs.queues.emails.workers",
               "expected an integer, got a boolean");
  expect_error("[jobs.queues.emails]\nworkers = 257\n", {}, "jobs.queues.emails.workers",
               "must be between 0 and 256, got 257");
  expect_error("[jobs.queues.emails]\nworkers = -1\n", {}, "jobs.queues.emails.workers",
               "must be between 0 and 256, got -1");
}

// Verifies that jobs.queues and a queue entry that are not tables are rejected by name.
TEST(JobsSettingsTest, NonTableQueueRejected) {
  expect_error("[jobs]\nqueues = 3\n", {}, "jobs.queues",
               "expected one table per queue ([jobs.queues.NAME]), got an integer");
  expect_error("[[jobs.queues]]\nworkers = 3\n", {}, "jobs.queues", "got an array");
  expect_error("[jobs.queues]\nemails = 8\n", {}, "jobs.queues.emails",
               "expected a table with workers ([jobs.queues.emails]), got an integer");
}

// Verifies that queue settings are file-only: no override can set or add one.
TEST(JobsSettingsTest, QueueOverrideRefused) {
  expect_error("", {"jobs.queues.x.workers=3"}, "jobs.queues.x.workers",
               "cannot be overridden; set a queue's workers in a [jobs.queues.NAME] table");
  expect_error("[jobs.queues.x]\nworkers = 1\n", {"jobs.queues.x.workers=3"},
               "jobs.queues.x.workers", "cannot be overridden");
  expect_error("", {"jobs.queues=x"}, "jobs.queues", "cannot be overridden");
  expect_error("", {"jobs.queues.x=3"}, "jobs.queues.x", "cannot be overridden");
}

} // namespace
