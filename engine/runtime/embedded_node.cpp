// fastzab::Node (engine/include/fastzab/fastzab.h): a Replica on a thread of its own, reached by
// the application's thread through two SPSC rings and an eventfd.
#include <poll.h>
#include <sodium.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_set>

#include "engine/include/fastzab/fastzab.h"
#include "engine/runtime/config.h"
#include "engine/runtime/replica.h"
#include "engine/runtime/spsc_ring.h"

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

const char* to_string(WriteError e) noexcept {
  switch (e) {
    case WriteError::none: return "none";
    case WriteError::no_leader: return "no_leader";
    case WriteError::too_large: return "too_large";
    case WriteError::rejected: return "rejected";
    case WriteError::unknown_outcome: return "unknown_outcome";
    case WriteError::stopped: return "stopped";
  }
  return "unknown";
}

namespace {

Role role_of(core::PeerState s) {
  switch (s) {
    case core::PeerState::leading: return Role::leader;
    case core::PeerState::following: return Role::follower;
    case core::PeerState::observing: return Role::observer;
    case core::PeerState::looking: return Role::looking;
  }
  return Role::looking;
}

WriteError error_of(runtime::WriteFailure f) {
  switch (f) {
    case runtime::WriteFailure::no_leader: return WriteError::no_leader;
    case runtime::WriteFailure::too_large: return WriteError::too_large;
    case runtime::WriteFailure::rejected: return WriteError::rejected;
    case runtime::WriteFailure::unknown_outcome: return WriteError::unknown_outcome;
  }
  return WriteError::unknown_outcome;
}

net::PollMode poll_mode(runtime::PollMode p) {
  switch (p) {
    case runtime::PollMode::busy: return net::PollMode::busy;
    case runtime::PollMode::adaptive: return net::PollMode::adaptive;
    case runtime::PollMode::blocking: return net::PollMode::blocking;
  }
  return net::PollMode::blocking;
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

struct WriteIn {
  std::uint64_t tag = 0;
  std::vector<std::byte> entry;
};

constexpr std::size_t kRingSlots = 8192;

}  // namespace

struct Node::Impl {
  NodeOptions options;
  AppAdapter app;
  runtime::ReplicaOptions replica_options;
  runtime::SpscRing<WriteIn, kRingSlots> writes;
  runtime::SpscRing<Event, kRingSlots> events;
  int event_fd = -1;
  std::thread group;
  std::atomic<runtime::Replica*> replica{nullptr};
  std::atomic<bool> stop_requested{false};
  std::atomic<bool> ready{false};
  std::atomic<bool> failed{false};
  mutable std::mutex failure_mutex;  // start-up and failure text only: never on the write path
  std::string failure;
  bool stopped = false;
  // App-thread side: writes without an outcome yet (to end them as `stopped` after stop()).
  std::unordered_set<std::uint64_t> outstanding;

  struct AtomicStatus {
    std::atomic<int> role{0};
    std::atomic<std::int64_t> leader{0}, epoch{0};
    std::atomic<std::uint64_t> last_zxid{0}, committed_zxid{0}, applied{0};
    std::atomic<std::uint64_t> frames_in{0}, frames_out{0}, sessions_up{0}, refused{0},
        garbage{0}, oversized{0}, snapshots_installed{0}, truncations{0}, records_truncated{0};
  } status;

  Impl(const NodeOptions& o, StateMachine& a) : options(o), app(a) {}

  void set_failure(std::string why) {
    std::lock_guard<std::mutex> g(failure_mutex);
    failure = std::move(why);
    failed.store(true);
  }

  void signal_events() {
    const std::uint64_t one = 1;
    (void)!::write(event_fd, &one, sizeof one);
  }

  void run() {
    std::deque<Event> backlog;  // events that did not fit the ring yet (the app is not polling)
    bool pushed = false;
    auto emit = [&](const Event& e) {
      if (backlog.empty() && events.try_push(e)) {
        pushed = true;
      } else {
        backlog.push_back(e);
      }
    };
    runtime::ReplicaHooks hooks;
    hooks.committed = [&](std::uint64_t tag, std::uint64_t zxid) {
      Event e;
      e.kind = Event::Kind::write_committed;
      e.tag = tag;
      e.zxid = zxid;
      emit(e);
    };
    hooks.failed = [&](std::uint64_t tag, runtime::WriteFailure why) {
      Event e;
      e.kind = Event::Kind::write_failed;
      e.tag = tag;
      e.error = error_of(why);
      emit(e);
    };
    hooks.role_changed = [&](core::PeerState role, std::uint64_t leader, std::int64_t epoch,
                             bool established) {
      Event e;
      e.kind = Event::Kind::role_changed;
      e.role = role_of(role);
      e.leader = leader;
      e.epoch = epoch;
      e.established = established;
      emit(e);
    };
    auto opened = runtime::Replica::open(std::move(replica_options), app, std::move(hooks));
    if (!opened) {
      set_failure(opened.error().message);
      return;
    }
    std::unique_ptr<runtime::Replica> r = std::move(*opened);
    replica.store(r.get());
    ready.store(true);
    while (!stop_requested.load(std::memory_order_relaxed)) {
      writes.pop_batch(kRingSlots, [&](WriteIn&& w) { r->submit(w.tag, w.entry); });
      if (auto turn = r->run_once(std::chrono::milliseconds(5)); !turn) {
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
    while (!stop_requested.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    replica.store(nullptr);
    r.reset();  // on this thread: the transport's ring belongs to it
  }

  void publish(const runtime::Replica& r) {
    const core::Node& n = r.node();
    constexpr auto rel = std::memory_order_relaxed;
    status.role.store(static_cast<int>(n.state()), rel);
    status.leader.store(std::max<std::int64_t>(n.leader().value, 0), rel);
    status.epoch.store(std::max<std::int64_t>(n.current_epoch().value, 0), rel);
    status.last_zxid.store(static_cast<std::uint64_t>(std::max<std::int64_t>(n.last_logged().value, 0)), rel);
    status.committed_zxid.store(static_cast<std::uint64_t>(std::max<std::int64_t>(n.committed().value, 0)), rel);
    status.applied.store(r.counters().delivered, rel);
    status.snapshots_installed.store(r.counters().snapshots_installed, rel);
    status.truncations.store(r.counters().truncations, rel);
    status.records_truncated.store(r.counters().records_truncated, rel);
    status.frames_in.store(r.counters().frames_in, rel);
    status.frames_out.store(r.counters().frames_out, rel);
    const net::Counters& c = r.transport_counters();
    status.sessions_up.store(c.sessions_up, rel);
    status.refused.store(c.handshakes_refused, rel);
    status.garbage.store(c.connections_dropped_garbage, rel);
    status.oversized.store(c.frames_oversized, rel);
  }
};

std::expected<std::unique_ptr<Node>, std::string> Node::start(const NodeOptions& options,
                                                              StateMachine& app) {
  auto cfg = runtime::load_config(options.config_file);
  if (!cfg) return std::unexpected(cfg.error().message);
  auto index = runtime::validate_for(*cfg, core::ServerId{static_cast<std::int64_t>(options.id)});
  if (!index) return std::unexpected(index.error().message);
  if (cfg->transport == runtime::Transport::dpdk) {
    return std::unexpected(options.config_file +
                           ": transport=dpdk: this build has no DPDK transport; use transport=uring");
  }
  if (cfg->groups != 1) {
    return std::unexpected(options.config_file + ": groups=" + std::to_string(cfg->groups) +
                           ": only groups=1 is implemented so far");
  }
  if (sodium_init() < 0) return std::unexpected(std::string("libsodium failed to initialise"));

  auto impl = std::make_unique<Impl>(options, app);
  runtime::ReplicaOptions& opt = impl->replica_options;
  opt.node.cluster = cfg->cluster;
  opt.node.self = core::ServerId{static_cast<std::int64_t>(options.id)};
  opt.node.init_limit_ticks = static_cast<std::int32_t>(cfg->init_limit_ticks);
  opt.node.sync_limit_ticks = static_cast<std::int32_t>(cfg->sync_limit_ticks);
  opt.tick = std::chrono::milliseconds(cfg->tick_time_ms);
  opt.log_dir = cfg->data_dir;
  opt.log.cluster_id = cfg->cluster_id;
  opt.log.sync = cfg->sync == runtime::SyncMode::none ? log::SyncMode::none : log::SyncMode::fdatasync;
  opt.log.writer = log::WriterKind::io_uring;
  opt.snapshot_every = options.snapshot_every;
  const runtime::ServerEntry& me = cfg->servers[*index];
  opt.transport.self_id = options.id;
  opt.transport.cluster_id = cfg->cluster_id;
  // The key is a hash of the whole secret file, so every byte of it counts.
  crypto_generichash(opt.transport.secret.data(), opt.transport.secret.size(),
                     reinterpret_cast<const unsigned char*>(cfg->secret.data()), cfg->secret.size(),
                     nullptr, 0);
  opt.transport.listen_host = me.host;
  opt.transport.listen_port = me.quorum_port;
  opt.transport.poll_mode = poll_mode(cfg->poll);
  for (const runtime::ServerEntry& s : cfg->servers) {
    if (s.id.value == me.id.value) continue;
    opt.transport.peers.push_back(
        net::PeerAddress{static_cast<std::uint64_t>(s.id.value), s.host, s.quorum_port});
  }
  impl->event_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (impl->event_fd < 0) return std::unexpected(std::string("eventfd: ") + std::strerror(errno));

  Impl* raw = impl.get();
  impl->group = std::thread([raw] { raw->run(); });
  while (!impl->ready.load() && !impl->failed.load()) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  if (impl->failed.load()) {
    impl->stop_requested.store(true);
    impl->group.join();
    ::close(impl->event_fd);
    return std::unexpected(impl->failure);
  }
  return std::unique_ptr<Node>(new Node(std::move(impl)));
}

Node::Node(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Node::~Node() {
  stop();
  if (impl_->event_fd >= 0) ::close(impl_->event_fd);
}

bool Node::propose(std::uint64_t tag, std::span<const std::byte> entry) {
  if (impl_->stopped) return false;
  if (!impl_->writes.try_push(WriteIn{tag, std::vector<std::byte>(entry.begin(), entry.end())})) {
    return false;
  }
  impl_->outstanding.insert(tag);
  if (runtime::Replica* r = impl_->replica.load()) r->wake();
  return true;
}

std::size_t Node::poll(const std::function<void(const Event&)>& on_event) {
  std::size_t n = impl_->events.pop_batch(kRingSlots, [&](Event&& e) {
    if (e.kind != Event::Kind::role_changed) impl_->outstanding.erase(e.tag);
    on_event(e);
  });
  if (impl_->stopped && !impl_->outstanding.empty()) {
    for (std::uint64_t tag : impl_->outstanding) {
      Event e;
      e.kind = Event::Kind::write_failed;
      e.tag = tag;
      e.error = WriteError::stopped;
      on_event(e);
      ++n;
    }
    impl_->outstanding.clear();
  }
  return n;
}

bool Node::wait(std::chrono::microseconds timeout) {
  // The eventfd may hold a wake-up for events an earlier poll() already took: keep waiting
  // until an event is really there or the time is up.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (impl_->events.empty_approx()) {
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

NodeStatus Node::status() const {
  const auto& s = impl_->status;
  constexpr auto rel = std::memory_order_relaxed;
  NodeStatus out;
  out.role = role_of(static_cast<core::PeerState>(s.role.load(rel)));
  out.leader = static_cast<std::uint64_t>(s.leader.load(rel));
  out.epoch = s.epoch.load(rel);
  out.last_zxid = s.last_zxid.load(rel);
  out.committed_zxid = s.committed_zxid.load(rel);
  out.applied = s.applied.load(rel);
  out.quorum_frames_in = s.frames_in.load(rel);
  out.quorum_frames_out = s.frames_out.load(rel);
  out.quorum_sessions_up = s.sessions_up.load(rel);
  out.handshakes_refused = s.refused.load(rel);
  out.connections_dropped_garbage = s.garbage.load(rel);
  out.frames_oversized = s.oversized.load(rel);
  out.snapshots_installed = s.snapshots_installed.load(rel);
  out.truncations = s.truncations.load(rel);
  out.records_truncated = s.records_truncated.load(rel);
  return out;
}

void Node::stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->stop_requested.store(true);
  if (runtime::Replica* r = impl_->replica.load()) r->wake();
  if (impl_->group.joinable()) impl_->group.join();
  // Writes still in the ring never reached the group: they end as `stopped` at the next poll()
  // (the ring's destructor frees them; only the group thread may pop it).
}

bool Node::failed() const noexcept { return impl_->failed.load(std::memory_order_acquire); }

std::string Node::failure() const {
  std::lock_guard<std::mutex> g(impl_->failure_mutex);
  return impl_->failure;
}

}  // namespace fastzab
