// Wire codec (reference §2.10 notifications, §4.2 quorum packets). See codec.h for the formats.
//
// Decoding is written against a bounds-checked Reader: every field is read only after checking that
// it fits in what remains, lengths are compared as unsigned only after their sign was checked, and no
// offset is ever computed by an addition that could pass the end of the input. Encoding appends to
// the caller's buffer (one resize per frame, or per entry for BatchWriter) and asserts that it never
// produces a frame the decoder would reject.
#include "codec.h"

#include <cstring>

#include "invariant.h"
#include "constants.h"

namespace fastzab::core {
namespace {

constexpr std::size_t kI32 = 4;
constexpr std::size_t kI64 = 8;
// kind, type, zxid, data length.
constexpr std::size_t kPacketHeaderBytes = 1 + kI32 + kI64 + kI32;
// authinfo count.
constexpr std::size_t kPacketTrailerBytes = kI32;
// The largest data a quorum frame can carry and still be accepted by decode_frame.
constexpr std::size_t kMaxPacketData = kMaxFrameBytes - kPacketHeaderBytes - kPacketTrailerBytes;
// Notification bodies: state, leader, zxid, round (the 3.3 form) ...
constexpr std::size_t kNotificationLegacy33 = kI32 + 3 * kI64;
// ... + peerEpoch, version (the 3.4.6 form) ...
constexpr std::size_t kNotificationLegacy346 = kNotificationLegacy33 + kI64 + kI32;
// ... + config length (version 2).
constexpr std::size_t kNotificationV2Fixed = kNotificationLegacy346 + kI32;
constexpr std::int32_t kNullLength = -1;
constexpr std::int32_t kFirstPacketType = static_cast<std::int32_t>(PacketType::request);
constexpr std::int32_t kLastPacketType = static_cast<std::int32_t>(PacketType::inform_and_activate);
static_assert(kLearnerInfoBytes == kI64 + kI32 + kI64);
constexpr std::size_t kAckEpochZkBytes = kI32;
constexpr std::size_t kAckEpochBytes = kI32 + kI64 + kI32;

static_assert(kMaxFrameBytes > kPacketHeaderBytes + kPacketTrailerBytes);
static_assert(kMaxFrameBytes <= 0x7fffffff, "lengths travel as int32");
static_assert(kMaxConfigBytes <= 0x7fffffff && kMaxRequestEntryBytes <= 0x7fffffff);
// A client table entry: int64 client, int64 sequence, int64 zxid.
constexpr std::size_t kClientTableEntryBytes = 3 * kI64;

// ---- big-endian primitives on raw bytes; callers guarantee the room ----

void store_u32(std::byte* p, std::uint32_t v) noexcept {
  p[0] = static_cast<std::byte>((v >> 24) & 0xffu);
  p[1] = static_cast<std::byte>((v >> 16) & 0xffu);
  p[2] = static_cast<std::byte>((v >> 8) & 0xffu);
  p[3] = static_cast<std::byte>(v & 0xffu);
}
void store_i32(std::byte* p, std::int32_t v) noexcept { store_u32(p, static_cast<std::uint32_t>(v)); }
void store_i64(std::byte* p, std::int64_t v) noexcept {
  const auto u = static_cast<std::uint64_t>(v);
  store_u32(p, static_cast<std::uint32_t>(u >> 32));
  store_u32(p + 4, static_cast<std::uint32_t>(u & 0xffffffffu));
}
std::uint32_t load_u32(const std::byte* p) noexcept {
  return (std::to_integer<std::uint32_t>(p[0]) << 24) | (std::to_integer<std::uint32_t>(p[1]) << 16) |
         (std::to_integer<std::uint32_t>(p[2]) << 8) | std::to_integer<std::uint32_t>(p[3]);
}
std::int32_t load_i32(const std::byte* p) noexcept { return static_cast<std::int32_t>(load_u32(p)); }
std::int64_t load_i64(const std::byte* p) noexcept {
  const std::uint64_t u = (static_cast<std::uint64_t>(load_u32(p)) << 32) | load_u32(p + 4);
  return static_cast<std::int64_t>(u);
}

// ---- appending ----

// Grows `out` by n bytes and returns where they start.
std::byte* grow(ByteBuffer& out, std::size_t n) {
  const std::size_t old = out.size();
  out.resize(old + n);
  return out.data() + old;
}

// Writes sequentially into room obtained from grow().
class Cursor {
 public:
  explicit Cursor(std::byte* p) noexcept : p_(p) {}
  void u8(std::uint8_t v) noexcept { *p_++ = static_cast<std::byte>(v); }
  void i32(std::int32_t v) noexcept {
    store_i32(p_, v);
    p_ += kI32;
  }
  void i64(std::int64_t v) noexcept {
    store_i64(p_, v);
    p_ += kI64;
  }
  void bytes(Bytes b) noexcept {
    if (!b.empty()) std::memcpy(p_, b.data(), b.size());  // memcpy(…, nullptr, 0) is UB
    p_ += b.size();
  }

 private:
  std::byte* p_;
};

void put_packet_header(Cursor& c, PacketType type, Zxid zxid, std::int32_t data_length) noexcept {
  c.u8(static_cast<std::uint8_t>(FrameKind::quorum));
  c.i32(static_cast<std::int32_t>(type));
  c.i64(zxid.value);
  c.i32(data_length);
}

bool valid_packet_type(std::int32_t t) noexcept {
  return (t >= kFirstPacketType && t <= kLastPacketType) ||
         t == static_cast<std::int32_t>(PacketType::transfer) ||
         t == static_cast<std::int32_t>(PacketType::reply);
}

// ---- reading ----

class Reader {
 public:
  explicit Reader(Bytes in) noexcept : in_(in) {}
  std::size_t remaining() const noexcept { return in_.size() - pos_; }
  [[nodiscard]] bool i32(std::int32_t& v) noexcept {
    if (remaining() < kI32) return false;
    v = load_i32(in_.data() + pos_);
    pos_ += kI32;
    return true;
  }
  [[nodiscard]] bool i64(std::int64_t& v) noexcept {
    if (remaining() < kI64) return false;
    v = load_i64(in_.data() + pos_);
    pos_ += kI64;
    return true;
  }
  // n <= remaining() is checked by the caller.
  Bytes take(std::size_t n) noexcept {
    FASTZAB_ASSERT(n <= remaining());
    const Bytes b = in_.subspan(pos_, n);
    pos_ += n;
    return b;
  }

 private:
  Bytes in_;
  std::size_t pos_ = 0;
};

// A length field read from the wire that must be in 0..min(limit, remaining).
bool length_fits(std::int32_t len, std::size_t limit, std::size_t remaining) noexcept {
  if (len < 0) return false;
  const auto n = static_cast<std::size_t>(len);
  return n <= limit && n <= remaining;
}

Expected<Notification, DecodeError> decode_notification(Bytes body) {
  if (body.size() < kNotificationLegacy33) return unexpected(DecodeError::truncated);
  Reader r(body);
  std::int32_t state = 0;
  std::int64_t leader = 0;
  std::int64_t zxid = 0;
  std::int64_t round = 0;
  // Cannot fail: 28 bytes are there.
  const bool ok = r.i32(state) && r.i64(leader) && r.i64(zxid) && r.i64(round);
  FASTZAB_ASSERT(ok);
  if (state < static_cast<std::int32_t>(PeerState::looking) ||
      state > static_cast<std::int32_t>(PeerState::observing)) {
    return unexpected(DecodeError::bad_peer_state);
  }
  Notification n;
  n.state = static_cast<PeerState>(state);
  n.leader = ServerId{leader};
  n.zxid = Zxid{zxid};
  n.round = round;
  n.config = Bytes{};
  if (body.size() == kNotificationLegacy33) {  // 3.3.x: no peerEpoch; derived as ZooKeeper does
    n.peer_epoch = Zxid{zxid}.epoch();
    n.version = 0;
    return n;
  }
  std::int64_t peer_epoch = 0;
  if (!r.i64(peer_epoch)) return unexpected(DecodeError::truncated);
  n.peer_epoch = Epoch{peer_epoch};
  if (body.size() == kNotificationLegacy346) {  // 3.4.6+: the version int is not read
    n.version = 0;
    return n;
  }
  std::int32_t version = 0;
  if (!r.i32(version)) return unexpected(DecodeError::truncated);
  n.version = version;
  if (version > 1) {
    std::int32_t config_length = 0;
    if (!r.i32(config_length)) return unexpected(DecodeError::truncated);
    if (!length_fits(config_length, kMaxConfigBytes, r.remaining())) {
      return unexpected(DecodeError::bad_config_length);
    }
    n.config = r.take(static_cast<std::size_t>(config_length));
  }
  if (r.remaining() != 0) return unexpected(DecodeError::trailing_bytes);
  return n;
}

Expected<QuorumPacket, DecodeError> decode_quorum(Bytes body) {
  Reader r(body);
  std::int32_t type = 0;
  if (!r.i32(type)) return unexpected(DecodeError::truncated);
  if (!valid_packet_type(type)) return unexpected(DecodeError::unknown_packet_type);
  std::int64_t zxid = 0;
  if (!r.i64(zxid)) return unexpected(DecodeError::truncated);
  std::int32_t data_length = 0;
  if (!r.i32(data_length)) return unexpected(DecodeError::truncated);
  QuorumPacket p;
  p.type = static_cast<PacketType>(type);
  p.zxid = Zxid{zxid};
  if (data_length != kNullLength) {
    if (!length_fits(data_length, kMaxFrameBytes, r.remaining())) {
      return unexpected(DecodeError::bad_data_length);
    }
    p.data = r.take(static_cast<std::size_t>(data_length));
  }
  std::int32_t auth_count = 0;
  if (!r.i32(auth_count)) return unexpected(DecodeError::truncated);
  if (auth_count != kNullLength && auth_count != 0) return unexpected(DecodeError::bad_auth_count);
  if (r.remaining() != 0) return unexpected(DecodeError::trailing_bytes);
  return p;
}

}  // namespace

// ---- names ----

const char* to_string(PacketType t) noexcept {
  switch (t) {
    case PacketType::request: return "REQUEST";
    case PacketType::proposal: return "PROPOSAL";
    case PacketType::ack: return "ACK";
    case PacketType::commit: return "COMMIT";
    case PacketType::ping: return "PING";
    case PacketType::revalidate: return "REVALIDATE";
    case PacketType::sync: return "SYNC";
    case PacketType::inform: return "INFORM";
    case PacketType::commit_and_activate: return "COMMITANDACTIVATE";
    case PacketType::newleader: return "NEWLEADER";
    case PacketType::followerinfo: return "FOLLOWERINFO";
    case PacketType::uptodate: return "UPTODATE";
    case PacketType::diff: return "DIFF";
    case PacketType::trunc: return "TRUNC";
    case PacketType::snap: return "SNAP";
    case PacketType::observerinfo: return "OBSERVERINFO";
    case PacketType::leaderinfo: return "LEADERINFO";
    case PacketType::ackepoch: return "ACKEPOCH";
    case PacketType::inform_and_activate: return "INFORMANDACTIVATE";
    case PacketType::transfer: return "TRANSFER";
    case PacketType::reply: return "REPLY";
  }
  return "UNKNOWN";
}

const char* to_string(DecodeError e) noexcept {
  switch (e) {
    case DecodeError::empty_frame: return "empty frame";
    case DecodeError::unknown_frame_kind: return "unknown frame kind";
    case DecodeError::frame_too_large: return "frame too large";
    case DecodeError::truncated: return "truncated";
    case DecodeError::trailing_bytes: return "trailing bytes";
    case DecodeError::bad_peer_state: return "bad peer state";
    case DecodeError::bad_config_length: return "bad config length";
    case DecodeError::unknown_packet_type: return "unknown packet type";
    case DecodeError::bad_data_length: return "bad data length";
    case DecodeError::bad_auth_count: return "bad authinfo count";
    case DecodeError::bad_batch_count: return "bad batch count";
    case DecodeError::bad_entry_length: return "bad entry length";
    case DecodeError::bad_payload_size: return "bad payload size";
    case DecodeError::bad_entry_header: return "bad entry or snapshot header";
  }
  return "unknown decode error";
}

// ---- encoding ----

void encode_notification(const Notification& n, ByteBuffer& out) {
  const auto state = static_cast<std::int32_t>(n.state);
  FASTZAB_ASSERT(state >= static_cast<std::int32_t>(PeerState::looking) &&
                 state <= static_cast<std::int32_t>(PeerState::observing));
  FASTZAB_ASSERT(n.config.size() <= kMaxConfigBytes);
  // Version 2+ carries the config; versions 0 and 1 are encoded in the 3.4.6 (40-byte) form, the
  // only legacy form that can carry a peerEpoch, and cannot carry a config.
  const bool with_config = n.version > 1;
  FASTZAB_ASSERT(with_config || n.config.empty());
  const std::size_t body = with_config ? kNotificationV2Fixed + n.config.size() : kNotificationLegacy346;
  Cursor c(grow(out, 1 + body));
  c.u8(static_cast<std::uint8_t>(FrameKind::notification));
  c.i32(state);
  c.i64(n.leader.value);
  c.i64(n.zxid.value);
  c.i64(n.round);
  c.i64(n.peer_epoch.value);
  c.i32(n.version);
  if (with_config) {
    c.i32(static_cast<std::int32_t>(n.config.size()));
    c.bytes(n.config);
  }
}

void encode_packet(PacketType type, Zxid zxid, Bytes data, ByteBuffer& out) {
  FASTZAB_ASSERT(valid_packet_type(static_cast<std::int32_t>(type)));
  FASTZAB_ASSERT(data.size() <= kMaxPacketData);
  // Empty data goes out as null (-1), as ZooKeeper's servers send packets without data.
  const std::int32_t data_length = data.empty() ? kNullLength : static_cast<std::int32_t>(data.size());
  Cursor c(grow(out, kPacketHeaderBytes + data.size() + kPacketTrailerBytes));
  put_packet_header(c, type, zxid, data_length);
  c.bytes(data);
  c.i32(kNullLength);  // authinfo
}

void encode_learner_info(PacketType type, Zxid zxid, const LearnerInfo& info, ByteBuffer& out) {
  FASTZAB_ASSERT(valid_packet_type(static_cast<std::int32_t>(type)));
  Cursor c(grow(out, kPacketHeaderBytes + kLearnerInfoBytes + kPacketTrailerBytes));
  put_packet_header(c, type, zxid, static_cast<std::int32_t>(kLearnerInfoBytes));
  c.i64(info.server.value);
  c.i32(info.protocol_version);
  c.i64(info.config_version);
  c.i32(kNullLength);
}

void encode_int32_packet(PacketType type, Zxid zxid, std::int32_t value, ByteBuffer& out) {
  FASTZAB_ASSERT(valid_packet_type(static_cast<std::int32_t>(type)));
  Cursor c(grow(out, kPacketHeaderBytes + kI32 + kPacketTrailerBytes));
  put_packet_header(c, type, zxid, static_cast<std::int32_t>(kI32));
  c.i32(value);
  c.i32(kNullLength);
}

void encode_ackepoch(Zxid last_logged, const AckEpochInfo& info, ByteBuffer& out) {
  Cursor c(grow(out, kPacketHeaderBytes + kAckEpochBytes + kPacketTrailerBytes));
  put_packet_header(c, PacketType::ackepoch, last_logged, static_cast<std::int32_t>(kAckEpochBytes));
  c.i32(info.current_epoch);
  c.i64(info.applied.value);
  c.i32(info.answered_epoch);
  c.i32(kNullLength);
}

void encode_transfer(Zxid last, ServerId target, ByteBuffer& out) {
  Cursor c(grow(out, kPacketHeaderBytes + kI64 + kPacketTrailerBytes));
  put_packet_header(c, PacketType::transfer, last, static_cast<std::int32_t>(kI64));
  c.i64(target.value);
  c.i32(kNullLength);
}

// ---- BatchWriter ----
// Layout: [kind][type][zxid][data length @data_length_at_][count @count_at_]{[len][entry]}*[auth].

BatchWriter::BatchWriter(PacketType type, Zxid first, ByteBuffer& out)
    : out_(out),
      frame_start_(out.size()),
      data_length_at_(frame_start_ + kPacketHeaderBytes - kI32),
      count_at_(frame_start_ + kPacketHeaderBytes) {
  FASTZAB_ASSERT(valid_packet_type(static_cast<std::int32_t>(type)));
  Cursor c(grow(out_, kPacketHeaderBytes + kI32));
  put_packet_header(c, type, first, 0);  // data length patched by finish()
  c.i32(0);                              // count patched by finish()
}

void BatchWriter::add(Bytes entry) {
  FASTZAB_ASSERT(!finished_);
  FASTZAB_ASSERT_OP(count_, <, kMaxBatchEntries);
  FASTZAB_ASSERT_OP(entry.size(), <=, kMaxLoggedEntryBytes);
  FASTZAB_ASSERT_OP(out_.size(), >=, count_at_ + kI32);
  // The frame, with this entry and the authinfo still to come, must stay decodable.
  const std::size_t frame_after = out_.size() - frame_start_ + kI32 + entry.size() + kPacketTrailerBytes;
  FASTZAB_ASSERT_OP(frame_after, <=, kMaxFrameBytes);
  Cursor c(grow(out_, kI32 + entry.size()));
  c.i32(static_cast<std::int32_t>(entry.size()));
  c.bytes(entry);
  ++count_;
}

void BatchWriter::add(std::uint64_t tag, WriteId id, Bytes value) {
  FASTZAB_ASSERT(!finished_);
  FASTZAB_ASSERT_OP(count_, <, kMaxBatchEntries);
  FASTZAB_ASSERT_OP(value.size(), <=, kMaxEntryBytes);
  FASTZAB_ASSERT_OP(out_.size(), >=, count_at_ + kI32);
  const std::size_t entry = kI64 + entry_header_bytes(id) + value.size();
  const std::size_t frame_after = out_.size() - frame_start_ + kI32 + entry + kPacketTrailerBytes;
  FASTZAB_ASSERT_OP(frame_after, <=, kMaxFrameBytes);
  {
    Cursor c(grow(out_, kI32 + kI64));
    c.i32(static_cast<std::int32_t>(entry));
    c.i64(static_cast<std::int64_t>(tag));
  }
  encode_entry_header(id, out_);
  Cursor c(grow(out_, value.size()));
  c.bytes(value);
  ++count_;
}

void BatchWriter::add_reply(std::uint64_t tag, Zxid zxid, std::int32_t code) {
  FASTZAB_ASSERT(!finished_);
  FASTZAB_ASSERT_OP(count_, <, kMaxBatchEntries);
  Cursor c(grow(out_, kI32 + kReplyEntryBytes));
  c.i32(static_cast<std::int32_t>(kReplyEntryBytes));
  c.i64(static_cast<std::int64_t>(tag));
  c.i64(zxid.value);
  c.i32(code);
  ++count_;
}

std::size_t BatchWriter::frame_bytes() const noexcept { return out_.size() - frame_start_; }

void BatchWriter::finish() {
  FASTZAB_ASSERT(!finished_);
  FASTZAB_ASSERT_OP(count_, >=, 1u);
  FASTZAB_ASSERT_OP(out_.size(), >=, count_at_ + kI32);
  const std::size_t data_length = out_.size() - count_at_;
  store_i32(out_.data() + data_length_at_, static_cast<std::int32_t>(data_length));
  store_i32(out_.data() + count_at_, static_cast<std::int32_t>(count_));
  Cursor c(grow(out_, kPacketTrailerBytes));
  c.i32(kNullLength);
  finished_ = true;
}

// ---- decoding ----

Expected<Frame, DecodeError> decode_frame(Bytes frame) {
  if (frame.empty()) return unexpected(DecodeError::empty_frame);
  if (frame.size() > kMaxFrameBytes) return unexpected(DecodeError::frame_too_large);
  const auto kind = std::to_integer<std::uint8_t>(frame[0]);
  const Bytes body = frame.subspan(1);
  Frame f;
  if (kind == static_cast<std::uint8_t>(FrameKind::notification)) {
    auto n = decode_notification(body);
    if (!n) return unexpected(n.error());
    f.kind = FrameKind::notification;
    f.notification = *n;
    return f;
  }
  if (kind == static_cast<std::uint8_t>(FrameKind::quorum)) {
    auto p = decode_quorum(body);
    if (!p) return unexpected(p.error());
    f.kind = FrameKind::quorum;
    f.packet = *p;
    return f;
  }
  return unexpected(DecodeError::unknown_frame_kind);
}

Expected<LearnerInfo, DecodeError> decode_learner_info(Bytes data) {
  if (data.size() != kLearnerInfoBytes) return unexpected(DecodeError::bad_payload_size);
  LearnerInfo info;
  info.server = ServerId{load_i64(data.data())};
  info.protocol_version = load_i32(data.data() + kI64);
  info.config_version = load_i64(data.data() + kI64 + kI32);
  return info;
}

Expected<std::int32_t, DecodeError> decode_int32(Bytes data) {
  if (data.size() != kI32) return unexpected(DecodeError::bad_payload_size);
  return load_i32(data.data());
}

Expected<ServerId, DecodeError> decode_transfer(Bytes data) {
  if (data.size() != kI64) return unexpected(DecodeError::bad_payload_size);
  return ServerId{load_i64(data.data())};
}

Expected<AckEpochInfo, DecodeError> decode_ackepoch(Bytes data) {
  if (data.size() == kAckEpochZkBytes) return AckEpochInfo{load_i32(data.data()), kNoZxid};
  if (data.size() == kAckEpochBytes) {
    return AckEpochInfo{load_i32(data.data()), Zxid{load_i64(data.data() + kI32)},
                        load_i32(data.data() + kI32 + kI64)};
  }
  return unexpected(DecodeError::bad_payload_size);
}

Expected<BatchView, DecodeError> decode_batch(Bytes data, std::size_t max_entry) {
  Reader r(data);
  std::int32_t count = 0;
  if (!r.i32(count)) return unexpected(DecodeError::truncated);
  if (count < 1 || static_cast<std::size_t>(count) > kMaxBatchEntries) {
    return unexpected(DecodeError::bad_batch_count);
  }
  for (std::int32_t i = 0; i < count; ++i) {
    std::int32_t length = 0;
    if (!r.i32(length)) return unexpected(DecodeError::truncated);
    if (!length_fits(length, max_entry, r.remaining())) {
      return unexpected(DecodeError::bad_entry_length);
    }
    r.take(static_cast<std::size_t>(length));
  }
  if (r.remaining() != 0) return unexpected(DecodeError::trailing_bytes);
  BatchView v;
  v.data_ = data;
  v.count_ = static_cast<std::size_t>(count);
  v.max_entry_ = max_entry;
  return v;
}

// Iteration re-reads lengths that decode_batch validated; the checks below only keep a
// default-constructed or otherwise unvalidated view from reading out of bounds.
Bytes BatchView::Iterator::operator*() const noexcept {
  if (pos_ > data_.size() || data_.size() - pos_ < kI32) return Bytes{};
  const std::int32_t length = load_i32(data_.data() + pos_);
  if (!length_fits(length, max_entry_, data_.size() - pos_ - kI32)) return Bytes{};
  return data_.subspan(pos_ + kI32, static_cast<std::size_t>(length));
}

BatchView::Iterator& BatchView::Iterator::operator++() noexcept {
  if (pos_ > data_.size() || data_.size() - pos_ < kI32) {
    pos_ = data_.size();
    return *this;
  }
  const std::int32_t length = load_i32(data_.data() + pos_);
  if (!length_fits(length, max_entry_, data_.size() - pos_ - kI32)) {
    pos_ = data_.size();
    return *this;
  }
  pos_ += kI32 + static_cast<std::size_t>(length);
  return *this;
}

Expected<TaggedEntry, DecodeError> split_request_entry(Bytes entry) {
  if (entry.size() < kI64) return unexpected(DecodeError::bad_entry_length);
  return TaggedEntry{static_cast<std::uint64_t>(load_i64(entry.data())), entry.subspan(kI64)};
}

std::size_t entry_header_bytes(WriteId id) noexcept {
  return id.client == 0 ? 1 : kMaxEntryHeaderBytes;
}

void encode_entry_header(WriteId id, ByteBuffer& out) {
  if (id.client == 0) {
    out.push_back(kAnonymousEntry);
    return;
  }
  Cursor c(grow(out, kMaxEntryHeaderBytes));
  c.u8(std::to_integer<std::uint8_t>(kIdentifiedEntry));
  c.i64(static_cast<std::int64_t>(id.client));
  c.i64(static_cast<std::int64_t>(id.seq));
}

Expected<EntryView, DecodeError> decode_entry(Bytes entry) {
  if (entry.empty()) return unexpected(DecodeError::bad_entry_header);
  EntryView v;
  if (entry[0] == kAnonymousEntry) {
    v.value = entry.subspan(1);
  } else if (entry[0] == kIdentifiedEntry && entry.size() >= kMaxEntryHeaderBytes) {
    v.id.client = static_cast<std::uint64_t>(load_i64(entry.data() + 1));
    v.id.seq = static_cast<std::uint64_t>(load_i64(entry.data() + 1 + kI64));
    if (v.id.client == 0) return unexpected(DecodeError::bad_entry_header);
    v.value = entry.subspan(kMaxEntryHeaderBytes);
  } else {
    return unexpected(DecodeError::bad_entry_header);
  }
  if (v.value.size() > kMaxEntryBytes) return unexpected(DecodeError::bad_entry_length);
  return v;
}

void encode_client_records(std::span<const ClientRecord> records, ByteBuffer& out) {
  Cursor c(grow(out, 2 * kI32 + records.size() * kClientTableEntryBytes));
  c.i32(static_cast<std::int32_t>(kClientTableMagic));
  c.i32(static_cast<std::int32_t>(records.size()));
  for (const ClientRecord& r : records) {
    c.i64(static_cast<std::int64_t>(r.client));
    c.i64(static_cast<std::int64_t>(r.seq));
    c.i64(r.zxid.value);
  }
}

Expected<std::size_t, DecodeError> decode_client_records(Bytes table, std::vector<ClientRecord>& out) {
  out.clear();
  const auto parts = split_snapshot(table);
  if (!parts) return unexpected(parts.error());
  if (!parts->app_state.empty()) return unexpected(DecodeError::trailing_bytes);
  const std::uint32_t count = load_u32(table.data() + kI32);
  out.reserve(count);
  const std::byte* p = table.data() + 2 * kI32;
  for (std::uint32_t i = 0; i < count; ++i, p += kClientTableEntryBytes) {
    ClientRecord r{static_cast<std::uint64_t>(load_i64(p)),
                   static_cast<std::uint64_t>(load_i64(p + kI64)), Zxid{load_i64(p + 2 * kI64)}};
    if (r.client == 0 || r.zxid.value <= 0 || r.zxid.counter() == 0) {
      return unexpected(DecodeError::bad_payload_size);
    }
    out.push_back(r);
  }
  return out.size();
}

Expected<SnapshotParts, DecodeError> split_snapshot(Bytes snapshot) {
  if (snapshot.size() < 2 * kI32 || load_u32(snapshot.data()) != kClientTableMagic) {
    return unexpected(DecodeError::bad_entry_header);
  }
  const std::uint32_t count = load_u32(snapshot.data() + kI32);
  if (count > (snapshot.size() - 2 * kI32) / kClientTableEntryBytes) {
    return unexpected(DecodeError::truncated);
  }
  const std::size_t table = 2 * kI32 + std::size_t{count} * kClientTableEntryBytes;
  return SnapshotParts{snapshot.first(table), snapshot.subspan(table)};
}

Expected<WriteReply, DecodeError> decode_reply_entry(Bytes entry) {
  if (entry.size() != kReplyEntryBytes) return unexpected(DecodeError::bad_payload_size);
  WriteReply r;
  r.tag = static_cast<std::uint64_t>(load_i64(entry.data()));
  r.zxid = Zxid{load_i64(entry.data() + kI64)};
  r.code = load_i32(entry.data() + 2 * kI64);
  if (r.code < 0 || r.code > kLastReplyCode) return unexpected(DecodeError::bad_payload_size);
  if (r.code == kReplyCommitted && (r.zxid.value <= 0 || r.zxid.counter() == 0)) {
    return unexpected(DecodeError::bad_payload_size);
  }
  return r;
}

}  // namespace fastzab::core
