#include "bench/cluster/histogram.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace fastzab::bench {

void Histogram::merge(const Histogram& other) noexcept {
  for (std::size_t i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  sum_squares_ += other.sum_squares_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

double Histogram::stddev() const noexcept {
  if (count_ < 2) return 0;
  const double n = static_cast<double>(count_);
  const double m = static_cast<double>(sum_) / n;
  return std::sqrt(std::max(0.0, sum_squares_ / n - m * m));
}

std::uint64_t Histogram::lowest_in(std::size_t i) noexcept {
  if (i < kExactBelow) return i;
  const std::size_t j = i - kExactBelow;
  const unsigned shift = static_cast<unsigned>(j / kSubBuckets) + 1;
  return (kSubBuckets + j % kSubBuckets) << shift;
}

std::uint64_t Histogram::highest_in(std::size_t i) noexcept {
  if (i < kExactBelow) return i;
  const unsigned shift = static_cast<unsigned>((i - kExactBelow) / kSubBuckets) + 1;
  return lowest_in(i) + ((std::uint64_t{1} << shift) - 1);
}

std::uint64_t Histogram::quantile(double q) const noexcept {
  if (count_ == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  // The rank of the value asked for, 1-based: at least one value, at most all of them.
  auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count_)));
  rank = std::clamp<std::uint64_t>(rank, 1, count_);
  if (rank == count_) return max_;  // exact, not a bucket's midpoint
  if (rank == 1) return min_;
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < kBuckets; ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      const std::uint64_t mid = lowest_in(i) + (highest_in(i) - lowest_in(i)) / 2;
      return std::clamp(mid, min_, max_);
    }
  }
  return max_;
}

std::string Histogram::percentile_distribution(double unit_ns) const {
  std::string out = "       Value     Percentile TotalCount 1/(1-Percentile)\n\n";
  char line[128];
  constexpr int kTicksPerHalfDistance = 5;
  double percentile = 0;  // in percent
  std::uint64_t seen = 0;
  std::size_t bucket = 0;
  // Walk the percentiles HdrHistogram reports (steps that halve every time the distance to
  // 100 % halves); each row gives the value at that percentile and the count up to it.
  while (count_ > 0) {
    const double q = percentile / 100.0;
    auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count_)));
    rank = std::clamp<std::uint64_t>(rank, 1, count_);
    while (seen < rank && bucket < kBuckets) seen += counts_[bucket++];
    const std::uint64_t last = bucket ? bucket - 1 : 0;
    const std::uint64_t value =
        std::clamp(lowest_in(last) + (highest_in(last) - lowest_in(last)) / 2, min_, max_);
    if (seen >= count_) {
      std::snprintf(line, sizeof line, "%12.3f %2.12f %10llu\n", static_cast<double>(max_) / unit_ns,
                    1.0, static_cast<unsigned long long>(count_));
      out += line;
      break;
    }
    std::snprintf(line, sizeof line, "%12.3f %2.12f %10llu %14.2f\n", static_cast<double>(value) / unit_ns,
                  q, static_cast<unsigned long long>(seen), 1.0 / (1.0 - q));
    out += line;
    // The next percentile: halve the step each time the remaining distance halves.
    const double half_distance = std::pow(2.0, std::floor(std::log2(100.0 / (100.0 - percentile))) + 1);
    percentile += 100.0 / (half_distance * kTicksPerHalfDistance);
    // Past the rank that holds every value, the rows would repeat the max: jump to the end.
    if (percentile >= 100.0) percentile = 100.0;
  }
  std::snprintf(line, sizeof line, "#[Mean    = %12.3f, StdDeviation   = %12.3f]\n", mean() / unit_ns,
                stddev() / unit_ns);
  out += line;
  std::snprintf(line, sizeof line, "#[Max     = %12.3f, Total count    = %12llu]\n",
                static_cast<double>(max_) / unit_ns, static_cast<unsigned long long>(count_));
  out += line;
  std::snprintf(line, sizeof line, "#[Buckets = %12zu, SubBuckets     = %12llu]\n", kBuckets,
                static_cast<unsigned long long>(kSubBuckets));
  out += line;
  return out;
}

}  // namespace fastzab::bench
