#include "profile.h"

namespace fastzab::sim {

Profile choose_profile(Rng& rng, std::uint64_t seed) {
  Profile p;
  // Choices added after the first set draw from their own stream, not the run's: a seed whose
  // new faults stay off runs exactly as before (same digest), so adding a fault changes only the
  // runs that use it.
  Rng later(seed ^ 0xf5ee2ef1a7e5d00dULL);
  const bool calm = rng.chance(1, 10);  // some seeds run with no faults at all
  if (!calm) {
    p.crashes = rng.coin();
    p.torn_writes = p.crashes && rng.coin();
    p.partitions = rng.coin();
    p.asymmetric = p.partitions && rng.coin();
    p.drops = rng.coin();
    p.spikes = rng.coin();
    p.slow_disks = rng.coin();
    if (rng.coin()) {
      p.chaos_min = 30;
      p.chaos_max = 300;
    } else {
      p.chaos_min = 200;
      p.chaos_max = 1500;
    }
  }
  if (!calm && later.coin()) {
    // The learners give up a leader silent for more than leader_silence_ticks (10 ticks = 100
    // units): short freezes end before that, so the node resumes in its old role; long ones
    // leave the others time to elect and establish a new leader while it is stopped.
    static const Time kFreeze[][2] = {{20, 90}, {50, 500}, {150, 2000}};
    const auto& range = kFreeze[later.below(3)];
    p.freezes = true;
    p.freeze_min = range[0];
    p.freeze_max = range[1];
  }
  // Drawn after every earlier choice, from the same late stream, so that seeds without
  // transfers keep their profiles.
  if (!calm && later.coin()) p.transfers = true;
  // Issue 10's faults, from a stream of their own for the same reason.
  Rng later2(seed ^ 0x0c10c4d15cfa11edULL);
  if (!calm) {
    p.clock_drift = later2.chance(1, 3);
    p.disk_errors = later2.chance(1, 4);
    p.disk_stalls = later2.chance(1, 4);
    p.zombies = p.freezes && later2.coin();
  }
  Rng later3(seed ^ 0x7a11c07c0ffee5edULL);
  if (p.crashes) p.lost_tails = later3.chance(1, 3);
  static const Time kLatency[] = {2, 5, 10, 25};
  p.net.latency_min = 1;
  p.net.latency_max = kLatency[rng.below(4)];
  p.net.connect_max = p.net.latency_max;
  static const Time kDisk[] = {1, 3, 8};
  p.disk.latency_min = 0;
  p.disk.latency_max = kDisk[rng.below(3)];
  if (p.slow_disks) {
    p.disk.slow_per_mille = static_cast<std::uint32_t>(rng.range(5, 60));
    p.disk.slow_min = 20;
    p.disk.slow_max = rng.coin() ? 150 : 600;
  }
  if (rng.coin()) {
    p.submit_min = 3;
    p.submit_max = 15;
  } else {
    p.submit_min = 15;
    p.submit_max = 80;
  }
  static const std::uint32_t kBatch[] = {1, 3, 8};
  p.batch_max = kBatch[rng.below(3)];
  p.random_targets = rng.chance(1, 4);
  static const std::size_t kWindow[] = {4, 32, 1024, 1024};
  p.history_window = kWindow[rng.below(4)];
  if (rng.chance(1, 5)) p.max_zxid_counter = static_cast<std::uint32_t>(rng.range(10, 120));
  static const std::size_t kMaxBatch[] = {1, 5, 1024, 1024};
  p.max_batch_entries = kMaxBatch[rng.below(4)];
  return p;
}

std::string Profile::name() const {
  std::string s;
  const auto add = [&](const std::string& part) {
    if (!s.empty()) s += '+';
    s += part;
  };
  if (crashes) add(torn_writes ? "crash/torn" : "crash");
  if (partitions) add(asymmetric ? "part/asym" : "part");
  if (drops) add("drop");
  if (spikes) add("spike");
  if (slow_disks) add("slowdisk");
  if (freezes) add("freeze/" + std::to_string(freeze_min) + "-" + std::to_string(freeze_max));
  if (transfers) add("transfer");
  if (clock_drift) add("clock");
  if (disk_errors) add("diskerr");
  if (disk_stalls) add("stall");
  if (zombies) add("zombie");
  if (lost_tails) add("losttail");
  if (s.empty()) s = "calm";
  else s += "@" + std::to_string(chaos_min) + "-" + std::to_string(chaos_max);
  s += ",lat" + std::to_string(net.latency_max) + ",disk" + std::to_string(disk.latency_max);
  s += ",sub" + std::to_string(submit_min) + "-" + std::to_string(submit_max) + "x" +
       std::to_string(batch_max);
  if (random_targets) s += ",anynode";
  if (history_window != 1024) s += ",win" + std::to_string(history_window);
  if (max_zxid_counter != 0) s += ",roll" + std::to_string(max_zxid_counter);
  if (max_batch_entries != 1024) s += ",batch" + std::to_string(max_batch_entries);
  return s;
}

}  // namespace fastzab::sim
