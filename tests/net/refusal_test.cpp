// What the transport refuses or drops, each with a raw socket (or a misconfigured Transport):
// the counter rises, a log line says why, no session comes up, and a healthy session of the same
// transport keeps working.
#include <gtest/gtest.h>

#include "tests/net/harness.h"

namespace fastzab::net::test {
namespace {

using Kind = Event::Kind;

// Server `self` (the acceptor under test) and a healthy larger server 9 connected to it; a raw
// peer may claim ids 2..8 (all in self's peer list), or anything else.
struct Bench {
  Node target;
  Node healthy;
  std::uint64_t self;

  explicit Bench(std::uint64_t self_id = 1,
                 std::chrono::milliseconds handshake_timeout = 2000ms)
      : self(self_id) {
    std::vector<std::pair<std::uint64_t, std::uint16_t>> peers;
    for (std::uint64_t id = 1; id <= 9; ++id) {
      if (id != self) peers.emplace_back(id, 0);
    }
    TransportConfig c = config_for(self, peers);
    c.handshake_timeout = handshake_timeout;
    open_node(target, std::move(c));
    open_node(healthy, config_for(9, {{self, target->listen_port()}}));
    EXPECT_TRUE(pump(nodes(), [this] { return target.live(9) != kNoSession; }));
  }
  std::vector<Node*> nodes() { return {&target, &healthy}; }

  std::uint16_t port() { return target->listen_port(); }

  // No session other than server 9's ever came up, and server 9's still carries frames.
  void expect_only_the_healthy_session_and_it_works() {
    EXPECT_EQ(target->counters().sessions_up, 1u);
    for (const Recorded& r : target.events) {
      if (r.kind == Kind::session_up) {
        EXPECT_EQ(r.peer, 9u);
      }
    }
    const auto frame = random_bytes(3000, 11);
    ASSERT_TRUE(healthy->send(self, healthy.live(self), frame));
    ASSERT_TRUE(pump(nodes(), [&] { return !target.frames_from(9).empty(); }));
    EXPECT_EQ(target.frames_from(9).back()->frame, frame);
    EXPECT_EQ(target.count(Kind::session_down, 9), 0u);
  }
};

void refused_hello(std::uint64_t self, const std::vector<unsigned char>& hello,
                   const std::string& why) {
  Bench bench(self);
  RawPeer raw(bench.port());
  raw.write(hello);
  ASSERT_TRUE(raw.wait_closed(bench.nodes()));
  EXPECT_EQ(bench.target->counters().handshakes_refused, 1u);
  EXPECT_EQ(bench.target->counters().connections_dropped_garbage, 0u);
  EXPECT_TRUE(bench.target.logged("refused connection from 127.0.0.1:")) << why;
  EXPECT_TRUE(bench.target.logged(why)) << "no log line with: " << why;
  bench.expect_only_the_healthy_session_and_it_works();
}

TEST(Refusal, WrongClusterId) {
  refused_hello(1, RawPeer::hello(1, 1, 7, 2, 1), "wrong cluster id 7 (ours 1)");
}
TEST(Refusal, UnknownServerId) {
  refused_hello(1, RawPeer::hello(1, 1, kCluster, 42, 1), "unknown server id 42");
}
TEST(Refusal, OurOwnId) {
  refused_hello(1, RawPeer::hello(1, 1, kCluster, 1, 1), "claims our own id 1");
}
TEST(Refusal, WrongTargetId) {
  refused_hello(1, RawPeer::hello(1, 1, kCluster, 3, 5), "wants server 5, we are 1");
}
TEST(Refusal, SmallerIdDials) {
  // Server 4 accepts only from larger ids; 2 is a member but must wait for 4 to dial it.
  refused_hello(4, RawPeer::hello(1, 1, kCluster, 2, 4), "smaller id than ours (4)");
}
TEST(Refusal, UnsupportedVersion) {
  refused_hello(1, RawPeer::hello(1, 9, kCluster, 2, 1), "unsupported version 9 (ours 1)");
}

TEST(Refusal, WrongSecretOfARawDialer) {
  Bench bench;
  RawPeer raw(bench.port());
  // The acceptor's MAC does not verify with the wrong secret; the dialer's MAC is refused.
  EXPECT_FALSE(raw.handshake(2, 1, test_secret(99), bench.nodes()));
  ASSERT_TRUE(raw.wait_closed(bench.nodes()));
  EXPECT_EQ(bench.target->counters().handshakes_refused, 1u);
  EXPECT_TRUE(bench.target.logged("bad authenticator from server 2"));
  bench.expect_only_the_healthy_session_and_it_works();
}

TEST(Refusal, WrongSecretOfATransport) {
  Node one;
  Node two;
  open_node(one, config_for(1, {{2, 0}}));
  TransportConfig c = config_for(2, {{1, one->listen_port()}});
  c.secret = test_secret(99);
  open_node(two, std::move(c));
  ASSERT_TRUE(pump({&one, &two}, [&] { return two->counters().handshakes_refused >= 2; }));
  EXPECT_TRUE(two.logged("refused connection to server 1 at 127.0.0.1:"));
  EXPECT_TRUE(two.logged("bad authenticator from server 1"));
  EXPECT_EQ(one->counters().sessions_up + two->counters().sessions_up, 0u);
  EXPECT_EQ(one.count(Kind::session_up) + two.count(Kind::session_up), 0u);
  EXPECT_GE(two->counters().reconnect_attempts, 1u);  // it keeps trying, with back-off
}

TEST(Refusal, WrongClusterIdOfATransport) {
  Node one;
  Node two;
  open_node(one, config_for(1, {{2, 0}}));
  TransportConfig c = config_for(2, {{1, one->listen_port()}});
  c.cluster_id = 5;
  open_node(two, std::move(c));
  ASSERT_TRUE(pump({&one, &two}, [&] { return one->counters().handshakes_refused >= 2; }));
  EXPECT_TRUE(one.logged("wrong cluster id 5 (ours 1)"));
  EXPECT_EQ(one.count(Kind::session_up) + two.count(Kind::session_up), 0u);
}

TEST(Refusal, HandshakeThatDoesNotFinishInTimeIsDropped) {
  Bench bench(1, 200ms);
  RawPeer raw(bench.port());
  raw.write(RawPeer::hello(1, 1, kCluster, 2, 1).data(), 10);  // a start, then silence
  ASSERT_TRUE(raw.wait_closed(bench.nodes(), 3000ms));
  EXPECT_EQ(bench.target->counters().handshakes_refused, 1u);
  EXPECT_TRUE(bench.target.logged("handshake not finished within 200 ms"));
  bench.expect_only_the_healthy_session_and_it_works();
}

TEST(Garbage, BytesThatAreNotAHello) {
  Bench bench;
  RawPeer raw(bench.port());
  const auto junk = random_bytes(64, 12);
  raw.write(junk.data(), junk.size());
  ASSERT_TRUE(raw.wait_closed(bench.nodes()));
  EXPECT_EQ(bench.target->counters().connections_dropped_garbage, 1u);
  EXPECT_EQ(bench.target->counters().handshakes_refused, 0u);
  EXPECT_TRUE(bench.target.logged("not a fastzab-net hello"));
  bench.expect_only_the_healthy_session_and_it_works();
}

TEST(Garbage, AnOversizedFrameLengthBeforeTheHandshake) {
  Bench bench;
  RawPeer raw(bench.port());
  // A frame header where the hello belongs, claiming 4 GiB: garbage, and nothing allocated.
  std::vector<unsigned char> bytes = {0xFF, 0xFF, 0xFF, 0xFF};
  bytes.resize(64, 0xAB);
  raw.write(bytes);
  ASSERT_TRUE(raw.wait_closed(bench.nodes()));
  EXPECT_EQ(bench.target->counters().connections_dropped_garbage, 1u);
  EXPECT_EQ(bench.target->counters().frames_oversized, 0u);
  bench.expect_only_the_healthy_session_and_it_works();
}

// A raw peer authenticated as server 2, with one good frame delivered first.
void with_raw_session(Bench& bench, RawPeer& raw, SessionId& session) {
  ASSERT_TRUE(raw.handshake(2, 1, test_secret(), bench.nodes()));
  ASSERT_TRUE(pump(bench.nodes(), [&] { return bench.target.live(2) != kNoSession; }));
  session = bench.target.live(2);
  const auto good = random_bytes(777, 13);
  raw.write_frame(good);
  ASSERT_TRUE(pump(bench.nodes(), [&] { return bench.target.frames_from(2).size() == 1; }));
  EXPECT_EQ(bench.target.frames_from(2)[0]->frame, good);
}

TEST(Garbage, AZeroLengthFrameOnASession) {
  Bench bench;
  RawPeer raw(bench.port());
  SessionId session = kNoSession;
  with_raw_session(bench, raw, session);
  const std::vector<unsigned char> zero = {0, 0, 0, 0, 1, 2, 3};
  raw.write(zero);
  ASSERT_TRUE(pump(bench.nodes(), [&] { return bench.target.count(Kind::session_down, 2) == 1; }));
  ASSERT_TRUE(raw.wait_closed(bench.nodes()));
  EXPECT_EQ(bench.target->counters().connections_dropped_garbage, 1u);
  EXPECT_EQ(bench.target.frames_from(2).size(), 1u);
  EXPECT_FALSE(bench.target->send(2, session, random_bytes(5, 1)));
  // The raw peer's session counts as a second session_up; the healthy one still works.
  EXPECT_EQ(bench.target->counters().sessions_up, 2u);
  const auto frame = random_bytes(100, 14);
  ASSERT_TRUE(bench.healthy->send(1, bench.healthy.live(1), frame));
  ASSERT_TRUE(pump(bench.nodes(), [&] { return bench.target.frames_from(9).size() == 1; }));
  EXPECT_EQ(bench.target.frames_from(9)[0]->frame, frame);
}

TEST(Garbage, AnOversizedFrameOnASessionIsNeverAllocated) {
  Bench bench;
  RawPeer raw(bench.port());
  SessionId session = kNoSession;
  with_raw_session(bench, raw, session);
  const std::vector<unsigned char> huge = {0x01, 0x00, 0x00, 0x10, 'x'};  // 256 MiB + 1
  raw.write(huge);
  ASSERT_TRUE(pump(bench.nodes(), [&] { return bench.target.count(Kind::session_down, 2) == 1; }));
  EXPECT_EQ(bench.target->counters().frames_oversized, 1u);
  EXPECT_TRUE(bench.target.logged("a frame of 268435457 bytes, over max_frame_bytes"));
  EXPECT_EQ(bench.target.frames_from(2).size(), 1u);
  const auto frame = random_bytes(100, 15);
  ASSERT_TRUE(bench.healthy->send(1, bench.healthy.live(1), frame));
  ASSERT_TRUE(pump(bench.nodes(), [&] { return bench.target.frames_from(9).size() == 1; }));
}

TEST(Garbage, ATruncatedFrameThenEofDeliversNothingPartial) {
  Bench bench;
  RawPeer raw(bench.port());
  SessionId session = kNoSession;
  with_raw_session(bench, raw, session);
  std::vector<unsigned char> truncated = {100, 0, 0, 0};
  truncated.resize(4 + 50, 0x55);  // half of the claimed 100 bytes
  raw.write(truncated);
  pump_for(bench.nodes(), 20ms);
  raw.close();
  ASSERT_TRUE(pump(bench.nodes(), [&] { return bench.target.count(Kind::session_down, 2) == 1; }));
  EXPECT_EQ(bench.target.frames_from(2).size(), 1u);  // only the good frame before it
  for (const Recorded& r : bench.target.events) {
    if (r.kind == Kind::session_down && r.peer == 2) {
      EXPECT_EQ(r.session, session);
      EXPECT_EQ(r.reason, "the peer closed the connection mid-frame");
    }
  }
  const auto frame = random_bytes(100, 16);
  ASSERT_TRUE(bench.healthy->send(1, bench.healthy.live(1), frame));
  ASSERT_TRUE(pump(bench.nodes(), [&] { return bench.target.frames_from(9).size() == 1; }));
}

TEST(Refusal, ANewConnectionOfAPeerReplacesItsLiveSession) {
  Bench bench;
  RawPeer first(bench.port());
  SessionId old = kNoSession;
  with_raw_session(bench, first, old);
  // The same server id authenticates again (as after a restart): the old session goes down
  // first, then the new one comes up.
  RawPeer second(bench.port());
  ASSERT_TRUE(second.handshake(2, 1, test_secret(), bench.nodes()));
  ASSERT_TRUE(pump(bench.nodes(), [&] {
    return bench.target.live(2) != kNoSession && bench.target.live(2) != old;
  }));
  EXPECT_EQ(bench.target.count(Kind::session_down, 2), 1u);
  EXPECT_TRUE(first.wait_closed(bench.nodes()));
  EXPECT_FALSE(bench.target->send(2, old, random_bytes(5, 1)));
  EXPECT_TRUE(bench.target->send(2, bench.target.live(2), random_bytes(5, 1)));
}

}  // namespace
}  // namespace fastzab::net::test
