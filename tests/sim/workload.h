// Clients: batches of 1..k proposals, each with a unique payload "s<seed>-n<tag>", submitted to
// the LEADING node, or any node (a learner forwards them; a LOOKING one refuses). Every submission is
// registered with the Checkers, which follow it to its write_done.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "checkers.h"
#include "engine/core/io.h"
#include "events.h"
#include "profile.h"
#include "rng.h"

namespace fastzab::sim {

class Workload {
 public:
  Workload(std::uint64_t seed, const Profile& profile, Rng& rng, EventQueue& queue,
           Checkers& checkers);

  void schedule_next();
  std::uint32_t batch_size() noexcept;
  // A batch for `node`; the proposals view into storage valid until the next call.
  std::span<const core::ClientProposal> make_batch(std::uint32_t node, std::uint32_t count);
  // The tag the next make_batch will use first.
  std::uint64_t next_tag() const noexcept { return next_tag_; }

  std::uint64_t submitted() const noexcept { return next_tag_ - 1; }

 private:
  std::uint64_t seed_;
  const Profile& p_;
  Rng& rng_;
  EventQueue& q_;
  Checkers& checkers_;
  std::uint64_t next_tag_ = 1;
  std::vector<core::ByteBuffer> payloads_;
  std::vector<core::ClientProposal> batch_;
};

}  // namespace fastzab::sim
