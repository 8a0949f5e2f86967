// The benchmark's histogram: its error bound, its quantiles against an exact sort, merging, and
// the HdrHistogram text export that plotting tools read.
#include "bench/cluster/histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <sstream>
#include <vector>

namespace fastzab::bench {
namespace {

TEST(Histogram, EveryBucketIsWithinHalfAPercentOfItsValues) {
  // Walk bucket boundaries from 100 ns to 100 s: a value reported for a bucket (its midpoint) is
  // within 0.4 % of the lowest and the highest value the bucket holds.
  for (std::size_t i = Histogram::index_of(100); i <= Histogram::index_of(100'000'000'000ull); ++i) {
    const std::uint64_t lo = Histogram::lowest_in(i), hi = Histogram::highest_in(i);
    ASSERT_LE(lo, hi);
    ASSERT_EQ(Histogram::index_of(lo), i);
    ASSERT_EQ(Histogram::index_of(hi), i);
    ASSERT_EQ(Histogram::index_of(hi + 1), i + 1);
    const double mid = static_cast<double>(lo + (hi - lo) / 2);
    EXPECT_LE(std::abs(mid - static_cast<double>(lo)) / static_cast<double>(lo), 0.004) << "bucket " << i;
    EXPECT_LE(std::abs(static_cast<double>(hi) - mid) / static_cast<double>(hi), 0.004) << "bucket " << i;
  }
}

TEST(Histogram, QuantilesMatchAnExactSortWithinOnePercent) {
  std::mt19937_64 rng(42);
  std::lognormal_distribution<double> latency(std::log(150'000.0), 0.8);  // around 150 us
  Histogram h;
  std::vector<std::uint64_t> all;
  for (int i = 0; i < 200'000; ++i) {
    const auto v = static_cast<std::uint64_t>(latency(rng)) + 100;
    h.record(v);
    all.push_back(v);
  }
  std::sort(all.begin(), all.end());
  for (double q : {0.0, 0.5, 0.9, 0.99, 0.999, 0.9999, 1.0}) {
    const auto rank = std::max<std::size_t>(1, static_cast<std::size_t>(std::ceil(q * static_cast<double>(all.size()))));
    const double exact = static_cast<double>(all[rank - 1]);
    EXPECT_NEAR(static_cast<double>(h.quantile(q)), exact, exact * 0.01) << "q=" << q;
  }
  EXPECT_EQ(h.count(), all.size());
  EXPECT_EQ(h.min(), all.front());
  EXPECT_EQ(h.max(), all.back());
}

TEST(Histogram, MergeEqualsRecordingEverythingInOne) {
  Histogram a, b, both;
  for (std::uint64_t v = 1; v < 100'000; v += 7) {
    (v % 2 ? a : b).record(v * 13);
    both.record(v * 13);
  }
  a.merge(b);
  EXPECT_EQ(a.count(), both.count());
  EXPECT_EQ(a.min(), both.min());
  EXPECT_EQ(a.max(), both.max());
  for (double q : {0.1, 0.5, 0.99}) EXPECT_EQ(a.quantile(q), both.quantile(q));
  EXPECT_DOUBLE_EQ(a.mean(), both.mean());
}

TEST(Histogram, EmptyReportsZeros) {
  Histogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.quantile(0.5), 0u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), 0u);
}

TEST(Histogram, PercentileDistributionIsHdrHistogramsTextFormat) {
  Histogram h;
  for (std::uint64_t v = 1; v <= 10'000; ++v) h.record(v * 1000);  // 1 us .. 10 ms
  const std::string text = h.percentile_distribution(1000.0);
  std::istringstream in(text);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "       Value     Percentile TotalCount 1/(1-Percentile)");
  std::getline(in, line);
  EXPECT_EQ(line, "");
  double last_value = -1, last_percentile = -1;
  std::uint64_t last_count = 0;
  int rows = 0;
  while (std::getline(in, line) && !line.starts_with("#")) {
    double value = 0, percentile = 0;
    unsigned long long count = 0;
    ASSERT_GE(std::sscanf(line.c_str(), "%lf %lf %llu", &value, &percentile, &count), 3) << line;
    EXPECT_GE(value, last_value);
    EXPECT_GT(percentile, last_percentile);
    EXPECT_GE(count, last_count);
    last_value = value;
    last_percentile = percentile;
    last_count = count;
    ++rows;
  }
  EXPECT_GT(rows, 20);
  EXPECT_DOUBLE_EQ(last_percentile, 1.0);
  EXPECT_EQ(last_count, 10'000u);
  EXPECT_NEAR(last_value, 10'000.0, 1.0);  // the max, in microseconds
  EXPECT_TRUE(line.starts_with("#[Mean    = ")) << line;
  EXPECT_NE(text.find("Total count    =        10000]"), std::string::npos);
}

}  // namespace
}  // namespace fastzab::bench
