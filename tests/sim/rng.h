// The simulator's only source of randomness: xoshiro256** seeded through splitmix64. One Rng
// per run, owned by the Cluster and passed by reference; no global state, no wall clock.
#pragma once

#include <cstdint>
#include <vector>

namespace fastzab::sim {

class Rng {
 public:
  explicit Rng(std::uint64_t seed) {
    std::uint64_t x = seed;
    for (std::uint64_t& word : s_) word = splitmix64(x);
  }

  std::uint64_t next() noexcept {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  // Uniform in [0, n); n > 0 (rejection sampling: no modulo bias).
  std::uint64_t below(std::uint64_t n) noexcept {
    const std::uint64_t threshold = (0 - n) % n;  // 2^64 mod n
    for (;;) {
      const std::uint64_t r = next();
      if (r >= threshold) return r % n;
    }
  }
  // Uniform in [lo, hi].
  std::int64_t range(std::int64_t lo, std::int64_t hi) noexcept {
    return lo + static_cast<std::int64_t>(below(static_cast<std::uint64_t>(hi - lo) + 1));
  }
  // True with probability num/den.
  bool chance(std::uint64_t num, std::uint64_t den) noexcept { return below(den) < num; }
  bool coin() noexcept { return (next() >> 63) != 0; }
  template <class T>
  const T& pick(const std::vector<T>& v) noexcept {
    return v[below(v.size())];
  }
  // An independent stream (for a sub-component whose draws must not shift the others').
  Rng fork() noexcept { return Rng(next()); }

 private:
  static std::uint64_t splitmix64(std::uint64_t& x) noexcept {
    std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  static std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }

  std::uint64_t s_[4];
};

// FNV-1a over everything that makes a run's identity (events, inputs, outputs, bytes).
class Digest {
 public:
  void add_u64(std::uint64_t v) noexcept {
    for (int i = 0; i < 8; ++i) add_byte(static_cast<std::uint8_t>(v >> (8 * i)));
  }
  void add_i64(std::int64_t v) noexcept { add_u64(static_cast<std::uint64_t>(v)); }
  template <class ByteRange>
  void add_bytes(const ByteRange& bytes) noexcept {
    add_u64(bytes.size());
    for (auto b : bytes) add_byte(static_cast<std::uint8_t>(b));
  }
  std::uint64_t value() const noexcept { return h_; }

 private:
  void add_byte(std::uint8_t b) noexcept {
    h_ ^= b;
    h_ *= 0x100000001b3ULL;
  }
  std::uint64_t h_ = 0xcbf29ce484222325ULL;
};

}  // namespace fastzab::sim
