// Internal state of Node, shared by node.cpp (dispatch, sessions, outputs), election.cpp (FLE),
// leader.cpp and learner.cpp (ZAB roles). Not part of the public interface.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "codec.h"
#include "durability.h"
#include "history.h"
#include "io.h"
#include "node.h"
#include "quorum.h"
#include "ring.h"

namespace fastzab::core {

// A vote as recorded from a notification, with the sender's state (reference §2.3).
struct RecordedVote {
  Vote vote;
  PeerState state = PeerState::looking;
  std::int32_t version = 2;  // notification format version (0 = a pre-3.4.6 peer)
};

// What the leader knows about one learner (ZooKeeper's LearnerHandler).
struct LearnerRecord {
  bool active = false;
  SessionId session;
  bool observer = false;
  Epoch accepted = kNoEpoch;    // from FOLLOWERINFO
  bool leaderinfo_sent = false;
  bool ackepoch_received = false;
  Zxid peer_last = kNoZxid;     // from ACKEPOCH
  Zxid peer_applied = kNoZxid;  // from ACKEPOCH (fastzab extension)
  bool synced = false;          // sync packets and NEWLEADER queued; receives live traffic
  bool newleader_acked = false;
  bool uptodate_sent = false;
  Zxid sent = kNoZxid;          // last entry queued to it
  Zxid acked = kNoZxid;         // highest durable ack (participants)
  std::int32_t silent_ticks = 0;
  std::int32_t ack_stall_ticks = 0;
};

// How the leader brings this learner up to date: its DIFF, TRUNC or SNAP (none until it says).
enum class SyncMethod : std::uint8_t { none, diff, trunc, snap };

struct Node::Impl {
  Impl(NodeConfig cfg, DurableState state);

  // ---- node.cpp ----
  void step(const Input& in, Outputs& out);
  void on_message(const input::Message& m);
  void on_tick();
  void on_session_up(const input::SessionUp& s);
  void on_session_down(const input::SessionDown& s);
  void on_log_durable(Zxid z);
  void on_epochs_durable(Epoch accepted, Epoch current);
  void on_snapshot_installed(Zxid z);
  void on_client_proposals(std::span<const ClientProposal> proposals);

  // ---- writes.cpp: client writes from submission to write_done ----
  // `reason` matters only for a refused write.
  void write_done(std::uint64_t tag, WriteOutcome outcome, Zxid zxid,
                  RejectReason reason = RejectReason::not_leader);
  void refuse(std::uint64_t tag, RejectReason reason) {
    write_done(tag, outcome_of(reason), kNoZxid, reason);
  }
  // Ends every write whose zxid is now applied here (in order, from the oldest).
  void settle_writes();
  // Leaving a role: writes not known to be committed end as unknown_outcome; the leader's
  // record of forwarded writes goes (their learners end them when they leave it too).
  void abandon_writes();
  void learner_forward(std::span<const ClientProposal> proposals);
  void learner_reply(const QuorumPacket& p);
  void leader_request(std::size_t from, const QuorumPacket& p);
  // LEADING: one REPLY telling learner `peer` that these forwarded writes were refused.
  void reply_refused(std::size_t peer, std::span<const ClientProposal> writes, RejectReason why);
  void reply_committed_forwards();
  // LEADING: one REPLY telling learner `peer` that its write `tag` committed at `zxid` (a retry
  // of a write committed before).
  void reply_committed(std::size_t peer, std::uint64_t tag, Zxid zxid);
  void on_transfer_request(const input::TransferLeadership& t);

  std::optional<std::size_t> member(ServerId id) const noexcept;
  ServerId id_of(std::size_t index) const noexcept { return cfg.cluster.members()[index].id; }
  bool session_up(std::size_t peer) const noexcept { return sessions[peer].value != 0; }
  bool is_voter(std::size_t index) const noexcept { return cfg.cluster.verifier().is_voter(index); }

  // Output helpers. Frames are encoded straight into the caller's arena.
  Output& push(OutputKind kind);
  template <class Encode>
  void send_frame(std::size_t peer, SessionId session, const DurableBarrier* barrier,
                  Encode&& encode);
  void send_packet(std::size_t peer, PacketType type, Zxid zxid, const DurableBarrier* barrier);
  void close_session(std::size_t peer, Cause why = Cause::none);
  void persist_epochs();
  Output& emit_role_change(bool established);
  // Emits append or deliver outputs for history entries [first, end), one per zxid run.
  void emit_entries(OutputKind kind, std::size_t first_index, std::size_t end_index);
  void deliver_up_to(Zxid z);
  // Sends entries [first_index, end_index) of history as PROPOSAL (or INFORM) batches.
  void send_entries(std::size_t peer, SessionId session, PacketType type, std::size_t first_index,
                    std::size_t end_index);
  void evict_history();

  // ---- election.cpp ----
  void start_election(Cause why);
  void on_notification(std::size_t from, const Notification& n);
  void election_tick();
  void broadcast_notification();
  void send_notification(std::size_t peer, PeerState state, const Vote& v);
  Vote initial_vote() const;
  bool beats(const Vote& candidate, const Vote& current) const;
  MemberSet agreeing(const std::vector<std::optional<RecordedVote>>& votes,
                     const RecordedVote& ref) const;
  bool check_leader(const std::vector<std::optional<RecordedVote>>& votes, ServerId leader,
                    std::int64_t round) const;
  void handle_looking(std::size_t from, const Notification& n);
  void handle_established(std::size_t from, const Notification& n);
  void decide(const Vote& v);
  bool election_settled(const MemberSet& agree) const;
  void settle_early();

  // ---- leader.cpp ----
  void start_leading();
  void leader_packet(std::size_t from, const QuorumPacket& p);
  void leader_tick();
  void decide_epoch();
  void check_epoch_acks();
  void sync_learner(std::size_t peer);
  void check_established();
  void establish();
  void try_commit();
  void announce_commit(std::size_t peer);
  void drop_learner(std::size_t peer, Cause why);
  // `origin`: the learner that forwarded the proposals (REQUEST), or self for the host's own.
  void leader_propose(std::span<const ClientProposal> proposals, std::size_t origin);
  bool leader_self_ready() const noexcept;
  std::optional<std::size_t> transfer_candidate(ServerId named) const;
  void transfer_progress();
  void hand_off();
  void end_transfer(TransferOutcome outcome);
  void replay_pending_hellos();

  // ---- learner.cpp ----
  void start_learning(std::size_t leader_index);
  void send_learner_info();
  void learner_packet(const QuorumPacket& p);
  void learner_tick();
  bool learner_accept_entries(Zxid first, const BatchView& batch);
  void learner_fail();
  void learner_transfer(const QuorumPacket& p);

  // ---- state ----
  NodeConfig cfg;
  std::size_t self = 0;
  bool self_observer = false;
  Outputs* out = nullptr;
  NodeCounters counters;
  std::int64_t now = 0;  // ticks since start

  // Durable state as issued (accepted/current) and as completed (durable_*).
  Epoch accepted_epoch{0};
  Epoch current_epoch{0};
  Epoch durable_accepted{0};
  Epoch durable_current{0};
  bool state_lost = false;  // DurableState::state_lost, until UPTODATE
  DurabilityTracker log_durability;
  History history;
  bool evict_pending = false;  // evict_history() at the start of the next step
  Zxid applied = kZeroZxid;
  Zxid commit = kZeroZxid;

  PeerState state = PeerState::looking;
  ZabPhase phase = ZabPhase::election;
  std::vector<SessionId> sessions;  // by member index; 0 = down

  // Election (reference §2.3).
  std::int64_t round = 0;
  Vote proposal;
  Vote current_vote;  // the last decided vote, advertised when not LOOKING
  std::vector<std::optional<RecordedVote>> recvset;
  std::vector<std::optional<RecordedVote>> outofelection;
  bool finalizing = false;
  std::int64_t finalize_deadline = 0;
  std::int32_t notify_timeout = 0;
  std::int32_t quiet_ticks = 0;

  // Leader (reference §4.3-4.5).
  std::vector<LearnerRecord> learners;
  Epoch leader_epoch = kNoEpoch;  // chosen epoch e (kNoEpoch until a quorum contributed)
  MemberSet contributors;
  Epoch max_contributed = kNoEpoch;
  MemberSet epoch_acks;
  MemberSet newleader_acks;
  Epoch summary_epoch = kNoEpoch;  // (currentEpoch, lastZxid) when leadership began
  Zxid summary_zxid = kNoZxid;
  Zxid initial_last = kNoZxid;     // last entry of the initial history
  std::int64_t phase_ticks = 0;
  std::vector<Zxid> ack_scratch;
  // The zxid counter of this epoch ran out (LEADING): no more proposals; step down once the
  // rest is committed, or after syncLimit.
  bool epoch_exhausted = false;
  std::int64_t exhausted_at = 0;
  // A leadership transfer in progress (LEADING, broadcast).
  bool transfer_active = false;
  std::size_t transfer_target = 0;
  std::int64_t transfer_deadline = 0;
  std::uint64_t transfer_tag = 0;
  // FOLLOWERINFO/OBSERVERINFO that arrived while LOOKING, by peer: the sender decided before
  // this node did. Kept (for the session it came on) and handled if this node starts leading,
  // so discovery does not wait for the learner's hello retry.
  struct PendingHello {
    SessionId session;
    PacketType type = PacketType::followerinfo;
    Zxid zxid = kNoZxid;
    std::array<std::byte, kLearnerInfoBytes> data{};
  };
  std::vector<std::optional<PendingHello>> pending_hellos;

  // Client writes this node took (ClientProposals) until their write_done, oldest first. zxid
  // is the leader's (assigned when proposed here, or told by REPLY when forwarded); `confirmed`:
  // a REPLY said it committed, so it ends committed whatever happens to the leader.
  struct PendingWrite {
    std::uint64_t tag = 0;
    Zxid zxid = kNoZxid;
    bool confirmed = false;
    bool live = true;
  };
  Ring<PendingWrite> writes;
  // LEADING: learners' forwarded writes proposed here, in zxid order, answered (REPLY) once
  // committed.
  struct ForwardedWrite {
    Zxid zxid;
    std::size_t peer = 0;
    SessionId session;
    std::uint64_t tag = 0;
  };
  Ring<ForwardedWrite> forwarded;
  std::vector<ClientProposal> request_scratch;  // one REQUEST's entries, reused
  // Exactly-once writes. committed_clients: each client's last write id among the entries
  // delivered here (every node; in snapshots). proposed_clients (LEADING): the same over the
  // entries proposed and not yet delivered here, rebuilt from the history when leadership
  // begins. A write id found in either is not proposed again.
  ClientTable committed_clients;
  ClientTable proposed_clients;
  // The newest record of `client` in either table.
  std::optional<ClientTable::Last> last_write_of(std::uint64_t client) const noexcept;

  // Learner (reference §4.3-4.5, follower and observer).
  std::size_t leader_index = 0;
  SessionId leader_session;
  Epoch session_epoch = kNoEpoch;
  bool leaderinfo_received = false;
  SyncMethod sync_method = SyncMethod::none;
  bool newleader_received = false;
  bool uptodate_received = false;
  std::int32_t leader_silent_ticks = 0;
};

template <class Encode>
void Node::Impl::send_frame(std::size_t peer, SessionId session, const DurableBarrier* barrier,
                            Encode&& encode) {
  Output& o = push(barrier ? OutputKind::send_after_durable : OutputKind::send);
  o.peer = id_of(peer);
  o.session = session;
  if (barrier) o.barrier = *barrier;
  o.offset = out->arena.size();
  encode(out->arena);
  o.length = out->arena.size() - o.offset;
}

}  // namespace fastzab::core
