#include "log/log.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>

namespace fastzab::log {

using format::kRecordHeaderBytes;
using format::kSegmentHeaderBytes;

namespace format {
std::optional<std::uint64_t> parse_hex_suffix(std::string_view name, std::string_view prefix) {
  if (name.size() != prefix.size() + 16 || name.substr(0, prefix.size()) != prefix) {
    return std::nullopt;
  }
  std::uint64_t v = 0;
  for (char c : name.substr(prefix.size())) {
    v <<= 4;
    if (c >= '0' && c <= '9') {
      v |= static_cast<std::uint64_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      v |= static_cast<std::uint64_t>(c - 'a' + 10);
    } else {
      return std::nullopt;
    }
  }
  return v;
}
}  // namespace format

namespace {

constexpr std::string_view kSegmentPrefix = "log.";
constexpr std::string_view kSnapshotPrefix = "snapshot.";
constexpr std::string_view kEpochFile = "epochs";
constexpr std::string_view kTempSuffix = ".tmp";
constexpr std::string_view kStateLostFile = "state-lost";

std::string hex16(std::uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016" PRIx64, v);
  return buf;
}

std::string at(const std::string& file, std::uint64_t offset) {
  return file + " at offset " + std::to_string(offset);
}

Error header_error(format::HeaderStatus st, const std::string& file, const char* kind) {
  switch (st) {
    case format::HeaderStatus::bad_magic:
      return Error{errc::not_a_log, 0, file + ": not a fastzab " + kind + " (bad magic)"};
    case format::HeaderStatus::bad_version:
      return Error{errc::bad_version, 0,
                   file + ": " + kind + " format version or header size this build does not read "
                   "(it reads log segments of versions " +
                       std::to_string(format::kOldestSegmentVersion) + " to " +
                       std::to_string(format::kVersion) + ", snapshots and epoch files of "
                       "version " + std::to_string(format::kSnapshotVersion) + ")"};
    case format::HeaderStatus::bad_checksum:
      return Error{errc::corrupt, 0, file + ": " + kind + " header checksum mismatch"};
    case format::HeaderStatus::ok: break;
  }
  return Error{errc::corrupt, 0, file};
}

Error cluster_error(const std::string& file, std::uint64_t found, std::uint64_t want) {
  return Error{errc::wrong_cluster, 0,
               file + ": cluster id " + std::to_string(found) + ", this node's is " +
                   std::to_string(want)};
}

// Not part of the format: how far apart sparse index entries are, and how much a scan reads at
// once.
constexpr std::uint64_t kIndexIntervalBytes = 4096;
constexpr std::size_t kScanChunkBytes = 64 * 1024;

std::size_t batch_capacity(const Options& o) {
  return std::max<std::size_t>(o.max_batch_bytes, kRecordHeaderBytes + o.max_record_bytes);
}

}  // namespace

const char* to_string(SyncMode m) noexcept {
  return m == SyncMode::fdatasync ? "fdatasync" : "none";
}
const char* to_string(RecoveryMode m) noexcept {
  return m == RecoveryMode::cut_torn_tail ? "cut_torn_tail" : "truncate_at_corruption";
}
std::optional<RecoveryMode> parse_recovery_mode(std::string_view name) noexcept {
  for (RecoveryMode m : {RecoveryMode::cut_torn_tail, RecoveryMode::truncate_at_corruption}) {
    if (name == to_string(m)) return m;
  }
  return std::nullopt;
}

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
const char* to_string(WriterKind w) noexcept { return w == WriterKind::sync ? "sync" : "io_uring"; }

Log::Log(std::string dir, const Options& options, FileSystem& fs, std::unique_ptr<Writer> writer)
    : dir_(std::move(dir)), opt_(options), fs_(fs), writer_(std::move(writer)) {}

Log::~Log() {
  // Buffers may still be in the kernel's hands: wait for them (results are dropped; nothing
  // reported durable depends on them).
  while (writer_ && writer_->in_flight() > 0) {
    completions_.clear();
    if (!writer_->reap(true, completions_)) break;
  }
}

const char* Log::writer_name() const noexcept { return writer_->name(); }

std::uint64_t Log::tail_window_bytes() const noexcept {
  if (opt_.sync == SyncMode::none) return 0;  // unbounded
  return static_cast<std::uint64_t>(writer_->capacity()) * batch_capacity(opt_);
}

std::string Log::seg_path(std::uint64_t zxid) const {
  return dir_ + "/" + std::string(kSegmentPrefix) + hex16(zxid);
}
std::string Log::snap_path(std::uint64_t zxid) const {
  return dir_ + "/" + std::string(kSnapshotPrefix) + hex16(zxid);
}

std::uint64_t Log::first_zxid() const noexcept {
  for (const Segment& s : segments_) {
    if (s.records > 0) return s.first_zxid;
  }
  return 0;
}

std::uint64_t Log::record_count() const noexcept {
  std::uint64_t n = 0;
  for (const Segment& s : segments_) n += s.records;
  return n;
}

Result<std::unique_ptr<Log>> Log::open(const std::string& dir, const Options& o) {
  if (o.segment_bytes < format::kMinSegmentBytes || o.segment_bytes > format::kMaxSegmentBytes) {
    return fail(errc::invalid_argument, "segment_bytes " + std::to_string(o.segment_bytes) +
                                            " outside [" + std::to_string(format::kMinSegmentBytes) +
                                            ", " + std::to_string(format::kMaxSegmentBytes) + "]");
  }
  if (o.max_record_bytes > format::kMaxRecordBytes ||
      kSegmentHeaderBytes + kRecordHeaderBytes + o.max_record_bytes > o.segment_bytes) {
    return fail(errc::invalid_argument,
                "max_record_bytes " + std::to_string(o.max_record_bytes) +
                    " does not fit a segment of " + std::to_string(o.segment_bytes) +
                    " bytes (or passes " + std::to_string(format::kMaxRecordBytes) + ")");
  }
  if (o.max_batch_bytes == 0 || o.max_batch_records == 0 || o.max_inflight_batches == 0) {
    return fail(errc::invalid_argument, "max_batch_bytes, max_batch_records and "
                                        "max_inflight_batches must be positive");
  }
  FileSystem& fs = o.fs != nullptr ? *o.fs : posix_fs();
  std::unique_ptr<Writer> writer;
  if (o.writer == WriterKind::sync) {
    writer = make_sync_writer();
  } else {
    auto w = make_uring_writer(o.max_inflight_batches);
    if (!w) return std::unexpected(w.error());
    writer = std::move(*w);
  }
  if (auto r = fs.make_dir(dir); !r) {
    return fail(r.error().code, "log directory " + r.error().detail);
  }
  auto lock = fs.lock_dir(dir);
  if (!lock) return std::unexpected(lock.error());
  std::unique_ptr<Log> log(new Log(dir, o, fs, std::move(writer)));
  log->lock_ = std::move(*lock);
  if (auto r = log->recover(); !r) return std::unexpected(r.error());
  return log;
}

Result<void> Log::remove_file(const std::string& path) {
  if (auto r = fs_.remove(path); !r) return r;
  return fs_.sync_dir(dir_);
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


void Log::note_record(Segment& s, std::uint64_t zxid, std::uint64_t offset) {
  if (s.records == 0 || offset >= s.next_index_at) {
    s.index.push_back(Loc{zxid, offset, s.records});
    s.next_index_at = offset + kIndexIntervalBytes;
  }
  ++s.records;
  s.last_zxid = zxid;
}

// The last index entry with zxid <= `zxid` (the first entry when there is none).
const Log::Loc& Log::index_at_or_before(const Segment& s, std::uint64_t zxid) {
  FASTZAB_LOG_ASSERT(!s.index.empty());
  auto it = std::upper_bound(s.index.begin(), s.index.end(), zxid,
                             [](std::uint64_t z, const Loc& l) { return z < l.zxid; });
  return it == s.index.begin() ? *it : *(it - 1);
}

// The segment that would hold `zxid` (the last one starting at or below it), or null.
Log::Segment* Log::segment_for(std::uint64_t zxid) {
  auto seg = std::upper_bound(segments_.begin(), segments_.end(), zxid,
                              [](std::uint64_t z, const Segment& s) { return z < s.first_zxid; });
  if (seg == segments_.begin()) return nullptr;
  return &*(seg - 1);
}

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
    const std::uint64_t want = std::min<std::uint64_t>(std::max<std::uint64_t>(need, kScanChunkBytes),
                                                       limit - at_offset);
    scan_buf_.resize(static_cast<std::size_t>(want));
    auto n = s.file->read_at(at_offset, scan_buf_);
    if (!n) return std::unexpected(n.error());
    if (*n < need) {
      return fail(errc::corrupt, at(s.path, at_offset + *n) + ": file ends inside a record");
    }
    buf_begin = at_offset;
    buf_len = *n;
    return {};
  };
  while (off < limit) {
    if (off + kRecordHeaderBytes > limit) {
      return fail(errc::corrupt, at(s.path, off) + ": a partial record header where durable "
                                                   "records should be");
    }
    if (auto r = fill(off, kRecordHeaderBytes); !r) return r;
    format::RecordHeader rh;
    const std::byte* p = scan_buf_.data() + (off - buf_begin);
    if (format::decode_record_header(p, s.version, rh) != format::RecordStatus::ok ||
        off + kRecordHeaderBytes + rh.length > limit) {
      return fail(errc::corrupt, at(s.path, off) + ": record header fails its checksum on read");
    }
    const std::byte* payload = nullptr;
    if (payloads) {
      if (auto r = fill(off, kRecordHeaderBytes + rh.length); !r) return r;
      payload = scan_buf_.data() + (off - buf_begin) + kRecordHeaderBytes;
      if (crc32c(payload, rh.length) != rh.payload_crc) {
        return fail(errc::corrupt, at(s.path, off) + ": record zxid " + hex16(rh.zxid) +
                                       " fails its checksum on read");
      }
    }
    if (!visit(Scanned{rh.zxid, off, rh.length, payload})) return {};
    off += kRecordHeaderBytes + rh.length;
  }
  return {};
}

Result<void> Log::poisoned_error() const {
  return fail(errc::poisoned, "refusing writes after: " + poison_->to_string());
}

void Log::Buffer::grow(std::size_t need) {
  const std::size_t cap = std::max<std::size_t>({need, 2 * cap_, 4096});
  auto p = std::make_unique_for_overwrite<std::byte[]>(cap);
  if (size_ > 0) std::memcpy(p.get(), data_.get(), size_);
  data_ = std::move(p);
  cap_ = cap;
}

Error Log::poison(Error e) {
  if (!poison_) poison_ = e;
  return e;
}

Result<void> Log::append(std::uint64_t zxid, std::span<const std::byte> payload) {
  if (auto r = check_poison(); !r) return r;
  if (zxid <= last_zxid_) {
    return fail(errc::invalid_argument,
                "zxid " + hex16(zxid) + " is not above the last appended " + hex16(last_zxid_));
  }
  if (payload.size() > opt_.max_record_bytes) {
    return fail(errc::invalid_argument, "record of " + std::to_string(payload.size()) +
                                            " bytes passes max_record_bytes " +
                                            std::to_string(opt_.max_record_bytes));
  }
  const std::uint64_t rec = kRecordHeaderBytes + payload.size();
  if (segments_.empty() || roll_on_next_append_ ||
      segments_.back().end + rec > opt_.segment_bytes) {
    Segment s;
    s.first_zxid = zxid;
    s.path = seg_path(zxid);
    s.end = kSegmentHeaderBytes;
    segments_.push_back(std::move(s));
    roll_on_next_append_ = false;
  }
  Segment& seg = segments_.back();
  if (queued_.empty() || queued_.back().segment != &seg ||
      queued_.back().bytes.size() + rec > opt_.max_batch_bytes ||
      queued_.back().records >= opt_.max_batch_records) {
    Batch b;
    b.id = next_batch_id_++;
    b.segment = &seg;
    b.offset = seg.end;
    if (!spare_buffers_.empty()) {
      b.bytes = std::move(spare_buffers_.back());
      spare_buffers_.pop_back();
      b.bytes.clear();
    }
    queued_.push_back(std::move(b));
  }
  Batch& b = queued_.back();
  std::byte* out = b.bytes.extend(rec);
  // What of this segment is known synced now (FORMAT.md, "Record"): recovery tells a torn write
  // from corruption by it. Nothing is in sync=none.
  const std::uint32_t synced_back =
      opt_.sync == SyncMode::fdatasync ? format::synced_back(seg.end, seg.durable_end)
                                       : format::kSyncedUnknown;
  format::encode_record_header(zxid, payload, synced_back, out);
  if (!payload.empty()) std::memcpy(out + kRecordHeaderBytes, payload.data(), payload.size());
  b.last_zxid = zxid;
  ++b.records;
  note_record(seg, zxid, seg.end);
  seg.end += rec;
  last_zxid_ = zxid;
  return {};
}

Result<void> Log::create_segment(Segment& s) {
  const std::string tmp = s.path + std::string(kTempSuffix);
  auto made = [&]() -> Result<void> {
    auto f = fs_.open(tmp, OpenMode::create_truncate);
    if (!f) return std::unexpected(f.error());
    format::SegmentHeader h;
    h.cluster_id = opt_.cluster_id;
    h.first_zxid = s.first_zxid;
    h.segment_bytes = opt_.segment_bytes;
    h.tail_window_bytes = tail_window_bytes();
    std::array<std::byte, kSegmentHeaderBytes> head{};
    format::encode(h, head);
    if (auto r = (*f)->allocate(0, opt_.segment_bytes); !r) return r;
    if (auto r = (*f)->write_at(0, head); !r) return r;
    if (auto r = (*f)->sync_data(); !r) return r;
    if (auto r = fs_.rename(tmp, s.path); !r) return r;
    if (auto r = fs_.sync_dir(dir_); !r) return r;
    auto g = fs_.open(s.path, OpenMode::read_write);
    if (!g) return std::unexpected(g.error());
    s.file = std::move(*g);
    return {};
  }();
  if (!made) {
    (void)fs_.remove(tmp);  // best effort; open() removes leftovers anyway
    return std::unexpected(poison(made.error()));
  }
  return {};
}

Result<void> Log::submit() {
  if (auto r = check_poison(); !r) return r;
  while (!queued_.empty()) {
    Batch& b = queued_.front();
    if (!b.segment->file) {
      // A new segment starts only once everything before it is durable, so that only the last
      // segment can ever hold a torn tail (FORMAT.md).
      // In sync=none nothing waits for the disk: the previous segment is not synced, and
      // recovery treats the trailing run of sync=none segments as possibly torn (FORMAT.md).
      if (auto r = drain(); !r) return r;
      if (auto r = create_segment(*b.segment); !r) return r;
    }
    while (writer_->in_flight() >= writer_->capacity()) {
      if (auto r = poll(true); !r) return std::unexpected(r.error());
      if (auto r = check_poison(); !r) return r;
    }
    inflight_.push_back(std::move(queued_.front()));
    queued_.pop_front();
    Batch& f = inflight_.back();
    WriteRequest req{f.segment->file.get(), f.offset, f.bytes, opt_.sync == SyncMode::fdatasync,
                     f.id};
    if (auto r = writer_->submit(req); !r) {
      inflight_.pop_back();
      return std::unexpected(poison(r.error()));
    }
  }
  return {};
}

Result<std::uint64_t> Log::poll(bool wait) {
  completions_.clear();
  if (auto r = writer_->reap(wait && !inflight_.empty(), completions_); !r) {
    return std::unexpected(poison(r.error()));
  }
  for (WriteCompletion& c : completions_) {
    auto it = std::find_if(inflight_.begin(), inflight_.end(),
                           [&](const Batch& b) { return b.id == c.id; });
    if (it == inflight_.end()) continue;  // cannot happen: ids are unique
    if (!c.result) {
      poison(c.result.error());
    } else {
      it->done = true;
    }
  }
  // Durability advances only over a prefix of batches that all succeeded.
  while (!poison_ && !inflight_.empty() && inflight_.front().done) {
    durable_zxid_ = inflight_.front().last_zxid;
    inflight_.front().segment->durable_end = inflight_.front().offset + inflight_.front().bytes.size();
    ++batch_stats_.batches;
    batch_stats_.bytes += inflight_.front().bytes.size();
    batch_stats_.records += inflight_.front().records;
    spare_buffers_.push_back(std::move(inflight_.front().bytes));
    inflight_.pop_front();
  }
  if (poison_) {
    // Drop finished batches (their buffers are free); the others are still in the kernel.
    if (writer_->in_flight() == 0) inflight_.clear();
  }
  return durable_zxid_;
}

// Waits for every batch in flight. After a failure it still waits for the writer, so that no
// buffer is freed while the kernel may read it.
Result<void> Log::drain() {
  while (writer_->in_flight() > 0 || (!poison_ && !inflight_.empty())) {
    if (auto r = poll(true); !r) return std::unexpected(r.error());
  }
  if (poison_) {
    inflight_.clear();
    return check_poison();
  }
  return {};
}

Result<std::uint64_t> Log::flush() {
  const bool was_poisoned = poisoned();
  auto submitted = submit();
  auto drained = drain();
  // The call that meets the failure reports it as it is; later calls say "poisoned".
  if (!was_poisoned && poison_) return std::unexpected(*poison_);
  if (!submitted) return std::unexpected(submitted.error());
  if (!drained) return std::unexpected(drained.error());
  return durable_zxid_;
}

Result<std::optional<Log::Position>> Log::locate(std::uint64_t zxid) {
  std::optional<Position> found;
  if (zxid > durable_zxid_) return found;
  Segment* seg = segment_for(zxid);
  if (seg == nullptr || seg->records == 0 || !seg->file) return found;
  auto r = scan(*seg, index_at_or_before(*seg, zxid), false, [&](const Scanned& rec) {
    if (rec.zxid == zxid) found = Position{seg->path, rec.offset, rec.length};
    return rec.zxid < zxid;
  });
  if (!r) return std::unexpected(r.error());
  return found;
}

Result<std::vector<Record>> Log::read(std::uint64_t from, std::uint64_t to,
                                      std::size_t max_bytes) {
  std::vector<Record> out;
  to = std::min(to, durable_zxid_);
  if (from > to) return out;
  auto seg = std::upper_bound(segments_.begin(), segments_.end(), from,
                              [](std::uint64_t z, const Segment& s) { return z < s.first_zxid; });
  if (seg != segments_.begin()) --seg;
  std::size_t bytes = 0;
  bool done = false;
  for (; seg != segments_.end() && !done; ++seg) {
    if (seg->records == 0 || !seg->file) continue;
    auto r = scan(*seg, index_at_or_before(*seg, from), true, [&](const Scanned& rec) {
      if (rec.zxid < from) return true;
      if (rec.zxid > to || (!out.empty() && bytes + rec.length > max_bytes)) {
        done = true;
        return false;
      }
      Record x;
      x.zxid = rec.zxid;
      x.payload.assign(rec.payload, rec.payload + rec.length);
      out.push_back(std::move(x));
      bytes += rec.length;
      return true;
    });
    if (!r) return std::unexpected(r.error());
  }
  return out;
}

Result<void> Log::truncate(std::uint64_t zxid) {
  if (auto r = flush(); !r) return std::unexpected(r.error());
  // Segments wholly above zxid go first, newest first, each removal durable before the next, so
  // a crash in between leaves a prefix of the log.
  while (!segments_.empty() && segments_.back().first_zxid > zxid) {
    Segment& s = segments_.back();
    const std::string path = s.path;
    s.file.reset();
    segments_.pop_back();
    if (auto r = remove_file(path); !r) return std::unexpected(poison(r.error()));
  }
  if (!segments_.empty()) {
    Segment& s = segments_.back();
    if (s.last_zxid > zxid) {
      // The first record above zxid, and the count and last zxid of those kept.
      const Loc& from = index_at_or_before(s, zxid);
      std::uint64_t cut = 0, kept = from.ordinal, kept_last = 0;
      auto r = scan(s, from, false, [&](const Scanned& rec) {
        if (rec.zxid > zxid) {
          cut = rec.offset;
          return false;
        }
        ++kept;
        kept_last = rec.zxid;
        return true;
      });
      if (!r) return std::unexpected(poison(r.error()));
      FASTZAB_LOG_ASSERT(cut >= kSegmentHeaderBytes);  // s.first_zxid <= zxid < s.last_zxid
      if (auto z = zero_tail(s, cut); !z) return std::unexpected(poison(z.error()));
      while (!s.index.empty() && s.index.back().offset >= cut) s.index.pop_back();
      s.records = kept;
      s.last_zxid = kept_last;
      s.next_index_at = s.index.empty() ? 0 : s.index.back().offset + kIndexIntervalBytes;
    }
  }
  last_zxid_ = segments_.empty() ? 0 : segments_.back().last_zxid;
  durable_zxid_ = std::min(durable_zxid_, last_zxid_);
  return {};
}

Result<void> Log::reset_to_snapshot(std::uint64_t zxid) {
  if (std::find(snapshots_.begin(), snapshots_.end(), zxid) == snapshots_.end()) {
    return fail(errc::invalid_argument,
                "no snapshot at zxid " + hex16(zxid) + " to reset the log to (save_snapshot first)");
  }
  // Issue order, as truncate(): what was appended before is written first.
  if (auto r = flush(); !r) return std::unexpected(r.error());
  // Newest first, each removal durable before the next: a crash in between leaves the snapshot
  // and a prefix of the old log.
  while (!segments_.empty()) {
    Segment& s = segments_.back();
    const std::string path = s.path;
    const bool on_disk = s.file != nullptr;
    s.file.reset();
    segments_.pop_back();
    if (on_disk) {
      if (auto r = remove_file(path); !r) return std::unexpected(poison(r.error()));
    }
  }
  roll_on_next_append_ = false;
  last_zxid_ = zxid;
  durable_zxid_ = zxid;
  return {};
}

Result<void> Log::write_atomically(const std::string& name, std::span<const std::byte> head,
                                   std::span<const std::byte> body) {
  const std::string path = dir_ + "/" + name;
  const std::string tmp = path + std::string(kTempSuffix);
  auto r = [&]() -> Result<void> {
    auto f = fs_.open(tmp, OpenMode::create_truncate);
    if (!f) return std::unexpected(f.error());
    if (auto w = (*f)->write_at(0, head); !w) return w;
    if (!body.empty()) {
      if (auto w = (*f)->write_at(head.size(), body); !w) return w;
    }
    if (auto w = (*f)->sync_data(); !w) return w;
    if (auto w = fs_.rename(tmp, path); !w) return w;
    return fs_.sync_dir(dir_);
  }();
  if (!r) (void)fs_.remove(tmp);
  return r;
}

Result<void> Log::clear_state_lost() {
  if (!report_.state_lost) return {};
  if (auto r = fs_.remove(dir_ + "/" + std::string(kStateLostFile)); !r) return r;
  if (auto r = fs_.sync_dir(dir_); !r) return r;
  report_.state_lost = false;
  return {};
}

// write_epochs() refuses a currentEpoch above the acceptedEpoch, so a whole record (its checksum
// good) that holds one was not written by a log: corruption, not a torn write, and never handed
// to the protocol, whose invariant it breaks.
namespace {
Result<void> check_epoch_order(const std::string& path, const format::EpochRecord& e,
                               const std::string& where) {
  if (e.current <= e.accepted) return {};
  return fail(errc::corrupt, path + ": " + where + ": currentEpoch " + std::to_string(e.current) +
                                 " above acceptedEpoch " + std::to_string(e.accepted) +
                                 " (never written so by this log)");
}
}  // namespace

// Reads the epoch file into epochs_ (FORMAT.md, "Epoch file"). Returns true for the previous
// 48-byte file, which recover() replaces with a slotted one once the rest of the directory
// checked out.
Result<bool> Log::read_epoch_file(const std::string& path) {
  auto f = fs_.open(path, OpenMode::read_write);
  if (!f) return std::unexpected(f.error());
  auto size = (*f)->size();
  if (!size) return std::unexpected(size.error());
  if (*size == format::kLegacyEpochFileBytes) {
    std::array<std::byte, format::kLegacyEpochFileBytes> buf{};
    auto n = (*f)->read_at(0, buf);
    if (!n) return std::unexpected(n.error());
    if (*n != buf.size()) return fail(errc::corrupt, path + ": short read of the epoch file");
    format::EpochRecord e;
    if (auto st = format::decode_legacy_epochs(buf, e); st != format::HeaderStatus::ok) {
      return std::unexpected(header_error(st, path, "epoch file"));
    }
    if (e.cluster_id != opt_.cluster_id) {
      return std::unexpected(cluster_error(path, e.cluster_id, opt_.cluster_id));
    }
    if (auto ok = check_epoch_order(path, e, "epoch file"); !ok) return std::unexpected(ok.error());
    epochs_ = Epochs{e.accepted, e.current};
    return true;
  }
  if (*size != format::kEpochFileBytes) {
    return fail(errc::corrupt, path + ": " + std::to_string(*size) + " bytes; an epoch file has " +
                                   std::to_string(format::kEpochFileBytes) + " (or " +
                                   std::to_string(format::kLegacyEpochFileBytes) +
                                   " in the previous format)");
  }
  std::optional<format::EpochRecord> newest;
  std::size_t newest_slot = 0;
  std::string why;  // of the invalid slots
  bool damaged = false;
  for (std::size_t i = 0; i < format::kEpochSlots; ++i) {
    std::array<std::byte, format::kEpochSlotBytes> slot{};
    auto n = (*f)->read_at(i * format::kEpochSlotStride, slot);
    if (!n) return std::unexpected(n.error());
    if (*n != slot.size()) return fail(errc::corrupt, path + ": short read of the epoch file");
    format::EpochRecord e;
    const auto st = format::decode(slot, e);
    if (st == format::HeaderStatus::bad_version) {
      // A whole record of another version, not a torn one: this build does not read the file.
      return std::unexpected(header_error(st, path, "epoch file"));
    }
    if (st != format::HeaderStatus::ok) {
      // Torn by a crash in the middle of its write (or never written): the other slot holds
      // the epochs, which the interrupted write_epochs() never reported durable.
      const bool blank = format::all_zero(slot.data(), slot.size());
      damaged = damaged || !blank;
      why += ", slot " + std::to_string(i) + ": " +
             (blank ? "never written"
                    : st == format::HeaderStatus::bad_magic ? "bad magic" : "checksum mismatch");
      continue;
    }
    if (e.cluster_id != opt_.cluster_id) {
      return std::unexpected(cluster_error(path, e.cluster_id, opt_.cluster_id));
    }
    if (auto ok = check_epoch_order(path, e, "slot " + std::to_string(i)); !ok) {
      return std::unexpected(ok.error());
    }
    if (newest && e.sequence == newest->sequence) {
      // write_epochs() never writes the sequence of the newest record again.
      return fail(errc::corrupt, path + ": both slots hold sequence " + std::to_string(e.sequence));
    }
    if (!newest || e.sequence > newest->sequence) {
      newest = e;
      newest_slot = i;
    }
  }
  if (!newest) return fail(errc::corrupt, path + ": no valid epoch record (" + why.substr(2) + ")");
  report_.epoch_slot_ignored = damaged;
  epochs_ = Epochs{newest->accepted, newest->current};
  epoch_sequence_ = newest->sequence;
  epoch_slot_ = newest_slot;
  epoch_file_ = std::move(*f);
  return false;
}

// The slotted epoch file holding epochs_ in slot 0, created atomically so that its size and
// existence are durable before write_epochs() overwrites a slot in place with a bare fdatasync.
// Every byte is written rather than fallocated: an overwrite of a written extent leaves the file
// system no metadata to commit, so that fdatasync is the data-only fast path.
Result<void> Log::create_epoch_file() {
  std::vector<std::byte> image(format::kEpochFileBytes);
  format::encode(format::EpochRecord{opt_.cluster_id, 1, epochs_.accepted, epochs_.current},
                 std::span<std::byte, format::kEpochSlotBytes>(image.data(),
                                                               format::kEpochSlotBytes));
  epoch_file_.reset();
  if (auto r = write_atomically(std::string(kEpochFile), image, {}); !r) return r;
  auto f = fs_.open(dir_ + "/" + std::string(kEpochFile), OpenMode::read_write);
  if (!f) return std::unexpected(f.error());
  epoch_file_ = std::move(*f);
  epoch_sequence_ = 1;
  epoch_slot_ = 0;
  return {};
}

Result<void> Log::write_epochs(Epochs e) {
  if (e.current > e.accepted) {
    return fail(errc::invalid_argument, "currentEpoch " + std::to_string(e.current) +
                                            " above acceptedEpoch " + std::to_string(e.accepted));
  }
  // Durable effects complete in issue order (the simulator's disk model, which the core was
  // checked against, assumes it; tests/log/differential_test.cpp checks it): records appended
  // before this call are made durable before the new epochs can be.
  if (!queued_.empty() || !inflight_.empty()) {
    if (auto r = flush(); !r) return std::unexpected(r.error());
  }
  FASTZAB_LOG_ASSERT(epoch_file_ != nullptr);
  // Never the slot holding epochs_: a crash or failure part way leaves that one whole. After a
  // failure the same slot is written again next time (epoch_slot_ does not move), whatever it
  // now holds.
  const std::size_t slot = (epoch_slot_ + 1) % format::kEpochSlots;
  std::array<std::byte, format::kEpochSlotBytes> rec{};
  format::encode(format::EpochRecord{opt_.cluster_id, epoch_sequence_ + 1, e.accepted, e.current},
                 rec);
  if (auto r = epoch_file_->write_at(slot * format::kEpochSlotStride, rec); !r) return r;
  if (auto r = epoch_file_->sync_data(); !r) return r;
  epoch_slot_ = slot;
  ++epoch_sequence_;
  epochs_ = e;
  return {};
}

Result<void> Log::save_snapshot(std::uint64_t zxid, std::span<const std::byte> data) {
  if (data.size() > format::kMaxSnapshotBytes) {
    return fail(errc::invalid_argument, "snapshot of " + std::to_string(data.size()) + " bytes");
  }
  format::SnapshotHeader h{opt_.cluster_id, zxid, data.size(), crc32c(data.data(), data.size())};
  std::array<std::byte, format::kSnapshotHeaderBytes> head{};
  format::encode(h, head);
  const std::string name = std::string(kSnapshotPrefix) + hex16(zxid);
  if (auto r = write_atomically(name, head, data); !r) return r;
  if (std::find(snapshots_.begin(), snapshots_.end(), zxid) == snapshots_.end()) {
    snapshots_.push_back(zxid);
    std::sort(snapshots_.begin(), snapshots_.end());
  }
  return {};
}

Result<std::optional<Snapshot>> Log::latest_snapshot() {
  if (snapshots_.empty()) return std::optional<Snapshot>{};
  const std::uint64_t zxid = snapshots_.back();
  const std::string path = snap_path(zxid);
  auto f = fs_.open(path, OpenMode::read_write);
  if (!f) return std::unexpected(f.error());
  std::array<std::byte, format::kSnapshotHeaderBytes> head{};
  auto n = (*f)->read_at(0, head);
  if (!n) return std::unexpected(n.error());
  if (*n != head.size()) return fail(errc::corrupt, path + ": shorter than a snapshot header");
  format::SnapshotHeader h;
  if (auto st = format::decode(std::span<const std::byte, format::kSnapshotHeaderBytes>(head), h);
      st != format::HeaderStatus::ok) {
    return std::unexpected(header_error(st, path, "snapshot"));
  }
  if (h.cluster_id != opt_.cluster_id) {
    return std::unexpected(cluster_error(path, h.cluster_id, opt_.cluster_id));
  }
  if (h.zxid != zxid || h.length > format::kMaxSnapshotBytes) {
    return fail(errc::corrupt, path + ": header does not match the file name");
  }
  Snapshot s;
  s.zxid = h.zxid;
  s.data.resize(h.length);
  auto m = (*f)->read_at(format::kSnapshotHeaderBytes, s.data);
  if (!m) return std::unexpected(m.error());
  if (*m != h.length || crc32c(s.data.data(), s.data.size()) != h.payload_crc) {
    return fail(errc::corrupt, path + ": snapshot body fails its checksum");
  }
  return std::optional<Snapshot>(std::move(s));
}

Result<PurgeReport> Log::purge() {
  PurgeReport rep;
  if (snapshots_.empty()) return rep;
  const std::uint64_t snap = snapshots_.back();
  // Oldest first: a crash in between leaves a suffix, still covered by the snapshot.
  while (segments_.size() > 1) {
    Segment& s = segments_.front();
    if (!s.file || s.records == 0) break;
    const std::uint64_t last = s.last_zxid;
    if (last > snap || last > durable_zxid_) break;
    const std::string path = s.path;
    s.file.reset();
    segments_.pop_front();
    if (auto r = remove_file(path); !r) return std::unexpected(r.error());
    ++rep.segments_removed;
  }
  const std::size_t keep = std::max<std::size_t>(opt_.keep_snapshots, 1);
  while (snapshots_.size() > keep) {
    if (auto r = remove_file(snap_path(snapshots_.front())); !r) return std::unexpected(r.error());
    snapshots_.erase(snapshots_.begin());
    ++rep.snapshots_removed;
  }
  return rep;
}

}  // namespace fastzab::log
