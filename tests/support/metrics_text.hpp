// SPDX-License-Identifier: Apache-2.0
#pragma once

// Reading a node's /metrics (the Prometheus text exposition) in end-to-end tests.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace shoal::test {

using label_set = std::map<std::string, std::string>;

/// One sample line of the exposition format.
struct sample {
  std::string name;
  label_set labels;
  double value = 0;
};

/// Every sample line of a text exposition (comments and malformed lines skipped).
std::vector<sample> parse_samples(std::string_view text);

/// The sum of the samples of `name` whose labels include every pair of `match`; nullopt
/// when no sample matches.
std::optional<double> metric(std::string_view text, std::string_view name,
                             const label_set& match = {});

/// GET /metrics of the node on `port` and `metric` of it; nullopt when the read failed
/// (refused, not 200) or no sample matches.
std::optional<double> read_metric(std::uint16_t port, std::string_view name,
                                  const label_set& match = {});

} // namespace shoal::test
