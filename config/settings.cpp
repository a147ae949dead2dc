// SPDX-License-Identifier: Apache-2.0
#include "config/settings.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

#include <toml.hpp>

#include "util/destinations.hpp"
#include "util/text.hpp"

namespace shoal::config {
namespace {

// std::map instead of toml11's default unordered_map: keys are visited in a fixed order, so
// a file with several mistakes always reports the same one first.
using toml_value = toml::basic_value<toml::discard_comments, std::map, std::vector>;

/// A value whose type matches its key's kind; `key_spec::check` then tests its range.
using scalar = std::variant<bool, std::uint64_t, std::string>;

enum class kind { text, boolean, number, choice };

/// One `section.key` of the schema: what it accepts and which member of `settings` it sets.
struct key_spec {
  std::string_view key; ///< "http.port"
  kind type;
  std::uint64_t min = 0; ///< number only, inclusive
  std::uint64_t max = 0;
  std::vector<std::string_view> choices = {}; ///< choice only
  void (*set)(settings&, const scalar&) = nullptr;

  std::string_view section() const {
    return key.substr(0, key.find('.'));
  }
  std::string_view name() const {
    return key.substr(key.find('.') + 1);
  }
};

// -- schema -------------------------------------------------------------------

template <auto Section, auto Field>
using field_t = std::remove_reference_t<decltype(std::declval<settings&>().*Section.*Field)>;

/// Stores an already checked value into `(s.*Section).*Field`.
template <auto Section, auto Field>
void assign(settings& s, const scalar& value) {
  using field = field_t<Section, Field>;
  if constexpr (std::is_same_v<field, std::string>) {
    (s.*Section).*Field = std::get<std::string>(value);
  } else if constexpr (std::is_same_v<field, bool>) {
    (s.*Section).*Field = std::get<bool>(value);
  } else {
    (s.*Section).*Field = static_cast<field>(std::get<std::uint64_t>(value));
  }
}

/// A non-empty string.
template <auto Section, auto Field>
key_spec text(std::string_view key) {
  static_assert(std::is_same_v<field_t<Section, Field>, std::string>);
  return {key, kind::text, 0, 0, {}, &assign<Section, Field>};
}

/// A string that must be one of `choices`.
template <auto Section, auto Field>
key_spec choice(std::string_view key, std::vector<std::string_view> choices) {
  static_assert(std::is_same_v<field_t<Section, Field>, std::string>);
  return {key, kind::choice, 0, 0, std::move(choices), &assign<Section, Field>};
}

/// `true` or `false`.
template <auto Section, auto Field>
key_spec boolean(std::string_view key) {
  static_assert(std::is_same_v<field_t<Section, Field>, bool>);
  return {key, kind::boolean, 0, 0, {}, &assign<Section, Field>};
}

/// An unsigned integer in [Min, Max]; the bounds must fit the member's type.
template <auto Section, auto Field, std::uint64_t Min, std::uint64_t Max>
key_spec number(std::string_view key) {
  using field = field_t<Section, Field>;
  static_assert(std::is_unsigned_v<field> && !std::is_same_v<field, bool>);
  static_assert(Min <= Max && Max <= std::numeric_limits<field>::max());
  return {key, kind::number, Min, Max, {}, &assign<Section, Field>};
}

constexpr std::uint64_t kib = 1024;
constexpr std::uint64_t mib = kib << 10;
constexpr std::uint64_t gib = mib << 10;
constexpr std::uint64_t tib = gib << 10;
constexpr std::uint64_t hour_ms = std::uint64_t{60} * 60 * 1000;
constexpr std::uint64_t day_ms = 24 * hour_ms;
constexpr std::uint64_t max_job_workers = 256; ///< jobs.workers and jobs.queues.NAME.workers

/// Every key a file or an override may set, in the order of `settings.hpp`.
const std::vector<key_spec>& schema() {
  using s = settings;
  using http = http_settings;
  using storage = storage_settings;
  using jobs = jobs_settings;
  static const std::vector<key_spec> keys = {
    text<&s::node, &node_settings::id>("node.id"),
    boolean<&s::node, &node_settings::batch_scheduling>("node.batch_scheduling"),
    text<&s::http, &http::host>("http.host"),
    number<&s::http, &http::port, 0, 65'535>("http.port"),
    number<&s::http, &http::threads, 0, 256>("http.threads"),
    number<&s::http, &http::max_body_bytes, 1, gib>("http.max_body_bytes"),
    number<&s::http, &http::max_header_bytes, kib, mib>("http.max_header_bytes"),
    number<&s::http, &http::header_timeout_ms, 1, day_ms>("http.header_timeout_ms"),
    number<&s::http, &http::idle_timeout_ms, 1, day_ms>("http.idle_timeout_ms"),
    number<&s::http, &http::request_timeout_ms, 1, day_ms>("http.request_timeout_ms"),
    number<&s::http, &http::drain_timeout_ms, 1, day_ms>("http.drain_timeout_ms"),
    number<&s::http, &http::drain_grace_ms, 0, day_ms>("http.drain_grace_ms"),
    number<&s::http, &http::max_connections, 1, 1'000'000>("http.max_connections"),
    number<&s::http, &http::max_connections_per_client, 0, 1'000'000>(
      "http.max_connections_per_client"),
    number<&s::http, &http::min_inflight, 1, 1'000'000>("http.min_inflight"),
    number<&s::http, &http::max_inflight, 1, 1'000'000>("http.max_inflight"),
    number<&s::http, &http::max_queued, 0, 1'000'000>("http.max_queued"),
    number<&s::http, &http::queue_timeout_ms, 1, day_ms>("http.queue_timeout_ms"),
    number<&s::http, &http::hold_refused_ms, 0, 60'000>("http.hold_refused_ms"),
    text<&s::http, &http::cors_origins>("http.cors_origins"),
    text<&s::storage, &storage::path>("storage.path"),
    boolean<&s::storage, &storage::sync>("storage.sync"),
    number<&s::storage, &storage::block_cache_bytes, 0, tib>("storage.block_cache_bytes"),
    number<&s::storage, &storage::write_buffer_bytes, 64 * kib, 4 * gib>(
      "storage.write_buffer_bytes"),
    number<&s::storage, &storage::total_write_buffer_bytes, 0, tib>(
      "storage.total_write_buffer_bytes"),
    number<&s::storage, &storage::doc_cache_bytes, 0, tib>("storage.doc_cache_bytes"),
    number<&s::cluster, &cluster_settings::shards, 1, 65'536>("cluster.shards"),
    text<&s::cluster, &cluster_settings::secret>("cluster.secret"),
    text<&s::cluster, &cluster_settings::tls_certificate>("cluster.tls_certificate"),
    text<&s::cluster, &cluster_settings::tls_key>("cluster.tls_key"),
    text<&s::cluster, &cluster_settings::tls_ca>("cluster.tls_ca"),
    number<&s::cluster, &cluster_settings::heartbeat_ms, 10, 60'000>("cluster.heartbeat_ms"),
    number<&s::cluster, &cluster_settings::failure_timeout_ms, 50, 600'000>(
      "cluster.failure_timeout_ms"),
    number<&s::cluster, &cluster_settings::reconnect_max_ms, 10, 600'000>(
      "cluster.reconnect_max_ms"),
    number<&s::cluster, &cluster_settings::replication_factor, 1, 5>("cluster.replication_factor"),
    number<&s::cluster, &cluster_settings::snapshot_entries, 2, 1'000'000>(
      "cluster.snapshot_entries"),
    number<&s::cluster, &cluster_settings::snapshot_trailing, 0, 1'000'000>(
      "cluster.snapshot_trailing"),
    number<&s::actors, &actors_settings::threads, 0, 256>("actors.threads"),
    number<&s::actors, &actors_settings::call_timeout_ms, 1, day_ms>("actors.call_timeout_ms"),
    number<&s::actors, &actors_settings::idle_timeout_ms, 1, day_ms>("actors.idle_timeout_ms"),
    number<&s::actors, &actors_settings::max_active, 1, 100'000'000>("actors.max_active"),
    number<&s::jobs, &jobs::workers, 0, max_job_workers>("jobs.workers"),
    number<&s::jobs, &jobs::retry_base_ms, 1, 60'000>("jobs.retry_base_ms"),
    number<&s::jobs, &jobs::retry_cap_ms, 1, day_ms>("jobs.retry_cap_ms"),
    number<&s::jobs, &jobs::handler_timeout_ms, 100, hour_ms>("jobs.handler_timeout_ms"),
    number<&s::jobs, &jobs::webhook_timeout_ms, 100, 600'000>("jobs.webhook_timeout_ms"),
    text<&s::jobs, &jobs::webhook_allow>("jobs.webhook_allow"),
    number<&s::jobs, &jobs::max_delay_ms, 0, 365 * day_ms>("jobs.max_delay_ms"),
    number<&s::jobs, &jobs::metrics_max_series, 1, 100'000>("jobs.metrics_max_series"),
    number<&s::cache, &cache_settings::max_bytes, mib, tib>("cache.max_bytes"),
    number<&s::cache, &cache_settings::max_value_bytes, 1, gib>("cache.max_value_bytes"),
    number<&s::cache, &cache_settings::default_ttl_s, 1, 365 * 86'400>("cache.default_ttl_s"),
    number<&s::cache, &cache_settings::max_ttl_s, 1, 365 * 86'400>("cache.max_ttl_s"),
    number<&s::query, &query_settings::default_limit, 1, 100'000>("query.default_limit"),
    number<&s::query, &query_settings::max_limit, 1, 100'000>("query.max_limit"),
    number<&s::query, &query_settings::index_build_batch, 1, 1'000'000>("query.index_build_batch"),
    boolean<&s::changes, &changes_settings::enabled>("changes.enabled"),
    number<&s::changes, &changes_settings::retention_events, 1, 1'000'000'000>(
      "changes.retention_events"),
    number<&s::changes, &changes_settings::retention_s, 0, 365 * 86'400>("changes.retention_s"),
    number<&s::changes, &changes_settings::max_buffer_bytes, 4 * kib, gib>(
      "changes.max_buffer_bytes"),
    number<&s::changes, &changes_settings::heartbeat_ms, 100, 3'600'000>("changes.heartbeat_ms"),
    text<&s::auth, &auth_settings::tokens_file>("auth.tokens_file"),
    choice<&s::log, &log_settings::level>("log.level",
                                          {"trace", "debug", "info", "warn", "error", "off"}),
    choice<&s::log, &log_settings::format>("log.format", {"text", "json"}),
    boolean<&s::log, &log_settings::access_log>("log.access_log"),
  };
  return keys;
}

// -- lookup -------------------------------------------------------------------

/// "a, b, c".
std::string join(const std::vector<std::string_view>& items) {
  std::string out;
  for (const auto item : items) {
    if (!out.empty()) out += ", ";
    out += item;
  }
  return out;
}

std::string known_sections() {
  std::vector<std::string_view> sections;
  for (const auto& spec : schema()) {
    if (std::find(sections.begin(), sections.end(), spec.section()) == sections.end()) {
      sections.push_back(spec.section());
    }
  }
  return join(sections);
}

bool is_section(std::string_view section) {
  return std::any_of(schema().begin(), schema().end(),
                     [&](const key_spec& spec) { return spec.section() == section; });
}

/// The spec for `section.name`; throws `config_error` naming the full key when either is unknown.
const key_spec& find_key(std::string_view section, std::string_view name) {
  const std::string key = std::string(section) + "." + std::string(name);
  if (!is_section(section)) {
    throw config_error(key, "unknown section [" + std::string(section)
                              + "]; known sections: " + known_sections());
  }
  std::vector<std::string_view> siblings;
  for (const auto& spec : schema()) {
    if (spec.section() != section) continue;
    if (spec.name() == name) return spec;
    siblings.push_back(spec.name());
  }
  if (section == "cluster") siblings.push_back("nodes");
  if (section == "jobs") siblings.push_back("queues");
  throw config_error(key, "unknown key; known keys in [" + std::string(section)
                            + "]: " + join(siblings));
}

// -- values -------------------------------------------------------------------

std::string type_name(toml::value_t type) {
  switch (type) {
  case toml::value_t::empty:
    return "nothing";
  case toml::value_t::boolean:
    return "a boolean";
  case toml::value_t::integer:
    return "an integer";
  case toml::value_t::floating:
    return "a float";
  case toml::value_t::string:
    return "a string";
  case toml::value_t::offset_datetime:
    return "an offset date-time";
  case toml::value_t::local_datetime:
    return "a local date-time";
  case toml::value_t::local_date:
    return "a local date";
  case toml::value_t::local_time:
    return "a local time";
  case toml::value_t::array:
    return "an array";
  case toml::value_t::table:
    return "a table";
  }
  return "an unknown type";
}

toml::value_t expected_type(kind k) {
  switch (k) {
  case kind::boolean:
    return toml::value_t::boolean;
  case kind::number:
    return toml::value_t::integer;
  case kind::text:
  case kind::choice:
    return toml::value_t::string;
  }
  return toml::value_t::empty;
}

[[noreturn]] void out_of_range(const key_spec& spec, const std::string& got) {
  throw config_error(std::string(spec.key), "must be between " + std::to_string(spec.min) + " and "
                                              + std::to_string(spec.max) + ", got " + got);
}

/// Returns `value` if it satisfies `spec`'s range, choices or non-emptiness.
scalar check(const key_spec& spec, scalar value) {
  const std::string key(spec.key);
  if (spec.type == kind::number) {
    const auto n = std::get<std::uint64_t>(value);
    if (n < spec.min || n > spec.max) out_of_range(spec, std::to_string(n));
  } else if (spec.type == kind::text) {
    if (std::get<std::string>(value).empty()) throw config_error(key, "must not be empty");
  } else if (spec.type == kind::choice) {
    const auto& s = std::get<std::string>(value);
    if (std::find(spec.choices.begin(), spec.choices.end(), s) == spec.choices.end()) {
      throw config_error(key, "must be one of " + join(spec.choices) + "; got \"" + s + "\"");
    }
  }
  return value;
}

/// Converts a TOML value; its TOML type must match the key's kind exactly.
scalar from_toml(const key_spec& spec, const toml_value& value) {
  if (value.type() != expected_type(spec.type)) {
    throw config_error(std::string(spec.key), "expected " + type_name(expected_type(spec.type))
                                                + ", got " + type_name(value.type()));
  }
  switch (spec.type) {
  case kind::boolean:
    return value.as_boolean();
  case kind::number: {
    const std::int64_t n = value.as_integer();
    if (n < 0) out_of_range(spec, std::to_string(n));
    return static_cast<std::uint64_t>(n);
  }
  case kind::text:
  case kind::choice:
    return value.as_string().str;
  }
  return {};
}

/// Converts override text: digits only for numbers, `true`/`false` for booleans, strings
/// verbatim except that one pair of enclosing double quotes is removed.
scalar from_text(const key_spec& spec, const std::string& text) {
  const std::string key(spec.key);
  switch (spec.type) {
  case kind::boolean:
    if (text == "true" || text == "false") return text == "true";
    throw config_error(key, "expected true or false, got \"" + text + "\"");
  case kind::number: {
    const bool digits = !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
      return c >= '0' && c <= '9';
    });
    if (!digits) throw config_error(key, "expected an unsigned integer, got \"" + text + "\"");
    std::uint64_t n = 0;
    if (std::from_chars(text.data(), text.data() + text.size(), n).ec != std::errc{}) {
      out_of_range(spec, text); // the only possible failure left is overflow
    }
    return n;
  }
  case kind::text:
  case kind::choice:
    if (text.size() >= 2 && text.front() == '"' && text.back() == '"') {
      return text.substr(1, text.size() - 2);
    }
    return text;
  }
  return {};
}

// -- cluster members ----------------------------------------------------------

constexpr std::string_view nodes_key = "cluster.nodes";

/// Letters, digits, '-', '_' and '.', 1 to 64 of them: safe in logs, URLs and labels.
bool valid_node_id(const std::string& id) {
  return !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'
           || c == '_' || c == '.';
  });
}

/// One `[[cluster.nodes]]` table: exactly id, host, http_port and actor_port.
node_address parse_node(const toml_value& value, std::size_t index) {
  const std::string where = std::string(nodes_key) + "[" + std::to_string(index) + "]";
  if (!value.is_table()) {
    throw config_error(where, "expected a table with id, host, http_port and actor_port, got "
                                + type_name(value.type()));
  }
  node_address node;
  for (const auto& [name, field] : value.as_table()) {
    const std::string key = where + "." + name;
    if (name == "id" || name == "host") {
      if (!field.is_string())
        throw config_error(key, "expected a string, got " + type_name(field.type()));
      const std::string text = field.as_string().str;
      if (text.empty()) throw config_error(key, "must not be empty");
      (name == "id" ? node.id : node.host) = text;
    } else if (name == "http_port" || name == "actor_port") {
      if (!field.is_integer()) {
        throw config_error(key, "expected an integer, got " + type_name(field.type()));
      }
      const auto port = field.as_integer();
      if (port < 1 || port > 65'535) {
        throw config_error(key, "must be between 1 and 65535, got " + std::to_string(port));
      }
      (name == "http_port" ? node.http_port : node.actor_port) = static_cast<std::uint16_t>(port);
    } else {
      throw config_error(key, "unknown key; known keys: id, host, http_port, actor_port");
    }
  }
  if (node.id.empty()) throw config_error(where + ".id", "missing");
  if (node.host.empty()) throw config_error(where + ".host", "missing");
  if (node.http_port == 0) throw config_error(where + ".http_port", "missing");
  if (node.actor_port == 0) throw config_error(where + ".actor_port", "missing");
  if (!valid_node_id(node.id)) {
    throw config_error(
      where + ".id", "\"" + node.id + "\" is not a node id (1-64 letters, digits, '-', '_', '.')");
  }
  return node;
}

std::vector<node_address> parse_nodes(const toml_value& value) {
  if (!value.is_array()) {
    throw config_error(std::string(nodes_key),
                       "expected an array of tables ([[cluster.nodes]]), got "
                         + type_name(value.type()));
  }
  std::vector<node_address> nodes;
  for (const auto& item : value.as_array())
    nodes.push_back(parse_node(item, nodes.size()));
  return nodes;
}

// -- job queues ---------------------------------------------------------------

constexpr std::string_view queues_key = "jobs.queues";

/// Letters, digits, '-' and '_', 1 to 64 of them (no '.': it would split the TOML key).
bool valid_queue_name(const std::string& name) {
  return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'
           || c == '_';
  });
}

/// One `[jobs.queues.NAME]` table: exactly `workers`.
queue_settings parse_queue(const std::string& name, const toml_value& value) {
  const std::string where = std::string(queues_key) + "." + name;
  if (!valid_queue_name(name)) {
    throw config_error(where,
                       "\"" + name + "\" is not a queue name (1-64 letters, digits, '-', '_')");
  }
  if (!value.is_table()) {
    throw config_error(where, "expected a table with workers ([" + where + "]), got "
                                + type_name(value.type()));
  }
  queue_settings queue{name};
  bool has_workers = false;
  for (const auto& [key_name, field] : value.as_table()) {
    const std::string key = where + "." + key_name;
    if (key_name != "workers") throw config_error(key, "unknown key; known keys: workers");
    if (!field.is_integer()) {
      throw config_error(key, "expected an integer, got " + type_name(field.type()));
    }
    const auto workers = field.as_integer();
    if (workers < 0 || static_cast<std::uint64_t>(workers) > max_job_workers) {
      throw config_error(key, "must be between 0 and " + std::to_string(max_job_workers) + ", got "
                                + std::to_string(workers));
    }
    queue.workers = static_cast<std::uint32_t>(workers);
    has_workers = true;
  }
  if (!has_workers) throw config_error(where + ".workers", "missing");
  return queue;
}

/// `jobs.queues`: one table per queue, in name order (the document's tables are std::maps).
std::vector<queue_settings> parse_queues(const toml_value& value) {
  if (!value.is_table()) {
    throw config_error(std::string(queues_key),
                       "expected one table per queue ([jobs.queues.NAME]), got "
                         + type_name(value.type()));
  }
  std::vector<queue_settings> queues;
  for (const auto& [name, table] : value.as_table())
    queues.push_back(parse_queue(name, table));
  return queues;
}

/// Why `item` of http.cors_origins is not an origin ("" when it is): "*", or a scheme
/// (http, https) with "://" and a host, an optional port, and nothing after.
std::string origin_problem(std::string_view item) {
  if (item == "*") return {};
  auto sep = item.find("://");
  if (sep == std::string_view::npos) return "expected scheme://host[:port] or *";
  auto scheme = item.substr(0, sep);
  if (scheme != "http" && scheme != "https") return "the scheme must be http or https";
  auto authority = item.substr(sep + 3);
  if (authority.empty()) return "the origin has no host";
  for (char c : authority) {
    bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':'
              || c == '[' || c == ']';
    if (!ok) return "an origin is a scheme, a host and a port only (no path, no /)";
  }
  return {};
}

void check_cors_origins(const std::string& list) {
  util::for_each_item(list, ',', [](std::string_view item) {
    if (auto why = item.empty() ? std::string{} : origin_problem(item); !why.empty())
      throw config_error("http.cors_origins", "\"" + std::string(item) + "\": " + why);
    return true;
  });
}

/// Rules that span keys, checked once everything is applied.
void finish(settings& s) {
  check_cors_origins(s.http.cors_origins);
  // A ceiling set below the floor's default lowers the floor with it.
  s.http.min_inflight = std::min(s.http.min_inflight, s.http.max_inflight);
  if (s.cache.max_ttl_s < s.cache.default_ttl_s) {
    throw config_error("cache.default_ttl_s", "must be at most cache.max_ttl_s ("
                                                + std::to_string(s.cache.max_ttl_s) + "), got "
                                                + std::to_string(s.cache.default_ttl_s));
  }
  if (s.cache.max_value_bytes > s.cache.max_bytes) {
    throw config_error("cache.max_value_bytes", "must be at most cache.max_bytes ("
                                                  + std::to_string(s.cache.max_bytes) + "), got "
                                                  + std::to_string(s.cache.max_value_bytes));
  }
  if (s.query.max_limit < s.query.default_limit) {
    throw config_error("query.default_limit", "must be at most query.max_limit ("
                                                + std::to_string(s.query.max_limit) + "), got "
                                                + std::to_string(s.query.default_limit));
  }
  if (s.jobs.retry_cap_ms < s.jobs.retry_base_ms) {
    throw config_error("jobs.retry_cap_ms", "must be at least jobs.retry_base_ms ("
                                              + std::to_string(s.jobs.retry_base_ms) + "), got "
                                              + std::to_string(s.jobs.retry_cap_ms));
  }
  if (std::string why; !util::destination_policy::with_allowed(s.jobs.webhook_allow, &why))
    throw config_error("jobs.webhook_allow", why);
  const std::string node_key = "node.id";
  if (!valid_node_id(s.node.id)) {
    throw config_error(node_key, "\"" + s.node.id
                                   + "\" is not a node id (1-64 letters, digits, '-', '_', '.')");
  }
  auto& c = s.cluster;
  c.replication_factor = c.copies();
  const int tls_set = !c.tls_certificate.empty() + !c.tls_key.empty() + !c.tls_ca.empty();
  if (tls_set != 0 && tls_set != 3) {
    const char* missing = c.tls_certificate.empty() ? "cluster.tls_certificate"
                          : c.tls_key.empty()       ? "cluster.tls_key"
                                                    : "cluster.tls_ca";
    throw config_error(missing, "TLS between members needs cluster.tls_certificate, "
                                "cluster.tls_key and cluster.tls_ca together");
  }
  if (tls_set != 0 && !c.clustered())
    throw config_error("cluster.tls_certificate",
                       "TLS between members needs cluster.nodes (a single node has no links)");
  if (!c.clustered()) {
    if (c.replication_factor > 1)
      throw config_error("cluster.replication_factor",
                         "must be 1 on a single node (a node cannot replicate to itself)");
    return;
  }
  if (c.replication_factor > c.nodes.size())
    throw config_error("cluster.replication_factor",
                       std::to_string(c.replication_factor) + " copies need as many members; "
                         + "cluster.nodes lists " + std::to_string(c.nodes.size()));
  std::set<std::string> ids;
  std::set<std::pair<std::string, std::uint16_t>> endpoints;
  for (const auto& n : c.nodes) {
    if (!ids.insert(n.id).second) {
      throw config_error(std::string(nodes_key), "node id \"" + n.id + "\" appears twice");
    }
    for (auto port : {n.http_port, n.actor_port}) {
      if (!endpoints.insert({n.host, port}).second) {
        throw config_error(std::string(nodes_key),
                           "address " + n.host + ":" + std::to_string(port) + " is used twice");
      }
    }
  }
  const auto self = std::find_if(c.nodes.begin(), c.nodes.end(),
                                 [&](const node_address& n) { return n.id == s.node.id; });
  if (self == c.nodes.end()) {
    throw config_error(node_key, "\"" + s.node.id + "\" is not one of cluster.nodes");
  }
  if (c.secret.size() < 16) {
    throw config_error("cluster.secret", c.secret.empty() ? "required when cluster.nodes is set"
                                                          : "must be at least 16 characters");
  }
  if (c.failure_timeout_ms <= c.heartbeat_ms) {
    throw config_error("cluster.failure_timeout_ms", "must be longer than cluster.heartbeat_ms ("
                                                       + std::to_string(c.heartbeat_ms) + ")");
  }
  s.http.host = self->host;
  s.http.port = self->http_port;
  for (auto at = s.storage.path.find("{node}"); at != std::string::npos;
       at = s.storage.path.find("{node}", at + s.node.id.size())) {
    s.storage.path.replace(at, 6, s.node.id);
  }
}

// -- sources ------------------------------------------------------------------

/// Applies every key of every section of `root`; throws `config_error` at the first bad one.
void apply_document(settings& s, const toml_value& root) {
  for (const auto& [section, table] : root.as_table()) {
    if (!table.is_table()) {
      throw config_error(section, "expected a section table, got " + type_name(table.type()));
    }
    if (!is_section(section)) {
      throw config_error(section, "unknown section; known sections: " + known_sections());
    }
    for (const auto& [name, value] : table.as_table()) {
      if (section == "cluster" && name == "nodes") {
        s.cluster.nodes = parse_nodes(value);
        continue;
      }
      if (section == "jobs" && name == "queues") {
        s.jobs.queues = parse_queues(value);
        continue;
      }
      const key_spec& spec = find_key(section, name);
      spec.set(s, check(spec, from_toml(spec, value)));
    }
  }
}

/// Applies one `section.key=value`; the value is everything after the first '='.
void apply_override(settings& s, const std::string& text) {
  const auto eq = text.find('=');
  const std::string key = text.substr(0, eq);
  const auto dot = key.find('.');
  if (key == nodes_key) {
    throw config_error(key, "cannot be overridden; list the members as [[cluster.nodes]] tables "
                            "in the file");
  }
  if (key == queues_key || key.rfind(std::string(queues_key) + ".", 0) == 0) {
    throw config_error(key, "cannot be overridden; set a queue's workers in a [jobs.queues.NAME] "
                            "table in the file");
  }
  if (eq == std::string::npos || dot == std::string::npos || dot == 0 || dot + 1 == key.size()) {
    throw config_error(key, "malformed override \"" + text + "\"; expected section.key=value");
  }
  const key_spec& spec = find_key(key.substr(0, dot), key.substr(dot + 1));
  spec.set(s, check(spec, from_text(spec, text.substr(eq + 1))));
}

/// The whole file; throws `config_error` with an empty key and the OS reason on failure.
std::string read_file(const std::string& path) {
  struct closer {
    void operator()(std::FILE* f) const {
      std::fclose(f);
    }
  };
  const std::unique_ptr<std::FILE, closer> file(std::fopen(path.c_str(), "rb"));
  if (!file) throw config_error("", "cannot open \"" + path + "\": " + std::strerror(errno));
  std::string text;
  char buffer[16 * 1024];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, file.get())) > 0;) {
    text.append(buffer, n);
  }
  // fopen succeeds on a directory; the read is what fails (EISDIR).
  if (std::ferror(file.get())) {
    throw config_error("", "cannot read \"" + path + "\": " + std::strerror(errno));
  }
  return text;
}

} // namespace

settings load(const std::optional<std::string>& file, const std::vector<std::string>& overrides) {
  if (!file) return load_from_string("", overrides);
  return load_from_string(read_file(*file), overrides, *file);
}

settings load_from_string(const std::string& toml_text, const std::vector<std::string>& overrides,
                          const std::string& origin) {
  std::istringstream in(toml_text);
  toml_value root;
  try {
    root = toml::parse<toml::discard_comments, std::map, std::vector>(in, origin);
  } catch (const std::exception& e) {
    // toml::syntax_error's text already names `origin` and shows the offending line.
    throw config_error("", e.what());
  }
  settings s;
  apply_document(s, root);
  for (const auto& text : overrides)
    apply_override(s, text);
  finish(s);
  return s;
}

} // namespace shoal::config
