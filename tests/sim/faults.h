// Fault injection for the safety phase: the actions a seed's Profile enables (partitions,
// crashes, connection drops, latency spikes, slow disks) fire at random intervals; each
// partition, spike and slow disk heals after a while. heal_all() ends the faults for the
// liveness phase.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "events.h"
#include "network.h"
#include "profile.h"
#include "rng.h"

namespace fastzab::sim {

// What the fault injector may do to the cluster's nodes.
class FaultTarget {
 public:
  virtual ~FaultTarget() = default;
  virtual std::size_t node_count() const = 0;
  virtual bool node_is_up(std::uint32_t node) const = 0;
  virtual std::optional<std::uint32_t> current_leader() const = 0;
  virtual void crash_node(std::uint32_t node, bool torn) = 0;
  virtual void set_disk_slow(std::uint32_t node, bool slow) = 0;
};

struct FaultCounts {
  std::uint64_t partitions = 0;
  std::uint64_t crashes = 0;
  std::uint64_t drops = 0;
  std::uint64_t spikes = 0;
  std::uint64_t slow_disks = 0;
};

class Faults {
 public:
  Faults(const Profile& profile, Rng& rng, EventQueue& queue, Network& net, FaultTarget& target,
         std::size_t nodes);

  void start();
  void on_chaos();
  void on_heal(std::uint64_t generation);
  void on_spike_end(std::uint64_t generation);
  void on_slow_end(std::uint32_t node, std::uint64_t generation);
  void heal_all();

  const FaultCounts& counts() const noexcept { return counts_; }
  std::string last_action() const { return last_; }

 private:
  enum class Action : std::uint8_t { partition, crash, drop, spike, slow_disk };
  void partition();
  void crash();
  void drop();
  void spike();
  void slow_disk();
  std::uint32_t random_node() noexcept;
  std::uint32_t leader_or_random() noexcept;
  std::vector<std::uint32_t> random_subset(std::size_t min_size, std::size_t max_size);
  void block_both(std::uint32_t a, std::uint32_t b);

  const Profile& p_;
  Rng& rng_;
  EventQueue& q_;
  Network& net_;
  FaultTarget& target_;
  std::size_t n_;
  bool stopped_ = false;
  bool partitioned_ = false;
  std::uint64_t partition_gen_ = 0;
  std::uint64_t spike_gen_ = 0;
  std::vector<std::uint64_t> slow_gen_;
  std::vector<Action> actions_;
  FaultCounts counts_;
  std::string last_;
};

}  // namespace fastzab::sim
