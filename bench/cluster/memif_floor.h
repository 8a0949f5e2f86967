// The raw round trip under the DPDK transport (fastzab-bench --transport dpdk): one 64-byte
// Ethernet frame to another process over a net_memif link and back, each side busy-polling its
// DPDK port on a CPU of its own. Only bytes moved by the PMD: no session layer, no handshake,
// nothing of fastzab's on the path, so that a commit can be read as a multiple of it. Built
// where libdpdk-dev is installed (FASTZAB_HAVE_DPDK).
#pragma once

#include <cstdint>
#include <expected>
#include <string>

#include "bench/cluster/histogram.h"

namespace fastzab::bench {

// Both ends run in child processes (memif passes no traffic within one process), pinned to
// `measuring_cpu` and `echo_cpu`, their socket and EAL runtime directories removed at the end.
std::expected<Histogram, std::string> measure_memif_round_trip(const std::string& directory, unsigned samples,
                                                               std::uint32_t measuring_cpu, std::uint32_t echo_cpu);

}  // namespace fastzab::bench
