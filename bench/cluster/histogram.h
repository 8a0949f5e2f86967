// A log-linear latency histogram in the manner of HdrHistogram: values in nanoseconds, exact below
// 256 ns, then 128 linear sub-buckets per power of two, so a bucket is at most 1/128 of its
// values wide and a reported value (the bucket's midpoint, clamped to the exact min and max) is
// within 0.4 % of every value in it, well inside the 1 % the benchmark promises from 100 ns to
// 100 s (it covers all of u64). Recording is a few instructions and never allocates; histograms
// of several threads or processes merge by adding their buckets.
#pragma once

#include <array>
#include <bit>
#include <cstdint>
#include <string>

namespace fastzab::bench {

class Histogram {
 public:
  static constexpr unsigned kSubBucketBits = 7;
  static constexpr std::uint64_t kSubBuckets = std::uint64_t{1} << kSubBucketBits;  // 128
  static constexpr std::uint64_t kExactBelow = kSubBuckets * 2;                     // 256
  static constexpr std::size_t kBuckets = kExactBelow + (64 - 8) * kSubBuckets;

  void record(std::uint64_t ns) noexcept {
    ++counts_[index_of(ns)];
    ++count_;
    sum_ += ns;
    sum_squares_ += static_cast<double>(ns) * static_cast<double>(ns);
    if (ns < min_) min_ = ns;
    if (ns > max_) max_ = ns;
  }
  void merge(const Histogram& other) noexcept;
  void reset() noexcept { *this = Histogram{}; }

  std::uint64_t count() const noexcept { return count_; }
  std::uint64_t min() const noexcept { return count_ ? min_ : 0; }
  std::uint64_t max() const noexcept { return max_; }
  double mean() const noexcept { return count_ ? static_cast<double>(sum_) / static_cast<double>(count_) : 0; }
  double stddev() const noexcept;
  // The value at quantile q in [0, 1]: the smallest recorded value v with at least q of all
  // values <= v (as a bucket midpoint). 0 when empty.
  std::uint64_t quantile(double q) const noexcept;

  // HdrHistogram's percentile-distribution text ("Value Percentile TotalCount 1/(1-Percentile)",
  // five rows per halving of the remaining distance to 100 %, then the #[Mean ...] footer), with
  // values divided by `unit_ns` (1000: microseconds), so HdrHistogram's plotting tools read it.
  std::string percentile_distribution(double unit_ns = 1000.0) const;

  static std::size_t index_of(std::uint64_t ns) noexcept {
    if (ns < kExactBelow) return static_cast<std::size_t>(ns);
    const unsigned top_bit = 63u - static_cast<unsigned>(std::countl_zero(ns));  // >= 8
    const unsigned shift = top_bit - kSubBucketBits;                            // >= 1
    const std::uint64_t sub = (ns >> shift) - kSubBuckets;                      // 0..127
    return static_cast<std::size_t>(kExactBelow + (shift - 1) * kSubBuckets + sub);
  }
  // The smallest and largest value that land in bucket `i`.
  static std::uint64_t lowest_in(std::size_t i) noexcept;
  static std::uint64_t highest_in(std::size_t i) noexcept;

 private:
  std::array<std::uint64_t, kBuckets> counts_{};
  std::uint64_t count_ = 0;
  std::uint64_t sum_ = 0;
  double sum_squares_ = 0;  // for the standard deviation; a u64 would overflow past 4 s
  std::uint64_t min_ = UINT64_MAX;
  std::uint64_t max_ = 0;
};

}  // namespace fastzab::bench
