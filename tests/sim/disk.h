// One node's simulated disk and application.
//
// The node's durable effects (append, truncate, persist_epochs, install_snapshot) queue up in
// issue order and complete in that order, each after a random latency (a slow disk sometimes
// takes much longer). Two images are kept: the volatile one (every op applied at issue) and the
// durable one (ops applied as they complete). A crash keeps the durable image, plus optionally a
// prefix of the pending ops (a torn write), and loses the rest.
//
// The application state is the sequence of delivered (zxid, bytes), replaced by install_snapshot.
// It is durable at each deliver, except that what is delivered on top of a snapshot that is not
// installed yet becomes durable only with (after) that snapshot.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "engine/core/node.h"
#include "events.h"
#include "rng.h"

namespace fastzab::sim {

struct AppEntry {
  core::Zxid zxid;
  std::string payload;
  friend bool operator==(const AppEntry&, const AppEntry&) = default;
};

struct AppState {
  core::Zxid zxid = core::kZeroZxid;  // applied: last delivered, or the installed snapshot's
  std::vector<AppEntry> entries;      // everything delivered since the beginning, in order
  // The core's client table, kept with the application as a real host keeps it in its
  // snapshots (DurableState::client_table at a restart).
  core::ByteBuffer client_table;
};

// The SNAP payload the simulated application produces: int64 zxid, int32 count, then per entry
// int64 zxid, int32 length, bytes (big-endian).
void encode_snapshot(const AppState& app, core::ByteBuffer& out);
std::optional<AppState> decode_snapshot(core::Bytes data);

struct LogImage {
  core::Zxid base = core::kZeroZxid;
  std::vector<core::LoggedEntry> entries;

  core::Zxid last() const noexcept { return entries.empty() ? base : entries.back().zxid; }
  bool holds(core::Zxid z) const noexcept;  // z <= base or z is an entry
  void truncate_after(core::Zxid z);
};

struct EpochImage {
  core::Epoch accepted{0};
  core::Epoch current{0};
};

struct DiskParams {
  Time latency_min = 1;
  Time latency_max = 4;
  std::uint32_t slow_per_mille = 0;  // chance that an op is slow
  Time slow_min = 20;
  Time slow_max = 300;
};

// An injected I/O error (Profile::disk_errors). A failed op reports it instead of its completion;
// every op after it fails too (the production log is poisoned: log/log.h).
enum class DiskError : std::uint8_t {
  none,
  eio,       // the write failed part-way: a prefix of it may have reached the disk
  enospc,    // nothing of it was written
  fsync,     // written, but the sync failed: any part of it may or may not be on the disk
  poisoned,  // an op issued after a failed one (never attempted)
};
const char* to_string(DiskError e) noexcept;

// What a completed op reports to the node (and its SendGate).
struct Completion {
  enum class Kind : std::uint8_t { none, log_durable, epochs_durable, snapshot_installed };
  Kind kind = Kind::none;
  core::Zxid zxid = core::kNoZxid;
  core::Epoch accepted = core::kNoEpoch;
  core::Epoch current = core::kNoEpoch;
  // The durable image changed in a way that bears on the epoch start-up rules (epochs, snapshot,
  // truncate, or entries of an epoch above the durable currentEpoch): worth a restart probe.
  bool probe_restart = false;
  // Failed (the durable image holds at most part of it, see DiskError): the host must fail-stop.
  DiskError error = DiskError::none;
  const char* op = "";  // the failed op: "append", "epoch write", "snapshot save", ...
  std::uint64_t id = 0;  // the op's (Disk::last_issued() numbering)
};

class Disk {
 public:
  Disk(std::uint32_t node, Rng& rng, EventQueue& queue, DiskParams params);

  // ---- issue (from the node's outputs, in order); a non-empty string is a contract violation
  std::string append(core::Zxid first, std::vector<core::LoggedEntry> entries);
  std::string truncate(core::Zxid z);
  void persist_epochs(core::Epoch accepted, core::Epoch current);
  void install_snapshot(core::Zxid z, AppState app);
  // `client_table`: the core's, once these entries are delivered.
  void deliver(std::vector<AppEntry> entries, const core::ByteBuffer& client_table);

  // ---- completion of op `id` (events arrive in op order)
  Completion complete(std::uint64_t id);

  // ---- crash: keeps `survivors` of the pending ops (in order), loses the rest
  void crash(std::size_t survivors);
  // Recovery at start, before durable_state() is handed to a new Node: drops the log entries
  // after `truncate_to` (core::drop_unacknowledged_tail) and returns them.
  std::vector<core::LoggedEntry> recovery_truncate(core::Zxid truncate_to);
  // When the application durably applied entries whose log records were lost, its state is the
  // snapshot the log restarts from (as the core does, node.h DurableState).
  void recover();
  // Host-bug self-test only: drops the last `count` durable log entries (a lying fsync). Also
  // the lost-tail fault (recovery cut records it may have acknowledged). Returns how many went.
  std::size_t lose_synced(std::size_t count);
  // DurableState::state_lost, kept durable by the host until the node says state_restored.
  void set_state_lost(bool lost) noexcept { state_lost_ = lost; }
  bool state_lost() const noexcept { return state_lost_; }
  std::size_t pending() const noexcept { return ops_.size(); }

  // ---- injected faults
  // The next op of one of these kinds issued from now on fails with `error`.
  enum KindMask : std::uint8_t { kAppend = 1, kEpochs = 2, kSnapshot = 4 };
  void arm_error(DiskError error, std::uint8_t kinds) noexcept {
    armed_error_ = error;
    armed_kinds_ = kinds;
  }
  void disarm_error() noexcept { armed_kinds_ = 0; }
  bool poisoned() const noexcept { return poisoned_; }
  // Ops are numbered 1, 2, 3, ... in issue order.
  std::uint64_t last_issued() const noexcept { return next_op_ - 1; }
  std::uint64_t oldest_pending() const noexcept { return ops_.empty() ? next_op_ : ops_.front().id; }
  // A hung disk: nothing completes before `until` (the ops already queued included); issue
  // order is kept. Completion events carry schedule_gen(): older ones are stale.
  void stall(Time until);
  void end_stall();  // the liveness phase: what is queued completes now
  Time stalled_until() const noexcept { return stall_until_; }
  std::uint64_t schedule_gen() const noexcept { return schedule_gen_; }
  std::uint64_t incarnation() const noexcept { return incarnation_; }

  core::DurableState durable_state() const;
  // The same, with the log entries up to the last one <= applied folded into the log's base: the
  // tail must hold every entry above applied, older ones only serve DIFF syncs. A node starts
  // from it exactly as from durable_state(), and it is cheap to build (restart probes).
  core::DurableState durable_state_above_applied() const;
  // Empty when the durable image is one a node may restart from; else what is wrong with it.
  // The cheap rules, checked after every step: currentEpoch <= acceptedEpoch, and the application
  // neither behind the log's base nor between its entries, with the log as the core recovers it
  // (core::drop_unacknowledged_tail). Cluster::probe_restart checks the rest with a real Node.
  std::string check_durable() const;

  const AppState& app() const noexcept { return app_; }
  const AppState& durable_app() const noexcept { return durable_app_; }
  const LogImage& log() const noexcept { return log_; }
  const LogImage& durable_log() const noexcept { return durable_log_; }
  const EpochImage& epochs() const noexcept { return epochs_; }
  const EpochImage& durable_epochs() const noexcept { return durable_epochs_; }

  void set_slow(bool slow) noexcept { slow_ = slow; }
  void set_params(const DiskParams& p) noexcept { params_ = p; }

 private:
  enum class OpKind : std::uint8_t { append, truncate, epochs, snapshot, app_deliver };
  struct Op {
    std::uint64_t id = 0;
    OpKind kind = OpKind::append;
    core::Zxid zxid = core::kNoZxid;
    std::vector<core::LoggedEntry> entries;  // append
    EpochImage epochs;                       // epochs
    AppState app;                            // snapshot
    std::vector<AppEntry> app_entries;       // app_deliver
    DiskError error = DiskError::none;
    Time due = 0;
  };
  void schedule(const Op& op);
  Completion fail(Op& op);
  void enqueue(Op op, bool instant);
  void apply_durable(Op& op);
  bool snapshot_pending() const noexcept;

  std::uint32_t node_;
  Rng& rng_;
  EventQueue& q_;
  DiskParams params_;
  bool slow_ = false;
  std::uint64_t incarnation_ = 0;
  std::uint64_t next_op_ = 1;
  Time last_done_ = 0;
  std::deque<Op> ops_;
  DiskError armed_error_ = DiskError::none;
  std::uint8_t armed_kinds_ = 0;
  bool poisoned_ = false;
  bool state_lost_ = false;
  Time stall_until_ = 0;
  std::uint64_t schedule_gen_ = 0;

  LogImage log_, durable_log_;
  EpochImage epochs_, durable_epochs_;
  AppState app_, durable_app_;
};

}  // namespace fastzab::sim
