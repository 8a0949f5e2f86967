#include "bench/cluster/memif_floor.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <memory>
#include <thread>
#include <vector>

#include "bench/cluster/process_cluster.h"
#include "net/dpdk_port.h"
#include "net/dpdk_transport.h"

namespace fastzab::bench {

namespace {

using namespace std::chrono_literals;
constexpr std::size_t kFrameBytes = 64;
constexpr std::byte kStop{0xff};

void pin(std::uint32_t cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  ::sched_setaffinity(0, sizeof set, &set);
}

// One end: its EAL (a prefix of its own) and its memif port, up once the link is.
struct End {
  std::unique_ptr<net::dpdk::Eal> eal;
  std::unique_ptr<net::dpdk::Port> port;
};

// Ends the child: the port closed and the EAL's runtime directory removed (Eal's destructor),
// which a bare _exit would leave behind.
[[noreturn]] void leave(End& end, int code) {
  end.port.reset();
  end.eal.reset();
  ::_exit(code);
}

End open_end(const std::string& socket, bool listens, std::uint32_t cpu) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  const std::string role = listens ? "server" : "client";
  const std::vector<std::string> args = {
      "--no-huge", "-m", "128", "--no-pci", "--iova-mode=va", "--no-telemetry",
      "--log-level=lib.eal:error", "-l", std::to_string(cpu),
      "--file-prefix=fastzab-bench-rtt-" + std::to_string(::getpid()),
      "--vdev=net_memif_rtt,role=" + role + ",socket=" + socket + ",socket-abstract=no,id=0"};
  End end;
  auto eal = net::dpdk::Eal::init(args);
  if (!eal) ::_exit(3);
  end.eal = std::move(*eal);
  pin(cpu);  // Eal::init keeps the caller's affinity; this end spins on `cpu` alone
  auto id = end.eal->port_named("net_memif_rtt");
  if (!id) leave(end, 4);
  net::dpdk::PortConfig pc;
  pc.port = *id;
  pc.mbufs = 1023;
  pc.mbuf_cache = 32;
  auto port = net::dpdk::Port::open(*end.eal, pc);
  if (!port) leave(end, 5);
  end.port = std::move(*port);
  // A memif client started before its server connects only when restarted.
  const auto give_up = std::chrono::steady_clock::now() + 10s;
  auto next_restart = std::chrono::steady_clock::now() + 100ms;
  while (!end.port->link_up()) {
    if (std::chrono::steady_clock::now() > give_up) leave(end, 6);
    if (!listens && std::chrono::steady_clock::now() > next_restart) {
      (void)end.port->restart();
      next_restart = std::chrono::steady_clock::now() + 100ms;
    }
    std::this_thread::sleep_for(1ms);
  }
  return end;
}

[[noreturn]] void echo(const std::string& socket, std::uint32_t cpu) {
  End end = open_end(socket, false, cpu);
  bool stop = false;
  const auto give_up = std::chrono::steady_clock::now() + 120s;
  while (!stop && std::chrono::steady_clock::now() < give_up) {
    end.port->receive([&](std::span<const std::byte> packet) {
      if (packet.size() > net::dpdk::kEthernetHeaderBytes &&
          packet[net::dpdk::kEthernetHeaderBytes] == kStop) {
        stop = true;
      }
      (void)end.port->queue(packet);
    });
    end.port->flush();
  }
  leave(end, 0);
}

// Writes the samples (ns, native byte order) to `out`, then exits.
[[noreturn]] void measure(const std::string& socket, std::uint32_t cpu, unsigned samples, int out) {
  End end = open_end(socket, true, cpu);
  std::array<std::byte, kFrameBytes> frame{};
  frame[12] = std::byte{net::dpdk::kEtherType >> 8};
  frame[13] = std::byte{net::dpdk::kEtherType & 0xff};
  std::vector<std::uint64_t> ns;
  ns.reserve(samples);
  const unsigned warmup = samples / 10 + 100;
  for (std::uint32_t i = 0; i < warmup + samples; ++i) {
    std::memcpy(frame.data() + net::dpdk::kEthernetHeaderBytes + 1, &i, sizeof i);
    bool back = false;
    const std::uint64_t first = now_ns();
    std::uint64_t t0 = 0;
    // Sent again after 50 ms unanswered (the echo's link may come up after this one's, and a
    // frame sent before is lost); a sample times the send that was answered.
    for (std::uint64_t resend_at = 0; !back;) {
      if (now_ns() >= resend_at) {
        t0 = now_ns();
        resend_at = t0 + 50'000'000u;
        if (!end.port->queue(frame)) leave(end, 7);
        end.port->flush();
      }
      end.port->receive([&](std::span<const std::byte> packet) {
        std::uint32_t seq = UINT32_MAX;
        if (packet.size() >= kFrameBytes) {
          std::memcpy(&seq, packet.data() + net::dpdk::kEthernetHeaderBytes + 1, sizeof seq);
        }
        back = back || seq == i;
      });
      if (now_ns() - first > 10'000'000'000u) leave(end, 8);  // the link passes no traffic
    }
    if (i >= warmup) ns.push_back(now_ns() - t0);
  }
  frame[net::dpdk::kEthernetHeaderBytes] = kStop;
  for (int k = 0; k < 8; ++k) {  // a lost one would leave the echo spinning until its limit
    (void)end.port->queue(frame);
    end.port->flush();
  }
  const auto* bytes = reinterpret_cast<const char*>(ns.data());
  std::size_t left = ns.size() * sizeof(std::uint64_t);
  while (left > 0) {
    const ssize_t n = ::write(out, bytes, left);
    if (n <= 0) leave(end, 9);
    bytes += n;
    left -= static_cast<std::size_t>(n);
  }
  leave(end, 0);
}

std::string exit_reason(int status) {
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  switch (WEXITSTATUS(status)) {
    case 3: return "its EAL did not start";
    case 4: return "no memif port";
    case 5: return "its port did not open";
    case 6: return "the memif link did not come up within 10 s";
    case 7: return "no TX mbuf";
    case 8: return "no echo within 10 s";
    default: return "exit status " + std::to_string(WEXITSTATUS(status));
  }
}

}  // namespace

std::expected<Histogram, std::string> measure_memif_round_trip(const std::string& directory, unsigned samples,
                                                               std::uint32_t measuring_cpu, std::uint32_t echo_cpu) {
  const std::string socket = directory + "/rtt-memif.sock";
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return std::unexpected(std::string("pipe: ") + std::strerror(errno));
  const pid_t measurer = ::fork();
  if (measurer < 0) return std::unexpected(std::string("fork: ") + std::strerror(errno));
  if (measurer == 0) {
    ::close(pipe_fds[0]);
    measure(socket, measuring_cpu, samples, pipe_fds[1]);
  }
  ::close(pipe_fds[1]);
  std::this_thread::sleep_for(50ms);  // the listening end first: the other connects at once
  const pid_t echoer = ::fork();
  if (echoer == 0) echo(socket, echo_cpu);
  std::vector<std::uint64_t> ns(samples);
  auto* into = reinterpret_cast<char*>(ns.data());
  std::size_t got = 0;
  for (ssize_t n; got < ns.size() * sizeof(std::uint64_t) &&
                  (n = ::read(pipe_fds[0], into + got, ns.size() * sizeof(std::uint64_t) - got)) > 0;) {
    got += static_cast<std::size_t>(n);
  }
  ::close(pipe_fds[0]);
  int measured = 0, echoed = 0;
  ::waitpid(measurer, &measured, 0);
  if (echoer > 0) {
    for (int i = 0; i < 200 && ::waitpid(echoer, &echoed, WNOHANG) == 0; ++i) std::this_thread::sleep_for(10ms);
    if (::kill(echoer, SIGKILL) == 0) ::waitpid(echoer, &echoed, 0);
  }
  std::error_code ignored;
  std::filesystem::remove(socket, ignored);
  if (echoer < 0) return std::unexpected(std::string("memif round-trip floor: fork failed"));
  if (!WIFEXITED(measured) || WEXITSTATUS(measured) != 0 || got != ns.size() * sizeof(std::uint64_t)) {
    return std::unexpected("memif round-trip floor: the measuring process failed: " + exit_reason(measured));
  }
  Histogram h;
  for (std::uint64_t v : ns) h.record(v);
  return h;
}

}  // namespace fastzab::bench
