// DatagramPeer (net/datagram_peer.h): servers 1 and 2 (2 dials) on a simulated datagram network
// with a virtual microsecond clock: the handshake through loss, frames both ways, a restart of
// either end (the old session ends first and none of its packets is delivered afterwards), the
// silence timeout, an explicit close, a wrong secret, and garbage control packets.
#include "net/datagram_peer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace fastzab::net {
namespace {

using Bytes = std::vector<std::byte>;

struct Server {
  Server(std::uint64_t self, std::uint64_t other, std::uint32_t seed, unsigned char secret = 0x5a)
      : rng(seed) {
    context.cluster_id = 7;
    context.self_id = self;
    context.secret.fill(secret);
    context.peers = {other};
    context.make_nonce = [this] {
      wire::Nonce n;
      for (auto& b : n) b = static_cast<unsigned char>(rng());
      return n;
    };
    DatagramPeerConfig c;
    c.session.mtu_payload = 500;
    c.session.window = 32;
    c.session.send_slots = 512;
    c.session.max_frame_bytes = 100'000;
    c.handshake_resend_us = 1000;
    c.keepalive_us = 2000;
    c.silence_timeout_us = 20'000;
    peer = std::make_unique<DatagramPeer>(context, other, self > other, c);
  }
  std::mt19937 rng;
  HandshakeContext context;
  std::unique_ptr<DatagramPeer> peer;
  std::vector<std::string> log;  // "up S", "down S reason"
  std::vector<Bytes> frames;
  std::vector<std::uint64_t> frame_sessions;
};

class Net {
 public:
  explicit Net(double loss, std::uint32_t seed = 1) : loss_(loss), rng_(seed) {
    servers_[0] = std::make_unique<Server>(1, 2, seed * 11 + 1);
    servers_[1] = std::make_unique<Server>(2, 1, seed * 11 + 2);
  }
  Server& s(int i) { return *servers_[i]; }
  std::uint64_t now() const { return now_; }
  bool cut = false;
  std::vector<Bytes> captured[2];  // what each side put on the wire
  // Called with each frame delivered, inside the delivery (after it is recorded).
  std::function<void(int at, const PeerEvent& e)> on_frame;

  void restart(int i, unsigned char secret = 0x5a) {
    servers_[i] = std::make_unique<Server>(static_cast<std::uint64_t>(i + 1), static_cast<std::uint64_t>(2 - i),
                                           static_cast<std::uint32_t>(now_ + 100 + i), secret);
  }

  // Advances the clock by `us`, one microsecond at a time.
  void run(std::uint64_t us) {
    for (std::uint64_t t = 0; t < us; ++t, ++now_) {
      for (int i = 0; i < 2; ++i) {
        s(i).peer->poll(now_, [&](std::span<const std::byte> p) { transmit(i, p); },
                        [&](const PeerEvent& e) { record(i, e); });
      }
      while (!flight_.empty() && flight_.begin()->first <= now_) {
        auto [to, bytes] = flight_.begin()->second;
        flight_.erase(flight_.begin());
        inject(to, bytes);
      }
    }
  }
  // Runs until pred() holds, at most `us`; false if it never did.
  template <class P>
  bool run_until(P pred, std::uint64_t us) {
    for (std::uint64_t t = 0; t < us; t += 10) {
      if (pred()) return true;
      run(10);
    }
    return pred();
  }
  // Delivers a packet to server `to` as if it came over the wire now.
  void inject(int to, const Bytes& packet) {
    s(to).peer->receive(packet, now_, [&](std::span<const std::byte> p) { transmit(to, p); },
                        [&](const PeerEvent& e) { record(to, e); });
  }

 private:
  void transmit(int from, std::span<const std::byte> p) {
    captured[from].emplace_back(p.begin(), p.end());
    if (cut || std::uniform_real_distribution<double>(0, 1)(rng_) < loss_) return;
    flight_.emplace(now_ + 3, std::pair<int, Bytes>{1 - from, Bytes(p.begin(), p.end())});
  }
  void record(int at, const PeerEvent& e) {
    Server& srv = s(at);
    if (e.kind == PeerEvent::Kind::session_up) srv.log.push_back("up " + std::to_string(e.session));
    if (e.kind == PeerEvent::Kind::session_down) {
      srv.log.push_back("down " + std::to_string(e.session) + " " + std::string(e.reason));
    }
    if (e.kind == PeerEvent::Kind::frame) {
      srv.frames.emplace_back(e.frame.begin(), e.frame.end());
      srv.frame_sessions.push_back(e.session);
      if (on_frame) on_frame(at, e);
    }
  }

  double loss_;
  std::mt19937 rng_;
  std::unique_ptr<Server> servers_[2];
  std::multimap<std::uint64_t, std::pair<int, Bytes>> flight_;
  std::uint64_t now_ = 1;
};

Bytes frame_of(std::size_t size, std::uint32_t tag) {
  Bytes f(size);
  for (std::size_t i = 0; i < size; ++i) f[i] = static_cast<std::byte>((tag * 31 + i) & 0xff);
  return f;
}

bool both_up(Net& n) { return n.s(0).peer->session() != 0 && n.s(1).peer->session() != 0; }

// Sends `count` frames from each side on its live session and runs until they all arrived.
void exchange(Net& n, std::uint32_t count, std::uint32_t tag_base) {
  const std::size_t had[2] = {n.s(0).frames.size(), n.s(1).frames.size()};
  std::uint32_t sent[2] = {0, 0};
  ASSERT_TRUE(n.run_until([&] {
    for (int i = 0; i < 2; ++i) {
      while (sent[i] < count && n.s(i).peer->send(n.s(i).peer->session(), frame_of(1200, tag_base + 2 * sent[i] + static_cast<std::uint32_t>(i)))) {
        ++sent[i];
      }
    }
    return n.s(0).frames.size() == had[0] + count && n.s(1).frames.size() == had[1] + count;
  }, 5'000'000));
  for (int i = 0; i < 2; ++i) {
    for (std::uint32_t k = 0; k < count; ++k) {
      EXPECT_EQ(n.s(i).frames[had[i] + k], frame_of(1200, tag_base + 2 * k + static_cast<std::uint32_t>(1 - i)));
    }
  }
}

TEST(DatagramPeer, HandshakeThroughLossThenFramesBothWays) {
  for (double loss : {0.0, 0.05, 0.2}) {
    Net n(loss, 3);
    ASSERT_TRUE(n.run_until([&] { return both_up(n); }, 2'000'000)) << "loss " << loss;
    // Both ends agree on the session's two ids.
    EXPECT_EQ(n.s(0).peer->live()->peer_session(), n.s(1).peer->session());
    EXPECT_EQ(n.s(1).peer->live()->peer_session(), n.s(0).peer->session());
    EXPECT_EQ(n.s(0).log.size(), 1u);
    EXPECT_EQ(n.s(1).log.size(), 1u);
    exchange(n, 200, 0);
    EXPECT_EQ(n.s(0).peer->counters().sessions_down, 0u) << "keepalives kept it up";
  }
}

// A restarted server: the survivor ends the old session before the new one comes up, and no
// packet of the old session, replayed afterwards, is delivered.
TEST(DatagramPeer, ARestartReplacesTheSessionAndItsPacketsStayDead) {
  for (int restarted : {0, 1}) {
    Net n(0.02, 5);
    ASSERT_TRUE(n.run_until([&] { return both_up(n); }, 1'000'000));
    exchange(n, 50, 0);
    const std::uint64_t old_session = n.s(1 - restarted).peer->session();
    const auto old_packets = n.captured[restarted];
    n.restart(restarted);
    ASSERT_TRUE(n.run_until([&] {
      return both_up(n) && n.s(1 - restarted).peer->session() != old_session;
    }, 1'000'000)) << "restarted " << restarted;
    const auto& log = n.s(1 - restarted).log;
    ASSERT_GE(log.size(), 3u);
    EXPECT_EQ(log[log.size() - 2].rfind("down " + std::to_string(old_session), 0), 0u) << log[log.size() - 2];
    EXPECT_EQ(log.back().rfind("up ", 0), 0u);
    const std::size_t frames_before = n.s(1 - restarted).frames.size();
    for (const Bytes& p : old_packets) n.inject(1 - restarted, p);
    EXPECT_EQ(n.s(1 - restarted).frames.size(), frames_before) << "an old session's packet was delivered";
    exchange(n, 50, 1000);
    for (std::uint64_t s : std::vector<std::uint64_t>(n.s(1 - restarted).frame_sessions.end() - 50,
                                                      n.s(1 - restarted).frame_sessions.end())) {
      EXPECT_EQ(s, n.s(1 - restarted).peer->session());
    }
  }
}

// A link that goes silent ends the session on both sides after the timeout; once it heals the
// dialer starts over.
TEST(DatagramPeer, SilenceEndsTheSessionAndTheDialerStartsOver) {
  Net n(0.0, 7);
  ASSERT_TRUE(n.run_until([&] { return both_up(n); }, 1'000'000));
  const std::uint64_t before = n.s(1).peer->session();
  n.cut = true;
  ASSERT_TRUE(n.run_until([&] { return n.s(0).peer->session() == 0 && n.s(1).peer->session() == 0; }, 100'000));
  EXPECT_NE(n.s(0).log.back().find("peer silent"), std::string::npos) << n.s(0).log.back();
  n.cut = false;
  ASSERT_TRUE(n.run_until([&] { return both_up(n); }, 1'000'000));
  EXPECT_NE(n.s(1).peer->session(), before);
  exchange(n, 20, 0);
  // The new session sends from the slots the peer made at its construction and the old
  // session used (making them, sized for the largest frame, stalled the polling thread for up
  // to 130 ms per session), and what it sends is intact.
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(n.s(i).peer->counters().sessions_up, 2u);
    EXPECT_EQ(n.s(i).peer->counters().slot_storages_made, 1u);
  }
}

// close() tells the peer at once (a CLOSE), long before its silence timeout.
TEST(DatagramPeer, CloseEndsThePeersSessionAtOnce) {
  Net n(0.0, 9);
  ASSERT_TRUE(n.run_until([&] { return both_up(n); }, 1'000'000));
  const std::uint64_t acceptor_session = n.s(0).peer->session();
  n.s(0).peer->close(acceptor_session, n.now(), [&](std::span<const std::byte> p) {
    n.inject(1, Bytes(p.begin(), p.end()));
  }, [&](const PeerEvent&) {});
  EXPECT_EQ(n.s(0).peer->session(), 0u);
  EXPECT_EQ(n.s(1).peer->session(), 0u) << "the CLOSE ended the dialer's side";
  EXPECT_NE(n.s(1).log.back().find("closed by the peer"), std::string::npos) << n.s(1).log.back();
  ASSERT_TRUE(n.run_until([&] { return both_up(n); }, 1'000'000));
  EXPECT_NE(n.s(0).peer->session(), acceptor_session);
}

// The receiver of a frame may close the session while it reads the frame (the core dropping a
// peer on what it just said): the session and the frame's bytes outlive the delivery, nothing
// more of that session is delivered, and the next session comes up and carries frames. (A
// DPDK server segfaulted when a leadership transfer closed sessions inside a delivery.)
TEST(DatagramPeer, ASessionClosedFromInsideItsOwnDeliveryEndsCleanly) {
  Net n(0.0, 13);
  ASSERT_TRUE(n.run_until([&] { return both_up(n); }, 1'000'000));
  const std::uint64_t closed = n.s(0).peer->session();
  bool read_after_close = false;
  n.on_frame = [&](int at, const PeerEvent& e) {
    if (at != 0 || e.session != closed || read_after_close) return;
    const Bytes copy(e.frame.begin(), e.frame.end());
    n.s(0).peer->close(e.session, n.now(), [&](std::span<const std::byte>) {}, [&](const PeerEvent& d) {
      n.s(0).log.push_back("down " + std::to_string(d.session) + " " + std::string(d.reason));
    });
    EXPECT_EQ(n.s(0).peer->session(), 0u);
    // The frame's bytes (reassembled from 3 packets) are still the frame's.
    EXPECT_EQ(Bytes(e.frame.begin(), e.frame.end()), copy);
    read_after_close = true;
  };
  // 1,200-byte frames take 3 packets of 500 each: the first frame 0 takes closes its session.
  std::uint32_t sent = 0;
  ASSERT_TRUE(n.run_until([&] {
    while (sent < 20 && n.s(1).peer->send(n.s(1).peer->session(), frame_of(1200, sent))) ++sent;
    return read_after_close;
  }, 100'000));
  n.on_frame = nullptr;
  const std::size_t frames_of_closed = static_cast<std::size_t>(
      std::count(n.s(0).frame_sessions.begin(), n.s(0).frame_sessions.end(), closed));
  EXPECT_EQ(frames_of_closed, 1u) << "a frame of the closed session came after the close";
  ASSERT_TRUE(n.run_until([&] { return both_up(n) && n.s(0).peer->session() != closed; }, 1'000'000));
  EXPECT_EQ(std::count(n.s(0).frame_sessions.begin(), n.s(0).frame_sessions.end(), closed),
            static_cast<std::ptrdiff_t>(frames_of_closed));
  exchange(n, 20, 5000);
  EXPECT_EQ(n.s(0).peer->counters().slot_storages_made, 1u);
}

TEST(DatagramPeer, AWrongSecretNeverMakesASession) {
  Net n(0.0, 11);
  n.restart(1, /*secret=*/0x11);
  n.run(50'000);
  EXPECT_EQ(n.s(0).peer->session(), 0u);
  EXPECT_EQ(n.s(1).peer->session(), 0u);
  EXPECT_GT(n.s(1).peer->counters().handshakes_refused + n.s(0).peer->counters().handshakes_refused, 0u);
  EXPECT_GT(n.s(1).peer->counters().hellos_sent, 10u) << "the dialer keeps trying";
}

// A control packet of kind HELLO, version 1, with an all-zero body: well-formed, but no hello
// anyone of the cluster sent.
Bytes well_formed_hello() {
  Bytes hello(kControlHeaderBytes + wire::kHelloBytes, std::byte{0});
  for (std::size_t i = 0; i < 4; ++i) hello[i] = static_cast<std::byte>(kControlMagic >> (8 * i));
  hello[4] = std::byte{1};
  hello[5] = std::byte{1};
  return hello;
}

TEST(DatagramPeer, GarbageControlPacketsAreCountedAndChangeNothing) {
  Net n(0.0, 13);
  ASSERT_TRUE(n.run_until([&] { return both_up(n); }, 1'000'000));
  const std::uint64_t live = n.s(0).peer->session();
  const Bytes hello = well_formed_hello();
  std::vector<Bytes> bad;
  bad.push_back(Bytes(hello.begin(), hello.begin() + 6));  // cut short
  Bytes b = hello;
  b[4] = std::byte{2};  // version
  bad.push_back(b);
  b = hello;
  b[5] = std::byte{9};  // kind
  bad.push_back(b);
  b = hello;
  b[6] = std::byte{1};  // reserved
  bad.push_back(b);
  b = hello;
  b.pop_back();  // wrong body size
  bad.push_back(b);
  for (const Bytes& p : bad) n.inject(0, p);
  EXPECT_EQ(n.s(0).peer->counters().control_garbage, bad.size());
  n.run(2000);  // past answer_interval_us since the handshake's own REPLY
  n.inject(0, hello);  // well-formed, but not a hello anyone sent: refused, the session stays
  EXPECT_EQ(n.s(0).peer->counters().handshakes_refused, 1u);
  EXPECT_EQ(n.s(0).peer->session(), live);
  exchange(n, 10, 0);
}

// A flood of HELLOs, or of data for a session this end does not have, costs one answer per
// answer_interval_us (1 ms), not one per packet: the rest are counted and dropped. A correct
// peer still gets its answers (the handshake and the CLOSE happen as before).
TEST(DatagramPeer, AnswersToAFloodAreThrottled) {
  Net n(0.0, 17);
  ASSERT_TRUE(n.run_until([&] { return both_up(n); }, 1'000'000));
  const std::uint64_t live = n.s(0).peer->session();
  // A well-formed HELLO nobody of this cluster sent, 100 times at one instant.
  const Bytes hello = well_formed_hello();
  n.run(2000);  // past answer_interval_us since the handshake's own REPLY
  const std::size_t sent_before = n.captured[0].size();
  for (int k = 0; k < 100; ++k) n.inject(0, hello);
  EXPECT_EQ(n.s(0).peer->counters().handshakes_refused, 1u) << "one looked at";
  EXPECT_EQ(n.s(0).peer->counters().answers_throttled, 99u);
  EXPECT_EQ(n.s(0).peer->session(), live);
  EXPECT_EQ(n.captured[0].size(), sent_before) << "no answer to a refused HELLO";

  // Server 1 restarts; server 2 keeps sending on the old session: one CLOSE per millisecond.
  const std::uint64_t old = n.s(1).peer->session();
  ASSERT_TRUE(n.s(1).peer->send(old, frame_of(100, 1)));
  std::vector<Bytes> old_packets;
  n.s(1).peer->poll(n.now(), [&](std::span<const std::byte> p) { old_packets.emplace_back(p.begin(), p.end()); },
                    [](const PeerEvent&) {});
  ASSERT_FALSE(old_packets.empty());
  n.restart(0);
  const std::size_t closes_before = n.captured[0].size();
  for (int k = 0; k < 50; ++k) n.inject(0, old_packets.front());
  EXPECT_EQ(n.captured[0].size(), closes_before + 1) << "one CLOSE for 50 stale packets";
  EXPECT_EQ(n.s(0).peer->counters().answers_throttled, 49u);
  // The peer still learns, and a new session comes up.
  ASSERT_TRUE(n.run_until([&] { return both_up(n) && n.s(1).peer->session() != old; }, 1'000'000));
  exchange(n, 5, 100);
}

}  // namespace
}  // namespace fastzab::net
