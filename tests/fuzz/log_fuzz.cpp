// libFuzzer target for the log's reader and recovery (log/log*.*, FORMAT.md "Recovery"). Each input
// is a whole log directory (log_fuzz_input.h: segments, epoch file, snapshots, leftovers). The
// harness writes those files into a directory of its own on tmpfs (/dev/shm/fastzab-log-fuzz.<pid>,
// or $FASTZAB_LOG_FUZZ_DIR.<pid>), then opens it as a Log with recovery. open() must fail with an
// error about the files, or give a consistent log:
//   * its report agrees with the log (records, first and last zxid, segments);
//   * read() returns exactly that many records, zxids strictly increasing, each one locate()s;
//   * latest_snapshot() returns the newest snapshot or an error, never a crash;
//   * optionally (options bit 2): a record appended after the last one and new epochs become
//     durable, and a second open (default recovery) finds everything again with nothing to cut.
// A broken property aborts with the reason; a crash or a sanitizer report is a bug in log/.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "log/log.h"
#include "tests/fuzz/log_fuzz_input.h"

namespace {

namespace fl = fastzab::log;
namespace in = fastzab::fuzz::log_input;

[[noreturn]] void broken(const char* what, const std::string& detail = {}) {
  std::fprintf(stderr, "log_fuzz: property broken: %s%s%s\n", what, detail.empty() ? "" : ": ",
               detail.c_str());
  std::abort();
}
#define LOG_FUZZ_CHECK(cond, detail) \
  do {                               \
    if (!(cond)) broken(#cond, detail); \
  } while (0)

std::string hex(std::uint64_t v) { return "0x" + in::hex16(v); }

void remove_dir_contents(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return;
  while (const dirent* e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    ::unlink((dir + "/" + e->d_name).c_str());
  }
  ::closedir(d);
}

// Never destroyed: the exit handler that removes the directory runs after static destructors
// of objects constructed before it was registered.
const std::string& scratch_dir() {
  static const std::string* dir = [] {
    const char* base = std::getenv("FASTZAB_LOG_FUZZ_DIR");
    std::string prefix = base != nullptr ? base : "";
    if (prefix.empty()) {
      struct stat st{};
      prefix = ::stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm/fastzab-log-fuzz"
                                                                   : "/tmp/fastzab-log-fuzz";
    }
    auto* d = new std::string(prefix + "." + std::to_string(::getpid()));
    ::mkdir(d->c_str(), 0700);
    return d;
  }();
  static const bool cleanup_registered = std::atexit([] {
    remove_dir_contents(*dir);
    ::rmdir(dir->c_str());
  }) == 0;
  (void)cleanup_registered;
  return *dir;
}

void write_file(const std::string& path, const std::vector<std::byte>& bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) broken("cannot create a scratch file", path + ": " + std::strerror(errno));
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n <= 0) broken("cannot write a scratch file", path);
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
}

bool expected_open_error(fl::errc c) {
  // What files can be wrong about. (io_error, in_use, invalid_argument would be the harness's
  // or the log's own fault here: tmpfs, one Log at a time, fixed options.)
  return c == fl::errc::not_a_log || c == fl::errc::bad_version || c == fl::errc::wrong_cluster ||
         c == fl::errc::corrupt;
}

// Checks a freshly opened log against its report and reads everything back.
std::vector<fl::Record> check_log(fl::Log& log) {
  const fl::RecoveryReport& rep = log.recovery();
  LOG_FUZZ_CHECK(!log.poisoned(), "");
  LOG_FUZZ_CHECK(rep.records == log.record_count(), std::to_string(rep.records));
  LOG_FUZZ_CHECK(rep.segments == log.segment_count(), std::to_string(rep.segments));
  LOG_FUZZ_CHECK(rep.last_zxid == log.last_zxid(), hex(rep.last_zxid));
  LOG_FUZZ_CHECK(log.durable_zxid() == log.last_zxid(), hex(log.durable_zxid()));
  LOG_FUZZ_CHECK(rep.first_zxid == log.first_zxid(), hex(rep.first_zxid));
  LOG_FUZZ_CHECK((rep.records == 0) == (rep.last_zxid == 0), hex(rep.last_zxid));
  LOG_FUZZ_CHECK(!(rep.torn_tail_cut && rep.corruption_cut), rep.cut_reason);

  auto all = log.read(0, UINT64_MAX);
  LOG_FUZZ_CHECK(all.has_value(), all ? "" : all.error().to_string());
  LOG_FUZZ_CHECK(all->size() == rep.records, std::to_string(all->size()));
  std::uint64_t prev = 0;
  for (const fl::Record& r : *all) {
    LOG_FUZZ_CHECK(r.zxid > prev, hex(r.zxid));
    prev = r.zxid;
    auto pos = log.locate(r.zxid);
    LOG_FUZZ_CHECK(pos.has_value(), pos ? "" : pos.error().to_string());
    LOG_FUZZ_CHECK(pos->has_value(), hex(r.zxid));
    LOG_FUZZ_CHECK((*pos)->length == r.payload.size(), hex(r.zxid));
  }
  if (!all->empty()) {
    LOG_FUZZ_CHECK(all->front().zxid == rep.first_zxid, hex(all->front().zxid));
    LOG_FUZZ_CHECK(all->back().zxid == rep.last_zxid, hex(all->back().zxid));
    // A range read returns at least one record even when max_bytes is smaller than it.
    auto one = log.read(all->back().zxid, UINT64_MAX, 0);
    LOG_FUZZ_CHECK(one.has_value() && one->size() == 1, hex(all->back().zxid));
  }
  // Nothing to find above the last record.
  if (rep.last_zxid < UINT64_MAX) {
    auto none = log.locate(rep.last_zxid + 1);
    LOG_FUZZ_CHECK(none.has_value() && !none->has_value(), hex(rep.last_zxid + 1));
  }

  auto snap = log.latest_snapshot();
  if (snap && snap->has_value()) {
    const auto zxids = log.snapshot_zxids();
    LOG_FUZZ_CHECK(!zxids.empty() && (*snap)->zxid == zxids.back(), hex((*snap)->zxid));
  }
  return std::move(*all);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const in::Directory input = in::unpack(data, size);
  const std::string& dir = scratch_dir();
  remove_dir_contents(dir);
  for (const in::File& f : input.files) write_file(dir + "/" + f.name, f.bytes);

  const fl::Options opt = in::log_options(input.options);
  std::vector<fl::Record> records;
  fl::Epochs epochs;
  std::uint64_t appended = 0;
  {
    auto log = fl::Log::open(dir, opt);
    if (!log) {
      LOG_FUZZ_CHECK(expected_open_error(log.error().code), log.error().to_string());
      LOG_FUZZ_CHECK(!log.error().detail.empty(), log.error().to_string());
      return 0;
    }
    records = check_log(**log);
    epochs = (*log)->epochs();
    if (!(input.options & in::kOptAppendAndReopen)) return 0;
    // The log must take new records after whatever recovery did, and keep them.
    if ((*log)->last_zxid() == UINT64_MAX) return 0;
    appended = (*log)->last_zxid() + 1;
    const std::byte payload[3] = {std::byte{'n'}, std::byte{'e'}, std::byte{'w'}};
    auto a = (*log)->append(appended, payload);
    LOG_FUZZ_CHECK(a.has_value(), a ? "" : a.error().to_string());
    auto f = (*log)->flush();
    LOG_FUZZ_CHECK(f.has_value() && *f == appended, f ? hex(*f) : f.error().to_string());
    epochs = fl::Epochs{epochs.accepted + 1, epochs.current};
    auto w = (*log)->write_epochs(epochs);
    LOG_FUZZ_CHECK(w.has_value(), w ? "" : w.error().to_string());
    records.push_back(fl::Record{appended, {payload, payload + 3}});
  }
  fl::Options again = opt;
  again.recovery = fl::RecoveryMode::cut_torn_tail;
  auto log = fl::Log::open(dir, again);
  LOG_FUZZ_CHECK(log.has_value(), log ? "" : log.error().to_string());
  const fl::RecoveryReport& rep = (*log)->recovery();
  LOG_FUZZ_CHECK(!rep.torn_tail_cut && !rep.corruption_cut, rep.cut_file + ": " + rep.cut_reason);
  LOG_FUZZ_CHECK((*log)->epochs() == epochs, std::to_string((*log)->epochs().accepted));
  const std::vector<fl::Record> reread = check_log(**log);
  LOG_FUZZ_CHECK(reread.size() == records.size(), std::to_string(reread.size()));
  for (std::size_t i = 0; i < reread.size(); ++i) {
    LOG_FUZZ_CHECK(reread[i].zxid == records[i].zxid, hex(reread[i].zxid));
    LOG_FUZZ_CHECK(reread[i].payload == records[i].payload, hex(reread[i].zxid));
  }
  return 0;
}
