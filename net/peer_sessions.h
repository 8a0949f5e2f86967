// The sessions behind the io_uring transport (uring_transport.cpp): per-peer and per-connection
// bookkeeping, session ids, send queues, dial back-off, the bounds on inbound handshakes, and the
// events and log lines they produce. No ring and no socket call here: the loop that carries the
// connections does the I/O and reaches this side through PeerSessions; what a closing connection
// needs from the loop goes through ConnIo. So this side can be driven without sockets.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "net/frame_assembler.h"
#include "net/function_ref.h"
#include "net/handshake.h"
#include "net/sockets.h"
#include "net/transport.h"
#include "net/wire.h"

namespace fastzab::net {

using Clock = std::chrono::steady_clock;

// Unique in the process, across transports, so a stale id can never match; never 0 (kNoSession).
SessionId next_session_id() noexcept;

// Uniform in [0, upper), upper >= 1: the jitter source, injected so tests can pin it.
using UniformRandom = std::function<std::uint32_t(std::uint32_t upper)>;

// The wait before a dialer dials again: doubles from `min` to `max` per failed dial, jittered to
// [b/2, b] so that servers restarted together do not dial in lockstep; a session that came up
// resets it.
class DialBackoff {
 public:
  DialBackoff(std::chrono::milliseconds min, std::chrono::milliseconds max) noexcept
      : min_(min), max_(max), current_(min) {}

  // The delay before the next dial; the back-off then doubles (up to max).
  std::chrono::microseconds next_delay(const UniformRandom& uniform);
  void reset() noexcept { current_ = min_; }
  std::chrono::milliseconds current() const noexcept { return current_; }

 private:
  std::chrono::milliseconds min_;
  std::chrono::milliseconds max_;
  std::chrono::milliseconds current_;
};

// One connection's outgoing bytes, double-buffered: the batch in flight (handed to the kernel,
// which may still read it) and what was queued behind it. Both keep their capacity, so steady
// traffic allocates nothing.
class SendQueue {
 public:
  // Bytes waiting: queued, plus the part of the batch in flight the kernel has not taken.
  std::uint64_t waiting() const noexcept {
    return queued_.size() + (sending_.size() - send_offset_);
  }
  bool has_queued() const noexcept { return !queued_.empty(); }
  void append(std::span<const std::byte> bytes);
  void append(std::span<const unsigned char> bytes);
  void append_frame(std::span<const std::byte> frame);  // with its length header

  // Moves everything queued into the batch (the previous batch must be done).
  void start_batch();
  // The part of the batch not yet sent.
  std::span<const std::byte> unsent() const noexcept {
    return std::span<const std::byte>(sending_).subspan(send_offset_);
  }
  // The kernel took `bytes` of the batch; true when the batch is done (and cleared).
  bool sent(std::size_t bytes);
  // The session closed: nothing queued may cross (the batch in flight is the kernel's already).
  void drop_queued() noexcept { queued_.clear(); }
  // The connection is gone: empties both, giving back capacity a burst left behind.
  void release() noexcept;

 private:
  std::vector<std::byte> queued_;   // frames (and handshake messages) not yet handed to the kernel
  std::vector<std::byte> sending_;  // the batch of the send in flight
  std::size_t send_offset_ = 0;
};

inline constexpr std::size_t kNoPeer = std::numeric_limits<std::size_t>::max();

enum class Role : std::uint8_t { dialer, acceptor };
enum class ConnState : std::uint8_t {
  connecting,        // dialer: connect in flight
  awaiting_reply,    // dialer: HELLO sent, waiting for the acceptor's hello + MAC
  awaiting_hello,    // acceptor: waiting for the dialer's HELLO
  awaiting_confirm,  // acceptor: reply sent, waiting for the dialer's MAC
  established,       // a live session: frames flow
  closing,           // detached; waiting for its operations to complete
};

inline bool in_handshake(ConnState s) {
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
  ConnState state = ConnState::closing;  // changed only by PeerSessions::set_state()
  std::size_t peer_index = kNoPeer;  // dialer: from the start; acceptor: once the HELLO checks out
  SessionId session = kNoSession;
  Clock::time_point deadline{};      // for the handshake (acceptor: for the HELLO first)
  Clock::time_point accepted_at{};   // acceptor: its age, for choosing whom to evict
  HostKey source{};                  // acceptor: the remote host, for the per-source bound
  std::uint32_t ops_in_flight = 0;   // kept by the loop
  bool recv_armed = false;
  bool send_in_flight = false;
  std::array<unsigned char, wire::kReplyBytes> handshake_in{};
  std::size_t handshake_have = 0;
  Handshake handshake;  // the decisions; handshake_in assembles its messages
  FrameAssembler assembler;
  SendQueue out;
};

struct Peer {
  Peer(std::uint64_t peer_id, std::string peer_name, bool dials, DialBackoff dial_backoff)
      : id(peer_id), name(std::move(peer_name)), we_dial(dials), backoff(dial_backoff) {}

  std::uint64_t id = 0;
  std::string name;  // host:port
  SocketAddress address;
  bool we_dial = false;  // the larger id dials
  std::int64_t conn_slot = -1;  // dialer: the connection in any state; acceptor: the live one
  SessionId session = kNoSession;
  DialBackoff backoff;
  Clock::time_point next_dial{};
  bool dialed_before = false;
};

// What a closing connection needs from the loop that carries it.
class ConnIo {
 public:
  // The connection left its session with operations in flight: stop them.
  virtual void cancel_ops(Conn& c) = 0;
  // The connection is closed and nothing of the kernel's refers to it: close the socket.
  virtual void close_socket(int fd) = 0;
  // "host:port" of an accepted connection's remote end, for log lines.
  virtual std::string remote_name(int fd) = 0;

 protected:
  ~ConnIo() = default;
};

class PeerSessions {
 public:
  // `config` must outlive this (the transport owns both).
  PeerSessions(const TransportConfig& config, ConnIo& io, UniformRandom uniform,
               std::function<wire::Nonce()> make_nonce);

  // The peers, in config order; a dialer's address is resolved by the caller.
  Peer& add_peer(const PeerAddress& address);
  std::span<Peer> peers() noexcept { return peers_; }
  Peer* find_peer(std::uint64_t id);
  // The peer whose live session `session` is, or nullptr.
  Peer* live(std::uint64_t peer, SessionId session);

  // Transport::send() and close_session().
  bool send(std::uint64_t peer, SessionId session, std::span<const std::byte> frame);
  void close_session(std::uint64_t peer, SessionId session);

  // Connections, by slot (the loop's operations carry it).
  Conn& conn_at(std::uint32_t slot) { return *conns_[slot]; }
  Conn* conn_of(std::int64_t slot) {
    return slot < 0 ? nullptr : conns_[static_cast<std::size_t>(slot)].get();
  }
  const std::vector<std::unique_ptr<Conn>>& conns() const noexcept { return conns_; }

  // A dialer's next dial comes after its back-off: its dial failed or its connection closed.
  void schedule_redial(Peer& p, Clock::time_point now);
  // A dial to `p` got socket `fd`: its connection, connecting.
  Conn& dialing(Peer& p, int fd, Clock::time_point now);
  // The connect completed: the handshake message to send first is queued.
  void connected(Conn& c);
  // An inbound connection from `source`: its connection, awaiting the HELLO (room made first).
  Conn& accepted(int fd, const HostKey& source, Clock::time_point now);
  // Bytes received on `c`: the handshake's messages, then frames. Returns true when a delivered
  // frame points into `bytes` (the receive buffer must stay untouched until the next poll()).
  bool on_bytes(Conn& c, std::span<const std::byte> bytes);

  // Refuses handshakes past their deadline; returns the earliest deadline still pending (max()
  // when none).
  Clock::time_point expire_handshakes(Clock::time_point now);

  // Closing.
  void close_conn(Conn& c, std::string reason);
  void finish_if_done(Conn& c);

  // Events: between begin_poll() and end_poll() they go to `sink`; session_downs that happen
  // outside wait for the next poll().
  void begin_poll(const EventSink& sink);
  void end_poll();
  void flush_downs();
  std::size_t events() const noexcept { return events_; }

  void log(const std::string& line);
  // Lines about unauthenticated connections were left out: report_suppressed() says how many
  // once next_unauthenticated_line() has come, if no other such line said it first.
  bool has_suppressed() const noexcept { return unauthenticated_suppressed_ > 0; }
  Clock::time_point next_unauthenticated_line() const noexcept {
    return next_unauthenticated_line_;
  }
  void report_suppressed(Clock::time_point now);

  SpillPool& spill_pool() noexcept { return spill_pool_; }
  Counters& counters() noexcept { return counters_; }
  const Counters& counters() const noexcept { return counters_; }

 private:
  struct PendingDown {
    std::uint64_t peer;
    SessionId session;
    std::string reason;
  };

  Conn& new_conn(int fd, Role role);
  bool deliver_frames(Conn& c, std::span<const std::byte> bytes);
  void on_handshake_message(Conn& c, std::size_t bytes);
  void acceptor_hello_checked(Conn& c, const HandshakeStep& reply);
  void establish(Conn& c);

  // The bounds on inbound handshakes.
  void set_state(Conn& c, ConnState state);
  std::vector<std::uint32_t>* pool_of(ConnState state);
  void make_room_for(const HostKey& source, Clock::time_point now);
  void evict(Conn& c, Clock::time_point now, const char* why);

  void refuse(Conn& c, const std::string& reason);
  void drop_garbage(Conn& c, const std::string& reason);
  void free_conn(Conn& c);
  std::string conn_name(const Conn& c) const;

  void emit(const Event& e);
  void log_unauthenticated(FunctionRef<std::string()> line);

  const TransportConfig& config_;
  ConnIo& io_;
  UniformRandom uniform_;
  HandshakeContext handshake_context_;

  // Before conns_: members are destroyed in reverse order, and a Conn's frame assembler gives
  // a spilled frame's buffer back to this pool when it is destroyed (a session that ends in
  // the middle of a frame larger than a receive buffer). Declared after them, the pool was
  // gone first: a use after free at shutdown (ASan, node_test's 1 MB values).
  SpillPool spill_pool_;
  std::vector<std::unique_ptr<Conn>> conns_;
  std::vector<std::uint32_t> free_slots_;
  std::vector<std::uint32_t> unverified_;  // slots of inbound conns in awaiting_hello
  std::vector<std::uint32_t> verified_;    // slots of inbound conns in awaiting_confirm
  Clock::time_point next_unauthenticated_line_{};  // no such line before then
  Clock::time_point last_unauthenticated_line_{};
  std::uint64_t unauthenticated_suppressed_ = 0;  // since the last such line
  std::vector<Peer> peers_;
  Counters counters_;

  // Valid during poll().
  const EventSink* sink_ = nullptr;
  std::size_t events_ = 0;
  std::vector<PendingDown> pending_downs_;
  std::deque<std::string> reasons_;  // backing for Event::reason until the next poll()
};

}  // namespace fastzab::net
