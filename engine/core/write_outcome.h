// How a client write ended: one vocabulary from the core's write_done through the embedding API
// (fastzab::Event) to the client protocol, whose error codes are these values (committed aside).
// It lives in the core because the core decides it; the public header includes it, so it
// depends on nothing but <cstdint>.
#pragma once

#include <cstdint>

namespace fastzab {

enum class WriteOutcome : std::uint8_t {
  // At the zxid given with it, and the server that answers has applied it.
  committed = 0,
  // Refusals: nothing was proposed, so a retry cannot apply the write twice.
  no_leader = 1,       // no established leader here now (not leading, not yet established,
                       // or handing leadership over): retry later
  too_large = 2,       // larger than an entry may be
  rejected = 5,        // the leader's zxid space of its epoch is exhausted: retry
  stale_sequence = 8,  // the write id's sequence is older than its client's last: not applied
  // Proposed, then leadership (or the session to the leader) was lost before this server
  // learned the commit: it may have committed. A retry with the same write id is answered
  // with the original zxid if it did, and is applied at most once; an anonymous write has no
  // safe retry.
  unknown_outcome = 7,
  // The host stopped before an answer (never from the core itself); it may have committed.
  stopped = 9,
};

const char* to_string(WriteOutcome w) noexcept;

// True for the outcomes that promise nothing was proposed.
constexpr bool refused(WriteOutcome w) noexcept {
  return w == WriteOutcome::no_leader || w == WriteOutcome::too_large ||
         w == WriteOutcome::rejected || w == WriteOutcome::stale_sequence;
}

namespace core {
using fastzab::WriteOutcome;
using fastzab::to_string;  // the WriteOutcome overload, as core::to_string
}  // namespace core

}  // namespace fastzab
