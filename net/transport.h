// The transport: opaque frames between numbered servers over authenticated sessions. The runtime
// is written against this interface; open() returns the io_uring TCP implementation (the DPDK
// one is a later issue). README.md has the wire format and the connection rule.
//
// Ownership: a Transport is owned by one thread, the one that calls poll() (open() may run on
// another); every member except wake() must be called from that thread, and it should be
// destroyed there too (the destructor cancels and reaps the ring's operations, which with
// DEFER_TASKRUN only the polling thread can do).
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "net/errc.h"
#include "net/function_ref.h"
#include "net/poll_mode.h"

namespace fastzab::net {


struct PeerAddress {
  std::uint64_t id = 0;
  std::string host;
  std::uint16_t port = 0;
};

struct TransportConfig {
  std::uint64_t self_id = 0;
  std::uint64_t cluster_id = 0;
  std::array<unsigned char, 32> secret{};  // the cluster secret: the HMAC key of the handshake
  std::string listen_host = "127.0.0.1";
  std::uint16_t listen_port = 0;            // 0: an ephemeral port (tests); listen_port() says which
  std::vector<PeerAddress> peers;           // every other server, never self
  std::uint32_t max_frame_bytes = 16u << 20;
  // A peer that does not read: once this many bytes wait to be sent to it, its session is closed
  // rather than letting the queue grow without bound.
  std::uint64_t max_queued_bytes = std::uint64_t{256} << 20;
  std::chrono::milliseconds reconnect_min{10};
  std::chrono::milliseconds reconnect_max{1000};
  std::chrono::milliseconds handshake_timeout{2000};  // from connect/accept to session_up
  // An accepted connection must have sent its whole HELLO this long after the accept (a dialer
  // writes it the moment its connect completes), or it is refused; capped at handshake_timeout.
  std::chrono::milliseconds hello_timeout{500};
  PollMode poll_mode = PollMode::blocking;
  std::chrono::microseconds adaptive_spin{50};       // adaptive: spin this long before blocking
  // Provided receive buffers: count (a power of two) x bytes.
  std::uint32_t recv_buffer_count = 256;
  std::uint32_t recv_buffer_bytes = 16u << 10;
  // Where the one-line reports of refused connections go; empty: stderr. Called on the polling
  // thread, inside poll(). Lines about inbound connections that have not authenticated come at
  // most once a second, with the number left out since the previous one.
  std::function<void(std::string_view line)> log_line;
};

using SessionId = std::uint64_t;  // fresh for every connection, never reused in this process
inline constexpr SessionId kNoSession = 0;

struct Event {
  enum class Kind : std::uint8_t { session_up, session_down, frame };
  Kind kind = Kind::frame;
  std::uint64_t peer = 0;
  SessionId session = kNoSession;
  std::span<const std::byte> frame;  // Kind::frame: valid until the next poll()
  std::string_view reason;           // Kind::session_down: why; valid until the next poll()
};

struct Counters {
  std::uint64_t frames_sent = 0;     // accepted by send()
  std::uint64_t frames_received = 0; // delivered by poll()
  std::uint64_t bytes_sent = 0;      // frame bytes accepted by send() (headers not counted)
  std::uint64_t bytes_received = 0;  // frame bytes delivered (headers not counted)
  std::uint64_t sessions_up = 0;
  std::uint64_t sessions_down = 0;
  std::uint64_t handshakes_refused = 0;           // a peer failed a check, or timed out
  std::uint64_t frames_oversized = 0;             // a header claimed more than max_frame_bytes
  std::uint64_t connections_dropped_garbage = 0;  // bytes that are not the protocol
  std::uint64_t reconnect_attempts = 0;           // dials after a peer's first one
  // Accepted connections closed, before they authenticated, to make room for a newer one (the
  // bounds on pending handshakes in README.md, "Unauthenticated connections"). Not in
  // handshakes_refused.
  std::uint64_t handshakes_evicted = 0;
  // Datagram transports: answers to packets nobody may ask for at will (a REPLY to a new HELLO,
  // a CLOSE to data of no live session) left out by their rate limit (DatagramPeerConfig).
  std::uint64_t answers_throttled = 0;
  // Lines about refused, evicted or garbage inbound connections left out by the rate limit (one
  // line per second at most); each such connection is still counted in its own counter above.
  std::uint64_t log_lines_suppressed = 0;
};

using EventSink = FunctionRef<void(const Event&)>;

class Transport {
 public:
  // Binds and listens, resolves the peers, sets up the ring. Errors name host:port. Fails (never
  // falls back) when io_uring or a feature it needs is unavailable, saying why.
  static Result<std::unique_ptr<Transport>> open(TransportConfig config);

  virtual ~Transport() = default;
  Transport() = default;
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  virtual std::uint16_t listen_port() const = 0;

  // Queues one frame to the peer's live session; it leaves at the next poll(). Returns false, and
  // drops the frame, when `session` is not the peer's live session (nothing from a closed session
  // may cross), when the frame is empty or larger than max_frame_bytes, or when the peer's queue
  // passed max_queued_bytes (the session is then closed).
  virtual bool send(std::uint64_t peer, SessionId session, std::span<const std::byte> frame) = 0;

  // Closes the session if it is the live one (its session_down comes from the next poll()); the
  // larger id of the pair dials again.
  virtual void close_session(std::uint64_t peer, SessionId session) = 0;

  // Flushes queued sends (one send per peer), submits once per iteration, reaps completions and
  // calls on_event for each event. Waits at most `timeout`, as poll_mode says, while nothing is
  // ready; returns as soon as an iteration produced events, or after wake(). Returns the number
  // of events.
  virtual Result<std::size_t> poll(std::chrono::microseconds timeout, EventSink on_event) = 0;

  // Thread-safe: makes a blocked (or the next) poll() return early.
  virtual void wake() = 0;
  // The eventfd behind wake(): another io_uring can post its completions to it
  // (io_uring_register_eventfd), so that a poll() waiting here wakes for them too. Owned by the
  // transport; do not read or close it.
  virtual int wake_fd() const noexcept = 0;

  virtual const Counters& counters() const = 0;

  // One line for logs and debugging: the ring set-up actually in use (and what fell back).
  virtual std::string_view describe() const = 0;
};

}  // namespace fastzab::net
