// Writes the seed-* inputs of corpus/log/: log directories made by the real Log (the same options
// as log_fuzz), packed as log_fuzz_input.h describes, plus hand-made damage of the kinds FORMAT.md
// names (torn tail, bit flips before the tail, wrong cluster, short files, torn epoch slots, the
// previous 48-byte epoch file, leftovers). Run by hand after a format change:
//
//   build/tests/fuzz/make_log_corpus tests/fuzz/corpus/log
//
// It replaces the seed-* files there and leaves crash-* files alone.
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "log/crc32c.h"
#include "log/log.h"
#include "tests/fuzz/log_fuzz_input.h"

namespace {

namespace fl = fastzab::log;
namespace in = fastzab::fuzz::log_input;
using Bytes = std::vector<std::byte>;

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "make_log_corpus: %s\n", what.c_str());
  std::exit(1);
}

template <class R>
void must(const R& r, const char* what) {
  if (!r) die(std::string(what) + ": " + r.error().to_string());
}

std::string temp_dir() {
  std::string t = "/dev/shm/fastzab-make-log-corpus.XXXXXX";
  struct stat st{};
  if (::stat("/dev/shm", &st) != 0) t = "/tmp/fastzab-make-log-corpus.XXXXXX";
  if (::mkdtemp(t.data()) == nullptr) die("mkdtemp failed");
  return t;
}

std::vector<std::string> names_in(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) die("cannot list " + dir);
  while (const dirent* e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) out.push_back(e->d_name);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

Bytes read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::vector<char> c((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  Bytes b(c.size());
  std::memcpy(b.data(), c.data(), c.size());
  return b;
}

void clear_dir(const std::string& dir) {
  for (const std::string& n : names_in(dir)) ::unlink((dir + "/" + n).c_str());
}

// A directory's files as the log left them (the lock file is not part of the state).
std::map<std::string, Bytes> snapshot_dir(const std::string& dir) {
  std::map<std::string, Bytes> files;
  for (const std::string& n : names_in(dir)) {
    if (n != "lock") files[n] = read_all(dir + "/" + n);
  }
  return files;
}

Bytes payload(std::uint64_t zxid, std::size_t size) {
  Bytes b(size);
  for (std::size_t i = 0; i < size; ++i) b[i] = static_cast<std::byte>('a' + (zxid + i) % 26);
  return b;
}

struct Build {
  std::uint8_t options = 0;
  int records = 0;
  std::size_t record_bytes = 20;
  std::uint64_t first_zxid = 0x0000000100000001ull;
  int epoch_writes = 0;
  bool snapshot = false;
};

// Runs the real writer in a fresh directory and returns its files.
std::map<std::string, Bytes> make(const std::string& dir, const Build& b) {
  clear_dir(dir);
  auto log = fl::Log::open(dir, in::log_options(b.options));
  must(log, "open");
  std::uint64_t z = b.first_zxid;
  for (int i = 0; i < b.records; ++i, ++z) {
    must((*log)->append(z, payload(z, b.record_bytes + static_cast<std::size_t>(i % 3))), "append");
    if (i % 4 == 3) must((*log)->flush(), "flush");
  }
  must((*log)->flush(), "flush");
  for (int e = 1; e <= b.epoch_writes; ++e) {
    must((*log)->write_epochs(fl::Epochs{static_cast<std::uint64_t>(e + 1), static_cast<std::uint64_t>(e)}),
         "write_epochs");
  }
  if (b.snapshot && b.records > 0) {
    const Bytes state = payload(7, 40);
    must((*log)->save_snapshot(b.first_zxid + static_cast<std::uint64_t>(b.records / 2), state), "snapshot");
  }
  log->reset();
  return snapshot_dir(dir);
}

// Trailing zeros of a segment are the preallocation: packed as the zero-fill flag instead.
std::size_t used_bytes(const Bytes& b) {
  std::size_t n = b.size();
  while (n > 0 && b[n - 1] == std::byte{0}) --n;
  return n;
}

std::vector<std::uint8_t> pack(std::uint8_t options, const std::map<std::string, Bytes>& files,
                               bool self_named_segments = false) {
  in::Writer w(options);
  for (const auto& [name, bytes] : files) {
    if (name.rfind("log.", 0) == 0 && name.size() == 20) {
      const std::uint64_t z = std::strtoull(name.c_str() + 4, nullptr, 16);
      Bytes used(bytes.begin(), bytes.begin() + static_cast<long>(used_bytes(bytes)));
      const bool padded = bytes.size() == in::kSegmentBytes;
      if (self_named_segments) {
        w.u8(static_cast<std::uint8_t>(in::kSegmentSelfNamed | (padded ? in::kFlag : 0)));
      } else {
        w.u8(static_cast<std::uint8_t>(in::kSegment | (padded ? in::kFlag : 0)));
        w.u64(z);
      }
      w.u16(static_cast<std::uint16_t>(used.size()));
      w.bytes(used);
    } else if (name == "epochs" && bytes.size() == in::kEpochFileBytes) {
      w.u8(in::kEpochSlots);
      for (std::size_t slot = 0; slot < 2; ++slot) {
        w.bytes(Bytes(bytes.begin() + static_cast<long>(slot * in::kEpochSlotStride),
                      bytes.begin() + static_cast<long>(slot * in::kEpochSlotStride + 64)));
      }
    } else if (name == "epochs") {
      w.u8(in::kEpochRaw);
      w.u16(static_cast<std::uint16_t>(bytes.size()));
      w.bytes(bytes);
    } else if (name.rfind("snapshot.", 0) == 0) {
      w.u8(in::kSnapshot);
      w.u64(std::strtoull(name.c_str() + 9, nullptr, 16));
      w.u16(static_cast<std::uint16_t>(bytes.size()));
      w.bytes(bytes);
    } else if (name.size() > 4 && name.ends_with(".tmp")) {
      w.u8(in::kTemp);
      w.u16(static_cast<std::uint16_t>(bytes.size()));
      w.bytes(bytes);
    } else {
      w.u8(6);
      w.u8(static_cast<std::uint8_t>(std::min<std::size_t>(bytes.size(), 255)));
      w.bytes(Bytes(bytes.begin(), bytes.begin() + static_cast<long>(std::min<std::size_t>(bytes.size(), 255))));
    }
  }
  return w.data();
}

std::string last_segment(const std::map<std::string, Bytes>& files) {
  std::string last;
  for (const auto& [name, bytes] : files) {
    if (name.rfind("log.", 0) == 0) last = name;
  }
  return last;
}
std::string first_segment(const std::map<std::string, Bytes>& files) {
  for (const auto& [name, bytes] : files) {
    if (name.rfind("log.", 0) == 0) return name;
  }
  return {};
}

// The previous 48-byte epoch file (FORMAT.md, "Previous epoch file").
Bytes legacy_epochs(std::uint64_t cluster, std::uint64_t accepted, std::uint64_t current) {
  Bytes b(48);
  std::memcpy(b.data(), "FZABEPOC", 8);
  const std::uint32_t version = 1, size = 48;
  std::memcpy(b.data() + 8, &version, 4);
  std::memcpy(b.data() + 12, &size, 4);
  std::memcpy(b.data() + 16, &cluster, 8);
  std::memcpy(b.data() + 24, &accepted, 8);
  std::memcpy(b.data() + 32, &current, 8);
  const std::uint32_t crc = fl::crc32c(b.data(), 44);
  std::memcpy(b.data() + 44, &crc, 4);
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  const std::string out = argv[1];
  ::mkdir(out.c_str(), 0755);
  for (const std::string& n : names_in(out)) {
    if (n.rfind("seed-", 0) == 0) ::unlink((out + "/" + n).c_str());
  }
  const std::string dir = temp_dir();
  int written = 0;
  auto emit = [&](const std::string& name, const std::vector<std::uint8_t>& bytes) {
    std::ofstream f(out + "/seed-" + name, std::ios::binary);
    f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    ++written;
  };

  emit("empty-dir", {0});
  emit("empty-dir-append", {in::kOptAppendAndReopen});

  // Clean logs from the writer.
  const auto one = make(dir, {.options = 0, .records = 3, .epoch_writes = 1});
  emit("one-segment", pack(0, one));
  emit("one-segment-append", pack(in::kOptAppendAndReopen, one));
  emit("one-segment-self-named", pack(0, one, true));
  const auto multi = make(dir, {.options = 0, .records = 200, .record_bytes = 30, .epoch_writes = 3,
                                .snapshot = true});
  emit("multi-segment-snapshot", pack(0, multi));
  emit("multi-segment-append", pack(in::kOptAppendAndReopen, multi));
  const auto none = make(dir, {.options = in::kOptSyncNone, .records = 150, .record_bytes = 40,
                               .epoch_writes = 2});
  emit("sync-none", pack(in::kOptSyncNone, none));
  const auto big = make(dir, {.options = 0, .records = 20, .record_bytes = 200});
  emit("large-records", pack(in::kOptAppendAndReopen, big));

  // Torn tail: the last record cut in the middle, the rest zero (the segment's preallocation).
  {
    auto f = one;
    Bytes& seg = f[last_segment(f)];
    const std::size_t used = used_bytes(seg);
    std::fill(seg.begin() + static_cast<long>(used - 7), seg.end(), std::byte{0});
    emit("torn-tail", pack(0, f));
    emit("torn-tail-append", pack(in::kOptAppendAndReopen, f));
  }
  // A bit flipped in the first record of the last segment: with records further than the tail
  // window behind it, corruption; with truncate_at_corruption, a cut.
  {
    auto f = multi;
    Bytes& seg = f[last_segment(f)];
    seg[64 + 30] ^= std::byte{0x10};
    emit("corrupt-last-segment", pack(0, f));
    emit("corrupt-last-segment-truncate", pack(in::kOptTruncateAtCorruption | in::kOptAppendAndReopen, f));
  }
  // A bit flipped in the first segment (not the last): corruption.
  {
    auto f = multi;
    Bytes& seg = f[first_segment(f)];
    seg[64 + 3] ^= std::byte{0x01};
    emit("corrupt-first-segment", pack(0, f));
    emit("corrupt-first-segment-truncate", pack(in::kOptTruncateAtCorruption, f));
    auto g = none;
    g[first_segment(g)][64 + 100] ^= std::byte{0x40};
    emit("sync-none-corrupt-first", pack(in::kOptSyncNone | in::kOptAppendAndReopen, g));
  }
  // Junk after the last record (non-zero bytes in the preallocated space).
  {
    auto f = one;
    Bytes& seg = f[last_segment(f)];
    seg[seg.size() - 1] = std::byte{0xAB};
    emit("junk-at-segment-end", pack(0, f));
  }
  // Segment header damage: wrong magic, version, cluster, name.
  {
    auto f = one;
    f[last_segment(f)][0] = std::byte{'X'};
    emit("bad-segment-magic", pack(0, f));
    auto g = one;
    g[last_segment(g)][8] = std::byte{2};
    emit("bad-segment-version", pack(0, g));
    auto h = one;
    h[last_segment(h)][16] ^= std::byte{1};
    emit("bad-segment-header-crc", pack(0, h));
    auto k = one;
    const std::string seg = last_segment(k);
    k["log.00000000000000ff"] = k[seg];
    k.erase(seg);
    emit("segment-name-mismatch", pack(0, k));
    auto s = one;
    s[last_segment(s)].resize(40);
    emit("short-segment", pack(0, s));
  }
  // Another cluster's log.
  {
    fl::Options o = in::log_options(0);
    o.cluster_id = in::kClusterId + 1;
    clear_dir(dir);
    auto log = fl::Log::open(dir, o);
    must(log, "open");
    must((*log)->append(5, payload(5, 10)), "append");
    must((*log)->flush(), "flush");
    log->reset();
    emit("wrong-cluster", pack(0, snapshot_dir(dir)));
  }
  // Epoch files: a torn slot, both slots bad, same sequences, the previous 48-byte layout,
  // odd sizes.
  {
    auto f = one;
    f["epochs"][4096 + 40] ^= std::byte{0xFF};
    emit("epochs-torn-slot", pack(0, f));
    auto g = one;
    g["epochs"][0] ^= std::byte{0xFF};
    g["epochs"][4096] ^= std::byte{0xFF};
    emit("epochs-both-bad", pack(0, g));
    auto h = one;
    std::copy(h["epochs"].begin(), h["epochs"].begin() + 64, h["epochs"].begin() + 4096);
    emit("epochs-same-sequence", pack(0, h));
    auto k = one;
    k["epochs"] = legacy_epochs(in::kClusterId, 4, 3);
    emit("epochs-legacy", pack(in::kOptAppendAndReopen, k));
    auto m = one;
    m["epochs"] = legacy_epochs(in::kClusterId + 1, 4, 3);
    emit("epochs-legacy-wrong-cluster", pack(0, m));
    auto n = one;
    n["epochs"].resize(100);
    emit("epochs-odd-size", pack(0, n));
  }
  // Snapshots: a damaged body, a header naming another zxid, no log at all.
  {
    auto f = multi;
    for (auto& [name, bytes] : f) {
      if (name.rfind("snapshot.", 0) == 0) bytes.back() ^= std::byte{1};
    }
    emit("snapshot-bad-body", pack(0, f));
    std::map<std::string, Bytes> g;
    for (const auto& [name, bytes] : multi) {
      if (name.rfind("snapshot.", 0) == 0) g["snapshot.0000000000000001"] = bytes;
      if (name == "epochs") g[name] = bytes;
    }
    emit("snapshot-name-mismatch", pack(0, g));
  }
  // Leftovers: a temp file and a stray file next to a clean log.
  {
    auto f = one;
    f["log.0000000200000001.tmp"] = payload(1, 64);
    f["stray"] = payload(2, 10);
    emit("leftovers", pack(in::kOptAppendAndReopen, f));
  }

  clear_dir(dir);
  ::rmdir(dir.c_str());
  std::printf("wrote %d seeds to %s\n", written, out.c_str());
  return 0;
}
