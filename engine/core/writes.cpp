// Client writes, from ClientProposals to their one write_done: proposed by the leader, or
// forwarded by a learner in REQUEST packets and answered by the leader in REPLY packets once
// committed (or refused: nothing proposed). A forwarded write ends committed only once the
// learner has delivered its zxid, so the host answers its client after the local apply.
#include "invariant.h"
#include "node_impl.h"

namespace fastzab::core {

namespace {
// A REQUEST frame stays below this (the codec's frame limit, less its fixed fields).
constexpr std::size_t kRequestFrameBudget = kMaxFrameBytes - 64;
}  // namespace

void Node::Impl::on_client_proposals(std::span<const ClientProposal> proposals) {
  if (state == PeerState::leading && phase == ZabPhase::broadcast && !transfer_active) {
    leader_propose(proposals, self);
    return;
  }
  if (state == PeerState::following || state == PeerState::observing) {
    learner_forward(proposals);
    return;
  }
  const RejectReason why = state != PeerState::leading   ? RejectReason::not_leader
                           : phase != ZabPhase::broadcast ? RejectReason::not_established
                                                          : RejectReason::transferring;
  for (const ClientProposal& p : proposals) refuse(p.tag, why);
}

void Node::Impl::write_done(std::uint64_t tag, WriteOutcome outcome, Zxid zxid,
                            RejectReason reason) {
  Output& o = push(OutputKind::write_done);
  o.tag = tag;
  o.outcome = outcome;
  o.zxid = zxid;
  o.reason = reason;
}

void Node::Impl::settle_writes() {
  // Writes end in submission order: a leader assigns zxids in that order, and a learner's
  // REQUESTs are proposed in that order, so a later write never commits before an earlier one
  // that is still waiting.
  while (!writes.empty()) {
    PendingWrite& w = writes.front();
    if (w.live) {
      if (w.zxid == kNoZxid || w.zxid > applied) return;
      write_done(w.tag, WriteOutcome::committed, w.zxid);
    }
    writes.pop_front();
  }
}

void Node::Impl::abandon_writes() {
  for (std::size_t i = 0; i < writes.size(); ++i) {
    PendingWrite& w = writes[i];
    if (!w.live || w.confirmed) continue;
    w.live = false;
    write_done(w.tag, WriteOutcome::unknown_outcome, kNoZxid);
  }
  forwarded.clear();
  settle_writes();
}

// ---- learner side ----

void Node::Impl::learner_forward(std::span<const ClientProposal> proposals) {
  const bool ready = phase == ZabPhase::broadcast && leader_session.value != 0 &&
                     sessions[leader_index] == leader_session;
  std::size_t forwardable = 0;
  for (const ClientProposal& p : proposals) {
    if (!ready) {
      refuse(p.tag, RejectReason::not_established);
    } else if (p.bytes.size() > kMaxEntryBytes) {
      refuse(p.tag, RejectReason::too_large);
    } else {
      ++forwardable;
    }
  }
  if (forwardable == 0) return;
  // Refusals are all pushed above: send_frame's output must stay the last one while it encodes.
  std::size_t i = 0;
  while (i < proposals.size()) {
    while (i < proposals.size() && proposals[i].bytes.size() > kMaxEntryBytes) ++i;
    if (i == proposals.size()) break;
    send_frame(leader_index, leader_session, nullptr, [&](ByteBuffer& b) {
      BatchWriter w(PacketType::request, kZeroZxid, b);
      while (i < proposals.size() && w.count() < cfg.max_batch_entries) {
        const ClientProposal& p = proposals[i];
        if (p.bytes.size() > kMaxEntryBytes) {
          ++i;
          continue;
        }
        if (w.count() > 0 && w.frame_bytes() + 4 + kRequestTagBytes + kMaxEntryHeaderBytes +
                                     p.bytes.size() >
                                 kRequestFrameBudget) {
          break;
        }
        w.add(p.tag, p.id, p.bytes);
        writes.push_back(PendingWrite{p.tag, kNoZxid, false, true});
        ++i;
      }
      w.finish();
    });
    out->items.back().may_overtake = true;
  }
}

void Node::Impl::learner_reply(const QuorumPacket& p) {
  const auto batch = decode_batch(p.data);
  if (!batch) return learner_fail();
  for (Bytes entry : *batch) {
    const auto r = decode_reply_entry(entry);
    if (!r || (r->code == kReplyCommitted && r->zxid.epoch() > session_epoch)) {
      return learner_fail();
    }
    PendingWrite* found = nullptr;
    for (std::size_t k = 0; k < writes.size(); ++k) {
      PendingWrite& w = writes[k];
      if (w.live && w.tag == r->tag && w.zxid == kNoZxid) {
        found = &w;
        break;
      }
    }
    if (found == nullptr) continue;  // already ended (a reply to an abandoned write)
    if (r->code == kReplyCommitted) {
      found->zxid = r->zxid;
      found->confirmed = true;
    } else {
      found->live = false;
      refuse(r->tag, static_cast<RejectReason>(r->code - 1));
    }
  }
  settle_writes();
}

// ---- leader side ----

void Node::Impl::leader_request(std::size_t from, const QuorumPacket& p) {
  LearnerRecord& l = learners[from];
  const auto batch = decode_batch(p.data, kMaxRequestEntryBytes);
  if (!l.active || !batch) {
    ++counters.protocol_errors;
    drop_learner(from, Cause::protocol_error);
    return;
  }
  request_scratch.clear();
  for (Bytes entry : *batch) {
    const auto e = split_request_entry(entry);
    const auto v = e ? decode_entry(e->entry) : unexpected(e.error());
    if (!v) {
      ++counters.protocol_errors;
      drop_learner(from, Cause::protocol_error);
      return;
    }
    request_scratch.push_back(ClientProposal{e->tag, v->value, v->id});
  }
  if (phase == ZabPhase::broadcast && l.uptodate_sent && !transfer_active) {
    leader_propose(request_scratch, from);
    return;
  }
  reply_refused(from, request_scratch,
                transfer_active ? RejectReason::transferring : RejectReason::not_established);
}

void Node::Impl::reply_refused(std::size_t peer, std::span<const ClientProposal> refused,
                               RejectReason why) {
  // A REQUEST holds at most kMaxBatchEntries entries, so its refusals fit one REPLY.
  send_frame(peer, learners[peer].session, nullptr, [&](ByteBuffer& b) {
    BatchWriter w(PacketType::reply, kZeroZxid, b);
    for (const ClientProposal& r : refused) {
      w.add_reply(r.tag, kNoZxid, 1 + static_cast<std::int32_t>(why));
    }
    w.finish();
  });
}

void Node::Impl::reply_committed(std::size_t peer, std::uint64_t tag, Zxid zxid) {
  send_frame(peer, learners[peer].session, nullptr, [&](ByteBuffer& b) {
    BatchWriter w(PacketType::reply, kZeroZxid, b);
    w.add_reply(tag, zxid, kReplyCommitted);
    w.finish();
  });
}

// After a commit: every forwarded write now committed is answered to its learner, after the
// COMMIT (or INFORM) that covers it on the same session.
void Node::Impl::reply_committed_forwards() {
  std::size_t n = 0;
  while (n < forwarded.size() && forwarded[n].zxid <= commit) ++n;
  if (n == 0) return;
  for (std::size_t peer = 0; peer < learners.size(); ++peer) {
    const LearnerRecord& l = learners[peer];
    if (!l.active) continue;
    std::size_t k = 0;
    const auto next_for_peer = [&] {
      while (k < n && (forwarded[k].peer != peer || forwarded[k].session != l.session)) ++k;
      return k < n;
    };
    while (next_for_peer()) {
      send_frame(peer, l.session, nullptr, [&](ByteBuffer& b) {
        BatchWriter w(PacketType::reply, kZeroZxid, b);
        while (w.count() < kMaxBatchEntries && next_for_peer()) {
          w.add_reply(forwarded[k].tag, forwarded[k].zxid, kReplyCommitted);
          ++k;
        }
        w.finish();
      });
    }
  }
  for (std::size_t k = 0; k < n; ++k) forwarded.pop_front();
}

}  // namespace fastzab::core
