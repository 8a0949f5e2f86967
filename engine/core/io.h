// What goes into the core (Input) and what comes out of it (Output). The core performs no I/O:
// the host (the simulator, or engine/runtime) carries out the outputs in order and reports their
// completions back as inputs.
//
// Host contract:
//  * Outputs are executed in the order they appear in `Outputs::items`.
//  * Durable effects (append, truncate, persist_epochs, install_snapshot) become durable in that
//    same order; completions are reported in that order (log_durable, epochs_durable,
//    snapshot_installed). truncate takes effect before any later append. Reporting a
//    completion for an append or snapshot the core never issued is a host bug (it aborts).
//  * send_after_durable leaves only once its barrier holds (Node::durable() covers it);
//    SendGate implements this rule and keeps each peer's stream FIFO (a may_overtake send need
//    not wait behind held frames). core::Host keeps the whole contract.
//  * A session delivers frames in order, reliably, and nothing after it is closed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <variant>
#include <vector>

#include "codec.h"
#include "types.h"
#include "write_outcome.h"

namespace fastzab::core {

// A client's write, on any node: the leader proposes it; a follower or observer in broadcast
// forwards it to its leader (REQUEST) and hears the outcome back (REPLY). Either way it ends in
// exactly one write_done output with its tag.
// With an id (client != 0) the write is exactly-once: a retry with the same id (after an
// unknown_outcome, on any node) that was already committed ends committed at the original zxid
// and is not proposed again; one still in flight at the leader ends with it.
struct ClientProposal {
  std::uint64_t tag = 0;  // chosen by the host, echoed in proposal_accepted and write_done
  Bytes bytes;            // the value (at most kMaxEntryBytes)
  WriteId id;             // client 0: anonymous, no retry protection
};

namespace input {
struct Message {
  ServerId from;
  SessionId session;
  Bytes frame;  // one codec frame, untrusted
};
struct Tick {};
// The append output whose last entry is `zxid` is durable, and so is every durable effect
// issued before it. A host that syncs several appends at once reports the last one.
struct LogDurable {
  Zxid zxid;
};
struct EpochsDurable {
  Epoch accepted;
  Epoch current;
};
struct SnapshotInstalled {
  Zxid zxid;
};
struct ClientProposals {
  std::span<const ClientProposal> proposals;
};
struct SessionUp {
  ServerId peer;
  SessionId session;
};
struct SessionDown {
  ServerId peer;
  SessionId session;
};
// Planned failover: hand leadership to `target` (kNoServer: the leader picks the most caught-up
// voting follower). Answered by one transfer_result output with the same tag.
struct TransferLeadership {
  ServerId target = kNoServer;
  std::uint64_t tag = 0;
};
}  // namespace input

using Input = std::variant<input::Message, input::Tick, input::LogDurable, input::EpochsDurable,
                           input::SnapshotInstalled, input::ClientProposals, input::SessionUp,
                           input::SessionDown, input::TransferLeadership>;

enum class OutputKind : std::uint8_t {
  send,                // frame to peer on session, now
  send_after_durable,  // frame to peer on session, once `barrier` holds (persist before ack)
  close_session,       // drop the connection to peer (protocol error, lagging learner)
  append,              // append `count` entries with consecutive zxids from `zxid`; no bytes:
                       // Node::entries(output) views them (header and value: decode_entry)
  truncate,            // drop every log entry > zxid
  persist_epochs,      // write acceptedEpoch and currentEpoch atomically
  install_snapshot,    // replace application state and log by the snapshot (bytes) at zxid;
                       // split_snapshot gives the application's part
  send_snapshot,       // send peer a SNAP frame with the application's state at zxid; bytes =
                       // the client table to put before it (SendGate::send_snapshot)
  deliver,             // committed: `count` entries with consecutive zxids from zxid; no bytes:
                       // Node::entries(output) views their values (what the application applies)
  role_change,         // role / leader / epoch changed; established = broadcast phase reached
  proposal_accepted,   // (leader) client proposal `tag` got `zxid`; its write_done follows
  write_done,          // client proposal `tag` ended: `outcome` (write_outcome.h: exactly one
                       // per ClientProposal); `zxid` if committed; `reason` details a refusal
  transfer_result,     // transfer request `tag` ended with `transfer`; leader = its target
};
const char* to_string(OutputKind k) noexcept;

// `transferring`: the leader is handing leadership over; retry at the new leader.
// `stale_sequence`: the client's id names an older sequence than one already committed or in
// flight for it; its outcome was decided before (client sequences must increase).
enum class RejectReason : std::uint8_t {
  not_leader,
  not_established,
  zxid_exhausted,
  too_large,
  transferring,
  stale_sequence,
};
const char* to_string(RejectReason r) noexcept;

// The outcome a refusal for `r` ends with (write_outcome.h): `r` is its detail.
constexpr WriteOutcome outcome_of(RejectReason r) noexcept {
  switch (r) {
    case RejectReason::too_large: return WriteOutcome::too_large;
    case RejectReason::zxid_exhausted: return WriteOutcome::rejected;
    case RejectReason::stale_sequence: return WriteOutcome::stale_sequence;
    case RejectReason::not_leader:
    case RejectReason::not_established:
    case RejectReason::transferring: break;
  }
  return WriteOutcome::no_leader;
}

enum class TransferOutcome : std::uint8_t {
  handed_off,    // the target has everything committed and was told to lead; this node follows it
  not_leader,    // this node is not an established leader
  in_progress,   // another transfer is under way
  no_candidate,  // the named server (or every server) is not a connected, synced voting follower
  aborted,       // the target was lost or did not catch up in time; the leader goes on leading
};
const char* to_string(TransferOutcome t) noexcept;

// Why a node left its role for a new election (role_change to looking), or why a leader closed
// a learner's session (close_session). For the operator's log only: nothing decides on it.
enum class Cause : std::uint8_t {
  none,                 // role_change: not to looking; close_session: the node is leaving its role
  start,                // the node's first step
  leader_new_round,     // (learner) its leader started a newer election round
  leader_session_down,  // (learner) the session with its leader ended
  leader_silent,        // (learner) nothing from the leader past leaderSilence (initLimit while syncing)
  leader_epoch_older,   // (learner) the leader's epoch is older than this node's promise
  protocol_error,       // a malformed or out-of-place packet (counters.protocol_errors)
  quorum_lost,          // (leader) no quorum heard from within syncLimit
  sync_too_slow,        // (leader) discovery and synchronization not done within initLimit
  epoch_exhausted,      // (leader) its epoch's zxid counter ran out
  learner_newer_epoch,  // (leader) a learner promised a newer epoch than this leader's
  learner_ahead,        // (leader) a learner holds history this leader lacks
  learner_silent,       // (leader) a learner silent past syncLimit (initLimit while syncing)
  learner_not_acking,   // (leader) a learner answered pings but acked nothing for syncLimit
  learner_out_of_memory_history,  // (leader) what a learner lacks is no longer in memory
};
const char* to_string(Cause c) noexcept;

// A send_after_durable frame may leave only when the log is durable through `log_zxid` and both
// epoch files hold at least the given values.
struct DurableBarrier {
  Zxid log_zxid = kNoZxid;
  Epoch accepted = kNoEpoch;
  Epoch current = kNoEpoch;
};

// What a node's durable state holds now (Node::durable()): the log through `log_zxid`, and
// the two epoch files.
struct DurablePoint {
  Zxid log_zxid = kNoZxid;
  Epoch accepted = kNoEpoch;
  Epoch current = kNoEpoch;
  bool covers(const DurableBarrier& b) const noexcept {
    return b.log_zxid <= log_zxid && b.accepted <= accepted && b.current <= current;
  }
};

struct Output {
  OutputKind kind = OutputKind::send;
  ServerId peer;
  SessionId session;
  Zxid zxid = kNoZxid;
  std::uint32_t count = 0;
  DurableBarrier barrier;
  Epoch accepted = kNoEpoch;  // persist_epochs, role_change (epoch of the role)
  Epoch current = kNoEpoch;   // persist_epochs
  PeerState role = PeerState::looking;
  ServerId leader = kNoServer;
  bool established = false;
  // role_change: the node synchronized with an established leader after starting with
  // DurableState::state_lost; the host may now clear its durable mark.
  bool state_restored = false;
  // send: the frame depends on no earlier frame of its stream (a learner's REQUEST, forwarded
  // client writes): the host may send it at once even while earlier frames wait for
  // durability (SendGate does), instead of queuing it behind a follower's held ACK.
  bool may_overtake = false;
  std::uint64_t tag = 0;
  RejectReason reason = RejectReason::not_leader;
  WriteOutcome outcome = WriteOutcome::committed;
  TransferOutcome transfer = TransferOutcome::handed_off;
  Cause cause = Cause::none;  // role_change to looking, close_session: why (a log's words)
  std::size_t offset = 0;  // bytes in Outputs::arena
  std::size_t length = 0;
};

// Caller-owned output buffer. step() appends; the caller processes and then clear()s it, so the
// capacity is reused and the steady state allocates nothing. One step can be huge (delivering
// or syncing a whole replayed log: 100k 1 KiB entries grew the arena past 100 MB): capacity
// beyond kKeepBytes is given back at clear(), which the steady state never reaches.
class Outputs {
 public:
  static constexpr std::size_t kKeepBytes = std::size_t{8} << 20;
  static constexpr std::size_t kKeepItems = kKeepBytes / 64;

  std::vector<Output> items;
  ByteBuffer arena;

  Bytes bytes(const Output& o) const noexcept { return Bytes(arena).subspan(o.offset, o.length); }
  void clear() noexcept {
    if (items.capacity() > kKeepItems) {
      std::vector<Output>().swap(items);
    } else {
      items.clear();
    }
    if (arena.capacity() > kKeepBytes) {
      ByteBuffer().swap(arena);
    } else {
      arena.clear();
    }
  }
};

}  // namespace fastzab::core
