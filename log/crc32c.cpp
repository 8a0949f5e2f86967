#include "log/crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <nmmintrin.h>
#define FASTZAB_CRC_X86 1
#endif

namespace fastzab::log {
namespace {

constexpr std::uint32_t kPoly = 0x82F63B78u;  // reflected Castagnoli polynomial

constexpr std::array<std::uint32_t, 256> make_table() {
  std::array<std::uint32_t, 256> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? (c >> 1) ^ kPoly : c >> 1;
    t[i] = c;
  }
  return t;
}
constexpr std::array<std::uint32_t, 256> kTable = make_table();
static_assert(kTable[1] == 0xF26B8303u, "CRC32C table");

}  // namespace

std::uint32_t crc32c_extend_portable(std::uint32_t crc, const void* data, std::size_t n) noexcept {
  const auto* p = static_cast<const unsigned char*>(data);
  std::uint32_t c = ~crc;
  for (std::size_t i = 0; i < n; ++i) c = kTable[(c ^ p[i]) & 0xFFu] ^ (c >> 8);
  return ~c;
}

#if defined(FASTZAB_CRC_X86)
__attribute__((target("sse4.2")))
std::uint32_t crc32c_extend_sse42(std::uint32_t crc, const void* data, std::size_t n) noexcept {
  // Unaligned 8-byte loads cost nothing extra on x86; an alignment prologue of byte steps
  // (3 cycles each, serial) cost more than it saved for the short records a log mostly holds.
  const auto* p = static_cast<const unsigned char*>(data);
  std::uint64_t c = ~crc;
  while (n >= 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    c = _mm_crc32_u64(c, w);
    p += 8;
    n -= 8;
  }
  auto c32 = static_cast<std::uint32_t>(c);
  if (n >= 4) {
    std::uint32_t w;
    std::memcpy(&w, p, 4);
    c32 = _mm_crc32_u32(c32, w);
    p += 4;
    n -= 4;
  }
  if (n >= 2) {
    std::uint16_t w;
    std::memcpy(&w, p, 2);
    c32 = _mm_crc32_u16(c32, w);
    p += 2;
    n -= 2;
  }
  if (n > 0) c32 = _mm_crc32_u8(c32, *p);
  return ~c32;
}
bool crc32c_has_sse42() noexcept { return __builtin_cpu_supports("sse4.2"); }
#else
std::uint32_t crc32c_extend_sse42(std::uint32_t crc, const void* data, std::size_t n) noexcept {
  return crc32c_extend_portable(crc, data, n);
}
bool crc32c_has_sse42() noexcept { return false; }
#endif

std::uint32_t crc32c_extend(std::uint32_t crc, const void* data, std::size_t n) noexcept {
  static const bool hw = crc32c_has_sse42();
  return hw ? crc32c_extend_sse42(crc, data, n) : crc32c_extend_portable(crc, data, n);
}

}  // namespace fastzab::log
