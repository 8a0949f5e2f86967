// Fault injection for the safety phase: the actions a seed's Profile enables (partitions,
// crashes, connection drops, latency spikes, slow disks, freezes) fire at random intervals; each
// partition, spike, slow disk and freeze heals after a while. heal_all() ends the faults for the
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
  // A silent node (SIGSTOP, a hung host, a long GC pause): its core gets no input until
  // thaw_node, but its sessions stay open and what reaches it waits, in order. replay_ticks: at
  // thaw the ticks it missed reach the core one by one before anything else (else skipped).
  virtual bool node_is_frozen(std::uint32_t node) const = 0;
  virtual void freeze_node(std::uint32_t node, bool replay_ticks) = 0;
  // Asks `leader` to hand leadership to `to` (none: its choice); a no-op on a down or frozen node.
  virtual void request_transfer(std::uint32_t leader, std::optional<std::uint32_t> to) = 0;
  virtual void thaw_node(std::uint32_t node) = 0;
};

struct FaultCounts {
  std::uint64_t partitions = 0;
  std::uint64_t crashes = 0;
  std::uint64_t drops = 0;
  std::uint64_t spikes = 0;
  std::uint64_t slow_disks = 0;
  std::uint64_t freezes = 0;
  std::uint64_t transfers = 0;
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
  void on_thaw(std::uint32_t node, std::uint64_t generation);
  void heal_all();

  const FaultCounts& counts() const noexcept { return counts_; }
  std::string last_action() const { return last_; }

 private:
  enum class Action : std::uint8_t { partition, crash, drop, spike, slow_disk, freeze, transfer };
  void partition();
  void crash();
  void drop();
  void spike();
  void slow_disk();
  void freeze();
  void transfer();
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
  std::vector<std::uint64_t> freeze_gen_;
  std::vector<Action> actions_;
  FaultCounts counts_;
  std::string last_;
};

}  // namespace fastzab::sim
