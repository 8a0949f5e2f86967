#include "bench/cluster/floors.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "bench/cluster/process_cluster.h"
#include "net/transport.h"

namespace fastzab::bench {

namespace {

using namespace std::chrono_literals;

std::expected<net::PollMode, std::string> poll_mode_of(const std::string& s) {
  if (s == "busy") return net::PollMode::busy;
  if (s == "adaptive") return net::PollMode::adaptive;
  if (s == "blocking") return net::PollMode::blocking;
  return std::unexpected("unknown poll mode " + s);
}

net::TransportConfig pair_config(std::uint64_t self, std::uint16_t self_port, std::uint16_t peer_port,
                                 net::PollMode mode) {
  net::TransportConfig c;
  c.self_id = self;
  c.cluster_id = 77;
  for (std::size_t i = 0; i < c.secret.size(); ++i) c.secret[i] = static_cast<unsigned char>(7 * i + 1);
  c.listen_port = self_port;
  c.peers.push_back({self == 1 ? 2u : 1u, "127.0.0.1", peer_port});
  c.poll_mode = mode;
  c.reconnect_min = 1ms;
  c.reconnect_max = 20ms;
  c.log_line = [](std::string_view) {};
  return c;
}

// The echoing side, in a child process: sends every frame back until its session ends.
[[noreturn]] void echo_peer(net::TransportConfig config) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  auto t = net::Transport::open(std::move(config));
  if (!t) ::_exit(3);
  bool was_up = false, done = false;
  const auto give_up = std::chrono::steady_clock::now() + 60s;
  while (!done && std::chrono::steady_clock::now() < give_up) {
    auto r = (*t)->poll(100ms, [&](const net::Event& e) {
      if (e.kind == net::Event::Kind::session_up) was_up = true;
      if (e.kind == net::Event::Kind::session_down && was_up) done = true;
      if (e.kind == net::Event::Kind::frame) (*t)->send(e.peer, e.session, e.frame);
    });
    if (!r) break;
  }
  ::_exit(0);
}

}  // namespace

std::expected<Histogram, std::string> measure_round_trip(const std::string& poll, unsigned samples) {
  auto mode = poll_mode_of(poll);
  if (!mode) return std::unexpected(mode.error());
  // Two ports picked now, so that both sides know each other's before either opens.
  std::uint16_t ports[2];
  for (auto& p : ports) {
    auto port = free_loopback_port();
    if (!port) return std::unexpected("round-trip floor: " + port.error());
    p = *port;
  }
  const pid_t child = ::fork();
  if (child < 0) return std::unexpected(std::string("fork: ") + std::strerror(errno));
  if (child == 0) echo_peer(pair_config(2, ports[1], ports[0], *mode));

  auto reap = [&] {
    for (int i = 0; i < 200; ++i) {
      if (::waitpid(child, nullptr, WNOHANG) == child) return;
      std::this_thread::sleep_for(10ms);
    }
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
  };
  auto t = net::Transport::open(pair_config(1, ports[0], ports[1], *mode));
  if (!t) {
    ::kill(child, SIGKILL);
    reap();
    return std::unexpected("round-trip floor: " + t.error().to_string());
  }
  net::SessionId session = net::kNoSession;
  bool answered = false;
  auto on_event = [&](const net::Event& e) {
    if (e.kind == net::Event::Kind::session_up) session = e.session;
    if (e.kind == net::Event::Kind::frame) answered = true;
  };
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (session == net::kNoSession && std::chrono::steady_clock::now() < deadline) {
    if (!(*t)->poll(10ms, on_event)) break;
  }
  if (session == net::kNoSession) {
    ::kill(child, SIGKILL);
    reap();
    return std::unexpected(std::string("round-trip floor: the echo process did not connect within 10 s"));
  }
  // A frame the size of an ACK: header-sized, the smallest thing the protocol sends.
  std::vector<std::byte> frame(32, std::byte{0x5a});
  Histogram h;
  const unsigned warmup = samples / 10 + 100;
  for (unsigned i = 0; i < warmup + samples; ++i) {
    answered = false;
    const std::uint64_t t0 = now_ns();
    if (!(*t)->send(2, session, frame)) break;
    while (!answered) {
      if (!(*t)->poll(100ms, on_event)) break;
      if (now_ns() - t0 > 5'000'000'000u) break;
    }
    if (!answered) {
      ::kill(child, SIGKILL);
      reap();
      return std::unexpected(std::string("round-trip floor: no echo within 5 s"));
    }
    if (i >= warmup) h.record(now_ns() - t0);
  }
  (*t)->close_session(2, session);
  (void)(*t)->poll(1ms, on_event);
  reap();
  return h;
}

std::expected<Histogram, std::string> measure_fdatasync(const std::string& directory, std::size_t batch_bytes,
                                                        unsigned samples) {
  const std::string path = directory + "/fdatasync-floor";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return std::unexpected("fdatasync floor: open " + path + ": " + std::strerror(errno));
  // Like the log: appends to a file whose blocks exist (the log preallocates its segments), so
  // each sync writes data, not a change of size; a fresh region every time.
  const std::size_t total = batch_bytes * (samples + 10);
  if (::posix_fallocate(fd, 0, static_cast<off_t>(total)) != 0 || ::fdatasync(fd) != 0) {
    ::close(fd);
    ::unlink(path.c_str());
    return std::unexpected("fdatasync floor: fallocate " + path + " failed");
  }
  std::vector<std::byte> batch(batch_bytes, std::byte{0x42});
  Histogram h;
  off_t at = 0;
  for (unsigned i = 0; i < samples + 10; ++i) {
    const std::uint64_t t0 = now_ns();
    if (::pwrite(fd, batch.data(), batch.size(), at) != static_cast<ssize_t>(batch.size()) || ::fdatasync(fd) != 0) {
      const int e = errno;
      ::close(fd);
      ::unlink(path.c_str());
      return std::unexpected("fdatasync floor: write " + path + ": " + std::strerror(e));
    }
    at += static_cast<off_t>(batch.size());
    if (i >= 10) h.record(now_ns() - t0);
  }
  ::close(fd);
  ::unlink(path.c_str());
  return h;
}

}  // namespace fastzab::bench
