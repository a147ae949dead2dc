// SPDX-License-Identifier: Apache-2.0
#include "config/settings.hpp"

#include <functional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <toml.hpp>

namespace shoal::config {
namespace {

const std::string single_node_toml = SHOAL_SOURCE_DIR "/config/single-node.toml";

/// Every key with its default, as override text.
const std::vector<std::pair<std::string, std::string>> every_key_default = {
  {"node.id", "local"},
  {"node.batch_scheduling", "true"},
  {"http.host", "127.0.0.1"},
  {"http.port", "8080"},
  {"http.threads", "0"},
  {"http.max_body_bytes", "1048576"},
  {"http.max_header_bytes", "16384"},
  {"http.header_timeout_ms", "10000"},
  {"http.idle_timeout_ms", "60000"},
  {"http.request_timeout_ms", "5000"},
  {"http.drain_timeout_ms", "10000"},
  {"http.drain_grace_ms", "250"},
  {"http.max_connections", "10000"},
  {"http.max_connections_per_client", "0"},
  {"http.min_inflight", "64"},
  {"http.max_inflight", "8192"},
  {"http.max_queued", "10000"},
  {"http.queue_timeout_ms", "1000"},
  {"http.hold_refused_ms", "1000"},
  {"storage.path", "./data"},
  {"storage.sync", "false"},
  {"storage.block_cache_bytes", "67108864"},
  {"storage.write_buffer_bytes", "8388608"},
  {"storage.total_write_buffer_bytes", "134217728"},
  {"storage.doc_cache_bytes", "67108864"},
  {"cluster.shards", "64"},
  {"cluster.heartbeat_ms", "250"},
  {"cluster.failure_timeout_ms", "2000"},
  {"cluster.reconnect_max_ms", "2000"},
  {"cluster.replication_factor", "1"},
  {"cluster.snapshot_entries", "1024"},
  {"cluster.snapshot_trailing", "2048"},
  {"actors.threads", "0"},
  {"actors.call_timeout_ms", "5000"},
  {"actors.idle_timeout_ms", "300000"},
  {"actors.max_active", "100000"},
  {"jobs.workers", "4"},
  {"jobs.retry_base_ms", "500"},
  {"jobs.retry_cap_ms", "300000"},
  {"jobs.handler_timeout_ms", "30000"},
  {"jobs.webhook_timeout_ms", "10000"},
  {"jobs.max_delay_ms", "604800000"},
  {"jobs.metrics_max_series", "200"},
  {"cache.max_bytes", "268435456"},
  {"cache.max_value_bytes", "1048576"},
  {"cache.default_ttl_s", "3600"},
  {"cache.max_ttl_s", "2592000"},
  {"query.default_limit", "100"},
  {"query.max_limit", "1000"},
  {"query.index_build_batch", "500"},
  {"changes.enabled", "true"},
  {"changes.retention_events", "100000"},
  {"changes.retention_s", "86400"},
  {"changes.max_buffer_bytes", "1048576"},
  {"changes.heartbeat_ms", "15000"},
  {"log.level", "info"},
  {"log.format", "text"},
  {"log.access_log", "true"},
};

void expect_same(const settings& a, const settings& b) {
  EXPECT_EQ(a.http.host, b.http.host);
  EXPECT_EQ(a.http.port, b.http.port);
  EXPECT_EQ(a.http.threads, b.http.threads);
  EXPECT_EQ(a.http.max_body_bytes, b.http.max_body_bytes);
  EXPECT_EQ(a.http.max_header_bytes, b.http.max_header_bytes);
  EXPECT_EQ(a.http.header_timeout_ms, b.http.header_timeout_ms);
  EXPECT_EQ(a.http.idle_timeout_ms, b.http.idle_timeout_ms);
  EXPECT_EQ(a.http.request_timeout_ms, b.http.request_timeout_ms);
  EXPECT_EQ(a.http.drain_timeout_ms, b.http.drain_timeout_ms);
  EXPECT_EQ(a.http.drain_grace_ms, b.http.drain_grace_ms);
  EXPECT_EQ(a.http.max_connections, b.http.max_connections);
  EXPECT_EQ(a.http.max_connections_per_client, b.http.max_connections_per_client);
  EXPECT_EQ(a.http.max_inflight, b.http.max_inflight);
  EXPECT_EQ(a.http.cors_origins, b.http.cors_origins);
  EXPECT_EQ(a.auth.tokens_file, b.auth.tokens_file);
  EXPECT_EQ(a.storage.path, b.storage.path);
  EXPECT_EQ(a.storage.sync, b.storage.sync);
  EXPECT_EQ(a.storage.block_cache_bytes, b.storage.block_cache_bytes);
  EXPECT_EQ(a.storage.write_buffer_bytes, b.storage.write_buffer_bytes);
  EXPECT_EQ(a.storage.total_write_buffer_bytes, b.storage.total_write_buffer_bytes);
  EXPECT_EQ(a.storage.doc_cache_bytes, b.storage.doc_cache_bytes);
  EXPECT_EQ(a.cluster.shards, b.cluster.shards);
  EXPECT_EQ(a.node.id, b.node.id);
  EXPECT_EQ(a.cluster.heartbeat_ms, b.cluster.heartbeat_ms);
  EXPECT_EQ(a.cluster.failure_timeout_ms, b.cluster.failure_timeout_ms);
  EXPECT_EQ(a.cluster.reconnect_max_ms, b.cluster.reconnect_max_ms);
  EXPECT_EQ(a.cluster.copies(), b.cluster.copies());
  EXPECT_EQ(a.cluster.snapshot_entries, b.cluster.snapshot_entries);
  EXPECT_EQ(a.cluster.snapshot_trailing, b.cluster.snapshot_trailing);
  EXPECT_EQ(a.cluster.nodes, b.cluster.nodes);
  EXPECT_EQ(a.cluster.secret, b.cluster.secret);
  EXPECT_EQ(a.cluster.tls_certificate, b.cluster.tls_certificate);
  EXPECT_EQ(a.cluster.tls_key, b.cluster.tls_key);
  EXPECT_EQ(a.cluster.tls_ca, b.cluster.tls_ca);
  EXPECT_EQ(a.actors.threads, b.actors.threads);
  EXPECT_EQ(a.actors.call_timeout_ms, b.actors.call_timeout_ms);
  EXPECT_EQ(a.actors.idle_timeout_ms, b.actors.idle_timeout_ms);
  EXPECT_EQ(a.actors.max_active, b.actors.max_active);
  EXPECT_EQ(a.jobs.workers, b.jobs.workers);
  EXPECT_EQ(a.jobs.queues, b.jobs.queues);
  EXPECT_EQ(a.jobs.retry_base_ms, b.jobs.retry_base_ms);
  EXPECT_EQ(a.jobs.retry_cap_ms, b.jobs.retry_cap_ms);
  EXPECT_EQ(a.jobs.handler_timeout_ms, b.jobs.handler_timeout_ms);
  EXPECT_EQ(a.jobs.webhook_timeout_ms, b.jobs.webhook_timeout_ms);
  EXPECT_EQ(a.jobs.max_delay_ms, b.jobs.max_delay_ms);
  EXPECT_EQ(a.jobs.metrics_max_series, b.jobs.metrics_max_series);
  EXPECT_EQ(a.cache.max_bytes, b.cache.max_bytes);
  EXPECT_EQ(a.cache.max_value_bytes, b.cache.max_value_bytes);
  EXPECT_EQ(a.cache.default_ttl_s, b.cache.default_ttl_s);
  EXPECT_EQ(a.cache.max_ttl_s, b.cache.max_ttl_s);
  EXPECT_EQ(a.query.default_limit, b.query.default_limit);
  EXPECT_EQ(a.query.max_limit, b.query.max_limit);
  EXPECT_EQ(a.query.index_build_batch, b.query.index_build_batch);
  EXPECT_EQ(a.changes.enabled, b.changes.enabled);
  EXPECT_EQ(a.changes.retention_events, b.changes.retention_events);
  EXPECT_EQ(a.changes.retention_s, b.changes.retention_s);
  EXPECT_EQ(a.changes.max_buffer_bytes, b.changes.max_buffer_bytes);
  EXPECT_EQ(a.changes.heartbeat_ms, b.changes.heartbeat_ms);
  EXPECT_EQ(a.log.level, b.log.level);
  EXPECT_EQ(a.log.format, b.log.format);
  EXPECT_EQ(a.log.access_log, b.log.access_log);
}

/// Runs `f`, which must throw `config_error` with key() == `key` and a what() that names the
/// key and contains `fragment`.
void expect_error(const std::function<void()>& f, const std::string& key,
                  const std::string& fragment = "") {
  try {
    f();
    ADD_FAILURE() << "no config_error; expected one for key \"" << key << "\"";
  } catch (const config_error& e) {
    EXPECT_EQ(e.key(), key) << e.what();
    EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

void expect_file_error(const std::string& toml, const std::string& key,
                       const std::string& fragment = "") {
  SCOPED_TRACE(toml);
  expect_error([&] { load_from_string(toml, {}); }, key, fragment);
}

void expect_override_error(const std::string& text, const std::string& key,
                           const std::string& fragment = "") {
  SCOPED_TRACE(text);
  expect_error([&] { load_from_string("", {text}); }, key, fragment);
}

// -- defaults and the shipped file --------------------------------------------

// Verifies that no file and no overrides yield the documented defaults.
TEST(SettingsTest, DefaultsWithoutFileOrOverrides) {
  const settings s = load(std::nullopt, {});
  expect_same(s, settings{});
  EXPECT_EQ(s.http.host, "127.0.0.1");
  EXPECT_EQ(s.http.port, 8080);
  EXPECT_EQ(s.http.max_body_bytes, 1u << 20);
  EXPECT_EQ(s.cluster.shards, 64u);
  EXPECT_EQ(s.log.level, "info");
  EXPECT_TRUE(s.log.access_log);
}

// Verifies that loading config/single-node.toml gives the defaults for every field.
TEST(SettingsTest, SingleNodeFileEqualsDefaults) {
  expect_same(load(single_node_toml, {}), settings{});
}

// Verifies that config/single-node.toml sets exactly the known keys, each under a comment.
TEST(SettingsTest, SingleNodeFileDocumentsEveryKey) {
  const auto root = toml::parse<toml::preserve_comments>(single_node_toml);
  std::set<std::string> keys;
  for (const auto& [section, table] : root.as_table()) {
    for (const auto& [name, value] : table.as_table()) {
      keys.insert(section + "." + name);
      EXPECT_FALSE(value.comments().empty()) << section << "." << name << " has no comment";
    }
  }
  std::set<std::string> expected;
  for (const auto& entry : every_key_default)
    expected.insert(entry.first);
  EXPECT_EQ(keys, expected);
}

// Verifies that every key is accepted as an override and that its default text round-trips.
TEST(SettingsTest, EveryKeyOverridableWithItsDefault) {
  std::vector<std::string> overrides;
  for (const auto& [key, value] : every_key_default)
    overrides.push_back(key + "=" + value);
  expect_same(load_from_string("", overrides), settings{});
}

// -- applying values ------------------------------------------------------------

// Verifies that each file value lands in its own field.
TEST(SettingsTest, FileValuesApplied) {
  const settings s = load_from_string(R"(
    [http]
    host = "0.0.0.0"
    port = 9000
    threads = 3
    max_body_bytes = 2048
    max_header_bytes = 4096
    header_timeout_ms = 11
    idle_timeout_ms = 12
    request_timeout_ms = 13
    drain_timeout_ms = 14
    drain_grace_ms = 18
    max_connections = 15
    max_connections_per_client = 17
    max_inflight = 16
    [storage]
    path = "/var/lib/shoal"
    sync = true
    block_cache_bytes = 0
    write_buffer_bytes = 65536
    [cluster]
    shards = 7
    [actors]
    threads = 5
    [log]
    level = "debug"
    format = "json"
    access_log = false
  )",
                                      {});
  EXPECT_EQ(s.http.host, "0.0.0.0");
  EXPECT_EQ(s.http.port, 9000);
  EXPECT_EQ(s.http.threads, 3u);
  EXPECT_EQ(s.http.max_body_bytes, 2048u);
  EXPECT_EQ(s.http.max_header_bytes, 4096u);
  EXPECT_EQ(s.http.header_timeout_ms, 11u);
  EXPECT_EQ(s.http.idle_timeout_ms, 12u);
  EXPECT_EQ(s.http.request_timeout_ms, 13u);
  EXPECT_EQ(s.http.drain_timeout_ms, 14u);
  EXPECT_EQ(s.http.drain_grace_ms, 18u);
  EXPECT_EQ(s.http.max_connections, 15u);
  EXPECT_EQ(s.http.max_connections_per_client, 17u);
  EXPECT_EQ(s.http.max_inflight, 16u);
  EXPECT_EQ(s.storage.path, "/var/lib/shoal");
  EXPECT_TRUE(s.storage.sync);
  EXPECT_EQ(s.storage.block_cache_bytes, 0u);
  EXPECT_EQ(s.storage.write_buffer_bytes, 65536u);
  EXPECT_EQ(s.cluster.shards, 7u);
  EXPECT_EQ(s.actors.threads, 5u);
  EXPECT_EQ(s.log.level, "debug");
  EXPECT_EQ(s.log.format, "json");
  EXPECT_FALSE(s.log.access_log);
}

// Verifies that a partial file keeps the defaults for the keys it omits.
TEST(SettingsTest, PartialFileKeepsOtherDefaults) {
  const settings s = load_from_string("[http]\nport = 9000\n", {});
  EXPECT_EQ(s.http.port, 9000);
  settings expected;
  expected.http.port = 9000;
  expect_same(s, expected);
}

// Verifies that overrides beat the file and that a later override beats an earlier one.
TEST(SettingsTest, OverridesBeatFileInOrder) {
  const settings s = load_from_string("[http]\nport = 9000\n[log]\nlevel = \"warn\"\n",
                                      {"http.port=9001", "log.level=debug", "log.level=error"});
  EXPECT_EQ(s.http.port, 9001);
  EXPECT_EQ(s.log.level, "error");
}

// Verifies the inclusive bounds of every ranged key.
TEST(SettingsTest, BoundaryValuesAccepted) {
  const settings s = load_from_string(
    "", {"http.port=0", "http.threads=256", "http.max_body_bytes=1073741824",
         "http.max_header_bytes=1024", "cluster.shards=65536", "actors.threads=256",
         "http.max_connections=1000000", "storage.block_cache_bytes=1099511627776",
         "storage.write_buffer_bytes=4294967296"});
  EXPECT_EQ(s.http.port, 0);
  EXPECT_EQ(s.http.max_body_bytes, 1u << 30);
  EXPECT_EQ(s.cluster.shards, 65536u);
  EXPECT_EQ(s.storage.block_cache_bytes, std::size_t{1} << 40);
  EXPECT_EQ(s.storage.write_buffer_bytes, std::size_t{4} << 30);
}

// Verifies that a quoted string override loses its quotes and an unquoted one is verbatim.
TEST(SettingsTest, QuotedStringOverride) {
  const settings s = load_from_string(
    "", {"http.host=\"0.0.0.0\"", "log.level=\"debug\"", "storage.path=/tmp/a=b \"c\""});
  EXPECT_EQ(s.http.host, "0.0.0.0");
  EXPECT_EQ(s.log.level, "debug");
  EXPECT_EQ(s.storage.path, "/tmp/a=b \"c\"");
}

// Verifies that boolean overrides accept exactly true and false.
TEST(SettingsTest, BoolOverrideAcceptsOnlyTrueOrFalse) {
  EXPECT_TRUE(load_from_string("", {"storage.sync=true"}).storage.sync);
  EXPECT_FALSE(load_from_string("", {"log.access_log=false"}).log.access_log);
  expect_override_error("storage.sync=yes", "storage.sync", "expected true or false");
  expect_override_error("storage.sync=1", "storage.sync");
  expect_override_error("storage.sync=TRUE", "storage.sync");
}

// -- rejected input -------------------------------------------------------------

// Verifies that an unknown key names the full key and lists its section's keys.
TEST(SettingsTest, UnknownKeyRejected) {
  expect_file_error("[http]\nprot = 80\n", "http.prot",
                    "unknown key; known keys in [http]: host, port");
  expect_file_error("[http.tls]\ncert = \"x\"\n", "http.tls", "unknown key");
  expect_override_error("log.colour=true", "log.colour", "known keys in [log]");
}

// Verifies that an unknown section, even an empty one, is rejected and the known ones listed.
TEST(SettingsTest, UnknownSectionRejected) {
  expect_file_error("[htp]\nport = 80\n", "htp",
                    "unknown section; known sections: node, http, storage");
  expect_file_error("[metrics]\n", "metrics", "unknown section");
  expect_override_error("htp.port=80", "htp.port", "unknown section [htp]");
}

// Verifies that a top-level key that is not a table is rejected by name.
TEST(SettingsTest, TopLevelNonTableRejected) {
  expect_file_error("port = 80\n", "port", "expected a section table, got an integer");
  expect_file_error("http = \"x\"\n", "http", "got a string");
  expect_file_error("[[http]]\nport = 80\n", "http", "got an array");
}

// Verifies that a value of the wrong TOML type names the key, the expected and the actual type.
TEST(SettingsTest, WrongTypeRejected) {
  expect_file_error("[http]\nport = \"80\"\n", "http.port", "expected an integer, got a string");
  expect_file_error("[http]\nport = 80.0\n", "http.port", "expected an integer, got a float");
  expect_file_error("[storage]\nsync = \"true\"\n", "storage.sync",
                    "expected a boolean, got a string");
  expect_file_error("[storage]\npath = 5\n", "storage.path", "expected a string, got an integer");
  expect_file_error("[log]\nlevel = [\"info\"]\n", "log.level", "expected a string, got an array");
}

// Verifies that out-of-range values name the key and the allowed range.
TEST(SettingsTest, OutOfRangeRejected) {
  const std::vector<std::pair<std::string, std::string>> cases = {
    {"[http]\nport = 70000", "http.port"},
    {"[http]\nport = -1", "http.port"},
    {"[http]\nthreads = 257", "http.threads"},
    {"[http]\nmax_body_bytes = 0", "http.max_body_bytes"},
    {"[http]\nmax_body_bytes = 1073741825", "http.max_body_bytes"},
    {"[http]\nmax_header_bytes = 1023", "http.max_header_bytes"},
    {"[http]\nheader_timeout_ms = 0", "http.header_timeout_ms"},
    {"[http]\nidle_timeout_ms = 0", "http.idle_timeout_ms"},
    {"[http]\nrequest_timeout_ms = 0", "http.request_timeout_ms"},
    {"[http]\ndrain_timeout_ms = 0", "http.drain_timeout_ms"},
    {"[http]\nmax_connections = 0", "http.max_connections"},
    {"[http]\nmax_inflight = 1000001", "http.max_inflight"},
    {"[storage]\nblock_cache_bytes = 1099511627777", "storage.block_cache_bytes"},
    {"[storage]\nwrite_buffer_bytes = 65535", "storage.write_buffer_bytes"},
    {"[cluster]\nshards = 0", "cluster.shards"},
    {"[cluster]\nshards = 65537", "cluster.shards"},
    {"[actors]\nthreads = 257", "actors.threads"},
  };
  for (const auto& [toml, key] : cases)
    expect_file_error(toml, key, "must be between");
  expect_file_error("[http]\nport = 70000", "http.port", "must be between 0 and 65535, got 70000");
  expect_file_error("[cluster]\nshards = 0", "cluster.shards",
                    "must be between 1 and 65536, got 0");
}

// Verifies that empty host and path strings are rejected.
TEST(SettingsTest, EmptyStringRejected) {
  expect_file_error("[http]\nhost = \"\"\n", "http.host", "must not be empty");
  expect_override_error("storage.path=", "storage.path", "must not be empty");
  expect_override_error("storage.path=\"\"", "storage.path", "must not be empty");
}

// Verifies that http.cors_origins takes "*" or origins, and names what is not one.
TEST(SettingsTest, CorsOriginsAreOriginsOrAStar) {
  EXPECT_EQ(load_from_string("", {"http.cors_origins=*"}).http.cors_origins, "*");
  const auto s = load_from_string(
    "[http]\ncors_origins = \"https://app.example, http://localhost:3000, http://[::1]:8080\"\n",
    {});
  EXPECT_EQ(s.http.cors_origins, "https://app.example, http://localhost:3000, http://[::1]:8080");
  expect_override_error("http.cors_origins=app.example", "http.cors_origins",
                        "\"app.example\": expected scheme://host[:port]");
  expect_override_error("http.cors_origins=ftp://app.example", "http.cors_origins",
                        "the scheme must be http or https");
  expect_override_error("http.cors_origins=https://app.example/", "http.cors_origins", "no path");
  expect_override_error("http.cors_origins=https://", "http.cors_origins", "no host");
  expect_file_error("[http]\ncors_origins = \"https://a.example, https://b.example/x\"\n",
                    "http.cors_origins", "\"https://b.example/x\"");
}

// Verifies that auth.tokens_file is a path taken as given (the node reads it at start-up).
TEST(SettingsTest, TokensFileIsTakenAsGiven) {
  EXPECT_EQ(load_from_string("[auth]\ntokens_file = \"/etc/shoal/tokens\"\n", {}).auth.tokens_file,
            "/etc/shoal/tokens");
  EXPECT_EQ(load_from_string("", {}).auth.tokens_file, "");
  expect_override_error("auth.tokens_file=", "auth.tokens_file", "must not be empty");
}

// Verifies that log.level and log.format accept only their listed values.
TEST(SettingsTest, BadEnumRejected) {
  expect_file_error("[log]\nlevel = \"verbose\"\n", "log.level",
                    "must be one of trace, debug, info, warn, error, off; got \"verbose\"");
  expect_file_error("[log]\nlevel = \"INFO\"\n", "log.level");
  expect_override_error("log.format=xml", "log.format", "must be one of text, json");
}

// Verifies that an override without '=' or without a section.key shape is rejected.
TEST(SettingsTest, MalformedOverrideRejected) {
  expect_override_error("http.port", "http.port", "expected section.key=value");
  expect_override_error("port=80", "port", "malformed override \"port=80\"");
  expect_override_error(".port=80", ".port", "malformed override");
  expect_override_error("http.=80", "http.", "malformed override");
  expect_override_error("http.tls.cert=x", "http.tls.cert", "unknown key");
}

// Verifies that integer overrides must be plain digits and that overflow is an error.
TEST(SettingsTest, IntegerOverrideParsedStrictly) {
  EXPECT_EQ(load_from_string("", {"http.port=08081"}).http.port, 8081);
  expect_override_error("http.port=99999999999999999999999", "http.port",
                        "must be between 0 and 65535, got 99999999999999999999999");
  expect_override_error("storage.block_cache_bytes=18446744073709551616",
                        "storage.block_cache_bytes", "must be between");
  expect_override_error("http.port=65536", "http.port", "must be between 0 and 65535");
  expect_override_error("http.port=-1", "http.port", "expected an unsigned integer");
  expect_override_error("http.port=+80", "http.port", "expected an unsigned integer");
  expect_override_error("http.port= 80", "http.port", "expected an unsigned integer");
  expect_override_error("http.port=80ms", "http.port", "expected an unsigned integer");
  expect_override_error("http.port=0x50", "http.port", "expected an unsigned integer");
  expect_override_error("http.port=", "http.port", "expected an unsigned integer");
  expect_override_error("http.port=\"80\"", "http.port", "expected an unsigned integer");
}

// Verifies that a missing file and a directory are file-level errors naming the path.
TEST(SettingsTest, UnreadableFileRejected) {
  expect_error([] { load("/nonexistent/shoal.toml", {}); }, "", "/nonexistent/shoal.toml");
  expect_error([] { load(std::string(SHOAL_SOURCE_DIR) + "/config", {}); }, "", "cannot read");
}

// Verifies that a TOML syntax error is a file-level error naming the origin and the line.
TEST(SettingsTest, SyntaxErrorRejected) {
  expect_error([] { load_from_string("[http]\nport = = 80\n", {}, "bad.toml"); }, "", "bad.toml");
  expect_error([] { load_from_string("[http]\nport = = 80\n", {}, "bad.toml"); }, "", " 2 |");
  expect_error([] { load_from_string("[http]\nport = 1\nport = 2\n", {}, "dup.toml"); }, "",
               "dup.toml");
}

} // namespace
} // namespace shoal::config
