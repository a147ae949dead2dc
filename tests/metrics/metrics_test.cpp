// SPDX-License-Identifier: Apache-2.0
#include "metrics/metrics.hpp"

#include <cmath>
#include <string>

#include <gtest/gtest.h>

namespace shoal::metrics {
namespace {

// Verifies histogram buckets are cumulative, with +Inf equal to the count.
TEST(HistogramTest, BucketsAreCumulative) {
  histogram h{{0.1, 1.0}};
  h.observe(0.05);
  h.observe(0.1); // upper bounds are inclusive
  h.observe(0.5);
  h.observe(7);
  auto s = h.collect();
  ASSERT_EQ(s.cumulative.size(), 3u);
  EXPECT_EQ(s.cumulative[0], 2u);
  EXPECT_EQ(s.cumulative[1], 3u);
  EXPECT_EQ(s.cumulative[2], 4u);
  EXPECT_EQ(s.count, 4u);
  EXPECT_NEAR(s.sum, 7.65, 1e-6);
}

// Verifies the text format: HELP/TYPE lines, labels, escaping and histogram series.
TEST(TextWriterTest, WritesPrometheusTextFormat) {
  text_writer w;
  w.family("x_total", "counter", "Things.");
  w.sample("x_total", {{"path", "a\"b\\c\nd"}}, std::uint64_t{3});
  histogram h{{0.5}};
  h.observe(0.25);
  w.histogram("lat_seconds", {{"route", "/r"}}, h);
  EXPECT_EQ(w.str(), "# HELP x_total Things.\n# TYPE x_total counter\n"
                     "x_total{path=\"a\\\"b\\\\c\\nd\"} 3\n"
                     "lat_seconds_bucket{route=\"/r\",le=\"0.5\"} 1\n"
                     "lat_seconds_bucket{route=\"/r\",le=\"+Inf\"} 1\n"
                     "lat_seconds_sum{route=\"/r\"} 0.25\n"
                     "lat_seconds_count{route=\"/r\"} 1\n");
}

// Verifies the registry concatenates its collectors in order.
TEST(RegistryTest, RendersCollectorsInOrder) {
  registry r;
  r.add([](text_writer& w) { w.sample("a", {}, 1.0); });
  r.add([](text_writer& w) { w.sample("b", {}, std::uint64_t{2}); });
  EXPECT_EQ(r.render(), "a 1\nb 2\n");
}

// Verifies process metrics report a resident size, open descriptors and the CPU time
// spent (this test spends some first).
TEST(ProcessMetricsTest, ReportsRssFdsAndCpu) {
  volatile double sink = 0;
  for (int i = 0; i < 20'000'000; ++i)
    sink = sink + std::sqrt(static_cast<double>(i));
  text_writer w;
  write_process_metrics(w, 1.5);
  const auto text = w.str();
  const auto at = text.find("\nprocess_cpu_seconds_total ");
  ASSERT_NE(at, std::string::npos) << text;
  EXPECT_GT(std::stod(text.substr(at + 27)), 0.0) << text;
  EXPECT_NE(text.find("# TYPE process_cpu_seconds_total counter"), std::string::npos);
  EXPECT_NE(w.str().find("process_resident_memory_bytes "), std::string::npos);
  EXPECT_NE(w.str().find("process_open_fds "), std::string::npos);
  EXPECT_EQ(w.str().find("process_resident_memory_bytes 0\n"), std::string::npos);
}

} // namespace
} // namespace shoal::metrics
