// One peer of a datagram transport (issue 12): the authenticated handshake of the TCP transport
// (net::Handshake: HELLO, REPLY, CONFIRM with their HMACs) carried in control packets and resent
// on a timer, then a DatagramSession whose two ids come from the handshake's fresh nonces, with
// keepalives, a silence timeout and an explicit CLOSE. Pure, like its parts: packets and a
// microsecond clock in; packets, session events and frames out (tests/net/datagram_peer_test.cpp).
//
// The rules, as on TCP (README.md "Connection rule"): the larger id of a pair dials, the other
// answers. A HELLO never disturbs a live session: only a handshake completed with a valid
// CONFIRM replaces it (a restarted peer), and then the old session ends first. Nothing of an
// ended session is delivered: its packets carry ids the new session does not have.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "net/datagram_session.h"
#include "net/function_ref.h"
#include "net/handshake.h"

namespace fastzab::net {

// Control packets (README.md "Datagram sessions"): magic "FZDH", version, kind, 2 reserved
// bytes, then the handshake message (HELLO 64, REPLY 96, CONFIRM 32 bytes) or, for CLOSE, the
// sender's and the receiver's session ids.
inline constexpr std::uint32_t kControlMagic = 0x48445a46;  // "FZDH" as bytes
inline constexpr std::size_t kControlHeaderBytes = 8;
enum class ControlKind : std::uint8_t { hello = 1, reply = 2, confirm = 3, close = 4 };

struct DatagramPeerConfig {
  DatagramSessionConfig session;
  std::uint64_t handshake_resend_us = 20'000;  // HELLO or CONFIRM again after this long unanswered
  std::uint64_t keepalive_us = 50'000;         // a lone ACK after this long without sending
  std::uint64_t silence_timeout_us = 500'000;  // nothing valid heard for this long: the session ends
  // Answers nobody may ask for at will, at most one per this interval each: a REPLY to a new
  // HELLO (an HMAC and a fresh nonce) and a CLOSE to data of no live session. More in the
  // interval are dropped and counted (answers_throttled): a flood of HELLOs or stale packets
  // costs this end at most that. A correct dialer resends every handshake_resend_us, far apart.
  std::uint64_t answer_interval_us = 1'000;
};

struct PeerEvent {
  enum class Kind : std::uint8_t { session_up, session_down, frame };
  Kind kind = Kind::frame;
  std::uint64_t session = 0;         // this end's id of the session
  std::span<const std::byte> frame;  // frame: valid for the call only
  std::string_view reason;           // session_down: why
};

class DatagramPeer {
 public:
  using Transmit = FunctionRef<void(std::span<const std::byte>)>;
  using Events = FunctionRef<void(const PeerEvent&)>;

  struct Counters {
    std::uint64_t sessions_up = 0, sessions_down = 0;
    std::uint64_t handshakes_refused = 0;  // a hello or MAC not accepted
    std::uint64_t control_garbage = 0;     // control packets that are not the protocol
    std::uint64_t hellos_sent = 0, confirms_sent = 0;
    std::uint64_t stale = 0;               // data packets of no live session
    std::uint64_t answers_throttled = 0;   // REPLYs and CLOSEs not sent (answer_interval_us)
    std::uint64_t slot_storages_made = 0;  // send slots made: once, at construction
  };

  // `context` must outlive the peer. `dialer`: this end starts the handshakes.
  DatagramPeer(const HandshakeContext& context, std::uint64_t peer_id, bool dialer,
               const DatagramPeerConfig& config);

  // Queues a frame on the live session `session`; false when it is not the live one or the
  // session's slots cannot take the frame now.
  bool send(std::uint64_t session, std::span<const std::byte> frame);
  // Ends the live session `session` (a CLOSE to the peer, then session_down); the dialer starts
  // a new handshake at the next poll().
  void close(std::uint64_t session, std::uint64_t now_us, Transmit transmit, Events events);
  // Timers: resends, keepalives, the silence timeout, and the session's own packets.
  void poll(std::uint64_t now_us, Transmit transmit, Events events);
  // One packet from this peer (control or data).
  void receive(std::span<const std::byte> packet, std::uint64_t now_us, Transmit transmit,
               Events events);

  std::uint64_t session() const noexcept { return session_ ? session_->local_session() : 0; }
  DatagramSession* live() noexcept { return session_.get(); }
  std::uint64_t peer_id() const noexcept { return peer_id_; }
  const Counters& counters() const noexcept { return counters_; }

 private:
  void start_dialing(std::uint64_t now_us, Transmit transmit);
  void send_control(ControlKind kind, std::span<const unsigned char> body, Transmit transmit);
  void establish(std::uint64_t now_us, Events events);
  void end_session(std::string_view reason, Events events);
  // Whether an answer of the kind `last_us` times may go now (and then it is the last one).
  bool may_answer(std::optional<std::uint64_t>& last_us, std::uint64_t now_us);
  void on_control(ControlKind kind, std::span<const unsigned char> body, std::uint64_t now_us,
                  Transmit transmit, Events events);

  const HandshakeContext* context_;
  std::uint64_t peer_id_;
  bool dialer_;
  DatagramPeerConfig cfg_;
  Handshake handshake_;
  std::unique_ptr<DatagramSession> session_;
  // A session ended from inside its own delivery (the receiver of a frame closed the peer while
  // reading it): it and the frame's bytes live until the delivery returns (receive()).
  std::unique_ptr<DatagramSession> ended_in_delivery_;
  bool delivering_ = false;
  // The next session's send slots (tens of MB: made once, handed from session to session).
  DatagramSession::SlotStorage spare_slots_;
  // The handshake message to resend (HELLO awaiting REPLY; CONFIRM until the acceptor answers).
  std::vector<std::byte> resend_;
  std::uint64_t resend_at_ = 0;
  bool confirming_ = false;       // dialer: CONFIRM sent, nothing heard on the session yet
  std::vector<std::byte> reply_;  // acceptor: the REPLY to repeat for a repeated HELLO
  std::vector<unsigned char> last_confirm_;  // acceptor: the CONFIRM that made the live session
  std::uint64_t last_heard_ = 0;
  std::uint64_t last_sent_ = 0;
  std::optional<std::uint64_t> last_reply_us_, last_close_us_;  // answer_interval_us
  std::vector<std::byte> packet_;  // control packet scratch
  Counters counters_;
};

}  // namespace fastzab::net
