#include "checkers.h"

namespace fastzab::sim {

using core::Zxid;

std::string zxid_str(Zxid z) {
  if (z == core::kNoZxid) return "none";
  return std::to_string(z.epoch().value) + ":" + std::to_string(z.counter());
}

Checkers::Checkers(std::size_t nodes)
    : n_(nodes),
      subs_(1),
      leaderinfo_(nodes * nodes, {0, 0}),
      newleader_(nodes * nodes, {0, core::kNoZxid}),
      acked_by_node_(nodes),
      acks_(nodes),
      failure_(nodes) {}

void Checkers::fail(const char* check, std::uint32_t node, const std::string& what) {
  if (!violation_.empty()) return;
  const std::string name = node < names_.size() ? names_[node] : "n" + std::to_string(node);
  violation_ = "t=" + std::to_string(now_) + " node " + name + ": [" + check + "] " + what;
  check_ = check;
}

void Checkers::fail_global(const char* check, const std::string& what) {
  if (!violation_.empty()) return;
  violation_ = "t=" + std::to_string(now_) + ": [" + check + "] " + what;
  check_ = check;
}

std::uint64_t Checkers::tag_of(const std::string& payload) const {
  const auto at = payload.rfind("-n");
  if (at == std::string::npos || at + 2 >= payload.size()) return 0;
  std::uint64_t tag = 0;
  for (std::size_t i = at + 2; i < payload.size(); ++i) {
    const char c = payload[i];
    if (c < '0' || c > '9') return 0;
    tag = tag * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return tag < subs_.size() && subs_[tag].payload == payload ? tag : 0;
}

void Checkers::submitted(std::uint64_t tag, std::uint32_t node, std::string payload,
                         std::uint64_t retry_of) {
  if (tag != subs_.size()) {
    fail_global("host", "simulator bug: tags must be submitted in order");
    return;
  }
  if (retry_of != 0) {
    if (retry_of >= tag || subs_[retry_of].write != retry_of) {
      fail_global("host", "simulator bug: a retry of an unknown write");
      return;
    }
    ++subs_[retry_of].attempts;
  }
  Submission s;
  s.payload = std::move(payload);
  s.node = node;
  s.write = retry_of != 0 ? retry_of : tag;
  subs_.push_back(std::move(s));
  open_.insert(tag);
}

void Checkers::proposal_accepted(std::uint32_t node, std::uint64_t tag, Zxid zxid) {
  if (tag == 0 || tag >= subs_.size()) return fail("host", node, "proposal_accepted for unknown tag " +
                                                             std::to_string(tag));
  Submission& s = subs_[tag];
  if (s.node != node) return fail("host", node, "proposal_accepted for a tag submitted elsewhere");
  if (s.assigned != core::kNoZxid) return fail("integrity", node, "tag " + std::to_string(tag) + " accepted twice");
  s.assigned = zxid;
}

void Checkers::write_done(std::uint32_t node, const core::Output& done, const AppState& app) {
  const std::uint64_t tag = done.tag;
  if (tag == 0 || tag >= subs_.size()) {
    return fail("write-outcome", node, "write_done for unknown tag " + std::to_string(tag));
  }
  Submission& a = subs_[tag];  // this attempt
  if (a.node != node) {
    return fail("write-outcome", node, "write_done for tag " + std::to_string(tag) +
                                           " submitted to another node");
  }
  if (a.ended) {
    return fail("write-outcome", node, "write '" + a.payload + "' ended twice (now " +
                                           core::to_string(done.outcome) + ")");
  }
  a.ended = true;
  open_.erase(tag);
  Submission& s = subs_[a.write];  // the write it attempts (itself unless a retry)
  if (fastzab::refused(done.outcome)) {
    ++refused_count_;
    a.refused = true;
    ++s.refused_attempts;
    if (done.reason == core::RejectReason::stale_sequence) {
      // The simulator's identified clients have one write at a time, retried until it ends.
      return fail("exactly-once", node, "write '" + a.payload + "' refused as a stale sequence");
    }
    // Nothing was proposed: if no attempt was, it must never be delivered (also checked in
    // extend_truth).
    if (s.truth_index >= 0 && s.refused_attempts == s.attempts) {
      return fail("write-outcome", node, "write '" + a.payload + "' refused (" +
                                             core::to_string(done.reason) +
                                             ") but it was delivered at " +
                                             zxid_str(truth_[static_cast<std::size_t>(s.truth_index)].zxid));
    }
    return;
  }
  if (done.outcome == core::WriteOutcome::unknown_outcome) {
    ++unknown_count_;
    return;
  }
  // Committed at done.zxid: this node delivered it there, and it is that write (a retry: the
  // one entry of the write, wherever an earlier attempt put it).
  const char* check = s.attempts > 1 ? "exactly-once" : "write-committed";
  const std::int64_t idx = s.truth_index;
  if (idx < 0 || truth_[static_cast<std::size_t>(idx)].zxid != done.zxid) {
    return fail(check, node, "write '" + a.payload + "' reported committed at " +
                                 zxid_str(done.zxid) + " but the agreed sequence " +
                                 (idx < 0 ? std::string("does not hold it")
                                          : "holds it at " + zxid_str(truth_[static_cast<std::size_t>(idx)].zxid)));
  }
  if (app.zxid < done.zxid || static_cast<std::int64_t>(app.entries.size()) <= idx ||
      app.entries[static_cast<std::size_t>(idx)].zxid != done.zxid) {
    return fail(check, node, "write '" + a.payload + "' reported committed at " +
                                 zxid_str(done.zxid) + " before this node applied it "
                                 "(its application is at " + zxid_str(app.zxid) + ")");
  }
  if (a.assigned != core::kNoZxid && a.assigned != done.zxid) {
    return fail(check, node, "write '" + a.payload + "' reported committed at " +
                                 zxid_str(done.zxid) + " but its leader assigned " +
                                 zxid_str(a.assigned));
  }
  if (a.assigned == core::kNoZxid) ++forwarded_acked_;  // no proposal_accepted: forwarded
  if (tag != a.write) ++retries_acked_;
  if (!s.acked) acknowledge(node, s, done.zxid, static_cast<std::size_t>(idx));
}

void Checkers::client_disconnected(std::uint32_t node) {
  for (auto it = open_.begin(); it != open_.end();) {
    Submission& s = subs_[*it];
    if (s.node == node) {
      s.ended = true;
      it = open_.erase(it);
    } else {
      ++it;
    }
  }
}

void Checkers::fail_open_writes() {
  if (open_.empty()) return;
  const Submission& s = subs_[*open_.begin()];
  fail("write-outcome", s.node, std::to_string(open_.size()) + " writes never ended, the oldest '" +
                                    s.payload + "'" +
                                    (s.truth_index >= 0 ? " (delivered at " +
                                                              zxid_str(truth_[static_cast<std::size_t>(s.truth_index)].zxid) + ")"
                                                        : std::string(" (never delivered)")));
}

void Checkers::established(std::uint32_t node, core::PeerState role, core::Epoch epoch) {
  if (role != core::PeerState::leading) return;
  const auto [it, inserted] = leader_of_epoch_.emplace(epoch.value, node);
  if (!inserted && it->second != node) {
    const std::string other = it->second < names_.size() ? names_[it->second] : "?";
    fail("leader", node, "second leader established in epoch " + std::to_string(epoch.value) +
                   " (already established: " + other + ")");
  }
}

void Checkers::extend_truth(std::uint32_t node, const AppEntry& e) {
  // Primary order: zxids increase; within an epoch counters are 1, 2, 3, ...
  if (truth_.empty()) {
    if (e.zxid.counter() != 1) {
      return fail("order", node, "first delivered entry " + zxid_str(e.zxid) + " does not have counter 1");
    }
  } else {
    const Zxid prev = truth_.back().zxid;
    if (e.zxid <= prev) {
      return fail("order", node, "delivered " + zxid_str(e.zxid) + " after " + zxid_str(prev));
    }
    const bool ok = e.zxid.epoch() == prev.epoch() ? e.zxid.value == prev.value + 1
                                                   : e.zxid.counter() == 1;
    if (!ok) {
      return fail("order", node, "primary order: " + zxid_str(e.zxid) + " follows " + zxid_str(prev));
    }
  }
  // Integrity: submitted, once, at the zxid its leader gave it.
  const std::uint64_t tag = tag_of(e.payload);
  if (tag == 0) return fail("integrity", node, "delivered " + zxid_str(e.zxid) + " that nobody submitted");
  Submission& s = subs_[tag];
  if (s.truth_index >= 0) {
    // A write retried under its id (exactly-once) must still be in the sequence once.
    return fail(s.attempts > 1 ? "exactly-once" : "integrity", node,
                "entry '" + e.payload + "' delivered twice (" + std::to_string(s.attempts) +
                    " attempts): at " +
                    zxid_str(truth_[static_cast<std::size_t>(s.truth_index)].zxid) + " and " +
                    zxid_str(e.zxid));
  }
  // A retried write may commit where a later attempt's leader put it, not the first's.
  if (s.attempts == 1 && s.assigned != core::kNoZxid && s.assigned != e.zxid) {
    return fail("integrity", node, "entry '" + e.payload + "' delivered at " + zxid_str(e.zxid) +
                          " but its leader assigned " + zxid_str(s.assigned));
  }
  if (s.refused_attempts == s.attempts) {
    return fail("write-outcome", node, "entry '" + e.payload + "' delivered at " + zxid_str(e.zxid) +
                                           " but it was refused (nothing proposed)");
  }
  s.truth_index = static_cast<std::int64_t>(truth_.size());
  truth_.push_back(e);
}

bool Checkers::check_prefix(std::uint32_t node, const AppState& app, std::size_t from) {
  for (std::size_t i = from; i < app.entries.size() && !failed(); ++i) {
    const AppEntry& e = app.entries[i];
    if (i < truth_.size()) {
      if (!(e == truth_[i])) {
        fail("agreement", node, "agreement: position " + std::to_string(i) + " holds " + zxid_str(e.zxid) +
                       " '" + e.payload + "' but another node delivered " +
                       zxid_str(truth_[i].zxid) + " '" + truth_[i].payload + "'");
      }
    } else {
      extend_truth(node, e);
    }
  }
  return !failed();
}

void Checkers::acknowledge(std::uint32_t, Submission& s, Zxid zxid, std::size_t index) {
  s.acked = true;
  ++acked_count_;
  const auto idx = static_cast<std::int64_t>(index);
  const auto [slot, inserted] = acked_index_by_epoch_.emplace(zxid.epoch().value, idx);
  if (!inserted && idx > slot->second) slot->second = idx;
  if (idx > max_acked_index_) max_acked_index_ = idx;
}

void Checkers::delivered(std::uint32_t node, const AppState& app, std::size_t old_size) {
  check_prefix(node, app, old_size);
}

void Checkers::replaced(std::uint32_t node, const AppState& app) { check_prefix(node, app, 0); }

void Checkers::entered_broadcast(std::uint32_t node, core::Epoch epoch, const AppState& app) {
  std::int64_t need = -1;
  std::int64_t need_epoch = 0;
  for (const auto& [e, idx] : acked_index_by_epoch_) {
    if (e >= epoch.value) break;
    if (idx > need) {
      need = idx;
      need_epoch = e;
    }
  }
  if (need >= 0 && static_cast<std::int64_t>(app.entries.size()) <= need) {
    const AppEntry& w = truth_[static_cast<std::size_t>(need)];
    fail("lost-write", node, "acknowledged write lost: entered broadcast in epoch " +
                   std::to_string(epoch.value) + " without " + zxid_str(w.zxid) + " '" +
                   w.payload + "' (acknowledged in epoch " + std::to_string(need_epoch) +
                   "); its application ends at " + zxid_str(app.zxid));
  }
}

void Checkers::final_check(std::uint32_t node, const AppState& app, std::int64_t limit) {
  if (limit >= 0 && static_cast<std::int64_t>(app.entries.size()) <= limit) {
    const AppEntry& w = truth_[static_cast<std::size_t>(limit)];
    fail("lost-write", node, "acknowledged write lost: at the end it lacks " + zxid_str(w.zxid) + " '" +
                   w.payload + "'; its application ends at " + zxid_str(app.zxid));
  }
}

void Checkers::dropped_on_recovery(std::uint32_t node,
                                   const std::vector<core::LoggedEntry>& dropped, Zxid applied) {
  for (const core::LoggedEntry& e : dropped) {
    if (e.zxid <= applied) {
      return fail("recovery-drop", node, "recovery dropped " + zxid_str(e.zxid) + " that it had delivered");
    }
    const auto it = acked_by_node_[node].find(e.zxid.epoch().value);
    if (it != acked_by_node_[node].end() && e.zxid <= it->second) {
      return fail("recovery-drop", node, "recovery dropped " + zxid_str(e.zxid) + " that it had ACKed (up to " +
                            zxid_str(it->second) + ")");
    }
  }
}

void Checkers::frame_received(std::uint32_t node, std::uint32_t from, core::SessionId s,
                              core::Bytes f, const Disk& disk) {
  if (f.empty() || f[0] != static_cast<std::byte>(core::FrameKind::quorum)) return;
  const auto frame = core::decode_frame(f);
  if (!frame) return;
  if (frame->packet.type == core::PacketType::leaderinfo) {
    leaderinfo_[node * n_ + from] = {s.value, frame->packet.zxid.epoch().value};
  } else if (frame->packet.type == core::PacketType::newleader) {
    // Everything synced before NEWLEADER must be durable before its ACK (I5).
    newleader_[node * n_ + from] = {s.value, disk.log().last()};
  }
}

void Checkers::frame_sent(std::uint32_t node, std::uint32_t to, core::SessionId s, core::Bytes f,
                          const Disk& disk) {
  const auto frame = core::decode_frame(f);
  if (!frame) {
    return fail("host", node, std::string("sent a frame it cannot decode: ") +
                          core::to_string(frame.error()));
  }
  const core::QuorumPacket& p = frame->packet;
  const bool quorum = frame->kind == core::FrameKind::quorum;
  // The acknowledgement this frame is, if any (what it promises to be durable).
  AckSent ack;
  ack.last_issued = disk.last_issued();
  ack.type = p.type;
  ack.zxid = p.zxid;
  ack.at = now_;
  const bool is_ack = quorum && (p.type == core::PacketType::ack || p.type == core::PacketType::ackepoch);
  if (is_ack && p.type == core::PacketType::ackepoch) {
    const auto info = core::decode_ackepoch(p.data);
    const auto [session, epoch] = leaderinfo_[node * n_ + to];
    ack.epoch = info && info->answered_epoch != -1 ? info->answered_epoch
                : session == s.value             ? epoch
                                                 : 0;
  } else if (is_ack && p.zxid.counter() == 0) {
    ack.epoch = p.zxid.epoch().value;
    const auto [session, synced] = newleader_[node * n_ + to];
    ack.synced = session == s.value ? synced : core::kNoZxid;
  }
  if (const Failure& failure = failure_[node]; failure.failed) {
    const std::string gap = is_ack ? ack_gap(ack, disk) : std::string();
    if (!gap.empty()) {
      return fail("disk-failure-ack", node,
                  describe(ack) + " sent after its failed " + failure.what + " at t=" +
                      std::to_string(failure.at) + ", which never made it durable: " + gap);
    }
    return fail("disk-failure-sent", node,
                std::string(quorum ? core::to_string(p.type) : "election") +
                    " frame sent after its host saw a failed " + failure.what + " at t=" +
                    std::to_string(failure.at) + ": a failed durable op must stop the node");
  }
  if (is_ack && disk.pending() > 0) {
    auto& list = acks_[node];
    const std::uint64_t oldest = disk.oldest_pending();
    std::erase_if(list, [&](const AckSent& a) { return a.last_issued < oldest; });
    list.push_back(ack);
  }
  if (!quorum) return;
  const EpochImage& ep = disk.durable_epochs();
  const auto durable_holds = [&](Zxid z) {
    return disk.durable_log().holds(z) || z <= disk.durable_app().zxid;
  };
  switch (p.type) {
    case core::PacketType::ack:
      if (p.zxid.counter() != 0) {
        const auto [slot, inserted] = acked_by_node_[node].emplace(p.zxid.epoch().value, p.zxid);
        if (!inserted && p.zxid > slot->second) slot->second = p.zxid;
        if (!durable_holds(p.zxid)) {
          fail("ack-durable", node, "persist-before-ack: ACK(" + zxid_str(p.zxid) +
                         ") sent but the durable log ends at " +
                         zxid_str(disk.durable_log().last()));
        }
      } else if (ep.current < p.zxid.epoch()) {
        fail("newleader-ack-epoch", node, "persist-before-ack: ACK(" + zxid_str(p.zxid) +
                       ") of NEWLEADER sent with durable currentEpoch " +
                       std::to_string(ep.current.value));
      } else if (const auto [session, synced] = newleader_[node * n_ + to];
                 session == s.value && !durable_holds(synced)) {
        fail("newleader-ack-log", node, "persist-before-ack: ACK(" + zxid_str(p.zxid) +
                       ") of NEWLEADER sent before the synced history through " +
                       zxid_str(synced) + " is durable (durable log ends at " +
                       zxid_str(disk.durable_log().last()) + ")");
      }
      break;
    case core::PacketType::ackepoch: {
      // The promise is for the epoch the frame names (the last LEADERINFO heard on the session
      // when it names none, as ZooKeeper's form).
      const auto [session, heard_epoch] = leaderinfo_[node * n_ + to];
      const auto info = core::decode_ackepoch(p.data);
      const bool named = info && info->answered_epoch != -1;
      const auto epoch = named ? std::int64_t{info->answered_epoch} : heard_epoch;
      if ((named || session == s.value) && ep.accepted.value < epoch) {
        fail("ackepoch-durable", node, "persist-before-ack: ACKEPOCH for epoch " + std::to_string(epoch) +
                       " sent with durable acceptedEpoch " + std::to_string(ep.accepted.value));
      } else if (!durable_holds(p.zxid)) {
        fail("ackepoch-durable", node, "ACKEPOCH advertises last zxid " + zxid_str(p.zxid) +
                       " that is not durable (durable log ends at " +
                       zxid_str(disk.durable_log().last()) + ")");
      }
      break;
    }
    case core::PacketType::leaderinfo:
      if (ep.accepted < p.zxid.epoch()) {
        fail("leaderinfo-durable", node, "LEADERINFO(" + std::to_string(p.zxid.epoch().value) +
                       ") sent before acceptedEpoch is durable (durable " +
                       std::to_string(ep.accepted.value) + ")");
      }
      break;
    case core::PacketType::newleader:
      if (ep.current < p.zxid.epoch()) {
        fail("newleader-durable", node, "NEWLEADER(" + std::to_string(p.zxid.epoch().value) +
                       ") sent before currentEpoch is durable (durable " +
                       std::to_string(ep.current.value) + ")");
      }
      break;
    default:
      break;
  }
}

}  // namespace fastzab::sim

namespace fastzab::sim {

std::string Checkers::describe(const AckSent& a) {
  if (a.type == core::PacketType::ackepoch) {
    return "ACKEPOCH(epoch " + std::to_string(a.epoch) + ", last " + zxid_str(a.zxid) + ")";
  }
  if (a.zxid.counter() == 0) return "ACK(" + zxid_str(a.zxid) + ") of NEWLEADER";
  return "ACK(" + zxid_str(a.zxid) + ")";
}

std::string Checkers::ack_gap(const AckSent& a, const Disk& disk) {
  const EpochImage& ep = disk.durable_epochs();
  const auto holds = [&](Zxid z) {
    return z == core::kNoZxid || disk.durable_log().holds(z) || z <= disk.durable_app().zxid;
  };
  const std::string log_end = "the durable log ends at " + zxid_str(disk.durable_log().last());
  if (a.type == core::PacketType::ackepoch) {
    if (ep.accepted.value < a.epoch) {
      return "durable acceptedEpoch is " + std::to_string(ep.accepted.value);
    }
    if (!holds(a.zxid)) return log_end;
    return {};
  }
  if (a.zxid.counter() == 0) {
    if (ep.current.value < a.epoch) return "durable currentEpoch is " + std::to_string(ep.current.value);
    if (!holds(a.synced)) return "synced through " + zxid_str(a.synced) + " but " + log_end;
    return {};
  }
  return holds(a.zxid) ? std::string() : log_end;
}

void Checkers::node_started(std::uint32_t node) {
  failure_[node] = Failure{};
  acks_[node].clear();
}

void Checkers::disk_failed(std::uint32_t node, const Completion& done, const Disk& disk) {
  Failure& f = failure_[node];
  if (f.failed) return;  // the ops after the first failed one fail too (a poisoned log)
  f.failed = true;
  f.at = now_;
  f.what = std::string(done.op) + " (" + to_string(done.error) + ")";
  for (const AckSent& a : acks_[node]) {
    if (a.last_issued < done.id) continue;  // sent before the failed op was issued
    if (const std::string gap = ack_gap(a, disk); !gap.empty()) {
      return fail("disk-failure-ack", node,
                  describe(a) + " sent at t=" + std::to_string(a.at) + ", but its " + f.what +
                      " failed and never made it durable: " + gap);
    }
  }
}

}  // namespace fastzab::sim
