// The durability audit's driver (issue 10), run by tests/log/durability-audit on an ext4 file
// system of its own loop device. A kill -9 crash test cannot see a missing flush: the page cache
// outlives the process, so an fdatasync turned into a no-op passes every such test. The block
// device can see it. For each of N batches, appended and awaited one at a time through the real
// log::Log, this checks at the moment the batch is reported durable:
//
//   - that its payload is already in the loop device's backing file, at the physical place FIEMAP
//     gives for it (the image is the device's medium: what is not there has not left the page
//     cache of the file system under test), and
//   - over the N batches, that the device completed at least N flush requests (field 16 of
//     /sys/block/loopN/stat, Documentation/block/stat.rst): each fdatasync of a write on ext4
//     sends one, from the journal commit or blkdev_issue_flush, and the batches never overlap,
//     so none can share another's flush.
//
// Bytes on the device without a flush (a sync_file_range, background writeback) fail the
// second check; a flush without the bytes fails the first.
//
//   log_durability_audit DIR STAT IMAGE WRITER N
//     DIR    a new directory on the audited file system, for the log
//     STAT   /sys/block/loopN/stat of the device under it
//     IMAGE  that loop device's backing file (no offset)
//     WRITER sync | io_uring
//     N      batches to audit
// Exit: 0 pass, 1 fail, 2 bad use or a setup error, 77 skip (io_uring refused by the kernel).
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "log/format.h"
#include "log/log.h"
#include "tests/log/test_util.h"

using namespace fastzab::log;

namespace {

constexpr int kSkip = 77;
constexpr int kSetupError = 2;
constexpr std::size_t kPayloadBytes = 1500;  // not a divisor of 4096: records straddle pages
// Field 16 of the stat file, counted from 1 (stat.rst): flush requests completed.
constexpr std::size_t kFlushField = 16;

[[noreturn]] void die(int code, const std::string& what) {
  std::fprintf(stderr, "durability audit: %s\n", what.c_str());
  std::exit(code);
}

std::optional<std::uint64_t> flushes_completed(const std::string& stat_path) {
  std::ifstream in(stat_path);
  std::vector<std::uint64_t> fields;
  std::uint64_t v = 0;
  while (in >> v) fields.push_back(v);
  if (fields.size() < kFlushField) return std::nullopt;
  return fields[kFlushField - 1];
}

// Distinct for every zxid, and no run of zeros a fresh image could match by chance.
std::vector<std::byte> payload(std::uint64_t zxid) {
  std::vector<std::byte> p(kPayloadBytes);
  std::uint64_t s = zxid;
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (i % 8 == 0) s = fastzab::log::testing::mix(s);
    p[i] = static_cast<std::byte>((s >> (8 * (i % 8))) | 1);
  }
  return p;
}

struct Extent {
  std::uint64_t logical = 0;
  std::uint64_t physical = 0;
  std::uint64_t length = 0;
  std::uint32_t flags = 0;
};

// The file's extents as the file system holds them now. No FIEMAP_FLAG_SYNC: that would write
// the file back first and hide exactly what is audited.
std::vector<Extent> extents_of(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) die(kSetupError, path + ": open: " + std::strerror(errno));
  constexpr std::size_t kBatch = 64;
  std::vector<std::byte> buf(sizeof(fiemap) + kBatch * sizeof(fiemap_extent));
  std::vector<Extent> out;
  std::uint64_t start = 0;
  while (true) {
    std::memset(buf.data(), 0, buf.size());
    auto* fm = reinterpret_cast<fiemap*>(buf.data());
    fm->fm_start = start;
    fm->fm_length = FIEMAP_MAX_OFFSET - start;
    fm->fm_extent_count = kBatch;
    if (::ioctl(fd, FS_IOC_FIEMAP, fm) != 0) {
      die(kSetupError, path + ": FIEMAP: " + std::strerror(errno));
    }
    bool last = fm->fm_mapped_extents == 0;
    for (std::uint32_t i = 0; i < fm->fm_mapped_extents; ++i) {
      const fiemap_extent& e = fm->fm_extents[i];
      out.push_back({e.fe_logical, e.fe_physical, e.fe_length, e.fe_flags});
      start = e.fe_logical + e.fe_length;
      if ((e.fe_flags & FIEMAP_EXTENT_LAST) != 0) last = true;
    }
    if (last || fm->fm_mapped_extents < kBatch) break;
  }
  ::close(fd);
  return out;
}

// Whether the device holds `want` at byte `offset` of file `path`.
bool on_device(int image_fd, const std::string& path, std::uint64_t offset,
               const std::vector<std::byte>& want) {
  const std::vector<Extent> extents = extents_of(path);
  std::vector<std::byte> got(want.size());
  std::size_t done = 0;
  while (done < want.size()) {
    const std::uint64_t at = offset + done;
    const Extent* hit = nullptr;
    for (const Extent& e : extents) {
      if (e.logical <= at && at < e.logical + e.length) hit = &e;
    }
    // Delayed allocation or an unknown place: the bytes have no home on the device yet.
    if (hit == nullptr ||
        (hit->flags & (FIEMAP_EXTENT_DELALLOC | FIEMAP_EXTENT_UNKNOWN)) != 0) {
      return false;
    }
    if ((hit->flags & (FIEMAP_EXTENT_ENCODED | FIEMAP_EXTENT_DATA_INLINE |
                       FIEMAP_EXTENT_DATA_TAIL | FIEMAP_EXTENT_NOT_ALIGNED)) != 0) {
      die(kSetupError, path + ": an extent whose bytes are not stored as they are (FIEMAP flags " +
                           std::to_string(hit->flags) + ")");
    }
    const std::size_t n = static_cast<std::size_t>(
        std::min<std::uint64_t>(want.size() - done, hit->logical + hit->length - at));
    const ssize_t r = ::pread(image_fd, got.data() + done, n,
                              static_cast<off_t>(hit->physical + (at - hit->logical)));
    if (r != static_cast<ssize_t>(n)) die(kSetupError, "short read of the loop device's image");
    done += n;
  }
  return got == want;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 6) {
    die(kSetupError, "usage: log_durability_audit DIR STAT IMAGE sync|io_uring N");
  }
  const std::string dir = argv[1], stat_path = argv[2], image = argv[3], writer = argv[4];
  const std::uint64_t n = std::strtoull(argv[5], nullptr, 10);
  if (writer != "sync" && writer != "io_uring") die(kSetupError, "writer: sync or io_uring");
  if (n == 0) die(kSetupError, "N must be positive");
  if (!flushes_completed(stat_path)) {
    die(kSkip, stat_path + " has no flush counter (field 16; kernels before 4.19)");
  }
  const int image_fd = ::open(image.c_str(), O_RDONLY | O_CLOEXEC);
  if (image_fd < 0) die(kSetupError, image + ": open: " + std::strerror(errno));

  Options opt;
  opt.cluster_id = 10;
  opt.writer = writer == "sync" ? WriterKind::sync : WriterKind::io_uring;
  opt.sync = SyncMode::fdatasync;
  // One segment holds every batch: a new segment's creation syncs through other paths
  // (directory fsync) that would add flushes the audited batches did not earn.
  opt.segment_bytes = 4ull << 20;
  opt.max_record_bytes = kPayloadBytes;
  if ((n + 1) * (format::kRecordHeaderBytes + kPayloadBytes) + 4096 > opt.segment_bytes) {
    die(kSetupError, "N too large for one segment");
  }
  auto opened = Log::open(dir, opt);
  if (!opened) {
    if (opened.error().code == errc::unsupported) {
      die(kSkip, writer + " writer unavailable: " + opened.error().to_string());
    }
    die(kSetupError, "open: " + opened.error().to_string());
  }
  Log& log = **opened;

  // Batch 1 creates the segment file, outside the audited window.
  if (auto a = log.append(1, payload(1)); !a) die(kSetupError, "append: " + a.error().to_string());
  if (auto f = log.flush(); !f) die(kSetupError, "flush: " + f.error().to_string());

  const std::uint64_t batches_before = log.batch_stats().batches;
  const std::uint64_t flushes_before = *flushes_completed(stat_path);
  std::uint64_t on_device_at_ack = 0;
  std::uint64_t first_missing = 0;
  for (std::uint64_t zxid = 2; zxid < n + 2; ++zxid) {
    const std::vector<std::byte> p = payload(zxid);
    if (auto a = log.append(zxid, p); !a) die(1, "append: " + a.error().to_string());
    if (auto s = log.submit(); !s) die(1, "submit: " + s.error().to_string());
    while (log.durable_zxid() < zxid) {
      if (auto r = log.poll(true); !r) die(1, "poll: " + r.error().to_string());
    }
    auto pos = log.locate(zxid);
    if (!pos || !*pos) die(1, "locate " + std::to_string(zxid) + " failed after its ack");
    if (on_device(image_fd, (*pos)->file, (*pos)->offset + format::kRecordHeaderBytes, p)) {
      ++on_device_at_ack;
    } else if (first_missing == 0) {
      first_missing = zxid;
    }
  }
  const std::uint64_t flushes = *flushes_completed(stat_path) - flushes_before;
  const std::uint64_t batches = log.batch_stats().batches - batches_before;
  ::close(image_fd);

  const bool ok = batches == n && flushes >= n && on_device_at_ack == n;
  std::printf("writer=%s batches=%llu acknowledged=%llu device_flushes=%llu (need >= %llu) "
              "on_device_at_ack=%llu/%llu%s: %s\n",
              log.writer_name(), static_cast<unsigned long long>(batches),
              static_cast<unsigned long long>(n), static_cast<unsigned long long>(flushes),
              static_cast<unsigned long long>(n),
              static_cast<unsigned long long>(on_device_at_ack),
              static_cast<unsigned long long>(n),
              first_missing != 0
                  ? (" (first missing: zxid " + std::to_string(first_missing) + ")").c_str()
                  : "",
              ok ? "PASS" : "FAIL");
  if (batches != n) {
    std::printf("each wait should have been one batch: %llu batches for %llu waits\n",
                static_cast<unsigned long long>(batches), static_cast<unsigned long long>(n));
  }
  return ok ? 0 : 1;
}
