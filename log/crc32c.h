// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of every record, segment
// header, snapshot and epoch file. Two implementations that must agree bit for bit: the SSE4.2
// crc32 instruction and a portable table. crc32c() picks the hardware one when the CPU has it.
#pragma once

#include <cstddef>
#include <cstdint>

namespace fastzab::log {

// Continues a finished CRC `crc` (0 for none yet) over n more bytes; crc32c_extend(0, d, n) is the
// CRC32C of d. Extending in pieces gives the same value as one call over the concatenation.
std::uint32_t crc32c_extend(std::uint32_t crc, const void* data, std::size_t n) noexcept;
inline std::uint32_t crc32c(const void* data, std::size_t n) noexcept {
  return crc32c_extend(0, data, n);
}

// The two implementations, exposed for the differential test.
std::uint32_t crc32c_extend_portable(std::uint32_t crc, const void* data, std::size_t n) noexcept;
std::uint32_t crc32c_extend_sse42(std::uint32_t crc, const void* data, std::size_t n) noexcept;
// Whether this CPU runs crc32c_extend_sse42 (false on non-x86 builds).
bool crc32c_has_sse42() noexcept;

}  // namespace fastzab::log
