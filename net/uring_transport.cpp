// The io_uring TCP transport (style practice 13). One ring per Transport, owned by the polling
// thread. Per poll iteration: prepare (re-arm, dial, expire handshakes, one send per peer with
// queued bytes), ONE submit (which also waits, as the poll mode says), then reap completions in
// batches. Receives are multishot recvs into a provided-buffer ring; a buffer that a delivered
// frame points into stays out of the ring until the next poll(), every other buffer goes back
// at once. Accepts are one multishot accept; wake() is an eventfd read kept armed in the ring.
//
// A connection leaves the ring's reach in two steps: close_conn() detaches it from its peer at
// once (so nothing more is delivered or sent for its session) and cancels its operations; the
// fd is closed and the slot reused only when the last of them has completed, because until then
// the kernel may still use its buffers.
#include <liburing.h>
#include <sodium.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <limits>
#include <thread>

#include "net/check.h"
#include "net/frame_assembler.h"
#include "net/handshake.h"
#include "net/sockets.h"
#include "net/transport.h"
#include "net/transport_config.h"
#include "net/wire.h"

namespace fastzab::net {
namespace {

using Clock = std::chrono::steady_clock;

// Session ids are unique in the process, across transports, so a stale id can never match.
std::atomic<SessionId> g_next_session{1};

constexpr unsigned kSqEntries = 256;
constexpr unsigned kCqEntries = 4096;
constexpr unsigned kReapBatch = 64;  // also bounds the buffers one poll() can pin
// Inbound handshakes (README.md, "Unauthenticated connections"). Unverified: accepted, the HELLO
// not complete yet. Verified: the HELLO checked out, the dialer's MAC is due. A new connection is
// always taken; when a bound is reached an older one makes room, so no number of connections that
// never authenticate can hold a place a real peer needs.
constexpr std::size_t kMaxUnverifiedHandshakes = 64;
constexpr std::size_t kMaxUnverifiedPerSource = 16;  // per remote address, port ignored
constexpr std::size_t kMaxVerifiedHandshakes = 64;
static_assert(kMaxUnverifiedPerSource <= kMaxUnverifiedHandshakes);
// Lines about unauthenticated inbound connections: at most one per interval.
constexpr std::chrono::milliseconds kUnauthenticatedLogInterval{1000};
constexpr std::chrono::milliseconds kAcceptRetryDelay{100};
constexpr std::uint16_t kBufferGroup = 0;
constexpr std::size_t kMaxSendBytesPerSqe = std::size_t{1} << 30;
constexpr std::size_t kNoPeer = std::numeric_limits<std::size_t>::max();

enum class OpKind : std::uint8_t { accept = 1, wake, connect, recv, send, ignore };

// user_data: kind in the top byte, then the connection slot (24 bits) and its generation.
constexpr std::uint64_t pack(OpKind kind, std::uint32_t slot, std::uint32_t generation) {
  return (std::uint64_t{static_cast<std::uint8_t>(kind)} << 56) |
         (std::uint64_t{slot & 0xFFFFFFu} << 32) | generation;
}
constexpr OpKind kind_of(std::uint64_t data) { return static_cast<OpKind>(data >> 56); }
constexpr std::uint32_t slot_of(std::uint64_t data) {
  return static_cast<std::uint32_t>((data >> 32) & 0xFFFFFFu);
}
constexpr std::uint32_t generation_of(std::uint64_t data) {
  return static_cast<std::uint32_t>(data & 0xFFFFFFFFu);
}

enum class Role : std::uint8_t { dialer, acceptor };
enum class ConnState : std::uint8_t {
  connecting,        // dialer: connect in flight
  awaiting_reply,    // dialer: HELLO sent, waiting for the acceptor's hello + MAC
  awaiting_hello,    // acceptor: waiting for the dialer's HELLO
  awaiting_confirm,  // acceptor: reply sent, waiting for the dialer's MAC
  established,       // a live session: frames flow
  closing,           // detached; waiting for its operations to complete
};

bool in_handshake(ConnState s) {
  return s == ConnState::connecting || s == ConnState::awaiting_reply ||
         s == ConnState::awaiting_hello || s == ConnState::awaiting_confirm;
}

struct Conn {
  Conn(std::uint32_t slot_index, std::uint32_t max_frame_bytes, SpillPool& pool)
      : slot(slot_index), assembler(max_frame_bytes, pool) {}

  std::uint32_t slot;
  std::uint32_t generation = 0;
  int fd = -1;
  Role role = Role::acceptor;
  ConnState state = ConnState::closing;  // changed only by UringTransport::set_state()
  std::size_t peer_index = kNoPeer;  // dialer: from the start; acceptor: once the HELLO checks out
  SessionId session = kNoSession;
  Clock::time_point deadline{};      // for the handshake (acceptor: for the HELLO first)
  Clock::time_point accepted_at{};   // acceptor: its age, for choosing whom to evict
  HostKey source{};                  // acceptor: the remote host, for the per-source bound
  std::uint32_t ops_in_flight = 0;
  bool recv_armed = false;
  bool send_in_flight = false;
  std::array<unsigned char, wire::kReplyBytes> handshake_in{};
  std::size_t handshake_have = 0;
  Handshake handshake;  // the decisions; handshake_in assembles its messages
  FrameAssembler assembler;
  std::vector<std::byte> queued;   // frames (and handshake messages) not yet handed to the kernel
  std::vector<std::byte> sending;  // the batch of the send in flight
  std::size_t send_offset = 0;
};

struct Peer {
  std::uint64_t id = 0;
  std::string name;  // host:port
  SocketAddress address;
  bool we_dial = false;  // the larger id dials
  std::int64_t conn_slot = -1;  // dialer: the connection in any state; acceptor: the live one
  SessionId session = kNoSession;
  std::chrono::milliseconds backoff{};
  Clock::time_point next_dial{};
  bool dialed_before = false;
};

struct PendingDown {
  std::uint64_t peer;
  SessionId session;
  std::string reason;
};

class UringTransport final : public Transport {
 public:
  explicit UringTransport(TransportConfig config) : config_(std::move(config)) {}
  ~UringTransport() override;

  Result<void> init();

  std::uint16_t listen_port() const override { return port_; }
  bool send(std::uint64_t peer, SessionId session, std::span<const std::byte> frame) override;
  void close_session(std::uint64_t peer, SessionId session) override;
  Result<std::size_t> poll(std::chrono::microseconds timeout, EventSink on_event) override;
  void wake() override;
  const Counters& counters() const override { return counters_; }
  std::string_view describe() const override { return description_; }
  int wake_fd() const noexcept override { return wake_fd_; }

 private:
  // Set-up.
  Result<void> setup_ring();
  Result<void> setup_buffers();
  Result<void> start();

  // Submission helpers.
  io_uring_sqe* sqe();
  void arm_accept();
  void arm_wake();
  void arm_recv(Conn& c);
  void start_send(Conn& c);
  void prep_send(Conn& c);
  void dial(Peer& p, Clock::time_point now);

  // One iteration.
  Clock::time_point prepare(Clock::time_point now);
  Result<void> submit_and_wait(Clock::time_point now, Clock::time_point wait_until);
  void reap();
  void handle(const io_uring_cqe& cqe);
  void on_accept(const io_uring_cqe& cqe);
  void on_connect(Conn& c, int res);
  void on_recv(Conn& c, const io_uring_cqe& cqe);
  void on_send(Conn& c, int res);
  bool on_bytes(Conn& c, std::span<const std::byte> bytes);
  bool deliver_frames(Conn& c, std::span<const std::byte> bytes);
  void on_handshake_message(Conn& c, std::size_t bytes);
  void acceptor_hello_checked(Conn& c, const HandshakeStep& reply);
  void establish(Conn& c);

  // The bounds on inbound handshakes.
  void set_state(Conn& c, ConnState state);
  std::vector<std::uint32_t>* pool_of(ConnState state);
  void make_room_for(const HostKey& source, Clock::time_point now);
  void evict(Conn& c, Clock::time_point now, const char* why);

  // Closing.
  void close_conn(Conn& c, std::string reason);
  void refuse(Conn& c, const std::string& reason);
  void drop_garbage(Conn& c, const std::string& reason);
  void finish_if_done(Conn& c);
  void free_conn(Conn& c);
  void schedule_redial(Peer& p, Clock::time_point now);

  // Events.
  void emit(const Event& e);
  void flush_downs();
  void log(const std::string& line);
  void log_unauthenticated(FunctionRef<std::string()> line);
  void report_suppressed(Clock::time_point now);

  // Buffers.
  std::byte* buffer(std::uint16_t id) {
    return buffers_.get() + std::size_t{id} * config_.recv_buffer_bytes;
  }
  void recycle(std::uint16_t id);
  void publish_buffers();

  Conn& new_conn(int fd, Role role);
  Conn* conn_of(std::int64_t slot) {
    return slot < 0 ? nullptr : conns_[static_cast<std::size_t>(slot)].get();
  }
  Peer* find_peer(std::uint64_t id);
  std::string conn_name(const Conn& c) const;
  void queue_bytes(Conn& c, std::span<const unsigned char> bytes);
  void check_owner() const;

  TransportConfig config_;
  HandshakeContext handshake_context_;
  std::uint16_t port_ = 0;
  int listen_fd_ = -1;
  int wake_fd_ = -1;
  std::uint64_t wake_value_ = 0;  // the eventfd read's target

  io_uring ring_{};
  bool ring_ready_ = false;
  bool ring_disabled_ = false;  // created R_DISABLED: enabled by the polling thread
  bool defer_taskrun_ = false;
  bool started_ = false;
  bool accept_armed_ = false;
  Clock::time_point accept_retry_at_{};
  bool wake_armed_ = false;
  std::string description_;
  std::thread::id owner_;

  io_uring_buf_ring* buf_ring_ = nullptr;
  std::size_t buf_ring_bytes_ = 0;
  std::unique_ptr<std::byte[]> buffers_;
  int buf_mask_ = 0;
  int buffers_to_publish_ = 0;
  std::vector<std::uint16_t> pinned_;   // ids a delivered frame points into
  std::vector<std::uint32_t> starved_;  // slots whose recv ended with ENOBUFS

  std::vector<std::unique_ptr<Conn>> conns_;
  std::vector<std::uint32_t> free_slots_;
  std::vector<std::uint32_t> unverified_;  // slots of inbound conns in awaiting_hello
  std::vector<std::uint32_t> verified_;    // slots of inbound conns in awaiting_confirm
  Clock::time_point next_unauthenticated_line_{};  // no such line before then
  Clock::time_point last_unauthenticated_line_{};
  std::uint64_t unauthenticated_suppressed_ = 0;  // since the last such line
  std::vector<Peer> peers_;
  SpillPool spill_pool_;
  Counters counters_;

  // Valid during poll().
  const EventSink* sink_ = nullptr;
  std::size_t events_ = 0;
  bool woken_ = false;
  std::vector<PendingDown> pending_downs_;
  std::deque<std::string> reasons_;  // backing for Event::reason until the next poll()
};

// ---------------------------------------------------------------------------------------------
// Set-up and tear-down.

Result<void> UringTransport::init() {
  if (auto ok = validate_config(config_); !ok) return ok;
  if (sodium_init() < 0) return fail(errc::crypto_error, "sodium_init failed");

  const std::string listen_name = endpoint_name(config_.listen_host, config_.listen_port);
  auto listen_address = resolve(config_.listen_host, config_.listen_port, true);
  if (!listen_address) return std::unexpected(listen_address.error());
  auto fd = listen_on(*listen_address, listen_name);
  if (!fd) return std::unexpected(fd.error());
  listen_fd_ = *fd;
  auto port = bound_port(listen_fd_, listen_name);
  if (!port) return std::unexpected(port.error());
  port_ = *port;

  handshake_context_.cluster_id = config_.cluster_id;
  handshake_context_.self_id = config_.self_id;
  handshake_context_.secret = config_.secret;
  handshake_context_.make_nonce = [] {
    wire::Nonce nonce;
    randombytes_buf(nonce.data(), nonce.size());
    return nonce;
  };
  peers_.reserve(config_.peers.size());
  for (const PeerAddress& a : config_.peers) {
    Peer p;
    p.id = a.id;
    p.name = endpoint_name(a.host, a.port);
    p.we_dial = config_.self_id > a.id;
    p.backoff = config_.reconnect_min;
    handshake_context_.peers.push_back(a.id);
    if (p.we_dial) {
      auto address = resolve(a.host, a.port, false);
      if (!address) return std::unexpected(address.error());
      p.address = *address;
    }
    peers_.push_back(std::move(p));
  }

  wake_fd_ = ::eventfd(0, EFD_CLOEXEC);
  if (wake_fd_ < 0) return fail_errno(errc::socket_error, errno, "eventfd for wake()");

  if (auto ok = setup_ring(); !ok) return ok;
  if (auto ok = setup_buffers(); !ok) return ok;
  pinned_.reserve(config_.recv_buffer_count);
  starved_.reserve(16);
  unverified_.reserve(kMaxUnverifiedHandshakes);
  verified_.reserve(kMaxVerifiedHandshakes);
  return {};
}

Result<void> UringTransport::setup_ring() {
  // Preferred: one issuer and task work run only when we ask for completions, so the kernel never
  // interrupts the polling thread. R_DISABLED defers binding the issuer to the first poll(), so
  // open() may run on another thread than the one that polls.
  io_uring_params params{};
  params.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
                 IORING_SETUP_R_DISABLED;
  params.cq_entries = kCqEntries;
  int rc = io_uring_queue_init_params(kSqEntries, &ring_, &params);
  std::string fallback;
  if (rc == 0) {
    ring_disabled_ = true;
    defer_taskrun_ = true;
  } else {
    fallback = std::string(" (kernel refused SINGLE_ISSUER|DEFER_TASKRUN: ") +
               std::strerror(-rc) + ")";
    params = io_uring_params{};
    params.flags = IORING_SETUP_CQSIZE;
    params.cq_entries = kCqEntries;
    rc = io_uring_queue_init_params(kSqEntries, &ring_, &params);
  }
  if (rc < 0) {
    return fail_errno(errc::unsupported, -rc,
                      std::string("io_uring_queue_init failed") +
                          (rc == -ENOSYS ? ": the kernel has no io_uring"
                           : rc == -EPERM ? ": io_uring is disabled (sysctl "
                                            "kernel.io_uring_disabled or seccomp)"
                                          : ""));
  }
  ring_ready_ = true;
  if ((params.features & IORING_FEAT_NODROP) == 0) {
    return fail(errc::unsupported, "io_uring without IORING_FEAT_NODROP (needs Linux 5.5+)");
  }
  description_ = std::string("io_uring: ") +
                 (defer_taskrun_ ? "SINGLE_ISSUER|DEFER_TASKRUN" : "plain set-up" + fallback) +
                 ", " + std::to_string(config_.recv_buffer_count) + " x " +
                 std::to_string(config_.recv_buffer_bytes) +
                 " B provided-buffer ring, multishot accept and recv, one send per peer per "
                 "flush" +
                 ((params.features & IORING_FEAT_EXT_ARG) != 0 ? ", timed waits in one enter"
                                                               : ", timed waits via timeout SQE");
  return {};
}

Result<void> UringTransport::setup_buffers() {
  const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  const std::size_t ring_bytes = config_.recv_buffer_count * sizeof(io_uring_buf);
  buf_ring_bytes_ = (ring_bytes + page - 1) / page * page;
  void* memory =
      ::mmap(nullptr, buf_ring_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) {
    return fail_errno(errc::socket_error, errno, "mmap of the provided-buffer ring");
  }
  buf_ring_ = static_cast<io_uring_buf_ring*>(memory);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<std::uintptr_t>(buf_ring_);
  reg.ring_entries = config_.recv_buffer_count;
  reg.bgid = kBufferGroup;
  const int rc = io_uring_register_buf_ring(&ring_, &reg, 0);
  if (rc < 0) {
    return fail_errno(errc::unsupported, -rc,
                      "io_uring_register_buf_ring failed: provided-buffer rings need Linux 5.19+");
  }
  io_uring_buf_ring_init(buf_ring_);
  buf_mask_ = io_uring_buf_ring_mask(config_.recv_buffer_count);
  buffers_ = std::make_unique_for_overwrite<std::byte[]>(std::size_t{config_.recv_buffer_count} *
                                                         config_.recv_buffer_bytes);
  for (std::uint32_t id = 0; id < config_.recv_buffer_count; ++id) {
    recycle(static_cast<std::uint16_t>(id));
  }
  publish_buffers();
  return {};
}

UringTransport::~UringTransport() {
  if (ring_ready_ && started_) {
    // Cancel everything and wait for the completions, so that no operation can still write into
    // memory freed below (the wake read's target, send batches, receive buffers).
    if (io_uring_sqe* s = io_uring_get_sqe(&ring_)) {
      io_uring_prep_cancel64(s, 0, IORING_ASYNC_CANCEL_ANY | IORING_ASYNC_CANCEL_ALL);
      io_uring_sqe_set_data64(s, pack(OpKind::ignore, 0, 0));
    }
    auto busy = [this] {
      if (accept_armed_ || wake_armed_) return true;
      for (const auto& c : conns_) {
        if (c->ops_in_flight > 0) return true;
      }
      return false;
    };
    const auto give_up = Clock::now() + std::chrono::seconds(1);
    while (busy() && Clock::now() < give_up) {
      __kernel_timespec ts{0, 10'000'000};
      io_uring_cqe* cqe = nullptr;
      const int rc = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
      if (rc < 0 && rc != -ETIME && rc != -EINTR) break;  // e.g. another thread (-EEXIST)
      io_uring_cqe* batch[kReapBatch];
      const unsigned n = io_uring_peek_batch_cqe(&ring_, batch, kReapBatch);
      for (unsigned i = 0; i < n; ++i) {
        const std::uint64_t data = batch[i]->user_data;
        const bool more = (batch[i]->flags & IORING_CQE_F_MORE) != 0;
        switch (kind_of(data)) {
          case OpKind::accept: accept_armed_ = accept_armed_ && more; break;
          case OpKind::wake: wake_armed_ = false; break;
          case OpKind::connect:
          case OpKind::send:
          case OpKind::recv:
            if (!more) --conns_[slot_of(data)]->ops_in_flight;
            break;
          default: break;
        }
      }
      io_uring_cq_advance(&ring_, n);
    }
  }
  if (ring_ready_) io_uring_queue_exit(&ring_);
  for (const auto& c : conns_) {
    if (c->fd >= 0) ::close(c->fd);
  }
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
  if (buf_ring_ != nullptr) ::munmap(buf_ring_, buf_ring_bytes_);
}

Result<void> UringTransport::start() {
  if (ring_disabled_) {
    // liburing 2.3 declares io_uring_enable_rings() but its library does not export it (nor the
    // raw io_uring_register()), hence the system call itself.
    const long rc =
        ::syscall(__NR_io_uring_register, ring_.ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr, 0);
    if (rc != 0) return fail_errno(errc::ring_error, errno, "enabling the io_uring");
    ring_disabled_ = false;
  }
  owner_ = std::this_thread::get_id();
  // Saves the ring fd lookup on every enter; registered per thread, hence here. Optional.
  static_cast<void>(io_uring_register_ring_fd(&ring_));
  started_ = true;
  return {};
}

void UringTransport::check_owner() const {
  FZ_NET_CHECK(!started_ || owner_ == std::this_thread::get_id());
}

// ---------------------------------------------------------------------------------------------
// The public calls.

Peer* UringTransport::find_peer(std::uint64_t id) {
  for (Peer& p : peers_) {
    if (p.id == id) return &p;
  }
  return nullptr;
}

bool UringTransport::send(std::uint64_t peer, SessionId session, std::span<const std::byte> frame) {
  check_owner();
  Peer* p = find_peer(peer);
  if (p == nullptr || session == kNoSession || p->session != session) return false;
  if (frame.empty() || frame.size() > config_.max_frame_bytes) return false;
  Conn* c = conn_of(p->conn_slot);
  FZ_NET_CHECK(c != nullptr && c->state == ConnState::established && c->session == session);
  const std::uint64_t waiting = c->queued.size() + (c->sending.size() - c->send_offset);
  if (waiting + wire::kFrameHeaderBytes + frame.size() > config_.max_queued_bytes) {
    close_conn(*c, "send queue over " + std::to_string(config_.max_queued_bytes) +
                       " bytes: the peer does not read");
    return false;
  }
  std::array<std::byte, wire::kFrameHeaderBytes> header;
  wire::store_u32_le(static_cast<std::uint32_t>(frame.size()), header.data());
  c->queued.insert(c->queued.end(), header.begin(), header.end());
  c->queued.insert(c->queued.end(), frame.begin(), frame.end());
  ++counters_.frames_sent;
  counters_.bytes_sent += frame.size();
  return true;
}

void UringTransport::close_session(std::uint64_t peer, SessionId session) {
  check_owner();
  Peer* p = find_peer(peer);
  if (p == nullptr || session == kNoSession || p->session != session) return;
  Conn* c = conn_of(p->conn_slot);
  FZ_NET_CHECK(c != nullptr);
  close_conn(*c, "closed by this server");
}

void UringTransport::wake() {
  const std::uint64_t one = 1;
  // Cannot block: the counter would have to reach 2^64-2 first.
  static_cast<void>(::write(wake_fd_, &one, sizeof one));
}

Result<std::size_t> UringTransport::poll(std::chrono::microseconds timeout, EventSink on_event) {
  FZ_NET_CHECK(sink_ == nullptr);  // not re-entrant: no poll() from inside a callback
  if (!started_) {
    if (auto ok = start(); !ok) return std::unexpected(ok.error());
  }
  check_owner();
  sink_ = &on_event;
  events_ = 0;
  woken_ = false;

  // What the previous poll() handed out is dead now.
  for (const std::uint16_t id : pinned_) recycle(id);
  pinned_.clear();
  publish_buffers();
  spill_pool_.reclaim();
  reasons_.clear();
  flush_downs();

  const Clock::time_point begin = Clock::now();
  // Bounded so that the deadline cannot overflow; a caller wanting longer simply polls again.
  const Clock::time_point deadline =
      begin + std::min<std::chrono::microseconds>(timeout, std::chrono::hours(1));
  const Clock::time_point spin_until = begin + config_.adaptive_spin;
  Result<void> outcome;
  Clock::time_point now = begin;
  while (true) {
    const Clock::time_point next_timer = prepare(now);
    Clock::time_point wait_until = now;  // no wait
    if (events_ == 0 && !woken_) {
      const Clock::time_point target = std::min(deadline, next_timer);
      switch (config_.poll_mode) {
        case PollMode::busy: break;
        case PollMode::adaptive:
          if (now >= spin_until) wait_until = target;
          break;
        case PollMode::blocking: wait_until = target; break;
      }
    }
    outcome = submit_and_wait(now, wait_until);
    if (!outcome) break;
    reap();
    now = Clock::now();
    if (events_ > 0 || woken_ || now >= deadline) break;
  }
  flush_downs();
  sink_ = nullptr;
  if (!outcome) return std::unexpected(outcome.error());
  return events_;
}

// ---------------------------------------------------------------------------------------------
// Submission.

io_uring_sqe* UringTransport::sqe() {
  io_uring_sqe* s = io_uring_get_sqe(&ring_);
  if (s != nullptr) return s;
  // The SQ is full (more than kSqEntries operations prepared in one iteration): submit what is
  // there. Rare, so the one-submit-per-iteration rule holds in steady state.
  const int rc = io_uring_submit(&ring_);
  FZ_NET_CHECK(rc >= 0 || rc == -EBUSY || rc == -EAGAIN);
  s = io_uring_get_sqe(&ring_);
  FZ_NET_CHECK(s != nullptr);
  return s;
}

void UringTransport::arm_accept() {
  io_uring_sqe* s = sqe();
  io_uring_prep_multishot_accept(s, listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
  io_uring_sqe_set_data64(s, pack(OpKind::accept, 0, 0));
  accept_armed_ = true;
}

void UringTransport::arm_wake() {
  io_uring_sqe* s = sqe();
  io_uring_prep_read(s, wake_fd_, &wake_value_, sizeof wake_value_, 0);
  io_uring_sqe_set_data64(s, pack(OpKind::wake, 0, 0));
  wake_armed_ = true;
}

void UringTransport::arm_recv(Conn& c) {
  io_uring_sqe* s = sqe();
  io_uring_prep_recv_multishot(s, c.fd, nullptr, 0, 0);
  s->flags |= IOSQE_BUFFER_SELECT;
  s->buf_group = kBufferGroup;
  io_uring_sqe_set_data64(s, pack(OpKind::recv, c.slot, c.generation));
  ++c.ops_in_flight;
  c.recv_armed = true;
}

// Clears a send buffer. Steady traffic reuses its capacity; a burst (a DIFF of a long history, a
// backlog behind a slow peer) would otherwise keep its high-water mark for the life of the
// connection, so capacity past SpillPool's retention limit is given back.
void release_if_large(std::vector<std::byte>& buffer) noexcept {
  if (buffer.capacity() > SpillPool::kMaxRetainedCapacityBytes) {
    std::vector<std::byte>().swap(buffer);
  } else {
    buffer.clear();
  }
}

void UringTransport::start_send(Conn& c) {
  // Double buffering: the batch in flight is `sending`; send() keeps appending to `queued`. Both
  // keep their capacity, so steady traffic allocates nothing.
  std::swap(c.queued, c.sending);
  c.queued.clear();
  c.send_offset = 0;
  prep_send(c);
}

void UringTransport::prep_send(Conn& c) {
  const std::size_t rest = std::min(c.sending.size() - c.send_offset, kMaxSendBytesPerSqe);
  io_uring_sqe* s = sqe();
  io_uring_prep_send(s, c.fd, c.sending.data() + c.send_offset, rest, MSG_NOSIGNAL);
  io_uring_sqe_set_data64(s, pack(OpKind::send, c.slot, c.generation));
  ++c.ops_in_flight;
  c.send_in_flight = true;
}

void UringTransport::dial(Peer& p, Clock::time_point now) {
  const int fd = ::socket(p.address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    log("fastzab-net: cannot dial server " + std::to_string(p.id) + " at " + p.name +
        ": socket: " + std::strerror(errno));
    schedule_redial(p, now);
    return;
  }
  set_no_delay(fd);
  Conn& c = new_conn(fd, Role::dialer);
  set_state(c, ConnState::connecting);
  c.peer_index = static_cast<std::size_t>(&p - peers_.data());
  c.deadline = now + config_.handshake_timeout;
  p.conn_slot = c.slot;
  if (p.dialed_before) ++counters_.reconnect_attempts;
  p.dialed_before = true;
  io_uring_sqe* s = sqe();
  io_uring_prep_connect(s, fd, p.address.get(), p.address.length);
  io_uring_sqe_set_data64(s, pack(OpKind::connect, c.slot, c.generation));
  ++c.ops_in_flight;
}

Conn& UringTransport::new_conn(int fd, Role role) {
  std::uint32_t slot = 0;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    slot = static_cast<std::uint32_t>(conns_.size());
    FZ_NET_CHECK(slot < 0xFFFFFFu);
    conns_.push_back(std::make_unique<Conn>(slot, config_.max_frame_bytes, spill_pool_));
  }
  Conn& c = *conns_[slot];
  c.fd = fd;
  c.role = role;
  c.peer_index = kNoPeer;
  c.session = kNoSession;
  c.handshake_have = 0;
  c.handshake = Handshake{};
  c.send_offset = 0;
  return c;
}

Clock::time_point UringTransport::prepare(Clock::time_point now) {
  Clock::time_point next_timer = Clock::time_point::max();
  if (!accept_armed_) {
    if (now >= accept_retry_at_) {
      arm_accept();
    } else {
      next_timer = accept_retry_at_;
    }
  }
  if (!wake_armed_) arm_wake();
  for (const std::uint32_t slot : starved_) {
    Conn& c = *conns_[slot];
    if (c.state != ConnState::closing && !c.recv_armed) arm_recv(c);
  }
  starved_.clear();

  for (Peer& p : peers_) {
    if (!p.we_dial || p.conn_slot >= 0) continue;
    if (now >= p.next_dial) {
      dial(p, now);
    } else {
      next_timer = std::min(next_timer, p.next_dial);
    }
  }
  if (unauthenticated_suppressed_ > 0) {
    if (now >= next_unauthenticated_line_) {
      report_suppressed(now);
    } else {
      next_timer = std::min(next_timer, next_unauthenticated_line_);
    }
  }
  for (const auto& owned : conns_) {
    Conn& c = *owned;
    if (in_handshake(c.state)) {
      if (now >= c.deadline) {
        if (c.state == ConnState::connecting) {
          // An unreachable peer is not refusing anything: retried with back-off, not logged.
          close_conn(c, "connect timed out");
        } else if (c.state == ConnState::awaiting_hello) {
          refuse(c, "handshake not finished within " +
                        std::to_string(std::min(config_.hello_timeout,
                                                config_.handshake_timeout).count()) +
                        " ms (no complete hello)");
        } else {
          refuse(c, "handshake not finished within " +
                        std::to_string(config_.handshake_timeout.count()) + " ms");
        }
        continue;
      }
      next_timer = std::min(next_timer, c.deadline);
    }
    if (c.state != ConnState::closing && c.state != ConnState::connecting && !c.send_in_flight &&
        !c.queued.empty()) {
      start_send(c);
    }
  }
  return next_timer;
}

Result<void> UringTransport::submit_and_wait(Clock::time_point now, Clock::time_point wait_until) {
  int rc = 0;
  if (wait_until > now) {
    const auto wait = std::chrono::duration_cast<std::chrono::nanoseconds>(wait_until - now);
    __kernel_timespec ts{};
    ts.tv_sec = wait.count() / 1'000'000'000;
    ts.tv_nsec = wait.count() % 1'000'000'000;
    io_uring_cqe* cqe = nullptr;
    rc = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
  } else if (defer_taskrun_) {
    // With DEFER_TASKRUN completions are only produced when we enter asking for events.
    rc = io_uring_submit_and_get_events(&ring_);
  } else {
    rc = io_uring_submit(&ring_);  // no syscall when there is nothing to submit
  }
  if (rc >= 0 || rc == -ETIME || rc == -EINTR || rc == -EAGAIN || rc == -EBUSY) return {};
  return fail_errno(errc::ring_error, -rc, "io_uring_enter");
}

void UringTransport::reap() {
  io_uring_cqe* batch[kReapBatch];
  while (true) {
    const unsigned n = io_uring_peek_batch_cqe(&ring_, batch, kReapBatch);
    if (n == 0) break;
    for (unsigned i = 0; i < n; ++i) handle(*batch[i]);
    io_uring_cq_advance(&ring_, n);
    publish_buffers();
    flush_downs();
    // Each batch may pin up to kReapBatch buffers until the next poll(): stop once there are
    // events to return, and leave the rest in the CQ for the next call.
    if (events_ > 0) break;
  }
}

void UringTransport::handle(const io_uring_cqe& cqe) {
  const std::uint64_t data = cqe.user_data;
  switch (kind_of(data)) {
    case OpKind::accept: on_accept(cqe); return;
    case OpKind::wake:
      wake_armed_ = false;
      woken_ = true;
      return;
    case OpKind::connect:
    case OpKind::recv:
    case OpKind::send: break;
    default: return;  // cancels, and liburing's own timeout SQEs (LIBURING_UDATA_TIMEOUT)
  }
  const std::uint32_t slot = slot_of(data);
  FZ_NET_CHECK(slot < conns_.size());
  Conn& c = *conns_[slot];
  FZ_NET_CHECK(c.generation == generation_of(data) && c.fd >= 0);
  switch (kind_of(data)) {
    case OpKind::connect:
      --c.ops_in_flight;
      if (c.state != ConnState::closing) on_connect(c, cqe.res);
      break;
    case OpKind::recv: on_recv(c, cqe); break;
    case OpKind::send:
      --c.ops_in_flight;
      c.send_in_flight = false;
      if (c.state != ConnState::closing) on_send(c, cqe.res);
      break;
    default: break;
  }
  finish_if_done(c);
}

// ---------------------------------------------------------------------------------------------
// Completions.

void UringTransport::on_accept(const io_uring_cqe& cqe) {
  if ((cqe.flags & IORING_CQE_F_MORE) == 0) accept_armed_ = false;  // re-armed next iteration
  if (cqe.res < 0) {
    if (cqe.res != -ECANCELED) {
      // E.g. EMFILE: accepting again at once would fail again, in a loop.
      log("fastzab-net: accept on " + endpoint_name(config_.listen_host, port_) +
          " failed: " + std::strerror(-cqe.res) + "; retrying in 100 ms");
      accept_retry_at_ = Clock::now() + kAcceptRetryDelay;
    }
    return;
  }
  const int fd = cqe.res;
  const auto remote = remote_address(fd);
  if (!remote) {  // reset already: nothing to answer
    ::close(fd);
    return;
  }
  const Clock::time_point now = Clock::now();
  const HostKey source = host_key(*remote);
  make_room_for(source, now);
  set_no_delay(fd);
  Conn& c = new_conn(fd, Role::acceptor);
  c.accepted_at = now;
  c.source = source;
  c.deadline = now + std::min(config_.hello_timeout, config_.handshake_timeout);
  set_state(c, ConnState::awaiting_hello);
  c.handshake.start_acceptor(handshake_context_);
  // A dialer writes its HELLO the moment its connect completes, so it is usually here already:
  // checked now, the connection leaves the unverified pool before a burst of newer ones could
  // evict it. One non-blocking read per connection, of the HELLO's size at most (the rest is the
  // ring's); whatever comes later arrives through the ring as usual.
  std::array<std::byte, wire::kHelloBytes> first;
  const ssize_t n = ::recv(fd, first.data(), first.size(), MSG_DONTWAIT);
  if (n == 0) {
    close_conn(c, "closed before its hello");  // a dialer that gave up: nothing to report
    return;
  }
  if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
    close_conn(c, std::string("recv failed: ") + std::strerror(errno));
    return;
  }
  if (n > 0) {
    const bool pin = on_bytes(c, std::span<const std::byte>(first.data(), static_cast<std::size_t>(n)));
    FZ_NET_CHECK(!pin);  // no frame can arrive before the handshake is done
  }
  if (c.state != ConnState::closing) arm_recv(c);
}

void UringTransport::on_connect(Conn& c, int res) {
  if (res < 0) {
    // The peer is down or not listening yet: normal during start-up, so not logged.
    close_conn(c, std::string("connect failed: ") + std::strerror(-res));
    return;
  }
  queue_bytes(c, c.handshake.start_dialer(handshake_context_, peers_[c.peer_index].id).bytes);
  set_state(c, ConnState::awaiting_reply);
  arm_recv(c);
}

void UringTransport::on_recv(Conn& c, const io_uring_cqe& cqe) {
  const bool more = (cqe.flags & IORING_CQE_F_MORE) != 0;
  const int res = cqe.res;
  if (res > 0) {
    FZ_NET_CHECK((cqe.flags & IORING_CQE_F_BUFFER) != 0);
    const auto id = static_cast<std::uint16_t>(cqe.flags >> IORING_CQE_BUFFER_SHIFT);
    bool pin = false;
    if (c.state != ConnState::closing) {
      pin = on_bytes(c, std::span<const std::byte>(buffer(id), static_cast<std::size_t>(res)));
    }
    if (pin) {
      pinned_.push_back(id);
    } else {
      recycle(id);
    }
  } else if (c.state != ConnState::closing) {
    if (res == 0) {
      if (c.state == ConnState::established) {
        close_conn(c, c.assembler.mid_frame() ? "the peer closed the connection mid-frame"
                                              : "the peer closed the connection");
      } else {
        // The other side gave up on the handshake; it says why in its own log.
        close_conn(c, "the peer closed the connection during the handshake");
      }
    } else if (res == -ENOBUFS) {
      starved_.push_back(c.slot);  // re-armed once buffers are back in the ring
    } else if (res != -ECANCELED) {
      close_conn(c, std::string("recv failed: ") + std::strerror(-res));
    }
  }
  // Counted down only now: a callback above may have closed the connection, which must not be
  // freed while its bytes are being handled.
  if (!more) {
    --c.ops_in_flight;
    c.recv_armed = false;
    // The kernel may end a multishot recv on its own (e.g. CQ pressure): re-arm it.
    if (res > 0 && c.state != ConnState::closing) arm_recv(c);
  }
}

void UringTransport::on_send(Conn& c, int res) {
  if (res < 0) {
    if (res == -EAGAIN || res == -EINTR) {
      prep_send(c);
    } else {
      close_conn(c, std::string("send failed: ") + std::strerror(-res));
    }
    return;
  }
  c.send_offset += static_cast<std::size_t>(res);
  if (c.send_offset < c.sending.size()) {
    prep_send(c);  // a short write: the rest goes out with the next submit
    return;
  }
  release_if_large(c.sending);
  c.send_offset = 0;
  if (!c.queued.empty()) start_send(c);
}

// Returns true when a delivered frame points into `bytes` (the receive buffer must be pinned).
bool UringTransport::on_bytes(Conn& c, std::span<const std::byte> bytes) {
  std::size_t at = 0;
  while (at < bytes.size() && in_handshake(c.state)) {
    const std::size_t need = c.handshake.message_bytes();
    FZ_NET_CHECK(need > 0);  // nothing arrives before connect completes
    const std::size_t take = std::min(need - c.handshake_have, bytes.size() - at);
    std::memcpy(c.handshake_in.data() + c.handshake_have, bytes.data() + at, take);
    c.handshake_have += take;
    at += take;
    if (c.handshake_have == need) {
      c.handshake_have = 0;
      on_handshake_message(c, need);
    }
  }
  if (c.state != ConnState::established || at == bytes.size()) return false;
  return deliver_frames(c, bytes.subspan(at));
}

bool UringTransport::deliver_frames(Conn& c, std::span<const std::byte> bytes) {
  bool pin = false;
  const SessionId session = c.session;
  const std::uint64_t peer = peers_[c.peer_index].id;
  const auto status =
      c.assembler.feed(bytes, [&](std::span<const std::byte> frame, FrameAssembler::Source from) {
        // A callback may close this session: nothing of it is delivered after that.
        if (c.state != ConnState::established || c.session != session) return;
        if (from == FrameAssembler::Source::chunk) pin = true;
        ++counters_.frames_received;
        counters_.bytes_received += frame.size();
        emit(Event{Event::Kind::frame, peer, session, frame, {}});
      });
  if (c.state != ConnState::established) return pin;
  switch (status) {
    case FrameAssembler::Status::ok: break;
    case FrameAssembler::Status::zero_length:
      drop_garbage(c, "a frame header with length 0");
      break;
    case FrameAssembler::Status::oversized: {
      ++counters_.frames_oversized;
      const std::string reason = "a frame of " +
                                 std::to_string(c.assembler.last_claimed_length()) +
                                 " bytes, over max_frame_bytes " +
                                 std::to_string(config_.max_frame_bytes);
      log("fastzab-net: dropped session with server " + std::to_string(peer) + " (" +
          conn_name(c) + "): " + reason);
      close_conn(c, reason);
      break;
    }
  }
  return pin;
}

// ---------------------------------------------------------------------------------------------
// The handshake (README.md, "Handshake").

// The decisions are the Handshake's (net/handshake.h); what needs every connection and peer
// (the verified pool, the session a restarted peer leaves behind) is done here.
void UringTransport::on_handshake_message(Conn& c, std::size_t bytes) {
  const HandshakeStep step =
      c.handshake.on_message(std::span<const unsigned char>(c.handshake_in.data(), bytes));
  switch (step.kind) {
    case HandshakeStep::Kind::garbage: return drop_garbage(c, step.reason);
    case HandshakeStep::Kind::refused: return refuse(c, step.reason);
    case HandshakeStep::Kind::send: return acceptor_hello_checked(c, step);
    case HandshakeStep::Kind::established: break;
  }
  if (c.role == Role::acceptor) {
    if (Conn* old = conn_of(peers_[c.peer_index].conn_slot)) {
      // One connection per pair: the newest authenticated one wins (the peer restarted).
      close_conn(*old, "replaced by a new connection from the peer (it restarted?)");
    }
  }
  queue_bytes(c, step.bytes);  // the dialer's MAC; nothing from the acceptor
  establish(c);
}

// The dialer's HELLO checked out: `reply` holds the acceptor's hello and MAC.
void UringTransport::acceptor_hello_checked(Conn& c, const HandshakeStep& reply) {
  Peer* p = find_peer(reply.peer);
  FZ_NET_CHECK(p != nullptr);  // the Handshake knows the same servers
  c.peer_index = static_cast<std::size_t>(p - peers_.data());
  if (verified_.size() >= kMaxVerifiedHandshakes) {
    // Anyone who knows the cluster id and a server id can write a hello that checks out: such
    // connections are bounded too, the oldest (whose MAC is the most overdue) making room.
    Conn* oldest = nullptr;
    for (const std::uint32_t slot : verified_) {
      Conn& v = *conns_[slot];
      if (oldest == nullptr || v.accepted_at < oldest->accepted_at) oldest = &v;
    }
    evict(*oldest, Clock::now(), "its authenticator is overdue and a newer hello checked out");
  }
  queue_bytes(c, reply.bytes);
  set_state(c, ConnState::awaiting_confirm);
  c.deadline = c.accepted_at + config_.handshake_timeout;
}

void UringTransport::establish(Conn& c) {
  Peer& p = peers_[c.peer_index];
  set_state(c, ConnState::established);
  c.session = g_next_session.fetch_add(1, std::memory_order_relaxed);
  c.assembler.reset();
  p.conn_slot = c.slot;
  p.session = c.session;
  p.backoff = config_.reconnect_min;
  ++counters_.sessions_up;
  emit(Event{Event::Kind::session_up, p.id, c.session, {}, {}});
}

void UringTransport::queue_bytes(Conn& c, std::span<const unsigned char> bytes) {
  const auto* first = reinterpret_cast<const std::byte*>(bytes.data());
  c.queued.insert(c.queued.end(), first, first + bytes.size());
}

// ---------------------------------------------------------------------------------------------
// The bounds on inbound handshakes (README.md, "Unauthenticated connections").

std::vector<std::uint32_t>* UringTransport::pool_of(ConnState state) {
  switch (state) {
    case ConnState::awaiting_hello: return &unverified_;
    case ConnState::awaiting_confirm: return &verified_;
    default: return nullptr;
  }
}

// Every state change goes through here, so the two pools hold exactly the inbound connections in
// their states.
void UringTransport::set_state(Conn& c, ConnState state) {
  if (std::vector<std::uint32_t>* from = pool_of(c.state)) {
    const auto at = std::find(from->begin(), from->end(), c.slot);
    FZ_NET_CHECK(at != from->end());
    *at = from->back();
    from->pop_back();
  }
  if (std::vector<std::uint32_t>* to = pool_of(state)) {
    FZ_NET_CHECK(c.role == Role::acceptor);
    to->push_back(c.slot);  // within the capacity reserved in init(): make_room_for() ran first
  }
  c.state = state;
}

// Called before a new connection from `source` joins the unverified pool: when the pool, or this
// source's share of it, is full, its weakest member goes. Weakest: no byte yet before a partial
// hello, then the oldest. The newcomer itself is never the one refused, so a real peer's
// connection always gets in, and its hello (usually read at once, see on_accept()) takes it out
// of reach.
void UringTransport::make_room_for(const HostKey& source, Clock::time_point now) {
  const auto weaker = [](const Conn& a, const Conn* b) {
    if (b == nullptr) return true;
    const bool a_spoke = a.handshake_have > 0;
    const bool b_spoke = b->handshake_have > 0;
    if (a_spoke != b_spoke) return !a_spoke;
    return a.accepted_at < b->accepted_at;
  };
  Conn* weakest = nullptr;
  Conn* weakest_of_source = nullptr;
  std::size_t of_source = 0;
  for (const std::uint32_t slot : unverified_) {
    Conn& u = *conns_[slot];
    if (weaker(u, weakest)) weakest = &u;
    if (u.source == source) {
      ++of_source;
      if (weaker(u, weakest_of_source)) weakest_of_source = &u;
    }
  }
  if (of_source >= kMaxUnverifiedPerSource) {
    evict(*weakest_of_source, now, "the handshakes pending from its address reached their bound");
  } else if (unverified_.size() >= kMaxUnverifiedHandshakes) {
    evict(*weakest, now, "the handshakes pending without a hello reached their bound");
  }
}

void UringTransport::evict(Conn& c, Clock::time_point now, const char* why) {
  ++counters_.handshakes_evicted;
  log_unauthenticated([&] {
    const auto age = std::chrono::duration_cast<std::chrono::milliseconds>(now - c.accepted_at);
    return "fastzab-net: evicted connection from " + conn_name(c) + " after " +
           std::to_string(age.count()) + " ms (" +
           (c.state == ConnState::awaiting_hello
                ? std::to_string(c.handshake_have) + " of " + std::to_string(wire::kHelloBytes) +
                      " hello bytes"
                : "hello checked, no authenticator yet") +
           "): " + why + " and a newer connection came";
  });
  close_conn(c, "evicted to make room for a newer connection");
}

// ---------------------------------------------------------------------------------------------
// Closing.

std::string UringTransport::conn_name(const Conn& c) const {
  if (c.role == Role::dialer) return peers_[c.peer_index].name;
  return remote_name(c.fd);
}

void UringTransport::refuse(Conn& c, const std::string& reason) {
  ++counters_.handshakes_refused;
  if (c.role == Role::acceptor) {
    log_unauthenticated(
        [&] { return "fastzab-net: refused connection from " + conn_name(c) + ": " + reason; });
  } else {
    log("fastzab-net: refused connection to server " + std::to_string(peers_[c.peer_index].id) +
        " at " + conn_name(c) + ": " + reason);
  }
  close_conn(c, reason);
}

void UringTransport::drop_garbage(Conn& c, const std::string& reason) {
  ++counters_.connections_dropped_garbage;
  if (c.role == Role::acceptor && c.state != ConnState::established) {
    log_unauthenticated(
        [&] { return "fastzab-net: dropped connection from " + conn_name(c) + ": " + reason; });
  } else {
    log("fastzab-net: dropped connection " +
        std::string(c.role == Role::acceptor ? "from " : "to ") + conn_name(c) + ": " + reason);
  }
  close_conn(c, reason);
}

void UringTransport::close_conn(Conn& c, std::string reason) {
  if (c.state == ConnState::closing) return;
  const bool was_established = c.state == ConnState::established;
  if (c.peer_index != kNoPeer) {
    Peer& p = peers_[c.peer_index];
    if (p.conn_slot == c.slot) {
      p.conn_slot = -1;
      p.session = kNoSession;
      if (p.we_dial) schedule_redial(p, Clock::now());
    }
  }
  if (was_established) {
    ++counters_.sessions_down;
    pending_downs_.push_back(
        PendingDown{peers_[c.peer_index].id, c.session, std::move(reason)});
  }
  set_state(c, ConnState::closing);
  c.queued.clear();
  // The assembler is reset in free_conn(), not here: a callback inside its feed() may be what
  // closes the connection.
  if (c.ops_in_flight > 0) {
    io_uring_sqe* s = sqe();
    io_uring_prep_cancel_fd(s, c.fd, IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(s, pack(OpKind::ignore, 0, 0));
  }
  finish_if_done(c);
}

void UringTransport::finish_if_done(Conn& c) {
  if (c.state == ConnState::closing && c.ops_in_flight == 0 && c.fd >= 0) free_conn(c);
}

void UringTransport::free_conn(Conn& c) {
  ::close(c.fd);
  c.fd = -1;
  ++c.generation;
  release_if_large(c.sending);
  release_if_large(c.queued);
  c.send_offset = 0;
  c.recv_armed = false;
  c.send_in_flight = false;
  c.assembler.reset();
  free_slots_.push_back(c.slot);
}

void UringTransport::schedule_redial(Peer& p, Clock::time_point now) {
  // Jittered in [backoff/2, backoff] so that servers restarted together do not dial in lockstep.
  const auto full = std::chrono::duration_cast<std::chrono::microseconds>(p.backoff).count();
  const auto half = full / 2;
  const auto jitter = static_cast<std::int64_t>(
      randombytes_uniform(static_cast<std::uint32_t>(std::max<std::int64_t>(full - half, 1))));
  p.next_dial = now + std::chrono::microseconds(half + jitter);
  p.backoff = std::min(p.backoff * 2, config_.reconnect_max);
}

// ---------------------------------------------------------------------------------------------
// Events, logging, buffers.

void UringTransport::emit(const Event& e) {
  flush_downs();  // a session's down always precedes anything that follows it
  (*sink_)(e);
  ++events_;
}

void UringTransport::flush_downs() {
  if (sink_ == nullptr) return;  // outside poll(): they wait for the next one
  // Index loop: a callback may close another session and append to the list.
  for (std::size_t i = 0; i < pending_downs_.size(); ++i) {
    reasons_.push_back(std::move(pending_downs_[i].reason));
    const Event e{Event::Kind::session_down, pending_downs_[i].peer, pending_downs_[i].session,
                  {}, reasons_.back()};
    (*sink_)(e);
    ++events_;
  }
  pending_downs_.clear();
}

void UringTransport::log(const std::string& line) {
  if (config_.log_line) {
    config_.log_line(line);
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
}

// Lines about inbound connections that have not authenticated (refused, dropped as garbage,
// evicted): anyone who can reach the port can cause them at any rate, so at most one per
// kUnauthenticatedLogInterval. The others are counted; the next line says how many, or, when no
// other comes, a line of their own once the interval has passed (prepare()). `line` is built
// only when it is written.
void UringTransport::log_unauthenticated(FunctionRef<std::string()> line) {
  const Clock::time_point now = Clock::now();
  if (now < next_unauthenticated_line_) {
    ++unauthenticated_suppressed_;
    ++counters_.log_lines_suppressed;
    return;
  }
  std::string text = line();
  if (unauthenticated_suppressed_ > 0) {
    const auto since =
        std::chrono::duration_cast<std::chrono::milliseconds>(now - last_unauthenticated_line_);
    text += " (and " + std::to_string(unauthenticated_suppressed_) +
            " more not logged in the last " + std::to_string(since.count()) + " ms)";
    unauthenticated_suppressed_ = 0;
  }
  last_unauthenticated_line_ = now;
  next_unauthenticated_line_ = now + kUnauthenticatedLogInterval;
  log(text);
}

void UringTransport::report_suppressed(Clock::time_point now) {
  const auto since =
      std::chrono::duration_cast<std::chrono::milliseconds>(now - last_unauthenticated_line_);
  log("fastzab-net: " + std::to_string(unauthenticated_suppressed_) +
      " more not logged in the last " + std::to_string(since.count()) +
      " ms: inbound connections refused, evicted or dropped before authenticating (in all: " +
      std::to_string(counters_.handshakes_refused) + " refused, " +
      std::to_string(counters_.handshakes_evicted) + " evicted, " +
      std::to_string(counters_.connections_dropped_garbage) + " garbage)");
  unauthenticated_suppressed_ = 0;
  last_unauthenticated_line_ = now;
  next_unauthenticated_line_ = now + kUnauthenticatedLogInterval;
}

void UringTransport::recycle(std::uint16_t id) {
  io_uring_buf_ring_add(buf_ring_, buffer(id), config_.recv_buffer_bytes, id, buf_mask_,
                        buffers_to_publish_);
  ++buffers_to_publish_;
}

void UringTransport::publish_buffers() {
  if (buffers_to_publish_ == 0) return;
  io_uring_buf_ring_advance(buf_ring_, buffers_to_publish_);
  buffers_to_publish_ = 0;
}

}  // namespace

Result<std::unique_ptr<Transport>> Transport::open(TransportConfig config) {
  auto transport = std::make_unique<UringTransport>(std::move(config));
  if (auto ok = transport->init(); !ok) return std::unexpected(ok.error());
  return std::unique_ptr<Transport>(std::move(transport));
}

}  // namespace fastzab::net
