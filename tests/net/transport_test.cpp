// Real transports on 127.0.0.1: sessions per pair, frames in order and intact, big batches,
// restarts, close_session, wake(), the poll modes. Every wait is bounded by pump()'s deadline.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "net/wire.h"
#include "tests/net/harness.h"

namespace fastzab::net::test {
namespace {

using Kind = Event::Kind;

// Servers 1..n, all connected: opened from the smallest id so every dialer knows its acceptors'
// ports (the smaller id never dials, so it needs no port of a larger one).
struct Cluster {
  std::vector<Node> nodes;
  std::vector<std::uint16_t> ports;

  explicit Cluster(std::size_t n, PollMode mode = PollMode::blocking) : nodes(n), ports(n, 0) {
    for (std::size_t i = 0; i < n; ++i) open(i + 1, mode);
  }
  void open(std::uint64_t id, PollMode mode = PollMode::blocking) {
    std::vector<std::pair<std::uint64_t, std::uint16_t>> peers;
    for (std::uint64_t other = 1; other <= nodes.size(); ++other) {
      if (other != id) peers.emplace_back(other, ports[other - 1]);
    }
    TransportConfig c = config_for(id, peers, ports[id - 1]);
    c.poll_mode = mode;
    c.adaptive_spin = 20us;
    open_node(node(id), std::move(c));
    ports[id - 1] = node(id)->listen_port();
  }
  Node& node(std::uint64_t id) { return nodes[id - 1]; }
  std::vector<Node*> all() {
    std::vector<Node*> out;
    for (Node& n : nodes) out.push_back(&n);
    return out;
  }
  bool all_connected() {
    for (std::uint64_t a = 1; a <= nodes.size(); ++a) {
      for (std::uint64_t b = 1; b <= nodes.size(); ++b) {
        if (a != b && node(a).live(b) == kNoSession) return false;
      }
    }
    return true;
  }
  bool connect() { return pump(all(), [this] { return all_connected(); }); }
};

TEST(Transport, ThreeServersConnectPairwiseWithOneSessionPerPair) {
  Cluster cluster(3);
  ASSERT_TRUE(cluster.connect());
  pump_for(cluster.all(), 300ms);  // nothing more may happen: no duplicate connection
  for (std::uint64_t a = 1; a <= 3; ++a) {
    const Node& n = cluster.node(a);
    for (std::uint64_t b = 1; b <= 3; ++b) {
      if (a == b) continue;
      EXPECT_EQ(n.count(Kind::session_up, b), 1u) << a << " with " << b;
      EXPECT_EQ(n.count(Kind::session_down, b), 0u) << a << " with " << b;
    }
    EXPECT_EQ(n->counters().sessions_up, 2u);
    EXPECT_EQ(n->counters().handshakes_refused, 0u);
  }
  // Session ids are each side's own (fresh per connection in this process): all six differ.
  std::set<SessionId> ids;
  for (std::uint64_t a = 1; a <= 3; ++a) {
    for (std::uint64_t b = 1; b <= 3; ++b) {
      if (a != b) ids.insert(cluster.node(a).live(b));
    }
  }
  EXPECT_EQ(ids.size(), 6u);
  EXPECT_NE(cluster.node(1)->describe().find("io_uring"), std::string_view::npos);
}

TEST(Transport, FramesFrom1ByteTo1MiBArriveInOrderAndIntact) {
  Cluster cluster(2);
  ASSERT_TRUE(cluster.connect());
  Node& one = cluster.node(1);
  Node& two = cluster.node(2);
  std::mt19937_64 rng(2024);
  std::vector<std::vector<std::byte>> sent_to_one;
  std::vector<std::vector<std::byte>> sent_to_two;
  // Sizes log-uniform between 1 B and 1 MiB, both ends included; both directions at once.
  auto size_of = [&](std::size_t i) -> std::size_t {
    if (i == 0) return 1;
    if (i == 1) return std::size_t{1} << 20;
    return std::size_t{1} << (rng() % 21) | (rng() % 64);
  };
  for (std::size_t i = 0; i < 120; ++i) {
    auto frame = random_bytes(std::min<std::size_t>(size_of(i), std::size_t{1} << 20), rng());
    ASSERT_TRUE(two->send(1, two.live(1), frame));
    sent_to_one.push_back(std::move(frame));
    auto back = random_bytes(std::min<std::size_t>(size_of(i), std::size_t{1} << 20), rng());
    ASSERT_TRUE(one->send(2, one.live(2), back));
    sent_to_two.push_back(std::move(back));
    if (i % 10 == 9) pump_for(cluster.all(), 1ms);  // frames queued across several flushes
  }
  ASSERT_TRUE(pump(cluster.all(), [&] {
    return one.frames_from(2).size() == sent_to_one.size() &&
           two.frames_from(1).size() == sent_to_two.size();
  }, 20000ms));
  const auto got_one = one.frames_from(2);
  for (std::size_t i = 0; i < sent_to_one.size(); ++i) {
    ASSERT_EQ(got_one[i]->frame, sent_to_one[i]) << "frame " << i << " to server 1";
    EXPECT_EQ(got_one[i]->session, one.live(2));
  }
  const auto got_two = two.frames_from(1);
  for (std::size_t i = 0; i < sent_to_two.size(); ++i) {
    ASSERT_EQ(got_two[i]->frame, sent_to_two[i]) << "frame " << i << " to server 2";
  }
  EXPECT_EQ(one->counters().frames_received, sent_to_one.size());
  EXPECT_EQ(two->counters().frames_sent, sent_to_one.size());
  EXPECT_EQ(one->counters().bytes_received, two->counters().bytes_sent);
}

TEST(Transport, TenThousandSmallFramesInOneBatchArriveComplete) {
  Cluster cluster(2);
  ASSERT_TRUE(cluster.connect());
  Node& one = cluster.node(1);
  Node& two = cluster.node(2);
  constexpr std::uint32_t kFrames = 10'000;
  for (std::uint32_t i = 0; i < kFrames; ++i) {
    // The sequence number, then a few bytes derived from it: order and content both checkable.
    std::vector<std::byte> frame(4 + i % 29);
    wire::store_u32_le(i, frame.data());
    for (std::size_t k = 4; k < frame.size(); ++k) frame[k] = static_cast<std::byte>(i * 31 + k);
    ASSERT_TRUE(one->send(2, one.live(2), frame));
  }
  ASSERT_TRUE(pump(cluster.all(), [&] { return two.frames_from(1).size() >= kFrames; }));
  const auto got = two.frames_from(1);
  ASSERT_EQ(got.size(), kFrames);
  for (std::uint32_t i = 0; i < kFrames; ++i) {
    const auto& frame = got[i]->frame;
    ASSERT_EQ(frame.size(), 4 + i % 29);
    ASSERT_EQ(wire::load_u32_le(frame.data()), i);
    for (std::size_t k = 4; k < frame.size(); ++k) {
      ASSERT_EQ(frame[k], static_cast<std::byte>(i * 31 + k));
    }
  }
}

TEST(Transport, ATinyReceiveBufferRingStillDeliversEverything) {
  // 4 buffers of 64 bytes: frames span many buffers, the ring runs dry (ENOBUFS ends the
  // multishot recv, which must be re-armed once buffers come back), pinned buffers are scarce.
  Node one;
  Node two;
  TransportConfig c1 = config_for(1, {{2, 0}});
  c1.recv_buffer_count = 4;
  c1.recv_buffer_bytes = 64;
  open_node(one, std::move(c1));
  open_node(two, config_for(2, {{1, one->listen_port()}}));
  ASSERT_TRUE(pump({&one, &two}, [&] { return one.live(2) != kNoSession; }));
  std::mt19937_64 rng(77);
  std::vector<std::vector<std::byte>> sent;
  for (int i = 0; i < 300; ++i) {
    sent.push_back(random_bytes(1 + rng() % (i % 10 == 0 ? 5000 : 40), rng()));
    ASSERT_TRUE(two->send(1, two.live(1), sent.back()));
  }
  ASSERT_TRUE(pump({&one, &two}, [&] { return one.frames_from(2).size() == sent.size(); }));
  for (std::size_t i = 0; i < sent.size(); ++i) {
    ASSERT_EQ(one.frames_from(2)[i]->frame, sent[i]) << "frame " << i;
  }
}

TEST(Transport, FrameSpansStayValidUntilTheNextPoll) {
  Cluster cluster(2);
  ASSERT_TRUE(cluster.connect());
  Node& one = cluster.node(1);
  Node& two = cluster.node(2);
  std::mt19937_64 rng(88);
  std::vector<std::vector<std::byte>> sent;
  for (int i = 0; i < 400; ++i) {
    // Small frames (inside one receive buffer) and large ones (spilled), mixed.
    sent.push_back(random_bytes(i % 7 == 0 ? 20'000 + rng() % 50'000 : 1 + rng() % 200, rng()));
    ASSERT_TRUE(two->send(1, two.live(1), sent.back()));
  }
  std::size_t next = 0;
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (next < sent.size() && std::chrono::steady_clock::now() < deadline) {
    std::vector<std::span<const std::byte>> spans;  // not copied: checked after poll() returns
    ASSERT_TRUE(one->poll(1ms, [&](const Event& e) {
      if (e.kind == Kind::frame) spans.push_back(e.frame);
    }).has_value());
    for (const auto& span : spans) {
      ASSERT_LT(next, sent.size());
      ASSERT_TRUE(std::equal(span.begin(), span.end(), sent[next].begin(), sent[next].end()))
          << "frame " << next << " changed before the next poll()";
      ++next;
    }
    ASSERT_TRUE(two->poll(0us, [](const Event&) {}).has_value());
  }
  EXPECT_EQ(next, sent.size());
}

TEST(Transport, OpenedOnOneThreadPolledOnAnother) {
  Node one;
  Node two;
  open_node(one, config_for(1, {{2, 0}}));
  open_node(two, config_for(2, {{1, one->listen_port()}}));
  bool delivered = false;
  std::thread poller([&] {
    // The ring binds its single issuer at the first poll(), so this thread may own it.
    const auto frame = random_bytes(1000, 9);
    bool sent = false;
    pump({&one, &two}, [&] {
      if (!sent && two.live(1) != kNoSession) sent = two->send(1, two.live(1), frame);
      delivered = !one.frames_from(2).empty() && one.frames_from(2)[0]->frame == frame;
      return delivered;
    });
    one.transport.reset();  // destroyed on the polling thread, as transport.h asks
    two.transport.reset();
  });
  poller.join();
  EXPECT_TRUE(delivered);
}

// The restarted server is destroyed and opened again on the same port.
void restart_test(std::uint64_t restarted) {
  Cluster cluster(3);
  ASSERT_TRUE(cluster.connect());
  std::vector<std::uint64_t> others;
  for (std::uint64_t id = 1; id <= 3; ++id) {
    if (id != restarted) others.push_back(id);
  }
  std::map<std::uint64_t, SessionId> old;
  for (const std::uint64_t id : others) old[id] = cluster.node(id).live(restarted);

  cluster.node(restarted).transport.reset();
  std::vector<Node*> survivors;
  for (const std::uint64_t id : others) survivors.push_back(&cluster.node(id));
  ASSERT_TRUE(pump(survivors, [&] {
    for (const std::uint64_t id : others) {
      if (cluster.node(id).count(Kind::session_down, restarted) == 0) return false;
    }
    return true;
  }));
  const std::vector<std::byte> frame = random_bytes(100, 1);
  for (const std::uint64_t id : others) {
    EXPECT_FALSE(cluster.node(id)->send(restarted, old[id], frame)) << "server " << id;
  }

  cluster.node(restarted).events.clear();
  cluster.open(restarted);
  ASSERT_TRUE(cluster.connect());
  for (const std::uint64_t id : others) {
    Node& n = cluster.node(id);
    const SessionId fresh = n.live(restarted);
    EXPECT_NE(fresh, old[id]);
    EXPECT_EQ(n.count(Kind::session_up, restarted), 2u);
    EXPECT_EQ(n.count(Kind::session_down, restarted), 1u);
    // The down of the old session comes before the up of the new one.
    std::vector<Kind> order;
    for (const Recorded& r : n.events) {
      if (r.peer == restarted && r.kind != Kind::frame) order.push_back(r.kind);
    }
    EXPECT_EQ(order, (std::vector<Kind>{Kind::session_up, Kind::session_down, Kind::session_up}));
    EXPECT_FALSE(n->send(restarted, old[id], frame));
    EXPECT_TRUE(n->send(restarted, fresh, frame));
  }
  Node& back = cluster.node(restarted);
  ASSERT_TRUE(pump(cluster.all(), [&] {
    for (const std::uint64_t id : others) {
      if (back.frames_from(id).size() != 1) return false;
    }
    return true;
  }));
  for (const std::uint64_t id : others) {
    EXPECT_EQ(back.frames_from(id)[0]->frame, frame);
    EXPECT_EQ(back.frames_from(id)[0]->session, back.live(id));
  }
}

TEST(Transport, RestartOfTheAcceptingServerGivesNewSessions) { restart_test(1); }
TEST(Transport, RestartOfTheDialingServerGivesNewSessions) { restart_test(3); }

void close_session_test(std::uint64_t closer) {
  Cluster cluster(2);
  ASSERT_TRUE(cluster.connect());
  const std::uint64_t other = closer == 1 ? 2 : 1;
  Node& a = cluster.node(closer);
  Node& b = cluster.node(other);
  const SessionId old = a.live(other);
  a->close_session(other, old);
  // At once: the session is no longer live for sends, even before the next poll().
  EXPECT_FALSE(a->send(other, old, random_bytes(10, 2)));
  ASSERT_TRUE(pump(cluster.all(), [&] {
    return a.count(Kind::session_down, other) == 1 && b.count(Kind::session_down, closer) == 1;
  }));
  EXPECT_NE(std::find_if(a.events.begin(), a.events.end(),
                         [&](const Recorded& r) {
                           return r.kind == Kind::session_down && r.session == old &&
                                  r.reason == "closed by this server";
                         }),
            a.events.end());
  // The larger id dials again: a new session on both sides.
  ASSERT_TRUE(cluster.connect());
  EXPECT_NE(a.live(other), old);
  EXPECT_NE(b.live(closer), kNoSession);
  EXPECT_EQ(a.count(Kind::session_up, other), 2u);
  EXPECT_EQ(b.count(Kind::session_up, closer), 2u);
  const auto frame = random_bytes(5000, 3);
  ASSERT_TRUE(b->send(closer, b.live(closer), frame));
  ASSERT_TRUE(pump(cluster.all(), [&] { return a.frames_from(other).size() == 1; }));
  EXPECT_EQ(a.frames_from(other)[0]->frame, frame);
}

TEST(Transport, CloseSessionByTheAcceptorGoesDownOnBothSidesThenReconnects) {
  close_session_test(1);
}
TEST(Transport, CloseSessionByTheDialerGoesDownOnBothSidesThenReconnects) {
  close_session_test(2);
}

TEST(Transport, FramesQueuedBeforeCloseSessionNeverCross) {
  Cluster cluster(2);
  ASSERT_TRUE(cluster.connect());
  Node& one = cluster.node(1);
  Node& two = cluster.node(2);
  const SessionId old = two.live(1);
  // Queued, then the session is closed before any poll() flushes them: dropped.
  ASSERT_TRUE(two->send(1, old, random_bytes(100, 4)));
  two->close_session(1, old);
  ASSERT_TRUE(cluster.connect());
  pump_for(cluster.all(), 100ms);
  EXPECT_TRUE(one.frames_from(2).empty());
}

TEST(Transport, ClosingASessionFromInsideTheCallbackStopsItsFrames) {
  Cluster cluster(2);
  ASSERT_TRUE(cluster.connect());
  Node& one = cluster.node(1);
  Node& two = cluster.node(2);
  const SessionId session = one.live(2);
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(two->send(1, two.live(1), random_bytes(10, 5)));
  pump_for({&two}, 20ms);  // all 50 in server 1's socket, likely in one receive buffer
  std::size_t frames = 0;
  std::size_t after_close = 0;
  bool closed = false;
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!closed && std::chrono::steady_clock::now() < deadline) {
    auto polled = one->poll(1ms, [&](const Event& e) {
      if (e.kind != Kind::frame) return;
      if (closed) ++after_close;
      ++frames;
      if (frames == 3) {
        one->close_session(2, session);
        closed = true;
      }
    });
    ASSERT_TRUE(polled.has_value());
  }
  ASSERT_TRUE(closed);
  pump_for({&one, &two}, 50ms);
  EXPECT_EQ(after_close, 0u);
  EXPECT_EQ(frames, 3u);
}

TEST(Transport, WakeReturnsABlockedPoll) {
  Cluster cluster(1);
  Node& one = cluster.node(1);
  const auto begin = std::chrono::steady_clock::now();
  std::thread waker([&] {
    std::this_thread::sleep_for(50ms);
    one->wake();
  });
  auto polled = one->poll(10s, [](const Event&) {});
  waker.join();
  ASSERT_TRUE(polled.has_value());
  EXPECT_EQ(*polled, 0u);
  // Generous bound: only that it did not sleep the full 10 s.
  EXPECT_LT(std::chrono::steady_clock::now() - begin, 5s);
}

TEST(Transport, SendToAPeerThatDoesNotReadClosesItsSessionPastTheQueueLimit) {
  Node one;
  TransportConfig c = config_for(1, {{2, 0}});
  c.max_frame_bytes = 64 << 10;
  c.max_queued_bytes = 1 << 20;
  open_node(one, std::move(c));
  RawPeer raw(one->listen_port());
  ASSERT_TRUE(raw.handshake(2, 1, test_secret(), {&one}));
  ASSERT_TRUE(pump({&one}, [&] { return one.live(2) != kNoSession; }));
  const SessionId session = one.live(2);
  const auto frame = random_bytes(60 << 10, 6);
  std::size_t accepted = 0;
  while (one->send(2, session, frame)) ++accepted;  // no poll: nothing leaves the queue
  EXPECT_GE(accepted, 15u);
  EXPECT_LE(accepted, 17u);
  ASSERT_TRUE(pump({&one}, [&] { return one.count(Kind::session_down, 2) == 1; }));
  EXPECT_FALSE(one->send(2, session, frame));
}

class PollModes : public testing::TestWithParam<PollMode> {};

TEST_P(PollModes, PingPongOfAHundredFrames) {
  Cluster cluster(2, GetParam());
  ASSERT_TRUE(cluster.connect());
  Node& one = cluster.node(1);
  Node& two = cluster.node(2);
  for (std::size_t i = 0; i < 100; ++i) {
    const auto ping = random_bytes(1 + i * 7, i);
    ASSERT_TRUE(one->send(2, one.live(2), ping));
    ASSERT_TRUE(pump(cluster.all(), [&] { return two.frames_from(1).size() == i + 1; }));
    ASSERT_EQ(two.frames_from(1)[i]->frame, ping);
    ASSERT_TRUE(two->send(1, two.live(1), two.frames_from(1)[i]->frame));
    ASSERT_TRUE(pump(cluster.all(), [&] { return one.frames_from(2).size() == i + 1; }));
    ASSERT_EQ(one.frames_from(2)[i]->frame, ping);
  }
}

INSTANTIATE_TEST_SUITE_P(Transport, PollModes,
                         testing::Values(PollMode::blocking, PollMode::adaptive, PollMode::busy),
                         [](const testing::TestParamInfo<PollMode>& param_info) {
                           switch (param_info.param) {
                             case PollMode::busy: return std::string("busy");
                             case PollMode::adaptive: return std::string("adaptive");
                             case PollMode::blocking: return std::string("blocking");
                           }
                           return std::string("unknown");
                         });

TEST(Transport, OpenNamesTheAddressWhenThePortIsTaken) {
  Node one;
  open_node(one, config_for(1, {}));
  const std::uint16_t port = one->listen_port();
  auto second = Transport::open(config_for(2, {}, port));
  ASSERT_FALSE(second.has_value());
  EXPECT_EQ(second.error().code, errc::socket_error);
  EXPECT_NE(second.error().detail.find("127.0.0.1:" + std::to_string(port)), std::string::npos)
      << second.error().to_string();
}

TEST(Transport, OpenRefusesABadConfig) {
  auto with_self = Transport::open(config_for(1, {{1, 5000}}));
  ASSERT_FALSE(with_self.has_value());
  EXPECT_EQ(with_self.error().code, errc::invalid_config);
  auto twice = Transport::open(config_for(1, {{2, 5000}, {2, 5001}}));
  ASSERT_FALSE(twice.has_value());
  EXPECT_EQ(twice.error().code, errc::invalid_config);
  TransportConfig bad_host = config_for(3, {{1, 5000}});
  bad_host.peers[0].host = "no-such-host.invalid";
  auto bad = Transport::open(std::move(bad_host));
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code, errc::bad_address);
  EXPECT_NE(bad.error().detail.find("no-such-host.invalid:5000"), std::string::npos);
}

}  // namespace
}  // namespace fastzab::net::test
