// Reliable, fenced sessions over datagrams: what a datagram transport (DPDK; issue 12) runs per
// peer, since ZAB needs FIFO delivery, reliable within a session, and nothing from an ended one.
// A DatagramSession is one end of one session with one peer and is pure: packets and a
// microsecond clock in, packets and whole frames out; no sockets, mbufs, clocks or threads, so
// tests/net/datagram_session_test.cpp runs it with loss, duplication and reordering injected.
//
// Choices, and why:
//  * Go-back-N, as eRPC does. The receiver keeps nothing out of order: no reorder buffer, and
//    its ack is one cumulative number. A lost packet costs a resend of what followed it, at most
//    one window. Loss on a LAN or a memif link is rare, and then this is simpler and cheaper per
//    packet than selective repeat (Aeron's NAKs), which pays off on lossy, long links.
//    Resends start when the oldest unacknowledged packet has waited `resend_after_us`, or at
//    once after three lone ACKs that repeat the same number (the receiver sends one for every
//    packet it drops as out of order or duplicate).
//  * Fencing by session ids. Each end draws a fresh id for every (re)connection (the handshake
//    exchanges them); every packet names its sender's and its receiver's, and a packet whose
//    pair is not exactly this session's is dropped and counted: nothing of an ended session is
//    ever delivered, whatever the network replays.
//  * Fragmentation. A frame is cut into packets of at most `mtu_payload` bytes, the last one
//    flagged; the receiver, taking packets in order only, appends until the flag.
//  * Acks ride on data. A lone ACK leaves `ack_after_us` after data arrived that no outgoing
//    packet has acknowledged yet, or at once after `ack_every` such packets.
//
// Memory: the send slots are allocated once, at construction; the frame being reassembled grows
// to the largest frame received and is then reused. No allocation per packet or frame after that.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "net/function_ref.h"

namespace fastzab::net {

// The packet header, little-endian (README.md "Datagram sessions" has the table).
inline constexpr std::size_t kDatagramHeaderBytes = 48;
inline constexpr std::uint32_t kDatagramMagic = 0x47445a46;  // "FZDG" as bytes
inline constexpr std::uint8_t kDatagramVersion = 1;

enum class DatagramType : std::uint8_t { data = 1, ack = 2 };

struct DatagramSessionConfig {
  std::size_t mtu_payload = 1400;       // frame bytes per packet (1,448 with the header)
  std::size_t window = 256;             // packets sent and not yet acknowledged, at most
  std::size_t send_slots = 4096;        // packets held to send and resend (at least `window`)
  std::uint64_t resend_after_us = 200;  // go back N when the oldest unacknowledged packet waited this
  std::uint64_t ack_after_us = 20;      // a lone ACK's delay
  std::size_t ack_every = 32;           // a lone ACK at once after this many unacknowledged packets
  // A longer frame is a protocol error. A frame must fit the send slots whole (invalid_reason):
  // 4 MiB here; frames up to the core's 64 MiB (SNAP) need more slots, or a transport that
  // feeds a frame into the slots as they free up.
  std::size_t max_frame_bytes = std::size_t{4} << 20;
};

// The (sender, receiver) session ids of a well-formed packet of this protocol (any mtu), or
// nothing: lets a peer with no live session tell the sender that its session is gone.
std::optional<std::pair<std::uint64_t, std::uint64_t>> datagram_session_ids(
    std::span<const std::byte> packet) noexcept;

// Why a DatagramSessionConfig cannot work, or nullptr.
const char* invalid_reason(const DatagramSessionConfig& config) noexcept;

// A session's send slots, which one session can hand to the next (release_slots()).
struct DatagramSlotStorage {
  std::unique_ptr<std::byte[]> bytes;
  std::size_t size = 0;
};

class DatagramSession {
 public:
  enum class Received : std::uint8_t {
    accepted,       // data taken in order (and maybe a frame delivered), or a valid ACK
    duplicate,      // data already taken: dropped, acknowledged again
    out_of_order,   // data past a gap: dropped (go-back-N), acknowledged again
    stale_session,  // well-formed, but not this session's pair of ids: dropped
    malformed,      // not a packet of this protocol, or one no correct peer sends (an ACK of
                    // data never sent, a frame over max_frame_bytes): the caller should end
                    // the session
  };
  struct Counters {
    std::uint64_t packets_sent = 0;     // data packets transmitted, resends included
    std::uint64_t packets_resent = 0;
    std::uint64_t go_back_n = 0;        // times the sender went back to its oldest unacknowledged packet
    std::uint64_t acks_sent = 0;        // lone ACKs
    std::uint64_t packets_received = 0; // data packets accepted
    std::uint64_t duplicates = 0, out_of_order = 0, stale = 0, malformed = 0;
    std::uint64_t frames_queued = 0, frames_delivered = 0;
  };

  using SlotStorage = DatagramSlotStorage;

  // `config` must be valid (invalid_reason() == nullptr; checked). Session ids are never 0.
  // `storage`: from make_slots(config) or an ended session's release_slots(); empty or of
  // another size: the session makes its own.
  DatagramSession(const DatagramSessionConfig& config, std::uint64_t local_session,
                  std::uint64_t peer_session, SlotStorage storage = {});

  // Send slots for sessions of `config`, zeroed: their pages are mapped now, not on the hot
  // path. Sized for the largest frame (a SNAP) they are tens of MB (17.7 MB for 16 MiB), which
  // took 50-130 ms of the polling thread to make: a DatagramPeer makes them once, before its
  // first session, and hands them from each session to the next.
  static SlotStorage make_slots(const DatagramSessionConfig& config);

  // Gives the slots' bytes away for the next session; this one must not be used after.
  SlotStorage release_slots() noexcept { return std::move(slots_); }

  // Packets a frame of `frame_bytes` takes (an empty frame takes one).
  std::size_t packets_for(std::size_t frame_bytes) const noexcept;
  // Send slots not holding a packet that is queued, or sent and not yet acknowledged.
  std::size_t free_slots() const noexcept;
  // Queues a frame (copied into the slots); false, queuing nothing, when it needs more free slots
  // than there are (poll() and receive() free them as acks arrive) or is over max_frame_bytes.
  bool send(std::span<const std::byte> frame);

  // Transmits every packet due at `now_us`, in order: a go-back-N resend when the oldest
  // unacknowledged packet waited too long, queued packets while the window has room (each
  // carrying the current ack), then a lone ACK if one is due. `transmit` gets each packet's
  // bytes, valid for the call only.
  void poll(std::uint64_t now_us, FunctionRef<void(std::span<const std::byte>)> transmit);
  // Takes one packet from the peer. Whole frames reach `deliver` in order, each exactly once;
  // its bytes are valid for the call only.
  Received receive(std::span<const std::byte> packet, std::uint64_t now_us,
                   FunctionRef<void(std::span<const std::byte>)> deliver);

  // Makes the next poll() send a lone ACK (a keepalive, or a sign of life to a peer that waits
  // for one).
  void request_ack() noexcept { ack_now_ = true; }

  // When poll() next has something to do (now or later), if anything.
  std::optional<std::uint64_t> next_deadline() const noexcept;
  // Everything queued was acknowledged.
  bool drained() const noexcept { return una_ == next_queue_; }

  std::uint64_t local_session() const noexcept { return local_; }
  std::uint64_t peer_session() const noexcept { return peer_; }
  const Counters& counters() const noexcept { return counters_; }

 private:
  std::byte* slot(std::uint64_t seq) noexcept;
  void go_back();
  void take_ack(std::uint64_t ack, DatagramType type);

  DatagramSessionConfig cfg_;
  std::uint64_t local_;
  std::uint64_t peer_;
  // Sender: sequences from 1; [una_, next_send_) sent and unacknowledged, [next_send_,
  // next_queue_) queued; highest_sent_ the largest ever transmitted (resends are below it).
  SlotStorage slots_;  // send_slots * (header + mtu_payload) bytes (make_slots)
  std::vector<std::uint64_t> sent_at_;    // per slot: when its packet last left
  std::uint64_t una_ = 1;
  std::uint64_t next_send_ = 1;
  std::uint64_t next_queue_ = 1;
  std::uint64_t highest_sent_ = 0;
  std::uint32_t repeated_acks_ = 0;
  // Receiver.
  std::uint64_t next_expected_ = 1;
  std::vector<std::byte> assembling_;
  std::size_t unacked_in_ = 0;   // data packets taken since an ack last left
  std::uint64_t ack_due_ = 0;
  bool ack_now_ = false;         // a duplicate or a gap: repeat the ack at once
  std::byte ack_packet_[kDatagramHeaderBytes];
  Counters counters_;
};

}  // namespace fastzab::net
