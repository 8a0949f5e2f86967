// Helpers shared by the log tests: temporary directories and deterministic payloads.
#pragma once

#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace fastzab::log::testing {

// A fresh directory under /tmp, removed with everything in it at scope exit.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = "/tmp/fastzab-log-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline std::uint64_t mix(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// The payload of record `zxid`: its length (0..max_len) and bytes follow from the zxid alone.
inline std::vector<std::byte> payload_for(std::uint64_t zxid, std::size_t max_len = 300) {
  const std::size_t n = mix(zxid) % (max_len + 1);
  std::vector<std::byte> p(n);
  std::uint64_t s = zxid;
  for (std::size_t i = 0; i < n; ++i) {
    if (i % 8 == 0) s = mix(s);
    p[i] = static_cast<std::byte>(s >> (8 * (i % 8)));
  }
  return p;
}

}  // namespace fastzab::log::testing
