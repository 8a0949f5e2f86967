// How many heap allocations this process has made. fastzab-bench replaces the global operator
// new (heap_count_new.cpp, linked into that executable only) so that --in-process runs can
// report allocations per commit of the engine itself, every thread included. A relaxed atomic
// add per allocation: cheap next to the allocation it counts.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>

namespace fastzab::bench {

// Written by the replacement operator new only.
extern std::atomic<std::uint64_t> g_heap_allocations;
extern std::atomic<bool> g_heap_counting;

// Nullopt when the counting operator new is not linked in (the library's tests).
inline std::optional<std::uint64_t> heap_allocations() noexcept {
  if (!g_heap_counting.load(std::memory_order_relaxed)) return std::nullopt;
  return g_heap_allocations.load(std::memory_order_relaxed);
}

}  // namespace fastzab::bench
