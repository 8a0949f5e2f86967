// Log append throughput and latency (Google Benchmark). Each log configuration runs beside its
// raw bound, measured in the same run: a plain pwrite (+ fdatasync) loop appending the same bytes
// per batch to a fresh file. At the end a table gives records/s and the ratio log / raw bound.
// For numbers to quote: --benchmark_repetitions=5 --benchmark_enable_random_interleaving=true.
//
// One iteration = one batch: `batch` appends of `size`-byte records and one flush() (one write and,
// with sync=fdatasync, one fdatasync). items/s = records/s; the time per iteration is the
// latency of a batch. Files go to a mkdtemp directory under /tmp (or $FASTZAB_BENCH_DIR), removed
// at exit.
//
// Epoch writes (ZAB writes the epochs four times, serially, in every failover): one iteration =
// one Log::write_epochs() (BM_WriteEpochs: an in-place slot overwrite + fdatasync), beside the
// previous method (BM_WriteEpochsAtomic: temp file, fdatasync, rename, fsync of the directory,
// through the same file layer) and the raw bound (BM_RawOverwrite: pwrite of 64 B at offset 0 of
// a written 8 KiB file + fdatasync). Each reports p50/p90/p99 of the single calls in µs; the
// table at the end gives their medians over repetitions:
//   log_bench --benchmark_filter='Epochs|RawOverwrite' --benchmark_repetitions=5
//             --benchmark_enable_random_interleaving=true
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "log/file.h"
#include "log/log.h"

namespace {

// The start of an error message that says the benchmark cannot run on this machine or file
// system (e.g. O_DIRECT on tmpfs): reported, but not a failure.
constexpr const char* kUnsupportedHere = "unsupported here: ";


std::string g_root;

std::string fresh_dir() {
  static int n = 0;
  const std::string d = g_root + "/run" + std::to_string(n++);
  std::filesystem::create_directories(d);
  return d;
}

void BM_Log(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  const auto batch = static_cast<std::size_t>(state.range(1));
  const bool sync = state.range(2) != 0;
  const bool uring = state.range(3) != 0;
  const std::string dir = fresh_dir();
  fastzab::log::Options o;
  o.cluster_id = 1;
  o.sync = sync ? fastzab::log::SyncMode::fdatasync : fastzab::log::SyncMode::none;
  o.writer = uring ? fastzab::log::WriterKind::io_uring : fastzab::log::WriterKind::sync;
  o.max_batch_bytes = 8u << 20;
  {
    auto log = fastzab::log::Log::open(dir, o);
    if (!log) {
      state.SkipWithError(log.error().to_string().c_str());
      return;
    }
    std::vector<std::byte> payload(size, std::byte{0x5a});
    std::uint64_t z = 1;
    // Create the first segment outside the timed loop (later rollovers are timed).
    if (!(*log)->append(z, payload) || !(*log)->flush()) {
      state.SkipWithError("warm-up append failed");
      return;
    }
    for (auto _ : state) {
      for (std::size_t i = 0; i < batch; ++i) {
        if (!(*log)->append(++z, payload)) {
          state.SkipWithError("append failed");
          break;
        }
      }
      auto d = (*log)->flush();
      if (!d) {
        state.SkipWithError(d.error().to_string().c_str());
        break;
      }
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * batch));
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * batch * size));
    benchmark::DoNotOptimize(z);
  }
  std::filesystem::remove_all(dir);
}

// The raw bound: the bytes the log would write (record headers included), by pwrite +
// fdatasync to an ordinary appended file.
void BM_Raw(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  const auto batch = static_cast<std::size_t>(state.range(1));
  const bool sync = state.range(2) != 0;
  const std::string dir = fresh_dir();
  const std::string path = dir + "/raw";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    state.SkipWithError("open failed");
    return;
  }
  std::vector<char> buf(batch * (size + 24), 'r');
  off_t off = 0;
  for (auto _ : state) {
    if (::pwrite(fd, buf.data(), buf.size(), off) != static_cast<ssize_t>(buf.size())) {
      state.SkipWithError("pwrite failed");
      break;
    }
    off += static_cast<off_t>(buf.size());
    if (sync && ::fdatasync(fd) != 0) {
      state.SkipWithError("fdatasync failed");
      break;
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * batch));
  ::close(fd);
  std::filesystem::remove_all(dir);
}

// Would O_DIRECT help sync=fdatasync? The same bytes per batch written the way an O_DIRECT log
// would have to: the 4 KiB-aligned blocks the batch touches (the partial last block again next
// time), into a preallocated file opened with O_DIRECT, then fdatasync. Compare with BM_Raw
// (buffered write + fdatasync) in the same run.
void BM_RawDirect(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  const auto batch = static_cast<std::size_t>(state.range(1));
  constexpr std::size_t kBlock = 4096;
  constexpr off_t kFileBytes = off_t{1} << 30;
  const std::string dir = fresh_dir();
  const std::string path = dir + "/direct";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_DIRECT, 0644);
  if (fd < 0 || ::fallocate(fd, 0, 0, kFileBytes) != 0) {
    state.SkipWithError((std::string(kUnsupportedHere) + "open(O_DIRECT) or fallocate failed").c_str());
    if (fd >= 0) ::close(fd);
    return;
  }
  const std::size_t bytes = batch * (size + 24);
  const std::size_t cap = (bytes / kBlock + 2) * kBlock;
  void* mem = nullptr;
  if (::posix_memalign(&mem, kBlock, cap) != 0) {
    state.SkipWithError("posix_memalign failed");
    ::close(fd);
    return;
  }
  std::memset(mem, 'd', cap);
  std::uint64_t off = 0;
  for (auto _ : state) {
    const std::uint64_t begin = off / kBlock * kBlock;
    const std::uint64_t end = (off + bytes + kBlock - 1) / kBlock * kBlock;
    if (end > static_cast<std::uint64_t>(kFileBytes)) {
      state.SkipWithError("file full");
      break;
    }
    const auto len = static_cast<std::size_t>(end - begin);
    if (::pwrite(fd, mem, len, static_cast<off_t>(begin)) != static_cast<ssize_t>(len) ||
        ::fdatasync(fd) != 0) {
      state.SkipWithError("O_DIRECT pwrite or fdatasync failed");
      break;
    }
    off += bytes;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * batch));
  std::free(mem);
  ::close(fd);
  std::filesystem::remove_all(dir);
}

// Times each call of `op` (one per iteration) and reports the percentiles of the single calls,
// which a mean per iteration hides (an fdatasync's latency has a long tail).
template <class Op>
void time_calls(benchmark::State& state, Op&& op) {
  std::vector<double> us;
  us.reserve(1 << 16);
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    if (!op()) break;
    us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0)
                     .count());
  }
  if (us.empty()) return;
  std::sort(us.begin(), us.end());
  auto pct = [&](double p) {
    return us[static_cast<std::size_t>(p * static_cast<double>(us.size() - 1))];
  };
  state.counters["p50_us"] = pct(0.50);
  state.counters["p90_us"] = pct(0.90);
  state.counters["p99_us"] = pct(0.99);
  state.SetItemsProcessed(static_cast<std::int64_t>(us.size()));
}

void BM_WriteEpochs(benchmark::State& state) {
  const std::string dir = fresh_dir();
  fastzab::log::Options o;
  o.cluster_id = 1;
  {
    auto log = fastzab::log::Log::open(dir, o);
    if (!log) {
      state.SkipWithError(log.error().to_string().c_str());
      return;
    }
    std::uint64_t e = 1;
    time_calls(state, [&] {
      auto r = (*log)->write_epochs({e, e - 1});
      ++e;
      if (!r) state.SkipWithError(r.error().to_string().c_str());
      return r.has_value();
    });
  }
  std::filesystem::remove_all(dir);
}

// What write_epochs() did before the slotted file: Log::write_atomically() of the 48-byte
// record, step for step through the same file layer.
void BM_WriteEpochsAtomic(benchmark::State& state) {
  const std::string dir = fresh_dir();
  const std::string path = dir + "/epochs";
  const std::string tmp = path + ".tmp";
  fastzab::log::FileSystem& fs = fastzab::log::posix_fs();
  std::array<std::byte, 48> rec{};
  std::uint64_t e = 1;
  time_calls(state, [&]() -> bool {
    std::memcpy(rec.data() + 24, &e, sizeof e);  // (the bytes do not change the cost)
    ++e;
    auto r = [&]() -> fastzab::log::Result<void> {
      auto f = fs.open(tmp, fastzab::log::OpenMode::create_truncate);
      if (!f) return std::unexpected(f.error());
      if (auto w = (*f)->write_at(0, rec); !w) return w;
      if (auto w = (*f)->sync_data(); !w) return w;
      if (auto w = fs.rename(tmp, path); !w) return w;
      return fs.sync_dir(dir);
    }();
    if (!r) state.SkipWithError(r.error().to_string().c_str());
    return r.has_value();
  });
  std::filesystem::remove_all(dir);
}

// The raw bound of an in-place epoch write: 64 bytes over the start of a file whose blocks are
// written and durable, then fdatasync.
void BM_RawOverwrite(benchmark::State& state) {
  const std::string dir = fresh_dir();
  const std::string path = dir + "/raw";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  std::vector<char> zeros(8192, 0);
  if (fd < 0 || ::pwrite(fd, zeros.data(), zeros.size(), 0) != 8192 || ::fsync(fd) != 0) {
    state.SkipWithError("open, pwrite or fsync failed");
    if (fd >= 0) ::close(fd);
    return;
  }
  std::array<char, 64> rec{};
  std::uint64_t e = 1;
  time_calls(state, [&] {
    std::memcpy(rec.data() + 32, &e, sizeof e);
    ++e;
    if (::pwrite(fd, rec.data(), rec.size(), 0) != static_cast<ssize_t>(rec.size()) ||
        ::fdatasync(fd) != 0) {
      state.SkipWithError("pwrite or fdatasync failed");
      return false;
    }
    return true;
  });
  ::close(fd);
  std::filesystem::remove_all(dir);
}

// Each configuration's raw bound is registered right before its log runs, so that they meet the
// same page-cache and writeback state (run with --benchmark_enable_random_interleaving and
// repetitions for a fair median on a noisy machine).
void register_all() {
  benchmark::RegisterBenchmark("BM_RawOverwrite", BM_RawOverwrite)
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("BM_WriteEpochs", BM_WriteEpochs)
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("BM_WriteEpochsAtomic", BM_WriteEpochsAtomic)
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond);
  for (int sync : {1, 0}) {
    for (int size : {64, 1024}) {
      for (int batch : {1, 8, 64, 512}) {
        benchmark::RegisterBenchmark("BM_Raw", BM_Raw)
            ->ArgNames({"size", "batch", "sync"})
            ->Args({size, batch, sync})
            ->UseRealTime();
        if (sync == 1) {
          benchmark::RegisterBenchmark("BM_RawDirect", BM_RawDirect)
              ->ArgNames({"size", "batch"})
              ->Args({size, batch})
              ->UseRealTime();
        }
        for (int uring : {0, 1}) {
          benchmark::RegisterBenchmark("BM_Log", BM_Log)
              ->ArgNames({"size", "batch", "sync", "uring"})
              ->Args({size, batch, sync, uring})
              ->UseRealTime();
        }
      }
    }
  }
}

// Prints the usual console output, then the table of ratios. With --benchmark_repetitions=N
// each row gives the median of the N repetitions and their spread (min-max), for the log and for
// the raw bound, and the ratio of the medians.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  // Benchmarks that stopped with an error, except those this machine cannot run at all
  // (kUnsupportedHere): Google Benchmark exits 0 either way, so main() turns these into exit 1
  // and the bench-smoke test fails.
  int errors() const { return errors_; }

  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& r : runs) {
      if (r.error_occurred && r.error_message.rfind(kUnsupportedHere, 0) != 0) ++errors_;
      if (r.error_occurred || r.run_type != Run::RT_Iteration) continue;
      auto it = r.counters.find("items_per_second");
      if (it == r.counters.end()) continue;
      const std::string name = r.run_name.str();
      if (!rate_.count(name)) order_.push_back(name);
      rate_[name].push_back(it->second.value);
      latency_[name].push_back(r.GetAdjustedRealTime());  // in the run's time unit
      unit_[name] = benchmark::GetTimeUnitString(r.time_unit);
      for (const char* c : {"p50_us", "p90_us", "p99_us"}) {
        if (auto p = r.counters.find(c); p != r.counters.end()) {
          percentiles_[name][c].push_back(p->second.value);
        }
      }
    }
  }
  void Finalize() override {
    ConsoleReporter::Finalize();
    if (std::any_of(order_.begin(), order_.end(),
                    [](const std::string& n) { return n.rfind("BM_Log/", 0) == 0; })) {
      append_table();
    }
    if (percentiles_.empty()) return;
    std::printf("\n%-22s %10s %10s %10s %10s\n", "epoch write", "mean us", "p50 us", "p90 us",
                "p99 us");
    for (const std::string& name : order_) {
      auto p = percentiles_.find(name);
      if (p == percentiles_.end()) continue;
      // These runs are registered in µs.
      std::printf("%-22s %10.1f %10.1f %10.1f %10.1f\n", name.substr(0, name.find('/')).c_str(),
                  stats(latency_[name]).median, stats(p->second["p50_us"]).median,
                  stats(p->second["p90_us"]).median, stats(p->second["p99_us"]).median);
    }
    std::printf("rows: one call each, median over repetitions in this run\n");
  }

 private:
  void append_table() {
    std::printf("\n%-6s %5s %6s %-9s %14s %21s %14s %21s %7s %14s\n", "size", "batch", "sync",
                "writer", "log rec/s", "(min-max)", "raw rec/s", "(min-max)", "ratio",
                "batch latency");
    double checksum = 0;
    for (const std::string& name : order_) {
      if (name.rfind("BM_Log/", 0) != 0) continue;
      const std::size_t u = name.rfind("/uring:");
      if (u == std::string::npos) continue;
      std::string raw = "BM_Raw/" + name.substr(7, u - 7);
      if (raw.find("/real_time") == std::string::npos &&
          name.find("/real_time") != std::string::npos) {
        raw += "/real_time";
      }
      long size = 0, batch = 0, sync = 0, uring = 0;
      std::sscanf(name.c_str(), "BM_Log/size:%ld/batch:%ld/sync:%ld/uring:%ld", &size, &batch,
                  &sync, &uring);
      const Stats l = stats(rate_[name]);
      const Stats r = rate_.count(raw) ? stats(rate_[raw]) : Stats{};
      checksum += l.median;
      std::printf("%-6ld %5ld %6s %-9s %14.0f %10.0f-%-10.0f %14.0f %10.0f-%-10.0f %7.2f %11.1f %s\n",
                  size, batch, sync ? "fdsync" : "none", uring ? "io_uring" : "sync", l.median,
                  l.min, l.max, r.median, r.min, r.max, r.median > 0 ? l.median / r.median : 0.0,
                  stats(latency_[name]).median, unit_[name].c_str());
    }
    std::printf("rows: log vs raw bound in this run (median of repetitions); checksum %.0f\n",
                checksum);
  }

  struct Stats {
    double median = 0, min = 0, max = 0;
  };
  static Stats stats(std::vector<double> v) {
    if (v.empty()) return {};
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    const double med = n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    return {med, v.front(), v.back()};
  }
  std::map<std::string, std::vector<double>> rate_, latency_;
  std::map<std::string, std::string> unit_;
  std::map<std::string, std::map<std::string, std::vector<double>>> percentiles_;
  std::vector<std::string> order_;
  int errors_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  const char* base = std::getenv("FASTZAB_BENCH_DIR");
  std::string tmpl = std::string(base != nullptr ? base : "/tmp") + "/fastzab-bench-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) {
    std::perror("mkdtemp");
    return 1;
  }
  g_root = tmpl;
  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  std::filesystem::remove_all(g_root);
  if (reporter.errors() > 0) {
    std::fprintf(stderr, "log_bench: %d benchmark(s) stopped with an error\n", reporter.errors());
    return 1;
  }
  return 0;
}
