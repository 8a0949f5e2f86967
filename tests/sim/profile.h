// Swarm testing: each seed picks its own subset of faults and their parameters, so that over many
// seeds every combination gets exercised, including the quiet ones (tigerbeetle's VOPR,
// FoundationDB's BUGGIFY).
#pragma once

#include <cstdint>
#include <string>

#include "disk.h"
#include "network.h"
#include "rng.h"

namespace fastzab::sim {

struct Profile {
  // faults (safety phase only)
  bool crashes = false;
  bool torn_writes = false;   // a crash keeps a random prefix of the pending disk ops
  bool partitions = false;
  bool asymmetric = false;    // partitions may block one direction only
  bool drops = false;         // random connection drops
  bool spikes = false;        // latency spikes
  bool slow_disks = false;
  bool freezes = false;       // a node stops (its sessions stay open), then resumes
  bool transfers = false;     // the leader is asked to hand leadership over (named or its choice)
  // Added later (profile.cpp: their own stream, so seeds without them keep their runs):
  bool clock_drift = false;   // each node ticks at its own rate; rate changes, jumps and stalls
  bool disk_errors = false;   // an append / epoch write / snapshot save fails (EIO, ENOSPC, fsync)
  bool disk_stalls = false;   // a node's disk completes nothing for many ticks (beyond syncLimit)
  bool zombies = false;       // freezes: sometimes the leader, far longer than leader silence
  // A restart after a crash sometimes finds the last records of the log cut by recovery, records
  // the node may have acknowledged (corruption in the window recovery cannot tell from a torn
  // write); the host marks the node's state lost (DurableState::state_lost), on a minority only.
  bool lost_tails = false;
  Time freeze_min = 0;        // how long a freeze lasts
  Time freeze_max = 0;
  Time chaos_min = 100;       // time between fault actions
  Time chaos_max = 600;

  NetParams net;
  DiskParams disk;

  // workload
  Time submit_min = 5;
  Time submit_max = 30;
  std::uint32_t batch_max = 4;
  bool random_targets = false;  // sometimes submit to a non-leader (rejected)

  // node config knobs
  std::size_t history_window = 1024;
  std::uint32_t max_zxid_counter = 0;  // 0 = the core's default
  std::size_t max_batch_entries = 1024;

  std::string name() const;
};

// `rng` is the run's; `seed` seeds the stream of the choices added later (see profile.cpp).
Profile choose_profile(Rng& rng, std::uint64_t seed);

}  // namespace fastzab::sim
