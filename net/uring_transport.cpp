// The io_uring TCP transport (style practice 13): the loop. One ring per Transport, owned by the
// polling thread. Per poll iteration: prepare (re-arm, dial, expire handshakes, one send per peer
// with queued bytes), ONE submit (which also waits, as the poll mode says), then reap completions
// in batches. Receives are multishot recvs into a provided-buffer ring; a buffer that a delivered
// frame points into stays out of the ring until the next poll(), every other buffer goes back
// at once. Accepts are one multishot accept; wake() is an eventfd read kept armed in the ring.
// What the bytes mean (handshakes, sessions, queues, back-off) is PeerSessions' (peer_sessions.h),
// which never sees the ring.
//
// A connection leaves the ring's reach in two steps: PeerSessions::close_conn() detaches it from
// its peer at once (so nothing more is delivered or sent for its session) and has the loop cancel
// its operations; the fd is closed and the slot reused only when the last of them has completed,
// because until then the kernel may still use its buffers.
#include <liburing.h>
#include <sodium.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>

#include "net/check.h"
#include "net/peer_sessions.h"
#include "net/sockets.h"
#include "net/transport.h"
#include "net/transport_config.h"
#include "net/wire.h"

namespace fastzab::net {
namespace {

constexpr unsigned kSqEntries = 256;
constexpr unsigned kCqEntries = 4096;
constexpr unsigned kReapBatch = 64;  // also bounds the buffers one poll() can pin
constexpr std::chrono::milliseconds kAcceptRetryDelay{100};
constexpr std::uint16_t kBufferGroup = 0;
constexpr std::size_t kMaxSendBytesPerSqe = std::size_t{1} << 30;

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

class UringTransport final : public Transport, private ConnIo {
 public:
  explicit UringTransport(TransportConfig config)
      : config_(std::move(config)),
        sessions_(config_, *this, [](std::uint32_t upper) { return randombytes_uniform(upper); },
                  [] {
                    wire::Nonce nonce;
                    randombytes_buf(nonce.data(), nonce.size());
                    return nonce;
                  }) {}
  ~UringTransport() override;

  Result<void> init();

  std::uint16_t listen_port() const override { return port_; }
  bool send(std::uint64_t peer, SessionId session, std::span<const std::byte> frame) override;
  void close_session(std::uint64_t peer, SessionId session) override;
  Result<std::size_t> poll(std::chrono::microseconds timeout, EventSink on_event) override;
  void wake() override;
  const Counters& counters() const override { return sessions_.counters(); }
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

  // ConnIo: what closing a connection needs from the ring.
  void cancel_ops(Conn& c) override;
  void close_socket(int fd) override { ::close(fd); }
  std::string remote_name(int fd) override { return net::remote_name(fd); }

  // Buffers.
  std::byte* buffer(std::uint16_t id) {
    return buffers_.get() + std::size_t{id} * config_.recv_buffer_bytes;
  }
  void recycle(std::uint16_t id);
  void publish_buffers();

  void check_owner() const;

  TransportConfig config_;
  PeerSessions sessions_;
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

  bool woken_ = false;  // during poll(): wake() was called
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

  for (const PeerAddress& a : config_.peers) {
    Peer& p = sessions_.add_peer(a);
    if (p.we_dial) {
      auto address = resolve(a.host, a.port, false);
      if (!address) return std::unexpected(address.error());
      p.address = *address;
    }
  }

  wake_fd_ = ::eventfd(0, EFD_CLOEXEC);
  if (wake_fd_ < 0) return fail_errno(errc::socket_error, errno, "eventfd for wake()");

  if (auto ok = setup_ring(); !ok) return ok;
  if (auto ok = setup_buffers(); !ok) return ok;
  pinned_.reserve(config_.recv_buffer_count);
  starved_.reserve(16);
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
      for (const auto& c : sessions_.conns()) {
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
            if (!more) --sessions_.conn_at(slot_of(data)).ops_in_flight;
            break;
          default: break;
        }
      }
      io_uring_cq_advance(&ring_, n);
    }
  }
  if (ring_ready_) io_uring_queue_exit(&ring_);
  for (const auto& c : sessions_.conns()) {
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

bool UringTransport::send(std::uint64_t peer, SessionId session, std::span<const std::byte> frame) {
  check_owner();
  return sessions_.send(peer, session, frame);
}

void UringTransport::close_session(std::uint64_t peer, SessionId session) {
  check_owner();
  sessions_.close_session(peer, session);
}

void UringTransport::wake() {
  const std::uint64_t one = 1;
  // Cannot block: the counter would have to reach 2^64-2 first.
  static_cast<void>(::write(wake_fd_, &one, sizeof one));
}

Result<std::size_t> UringTransport::poll(std::chrono::microseconds timeout, EventSink on_event) {
  if (!started_) {
    if (auto ok = start(); !ok) return std::unexpected(ok.error());
  }
  check_owner();
  woken_ = false;

  // What the previous poll() handed out is dead now.
  for (const std::uint16_t id : pinned_) recycle(id);
  pinned_.clear();
  publish_buffers();
  sessions_.begin_poll(on_event);

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
    if (sessions_.events() == 0 && !woken_) {
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
    if (sessions_.events() > 0 || woken_ || now >= deadline) break;
  }
  sessions_.end_poll();
  if (!outcome) return std::unexpected(outcome.error());
  return sessions_.events();
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

void UringTransport::start_send(Conn& c) {
  c.out.start_batch();
  prep_send(c);
}

void UringTransport::prep_send(Conn& c) {
  const std::span<const std::byte> rest = c.out.unsent();
  io_uring_sqe* s = sqe();
  io_uring_prep_send(s, c.fd, rest.data(), std::min(rest.size(), kMaxSendBytesPerSqe),
                     MSG_NOSIGNAL);
  io_uring_sqe_set_data64(s, pack(OpKind::send, c.slot, c.generation));
  ++c.ops_in_flight;
  c.send_in_flight = true;
}

void UringTransport::dial(Peer& p, Clock::time_point now) {
  const int fd = ::socket(p.address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    sessions_.log("fastzab-net: cannot dial server " + std::to_string(p.id) + " at " + p.name +
                  ": socket: " + std::strerror(errno));
    sessions_.schedule_redial(p, now);
    return;
  }
  set_no_delay(fd);
  Conn& c = sessions_.dialing(p, fd, now);
  io_uring_sqe* s = sqe();
  io_uring_prep_connect(s, fd, p.address.get(), p.address.length);
  io_uring_sqe_set_data64(s, pack(OpKind::connect, c.slot, c.generation));
  ++c.ops_in_flight;
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
    Conn& c = sessions_.conn_at(slot);
    if (c.state != ConnState::closing && !c.recv_armed) arm_recv(c);
  }
  starved_.clear();

  for (Peer& p : sessions_.peers()) {
    if (!p.we_dial || p.conn_slot >= 0) continue;
    if (now >= p.next_dial) {
      dial(p, now);
    } else {
      next_timer = std::min(next_timer, p.next_dial);
    }
  }
  if (sessions_.has_suppressed()) {
    if (now >= sessions_.next_unauthenticated_line()) {
      sessions_.report_suppressed(now);
    } else {
      next_timer = std::min(next_timer, sessions_.next_unauthenticated_line());
    }
  }
  next_timer = std::min(next_timer, sessions_.expire_handshakes(now));
  for (const auto& owned : sessions_.conns()) {
    Conn& c = *owned;
    if (c.state != ConnState::closing && c.state != ConnState::connecting && !c.send_in_flight &&
        c.out.has_queued()) {
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
    sessions_.flush_downs();
    // Each batch may pin up to kReapBatch buffers until the next poll(): stop once there are
    // events to return, and leave the rest in the CQ for the next call.
    if (sessions_.events() > 0) break;
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
  FZ_NET_CHECK(slot < sessions_.conns().size());
  Conn& c = sessions_.conn_at(slot);
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
  sessions_.finish_if_done(c);
}

// ---------------------------------------------------------------------------------------------
// Completions.

void UringTransport::on_accept(const io_uring_cqe& cqe) {
  if ((cqe.flags & IORING_CQE_F_MORE) == 0) accept_armed_ = false;  // re-armed next iteration
  if (cqe.res < 0) {
    if (cqe.res != -ECANCELED) {
      // E.g. EMFILE: accepting again at once would fail again, in a loop.
      sessions_.log("fastzab-net: accept on " + endpoint_name(config_.listen_host, port_) +
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
  set_no_delay(fd);
  Conn& c = sessions_.accepted(fd, host_key(*remote), now);
  // A dialer writes its HELLO the moment its connect completes, so it is usually here already:
  // checked now, the connection leaves the unverified pool before a burst of newer ones could
  // evict it. One non-blocking read per connection, of the HELLO's size at most (the rest is the
  // ring's); whatever comes later arrives through the ring as usual.
  std::array<std::byte, wire::kHelloBytes> first;
  const ssize_t n = ::recv(fd, first.data(), first.size(), MSG_DONTWAIT);
  if (n == 0) {
    sessions_.close_conn(c, "closed before its hello");  // a dialer that gave up: nothing to report
    return;
  }
  if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
    sessions_.close_conn(c, std::string("recv failed: ") + std::strerror(errno));
    return;
  }
  if (n > 0) {
    const bool pin = sessions_.on_bytes(
        c, std::span<const std::byte>(first.data(), static_cast<std::size_t>(n)));
    FZ_NET_CHECK(!pin);  // no frame can arrive before the handshake is done
  }
  if (c.state != ConnState::closing) arm_recv(c);
}

void UringTransport::on_connect(Conn& c, int res) {
  if (res < 0) {
    // The peer is down or not listening yet: normal during start-up, so not logged.
    sessions_.close_conn(c, std::string("connect failed: ") + std::strerror(-res));
    return;
  }
  sessions_.connected(c);
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
      pin = sessions_.on_bytes(
          c, std::span<const std::byte>(buffer(id), static_cast<std::size_t>(res)));
    }
    if (pin) {
      pinned_.push_back(id);
    } else {
      recycle(id);
    }
  } else if (c.state != ConnState::closing) {
    if (res == 0) {
      if (c.state == ConnState::established) {
        sessions_.close_conn(c, c.assembler.mid_frame()
                                    ? "the peer closed the connection mid-frame"
                                    : "the peer closed the connection");
      } else {
        // The other side gave up on the handshake; it says why in its own log.
        sessions_.close_conn(c, "the peer closed the connection during the handshake");
      }
    } else if (res == -ENOBUFS) {
      starved_.push_back(c.slot);  // re-armed once buffers are back in the ring
    } else if (res != -ECANCELED) {
      sessions_.close_conn(c, std::string("recv failed: ") + std::strerror(-res));
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
      sessions_.close_conn(c, std::string("send failed: ") + std::strerror(-res));
    }
    return;
  }
  if (!c.out.sent(static_cast<std::size_t>(res))) {
    prep_send(c);  // a short write: the rest goes out with the next submit
    return;
  }
  if (c.out.has_queued()) start_send(c);
}

void UringTransport::cancel_ops(Conn& c) {
  io_uring_sqe* s = sqe();
  io_uring_prep_cancel_fd(s, c.fd, IORING_ASYNC_CANCEL_ALL);
  io_uring_sqe_set_data64(s, pack(OpKind::ignore, 0, 0));
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
