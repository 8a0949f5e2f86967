// The leader's side of ZAB (reference §4.3-4.5): discovery (FOLLOWERINFO -> LEADERINFO ->
// ACKEPOCH), synchronization (DIFF/TRUNC/SNAP, NEWLEADER, its ACK, UPTODATE) and broadcast
// (PROPOSAL, ACK, COMMIT, INFORM, PING), with the quorum timeouts that make it step down.
#include "invariant.h"
#include "constants.h"
#include "node_impl.h"

namespace fastzab::core {

void Node::Impl::start_leading() {
  abandon_writes();
  state = PeerState::leading;
  phase = ZabPhase::discovery;
  phase_ticks = 0;
  epoch_exhausted = false;
  std::fill(learners.begin(), learners.end(), LearnerRecord{});
  leader_epoch = kNoEpoch;
  contributors.reset();
  epoch_acks.reset();
  newleader_acks.reset();
  contributors.set(self);
  max_contributed = accepted_epoch;
  summary_epoch = current_epoch;
  summary_zxid = history.last();
  initial_last = history.last();
  // Write ids of the initial history not yet delivered here: they will commit in this epoch, so
  // a retry of one must wait for it rather than be proposed again.
  proposed_clients.clear();
  for (std::size_t i = history.upper_bound(applied); i < history.size(); ++i) {
    const auto e = decode_entry(Bytes(history.at(i).bytes));
    FASTZAB_ASSERT(e.has_value());
    proposed_clients.record(e->id, history.at(i).zxid);
  }
  emit_role_change(false);
  if (cfg.cluster.verifier().is_quorum(contributors)) decide_epoch();
  replay_pending_hellos();
}

void Node::Impl::replay_pending_hellos() {
  for (std::size_t i = 0; i < pending_hellos.size() && state == PeerState::leading; ++i) {
    if (!pending_hellos[i]) continue;
    const PendingHello h = *pending_hellos[i];
    pending_hellos[i].reset();
    if (!session_up(i) || sessions[i] != h.session) continue;
    leader_packet(i, QuorumPacket{h.type, h.zxid, Bytes(h.data)});
  }
}

bool Node::Impl::leader_self_ready() const noexcept {
  return leader_epoch != kNoEpoch && durable_current >= leader_epoch &&
         log_durability.durable() >= initial_last;
}

// getEpochToPropose (reference §4.3 step 3): one more than every accepted epoch of a quorum that
// includes the leader; persisted before any LEADERINFO leaves (ZOOKEEPER-1291).
void Node::Impl::decide_epoch() {
  FASTZAB_ASSERT(leader_epoch == kNoEpoch);
  leader_epoch = Epoch{max_contributed.value + 1};
  FASTZAB_ASSERT_OP(leader_epoch.value, <=, kMaxEpoch);
  accepted_epoch = leader_epoch;
  persist_epochs();
  epoch_acks.set(self);
  for (std::size_t i = 0; i < learners.size(); ++i) {
    LearnerRecord& l = learners[i];
    if (!l.active || l.leaderinfo_sent) continue;
    const DurableBarrier barrier{kNoZxid, leader_epoch, kNoEpoch};
    send_frame(i, l.session, &barrier, [&](ByteBuffer& b) {
      encode_int32_packet(PacketType::leaderinfo, Zxid::make(leader_epoch, 0),
                          kLearnerProtocolVersion, b);
    });
    l.leaderinfo_sent = true;
  }
  check_epoch_acks();
}

// waitForEpochAck (reference §4.3 step 5-6): a quorum with the leader has promised the epoch;
// the leader then makes it its currentEpoch and starts synchronizing.
void Node::Impl::check_epoch_acks() {
  if (phase != ZabPhase::discovery || leader_epoch == kNoEpoch) return;
  if (!cfg.cluster.verifier().is_quorum(epoch_acks) || !epoch_acks.test(self)) return;
  current_epoch = leader_epoch;
  persist_epochs();
  phase = ZabPhase::synchronization;
  phase_ticks = 0;
  for (std::size_t i = 0; i < learners.size(); ++i) {
    if (learners[i].active && learners[i].ackepoch_received) sync_learner(i);
  }
  check_established();
}

void Node::Impl::drop_learner(std::size_t peer, Cause why) {
  ++counters.learners_dropped;
  if (transfer_active && transfer_target == peer) end_transfer(TransferOutcome::aborted);
  close_session(peer, why);
  learners[peer] = LearnerRecord{};
  contributors.reset(peer);
  if (phase == ZabPhase::discovery) epoch_acks.reset(peer);
  if (phase != ZabPhase::broadcast) newleader_acks.reset(peer);
}

void Node::Impl::leader_packet(std::size_t from, const QuorumPacket& p) {
  LearnerRecord& l = learners[from];
  if (l.active) l.silent_ticks = 0;
  switch (p.type) {
    case PacketType::followerinfo:
    case PacketType::observerinfo: {
      if (l.active) return;  // a repeated hello on the same session
      const auto info = decode_learner_info(p.data);
      const bool observer = p.type == PacketType::observerinfo;
      if (!info || info->server != id_of(from) || observer != cfg.cluster.members()[from].observer ||
          p.zxid.counter() != 0) {
        ++counters.protocol_errors;
        drop_learner(from, Cause::protocol_error);
        return;
      }
      l = LearnerRecord{};
      l.active = true;
      l.session = sessions[from];
      l.observer = observer;
      l.accepted = p.zxid.epoch();
      if (phase == ZabPhase::broadcast && l.accepted > leader_epoch) {
        // It promised a newer epoch than mine and would refuse my LEADERINFO forever (a leader
        // attempt it took part in failed). Only a new election can take it back: step down.
        start_election(Cause::learner_newer_epoch);
        return;
      }
      if (leader_epoch == kNoEpoch) {
        if (!observer) {
          contributors.set(from);
          if (l.accepted > max_contributed) max_contributed = l.accepted;
          if (cfg.cluster.verifier().is_quorum(contributors)) decide_epoch();
        }
      } else {
        const DurableBarrier barrier{kNoZxid, leader_epoch, kNoEpoch};
        send_frame(from, l.session, &barrier, [&](ByteBuffer& b) {
          encode_int32_packet(PacketType::leaderinfo, Zxid::make(leader_epoch, 0),
                              kLearnerProtocolVersion, b);
        });
        l.leaderinfo_sent = true;
      }
      return;
    }
    case PacketType::ackepoch: {
      const auto info = decode_ackepoch(p.data);
      if (info && info->answered_epoch != -1 && info->answered_epoch != leader_epoch.value) {
        // Held for durability past its sender's attempt to follow an earlier LEADERINFO of
        // mine (the session outlives roles): its promise is for that epoch, not this one.
        ++counters.ignored_packets;
        return;
      }
      if (!l.active || !l.leaderinfo_sent || l.ackepoch_received || !info) {
        ++counters.protocol_errors;
        drop_learner(from, Cause::protocol_error);
        return;
      }
      l.ackepoch_received = true;
      l.peer_last = p.zxid;
      l.peer_applied = info->applied;
      if (info->current_epoch != -1) {
        // A learner ahead of the leader cannot be synced by it (reference §4.3 step 5).
        // Once established, the leader's own history is the reference (ZooKeeper keeps the
        // summary taken at the start and drops such a learner once, needlessly).
        const Epoch ref_epoch = phase == ZabPhase::broadcast ? current_epoch : summary_epoch;
        const Zxid ref_zxid = phase == ZabPhase::broadcast ? history.last() : summary_zxid;
        const bool ahead = info->current_epoch > ref_epoch.value ||
                           (info->current_epoch == ref_epoch.value && p.zxid > ref_zxid);
        if (ahead) {
          drop_learner(from, Cause::learner_ahead);
          return;
        }
        if (!l.observer && p.zxid != kLostZxid) epoch_acks.set(from);
      }
      if (phase == ZabPhase::discovery) {
        check_epoch_acks();
      } else {
        sync_learner(from);
      }
      return;
    }
    case PacketType::ack: {
      if (!l.active || !l.synced) {
        ++counters.protocol_errors;
        drop_learner(from, Cause::protocol_error);
        return;
      }
      if (p.zxid == Zxid::make(leader_epoch, 0)) {
        if (l.newleader_acked) return;
        l.newleader_acked = true;
        if (!l.observer) newleader_acks.set(from);
        if (phase == ZabPhase::broadcast) {
          announce_commit(from);
          send_packet(from, PacketType::uptodate, kLostZxid, nullptr);
          l.uptodate_sent = true;
        } else {
          check_established();
        }
        return;
      }
      // A proposal ack counts only after the learner's NEWLEADER ack (I6, ZOOKEEPER-4685), and
      // only for a zxid the leader has (a "future proposal" is ignored).
      if (l.observer || !l.newleader_acked || p.zxid.counter() == 0 || p.zxid > history.last() ||
          p.zxid.epoch() > leader_epoch) {
        return;
      }
      if (p.zxid > l.acked) {
        l.acked = p.zxid;
        l.ack_stall_ticks = 0;
        try_commit();
        transfer_progress();
      }
      return;
    }
    case PacketType::request:
      leader_request(from, p);
      return;
    case PacketType::ping:
      return;  // liveness only; silent_ticks was reset above
    default:
      ++counters.protocol_errors;
      return;
  }
}

// syncFollower (reference §4.4), with the learner's applied (committed) zxid from ACKEPOCH so a
// learner is never asked to go below what it delivered (I10).
void Node::Impl::sync_learner(std::size_t peer) {
  LearnerRecord& l = learners[peer];
  FASTZAB_ASSERT(l.active && l.ackepoch_received && !l.synced);
  if (l.peer_applied > history.last() ||
      (l.peer_applied != kNoZxid && l.peer_applied >= history.base() &&
       !history.contains(l.peer_applied))) {
    // It delivered something this leader does not have: never paper over that.
    ++counters.protocol_errors;
    drop_learner(peer, Cause::protocol_error);
    return;
  }
  const Zxid limit = l.observer ? commit : history.last();
  Zxid start;
  const Zxid p = l.peer_last;
  if (history.contains(p)) {
    start = p;
    send_packet(peer, PacketType::diff, limit, nullptr);
  } else {
    const auto q = history.largest_below(p);
    if (q && q->epoch() == p.epoch() && *q >= l.peer_applied) {
      start = *q;  // the learner has entries this history never had, in the same epoch
    } else if (l.peer_applied != kNoZxid && history.contains(l.peer_applied)) {
      start = l.peer_applied;  // its committed prefix is shared; what is above may differ
    } else {
      start = kNoZxid;
    }
    if (start != kNoZxid) send_packet(peer, PacketType::trunc, start, nullptr);
  }
  if (start == kNoZxid) {
    // Too far behind for the in-memory history: the application's snapshot at `applied`.
    Output& o = push(OutputKind::send_snapshot);
    o.peer = id_of(peer);
    o.session = l.session;
    o.zxid = applied;
    o.offset = out->arena.size();
    committed_clients.encode(out->arena);
    o.length = out->arena.size() - o.offset;
    start = applied;
  }
  Zxid end_zxid = limit > start ? limit : start;
  send_entries(peer, l.session, PacketType::proposal, history.upper_bound(start),
               history.upper_bound(end_zxid));
  l.sent = end_zxid;
  if (commit > kZeroZxid) send_packet(peer, PacketType::commit, commit, nullptr);
  const DurableBarrier barrier{kNoZxid, kNoEpoch, leader_epoch};
  send_packet(peer, PacketType::newleader, Zxid::make(leader_epoch, 0), &barrier);
  l.synced = true;
}

void Node::Impl::check_established() {
  if (phase != ZabPhase::synchronization) return;
  MemberSet acks = newleader_acks;
  if (leader_self_ready()) acks.set(self);
  if (cfg.cluster.verifier().is_quorum(acks) && acks.test(self)) establish();
}

// The NEWLEADER quorum commits the leader's whole initial history (the paper's COMMIT-LD).
void Node::Impl::establish() {
  phase = ZabPhase::broadcast;
  phase_ticks = 0;
  session_epoch = leader_epoch;
  current_vote.peer_epoch = leader_epoch;  // reference §2.8: established votes carry the epoch
  commit = history.last();
  FASTZAB_ASSERT(commit == initial_last);
  emit_role_change(true);
  deliver_up_to(commit);
  for (std::size_t i = 0; i < learners.size(); ++i) {
    LearnerRecord& l = learners[i];
    if (!l.active || !l.synced) continue;
    announce_commit(i);
    if (l.newleader_acked) {
      send_packet(i, PacketType::uptodate, kLostZxid, nullptr);
      l.uptodate_sent = true;
    }
  }
}

// Followers hold every proposal and need only the commit point (COMMIT). Observers get
// committed entries only (INFORM); one synced beyond this leader's commit point already holds
// the entries and needs only the commit point.
void Node::Impl::announce_commit(std::size_t peer) {
  LearnerRecord& l = learners[peer];
  if (!l.observer) {
    send_packet(peer, PacketType::commit, commit, nullptr);
    return;
  }
  if (l.sent < history.base()) {
    // What it lacks is no longer in memory (never expected: eviction keeps it). Resync.
    ++counters.protocol_errors;
    drop_learner(peer, Cause::learner_out_of_memory_history);
    return;
  }
  if (commit > l.sent) {
    send_entries(peer, l.session, PacketType::inform, history.upper_bound(l.sent),
                 history.upper_bound(commit));
    l.sent = commit;
  } else {
    send_packet(peer, PacketType::commit, commit, nullptr);
  }
}

void Node::Impl::try_commit() {
  if (phase != ZabPhase::broadcast) return;
  for (std::size_t i = 0; i < learners.size(); ++i) {
    const LearnerRecord& l = learners[i];
    ack_scratch[i] = (l.active && !l.observer && l.newleader_acked) ? l.acked : kNoZxid;
  }
  ack_scratch[self] = log_durability.durable();
  MemberSet eligible;
  for (std::size_t i = 0; i < ack_scratch.size(); ++i) {
    if (ack_scratch[i] != kNoZxid) eligible.set(i);
  }
  Zxid z = quorum_acked_zxid(cfg.cluster.verifier(), ack_scratch, eligible);
  if (z == kNoZxid || z <= commit) return;
  if (z > history.last()) z = history.last();
  FASTZAB_ASSERT(z.epoch() == leader_epoch);
  // Entries commit in zxid order (I7); acks are cumulative, so everything <= z has a quorum.
  commit = z;
  for (std::size_t i = 0; i < learners.size(); ++i) {
    if (learners[i].active && learners[i].synced) announce_commit(i);
  }
  reply_committed_forwards();
  deliver_up_to(commit);
  if (epoch_exhausted && commit == history.last()) start_election(Cause::epoch_exhausted);
}

std::optional<ClientTable::Last> Node::Impl::last_write_of(std::uint64_t client) const noexcept {
  const auto proposed = proposed_clients.find(client);
  const auto committed = committed_clients.find(client);
  if (!proposed) return committed;
  if (!committed) return proposed;
  return proposed->seq >= committed->seq ? proposed : committed;
}

void Node::Impl::leader_propose(std::span<const ClientProposal> proposals, std::size_t origin) {
  const std::size_t first_index = history.size();
  std::size_t accepted = 0;
  bool exhausted = false;
  const auto refused = [&](const ClientProposal& p, RejectReason why) {
    if (origin == self) return refuse(p.tag, why);
    reply_refused(origin, std::span(&p, 1), why);
  };
  // The write ends with the entry at z: proposed now, or earlier under the same write id.
  const auto ends_at = [&](const ClientProposal& p, Zxid z) {
    if (origin == self) {
      Output& o = push(OutputKind::proposal_accepted);
      o.tag = p.tag;
      o.zxid = z;
      writes.push_back(PendingWrite{p.tag, z, false, true});
    } else if (z <= commit) {
      reply_committed(origin, p.tag, z);
    } else {
      forwarded.push_back(ForwardedWrite{z, origin, learners[origin].session, p.tag});
    }
  };
  bool retried = false;
  for (const ClientProposal& p : proposals) {
    if (exhausted) {
      refused(p, RejectReason::zxid_exhausted);
      continue;
    }
    if (p.bytes.size() > kMaxEntryBytes) {
      refused(p, RejectReason::too_large);
      continue;
    }
    if (const auto last = last_write_of(p.id.client)) {
      if (p.id.seq < last->seq) {
        refused(p, RejectReason::stale_sequence);
        continue;
      }
      if (p.id.seq == last->seq) {
        // A retry: never a second entry for one write id.
        ends_at(p, last->zxid);
        retried = true;
        continue;
      }
    }
    const Zxid last = history.last();
    const std::uint32_t next = last.epoch() == leader_epoch ? last.counter() + 1 : 1;
    if (next > cfg.max_zxid_counter) {
      // Never wrap the counter into the epoch bits (ZOOKEEPER-1277): a new epoch is needed.
      exhausted = true;
      refused(p, RejectReason::zxid_exhausted);
      continue;
    }
    const Zxid z = Zxid::make(leader_epoch, next);
    history.append(z, p.id, p.bytes);
    proposed_clients.record(p.id, z);
    ends_at(p, z);
    ++accepted;
  }
  if (retried) settle_writes();
  if (accepted > 0) {
    const std::size_t end = history.size();
    emit_entries(OutputKind::append, first_index, end);
    // Every follower gets the same PROPOSAL frames: encode them once, and point each further
    // follower's send outputs at the same bytes of the arena.
    std::size_t frames_begin = 0;
    std::size_t frames_end = 0;
    for (std::size_t i = 0; i < learners.size(); ++i) {
      LearnerRecord& l = learners[i];
      if (!l.active || !l.synced || l.observer) continue;
      if (frames_begin == frames_end) {
        frames_begin = out->items.size();
        send_entries(i, l.session, PacketType::proposal, first_index, end);
        frames_end = out->items.size();
      } else {
        for (std::size_t k = frames_begin; k < frames_end; ++k) {
          Output again = out->items[k];  // a copy: push_back may move the items
          again.peer = id_of(i);
          again.session = l.session;
          out->items.push_back(again);
        }
      }
      l.sent = history.last();
    }
  }
  if (exhausted && !epoch_exhausted) {
    // Step down for a new epoch only once what was proposed is committed: a leader that left
    // at once would close its sessions with proposals in flight, and an election decided
    // without it would drop them.
    epoch_exhausted = true;
    exhausted_at = now;
    if (commit == history.last()) start_election(Cause::epoch_exhausted);
  }
}

void Node::Impl::leader_tick() {
  ++phase_ticks;
  if (transfer_active && now >= transfer_deadline) end_transfer(TransferOutcome::aborted);
  if (epoch_exhausted && now - exhausted_at > cfg.sync_limit_ticks) {
    start_election(Cause::epoch_exhausted);  // what is left cannot commit in time: a new epoch anyway
    return;
  }
  if (phase != ZabPhase::broadcast) {
    // Discovery and synchronization must finish within initLimit (L:1484, 1532, 1643).
    if (phase_ticks > cfg.init_limit_ticks) {
      start_election(Cause::sync_too_slow);
      return;
    }
  }
  const bool ping = (now % cfg.ping_ticks) == 0;
  MemberSet heard;
  heard.set(self);
  for (std::size_t i = 0; i < learners.size(); ++i) {
    LearnerRecord& l = learners[i];
    if (!l.active) continue;
    ++l.silent_ticks;
    const std::int32_t limit =
        l.uptodate_sent ? cfg.sync_limit_ticks : cfg.init_limit_ticks;
    if (l.silent_ticks > limit) {
      drop_learner(i, Cause::learner_silent);
      continue;
    }
    if (l.newleader_acked && !l.observer && l.acked < l.sent && l.sent.epoch() == leader_epoch) {
      // A learner that answers pings but never acks is dropped (SyncLimitCheck, testTxnTimeout).
      if (++l.ack_stall_ticks > cfg.sync_limit_ticks) {
        drop_learner(i, Cause::learner_not_acking);
        continue;
      }
    } else {
      l.ack_stall_ticks = 0;
    }
    if (!l.observer && l.newleader_acked && l.silent_ticks <= cfg.sync_limit_ticks) heard.set(i);
    if (ping) send_packet(i, PacketType::ping, history.last(), nullptr);
  }
  if (phase == ZabPhase::broadcast && phase_ticks > cfg.sync_limit_ticks &&
      !cfg.cluster.verifier().is_quorum(heard)) {
    // Lost the quorum for syncLimit ticks (I14): stop leading.
    start_election(Cause::quorum_lost);
  }
}

}  // namespace fastzab::core

namespace fastzab::core {

// ---- leadership transfer (a fastzab extension; ZooKeeper has none) ----
//
// The leader stops proposing, waits until the target has durably acknowledged its whole
// history and that history is committed, then sends TRANSFER, target first, on every learner
// session and follows the target itself. Receivers follow the target too; the target starts
// leading. There is no election: the target runs discovery and synchronization as any new
// leader, so its epoch is one more than a quorum's accepted epochs and every follower promises
// it once (ACKEPOCH), which is what keeps one leader per epoch. It holds every committed write
// because it holds everything this leader ever proposed.

std::optional<std::size_t> Node::Impl::transfer_candidate(ServerId named) const {
  const auto eligible = [&](std::size_t i) {
    const LearnerRecord& l = learners[i];
    return i != self && is_voter(i) && cfg.cluster.verifier().weight(i) > 0 && l.active &&
           !l.observer && l.newleader_acked && l.uptodate_sent;
  };
  if (named != kNoServer) {
    const auto index = member(named);
    if (index && eligible(*index)) return index;
    return std::nullopt;
  }
  std::optional<std::size_t> best;
  for (std::size_t i = 0; i < learners.size(); ++i) {
    if (!eligible(i)) continue;
    // The most caught-up one needs the shortest pause; then the most recently heard.
    if (!best || learners[i].acked > learners[*best].acked ||
        (learners[i].acked == learners[*best].acked &&
         learners[i].silent_ticks < learners[*best].silent_ticks)) {
      best = i;
    }
  }
  return best;
}

void Node::Impl::on_transfer_request(const input::TransferLeadership& t) {
  const auto answer = [&](TransferOutcome outcome, ServerId target) {
    Output& o = push(OutputKind::transfer_result);
    o.tag = t.tag;
    o.leader = target;
    o.transfer = outcome;
  };
  if (state != PeerState::leading || phase != ZabPhase::broadcast) {
    answer(TransferOutcome::not_leader, t.target);
    return;
  }
  if (transfer_active) {
    answer(TransferOutcome::in_progress, t.target);
    return;
  }
  const auto target = transfer_candidate(t.target);
  if (!target) {
    answer(TransferOutcome::no_candidate, t.target);
    return;
  }
  transfer_active = true;
  transfer_target = *target;
  transfer_deadline = now + cfg.transfer_timeout_ticks;
  transfer_tag = t.tag;
  transfer_progress();
}

void Node::Impl::transfer_progress() {
  if (!transfer_active || state != PeerState::leading || phase != ZabPhase::broadcast) return;
  const LearnerRecord& l = learners[transfer_target];
  FASTZAB_ASSERT(l.active);  // losing the target ends the transfer (drop_learner, session down)
  const Zxid last = history.last();
  // NEWLEADER's ack covers the initial history; acks of this epoch's proposals cover the rest.
  const bool target_holds_all = l.newleader_acked && (last == initial_last || l.acked == last);
  if (target_holds_all && commit == last) hand_off();
}

void Node::Impl::end_transfer(TransferOutcome outcome) {
  FASTZAB_ASSERT(transfer_active);
  transfer_active = false;
  if (outcome == TransferOutcome::aborted) ++counters.transfers_aborted;
  if (outcome == TransferOutcome::handed_off) ++counters.transfers_handed_off;
  Output& o = push(OutputKind::transfer_result);
  o.tag = transfer_tag;
  o.leader = id_of(transfer_target);
  o.transfer = outcome;
}

void Node::Impl::hand_off() {
  const std::size_t target = transfer_target;
  const Zxid last = history.last();
  FASTZAB_ASSERT(commit == last && applied == last);
  const auto send_transfer = [&](std::size_t i) {
    send_frame(i, learners[i].session, nullptr,
               [&](ByteBuffer& b) { encode_transfer(last, id_of(target), b); });
  };
  // The target first: the others' hellos to it may still overtake this on their own links (it
  // keeps them, see pending_hellos), but it is never told later than needed.
  send_transfer(target);
  for (std::size_t i = 0; i < learners.size(); ++i) {
    if (i != target && learners[i].active) send_transfer(i);
  }
  end_transfer(TransferOutcome::handed_off);
  std::fill(learners.begin(), learners.end(), LearnerRecord{});
  leader_epoch = kNoEpoch;
  current_vote = Vote{id_of(target), last, round, current_epoch};
  start_learning(target);
}

}  // namespace fastzab::core
