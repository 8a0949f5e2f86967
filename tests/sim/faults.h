// Fault injection for the safety phase: the actions a seed's Profile enables (partitions,
// crashes, connection drops, latency spikes, slow disks, freezes) fire at random intervals; each
// partition, spike, slow disk and freeze heals after a while. heal_all() ends the faults for the
// liveness phase.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "disk.h"
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
  // Clock drift: the node ticks every `period` time units (kTickPeriod is the nominal rate).
  virtual void set_tick_period(std::uint32_t node, Time period) = 0;
  // Its clock jumps forward: `ticks` ticks reach its core back to back, now.
  virtual void clock_jump(std::uint32_t node, std::uint32_t ticks) = 0;
  // Its clock stops until `until` (the node still reads its sockets and disk); at the end the
  // missed ticks reach the core back to back (replay) or are skipped.
  virtual void clock_stall(std::uint32_t node, Time until, bool replay) = 0;
  // The node's disk fails the next op of `kinds` (Disk::KindMask) it is given.
  virtual void arm_disk_error(std::uint32_t node, DiskError error, std::uint8_t kinds) = 0;
  // The node's disk completes nothing until `until`.
  virtual void stall_disk(std::uint32_t node, Time until) = 0;
  // Liveness phase: every clock back to the nominal rate, no stall; no armed disk error.
  virtual void heal_clocks_and_disks() = 0;
};

struct FaultCounts {
  std::uint64_t partitions = 0;
  std::uint64_t crashes = 0;
  std::uint64_t drops = 0;
  std::uint64_t spikes = 0;
  std::uint64_t slow_disks = 0;
  std::uint64_t freezes = 0;
  std::uint64_t transfers = 0;
  std::uint64_t clock_faults = 0;   // rate changes, jumps and stalls (plus the initial skew)
  std::uint64_t disk_errors = 0;    // armed by the injector
  std::uint64_t disk_failures = 0;  // failed ops a node's host saw (and fail-stopped on)
  std::uint64_t disk_stalls = 0;
  std::uint64_t zombie_freezes = 0;  // the leader frozen far longer than leader silence
  std::uint64_t zombies = 0;  // frozen leaders that resumed after a newer epoch was established
  std::uint64_t zombie_frames = 0;  // frames such a zombie sent in its old role
  std::uint64_t zombie_frames_delivered = 0;  // of those, reached a peer's core (not fenced)
  std::uint64_t lost_tails = 0;          // restarts whose recovery cut possibly acknowledged records
  std::uint64_t lost_tail_entries = 0;   // the records so cut
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
  enum class Action : std::uint8_t {
    partition, crash, drop, spike, slow_disk, freeze, transfer, clock, disk_error, disk_stall,
  };
  void partition();
  void crash();
  void drop();
  void spike();
  void slow_disk();
  void freeze();
  void transfer();
  void clock();
  void disk_error();
  void disk_stall();
  Time random_period() noexcept;
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
  bool started_ = false;
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
