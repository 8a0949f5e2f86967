// Suite `dpdk`: the DPDK layer (net/dpdk_port.h) on this machine's terms: the EAL without
// hugepages or PCI, ports made of rings in this process (net_ring), and DatagramSessions carrying
// frames through real mbufs. Also the errors: a second EAL, a missing port, an empty pool.
// The EAL is set up once for the process (DPDK's rule), with a --file-prefix of its own, and its
// runtime directory is removed at exit.
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_ring.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "net/datagram_session.h"
#include "net/dpdk_port.h"
#include "net/dpdk_transport.h"

namespace fastzab::net::dpdk {
namespace {

Eal* g_eal = nullptr;

class EalEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    const std::vector<std::string> args{"--no-huge", "-m", "256", "--no-pci", "--iova-mode=va",
                                        "--file-prefix", "fz-dpdk-test-" + std::to_string(::getpid()),
                                        "-l", "0", "--no-telemetry", "--log-level", "1"};
    auto eal = Eal::init(args);
    ASSERT_TRUE(eal.has_value()) << eal.error().to_string();
    eal_ = std::move(*eal);
    g_eal = eal_.get();
  }
  void TearDown() override {
    g_eal = nullptr;
    eal_.reset();
  }

 private:
  std::unique_ptr<Eal> eal_;
};

// Two ports joined by a pair of rings: what one sends, the other receives.
std::pair<std::uint16_t, std::uint16_t> ring_pair(const std::string& name) {
  rte_ring* ab = rte_ring_create((name + "ab").c_str(), 4096, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
  rte_ring* ba = rte_ring_create((name + "ba").c_str(), 4096, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
  EXPECT_NE(ab, nullptr);
  EXPECT_NE(ba, nullptr);
  const int a = rte_eth_from_rings((name + "a").c_str(), &ba, 1, &ab, 1, 0);
  const int b = rte_eth_from_rings((name + "b").c_str(), &ab, 1, &ba, 1, 0);
  EXPECT_GE(a, 0);
  EXPECT_GE(b, 0);
  return {static_cast<std::uint16_t>(a), static_cast<std::uint16_t>(b)};
}

std::vector<std::byte> frame_of(std::size_t size, std::uint32_t tag) {
  std::vector<std::byte> f(size);
  for (std::size_t i = 0; i < size; ++i) f[i] = static_cast<std::byte>((tag * 131 + i * 7) & 0xff);
  return f;
}

TEST(Dpdk, ASecondEalIsRefused) {
  const std::vector<std::string> args{"--no-huge"};
  const auto again = Eal::init(args);
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code, errc::dpdk_error);
  EXPECT_NE(again.error().detail.find("already set up"), std::string::npos) << again.error().to_string();
}

TEST(Dpdk, AMissingPortIsNamed) {
  PortConfig c;
  c.port = 77;
  const auto port = Port::open(*g_eal, c);
  ASSERT_FALSE(port.has_value());
  EXPECT_NE(port.error().to_string().find("DPDK port 77 does not exist"), std::string::npos)
      << port.error().to_string();
  c.port = 0;
  c.burst = 0;
  const auto bad = Port::open(*g_eal, c);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code, errc::invalid_config);
}

// A pool smaller than what is queued: queue() refuses, counted, without crashing or hanging, and
// works again once the packets went through and their mbufs came back.
TEST(Dpdk, AnEmptyPoolIsReportedAndRecovers) {
  const auto [a, b] = ring_pair("pool");
  PortConfig small;
  small.port = a;
  small.mbufs = 63;
  small.mbuf_cache = 0;
  small.burst = 16;
  auto tx = Port::open(*g_eal, small);
  ASSERT_TRUE(tx.has_value()) << tx.error().to_string();
  PortConfig other;
  other.port = b;
  auto rx = Port::open(*g_eal, other);
  ASSERT_TRUE(rx.has_value()) << rx.error().to_string();
  const auto packet = frame_of(100, 1);
  std::size_t queued = 0;
  while (queued < 100 && (*tx)->queue(packet)) ++queued;
  EXPECT_EQ(queued, 63u);
  EXPECT_EQ((*tx)->counters().pool_empty, 1u);
  EXPECT_EQ((*tx)->flush(), 63u);
  std::size_t received = 0;
  while ((*rx)->receive([&](std::span<const std::byte> p) {
    EXPECT_EQ(std::vector<std::byte>(p.begin(), p.end()), packet);
    ++received;
  }) > 0) {
  }
  EXPECT_EQ(received, 63u);
  EXPECT_TRUE((*tx)->queue(packet)) << "the mbufs came back to the pool";
  EXPECT_FALSE((*tx)->queue(frame_of((*tx)->max_packet_bytes() + 1, 2))) << "larger than an mbuf";
}

// DatagramSessions over two ring ports: 2,000 frames each way, 0 to 20 KB (up to 15 packets),
// through real mbufs, arrive whole, in order, exactly once. The clock is a counter (a
// microsecond a turn), so timers behave the same on a slow machine.
TEST(Dpdk, SessionsCarryFramesThroughRingPorts) {
  const auto [pa, pb] = ring_pair("sess");
  std::unique_ptr<Port> ports[2];
  for (int i = 0; i < 2; ++i) {
    PortConfig c;
    c.port = i == 0 ? pa : pb;
    auto p = Port::open(*g_eal, c);
    ASSERT_TRUE(p.has_value()) << p.error().to_string();
    ports[i] = std::move(*p);
  }
  DatagramSessionConfig sc;
  sc.mtu_payload = std::min<std::size_t>(1400, ports[0]->max_packet_bytes() - kDatagramHeaderBytes);
  sc.window = 128;
  sc.send_slots = 1024;
  sc.max_frame_bytes = 1 << 20;
  sc.resend_after_us = 500;
  DatagramSession sessions[2] = {DatagramSession(sc, 11, 22), DatagramSession(sc, 22, 11)};
  constexpr std::size_t kFrames = 2000;
  std::vector<std::vector<std::byte>> sent[2], got[2];
  std::mt19937 rng(5);
  std::uniform_int_distribution<std::size_t> size(0, 20'000);
  for (int i = 0; i < 2; ++i) {
    for (std::size_t k = 0; k < kFrames; ++k) sent[i].push_back(frame_of(size(rng), static_cast<std::uint32_t>(2 * k + i)));
  }
  std::size_t next[2] = {0, 0};
  std::uint64_t now = 1;
  for (std::size_t turn = 0; turn < 2'000'000; ++turn, ++now) {
    if (got[0].size() == kFrames && got[1].size() == kFrames) break;
    for (int i = 0; i < 2; ++i) {
      while (next[i] < kFrames && sessions[i].send(sent[i][next[i]])) ++next[i];
      // A packet the pool cannot take is lost here, as on a wire: go-back-N resends it.
      sessions[i].poll(now, [&](std::span<const std::byte> p) { ports[i]->queue(p); });
      ports[i]->flush();
    }
    for (int i = 0; i < 2; ++i) {
      ports[i]->receive([&](std::span<const std::byte> p) {
        const auto r = sessions[i].receive(p, now, [&](std::span<const std::byte> f) {
          got[i].emplace_back(f.begin(), f.end());
        });
        EXPECT_TRUE(r == DatagramSession::Received::accepted || r == DatagramSession::Received::duplicate ||
                    r == DatagramSession::Received::out_of_order);
      });
    }
  }
  EXPECT_EQ(got[1], sent[0]);
  EXPECT_EQ(got[0], sent[1]);
  EXPECT_EQ(ports[0]->counters().tx_packets, ports[1]->counters().rx_packets);
  EXPECT_EQ(ports[1]->counters().tx_packets, ports[0]->counters().rx_packets);
}

// A ring port is a point-to-point link (its MAC is all zero, which DPDK's ring driver cannot
// change): the peer table names the port alone.
DpdkTransportConfig transport_config(std::uint64_t self, std::uint64_t peer, std::uint16_t port,
                                     Mac peer_mac = {}) {
  DpdkTransportConfig c;
  c.transport.self_id = self;
  c.transport.cluster_id = 9;
  c.transport.secret.fill(0x42);
  c.transport.max_frame_bytes = 1u << 20;
  c.transport.poll_mode = PollMode::busy;
  c.peers = {DpdkPeer{peer, port, peer_mac}};
  return c;
}

// Two transports (servers 1 and 2) in this process, each on one port of a ring pair: the
// session comes up through the handshake, 500 frames of up to 200 KB go each way through the
// Transport interface in order, and close_session() ends the session on both sides before a
// new one comes up.
TEST(Dpdk, TwoTransportsOnRingPortsCarryFramesThroughTheTransportInterface) {
  const auto [pa, pb] = ring_pair("tr");
  auto t1 = open_transport(*g_eal, transport_config(1, 2, pa));
  ASSERT_TRUE(t1.has_value()) << t1.error().to_string();
  auto t2 = open_transport(*g_eal, transport_config(2, 1, pb));
  ASSERT_TRUE(t2.has_value()) << t2.error().to_string();
  Transport* t[2] = {t1->get(), t2->get()};
  SessionId session[2] = {kNoSession, kNoSession};
  std::vector<std::vector<std::byte>> got[2];
  std::vector<std::string> downs[2];
  const auto pump = [&](int rounds) {
    for (int r = 0; r < rounds; ++r) {
      for (int i = 0; i < 2; ++i) {
        auto polled = t[i]->poll(std::chrono::microseconds(0), [&](const Event& e) {
          if (e.kind == Event::Kind::session_up) session[i] = e.session;
          if (e.kind == Event::Kind::session_down) {
            downs[i].emplace_back(e.reason);
            if (e.session == session[i]) session[i] = kNoSession;
          }
          if (e.kind == Event::Kind::frame) got[i].emplace_back(e.frame.begin(), e.frame.end());
        });
        ASSERT_TRUE(polled.has_value());
      }
    }
  };
  for (int r = 0; r < 100'000 && (session[0] == kNoSession || session[1] == kNoSession); ++r) pump(1);
  ASSERT_NE(session[0], kNoSession);
  ASSERT_NE(session[1], kNoSession);

  std::mt19937 rng(3);
  std::uniform_int_distribution<std::size_t> size(1, 200'000);
  std::vector<std::vector<std::byte>> sent[2];
  for (int i = 0; i < 2; ++i) {
    for (std::uint32_t k = 0; k < 500; ++k) {
      sent[i].push_back(frame_of(size(rng), 2 * k + static_cast<std::uint32_t>(i)));
      ASSERT_TRUE(t[i]->send(i == 0 ? 2 : 1, session[i], sent[i].back()));
    }
  }
  EXPECT_FALSE(t[0]->send(2, session[0] + 1, sent[0][0])) << "not the live session";
  EXPECT_FALSE(t[0]->send(2, session[0], {})) << "an empty frame";
  for (int r = 0; r < 2'000'000 && (got[0].size() < 500 || got[1].size() < 500); ++r) pump(1);
  EXPECT_EQ(got[1], sent[0]);
  EXPECT_EQ(got[0], sent[1]);
  EXPECT_EQ(t[0]->counters().frames_sent, 500u);
  EXPECT_EQ(t[1]->counters().frames_received, 500u);

  const SessionId closed = session[0];
  t[0]->close_session(2, closed);
  pump(1);
  ASSERT_FALSE(downs[0].empty());
  ASSERT_FALSE(downs[1].empty()) << "the CLOSE reached the other side";
  EXPECT_EQ(downs[1].back(), "closed by the peer");
  for (int r = 0; r < 100'000 && (session[0] == kNoSession || session[1] == kNoSession); ++r) pump(1);
  ASSERT_NE(session[0], kNoSession);
  EXPECT_NE(session[0], closed);
  EXPECT_NE(std::string((*t1)->describe()).find("raw Ethernet"), std::string::npos);
}

// A port whose link goes down (on memif: the peer process died) ends the sessions behind it at
// once, not after the silence timeout (a minute here), and the restarted port carries a new one.
TEST(Dpdk, ALinkThatGoesDownEndsItsSessionsAtOnce) {
  const auto [pa, pb] = ring_pair("down");
  DpdkTransportConfig c1 = transport_config(1, 2, pa);
  DpdkTransportConfig c2 = transport_config(2, 1, pb);
  for (DpdkTransportConfig* c : {&c1, &c2}) {
    c->datagram.silence_timeout_us = 60'000'000;
    c->datagram.keepalive_us = 1'000'000;
  }
  auto t1 = open_transport(*g_eal, std::move(c1));
  ASSERT_TRUE(t1.has_value()) << t1.error().to_string();
  auto t2 = open_transport(*g_eal, std::move(c2));
  ASSERT_TRUE(t2.has_value()) << t2.error().to_string();
  Transport* t[2] = {t1->get(), t2->get()};
  SessionId session[2] = {kNoSession, kNoSession};
  std::vector<std::string> downs;
  // Polled with the real clock (the link is looked at every millisecond), for at most ~5 s.
  const auto pump_until = [&](const auto& done) {
    for (int r = 0; r < 50'000 && !done(); ++r) {
      for (int i = 0; i < 2; ++i) {
        ASSERT_TRUE(t[i]->poll(std::chrono::microseconds(0), [&](const Event& e) {
                          if (e.kind == Event::Kind::session_up) session[i] = e.session;
                          if (e.kind == Event::Kind::session_down && i == 0) downs.emplace_back(e.reason);
                        }).has_value());
      }
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
  };
  pump_until([&] { return session[0] != kNoSession && session[1] != kNoSession; });
  ASSERT_NE(session[0], kNoSession);
  const SessionId first = session[0];
  ASSERT_EQ(rte_eth_dev_set_link_down(pa), 0);
  pump_until([&] { return !downs.empty(); });
  ASSERT_EQ(downs.size(), 1u) << "the session did not end when its link went down";
  pump_until([&] { return session[0] != first && session[0] != kNoSession; });
  EXPECT_NE(session[0], first) << "no new session after the port was restarted";
  EXPECT_NE(session[0], kNoSession);
}

// A peer's MAC written wrong: its frames match no peer, are dropped, and the transport says so
// once, naming the addresses, instead of waiting silently for a handshake that cannot come.
TEST(Dpdk, FramesFromAnUnknownMacAreNamedOnce) {
  const auto [pa, pb] = ring_pair("mac");
  std::vector<std::string> lines;
  DpdkTransportConfig c1 = transport_config(1, 2, pa, Mac{0x02, 0, 0, 0, 0, 0x22});  // wrong
  c1.transport.log_line = [&](std::string_view line) { lines.emplace_back(line); };
  auto t1 = open_transport(*g_eal, std::move(c1));
  ASSERT_TRUE(t1.has_value()) << t1.error().to_string();
  auto t2 = open_transport(*g_eal, transport_config(2, 1, pb));  // point to point: sends from 00:..
  ASSERT_TRUE(t2.has_value()) << t2.error().to_string();
  const auto unmatched = [&] {
    return std::count_if(lines.begin(), lines.end(), [](const std::string& l) {
      return l.find("match no peer of the table") != std::string::npos;
    });
  };
  for (int r = 0; r < 20'000 && unmatched() == 0; ++r) {
    for (Transport* t : {t1->get(), t2->get()}) {
      ASSERT_TRUE(t->poll(std::chrono::microseconds(0), [](const Event&) {}).has_value());
    }
  }
  ASSERT_EQ(unmatched(), 1) << "the dialer's HELLOs reached a transport that does not know its MAC";
  const std::string& line = *std::find_if(lines.begin(), lines.end(), [](const std::string& l) {
    return l.find("match no peer") != std::string::npos;
  });
  EXPECT_NE(line.find("from 00:00:00:00:00:00"), std::string::npos) << line;
  EXPECT_GT((*t1)->counters().connections_dropped_garbage, 0u);
  // More of them (the dialer resends its HELLO): counted, not said again.
  const std::uint64_t dropped = (*t1)->counters().connections_dropped_garbage;
  // The HELLO is resent every 20 ms: poll for up to ~3 s of real time.
  for (int r = 0; r < 15'000 && (*t1)->counters().connections_dropped_garbage == dropped; ++r) {
    for (Transport* t : {t1->get(), t2->get()}) {
      ASSERT_TRUE(t->poll(std::chrono::microseconds(0), [](const Event&) {}).has_value());
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  EXPECT_GT((*t1)->counters().connections_dropped_garbage, dropped);
  EXPECT_EQ(unmatched(), 1);
  EXPECT_EQ((*t1)->counters().sessions_up, 0u);
}

TEST(Dpdk, ABadPeerTableIsRefused) {
  const auto [pa, pb] = ring_pair("bad");
  const auto refused = [&](DpdkTransportConfig c, const std::string& why) {
    const auto r = open_transport(*g_eal, std::move(c));
    ASSERT_FALSE(r.has_value()) << why;
    EXPECT_NE(r.error().to_string().find(why), std::string::npos) << r.error().to_string();
  };
  refused(transport_config(1, 1, pa), "is this server");
  refused(transport_config(1, 2, pa, Mac{0x01, 0, 0x5e, 0, 0, 1}), "not a unicast address");
  refused(transport_config(1, 2, 99), "DPDK port 99 does not exist");
  DpdkTransportConfig shared = transport_config(1, 2, pa, Mac{0x02, 0, 0, 0, 0, 2});
  shared.peers.push_back(DpdkPeer{3, pa, Mac{}});
  refused(shared, "each needs a MAC of its own");
  DpdkTransportConfig twice = transport_config(1, 2, pa);
  twice.peers.push_back(DpdkPeer{2, pb, Mac{}});
  refused(twice, "listed twice");
  DpdkTransportConfig none = transport_config(1, 2, pa);
  none.peers.clear();
  refused(none, "peer table is empty");
  (void)pb;
}

}  // namespace
}  // namespace fastzab::net::dpdk

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new fastzab::net::dpdk::EalEnvironment);
  return RUN_ALL_TESTS();
}
