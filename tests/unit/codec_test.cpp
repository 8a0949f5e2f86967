// Wire codec tests: known byte vectors, round trips, every DecodeError, and a seeded mutation run.
#include "engine/core/codec.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "engine/core/constants.h"
#include "engine/core/io.h"

namespace fastzab::core {
namespace {

constexpr std::int32_t kI32Min = std::numeric_limits<std::int32_t>::min();
constexpr std::int32_t kI32Max = std::numeric_limits<std::int32_t>::max();
constexpr std::int64_t kI64Min = std::numeric_limits<std::int64_t>::min();
constexpr std::int64_t kI64Max = std::numeric_limits<std::int64_t>::max();
// kind + type + zxid + data length + authinfo count.
constexpr std::size_t kPacketOverhead = 1 + 4 + 8 + 4 + 4;

// ---- helpers ----

// "01 0000 ff" -> bytes; spaces, '|' and '_' are ignored.
ByteBuffer hex(std::string_view s) {
  ByteBuffer out;
  int nibbles = 0;
  unsigned cur = 0;
  for (char ch : s) {
    unsigned v = 0;
    if (ch >= '0' && ch <= '9') {
      v = static_cast<unsigned>(ch - '0');
    } else if (ch >= 'a' && ch <= 'f') {
      v = static_cast<unsigned>(ch - 'a' + 10);
    } else if (ch >= 'A' && ch <= 'F') {
      v = static_cast<unsigned>(ch - 'A' + 10);
    } else {
      continue;
    }
    cur = (cur << 4) | v;
    if (++nibbles == 2) {
      out.push_back(static_cast<std::byte>(cur));
      nibbles = 0;
      cur = 0;
    }
  }
  EXPECT_EQ(nibbles, 0) << "odd hex string";
  return out;
}

ByteBuffer text(std::string_view s) {
  ByteBuffer out(s.size());
  if (!s.empty()) std::memcpy(out.data(), s.data(), s.size());
  return out;
}

Bytes view(const ByteBuffer& b) { return Bytes(b.data(), b.size()); }

std::string to_hex(Bytes b) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  for (std::byte x : b) {
    const auto v = std::to_integer<unsigned>(x);
    s.push_back(kDigits[v >> 4]);
    s.push_back(kDigits[v & 15]);
  }
  return s;
}

bool same_bytes(Bytes a, Bytes b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size()) == 0);
}

// Big-endian builders for hand-made malformed frames.
void be32(ByteBuffer& b, std::int32_t v) {
  const auto u = static_cast<std::uint32_t>(v);
  for (int shift = 24; shift >= 0; shift -= 8) b.push_back(static_cast<std::byte>((u >> shift) & 0xff));
}
void be64(ByteBuffer& b, std::int64_t v) {
  const auto u = static_cast<std::uint64_t>(v);
  for (int shift = 56; shift >= 0; shift -= 8) b.push_back(static_cast<std::byte>((u >> shift) & 0xff));
}
void raw(ByteBuffer& b, Bytes more) { b.insert(b.end(), more.begin(), more.end()); }

// A quorum frame with arbitrary (possibly invalid) field values.
ByteBuffer quorum_frame(std::int32_t type, std::int64_t zxid, std::int32_t data_length, Bytes data,
                        std::int32_t auth) {
  ByteBuffer b{std::byte{2}};
  be32(b, type);
  be64(b, zxid);
  be32(b, data_length);
  raw(b, data);
  be32(b, auth);
  return b;
}

DecodeError error_of(Bytes frame) {
  auto f = decode_frame(frame);
  EXPECT_FALSE(f.has_value()) << to_hex(frame);
  return f.has_value() ? DecodeError::empty_frame : f.error();
}
DecodeError error_of(const ByteBuffer& frame) { return error_of(view(frame)); }

Frame decoded(const ByteBuffer& frame) {
  auto f = decode_frame(view(frame));
  EXPECT_TRUE(f.has_value()) << (f.has_value() ? "" : to_string(f.error())) << " " << to_hex(view(frame));
  return f.has_value() ? *f : Frame{};
}

void expect_same(const Notification& a, const Notification& b) {
  EXPECT_EQ(a.state, b.state);
  EXPECT_EQ(a.leader, b.leader);
  EXPECT_EQ(a.zxid, b.zxid);
  EXPECT_EQ(a.round, b.round);
  EXPECT_EQ(a.peer_epoch, b.peer_epoch);
  EXPECT_EQ(a.version, b.version);
  EXPECT_TRUE(same_bytes(a.config, b.config));
}

// Every decoded view lies inside the decoded input.
bool inside(Bytes part, Bytes whole) {
  if (part.empty()) return true;
  const auto* lo = whole.data();
  const auto* hi = whole.data() + whole.size();
  return part.data() >= lo && part.data() + part.size() <= hi;
}

Notification sample_notification() {
  Notification n;
  n.state = PeerState::looking;
  n.leader = ServerId{3};
  n.zxid = Zxid{0x100000002};
  n.round = 7;
  n.peer_epoch = Epoch{1};
  n.version = 2;
  return n;
}

// ---- names ----

TEST(CodecNames, PacketTypes) {
  std::set<std::string> names;
  for (std::int32_t t = 1; t <= 19; ++t) {
    const std::string name = to_string(static_cast<PacketType>(t));
    EXPECT_NE(name, "UNKNOWN") << t;
    names.insert(name);
  }
  EXPECT_EQ(names.size(), 19u);
  EXPECT_STREQ(to_string(PacketType::proposal), "PROPOSAL");
  EXPECT_STREQ(to_string(PacketType::ackepoch), "ACKEPOCH");
  EXPECT_STREQ(to_string(PacketType::inform_and_activate), "INFORMANDACTIVATE");
  EXPECT_STREQ(to_string(static_cast<PacketType>(0)), "UNKNOWN");
  EXPECT_STREQ(to_string(static_cast<PacketType>(20)), "UNKNOWN");
}

TEST(CodecNames, DecodeErrors) {
  std::set<std::string> names;
  const int count = static_cast<int>(DecodeError::bad_payload_size) + 1;
  for (int e = 0; e < count; ++e) names.insert(to_string(static_cast<DecodeError>(e)));
  EXPECT_EQ(names.size(), static_cast<std::size_t>(count));
  EXPECT_STREQ(to_string(DecodeError::truncated), "truncated");
}

// ---- notifications ----

TEST(CodecNotification, KnownBytes) {
  ByteBuffer out;
  encode_notification(sample_notification(), out);
  const ByteBuffer expected = hex(
      "01"                  // kind: notification
      "00000000"            // state LOOKING
      "0000000000000003"    // leader 3
      "0000000100000002"    // zxid 0x100000002
      "0000000000000007"    // round 7
      "0000000000000001"    // peerEpoch 1
      "00000002"            // version 2
      "00000000");          // config length 0
  EXPECT_EQ(to_hex(view(out)), to_hex(view(expected)));
  EXPECT_EQ(out.size(), 45u);
  const Frame f = decoded(expected);
  EXPECT_EQ(f.kind, FrameKind::notification);
  expect_same(f.notification, sample_notification());
  EXPECT_TRUE(f.notification.config.empty());
}

TEST(CodecNotification, KnownBytesWithConfig) {
  const ByteBuffer config = text("server.1=a:1:2:participant\nversion=100000000");
  Notification n;
  n.state = PeerState::leading;
  n.leader = ServerId{1};
  n.zxid = Zxid{-1};
  n.round = 0x0102030405060708;
  n.peer_epoch = Epoch{0x7ffffffe};
  n.version = 2;
  n.config = view(config);
  ByteBuffer out;
  encode_notification(n, out);
  ByteBuffer expected = hex(
      "01 00000002 0000000000000001 ffffffffffffffff 0102030405060708 000000007ffffffe 00000002");
  be32(expected, static_cast<std::int32_t>(config.size()));
  raw(expected, view(config));
  EXPECT_EQ(to_hex(view(out)), to_hex(view(expected)));
  const Frame f = decoded(out);
  expect_same(f.notification, n);
  EXPECT_TRUE(inside(f.notification.config, view(out)));
}

TEST(CodecNotification, RoundTripAllStatesAndExtremes) {
  const ByteBuffer config = text("server.9=h:1:2:observer");
  for (std::int32_t s = 0; s <= 3; ++s) {
    for (std::int64_t v : {kI64Min, std::int64_t{-1}, std::int64_t{0}, std::int64_t{1}, kI64Max}) {
      for (std::int32_t version : {2, 3, kI32Max}) {
        Notification n;
        n.state = static_cast<PeerState>(s);
        n.leader = ServerId{v};
        n.zxid = Zxid{v};
        n.round = v;
        n.peer_epoch = Epoch{v};
        n.version = version;
        n.config = (v & 1) != 0 ? view(config) : Bytes{};
        ByteBuffer out;
        encode_notification(n, out);
        expect_same(decoded(out).notification, n);
      }
    }
  }
}

TEST(CodecNotification, ConfigAtTheLimit) {
  const ByteBuffer config(kMaxConfigBytes, std::byte{'x'});
  Notification n = sample_notification();
  n.config = view(config);
  ByteBuffer out;
  encode_notification(n, out);
  expect_same(decoded(out).notification, n);
}

TEST(CodecNotification, EncodesVersionsZeroAndOneInThe346Form) {
  for (std::int32_t version : {0, 1, -5}) {
    Notification n = sample_notification();
    n.version = version;
    ByteBuffer out;
    encode_notification(n, out);
    EXPECT_EQ(out.size(), 41u);
    Notification expect = n;
    expect.version = 0;  // the version int of the 40-byte form is not read
    expect_same(decoded(out).notification, expect);
  }
}

TEST(CodecNotification, AppendsAfterExistingContent) {
  ByteBuffer out = hex("aabb");
  encode_notification(sample_notification(), out);
  ASSERT_EQ(out.size(), 47u);
  expect_same(decoded(ByteBuffer(out.begin() + 2, out.end())).notification, sample_notification());
}

TEST(CodecNotification, Legacy33Form) {
  // 3.3.x: state, leader, zxid, round; peerEpoch is derived from the zxid.
  const ByteBuffer frame = hex("01 00000001 0000000000000005 0000000300000009 0000000000000004");
  ASSERT_EQ(frame.size(), 29u);
  const Frame f = decoded(frame);
  EXPECT_EQ(f.notification.state, PeerState::following);
  EXPECT_EQ(f.notification.leader, ServerId{5});
  EXPECT_EQ(f.notification.zxid, Zxid{0x300000009});
  EXPECT_EQ(f.notification.round, 4);
  EXPECT_EQ(f.notification.peer_epoch, Epoch{3});
  EXPECT_EQ(f.notification.version, 0);
  EXPECT_TRUE(f.notification.config.empty());
}

TEST(CodecNotification, Legacy33FormNegativeZxidShiftsArithmetically) {
  ByteBuffer frame{std::byte{1}};
  be32(frame, 0);
  be64(frame, 1);
  be64(frame, kNoZxid.value);
  be64(frame, 1);
  const Frame f = decoded(frame);
  EXPECT_EQ(f.notification.peer_epoch, Epoch{kI32Min});
  frame = hex("01 00000000 0000000000000001 ffffffffffffffff 0000000000000001");
  EXPECT_EQ(decoded(frame).notification.peer_epoch, Epoch{-1});
}

TEST(CodecNotification, Legacy346FormDoesNotReadVersion) {
  for (std::string_view version : {"00000001", "00000002", "7fffffff", "ffffffff"}) {
    const ByteBuffer frame = hex(std::string("01 00000003 0000000000000002 0000000400000001 "
                                             "0000000000000009 0000000000000004 ") +
                                 std::string(version));
    ASSERT_EQ(frame.size(), 41u);
    const Frame f = decoded(frame);
    EXPECT_EQ(f.notification.state, PeerState::observing);
    EXPECT_EQ(f.notification.leader, ServerId{2});
    EXPECT_EQ(f.notification.zxid, Zxid{0x400000001});
    EXPECT_EQ(f.notification.round, 9);
    EXPECT_EQ(f.notification.peer_epoch, Epoch{4});
    EXPECT_EQ(f.notification.version, 0);
    EXPECT_TRUE(f.notification.config.empty());
  }
}

TEST(CodecNotification, Version1BeyondFortyBytesIsTrailing) {
  // Versions <= 1 carry no config length: anything after the version int is trailing.
  ByteBuffer frame = hex("01 00000000 0000000000000001 0000000000000001 0000000000000001 "
                         "0000000000000000 00000001 00000000");
  EXPECT_EQ(error_of(frame), DecodeError::trailing_bytes);
  frame.resize(frame.size() - 3);  // 41-byte body
  EXPECT_EQ(error_of(frame), DecodeError::trailing_bytes);
}

TEST(CodecNotification, EveryPrefixOfAValidFrame) {
  const ByteBuffer config = text("abc");
  Notification n = sample_notification();
  n.config = view(config);
  ByteBuffer full;
  encode_notification(n, full);
  ASSERT_EQ(full.size(), 48u);
  EXPECT_EQ(error_of(Bytes{}), DecodeError::empty_frame);
  for (std::size_t len = 1; len < full.size(); ++len) {
    const Bytes prefix = view(full).first(len);
    const std::size_t body = len - 1;
    if (body == 28 || body == 40) {  // the two legacy forms
      auto f = decode_frame(prefix);
      ASSERT_TRUE(f.has_value()) << body;
      EXPECT_EQ(f->notification.version, 0);
      EXPECT_EQ(f->notification.zxid, n.zxid);
      continue;
    }
    // The config length (3) is read once the 44-byte fixed part is there; it then exceeds what
    // remains until the whole config is present.
    const DecodeError want = body >= 44 ? DecodeError::bad_config_length : DecodeError::truncated;
    EXPECT_EQ(error_of(prefix), want) << "prefix " << len;
  }
  expect_same(decoded(full).notification, n);
}

TEST(CodecNotification, LongFieldCutInHalf) {
  ByteBuffer full;
  encode_notification(sample_notification(), full);
  // Cut the peerEpoch (body offset 28..36) after 4 bytes.
  EXPECT_EQ(error_of(view(full).first(1 + 32)), DecodeError::truncated);
  // Cut the version int after 2 bytes.
  EXPECT_EQ(error_of(view(full).first(1 + 38)), DecodeError::truncated);
  // Cut the config length after 2 bytes.
  EXPECT_EQ(error_of(view(full).first(1 + 42)), DecodeError::truncated);
}

TEST(CodecNotification, BadPeerState) {
  for (std::int32_t s : {4, -1, 100, kI32Min, kI32Max}) {
    ByteBuffer full;
    encode_notification(sample_notification(), full);
    ByteBuffer bad{std::byte{1}};
    be32(bad, s);
    bad.insert(bad.end(), full.begin() + 5, full.end());
    EXPECT_EQ(error_of(bad), DecodeError::bad_peer_state) << s;
    // Also in both legacy forms.
    EXPECT_EQ(error_of(view(bad).first(29)), DecodeError::bad_peer_state);
    EXPECT_EQ(error_of(view(bad).first(41)), DecodeError::bad_peer_state);
  }
}

TEST(CodecNotification, BadConfigLength) {
  const ByteBuffer head = hex("01 00000000 0000000000000001 0000000000000001 0000000000000001 "
                              "0000000000000001 00000002");
  // Negative.
  for (std::int32_t len : {-1, -2, kI32Min}) {
    ByteBuffer b = head;
    be32(b, len);
    EXPECT_EQ(error_of(b), DecodeError::bad_config_length) << len;
  }
  // Larger than what remains.
  for (std::int32_t len : {1, 5, kI32Max}) {
    ByteBuffer b = head;
    be32(b, len);
    b.push_back(std::byte{'x'});
    if (len == 1) {
      EXPECT_TRUE(decode_frame(view(b)).has_value());
      continue;
    }
    EXPECT_EQ(error_of(b), DecodeError::bad_config_length) << len;
  }
  // Larger than kMaxConfigBytes even though the bytes are all there.
  ByteBuffer b = head;
  be32(b, static_cast<std::int32_t>(kMaxConfigBytes + 1));
  b.resize(b.size() + kMaxConfigBytes + 1, std::byte{'y'});
  EXPECT_EQ(error_of(b), DecodeError::bad_config_length);
}

TEST(CodecNotification, TrailingBytes) {
  ByteBuffer out;
  encode_notification(sample_notification(), out);
  out.push_back(std::byte{0});
  EXPECT_EQ(error_of(out), DecodeError::trailing_bytes);
}

// ---- frames ----

TEST(CodecFrame, EmptyUnknownKindAndTooLarge) {
  EXPECT_EQ(error_of(Bytes{}), DecodeError::empty_frame);
  for (int kind : {0, 3, 0x7f, 0xff}) {
    ByteBuffer out;
    encode_notification(sample_notification(), out);
    out[0] = static_cast<std::byte>(kind);
    EXPECT_EQ(error_of(out), DecodeError::unknown_frame_kind);
    EXPECT_EQ(error_of(view(out).first(1)), DecodeError::unknown_frame_kind);
  }
  EXPECT_EQ(error_of(hex("01")), DecodeError::truncated);
  EXPECT_EQ(error_of(hex("02")), DecodeError::truncated);

  // The size check comes before anything else is looked at.
  ByteBuffer huge(kMaxFrameBytes + 1, std::byte{0});
  huge[0] = std::byte{2};
  EXPECT_EQ(error_of(huge), DecodeError::frame_too_large);
  huge[0] = std::byte{9};
  EXPECT_EQ(error_of(huge), DecodeError::frame_too_large);
}

TEST(CodecFrame, LargestPacketIsAccepted) {
  const ByteBuffer data(kMaxFrameBytes - kPacketOverhead, std::byte{0x5a});
  ByteBuffer out;
  encode_packet(PacketType::snap, Zxid{42}, view(data), out);
  ASSERT_EQ(out.size(), kMaxFrameBytes);
  const Frame f = decoded(out);
  EXPECT_EQ(f.packet.type, PacketType::snap);
  EXPECT_EQ(f.packet.data.size(), data.size());
  out.insert(out.end() - 4, std::byte{0});  // one more data byte...
  {
    // ...and the data length patched to match: now one byte over the limit.
    const auto len = static_cast<std::uint32_t>(data.size() + 1);
    out[13] = static_cast<std::byte>(len >> 24);
    out[14] = static_cast<std::byte>((len >> 16) & 0xff);
    out[15] = static_cast<std::byte>((len >> 8) & 0xff);
    out[16] = static_cast<std::byte>(len & 0xff);
  }
  EXPECT_EQ(error_of(out), DecodeError::frame_too_large);
}

// ---- quorum packets ----

TEST(CodecPacket, KnownBytesNullData) {
  ByteBuffer out;
  encode_packet(PacketType::ack, Zxid{0x500000001}, Bytes{}, out);
  EXPECT_EQ(to_hex(view(out)), to_hex(view(hex("02 00000003 0000000500000001 ffffffff ffffffff"))));
  const Frame f = decoded(out);
  EXPECT_EQ(f.kind, FrameKind::quorum);
  EXPECT_EQ(f.packet.type, PacketType::ack);
  EXPECT_EQ(f.packet.zxid, Zxid{0x500000001});
  EXPECT_TRUE(f.packet.data.empty());
}

TEST(CodecPacket, KnownBytesWithData) {
  const ByteBuffer data = text("hi!");
  ByteBuffer out;
  encode_packet(PacketType::newleader, Zxid::make(Epoch{2}, 0), view(data), out);
  EXPECT_EQ(to_hex(view(out)),
            to_hex(view(hex("02 0000000a 0000000200000000 00000003 686921 ffffffff"))));
}

TEST(CodecPacket, ZooKeeperFormsAccepted) {
  // Zero-length (non-null) data and an empty (non-null) authinfo vector.
  const ByteBuffer frame = hex("02 00000004 0000000000000010 00000000 00000000");
  const Frame f = decoded(frame);
  EXPECT_EQ(f.packet.type, PacketType::commit);
  EXPECT_EQ(f.packet.zxid, Zxid{16});
  EXPECT_TRUE(f.packet.data.empty());
}

TEST(CodecPacket, RoundTripEveryType) {
  const ByteBuffer data = hex("00 01 02 03 fe ff");
  for (std::int32_t t = 1; t <= 19; ++t) {
    const auto type = static_cast<PacketType>(t);
    for (std::int64_t z : {kI64Min, std::int64_t{-1}, std::int64_t{0}, std::int64_t{0x100000001}, kI64Max}) {
      for (bool with_data : {false, true}) {
        ByteBuffer out;
        encode_packet(type, Zxid{z}, with_data ? view(data) : Bytes{}, out);
        const Frame f = decoded(out);
        EXPECT_EQ(f.kind, FrameKind::quorum);
        EXPECT_EQ(f.packet.type, type);
        EXPECT_EQ(f.packet.zxid, Zxid{z});
        EXPECT_TRUE(same_bytes(f.packet.data, with_data ? view(data) : Bytes{}));
        EXPECT_TRUE(inside(f.packet.data, view(out)));
      }
    }
  }
}

TEST(CodecPacket, EveryPrefixOfAValidFrame) {
  const ByteBuffer data = text("payload");
  ByteBuffer full;
  encode_packet(PacketType::proposal, Zxid{0x700000003}, view(data), full);
  ASSERT_EQ(full.size(), kPacketOverhead + data.size());
  for (std::size_t len = 0; len < full.size(); ++len) {
    const std::size_t body = len == 0 ? 0 : len - 1;
    DecodeError want = DecodeError::truncated;
    if (len == 0) {
      want = DecodeError::empty_frame;
    } else if (body >= 16 && body < 16 + data.size()) {
      want = DecodeError::bad_data_length;  // the data length exceeds what remains
    }
    EXPECT_EQ(error_of(view(full).first(len)), want) << "prefix " << len;
  }
  ByteBuffer null_data;
  encode_packet(PacketType::uptodate, kLostZxid, Bytes{}, null_data);
  for (std::size_t len = 1; len < null_data.size(); ++len) {
    EXPECT_EQ(error_of(view(null_data).first(len)), DecodeError::truncated) << "prefix " << len;
  }
}

TEST(CodecPacket, LongFieldCutInHalf) {
  ByteBuffer full;
  encode_packet(PacketType::commit, Zxid{0x900000001}, Bytes{}, full);
  EXPECT_EQ(error_of(view(full).first(1 + 4 + 4)), DecodeError::truncated);  // zxid half there
  EXPECT_EQ(error_of(view(full).first(1 + 2)), DecodeError::truncated);      // type half there
}

TEST(CodecPacket, TransferRoundTripsAndChecksItsPayload) {
  ByteBuffer b;
  encode_transfer(Zxid{0x300000007}, ServerId{42}, b);
  const auto f = decode_frame(view(b));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->packet.type, PacketType::transfer);
  EXPECT_EQ(f->packet.zxid, Zxid{0x300000007});
  const auto target = decode_transfer(f->packet.data);
  ASSERT_TRUE(target.has_value());
  EXPECT_EQ(*target, ServerId{42});
  EXPECT_STREQ(to_string(PacketType::transfer), "TRANSFER");
  for (std::size_t n : {0u, 4u, 7u, 9u, 12u}) {
    const ByteBuffer data(n, std::byte{1});
    EXPECT_EQ(decode_transfer(Bytes(data)).error(), DecodeError::bad_payload_size) << n;
  }
  // Types between ZooKeeper's last and fastzab's are unknown.
  for (std::int32_t t : {20, 100, 103}) {
    EXPECT_EQ(error_of(quorum_frame(t, 0, -1, Bytes{}, -1)), DecodeError::unknown_packet_type) << t;
  }
}

// A learner forwards writes in REQUEST (entries: int64 tag, entry header, value); the leader
// answers in REPLY (entries: int64 tag, int64 zxid, int32 code).
TEST(CodecPacket, RequestAndReplyBatchesRoundTripAndCheckTheirEntries) {
  ByteBuffer out;
  {
    BatchWriter w(PacketType::request, kZeroZxid, out);
    const ByteBuffer seven{std::byte{'s'}, std::byte{'e'}, std::byte{'v'}, std::byte{'e'}, std::byte{'n'}};
    w.add(7, WriteId{}, view(seven));
    const ByteBuffer biggest(kMaxEntryBytes, std::byte{9});
    w.add(std::uint64_t{1} << 62, WriteId{42, 9}, Bytes(biggest));
    w.finish();
  }
  auto f = decode_frame(out);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->packet.type, PacketType::request);
  // An entry of the largest value plus its header and tag is over the logged entry limit.
  EXPECT_EQ(decode_batch(f->packet.data).error(), DecodeError::bad_entry_length);
  auto batch = decode_batch(f->packet.data, kMaxRequestEntryBytes);
  ASSERT_TRUE(batch.has_value());
  ASSERT_EQ(batch->size(), 2u);
  auto it = batch->begin();
  const auto first = split_request_entry(*it);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->tag, 7u);
  const auto first_entry = decode_entry(first->entry);
  ASSERT_TRUE(first_entry.has_value());
  EXPECT_EQ(first_entry->id, WriteId{});
  EXPECT_EQ(first_entry->value.size(), 5u);
  ++it;
  const auto second = split_request_entry(*it);
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->tag, std::uint64_t{1} << 62);
  const auto second_entry = decode_entry(second->entry);
  ASSERT_TRUE(second_entry.has_value());
  EXPECT_EQ(second_entry->id, (WriteId{42, 9}));
  EXPECT_EQ(second_entry->value.size(), kMaxEntryBytes);
  const ByteBuffer short_entry(7, std::byte{0});
  EXPECT_EQ(split_request_entry(Bytes(short_entry)).error(), DecodeError::bad_entry_length);

  out.clear();
  {
    BatchWriter w(PacketType::reply, kZeroZxid, out);
    w.add_reply(7, Zxid{0x200000003}, kReplyCommitted);
    w.add_reply(8, kNoZxid, 1 + static_cast<std::int32_t>(RejectReason::too_large));
    w.finish();
  }
  f = decode_frame(out);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->packet.type, PacketType::reply);
  EXPECT_STREQ(to_string(PacketType::reply), "REPLY");
  batch = decode_batch(f->packet.data);
  ASSERT_TRUE(batch.has_value());
  it = batch->begin();
  const auto committed = decode_reply_entry(*it);
  ASSERT_TRUE(committed.has_value());
  EXPECT_EQ(committed->tag, 7u);
  EXPECT_EQ(committed->zxid, Zxid{0x200000003});
  EXPECT_EQ(committed->code, kReplyCommitted);
  ++it;
  const auto refused = decode_reply_entry(*it);
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->code, 1 + static_cast<std::int32_t>(RejectReason::too_large));
  // Codes out of range, a committed reply without a real zxid, and wrong sizes are refused.
  const auto reply_entry = [](std::int64_t zxid, std::int32_t code) {
    ByteBuffer e;
    be64(e, 1);
    be64(e, zxid);
    be32(e, code);
    return e;
  };
  for (const auto& [zxid, code] : std::vector<std::pair<std::int64_t, std::int32_t>>{
           {0x100000001, -1}, {0x100000001, kLastReplyCode + 1}, {0, kReplyCommitted},
           {0x100000000, kReplyCommitted}, {-1, kReplyCommitted}}) {
    const ByteBuffer e = reply_entry(zxid, code);
    EXPECT_EQ(decode_reply_entry(Bytes(e)).error(), DecodeError::bad_payload_size) << zxid << " " << code;
  }
  ByteBuffer longer = reply_entry(0x100000001, 0);
  longer.push_back(std::byte{0});
  EXPECT_EQ(decode_reply_entry(Bytes(longer)).error(), DecodeError::bad_payload_size);
}

TEST(CodecPacket, UnknownType) {
  for (std::int32_t t : {0, 20, -1, 255, kI32Min, kI32Max}) {
    EXPECT_EQ(error_of(quorum_frame(t, 0, -1, Bytes{}, -1)), DecodeError::unknown_packet_type) << t;
    // Known before the rest is read.
    ByteBuffer b{std::byte{2}};
    be32(b, t);
    EXPECT_EQ(error_of(b), DecodeError::unknown_packet_type) << t;
  }
}

TEST(CodecPacket, BadDataLength) {
  const ByteBuffer data = text("abcd");
  for (std::int32_t len : {-2, -100, kI32Min}) {
    EXPECT_EQ(error_of(quorum_frame(2, 1, len, view(data), -1)), DecodeError::bad_data_length) << len;
  }
  // Larger than everything that remains (the 4 data bytes and the 4 authinfo bytes).
  for (std::int32_t len : {9, 100, kI32Max}) {
    EXPECT_EQ(error_of(quorum_frame(2, 1, len, view(data), -1)), DecodeError::bad_data_length) << len;
  }
  // 5..8 swallows part or all of the authinfo count, which then runs past the end.
  for (std::int32_t len : {5, 8}) {
    EXPECT_EQ(error_of(quorum_frame(2, 1, len, view(data), -1)), DecodeError::truncated) << len;
  }
}

TEST(CodecPacket, BadAuthCount) {
  for (std::int32_t auth : {1, 2, -2, kI32Min, kI32Max}) {
    EXPECT_EQ(error_of(quorum_frame(1, -1, -1, Bytes{}, auth)), DecodeError::bad_auth_count) << auth;
  }
  EXPECT_TRUE(decode_frame(view(quorum_frame(1, -1, -1, Bytes{}, 0))).has_value());
  EXPECT_TRUE(decode_frame(view(quorum_frame(1, -1, -1, Bytes{}, -1))).has_value());
}

TEST(CodecPacket, TrailingBytes) {
  ByteBuffer out;
  encode_packet(PacketType::ping, Zxid{1}, Bytes{}, out);
  out.push_back(std::byte{0});
  EXPECT_EQ(error_of(out), DecodeError::trailing_bytes);
  // A trailing authinfo entry (count 0 followed by garbage) is trailing too.
  ByteBuffer b = quorum_frame(5, 1, -1, Bytes{}, 0);
  raw(b, view(hex("0000000000000000")));
  EXPECT_EQ(error_of(b), DecodeError::trailing_bytes);
}

// ---- typed payloads ----

TEST(CodecLearnerInfo, KnownBytesAndRoundTrip) {
  const LearnerInfo info{ServerId{7}, kLearnerProtocolVersion, 0x100000000};
  ByteBuffer out;
  encode_learner_info(PacketType::followerinfo, Zxid::make(Epoch{3}, 0), info, out);
  EXPECT_EQ(to_hex(view(out)),
            to_hex(view(hex("02 0000000b 0000000300000000 00000014 "
                            "0000000000000007 00010000 0000000100000000 ffffffff"))));
  const Frame f = decoded(out);
  EXPECT_EQ(f.packet.type, PacketType::followerinfo);
  auto li = decode_learner_info(f.packet.data);
  ASSERT_TRUE(li.has_value());
  EXPECT_EQ(li->server, info.server);
  EXPECT_EQ(li->protocol_version, info.protocol_version);
  EXPECT_EQ(li->config_version, info.config_version);

  const LearnerInfo extreme{ServerId{kI64Min}, kI32Min, kI64Max};
  out.clear();
  encode_learner_info(PacketType::observerinfo, kNoZxid, extreme, out);
  const Frame g = decoded(out);
  EXPECT_EQ(g.packet.type, PacketType::observerinfo);
  li = decode_learner_info(g.packet.data);
  ASSERT_TRUE(li.has_value());
  EXPECT_EQ(li->server, extreme.server);
  EXPECT_EQ(li->protocol_version, extreme.protocol_version);
  EXPECT_EQ(li->config_version, extreme.config_version);
}

TEST(CodecLearnerInfo, WrongSize) {
  const ByteBuffer b(32, std::byte{1});
  for (std::size_t n : {0, 4, 8, 12, 16, 19, 21, 32}) {
    auto li = decode_learner_info(view(b).first(n));
    ASSERT_FALSE(li.has_value()) << n;
    EXPECT_EQ(li.error(), DecodeError::bad_payload_size);
  }
  EXPECT_TRUE(decode_learner_info(view(b).first(20)).has_value());
}

TEST(CodecInt32, LeaderInfoRoundTripAndWrongSize) {
  ByteBuffer out;
  encode_int32_packet(PacketType::leaderinfo, Zxid::make(Epoch{4}, 0), kLearnerProtocolVersion, out);
  EXPECT_EQ(to_hex(view(out)),
            to_hex(view(hex("02 00000011 0000000400000000 00000004 00010000 ffffffff"))));
  const Frame f = decoded(out);
  auto v = decode_int32(f.packet.data);
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(*v, kLearnerProtocolVersion);
  for (std::int32_t x : {kI32Min, -1, 0, kI32Max}) {
    out.clear();
    encode_int32_packet(PacketType::ackepoch, Zxid{1}, x, out);
    v = decode_int32(decoded(out).packet.data);
    ASSERT_TRUE(v.has_value());
    EXPECT_EQ(*v, x);
  }
  const ByteBuffer b(8, std::byte{0});
  for (std::size_t n : {0, 1, 3, 5, 8}) {
    v = decode_int32(view(b).first(n));
    ASSERT_FALSE(v.has_value());
    EXPECT_EQ(v.error(), DecodeError::bad_payload_size);
  }
}

TEST(CodecAckEpoch, FastzabFormRoundTrip) {
  ByteBuffer out;
  encode_ackepoch(Zxid{0x300000005}, AckEpochInfo{3, Zxid{0x300000004}, 4}, out);
  EXPECT_EQ(to_hex(view(out)), to_hex(view(hex("02 00000012 0000000300000005 00000010 "
                                               "00000003 0000000300000004 00000004 ffffffff"))));
  const Frame f = decoded(out);
  EXPECT_EQ(f.packet.type, PacketType::ackepoch);
  EXPECT_EQ(f.packet.zxid, Zxid{0x300000005});
  auto a = decode_ackepoch(f.packet.data);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->current_epoch, 3);
  EXPECT_EQ(a->applied, Zxid{0x300000004});
  EXPECT_EQ(a->answered_epoch, 4);

  out.clear();
  encode_ackepoch(kNoZxid, AckEpochInfo{-1, kNoZxid}, out);
  a = decode_ackepoch(decoded(out).packet.data);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->current_epoch, -1);
  EXPECT_EQ(a->applied, kNoZxid);
  EXPECT_EQ(a->answered_epoch, -1);
}

TEST(CodecAckEpoch, ZooKeeperFormAndWrongSize) {
  ByteBuffer out;
  encode_int32_packet(PacketType::ackepoch, Zxid{0x200000007}, 2, out);
  auto a = decode_ackepoch(decoded(out).packet.data);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->current_epoch, 2);
  EXPECT_EQ(a->applied, kNoZxid);
  EXPECT_EQ(a->answered_epoch, -1);

  // 12 bytes was fastzab's form before the answered epoch: refused, not guessed at.
  const ByteBuffer b(20, std::byte{0xff});
  for (std::size_t n : {0, 3, 5, 8, 11, 12, 13, 15, 17, 20}) {
    a = decode_ackepoch(view(b).first(n));
    ASSERT_FALSE(a.has_value()) << n;
    EXPECT_EQ(a.error(), DecodeError::bad_payload_size);
  }
}

// ---- batches ----

std::vector<ByteBuffer> entries_of(const BatchView& v) {
  std::vector<ByteBuffer> out;
  for (Bytes e : v) out.emplace_back(e.begin(), e.end());
  return out;
}

ByteBuffer batch_frame(PacketType type, Zxid first, const std::vector<ByteBuffer>& entries) {
  ByteBuffer out;
  BatchWriter w(type, first, out);
  for (const auto& e : entries) w.add(view(e));
  EXPECT_EQ(w.count(), entries.size());
  w.finish();
  return out;
}

void expect_batch_round_trip(PacketType type, Zxid first, const std::vector<ByteBuffer>& entries) {
  const ByteBuffer out = batch_frame(type, first, entries);
  const Frame f = decoded(out);
  EXPECT_EQ(f.packet.type, type);
  EXPECT_EQ(f.packet.zxid, first);
  auto b = decode_batch(f.packet.data);
  ASSERT_TRUE(b.has_value()) << to_string(b.error());
  EXPECT_EQ(b->size(), entries.size());
  EXPECT_EQ(entries_of(*b), entries);
}

TEST(CodecBatch, KnownBytes) {
  const ByteBuffer out = batch_frame(PacketType::proposal, Zxid{0x100000001}, {text("ab"), text("")});
  EXPECT_EQ(to_hex(view(out)), to_hex(view(hex("02 00000002 0000000100000001 0000000e "
                                               "00000002 00000002 6162 00000000 ffffffff"))));
}

TEST(CodecBatch, RoundTripOneTwoManyAndEmptyEntries) {
  expect_batch_round_trip(PacketType::proposal, Zxid{0x100000001}, {text("x")});
  expect_batch_round_trip(PacketType::inform, Zxid{0x100000001}, {text("first"), text("second")});
  expect_batch_round_trip(PacketType::proposal, Zxid{1}, {ByteBuffer{}});
  expect_batch_round_trip(PacketType::proposal, Zxid{1}, {ByteBuffer{}, text("z"), ByteBuffer{}});

  std::vector<ByteBuffer> many;
  for (std::size_t i = 0; i < 300; ++i) many.emplace_back(i % 7, static_cast<std::byte>(i));
  expect_batch_round_trip(PacketType::proposal, Zxid::make(Epoch{9}, 1), many);

  std::vector<ByteBuffer> max_count(kMaxBatchEntries);
  expect_batch_round_trip(PacketType::inform, Zxid{5}, max_count);

  expect_batch_round_trip(PacketType::proposal, Zxid{5},
                          {ByteBuffer(kMaxLoggedEntryBytes, std::byte{7})});
}

TEST(CodecBatch, WriterAppendsAfterOtherFrames) {
  ByteBuffer out;
  encode_packet(PacketType::commit, Zxid{1}, Bytes{}, out);
  const std::size_t second = out.size();
  {
    BatchWriter w(PacketType::proposal, Zxid{2}, out);
    w.add(view(text("e1")));
    w.add(view(text("e22")));
    w.finish();
  }
  const std::size_t third = out.size();
  encode_packet(PacketType::commit, Zxid{3}, Bytes{}, out);
  EXPECT_EQ(decoded(ByteBuffer(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(second))).packet.zxid, Zxid{1});
  const ByteBuffer batch(out.begin() + static_cast<std::ptrdiff_t>(second),
                         out.begin() + static_cast<std::ptrdiff_t>(third));
  const Frame f = decoded(batch);  // f views into `batch`
  auto b = decode_batch(f.packet.data);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(entries_of(*b), (std::vector<ByteBuffer>{text("e1"), text("e22")}));
}

TEST(CodecBatch, BadCount) {
  for (std::int32_t count : {0, -1, kI32Min, static_cast<std::int32_t>(kMaxBatchEntries + 1), kI32Max}) {
    ByteBuffer d;
    be32(d, count);
    be32(d, 0);
    auto b = decode_batch(view(d));
    ASSERT_FALSE(b.has_value()) << count;
    EXPECT_EQ(b.error(), DecodeError::bad_batch_count) << count;
  }
}

TEST(CodecBatch, BadEntryLength) {
  const auto bad = [](std::int32_t len, std::size_t present) {
    ByteBuffer d;
    be32(d, 1);
    be32(d, len);
    d.resize(d.size() + present, std::byte{1});
    auto b = decode_batch(view(d));
    EXPECT_FALSE(b.has_value()) << len;
    return b.has_value() ? DecodeError::empty_frame : b.error();
  };
  EXPECT_EQ(bad(-1, 0), DecodeError::bad_entry_length);
  EXPECT_EQ(bad(kI32Min, 8), DecodeError::bad_entry_length);
  EXPECT_EQ(bad(5, 4), DecodeError::bad_entry_length);  // past the end
  EXPECT_EQ(bad(kI32Max, 16), DecodeError::bad_entry_length);
  // A log entry is a value of at most kMaxEntryBytes with its header.
  EXPECT_EQ(bad(static_cast<std::int32_t>(kMaxLoggedEntryBytes + 1), kMaxLoggedEntryBytes + 1),
            DecodeError::bad_entry_length);
}

TEST(CodecBatch, TruncatedAndTrailing) {
  const ByteBuffer out = batch_frame(PacketType::proposal, Zxid{1}, {text("abc"), text("de")});
  const Bytes data = decoded(out).packet.data;
  ASSERT_EQ(data.size(), 4u + 7u + 6u);
  for (std::size_t len = 0; len < data.size(); ++len) {
    auto b = decode_batch(data.first(len));
    ASSERT_FALSE(b.has_value()) << len;
    // The count or an entry length cut short is truncation; entry bytes cut short are a length
    // that runs past the end.
    const bool in_length_field = len < 4 || (len >= 4 && len < 8) || (len >= 11 && len < 15);
    EXPECT_EQ(b.error(), in_length_field ? DecodeError::truncated : DecodeError::bad_entry_length) << len;
  }
  ByteBuffer longer(data.begin(), data.end());
  longer.push_back(std::byte{0});
  auto b = decode_batch(view(longer));
  ASSERT_FALSE(b.has_value());
  EXPECT_EQ(b.error(), DecodeError::trailing_bytes);
}

TEST(CodecBatchDeathTest, WriterMisuse) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        ByteBuffer out;
        BatchWriter w(PacketType::proposal, Zxid{1}, out);
        w.finish();
      },
      "count_ >= 1");
  EXPECT_DEATH(
      {
        ByteBuffer out;
        BatchWriter w(PacketType::proposal, Zxid{1}, out);
        w.add(Bytes{});
        w.finish();
        w.finish();
      },
      "finished_");
  EXPECT_DEATH(
      {
        ByteBuffer out;
        BatchWriter w(PacketType::proposal, Zxid{1}, out);
        const ByteBuffer big(kMaxLoggedEntryBytes + 1);
        w.add(view(big));
      },
      "kMaxLoggedEntryBytes");
}

TEST(CodecDeathTest, EncodersRefuseUndecodableFrames) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        const ByteBuffer big(kMaxConfigBytes + 1);
        Notification n;
        n.config = view(big);
        ByteBuffer out;
        encode_notification(n, out);
      },
      "kMaxConfigBytes");
  EXPECT_DEATH(
      {
        ByteBuffer out;
        encode_packet(static_cast<PacketType>(0), Zxid{1}, Bytes{}, out);
      },
      "valid_packet_type");
}

// ---- every DecodeError value is reachable ----

TEST(CodecErrors, EveryValueProvoked) {
  std::set<DecodeError> seen;
  const auto note = [&](auto result) {
    ASSERT_FALSE(result.has_value());
    seen.insert(result.error());
  };
  note(decode_frame(Bytes{}));
  note(decode_frame(view(hex("03"))));
  {
    const ByteBuffer huge(kMaxFrameBytes + 1, std::byte{1});
    note(decode_frame(view(huge)));
  }
  note(decode_frame(view(hex("01 00000000"))));
  {
    ByteBuffer out;
    encode_packet(PacketType::ping, Zxid{1}, Bytes{}, out);
    out.push_back(std::byte{0});
    note(decode_frame(view(out)));
  }
  note(decode_frame(view(hex("01 00000009 0000000000000001 0000000000000001 0000000000000001"))));
  note(decode_frame(view(hex("01 00000000 0000000000000001 0000000000000001 0000000000000001 "
                             "0000000000000001 00000002 ffffffff"))));
  note(decode_frame(view(quorum_frame(99, 0, -1, Bytes{}, -1))));
  note(decode_frame(view(quorum_frame(2, 0, -7, Bytes{}, -1))));
  note(decode_frame(view(quorum_frame(2, 0, -1, Bytes{}, 3))));
  note(decode_batch(view(hex("00000000"))));
  note(decode_batch(view(hex("00000001 ffffffff"))));
  note(decode_int32(view(hex("0000"))));
  const int count = static_cast<int>(DecodeError::bad_payload_size) + 1;
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(count));
}

// ---- randomized mutation ----

class Mutator {
 public:
  explicit Mutator(std::uint64_t seed) : rng_(seed) {}

  std::uint64_t u64() { return rng_(); }
  std::size_t below(std::size_t n) { return n == 0 ? 0 : static_cast<std::size_t>(rng_() % n); }
  bool coin() { return (rng_() & 1) != 0; }

  std::int64_t interesting64() {
    static constexpr std::int64_t kValues[] = {0, 1, -1, 2, 0x100000000, 0x7fffffff, -0x80000000LL,
                                               kI64Min, kI64Max};
    return coin() ? kValues[below(std::size(kValues))] : static_cast<std::int64_t>(u64());
  }
  std::int32_t interesting32() {
    static constexpr std::int32_t kValues[] = {0, 1, -1, -2, 2, 3, 4, 19, 20, 28, 40, 44,
                                               0x7fffffff, kI32Min, 0x10000};
    return coin() ? kValues[below(std::size(kValues))] : static_cast<std::int32_t>(u64());
  }
  ByteBuffer bytes(std::size_t max) {
    ByteBuffer b(below(max + 1));
    for (auto& x : b) x = static_cast<std::byte>(u64() & 0xff);
    return b;
  }

  // A valid frame of a random shape.
  ByteBuffer valid_frame() {
    ByteBuffer out;
    switch (below(6)) {
      case 0: {
        Notification n;
        n.state = static_cast<PeerState>(below(4));
        n.leader = ServerId{interesting64()};
        n.zxid = Zxid{interesting64()};
        n.round = interesting64();
        n.peer_epoch = Epoch{interesting64()};
        n.version = coin() ? 2 : static_cast<std::int32_t>(below(3));
        const ByteBuffer config = n.version > 1 ? bytes(40) : ByteBuffer{};
        n.config = view(config);
        encode_notification(n, out);
        break;
      }
      case 1: {
        const ByteBuffer data = bytes(32);
        encode_packet(static_cast<PacketType>(1 + below(19)), Zxid{interesting64()}, view(data), out);
        break;
      }
      case 2:
        encode_learner_info(coin() ? PacketType::followerinfo : PacketType::observerinfo,
                            Zxid{interesting64()},
                            LearnerInfo{ServerId{interesting64()}, interesting32(), interesting64()}, out);
        break;
      case 3:
        encode_int32_packet(coin() ? PacketType::leaderinfo : PacketType::ackepoch, Zxid{interesting64()},
                            interesting32(), out);
        break;
      case 4:
        encode_ackepoch(Zxid{interesting64()},
                        AckEpochInfo{interesting32(), Zxid{interesting64()}, interesting32()}, out);
        break;
      default: {
        BatchWriter w(coin() ? PacketType::proposal : PacketType::inform, Zxid{interesting64()}, out);
        const std::size_t n = 1 + below(5);
        for (std::size_t i = 0; i < n; ++i) {
          const ByteBuffer e = bytes(12);
          w.add(view(e));
        }
        w.finish();
        break;
      }
    }
    return out;
  }

  void mutate(ByteBuffer& b) {
    const std::size_t steps = 1 + below(4);
    for (std::size_t s = 0; s < steps; ++s) {
      switch (below(7)) {
        case 0:  // flip a bit
          if (!b.empty()) b[below(b.size())] ^= static_cast<std::byte>(1u << below(8));
          break;
        case 1:  // set a byte
          if (!b.empty()) b[below(b.size())] = static_cast<std::byte>(u64() & 0xff);
          break;
        case 2:  // truncate
          b.resize(below(b.size() + 1));
          break;
        case 3:  // insert bytes
        {
          const ByteBuffer more = bytes(6);
          b.insert(b.begin() + static_cast<std::ptrdiff_t>(below(b.size() + 1)), more.begin(), more.end());
          break;
        }
        case 4:  // erase a range
          if (!b.empty()) {
            const std::size_t at = below(b.size());
            const std::size_t n = 1 + below(std::min<std::size_t>(8, b.size() - at));
            b.erase(b.begin() + static_cast<std::ptrdiff_t>(at), b.begin() + static_cast<std::ptrdiff_t>(at + n));
          }
          break;
        case 5:  // overwrite an int32 (lengths, counts, types, states) with an interesting value
          if (b.size() >= 4) {
            const std::size_t at = below(b.size() - 3);
            const auto v = static_cast<std::uint32_t>(interesting32());
            for (std::size_t i = 0; i < 4; ++i) b[at + i] = static_cast<std::byte>((v >> (24 - 8 * i)) & 0xff);
          }
          break;
        default:  // append bytes
        {
          const ByteBuffer more = bytes(8);
          b.insert(b.end(), more.begin(), more.end());
          break;
        }
      }
    }
  }

 private:
  std::mt19937_64 rng_;
};

// Decodes `frame`; when it succeeds, re-encodes and checks the fields survive. Returns success.
bool check_round_trip(const ByteBuffer& frame) {
  auto f = decode_frame(view(frame));
  if (!f) return false;
  ByteBuffer again;
  if (f->kind == FrameKind::notification) {
    const Notification& n = f->notification;
    EXPECT_TRUE(inside(n.config, view(frame)));
    EXPECT_TRUE(n.version > 1 || (n.version == 0 && n.config.empty()));
    encode_notification(n, again);
    const Frame g = decoded(again);
    EXPECT_EQ(g.kind, FrameKind::notification);
    expect_same(g.notification, n);
    if (n.version > 1) {
      EXPECT_EQ(to_hex(view(again)), to_hex(view(frame)));
    }
    return true;
  }
  const QuorumPacket& p = f->packet;
  EXPECT_TRUE(inside(p.data, view(frame)));
  encode_packet(p.type, p.zxid, p.data, again);
  const Frame g = decoded(again);
  EXPECT_EQ(g.kind, FrameKind::quorum);
  EXPECT_EQ(g.packet.type, p.type);
  EXPECT_EQ(g.packet.zxid, p.zxid);
  EXPECT_TRUE(same_bytes(g.packet.data, p.data));
  if (auto b = decode_batch(p.data)) {
    std::size_t n = 0;
    for (Bytes e : *b) {
      EXPECT_TRUE(inside(e, p.data));
      ++n;
    }
    EXPECT_EQ(n, b->size());
  }
  if (auto li = decode_learner_info(p.data)) {
    ByteBuffer x;
    encode_learner_info(p.type, p.zxid, *li, x);
    EXPECT_EQ(to_hex(view(x)), to_hex(view(frame)).substr(0, 2 * x.size() - 8) + "ffffffff");
  }
  if (auto a = decode_ackepoch(p.data)) {
    ByteBuffer x;
    encode_ackepoch(p.zxid, *a, x);
    auto a2 = decode_ackepoch(decoded(x).packet.data);
    EXPECT_TRUE(a2.has_value());
    if (a2) {
      EXPECT_EQ(a2->current_epoch, a->current_epoch);
      EXPECT_EQ(a2->applied, a->applied);
      EXPECT_EQ(a2->answered_epoch, a->answered_epoch);
    }
  }
  return true;
}

TEST(CodecRandom, MutatedFramesNeverCrashAndRoundTrip) {
  Mutator m(0x5eedf00dcafe1234ULL);
  std::size_t decoded_ok = 0;
  std::set<DecodeError> errors;
  constexpr int kIterations = 200000;
  for (int i = 0; i < kIterations; ++i) {
    ByteBuffer frame = m.valid_frame();
    ASSERT_TRUE(check_round_trip(frame)) << to_hex(view(frame));
    m.mutate(frame);
    // Exactly sized copy so that an over-read would touch memory past the allocation.
    const ByteBuffer exact(frame.begin(), frame.end());
    if (check_round_trip(exact)) {
      ++decoded_ok;
    } else {
      errors.insert(decode_frame(view(exact)).error());
    }
    if (HasFailure()) {
      ADD_FAILURE() << "iteration " << i << ": " << to_hex(view(exact));
      return;
    }
  }
  // The mutations both keep some frames valid and reach most decode errors.
  EXPECT_GT(decoded_ok, static_cast<std::size_t>(kIterations / 20));
  EXPECT_GE(errors.size(), 8u);
}


// Every log entry starts with a header naming its writer (exactly-once writes): anonymous, or a
// client id and sequence. Anything else, including a record from before headers, is refused.
TEST(CodecEntry, HeadersRoundTripAndAnythingElseIsRefused) {
  const ByteBuffer value{std::byte{'v'}, std::byte{'a'}, std::byte{'l'}};
  for (const WriteId id : {WriteId{}, WriteId{7, 1}, WriteId{~std::uint64_t{0}, ~std::uint64_t{0}}}) {
    ByteBuffer entry;
    encode_entry_header(id, entry);
    EXPECT_EQ(entry.size(), entry_header_bytes(id));
    entry.insert(entry.end(), value.begin(), value.end());
    const auto e = decode_entry(Bytes(entry));
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->id, id);
    EXPECT_TRUE(std::equal(e->value.begin(), e->value.end(), value.begin(), value.end()));
  }
  EXPECT_EQ(decode_entry(Bytes{}).error(), DecodeError::bad_entry_header);
  EXPECT_EQ(decode_entry(Bytes(value)).error(), DecodeError::bad_entry_header);
  // An identified header cut short, and one naming client 0 (which means anonymous).
  ByteBuffer cut;
  encode_entry_header(WriteId{5, 5}, cut);
  cut.pop_back();
  EXPECT_EQ(decode_entry(Bytes(cut)).error(), DecodeError::bad_entry_header);
  ByteBuffer zero(kMaxEntryHeaderBytes, std::byte{0});
  zero[0] = kIdentifiedEntry;
  EXPECT_EQ(decode_entry(Bytes(zero)).error(), DecodeError::bad_entry_header);
  ByteBuffer too_big(1 + kMaxEntryBytes + 1, std::byte{1});
  too_big[0] = kAnonymousEntry;
  EXPECT_EQ(decode_entry(Bytes(too_big)).error(), DecodeError::bad_entry_length);
}

// A snapshot is the client table, then the application's state; both parts are checked.
TEST(CodecSnapshot, SplitsTheClientTableFromTheApplicationState) {
  const std::vector<ClientRecord> records{{3, 9, Zxid{0x100000004}}, {8, 1, Zxid{0x100000002}}};
  ByteBuffer snapshot;
  encode_client_records(records, snapshot);
  const std::size_t table_bytes = snapshot.size();
  snapshot.push_back(std::byte{'a'});
  snapshot.push_back(std::byte{'p'});
  const auto parts = split_snapshot(Bytes(snapshot));
  ASSERT_TRUE(parts.has_value());
  EXPECT_EQ(parts->client_table.size(), table_bytes);
  EXPECT_EQ(parts->app_state.size(), 2u);
  std::vector<ClientRecord> back;
  ASSERT_EQ(decode_client_records(parts->client_table, back), 2u);
  EXPECT_EQ(back[0].client, 3u);
  EXPECT_EQ(back[0].seq, 9u);
  EXPECT_EQ(back[1].zxid, (Zxid{0x100000002}));
  // An application state alone (no table), a count past the end, and a record of client 0.
  EXPECT_EQ(split_snapshot(Bytes(snapshot).subspan(table_bytes)).error(),
            DecodeError::bad_entry_header);
  ByteBuffer cut(snapshot.begin(), snapshot.begin() + static_cast<std::ptrdiff_t>(table_bytes - 1));
  EXPECT_EQ(split_snapshot(Bytes(cut)).error(), DecodeError::truncated);
  ByteBuffer zero_client;
  encode_client_records(std::vector<ClientRecord>{{0, 1, Zxid{0x100000001}}}, zero_client);
  EXPECT_EQ(decode_client_records(Bytes(zero_client), back).error(), DecodeError::bad_payload_size);
}

}  // namespace
}  // namespace fastzab::core
