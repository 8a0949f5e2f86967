// Recovery at open(): the directory's files, each segment's scan and the torn-tail/corruption
// policy (FORMAT.md, "Recovery"), and what a cut reports.
#include <algorithm>
#include <array>

#include "log/log.h"
#include "log/log_internal.h"

namespace fastzab::log {

using format::kRecordHeaderBytes;
using format::kSegmentHeaderBytes;
using detail::at;
using detail::cluster_error;
using detail::header_error;
using detail::hex16;
using detail::kEpochFile;
using detail::kScanChunkBytes;
using detail::kSegmentPrefix;
using detail::kSnapshotPrefix;
using detail::kStateLostFile;
using detail::kTempSuffix;

std::string describe_cut(const RecoveryReport& r) {
  if (!r.torn_tail_cut && !r.corruption_cut) return {};
  std::string line = r.torn_tail_cut ? "cut a torn tail: " : "cut at corruption (truncate_at_corruption): ";
  line += std::to_string(r.records_cut) + (r.records_cut == 1 ? " record" : " records");
  if (r.records_cut > 0) {
    line += ", zxid 0x" + hex16(r.cut_first_zxid) + " to 0x" + hex16(r.cut_last_zxid);
  }
  line += ", " + std::to_string(r.bytes_cut) + " bytes, after zxid 0x" + hex16(r.last_zxid) + " (kept), at " +
          at(r.cut_file, r.cut_offset) + ": " + r.cut_reason;
  if (r.segments_dropped > 0) {
    line += "; " + std::to_string(r.segments_dropped) + " later segment" +
            (r.segments_dropped == 1 ? "" : "s") + " removed";
  }
  return line;
}

Result<void> Log::recover() {
  auto names = fs_.list(dir_);
  if (!names) return std::unexpected(names.error());
  std::vector<std::uint64_t> seg_zxids;
  bool removed_temp = false;
  for (const std::string& name : *names) {
    if (name.size() > kTempSuffix.size() && name.ends_with(kTempSuffix)) {
      // A write that never reached its rename: never part of the state.
      if (auto r = fs_.remove(dir_ + "/" + name); !r) return r;
      ++report_.temp_files_removed;
      removed_temp = true;
    } else if (auto z = format::parse_hex_suffix(name, kSegmentPrefix)) {
      seg_zxids.push_back(*z);
    } else if (auto s = format::parse_hex_suffix(name, kSnapshotPrefix)) {
      snapshots_.push_back(*s);
    }
  }
  if (removed_temp) {
    if (auto r = fs_.sync_dir(dir_); !r) return r;
  }
  report_.state_lost =
      std::find(names->begin(), names->end(), std::string(kStateLostFile)) != names->end();
  std::sort(seg_zxids.begin(), seg_zxids.end());
  std::sort(snapshots_.begin(), snapshots_.end());

  // Epoch file.
  const bool epoch_file_missing =
      std::find(names->begin(), names->end(), std::string(kEpochFile)) == names->end();
  bool epoch_file_legacy = false;
  if (!epoch_file_missing) {
    auto legacy = read_epoch_file(dir_ + "/" + std::string(kEpochFile));
    if (!legacy) return std::unexpected(legacy.error());
    epoch_file_legacy = *legacy;
  }

  for (std::uint64_t z : seg_zxids) {
    Segment s;
    s.first_zxid = z;
    s.path = seg_path(z);
    segments_.push_back(std::move(s));
  }
  // Segments written in sync=none (tail window 0) were not synced before the next one started, so
  // a crash can tear any of the trailing run of them, not just the last (FORMAT.md, "Recovery").
  std::size_t unsynced_from = segments_.size();
  while (unsynced_from > 0 && peek_tail_window(segments_[unsynced_from - 1].path) == 0) {
    --unsynced_from;
  }
  std::uint64_t prev = 0;
  for (std::size_t i = 0; i < segments_.size(); ++i) {
    const bool last = i + 1 == segments_.size();
    if (auto r = recover_segment(i, last, last || i >= unsynced_from, prev); !r) return r;
    if ((report_.corruption_cut || report_.torn_tail_cut) && !last) {
      // Everything after the cut goes, newest first, each removal durable before the next, so a
      // crash in between leaves a prefix. What they held is counted first (in zxid order).
      std::uint64_t cut_prev = std::max(prev, report_.cut_last_zxid);
      for (std::size_t k = i + 1; k < segments_.size(); ++k) {
        if (auto r = account_dropped_segment(segments_[k].path, cut_prev); !r) return r;
      }
      while (segments_.size() > i + 1) {
        const std::string path = segments_.back().path;
        segments_.pop_back();
        if (auto r = remove_file(path); !r) return r;
        ++report_.segments_dropped;
      }
      break;
    }
  }
  // An empty segment at the end (created, then a crash before its first record was durable)
  // is removed, so that every segment's first record has the zxid in its name.
  while (!segments_.empty() && segments_.back().records == 0) {
    const std::string path = segments_.back().path;
    segments_.pop_back();
    if (auto r = remove_file(path); !r) return r;
    ++report_.empty_segments_removed;
  }
  if (opt_.sync == SyncMode::fdatasync && !segments_.empty()) {
    // Records acknowledged from now on must not sit behind unsynced sync=none data that a crash
    // could tear (recovery would have to cut them with it). The last segment is synced too: a
    // killed process can leave written but unsynced records in the page cache, which this log
    // counts as durable and which the synced-back field of the next records says were synced.
    for (std::size_t i = std::min(unsynced_from, segments_.size() - 1); i < segments_.size(); ++i) {
      if (auto r = segments_[i].file->sync_data(); !r) return r;
    }
  }
  if (epoch_file_missing || epoch_file_legacy) {
    // Written only once everything else checked out. Also proves now, rather than at the first
    // acknowledgement, that the directory takes new files (read-only or full disk). A previous
    // 48-byte file stays in place until the rename replaces it with the same epochs.
    if (auto r = create_epoch_file(); !r) return r;
    report_.epochs_migrated = epoch_file_legacy;
  }
  report_.segments = segments_.size();
  for (const Segment& s : segments_) {
    report_.records += s.records;
    if (s.version == 1) ++report_.version1_segments;
  }
  report_.first_zxid = first_zxid();
  last_zxid_ = segments_.empty() ? 0 : segments_.back().last_zxid;
  report_.last_zxid = last_zxid_;
  durable_zxid_ = last_zxid_;
  return {};
}

// The tail window in a segment's header; nullopt if the header cannot be read or is not valid
// (recover_segment() then reports why).
std::optional<std::uint64_t> Log::peek_tail_window(const std::string& path) {
  auto f = fs_.open(path, OpenMode::read_write);
  if (!f) return std::nullopt;
  std::array<std::byte, kSegmentHeaderBytes> head{};
  auto n = (*f)->read_at(0, head);
  if (!n || *n != head.size()) return std::nullopt;
  format::SegmentHeader h;
  if (format::decode(std::span<const std::byte, kSegmentHeaderBytes>(head), h) !=
      format::HeaderStatus::ok) {
    return std::nullopt;
  }
  return h.tail_window_bytes;
}

// Scans segment i, builds its index and applies the recovery policy (FORMAT.md, "Recovery").
// `may_be_torn`: a crash may have left unsynced writes anywhere in this segment's tail (it is the
// last, or it and every later segment were written in sync=none).
Result<void> Log::recover_segment(std::size_t i, bool last, bool may_be_torn,
                                  std::uint64_t& prev_zxid) {
  Segment& s = segments_[i];
  auto f = fs_.open(s.path, OpenMode::read_write);
  if (!f) return std::unexpected(f.error());
  s.file = std::move(*f);
  auto size = s.file->size();
  if (!size) return std::unexpected(size.error());
  const std::uint64_t size_bytes = *size;
  if (size_bytes < kSegmentHeaderBytes) {
    return fail(errc::not_a_log, s.path + ": " + std::to_string(size_bytes) +
                                     " bytes, shorter than a segment header");
  }
  // The segment is read a chunk at a time (a 64 MiB segment need not be in memory at once):
  // `buf` holds [chunk_at, chunk_at + buf.size()) of the file.
  std::vector<std::byte>& buf = scan_buf_;
  std::uint64_t chunk_at = 0;
  buf.clear();
  // Makes [at, at + need) readable in `buf`; false if the file is shorter.
  auto load = [&](std::uint64_t at, std::uint64_t need) -> Result<bool> {
    if (at >= chunk_at && at + need <= chunk_at + buf.size()) return true;
    if (at + need > size_bytes) return false;
    const std::uint64_t want =
        std::min<std::uint64_t>(std::max<std::uint64_t>(need, kScanChunkBytes), size_bytes - at);
    buf.resize(static_cast<std::size_t>(want));
    auto n = s.file->read_at(at, buf);
    if (!n) return std::unexpected(n.error());
    buf.resize(*n);
    chunk_at = at;
    return *n >= need;
  };
  auto at_ptr = [&](std::uint64_t at) { return buf.data() + (at - chunk_at); };
  if (auto got = load(0, kSegmentHeaderBytes); !got || !*got) {
    return got ? fail(errc::not_a_log, s.path + ": shorter than a segment header")
               : std::unexpected(got.error());
  }
  format::SegmentHeader h;
  if (auto st = format::decode(
          std::span<const std::byte, kSegmentHeaderBytes>(at_ptr(0), kSegmentHeaderBytes), h);
      st != format::HeaderStatus::ok) {
    return std::unexpected(header_error(st, s.path, "log segment"));
  }
  if (h.cluster_id != opt_.cluster_id) {
    return std::unexpected(cluster_error(s.path, h.cluster_id, opt_.cluster_id));
  }
  if (h.first_zxid != s.first_zxid) {
    return fail(errc::corrupt, s.path + ": header says first zxid " + hex16(h.first_zxid));
  }
  s.version = h.version;
  std::uint64_t off = kSegmentHeaderBytes;
  std::string bad;  // empty: clean end at `off`
  // The bad record at `off` when its header checks out (only its payload, zxid order or first
  // zxid is wrong): its zxid and length are what was written.
  std::optional<format::RecordHeader> bad_header;
  while (true) {
    if (off + kRecordHeaderBytes > size_bytes) {
      auto got = load(off, size_bytes - off);
      if (!got) return std::unexpected(got.error());
      if (!*got || !format::all_zero(at_ptr(off), static_cast<std::size_t>(size_bytes - off))) {
        bad = "partial record header";
      }
      break;
    }
    if (auto got = load(off, kRecordHeaderBytes); !got || !*got) {
      if (!got) return std::unexpected(got.error());
      bad = "the file ends inside a record header";  // it shrank while we read it
      break;
    }
    format::RecordHeader rh;
    const auto st = format::decode_record_header(at_ptr(off), h.version, rh);
    if (st == format::RecordStatus::end) break;
    if (st == format::RecordStatus::bad_header) {
      bad = "record header checksum mismatch";
      break;
    }
    if (rh.length > format::kMaxRecordBytes ||
        off + kRecordHeaderBytes + rh.length > size_bytes) {
      bad = "record length " + std::to_string(rh.length) + " runs past the end of the segment";
      break;
    }
    if (auto got = load(off, kRecordHeaderBytes + rh.length); !got || !*got) {
      if (!got) return std::unexpected(got.error());
      bad = "the file ends inside a record";
      break;
    }
    const std::byte* payload = at_ptr(off) + kRecordHeaderBytes;
    if (crc32c(payload, rh.length) != rh.payload_crc) {
      bad = "payload checksum mismatch (zxid " + hex16(rh.zxid) + ")";
      bad_header = rh;
      break;
    }
    if (rh.zxid <= prev_zxid) {
      bad = "zxid " + hex16(rh.zxid) + " not above the previous " + hex16(prev_zxid);
      bad_header = rh;
      break;
    }
    if (s.records == 0 && rh.zxid != s.first_zxid) {
      bad = "first record has zxid " + hex16(rh.zxid) + ", the name says " + hex16(s.first_zxid);
      bad_header = rh;
      break;
    }
    note_record(s, rh.zxid, off);
    prev_zxid = rh.zxid;
    off += kRecordHeaderBytes + rh.length;
  }
  s.end = off;
  s.durable_end = off;
  // Where the last non-zero byte at or after `off` is, if any: read backwards a chunk at a time
  // from the end (a preallocated segment is mostly zeros past its records).
  std::uint64_t last_nonzero = off;
  bool junk = false;
  for (std::uint64_t chunk_end = size_bytes; chunk_end > off && !junk;) {
    const std::uint64_t chunk_begin =
        chunk_end - std::min<std::uint64_t>(kScanChunkBytes, chunk_end - off);
    auto got = load(chunk_begin, chunk_end - chunk_begin);
    if (!got) return std::unexpected(got.error());
    if (!*got) return fail(errc::io_error, at(s.path, chunk_begin) + ": short read while scanning");
    if (format::all_zero(at_ptr(chunk_begin), static_cast<std::size_t>(chunk_end - chunk_begin))) {
      chunk_end = chunk_begin;
      continue;
    }
    for (std::uint64_t p = chunk_end; p > chunk_begin; --p) {
      if (*at_ptr(p - 1) != std::byte{0}) {
        last_nonzero = p - 1;
        junk = true;
        break;
      }
    }
    chunk_end = chunk_begin;
  }
  if (bad.empty() && !junk) {
    if (last && (h.tail_window_bytes != tail_window_bytes() || h.version != format::kVersion)) {
      roll_on_next_append_ = true;  // new records go to a segment of this log's window and version
    }
    return {};
  }
  if (bad.empty()) bad = "non-zero bytes after the last record";
  const std::uint64_t window = h.tail_window_bytes;

  // What lies after the bad spot: every whole record (both checksums, zxid above the last one
  // seen) found by following records where a header checks out and searching byte by byte
  // where none does. They are counted for the report, and in a version 2 segment written with
  // fdatasync (window != 0) their synced-back fields say up to where the segment was synced
  // when they were appended: a bad spot below that offset was synced, so it is corruption, not
  // a torn write, whatever the tail window says.
  std::uint64_t found = 0, found_first = 0, found_last = 0;
  std::uint64_t synced = 0, synced_zxid = 0, synced_at = 0;
  std::uint64_t seen_zxid = prev_zxid;
  auto found_record = [&](std::uint64_t zxid) {
    if (found++ == 0) found_first = zxid;
    found_last = zxid;
    seen_zxid = zxid;
  };
  std::uint64_t p = off + 1;
  if (bad_header) {
    // Its header checked out, so its length is what was written: go on after it. It counts as
    // cut unless its zxid is out of order (then it tells nothing about what was cut).
    if (bad_header->zxid > seen_zxid) found_record(bad_header->zxid);
    p = off + kRecordHeaderBytes + bad_header->length;
  }
  const bool hints = h.version >= 2 && window != 0;
  while (junk && p <= last_nonzero && p + kRecordHeaderBytes <= size_bytes) {
    auto got = load(p, kRecordHeaderBytes);
    if (!got) return std::unexpected(got.error());
    if (!*got) break;
    if (format::all_zero(at_ptr(p), kRecordHeaderBytes)) {
      // No header starts before the next non-zero byte minus 23.
      std::uint64_t n = p + kRecordHeaderBytes;
      while (n <= last_nonzero) {
        auto g = load(n, 1);
        if (!g) return std::unexpected(g.error());
        if (!*g || *at_ptr(n) != std::byte{0}) break;
        ++n;
      }
      p = std::max(p + 1, n - (kRecordHeaderBytes - 1));
      continue;
    }
    format::RecordHeader rh;
    if (format::decode_record_header(at_ptr(p), h.version, rh) == format::RecordStatus::ok &&
        rh.length <= format::kMaxRecordBytes &&
        p + kRecordHeaderBytes + rh.length <= size_bytes && rh.zxid > seen_zxid) {
      auto whole = load(p, kRecordHeaderBytes + rh.length);
      if (!whole) return std::unexpected(whole.error());
      if (*whole && crc32c(at_ptr(p) + kRecordHeaderBytes, rh.length) == rh.payload_crc) {
        found_record(rh.zxid);
        if (hints && rh.synced_below(p) > synced) {
          synced = rh.synced_below(p);
          synced_zxid = rh.zxid;
          synced_at = p;
        }
        p += kRecordHeaderBytes + rh.length;
        continue;
      }
    }
    ++p;
  }
  const bool synced_past = hints && synced > off;
  const bool torn = may_be_torn && (window == 0 || last_nonzero < off + window) && !synced_past;
  if (!torn && opt_.recovery == RecoveryMode::cut_torn_tail) {
    std::string why;
    if (synced_past) {
      why = ", below offset " + std::to_string(synced) + ", which record " + hex16(synced_zxid) +
            " at offset " + std::to_string(synced_at) + " says was synced";
    } else if (may_be_torn) {
      why = ", with data " + std::to_string(last_nonzero - off) +
            " bytes further, beyond the tail window of " + std::to_string(window) + " bytes";
    } else {
      why = " in a segment that is not the last";
    }
    std::string after;
    if (found > 0) {
      after = " (" + std::to_string(found) + " readable record" + (found == 1 ? "" : "s") +
              " from zxid " + hex16(found_first) + " to " + hex16(found_last) + " would go)";
    }
    return fail(errc::corrupt, at(s.path, off) + ": " + bad + why +
                                   "; records from here on may have been acknowledged" + after +
                                   ". " + corruption_advice());
  }
  if (!report_.state_lost) {
    // Before anything is cut: a crash after the cut must still find the mark.
    const std::string text = "fastzab: recovery cut the log at " + at(s.path, off) + " (" + bad +
                             "); records from there may have been acknowledged. Written before " +
                             "the cut; removed once they are fetched from a leader again.\n";
    if (auto r = write_atomically(std::string(kStateLostFile),
                                  std::as_bytes(std::span(text.data(), text.size())), {});
        !r) {
      return r;
    }
    report_.state_lost = true;
  }
  if (torn) {
    report_.torn_tail_cut = true;
  } else {
    report_.corruption_cut = true;
  }
  report_.cut_file = s.path;
  report_.cut_offset = off;
  report_.cut_reason = bad;
  if (found > 0) {
    note_cut_record(found_first);
    report_.records_cut += found - 1;
    report_.cut_last_zxid = std::max(report_.cut_last_zxid, found_last);
  }
  report_.bytes_cut += junk ? last_nonzero + 1 - off : 0;
  if (auto r = zero_tail(s, off); !r) return r;
  // New records go to a fresh segment: this one's header may describe another tail window.
  roll_on_next_append_ = true;
  return {};
}

void Log::note_cut_record(std::uint64_t zxid) {
  if (report_.records_cut++ == 0) report_.cut_first_zxid = zxid;
  report_.cut_last_zxid = std::max(report_.cut_last_zxid, zxid);
}

// How the operator selects truncate_at_corruption, for the corruption error.
std::string Log::corruption_advice() const {
  const char* mode = to_string(RecoveryMode::truncate_at_corruption);
  const std::string how = opt_.recovery_setting.empty()
                              ? std::string("log::Options::recovery = RecoveryMode::") + mode
                              : opt_.recovery_setting + "=" + mode;
  return std::string("To cut the log here and fetch the lost records from peers, restart with "
                     "recovery mode ") + mode + " (" + how + ")";
}

// Counts what a segment removed behind a cut held (its whole records from the start, as far as
// they read in order) into the report, before it is removed.
Result<void> Log::account_dropped_segment(const std::string& path, std::uint64_t& prev_zxid) {
  auto f = fs_.open(path, OpenMode::read_write);
  if (!f) return std::unexpected(f.error());
  auto size = (*f)->size();
  if (!size) return std::unexpected(size.error());
  std::array<std::byte, kSegmentHeaderBytes> head{};
  auto n = (*f)->read_at(0, head);
  if (!n) return std::unexpected(n.error());
  format::SegmentHeader h;
  if (*n != head.size() || format::decode(std::span<const std::byte, kSegmentHeaderBytes>(head),
                                          h) != format::HeaderStatus::ok) {
    report_.bytes_cut += *size;
    return {};
  }
  std::uint64_t off = kSegmentHeaderBytes;
  std::vector<std::byte> rec;
  while (off + kRecordHeaderBytes <= *size) {
    rec.resize(kRecordHeaderBytes);
    auto got = (*f)->read_at(off, rec);
    if (!got) return std::unexpected(got.error());
    format::RecordHeader rh;
    if (*got != rec.size() ||
        format::decode_record_header(rec.data(), h.version, rh) != format::RecordStatus::ok ||
        rh.length > format::kMaxRecordBytes || off + kRecordHeaderBytes + rh.length > *size ||
        rh.zxid <= prev_zxid) {
      break;
    }
    rec.resize(kRecordHeaderBytes + rh.length);
    got = (*f)->read_at(off, rec);
    if (!got) return std::unexpected(got.error());
    if (*got != rec.size() ||
        crc32c(rec.data() + kRecordHeaderBytes, rh.length) != rh.payload_crc) {
      break;
    }
    note_cut_record(rh.zxid);
    prev_zxid = rh.zxid;
    off += kRecordHeaderBytes + rh.length;
  }
  report_.bytes_cut += off - kSegmentHeaderBytes;
  return {};
}

// Makes [offset, segment end) zero again (and preallocated), durably.
Result<void> Log::zero_tail(Segment& s, std::uint64_t offset) {
  auto size = s.file->size();
  if (!size) return std::unexpected(size.error());
  if (auto r = s.file->truncate(offset); !r) return r;
  const std::uint64_t len = std::max(*size, opt_.segment_bytes);
  if (len > offset) {
    if (auto r = s.file->allocate(offset, len - offset); !r) return r;
  }
  if (auto r = s.file->sync_data(); !r) return r;
  s.end = offset;
  s.durable_end = offset;
  return {};
}

}  // namespace fastzab::log
