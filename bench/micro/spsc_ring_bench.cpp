// The SPSC ring between threads (engine/runtime/spsc_ring.h), at the runtime's capacity (8192
// slots) with two element sizes: 8 bytes (a tag or a pointer) and 64 bytes (one cache line, about
// an event handed back to the application).
//
// BM_SingleThread*: one thread pushes and pops, so the ring's lines stay in its cache; this is
//   the bookkeeping cost per element (owner check, index arithmetic, the release stores) with no
//   coherence traffic.
// BM_TwoThreads: the benchmark thread pushes batches with push_batch, a consumer thread pops them
//   with pop_batch; wall-clock items/s is the hand-off throughput, coherence traffic included.
//   Both sides spin when the ring is full or empty. On a machine with fewer free cores than two
//   the figure measures the scheduler, not the ring.
#include <benchmark/benchmark.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <thread>
#include <type_traits>
#include <vector>

#include "engine/runtime/spsc_ring.h"
#include "micro_main.h"

namespace {

using fastzab::runtime::SpscRing;

// The runtime's rings (engine/runtime/embedded_node.cpp) have this many slots.
constexpr std::size_t kSlots = 8192;

struct LineItem {
  std::array<std::uint64_t, 8> words{};
};
static_assert(sizeof(LineItem) == 64);

std::uint64_t first_word(std::uint64_t v) { return v; }
std::uint64_t first_word(const LineItem& v) { return v.words[0]; }

template <class T>
T make_item(std::uint64_t n) {
  if constexpr (std::is_same_v<T, LineItem>) {
    LineItem item;
    item.words.fill(n);
    return item;
  } else {
    return T{n};
  }
}

// Busy-waiting without starving a sibling hyperthread, and yielding now and then so that on an
// oversubscribed machine the other side gets to run.
class Backoff {
 public:
  void pause() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
    if (++spins_ % 1024 == 0) std::this_thread::yield();
  }

 private:
  std::uint32_t spins_ = 0;
};

template <class T>
void BM_SingleThreadOne(benchmark::State& state) {
  auto ring = std::make_unique<SpscRing<T, kSlots>>();
  const T item = make_item<T>(1);
  std::uint64_t sum = 0;
  for (auto _ : state) {
    ring->try_push(item);
    sum += first_word(*ring->try_pop());
  }
  benchmark::DoNotOptimize(sum);
  if (sum != static_cast<std::uint64_t>(state.iterations())) {
    fastzab::bench::fail(state, "lost an element");
  }
  state.SetItemsProcessed(state.iterations());
}

template <class T>
void BM_SingleThreadBatch(benchmark::State& state) {
  const auto batch = static_cast<std::size_t>(state.range(0));
  auto ring = std::make_unique<SpscRing<T, kSlots>>();
  std::vector<T> items(batch, make_item<T>(1));
  std::uint64_t sum = 0;
  for (auto _ : state) {
    // Moving a trivially copyable element leaves it intact, so `items` serves every iteration.
    ring->push_batch(std::span<T>(items));
    ring->pop_batch(batch, [&sum](T&& v) { sum += first_word(v); });
  }
  benchmark::DoNotOptimize(sum);
  if (sum != static_cast<std::uint64_t>(state.iterations()) * batch) {
    fastzab::bench::fail(state, "lost an element");
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(batch));
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(batch * sizeof(T)));
}

template <class T>
void BM_TwoThreads(benchmark::State& state) {
  const auto batch = static_cast<std::size_t>(state.range(0));
  auto ring = std::make_unique<SpscRing<T, kSlots>>();
  std::atomic<bool> producing{true};
  std::uint64_t consumed = 0;
  std::uint64_t sum = 0;
  std::thread consumer([&] {
    Backoff backoff;
    for (;;) {
      // Read before popping: once it says the producer stopped, every push happened before this
      // pop, so an empty pop means the ring is drained for good.
      const bool stopped = !producing.load(std::memory_order_acquire);
      const std::size_t n = ring->pop_batch(batch, [&sum](T&& v) { sum += first_word(v); });
      consumed += n;
      if (n != 0) continue;
      if (stopped) break;
      backoff.pause();
    }
  });

  std::vector<T> items(batch, make_item<T>(1));
  Backoff backoff;
  for (auto _ : state) {
    std::span<T> rest(items);
    while (!rest.empty()) {
      const std::size_t n = ring->push_batch(rest);
      rest = rest.subspan(n);
      if (n == 0) backoff.pause();
    }
  }
  // What is still in the ring (at most kSlots elements) drains after the clock stopped; against
  // the millions of elements a timed run of a second pushes, that is noise.
  producing.store(false, std::memory_order_release);
  consumer.join();

  const auto pushed = static_cast<std::uint64_t>(state.iterations()) * batch;
  if (consumed != pushed || sum != pushed) fastzab::bench::fail(state, "consumer lost elements");
  state.SetItemsProcessed(static_cast<std::int64_t>(pushed));
  state.SetBytesProcessed(static_cast<std::int64_t>(pushed * sizeof(T)));
}

void register_all() {
  benchmark::RegisterBenchmark("BM_SingleThreadOne/u64", BM_SingleThreadOne<std::uint64_t>);
  benchmark::RegisterBenchmark("BM_SingleThreadOne/line64", BM_SingleThreadOne<LineItem>);
  benchmark::RegisterBenchmark("BM_SingleThreadBatch/u64", BM_SingleThreadBatch<std::uint64_t>)
      ->ArgName("batch")
      ->Arg(8)
      ->Arg(64);
  benchmark::RegisterBenchmark("BM_SingleThreadBatch/line64", BM_SingleThreadBatch<LineItem>)
      ->ArgName("batch")
      ->Arg(8)
      ->Arg(64);
  benchmark::RegisterBenchmark("BM_TwoThreads/u64", BM_TwoThreads<std::uint64_t>)
      ->ArgName("batch")
      ->Arg(1)
      ->Arg(32)
      ->Arg(256)
      ->UseRealTime();
  benchmark::RegisterBenchmark("BM_TwoThreads/line64", BM_TwoThreads<LineItem>)
      ->ArgName("batch")
      ->Arg(1)
      ->Arg(32)
      ->Arg(256)
      ->UseRealTime();
}

}  // namespace

int main(int argc, char** argv) { return fastzab::bench::run_main(argc, argv, register_all); }
