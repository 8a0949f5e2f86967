// §2.10 fail-soft decoding (reference §7 item 9, FLEMalformedNotificationMessageTest,
// ZOOKEEPER-3769): truncated notifications, negative or oversized config lengths, garbage config
// text, a long field cut in half, an impossible state — each is dropped and counted
// (counters().decode_errors), nothing else changes, and the election still completes.
//
// §7 item 10 (CnxManagerTest: the election connection handshake, address strings, frame length
// prefix) is the transport's job (net/, engine/runtime), not the core's: not covered here.
#include <gtest/gtest.h>

#include "tests/support/ensemble.h"

namespace fastzab::test {
namespace {

void put_i32(ByteBuffer& b, std::int32_t v) {
  const auto u = static_cast<std::uint32_t>(v);
  for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<std::byte>((u >> s) & 0xffu));
}
void put_i64(ByteBuffer& b, std::int64_t v) {
  const auto u = static_cast<std::uint64_t>(v);
  put_i32(b, static_cast<std::int32_t>(u >> 32));
  put_i32(b, static_cast<std::int32_t>(u & 0xffffffffu));
}

// A notification frame field by field, so that it can be cut or corrupted anywhere.
ByteBuffer notification_head(std::int32_t state, Sid leader) {
  ByteBuffer b{static_cast<std::byte>(core::FrameKind::notification)};
  put_i32(b, state);
  put_i64(b, leader);
  return b;
}

std::vector<ByteBuffer> malformed_notifications() {
  std::vector<ByteBuffer> out;
  out.push_back({});                                  // empty frame
  out.push_back({std::byte{9}, std::byte{0}});        // unknown frame kind
  {
    ByteBuffer b = notification_head(0, 1);           // 12 of 28 bytes
    out.push_back(b);
  }
  {
    ByteBuffer b = notification_head(0, 1);           // zxid cut in half
    put_i32(b, 0);
    out.push_back(b);
  }
  {
    ByteBuffer b = notification_head(0, 1);           // peerEpoch cut in half (32 bytes)
    put_i64(b, 0);
    put_i64(b, 1);
    put_i32(b, 0);
    out.push_back(b);
  }
  auto v2 = [](std::int32_t state, std::int32_t config_length) {
    ByteBuffer b = notification_head(state, 1);
    put_i64(b, 0);   // zxid
    put_i64(b, 1);   // round
    put_i64(b, 0);   // peerEpoch
    put_i32(b, 2);   // version
    put_i32(b, config_length);
    return b;
  };
  out.push_back(v2(0, -5));                           // negative config length
  {
    ByteBuffer b = v2(0, 1000);                       // config length past the end
    for (int k = 0; k < 10; ++k) b.push_back(std::byte{'x'});
    out.push_back(b);
  }
  out.push_back(v2(0, 0x7fffffff));                   // oversized config length
  {
    ByteBuffer b = v2(0, 0);                          // trailing bytes after the config
    b.push_back(std::byte{0});
    out.push_back(b);
  }
  out.push_back(v2(7, 0));                            // state outside 0..3
  out.push_back(v2(-1, 0));
  {
    ByteBuffer b = v2(0, 3);                          // version field cut (no config length)
    b.resize(b.size() - 6);
    out.push_back(b);
  }
  return out;
}

TEST(FleMalformedNotification, S7_9_FLEMalformedNotificationMessageTest_DroppedAndElectionCompletes) {
  Spec spec = Spec::majority(4);
  spec.fake({4});
  Ensemble e(spec);
  e.start_all();
  const auto bad = malformed_notifications();
  // Before and during the election.
  for (Sid to : {1, 2, 3}) {
    for (const ByteBuffer& b : bad) e.fake_send(4, to, b);
  }
  e.deliver_next();
  for (Sid to : {1, 2, 3}) {
    for (const ByteBuffer& b : bad) e.fake_send(4, to, b);
  }
  const auto leader = e.elect();
  ASSERT_EQ(leader, std::optional<Sid>(3)) << e.transcript().dump();
  for (Sid s : {1, 2, 3}) {
    EXPECT_EQ(e.node(s).counters().decode_errors, 2 * bad.size()) << s;
  }
  e.commit(3, {"after"});
  for (Sid s : {1, 2, 3}) EXPECT_EQ(e.values(s), std::vector<std::string>{"after"}) << s;
}

TEST(FleMalformedNotification, S7_9_FLEMalformedNotificationMessageTest_GarbageConfigTextIsIgnored) {
  // fastzab carries no membership in notifications: well-framed config text is read past and
  // ignored (ZooKeeper parses it and drops the message when it is garbage). Either way the vote
  // in it does no harm: here it is of an old round and is only answered.
  Spec spec = Spec::majority(4);
  spec.fake({4});
  Ensemble e(spec);
  e.start_all();
  core::Notification n;
  n.state = PeerState::looking;
  n.leader = ServerId{1};
  n.zxid = z(0, 0);
  n.round = 0;
  n.peer_epoch = Epoch{0};
  const std::string garbage = "server.\xff\xfe=::::\n;;version=zz";
  n.config = Bytes(reinterpret_cast<const std::byte*>(garbage.data()), garbage.size());
  for (Sid to : {1, 2, 3}) {
    ByteBuffer b;
    core::encode_notification(n, b);
    e.fake_send(4, to, b);
  }
  ASSERT_EQ(e.elect(), std::optional<Sid>(3));
  for (Sid s : {1, 2, 3}) EXPECT_EQ(e.node(s).counters().decode_errors, 0u) << s;
}

TEST(FleMalformedNotification, S7_9_MalformedQuorumPacketsToALeaderAreDropped) {
  // The same rule on the quorum port: a learner's broken packets are counted and dropped, the
  // leader keeps serving.
  Spec spec = Spec::majority(4);
  spec.fake({4});
  Ensemble e(spec);
  ASSERT_EQ(e.start_and_elect(), std::optional<Sid>(3));
  std::vector<ByteBuffer> bad;
  {
    ByteBuffer b{static_cast<std::byte>(core::FrameKind::quorum)};
    put_i32(b, 99);  // unknown packet type
    put_i64(b, 0);
    put_i32(b, -1);
    put_i32(b, -1);
    bad.push_back(b);
  }
  {
    ByteBuffer b{static_cast<std::byte>(core::FrameKind::quorum)};
    put_i32(b, static_cast<std::int32_t>(PacketType::ack));
    put_i64(b, 0);
    put_i32(b, 100);  // data length past the end
    bad.push_back(b);
  }
  {
    ByteBuffer b{static_cast<std::byte>(core::FrameKind::quorum)};
    put_i32(b, static_cast<std::int32_t>(PacketType::ack));
    put_i32(b, 0);  // zxid cut in half
    bad.push_back(b);
  }
  {
    ByteBuffer b{static_cast<std::byte>(core::FrameKind::quorum)};
    put_i32(b, static_cast<std::int32_t>(PacketType::ack));
    put_i64(b, 0);
    put_i32(b, -1);
    put_i32(b, 3);  // authinfo entries
    bad.push_back(b);
  }
  for (const ByteBuffer& b : bad) e.fake_send(4, 3, b);
  e.settle();
  EXPECT_EQ(e.node(3).counters().decode_errors, bad.size());
  e.commit(3, {"still"});
  EXPECT_EQ(e.leader(), std::optional<Sid>(3));
  for (Sid s : {1, 2, 3}) EXPECT_EQ(e.values(s), std::vector<std::string>{"still"}) << s;
}

}  // namespace
}  // namespace fastzab::test
