// Log's construction and open(), its accessors and paths, the mode names, and the helpers of
// log_internal.h. The rest of Log is in log_recovery, log_index, log_write and log_state.cpp.
#include "log/log.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "log/log_internal.h"

namespace fastzab::log {

using format::kRecordHeaderBytes;
using format::kSegmentHeaderBytes;
using detail::hex16;
using detail::kSegmentPrefix;
using detail::kSnapshotPrefix;

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

namespace detail {

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

}  // namespace detail

namespace {

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

}  // namespace fastzab::log
