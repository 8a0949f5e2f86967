#include "faults.h"

#include <algorithm>
#include <string>

namespace fastzab::sim {

Faults::Faults(const Profile& profile, Rng& rng, EventQueue& queue, Network& net,
               FaultTarget& target, std::size_t nodes)
    : p_(profile), rng_(rng), q_(queue), net_(net), target_(target), n_(nodes),
      slow_gen_(n_, 0), freeze_gen_(n_, 0) {
  if (p_.partitions) actions_.push_back(Action::partition);
  if (p_.crashes) actions_.push_back(Action::crash);
  if (p_.drops) actions_.push_back(Action::drop);
  if (p_.spikes) actions_.push_back(Action::spike);
  if (p_.slow_disks) actions_.push_back(Action::slow_disk);
  if (p_.freezes) actions_.push_back(Action::freeze);
  if (p_.transfers) actions_.push_back(Action::transfer);
  if (p_.clock_drift) actions_.push_back(Action::clock);
  if (p_.disk_errors) actions_.push_back(Action::disk_error);
  if (p_.disk_stalls) actions_.push_back(Action::disk_stall);
}

void Faults::start() {
  if (p_.clock_drift && !started_) {
    // Skew from the start: every node gets its own rate, 0.5x to 2x the nominal one.
    for (std::uint32_t v = 0; v < n_; ++v) target_.set_tick_period(v, random_period());
    ++counts_.clock_faults;
  }
  started_ = true;
  if (actions_.empty()) return;
  Event e;
  e.kind = EventKind::chaos;
  q_.schedule(q_.now() + rng_.range(p_.chaos_min, p_.chaos_max), std::move(e));
}

void Faults::on_chaos() {
  if (stopped_ || actions_.empty()) return;
  switch (rng_.pick(actions_)) {
    case Action::partition: partition(); break;
    case Action::crash: crash(); break;
    case Action::drop: drop(); break;
    case Action::spike: spike(); break;
    case Action::slow_disk: slow_disk(); break;
    case Action::freeze: freeze(); break;
    case Action::transfer: transfer(); break;
    case Action::clock: clock(); break;
    case Action::disk_error: disk_error(); break;
    case Action::disk_stall: disk_stall(); break;
  }
  start();
}

std::uint32_t Faults::random_node() noexcept { return static_cast<std::uint32_t>(rng_.below(n_)); }

std::uint32_t Faults::leader_or_random() noexcept {
  const auto leader = target_.current_leader();
  return leader && rng_.coin() ? *leader : random_node();
}

std::vector<std::uint32_t> Faults::random_subset(std::size_t min_size, std::size_t max_size) {
  std::vector<std::uint32_t> all(n_);
  for (std::uint32_t i = 0; i < n_; ++i) all[i] = i;
  for (std::size_t i = n_; i > 1; --i) std::swap(all[i - 1], all[rng_.below(i)]);  // shuffle
  const auto size = static_cast<std::size_t>(
      rng_.range(static_cast<std::int64_t>(min_size), static_cast<std::int64_t>(max_size)));
  all.resize(size);
  std::sort(all.begin(), all.end());
  return all;
}

void Faults::block_both(std::uint32_t a, std::uint32_t b) {
  net_.block(a, b);
  net_.block(b, a);
}

void Faults::partition() {
  if (partitioned_) return;
  partitioned_ = true;
  ++counts_.partitions;
  std::vector<bool> side(n_, false);
  const auto mark = [&](const std::vector<std::uint32_t>& nodes) {
    for (std::uint32_t v : nodes) side[v] = true;
  };
  const auto split = [&] {
    for (std::uint32_t a = 0; a < n_; ++a) {
      for (std::uint32_t b = a + 1; b < n_; ++b) {
        if (side[a] != side[b]) block_both(a, b);
      }
    }
  };
  const std::uint32_t leader = leader_or_random();
  const int kinds = p_.asymmetric ? 8 : 5;
  switch (rng_.below(static_cast<std::uint64_t>(kinds))) {
    case 0:  // a random split
      mark(random_subset(1, n_ - 1));
      split();
      last_ = "partition: random split";
      break;
    case 1:  // the leader alone
      side[leader] = true;
      split();
      last_ = "partition: isolate n" + std::to_string(leader);
      break;
    case 2: {  // the leader in a minority
      side[leader] = true;
      const auto extra = random_subset(0, (n_ - 1) / 2);
      std::size_t added = 0;
      for (std::uint32_t v : extra) {
        if (v != leader && added + 1 < (n_ + 1) / 2) {
          side[v] = true;
          ++added;
        }
      }
      split();
      last_ = "partition: leader in a minority";
      break;
    }
    case 3: {  // a bridge: two sides that only one node sees both of
      const std::uint32_t bridge = random_node();
      mark(random_subset(1, n_ - 1));
      for (std::uint32_t a = 0; a < n_; ++a) {
        for (std::uint32_t b = a + 1; b < n_; ++b) {
          if (a != bridge && b != bridge && side[a] != side[b]) block_both(a, b);
        }
      }
      last_ = "partition: bridge n" + std::to_string(bridge);
      break;
    }
    case 4:  // random pairs
      for (std::uint32_t a = 0; a < n_; ++a) {
        for (std::uint32_t b = a + 1; b < n_; ++b) {
          if (rng_.chance(1, 3)) block_both(a, b);
        }
      }
      last_ = "partition: random pairs";
      break;
    case 5:  // asymmetric: the leader cannot send
      for (std::uint32_t v = 0; v < n_; ++v) net_.block(leader, v);
      last_ = "partition: n" + std::to_string(leader) + " cannot send";
      break;
    case 6:  // asymmetric: the leader cannot receive
      for (std::uint32_t v = 0; v < n_; ++v) net_.block(v, leader);
      last_ = "partition: n" + std::to_string(leader) + " cannot receive";
      break;
    default:  // asymmetric: random directions
      for (std::uint32_t a = 0; a < n_; ++a) {
        for (std::uint32_t b = 0; b < n_; ++b) {
          if (a != b && rng_.chance(1, 4)) net_.block(a, b);
        }
      }
      last_ = "partition: random directions";
      break;
  }
  Event e;
  e.kind = EventKind::heal;
  e.x = ++partition_gen_;
  q_.schedule(q_.now() + rng_.range(100, 2500), std::move(e));
}

void Faults::on_heal(std::uint64_t generation) {
  if (generation != partition_gen_ || !partitioned_) return;
  partitioned_ = false;
  net_.heal_blocks();
}

void Faults::crash() {
  if (rng_.chance(1, 10)) {
    // Power failure: every node at once.
    for (std::uint32_t v = 0; v < n_; ++v) {
      if (target_.node_is_up(v)) target_.crash_node(v, p_.torn_writes);
    }
    ++counts_.crashes;
    last_ = "crash: all";
    return;
  }
  const std::uint32_t v = leader_or_random();
  if (!target_.node_is_up(v)) return;
  ++counts_.crashes;
  target_.crash_node(v, p_.torn_writes);
  last_ = "crash: n" + std::to_string(v);
}

void Faults::drop() {
  if (rng_.chance(1, 4)) {
    if (const auto leader = target_.current_leader()) {
      for (std::uint32_t v = 0; v < n_; ++v) {
        if (v != *leader) net_.close(*leader, v, net_.session_of(*leader, v));
      }
      ++counts_.drops;
      last_ = "drop: every session of the leader";
      return;
    }
  }
  if (net_.drop_random_session()) ++counts_.drops;
  last_ = "drop: one session";
}

void Faults::spike() {
  ++counts_.spikes;
  net_.clear_extra_latency();
  const Time extra = rng_.range(20, 400);
  const std::uint32_t v = leader_or_random();
  if (rng_.coin()) {
    for (std::uint32_t u = 0; u < n_; ++u) {
      if (u == v) continue;
      if (rng_.chance(3, 4)) net_.set_extra_latency(v, u, extra);
      if (rng_.chance(3, 4)) net_.set_extra_latency(u, v, extra);
    }
  } else {
    std::uint32_t u = random_node();
    if (u == v) u = (u + 1) % static_cast<std::uint32_t>(n_);
    net_.set_extra_latency(v, u, extra);
  }
  Event e;
  e.kind = EventKind::spike_end;
  e.x = ++spike_gen_;
  q_.schedule(q_.now() + rng_.range(50, 1000), std::move(e));
  last_ = "spike: +" + std::to_string(extra) + " around n" + std::to_string(v);
}

void Faults::on_spike_end(std::uint64_t generation) {
  if (generation == spike_gen_) net_.clear_extra_latency();
}

void Faults::slow_disk() {
  ++counts_.slow_disks;
  const std::uint32_t v = leader_or_random();
  target_.set_disk_slow(v, true);
  Event e;
  e.kind = EventKind::slow_end;
  e.a = v;
  e.x = ++slow_gen_[v];
  q_.schedule(q_.now() + rng_.range(100, 2000), std::move(e));
  last_ = "slow disk: n" + std::to_string(v);
}

void Faults::on_slow_end(std::uint32_t node, std::uint64_t generation) {
  if (generation == slow_gen_[node]) target_.set_disk_slow(node, false);
}

// Unlike a partition or a crash, nothing closes a session here: the peers' TCP stacks see a
// healthy connection, and only the protocol's own timeouts (the learners' leader silence, the
// leader's sync limits) can tell that the node has stopped.
// A planned failover in the middle of everything else: to a named node (possibly a lagging
// follower, an observer, the leader itself or a down node: the core must refuse or abort those
// safely) or to the leader's choice.
void Faults::transfer() {
  const auto leader = target_.current_leader();
  if (!leader) {
    last_ = "transfer: no leader";
    return;
  }
  ++counts_.transfers;
  std::optional<std::uint32_t> to;
  if (rng_.coin()) to = random_node();
  target_.request_transfer(*leader, to);
  last_ = "transfer: n" + std::to_string(*leader) + " to " +
          (to ? "n" + std::to_string(*to) : std::string("its choice"));
}

// Clock drift and skew: the node's tick rate changes (0.5x-2x, so its timeouts fire at other
// real times than its peers'), its clock jumps ahead (many ticks at once: an NTP step, a VM
// resumed with a catching-up timer) or stops for a while (a starved timer) while the node keeps
// reading its sockets and disk.
Time Faults::random_period() noexcept { return rng_.range(kTickPeriod / 2, kTickPeriod * 2); }

void Faults::clock() {
  ++counts_.clock_faults;
  const std::uint32_t v = leader_or_random();
  switch (rng_.below(4)) {
    case 0:
    case 1: {
      const Time period = random_period();
      target_.set_tick_period(v, period);
      last_ = "clock: n" + std::to_string(v) + " ticks every " + std::to_string(period);
      break;
    }
    case 2: {
      const auto ticks = static_cast<std::uint32_t>(rng_.range(2, 40));
      target_.clock_jump(v, ticks);
      last_ = "clock: n" + std::to_string(v) + " jumps " + std::to_string(ticks) + " ticks";
      break;
    }
    default: {
      const Time length = rng_.range(50, 1500);
      const bool replay = rng_.coin();
      target_.clock_stall(v, q_.now() + length, replay);
      last_ = "clock: n" + std::to_string(v) + " stalls for " + std::to_string(length) +
              (replay ? ", missed ticks replayed" : ", missed ticks skipped");
      break;
    }
  }
}

// Disk errors: the next append, epoch write or snapshot save of a node fails. The host fails
// the node (production: engine/runtime/replica.cpp makes every failed durable op fatal).
void Faults::disk_error() {
  ++counts_.disk_errors;
  const std::uint32_t v = leader_or_random();
  static const DiskError kErrors[] = {DiskError::eio, DiskError::enospc, DiskError::fsync};
  const DiskError error = kErrors[rng_.below(3)];
  // Epoch writes and snapshot saves are rare: arm them more often than appends.
  static const std::uint8_t kKinds[] = {Disk::kAppend, Disk::kEpochs, Disk::kSnapshot,
                                        Disk::kEpochs | Disk::kSnapshot,
                                        Disk::kAppend | Disk::kEpochs | Disk::kSnapshot};
  const std::uint8_t kinds = kKinds[rng_.below(5)];
  target_.arm_disk_error(v, error, kinds);
  last_ = std::string("disk error: n") + std::to_string(v) + " " + to_string(error) +
          " on its next" + ((kinds & Disk::kAppend) != 0 ? " append" : "") +
          ((kinds & Disk::kEpochs) != 0 ? " epoch-write" : "") +
          ((kinds & Disk::kSnapshot) != 0 ? " snapshot-save" : "");
}

// A very slow fsync: the node's disk completes nothing for 2-30x syncLimit (10 ticks), the ops
// already queued included (the slow-disk fault only slows the ops issued while it lasts).
void Faults::disk_stall() {
  ++counts_.disk_stalls;
  const std::uint32_t v = leader_or_random();
  const Time length = rng_.range(20 * kTickPeriod, 300 * kTickPeriod);
  target_.stall_disk(v, q_.now() + length);
  last_ = "disk stall: n" + std::to_string(v) + " for " + std::to_string(length);
}

void Faults::freeze() {
  if (p_.zombies && rng_.coin()) {
    // A zombie leader: stopped for 3-20x leader silence while the others elect and establish a
    // new one; its missed ticks skipped, so at thaw it reads what waited and goes on sending in
    // its old epoch until a timeout or a peer's answer tells it otherwise.
    const auto leader = target_.current_leader();
    if (leader && !target_.node_is_frozen(*leader)) {
      ++counts_.freezes;
      ++counts_.zombie_freezes;
      const Time length = rng_.range(30 * kTickPeriod, 200 * kTickPeriod);
      target_.freeze_node(*leader, false);
      Event e;
      e.kind = EventKind::thaw;
      e.a = *leader;
      e.x = ++freeze_gen_[*leader];
      q_.schedule(q_.now() + length, std::move(e));
      last_ = "freeze: leader n" + std::to_string(*leader) + " for " + std::to_string(length) +
              " (zombie), missed ticks skipped";
      return;
    }
  }
  const std::uint32_t v = leader_or_random();
  if (!target_.node_is_up(v) || target_.node_is_frozen(v)) {
    last_ = "freeze: none (n" + std::to_string(v) + " is down or frozen)";
    return;
  }
  ++counts_.freezes;
  const Time length = rng_.range(p_.freeze_min, p_.freeze_max);
  // What a resumed process makes of the time it missed depends on its host, and both are real:
  // engine/runtime replays at most kMaxTickBurst fine ticks, far less than any timeout, after
  // reading the frames that were waiting (the missed ticks are, in effect, skipped); a host
  // that turns the clock jump into the elapsed ticks and runs its timers before reading its
  // sockets replays them all first, and every timer the stall overran expires before the node
  // reads the frames that would have reset it (the hostile case). Each freeze picks one.
  const bool replay_ticks = rng_.coin();
  target_.freeze_node(v, replay_ticks);
  Event e;
  e.kind = EventKind::thaw;
  e.a = v;
  e.x = ++freeze_gen_[v];
  q_.schedule(q_.now() + length, std::move(e));
  last_ = "freeze: n" + std::to_string(v) + " for " + std::to_string(length) +
          (replay_ticks ? ", missed ticks replayed at thaw" : ", missed ticks skipped");
}

void Faults::on_thaw(std::uint32_t node, std::uint64_t generation) {
  // A crash may have ended this freeze already (thaw_node is then a no-op); a later freeze of
  // the node has its own thaw.
  if (generation == freeze_gen_[node]) target_.thaw_node(node);
}

void Faults::heal_all() {
  stopped_ = true;
  partitioned_ = false;
  ++partition_gen_;
  ++spike_gen_;
  net_.heal_blocks();
  net_.clear_extra_latency();
  for (std::uint32_t v = 0; v < n_; ++v) {
    ++slow_gen_[v];
    target_.set_disk_slow(v, false);
    ++freeze_gen_[v];
    target_.thaw_node(v);
  }
  target_.heal_clocks_and_disks();
}

}  // namespace fastzab::sim
