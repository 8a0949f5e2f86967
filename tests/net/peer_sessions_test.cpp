// PeerSessions and its parts without a ring or a socket: back-off, send queues, session ids, and
// two PeerSessions that shake hands by handing each other their queued bytes.
#include "net/peer_sessions.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace fastzab::net {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;

UniformRandom always(std::uint32_t value) {
  return [value](std::uint32_t upper) { return std::min(value, upper - 1); };
}

TEST(DialBackoff, DoublesUpToTheMaximumAndResets) {
  DialBackoff backoff(milliseconds(10), milliseconds(70));
  const UniformRandom lowest = always(0);
  EXPECT_EQ(backoff.next_delay(lowest), microseconds(5'000));
  EXPECT_EQ(backoff.current(), milliseconds(20));
  EXPECT_EQ(backoff.next_delay(lowest), microseconds(10'000));
  EXPECT_EQ(backoff.next_delay(lowest), microseconds(20'000));
  EXPECT_EQ(backoff.current(), milliseconds(70));  // 80 capped
  EXPECT_EQ(backoff.next_delay(lowest), microseconds(35'000));
  EXPECT_EQ(backoff.current(), milliseconds(70));
  backoff.reset();
  EXPECT_EQ(backoff.current(), milliseconds(10));
}

TEST(DialBackoff, JitterStaysWithinHalfToFull) {
  for (const std::uint32_t pick : {0u, 1u, 2'499u, 4'999u, 1'000'000u}) {
    DialBackoff backoff(milliseconds(10), milliseconds(1000));
    for (int i = 0; i < 10; ++i) {
      const milliseconds full = backoff.current();
      const microseconds delay = backoff.next_delay(always(pick));
      EXPECT_GE(delay, full / 2);
      EXPECT_LE(delay, full);
    }
  }
}

std::vector<std::byte> bytes_of(std::string_view text) {
  const auto span = std::as_bytes(std::span<const char>(text.data(), text.size()));
  return {span.begin(), span.end()};
}

TEST(SendQueue, FramesCarryTheirLengthAndShortWritesResume) {
  SendQueue queue;
  queue.append_frame(bytes_of("abc"));
  EXPECT_EQ(queue.waiting(), wire::kFrameHeaderBytes + 3);
  queue.start_batch();
  EXPECT_FALSE(queue.has_queued());
  const std::span<const std::byte> batch = queue.unsent();
  ASSERT_EQ(batch.size(), 7u);
  EXPECT_EQ(wire::load_u32_le(batch.data()), 3u);
  EXPECT_FALSE(queue.sent(5));
  EXPECT_EQ(queue.unsent().size(), 2u);
  queue.append_frame(bytes_of("de"));
  EXPECT_EQ(queue.waiting(), 2u + wire::kFrameHeaderBytes + 2);
  EXPECT_TRUE(queue.sent(2));
  EXPECT_TRUE(queue.has_queued());
}

TEST(SendQueue, DroppingKeepsOnlyTheBatchTheKernelHas) {
  SendQueue queue;
  queue.append_frame(bytes_of("in flight"));
  queue.start_batch();
  queue.append_frame(bytes_of("queued"));
  queue.drop_queued();
  EXPECT_FALSE(queue.has_queued());
  EXPECT_EQ(queue.waiting(), wire::kFrameHeaderBytes + 9);
  queue.release();
  EXPECT_EQ(queue.waiting(), 0u);
}

TEST(SessionIds, AreNeverReused) {
  SessionId previous = next_session_id();
  EXPECT_NE(previous, kNoSession);
  for (int i = 0; i < 1000; ++i) {
    const SessionId next = next_session_id();
    EXPECT_GT(next, previous);
    previous = next;
  }
}

// Stands in for the loop: no operation is ever in flight, sockets are numbers.
class FakeIo final : public ConnIo {
 public:
  void cancel_ops(Conn&) override { ++cancels; }
  void close_socket(int fd) override { closed.push_back(fd); }
  std::string remote_name(int) override { return "127.0.0.1:1"; }

  int cancels = 0;
  std::vector<int> closed;
};

TransportConfig config_for(std::uint64_t self, std::uint64_t other) {
  TransportConfig config;
  config.self_id = self;
  config.cluster_id = 7;
  config.secret.fill(0x5A);
  config.peers.push_back(PeerAddress{other, "127.0.0.1", 1});
  config.log_line = [](std::string_view) {};
  return config;
}

wire::Nonce counting_nonce() {
  static unsigned char n = 0;
  wire::Nonce nonce{};
  nonce.fill(++n);
  return nonce;
}

// Server 2 dials server 1; both ends in memory.
class TwoSessions : public testing::Test {
 protected:
  TwoSessions()
      : dialer_config(config_for(2, 1)),
        acceptor_config(config_for(1, 2)),
        dialer(dialer_config, dialer_io, always(0), counting_nonce),
        acceptor(acceptor_config, acceptor_io, always(0), counting_nonce) {
    dialer.add_peer(dialer_config.peers[0]);
    acceptor.add_peer(acceptor_config.peers[0]);
  }

  void SetUp() override {
    dialer.begin_poll(dialer_sink);
    acceptor.begin_poll(acceptor_sink);
  }
  void TearDown() override {
    dialer.end_poll();
    acceptor.end_poll();
  }

  // What `from` would hand the kernel now, received whole by `to`.
  static void deliver(Conn& from, PeerSessions& to, Conn& at) {
    from.out.start_batch();
    const std::vector<std::byte> bytes(from.out.unsent().begin(), from.out.unsent().end());
    EXPECT_TRUE(from.out.sent(bytes.size()));
    static_cast<void>(to.on_bytes(at, bytes));
  }

  // Shakes hands on fresh connections (sockets `fd` and `fd + 1`); returns the dialer's one
  // (and the acceptor's in `accepted_conn`).
  Conn& connect(int fd) {
    Conn& d = dialer.dialing(dialer.peers()[0], fd, Clock::now());
    dialer.connected(d);
    Conn& a = acceptor.accepted(fd + 1, HostKey{}, Clock::now());
    accepted_conn = &a;
    deliver(d, acceptor, a);  // HELLO
    deliver(a, dialer, d);    // REPLY
    deliver(d, acceptor, a);  // CONFIRM
    EXPECT_EQ(d.state, ConnState::established);
    EXPECT_EQ(a.state, ConnState::established);
    return d;
  }

  Conn* accepted_conn = nullptr;
  std::vector<Event> dialer_events;
  std::vector<Event> acceptor_events;
  std::function<void(const Event&)> dialer_record = [this](const Event& e) {
    dialer_events.push_back(e);
  };
  std::function<void(const Event&)> acceptor_record = [this](const Event& e) {
    acceptor_events.push_back(e);
  };
  EventSink dialer_sink{dialer_record};
  EventSink acceptor_sink{acceptor_record};
  FakeIo dialer_io;
  FakeIo acceptor_io;
  TransportConfig dialer_config;
  TransportConfig acceptor_config;
  PeerSessions dialer;
  PeerSessions acceptor;
};

TEST_F(TwoSessions, AQueuedFrameIsDroppedWhenItsSessionCloses) {
  Conn& d = connect(10);
  ASSERT_EQ(dialer_events.size(), 1u);
  EXPECT_EQ(dialer_events[0].kind, Event::Kind::session_up);
  const SessionId session = dialer_events[0].session;
  ASSERT_TRUE(dialer.send(1, session, bytes_of("hello")));
  EXPECT_TRUE(d.out.has_queued());

  dialer.close_session(1, session);
  EXPECT_FALSE(d.out.has_queued());
  EXPECT_EQ(d.out.waiting(), 0u);
  EXPECT_EQ(dialer_io.closed, std::vector<int>{10});
  EXPECT_FALSE(dialer.send(1, session, bytes_of("late")));
  dialer.flush_downs();
  ASSERT_EQ(dialer_events.size(), 2u);
  EXPECT_EQ(dialer_events[1].kind, Event::Kind::session_down);
  EXPECT_EQ(dialer_events[1].session, session);
  EXPECT_EQ(dialer.counters().frames_sent, 1u);
  EXPECT_EQ(dialer.counters().sessions_down, 1u);
}

TEST_F(TwoSessions, AClosedSessionIsRedialedAfterItsBackoffAndGetsANewId) {
  connect(10);
  const SessionId first = dialer_events[0].session;
  const Clock::time_point closed_at = Clock::now();
  dialer.close_session(1, first);
  const Peer& peer = dialer.peers()[0];
  EXPECT_EQ(peer.conn_slot, -1);
  EXPECT_EQ(peer.session, kNoSession);
  EXPECT_GE(peer.next_dial, closed_at + milliseconds(5));  // reconnect_min 10 ms, jittered down
  EXPECT_EQ(peer.backoff.current(), milliseconds(20));

  connect(20);
  dialer.flush_downs();
  ASSERT_EQ(dialer_events.size(), 3u);
  EXPECT_EQ(dialer_events[2].kind, Event::Kind::session_up);
  EXPECT_GT(dialer_events[2].session, first);
  EXPECT_EQ(dialer.peers()[0].backoff.current(), milliseconds(10));  // reset by the session
  EXPECT_EQ(dialer.counters().reconnect_attempts, 1u);
  // The acceptor saw its peer's new connection replace the old session's.
  EXPECT_EQ(acceptor.counters().sessions_up, 2u);
}

// A session that ends in the middle of a frame larger than one receive: its conn holds the
// part received in a buffer of the spill pool and gives it back when destroyed, so the pool
// must outlive the conns (it was destroyed first: a use after free that ASan reports here, and
// heap corruption in node_test's 1 MB values).
TEST_F(TwoSessions, APartFrameHeldAtShutdownGoesBackToALivePool) {
  connect(10);
  const SessionId session = dialer_events[0].session;
  const std::vector<std::byte> big(256 * 1024, std::byte{0x5a});
  Conn& d = *dialer.conns().front();
  const auto queued_bytes = [&] {
    d.out.start_batch();
    std::vector<std::byte> bytes(d.out.unsent().begin(), d.out.unsent().end());
    EXPECT_TRUE(d.out.sent(bytes.size()));
    return bytes;
  };
  // A first big frame in two halves: its part waits in a spill buffer, which goes back to the
  // pool once the frame was handed out and is dead (the pool's free list now owns storage).
  ASSERT_TRUE(dialer.send(1, session, big));
  std::vector<std::byte> bytes = queued_bytes();
  const std::size_t half = bytes.size() / 2;
  EXPECT_FALSE(acceptor.on_bytes(*accepted_conn, std::span(bytes).first(half)));
  static_cast<void>(acceptor.on_bytes(*accepted_conn, std::span(bytes).subspan(half)));
  EXPECT_EQ(acceptor.counters().frames_received, 1u);
  acceptor.spill_pool().reclaim();  // as the next poll() does: the frame is dead
  EXPECT_EQ(acceptor.spill_pool().free_count(), 1u);
  // A second one, half received: its part is held when the fixture's destructor destroys both
  // PeerSessions.
  ASSERT_TRUE(dialer.send(1, session, big));
  bytes = queued_bytes();
  EXPECT_FALSE(acceptor.on_bytes(*accepted_conn, std::span(bytes).first(bytes.size() / 2)));
  EXPECT_EQ(acceptor.counters().frames_received, 1u);
}

}  // namespace
}  // namespace fastzab::net
