// What the micro-benchmarks here share: their main() and the way a benchmark reports that its
// own check failed. Google Benchmark exits 0 after a SkipWithError, so a benchmark whose set-up or
// self-check broke would still pass its bench-smoke test; fail() also makes the exit status 1.
#pragma once

#include <benchmark/benchmark.h>

namespace fastzab::bench {

inline int& failures() {
  static int count = 0;  // benchmarks run on the main thread, one after another
  return count;
}

// Stops this benchmark with `why` (shown in the output) and fails the run.
inline void fail(benchmark::State& state, const char* why) {
  ++failures();
  state.SkipWithError(why);
}

// main() of one benchmark executable: registers with `register_all`, takes Google Benchmark's
// usual flags, runs, and exits 1 if any benchmark called fail().
inline int run_main(int argc, char** argv, void (*register_all)()) {
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return failures() == 0 ? 0 : 1;
}

}  // namespace fastzab::bench
