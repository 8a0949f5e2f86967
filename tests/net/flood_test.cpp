// Issue 10, bug 2: connections that never authenticate must not keep a real peer out, and the
// lines they cause are rate-limited. A Flood holds many TCP connections to a transport's port from
// a thread of its own (plain sockets), re-opening each the moment the server closes it, as the
// reported attack did; the transport under test is polled in the test's thread as everywhere else.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sodium.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "tests/net/harness.h"

namespace fastzab::net::test {
namespace {

using Kind = Event::Kind;

struct FloodOptions {
  std::size_t held = 200;          // connections held open, each re-opened when closed
  bool open_close_loop = false;    // also: connect, then close at once, as fast as it goes
  std::string source = "127.0.0.1";  // local address the connections are bound to
};

class Flood {
 public:
  Flood(std::uint16_t port, FloodOptions options)
      : port_(port), options_(std::move(options)), thread_([this] { run(); }) {}
  ~Flood() { stop(); }
  Flood(const Flood&) = delete;
  Flood& operator=(const Flood&) = delete;

  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::uint64_t closed_by_server() const { return closed_by_server_; }
  std::uint64_t opened() const { return opened_; }

 private:
  struct Held {
    int fd = -1;
    bool connecting = false;
  };

  int connect_one(bool& in_progress) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    sockaddr_in local{};
    local.sin_family = AF_INET;
    ::inet_pton(AF_INET, options_.source.c_str(), &local.sin_addr);
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&local), sizeof local) != 0) {
      ::close(fd);
      return -1;
    }
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port_);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address);
    if (rc != 0 && errno != EINPROGRESS) {
      ::close(fd);
      return -1;
    }
    in_progress = rc != 0;
    ++opened_;
    return fd;
  }

  void run() {
    std::vector<Held> held(options_.held);
    std::vector<pollfd> fds;
    while (!stop_) {
      for (Held& h : held) {
        if (h.fd >= 0) continue;
        bool in_progress = false;
        h.fd = connect_one(in_progress);
        h.connecting = h.fd >= 0 && in_progress;
      }
      if (options_.open_close_loop) {
        for (int i = 0; i < 4; ++i) {
          bool in_progress = false;
          const int fd = connect_one(in_progress);
          if (fd < 0) continue;
          pollfd p{fd, POLLOUT, 0};
          if (in_progress) static_cast<void>(::poll(&p, 1, 20));
          ::close(fd);
        }
      }
      fds.clear();
      for (const Held& h : held) {
        fds.push_back(pollfd{h.fd, static_cast<short>(h.connecting ? POLLOUT : POLLIN), 0});
      }
      if (::poll(fds.data(), fds.size(), 1) <= 0) continue;
      for (std::size_t i = 0; i < held.size(); ++i) {
        Held& h = held[i];
        const short revents = fds[i].revents;
        if (h.fd < 0 || revents == 0) continue;
        if (h.connecting) {
          int error = 0;
          socklen_t length = sizeof error;
          ::getsockopt(h.fd, SOL_SOCKET, SO_ERROR, &error, &length);
          if (error == 0 && (revents & POLLOUT) != 0) {
            h.connecting = false;  // established: from now on it only sits there
            continue;
          }
        } else {
          unsigned char sink[256];
          const ssize_t n = ::recv(h.fd, sink, sizeof sink, MSG_DONTWAIT);
          if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))) continue;
          ++closed_by_server_;
        }
        ::close(h.fd);  // re-opened at the top of the loop
        h.fd = -1;
      }
    }
    for (const Held& h : held) {
      if (h.fd >= 0) ::close(h.fd);
    }
  }

  std::uint16_t port_;
  FloodOptions options_;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> closed_by_server_{0};
  std::atomic<std::uint64_t> opened_{0};
  std::thread thread_;
};

// Server 1 knows servers 2..9; every one of them has a larger id, so server 1 only accepts.
TransportConfig acceptor_config() {
  std::vector<std::pair<std::uint64_t, std::uint16_t>> peers;
  for (std::uint64_t id = 2; id <= 9; ++id) peers.emplace_back(id, 0);
  return config_for(1, peers);
}

// Frames cross both ways on the session between `target` (server 1) and `peer` (server 9).
void expect_frames_flow(Node& target, Node& peer) {
  const std::vector<Node*> nodes = {&target, &peer};
  const auto to_target = random_bytes(5000, 21);
  const auto to_peer = random_bytes(300, 22);
  ASSERT_TRUE(peer->send(1, peer.live(1), to_target));
  ASSERT_TRUE(target->send(9, target.live(9), to_peer));
  ASSERT_TRUE(pump(nodes, [&] {
    return !target.frames_from(9).empty() && !peer.frames_from(1).empty();
  }));
  EXPECT_EQ(target.frames_from(9).back()->frame, to_target);
  EXPECT_EQ(peer.frames_from(1).back()->frame, to_peer);
}

// (a) 200 idle connections, re-opened as soon as they are closed, sit on the quorum port before
// the real peer dials: it still completes its handshake, and frames flow.
TEST(Flood, IdleConnectionsHeldAndReopenedDoNotKeepAPeerOut) {
  Node target;
  TransportConfig c = acceptor_config();
  // Longer than the test waits: no time-out frees a place, only making room can let server 9 in.
  c.hello_timeout = 10000ms;
  c.handshake_timeout = 10000ms;
  open_node(target, std::move(c));
  Flood flood(target->listen_port(), FloodOptions{});
  // Saturated: the server has had to close some of them (refused, or evicted) and they came back.
  ASSERT_TRUE(pump({&target}, [&] { return flood.closed_by_server() >= 50; }));
  Node peer;
  open_node(peer, config_for(9, {{1, target->listen_port()}}));
  const bool up = pump({&target, &peer}, [&] {
    return target.live(9) != kNoSession && peer.live(1) != kNoSession;
  }, 6000ms);
  ASSERT_TRUE(up) << "server 9 never got a session through the flood; server 1 counted "
                  << target->counters().handshakes_refused << " refused, "
                  << target->counters().handshakes_evicted << " evicted";
  expect_frames_flow(target, peer);
  flood.stop();
  EXPECT_GT(target->counters().handshakes_evicted, 0u);
  EXPECT_EQ(target.count(Kind::session_up), 1u);
}

// (b) A fast re-open loop against a saturated port: refusals and evictions are counted one by one
// but logged at most once a second, and the lines say how many were left out.
TEST(Flood, AReopenLoopLogsAtMostOneLinePerSecondWithACount) {
  Node target;
  open_node(target, acceptor_config());
  const auto begin = std::chrono::steady_clock::now();
  {
    Flood flood(target->listen_port(), FloodOptions{.held = 100, .open_close_loop = true});
    pump_for({&target}, 2500ms);
    flood.stop();
    EXPECT_GE(flood.closed_by_server(), 100u);
  }
  pump_for({&target}, 1200ms);  // the count of the last interval comes out on its own
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  const Counters& counters = target->counters();
  const std::uint64_t closed_unauthenticated =
      counters.handshakes_refused + counters.handshakes_evicted + counters.connections_dropped_garbage;
  const auto& lines = *target.log_lines;
  EXPECT_GE(closed_unauthenticated, 100u);
  EXPECT_LE(lines.size(), static_cast<std::size_t>(seconds) + 1) << "lines in " << seconds << " s";
  // Every closed connection is either a line of its own or counted in one.
  std::uint64_t reported = 0;
  std::uint64_t one_connection_lines = 0;
  for (const std::string& line : lines) {
    if (line.find(" connection from 127.0.0.1:") != std::string::npos) ++one_connection_lines;
    const auto at = line.find(" more not logged");
    if (at == std::string::npos) continue;
    const auto start = line.rfind(' ', at - 1);
    ASSERT_NE(start, std::string::npos) << line;
    reported += std::stoull(line.substr(start + 1, at - start - 1));
  }
  EXPECT_GT(reported, 0u);
  EXPECT_EQ(reported, counters.log_lines_suppressed);
  EXPECT_EQ(one_connection_lines + reported, closed_unauthenticated);
}

// A hello that checks out moves its connection out of reach of the idle ones: the flood evicts
// only connections that have not said who they are.
TEST(Flood, IdleConnectionsNeverEvictAHandshakeWhoseHelloCheckedOut) {
  Node target;
  open_node(target, acceptor_config());
  RawPeer raw(target->listen_port());
  const std::vector<unsigned char> hello = RawPeer::hello(1, 1, kCluster, 2, 1);
  raw.write(hello);
  std::vector<unsigned char> reply;
  ASSERT_TRUE(raw.read_exact(96, reply, {&target}));  // the hello is checked, the reply sent
  {
    Flood flood(target->listen_port(), FloodOptions{.held = 200});
    ASSERT_TRUE(pump({&target}, [&] { return flood.closed_by_server() >= 300; }));
  }
  // Now the dialer's MAC: the session comes up.
  std::array<unsigned char, 32> mac{};
  std::vector<unsigned char> message = {'d', 'i', 'a', 'l', 'e', 'r'};
  message.insert(message.end(), hello.begin(), hello.end());
  message.insert(message.end(), reply.begin(), reply.begin() + 64);
  const auto secret = test_secret();
  crypto_auth_hmacsha256(mac.data(), message.data(), message.size(), secret.data());
  raw.write(mac.data(), mac.size());
  ASSERT_TRUE(pump({&target}, [&] { return target.live(2) != kNoSession; }));
}

// Bounded per source address: a flood from 127.0.0.2 evicts only its own connections, so a slow
// dialer on 127.0.0.1 that has not sent its hello yet keeps its place.
TEST(Flood, AFloodFromOneAddressEvictsOnlyItsOwnConnections) {
  Node target;
  TransportConfig c = acceptor_config();
  c.hello_timeout = 5000ms;
  c.handshake_timeout = 5000ms;
  open_node(target, std::move(c));
  RawPeer slow(target->listen_port());
  pump_for({&target}, 20ms);  // accepted, idle
  {
    Flood flood(target->listen_port(), FloodOptions{.held = 200, .source = "127.0.0.2"});
    ASSERT_TRUE(pump({&target}, [&] { return flood.closed_by_server() >= 300; }));
  }
  EXPECT_TRUE(slow.handshake(2, 1, test_secret(), {&target}));
  ASSERT_TRUE(pump({&target}, [&] { return target.live(2) != kNoSession; }));
}

}  // namespace
}  // namespace fastzab::net::test
