// Node: input dispatch, sessions, durability bookkeeping and output helpers. The protocol rules
// live in election.cpp (FLE), leader.cpp and learner.cpp (ZAB roles).
#include "node.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "invariant.h"
#include "constants.h"
#include "node_impl.h"

namespace fastzab::core {

namespace {
template <class... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <class... F>
Overloaded(F...) -> Overloaded<F...>;

[[noreturn]] void bad_state(const std::string& why) {
  throw std::invalid_argument("fastzab: refusing to start: " + why);
}
}  // namespace

Node::Impl::Impl(NodeConfig config, DurableState st)
    : cfg(std::move(config)), committed_clients(cfg.max_clients),
      proposed_clients(cfg.max_clients) {
  const auto index = cfg.cluster.index_of(cfg.self);
  if (!index) bad_state("server id " + std::to_string(cfg.self.value) + " is not in the config");
  self = *index;
  self_observer = cfg.cluster.members()[self].observer;
  const auto duration_ok = [](std::int32_t ticks) {
    return ticks >= 1 && ticks <= kMaxDurationTicks;
  };
  if (!duration_ok(cfg.finalize_wait_ticks) || !duration_ok(cfg.notify_min_ticks) ||
      !duration_ok(cfg.notify_max_ticks) || cfg.notify_max_ticks < cfg.notify_min_ticks ||
      !duration_ok(cfg.learner_hello_retry_ticks) || !duration_ok(cfg.ping_ticks) ||
      !duration_ok(cfg.leader_silence_ticks) || cfg.leader_silence_ticks <= cfg.ping_ticks ||
      !duration_ok(cfg.init_limit_ticks) || !duration_ok(cfg.sync_limit_ticks) ||
      cfg.sync_limit_ticks <= cfg.ping_ticks || !duration_ok(cfg.transfer_timeout_ticks) ||
      cfg.max_batch_entries < 1 ||
      cfg.max_batch_entries > kMaxBatchEntries || cfg.max_zxid_counter < 1 ||
      cfg.max_zxid_counter > kMaxZxidCounter || cfg.max_clients < 1) {
    bad_state("a timing or size limit of the node config is out of range");
  }
  // Start-up invariants (reference §4.1, I2).
  if (st.current_epoch > st.accepted_epoch) bad_state("currentEpoch > acceptedEpoch");
  history.reset(st.log_base);
  for (const LoggedEntry& e : st.tail) {
    if (e.zxid <= history.last()) bad_state("log entries are not in increasing zxid order");
    if (e.zxid.counter() == 0) bad_state("log entry with zxid counter 0");
    if (const auto v = decode_entry(Bytes(e.bytes)); !v) {
      bad_state("log entry " + std::to_string(e.zxid.value) + ": " + to_string(v.error()) +
                " (written before fastzab entries had headers?)");
    }
    history.append(e.zxid, Bytes(e.bytes));
  }
  // A snapshot base or applied state newer than currentEpoch is allowed: it came from a leader's
  // committed state during a sync this node never acknowledged, and only makes its vote weaker.
  if (!st.tail.empty() && st.tail.back().zxid.epoch() > st.current_epoch) {
    bad_state("last logged zxid has an epoch above currentEpoch (see drop_unacknowledged_tail)");
  }
  if (st.applied_zxid < history.base()) bad_state("application is behind the log's base");
  if (st.applied_zxid > history.last()) {
    // The application durably applied entries whose log records were lost (a crash before the
    // log sync). Its state is the snapshot at applied_zxid: the log restarts there.
    history.reset(st.applied_zxid);
  } else if (!history.contains(st.applied_zxid)) {
    bad_state("applied zxid is not an entry of the log");
  }
  applied = st.applied_zxid;
  commit = applied;
  if (!st.client_table.empty()) {
    if (const auto t = committed_clients.decode(Bytes(st.client_table)); !t) {
      bad_state(std::string("the snapshot's client table: ") + to_string(t.error()));
    }
  }

  state_lost = st.state_lost;
  accepted_epoch = durable_accepted = st.accepted_epoch;
  current_epoch = durable_current = st.current_epoch;
  log_durability.reset(history.last());
  sessions.assign(cfg.cluster.size(), SessionId{});
  recvset.assign(cfg.cluster.size(), std::nullopt);
  outofelection.assign(cfg.cluster.size(), std::nullopt);
  learners.assign(cfg.cluster.size(), LearnerRecord{});
  ack_scratch.assign(cfg.cluster.size(), kNoZxid);
  pending_hellos.assign(cfg.cluster.size(), std::nullopt);
  history.evict(applied, cfg.history_window);
}

std::optional<std::size_t> Node::Impl::member(ServerId id) const noexcept {
  return cfg.cluster.index_of(id);
}

void Node::Impl::step(const Input& in, Outputs& o) {
  out = &o;
  if (evict_pending) {
    evict_pending = false;
    evict_history();
  }
  const bool first_step = (round == 0 && state == PeerState::looking);
  if (first_step) start_election(Cause::start);
  std::visit(Overloaded{
                 [&](const input::Message& m) { on_message(m); },
                 [&](const input::Tick&) { on_tick(); },
                 [&](const input::LogDurable& d) { on_log_durable(d.zxid); },
                 [&](const input::EpochsDurable& d) { on_epochs_durable(d.accepted, d.current); },
                 [&](const input::SnapshotInstalled& s) { on_snapshot_installed(s.zxid); },
                 [&](const input::ClientProposals& p) { on_client_proposals(p.proposals); },
                 [&](const input::SessionUp& s) { on_session_up(s); },
                 [&](const input::SessionDown& s) { on_session_down(s); },
                 [&](const input::TransferLeadership& t) { on_transfer_request(t); },
             },
             in);
  out = nullptr;
}

void Node::Impl::on_message(const input::Message& m) {
  const auto from = member(m.from);
  if (!from || *from == self || sessions[*from] != m.session || m.session.value == 0) {
    ++counters.stale_session_frames;
    return;
  }
  auto frame = decode_frame(m.frame);
  if (!frame) {
    ++counters.decode_errors;
    return;
  }
  if (frame->kind == FrameKind::notification) {
    on_notification(*from, frame->notification);
    return;
  }
  if (state == PeerState::leading) {
    leader_packet(*from, frame->packet);
  } else if ((state == PeerState::following || state == PeerState::observing) &&
             *from == leader_index && m.session == leader_session) {
    learner_packet(frame->packet);
  } else if ((frame->packet.type == PacketType::followerinfo ||
              frame->packet.type == PacketType::observerinfo) &&
             frame->packet.data.size() == kLearnerInfoBytes) {
    // A hello from a peer that already decided I lead (while I am LOOKING, or still following
    // the leader that is handing leadership to me): kept for when I start leading.
    PendingHello h;
    h.session = m.session;
    h.type = frame->packet.type;
    h.zxid = frame->packet.zxid;
    std::copy(frame->packet.data.begin(), frame->packet.data.end(), h.data.begin());
    pending_hellos[*from] = h;
  } else {
    // A quorum packet for a role this node does not hold.
    ++counters.ignored_packets;
  }
}

void Node::Impl::on_tick() {
  ++now;
  switch (state) {
    case PeerState::looking: election_tick(); break;
    case PeerState::leading: leader_tick(); break;
    case PeerState::following:
    case PeerState::observing: learner_tick(); break;
  }
}

void Node::Impl::on_session_up(const input::SessionUp& s) {
  const auto peer = member(s.peer);
  if (!peer || *peer == self || s.session.value == 0) return;
  sessions[*peer] = s.session;
  if (state == PeerState::looking) {
    // A new connection may have lost what was in flight: tell the peer our proposal again
    // (ZooKeeper re-sends the last message on a new connection, QCM:1253-1260).
    // Votes go to voters only (an observer's vote never counts; ZooKeeper's observers notify
    // only voters), which also keeps two LOOKING observers from talking forever.
    if (is_voter(*peer)) send_notification(*peer, PeerState::looking, proposal);
  } else if ((state == PeerState::following || state == PeerState::observing) &&
             *peer == leader_index && leader_session.value == 0) {
    leader_session = s.session;
    send_learner_info();
  }
}

void Node::Impl::on_session_down(const input::SessionDown& s) {
  const auto peer = member(s.peer);
  if (!peer || sessions[*peer] != s.session) return;
  sessions[*peer] = SessionId{};
  pending_hellos[*peer].reset();
  if (state == PeerState::looking) {
    // The peer can no longer send a better vote: the election may be settled now.
    settle_early();
  } else if (state == PeerState::leading && learners[*peer].active &&
      learners[*peer].session == s.session) {
    if (transfer_active && transfer_target == *peer) end_transfer(TransferOutcome::aborted);
    learners[*peer] = LearnerRecord{};
    contributors.reset(*peer);
    if (phase == ZabPhase::discovery) epoch_acks.reset(*peer);
    if (phase != ZabPhase::broadcast) newleader_acks.reset(*peer);
  } else if ((state == PeerState::following || state == PeerState::observing) &&
             *peer == leader_index && leader_session == s.session) {
    // Nothing of the leader session may be used after it ends (I20): back to election.
    start_election(Cause::leader_session_down);
  }
}

void Node::Impl::on_log_durable(Zxid z) {
  FASTZAB_ASSERT(log_durability.completed_append(z));  // host contract: io.h
  if (state == PeerState::leading) {
    if (phase == ZabPhase::synchronization) {
      check_established();
    } else if (phase == ZabPhase::broadcast) {
      try_commit();
      transfer_progress();
    }
  }
}

void Node::Impl::on_epochs_durable(Epoch accepted, Epoch current) {
  if (accepted > durable_accepted) durable_accepted = accepted;
  if (current > durable_current) durable_current = current;
  if (state == PeerState::leading && phase == ZabPhase::synchronization) check_established();
}

void Node::Impl::on_snapshot_installed(Zxid z) {
  FASTZAB_ASSERT(log_durability.completed_snapshot(z));  // host contract: io.h
}

// ---- output helpers ----

Output& Node::Impl::push(OutputKind kind) {
  FASTZAB_ASSERT(out != nullptr);
  out->items.emplace_back();
  Output& o = out->items.back();
  o.kind = kind;
  return o;
}

void Node::Impl::send_packet(std::size_t peer, PacketType type, Zxid zxid,
                             const DurableBarrier* barrier) {
  if (!session_up(peer)) return;
  send_frame(peer, sessions[peer], barrier,
             [&](ByteBuffer& b) { encode_packet(type, zxid, Bytes{}, b); });
}

void Node::Impl::close_session(std::size_t peer, Cause why) {
  if (!session_up(peer)) return;
  Output& o = push(OutputKind::close_session);
  o.peer = id_of(peer);
  o.session = sessions[peer];
  o.cause = why;
}

void Node::Impl::persist_epochs() {
  Output& o = push(OutputKind::persist_epochs);
  o.accepted = accepted_epoch;
  o.current = current_epoch;
}

Output& Node::Impl::emit_role_change(bool established) {
  Output& o = push(OutputKind::role_change);
  o.role = state;
  o.leader = state == PeerState::looking ? kNoServer : current_vote.leader;
  o.accepted = state == PeerState::leading   ? leader_epoch
               : state == PeerState::looking ? kNoEpoch
                                             : session_epoch;
  o.established = established;
  return o;
}

void Node::Impl::emit_entries(OutputKind kind, std::size_t first, std::size_t end) {
  // No bytes: the host reads the entries from the history (Node::entries), where they stay
  // until the next step. One output is one run of consecutive zxids, at most
  // max_batch_entries (<= kMaxBatchEntries) long.
  std::size_t i = first;
  while (i < end) {
    const Zxid start = history.at(i).zxid;
    std::size_t n = 0;
    while (i < end && n < cfg.max_batch_entries &&
           history.at(i).zxid.value == start.value + static_cast<std::int64_t>(n)) {
      if (kind == OutputKind::deliver) {
        // The client table takes the id (every history entry was checked by decode_entry when
        // it arrived).
        const auto e = decode_entry(Bytes(history.at(i).bytes));
        FASTZAB_ASSERT(e.has_value());
        committed_clients.record(e->id, history.at(i).zxid);
      }
      ++n;
      ++i;
    }
    Output& o = push(kind);
    o.zxid = start;
    o.count = static_cast<std::uint32_t>(n);
    if (kind == OutputKind::append) log_durability.issued_append(history.at(i - 1).zxid);
  }
}

void Node::Impl::deliver_up_to(Zxid z) {
  if (z > history.last()) z = history.last();
  if (z <= applied) return;
  std::size_t i = history.upper_bound(applied);
  const std::size_t end = history.upper_bound(z);
  FASTZAB_ASSERT(i <= end);
  emit_entries(OutputKind::deliver, i, end);
  applied = z;
  // The host reads the delivered entries from the history after this step: evict at the next.
  evict_pending = true;
  settle_writes();
}

void Node::Impl::send_entries(std::size_t peer, SessionId session, PacketType type,
                              std::size_t first, std::size_t end) {
  std::size_t i = first;
  while (i < end) {
    const Zxid start = history.at(i).zxid;
    send_frame(peer, session, nullptr, [&](ByteBuffer& b) {
      BatchWriter w(type, start, b);
      std::size_t n = 0;
      while (i < end && n < cfg.max_batch_entries &&
             history.at(i).zxid.value == start.value + static_cast<std::int64_t>(n)) {
        w.add(Bytes(history.at(i).bytes));
        ++n;
        ++i;
      }
      w.finish();
    });
  }
}

void Node::Impl::evict_history() {
  // Entries not yet applied stay; so do entries a synced observer has not been informed of
  // (it is told only committed entries, and may lag until the next commit reaches it).
  Zxid keep_above = applied;
  if (state == PeerState::leading) {
    for (const LearnerRecord& l : learners) {
      if (l.active && l.synced && l.observer && l.sent < keep_above) keep_above = l.sent;
    }
  }
  history.evict(keep_above, cfg.history_window);
}

// ---- recovery ----

std::optional<Zxid> drop_unacknowledged_tail(DurableState& st) {
  std::size_t keep = st.tail.size();
  while (keep > 0 && st.tail[keep - 1].zxid.epoch() > st.current_epoch) --keep;
  if (keep == st.tail.size()) return std::nullopt;
  st.tail.resize(keep);
  return keep > 0 ? st.tail.back().zxid : st.log_base;
}

// ---- Node ----

Node::Node(NodeConfig config, DurableState state)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(state))) {}
Node::~Node() = default;
Node::Node(Node&&) noexcept = default;
Node& Node::operator=(Node&&) noexcept = default;

void Node::step(const Input& input, Outputs& out) { impl_->step(input, out); }
PeerState Node::state() const noexcept { return impl_->state; }
ZabPhase Node::phase() const noexcept { return impl_->phase; }
ServerId Node::id() const noexcept { return impl_->cfg.self; }
ServerId Node::leader() const noexcept {
  return impl_->state == PeerState::looking ? kNoServer : impl_->current_vote.leader;
}
Epoch Node::accepted_epoch() const noexcept { return impl_->accepted_epoch; }
Epoch Node::current_epoch() const noexcept { return impl_->current_epoch; }
Zxid Node::last_logged() const noexcept { return impl_->history.last(); }
Zxid Node::committed() const noexcept { return impl_->commit; }
Zxid Node::applied() const noexcept { return impl_->applied; }
const Vote& Node::vote() const noexcept {
  return impl_->state == PeerState::looking ? impl_->proposal : impl_->current_vote;
}
std::int64_t Node::round() const noexcept { return impl_->round; }
const NodeCounters& Node::counters() const noexcept { return impl_->counters; }
bool Node::transferring() const noexcept { return impl_->transfer_active; }
bool Node::state_lost() const noexcept { return impl_->state_lost; }
EntryRange Node::entries(const Output& o) const {
  FASTZAB_ASSERT(o.kind == OutputKind::append || o.kind == OutputKind::deliver);
  const History& h = impl_->history;
  const std::size_t first = h.upper_bound(Zxid{o.zxid.value - 1});
  FASTZAB_ASSERT_OP(first + o.count, <=, h.size());
  FASTZAB_ASSERT(h.at(first).zxid == o.zxid);
  return EntryRange(h, first, o.count,
                    o.kind == OutputKind::append ? EntryRange::Part::entry : EntryRange::Part::value);
}

DurablePoint Node::durable() const noexcept {
  return DurablePoint{impl_->log_durability.durable(), impl_->durable_accepted,
                      impl_->durable_current};
}
void Node::encode_client_table(ByteBuffer& out) const { impl_->committed_clients.encode(out); }
const ClientTable& Node::clients() const noexcept { return impl_->committed_clients; }

}  // namespace fastzab::core
