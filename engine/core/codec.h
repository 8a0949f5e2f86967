// Wire codec for election notifications and quorum packets (reference §2.10 and §4.2).
//
// A frame is one byte of FrameKind followed by the body. The transport adds its own length prefix.
// All integers are big-endian two's complement, as on ZooKeeper's wires. Bodies:
//   notification: ZooKeeper's version-2 notification: int32 state, int64 leader, int64 zxid,
//                 int64 round, int64 peerEpoch, int32 version, int32 config length, config bytes.
//                 Legacy 28- and 40-byte forms are decoded as ZooKeeper does (version 0).
//   quorum:       ZooKeeper's jute QuorumPacket: int32 type, int64 zxid, int32 data length
//                 (-1 = null), data, int32 authinfo count (-1 = null; fastzab accepts only -1 or 0).
// Decoding never reads out of bounds and never aborts: every malformed input is a DecodeError.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "constants.h"
#include "expected.h"
#include "types.h"

namespace fastzab::core {

using Bytes = std::span<const std::byte>;
using ByteBuffer = std::vector<std::byte>;

enum class FrameKind : std::uint8_t { notification = 1, quorum = 2 };

enum class PacketType : std::int32_t {
  request = 1,
  proposal = 2,
  ack = 3,
  commit = 4,
  ping = 5,
  revalidate = 6,
  sync = 7,
  inform = 8,
  commit_and_activate = 9,
  newleader = 10,
  followerinfo = 11,
  uptodate = 12,
  diff = 13,
  trunc = 14,
  snap = 15,
  observerinfo = 16,
  leaderinfo = 17,
  ackepoch = 18,
  inform_and_activate = 19,
  // fastzab extension (ZooKeeper has no leadership transfer): the leader, which has stopped
  // proposing, names the follower that holds its whole history as the next leader; zxid = the
  // leader's last zxid, data = int64 target server id.
  transfer = 101,
  // fastzab extension: the leader answers the writes a learner forwarded in REQUEST packets
  // (ZooKeeper's followers match COMMITs to their sessions' requests instead, by the txn
  // header's session id and cxid, which fastzab entries do not carry). zxid = 0, data = a batch
  // of entries of kReplyEntryBytes: int64 the learner's tag, int64 zxid, int32 code
  // (kReplyCommitted at zxid, or 1 + RejectReason: refused, nothing proposed).
  reply = 102,
};
const char* to_string(PacketType t) noexcept;

enum class DecodeError : std::uint8_t {
  empty_frame,
  unknown_frame_kind,
  frame_too_large,
  truncated,           // a field runs past the end of the input
  trailing_bytes,      // bytes left after the last field
  bad_peer_state,      // notification state outside 0..3
  bad_config_length,   // negative or larger than what remains / kMaxConfigBytes
  unknown_packet_type,
  bad_data_length,     // negative (other than -1) or larger than what remains
  bad_auth_count,      // authinfo other than null or empty
  bad_batch_count,     // zero, negative or above kMaxBatchEntries
  bad_entry_length,    // negative or above kMaxEntryBytes or past the end
  bad_payload_size,    // a typed payload of the wrong size
  bad_entry_header,    // an entry or snapshot without a valid fastzab header
};
const char* to_string(DecodeError e) noexcept;

struct Notification {
  PeerState state = PeerState::looking;
  ServerId leader = kNoServer;
  Zxid zxid = kNoZxid;
  std::int64_t round = 0;
  Epoch peer_epoch = kNoEpoch;
  std::int32_t version = 2;
  Bytes config;  // view into the decoded frame; empty when encoding from fastzab
};

struct QuorumPacket {
  PacketType type = PacketType::ping;
  Zxid zxid = kNoZxid;
  Bytes data;  // view into the decoded frame
};

struct Frame {
  FrameKind kind = FrameKind::notification;
  Notification notification;  // valid when kind == notification
  QuorumPacket packet;        // valid when kind == quorum
};

// FOLLOWERINFO / OBSERVERINFO payload (jute LearnerInfo: int64 sid, int32 version, int64 config).
inline constexpr std::size_t kLearnerInfoBytes = 20;
struct LearnerInfo {
  ServerId server;
  std::int32_t protocol_version = 0;
  std::int64_t config_version = 0;
};

// ACKEPOCH payload. fastzab sends int32 currentEpoch (-1 = none), int64 applied zxid and int32
// answered epoch (16 bytes); ZooKeeper sends only the int32 (4 bytes), decoded with applied =
// kNoZxid and answered_epoch = -1. The answered epoch names the LEADERINFO this ACKEPOCH answers:
// one session carries every role a pair of servers plays, so an ACKEPOCH held back for
// durability can arrive after its sender gave that leader up and the leader moved to a later
// epoch; the leader must not read it as a promise for the later one. ZooKeeper needs no such
// field because each attempt to follow opens a new connection.
struct AckEpochInfo {
  std::int32_t current_epoch;
  Zxid applied;
  std::int32_t answered_epoch = -1;  // -1: not named (ZooKeeper's form)
};

// ---- encoding: each call appends exactly one frame to `out` ----
void encode_notification(const Notification& n, ByteBuffer& out);
void encode_packet(PacketType type, Zxid zxid, Bytes data, ByteBuffer& out);
void encode_learner_info(PacketType type, Zxid zxid, const LearnerInfo& info, ByteBuffer& out);
// LEADERINFO carries an int32 protocol version; ACKEPOCH an int32 currentEpoch (-1 = none).
void encode_int32_packet(PacketType type, Zxid zxid, std::int32_t value, ByteBuffer& out);
// ACKEPOCH(last_logged) with the 12-byte fastzab payload.
void encode_ackepoch(Zxid last_logged, const AckEpochInfo& info, ByteBuffer& out);
// TRANSFER(last zxid) naming the next leader.
void encode_transfer(Zxid last, ServerId target, ByteBuffer& out);

// A log entry (in PROPOSAL and INFORM batches, append outputs and the log) is a header, then
// the client's value (at most kMaxEntryBytes). The header says who wrote it, so that a retried
// write is recognized and never applied twice (exactly-once writes): byte kAnonymousEntry; or
// byte kIdentifiedEntry, int64 client id, int64 sequence. Any other first byte is
// bad_entry_header (a record written before entries had headers, or garbage). Deliver outputs
// and snapshots carry values only: the application never sees a header.
inline constexpr std::byte kAnonymousEntry{0xf0};
inline constexpr std::byte kIdentifiedEntry{0xf1};
inline constexpr std::size_t kMaxEntryHeaderBytes = 1 + 16;
inline constexpr std::size_t kMaxLoggedEntryBytes = kMaxEntryBytes + kMaxEntryHeaderBytes;
// Who wrote an entry: client 0 is anonymous (no retry protection); otherwise each client numbers
// its writes with increasing sequences, and a retry reuses the same pair.
struct WriteId {
  std::uint64_t client = 0;
  std::uint64_t seq = 0;
  friend constexpr bool operator==(const WriteId&, const WriteId&) = default;
};
struct EntryView {
  WriteId id;
  Bytes value;
};
std::size_t entry_header_bytes(WriteId id) noexcept;
// Appends the header of an entry written by `id` (the value follows it).
void encode_entry_header(WriteId id, ByteBuffer& out);
// Checks the header and the value's size (<= kMaxEntryBytes).
Expected<EntryView, DecodeError> decode_entry(Bytes entry);

// REQUEST (a learner forwards client writes to its leader): zxid = 0, data = a batch whose
// entries are int64 tag (the learner's) then the entry (header and value), so an entry is up to
// kMaxLoggedEntryBytes + 8 bytes (decode with kMaxRequestEntryBytes).
inline constexpr std::size_t kRequestTagBytes = 8;
inline constexpr std::size_t kMaxRequestEntryBytes = kMaxLoggedEntryBytes + kRequestTagBytes;
struct TaggedEntry {
  std::uint64_t tag = 0;
  Bytes entry;  // header and value, checked by decode_entry
};
Expected<TaggedEntry, DecodeError> split_request_entry(Bytes entry);
// REPLY entries (PacketType::reply).
inline constexpr std::size_t kReplyEntryBytes = 20;
inline constexpr std::int32_t kReplyCommitted = 0;
inline constexpr std::int32_t kLastReplyCode = 6;  // 1 + the last RejectReason
struct WriteReply {
  std::uint64_t tag = 0;
  Zxid zxid = kNoZxid;
  std::int32_t code = kReplyCommitted;
};
// Checks the size, the code's range and a committed reply's zxid.
Expected<WriteReply, DecodeError> decode_reply_entry(Bytes entry);

// PROPOSAL and INFORM carry a batch: int32 count, then count x (int32 length, bytes). The entries
// have consecutive zxids starting at the packet's zxid. Usage:
//   BatchWriter w(PacketType::proposal, first, out); w.add(e1); w.add(e2); w.finish();
class BatchWriter {
 public:
  BatchWriter(PacketType type, Zxid first, ByteBuffer& out);
  void add(Bytes entry);
  // REQUEST: an entry of int64 tag, then the header of `id`, then the value (<= kMaxEntryBytes).
  void add(std::uint64_t tag, WriteId id, Bytes value);
  // REPLY: one kReplyEntryBytes entry.
  void add_reply(std::uint64_t tag, Zxid zxid, std::int32_t code);
  // The frame's size so far (without the authinfo finish() adds).
  std::size_t frame_bytes() const noexcept;
  // Patches the lengths; the frame is complete afterwards. Must be called with >= 1 entry.
  void finish();
  std::size_t count() const noexcept { return count_; }

 private:
  ByteBuffer& out_;
  std::size_t frame_start_;
  std::size_t data_length_at_;
  std::size_t count_at_;
  std::size_t count_ = 0;
  bool finished_ = false;
};

// ---- decoding ----
Expected<Frame, DecodeError> decode_frame(Bytes frame);
Expected<LearnerInfo, DecodeError> decode_learner_info(Bytes data);
Expected<std::int32_t, DecodeError> decode_int32(Bytes data);
// 4 bytes (ZooKeeper: applied = kNoZxid) or 12 bytes (fastzab); else bad_payload_size.
Expected<AckEpochInfo, DecodeError> decode_ackepoch(Bytes data);
// 8 bytes; else bad_payload_size.
Expected<ServerId, DecodeError> decode_transfer(Bytes data);

// A validated batch. Construction (decode_batch) checks every length; iteration cannot fail.
class BatchView {
 public:
  std::size_t size() const noexcept { return count_; }
  class Iterator {
   public:
    Bytes operator*() const noexcept;
    Iterator& operator++() noexcept;
    bool operator==(const Iterator& o) const noexcept { return pos_ == o.pos_; }

   private:
    friend class BatchView;
    Iterator(Bytes data, std::size_t pos, std::size_t max_entry)
        : data_(data), pos_(pos), max_entry_(max_entry) {}
    Bytes data_;
    std::size_t pos_;
    std::size_t max_entry_;
  };
  Iterator begin() const noexcept { return Iterator(data_, data_.empty() ? 0 : 4, max_entry_); }
  Iterator end() const noexcept { return Iterator(data_, data_.size(), max_entry_); }

 private:
  friend Expected<BatchView, DecodeError> decode_batch(Bytes data, std::size_t max_entry);
  Bytes data_;
  std::size_t count_ = 0;
  std::size_t max_entry_ = kMaxEntryBytes;
};
// Every entry at most `max_entry` bytes (REQUEST batches: kMaxRequestEntryBytes).
Expected<BatchView, DecodeError> decode_batch(Bytes data,
                                              std::size_t max_entry = kMaxLoggedEntryBytes);

// The client table (exactly-once writes: each client's last committed sequence and its zxid):
// uint32 kClientTableMagic, uint32 count, count x (int64 client, int64 sequence, int64 zxid).
inline constexpr std::uint32_t kClientTableMagic = 0x465a4354;  // "FZCT"
struct ClientRecord {
  std::uint64_t client = 0;
  std::uint64_t seq = 0;
  Zxid zxid = kNoZxid;
};
void encode_client_records(std::span<const ClientRecord> records, ByteBuffer& out);
// Replaces `out` by the records (returns how many); each must name a client (not 0) and a transaction zxid.
Expected<std::size_t, DecodeError> decode_client_records(Bytes table, std::vector<ClientRecord>& out);

// A snapshot (SNAP's data, install_snapshot's bytes, what a host saves locally) is the core's
// client table at the snapshot's zxid (ClientTable's encoding), then the application's state.
struct SnapshotParts {
  Bytes client_table;
  Bytes app_state;
};
// Checks the client table's framing (its content is checked by ClientTable::decode).
Expected<SnapshotParts, DecodeError> split_snapshot(Bytes snapshot);

}  // namespace fastzab::core
