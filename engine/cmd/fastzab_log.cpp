// fastzab-log: inspects a log directory (log/FORMAT.md) without changing it.
//
// `dump` does not go through log::Log: Log::open() recovers the directory it opens (it cuts a torn
// tail, removes temporary and empty files, writes a missing epochs file), and an inspection tool
// must leave the evidence as it found it. So this reads the segment files itself, with
// log/format.h's decoders and log/crc32c.h, applying the same checks recovery applies to each
// record, and reports the first failure instead of repairing it.
//
// Records at or below the newest snapshot's zxid are superseded by it (the server starts from
// the snapshot and reads the log above it): their lines end in "superseded", and the summary
// counts them. A log written before Log::reset_to_snapshot(), or by a server that crashed
// between saving a received snapshot and dropping its old records, holds such records.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <expected>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "log/crc32c.h"
#include "log/format.h"

namespace {

namespace format = fastzab::log::format;
using fastzab::log::crc32c;

constexpr int kExitGood = 0;
constexpr int kExitBadLog = 1;  // the log has a bad record (or bytes after its last record)
constexpr int kExitCannot = 2;  // bad command line; not a log; cannot read

constexpr std::string_view kSegmentPrefix = "log.";
constexpr std::string_view kSnapshotPrefix = "snapshot.";
constexpr std::string_view kEpochFile = "epochs";

// Why the dump stopped: the exit status and one line for stderr (without the program name).
struct Failure {
  int exit_code;
  std::string message;
};

std::unexpected<Failure> bad_log(const std::string& file, std::uint64_t offset,
                                 const std::string& what) {
  return std::unexpected(
      Failure{kExitBadLog, file + ": offset " + std::to_string(offset) + ": " + what});
}
std::unexpected<Failure> cannot(std::string what) {
  return std::unexpected(Failure{kExitCannot, std::move(what)});
}

std::string hex_zxid(std::uint64_t zxid) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%016" PRIx64, zxid);
  return buf;
}

std::uint32_t load_u32(const std::byte* p) {
  std::uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// A segment file opened read-only, read through a window that moves forward with the scan so
// that records cost no system call each and a 64 MiB preallocated segment is not held at once.
class SegmentFile {
 public:
  static std::expected<SegmentFile, Failure> open(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return cannot(path + ": cannot open: " + std::strerror(errno));
    SegmentFile f(path, fd);
    struct stat st{};
    if (::fstat(fd, &st) != 0) return cannot(path + ": cannot stat: " + std::strerror(errno));
    f.size_ = static_cast<std::uint64_t>(st.st_size);
    return f;
  }
  SegmentFile(SegmentFile&& other) noexcept
      : path_(std::move(other.path_)), fd_(std::exchange(other.fd_, -1)), size_(other.size_),
        window_(std::move(other.window_)), window_offset_(other.window_offset_) {}
  SegmentFile(const SegmentFile&) = delete;
  SegmentFile& operator=(const SegmentFile&) = delete;
  SegmentFile& operator=(SegmentFile&&) = delete;
  ~SegmentFile() {
    if (fd_ >= 0) ::close(fd_);
  }

  std::uint64_t size() const noexcept { return size_; }
  const std::string& path() const noexcept { return path_; }

  // Bytes [offset, offset + n), which the caller has checked lie within size().
  std::expected<const std::byte*, Failure> view(std::uint64_t offset, std::size_t n) {
    if (offset < window_offset_ || offset + n > window_offset_ + window_.size()) {
      const std::uint64_t want = std::min<std::uint64_t>(std::max(n, kWindowBytes), size_ - offset);
      window_.resize(static_cast<std::size_t>(want));
      window_offset_ = offset;
      std::size_t got = 0;
      while (got < window_.size()) {
        const ssize_t r = ::pread(fd_, window_.data() + got, window_.size() - got,
                                  static_cast<off_t>(offset + got));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
          return cannot(path_ + ": cannot read at offset " + std::to_string(offset + got) + ": " +
                        std::strerror(errno));
        }
        if (r == 0) {
          return cannot(path_ + ": the file shrank while being read (is a server writing it?)");
        }
        got += static_cast<std::size_t>(r);
      }
    }
    return window_.data() + (offset - window_offset_);
  }

 private:
  static constexpr std::size_t kWindowBytes = 1u << 20;
  SegmentFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}

  std::string path_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
  std::vector<std::byte> window_;
  std::uint64_t window_offset_ = 0;
};

struct DumpOptions {
  std::string dir;
  std::optional<std::uint64_t> cluster_id;
  bool payload = false;
};

struct Summary {
  std::size_t segments = 0;
  std::uint64_t records = 0;
  std::uint64_t first_zxid = 0;
  std::uint64_t last_zxid = 0;
  std::optional<std::uint64_t> cluster_id;
  std::optional<std::uint64_t> snapshot_zxid;  // the newest snapshot's
  std::uint64_t superseded = 0;                // records <= snapshot_zxid
};

constexpr const char* kSupersededMark = "superseded";

void print_record(const format::RecordHeader& h, const std::byte* payload, bool with_payload,
                  bool superseded) {
  std::printf("0x%016" PRIx64 " %" PRIu32 " 0x%08" PRIx32, h.zxid, h.length, h.payload_crc);
  if (with_payload) {
    std::putchar(' ');
    if (h.length == 0) std::putchar('-');
    for (std::uint32_t i = 0; i < h.length; ++i) {
      std::printf("%02x", static_cast<unsigned>(payload[i]));
    }
  }
  if (superseded) std::printf(" %s", kSupersededMark);
  std::putchar('\n');
}

struct Listing {
  std::vector<std::uint64_t> segments;   // ascending by first zxid
  std::vector<std::uint64_t> snapshots;  // ascending
};

// The segment and snapshot files in `dir`, ascending by zxid, or why `dir` is not a log.
std::expected<Listing, Failure> list_segments(const std::string& dir) {
  std::error_code ec;
  const auto status = std::filesystem::status(dir, ec);
  if (status.type() == std::filesystem::file_type::not_found) {
    return cannot(dir + ": no such directory");
  }
  if (ec) return cannot(dir + ": " + ec.message());
  if (!std::filesystem::is_directory(status)) return cannot(dir + ": not a directory");
  std::vector<std::uint64_t> segments, snapshots;
  bool other_log_files = false;
  for (auto it = std::filesystem::directory_iterator(dir, ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (auto z = format::parse_hex_suffix(name, kSegmentPrefix)) {
      segments.push_back(*z);
    } else if (auto snap = format::parse_hex_suffix(name, kSnapshotPrefix)) {
      snapshots.push_back(*snap);
      other_log_files = true;
    } else if (name == kEpochFile) {
      other_log_files = true;
    }
  }
  if (ec) return cannot(dir + ": cannot list: " + ec.message());
  // A log that never received a record has an epochs file and no segment: empty, not foreign.
  if (segments.empty() && !other_log_files) {
    return cannot(dir + ": not a fastzab log directory (no log.<zxid>, snapshot.<zxid> or "
                        "epochs file)");
  }
  std::sort(segments.begin(), segments.end());
  std::sort(snapshots.begin(), snapshots.end());
  return Listing{std::move(segments), std::move(snapshots)};
}

// The newest snapshot's header (FORMAT.md, "Snapshot file"), checked: magic, version, header
// checksum, the zxid of its name, and the cluster id when --cluster-id gave one. Its body is not
// read (it can be large); the server checks it when it loads the snapshot.
std::expected<void, Failure> check_snapshot(const std::string& path, std::uint64_t name_zxid,
                                            const DumpOptions& options) {
  auto opened = SegmentFile::open(path);
  if (!opened) return std::unexpected(opened.error());
  if (opened->size() < format::kSnapshotHeaderBytes) {
    return bad_log(path, 0, std::to_string(opened->size()) +
                                " bytes, shorter than a snapshot header");
  }
  auto head = opened->view(0, format::kSnapshotHeaderBytes);
  if (!head) return std::unexpected(head.error());
  format::SnapshotHeader header;
  switch (format::decode(std::span<const std::byte, format::kSnapshotHeaderBytes>(
                             *head, format::kSnapshotHeaderBytes),
                         header)) {
    case format::HeaderStatus::ok: break;
    case format::HeaderStatus::bad_magic:
      return cannot(path + ": not a fastzab snapshot (bad magic)");
    case format::HeaderStatus::bad_version:
      return cannot(path + ": snapshot format version or header size this build does not read");
    case format::HeaderStatus::bad_checksum:
      return bad_log(path, 0, "snapshot header checksum mismatch");
  }
  if (header.zxid != name_zxid) {
    return bad_log(path, 24, "header says zxid " + hex_zxid(header.zxid) + ", the name says " +
                                 hex_zxid(name_zxid));
  }
  if (options.cluster_id && header.cluster_id != *options.cluster_id) {
    return bad_log(path, 16, "cluster id " + std::to_string(header.cluster_id) + ", expected " +
                                 std::to_string(*options.cluster_id) + " (--cluster-id)");
  }
  return {};
}

// Checks one segment (FORMAT.md, "Segment") and prints its records; `prev_zxid` carries the
// zxid order across segments.
std::expected<void, Failure> dump_segment(const std::string& path, std::uint64_t name_zxid,
                                          const DumpOptions& options, Summary& summary,
                                          std::uint64_t& prev_zxid) {
  auto opened = SegmentFile::open(path);
  if (!opened) return std::unexpected(opened.error());
  SegmentFile& file = *opened;
  const std::uint64_t size = file.size();
  if (size < format::kSegmentHeaderBytes) {
    return bad_log(path, 0, std::to_string(size) + " bytes, shorter than a segment header");
  }
  auto head = file.view(0, format::kSegmentHeaderBytes);
  if (!head) return std::unexpected(head.error());
  format::SegmentHeader header;
  switch (format::decode(std::span<const std::byte, format::kSegmentHeaderBytes>(
                             *head, format::kSegmentHeaderBytes),
                         header)) {
    case format::HeaderStatus::ok: break;
    case format::HeaderStatus::bad_magic:
      return cannot(path + ": not a fastzab log segment (bad magic)");
    case format::HeaderStatus::bad_version:
      return cannot(path + ": format version " + std::to_string(header.version) +
                    " or header size this build does not read (it reads versions " +
                    std::to_string(format::kOldestSegmentVersion) + " to " +
                    std::to_string(format::kVersion) + ")");
    case format::HeaderStatus::bad_checksum:
      return bad_log(path, 0, "segment header checksum mismatch");
  }
  if (!summary.cluster_id) summary.cluster_id = header.cluster_id;
  if (header.cluster_id != *summary.cluster_id) {
    return bad_log(path, 16,
                   "cluster id " + std::to_string(header.cluster_id) + ", expected " +
                       std::to_string(*summary.cluster_id) +
                       (options.cluster_id ? " (--cluster-id)" : " (the first segment's)"));
  }
  if (header.first_zxid != name_zxid) {
    return bad_log(path, 24, "header says first zxid " + hex_zxid(header.first_zxid) +
                                 ", the name says " + hex_zxid(name_zxid));
  }

  std::uint64_t offset = format::kSegmentHeaderBytes;
  bool first_in_segment = true;
  while (offset + format::kRecordHeaderBytes <= size) {
    auto bytes = file.view(offset, format::kRecordHeaderBytes);
    if (!bytes) return std::unexpected(bytes.error());
    format::RecordHeader rh;
    const format::RecordStatus status = format::decode_record_header(*bytes, header.version, rh);
    if (status == format::RecordStatus::end) break;
    if (status == format::RecordStatus::bad_header) {
      const bool crc_ok = load_u32(*bytes) == crc32c(*bytes + 4, format::kRecordHeaderBytes - 4);
      return bad_log(path, offset, crc_ok ? "record header has an unknown type or a non-zero "
                                            "reserved field (format version 1)"
                                          : "record header checksum mismatch");
    }
    if (rh.length > format::kMaxRecordBytes ||
        offset + format::kRecordHeaderBytes + rh.length > size) {
      return bad_log(path, offset, "record length " + std::to_string(rh.length) +
                                       " runs past the end of the file (zxid " +
                                       hex_zxid(rh.zxid) + ")");
    }
    auto record = file.view(offset, format::kRecordHeaderBytes + rh.length);
    if (!record) return std::unexpected(record.error());
    const std::byte* payload = *record + format::kRecordHeaderBytes;
    if (crc32c(payload, rh.length) != rh.payload_crc) {
      return bad_log(path, offset, "payload checksum mismatch (zxid " + hex_zxid(rh.zxid) + ")");
    }
    if (rh.zxid <= prev_zxid) {
      return bad_log(path, offset, "zxid " + hex_zxid(rh.zxid) + " not above the previous " +
                                       hex_zxid(prev_zxid));
    }
    if (first_in_segment && rh.zxid != name_zxid) {
      return bad_log(path, offset, "first record has zxid " + hex_zxid(rh.zxid) +
                                       ", the name says " + hex_zxid(name_zxid));
    }
    const bool superseded = summary.snapshot_zxid && rh.zxid <= *summary.snapshot_zxid;
    print_record(rh, payload, options.payload, superseded);
    if (superseded) ++summary.superseded;
    first_in_segment = false;
    prev_zxid = rh.zxid;
    if (summary.records++ == 0) summary.first_zxid = rh.zxid;
    summary.last_zxid = rh.zxid;
    offset += format::kRecordHeaderBytes + rh.length;
  }
  // After the last record only zeros may follow (the preallocated rest of the file).
  for (std::uint64_t at = offset; at < size;) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(size - at, 1u << 20));
    auto bytes = file.view(at, n);
    if (!bytes) return std::unexpected(bytes.error());
    const std::byte* nonzero =
        std::find_if(*bytes, *bytes + n, [](std::byte b) { return b != std::byte{0}; });
    if (nonzero != *bytes + n) {
      const std::uint64_t first = at + static_cast<std::uint64_t>(nonzero - *bytes);
      return bad_log(path, offset,
                     offset + format::kRecordHeaderBytes > size
                         ? "partial record header"
                         : "non-zero bytes after the last record (the first at offset " +
                               std::to_string(first) + ")");
    }
    at += n;
  }
  ++summary.segments;
  return {};
}

int dump(const DumpOptions& options) {
  auto listing = list_segments(options.dir);
  Summary summary;
  summary.cluster_id = options.cluster_id;
  std::optional<Failure> failure;
  if (!listing) {
    failure = listing.error();
  } else if (!listing->snapshots.empty()) {
    const std::uint64_t z = listing->snapshots.back();
    char name[40];
    std::snprintf(name, sizeof name, "snapshot.%016" PRIx64, z);
    if (auto r = check_snapshot(options.dir + "/" + name, z, options); !r) {
      failure = r.error();
    } else {
      summary.snapshot_zxid = z;
    }
  }
  if (!failure) {
    std::uint64_t prev_zxid = 0;
    for (std::uint64_t z : listing->segments) {
      char name[32];
      std::snprintf(name, sizeof name, "log.%016" PRIx64, z);
      auto r = dump_segment(options.dir + "/" + name, z, options, summary, prev_zxid);
      if (!r) {
        failure = r.error();
        break;
      }
    }
  }
  if (std::fflush(stdout) != 0 || std::ferror(stdout) != 0) {
    std::fprintf(stderr, "fastzab-log: writing the records to stdout failed: %s\n",
                 std::strerror(errno));
    return kExitCannot;
  }
  if (failure) {
    std::fprintf(stderr, "fastzab-log: %s\n", failure->message.c_str());
    return failure->exit_code;
  }
  std::string snapshot;
  if (summary.snapshot_zxid) {
    snapshot = "; newest snapshot " + hex_zxid(*summary.snapshot_zxid) + ": " +
               std::to_string(summary.superseded) + " records at or below it are superseded";
  }
  if (summary.records == 0) {
    std::fprintf(stderr, "fastzab-log: %s: no records%s\n", options.dir.c_str(), snapshot.c_str());
  } else {
    std::fprintf(stderr,
                 "fastzab-log: %s: %" PRIu64 " records in %zu segments, zxid %s to %s, "
                 "cluster id %" PRIu64 "%s\n",
                 options.dir.c_str(), summary.records, summary.segments,
                 hex_zxid(summary.first_zxid).c_str(), hex_zxid(summary.last_zxid).c_str(),
                 *summary.cluster_id, snapshot.c_str());
  }
  return kExitGood;
}

// A u64 in decimal or 0x-hexadecimal (a cluster id is often written either way); no sign, no
// octal, no trailing characters.
std::optional<std::uint64_t> parse_u64(std::string_view s) {
  int base = 10;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    s.remove_prefix(2);
    base = 16;
  }
  std::uint64_t v = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

constexpr const char* kDumpHelp =
    "Prints every record of the log in DIR, in zxid order, one line each:\n"
    "  0x<zxid, 16 hex digits> <payload bytes> 0x<CRC32C of the payload, 8 hex digits>\n"
    "and nothing else on stdout (a summary goes to stderr). A record at or below the newest\n"
    "snapshot's zxid is superseded by it (a server starts from the snapshot): its line ends in\n"
    "the word 'superseded' (after the payload with --payload), and the summary counts them.\n"
    "Every segment header, record header and payload checksum is verified, as are zxid order\n"
    "and the zero fill after the last record, and the newest snapshot's header. The directory\n"
    "is only read: unlike a server opening the log, this never cuts or rewrites anything. The\n"
    "epochs file and snapshot bodies are not checked. Run it on a log no server is writing: a\n"
    "record being written would show up as a bad tail.";

constexpr const char* kExitHelp =
    "Exit status:\n"
    "  0  every record is good\n"
    "  1  a bad record, or non-zero bytes after the last one: stderr names the file, the byte\n"
    "     offset and what is wrong; the records before it are printed. A torn tail left by a\n"
    "     crash is reported too (a server opening the log would cut it), because this is an\n"
    "     inspection tool.\n"
    "  2  a bad command line, or DIR is missing, unreadable or not a fastzab log directory.";

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Inspects a fastzab log directory without changing it.", "fastzab-log"};
  app.require_subcommand(1);
  app.footer(kExitHelp);

  DumpOptions options;
  std::string cluster_id_text;
  CLI::App* dump_cmd = app.add_subcommand("dump", "List and verify every record of a log");
  dump_cmd->footer(std::string(kDumpHelp) + "\n\n" + kExitHelp);
  dump_cmd->add_option("DIR", options.dir, "The log directory")->required()->type_name("");
  CLI::Option* cluster_id_option = dump_cmd->add_option(
      "--cluster-id", cluster_id_text,
      "The cluster id every segment must carry (decimal or 0x-hex); default: the first "
      "segment's")
      ->type_name("ID");
  dump_cmd->add_flag("--payload", options.payload,
                     "Also print each payload in hex, as a fourth field ('-' when empty)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // CLI11 exits 1xx on a bad command line; 2 is the usual status for that (and 1 here means a
    // bad log). --help is a ParseError with status 0.
    return app.exit(e) == 0 ? kExitGood : kExitCannot;
  }
  if (cluster_id_option->count() > 0) {
    options.cluster_id = parse_u64(cluster_id_text);
    if (!options.cluster_id) {
      std::fprintf(stderr, "fastzab-log: --cluster-id: '%s' is not a 64-bit unsigned number\n",
                   cluster_id_text.c_str());
      return kExitCannot;
    }
  }
  return dump(options);
}
