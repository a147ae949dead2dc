// SPDX-License-Identifier: Apache-2.0
#include "documents/documents.hpp"
#include "util/json.hpp"

#include <algorithm>

#include <boost/json.hpp>

namespace shoal::documents {

namespace {

constexpr char record_format_v1 = 0x01;
constexpr char tombstone_format_v1 = 0x02;
constexpr std::size_t record_header = 1 + 8;

core::error precondition_failed(std::optional<std::uint64_t> current) {
  return {core::errc::precondition_failed,
          current ? "the document is at version " + std::to_string(*current)
                  : std::string{"the document does not exist"}};
}

core::error no_such_document() {
  return {core::errc::not_found, "no such document"};
}

/// The version of the live document, nullopt when there is none (absent or deleted).
std::optional<std::uint64_t> version_of(const std::optional<record>& current) {
  if (current && current->live()) return current->version;
  return std::nullopt;
}

void put_version(std::string& out, std::uint64_t version) {
  for (int i = 0; i < 8; ++i)
    out[static_cast<std::size_t>(1 + i)] = static_cast<char>((version >> (56 - 8 * i)) & 0xff);
}

/// Evaluates If-Match then If-None-Match (RFC 9110 §13.2.2); true when the write may go on.
bool preconditions_pass(const doc_write& req, std::optional<std::uint64_t> current) {
  if (req.if_match.present() && !matches(req.if_match, current)) return false;
  if (req.if_none_match.present() && matches(req.if_none_match, current)) return false;
  return true;
}

} // namespace

std::string key(std::string_view collection, std::string_view id) {
  std::string k;
  k.reserve(2 + collection.size() + id.size());
  k += 'd';
  k += collection;
  k += '\0';
  k += id;
  return k;
}

std::string collection_prefix(std::string_view collection) {
  std::string k;
  k.reserve(2 + collection.size());
  k += 'd';
  k += collection;
  k += '\0';
  return k;
}

std::string encode(std::uint64_t version, std::string_view json) {
  std::string out;
  out.resize(record_header + json.size());
  out[0] = record_format_v1;
  put_version(out, version);
  std::copy(json.begin(), json.end(), out.begin() + record_header);
  return out;
}

std::string encode_tombstone(std::uint64_t version) {
  std::string out(record_header, '\0');
  out[0] = tombstone_format_v1;
  put_version(out, version);
  return out;
}

std::optional<record> decode(std::string_view bytes) {
  if (bytes.size() < record_header) return std::nullopt;
  std::uint64_t version = 0;
  for (std::size_t i = 1; i < record_header; ++i)
    version = (version << 8) | static_cast<unsigned char>(bytes[i]);
  if (bytes[0] == record_format_v1) return record{version, bytes.substr(record_header), false};
  if (bytes[0] == tombstone_format_v1 && bytes.size() == record_header)
    return record{version, {}, true};
  return std::nullopt;
}

bool matches(const precondition& p, std::optional<std::uint64_t> current) noexcept {
  switch (p.what) {
  case precondition::kind::absent:
    return false;
  case precondition::kind::any:
    return current.has_value();
  case precondition::kind::versions:
    return current && std::find(p.versions.begin(), p.versions.end(), *current) != p.versions.end();
  }
  return false;
}

core::result<write_plan> plan_write(const doc_write& req, const std::optional<record>& current) {
  auto current_version = version_of(current);
  // Versions continue across a delete: the next one follows the tombstone's.
  const std::uint64_t last_version = current ? current->version : 0;
  if (!preconditions_pass(req, current_version)) return precondition_failed(current_version);
  write_plan plan;
  switch (req.kind) {
  case write_kind::put:
    plan.reply.version = last_version + 1;
    plan.reply.created = !current_version;
    plan.value = encode(plan.reply.version, req.body);
    return plan;
  case write_kind::patch: {
    if (!current_version) return no_such_document();
    boost::json::error_code ec;
    auto doc = util::parse_json(current->json, ec);
    auto patch = ec ? boost::json::value{} : util::parse_json(req.body, ec);
    if (ec || !doc.is_object() || !patch.is_object())
      return core::error{core::errc::internal, "the document or patch is not a JSON object"};
    if (!merge_patch(doc, patch)) {
      // Nothing changes: no new version, no write, no change event.
      plan.reply.version = *current_version;
      plan.write = false;
      return plan;
    }
    plan.reply.version = *current_version + 1;
    plan.value = encode(plan.reply.version, util::to_json(doc));
    return plan;
  }
  case write_kind::del:
    if (!current_version) return no_such_document();
    plan.reply.version = *current_version + 1;
    plan.value = encode_tombstone(plan.reply.version);
    return plan;
  }
  return core::error{core::errc::internal, "unknown write kind"};
}

core::result<stored_doc> read(const doc_get& req, const std::optional<record>& current) {
  auto current_version = version_of(current);
  if (req.if_match.present() && !matches(req.if_match, current_version))
    return precondition_failed(current_version);
  if (!current_version) return no_such_document();
  stored_doc r;
  r.version = current->version;
  if (req.if_none_match.present() && matches(req.if_none_match, current->version)) {
    r.not_modified = true;
    return r;
  }
  r.json.assign(current->json);
  return r;
}

bool merge_patch(boost::json::value& target, const boost::json::value& patch) {
  if (!patch.is_object()) {
    if (target == patch) return false;
    target = patch;
    return true;
  }
  bool changed = false;
  if (!target.is_object()) {
    target = boost::json::object{};
    changed = true;
  }
  auto& obj = target.get_object();
  for (const auto& member : patch.get_object()) {
    if (member.value().is_null()) {
      changed = obj.erase(member.key()) > 0 || changed;
    } else {
      changed = merge_patch(obj[member.key()], member.value()) || changed;
    }
  }
  return changed;
}

void field_stats::add_document(std::string_view json, std::string_view path) {
  ++count;
  boost::json::error_code ec;
  auto doc = util::parse_json(json, ec);
  if (ec) return;
  const boost::json::value* v = &doc;
  while (!path.empty()) {
    auto dot = path.find('.');
    auto name = path.substr(0, dot);
    const auto* obj = v->if_object();
    if (!obj) return;
    auto it = obj->find(name);
    if (it == obj->end()) return;
    v = &it->value();
    path = dot == std::string_view::npos ? std::string_view{} : path.substr(dot + 1);
  }
  if (!v->is_number()) return;
  const double x = v->to_number<double>();
  if (numeric == 0 || x < min) min = x;
  if (numeric == 0 || x > max) max = x;
  sum += x;
  ++numeric;
}

void field_stats::merge(const field_stats& o) {
  count += o.count;
  if (o.numeric == 0) return;
  if (numeric == 0 || o.min < min) min = o.min;
  if (numeric == 0 || o.max > max) max = o.max;
  sum += o.sum;
  numeric += o.numeric;
}

std::string field_stats::to_json() const {
  boost::json::object o;
  o["count"] = count;
  o["numeric"] = numeric;
  o["min"] = numeric ? boost::json::value(min) : boost::json::value(nullptr);
  o["max"] = numeric ? boost::json::value(max) : boost::json::value(nullptr);
  o["sum"] = sum;
  return util::to_json(o);
}

} // namespace shoal::documents
