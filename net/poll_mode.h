// How a polling loop waits when nothing is ready: the one definition, used by the transport and,
// through engine/runtime/config.h, by the `poll` key of zoo.cfg.
#pragma once

#include <cstdint>

namespace fastzab::net {

// busy: never blocks (peeks completions, one non-blocking enter per iteration), for a dedicated
// core; blocking: sleeps in the kernel until a completion or the timeout; adaptive: spins
// adaptive_spin, then blocks.
enum class PollMode : std::uint8_t { busy, adaptive, blocking };

// The names zoo.cfg's `poll` key takes.
constexpr const char* to_string(PollMode m) noexcept {
  switch (m) {
    case PollMode::busy: return "busy";
    case PollMode::adaptive: return "adaptive";
    case PollMode::blocking: return "blocking";
  }
  return "?";
}

}  // namespace fastzab::net
