// One simulated run: N copies of the production core::Node (voters, optionally observers), each
// with the host of io.h's contract around it (SendGate, Disk, application, sessions, ticks),
// under one seeded Rng and one event queue.
//
// A run has two phases. The safety phase processes `steps` events with the seed's faults; then
// the liveness phase heals every fault, restarts every crashed node and requires, within
// `liveness_budget` time units, an established leader with a quorum of followers in broadcast
// and a proposal submitted to it delivered by every node. The checkers run at every step.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "checkers.h"
#include "disk.h"
#include "engine/core/node.h"
#include "engine/core/host.h"
#include "events.h"
#include "faults.h"
#include "network.h"
#include "profile.h"
#include "rng.h"
#include "workload.h"

namespace fastzab::sim {

struct SimOptions {
  std::uint64_t seed = 1;
  std::uint32_t voters = 3;
  std::uint32_t observers = 0;
  std::uint64_t steps = 40000;      // events processed in the safety phase
  Time liveness_budget = 8000;      // time units the liveness phase may take
  bool verbose = false;
  // Whenever a node's durable image changes in a way that bears on the core's start-up rules
  // (epochs written, snapshot installed, truncate, entries of an epoch above currentEpoch), build
  // a Node from it as a restart would: a refusal is a violation even if no crash happens there.
  // Off: only restarts that actually happen count.
  bool restart_probes = true;
  // Self-test of the checkers: a deliberately broken host. "ignore-barriers" sends every
  // send_after_durable frame at once, "early-acks" only the ACK and ACKEPOCH ones; "lose-synced"
  // makes a crash also lose the last few log entries the disk had reported durable;
  // "early-proposal-acks" sends only the ACKs of proposals at once; "newleader-ack-before-log"
  // and "newleader-ack-before-epoch" release the ACK of NEWLEADER once only the epochs, or only
  // the synced log, are durable; "ignore-disk-errors" reports a failed durable op as done and
  // goes on; "no-fail-stop" drops the failure silently and goes on; "ignore-lost-state" does not
  // mark the state lost after a lost-tail fault (DurableState::state_lost). Each must make a checker
  // report a violation (main.cpp --expect-violation).
  std::string host_bug;
};

struct SimResult {
  std::uint64_t seed = 0;
  std::string profile;
  Time time = 0;
  std::uint64_t events = 0;
  std::size_t commits = 0;
  std::size_t leaders = 0;
  std::size_t acknowledged = 0;
  std::size_t forwarded_acknowledged = 0;  // of those, submitted to a learner
  std::size_t refused = 0;                 // writes that ended refused
  std::size_t unknown_outcomes = 0;        // writes that ended unknown_outcome
  std::size_t retries_acknowledged = 0;    // acknowledged attempts that retried a write id
  std::uint64_t digest = 0;
  Time liveness_time = 0;  // how long the liveness phase took
  FaultCounts faults;
  std::string violation;  // empty = ok
  std::string check;      // the checker that reported it (Checkers::check())
};

class Cluster final : public FaultTarget {
 public:
  explicit Cluster(const SimOptions& options);
  SimResult run();

  // FaultTarget
  std::size_t node_count() const override { return hosts_.size(); }
  bool node_is_up(std::uint32_t node) const override { return hosts_[node].up; }
  std::optional<std::uint32_t> current_leader() const override;
  void crash_node(std::uint32_t node, bool torn) override;
  void set_disk_slow(std::uint32_t node, bool slow) override { hosts_[node].disk.set_slow(slow); }
  bool node_is_frozen(std::uint32_t node) const override { return hosts_[node].frozen; }
  void freeze_node(std::uint32_t node, bool replay_ticks) override;
  void thaw_node(std::uint32_t node) override;
  void request_transfer(std::uint32_t leader, std::optional<std::uint32_t> to) override;
  void set_tick_period(std::uint32_t node, Time period) override { hosts_[node].tick_period = period; }
  void clock_jump(std::uint32_t node, std::uint32_t ticks) override;
  void clock_stall(std::uint32_t node, Time until, bool replay) override;
  void arm_disk_error(std::uint32_t node, DiskError error, std::uint8_t kinds) override {
    hosts_[node].disk.arm_error(error, kinds);
  }
  void stall_disk(std::uint32_t node, Time until) override { hosts_[node].disk.stall(until); }
  void heal_clocks_and_disks() override;

 private:
  // An input that reached a frozen node: its core gets it at thaw, in arrival order.
  struct Held {
    Event event;      // deliver, session_up or session_down as it arrived; disk_done; workload
    Completion done;  // disk_done: what the op the disk completed meanwhile reports
    std::vector<std::uint64_t> tags;  // workload: a client batch, copied out of the Workload
    std::vector<core::ByteBuffer> payloads;
    std::vector<core::WriteId> ids;
  };
  // Node i's I/O: each callback is the simulated host's handling of one output (Cluster's
  // on_* methods), checked as it goes.
  struct NodeEffects final : core::Effects {
    Cluster* c = nullptr;
    std::uint32_t i = 0;
    void send(core::ServerId peer, core::SessionId s, core::Bytes frame) override {
      c->frame_out(i, peer, s, frame);
    }
    void close_session(core::ServerId peer, core::SessionId s, core::Cause) override {
      c->on_close(i, peer, s);
    }
    void append(core::Zxid first, const core::EntryRange& entries) override {
      c->on_append(i, first, entries);
    }
    void truncate(core::Zxid last_kept) override { c->on_truncate(i, last_kept); }
    void persist_epochs(core::Epoch a, core::Epoch cur) override { c->on_persist_epochs(i, a, cur); }
    void install_snapshot(core::Zxid at, core::Bytes snapshot, core::Bytes app) override {
      c->on_install_snapshot(i, at, snapshot, app);
    }
    void snapshot_state(core::Zxid at, core::ByteBuffer& out) override { c->on_snapshot_state(i, at, out); }
    void apply(core::Zxid first, const core::EntryRange& values) override { c->on_apply(i, first, values); }
    void role_change(const core::Output& o) override { c->on_role_change(i, o); }
    void proposal_accepted(std::uint64_t tag, core::Zxid z) override {
      c->checkers_.proposal_accepted(i, tag, z);
    }
    void write_done(const core::Output& o) override { c->on_write_done(i, o); }
    bool healthy() const override { return !c->checkers_.failed(); }
    void stepped(const core::Input& in) override { c->on_stepped(i, in); }
    core::DurableBarrier held_barrier(const core::Output& o, core::Bytes frame) override {
      return c->held_barrier(o, frame);
    }
  };
  struct Host {
    Host(std::uint32_t index, Rng& rng, EventQueue& q, const DiskParams& dp)
        : disk(index, rng, q, dp) {}
    core::ServerId id;
    bool observer = false;
    bool up = false;
    NodeEffects effects;          // what `core` carries out through
    std::optional<core::Host> core;  // the node, its gate and output dispatch
    Disk disk;
    core::ZabPhase last_phase = core::ZabPhase::election;
    std::uint64_t steps = 0;
    // Frozen (FaultTarget::freeze_node): up, sessions open, but its core hears nothing.
    bool frozen = false;
    bool replay_ticks = false;
    std::uint64_t missed_ticks = 0;
    std::vector<Held> held;
    // Its clock (Profile::clock_drift): a tick every tick_period; none before clock_stall_until,
    // then the stalled ticks replayed back to back (clock_replay) or skipped.
    Time tick_period = kTickPeriod;
    Time clock_stall_until = 0;
    bool clock_replay = false;
    std::uint64_t stalled_ticks = 0;
    // Zombie leader tracking: established leader in `frozen_epoch` when frozen; at thaw, a zombie if a
    // newer epoch was established meanwhile (until its role changes).
    bool frozen_leading = false;
    core::Epoch frozen_epoch{0};
    bool zombie = false;
  };

  void dispatch(Event& e);
  void step(std::uint32_t i, const core::Input& in);
  // The outputs of node i's step, through its core::Host (NodeEffects).
  void on_stepped(std::uint32_t i, const core::Input& in);
  core::DurableBarrier held_barrier(const core::Output& o, core::Bytes frame) const;
  void on_close(std::uint32_t i, core::ServerId peer, core::SessionId s);
  void on_append(std::uint32_t i, core::Zxid first, const core::EntryRange& entries);
  void on_truncate(std::uint32_t i, core::Zxid last_kept);
  void on_persist_epochs(std::uint32_t i, core::Epoch accepted, core::Epoch current);
  void on_install_snapshot(std::uint32_t i, core::Zxid at, core::Bytes snapshot, core::Bytes app);
  void on_snapshot_state(std::uint32_t i, core::Zxid at, core::ByteBuffer& out);
  void on_apply(std::uint32_t i, core::Zxid first, const core::EntryRange& values);
  void on_role_change(std::uint32_t i, const core::Output& o);
  void on_write_done(std::uint32_t i, const core::Output& o);
  void frame_out(std::uint32_t i, core::ServerId peer, core::SessionId s, core::Bytes frame);
  void on_disk_done(std::uint32_t i, const Event& e);
  void report_done(std::uint32_t i, const Completion& c);
  void submit(std::uint32_t i, std::span<const core::ClientProposal> batch);
  void maybe_lose_tail(std::uint32_t i);
  void start_node(std::uint32_t i);
  // The node goes down: its process ends (a crash, or fail-stop on a failed durable op); the
  // disk keeps `survivors` of its pending ops. restart_after < 0: it stays down until the
  // liveness phase.
  void stop_node(std::uint32_t i, std::size_t survivors, Time restart_after);
  void on_disk_failure(std::uint32_t i, const Completion& c);
  void tick(std::uint32_t i);
  core::NodeConfig node_config(std::uint32_t i) const;
  void probe_restart(std::uint32_t i, const char* after);
  void on_workload();
  void begin_liveness();
  void check_liveness();
  void trace(std::uint32_t i, const char* what, const std::string& detail) const;
  std::string describe(std::uint32_t i) const;
  std::uint32_t index_of(core::ServerId id) const noexcept {
    return static_cast<std::uint32_t>(id.value - 1);
  }

  SimOptions opt_;
  Rng rng_;
  Profile profile_;
  EventQueue q_;
  Digest digest_;
  core::ClusterConfig config_;
  Network net_;
  Checkers checkers_;
  Workload workload_;
  Faults faults_;
  std::vector<Host> hosts_;
  core::ByteBuffer client_table_;  // the stepping node's, encoded at its first deliver
  bool client_table_encoded_ = false;
  std::vector<core::LoggedEntry> entries_scratch_;

  std::uint64_t events_ = 0;
  bool liveness_ = false;
  bool done_ = false;
  // The probe reached every node: no new writes; the run ends once every write has ended.
  bool draining_ = false;
  Time liveness_start_ = 0;
  std::uint64_t probe_tag_ = 0;
  std::uint64_t transfer_tag_ = 0;  // requests to request_transfer(), numbered
  std::uint32_t probe_node_ = 0;
  Time probe_time_ = 0;
  std::int64_t acked_before_probe_ = -1;
  std::uint64_t disk_failures_ = 0;
  std::uint64_t zombies_ = 0;
  std::uint64_t zombie_frames_ = 0;
  std::uint64_t zombie_frames_delivered_ = 0;
  std::uint64_t lost_tails_ = 0;
  std::uint64_t lost_tail_entries_ = 0;
};

}  // namespace fastzab::sim
