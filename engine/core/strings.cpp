// Names of the core's enumerations, for logs, digests and error messages.
#include "io.h"
#include "node.h"
#include "types.h"

namespace fastzab::core {

const char* to_string(PeerState s) noexcept {
  switch (s) {
    case PeerState::looking: return "LOOKING";
    case PeerState::following: return "FOLLOWING";
    case PeerState::leading: return "LEADING";
    case PeerState::observing: return "OBSERVING";
  }
  return "UNKNOWN";
}

const char* to_string(OutputKind k) noexcept {
  switch (k) {
    case OutputKind::send: return "send";
    case OutputKind::send_after_durable: return "send_after_durable";
    case OutputKind::close_session: return "close_session";
    case OutputKind::append: return "append";
    case OutputKind::truncate: return "truncate";
    case OutputKind::persist_epochs: return "persist_epochs";
    case OutputKind::install_snapshot: return "install_snapshot";
    case OutputKind::send_snapshot: return "send_snapshot";
    case OutputKind::deliver: return "deliver";
    case OutputKind::role_change: return "role_change";
    case OutputKind::proposal_accepted: return "proposal_accepted";
    case OutputKind::write_done: return "write_done";
    case OutputKind::transfer_result: return "transfer_result";
  }
  return "unknown";
}

const char* to_string(RejectReason r) noexcept {
  switch (r) {
    case RejectReason::not_leader: return "not the leader";
    case RejectReason::not_established: return "leader not yet established";
    case RejectReason::zxid_exhausted: return "zxid counter exhausted, new epoch needed";
    case RejectReason::too_large: return "entry too large";
    case RejectReason::transferring: return "leadership is being transferred";
    case RejectReason::stale_sequence: return "a later write of this client already committed";
  }
  return "unknown";
}

const char* to_string(Cause c) noexcept {
  switch (c) {
    case Cause::none: return "none";
    case Cause::start: return "starting";
    case Cause::leader_new_round: return "the leader started a new election round";
    case Cause::leader_session_down: return "the session with the leader ended";
    case Cause::leader_silent: return "nothing from the leader within its silence limit";
    case Cause::leader_epoch_older: return "the leader's epoch is older than this server's promise";
    case Cause::protocol_error: return "a malformed or out-of-place packet";
    case Cause::quorum_lost: return "no quorum of followers heard from within syncLimit";
    case Cause::sync_too_slow: return "discovery and synchronization not done within initLimit";
    case Cause::epoch_exhausted: return "the epoch's zxid counter ran out";
    case Cause::learner_newer_epoch: return "a learner promised a newer epoch";
    case Cause::learner_ahead: return "the learner holds history the leader lacks";
    case Cause::learner_silent: return "the learner was silent past its limit (syncLimit, or initLimit while syncing)";
    case Cause::learner_not_acking: return "the learner acknowledged nothing for syncLimit";
    case Cause::learner_out_of_memory_history: return "what the learner lacks is no longer in memory";
  }
  return "unknown";
}

}  // namespace fastzab::core

namespace fastzab {

// The embedding API and the client port send these as they are (error texts, mntr, logs).
const char* to_string(WriteOutcome w) noexcept {
  switch (w) {
    case WriteOutcome::committed: return "committed";
    case WriteOutcome::no_leader: return "no_leader";
    case WriteOutcome::too_large: return "too_large";
    case WriteOutcome::rejected: return "rejected";
    case WriteOutcome::stale_sequence: return "stale_sequence";
    case WriteOutcome::unknown_outcome: return "unknown_outcome";
    case WriteOutcome::stopped: return "stopped";
  }
  return "unknown";
}

}  // namespace fastzab

namespace fastzab::core {

const char* to_string(TransferOutcome t) noexcept {
  switch (t) {
    case TransferOutcome::handed_off: return "handed off";
    case TransferOutcome::not_leader: return "not an established leader";
    case TransferOutcome::in_progress: return "a transfer is already in progress";
    case TransferOutcome::no_candidate: return "no connected, synced voting follower to hand to";
    case TransferOutcome::aborted: return "aborted: the target was lost or did not catch up";
  }
  return "unknown";
}

const char* to_string(ZabPhase p) noexcept {
  switch (p) {
    case ZabPhase::election: return "ELECTION";
    case ZabPhase::discovery: return "DISCOVERY";
    case ZabPhase::synchronization: return "SYNCHRONIZATION";
    case ZabPhase::broadcast: return "BROADCAST";
  }
  return "UNKNOWN";
}

}  // namespace fastzab::core
