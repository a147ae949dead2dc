// SPDX-License-Identifier: Apache-2.0
#include "config/settings.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <sstream>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

#include <toml.hpp>

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
constexpr std::uint64_t day_ms = std::uint64_t{24} * 60 * 60 * 1000;

/// Every key a file or an override may set, in the order of `settings.hpp`.
const std::vector<key_spec>& schema() {
  using s = settings;
  using http = http_settings;
  using storage = storage_settings;
  static const std::vector<key_spec> keys = {
    text<&s::http, &http::host>("http.host"),
    number<&s::http, &http::port, 0, 65'535>("http.port"),
    number<&s::http, &http::threads, 0, 256>("http.threads"),
    number<&s::http, &http::max_body_bytes, 1, gib>("http.max_body_bytes"),
    number<&s::http, &http::max_header_bytes, kib, mib>("http.max_header_bytes"),
    number<&s::http, &http::header_timeout_ms, 1, day_ms>("http.header_timeout_ms"),
    number<&s::http, &http::idle_timeout_ms, 1, day_ms>("http.idle_timeout_ms"),
    number<&s::http, &http::request_timeout_ms, 1, day_ms>("http.request_timeout_ms"),
    number<&s::http, &http::drain_timeout_ms, 1, day_ms>("http.drain_timeout_ms"),
    number<&s::http, &http::max_connections, 1, 1'000'000>("http.max_connections"),
    number<&s::http, &http::max_inflight, 1, 1'000'000>("http.max_inflight"),
    text<&s::storage, &storage::path>("storage.path"),
    boolean<&s::storage, &storage::sync>("storage.sync"),
    number<&s::storage, &storage::block_cache_bytes, 0, tib>("storage.block_cache_bytes"),
    number<&s::storage, &storage::write_buffer_bytes, 64 * kib, 4 * gib>(
      "storage.write_buffer_bytes"),
    number<&s::storage, &storage::total_write_buffer_bytes, 0, tib>(
      "storage.total_write_buffer_bytes"),
    number<&s::cluster, &cluster_settings::shards, 1, 65'536>("cluster.shards"),
    number<&s::actors, &actors_settings::threads, 0, 256>("actors.threads"),
    number<&s::actors, &actors_settings::call_timeout_ms, 1, day_ms>("actors.call_timeout_ms"),
    number<&s::actors, &actors_settings::idle_timeout_ms, 1, day_ms>("actors.idle_timeout_ms"),
    number<&s::actors, &actors_settings::max_active, 1, 100'000'000>("actors.max_active"),
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
  return s;
}

} // namespace shoal::config
