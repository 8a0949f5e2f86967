// The learner's side of ZAB (reference §4.3-4.5), for followers and observers: FOLLOWERINFO,
// the epoch promise, synchronization with the 3.9.4+ persistence order, and broadcast. Every
// PROPOSAL and COMMIT is checked against the leader session's epoch (I3, I9, I20).
#include "invariant.h"
#include "constants.h"
#include "node_impl.h"

namespace fastzab::core {

void Node::Impl::start_learning(std::size_t index) {
  abandon_writes();
  state = self_observer ? PeerState::observing : PeerState::following;
  phase = ZabPhase::discovery;
  leader_index = index;
  leader_session = SessionId{};
  session_epoch = kNoEpoch;
  leaderinfo_received = false;
  sync_method = SyncMethod::none;
  newleader_received = false;
  uptodate_received = false;
  leader_silent_ticks = 0;
  emit_role_change(false);
  if (session_up(index)) {
    leader_session = sessions[index];
    send_learner_info();
  }
}

void Node::Impl::send_learner_info() {
  const PacketType type = self_observer ? PacketType::observerinfo : PacketType::followerinfo;
  send_frame(leader_index, leader_session, nullptr, [&](ByteBuffer& b) {
    encode_learner_info(type, Zxid::make(accepted_epoch, 0),
                        LearnerInfo{cfg.self, kLearnerProtocolVersion, 0}, b);
  });
}

void Node::Impl::learner_fail() {
  ++counters.protocol_errors;
  start_election(Cause::protocol_error);
}

// Appends the entries of a PROPOSAL/INFORM batch that this history does not hold yet. Entries
// already held are duplicates (reference §5.4.2); a gap or an epoch step back is an error (I9).
bool Node::Impl::learner_accept_entries(Zxid first, const BatchView& batch) {
  const std::size_t first_new = history.size();
  Zxid z = first;
  for (Bytes entry : batch) {
    if (z.epoch() > session_epoch || z.counter() == 0) return false;
    if (z <= history.last()) {
      if (z > history.base() && !history.contains(z)) return false;
    } else {
      const Zxid last = history.last();
      const bool contiguous = z.epoch() == last.epoch() ? z.value == last.value + 1
                                                        : (z.epoch() > last.epoch() && z.counter() == 1);
      if (!contiguous) return false;
      if (!decode_entry(entry)) return false;
      history.append(z, entry);
    }
    z = z.next();
  }
  if (history.size() > first_new) emit_entries(OutputKind::append, first_new, history.size());
  return true;
}

void Node::Impl::learner_packet(const QuorumPacket& p) {
  switch (p.type) {
    case PacketType::leaderinfo:
    case PacketType::diff:
    case PacketType::trunc:
    case PacketType::snap:
    case PacketType::proposal:
    case PacketType::inform:
    case PacketType::commit:
    case PacketType::newleader:
    case PacketType::uptodate:
    case PacketType::ping:
    case PacketType::transfer:
    case PacketType::reply:
      leader_silent_ticks = 0;  // only what a leader sends shows that it is alive
      break;
    default:
      // E.g. a FOLLOWERINFO: the peer I follow is not leading.
      return learner_fail();
  }
  switch (p.type) {
    case PacketType::leaderinfo: {
      const auto version = decode_int32(p.data);
      if (leaderinfo_received || !version || p.zxid.counter() != 0) return learner_fail();
      const Epoch e = p.zxid.epoch();
      std::int32_t promised;
      if (e > accepted_epoch) {
        // Persist the promise before acknowledging it (I1, I16).
        promised = static_cast<std::int32_t>(current_epoch.value);
        accepted_epoch = e;
        persist_epochs();
      } else if (e == accepted_epoch) {
        promised = -1;  // already promised this epoch: "not an ack, but sync me"
      } else {
        return start_election(Cause::leader_epoch_older);  // a leader older than my promise
      }
      leaderinfo_received = true;
      session_epoch = e;
      phase = ZabPhase::synchronization;
      // ACKEPOCH advertises the log tail: it leaves only once that tail and the promise are
      // durable (I4, I11).
      const DurableBarrier barrier{history.last(), e, kNoEpoch};
      send_frame(leader_index, leader_session, &barrier, [&](ByteBuffer& b) {
        // A lost state advertises -1: the leader syncs it from its applied point and does not
        // count it towards the epoch quorum (I12).
        encode_ackepoch(state_lost ? kLostZxid : history.last(),
                        AckEpochInfo{promised, applied, static_cast<std::int32_t>(e.value)}, b);
      });
      return;
    }
    case PacketType::diff:
    case PacketType::trunc:
    case PacketType::snap: {
      if (!leaderinfo_received || sync_method != SyncMethod::none) return learner_fail();
      if (p.type == PacketType::diff) {
        sync_method = SyncMethod::diff;
      } else if (p.type == PacketType::trunc) {
        // Never truncate what this node delivered (I10), nor to a point it does not hold.
        if (p.zxid < applied || p.zxid > history.last() || !history.contains(p.zxid)) {
          return learner_fail();
        }
        sync_method = SyncMethod::trunc;
        if (p.zxid < history.last()) {
          history.truncate_after(p.zxid);
          Output& o = push(OutputKind::truncate);
          o.zxid = p.zxid;
          log_durability.issued_truncate(p.zxid);
        }
      } else {
        if (p.zxid < applied || p.zxid.counter() == 0) return learner_fail();
        const auto parts = split_snapshot(p.data);
        if (!parts || !committed_clients.decode(parts->client_table)) return learner_fail();
        sync_method = SyncMethod::snap;
        Output& o = push(OutputKind::install_snapshot);
        o.zxid = p.zxid;
        o.offset = out->arena.size();
        out->arena.insert(out->arena.end(), p.data.begin(), p.data.end());
        o.length = p.data.size();
        history.reset(p.zxid);
        applied = p.zxid;
        if (commit < applied) commit = applied;
        log_durability.issued_snapshot(p.zxid);
        settle_writes();
      }
      if (commit > history.last()) commit = history.last();
      return;
    }
    case PacketType::proposal:
    case PacketType::inform: {
      if (sync_method == SyncMethod::none) return learner_fail();
      // After NEWLEADER only the new epoch's proposals follow; INFORM may still carry the
      // initial history, committed when the leader is established.
      if (p.type == PacketType::proposal && newleader_received &&
          p.zxid.epoch() != session_epoch) {
        return learner_fail();
      }
      const auto batch = decode_batch(p.data);
      if (!batch) return learner_fail();
      if (!learner_accept_entries(p.zxid, *batch)) return learner_fail();
      if (p.type == PacketType::inform) {
        const Zxid last_in_batch{p.zxid.value + static_cast<std::int64_t>(batch->size()) - 1};
        if (last_in_batch > commit) commit = last_in_batch;
        if (uptodate_received) deliver_up_to(commit);
      } else if (newleader_received && !self_observer) {
        const DurableBarrier barrier{history.last(), kNoEpoch, kNoEpoch};
        send_packet(leader_index, PacketType::ack, history.last(), &barrier);
      }
      return;
    }
    case PacketType::commit: {
      if (sync_method == SyncMethod::none || p.zxid.epoch() > session_epoch) return learner_fail();
      if (p.zxid > history.last() || (p.zxid > history.base() && !history.contains(p.zxid))) {
        return learner_fail();  // a COMMIT must name an entry this node holds (I8)
      }
      if (p.zxid > commit) commit = p.zxid;
      if (uptodate_received) deliver_up_to(commit);
      return;
    }
    case PacketType::newleader: {
      if (sync_method == SyncMethod::none || newleader_received ||
          p.zxid != Zxid::make(session_epoch, 0)) {
        return learner_fail();
      }
      newleader_received = true;
      // 3.9.4+ order (I5): the synced history is durable, then currentEpoch, then the ACK.
      // The disk completes in order, so currentEpoch is durable only after the log.
      current_epoch = session_epoch;
      persist_epochs();
      const DurableBarrier barrier{history.last(), session_epoch, session_epoch};
      send_packet(leader_index, PacketType::ack, Zxid::make(session_epoch, 0), &barrier);
      if (!self_observer && history.last().counter() != 0) {
        // Proposals received during sync are acked only after NEWLEADER's ack (I6).
        send_packet(leader_index, PacketType::ack, history.last(), &barrier);
      }
      return;
    }
    case PacketType::uptodate: {
      if (!newleader_received || uptodate_received) return learner_fail();
      uptodate_received = true;
      phase = ZabPhase::broadcast;
      current_vote.peer_epoch = session_epoch;
      Output& o = emit_role_change(true);
      if (state_lost) {
        // UPTODATE follows this node's ACK(NEWLEADER), which left only once the leader's whole
        // initial history (every committed entry) was durable here.
        state_lost = false;
        o.state_restored = true;
      }
      deliver_up_to(commit);
      return;
    }
    case PacketType::ping:
      send_packet(leader_index, PacketType::ping, p.zxid, nullptr);
      return;
    case PacketType::transfer:
      return learner_transfer(p);
    case PacketType::reply:
      return learner_reply(p);
    default:
      return learner_fail();
  }
}

// The leader hands leadership to a named voter (leader.cpp, hand_off): follow it, or lead if
// named. The target must hold exactly the leader's history, which the leader checked from its
// acks; anything else means a broken or malicious peer.
void Node::Impl::learner_transfer(const QuorumPacket& p) {
  const auto target = decode_transfer(p.data);
  if (!target || p.zxid.epoch() > session_epoch) return learner_fail();
  const auto index = member(*target);
  if (!index || *index == leader_index || !is_voter(*index) ||
      cfg.cluster.verifier().weight(*index) == 0) {
    return learner_fail();
  }
  const Epoch epoch = session_epoch;
  if (*index == self) {
    if (self_observer || phase != ZabPhase::broadcast || history.last() != p.zxid ||
        commit != p.zxid) {
      return learner_fail();
    }
    current_vote = Vote{cfg.self, p.zxid, round, epoch};
    leader_session = SessionId{};
    start_leading();
    return;
  }
  current_vote = Vote{*target, p.zxid, round, epoch};
  start_learning(*index);
}

void Node::Impl::learner_tick() {
  ++leader_silent_ticks;
  const std::int32_t limit =
      phase == ZabPhase::broadcast ? cfg.leader_silence_ticks : cfg.init_limit_ticks;
  if (leader_silent_ticks > limit) {
    start_election(Cause::leader_silent);
    return;
  }
  if (!leaderinfo_received && leader_session.value != 0 && (now % cfg.learner_hello_retry_ticks) == 0) {
    // The leader may not have been LEADING yet when the first hello arrived; say it again
    // (ZooKeeper retries the connection, LR:398-461). The leader ignores repeats.
    send_learner_info();
  }
}

}  // namespace fastzab::core
