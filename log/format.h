// The on-disk framing of the log, the snapshot files and the epoch file (style practice 8). The
// prose, the grammar and a worked example are in FORMAT.md; the two must change together (and the
// format version with them). All integers are little-endian; this header refuses other hosts.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string_view>

#include "log/crc32c.h"

namespace fastzab::log::format {

static_assert(std::endian::native == std::endian::little,
              "the log format is little-endian and this code stores integers by memcpy");

// The log format version: what new segments carry. Version 1 segments (no synced hint in the
// record header) are still read, under their own recovery rule (FORMAT.md, "Recovery").
inline constexpr std::uint32_t kVersion = 2;
inline constexpr std::uint32_t kOldestSegmentVersion = 1;
// Snapshot files and epoch slots did not change with the segments: still version 1.
inline constexpr std::uint32_t kSnapshotVersion = 1;
inline constexpr std::uint32_t kEpochVersion = 1;

// ---- Segment files: "log.<first zxid as 16 hex digits>" ----
inline constexpr std::array<char, 8> kSegmentMagic = {'F', 'Z', 'A', 'B', 'L', 'O', 'G', '\0'};
inline constexpr std::size_t kSegmentHeaderBytes = 64;
// ---- Records, back to back after the segment header ----
inline constexpr std::size_t kRecordHeaderBytes = 24;
inline constexpr std::uint16_t kRecordTypeEntry = 1;  // version 1 headers only
// Version 2: the record header's synced-back field when nothing is known synced (sync=none, or
// a distance that does not fit).
inline constexpr std::uint32_t kSyncedUnknown = UINT32_MAX;
// The largest payload any log accepts (a log may set a lower limit).
inline constexpr std::size_t kMaxRecordBytes = 16u << 20;
// Segment sizes a log accepts: room for the header and at least one full record of the log's
// own limit is checked at open; these are the absolute bounds.
inline constexpr std::uint64_t kMinSegmentBytes = 4096;
inline constexpr std::uint64_t kMaxSegmentBytes = 1ull << 40;
// ---- Snapshot files: "snapshot.<zxid as 16 hex digits>" ----
inline constexpr std::array<char, 8> kSnapshotMagic = {'F', 'Z', 'A', 'B', 'S', 'N', 'A', 'P'};
inline constexpr std::size_t kSnapshotHeaderBytes = 48;
inline constexpr std::uint64_t kMaxSnapshotBytes = 1ull << 36;
// ---- The epoch file: "epochs" ----
inline constexpr std::array<char, 8> kEpochMagic = {'F', 'Z', 'A', 'B', 'E', 'P', 'O', 'C'};
// Two slots, each a record at the start of its own block, so that writing (and the kernel writing
// back) one slot never rewrites the other's sectors: a torn write can only damage the slot being
// written, which the newest valid record is never in.
inline constexpr std::size_t kEpochSlots = 2;
inline constexpr std::size_t kEpochSlotBytes = 64;
inline constexpr std::size_t kEpochSlotStride = 4096;
inline constexpr std::size_t kEpochFileBytes = kEpochSlots * kEpochSlotStride;
// The previous layout (one 48-byte record, replaced by rename); open() migrates it.
inline constexpr std::size_t kLegacyEpochFileBytes = 48;

static_assert(kRecordHeaderBytes % 8 == 0 && kSegmentHeaderBytes % 8 == 0);
static_assert(kSegmentHeaderBytes + kRecordHeaderBytes < kMinSegmentBytes);
static_assert(kMaxRecordBytes <= UINT32_MAX, "record length is a u32");
static_assert(kMaxRecordBytes + kRecordHeaderBytes + kSegmentHeaderBytes < kMaxSegmentBytes);
static_assert(kEpochSlotBytes <= 512, "a slot lies within one sector");
static_assert(kEpochSlotStride % 4096 == 0 && kEpochSlotBytes <= kEpochSlotStride);
static_assert(kEpochFileBytes != kLegacyEpochFileBytes, "the file size tells the layouts apart");

namespace detail {
template <class T>
inline void put(std::byte* p, T v) noexcept { std::memcpy(p, &v, sizeof v); }
template <class T>
inline T get(const std::byte* p) noexcept {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
}  // namespace detail

// ---- Segment header (64 bytes) ----
//  0  magic "FZABLOG\0"         8
//  8  version u32               4
// 12  header bytes u32 (= 64)   4
// 16  cluster id u64            8
// 24  first zxid u64            8   zxid of the segment's first record
// 32  segment bytes u64         8   preallocated size
// 40  tail window u64           8   most bytes past the durable end in flight; 0 = unbounded
// 48  reserved (zero)          12
// 60  crc32c of bytes 0..60     4
struct SegmentHeader {
  std::uint32_t version = kVersion;
  std::uint64_t cluster_id = 0;
  std::uint64_t first_zxid = 0;
  std::uint64_t segment_bytes = 0;
  std::uint64_t tail_window_bytes = 0;
};

inline void encode(const SegmentHeader& h, std::span<std::byte, kSegmentHeaderBytes> out) noexcept {
  std::memset(out.data(), 0, out.size());
  std::memcpy(out.data(), kSegmentMagic.data(), 8);
  detail::put<std::uint32_t>(out.data() + 8, h.version);
  detail::put<std::uint32_t>(out.data() + 12, static_cast<std::uint32_t>(kSegmentHeaderBytes));
  detail::put<std::uint64_t>(out.data() + 16, h.cluster_id);
  detail::put<std::uint64_t>(out.data() + 24, h.first_zxid);
  detail::put<std::uint64_t>(out.data() + 32, h.segment_bytes);
  detail::put<std::uint64_t>(out.data() + 40, h.tail_window_bytes);
  detail::put<std::uint32_t>(out.data() + 60, crc32c(out.data(), 60));
}

enum class HeaderStatus : std::uint8_t { ok, bad_magic, bad_version, bad_checksum };

// Checks magic, then version, then the checksum, in that order, so that a file of another kind
// is reported as such rather than as corrupt.
inline HeaderStatus decode(std::span<const std::byte, kSegmentHeaderBytes> in,
                           SegmentHeader& h) noexcept {
  if (std::memcmp(in.data(), kSegmentMagic.data(), 8) != 0) return HeaderStatus::bad_magic;
  h.version = detail::get<std::uint32_t>(in.data() + 8);
  if (h.version < kOldestSegmentVersion || h.version > kVersion ||
      detail::get<std::uint32_t>(in.data() + 12) != kSegmentHeaderBytes) {
    return HeaderStatus::bad_version;
  }
  if (detail::get<std::uint32_t>(in.data() + 60) != crc32c(in.data(), 60)) {
    return HeaderStatus::bad_checksum;
  }
  h.cluster_id = detail::get<std::uint64_t>(in.data() + 16);
  h.first_zxid = detail::get<std::uint64_t>(in.data() + 24);
  h.segment_bytes = detail::get<std::uint64_t>(in.data() + 32);
  h.tail_window_bytes = detail::get<std::uint64_t>(in.data() + 40);
  return HeaderStatus::ok;
}

// ---- Record header (24 bytes), then `length` payload bytes ----
//  0  header crc u32    crc32c of bytes 4..24 (so of the payload crc, zxid, length and the rest)
//  4  payload crc u32   crc32c of the payload
//  8  zxid u64
// 16  length u32        payload bytes
// 20  version 2: synced back u32: this record's offset minus the segment offset known durable
//                (fdatasync completed) when the record was appended; kSyncedUnknown: nothing
//                known. So every record before offset - synced_back was synced.
//     version 1: type u16 (1 = entry), reserved u16 (0)
// 24 zero bytes where a header would start mean "no more records" (preallocated space).
struct RecordHeader {
  std::uint32_t payload_crc = 0;
  std::uint64_t zxid = 0;
  std::uint32_t length = 0;
  std::uint32_t synced_back = kSyncedUnknown;  // version 2; kSyncedUnknown in version 1

  // The offset below which the segment was synced, for a record at `offset`; 0 when unknown.
  std::uint64_t synced_below(std::uint64_t offset) const noexcept {
    return synced_back == kSyncedUnknown || synced_back > offset ? 0 : offset - synced_back;
  }
};

// The synced-back field for a record at `offset` of a segment durable up to `durable_end`.
inline std::uint32_t synced_back(std::uint64_t offset, std::uint64_t durable_end) noexcept {
  if (durable_end == 0 || durable_end > offset || offset - durable_end >= kSyncedUnknown) {
    return kSyncedUnknown;
  }
  return static_cast<std::uint32_t>(offset - durable_end);
}

// A version 2 header (what the log writes).
inline void encode_record_header(std::uint64_t zxid, std::span<const std::byte> payload,
                                 std::uint32_t synced_back_bytes, std::byte* out) noexcept {
  detail::put<std::uint32_t>(out + 4, crc32c(payload.data(), payload.size()));
  detail::put<std::uint64_t>(out + 8, zxid);
  detail::put<std::uint32_t>(out + 16, static_cast<std::uint32_t>(payload.size()));
  detail::put<std::uint32_t>(out + 20, synced_back_bytes);
  detail::put<std::uint32_t>(out, crc32c(out + 4, kRecordHeaderBytes - 4));
}

enum class RecordStatus : std::uint8_t { ok, end, bad_header };

inline bool all_zero(const std::byte* p, std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    if (p[i] != std::byte{0}) return false;
  }
  return true;
}

// Validates a header of a segment of `version` (not the payload): `end` for 24 zero bytes,
// `bad_header` for a checksum mismatch, and in version 1 an unknown type or a non-zero reserved
// field.
inline RecordStatus decode_record_header(const std::byte* in, std::uint32_t version,
                                         RecordHeader& h) noexcept {
  if (all_zero(in, kRecordHeaderBytes)) return RecordStatus::end;
  if (detail::get<std::uint32_t>(in) != crc32c(in + 4, kRecordHeaderBytes - 4)) {
    return RecordStatus::bad_header;
  }
  h.payload_crc = detail::get<std::uint32_t>(in + 4);
  h.zxid = detail::get<std::uint64_t>(in + 8);
  h.length = detail::get<std::uint32_t>(in + 16);
  if (version == 1) {
    h.synced_back = kSyncedUnknown;
    if (detail::get<std::uint16_t>(in + 20) != kRecordTypeEntry ||
        detail::get<std::uint16_t>(in + 22) != 0) {
      return RecordStatus::bad_header;
    }
  } else {
    h.synced_back = detail::get<std::uint32_t>(in + 20);
  }
  return RecordStatus::ok;
}

// ---- Snapshot header (48 bytes), then `length` bytes of application state ----
//  0  magic "FZABSNAP"        8
//  8  version u32             4
// 12  header bytes u32 (=48)  4
// 16  cluster id u64          8
// 24  zxid u64                8   the state includes every entry <= zxid
// 32  length u64              8
// 40  payload crc u32         4
// 44  crc32c of bytes 0..44   4
struct SnapshotHeader {
  std::uint64_t cluster_id = 0;
  std::uint64_t zxid = 0;
  std::uint64_t length = 0;
  std::uint32_t payload_crc = 0;
};

inline void encode(const SnapshotHeader& h,
                   std::span<std::byte, kSnapshotHeaderBytes> out) noexcept {
  std::memset(out.data(), 0, out.size());
  std::memcpy(out.data(), kSnapshotMagic.data(), 8);
  detail::put<std::uint32_t>(out.data() + 8, kSnapshotVersion);
  detail::put<std::uint32_t>(out.data() + 12, static_cast<std::uint32_t>(kSnapshotHeaderBytes));
  detail::put<std::uint64_t>(out.data() + 16, h.cluster_id);
  detail::put<std::uint64_t>(out.data() + 24, h.zxid);
  detail::put<std::uint64_t>(out.data() + 32, h.length);
  detail::put<std::uint32_t>(out.data() + 40, h.payload_crc);
  detail::put<std::uint32_t>(out.data() + 44, crc32c(out.data(), 44));
}

inline HeaderStatus decode(std::span<const std::byte, kSnapshotHeaderBytes> in,
                           SnapshotHeader& h) noexcept {
  if (std::memcmp(in.data(), kSnapshotMagic.data(), 8) != 0) return HeaderStatus::bad_magic;
  if (detail::get<std::uint32_t>(in.data() + 8) != kSnapshotVersion ||
      detail::get<std::uint32_t>(in.data() + 12) != kSnapshotHeaderBytes) {
    return HeaderStatus::bad_version;
  }
  if (detail::get<std::uint32_t>(in.data() + 44) != crc32c(in.data(), 44)) {
    return HeaderStatus::bad_checksum;
  }
  h.cluster_id = detail::get<std::uint64_t>(in.data() + 16);
  h.zxid = detail::get<std::uint64_t>(in.data() + 24);
  h.length = detail::get<std::uint64_t>(in.data() + 32);
  h.payload_crc = detail::get<std::uint32_t>(in.data() + 40);
  return HeaderStatus::ok;
}

// ---- Epoch file: kEpochSlots slots, slot i = one record at i * kEpochSlotStride ----
// Slot record (64 bytes); the rest of each block is zero.
//  0  magic "FZABEPOC"        8
//  8  version u32             4
// 12  slot bytes u32 (=64)    4
// 16  cluster id u64          8
// 24  sequence u64            8   the valid slot with the highest sequence holds the epochs
// 32  acceptedEpoch u64       8
// 40  currentEpoch u64        8
// 48  reserved (zero)        12
// 60  crc32c of bytes 0..60   4
struct EpochRecord {
  std::uint64_t cluster_id = 0;
  std::uint64_t sequence = 0;
  std::uint64_t accepted = 0;
  std::uint64_t current = 0;
};

inline void encode(const EpochRecord& e, std::span<std::byte, kEpochSlotBytes> out) noexcept {
  std::memset(out.data(), 0, out.size());
  std::memcpy(out.data(), kEpochMagic.data(), 8);
  detail::put<std::uint32_t>(out.data() + 8, kEpochVersion);
  detail::put<std::uint32_t>(out.data() + 12, static_cast<std::uint32_t>(kEpochSlotBytes));
  detail::put<std::uint64_t>(out.data() + 16, e.cluster_id);
  detail::put<std::uint64_t>(out.data() + 24, e.sequence);
  detail::put<std::uint64_t>(out.data() + 32, e.accepted);
  detail::put<std::uint64_t>(out.data() + 40, e.current);
  detail::put<std::uint32_t>(out.data() + 60, crc32c(out.data(), 60));
}

// Unlike the other headers, the checksum is checked before the version: a torn slot can carry
// any bytes, and only a record that is whole (its checksum matches) but of another version says
// that this build does not read the file.
inline HeaderStatus decode(std::span<const std::byte, kEpochSlotBytes> in, EpochRecord& e) noexcept {
  if (std::memcmp(in.data(), kEpochMagic.data(), 8) != 0) return HeaderStatus::bad_magic;
  if (detail::get<std::uint32_t>(in.data() + 60) != crc32c(in.data(), 60)) {
    return HeaderStatus::bad_checksum;
  }
  if (detail::get<std::uint32_t>(in.data() + 8) != kEpochVersion ||
      detail::get<std::uint32_t>(in.data() + 12) != kEpochSlotBytes) {
    return HeaderStatus::bad_version;
  }
  e.cluster_id = detail::get<std::uint64_t>(in.data() + 16);
  e.sequence = detail::get<std::uint64_t>(in.data() + 24);
  e.accepted = detail::get<std::uint64_t>(in.data() + 32);
  e.current = detail::get<std::uint64_t>(in.data() + 40);
  return HeaderStatus::ok;
}

// ---- The previous epoch file (48 bytes), read only to migrate it ----
//  0  magic "FZABEPOC"        8
//  8  version u32             4
// 12  file bytes u32 (=48)    4
// 16  cluster id u64          8
// 24  acceptedEpoch u64       8
// 32  currentEpoch u64        8
// 40  reserved (zero)         4
// 44  crc32c of bytes 0..44   4
inline HeaderStatus decode_legacy_epochs(std::span<const std::byte, kLegacyEpochFileBytes> in,
                                         EpochRecord& e) noexcept {
  if (std::memcmp(in.data(), kEpochMagic.data(), 8) != 0) return HeaderStatus::bad_magic;
  if (detail::get<std::uint32_t>(in.data() + 8) != kEpochVersion ||
      detail::get<std::uint32_t>(in.data() + 12) != kLegacyEpochFileBytes) {
    return HeaderStatus::bad_version;
  }
  if (detail::get<std::uint32_t>(in.data() + 44) != crc32c(in.data(), 44)) {
    return HeaderStatus::bad_checksum;
  }
  e.cluster_id = detail::get<std::uint64_t>(in.data() + 16);
  e.sequence = 0;
  e.accepted = detail::get<std::uint64_t>(in.data() + 24);
  e.current = detail::get<std::uint64_t>(in.data() + 32);
  return HeaderStatus::ok;
}

// File names. parse_* return nullopt for names that are not of that kind.
std::optional<std::uint64_t> parse_hex_suffix(std::string_view name, std::string_view prefix);

}  // namespace fastzab::log::format
