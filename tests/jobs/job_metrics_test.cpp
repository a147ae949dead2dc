// SPDX-License-Identifier: Apache-2.0
// The job metrics' bound on series: names clients invent cannot grow /metrics.
#include "jobs/job_metrics.hpp"

#include <set>
#include <string>

#include <gtest/gtest.h>

namespace shoal::jobs {
namespace {

/// The distinct values of label `label` in the rendered metrics.
std::set<std::string> label_values(const std::string& text, const std::string& label) {
  std::set<std::string> out;
  const std::string key = label + "=\"";
  for (auto pos = text.find(key); pos != std::string::npos; pos = text.find(key, pos + 1)) {
    auto start = pos + key.size();
    out.insert(text.substr(start, text.find('"', start) - start));
  }
  return out;
}

// Verifies the first max_series (queue, type) pairs and queues get series of their own,
// later ones share "~other" (counted together), and known names keep their own.
TEST(JobMetricsTest, NamesPastTheBoundShareOneSeries) {
  job_metrics m{3};
  m.of("q1", "a").enqueued.inc();
  m.of("q1", "b").enqueued.inc();
  m.of("q2", "a").enqueued.inc();
  m.of("q3", "a").enqueued.inc(); // the 4th pair
  m.of("q4", "z").enqueued.inc(2);
  m.of("q1", "a").enqueued.inc(); // known: its own series still
  EXPECT_EQ(&m.of("q9", "x"), &m.of("q8", "y"));
  EXPECT_NE(&m.of("q1", "b"), &m.of("q9", "x"));
  EXPECT_EQ(m.of("q1", "a").enqueued.value(), 2u);
  EXPECT_EQ(m.of("q3", "a").enqueued.value(), 3u) << "q3/a and q4/z share ~other";
  for (int i = 0; i < 5; ++i)
    m.of("queue" + std::to_string(i)).depth[0].add(1);
  EXPECT_EQ(m.of("queue4").depth[0].value(), 2) << "queue3 and queue4 share ~other";
  EXPECT_EQ(m.of("queue0").depth[0].value(), 1);

  metrics::text_writer out;
  m.write(out);
  EXPECT_EQ(label_values(out.str(), "queue"),
            (std::set<std::string>{"q1", "q2", "queue0", "queue1", "queue2", "~other"}));
  EXPECT_EQ(label_values(out.str(), "type"), (std::set<std::string>{"a", "b", "~other"}));
}

} // namespace
} // namespace shoal::jobs
