// Private to log/: what the files of Log share (file names, helpers, tuning, the scan template).
// Not included from outside log/.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "log/crc32c.h"
#include "log/errc.h"
#include "log/format.h"
#include "log/log.h"

namespace fastzab::log {

namespace detail {

inline constexpr std::string_view kSegmentPrefix = "log.";
inline constexpr std::string_view kSnapshotPrefix = "snapshot.";
inline constexpr std::string_view kEpochFile = "epochs";
inline constexpr std::string_view kTempSuffix = ".tmp";
inline constexpr std::string_view kStateLostFile = "state-lost";

std::string hex16(std::uint64_t v);
std::string at(const std::string& file, std::uint64_t offset);
Error header_error(format::HeaderStatus st, const std::string& file, const char* kind);
Error cluster_error(const std::string& file, std::uint64_t found, std::uint64_t want);

// Not part of the format: how far apart sparse index entries are, and how much a scan reads at
// once.
inline constexpr std::uint64_t kIndexIntervalBytes = 4096;
inline constexpr std::size_t kScanChunkBytes = 64 * 1024;

}  // namespace detail

// A template, so here: locate() and read() (log_index.cpp) and truncate() (log_write.cpp) use it.
// Reads the durable records of `s` from the index entry `from` on, in order, a chunk at a time,
// and calls visit(const Scanned&) -> bool (false: stop). Every header is verified, and with
// `payloads` every payload too. A record that fails is corruption (it was durable).
template <typename Visit>
Result<void> Log::scan(Segment& s, const Loc& from, bool payloads, Visit&& visit) {
  const std::uint64_t limit = s.durable_end;
  std::uint64_t off = from.offset;
  std::uint64_t buf_begin = off;
  std::size_t buf_len = 0;
  // Makes [at, at + need) readable in scan_buf_ (reading ahead up to a chunk).
  auto fill = [&](std::uint64_t at_offset, std::uint64_t need) -> Result<void> {
    if (at_offset >= buf_begin && at_offset + need <= buf_begin + buf_len) return {};
    const std::uint64_t want = std::min<std::uint64_t>(
        std::max<std::uint64_t>(need, detail::kScanChunkBytes), limit - at_offset);
    scan_buf_.resize(static_cast<std::size_t>(want));
    auto n = s.file->read_at(at_offset, scan_buf_);
    if (!n) return std::unexpected(n.error());
    if (*n < need) {
      return fail(errc::corrupt,
                  detail::at(s.path, at_offset + *n) + ": file ends inside a record");
    }
    buf_begin = at_offset;
    buf_len = *n;
    return {};
  };
  while (off < limit) {
    if (off + format::kRecordHeaderBytes > limit) {
      return fail(errc::corrupt, detail::at(s.path, off) + ": a partial record header where "
                                                           "durable records should be");
    }
    if (auto r = fill(off, format::kRecordHeaderBytes); !r) return r;
    format::RecordHeader rh;
    const std::byte* p = scan_buf_.data() + (off - buf_begin);
    if (format::decode_record_header(p, s.version, rh) != format::RecordStatus::ok ||
        off + format::kRecordHeaderBytes + rh.length > limit) {
      return fail(errc::corrupt,
                  detail::at(s.path, off) + ": record header fails its checksum on read");
    }
    const std::byte* payload = nullptr;
    if (payloads) {
      if (auto r = fill(off, format::kRecordHeaderBytes + rh.length); !r) return r;
      payload = scan_buf_.data() + (off - buf_begin) + format::kRecordHeaderBytes;
      if (crc32c(payload, rh.length) != rh.payload_crc) {
        return fail(errc::corrupt, detail::at(s.path, off) + ": record zxid " +
                                       detail::hex16(rh.zxid) + " fails its checksum on read");
      }
    }
    if (!visit(Scanned{rh.zxid, off, rh.length, payload})) return {};
    off += format::kRecordHeaderBytes + rh.length;
  }
  return {};
}

}  // namespace fastzab::log
