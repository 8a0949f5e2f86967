// The input of log_fuzz: a log directory (segments, epoch file, snapshots, stray files) packed
// into one byte string, so that libFuzzer mutates file contents while the harness writes real
// files. Shared by log_fuzz.cpp (unpack) and make_log_corpus.cpp (pack a directory the real
// writer produced).
//
//   input  = options entry*
//   options: u8; bit 0 RecoveryMode::truncate_at_corruption, bit 1 SyncMode::none, bit 2 after a
//            successful open: append a record, write the epochs, reopen and compare
//   entry  = kind u8, then by kind & 0x07 (bit 7: a flag of the kind):
//     0 segment   name-zxid u64, length u16, bytes; bit 7: zero-filled up to kSegmentBytes
//                 (a preallocated segment, without spelling out its zeros)
//     1 epochs    two 64-byte slots; the file is the slotted 8192-byte layout (slot i at 4096 i)
//     2 epochs    length u16, bytes: the file as it is (the previous 48-byte layout, any size)
//     3 snapshot  name-zxid u64, length u16, bytes
//     4 temp file length u16, bytes: "log.<name-zxid>.tmp"-like leftovers, removed by open()
//     5 segment   length u16, bytes, named after the first zxid in its own header (bytes 24..31),
//                 so that mutations of the header keep name and header apart only when they
//                 touch those bytes; bit 7 as for 0
//     6, 7        ignored (a stray file named "stray": not part of the state)
//   All integers little-endian; an entry cut short by the end of the input is taken as far as
//   it goes. At most kMaxFiles entries are used.
#pragma once

#include <cstddef>
#include <cstdint>
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "log/log.h"

namespace fastzab::fuzz::log_input {

inline constexpr std::uint64_t kClusterId = 0x00000000C0FFEE01ull;
// Small segments keep every iteration's files small: the log's minimum segment size, with a
// record limit that fits it; small batches make the tail window (280 bytes) smaller than a
// segment, so that both torn tails and corruption in the last segment are reachable.
inline constexpr std::uint64_t kSegmentBytes = 4096;
inline constexpr std::uint32_t kMaxRecordBytes = 256;
inline constexpr std::size_t kMaxBatchBytes = 256;
inline constexpr std::size_t kMaxFiles = 12;
inline constexpr std::size_t kEpochSlotStride = 4096;
inline constexpr std::size_t kEpochFileBytes = 8192;

inline constexpr std::uint8_t kOptTruncateAtCorruption = 1;
inline constexpr std::uint8_t kOptSyncNone = 2;
inline constexpr std::uint8_t kOptAppendAndReopen = 4;

enum Kind : std::uint8_t {
  kSegment = 0,
  kEpochSlots = 1,
  kEpochRaw = 2,
  kSnapshot = 3,
  kTemp = 4,
  kSegmentSelfNamed = 5,
};
inline constexpr std::uint8_t kFlag = 0x80;

// The log's options for an input's option bits (the seed maker writes with the same ones).
inline fastzab::log::Options log_options(std::uint8_t bits) {
  fastzab::log::Options o;
  o.cluster_id = kClusterId;
  o.segment_bytes = kSegmentBytes;
  o.max_record_bytes = kMaxRecordBytes;
  o.max_batch_bytes = kMaxBatchBytes;
  o.recovery = (bits & kOptTruncateAtCorruption) ? fastzab::log::RecoveryMode::truncate_at_corruption
                                                 : fastzab::log::RecoveryMode::cut_torn_tail;
  o.sync = (bits & kOptSyncNone) ? fastzab::log::SyncMode::none : fastzab::log::SyncMode::fdatasync;
  o.writer = fastzab::log::WriterKind::sync;
  return o;
}

struct File {
  std::string name;
  std::vector<std::byte> bytes;
};

struct Directory {
  std::uint8_t options = 0;
  std::vector<File> files;
};

inline std::string hex16(std::uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

class Reader {
 public:
  Reader(const std::uint8_t* data, std::size_t size) : p_(data), end_(data + size) {}
  bool done() const { return p_ == end_; }
  std::uint8_t u8() { return p_ < end_ ? *p_++ : 0; }
  std::uint64_t u64() {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= std::uint64_t{u8()} << (8 * i);
    return v;
  }
  std::uint16_t u16() { return static_cast<std::uint16_t>(u8() | (u8() << 8)); }
  std::vector<std::byte> bytes(std::size_t n) {
    const std::size_t take = std::min<std::size_t>(n, static_cast<std::size_t>(end_ - p_));
    std::vector<std::byte> out(reinterpret_cast<const std::byte*>(p_),
                               reinterpret_cast<const std::byte*>(p_) + take);
    p_ += take;
    return out;
  }

 private:
  const std::uint8_t* p_;
  const std::uint8_t* end_;
};

inline void pad_segment(std::vector<std::byte>& b) {
  if (b.size() < kSegmentBytes) b.resize(kSegmentBytes);
}

inline Directory unpack(const std::uint8_t* data, std::size_t size) {
  Directory d;
  Reader r(data, size);
  d.options = r.u8();
  while (!r.done() && d.files.size() < kMaxFiles) {
    const std::uint8_t tag = r.u8();
    File f;
    switch (tag & 0x07) {
      case kSegment: {
        f.name = "log." + hex16(r.u64());
        f.bytes = r.bytes(r.u16());
        if (tag & kFlag) pad_segment(f.bytes);
        break;
      }
      case kEpochSlots: {
        f.name = "epochs";
        f.bytes.resize(kEpochFileBytes);
        for (std::size_t slot = 0; slot < 2; ++slot) {
          const auto b = r.bytes(64);
          std::copy(b.begin(), b.end(), f.bytes.begin() + static_cast<long>(slot * kEpochSlotStride));
        }
        break;
      }
      case kEpochRaw:
        f.name = "epochs";
        f.bytes = r.bytes(r.u16());
        break;
      case kSnapshot:
        f.name = "snapshot." + hex16(r.u64());
        f.bytes = r.bytes(r.u16());
        break;
      case kTemp:
        f.name = "log." + hex16(tag) + ".tmp";
        f.bytes = r.bytes(r.u16());
        break;
      case kSegmentSelfNamed: {
        f.bytes = r.bytes(r.u16());
        std::uint64_t z = 0;
        for (std::size_t i = 0; i < 8 && 24 + i < f.bytes.size(); ++i) {
          z |= std::to_integer<std::uint64_t>(f.bytes[24 + i]) << (8 * i);
        }
        f.name = "log." + hex16(z);
        if (tag & kFlag) pad_segment(f.bytes);
        break;
      }
      default:
        f.name = "stray";
        f.bytes = r.bytes(r.u8());
        break;
    }
    d.files.push_back(std::move(f));
  }
  return d;
}

// The packing side (make_log_corpus).
class Writer {
 public:
  explicit Writer(std::uint8_t options) { out_.push_back(options); }
  void u8(std::uint8_t v) { out_.push_back(v); }
  void u16(std::uint16_t v) {
    u8(static_cast<std::uint8_t>(v));
    u8(static_cast<std::uint8_t>(v >> 8));
  }
  void u64(std::uint64_t v) {
    for (int i = 0; i < 8; ++i) u8(static_cast<std::uint8_t>(v >> (8 * i)));
  }
  void bytes(const std::vector<std::byte>& b) {
    for (std::byte x : b) out_.push_back(std::to_integer<std::uint8_t>(x));
  }
  const std::vector<std::uint8_t>& data() const { return out_; }

 private:
  std::vector<std::uint8_t> out_;
};

}  // namespace fastzab::fuzz::log_input
