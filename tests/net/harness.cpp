#include "tests/net/harness.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sodium.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <random>

namespace fastzab::net::test {

std::array<unsigned char, 32> test_secret(unsigned char seed) {
  std::array<unsigned char, 32> secret{};
  for (std::size_t i = 0; i < secret.size(); ++i) {
    secret[i] = static_cast<unsigned char>(seed + 3 * i);
  }
  return secret;
}

SessionId Node::live(std::uint64_t peer) const {
  SessionId session = kNoSession;
  for (const Recorded& r : events) {
    if (r.peer != peer) continue;
    if (r.kind == Event::Kind::session_up) session = r.session;
    if (r.kind == Event::Kind::session_down && r.session == session) session = kNoSession;
  }
  return session;
}

std::size_t Node::count(Event::Kind kind, std::uint64_t peer) const {
  std::size_t n = 0;
  for (const Recorded& r : events) n += (r.kind == kind && r.peer == peer) ? 1 : 0;
  return n;
}

std::size_t Node::count(Event::Kind kind) const {
  std::size_t n = 0;
  for (const Recorded& r : events) n += r.kind == kind ? 1 : 0;
  return n;
}

std::vector<const Recorded*> Node::frames_from(std::uint64_t peer) const {
  std::vector<const Recorded*> out;
  for (const Recorded& r : events) {
    if (r.kind == Event::Kind::frame && r.peer == peer) out.push_back(&r);
  }
  return out;
}

bool Node::logged(const std::string& text) const {
  for (const std::string& line : *log_lines) {
    if (line.find(text) != std::string::npos) return true;
  }
  return false;
}

TransportConfig config_for(std::uint64_t self,
                           std::vector<std::pair<std::uint64_t, std::uint16_t>> peers,
                           std::uint16_t port) {
  TransportConfig c;
  c.self_id = self;
  c.cluster_id = kCluster;
  c.secret = test_secret();
  c.listen_port = port;
  for (const auto& [id, peer_port] : peers) c.peers.push_back({id, "127.0.0.1", peer_port});
  c.reconnect_min = 5ms;
  c.reconnect_max = 100ms;
  c.handshake_timeout = 2000ms;
  c.poll_mode = PollMode::blocking;
  return c;
}

void open_node(Node& node, TransportConfig config) {
  auto lines = node.log_lines;
  const std::uint64_t self = config.self_id;
  config.log_line = [lines, self](std::string_view line) {
    lines->emplace_back(line);
    std::cerr << "[server " << self << "] " << line << '\n';
  };
  auto opened = Transport::open(std::move(config));
  ASSERT_TRUE(opened.has_value()) << opened.error().to_string();
  node.transport = std::move(*opened);
}

namespace {
void poll_once(Node& node) {
  auto polled = node->poll(1ms, [&node](const Event& e) {
    Recorded r{e.kind, e.peer, e.session, {}, std::string(e.reason)};
    if (e.kind == Event::Kind::frame) r.frame.assign(e.frame.begin(), e.frame.end());
    node.events.push_back(std::move(r));
  });
  ASSERT_TRUE(polled.has_value()) << polled.error().to_string();
}
}  // namespace

bool pump(const std::vector<Node*>& nodes, const std::function<bool()>& done,
          std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    for (Node* node : nodes) poll_once(*node);
  }
  return true;
}

void pump_for(const std::vector<Node*>& nodes, std::chrono::milliseconds duration) {
  const auto deadline = std::chrono::steady_clock::now() + duration;
  while (std::chrono::steady_clock::now() < deadline) {
    for (Node* node : nodes) poll_once(*node);
  }
}

std::vector<std::byte> random_bytes(std::size_t size, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::byte> out(size);
  for (std::byte& b : out) b = static_cast<std::byte>(rng());
  return out;
}

// ---------------------------------------------------------------------------------------------

RawPeer::RawPeer(std::uint16_t port) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  EXPECT_GE(fd_, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  // Completes from the listen backlog: the transport need not be polled for it.
  EXPECT_EQ(::connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address), 0)
      << std::strerror(errno);
  const int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

RawPeer::~RawPeer() { close(); }

void RawPeer::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void RawPeer::write(const void* data, std::size_t size) {
  const auto* bytes = static_cast<const unsigned char*>(data);
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = ::send(fd_, bytes + done, size - done, MSG_NOSIGNAL);
    ASSERT_GT(n, 0) << std::strerror(errno);
    done += static_cast<std::size_t>(n);
  }
}

bool RawPeer::read_exact(std::size_t size, std::vector<unsigned char>& out,
                         const std::vector<Node*>& nodes) {
  out.clear();
  std::array<unsigned char, 4096> chunk{};
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (out.size() < size && std::chrono::steady_clock::now() < deadline) {
    const ssize_t n = ::recv(fd_, chunk.data(), std::min(chunk.size(), size - out.size()),
                             MSG_DONTWAIT);
    if (n > 0) {
      out.insert(out.end(), chunk.begin(), chunk.begin() + n);
      continue;
    }
    if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) return false;
    pump_for(nodes, 1ms);
  }
  return out.size() == size;
}

bool RawPeer::wait_closed(const std::vector<Node*>& nodes, std::chrono::milliseconds timeout) {
  std::array<unsigned char, 4096> chunk{};
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    const ssize_t n = ::recv(fd_, chunk.data(), chunk.size(), MSG_DONTWAIT);
    if (n == 0) return true;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return true;  // reset
    if (n < 0) pump_for(nodes, 1ms);
  }
  return false;
}

std::vector<unsigned char> RawPeer::hello(std::uint8_t kind, std::uint8_t version,
                                          std::uint64_t cluster, std::uint64_t sender,
                                          std::uint64_t target) {
  std::vector<unsigned char> out = {'F', 'Z', 'N', 'E', 'T', version, kind, 0};
  for (const std::uint64_t field : {cluster, sender, target}) {
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<unsigned char>(field >> (8 * i)));
  }
  std::array<unsigned char, 32> nonce{};
  randombytes_buf(nonce.data(), nonce.size());
  out.insert(out.end(), nonce.begin(), nonce.end());
  EXPECT_EQ(out.size(), 64u);
  return out;
}

namespace {
std::array<unsigned char, 32> hmac(const std::array<unsigned char, 32>& secret,
                                   const std::string& label,
                                   const std::vector<unsigned char>& dialer_hello,
                                   const std::vector<unsigned char>& acceptor_hello) {
  std::vector<unsigned char> message(label.begin(), label.end());
  message.insert(message.end(), dialer_hello.begin(), dialer_hello.end());
  message.insert(message.end(), acceptor_hello.begin(), acceptor_hello.end());
  std::array<unsigned char, 32> mac{};
  crypto_auth_hmacsha256(mac.data(), message.data(), message.size(), secret.data());
  return mac;
}
}  // namespace

bool RawPeer::handshake(std::uint64_t self, std::uint64_t target,
                        const std::array<unsigned char, 32>& secret,
                        const std::vector<Node*>& nodes, std::uint64_t cluster) {
  EXPECT_GE(sodium_init(), 0);
  const std::vector<unsigned char> mine = hello(1, 1, cluster, self, target);
  write(mine);
  std::vector<unsigned char> reply;
  if (!read_exact(96, reply, nodes)) return false;
  const std::vector<unsigned char> theirs(reply.begin(), reply.begin() + 64);
  const auto expected = hmac(secret, "acceptor", mine, theirs);
  const bool acceptor_ok = std::equal(expected.begin(), expected.end(), reply.begin() + 64);
  const auto confirm = hmac(secret, "dialer", mine, theirs);
  write(confirm.data(), confirm.size());
  return acceptor_ok;
}

void RawPeer::write_frame(const std::vector<std::byte>& frame) {
  std::vector<unsigned char> bytes;
  const auto size = static_cast<std::uint32_t>(frame.size());
  for (int i = 0; i < 4; ++i) bytes.push_back(static_cast<unsigned char>(size >> (8 * i)));
  for (const std::byte b : frame) bytes.push_back(std::to_integer<unsigned char>(b));
  write(bytes);
}

}  // namespace fastzab::net::test
