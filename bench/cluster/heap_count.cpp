#include "bench/cluster/heap_count.h"

namespace fastzab::bench {
std::atomic<std::uint64_t> g_heap_allocations{0};
std::atomic<bool> g_heap_counting{false};
}  // namespace fastzab::bench
