#include "engine/runtime/replica.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <exception>
#include <utility>

#include "engine/core/codec.h"
#include "engine/core/invariant.h"

namespace fastzab::runtime {
namespace {

using core::Zxid;

std::string hex(std::uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%016" PRIx64, v);
  return buf;
}

Error log_error(const char* what, const log::Error& e) {
  return Error{std::string(what) + ": " + e.to_string()};
}

std::uint64_t as_log_zxid(Zxid z) {
  FASTZAB_ASSERT(z.value > 0);
  return static_cast<std::uint64_t>(z.value);
}

// The most ticks one turn of the loop gives the core when it fell behind (run_once).
constexpr int kMaxTickBurst = 16;

}  // namespace

Replica::Replica(ReplicaOptions options, StateMachine& app, ReplicaHooks hooks)
    : opt_(std::move(options)), app_(app), hooks_(std::move(hooks)), trace_(opt_.trace) {
  if (trace_ != nullptr) trace_pending_ = std::make_unique<trace::PendingWrites>();
}

Replica::~Replica() = default;

Result<std::unique_ptr<Replica>> Replica::open(ReplicaOptions options, StateMachine& app,
                                               ReplicaHooks hooks) {
  std::unique_ptr<Replica> r(new Replica(std::move(options), app, std::move(hooks)));
  if (auto s = r->start(); !s) return std::unexpected(s.error());
  return r;
}

Result<void> Replica::start() {
  auto opened = log::Log::open(opt_.log_dir, opt_.log);
  if (!opened) return std::unexpected(log_error("cannot open the log", opened.error()));
  log_ = std::move(*opened);
  if (const std::string cut = log::describe_cut(log_->recovery()); !cut.empty()) {
    // Never silent: a torn tail after a crash is normal, a cut at corruption is the operator's
    // choice; either way the records and zxids that went are named (RecoveryReport::records_cut).
    std::fprintf(stderr, "fastzab: log %s: recovery %s\n", opt_.log_dir.c_str(), cut.c_str());
  }

  core::DurableState state;
  state.state_lost = log_->recovery().state_lost;
  if (state.state_lost) {
    std::fprintf(stderr,
                 "fastzab: log %s: the log may have lost acknowledged records (state-lost mark): "
                 "this server neither votes nor counts in a quorum until it has synchronized "
                 "with an established leader\n",
                 opt_.log_dir.c_str());
  }
  const log::Epochs ep = log_->epochs();
  state.accepted_epoch = core::Epoch{static_cast<std::int64_t>(ep.accepted)};
  state.current_epoch = core::Epoch{static_cast<std::int64_t>(ep.current)};
  auto snap = log_->latest_snapshot();
  if (!snap) return std::unexpected(log_error("cannot read the newest snapshot", snap.error()));
  if (*snap) {
    // A snapshot is the core's client table, then the application's state.
    const auto parts = core::split_snapshot((*snap)->data);
    if (!parts) {
      return std::unexpected(Error{"the newest snapshot (" + hex((*snap)->zxid) + ") in " +
                                   opt_.log_dir + " is not a fastzab snapshot: " +
                                   core::to_string(parts.error())});
    }
    app_.restore((*snap)->zxid, parts->app_state);
    state.client_table.assign(parts->client_table.begin(), parts->client_table.end());
    state.log_base = Zxid{static_cast<std::int64_t>((*snap)->zxid)};
    state.applied_zxid = state.log_base;
    applied_zxid_ = (*snap)->zxid;
  }
  auto tail = log_->read(static_cast<std::uint64_t>(state.log_base.value) + 1, UINT64_MAX);
  if (!tail) return std::unexpected(log_error("cannot read the log", tail.error()));
  state.tail.reserve(tail->size());
  for (log::Record& rec : *tail) {
    state.tail.push_back(core::LoggedEntry{Zxid{static_cast<std::int64_t>(rec.zxid)},
                                           std::move(rec.payload)});
  }
  if (const auto to = core::drop_unacknowledged_tail(state)) {
    // Entries of an epoch this node never acknowledged (reference §4.1): gone before anyone
    // can be told about them.
    const std::uint64_t records_before = log_->record_count();
    if (auto t = log_->truncate(static_cast<std::uint64_t>(std::max<std::int64_t>(to->value, 0)));
        !t) {
      return std::unexpected(log_error("cannot drop the unacknowledged log tail", t.error()));
    }
    counters_.records_truncated += records_before - log_->record_count();
  }
  try {
    host_.emplace(opt_.node, std::move(state), static_cast<core::Effects&>(*this));
  } catch (const std::exception& e) {
    return std::unexpected(Error{std::string("the durable state is not one a node may start "
                                             "from: ") + e.what()});
  }

  auto t = opt_.open_transport ? opt_.open_transport(opt_.transport)
                               : net::Transport::open(opt_.transport);
  if (!t) return std::unexpected(Error{"cannot open the transport: " + t.error().to_string()});
  transport_ = std::move(*t);
  // The log's completions wake the transport's poll(), so the loop can wait there while a
  // batch is being synced instead of polling the log every few microseconds.
  if (auto n = log_->notify_completions(transport_->wake_fd()); !n) {
    return std::unexpected(log_error("cannot route log completions to the transport", n.error()));
  }
  next_tick_ = std::chrono::steady_clock::now() + opt_.tick;
  return {};
}

void Replica::submit(std::uint64_t tag, std::span<const std::byte> bytes,
                     const trace::ClientStamps* stamps, core::WriteId id) {
  enqueue(tag, bytes, stamps, id, false);
}

void Replica::submit_in_place(std::uint64_t tag, std::span<const std::byte> bytes,
                              const trace::ClientStamps* stamps, core::WriteId id) {
  enqueue(tag, bytes, stamps, id, true);
}

void Replica::enqueue(std::uint64_t tag, std::span<const std::byte> bytes,
                      const trace::ClientStamps* stamps, core::WriteId id, bool in_place) {
  writes_.push_back(Write{true, tag});
  const std::uint64_t itag = first_itag_ + writes_.size() - 1;
  if (trace_ != nullptr && stamps != nullptr) [[unlikely]] {
    trace_pending_->add(itag, *stamps);
    if (host_->node().state() != core::PeerState::leading) {
      trace_pending_->forwarded(itag, trace::now_ns());
    }
  }
  if (in_place) {
    queued_.push_back(QueuedProposal{itag, bytes.data(), 0, bytes.size(), id});
  } else {
    // Kept in one arena, reused, so no allocation per write once it has grown.
    queued_.push_back(QueuedProposal{itag, nullptr, proposal_arena_.size(), bytes.size(), id});
    proposal_arena_.insert(proposal_arena_.end(), bytes.begin(), bytes.end());
  }
}

// The core's write_done for internal tag o.tag.
void Replica::write_done(const core::Output& done) {
  const std::uint64_t itag = done.tag;
  FASTZAB_ASSERT(itag >= first_itag_ && itag - first_itag_ < writes_.size());
  Write& w = writes_[itag - first_itag_];
  FASTZAB_ASSERT(w.live);  // the core ends each write once
  w.live = false;
  const std::uint64_t user_tag = w.user_tag;
  while (!writes_.empty() && !writes_.front().live) {
    writes_.pop_front();
    ++first_itag_;
  }
  if (done.outcome != WriteOutcome::committed) {
    if (hooks_.failed) hooks_.failed(user_tag, done.outcome);
    return;
  }
  const std::uint64_t zxid = as_log_zxid(done.zxid);
  if (trace_ != nullptr) [[unlikely]] {
    trace_pending_->bind(itag, zxid, trace_role(), *trace_);  // a forwarded write's zxid
  }
  if (hooks_.committed) hooks_.committed(user_tag, zxid);
}

void Replica::transfer_leadership(std::uint64_t tag, std::uint64_t target) {
  transfers_.push_back(core::input::TransferLeadership{
      target == 0 ? core::kNoServer : core::ServerId{static_cast<std::int64_t>(target)}, tag});
}

void Replica::wake() { transport_->wake(); }

void Replica::send(core::ServerId peer, core::SessionId session, core::Bytes frame) {
  if (transport_->send(static_cast<std::uint64_t>(peer.value), session.value, frame)) {
    ++counters_.frames_out;
  } else {
    ++counters_.frames_dropped;
  }
  if (trace_ != nullptr) [[unlikely]] trace_frame_out(frame);
}

void Replica::step(const core::Input& input) {
  if (fatal_) return;
  if (trace_ != nullptr) [[unlikely]] committed_before_step_ = host_->node().committed();
  host_->step(input);
}

void Replica::stepped(const core::Input& input) {
  if (trace_ != nullptr) [[unlikely]] trace_step(input, committed_before_step_);
}

void Replica::close_session(core::ServerId peer, core::SessionId session, core::Cause why) {
  // A leader dropping one learner (rare) says why; a node leaving its role says so in its
  // role change instead.
  if (why != core::Cause::none) {
    std::fprintf(stderr, "fastzab: log %s: closing the session with server %lld: %s\n",
                 opt_.log_dir.c_str(), static_cast<long long>(peer.value), core::to_string(why));
  }
  transport_->close_session(static_cast<std::uint64_t>(peer.value), session.value);
}

void Replica::append(Zxid first, const core::EntryRange& entries) {
  Zxid z = first;
  for (core::Bytes entry : entries) {
    if (auto a = log_->append(as_log_zxid(z), entry); !a) {
      fatal_ = log_error("log append failed", a.error());
      return;
    }
    z = z.next();
  }
  const auto count = static_cast<std::int64_t>(entries.size());
  counters_.appended += entries.size();
  pending_appends_.push_back(first.value + count - 1);
  if (trace_ != nullptr && host_->node().state() == core::PeerState::leading) [[unlikely]] {
    // Writes a follower forwarded have no proposal_accepted here: their zxids are claimed
    // when the leader appends them (for its own, proposal_accepted already did).
    const std::uint64_t from = as_log_zxid(first);
    const std::uint64_t n = entries.size();
    const std::uint64_t traced = std::min<std::uint64_t>(n, trace::kSlots);
    for (std::uint64_t k = from + (n - traced); k < from + n; ++k) {
      trace_->claim(k, trace::Role::leader);
    }
    trace_->stamp_range(from, n, trace::Stage::proposed, trace::now_ns());
  }
}

void Replica::flush_pending_appends() {
  if (pending_appends_.empty()) return;
  completions_.push_back(core::input::LogDurable{Zxid{pending_appends_.back()}});
  pending_appends_.clear();
}

void Replica::truncate(Zxid last_kept) {
  // truncate() first makes every earlier append durable (durable effects complete in issue
  // order), so those completions are due now.
  const std::uint64_t records_before = log_->record_count();
  if (auto t = log_->truncate(static_cast<std::uint64_t>(std::max<std::int64_t>(last_kept.value, 0)));
      !t) {
    fatal_ = log_error("log truncate failed", t.error());
    return;
  }
  if (log_->record_count() < records_before) {
    ++counters_.truncations;
    counters_.records_truncated += records_before - log_->record_count();
  }
  flush_pending_appends();
}

void Replica::persist_epochs(core::Epoch accepted, core::Epoch current) {
  if (auto w = log_->write_epochs(log::Epochs{static_cast<std::uint64_t>(accepted.value),
                                              static_cast<std::uint64_t>(current.value)});
      !w) {
    fatal_ = log_error("writing the epoch file failed", w.error());
    return;
  }
  flush_pending_appends();
  completions_.push_back(core::input::EpochsDurable{accepted, current});
}

void Replica::install_snapshot(Zxid zxid, core::Bytes snapshot, core::Bytes app_state) {
  const auto at = as_log_zxid(zxid);
  // Durable first, then every record goes (those <= at are superseded by the snapshot, those
  // above it are another history's): a crash in between restarts from the snapshot with a
  // prefix of the old log after it, a state the core accepts (it syncs it again).
  if (auto s = log_->save_snapshot(at, snapshot); !s) {
    fatal_ = log_error("saving a received snapshot failed", s.error());
    return;
  }
  if (auto t = log_->reset_to_snapshot(at); !t) {
    fatal_ = log_error("dropping the log after a snapshot failed", t.error());
    return;
  }
  app_.restore(at, app_state);
  applied_zxid_ = at;
  applied_since_snapshot_ = 0;
  ++counters_.snapshots_installed;
  flush_pending_appends();
  completions_.push_back(core::input::SnapshotInstalled{zxid});
}

void Replica::snapshot_state(Zxid zxid, core::ByteBuffer& out) {
  if (static_cast<std::uint64_t>(zxid.value) != applied_zxid_) {
    // The core asks for the state at its applied zxid, which is the application's.
    fatal_ = Error{"send_snapshot at " + hex(static_cast<std::uint64_t>(zxid.value)) +
                   " but the application is at " + hex(applied_zxid_)};
    return;
  }
  const std::vector<std::byte> state = app_.snapshot();
  out.insert(out.end(), state.begin(), state.end());
  ++counters_.snapshots_sent;
}

void Replica::apply(Zxid first, const core::EntryRange& values) {
  Zxid z = first;
  for (core::Bytes value : values) {
    const auto zx = as_log_zxid(z);
    FASTZAB_ASSERT_OP(zx, >, applied_zxid_);
    app_.apply(zx, value);
    applied_zxid_ = zx;
    z = z.next();
  }
  if (trace_ != nullptr) [[unlikely]] {
    trace_->stamp_range(as_log_zxid(first), values.size(), trace::Stage::applied, trace::now_ns());
  }
  counters_.delivered += values.size();
  applied_since_snapshot_ += values.size();
}

void Replica::role_change(const core::Output& o) {
  if (o.state_restored) {
    // Synchronized with an established leader: whatever a recovery cut is held again.
    if (auto c = log_->clear_state_lost(); !c) {
      fatal_ = log_error("cannot remove the state-lost mark", c.error());
      return;
    }
    std::fprintf(stderr, "fastzab: log %s: synchronized with leader %lld: state-lost mark "
                 "removed, voting again\n", opt_.log_dir.c_str(),
                 static_cast<long long>(o.leader.value));
  }
  if (hooks_.role_changed) {
    hooks_.role_changed(o.role, static_cast<std::uint64_t>(std::max<std::int64_t>(o.leader.value, 0)),
                        std::max<std::int64_t>(o.accepted.value, 0), o.established,
                        o.cause == core::Cause::none ? nullptr : core::to_string(o.cause));
  }
}

void Replica::proposal_accepted(std::uint64_t tag, Zxid zxid) {
  if (trace_ != nullptr) [[unlikely]] {
    const std::uint64_t zx = as_log_zxid(zxid);
    trace_->claim(zx, trace::Role::leader);
    trace_->stamp(zx, trace::Stage::proposed, trace_propose_ns_);
    trace_pending_->bind(tag, zx, trace::Role::leader, *trace_);
  }
}

void Replica::transfer_result(const core::Output& o) {
  if (hooks_.transfer_ended) {
    hooks_.transfer_ended(o.tag, o.transfer,
                          static_cast<std::uint64_t>(std::max<std::int64_t>(o.leader.value, 0)));
  }
}

// Completions queued while carrying out outputs, reported in issue order. Each may produce
// outputs that queue more.
Result<void> Replica::drain_completions() {
  while (!completions_.empty() && !fatal_) {
    const core::Input in = std::move(completions_.front());
    completions_.pop_front();
    step(in);  // the host releases what its gate held for it, then steps the node
  }
  if (fatal_) return std::unexpected(*fatal_);
  return {};
}

// Submits what the core appended and reports what became durable.
Result<void> Replica::report_durable() {
  if (trace_ != nullptr && log_->last_zxid() != trace_submitted_) [[unlikely]] {
    trace_submitted_ = log_->last_zxid();
    trace_->stamp_down(trace_submitted_, trace::Stage::log_submit, trace::now_ns());
  }
  if (auto s = log_->submit(); !s) return std::unexpected(log_error("log write failed", s.error()));
  auto d = log_->poll(false);
  if (!d) return std::unexpected(log_error("log write or sync failed", d.error()));
  std::int64_t last = 0;
  while (!pending_appends_.empty() &&
         static_cast<std::uint64_t>(pending_appends_.front()) <= *d) {
    last = pending_appends_.front();
    pending_appends_.pop_front();
  }
  if (last != 0) {
    completions_.push_back(core::input::LogDurable{Zxid{last}});
    if (trace_ != nullptr) [[unlikely]] {
      trace_->stamp_down(static_cast<std::uint64_t>(last), trace::Stage::durable, trace::now_ns());
    }
  }
  return {};
}

Result<void> Replica::maybe_snapshot() {
  if (opt_.snapshot_every == 0 || applied_since_snapshot_ < opt_.snapshot_every) return {};
  if (applied_zxid_ == 0 || applied_zxid_ > log_->durable_zxid()) return {};
  // The core's client table is at its applied zxid, which every deliver output processed has
  // brought the application to.
  FASTZAB_ASSERT_OP(static_cast<std::uint64_t>(host_->node().applied().value), ==, applied_zxid_);
  std::vector<std::byte> snapshot;
  host_->node().encode_client_table(snapshot);
  const std::vector<std::byte> state = app_.snapshot();
  snapshot.insert(snapshot.end(), state.begin(), state.end());
  if (auto s = log_->save_snapshot(applied_zxid_, snapshot); !s) {
    return std::unexpected(log_error("taking a snapshot failed", s.error()));
  }
  if (auto p = log_->purge(); !p) {
    return std::unexpected(log_error("purging the log failed", p.error()));
  }
  applied_since_snapshot_ = 0;
  ++counters_.snapshots_taken;
  return {};
}

Result<void> Replica::run_once(std::chrono::microseconds max_wait) {
  if (fatal_) return std::unexpected(*fatal_);
  ++counters_.turns;
  using clock = std::chrono::steady_clock;
  // Wait no longer than the next tick, and not at all while work is pending (proposals, or log
  // batches whose completion we must notice: the log's ring is not the transport's).
  auto now = clock::now();
  auto wait = std::min<std::chrono::microseconds>(
      max_wait, std::chrono::duration_cast<std::chrono::microseconds>(
                    std::max(next_tick_ - now, clock::duration::zero())));
  if (!queued_.empty() || !transfers_.empty()) wait = std::chrono::microseconds(0);

  auto polled = transport_->poll(wait, [this](const net::Event& e) {
    const core::ServerId peer{static_cast<std::int64_t>(e.peer)};
    const core::SessionId session{e.session};
    switch (e.kind) {
      case net::Event::Kind::session_up:
        step(core::input::SessionUp{peer, session});
        break;
      case net::Event::Kind::session_down:
        step(core::input::SessionDown{peer, session});
        break;
      case net::Event::Kind::frame:
        ++counters_.frames_in;
        if (trace_ != nullptr) [[unlikely]] trace_frame_in(peer, e.frame);
        step(core::input::Message{peer, session, e.frame});
        break;
    }
  });
  if (!polled) return std::unexpected(Error{"transport: " + polled.error().to_string()});
  if (fatal_) return std::unexpected(*fatal_);

  if (!queued_.empty()) {
    if (trace_ != nullptr) [[unlikely]] trace_propose_ns_ = trace::now_ns();
    proposals_.clear();
    for (const QueuedProposal& q : queued_) {
      const core::Bytes value = q.in_place != nullptr
                                    ? core::Bytes(q.in_place, q.length)
                                    : core::Bytes(proposal_arena_).subspan(q.offset, q.length);
      proposals_.push_back(core::ClientProposal{q.tag, value, q.id});
    }
    step(core::input::ClientProposals{proposals_});
    proposals_.clear();
    queued_.clear();
    proposal_arena_.clear();
  }
  if (!transfers_.empty()) [[unlikely]] {
    std::vector<core::input::TransferLeadership> requests;
    requests.swap(transfers_);
    for (const auto& t : requests) step(t);
  }
  now = clock::now();
  // The ticks that came due, at most kMaxTickBurst: a turn that ran late (a long batch, a late
  // wake-up) keeps the core's clock in step with real time at a fine tick, but a long stall (a
  // stopped process) is not replayed as a burst that would expire every timer at once.
  for (int due = 0; now >= next_tick_ && due < kMaxTickBurst; ++due) {
    step(core::input::Tick{});
    next_tick_ += opt_.tick;
  }
  if (next_tick_ <= now) next_tick_ = now + opt_.tick;  // fell far behind: drop the rest
  // Log completions feed the core, which may append and send more: loop until quiet.
  for (int round = 0; round < 64; ++round) {
    if (auto r = drain_completions(); !r) return r;
    if (auto r = report_durable(); !r) return r;
    if (completions_.empty()) break;
  }
  if (auto r = maybe_snapshot(); !r) return r;
  if (fatal_) return std::unexpected(*fatal_);
  return {};
}

// ---------------------------------------------------------------- commit tracing

trace::Role Replica::trace_role() const noexcept {
  switch (host_->node().state()) {
    case core::PeerState::leading: return trace::Role::leader;
    case core::PeerState::following: return trace::Role::follower;
    case core::PeerState::observing: return trace::Role::observer;
    case core::PeerState::looking: return trace::Role::looking;
  }
  return trace::Role::none;
}

// The core moved its commit point: on the leader a quorum now holds everything up to it (the
// input says whose durability completed it: an ACK's sender, or the leader's own log), on a
// learner a COMMIT (or INFORM) arrived.
void Replica::trace_step(const core::Input& input, core::Zxid committed_before) {
  const core::Zxid now_committed = host_->node().committed();
  if (now_committed.value <= committed_before.value || now_committed.value <= 0) return;
  const auto last = static_cast<std::uint64_t>(now_committed.value);
  const std::uint64_t ns = trace::now_ns();
  if (host_->node().state() == core::PeerState::leading) {
    auto by = static_cast<std::uint64_t>(opt_.node.self.value);
    if (const auto* m = std::get_if<core::input::Message>(&input)) {
      by = static_cast<std::uint64_t>(m->from.value);
    }
    trace_->commit_down(last, by, ns);
  } else {
    trace_->stamp_down(last, trace::Stage::commit_recv, ns);
  }
}

void Replica::trace_frame_in(core::ServerId peer, core::Bytes frame) {
  const auto p = trace::peek(frame);
  if (!p) return;
  if (p->kind == trace::FramePeek::Kind::proposal) {
    const trace::Role role = trace_role();
    if (role != trace::Role::follower && role != trace::Role::observer) return;
    const std::uint64_t ns = trace::now_ns();
    const std::uint64_t count = std::min<std::uint64_t>(p->count, trace::kSlots);
    const std::uint64_t first = p->zxid + (p->count - count);
    for (std::uint64_t i = 0; i < count; ++i) trace_->claim(first + i, role);
    trace_->stamp_range(first, count, trace::Stage::proposal_recv, ns);
  } else if (p->kind == trace::FramePeek::Kind::ack &&
             host_->node().state() == core::PeerState::leading) {
    trace_->ack_down(p->zxid, static_cast<std::uint64_t>(peer.value), trace::now_ns());
  }
}

void Replica::trace_frame_out(core::Bytes frame) {
  const auto p = trace::peek(frame);
  if (!p) return;
  if (p->kind == trace::FramePeek::Kind::proposal) {
    trace_->stamp_range(p->zxid, p->count, trace::Stage::proposal_sent, trace::now_ns());
  } else if (p->kind == trace::FramePeek::Kind::ack) {
    trace_->stamp_down(p->zxid, trace::Stage::ack_sent, trace::now_ns());
  }
}

}  // namespace fastzab::runtime
