// One server's protocol state machine: Fast Leader Election, then ZAB discovery, synchronization
// and broadcast as leader, follower or observer (reference §2 and §4). Pure and deterministic:
// the same inputs always give the same outputs.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "client_table.h"
#include "history.h"
#include "io.h"
#include "quorum.h"
#include "types.h"

namespace fastzab::core {

// Every duration is a count of Tick inputs, 1..kMaxDurationTicks; the host chooses what a tick
// is. The defaults are the simulator's and the scenarios' (a coarse tick); the runtime drives
// the core with a fine tick (1 ms by default) and converts zoo.cfg's settings into these fields
// (runtime::node_timing). A "periodic" duration fires on every tick whose count since the
// node started is a multiple of it.
struct NodeConfig {
  ClusterConfig cluster;
  ServerId self;
  // LOOKING: after a quorum agrees on a vote, how long to wait for a better one before deciding
  // (FLE finalizeWait, 200 ms in ZooKeeper).
  std::int32_t finalize_wait_ticks = 2;
  // LOOKING: the first silence after which the vote is broadcast again; each further silent
  // interval doubles it (FLE minNotificationInterval, = finalizeWait in ZooKeeper).
  std::int32_t notify_min_ticks = 2;
  // LOOKING: the cap of that doubling (FLE maxNotificationInterval, 60 s in ZooKeeper).
  std::int32_t notify_max_ticks = 64;
  // FOLLOWING/OBSERVING before LEADERINFO: period of re-sending FOLLOWERINFO/OBSERVERINFO (the
  // leader may still have been LOOKING when the first one arrived, and ignored it). Periodic.
  std::int32_t learner_hello_retry_ticks = 2;
  // LEADING: period of the PING to every learner (ZooKeeper: tickTime/2). Periodic.
  std::int32_t ping_ticks = 1;
  // FOLLOWING/OBSERVING in broadcast: a leader silent for longer than this is given up (back to
  // LOOKING). ZooKeeper uses syncLimit*tickTime (the learner's socket read timeout). Must exceed
  // ping_ticks, or a live leader is given up between two pings.
  std::int32_t leader_silence_ticks = 10;
  // initLimit: the budget of discovery + synchronization, on both sides: the leader gives up
  // leading if they do not finish in it, drops a learner silent that long before UPTODATE, and
  // a learner gives up a leader silent that long before broadcast.
  std::int32_t init_limit_ticks = 20;
  // syncLimit, the leader's ack limits in broadcast: it drops a learner silent (no packet at
  // all) for longer than this, or one that leaves a proposal unacknowledged that long, and it
  // stops leading when it has not heard a quorum within it.
  std::int32_t sync_limit_ticks = 10;
  // LEADING, during a leadership transfer: how long to wait for the target to hold and commit
  // everything before giving the transfer up and accepting writes again.
  std::int32_t transfer_timeout_ticks = 10;
  // The last usable zxid counter; lower it in tests to exercise epoch rollover.
  std::uint32_t max_zxid_counter = kMaxZxidCounter;
  // Committed entries kept in memory to serve DIFF syncs; older learners get SNAP.
  std::size_t history_window = 1024;
  std::size_t max_batch_entries = 1024;
  // Exactly-once writes: the clients whose last write id is remembered (ClientTable). Every
  // server of a cluster should use the same value (the table travels in snapshots).
  std::size_t max_clients = 16384;
};

struct LoggedEntry {
  Zxid zxid;
  ByteBuffer bytes;
};

// What the host recovered from disk at start.
struct DurableState {
  Epoch accepted_epoch{0};
  Epoch current_epoch{0};
  // The log may have lost records this node acknowledged (recovery cut records that were
  // possibly synced: corruption, or a tail it cannot tell from a torn write). Until it has
  // synchronized with an established leader again it must neither vote nor count in an epoch
  // quorum (I12, ZOOKEEPER-261): its votes and ACKEPOCH carry zxid -1, which every voter
  // ignores, and it follows only a leader that a quorum of others already follows. The host
  // keeps this durable (set before the node starts) until a role_change output says
  // `state_restored`.
  bool state_lost = false;
  // The application has applied (been delivered) every committed entry <= applied_zxid.
  Zxid applied_zxid = kZeroZxid;
  // The log holds every entry after log_base (a snapshot point) in `tail`, in zxid order. `tail`
  // must hold every entry > applied_zxid and may hold older ones (served for DIFF syncs).
  Zxid log_base = kZeroZxid;
  std::vector<LoggedEntry> tail;
  // The client table at applied_zxid (split_snapshot's client_table of the snapshot the
  // application was restored from); empty when the application started from nothing.
  ByteBuffer client_table;
};

// Recovery rule for the log tail. Entries of an epoch newer than currentEpoch can only come
// from a synchronization that never reached ACK(NEWLEADER): the learner logs the leader's
// history first and writes currentEpoch after it (I5), and every ACK it sends is ordered after
// that write. Such entries were never acknowledged by this node, so a restart drops them,
// which keeps the start-up invariant epoch(last logged zxid) <= currentEpoch (reference §4.1).
// Returns the zxid the host must truncate its log to, if any, and applies it to `state`.
std::optional<Zxid> drop_unacknowledged_tail(DurableState& state);

// Counters for what the core refused or dropped; everything is also observable in tests.
struct NodeCounters {
  std::uint64_t decode_errors = 0;
  std::uint64_t stale_session_frames = 0;
  std::uint64_t ignored_notifications = 0;
  std::uint64_t ignored_packets = 0;  // quorum packets for a role this node does not hold
  std::uint64_t protocol_errors = 0;
  std::uint64_t elections_started = 0;
  std::uint64_t learners_dropped = 0;
  // Elections decided before the finalize wait ran out, because every voter this node can hear
  // already agreed (no better vote can arrive from a connected voter).
  std::uint64_t elections_settled_early = 0;
  std::uint64_t transfers_handed_off = 0;
  std::uint64_t transfers_aborted = 0;
};

enum class ZabPhase : std::uint8_t { election, discovery, synchronization, broadcast };
const char* to_string(ZabPhase p) noexcept;

class Node {
 public:
  // Throws std::invalid_argument for a config or durable state that breaks a start-up invariant
  // (reference §4.1: currentEpoch <= acceptedEpoch, epoch(last logged zxid) <= currentEpoch).
  Node(NodeConfig config, DurableState state);
  ~Node();
  Node(Node&&) noexcept;
  Node& operator=(Node&&) noexcept;

  void step(const Input& input, Outputs& out);

  PeerState state() const noexcept;
  ZabPhase phase() const noexcept;
  ServerId id() const noexcept;
  ServerId leader() const noexcept;  // kNoServer while LOOKING
  Epoch accepted_epoch() const noexcept;
  Epoch current_epoch() const noexcept;
  Zxid last_logged() const noexcept;
  Zxid committed() const noexcept;
  Zxid applied() const noexcept;
  const Vote& vote() const noexcept;
  std::int64_t round() const noexcept;
  const NodeCounters& counters() const noexcept;
  // A leadership transfer is under way: client proposals are refused with `transferring`.
  bool transferring() const noexcept;
  bool state_lost() const noexcept;
  // The entries of an append or deliver output of the last step: whole entries (append) or
  // their values (deliver). Valid until the next step.
  EntryRange entries(const Output& o) const;
  // What the host reported durable so far, against the log as it is now (a truncate or a
  // snapshot install not yet completed lowers it): what held frames wait for (SendGate).
  DurablePoint durable() const noexcept;
  // Appends the client table as of applied() (the snapshot's first part: a host that saves the
  // application's state at applied() puts this before it; see split_snapshot).
  void encode_client_table(ByteBuffer& out) const;
  const ClientTable& clients() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fastzab::core
