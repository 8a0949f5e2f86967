// Fast Leader Election as an event-driven state machine (reference §2). ZooKeeper's blocking
// lookForLeader loop becomes: notifications in, ticks for the notification back-off and the
// finalize wait, and a decision that starts the ZAB role.
#include <algorithm>

#include "invariant.h"
#include "constants.h"
#include "node_impl.h"

namespace fastzab::core {

namespace {
// Vote.equals (reference §2.8): LOOKING votes compare fully; established members may report
// different zxids and rounds for the same leader, so they compare by (leader, peerEpoch), or by
// leader alone when exactly one of them speaks the version-0 format (it has no peerEpoch).
bool same_vote(const RecordedVote& a, const RecordedVote& b) {
  if (a.state == PeerState::looking || b.state == PeerState::looking) return a.vote == b.vote;
  if ((a.version == 0) != (b.version == 0)) return a.vote.leader == b.vote.leader;
  return a.vote.leader == b.vote.leader && a.vote.peer_epoch == b.vote.peer_epoch;
}
}  // namespace

Vote Node::Impl::initial_vote() const {
  if (!is_voter(self)) return Vote{kNoServer, kNoZxid, round, kNoEpoch};
  return Vote{cfg.self, state_lost ? kLostZxid : history.last(), round, current_epoch};
}

// totalOrderPredicate (reference §2.2): a candidate with weight 0 never wins; otherwise the
// strict lexicographic order on (peerEpoch, zxid, server id).
bool Node::Impl::beats(const Vote& candidate, const Vote& current) const {
  const auto index = member(candidate.leader);
  if (!index || cfg.cluster.verifier().weight(*index) == 0) return false;
  if (candidate.peer_epoch != current.peer_epoch) return candidate.peer_epoch > current.peer_epoch;
  if (candidate.zxid != current.zxid) return candidate.zxid > current.zxid;
  return candidate.leader > current.leader;
}

MemberSet Node::Impl::agreeing(const std::vector<std::optional<RecordedVote>>& votes,
                               const RecordedVote& ref) const {
  MemberSet set;
  for (std::size_t i = 0; i < votes.size(); ++i) {
    if (votes[i] && is_voter(i) && same_vote(*votes[i], ref)) {
      set.set(i);
    }
  }
  return set;
}

// checkLeader (reference §2.5, ZOOKEEPER-1514): follow someone else only if that leader itself
// says it is LEADING; lead only if the round is my current round.
bool Node::Impl::check_leader(const std::vector<std::optional<RecordedVote>>& votes,
                              ServerId leader, std::int64_t in_round) const {
  if (leader != cfg.self) {
    const auto index = member(leader);
    return index && votes[*index] && votes[*index]->state == PeerState::leading;
  }
  return in_round == round;
}

void Node::Impl::start_election(Cause why) {
  if (transfer_active) end_transfer(TransferOutcome::aborted);
  abandon_writes();
  // Hellos were sent to the role this node is leaving; a new round makes everyone decide again.
  std::fill(pending_hellos.begin(), pending_hellos.end(), std::nullopt);
  if (state == PeerState::leading) {
    for (std::size_t i = 0; i < learners.size(); ++i) {
      if (learners[i].active) close_session(i);
    }
  } else if (state == PeerState::following || state == PeerState::observing) {
    if (leader_session.value != 0 && sessions[leader_index] == leader_session) {
      close_session(leader_index);
    }
  }
  const bool was_looking = state == PeerState::looking && round != 0;
  state = PeerState::looking;
  phase = ZabPhase::election;
  ++counters.elections_started;
  ++round;
  proposal = initial_vote();
  std::fill(recvset.begin(), recvset.end(), std::nullopt);
  std::fill(outofelection.begin(), outofelection.end(), std::nullopt);
  finalizing = false;
  notify_timeout = cfg.notify_min_ticks;
  quiet_ticks = 0;
  std::fill(learners.begin(), learners.end(), LearnerRecord{});
  leader_epoch = kNoEpoch;
  leader_session = SessionId{};
  session_epoch = kNoEpoch;
  // A learner never keeps commit knowledge it has not applied across a role change: the next
  // leader tells it again. (The applied prefix is committed and stays.)
  commit = applied;
  if (!was_looking) emit_role_change(false).cause = why;
  broadcast_notification();
}

void Node::Impl::send_notification(std::size_t peer, PeerState as, const Vote& v) {
  if (!session_up(peer)) return;
  send_frame(peer, sessions[peer], nullptr, [&](ByteBuffer& b) {
    Notification n;
    n.state = as;
    n.leader = v.leader;
    n.zxid = v.zxid;
    n.round = v.round;
    n.peer_epoch = v.peer_epoch;
    n.version = kNotificationVersion;
    encode_notification(n, b);
  });
}

void Node::Impl::broadcast_notification() {
  FASTZAB_ASSERT(state == PeerState::looking);
  proposal.round = round;
  // My own notification reaches me through the loopback (QCM:690-692).
  recvset[self] = RecordedVote{proposal, PeerState::looking, kNotificationVersion};
  for (std::size_t i = 0; i < sessions.size(); ++i) {
    if (i != self && is_voter(i)) send_notification(i, PeerState::looking, proposal);
  }
  if (is_voter(self)) {
    Notification mine;
    mine.state = PeerState::looking;
    mine.leader = proposal.leader;
    mine.zxid = proposal.zxid;
    mine.round = round;
    mine.peer_epoch = proposal.peer_epoch;
    handle_looking(self, mine);
  }
}

void Node::Impl::on_notification(std::size_t from, const Notification& n) {
  // Replies (WorkerReceiver, reference §2.7) happen whatever the election loop does with it.
  if (!is_voter(from)) {
    // An observer asks; a voter answers with what it believes (an observer does not answer an
    // observer: neither vote counts, and the two would answer each other forever).
    if (!is_voter(self)) return;
    if (state == PeerState::looking) send_notification(from, PeerState::looking, proposal);
    else send_notification(from, state, current_vote);
    return;
  }
  if (state != PeerState::looking) {
    if (n.state == PeerState::looking) {
      if ((state == PeerState::following || state == PeerState::observing) &&
          from == leader_index && n.round > current_vote.round) {
        // My leader started a newer election: it has left its role, so this session ends.
        start_election(Cause::leader_new_round);
        return;
      }
      send_notification(from, state, current_vote);
    }
    return;
  }
  if (n.state == PeerState::looking && n.round < round && is_voter(self)) {
    // Bring a voter of an older round forward. An observer does not: the voter answers a
    // non-voter with its own vote, so the two would ping-pong forever.
    send_notification(from, PeerState::looking, proposal);
  }
  quiet_ticks = 0;
  const auto leader = member(n.leader);
  if (!leader || !is_voter(*leader)) {
    ++counters.ignored_notifications;
    return;
  }
  if (finalizing) {
    // Finalize wait (reference §2.5 step 6): only a better vote interrupts it. Another one of
    // this round is still recorded: it may be the last agreement that settles the election.
    const Vote v{n.leader, n.zxid, n.round, n.peer_epoch};
    if (!beats(v, proposal)) {
      if (n.state == PeerState::looking && n.round == round && n.zxid != kLostZxid) {
        recvset[from] = RecordedVote{v, PeerState::looking, n.version};
        settle_early();
      }
      return;
    }
    finalizing = false;
  }
  switch (n.state) {
    case PeerState::looking: handle_looking(from, n); break;
    case PeerState::following:
    case PeerState::leading: handle_established(from, n); break;
    case PeerState::observing: ++counters.ignored_notifications; break;
  }
}

void Node::Impl::handle_looking(std::size_t from, const Notification& n) {
  // A server whose state is lost never takes part (ZOOKEEPER-261), neither as the sender nor
  // as the receiver: it may only join a leader others established (handle_established). It
  // still follows the rounds, so that the established voters' answers to it count there.
  if (state_lost && from != self && n.round > round) {
    round = n.round;
    std::fill(recvset.begin(), recvset.end(), std::nullopt);
    proposal = initial_vote();
    broadcast_notification();
  }
  if (n.zxid == kLostZxid || state_lost) {
    ++counters.ignored_notifications;
    return;
  }
  const Vote theirs{n.leader, n.zxid, n.round, n.peer_epoch};
  if (n.round > round) {
    round = n.round;
    std::fill(recvset.begin(), recvset.end(), std::nullopt);
    const Vote mine = initial_vote();
    proposal = beats(theirs, mine) ? theirs : mine;
    proposal.round = round;
    broadcast_notification();
    if (state != PeerState::looking) return;
  } else if (n.round < round) {
    return;
  } else if (beats(theirs, proposal)) {
    proposal = theirs;
    proposal.round = round;
    broadcast_notification();
    if (state != PeerState::looking) return;
  } else if (from != self && beats(proposal, theirs)) {
    // A worse vote of my round: the sender has not seen mine (votes only get better), e.g. it
    // was still FOLLOWING a leader it had not given up yet when mine went out, and answered
    // with its old vote. Tell it now instead of at the next notification timeout, which is
    // the whole finalize wait (ZooKeeper waits it out).
    send_notification(from, PeerState::looking, proposal);
  }
  recvset[from] = RecordedVote{theirs, PeerState::looking, n.version};
  const RecordedVote ref{Vote{proposal.leader, proposal.zxid, round, proposal.peer_epoch},
                         PeerState::looking, kNotificationVersion};
  if (!finalizing && cfg.cluster.verifier().is_quorum(agreeing(recvset, ref))) {
    finalizing = true;
    finalize_deadline = now + cfg.finalize_wait_ticks;
  }
  settle_early();
}

// The finalize wait exists for a better vote still on its way. Only a voter can send one, and
// only over a live session (a voter without one must connect first, and then this node is no
// longer finalizing unless the vote it brings is worse). So when every voter this node has a
// session with already agrees, the wait cannot change the outcome. Safety never rests on the
// wait: a quorum agreeing on a leader is what makes it hold every committed write.
bool Node::Impl::election_settled(const MemberSet& agree) const {
  for (std::size_t i = 0; i < sessions.size(); ++i) {
    if (!is_voter(i)) continue;
    const bool can_speak = i == self || session_up(i);
    if (can_speak && !agree.test(i)) return false;
  }
  return true;
}

void Node::Impl::settle_early() {
  if (state != PeerState::looking || !finalizing) return;
  const Vote v{proposal.leader, proposal.zxid, round, proposal.peer_epoch};
  if (!election_settled(agreeing(recvset, RecordedVote{v, PeerState::looking, kNotificationVersion}))) {
    return;
  }
  ++counters.elections_settled_early;
  decide(v);
}

void Node::Impl::handle_established(std::size_t from, const Notification& n) {
  const Vote theirs{n.leader, n.zxid, n.round, n.peer_epoch};
  const RecordedVote recorded{theirs, n.state, n.version};
  const auto& verifier = cfg.cluster.verifier();
  if (n.round == round) {
    recvset[from] = recorded;
    if (verifier.is_quorum(agreeing(recvset, recorded)) &&
        check_leader(recvset, n.leader, n.round)) {
      decide(theirs);
      return;
    }
  }
  outofelection[from] = recorded;
  if (verifier.is_quorum(agreeing(outofelection, recorded)) &&
      check_leader(outofelection, n.leader, n.round)) {
    round = n.round;
    decide(theirs);
  }
}

void Node::Impl::election_tick() {
  if (finalizing) {
    if (now >= finalize_deadline) decide(Vote{proposal.leader, proposal.zxid, round, proposal.peer_epoch});
    return;
  }
  if (++quiet_ticks >= notify_timeout) {
    // Nothing heard for a whole interval: send again and back off (FLE:970-997).
    quiet_ticks = 0;
    // No overflow: notify_max_ticks <= kMaxDurationTicks <= INT32_MAX / 2.
    // A lost state cannot make the election progress, only learn its outcome: it keeps asking
    // at the first interval, or it would hear of an established leader up to a minute late.
    if (!state_lost) notify_timeout = std::min(notify_timeout * 2, cfg.notify_max_ticks);
    broadcast_notification();
  }
}

void Node::Impl::decide(const Vote& v) {
  FASTZAB_ASSERT(state == PeerState::looking);
  finalizing = false;
  current_vote = v;
  std::fill(recvset.begin(), recvset.end(), std::nullopt);
  std::fill(outofelection.begin(), outofelection.end(), std::nullopt);
  if (v.leader == cfg.self) {
    FASTZAB_ASSERT(!self_observer);
    start_leading();
    return;
  }
  const auto index = member(v.leader);
  FASTZAB_ASSERT(index.has_value());
  start_learning(*index);
}

}  // namespace fastzab::core
