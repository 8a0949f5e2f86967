// Clients: batches of 1..k proposals, each with a unique payload "s<seed>-n<tag>", submitted to
// the LEADING node, or any node (a learner forwards them; a LOOKING one refuses). Every submission is
// registered with the Checkers, which follow it to its write_done.
//
// Some writes come from identified clients (exactly-once writes): each has one write at a time,
// with a write id (client, sequence). One that ends refused or with an unknown outcome, or whose
// node crashed under it, is retried (same id, same payload, a new tag) in a later batch, to
// whichever node that batch goes to, until an attempt ends committed.
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
  // A batch for `node`; the proposals view into storage valid until the next call. Without
  // `identified`, only new anonymous writes (the liveness probe).
  std::span<const core::ClientProposal> make_batch(std::uint32_t node, std::uint32_t count,
                                                   bool identified = true);
  // An attempt ended (write_done); `retry`: it did not commit.
  void ended(std::uint64_t tag, bool committed);
  // Node `node` crashed: its clients' attempts end without an outcome.
  void node_crashed(std::uint32_t node);
  // Writes of identified clients that ended committed after a retry.
  std::uint64_t retried_writes() const noexcept { return retried_writes_; }
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

  static constexpr std::uint32_t kIdentifiedClients = 4;
  struct IdentifiedClient {
    std::uint64_t seq = 0;
    std::uint64_t write = 0;    // the tag of the current write's first attempt; 0 = idle
    std::string payload;
    std::uint64_t attempt = 0;  // the tag of the attempt in flight; 0 = waiting for a retry
    std::uint32_t node = 0;     // where the attempt in flight went
    bool retried = false;
  };
  std::vector<IdentifiedClient> clients_{kIdentifiedClients};
  std::uint64_t retried_writes_ = 0;
};

}  // namespace fastzab::sim
