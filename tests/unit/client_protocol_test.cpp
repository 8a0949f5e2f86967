// The client port's frames (engine/runtime/client_protocol.h): a round trip of every message
// type, the exact bytes of one frame per type, need_more for every proper prefix of a frame,
// each way a frame is refused (write_once: short of its ids, or client id 0), a seeded random-bytes loop (no crash, never consumes more than it
// was given, a decoded frame re-encodes to the bytes it came from), and four_letter_word().
#include "engine/runtime/client_protocol.h"

#include "engine/core/io.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace fastzab::runtime::client {
namespace {

using Bytes = std::vector<std::byte>;

Bytes bytes(std::initializer_list<unsigned> values) {
  Bytes out;
  for (unsigned v : values) out.push_back(static_cast<std::byte>(v));
  return out;
}
Bytes bytes(std::string_view text) {
  Bytes out;
  for (char c : text) out.push_back(static_cast<std::byte>(c));
  return out;
}
std::span<const std::byte> view(std::string_view text) {
  return {reinterpret_cast<const std::byte*>(text.data()), text.size()};
}
std::string text(std::span<const std::byte> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}
Bytes encoded(const Message& m) {
  Bytes out;
  encode(m, out);
  return out;
}
void append_u32(Bytes& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::byte>(v >> (8 * i)));
}
void append_u64(Bytes& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::byte>(v >> (8 * i)));
}
// A frame by hand: length prefix from the body's size, then type, id, fields.
Bytes frame(std::uint8_t type, std::uint64_t id, const Bytes& fields) {
  Bytes out;
  append_u32(out, static_cast<std::uint32_t>(kHeaderBytes + fields.size()));
  out.push_back(static_cast<std::byte>(type));
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::byte>(id >> (8 * i)));
  out.insert(out.end(), fields.begin(), fields.end());
  return out;
}

Decoded decode_all(const Bytes& in, Message& m, std::size_t& consumed) {
  consumed = 0;
  return decode(std::span<const std::byte>(in), m, consumed);
}

Message write_msg(std::uint64_t id, std::string_view value) {
  Message m;
  m.type = Type::write;
  m.id = id;
  m.body = view(value);
  return m;
}
Message write_once_msg(std::uint64_t id, std::uint64_t client, std::uint64_t seq,
                       std::string_view value) {
  Message m;
  m.type = Type::write_once;
  m.id = id;
  m.client = client;
  m.seq = seq;
  m.body = view(value);
  return m;
}
Message status_msg(std::uint64_t id) {
  Message m;
  m.type = Type::status;
  m.id = id;
  return m;
}
Message write_ok_msg(std::uint64_t id, std::uint64_t zxid) {
  Message m;
  m.type = Type::write_ok;
  m.id = id;
  m.zxid = zxid;
  return m;
}
Message status_ok_msg(std::uint64_t id, std::string_view json) {
  Message m;
  m.type = Type::status_ok;
  m.id = id;
  m.body = view(json);
  return m;
}
Message error_msg(std::uint64_t id, ErrorCode code, std::string_view what) {
  Message m;
  m.type = Type::error;
  m.id = id;
  m.code = code;
  m.body = view(what);
  return m;
}

// Decodes `m`'s frame (with trailing bytes after it, which must be left alone) and checks every
// field that type carries.
void expect_round_trip(const Message& m) {
  Bytes in = encoded(m);
  const std::size_t frame_size = in.size();
  in.push_back(std::byte{0x5a});  // the start of a next frame: not consumed
  Message got;
  std::size_t consumed = 0;
  ASSERT_EQ(decode_all(in, got, consumed), Decoded::message);
  EXPECT_EQ(consumed, frame_size);
  EXPECT_EQ(got.type, m.type);
  EXPECT_EQ(got.id, m.id);
  switch (m.type) {
    case Type::write:
    case Type::status_ok:
      EXPECT_EQ(text(got.body), text(m.body));
      break;
    case Type::write_once:
      EXPECT_EQ(got.client, m.client);
      EXPECT_EQ(got.seq, m.seq);
      EXPECT_EQ(text(got.body), text(m.body));
      break;
    case Type::status: EXPECT_TRUE(got.body.empty()); break;
    case Type::write_ok: EXPECT_EQ(got.zxid, m.zxid); break;
    case Type::transfer:
    case Type::transfer_ok: EXPECT_EQ(got.server, m.server); break;
    case Type::error:
      EXPECT_EQ(got.code, m.code);
      EXPECT_EQ(text(got.body), text(m.body));
      break;
  }
  // The body views into the input, not into a copy.
  if (!got.body.empty()) {
    EXPECT_GE(got.body.data(), in.data());
    EXPECT_LE(got.body.data() + got.body.size(), in.data() + frame_size);
  }
}

TEST(ClientProtocolTest, RoundTripEveryType) {
  const std::string big(kMaxValueBytes, 'v');
  for (std::uint64_t id : {0ull, 1ull, 0x0102030405060708ull, ~0ull}) {
    SCOPED_TRACE(id);
    expect_round_trip(write_msg(id, "hello"));
    expect_round_trip(write_msg(id, ""));
    expect_round_trip(write_msg(id, std::string_view("\0\xff\x01", 3)));
    expect_round_trip(write_msg(id, big));
    expect_round_trip(write_once_msg(id, 1, 0, "hello"));
    expect_round_trip(write_once_msg(id, ~0ull, ~0ull, ""));
    expect_round_trip(write_once_msg(id, 0x0102030405060708ull, 42, big));
    expect_round_trip(status_msg(id));
    expect_round_trip(write_ok_msg(id, 0));
    expect_round_trip(write_ok_msg(id, 0x0000000100000005ull));
    expect_round_trip(write_ok_msg(id, ~0ull));
    expect_round_trip(status_ok_msg(id, R"({"id":1,"role":"leader"})"));
    expect_round_trip(status_ok_msg(id, ""));
    for (ErrorCode c : {ErrorCode::no_leader, ErrorCode::too_large, ErrorCode::bad_request,
                        ErrorCode::unavailable, ErrorCode::rejected, ErrorCode::transfer_refused,
                        ErrorCode::unknown_outcome, ErrorCode::stale_sequence}) {
      expect_round_trip(error_msg(id, c, "why"));
      expect_round_trip(error_msg(id, c, ""));
    }
  }
}

// One vocabulary: a failed write's error code is its WriteOutcome's value (and its text the
// outcome's name); only `stopped` is sent as unknown_outcome. The core's refusal reasons fold
// into the refusals, which promise that nothing was proposed.
TEST(ClientProtocolTest, WriteErrorCodesAreTheCoresOutcomes) {
  for (WriteOutcome w : {WriteOutcome::no_leader, WriteOutcome::too_large, WriteOutcome::rejected,
                         WriteOutcome::unknown_outcome, WriteOutcome::stale_sequence}) {
    EXPECT_EQ(static_cast<int>(error_code(w)), static_cast<int>(w)) << to_string(w);
    EXPECT_STREQ(to_string(error_code(w)), fastzab::to_string(w));
  }
  EXPECT_EQ(error_code(WriteOutcome::stopped), ErrorCode::unknown_outcome);
  EXPECT_FALSE(refused(WriteOutcome::committed));
  EXPECT_FALSE(refused(WriteOutcome::unknown_outcome));
  EXPECT_FALSE(refused(WriteOutcome::stopped));
  using core::RejectReason;
  EXPECT_EQ(core::outcome_of(RejectReason::not_leader), WriteOutcome::no_leader);
  EXPECT_EQ(core::outcome_of(RejectReason::not_established), WriteOutcome::no_leader);
  EXPECT_EQ(core::outcome_of(RejectReason::transferring), WriteOutcome::no_leader);
  EXPECT_EQ(core::outcome_of(RejectReason::zxid_exhausted), WriteOutcome::rejected);
  EXPECT_EQ(core::outcome_of(RejectReason::too_large), WriteOutcome::too_large);
  EXPECT_EQ(core::outcome_of(RejectReason::stale_sequence), WriteOutcome::stale_sequence);
  for (RejectReason r : {RejectReason::not_leader, RejectReason::not_established, RejectReason::transferring,
                         RejectReason::zxid_exhausted, RejectReason::too_large, RejectReason::stale_sequence}) {
    EXPECT_TRUE(refused(core::outcome_of(r))) << core::to_string(r);
  }
}

TEST(ClientProtocolTest, EncodeAppends) {
  Bytes out = bytes({0xaa});
  encode(status_msg(1), out);
  ASSERT_EQ(out.size(), 1u + 4 + 9);
  EXPECT_EQ(out[0], std::byte{0xaa});
  encode(status_msg(2), out);
  EXPECT_EQ(out.size(), 1u + 2 * (4 + 9));
}

TEST(ClientProtocolTest, WriteLayout) {
  EXPECT_EQ(encoded(write_msg(0x0102030405060708ull, "abc")),
            bytes({0x0c, 0, 0, 0,                                    // length 12, little-endian
                   0x01,                                             // write
                   0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,  // id, little-endian
                   'a', 'b', 'c'}));
}

TEST(ClientProtocolTest, WriteOnceLayout) {
  EXPECT_EQ(encoded(write_once_msg(5, 0x0102030405060708ull, 0x1122, "ab")),
            bytes({0x1b, 0, 0, 0,                                    // length 27, little-endian
                   0x04,                                             // write_once
                   5, 0, 0, 0, 0, 0, 0, 0,                           // id
                   0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,  // client id, little-endian
                   0x22, 0x11, 0, 0, 0, 0, 0, 0,                     // sequence, little-endian
                   'a', 'b'}));
}

TEST(ClientProtocolTest, StatusLayout) {
  EXPECT_EQ(encoded(status_msg(0x1122)),
            bytes({0x09, 0, 0, 0, 0x02, 0x22, 0x11, 0, 0, 0, 0, 0, 0}));
}

TEST(ClientProtocolTest, WriteOkLayout) {
  EXPECT_EQ(encoded(write_ok_msg(7, 0x0000000300000042ull)),
            bytes({0x11, 0, 0, 0, 0x81, 7, 0, 0, 0, 0, 0, 0, 0,  //
                   0x42, 0, 0, 0, 0x03, 0, 0, 0}));
}

TEST(ClientProtocolTest, StatusOkLayout) {
  EXPECT_EQ(encoded(status_ok_msg(0x100, "{}")),
            bytes({0x0b, 0, 0, 0, 0x82, 0, 1, 0, 0, 0, 0, 0, 0, '{', '}'}));
}

TEST(ClientProtocolTest, ErrorLayout) {
  EXPECT_EQ(encoded(error_msg(9, ErrorCode::unavailable, "no")),
            bytes({0x0c, 0, 0, 0, 0xe1, 9, 0, 0, 0, 0, 0, 0, 0, 0x04, 'n', 'o'}));
  EXPECT_EQ(encoded(error_msg(9, ErrorCode::no_leader, ""))[13], std::byte{1});
  EXPECT_EQ(encoded(error_msg(9, ErrorCode::too_large, ""))[13], std::byte{2});
  EXPECT_EQ(encoded(error_msg(9, ErrorCode::bad_request, ""))[13], std::byte{3});
  EXPECT_EQ(encoded(error_msg(9, ErrorCode::rejected, ""))[13], std::byte{5});
  EXPECT_EQ(encoded(error_msg(9, ErrorCode::transfer_refused, ""))[13], std::byte{6});
  EXPECT_EQ(encoded(error_msg(9, ErrorCode::unknown_outcome, ""))[13], std::byte{7});
  EXPECT_EQ(encoded(error_msg(9, ErrorCode::stale_sequence, ""))[13], std::byte{8});
}

TEST(ClientProtocolTest, LengthPrefixIsLittleEndian) {
  const std::string value(0x0203 - kHeaderBytes, 'x');  // body length 0x0203
  const Bytes out = encoded(write_msg(1, value));
  ASSERT_GE(out.size(), 4u);
  EXPECT_EQ(out[0], std::byte{0x03});
  EXPECT_EQ(out[1], std::byte{0x02});
  EXPECT_EQ(out[2], std::byte{0x00});
  EXPECT_EQ(out[3], std::byte{0x00});
  EXPECT_EQ(out.size(), 4u + 0x0203);
}

TEST(ClientProtocolTest, EveryProperPrefixNeedsMore) {
  const std::vector<Message> messages = {
      write_msg(3, "some value"), write_msg(3, ""),          status_msg(4),
      write_once_msg(3, 9, 1, "v"), write_once_msg(3, 9, 2, ""),
      write_ok_msg(5, 0x42),      status_ok_msg(6, "{\"a\":1}"),
      error_msg(7, ErrorCode::rejected, "text")};
  for (const Message& m : messages) {
    const Bytes full = encoded(m);
    SCOPED_TRACE(static_cast<int>(m.type));
    for (std::size_t n = 0; n < full.size(); ++n) {
      Message got;
      std::size_t consumed = 1234;
      EXPECT_EQ(decode(std::span<const std::byte>(full.data(), n), got, consumed),
                Decoded::need_more)
          << "prefix of " << n << " bytes";
      EXPECT_EQ(consumed, 1234u) << "consumed set without a message, prefix " << n;
    }
  }
}

TEST(ClientProtocolTest, TwoFramesDecodeOneAtATime) {
  Bytes in = encoded(write_msg(1, "first"));
  encode(status_msg(2), in);
  Message m;
  std::size_t consumed = 0;
  ASSERT_EQ(decode_all(in, m, consumed), Decoded::message);
  EXPECT_EQ(m.type, Type::write);
  EXPECT_EQ(text(m.body), "first");
  const std::size_t first = consumed;
  ASSERT_EQ(decode(std::span<const std::byte>(in).subspan(first), m, consumed), Decoded::message);
  EXPECT_EQ(m.type, Type::status);
  EXPECT_EQ(m.id, 2u);
  EXPECT_EQ(first + consumed, in.size());
}

Decoded decode_bytes(const Bytes& in) {
  Message m;
  std::size_t consumed = 0;
  return decode_all(in, m, consumed);
}

TEST(ClientProtocolTest, LengthBelowHeaderIsBad) {
  for (std::uint32_t len = 0; len < kHeaderBytes; ++len) {
    Bytes prefix;
    append_u32(prefix, len);
    // Decided from the prefix alone, and the same with the bytes the length announces present.
    // (Built whole rather than by resize(): GCC 12 at -O3 warns falsely about the fill.)
    EXPECT_EQ(decode_bytes(prefix), Decoded::bad) << "length " << len;
    Bytes whole(4 + kHeaderBytes, std::byte{0x01});
    std::copy(prefix.begin(), prefix.end(), whole.begin());
    EXPECT_EQ(decode_bytes(whole), Decoded::bad) << "length " << len;
  }
}

TEST(ClientProtocolTest, LengthAboveTheSkippableMaximumIsBadAtOnce) {
  for (std::uint32_t len : {kMaxSkippedBodyBytes + 1, 0x7fffffffu, 0xffffffffu}) {
    Bytes in;
    append_u32(in, len);
    EXPECT_EQ(decode_bytes(in), Decoded::bad) << "length " << len;
  }
}

TEST(ClientProtocolTest, LengthAboveMaximumIsTooLargeForAWriteAndBadOtherwise) {
  for (std::uint32_t len : {kMaxBodyBytes + 1, kMaxBodyBytes + 1000, kMaxSkippedBodyBytes}) {
    Bytes in;
    append_u32(in, len);
    // The length alone does not say: the type and the id come first.
    EXPECT_EQ(decode_bytes(in), Decoded::need_more) << "length " << len;
    Bytes write = in;
    write.push_back(std::byte{0x01});
    append_u64(write, 0x1122334455667788ull);
    Message m;
    std::size_t consumed = 0;
    ASSERT_EQ(decode_all(write, m, consumed), Decoded::too_large) << "length " << len;
    EXPECT_EQ(m.id, 0x1122334455667788ull);
    EXPECT_EQ(consumed, std::size_t{4} + len);  // the whole frame, to skip
    Bytes once = in;  // a write_once too, before its ids have arrived
    once.push_back(std::byte{0x04});
    append_u64(once, 0x99);
    ASSERT_EQ(decode_all(once, m, consumed), Decoded::too_large) << "length " << len;
    EXPECT_EQ(m.type, Type::write_once);
    EXPECT_EQ(m.id, 0x99u);
    EXPECT_EQ(consumed, std::size_t{4} + len);
    for (unsigned type : {0x02u, 0x03u, 0x81u, 0x82u, 0x83u, 0xe1u, 0x00u, 0xffu}) {
      Bytes other = in;
      other.push_back(static_cast<std::byte>(type));
      append_u64(other, 1);
      EXPECT_EQ(decode_bytes(other), Decoded::bad) << "length " << len << " type " << type;
    }
  }
  // The maximum itself is a length: it needs its body.
  Bytes in;
  append_u32(in, kMaxBodyBytes);
  in.push_back(std::byte{0x82});
  EXPECT_EQ(decode_bytes(in), Decoded::need_more);
  in.resize(4 + kMaxBodyBytes);
  EXPECT_EQ(decode_bytes(in), Decoded::message);
}

TEST(ClientProtocolTest, WriteValueAboveMaximumIsTooLarge) {
  // A body within kMaxBodyBytes whose value passes kMaxValueBytes.
  EXPECT_EQ(decode_bytes(frame(0x01, 1, Bytes(kMaxValueBytes, std::byte{'x'}))),
            Decoded::message);
  for (std::size_t value : {std::size_t{kMaxValueBytes} + 1, std::size_t{kMaxBodyBytes - kHeaderBytes}}) {
    const Bytes in = frame(0x01, 7, Bytes(value, std::byte{'x'}));
    Message m;
    std::size_t consumed = 0;
    EXPECT_EQ(decode_all(in, m, consumed), Decoded::too_large) << value;
    EXPECT_EQ(m.id, 7u);
    EXPECT_EQ(consumed, in.size());
  }
}

TEST(ClientProtocolTest, WriteOnceValueAboveMaximumIsTooLarge) {
  Bytes ids;
  append_u64(ids, 3);
  append_u64(ids, 1);
  Bytes fields = ids;
  fields.resize(16 + kMaxValueBytes, std::byte{'x'});
  EXPECT_EQ(decode_bytes(frame(0x04, 1, fields)), Decoded::message);
  fields.push_back(std::byte{'x'});  // kMaxBodyBytes exactly: one byte of value too many
  Message m;
  std::size_t consumed = 0;
  const Bytes in = frame(0x04, 7, fields);
  EXPECT_EQ(decode_all(in, m, consumed), Decoded::too_large);
  EXPECT_EQ(m.id, 7u);
  EXPECT_EQ(consumed, in.size());
}

TEST(ClientProtocolTest, WriteOnceShortOfItsIdsOrAnonymousIsBad) {
  for (std::size_t n = 0; n < 16; ++n) {
    EXPECT_EQ(decode_bytes(frame(0x04, 1, Bytes(n, std::byte{1}))), Decoded::bad) << n;
  }
  EXPECT_EQ(decode_bytes(frame(0x04, 1, Bytes(16, std::byte{1}))), Decoded::message);
  Bytes anonymous;
  append_u64(anonymous, 0);  // client id 0: anonymous writes are plain writes
  append_u64(anonymous, 1);
  EXPECT_EQ(decode_bytes(frame(0x04, 1, anonymous)), Decoded::bad);
  anonymous.push_back(std::byte{'v'});
  EXPECT_EQ(decode_bytes(frame(0x04, 1, anonymous)), Decoded::bad);
}

TEST(ClientProtocolTest, UnknownTypeIsBad) {
  const Bytes known = {std::byte{0x01}, std::byte{0x02}, std::byte{0x03}, std::byte{0x04},
                       std::byte{0x81},
                       std::byte{0x82}, std::byte{0x83}, std::byte{0xe1}};
  for (unsigned t = 0; t < 256; ++t) {
    const auto type = static_cast<std::byte>(t);
    if (std::find(known.begin(), known.end(), type) != known.end()) continue;
    EXPECT_EQ(decode_bytes(frame(static_cast<std::uint8_t>(t), 1, {})), Decoded::bad)
        << "type " << t;
    EXPECT_EQ(decode_bytes(frame(static_cast<std::uint8_t>(t), 1, bytes("12345678"))),
              Decoded::bad)
        << "type " << t;
  }
}

TEST(ClientProtocolTest, StatusWithBodyIsBad) {
  EXPECT_EQ(decode_bytes(frame(0x02, 1, {})), Decoded::message);
  EXPECT_EQ(decode_bytes(frame(0x02, 1, bytes({0}))), Decoded::bad);
  EXPECT_EQ(decode_bytes(frame(0x02, 1, bytes("{}"))), Decoded::bad);
}

TEST(ClientProtocolTest, WriteOkOfWrongSizeIsBad) {
  for (std::size_t n : {0u, 1u, 7u, 9u, 16u}) {
    EXPECT_EQ(decode_bytes(frame(0x81, 1, Bytes(n, std::byte{1}))), Decoded::bad) << n;
  }
  EXPECT_EQ(decode_bytes(frame(0x81, 1, Bytes(8, std::byte{1}))), Decoded::message);
}

TEST(ClientProtocolTest, TransferRoundTripsAndNeedsExactlyItsServerId) {
  for (std::uint8_t type : {std::uint8_t{0x03}, std::uint8_t{0x83}}) {
    Message m;
    m.type = static_cast<Type>(type);
    m.id = 9;
    m.server = 0x0102030405060708ull;
    expect_round_trip(m);
    for (std::size_t n : {0u, 1u, 7u, 9u, 16u}) {
      EXPECT_EQ(decode_bytes(frame(type, 1, Bytes(n, std::byte{1}))), Decoded::bad) << n;
    }
  }
  Message none;
  none.type = Type::transfer;
  none.id = 1;
  none.server = 0;  // the server's choice
  expect_round_trip(none);
}

TEST(ClientProtocolTest, ErrorWithUnknownCodeIsBad) {
  EXPECT_EQ(decode_bytes(frame(0xe1, 1, {})), Decoded::bad);  // no code at all
  for (unsigned code : {0u, 9u, 0x7fu, 0x80u, 0xffu}) {
    EXPECT_EQ(decode_bytes(frame(0xe1, 1, bytes({code, 'x'}))), Decoded::bad) << code;
    EXPECT_EQ(decode_bytes(frame(0xe1, 1, bytes({code}))), Decoded::bad) << code;
  }
  for (unsigned code = 1; code <= kMaxErrorCode; ++code) {
    Message m;
    std::size_t consumed = 0;
    const Bytes in = frame(0xe1, 1, bytes({code, 'x'}));
    ASSERT_EQ(decode_all(in, m, consumed), Decoded::message) << code;
    EXPECT_EQ(static_cast<unsigned>(m.code), code);
    EXPECT_EQ(text(m.body), "x");
  }
}

TEST(ClientProtocolTest, ErrorCodeNames) {
  EXPECT_STREQ(to_string(ErrorCode::no_leader), "no_leader");
  EXPECT_STREQ(to_string(ErrorCode::too_large), "too_large");
  EXPECT_STREQ(to_string(ErrorCode::bad_request), "bad_request");
  EXPECT_STREQ(to_string(ErrorCode::unavailable), "unavailable");
  EXPECT_STREQ(to_string(ErrorCode::rejected), "rejected");
  EXPECT_STREQ(to_string(ErrorCode::transfer_refused), "transfer_refused");
  EXPECT_STREQ(to_string(ErrorCode::unknown_outcome), "unknown_outcome");
  EXPECT_STREQ(to_string(ErrorCode::stale_sequence), "stale_sequence");
}

// Random inputs, some shaped like frames (a small plausible length, a known type) so that the
// loop reaches past the length check. Whatever the bytes: no crash, `consumed` within the input,
// and a decoded message re-encodes to exactly the bytes it consumed.
TEST(ClientProtocolTest, RandomBytesNeverOverrun) {
  std::mt19937_64 rng(0xfa57'2ab0u);
  const std::uint8_t types[] = {0x01, 0x02, 0x04, 0x81, 0x82, 0xe1, 0x00, 0xff};
  std::size_t messages = 0;
  std::size_t need_more = 0;
  std::size_t bad = 0;
  for (int i = 0; i < 100'000; ++i) {
    const std::size_t size = rng() % 48;
    // Exactly the input's size, so that a read past it is one a sanitizer would see.
    Bytes in(size);
    for (auto& b : in) b = static_cast<std::byte>(rng());
    const auto shape = rng() % 4;
    if (shape != 0 && size >= 4) {
      const auto len = static_cast<std::uint32_t>(rng() % 48);
      for (int k = 0; k < 4; ++k) in[k] = static_cast<std::byte>(len >> (8 * k));
      if (size >= 5) in[4] = static_cast<std::byte>(types[rng() % std::size(types)]);
      if (shape == 3 && size >= 14) in[13] = static_cast<std::byte>(rng() % 9);  // error code
    }
    Message m;
    std::size_t consumed = 0;
    const Decoded d = decode(std::span<const std::byte>(in.data(), in.size()), m, consumed);
    switch (d) {
      case Decoded::message: {
        ++messages;
        ASSERT_LE(consumed, in.size()) << "input " << i;
        ASSERT_GE(consumed, 4u + kHeaderBytes) << "input " << i;
        if (!m.body.empty()) {
          ASSERT_GE(m.body.data(), in.data());
          ASSERT_LE(m.body.data() + m.body.size(), in.data() + consumed);
        }
        const Bytes again = encoded(m);
        ASSERT_EQ(again, Bytes(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(consumed)))
            << "input " << i;
        break;
      }
      case Decoded::need_more: ++need_more; break;
      case Decoded::bad: ++bad; break;
      case Decoded::too_large: {
        // Only from a random length above kMaxBodyBytes (the shaped ones stay below it) on a
        // write or write_once: the whole announced frame is to be skipped.
        std::uint32_t len = 0;
        for (int k = 3; k >= 0; --k) len = (len << 8) | static_cast<std::uint8_t>(in[k]);
        ASSERT_GT(len, kMaxBodyBytes) << "input " << i;
        ASSERT_LE(len, kMaxSkippedBodyBytes) << "input " << i;
        ASSERT_TRUE(in[4] == std::byte{0x01} || in[4] == std::byte{0x04}) << "input " << i;
        ASSERT_EQ(consumed, std::size_t{4} + len) << "input " << i;
        break;
      }
    }
  }
  // The loop did reach every outcome (else the shaping above is broken).
  EXPECT_GT(messages, 1000u);
  EXPECT_GT(need_more, 1000u);
  EXPECT_GT(bad, 1000u);
}

TEST(ClientProtocolTest, FourLetterWords) {
  EXPECT_EQ(four_letter_word(view("ruok")), "ruok");
  EXPECT_EQ(four_letter_word(view("srvr")), "srvr");
  EXPECT_EQ(four_letter_word(view("mntr")), "mntr");
  EXPECT_EQ(four_letter_word(view("trce")), "trce");
  for (std::string_view not_one : {"stat", "RUOK", "Ruok", "conf", "dump", "ruo\n", "\0\0\0\0",
                                   "mnt", "", "srv"}) {
    EXPECT_EQ(four_letter_word(view(not_one)), "") << not_one;
  }
  // The start of a frame is never a word.
  EXPECT_EQ(four_letter_word(std::span<const std::byte>(encoded(status_msg(1))).first(4)), "");
}

TEST(ClientProtocolTest, FourLetterWordsAreNotFrames) {
  // Read as a length, each word is above kMaxSkippedBodyBytes: the decoder refuses it outright.
  for (std::string_view word : {"ruok", "srvr", "mntr", "trce", "stat"}) {
    Message m;
    std::size_t consumed = 0;
    EXPECT_EQ(decode(view(word), m, consumed), Decoded::bad) << word;
  }
}

}  // namespace
}  // namespace fastzab::runtime::client
