// The handshake's decisions (README.md, "Handshake") as a pure state machine: one `Handshake` per
// connection, in the dialer or the acceptor role. It takes complete handshake messages and says
// what follows: bytes to send, the session is established with server N, or the connection is
// refused (a hello or MAC we do not accept) or garbage (bytes that are not a hello at all). No
// sockets, clocks or logging: the transport reads the bytes, sends them, counts and logs, and
// keeps what needs its global view (live sessions, the pools of pending handshakes). Nonces come
// from the context's `make_nonce`, so tests can make them deterministic.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "net/wire.h"

namespace fastzab::net {

// What every handshake of one transport shares. Must outlive the handshakes that use it.
struct HandshakeContext {
  std::uint64_t cluster_id = 0;
  std::uint64_t self_id = 0;
  wire::Secret secret{};
  std::vector<std::uint64_t> peers;  // the configured servers other than us
  std::function<wire::Nonce()> make_nonce;  // a fresh nonce per connection
};

// The decision after a message (or at the dialer's start).
struct HandshakeStep {
  enum class Kind : std::uint8_t {
    send,         // send `bytes`, then wait for the next message
    established,  // send `bytes` (may be empty); the session with `peer` is up
    refused,      // close: a hello or MAC we do not accept (`reason`)
    garbage,      // close: the bytes are not a hello at all (`reason`)
  };
  Kind kind = Kind::refused;
  std::span<const unsigned char> bytes;  // points into the Handshake; valid until its next call
  std::uint64_t peer = 0;  // send, established: the other server (acceptor: the checked dialer)
  std::string reason;      // refused, garbage
};

class Handshake {
 public:
  enum class Stage : std::uint8_t {
    idle,              // not started, or over (established, refused or garbage)
    awaiting_reply,    // dialer: HELLO sent, waiting for the acceptor's hello + MAC
    awaiting_hello,    // acceptor: waiting for the dialer's HELLO
    awaiting_confirm,  // acceptor: reply sent, waiting for the dialer's MAC
  };

  // Dialer: returns `send` with the HELLO to server `target`.
  HandshakeStep start_dialer(const HandshakeContext& context, std::uint64_t target);
  // Acceptor: waits for a HELLO.
  void start_acceptor(const HandshakeContext& context);

  Stage stage() const noexcept { return stage_; }
  // The size of the message due now (0 when none is).
  std::size_t message_bytes() const noexcept;
  // `message` is exactly message_bytes() long. After `established`, `refused` or `garbage` the
  // handshake is over (stage idle).
  HandshakeStep on_message(std::span<const unsigned char> message);

  // The two hellos of the exchange so far; after `established`, the session's. Their nonces are
  // fresh for every handshake and authenticated by the MACs, so a datagram transport derives
  // the session's ids from them (datagram_peer.h).
  const wire::HelloBytes& dialer_hello() const noexcept { return dialer_hello_; }
  const wire::HelloBytes& acceptor_hello() const noexcept { return acceptor_hello_; }

 private:
  HandshakeStep acceptor_on_hello(std::span<const unsigned char> message);
  HandshakeStep acceptor_on_confirm(std::span<const unsigned char> message);
  HandshakeStep dialer_on_reply(std::span<const unsigned char> message);
  std::expected<wire::Hello, HandshakeStep> check_hello(std::span<const unsigned char> message,
                                                        wire::HelloBytes& into,
                                                        wire::HelloKind want,
                                                        const char* wrong_kind) const;
  HandshakeStep end(HandshakeStep step);
  wire::HelloBytes hello_to(std::uint64_t target, wire::HelloKind kind) const;

  const HandshakeContext* context_ = nullptr;
  Stage stage_ = Stage::idle;
  std::uint64_t peer_ = 0;  // dialer: the target; acceptor: the dialer, once its HELLO checks out
  wire::HelloBytes dialer_hello_{};
  wire::HelloBytes acceptor_hello_{};
  std::array<unsigned char, wire::kReplyBytes> out_{};  // the message to send
};

}  // namespace fastzab::net
