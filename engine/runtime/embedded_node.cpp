// fastzab::Node (engine/include/fastzab/fastzab.h): a Replica on a thread of its own, reached by
// the application's thread through two SPSC rings and an eventfd.
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sodium.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <optional>
#include <cerrno>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

#include "engine/include/fastzab/fastzab.h"
#include "engine/core/constants.h"
#include "engine/runtime/config.h"
#ifdef FASTZAB_HAVE_DPDK
#include "engine/runtime/dpdk_open.h"
#endif
#include "engine/runtime/replica.h"
#include "engine/runtime/byte_ring.h"
#include "engine/runtime/spsc_ring.h"
#include "engine/runtime/trace.h"

namespace fastzab {

const char* to_string(Role r) noexcept {
  switch (r) {
    case Role::looking: return "looking";
    case Role::follower: return "follower";
    case Role::leader: return "leader";
    case Role::observer: return "observer";
  }
  return "looking";
}

const char* to_string(Phase p) noexcept {
  switch (p) {
    case Phase::election: return "election";
    case Phase::discovery: return "discovery";
    case Phase::synchronization: return "synchronization";
    case Phase::broadcast: return "broadcast";
  }
  return "election";
}

std::string NodeStatus::mode() const {
  if (role == Role::looking) return "looking";
  if (phase == Phase::broadcast) return to_string(role);
  return std::string(to_string(role)) + "-" + to_string(phase);
}

const char* to_string(TransferResult r) noexcept {
  switch (r) {
    case TransferResult::handed_off: return "handed_off";
    case TransferResult::not_leader: return "not_leader";
    case TransferResult::in_progress: return "in_progress";
    case TransferResult::no_candidate: return "no_candidate";
    case TransferResult::aborted: return "aborted";
  }
  return "unknown";
}

namespace {

TransferResult transfer_of(core::TransferOutcome t) {
  switch (t) {
    case core::TransferOutcome::handed_off: return TransferResult::handed_off;
    case core::TransferOutcome::not_leader: return TransferResult::not_leader;
    case core::TransferOutcome::in_progress: return TransferResult::in_progress;
    case core::TransferOutcome::no_candidate: return TransferResult::no_candidate;
    case core::TransferOutcome::aborted: return TransferResult::aborted;
  }
  return TransferResult::aborted;
}

Phase phase_of(core::ZabPhase p) {
  switch (p) {
    case core::ZabPhase::election: return Phase::election;
    case core::ZabPhase::discovery: return Phase::discovery;
    case core::ZabPhase::synchronization: return Phase::synchronization;
    case core::ZabPhase::broadcast: return Phase::broadcast;
  }
  return Phase::election;
}

Role role_of(core::PeerState s) {
  switch (s) {
    case core::PeerState::leading: return Role::leader;
    case core::PeerState::following: return Role::follower;
    case core::PeerState::observing: return Role::observer;
    case core::PeerState::looking: return Role::looking;
  }
  return Role::looking;
}

// The application's state machine, seen by the Replica.
class AppAdapter final : public runtime::StateMachine {
 public:
  explicit AppAdapter(fastzab::StateMachine& app) : app_(app) {}
  void apply(std::uint64_t zxid, std::span<const std::byte> e) override { app_.apply(zxid, e); }
  std::vector<std::byte> snapshot() override { return app_.snapshot(); }
  void restore(std::uint64_t zxid, std::span<const std::byte> s) override { app_.restore(zxid, s); }

 private:
  fastzab::StateMachine& app_;
};

// A write on its way to the group thread. Small entries travel inside the ring slot; larger
// ones in the group's byte ring (the slot holds their ticket), so neither allocates. Only a
// value too large for any entry (which the Replica refuses as too_large) takes a heap buffer.
struct WriteIn {
  static constexpr std::size_t kInlineBytes = 232;
  enum class Where : std::uint8_t { inline_bytes, byte_ring, heap };
  std::uint64_t tag = 0;
  WriteId id;
  std::uint32_t size = 0;
  Where where = Where::inline_bytes;
  runtime::SpscByteRing::Ticket ticket;
  std::array<std::byte, kInlineBytes> inline_bytes;
  std::vector<std::byte> heap;
  // Commit tracing's stamps from the application thread (0 when tracing is off).
  std::uint64_t sock_read_ns = 0;
  std::uint64_t ring_push_ns = 0;

  std::span<const std::byte> entry(const runtime::SpscByteRing& ring) const noexcept {
    switch (where) {
      case Where::inline_bytes: return {inline_bytes.data(), size};
      case Where::byte_ring: return ring.view(ticket, size);
      case Where::heap: return heap;
    }
    return {};
  }
};

// Twice the largest entry: an empty byte ring always takes one (byte_ring.h).
constexpr std::uint32_t kByteRingBytes = 2 * static_cast<std::uint32_t>(core::kMaxEntryBytes);

constexpr std::size_t kRingSlots = 8192;

}  // namespace

namespace node_internal {

// One replication group: its Replica on a thread of its own, its rings, its published status.
struct Group {
  unsigned index = 0;
  AppAdapter app;
  runtime::ReplicaOptions replica_options;
  std::vector<std::uint32_t> cpus;  // the CPUs this thread may run on (zoo.cfg cpus); empty: any
  runtime::SpscRing<WriteIn, kRingSlots> writes;  // app thread -> group thread
  runtime::SpscByteRing write_bytes{kByteRingBytes};  // the large values of `writes`
  runtime::SpscRing<Event, kRingSlots> events;    // group thread -> app thread
  int event_fd = -1;                              // the node's, shared by every group
  std::thread thread;
  std::atomic<runtime::Replica*> replica{nullptr};
  std::atomic<bool>* stop_requested = nullptr;
  // Raised by the application's thread once it will no longer call wake() on `replica`: only
  // then may this group's thread destroy the Replica (stop_requested alone comes too early:
  // stop() raises it and then wakes every group).
  std::atomic<bool> released{false};
  // What the thread leaves behind when it ends, for poll() after stop() (whose join() orders
  // these writes before its reads): events that never fitted the ring, and the tags of writes
  // that got no outcome (still in the ring, or unfinished in the Replica): they end as `stopped`.
  std::vector<Event> leftover_events;
  std::vector<std::uint64_t> stopped_tags;
  std::atomic<bool> ready{false};
  std::atomic<bool> failed{false};
  // A transfer request from the application thread: the fields are written before the flag is
  // raised (release) and read after it is seen (acquire); the group thread lowers it. Rare, so a
  // one-slot mailbox rather than a ring.
  std::atomic<bool> transfer_waiting{false};
  std::uint64_t transfer_tag = 0;
  std::uint64_t transfer_target = 0;
  mutable std::mutex failure_mutex;  // start-up and failure text only: never on the write path
  std::string failure;
  // Commit tracing (trace=on), else null: the group thread's stamps (its Replica's and the
  // hand-back of outcomes) and the application thread's (outcomes polled, replies written).
  // One writer each; the application thread reads both for trace_dump().
  std::unique_ptr<runtime::trace::Table> trace_group;
  std::unique_ptr<runtime::trace::Table> trace_app;

  struct AtomicStatus {
    std::atomic<int> role{0};
    std::atomic<int> phase{0};
    std::atomic<std::int64_t> leader{0}, epoch{0};
    std::atomic<std::uint64_t> last_zxid{0}, committed_zxid{0}, applied{0};
    std::atomic<std::uint64_t> frames_in{0}, frames_out{0}, sessions_up{0}, refused{0},
        garbage{0}, oversized{0}, evicted{0}, snapshots_installed{0}, truncations{0},
        records_truncated{0}, recovery_records_cut{0}, state_lost{0}, throttled{0};
    std::atomic<std::uint64_t> log_batches{0}, log_bytes{0}, log_records{0};
  } status;

  explicit Group(StateMachine& a) : app(a) {}

  void set_failure(std::string why) {
    {
      std::lock_guard<std::mutex> g(failure_mutex);
      failure = "group " + std::to_string(index) + ": " + std::move(why);
    }
    failed.store(true, std::memory_order_release);
  }

  void signal_events() {
    const std::uint64_t one = 1;
    (void)!::write(event_fd, &one, sizeof one);
  }

  void run() {
    if (!cpus.empty()) {
      cpu_set_t set;
      CPU_ZERO(&set);
      for (std::uint32_t c : cpus) CPU_SET(c, &set);
      // Asked for explicitly (and checked against sched_getaffinity at start-up), so a refusal
      // is a start-up error rather than a silently unpinned thread.
      if (const int err = pthread_setaffinity_np(pthread_self(), sizeof set, &set); err != 0) {
        set_failure("pinning the group thread to CPUs " + runtime::format_cpu_list(cpus) + ": " +
                    std::strerror(err));
        return;
      }
    }
    std::deque<Event> backlog;  // events that did not fit the ring yet (the app is not polling)
    bool pushed = false;
    auto emit = [&](Event e) {
      e.group = index;
      if (backlog.empty() && events.try_push(e)) {
        pushed = true;
      } else {
        backlog.push_back(e);
      }
    };
    runtime::ReplicaHooks hooks;
    hooks.committed = [&](std::uint64_t tag, std::uint64_t zxid) {
      if (trace_group != nullptr) [[unlikely]] {
        trace_group->stamp(zxid, runtime::trace::Stage::reply_handed, runtime::trace::now_ns());
      }
      Event e;
      e.kind = Event::Kind::write_committed;
      e.tag = tag;
      e.zxid = zxid;
      emit(e);
    };
    hooks.failed = [&](std::uint64_t tag, WriteOutcome why) {
      Event e;
      e.kind = Event::Kind::write_failed;
      e.tag = tag;
      e.outcome = why;
      emit(e);
    };
    hooks.role_changed = [&](core::PeerState role, std::uint64_t leader, std::int64_t epoch,
                             bool established, const char* why) {
      Event e;
      e.kind = Event::Kind::role_changed;
      e.role = role_of(role);
      e.leader = leader;
      e.epoch = epoch;
      e.established = established;
      e.why = why;
      emit(e);
    };
    hooks.transfer_ended = [&](std::uint64_t tag, core::TransferOutcome outcome,
                               std::uint64_t target) {
      Event e;
      e.kind = Event::Kind::transfer_ended;
      e.tag = tag;
      e.leader = target;
      e.transfer = transfer_of(outcome);
      emit(e);
    };
    auto opened = runtime::Replica::open(std::move(replica_options), app, std::move(hooks));
    if (!opened) {
      set_failure(opened.error().message);
      return;
    }
    std::unique_ptr<runtime::Replica> r = std::move(*opened);
    replica.store(r.get());
    publish(*r);  // before ready: a status read right after start sees the recovered state
    ready.store(true);
    while (!stop_requested->load(std::memory_order_relaxed)) {
      // Tracing stamps the pop once per batch; untraced, the stamps are never read.
      const std::uint64_t popped = trace_group != nullptr ? runtime::trace::now_ns() : 0;
      // The values stay in their slots (and the byte ring) until run_once has proposed them:
      // the core copies each once, into its history.
      const std::size_t peeked = writes.peek_batch(kRingSlots, [&](const WriteIn& w) {
        const runtime::trace::ClientStamps s{w.sock_read_ns, w.ring_push_ns, popped};
        r->submit_in_place(w.tag, w.entry(write_bytes), trace_group != nullptr ? &s : nullptr,
                           core::WriteId{w.id.client, w.id.seq});
      });
      if (transfer_waiting.load(std::memory_order_acquire)) [[unlikely]] {
        r->transfer_leadership(transfer_tag, transfer_target);
        transfer_waiting.store(false, std::memory_order_release);
      }
      auto turn = r->run_once(std::chrono::milliseconds(5));
      writes.pop_batch(peeked, [&](WriteIn&& w) {
        if (w.where == WriteIn::Where::byte_ring) write_bytes.release(w.ticket);
      });
      if (!turn) {
        set_failure(turn.error().message);
        signal_events();
        break;
      }
      publish(*r);
      while (!backlog.empty() && events.try_push(backlog.front())) {
        backlog.pop_front();
        pushed = true;
      }
      if (pushed) {
        signal_events();
        pushed = false;
      }
    }
    // Only stop() (on the application's thread) ends the Replica's life: until then that thread
    // may still call wake() on it.
    while (!released.load(std::memory_order_acquire)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    leftover_events.assign(backlog.begin(), backlog.end());
    while (writes.pop_batch(kRingSlots, [&](WriteIn&& w) { stopped_tags.push_back(w.tag); }) > 0) {
    }
    r->for_each_unfinished_submit([&](std::uint64_t tag) { stopped_tags.push_back(tag); });
    replica.store(nullptr);
    r.reset();  // on this thread: the transport's ring belongs to it
  }

  void publish(const runtime::Replica& r) {
    const core::Node& n = r.node();
    constexpr auto rel = std::memory_order_relaxed;
    status.role.store(static_cast<int>(n.state()), rel);
    status.phase.store(static_cast<int>(n.phase()), rel);
    status.leader.store(std::max<std::int64_t>(n.leader().value, 0), rel);
    status.epoch.store(std::max<std::int64_t>(n.current_epoch().value, 0), rel);
    status.last_zxid.store(static_cast<std::uint64_t>(std::max<std::int64_t>(n.last_logged().value, 0)), rel);
    status.committed_zxid.store(static_cast<std::uint64_t>(std::max<std::int64_t>(n.committed().value, 0)), rel);
    status.applied.store(r.counters().delivered, rel);
    status.snapshots_installed.store(r.counters().snapshots_installed, rel);
    status.truncations.store(r.counters().truncations, rel);
    status.records_truncated.store(r.counters().records_truncated, rel);
    const log::Log::BatchStats& batches = r.log().batch_stats();
    status.log_batches.store(batches.batches, rel);
    status.log_bytes.store(batches.bytes, rel);
    status.log_records.store(batches.records, rel);
    status.frames_in.store(r.counters().frames_in, rel);
    status.frames_out.store(r.counters().frames_out, rel);
    const net::Counters& c = r.transport_counters();
    status.sessions_up.store(c.sessions_up, rel);
    status.refused.store(c.handshakes_refused, rel);
    status.throttled.store(c.answers_throttled, rel);
    status.evicted.store(c.handshakes_evicted, rel);
    status.recovery_records_cut.store(r.log().recovery().records_cut, rel);
    status.state_lost.store(n.state_lost() ? 1 : 0, rel);
    status.garbage.store(c.connections_dropped_garbage, rel);
    status.oversized.store(c.frames_oversized, rel);
  }
};

}  // namespace node_internal

using node_internal::Group;

struct Node::Impl {
  NodeOptions options;
  std::vector<std::unique_ptr<Group>> groups;
  int event_fd = -1;
  std::atomic<bool> stop_requested{false};
  bool stopped = false;
};

const char* to_string(StartError::Kind k) noexcept {
  return k == StartError::Kind::configuration ? "configuration" : "environment";
}

namespace {

std::unexpected<StartError> configuration_error(std::string message) {
  return std::unexpected(StartError{StartError::Kind::configuration, std::move(message)});
}
std::unexpected<StartError> environment_error(std::string message) {
  return std::unexpected(StartError{StartError::Kind::environment, std::move(message)});
}

}  // namespace

std::expected<std::unique_ptr<Node>, StartError> Node::start(const NodeOptions& options,
                                                             StateMachine& app) {
  StateMachine* one[] = {&app};
  return start(options, std::span<StateMachine* const>(one));
}

std::expected<std::unique_ptr<Node>, StartError> Node::start(
    const NodeOptions& options, std::span<StateMachine* const> apps) {
  auto cfg = options.config_text.empty()
                 ? runtime::load_config(options.config_file)
                 : runtime::load_config_text(options.config_text, options.config_file);
  if (!cfg) return configuration_error(cfg.error().message);
  if (!options.data_dir.empty()) cfg->data_dir = options.data_dir;
  auto index = runtime::validate_for(*cfg, core::ServerId{static_cast<std::int64_t>(options.id)});
  if (!index) return configuration_error(index.error().message);
#ifndef FASTZAB_HAVE_DPDK
  if (cfg->transport == runtime::Transport::dpdk) {
    return configuration_error(options.config_file +
                               ": transport=dpdk: this build has no DPDK (libdpdk-dev was not "
                               "installed when meson set the build up; scripts/lib.sh installs "
                               "it); use transport=uring or rebuild");
  }
#endif
  if (apps.size() != cfg->groups) {
    return configuration_error(options.config_file + ": groups=" + std::to_string(cfg->groups) +
                               ", but the application passed " + std::to_string(apps.size()) +
                               " state machine(s): one per group");
  }
  if (!options.poll.empty()) {  // fastzab-server --poll: wins over the file's poll
    const auto mode = runtime::poll_mode_named(options.poll);
    if (!mode) {
      return configuration_error("--poll: \"" + options.poll + "\" is not busy, adaptive or blocking");
    }
    cfg->poll = *mode;
    cfg->poll_is_default = false;
  }
  if (!options.cpus.empty()) {  // fastzab-server --cpus: wins over the file's cpus
    auto cpus = runtime::parse_cpu_list(options.cpus);
    if (!cpus) return configuration_error("--cpus: " + cpus.error().message);
    cfg->cpus = std::move(*cpus);
    cfg->cpus_origin = "--cpus";
  }
  if (auto placed = runtime::check_cpus(*cfg, runtime::available_cpus()); !placed) {
    return configuration_error(placed.error().message);
  }
  if (sodium_init() < 0) return environment_error("libsodium failed to initialise");
#ifdef FASTZAB_HAVE_DPDK
  runtime::dpdk::TransportOpener dpdk_opener;
  if (cfg->transport == runtime::Transport::dpdk) {
    const std::vector<std::uint32_t> cpus = runtime::available_cpus();
    const runtime::DpdkPlan plan = runtime::dpdk_plan(
        *cfg, core::ServerId{static_cast<std::int64_t>(options.id)}, cpus.empty() ? 0 : cpus.front());
    auto eal = runtime::dpdk::process_eal(plan.eal);
    if (!eal) return environment_error(eal.error().message);
    auto opener = runtime::dpdk::transport_opener(**eal, plan);
    if (!opener) return environment_error(opener.error().message);
    dpdk_opener = std::move(*opener);
  }
#endif

  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->event_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (impl->event_fd < 0) return environment_error(std::string("eventfd: ") + std::strerror(errno));
  const runtime::ServerEntry& me = cfg->servers[*index];
  if (cfg->groups > 1 && ::mkdir(cfg->data_dir.c_str(), 0755) != 0 && errno != EEXIST) {
    const int err = errno;
    ::close(impl->event_fd);
    return environment_error("dataDir " + cfg->data_dir + ": " + std::strerror(err));
  }
  std::array<unsigned char, 32> key{};
  // The key is a hash of the whole secret file, so every byte of it counts.
  crypto_generichash(key.data(), key.size(),
                     reinterpret_cast<const unsigned char*>(cfg->secret.data()), cfg->secret.size(),
                     nullptr, 0);
  for (unsigned g = 0; g < cfg->groups; ++g) {
    auto grp = std::make_unique<Group>(*apps[g]);
    grp->index = g;
    grp->event_fd = impl->event_fd;
    grp->stop_requested = &impl->stop_requested;
    // Only what `cpus` says: group g alone on cpus[g] when there is one per group (always with
    // poll=busy, check_cpus saw to it); with fewer, every group on the listed set. No `cpus`:
    // the kernel places the threads.
    if (cfg->cpus.size() >= cfg->groups) {
      grp->cpus = {cfg->cpus[g]};
    } else {
      grp->cpus = cfg->cpus;
    }
    runtime::ReplicaOptions& opt = grp->replica_options;
    opt.node.cluster = cfg->cluster;
    opt.node.self = core::ServerId{static_cast<std::int64_t>(options.id)};
    // The core counts fine ticks, not tickTimes (README.md "Timing").
    runtime::set_node_timing(*cfg, opt.node);
    opt.tick = std::chrono::milliseconds(cfg->tick_resolution_ms);
    opt.log_dir = cfg->groups == 1 ? cfg->data_dir : cfg->data_dir + "/group-" + std::to_string(g);
    opt.log.cluster_id = cfg->cluster_id;
    opt.log.sync = cfg->sync;
    opt.log.writer = log::WriterKind::io_uring;
    opt.log.recovery = cfg->log_recovery;
    opt.log.recovery_setting = "logRecovery";  // the corruption error names the key to set
    opt.log.segment_bytes = std::uint64_t{cfg->prealloc_kb} << 10;
    opt.log.max_record_bytes = static_cast<std::uint32_t>(core::kMaxEntryBytes);
    opt.snapshot_every = options.snapshot_every != 0 ? options.snapshot_every : cfg->snap_count;
    opt.transport.self_id = options.id;
    // Each group is its own cluster on the wire: a frame of one group can never reach another.
    opt.transport.cluster_id = cfg->cluster_id + g;
    opt.transport.secret = key;
    opt.transport.listen_host = me.host;
    opt.transport.listen_port = static_cast<std::uint16_t>(me.quorum_port + g);
    opt.transport.poll_mode = cfg->poll;
#ifdef FASTZAB_HAVE_DPDK
    opt.open_transport = dpdk_opener;  // empty unless transport=dpdk
#endif
    if (cfg->trace) {
      grp->trace_group = std::make_unique<runtime::trace::Table>();
      grp->trace_app = std::make_unique<runtime::trace::Table>();
      opt.trace = grp->trace_group.get();
    }
    for (const runtime::ServerEntry& s : cfg->servers) {
      if (s.id.value == me.id.value) continue;
      opt.transport.peers.push_back(net::PeerAddress{
          static_cast<std::uint64_t>(s.id.value), s.host, static_cast<std::uint16_t>(s.quorum_port + g)});
    }
    impl->groups.push_back(std::move(grp));
  }
  for (auto& g : impl->groups) {
    Group* raw = g.get();
    g->thread = std::thread([raw] { raw->run(); });
  }
  std::string failure;
  for (auto& g : impl->groups) {
    while (!g->ready.load() && !g->failed.load()) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    if (g->failed.load() && failure.empty()) {
      std::lock_guard<std::mutex> lock(g->failure_mutex);
      failure = g->failure;
    }
  }
  if (!failure.empty()) {
    impl->stop_requested.store(true);
    for (auto& g : impl->groups) {
      g->released.store(true, std::memory_order_release);
      g->thread.join();
    }
    ::close(impl->event_fd);
    return environment_error(cfg->groups == 1 ? failure.substr(failure.find(": ") + 2) : failure);
  }
  return std::unique_ptr<Node>(new Node(std::move(impl)));
}

Node::Node(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Node::~Node() {
  stop();
  if (impl_->event_fd >= 0) ::close(impl_->event_fd);
}

unsigned Node::groups() const noexcept { return static_cast<unsigned>(impl_->groups.size()); }

bool Node::propose(std::uint64_t tag, std::span<const std::byte> entry) {
  return propose(0, tag, entry);
}

bool Node::propose(unsigned group, std::uint64_t tag, std::span<const std::byte> entry) {
  return propose(group, tag, entry, 0);
}

bool Node::propose(unsigned group, std::uint64_t tag, std::span<const std::byte> entry,
                   std::uint64_t received_ns) {
  return propose(group, tag, entry, WriteId{}, received_ns);
}

bool Node::propose(unsigned group, std::uint64_t tag, std::span<const std::byte> entry,
                   WriteId id, std::uint64_t received_ns) {
  if (impl_->stopped || group >= impl_->groups.size()) return false;
  Group& g = *impl_->groups[group];
  WriteIn w;
  w.tag = tag;
  w.id = id;
  w.size = static_cast<std::uint32_t>(entry.size());
  w.sock_read_ns = received_ns;
  w.ring_push_ns = g.trace_app != nullptr ? runtime::trace::now_ns() : 0;
  if (entry.size() <= WriteIn::kInlineBytes) {
    std::memcpy(w.inline_bytes.data(), entry.data(), entry.size());
  } else if (entry.size() <= core::kMaxEntryBytes) {
    const auto ticket = g.write_bytes.push(entry);
    if (!ticket) return false;  // the group thread has not taken the earlier large values yet
    w.where = WriteIn::Where::byte_ring;
    w.ticket = *ticket;
  } else {
    w.where = WriteIn::Where::heap;  // it will be refused as too_large: no ring space for it
    w.heap.assign(entry.begin(), entry.end());
  }
  if (!g.writes.try_push(std::move(w))) {
    if (w.where == WriteIn::Where::byte_ring) g.write_bytes.unpush(w.ticket);
    return false;
  }
  if (runtime::Replica* r = g.replica.load()) r->wake();
  return true;
}

bool Node::transfer_leadership(unsigned group, std::uint64_t tag, std::uint64_t target) {
  if (impl_->stopped || group >= impl_->groups.size()) return false;
  Group& g = *impl_->groups[group];
  if (g.transfer_waiting.load(std::memory_order_acquire)) return false;
  g.transfer_tag = tag;
  g.transfer_target = target;
  g.transfer_waiting.store(true, std::memory_order_release);
  if (runtime::Replica* r = g.replica.load()) r->wake();
  return true;
}

std::size_t Node::poll(EventHandler on_event) {
  std::size_t n = 0;
  for (auto& gp : impl_->groups) {
    Group& g = *gp;
    std::uint64_t polled_ns = 0;
    n += g.events.pop_batch(kRingSlots, [&](Event&& e) {
      if (g.trace_app != nullptr && e.kind == Event::Kind::write_committed) [[unlikely]] {
        if (polled_ns == 0) polled_ns = runtime::trace::now_ns();  // once per batch
        g.trace_app->claim(e.zxid, runtime::trace::Role::none);
        g.trace_app->stamp(e.zxid, runtime::trace::Stage::reply_polled, polled_ns);
      }
      on_event(e);
    });
  }
  if (impl_->stopped) {  // the group threads have ended: what they left is this thread's now
    for (auto& gp : impl_->groups) {
      Group& g = *gp;
      for (const Event& e : g.leftover_events) on_event(e);
      for (std::uint64_t tag : g.stopped_tags) {
        Event e;
        e.kind = Event::Kind::write_failed;
        e.group = g.index;
        e.tag = tag;
        e.outcome = WriteOutcome::stopped;
        on_event(e);
      }
      n += g.leftover_events.size() + g.stopped_tags.size();
      g.leftover_events.clear();
      g.stopped_tags.clear();
    }
  }
  return n;
}

bool Node::wait(std::chrono::microseconds timeout) {
  // The eventfd may hold a wake-up for events an earlier poll() already took: keep waiting
  // until an event is really there or the time is up.
  const auto any = [&] {
    for (auto& g : impl_->groups) {
      if (!g->events.empty_approx()) return true;
    }
    return false;
  };
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!any()) {
    const auto left = std::chrono::duration_cast<std::chrono::microseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{impl_->event_fd, POLLIN, 0};
    const auto ms = (left.count() + 999) / 1000;  // round up: never spin on a 0 ms poll
    if (::poll(&p, 1, static_cast<int>(std::min<std::int64_t>(ms, 1 << 30))) > 0) {
      std::uint64_t v;
      (void)!::read(impl_->event_fd, &v, sizeof v);
    }
  }
  return true;
}

int Node::event_fd() const noexcept { return impl_->event_fd; }

bool Node::tracing() const noexcept {
  return !impl_->groups.empty() && impl_->groups[0]->trace_app != nullptr;
}

void Node::trace_reply_written(unsigned group, std::uint64_t zxid, std::uint64_t written_ns) {
  if (group >= impl_->groups.size()) return;
  runtime::trace::Table* t = impl_->groups[group]->trace_app.get();
  if (t != nullptr) t->stamp(zxid, runtime::trace::Stage::reply_written, written_ns);
}

std::string Node::trace_dump() const {
  std::string out;
  std::vector<runtime::trace::Record> records;
  for (const auto& gp : impl_->groups) {
    const Group& g = *gp;
    if (g.trace_group == nullptr) continue;
    records.clear();
    runtime::trace::Record r;
    for (std::size_t i = 0; i < runtime::trace::kSlots; ++i) {
      if (g.trace_group->read(i, r)) records.push_back(r);
    }
    std::sort(records.begin(), records.end(),
              [](const auto& a, const auto& b) { return a.zxid < b.zxid; });
    for (const runtime::trace::Record& rec : records) {
      runtime::trace::Record app;
      const bool have_app = g.trace_app->read(rec.zxid & (runtime::trace::kSlots - 1), app) &&
                            app.zxid == rec.zxid;
      runtime::trace::append_line(out, rec, have_app ? &app : nullptr, impl_->options.id,
                                  g.index);
    }
  }
  return out;
}

NodeStatus Node::status(unsigned group) const {
  NodeStatus out;
  if (group >= impl_->groups.size()) return out;
  const auto& s = impl_->groups[group]->status;
  constexpr auto rel = std::memory_order_relaxed;
  out.role = role_of(static_cast<core::PeerState>(s.role.load(rel)));
  out.phase = phase_of(static_cast<core::ZabPhase>(s.phase.load(rel)));
  out.leader = static_cast<std::uint64_t>(s.leader.load(rel));
  out.epoch = s.epoch.load(rel);
  out.last_zxid = s.last_zxid.load(rel);
  out.committed_zxid = s.committed_zxid.load(rel);
  out.applied = s.applied.load(rel);
  out.quorum_frames_in = s.frames_in.load(rel);
  out.quorum_frames_out = s.frames_out.load(rel);
  out.quorum_sessions_up = s.sessions_up.load(rel);
  out.handshakes_refused = s.refused.load(rel);
  out.handshakes_evicted = s.evicted.load(rel);
  out.quorum_answers_throttled = s.throttled.load(rel);
  out.recovery_records_cut = s.recovery_records_cut.load(rel);
  out.state_lost = s.state_lost.load(rel);
  out.connections_dropped_garbage = s.garbage.load(rel);
  out.frames_oversized = s.oversized.load(rel);
  out.snapshots_installed = s.snapshots_installed.load(rel);
  out.truncations = s.truncations.load(rel);
  out.records_truncated = s.records_truncated.load(rel);
  out.log_batches = s.log_batches.load(rel);
  out.log_bytes_written = s.log_bytes.load(rel);
  out.log_records_written = s.log_records.load(rel);
  return out;
}

void Node::stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->stop_requested.store(true);
  for (auto& g : impl_->groups) {
    if (runtime::Replica* r = g->replica.load()) r->wake();
    g->released.store(true, std::memory_order_release);
  }
  for (auto& g : impl_->groups) {
    if (g->thread.joinable()) g->thread.join();
  }
  // Writes still in the rings never reached their group: they end as `stopped` at the next
  // poll() (the rings' destructors free them; only a group thread may pop its ring).
}

bool Node::failed() const noexcept {
  for (auto& g : impl_->groups) {
    if (g->failed.load(std::memory_order_acquire)) return true;
  }
  return false;
}

std::string Node::failure() const {
  for (auto& g : impl_->groups) {
    if (g->failed.load(std::memory_order_acquire)) {
      std::lock_guard<std::mutex> lock(g->failure_mutex);
      return g->failure;
    }
  }
  return {};
}

}  // namespace fastzab
