#include "cluster.h"

#include <cstdio>
#include <stdexcept>
#include <utility>

#include "trace.h"

namespace fastzab::sim {

using core::OutputKind;
using core::Zxid;

namespace {

core::ClusterConfig make_config(std::uint32_t voters, std::uint32_t observers) {
  std::vector<core::Member> members;
  for (std::uint32_t i = 1; i <= voters + observers; ++i) {
    core::Member m;
    m.id = core::ServerId{static_cast<std::int64_t>(i)};
    m.observer = i > voters;
    members.push_back(m);
  }
  auto c = core::ClusterConfig::make(std::move(members), core::QuorumVerifier::Kind::majority);
  if (!c) throw std::invalid_argument(std::string("cluster config: ") + core::to_string(c.error()));
  return *c;
}

}  // namespace

Cluster::Cluster(const SimOptions& options)
    : opt_(options),
      rng_(options.seed),
      profile_(choose_profile(rng_, options.seed)),
      config_(make_config(options.voters, options.observers)),
      net_(options.voters + options.observers, rng_, q_, profile_.net),
      checkers_(options.voters + options.observers),
      workload_(options.seed, profile_, rng_, q_, checkers_),
      faults_(profile_, rng_, q_, net_, *this, options.voters + options.observers) {
  const std::uint32_t n = options.voters + options.observers;
  hosts_.reserve(n);
  std::vector<std::string> names;
  for (std::uint32_t i = 0; i < n; ++i) {
    hosts_.emplace_back(i, rng_, q_, profile_.disk);
    hosts_[i].id = core::ServerId{static_cast<std::int64_t>(i + 1)};
    hosts_[i].observer = i >= options.voters;
    names.push_back("s" + std::to_string(i + 1) + (hosts_[i].observer ? "(observer)" : ""));
  }
  checkers_.set_node_names(std::move(names));
}

std::optional<std::uint32_t> Cluster::current_leader() const {
  // A frozen node still believes it leads; its clients (and the faults) have moved on to the
  // one the others elected meanwhile, if any.
  const auto rank = [this](std::uint32_t i) {
    return (hosts_[i].frozen ? 0 : 2) + (hosts_[i].core->node().phase() == core::ZabPhase::broadcast ? 1 : 0);
  };
  std::optional<std::uint32_t> best;
  for (std::uint32_t i = 0; i < hosts_.size(); ++i) {
    const Host& h = hosts_[i];
    if (!h.up || h.core->node().state() != core::PeerState::leading) continue;
    if (!best || rank(i) > rank(*best)) best = i;
  }
  return best;
}

SimResult Cluster::run() {
  for (std::uint32_t i = 0; i < hosts_.size(); ++i) start_node(i);
  for (std::uint32_t i = 0; i < hosts_.size(); ++i) {
    Event e;
    e.kind = EventKind::tick;
    e.a = i;
    q_.schedule(rng_.range(0, kTickPeriod - 1), std::move(e));
  }
  workload_.schedule_next();
  faults_.start();
  if (opt_.steps == 0) begin_liveness();

  const std::uint64_t storm_limit = opt_.steps + 5'000'000;
  while (!q_.empty() && !done_ && !checkers_.failed()) {
    Event e = q_.pop();
    ++events_;
    checkers_.set_time(q_.now());
    digest_.add_i64(e.time);
    digest_.add_u64(static_cast<std::uint64_t>(e.kind));
    digest_.add_u64(e.a);
    digest_.add_u64(e.b);
    digest_.add_u64(e.x);
    digest_.add_u64(e.y);
    dispatch(e);
    if (checkers_.failed()) break;
    if (!liveness_ && events_ >= opt_.steps) begin_liveness();
    if (liveness_) check_liveness();
    if (events_ > storm_limit) checkers_.fail_global("storm", "event storm: too many events");
  }
  if (!done_ && !checkers_.failed()) checkers_.fail_global("liveness", "simulator ran out of events");

  SimResult r;
  r.seed = opt_.seed;
  r.profile = profile_.name();
  r.time = q_.now();
  r.events = events_;
  r.commits = checkers_.commits();
  r.leaders = checkers_.leaders();
  r.acknowledged = checkers_.acknowledged();
  r.forwarded_acknowledged = checkers_.forwarded_acknowledged();
  r.refused = checkers_.refused();
  r.unknown_outcomes = checkers_.unknown_outcomes();
  r.retries_acknowledged = checkers_.retries_acknowledged();
  r.digest = digest_.value();
  r.liveness_time = liveness_ ? q_.now() - liveness_start_ : 0;
  r.faults = faults_.counts();
  r.faults.disk_failures = disk_failures_;
  r.faults.zombies = zombies_;
  r.faults.zombie_frames = zombie_frames_;
  r.faults.zombie_frames_delivered = zombie_frames_delivered_;
  r.faults.lost_tails = lost_tails_;
  r.faults.lost_tail_entries = lost_tail_entries_;
  r.violation = checkers_.violation();
  r.check = checkers_.check();
  return r;
}

void Cluster::dispatch(Event& e) {
  switch (e.kind) {
    case EventKind::tick: {
      Host& h = hosts_[e.a];
      if (h.up && h.frozen) {
        ++h.missed_ticks;
      } else if (h.up && q_.now() < h.clock_stall_until) {
        ++h.stalled_ticks;
      } else if (h.up) {
        tick(e.a);
      }
      Event next;
      next.kind = EventKind::tick;
      next.a = e.a;
      q_.schedule(q_.now() + h.tick_period, std::move(next));
      break;
    }
    case EventKind::deliver: {
      const core::SessionId s{e.x};
      if (!hosts_[e.b].up) break;
      // Waits in the frozen node's socket; fenced at thaw if its session has ended meanwhile.
      if (hosts_[e.b].frozen) {
        hosts_[e.b].held.push_back(Held{std::move(e), {}, {}, {}, {}});
        break;
      }
      if (!net_.is_current(e.a, e.b, s)) break;  // fenced
      if (hosts_[e.a].zombie) ++zombie_frames_delivered_;  // reaches a peer's core
      checkers_.frame_received(e.b, e.a, s, core::Bytes(e.data), hosts_[e.b].disk);
      step(e.b, core::input::Message{hosts_[e.a].id, s, core::Bytes(e.data)});
      break;
    }
    case EventKind::session_up:
    case EventKind::session_down:
      if (!hosts_[e.a].up) break;
      if (hosts_[e.a].frozen) {
        hosts_[e.a].held.push_back(Held{std::move(e), {}, {}, {}, {}});
      } else if (e.kind == EventKind::session_down) {
        step(e.a, core::input::SessionDown{hosts_[e.b].id, core::SessionId{e.x}});
      } else if (net_.is_current(e.a, e.b, core::SessionId{e.x})) {
        step(e.a, core::input::SessionUp{hosts_[e.b].id, core::SessionId{e.x}});
      }
      break;
    case EventKind::connect: net_.on_connect(e.a, e.b); break;
    case EventKind::session_kill: net_.on_session_kill(e.a, e.b, core::SessionId{e.x}); break;
    case EventKind::disk_done: on_disk_done(e.a, e); break;
    case EventKind::workload:
      on_workload();
      workload_.schedule_next();
      break;
    case EventKind::chaos:
      faults_.on_chaos();
      if (opt_.verbose) std::printf("t=%lld chaos: %s\n", static_cast<long long>(q_.now()),
                                    faults_.last_action().c_str());
      break;
    case EventKind::heal: faults_.on_heal(e.x); break;
    case EventKind::restart:
      if (!hosts_[e.a].up && e.x == hosts_[e.a].disk.incarnation()) {
        if (profile_.lost_tails) maybe_lose_tail(e.a);
        start_node(e.a);
      }
      break;
    case EventKind::spike_end: faults_.on_spike_end(e.x); break;
    case EventKind::slow_end: faults_.on_slow_end(e.a, e.x); break;
    case EventKind::thaw: faults_.on_thaw(e.a, e.x); break;
  }
}

void Cluster::step(std::uint32_t i, const core::Input& in) {
  Host& h = hosts_[i];
  client_table_encoded_ = false;
  ++h.steps;
  digest_.add_u64(i);
  digest_.add_u64(in.index());
  if (opt_.verbose) trace(i, "<-", describe_input(in));
  h.core->step(in);  // on_stepped, then one NodeEffects callback per output
  if (checkers_.failed()) return;
  const core::ZabPhase phase = h.core->node().phase();
  if (phase == core::ZabPhase::broadcast && h.last_phase != core::ZabPhase::broadcast) {
    checkers_.entered_broadcast(i, h.core->node().current_epoch(), h.disk.app());
  }
  h.last_phase = phase;
  if (const std::string err = h.disk.check_durable(); !err.empty()) {
    checkers_.fail("restart", i, "durable state a restart would refuse: " + err);
  }
}

void Cluster::on_stepped(std::uint32_t i, const core::Input&) {
  const core::Outputs& outs = hosts_[i].core->last_outputs();
  for (const core::Output& o : outs.items) {
    digest_.add_u64(static_cast<std::uint64_t>(o.kind));
    digest_.add_i64(o.peer.value);
    digest_.add_u64(o.session.value);
    digest_.add_i64(o.zxid.value);
    digest_.add_u64(o.count);
    digest_.add_i64(o.barrier.log_zxid.value);
    digest_.add_i64(o.barrier.accepted.value);
    digest_.add_i64(o.barrier.current.value);
    digest_.add_i64(o.accepted.value);
    digest_.add_i64(o.current.value);
    digest_.add_u64(static_cast<std::uint64_t>(o.role) * 2 + (o.established ? 1 : 0));
    digest_.add_i64(o.leader.value);
    digest_.add_u64(o.tag);
    digest_.add_u64(static_cast<std::uint64_t>(o.reason));
    digest_.add_bytes(outs.bytes(o));
    if (opt_.verbose) trace(i, "  ->", describe_output(outs, o));
    if ((o.kind == OutputKind::append || o.kind == OutputKind::deliver) &&
        o.count > profile_.max_batch_entries) {
      // A host decodes each output as one batch: larger ones it cannot take (kMaxBatchEntries).
      return checkers_.fail(i, std::string(core::to_string(o.kind)) + " output of " +
                                   std::to_string(o.count) + " entries, above max_batch_entries " +
                                   std::to_string(profile_.max_batch_entries));
    }
  }
}

// Host-bug self-tests: a host that lets some acknowledgements leave before their barrier.
core::DurableBarrier Cluster::held_barrier(const core::Output& o, core::Bytes frame) const {
  enum class Ack : std::uint8_t { none, proposal, newleader, epoch };
  const std::string& bug = opt_.host_bug;
  if (bug.empty()) return o.barrier;
  const auto ack_kind = [&] {
    const auto f = core::decode_frame(frame);
    if (!f || f->kind != core::FrameKind::quorum) return Ack::none;
    if (f->packet.type == core::PacketType::ackepoch) return Ack::epoch;
    if (f->packet.type != core::PacketType::ack) return Ack::none;
    return f->packet.zxid.counter() == 0 ? Ack::newleader : Ack::proposal;
  };
  if (bug == "ignore-barriers" || (bug == "early-acks" && ack_kind() != Ack::none) ||
      (bug == "early-proposal-acks" && ack_kind() == Ack::proposal)) {
    return core::DurableBarrier{};
  }
  core::DurableBarrier half = o.barrier;
  if (bug.starts_with("newleader-ack-before-") && ack_kind() == Ack::newleader) {
    // Waits for only half of its barrier: the epochs (not the synced log), or the reverse.
    if (bug == "newleader-ack-before-log") {
      half.log_zxid = core::kNoZxid;
    } else {
      half.accepted = core::kNoEpoch;
      half.current = core::kNoEpoch;
    }
  }
  return half;
}

void Cluster::on_close(std::uint32_t i, core::ServerId peer, core::SessionId s) {
  const std::uint32_t j = index_of(peer);
  if (j >= hosts_.size() || j == i) return checkers_.fail(i, "close_session to a non-peer");
  net_.close(i, j, s);
}

void Cluster::on_append(std::uint32_t i, Zxid first, const core::EntryRange& entries) {
  entries_scratch_.clear();
  Zxid z = first;
  for (core::Bytes b : entries) {
    entries_scratch_.push_back(core::LoggedEntry{z, core::ByteBuffer(b.begin(), b.end())});
    z = z.next();
  }
  if (const std::string err = hosts_[i].disk.append(first, std::move(entries_scratch_)); !err.empty()) {
    checkers_.fail(i, err);
  }
}

void Cluster::on_truncate(std::uint32_t i, Zxid last_kept) {
  if (const std::string err = hosts_[i].disk.truncate(last_kept); !err.empty()) checkers_.fail(i, err);
}

void Cluster::on_persist_epochs(std::uint32_t i, core::Epoch accepted, core::Epoch current) {
  Disk& disk = hosts_[i].disk;
  if (accepted < disk.epochs().accepted || current < disk.epochs().current) {
    return checkers_.fail(i, "persist_epochs " + std::to_string(accepted.value) + "/" +
                                 std::to_string(current.value) + " moves an epoch back from " +
                                 std::to_string(disk.epochs().accepted.value) + "/" +
                                 std::to_string(disk.epochs().current.value));
  }
  if (current > accepted) return checkers_.fail(i, "persist_epochs with current > accepted");
  disk.persist_epochs(accepted, current);
}

void Cluster::on_install_snapshot(std::uint32_t i, Zxid at, core::Bytes snapshot, core::Bytes app_state) {
  Host& h = hosts_[i];
  const auto parts = core::split_snapshot(snapshot);
  auto app = parts ? decode_snapshot(app_state) : std::nullopt;
  if (!app) return checkers_.fail(i, "install_snapshot bytes are not a snapshot");
  app->client_table.assign(parts->client_table.begin(), parts->client_table.end());
  if (app->zxid != at) {
    return checkers_.fail(i, "install_snapshot at " + zxid_str(at) + " of a snapshot taken at " +
                                 zxid_str(app->zxid));
  }
  if (app->entries.size() < h.disk.app().entries.size()) {
    return checkers_.fail(i, "install_snapshot at " + zxid_str(at) +
                                 " rolls the application back from " + zxid_str(h.disk.app().zxid));
  }
  h.disk.install_snapshot(at, std::move(*app));
  checkers_.replaced(i, h.disk.app());
}

void Cluster::on_snapshot_state(std::uint32_t i, Zxid at, core::ByteBuffer& out) {
  const AppState& app = hosts_[i].disk.app();
  if (app.zxid != at) {
    return checkers_.fail(i, "send_snapshot at " + zxid_str(at) + " but the application is at " +
                                 zxid_str(app.zxid));
  }
  encode_snapshot(app, out);
}

void Cluster::on_apply(std::uint32_t i, Zxid first, const core::EntryRange& values) {
  Host& h = hosts_[i];
  std::vector<AppEntry> entries;
  Zxid z = first;
  for (core::Bytes b : values) {
    entries.push_back(AppEntry{z, std::string(reinterpret_cast<const char*>(b.data()), b.size())});
    z = z.next();
  }
  if (first <= h.disk.app().zxid) {
    return checkers_.fail(i, "deliver of " + zxid_str(first) + " but the application is at " +
                                 zxid_str(h.disk.app().zxid));
  }
  const std::size_t old_size = h.disk.app().entries.size();
  if (!client_table_encoded_) {
    // The core's table after this step (a later deliver of the step is in it already).
    client_table_.clear();
    h.core->node().encode_client_table(client_table_);
    client_table_encoded_ = true;
  }
  h.disk.deliver(std::move(entries), client_table_);
  checkers_.delivered(i, h.disk.app(), old_size);
}

void Cluster::on_role_change(std::uint32_t i, const core::Output& o) {
  if (o.established) checkers_.established(i, o.role, o.accepted);
  if (o.state_restored) hosts_[i].disk.set_state_lost(false);
}

void Cluster::on_write_done(std::uint32_t i, const core::Output& o) {
  checkers_.write_done(i, o, hosts_[i].disk.app());
  workload_.ended(o.tag, o.outcome == core::WriteOutcome::committed);
  if (o.outcome != core::WriteOutcome::committed && o.tag == probe_tag_) {
    probe_tag_ = 0;  // submit the probe again
  }
}

void Cluster::frame_out(std::uint32_t i, core::ServerId peer, core::SessionId s, core::Bytes frame) {
  const std::uint32_t j = index_of(peer);
  if (j >= hosts_.size() || j == i) return checkers_.fail(i, "send to a non-peer");
  if (Host& h = hosts_[i]; h.zombie) {
    if (h.core->node().state() == core::PeerState::leading && h.core->node().current_epoch() == h.frozen_epoch) {
      ++zombie_frames_;
    } else {
      h.zombie = false;
    }
  }
  checkers_.frame_sent(i, j, s, frame, hosts_[i].disk);
  digest_.add_u64(j);
  digest_.add_u64(s.value);
  digest_.add_u64(frame.size());
  net_.send(i, j, s, frame);
}

void Cluster::on_disk_done(std::uint32_t i, const Event& e) {
  Host& h = hosts_[i];
  if (!h.up || e.x != h.disk.incarnation()) return;  // lost in a crash
  if (e.b != h.disk.schedule_gen()) return;          // rescheduled by a disk stall
  const Completion c = h.disk.complete(e.y);
  if (const std::string err = h.disk.check_durable(); !err.empty()) {
    return checkers_.fail("restart", i, "durable state a restart would refuse: " + err);
  }
  if (c.probe_restart && opt_.restart_probes) probe_restart(i, "after a disk write completed");
  if (checkers_.failed() || (c.kind == Completion::Kind::none && c.error == DiskError::none)) return;
  if (h.frozen) {
    // The kernel finished the write (the image above is durable, a crash keeps it); the stopped
    // process hears of it at thaw, and only then may its SendGate release what waited for it.
    Held held;
    held.event.kind = EventKind::disk_done;
    held.done = c;
    h.held.push_back(std::move(held));
    return;
  }
  report_done(i, c);
}

void Cluster::report_done(std::uint32_t i, const Completion& c) {
  if (c.error != DiskError::none) return on_disk_failure(i, c);
  switch (c.kind) {  // the host releases what its gate held for each, then steps the node
    case Completion::Kind::none: break;
    case Completion::Kind::log_durable: step(i, core::input::LogDurable{c.zxid}); break;
    case Completion::Kind::epochs_durable:
      step(i, core::input::EpochsDurable{c.accepted, c.current});
      break;
    case Completion::Kind::snapshot_installed:
      step(i, core::input::SnapshotInstalled{c.zxid});
      break;
  }
}

// A durable op failed. The production host (engine/runtime/replica.cpp) treats every failed
// append, epoch write or snapshot save as fatal: the Replica stops stepping the core and
// fastzab-server exits ("stopping: log write failed"), so its connections close; whoever
// supervises it restarts it later from what is on its disk (the poisoned log is reopened and
// recovered like after a crash). The simulated host does the same: the node goes down at once,
// nothing more leaves it, and it restarts from its durable image after a while (a supervisor's
// restart), except after ENOSPC, which needs an operator: down until the liveness phase (there,
// an op issued before it may still fail: the node then restarts like after any other error).
void Cluster::on_disk_failure(std::uint32_t i, const Completion& c) {
  Host& h = hosts_[i];
  ++disk_failures_;
  checkers_.disk_failed(i, c, h.disk);
  if (checkers_.failed()) return;
  if (opt_.verbose) {
    trace(i, "DISK FAILURE", std::string(c.op) + " " + to_string(c.error) + "; durable log ends at " +
                                 zxid_str(h.disk.durable_log().last()));
  }
  if (opt_.host_bug == "no-fail-stop") return;  // swallowed: the node goes on
  if (opt_.host_bug == "ignore-disk-errors") {  // reported as done: the node goes on
    Completion ok = c;
    ok.error = DiskError::none;
    return report_done(i, ok);
  }
  if (c.error == DiskError::enospc && !liveness_) {  // healing frees the space
    stop_node(i, 0, -1);
  } else {
    stop_node(i, 0, 100);
  }
}

void Cluster::tick(std::uint32_t i) {
  Host& h = hosts_[i];
  // The first tick after a clock stall: the stalled ones first, back to back, or none.
  const std::uint64_t stalled = std::exchange(h.stalled_ticks, 0);
  if (h.clock_replay) {
    for (std::uint64_t k = 0; k < stalled && h.up && !checkers_.failed(); ++k) {
      step(i, core::input::Tick{});
    }
  }
  if (h.up && !checkers_.failed()) step(i, core::input::Tick{});
}

void Cluster::clock_jump(std::uint32_t i, std::uint32_t ticks) {
  Host& h = hosts_[i];
  if (!h.up || h.frozen || q_.now() < h.clock_stall_until) return;
  if (opt_.verbose) trace(i, "CLOCK JUMP", std::to_string(ticks) + " ticks");
  for (std::uint32_t k = 0; k < ticks && h.up && !checkers_.failed(); ++k) {
    step(i, core::input::Tick{});
  }
}

void Cluster::clock_stall(std::uint32_t i, Time until, bool replay) {
  Host& h = hosts_[i];
  if (!h.up || until <= h.clock_stall_until) return;
  h.clock_stall_until = until;
  h.clock_replay = replay;
}

void Cluster::heal_clocks_and_disks() {
  for (Host& h : hosts_) {
    h.tick_period = kTickPeriod;
    if (h.clock_stall_until > q_.now()) h.clock_stall_until = q_.now();
    h.disk.disarm_error();
    h.disk.end_stall();
  }
}

// Recovery cut the last records of the log, records this node may have acknowledged. The host
// knows (log::RecoveryReport::records_cut) and marks the state lost, durably, before the node
// starts; "ignore-lost-state" is the host that does not. At most a minority of the voters may be
// lost at once: beyond that no quorum is left to fetch the records from, which is outside the
// fault model (the cluster would rightly stay unavailable).
void Cluster::maybe_lose_tail(std::uint32_t i) {
  Host& h = hosts_[i];
  if (!rng_.chance(1, 3) || h.disk.state_lost()) return;
  std::uint32_t lost = 0;
  for (const Host& other : hosts_) lost += other.disk.state_lost() ? 1 : 0;
  if (lost + 1 > (opt_.voters - 1) / 2) return;
  const std::size_t cut = h.disk.lose_synced(static_cast<std::size_t>(rng_.range(1, 12)));
  if (cut == 0) return;
  ++lost_tails_;
  lost_tail_entries_ += cut;
  if (opt_.host_bug != "ignore-lost-state") h.disk.set_state_lost(true);
  if (opt_.verbose) {
    trace(i, "RECOVERY", "cut " + std::to_string(cut) + " possibly acknowledged records" +
                             (h.disk.state_lost() ? ", state lost until resynchronized" : ""));
  }
}

void Cluster::start_node(std::uint32_t i) {
  Host& h = hosts_[i];
  checkers_.node_started(i);
  h.clock_stall_until = 0;
  h.stalled_ticks = 0;
  h.zombie = false;
  core::DurableState state = h.disk.durable_state();
  if (const auto to = core::drop_unacknowledged_tail(state)) {
    const auto dropped = h.disk.recovery_truncate(*to);
    checkers_.dropped_on_recovery(i, dropped, h.disk.durable_app().zxid);
    if (opt_.verbose) {
      trace(i, "RECOVERY", "truncated the log to " + zxid_str(*to) + " (" +
                               std::to_string(dropped.size()) + " entries)");
    }
  }
  h.disk.recover();
  h.effects.c = this;
  h.effects.i = i;
  try {
    h.core.emplace(node_config(i), std::move(state), h.effects);
  } catch (const std::exception& ex) {
    return checkers_.fail("restart", i, std::string("restart refused: ") + ex.what());
  }
  h.up = true;
  h.last_phase = h.core->node().phase();
  net_.node_up(i);
  if (opt_.verbose) trace(i, "START", describe(i));
}

core::NodeConfig Cluster::node_config(std::uint32_t i) const {
  core::NodeConfig cfg;
  cfg.cluster = config_;
  cfg.self = hosts_[i].id;
  cfg.history_window = profile_.history_window;
  if (profile_.max_zxid_counter != 0) cfg.max_zxid_counter = profile_.max_zxid_counter;
  cfg.max_batch_entries = profile_.max_batch_entries;
  return cfg;
}

// A crash right now would restart the node from this durable image: it must be accepted.
void Cluster::probe_restart(std::uint32_t i, const char* after) {
  core::DurableState state = hosts_[i].disk.durable_state_above_applied();
  core::drop_unacknowledged_tail(state);
  try {
    core::Node probe(node_config(i), std::move(state));
  } catch (const std::exception& ex) {
    checkers_.fail("restart", i, std::string("a crash now would leave a node that cannot restart (") + after +
                          "): " + ex.what());
  }
}

void Cluster::crash_node(std::uint32_t i, bool torn) {
  Host& h = hosts_[i];
  if (!h.up) return;
  const std::size_t survivors = torn ? static_cast<std::size_t>(rng_.below(h.disk.pending() + 1)) : 0;
  if (opt_.verbose) {
    trace(i, "CRASH", describe(i) + " pending ops " + std::to_string(h.disk.pending()) +
                          ", surviving " + std::to_string(survivors));
  }
  stop_node(i, survivors, 10);
}

void Cluster::stop_node(std::uint32_t i, std::size_t survivors, Time restart_min) {
  Host& h = hosts_[i];
  h.disk.crash(survivors);
  if (opt_.host_bug == "lose-synced") h.disk.lose_synced(static_cast<std::size_t>(rng_.range(1, 3)));
  if (const std::string err = h.disk.check_durable(); !err.empty()) {
    checkers_.fail("restart", i, "durable state after crash a restart would refuse: " + err);
  }
  // A crash ends a freeze: what waited in the stopped process dies with it.
  h.frozen = false;
  h.missed_ticks = 0;
  h.held.clear();
  h.core.reset();
  h.up = false;
  net_.node_down(i);
  checkers_.client_disconnected(i);
  workload_.node_crashed(i);
  if (probe_tag_ != 0 && probe_node_ == i) probe_tag_ = 0;
  h.zombie = false;
  if (restart_min < 0) return;  // down until the liveness phase
  Event e;
  e.kind = EventKind::restart;
  e.a = i;
  e.x = h.disk.incarnation();
  // A crashed machine comes back after 10-1500; a supervisor restarts a failed process after
  // 100-2000 (restart_min 100).
  q_.schedule(q_.now() + (restart_min == 10 ? rng_.range(10, 1500) : rng_.range(100, 2000)),
              std::move(e));
}

void Cluster::on_workload() {
  std::vector<std::uint32_t> up;
  for (std::uint32_t i = 0; i < hosts_.size(); ++i) {
    if (hosts_[i].up) up.push_back(i);
  }
  if (up.empty()) return;
  std::uint32_t target = 0;
  const auto leader = current_leader();
  if (draining_) return;  // the end: no new writes while the last ones end
  // Clients of followers and observers too (a third of the batches): they forward to the leader.
  if ((profile_.random_targets || leader) && rng_.chance(1, 3)) {
    target = rng_.pick(up);
  } else if (leader) {
    target = *leader;
  } else if (rng_.chance(1, 4)) {
    target = rng_.pick(up);
  } else {
    return;
  }
  submit(target, workload_.make_batch(target, workload_.batch_size()));
}

void Cluster::submit(std::uint32_t i, std::span<const core::ClientProposal> batch) {
  Host& h = hosts_[i];
  if (!h.frozen) return step(i, core::input::ClientProposals{batch});
  // The clients' requests wait in the stopped server's sockets like the peers' frames.
  Held held;
  held.event.kind = EventKind::workload;
  for (const core::ClientProposal& p : batch) {
    held.tags.push_back(p.tag);
    held.payloads.emplace_back(p.bytes.begin(), p.bytes.end());
    held.ids.push_back(p.id);
  }
  h.held.push_back(std::move(held));
}

void Cluster::freeze_node(std::uint32_t i, bool replay_ticks) {
  Host& h = hosts_[i];
  if (!h.up || h.frozen) return;
  h.frozen = true;
  h.replay_ticks = replay_ticks;
  h.missed_ticks = 0;
  h.frozen_leading = h.core->node().state() == core::PeerState::leading &&
                     h.core->node().phase() == core::ZabPhase::broadcast;
  h.frozen_epoch = h.core->node().current_epoch();
  if (opt_.verbose) trace(i, "FREEZE", describe(i));
}

void Cluster::request_transfer(std::uint32_t i, std::optional<std::uint32_t> to) {
  Host& h = hosts_[i];
  if (!h.up || h.frozen) return;
  step(i, core::input::TransferLeadership{to ? hosts_[*to].id : core::kNoServer,
                                          ++transfer_tag_});
}

void Cluster::thaw_node(std::uint32_t i) {
  Host& h = hosts_[i];
  if (!h.frozen) return;
  h.frozen = false;
  std::vector<Held> held = std::move(h.held);
  h.held.clear();
  const std::uint64_t missed = std::exchange(h.missed_ticks, 0);
  // A zombie leader: it still leads in its old epoch, but a newer one was established meanwhile.
  if (h.frozen_leading && h.core->node().state() == core::PeerState::leading &&
      h.core->node().current_epoch() == h.frozen_epoch &&
      checkers_.max_established_epoch() > h.frozen_epoch.value) {
    h.zombie = true;
    ++zombies_;
  }
  if (opt_.verbose) {
    trace(i, "THAW", describe(i) + "; " + std::to_string(missed) + " missed ticks " +
                         (h.replay_ticks ? "replayed first" : "skipped") + ", " +
                         std::to_string(held.size()) + " held inputs");
  }
  if (h.replay_ticks) {
    for (std::uint64_t k = 0; k < missed && !checkers_.failed(); ++k) step(i, core::input::Tick{});
  }
  std::vector<core::ClientProposal> batch;
  for (Held& x : held) {
    if (checkers_.failed() || !h.up) return;  // a failed durable op may have stopped it
    switch (x.event.kind) {
      case EventKind::disk_done: report_done(i, x.done); break;
      case EventKind::workload:
        batch.clear();
        for (std::size_t k = 0; k < x.tags.size(); ++k) {
          batch.push_back(core::ClientProposal{x.tags[k], core::Bytes(x.payloads[k]), x.ids[k]});
        }
        step(i, core::input::ClientProposals{batch});
        break;
      default: dispatch(x.event); break;  // no longer frozen: handed over as on arrival
    }
  }
}

void Cluster::begin_liveness() {
  liveness_ = true;
  liveness_start_ = q_.now();
  faults_.heal_all();
  DiskParams dp = profile_.disk;
  dp.slow_per_mille = 0;
  for (std::uint32_t i = 0; i < hosts_.size(); ++i) {
    hosts_[i].disk.set_params(dp);
    if (!hosts_[i].up) start_node(i);
  }
  if (opt_.verbose) std::printf("t=%lld LIVENESS phase begins\n", static_cast<long long>(q_.now()));
}

void Cluster::check_liveness() {
  const Time now = q_.now();
  if (now - liveness_start_ > opt_.liveness_budget) {
    std::string status;
    for (std::uint32_t i = 0; i < hosts_.size(); ++i) status += " [" + describe(i) + "]";
    if (draining_) return checkers_.fail_open_writes();
    checkers_.fail_global("liveness", "liveness: " +
                          std::string(probe_tag_ == 0 ? "no leader with a quorum in broadcast"
                                                      : "probe write not delivered everywhere") +
                          " within " + std::to_string(opt_.liveness_budget) +
                          " time units of healing;" + status);
    return;
  }
  if (probe_tag_ == 0) {
    const auto leader = current_leader();
    if (!leader || hosts_[*leader].core->node().phase() != core::ZabPhase::broadcast) return;
    const core::Node& l = hosts_[*leader].core->node();
    core::MemberSet set;
    set.set(*leader);
    for (std::uint32_t i = 0; i < hosts_.size(); ++i) {
      const Host& h = hosts_[i];
      if (!h.up || h.observer || i == *leader) continue;
      if (h.core->node().state() == core::PeerState::following && h.core->node().leader() == l.id() &&
          h.core->node().phase() == core::ZabPhase::broadcast &&
          h.core->node().current_epoch() == l.current_epoch()) {
        set.set(i);
      }
    }
    if (!config_.verifier().is_quorum(set)) return;
    probe_tag_ = workload_.next_tag();
    probe_node_ = *leader;
    probe_time_ = now;
    acked_before_probe_ = checkers_.max_acked_index();
    const auto batch = workload_.make_batch(*leader, 1, /*identified=*/false);
    step(*leader, core::input::ClientProposals{batch});
    return;
  }
  if (draining_) {
    // Every write submitted must end; a node that can never end one hangs its client.
    if (checkers_.open_writes() == 0) done_ = true;
    return;
  }
  const std::int64_t idx = checkers_.truth_index(probe_tag_);
  if (idx < 0) {
    if (now - probe_time_ > 40 * kTickPeriod) probe_tag_ = 0;  // lost with its leader: again
    return;
  }
  for (const Host& h : hosts_) {
    if (static_cast<std::int64_t>(h.disk.app().entries.size()) <= idx) return;
  }
  for (std::uint32_t i = 0; i < hosts_.size() && !checkers_.failed(); ++i) {
    checkers_.final_check(i, hosts_[i].disk.app(), acked_before_probe_);
  }
  draining_ = true;
  if (checkers_.open_writes() == 0) done_ = true;
}

std::string Cluster::describe(std::uint32_t i) const {
  const Host& h = hosts_[i];
  std::string s = "s" + std::to_string(i + 1);
  if (!h.up) return s + " DOWN";
  if (h.frozen) s += " FROZEN";
  const core::Node& n = h.core->node();
  s += std::string(" ") + core::to_string(n.state()) + "/" + core::to_string(n.phase());
  if (n.state() != core::PeerState::looking) s += " leader=s" + std::to_string(n.leader().value);
  s += " acc=" + std::to_string(n.accepted_epoch().value) +
       " cur=" + std::to_string(n.current_epoch().value) + " last=" + zxid_str(n.last_logged()) +
       " applied=" + zxid_str(n.applied());
  return s;
}

void Cluster::trace(std::uint32_t i, const char* what, const std::string& detail) const {
  std::printf("t=%lld s%u %s %s\n", static_cast<long long>(q_.now()), i + 1, what, detail.c_str());
}

}  // namespace fastzab::sim
