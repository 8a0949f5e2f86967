// CRC32C as the log computes it (log/crc32c.h): once per record over its header and payload, and
// over segment headers, snapshots and the epochs file. BM_Crc32c is the entry point the log calls
// (the implementation picked at run time); the two implementations run beside it so that a
// regression can be traced to the dispatch or to the code itself. bytes/s is the figure to read.
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "log/crc32c.h"
#include "micro_main.h"

namespace {

using CrcExtend = std::uint32_t (*)(std::uint32_t, const void*, std::size_t) noexcept;

std::uint32_t dispatching(std::uint32_t crc, const void* data, std::size_t n) noexcept {
  return fastzab::log::crc32c_extend(crc, data, n);
}

void BM_Crc(benchmark::State& state, CrcExtend extend) {
  const auto bytes = static_cast<std::size_t>(state.range(0));
  std::vector<unsigned char> data(bytes);
  for (std::size_t i = 0; i < bytes; ++i) data[i] = static_cast<unsigned char>(i * 7 + 3);
  std::uint32_t crc = 0;
  for (auto _ : state) {
    // Each record's CRC starts from zero, so calls are independent and may overlap in the CPU,
    // as consecutive records in one batch do.
    crc = extend(0, data.data(), data.size());
    benchmark::DoNotOptimize(crc);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(bytes));
  state.SetItemsProcessed(state.iterations());
}

void register_all() {
  struct Variant {
    const char* name;
    CrcExtend extend;
    bool available;
  };
  const Variant variants[] = {
      {"BM_Crc32c", &dispatching, true},
      {"BM_Crc32cSse42", &fastzab::log::crc32c_extend_sse42, fastzab::log::crc32c_has_sse42()},
      {"BM_Crc32cPortable", &fastzab::log::crc32c_extend_portable, true},
  };
  for (const Variant& v : variants) {
    // Calling the SSE4.2 code on a CPU without it would fault, so it is left out there.
    if (!v.available) continue;
    benchmark::RegisterBenchmark(v.name, BM_Crc, v.extend)
        ->ArgName("bytes")
        ->Arg(64)
        ->Arg(1 << 10)
        ->Arg(16 << 10)
        ->Arg(64 << 10);
  }
}

}  // namespace

int main(int argc, char** argv) { return fastzab::bench::run_main(argc, argv, register_all); }
