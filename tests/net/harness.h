// Test harness for the transport: nodes that record every event, a pump that polls all of them
// in this one thread until a condition holds or a deadline passes, and RawPeer, a plain blocking
// socket that speaks the handshake by hand (bytes built here from the README's table, HMACs
// computed with libsodium directly) so that tests can misbehave in ways a Transport never would.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "net/transport.h"

namespace fastzab::net::test {

using namespace std::chrono_literals;

inline constexpr std::uint64_t kCluster = 1;
std::array<unsigned char, 32> test_secret(unsigned char seed = 7);

struct Recorded {
  Event::Kind kind;
  std::uint64_t peer;
  SessionId session;
  std::vector<std::byte> frame;
  std::string reason;
};

// One transport and what it reported.
struct Node {
  std::unique_ptr<Transport> transport;
  std::vector<Recorded> events;
  std::shared_ptr<std::vector<std::string>> log_lines = std::make_shared<std::vector<std::string>>();

  Transport& operator*() { return *transport; }
  Transport* operator->() { return transport.get(); }
  const Transport* operator->() const { return transport.get(); }

  // The live session with `peer` as the events say (kNoSession if none).
  SessionId live(std::uint64_t peer) const;
  std::size_t count(Event::Kind kind, std::uint64_t peer) const;
  std::size_t count(Event::Kind kind) const;
  std::vector<const Recorded*> frames_from(std::uint64_t peer) const;
  bool logged(const std::string& text) const;  // some log line contains `text`
};

// A config for server `self` listening on an ephemeral port (or `port`), with `peers` given as
// {id, port} on 127.0.0.1; blocking mode and short back-off so tests run quickly.
TransportConfig config_for(std::uint64_t self,
                           std::vector<std::pair<std::uint64_t, std::uint16_t>> peers,
                           std::uint16_t port = 0);

// Opens the transport (failing the test if it cannot) and routes its log lines into the node.
void open_node(Node& node, TransportConfig config);

// Polls every node (1 ms each, as its mode says) until `done()` or `timeout`; returns done().
bool pump(const std::vector<Node*>& nodes, const std::function<bool()>& done,
          std::chrono::milliseconds timeout = 5000ms);
// Polls for `duration` whatever happens (to check that nothing more happens).
void pump_for(const std::vector<Node*>& nodes, std::chrono::milliseconds duration);

std::vector<std::byte> random_bytes(std::size_t size, std::uint64_t seed);

// A hand-driven client: connect, write, read what arrives, see the close.
class RawPeer {
 public:
  explicit RawPeer(std::uint16_t port);  // connects to 127.0.0.1:port (blocking)
  ~RawPeer();
  RawPeer(const RawPeer&) = delete;
  RawPeer& operator=(const RawPeer&) = delete;

  void write(const void* data, std::size_t size);
  void write(const std::vector<unsigned char>& bytes) { write(bytes.data(), bytes.size()); }
  // Reads without blocking until `size` bytes are in, pumping `nodes` meanwhile.
  bool read_exact(std::size_t size, std::vector<unsigned char>& out,
                  const std::vector<Node*>& nodes);
  // True once the other end has closed (EOF or reset), pumping `nodes` meanwhile.
  bool wait_closed(const std::vector<Node*>& nodes, std::chrono::milliseconds timeout = 5000ms);
  void close();

  // The 64-byte hello, built field by field from net/README.md.
  static std::vector<unsigned char> hello(std::uint8_t kind, std::uint8_t version,
                                          std::uint64_t cluster, std::uint64_t sender,
                                          std::uint64_t target);
  // Dials as server `self` to server `target` and completes the handshake with `secret`
  // (a wrong one is sent anyway: the acceptor's MAC is then not checked). Returns false if the
  // acceptor hung up first or its MAC did not verify.
  bool handshake(std::uint64_t self, std::uint64_t target,
                 const std::array<unsigned char, 32>& secret, const std::vector<Node*>& nodes,
                 std::uint64_t cluster = kCluster);
  // Writes one frame: u32 little-endian length, then the bytes.
  void write_frame(const std::vector<std::byte>& frame);

 private:
  int fd_ = -1;
};

}  // namespace fastzab::net::test
