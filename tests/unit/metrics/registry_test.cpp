#include "oss/metrics/registry.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <stdexcept>
#include <thread>
#include <vector>

namespace oss::metrics {
namespace {

TEST(Registry, CountersAndGaugesRenderExactText) {
  Registry r;
  r.counter("oss_events_total", "Events handled.", {{"outcome", "applied"}}).inc();
  r.counter("oss_events_total", "Events handled.", {{"outcome", "duplicate"}}).inc(2);
  r.gauge("oss_backlog", "Rows waiting.\nSecond line \\ here").set(12.5);
  r.counter("oss_plain_total", "No labels.");
  EXPECT_EQ(r.render(),
            "# HELP oss_events_total Events handled.\n"
            "# TYPE oss_events_total counter\n"
            "oss_events_total{outcome=\"applied\"} 1\n"
            "oss_events_total{outcome=\"duplicate\"} 2\n"
            "# HELP oss_backlog Rows waiting.\\nSecond line \\\\ here\n"
            "# TYPE oss_backlog gauge\n"
            "oss_backlog 12.5\n"
            "# HELP oss_plain_total No labels.\n"
            "# TYPE oss_plain_total counter\n"
            "oss_plain_total 0\n");
}

TEST(Registry, LabelValuesAreEscapedAndSortedByName) {
  Registry r;
  r.gauge("g", "h", {{"z", "a\"b"}, {"a", "back\\slash\nnl"}}).set(-1);
  EXPECT_EQ(r.render(),
            "# HELP g h\n"
            "# TYPE g gauge\n"
            "g{a=\"back\\\\slash\\nnl\",z=\"a\\\"b\"} -1\n");
}

TEST(Registry, HistogramRendersCumulativeBucketsSumAndCount) {
  Registry r;
  auto& h = r.histogram("oss_latency_seconds", "Latency.", {0.1, 0.5, 1}, {{"route", "/x"}});
  h.observe(0.05);
  h.observe(0.1);  // le is inclusive
  h.observe(0.7);
  h.observe(3);
  EXPECT_EQ(h.count(), 4u);
  EXPECT_DOUBLE_EQ(h.sum(), 3.85);
  EXPECT_EQ(r.render(),
            "# HELP oss_latency_seconds Latency.\n"
            "# TYPE oss_latency_seconds histogram\n"
            "oss_latency_seconds_bucket{route=\"/x\",le=\"0.1\"} 2\n"
            "oss_latency_seconds_bucket{route=\"/x\",le=\"0.5\"} 2\n"
            "oss_latency_seconds_bucket{route=\"/x\",le=\"1\"} 3\n"
            "oss_latency_seconds_bucket{route=\"/x\",le=\"+Inf\"} 4\n"
            "oss_latency_seconds_sum{route=\"/x\"} 3.85\n"
            "oss_latency_seconds_count{route=\"/x\"} 4\n");
}

TEST(Registry, SameNameAndLabelsReturnsSameMetric) {
  Registry r;
  auto& a = r.counter("c_total", "h", {{"a", "1"}, {"b", "2"}});
  auto& b = r.counter("c_total", "h", {{"b", "2"}, {"a", "1"}});
  auto& other = r.counter("c_total", "h", {{"a", "2"}, {"b", "2"}});
  EXPECT_EQ(&a, &b);
  EXPECT_NE(&a, &other);
}

TEST(Registry, TypeMismatchThrowsLogicError) {
  Registry r;
  r.counter("x", "h");
  EXPECT_THROW(r.gauge("x", "h"), std::logic_error);
  EXPECT_THROW(r.histogram("x", "h", {1.0}), std::logic_error);
  r.histogram("hist", "h", {1.0, 2.0});
  EXPECT_THROW(r.histogram("hist", "h", {1.0, 3.0}, {{"a", "b"}}), std::logic_error);
}

TEST(Registry, InvalidNamesAndBucketsThrow) {
  Registry r;
  EXPECT_THROW(r.counter("1abc", "h"), std::invalid_argument);
  EXPECT_THROW(r.counter("a-b", "h"), std::invalid_argument);
  EXPECT_THROW(r.counter("ok", "h", {{"bad-label", "v"}}), std::invalid_argument);
  EXPECT_THROW(r.counter("ok", "h", {{"a", "1"}, {"a", "2"}}), std::invalid_argument);
  EXPECT_THROW(r.histogram("h1", "h", {1.0}, {{"le", "1"}}), std::invalid_argument);
  EXPECT_THROW(r.histogram("h2", "h", {2.0, 1.0}), std::invalid_argument);
  EXPECT_THROW(exponential_buckets(0, 2, 3), std::invalid_argument);
}

TEST(Registry, ConcurrentIncrementsSumCorrectly) {
  Registry r;
  constexpr int kThreads = 8;
  constexpr int kPerThread = 20000;
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&r] {
      // Registration races too: every thread must get the same metrics.
      auto& c = r.counter("c_total", "h", {{"k", "v"}});
      auto& g = r.gauge("g", "h");
      auto& h = r.histogram("h", "h", {0.5});
      for (int i = 0; i < kPerThread; ++i) {
        c.inc();
        g.inc(2);
        g.dec();
        h.observe(1.0);
      }
    });
  }
  for (auto& t : threads) t.join();
  constexpr double kTotal = kThreads * kPerThread;
  EXPECT_DOUBLE_EQ(r.counter("c_total", "h", {{"k", "v"}}).value(), kTotal);
  EXPECT_DOUBLE_EQ(r.gauge("g", "h").value(), kTotal);
  EXPECT_EQ(r.histogram("h", "h", {0.5}).count(), static_cast<std::uint64_t>(kTotal));
  EXPECT_DOUBLE_EQ(r.histogram("h", "h", {0.5}).sum(), kTotal);
}

TEST(Registry, OnCollectRunsBeforeEveryRender) {
  Registry r;
  auto& g = r.gauge("backlog", "h");
  int calls = 0;
  r.on_collect([&] { g.set(++calls); });
  EXPECT_NE(r.render().find("backlog 1\n"), std::string::npos);
  EXPECT_NE(r.render().find("backlog 2\n"), std::string::npos);
}

TEST(Registry, CounterIgnoresNegativeIncrements) {
  Counter c;
  c.inc(-5);
  c.inc(0.5);
  EXPECT_DOUBLE_EQ(c.value(), 0.5);
}

TEST(Buckets, ExponentialAndLatency) {
  EXPECT_EQ(exponential_buckets(1, 2, 4), (std::vector<double>{1, 2, 4, 8}));
  const auto lat = latency_buckets_seconds();
  EXPECT_DOUBLE_EQ(lat.front(), 0.0005);
  EXPECT_DOUBLE_EQ(lat.back(), 60.0);
  EXPECT_TRUE(std::is_sorted(lat.begin(), lat.end()));
}

}  // namespace
}  // namespace oss::metrics
