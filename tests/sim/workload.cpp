#include "workload.h"

#include <string>

namespace fastzab::sim {

Workload::Workload(std::uint64_t seed, const Profile& profile, Rng& rng, EventQueue& queue,
                   Checkers& checkers)
    : seed_(seed), p_(profile), rng_(rng), q_(queue), checkers_(checkers) {}

void Workload::schedule_next() {
  Event e;
  e.kind = EventKind::workload;
  q_.schedule(q_.now() + rng_.range(p_.submit_min, p_.submit_max), std::move(e));
}

std::uint32_t Workload::batch_size() noexcept {
  return static_cast<std::uint32_t>(rng_.range(1, p_.batch_max));
}

std::span<const core::ClientProposal> Workload::make_batch(std::uint32_t node, std::uint32_t count) {
  payloads_.resize(count);
  batch_.resize(count);
  for (std::uint32_t i = 0; i < count; ++i) {
    const std::uint64_t tag = next_tag_++;
    const std::string payload = "s" + std::to_string(seed_) + "-n" + std::to_string(tag);
    payloads_[i].clear();
    for (char c : payload) payloads_[i].push_back(static_cast<std::byte>(c));
    batch_[i] = core::ClientProposal{tag, core::Bytes(payloads_[i])};
    checkers_.submitted(tag, node, payload);
  }
  return batch_;
}

}  // namespace fastzab::sim
