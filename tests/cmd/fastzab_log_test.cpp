// `fastzab-log dump` (engine/cmd/fastzab_log.cpp), run as a separate process on logs written
// with the real log::Log: the exact stdout lines, exit status 1 naming file and offset for a bad
// record or a torn tail, status 2 for what is not a log and for a bad command line, and a
// directory left byte for byte as it was.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "log/crc32c.h"
#include "log/format.h"
#include "log/log.h"

extern char** environ;

namespace fastzab::log {
namespace {

constexpr std::uint64_t kClusterId = 7;

std::uint64_t zxid(std::uint64_t epoch, std::uint64_t counter) { return epoch << 32 | counter; }

std::string hex16(std::uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%016" PRIx64, v);
  return buf;
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A directory from mkdtemp, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/fastzab_log_cmd_test.XXXXXX";
    if (::mkdtemp(tmpl) != nullptr) path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct ToolRun {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs the fastzab-log binary meson built (FASTZAB_LOG_BIN) with `args`.
ToolRun run_tool(const std::vector<std::string>& args) {
  const char* bin = std::getenv("FASTZAB_LOG_BIN");
  EXPECT_NE(bin, nullptr) << "FASTZAB_LOG_BIN is not set (meson test sets it)";
  if (bin == nullptr) return {};
  TempDir io;
  const std::string out_path = io.path() + "/out";
  const std::string err_path = io.path() + "/err";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  std::vector<char*> argv{const_cast<char*>(bin)};
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, bin, &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  EXPECT_EQ(rc, 0) << "cannot start " << bin;
  if (rc != 0) return {};
  int status = 0;
  EXPECT_EQ(::waitpid(pid, &status, 0), pid);
  ToolRun r;
  EXPECT_TRUE(WIFEXITED(status)) << "fastzab-log did not exit normally";
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = read_all(out_path);
  r.err = read_all(err_path);
  return r;
}

// Every file of a directory and its bytes: to show that the tool changed nothing.
std::map<std::string, std::string> contents(const std::string& dir) {
  std::map<std::string, std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    files[e.path().filename().string()] = read_all(e.path().string());
  }
  return files;
}

std::vector<std::byte> payload_of(std::size_t length, std::size_t seed) {
  std::vector<std::byte> p(length);
  for (std::size_t i = 0; i < length; ++i) p[i] = static_cast<std::byte>((i * 31 + seed) & 0xff);
  return p;
}

std::string expected_line(std::uint64_t z, const std::vector<std::byte>& payload) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "0x%016" PRIx64 " %zu 0x%08" PRIx32 "\n", z, payload.size(),
                crc32c(payload.data(), payload.size()));
  return buf;
}

struct Written {
  std::uint64_t zxid;
  std::vector<std::byte> payload;
};

// Writes `records` with log::Log (small segments, so that they span several), flushes, closes.
void write_log(const std::string& dir, const std::vector<Written>& records,
               std::size_t* segments = nullptr) {
  Options o;
  o.cluster_id = kClusterId;
  o.segment_bytes = 4096;
  o.max_record_bytes = 1024;
  auto log = Log::open(dir, o);
  ASSERT_TRUE(log.has_value()) << log.error().to_string();
  for (const Written& w : records) {
    auto r = (*log)->append(w.zxid, w.payload);
    ASSERT_TRUE(r.has_value()) << r.error().to_string();
  }
  auto f = (*log)->flush();
  ASSERT_TRUE(f.has_value()) << f.error().to_string();
  if (segments != nullptr) *segments = (*log)->segment_count();
}

// Three records in one segment: 10, 20 and 30 payload bytes.
std::vector<Written> three_records() {
  return {{zxid(1, 1), payload_of(10, 1)}, {zxid(1, 2), payload_of(20, 2)},
          {zxid(1, 3), payload_of(30, 3)}};
}

void flip_byte(const std::string& path, std::uint64_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  ASSERT_TRUE(f) << path;
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.get(c);
  f.seekp(static_cast<std::streamoff>(offset));
  f.put(static_cast<char>(c ^ 0x5a));
}

// ---------------------------------------------------------------------------------------------

TEST(FastzabLogDump, PrintsEveryRecordInZxidOrderAcrossSegments) {
  TempDir dir;
  std::vector<Written> records;
  std::uint64_t counter = 0;
  for (std::size_t i = 0; i < 30; ++i) {
    // An empty payload, lengths up to 900 bytes, and a new epoch halfway.
    const std::uint64_t epoch = i < 15 ? 1 : 2;
    if (i == 15) counter = 0;
    records.push_back({zxid(epoch, ++counter), payload_of((i * 137) % 901, i)});
  }
  std::size_t segments = 0;
  write_log(dir.path(), records, &segments);
  ASSERT_GT(segments, 3u) << "the test wants records in several segments";
  const auto before = contents(dir.path());

  const ToolRun r = run_tool({"dump", dir.path()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::string expected;
  for (const Written& w : records) expected += expected_line(w.zxid, w.payload);
  EXPECT_EQ(r.out, expected);
  EXPECT_NE(r.err.find("30 records in " + std::to_string(segments) + " segments"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(contents(dir.path()), before);
}

TEST(FastzabLogDump, PayloadFlagAddsTheBytesInHex) {
  TempDir dir;
  const std::vector<std::byte> abc{std::byte{'a'}, std::byte{'b'}, std::byte{'c'}};
  write_log(dir.path(), {{zxid(1, 1), abc}, {zxid(1, 2), {}}});
  const ToolRun r = run_tool({"dump", "--payload", dir.path()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // FORMAT.md's worked example: CRC32C("abc") = 0x364B3FB7.
  EXPECT_EQ(r.out, "0x0000000100000001 3 0x364b3fb7 616263\n"
                   "0x0000000100000002 0 0x00000000 -\n");
}

TEST(FastzabLogDump, CorruptPayloadIsStatusOneNamingFileAndOffset) {
  TempDir dir;
  const auto records = three_records();
  write_log(dir.path(), records);
  const std::string segment = dir.path() + "/log." + hex16(zxid(1, 1));
  // Record 2 starts after the segment header and record 1; flip a byte of its payload.
  const std::uint64_t record2 = format::kSegmentHeaderBytes + format::kRecordHeaderBytes + 10;
  flip_byte(segment, record2 + format::kRecordHeaderBytes + 5);
  const auto before = contents(dir.path());

  const ToolRun r = run_tool({"dump", dir.path()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "fastzab-log: " + segment + ": offset " + std::to_string(record2) +
                       ": payload checksum mismatch (zxid 0x0000000100000002)\n");
  // The records before the bad one are printed.
  EXPECT_EQ(r.out, expected_line(records[0].zxid, records[0].payload));
  EXPECT_EQ(contents(dir.path()), before);
}

TEST(FastzabLogDump, CorruptRecordHeaderIsStatusOne) {
  TempDir dir;
  write_log(dir.path(), three_records());
  const std::string segment = dir.path() + "/log." + hex16(zxid(1, 1));
  flip_byte(segment, format::kSegmentHeaderBytes + 9);  // record 1's zxid
  const ToolRun r = run_tool({"dump", dir.path()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "fastzab-log: " + segment + ": offset 64: record header checksum mismatch\n");
  EXPECT_EQ(r.out, "");
}

// A crash can leave part of a batch behind the last good record. The server's recovery cuts
// such a torn tail; the inspection tool reports it.
TEST(FastzabLogDump, TornTailIsReported) {
  TempDir dir;
  const auto records = three_records();
  write_log(dir.path(), records);
  const std::string segment = dir.path() + "/log." + hex16(zxid(1, 1));
  const std::uint64_t end = format::kSegmentHeaderBytes + 3 * format::kRecordHeaderBytes + 60;
  flip_byte(segment, end + 100);
  const auto before = contents(dir.path());

  const ToolRun r = run_tool({"dump", dir.path()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "fastzab-log: " + segment + ": offset " + std::to_string(end) +
                       ": non-zero bytes after the last record (the first at offset " +
                       std::to_string(end + 100) + ")\n");
  std::string expected;
  for (const Written& w : records) expected += expected_line(w.zxid, w.payload);
  EXPECT_EQ(r.out, expected);
  EXPECT_EQ(contents(dir.path()), before);
}

// Issue 10, bug 6: records at or below the newest snapshot's zxid are superseded by it (a
// server starts from the snapshot). A log written before Log::reset_to_snapshot(), or left by a
// crash between saving a received snapshot and dropping the old records, still holds some: a
// zombie leader's uncommitted writes of an old epoch, say. The dump marks each, and counts them.
TEST(FastzabLogDump, RecordsAtOrBelowTheNewestSnapshotAreMarkedSuperseded) {
  TempDir dir;
  const auto records = three_records();
  write_log(dir.path(), records);
  {
    Options o;
    o.cluster_id = kClusterId;
    o.segment_bytes = 4096;
    o.max_record_bytes = 1024;
    auto log = Log::open(dir.path(), o);
    ASSERT_TRUE(log.has_value()) << log.error().to_string();
    ASSERT_TRUE((*log)->save_snapshot(zxid(1, 1), payload_of(5, 9)));
    ASSERT_TRUE((*log)->save_snapshot(zxid(1, 2), payload_of(5, 9)));  // the newest
  }
  const auto before = contents(dir.path());
  const ToolRun r = run_tool({"dump", dir.path()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto line = [&](std::size_t i, const char* mark) {
    std::string l = expected_line(records[i].zxid, records[i].payload);
    return l.substr(0, l.size() - 1) + mark + "\n";
  };
  EXPECT_EQ(r.out, line(0, " superseded") + line(1, " superseded") + line(2, ""));
  EXPECT_NE(r.err.find("3 records in 1 segments, zxid 0x0000000100000001 to 0x0000000100000003, "
                       "cluster id 7; newest snapshot 0x0000000100000002: 2 records at or below "
                       "it are superseded"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(contents(dir.path()), before);

  // With --payload the mark comes after the payload.
  const ToolRun p = run_tool({"dump", "--payload", dir.path()});
  EXPECT_EQ(p.exit_code, 0) << p.err;
  auto with_payload = [&](std::size_t i, const char* mark) {
    std::string l = expected_line(records[i].zxid, records[i].payload);
    l.pop_back();
    l += ' ';
    for (std::byte b : records[i].payload) {
      char h[3];
      std::snprintf(h, sizeof h, "%02x", static_cast<unsigned>(b));
      l += h;
    }
    return l + mark + "\n";
  };
  EXPECT_EQ(p.out, with_payload(0, " superseded") + with_payload(1, " superseded") +
                       with_payload(2, ""));
}

// After Log::reset_to_snapshot() (what a follower now does when it installs a snapshot) no
// record is left below the snapshot, so the dump lists only the records after it.
TEST(FastzabLogDump, AfterResetToSnapshotOnlyNewerRecordsAreListed) {
  TempDir dir;
  write_log(dir.path(), three_records());
  const std::vector<std::byte> later = payload_of(12, 4);
  {
    Options o;
    o.cluster_id = kClusterId;
    o.segment_bytes = 4096;
    o.max_record_bytes = 1024;
    auto log = Log::open(dir.path(), o);
    ASSERT_TRUE(log.has_value()) << log.error().to_string();
    ASSERT_TRUE((*log)->save_snapshot(zxid(2, 5), payload_of(5, 9)));
    ASSERT_TRUE((*log)->reset_to_snapshot(zxid(2, 5)));
    ASSERT_TRUE((*log)->append(zxid(2, 6), later));
    ASSERT_TRUE((*log)->flush());
  }
  const ToolRun r = run_tool({"dump", dir.path()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, expected_line(zxid(2, 6), later));
  EXPECT_NE(r.err.find("0 records at or below it are superseded"), std::string::npos) << r.err;
}

TEST(FastzabLogDump, DamagedNewestSnapshotHeaderIsStatusOne) {
  TempDir dir;
  write_log(dir.path(), three_records());
  {
    Options o;
    o.cluster_id = kClusterId;
    o.segment_bytes = 4096;
    o.max_record_bytes = 1024;
    auto log = Log::open(dir.path(), o);
    ASSERT_TRUE(log.has_value()) << log.error().to_string();
    ASSERT_TRUE((*log)->save_snapshot(zxid(1, 2), payload_of(5, 9)));
  }
  const std::string snap = dir.path() + "/snapshot." + hex16(zxid(1, 2));
  flip_byte(snap, 30);
  const ToolRun r = run_tool({"dump", dir.path()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "fastzab-log: " + snap + ": offset 0: snapshot header checksum mismatch\n");
}

TEST(FastzabLogDump, EmptyLogPrintsNothing) {
  TempDir dir;
  write_log(dir.path(), {});  // leaves just the epochs file
  const ToolRun r = run_tool({"dump", dir.path()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "");
}

TEST(FastzabLogDump, ClusterIdOption) {
  TempDir dir;
  write_log(dir.path(), three_records());
  EXPECT_EQ(run_tool({"dump", "--cluster-id", "7", dir.path()}).exit_code, 0);
  EXPECT_EQ(run_tool({"dump", "--cluster-id", "0x7", dir.path()}).exit_code, 0);
  const ToolRun r = run_tool({"dump", "--cluster-id", "8", dir.path()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "fastzab-log: " + dir.path() + "/log." + hex16(zxid(1, 1)) +
                       ": offset 16: cluster id 7, expected 8 (--cluster-id)\n");
  EXPECT_EQ(r.out, "");
}

TEST(FastzabLogDump, NotALogDirectoryIsStatusTwo) {
  TempDir dir;
  std::ofstream(dir.path() + "/notes.txt") << "hello\n";
  const ToolRun r = run_tool({"dump", dir.path()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "fastzab-log: " + dir.path() +
                       ": not a fastzab log directory (no log.<zxid>, snapshot.<zxid> or "
                       "epochs file)\n");
  EXPECT_EQ(r.out, "");
}

TEST(FastzabLogDump, MissingDirectoryIsStatusTwo) {
  TempDir dir;
  const ToolRun r = run_tool({"dump", dir.path() + "/absent"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "fastzab-log: " + dir.path() + "/absent: no such directory\n");
  const ToolRun file = run_tool({"dump", "/etc/hostname"});
  EXPECT_EQ(file.exit_code, 2);
  EXPECT_EQ(file.err, "fastzab-log: /etc/hostname: not a directory\n");
}

TEST(FastzabLogDump, WrongMagicIsStatusTwo) {
  TempDir dir;
  const std::string segment = dir.path() + "/log." + hex16(1);
  std::ofstream(segment) << std::string(100, 'x');
  const ToolRun r = run_tool({"dump", dir.path()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "fastzab-log: " + segment + ": not a fastzab log segment (bad magic)\n");
}

TEST(FastzabLogCommandLine, BadCommandLineIsStatusTwo) {
  TempDir dir;
  write_log(dir.path(), three_records());
  EXPECT_EQ(run_tool({}).exit_code, 2);                                    // no subcommand
  EXPECT_EQ(run_tool({"dump"}).exit_code, 2);                              // no DIR
  EXPECT_EQ(run_tool({"list", dir.path()}).exit_code, 2);                  // unknown subcommand
  EXPECT_EQ(run_tool({"dump", "--verbose", dir.path()}).exit_code, 2);     // unknown option
  EXPECT_EQ(run_tool({"dump", dir.path(), dir.path()}).exit_code, 2);      // two DIRs
  const ToolRun bad_id = run_tool({"dump", "--cluster-id", "seven", dir.path()});
  EXPECT_EQ(bad_id.exit_code, 2);
  EXPECT_EQ(bad_id.err, "fastzab-log: --cluster-id: 'seven' is not a 64-bit unsigned number\n");
  EXPECT_EQ(run_tool({"dump", "--cluster-id", "-7", dir.path()}).exit_code, 2);
}

TEST(FastzabLogCommandLine, HelpSaysATornTailIsReported) {
  const ToolRun r = run_tool({"dump", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("torn tail"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--cluster-id"), std::string::npos) << r.out;
  EXPECT_EQ(run_tool({"--help"}).exit_code, 0);
}

}  // namespace
}  // namespace fastzab::log
