// SPDX-License-Identifier: Apache-2.0
#include "jobs/records.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>

#include <boost/json.hpp>

namespace shoal::jobs {

namespace {

constexpr char record_format = 0x03;

template <class T>
void put_fixed(std::string& out, T v) {
  char bytes[sizeof(T)];
  for (std::size_t i = 0; i < sizeof(T); ++i)
    bytes[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  out.append(bytes, sizeof(T));
}

void put_string(std::string& out, const std::string& s) {
  put_fixed<std::uint32_t>(out, static_cast<std::uint32_t>(s.size()));
  out += s;
}

/// Reads fixed-size fields and strings from a record, failing once on truncation.
struct reader {
  std::string_view in;
  bool ok = true;

  template <class T>
  T fixed() {
    if (in.size() < sizeof(T)) {
      ok = false;
      return 0;
    }
    T v = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i)
      v |= static_cast<T>(static_cast<unsigned char>(in[i])) << (8 * i);
    in.remove_prefix(sizeof(T));
    return v;
  }
  std::string string() {
    auto n = fixed<std::uint32_t>();
    if (!ok || in.size() < n) {
      ok = false;
      return {};
    }
    std::string s(in.substr(0, n));
    in.remove_prefix(n);
    return s;
  }
};

/// RFC 3339 UTC with milliseconds: "2026-11-29T04:10:46.123Z".
std::string timestamp(std::uint64_t ms) {
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<unsigned>(ms % 1000));
  return buf;
}

} // namespace

std::string job_key(std::string_view id) {
  std::string k;
  k.reserve(1 + id.size());
  k += 'j';
  k += id;
  return k;
}

std::string idempotency_key(std::string_view queue, std::string_view key) {
  std::string k;
  k.reserve(2 + queue.size() + key.size());
  k += 'k';
  k += queue;
  k += '\0';
  k += key;
  return k;
}

std::string encode(const job_record& r) {
  std::string out;
  out.reserve(80 + r.queue.size() + r.type.size() + r.payload.size() + r.result.size()
              + r.error.size() + r.lease_id.size() + r.owner.size() + r.idempotency.size());
  out += record_format;
  out += static_cast<char>(r.state);
  put_fixed(out, r.attempts);
  put_fixed(out, r.max_attempts);
  put_fixed(out, r.created_ms);
  put_fixed(out, r.updated_ms);
  put_fixed(out, r.due_ms);
  put_fixed(out, r.seq);
  put_fixed(out, r.leased_ms);
  put_fixed(out, r.lease_until);
  for (const auto* s :
       {&r.queue, &r.type, &r.payload, &r.result, &r.error, &r.lease_id, &r.owner, &r.idempotency})
    put_string(out, *s);
  return out;
}

std::optional<job_record> decode(std::string_view raw) {
  if (raw.size() < 2 || raw[0] != record_format) return std::nullopt;
  auto state = static_cast<unsigned char>(raw[1]);
  if (state >= job_state_count) return std::nullopt;
  reader in{raw.substr(2)};
  job_record r;
  r.state = static_cast<job_state>(state);
  r.attempts = in.fixed<std::uint32_t>();
  r.max_attempts = in.fixed<std::uint32_t>();
  r.created_ms = in.fixed<std::uint64_t>();
  r.updated_ms = in.fixed<std::uint64_t>();
  r.due_ms = in.fixed<std::uint64_t>();
  r.seq = in.fixed<std::uint64_t>();
  r.leased_ms = in.fixed<std::uint64_t>();
  r.lease_until = in.fixed<std::uint64_t>();
  for (auto* s :
       {&r.queue, &r.type, &r.payload, &r.result, &r.error, &r.lease_id, &r.owner, &r.idempotency})
    *s = in.string();
  if (!in.ok || !in.in.empty()) return std::nullopt;
  return r;
}

std::string render(std::string_view id, const job_record& r) {
  boost::json::object o;
  o["id"] = id;
  o["queue"] = r.queue;
  o["type"] = r.type;
  o["state"] = to_string(r.state);
  o["attempts"] = r.attempts;
  o["max_attempts"] = r.max_attempts;
  if (r.error.empty())
    o["error"] = nullptr;
  else
    o["error"] = r.error;
  o["created_at"] = timestamp(r.created_ms);
  o["updated_at"] = timestamp(r.updated_ms);
  if (r.state == job_state::queued || r.state == job_state::failed)
    o["run_at"] = timestamp(r.due_ms);
  if (r.state == job_state::running) o["lease_expires_at"] = timestamp(r.lease_until);
  if (!r.idempotency.empty()) o["idempotency_key"] = r.idempotency;
  // The payload and the result are stored as JSON text the edge (or the broker) checked:
  // spliced in as they are rather than parsed and written again.
  auto out = boost::json::serialize(o);
  out.pop_back();
  out.reserve(out.size() + r.payload.size() + r.result.size() + 24);
  out += ",\"payload\":";
  out += r.payload.empty() ? std::string_view("{}") : std::string_view(r.payload);
  out += ",\"result\":";
  out += r.result.empty() ? std::string_view("null") : std::string_view(r.result);
  out += '}';
  return out;
}

std::uint64_t retry_policy::delay(std::uint32_t attempt, std::mt19937_64& rng) const {
  std::uint64_t d = std::max<std::uint32_t>(base_ms, 1);
  for (std::uint32_t i = 1; i < attempt && d < cap_ms; ++i)
    d *= 2;
  d = std::min<std::uint64_t>(d, cap_ms);
  std::uniform_int_distribution<std::uint64_t> share(d / 2, d);
  return share(rng);
}

} // namespace shoal::jobs
