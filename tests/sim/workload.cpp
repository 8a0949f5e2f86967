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

std::span<const core::ClientProposal> Workload::make_batch(std::uint32_t node, std::uint32_t count,
                                                         bool identified) {
  payloads_.resize(count);
  batch_.resize(count);
  for (std::uint32_t i = 0; i < count; ++i) {
    const std::uint64_t tag = next_tag_++;
    core::WriteId id;
    std::uint64_t retry_of = 0;
    std::string payload;
    IdentifiedClient* client = nullptr;
    if (identified && rng_.chance(1, 3)) {
      IdentifiedClient& c = clients_[rng_.below(kIdentifiedClients)];
      if (c.attempt == 0) client = &c;  // idle, or waiting to retry
    }
    if (client != nullptr) {
      if (client->write == 0) {
        client->write = tag;
        client->payload = "s" + std::to_string(seed_) + "-n" + std::to_string(tag);
        ++client->seq;
        client->retried = false;
      } else {
        retry_of = client->write;
        client->retried = true;
      }
      client->attempt = tag;
      client->node = node;
      id = core::WriteId{static_cast<std::uint64_t>(client - clients_.data()) + 1, client->seq};
      payload = client->payload;
    } else {
      payload = "s" + std::to_string(seed_) + "-n" + std::to_string(tag);
    }
    payloads_[i].clear();
    for (char c : payload) payloads_[i].push_back(static_cast<std::byte>(c));
    batch_[i] = core::ClientProposal{tag, core::Bytes(payloads_[i]), id};
    checkers_.submitted(tag, node, std::move(payload), retry_of);
  }
  return batch_;
}

void Workload::ended(std::uint64_t tag, bool committed) {
  for (IdentifiedClient& c : clients_) {
    if (c.attempt != tag) continue;
    c.attempt = 0;
    if (committed) {
      if (c.retried) ++retried_writes_;
      c.write = 0;  // done: the next write gets the next sequence
    }
  }
}

void Workload::node_crashed(std::uint32_t node) {
  for (IdentifiedClient& c : clients_) {
    if (c.attempt != 0 && c.node == node) c.attempt = 0;  // no answer: retry it
  }
}

}  // namespace fastzab::sim
