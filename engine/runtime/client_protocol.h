// The client port's protocol (README.md, "Client port"). A connection is one of two kinds, told
// apart by its first four bytes:
//
//  * ZooKeeper's four-letter words `ruok`, `srvr`, `mntr`, and fastzab's `trce` (the commit
//    trace, engine/cmd/README.md): the server answers in plain text and closes, so
//    `echo mntr | nc host port` works as with ZooKeeper.
//  * Otherwise a stream of frames, both ways: u32 little-endian body length (1..kMaxBodyBytes),
//    then the body: u8 type, u64 little-endian request id, then the type's fields:
//
//      type  name       fields after the id
//      0x01  write      value bytes (the rest of the body)
//      0x02  status     none
//      0x03  transfer   u64 target server id (0: the server's choice): hand leadership over
//                       (group 0; the server must be its established leader)
//      0x04  write_once u64 client id (not 0), u64 sequence, then the value bytes (the rest):
//                       a write named for exactly-once retries (fastzab::WriteId; ids are
//                       per client id, whichever connection carries them)
//      0x81  write_ok   u64 zxid the write committed at
//      0x83  transfer_ok u64 the server leadership was handed to (it leads once established)
//      0x82  status_ok  JSON text (the rest): id, role, phase, leader, epoch, last_zxid,
//                       committed_zxid (role: NodeStatus::mode(), "leader" only in broadcast)
//      0xE1  error      u8 error code, then UTF-8 text (the rest)
//
//    Requests may be pipelined; each reply carries its request's id. Four bytes that decode as a
//    length can never be a four-letter word: those are above kMaxSkippedBodyBytes. A write or
//    write_once whose value passes kMaxValueBytes (its length up to kMaxSkippedBodyBytes) is
//    answered too_large and its bytes skipped; any other length above kMaxBodyBytes is
//    bad_request.
//
// Every decoder here is bounds-checked: bytes from the network are untrusted.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "engine/core/write_outcome.h"

namespace fastzab::runtime::client {

enum class Type : std::uint8_t {
  write = 0x01,
  status = 0x02,
  transfer = 0x03,
  write_once = 0x04,
  write_ok = 0x81,
  status_ok = 0x82,
  transfer_ok = 0x83,
  error = 0xE1,
};

// A write's error code is its WriteOutcome (engine/core/write_outcome.h), value for value: one
// vocabulary from the core to the wire. The protocol adds codes of its own (3, 4, 6).
enum class ErrorCode : std::uint8_t {
  // no established leader right now: retry later
  no_leader = static_cast<std::uint8_t>(WriteOutcome::no_leader),
  // the value passes the largest entry (the connection stays open)
  too_large = static_cast<std::uint8_t>(WriteOutcome::too_large),
  bad_request = 3,   // an unknown type or malformed body (the connection is closed after it)
  unavailable = 4,   // nothing was proposed: the queue to the core is full, or a transfer
                     // request is already waiting: retry
  // the leader refused the write (e.g. zxid space exhausted): retry
  rejected = static_cast<std::uint8_t>(WriteOutcome::rejected),
  transfer_refused = 6,  // a transfer did not happen; the text says why (not_leader, aborted, ...)
  // the write was proposed, then leadership, the session to the leader or the server itself
  // was lost before it committed: it may have committed. Retry with write_once and the same id
  // to learn its zxid (applied at most once); a plain write has no safe retry.
  unknown_outcome = static_cast<std::uint8_t>(WriteOutcome::unknown_outcome),
  // a write_once whose sequence is older than its client id's last: refused, not applied
  stale_sequence = static_cast<std::uint8_t>(WriteOutcome::stale_sequence),
};
static_assert(static_cast<int>(ErrorCode::no_leader) == 1 && static_cast<int>(ErrorCode::too_large) == 2 &&
                  static_cast<int>(ErrorCode::rejected) == 5 &&
                  static_cast<int>(ErrorCode::unknown_outcome) == 7 &&
                  static_cast<int>(ErrorCode::stale_sequence) == 8,
              "the wire's error codes are fixed (README.md, client protocol)");
// The code a failed write is answered with. `stopped` (the server stopped with the write in
// flight) goes out as unknown_outcome: it may have committed.
constexpr ErrorCode error_code(WriteOutcome w) noexcept {
  return w == WriteOutcome::stopped ? ErrorCode::unknown_outcome : static_cast<ErrorCode>(w);
}
inline constexpr std::uint8_t kMaxErrorCode = 8;
const char* to_string(ErrorCode c) noexcept;

inline constexpr std::uint32_t kMaxValueBytes = 1u << 20;
inline constexpr std::uint32_t kHeaderBytes = 1 + 8;  // type + request id
// The 16: write_once's client id and sequence.
inline constexpr std::uint32_t kMaxBodyBytes = kHeaderBytes + kMaxValueBytes + 16;
static_assert(kMaxBodyBytes < 0x206b6f72u, "a length must never read as a four-letter word");
// A write announcing a body up to this is answered too_large and skipped; a longer length is
// not a plausible value but garbage (or a four-letter word): bad_request at once.
inline constexpr std::uint32_t kMaxSkippedBodyBytes = 256u << 20;
static_assert(kMaxSkippedBodyBytes < 0x206b6f72u, "a four-letter word must stay bad");

struct Message {
  Type type = Type::write;
  std::uint64_t id = 0;
  std::uint64_t zxid = 0;                  // write_ok
  std::uint64_t server = 0;                // transfer, transfer_ok
  std::uint64_t client = 0;                // write_once (never 0)
  std::uint64_t seq = 0;                   // write_once
  ErrorCode code = ErrorCode::bad_request; // error
  std::span<const std::byte> body;  // write, write_once: value; status_ok: JSON; error: text
};

// Appends one frame (length prefix included) to `out`.
void encode(const Message& m, std::vector<std::byte>& out);

enum class Decoded : std::uint8_t {
  message,    // `m` and `consumed` are set
  need_more,  // the input holds less than one frame
  bad,        // not the protocol: drop the connection
  // A write or write_once whose value passes kMaxValueBytes: `m.type` and `m.id` are set (not
  // the write_once's ids) and `consumed` is the whole
  // frame's length, which may pass the input's: the caller answers too_large and skips that
  // many bytes as they arrive, without holding them.
  too_large,
};
// Decodes the first frame of `in`. `m.body` views into `in`.
Decoded decode(std::span<const std::byte> in, Message& m, std::size_t& consumed);

// The four-letter word the connection starts with, or empty if `first4` is not one we answer.
std::string_view four_letter_word(std::span<const std::byte> first4) noexcept;

}  // namespace fastzab::runtime::client
