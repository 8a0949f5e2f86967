// Suite `dpdk`: two processes, each with its own EAL (no hugepages, no PCI) and one port: a
// net_memif port on one socket file (point to point, socket-abstract=no), or a net_af_packet
// port on one end of a veth pair in a network namespace of its own. The DPDK transport makes a
// session through the handshake and carries 300 frames of up to 50 KB each way, in order.
// The processes are forked before any EAL exists here; each exits 0 only if it received every
// frame intact. The memif client starts first, so the transport must restart its port once the
// server listens. Bounded: a child that is not done in 60 s is killed and the test fails. The
// socket file and DPDK's runtime directories are removed at the end.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "net/dpdk_transport.h"

namespace fastzab::net::dpdk {
namespace {

constexpr std::uint32_t kFrames = 300;

std::vector<std::byte> frame_of(std::uint64_t from, std::uint32_t k) {
  std::vector<std::byte> f(1 + (k * 7919u + from * 104729u) % 50'000);
  for (std::size_t i = 0; i < f.size(); ++i) f[i] = static_cast<std::byte>((from * 131 + k * 31 + i) & 0xff);
  return f;
}

// The EAL arguments of a child process: no hugepages, no PCI, `megabytes` of memory, one vdev.
std::vector<std::string> eal_args(const std::string& prefix, const std::string& vdev,
                                  const char* cpu, const char* megabytes) {
  return {"--no-huge", "-m", megabytes, "--no-pci", "--iova-mode=va", "--file-prefix", prefix,
          "-l", cpu, "--no-telemetry", "--log-level", "1", "--vdev=" + vdev};
}

// Removes what a child's EAL with this --file-prefix may have left.
void remove_runtime_dirs(const std::string& prefix) {
  for (const char* base : {"/var/run/dpdk/", "/tmp/dpdk/"}) {
    std::error_code ignored;
    std::filesystem::remove_all(std::string(base) + prefix, ignored);
  }
}

// One server in its own process: returns the exit status.
int run_server(std::uint64_t self, std::uint64_t peer, const std::string& vdev, const std::string& prefix) {
  auto eal = Eal::init(eal_args(prefix, vdev, "0", "256"));
  if (!eal) {
    std::fprintf(stderr, "server %llu: %s\n", static_cast<unsigned long long>(self), eal.error().to_string().c_str());
    return 2;
  }
  DpdkTransportConfig c;
  c.transport.self_id = self;
  c.transport.cluster_id = 5;
  c.transport.secret.fill(0x33);
  c.transport.max_frame_bytes = 1u << 20;
  c.transport.poll_mode = PollMode::blocking;  // two processes on two cores: do not spin
  c.peers = {DpdkPeer{peer, 0, Mac{}}};
  auto transport = open_transport(**eal, c);
  if (!transport) {
    std::fprintf(stderr, "server %llu: %s\n", static_cast<unsigned long long>(self), transport.error().to_string().c_str());
    return 3;
  }
  Transport& t = **transport;
  SessionId session = kNoSession;
  std::uint32_t sent = 0, received = 0;
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(45);
  std::chrono::steady_clock::time_point done_at{};
  while (std::chrono::steady_clock::now() < deadline) {
    auto polled = t.poll(std::chrono::milliseconds(1), [&](const Event& e) {
      if (e.kind == Event::Kind::session_up) session = e.session;
      if (e.kind == Event::Kind::session_down && e.session == session) {
        session = kNoSession;
        std::fprintf(stderr, "server %llu: session down: %.*s\n", static_cast<unsigned long long>(self),
                     static_cast<int>(e.reason.size()), e.reason.data());
      }
      if (e.kind == Event::Kind::frame) {
        const auto want = frame_of(peer, received);
        if (!std::equal(e.frame.begin(), e.frame.end(), want.begin(), want.end())) {
          std::fprintf(stderr, "server %llu: frame %u differs\n", static_cast<unsigned long long>(self), received);
          status = 4;
        }
        ++received;
      }
    });
    if (!polled) return 5;
    while (session != kNoSession && sent < kFrames && t.send(peer, session, frame_of(self, sent))) ++sent;
    if (received == kFrames && sent == kFrames && done_at == std::chrono::steady_clock::time_point{}) {
      done_at = std::chrono::steady_clock::now();
    }
    // Linger so the peer gets our last packets and acks, then leave.
    if (done_at != std::chrono::steady_clock::time_point{} &&
        std::chrono::steady_clock::now() - done_at > std::chrono::milliseconds(300)) {
      break;
    }
  }
  if (received != kFrames) {
    std::fprintf(stderr, "server %llu: received %u of %u frames (sent %u, session %s)\n",
                 static_cast<unsigned long long>(self), received, kFrames, sent,
                 session != kNoSession ? "up" : "down");
    return 6;
  }
  transport->reset();
  eal->reset();
  return status;
}

// Forks servers 1 and 2, each running run_server with its vdev (after `enter`, in the child),
// waits at most 60 s, and returns their exit statuses (-1: killed at the deadline).
template <class Enter>
std::vector<int> run_pair(const std::string& tag, const std::string (&vdev)[2], Enter enter,
                          std::chrono::milliseconds server_1_delay) {
  std::vector<pid_t> children;
  for (std::uint64_t self : {1, 2}) {
    const pid_t pid = ::fork();
    if (pid < 0) return {-2, -2};
    if (pid == 0) {
      if (self == 1) std::this_thread::sleep_for(server_1_delay);
      if (const int bad = enter(self); bad != 0) ::_exit(bad);
      ::_exit(run_server(self, 3 - self, vdev[self - 1], tag + "-" + std::to_string(self)));
    }
    children.push_back(pid);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  std::vector<int> statuses(children.size(), -1);
  for (std::size_t left = children.size(); left > 0 && std::chrono::steady_clock::now() < deadline;) {
    for (std::size_t i = 0; i < children.size(); ++i) {
      if (statuses[i] != -1) continue;
      int st = 0;
      if (::waitpid(children[i], &st, WNOHANG) == children[i]) {
        statuses[i] = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        --left;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (std::size_t i = 0; i < children.size(); ++i) {
    if (statuses[i] == -1) {
      ::kill(children[i], SIGKILL);
      ::waitpid(children[i], nullptr, 0);
    }
  }
  for (int self : {1, 2}) remove_runtime_dirs(tag + "-" + std::to_string(self));
  return statuses;
}

TEST(DpdkMemif, TwoProcessesCarryFramesOverAMemifLink) {
  const std::string tag = "fz-memif-" + std::to_string(::getpid());
  const std::string socket = "/tmp/" + tag + ".sock";
  std::filesystem::remove(socket);  // a stale socket file would keep the server from listening
  const std::string memif = ",socket=" + socket + ",socket-abstract=no,id=0";
  const std::string vdev[2] = {"net_memif0,role=server" + memif, "net_memif0,role=client" + memif};
  // The memif server (server 1) starts last: its client found no socket and connects only once
  // the transport restarts the port whose link stayed down.
  const auto statuses = run_pair(tag, vdev, [](std::uint64_t) { return 0; }, std::chrono::milliseconds(300));
  std::filesystem::remove(socket);
  EXPECT_EQ(statuses[0], 0) << "server 1 (memif server role)";
  EXPECT_EQ(statuses[1], 0) << "server 2 (memif client role)";
}

// memif unmaps a departed peer's rings on the EAL's interrupt thread with no lock against a
// burst copying into them (DPDK 22.11): a server sending busily when a peer died was killed by
// SIGSEGV in tx_burst. The sender here is a memif server port sending 1,400-byte packets flat
// out; peers (memif clients, one process each) connect, take packets for a moment and die by
// SIGKILL, one after another. The sender must live through every departure (dpdk_port.cpp
// parks the interrupt thread while bursts run). Without that park it died within a few
// departures here.
constexpr int kDepartures = 24;
volatile std::sig_atomic_t g_stop_sending = 0;  // SIGUSR1: the departures are over

int run_sender(const std::string& vdev, const std::string& prefix, int ready_fd) {
  std::signal(SIGUSR1, [](int) { g_stop_sending = 1; });
  auto eal = Eal::init(eal_args(prefix, vdev, "0", "128"));
  if (!eal) return 2;
  auto port = Port::open(**eal, PortConfig{});
  if (!port) return 3;
  const char ready = 'r';
  if (::write(ready_fd, &ready, 1) != 1) return 4;
  ::close(ready_fd);
  const std::vector<std::byte> packet(1400, std::byte{0x7e});
  int ups = 0;
  bool was_up = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(50);
  while (g_stop_sending == 0 && std::chrono::steady_clock::now() < deadline) {
    while ((*port)->queue(packet)) {}
    (*port)->flush();
    (*port)->receive([](std::span<const std::byte>) {});
    const bool up = (*port)->link_up();
    if (up && !was_up) ++ups;
    was_up = up;
  }
  std::printf("sender: %d connections, %llu packets sent\n", ups,
              static_cast<unsigned long long>((*port)->counters().tx_packets));
  return ups >= kDepartures / 2 ? 0 : 5;  // too few departures to have tested anything
}

// A memif client that waits for its link, takes packets for 20 ms and dies by SIGKILL; exits 1
// if its link never came up.
[[noreturn]] void run_departing_peer(const std::string& vdev, const std::string& prefix) {
  auto eal = Eal::init(eal_args(prefix, vdev, "1", "128"));
  if (!eal) ::_exit(2);
  auto port = Port::open(**eal, PortConfig{});
  if (!port) ::_exit(3);
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (!(*port)->link_up()) {
    if (std::chrono::steady_clock::now() > give_up) ::_exit(1);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const auto leave = std::chrono::steady_clock::now() + std::chrono::milliseconds(20);
  while (std::chrono::steady_clock::now() < leave) (*port)->receive([](std::span<const std::byte>) {});
  ::raise(SIGKILL);
  ::_exit(9);
}

TEST(DpdkMemif, ASenderOutlivesPeersThatDieMidBurst) {
  const std::string tag = "fz-memif-depart-" + std::to_string(::getpid());
  const std::string socket = "/tmp/" + tag + ".sock";
  std::filesystem::remove(socket);
  const std::string memif = ",socket=" + socket + ",socket-abstract=no,id=0";
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t sender = ::fork();
  ASSERT_GE(sender, 0);
  if (sender == 0) {
    ::close(ready[0]);
    ::_exit(run_sender("net_memif0,role=server" + memif, tag + "-s", ready[1]));
  }
  ::close(ready[1]);
  char byte = 0;
  const bool sender_ready = ::read(ready[0], &byte, 1) == 1;
  ::close(ready[0]);
  int connected = 0, sender_status = -1;
  for (int i = 0; sender_ready && i < kDepartures; ++i) {
    const pid_t peer = ::fork();
    ASSERT_GE(peer, 0);
    if (peer == 0) run_departing_peer("net_memif0,role=client" + memif, tag + "-p");
    int st = 0;
    ::waitpid(peer, &st, 0);
    if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) ++connected;
    remove_runtime_dirs(tag + "-p");
    int sst = 0;
    if (::waitpid(sender, &sst, WNOHANG) == sender) {  // it died: stop here
      sender_status = WIFEXITED(sst) ? WEXITSTATUS(sst) : 128 + WTERMSIG(sst);
      break;
    }
  }
  if (sender_status == -1) {
    ::kill(sender, SIGUSR1);
    int sst = 0;
    ::waitpid(sender, &sst, 0);  // it leaves at once (or by itself after 50 s)
    sender_status = WIFEXITED(sst) ? WEXITSTATUS(sst) : 128 + WTERMSIG(sst);
  }
  std::filesystem::remove(socket);
  remove_runtime_dirs(tag + "-s");
  ASSERT_TRUE(sender_ready) << "the sender did not start (status " << sender_status << ")";
  EXPECT_EQ(sender_status, 0) << "the sender (128 + 11: SIGSEGV) after " << connected
                              << " peers came and died";
  EXPECT_GE(connected, kDepartures / 2) << "too few peers connected to test their departures";
}

// A shell command's success, quietly.
bool sh(const std::string& command) { return std::system((command + " >/dev/null 2>&1").c_str()) == 0; }

// net_af_packet on a veth pair whose ends are in two network namespaces made for the test (and
// removed after it). Where the machine does not allow it (not root, no `ip`, no veth), the test
// is skipped and says why: never a pass.
TEST(DpdkAfPacket, TwoProcessesInTwoNamespacesOverAVethPair) {
  const std::string tag = "fz-afp-" + std::to_string(::getpid());
  const std::string ns[2] = {tag + "-a", tag + "-b"};
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to make network namespaces";
  if (!sh("ip -V")) GTEST_SKIP() << "no `ip` command (iproute2)";
  const auto cleanup = [&] {
    for (const std::string& n : ns) sh("ip netns del " + n);
  };
  cleanup();
  const std::string veth[2] = {"fzva" + std::to_string(::getpid() % 100000), "fzvb" + std::to_string(::getpid() % 100000)};
  const bool made = sh("ip netns add " + ns[0]) && sh("ip netns add " + ns[1]) &&
                    sh("ip link add " + veth[0] + " type veth peer name " + veth[1]) &&
                    sh("ip link set " + veth[0] + " netns " + ns[0]) &&
                    sh("ip link set " + veth[1] + " netns " + ns[1]) &&
                    sh("ip -n " + ns[0] + " link set " + veth[0] + " up") &&
                    sh("ip -n " + ns[1] + " link set " + veth[1] + " up");
  if (!made) {
    sh("ip link del " + veth[0]);
    cleanup();
    GTEST_SKIP() << "this machine refused the namespaces or the veth pair";
  }
  const std::string vdev[2] = {"net_af_packet0,iface=" + veth[0], "net_af_packet0,iface=" + veth[1]};
  const auto statuses = run_pair(tag, vdev, [&](std::uint64_t self) {
    const int fd = ::open(("/var/run/netns/" + ns[self - 1]).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || ::setns(fd, CLONE_NEWNET) != 0) return 10;
    ::close(fd);
    return 0;
  }, std::chrono::milliseconds(0));
  cleanup();
  EXPECT_EQ(statuses[0], 0) << "server 1";
  EXPECT_EQ(statuses[1], 0) << "server 2";
}

}  // namespace
}  // namespace fastzab::net::dpdk
