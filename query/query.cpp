// SPDX-License-Identifier: Apache-2.0
#include "query/query.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <variant>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "query/values.hpp"
#include "util/base64url.hpp"
#include "util/json.hpp"

namespace shoal::query {
namespace {

namespace json = boost::json;

constexpr const char* code_query = "invalid_query";
constexpr const char* code_cursor = "invalid_cursor";

/// First byte of a cursor: its layout (format byte, 8-byte fingerprint, sort key).
constexpr char cursor_format = 0x01;

/// Whether the parser reads a client body (with "cursor") or a shard request (with
/// "after" and "explain").
enum class parse_mode { client, shard };

/// A refusal while parsing: the error's name and message.
struct query_error {
  std::string code;
  std::string message;
};

query_error invalid(std::string message) {
  return query_error{code_query, std::move(message)};
}

std::string_view view(json::string_view s) {
  return std::string_view(s.data(), s.size());
}

/// `s` in double quotes for an error message: at most 64 bytes of it (cut on a UTF-8
/// boundary, "..." marking the cut), with quotes, backslashes and control bytes escaped.
std::string quoted(std::string_view s) {
  constexpr std::size_t max_shown = 64;
  bool cut = false;
  if (s.size() > max_shown) {
    std::size_t n = max_shown;
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80)
      --n;
    s = s.substr(0, n);
    cut = true;
  }
  std::string out = "\"";
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(ch);
    } else if (c < 0x20) {
      constexpr char hex[] = "0123456789abcdef";
      out += "\\u00";
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 0xF]);
    } else {
      out.push_back(ch);
    }
  }
  if (cut) out += "...";
  out.push_back('"');
  return out;
}

// ---- value classes, JSON forms ----

bool less_value(const json::value& a, const json::value& b) {
  return compare(a, b) < 0;
}

/// The normalized JSON of `where`: every condition as an object of operators, by path.
json::object where_to_json(const where_clause& where) {
  json::object out;
  for (const condition& c : where.conditions) {
    json::object ops;
    if (c.eq) ops["$eq"] = *c.eq;
    if (c.has_in) ops["$in"] = json::array(c.in.begin(), c.in.end());
    if (c.lo) ops[c.lo_inclusive ? "$gte" : "$gt"] = *c.lo;
    if (c.hi) ops[c.hi_inclusive ? "$lte" : "$lt"] = *c.hi;
    out[c.path] = std::move(ops);
  }
  return out;
}

/// 64-bit FNV-1a.
std::uint64_t fnv1a(std::string_view bytes) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (char c : bytes) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return h;
}

/// What a cursor is bound to: the normalized where, order_by and desc.
std::uint64_t fingerprint(const query_spec& spec) {
  json::object o;
  o["where"] = where_to_json(spec.where);
  o["order_by"] = spec.order_by;
  o["desc"] = spec.desc;
  return fnv1a(json::serialize(o));
}

void put_u64(std::string& out, std::uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((v >> shift) & 0xFF));
}

/// Reads big-endian integers and length-prefixed strings, failing (never reading past the
/// end) on truncated input.
class reader {
public:
  explicit reader(std::string_view in) : in_(in) {}

  bool u8(std::uint8_t& v) {
    if (in_.empty()) return false;
    v = static_cast<std::uint8_t>(in_[0]);
    in_.remove_prefix(1);
    return true;
  }
  bool u32(std::uint32_t& v) {
    std::uint64_t w = 0;
    if (!uint(4, w)) return false;
    v = static_cast<std::uint32_t>(w);
    return true;
  }
  bool u64(std::uint64_t& v) {
    return uint(8, v);
  }
  bool str(std::string& v) {
    std::uint32_t n = 0;
    if (!u32(n) || n > in_.size()) return false;
    v.assign(in_.data(), n);
    in_.remove_prefix(n);
    return true;
  }
  std::size_t left() const noexcept {
    return in_.size();
  }

private:
  bool uint(std::size_t n, std::uint64_t& v) {
    if (in_.size() < n) return false;
    v = 0;
    for (std::size_t i = 0; i < n; ++i)
      v = (v << 8) | static_cast<unsigned char>(in_[i]);
    in_.remove_prefix(n);
    return true;
  }

  std::string_view in_;
};

/// Whether `key` is a sort key `spec` could produce: a well-formed value key (with
/// order_by) followed by a non-empty id.
bool well_formed_sort_key(const query_spec& spec, std::string_view key) {
  if (!spec.order_by.empty()) {
    if (key.empty()) return false;
    char type = key[0];
    if (type >= 0x01 && type <= 0x04) {
      key.remove_prefix(1);
    } else if (type == 0x05) {
      if (key.size() < 9) return false;
      key.remove_prefix(9);
    } else if (type == 0x06) {
      std::size_t i = 1;
      for (;;) {
        std::size_t zero = key.find('\0', i);
        if (zero == std::string_view::npos || zero + 1 >= key.size()) return false;
        char next = key[zero + 1];
        if (next == '\x01') {
          key.remove_prefix(zero + 2);
          break;
        }
        if (next != '\xFF') return false;
        i = zero + 2;
      }
    } else {
      return false;
    }
  }
  return !key.empty();
}

// ---- parsing ----

/// Sets the lower (`lower`) or upper bound of `c` to `v`, keeping the tighter of two.
std::optional<query_error> add_bound(condition& c, const std::string& part, bool lower,
                                     const json::value& v, bool inclusive) {
  std::optional<json::value>& bound = lower ? c.lo : c.hi;
  bool& bound_inclusive = lower ? c.lo_inclusive : c.hi_inclusive;
  const std::optional<json::value>& other = lower ? c.hi : c.lo;
  if ((bound && type_rank(*bound) != type_rank(v))
      || (other && type_rank(*other) != type_rank(v))) {
    return invalid(quoted(part) + ": range bounds must all be of one type");
  }
  if (!bound) {
    bound = v;
    bound_inclusive = inclusive;
    return std::nullopt;
  }
  int cmp = compare(v, *bound);
  bool tighter = lower ? cmp > 0 : cmp < 0;
  if (tighter || (cmp == 0 && !inclusive)) {
    bound = v;
    bound_inclusive = inclusive;
  }
  return std::nullopt;
}

std::optional<query_error> parse_condition(const std::string& path, const json::value& v,
                                           const query_limits& limits, condition& c) {
  c.path = path;
  std::string part = "where." + path;
  if (is_scalar(v)) {
    c.eq = v;
    return std::nullopt;
  }
  if (!v.is_object()) return invalid(quoted(part) + ": comparison values must be scalars");
  const json::object& ops = v.get_object();
  if (ops.empty()) {
    return invalid(quoted(part)
                   + ": an empty condition; expected a scalar or operators ($eq, $gt, $gte, "
                     "$lt, $lte, $in)");
  }
  for (const auto& m : ops) {
    std::string_view op = view(m.key());
    const json::value& arg = m.value();
    bool known =
      op == "$eq" || op == "$gt" || op == "$gte" || op == "$lt" || op == "$lte" || op == "$in";
    if (!known) {
      return invalid(quoted(part) + ": unknown operator " + quoted(op)
                     + " (operators: $eq, $gt, $gte, $lt, $lte, $in; comparison values must "
                       "be scalars)");
    }
    std::string op_part = part + "." + std::string(op);
    if (op == "$in") {
      const json::array* values = arg.if_array();
      if (values == nullptr) return invalid(quoted(op_part) + ": must be an array of scalars");
      if (values->size() > limits.max_in_values) {
        return invalid(quoted(op_part) + ": " + std::to_string(values->size()) + " values, at most "
                       + std::to_string(limits.max_in_values));
      }
      c.in.clear();
      c.in.reserve(values->size());
      for (std::size_t i = 0; i < values->size(); ++i) {
        if (!is_scalar((*values)[i])) {
          return invalid(quoted(op_part + "[" + std::to_string(i) + "]")
                         + ": comparison values must be scalars");
        }
        c.in.push_back((*values)[i]);
      }
      std::stable_sort(c.in.begin(), c.in.end(), less_value);
      auto same = [](const json::value& a, const json::value& b) { return compare(a, b) == 0; };
      c.in.erase(std::unique(c.in.begin(), c.in.end(), same), c.in.end());
      c.has_in = true;
      continue;
    }
    if (!is_scalar(arg)) return invalid(quoted(op_part) + ": comparison values must be scalars");
    std::optional<query_error> err;
    if (op == "$eq") {
      c.eq = arg;
    } else if (op == "$gt" || op == "$gte") {
      err = add_bound(c, part, true, arg, op == "$gte");
    } else {
      err = add_bound(c, part, false, arg, op == "$lte");
    }
    if (err) return err;
  }
  return std::nullopt;
}

std::optional<query_error> parse_where(const json::value* v, const query_limits& limits,
                                       where_clause& out) {
  out.conditions.clear();
  if (v == nullptr || v->is_null()) return std::nullopt;
  const json::object* obj = v->if_object();
  if (obj == nullptr) return invalid("\"where\" must be an object of field path to condition");
  if (obj->size() > limits.max_conditions) {
    return invalid("\"where\" has " + std::to_string(obj->size()) + " conditions, at most "
                   + std::to_string(limits.max_conditions));
  }
  out.conditions.reserve(obj->size());
  for (const auto& m : *obj) {
    std::string path(view(m.key()));
    if (!valid_path(path)) {
      return invalid(quoted("where." + path)
                     + ": invalid field path (1 to 8 names of [A-Za-z0-9_-]{1,64} joined by "
                       "single dots, at most 256 bytes)");
    }
    condition c;
    if (auto err = parse_condition(path, m.value(), limits, c)) return err;
    out.conditions.push_back(std::move(c));
  }
  std::sort(out.conditions.begin(), out.conditions.end(),
            [](const condition& a, const condition& b) { return a.path < b.path; });
  return std::nullopt;
}

std::optional<query_error> parse_limit(const json::value* v, const query_limits& limits,
                                       std::uint32_t& out) {
  if (v == nullptr || v->is_null()) {
    out = limits.default_limit;
    return std::nullopt;
  }
  std::optional<std::uint64_t> n;
  if (const auto* i = v->if_int64()) {
    if (*i >= 0) n = static_cast<std::uint64_t>(*i);
  } else if (const auto* u = v->if_uint64()) {
    n = *u;
  } else if (const auto* d = v->if_double()) {
    // An integral double (1e2) is an integer; the range check below bounds it.
    if (std::isfinite(*d) && *d >= 0 && *d <= 4294967296.0 && std::trunc(*d) == *d) {
      n = static_cast<std::uint64_t>(*d);
    }
  }
  if (!n || *n < 1 || *n > limits.max_limit) {
    return invalid("\"limit\" must be an integer from 1 to " + std::to_string(limits.max_limit));
  }
  out = static_cast<std::uint32_t>(*n);
  return std::nullopt;
}

std::optional<query_error> parse_bool(const json::value* v, const char* name, bool& out) {
  if (v == nullptr) return std::nullopt;
  const bool* b = v->if_bool();
  if (b == nullptr) return invalid(quoted(name) + " must be true or false");
  out = *b;
  return std::nullopt;
}

std::variant<query_spec, query_error> parse_spec(const json::value& body,
                                                 const query_limits& limits, parse_mode mode) {
  const json::object* obj = body.if_object();
  if (obj == nullptr) return invalid("the query must be a JSON object");
  const json::value* where = nullptr;
  const json::value* order_by = nullptr;
  const json::value* desc = nullptr;
  const json::value* limit = nullptr;
  const json::value* allow_scan = nullptr;
  const json::value* cursor = nullptr;  // client
  const json::value* after = nullptr;   // shard
  const json::value* explain = nullptr; // shard
  for (const auto& m : *obj) {
    std::string_view key = view(m.key());
    const json::value* v = &m.value();
    if (key == "where") {
      where = v;
    } else if (key == "order_by") {
      order_by = v;
    } else if (key == "desc") {
      desc = v;
    } else if (key == "limit") {
      limit = v;
    } else if (key == "allow_scan") {
      allow_scan = v;
    } else if (mode == parse_mode::client && key == "cursor") {
      cursor = v;
    } else if (mode == parse_mode::shard && key == "after") {
      after = v;
    } else if (mode == parse_mode::shard && key == "explain") {
      explain = v;
    } else {
      return invalid("unknown member " + quoted(key)
                     + (mode == parse_mode::client
                          ? " (a query has where, order_by, desc, limit, cursor, allow_scan)"
                          : ""));
    }
  }

  query_spec spec;
  if (auto err = parse_where(where, limits, spec.where)) return *err;
  if (order_by != nullptr && !order_by->is_null()) {
    const json::string* s = order_by->if_string();
    if (s == nullptr) return invalid("\"order_by\" must be a field path string or null");
    if (!valid_path(view(*s))) {
      return invalid("\"order_by\": invalid field path " + quoted(view(*s))
                     + " (1 to 8 names of [A-Za-z0-9_-]{1,64} joined by single dots, at most "
                       "256 bytes)");
    }
    spec.order_by = std::string(view(*s));
  }
  if (auto err = parse_bool(desc, "desc", spec.desc)) return *err;
  if (auto err = parse_limit(limit, limits, spec.limit)) return *err;
  if (auto err = parse_bool(allow_scan, "allow_scan", spec.allow_scan)) return *err;
  if (auto err = parse_bool(explain, "explain", spec.explain)) return *err;

  if (after != nullptr && !after->is_null()) {
    const json::string* s = after->if_string();
    std::optional<std::string> key;
    if (s != nullptr) key = util::base64url_decode(view(*s));
    if (!key) return invalid("\"after\" must be a base64url sort key or null");
    spec.after = std::move(*key);
  }
  if (cursor != nullptr && !cursor->is_null()) {
    const json::string* s = cursor->if_string();
    if (s == nullptr) {
      return query_error{code_cursor, "\"cursor\" must be null or a cursor from a previous answer"};
    }
    auto key = decode_cursor(spec, view(*s));
    if (!key) {
      return query_error{code_cursor,
                         "\"cursor\" is not a cursor of this query (where, order_by and desc "
                         "must be those of the query that returned it)"};
    }
    spec.after = std::move(*key);
  }
  return spec;
}

} // namespace

bool condition::matches(const json::value* v) const {
  if (v == nullptr || !is_scalar(*v)) return false;
  if (eq && compare(*v, *eq) != 0) return false;
  if (has_in && !std::binary_search(in.begin(), in.end(), *v, less_value)) return false;
  if (lo) {
    if (type_rank(*v) != type_rank(*lo)) return false;
    int c = compare(*v, *lo);
    if (c < 0 || (c == 0 && !lo_inclusive)) return false;
  }
  if (hi) {
    if (type_rank(*v) != type_rank(*hi)) return false;
    int c = compare(*v, *hi);
    if (c > 0 || (c == 0 && !hi_inclusive)) return false;
  }
  return true;
}

bool where_clause::matches(const json::value& doc) const {
  for (const condition& c : conditions) {
    if (!c.matches(lookup(doc, c.path))) return false;
  }
  return true;
}

namespace {

/// A refusal as the one error model has it.
core::error to_error(query_error e) {
  return core::error{core::errc::invalid_argument, std::move(e.code), std::move(e.message)};
}

core::result<query_spec> from_parsed(std::variant<query_spec, query_error>&& parsed) {
  if (auto* e = std::get_if<query_error>(&parsed)) return to_error(std::move(*e));
  return std::move(std::get<query_spec>(parsed));
}

} // namespace

core::result<query_spec> parse_query(const json::value& body, const query_limits& limits) {
  return from_parsed(parse_spec(body, limits, parse_mode::client));
}

std::string to_shard_json(const query_spec& spec) {
  json::object o;
  o["where"] = where_to_json(spec.where);
  if (spec.order_by.empty()) {
    o["order_by"] = nullptr;
  } else {
    o["order_by"] = spec.order_by;
  }
  o["desc"] = spec.desc;
  o["limit"] = spec.limit;
  if (spec.after.empty()) {
    o["after"] = nullptr;
  } else {
    o["after"] = util::base64url_encode(spec.after);
  }
  o["allow_scan"] = spec.allow_scan;
  o["explain"] = spec.explain;
  return json::serialize(o);
}

core::result<query_spec> parse_shard_json(std::string_view text, const query_limits& limits) {
  boost::system::error_code ec;
  json::value v = util::parse_json(text, ec);
  if (ec) return to_error(invalid("the shard query is not valid JSON: " + ec.message()));
  return from_parsed(parse_spec(v, limits, parse_mode::shard));
}

std::string sort_key(const query_spec& spec, const json::value& doc, std::string_view id) {
  std::string key;
  if (!spec.order_by.empty()) {
    const json::value* v = lookup(doc, spec.order_by);
    if (v == nullptr || !append_value_key(key, *v)) append_missing_key(key);
  }
  key.append(id.data(), id.size());
  return key;
}

bool after_cursor(const query_spec& spec, std::string_view key) {
  if (spec.after.empty()) return true;
  std::string_view after = spec.after;
  std::size_t n = std::min(key.size(), after.size());
  int c = n == 0 ? 0 : std::memcmp(key.data(), after.data(), n);
  if (c == 0) c = key.size() < after.size() ? -1 : (key.size() > after.size() ? 1 : 0);
  return spec.desc ? c < 0 : c > 0;
}

std::string encode_cursor(const query_spec& spec, std::string_view last_sort_key) {
  std::string raw;
  raw.reserve(9 + last_sort_key.size());
  raw.push_back(cursor_format);
  put_u64(raw, fingerprint(spec));
  raw.append(last_sort_key.data(), last_sort_key.size());
  return util::base64url_encode(raw);
}

std::optional<std::string> decode_cursor(const query_spec& spec, std::string_view cursor) {
  auto raw = util::base64url_decode(cursor);
  if (!raw || raw->size() < 10 || (*raw)[0] != cursor_format) return std::nullopt;
  reader r(std::string_view(*raw).substr(1));
  std::uint64_t fp = 0;
  if (!r.u64(fp) || fp != fingerprint(spec)) return std::nullopt;
  std::string key = raw->substr(9);
  if (!well_formed_sort_key(spec, key)) return std::nullopt;
  return key;
}

} // namespace shoal::query
