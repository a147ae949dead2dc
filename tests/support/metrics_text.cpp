// SPDX-License-Identifier: Apache-2.0
#include "tests/support/metrics_text.hpp"

#include <algorithm>
#include <exception>

#include "tests/support/http_client.hpp"

namespace shoal::test {

std::vector<sample> parse_samples(std::string_view text) {
  std::vector<sample> out;
  while (!text.empty()) {
    auto eol = text.find('\n');
    auto line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view{} : text.substr(eol + 1);
    if (line.empty() || line.front() == '#') continue;
    sample s;
    std::size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ')
      ++i;
    s.name.assign(line.substr(0, i));
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        auto eq = line.find('=', i);
        if (eq == std::string_view::npos || eq + 1 >= line.size() || line[eq + 1] != '"') break;
        std::string key(line.substr(i, eq - i));
        std::string value;
        std::size_t j = eq + 2;
        for (; j < line.size() && line[j] != '"'; ++j) {
          if (line[j] == '\\' && j + 1 < line.size()) ++j;
          value += line[j];
        }
        s.labels.emplace(std::move(key), std::move(value));
        i = j + 1;
        if (i < line.size() && line[i] == ',') ++i;
      }
      ++i; // '}'
    }
    while (i < line.size() && line[i] == ' ')
      ++i;
    try {
      s.value = std::stod(std::string(line.substr(i)));
    } catch (const std::exception&) {
      continue;
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::optional<double> metric(std::string_view text, std::string_view name,
                             const label_set& match) {
  std::optional<double> sum;
  for (const auto& s : parse_samples(text)) {
    if (s.name != name) continue;
    bool all = std::all_of(match.begin(), match.end(), [&](const auto& kv) {
      auto it = s.labels.find(kv.first);
      return it != s.labels.end() && it->second == kv.second;
    });
    if (all) sum = sum.value_or(0) + s.value;
  }
  return sum;
}

std::optional<double> read_metric(std::uint16_t port, std::string_view name,
                                  const label_set& match) {
  http_client c{port};
  auto res = c.try_request("GET", "/metrics");
  if (!res || res->status != 200) return std::nullopt;
  return metric(res->body, name, match);
}

} // namespace shoal::test
