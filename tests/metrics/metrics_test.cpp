// SPDX-License-Identifier: Apache-2.0
#include "metrics/metrics.hpp"

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

// Verifies process metrics report a resident size and open descriptors.
TEST(ProcessMetricsTest, ReportsRssAndFds) {
  text_writer w;
  write_process_metrics(w, 1.5);
  EXPECT_NE(w.str().find("process_resident_memory_bytes "), std::string::npos);
  EXPECT_NE(w.str().find("process_open_fds "), std::string::npos);
  EXPECT_EQ(w.str().find("process_resident_memory_bytes 0\n"), std::string::npos);
}

} // namespace
} // namespace shoal::metrics
