// DPDK underneath a datagram transport (issue 12): the EAL, set up once per process from the
// config's arguments, and an ethdev port with one RX/TX queue pair and an mbuf pool of its own,
// moved in bursts. What the packets mean is DatagramSession's (datagram_session.h); this file
// only moves bytes and says clearly why DPDK refused (EAL arguments, a missing port, an empty
// pool), never hanging.
//
// Runs without hugepages or a NIC: `--no-huge -m 256 --no-pci --iova-mode=va --file-prefix P`
// with virtual devices (net_memif between processes, net_af_packet on a veth pair, net_ring in
// one process). Built only where libdpdk-dev is installed (scripts/lib.sh installs it).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "net/errc.h"
#include "net/function_ref.h"

struct rte_mbuf;
struct rte_mempool;

namespace fastzab::net::dpdk {

// The Environment Abstraction Layer: DPDK allows one per process.
class Eal {
 public:
  // `args`: EAL arguments without a program name. A failure says what DPDK said; a second Eal
  // in one process is refused. The calling thread keeps its CPU affinity (rte_eal_init pins it
  // to the main lcore; the threads it starts later would inherit that). A memif vdev with
  // role=server and socket-abstract=no gets its socket file removed first when it is a stale
  // socket (a killed server's), which would otherwise keep it from listening.
  static Result<std::unique_ptr<Eal>> init(std::span<const std::string> args);
  // DPDK's runtime directory for this --file-prefix removed (not rte_eal_cleanup(): see the
  // definition). Keep the Eal until the process ends.
  ~Eal();
  Eal(const Eal&) = delete;
  Eal& operator=(const Eal&) = delete;

  // The ethdev ports DPDK found (virtual devices included).
  std::uint16_t ports() const noexcept;
  // DPDK's runtime directory for this process's --file-prefix (/var/run/dpdk/PREFIX as root).
  const std::string& runtime_dir() const noexcept { return runtime_dir_; }
  // The port of a device by its name (a vdev's name, as net_memif_1_2), or an error naming it.
  Result<std::uint16_t> port_named(const std::string& name) const;

 private:
  explicit Eal(std::string runtime_dir) : runtime_dir_(std::move(runtime_dir)) {}
  std::string runtime_dir_;
};

// Makes the calling thread one of the EAL's lcores for this object's life, unless it already is
// (the thread that set up the EAL is). Mempools keep a per-lcore cache of free mbufs; a thread
// the EAL does not know bypasses it and takes every mbuf from the shared ring. Destroy it on the
// thread that made it.
class ThreadLcore {
 public:
  ThreadLcore();
  ~ThreadLcore();
  ThreadLcore(const ThreadLcore&) = delete;
  ThreadLcore& operator=(const ThreadLcore&) = delete;

 private:
  bool registered_ = false;
};

struct PortConfig {
  std::uint16_t port = 0;             // ethdev port id
  std::uint16_t rx_descriptors = 512;
  std::uint16_t tx_descriptors = 512;
  // Each of the queue pair's two pools (2^n - 1 is DPDK's best size): the driver fills RX mbufs
  // from one, queue() takes TX mbufs from the other, so packets waiting to be sent can never
  // starve reception (two peers whose TX backlogs held every mbuf would wait for each other).
  std::uint32_t mbufs = 4095;
  std::uint16_t mbuf_cache = 256;
  std::uint16_t burst = 32;           // packets per rx/tx burst
  std::uint32_t tx_drain_tries = 64;  // tx_burst retries before flush() gives up for this turn
  std::uint32_t tx_backlog = 1024;    // packets queue() holds for flush(), at most (then refuses)
};

// Why a PortConfig cannot work, or nullptr.
const char* invalid_reason(const PortConfig& config) noexcept;

// One started port: one RX and one TX queue, an RX and a TX mbuf pool sized from the config.
class Port {
 public:
  struct Counters {
    std::uint64_t tx_packets = 0, rx_packets = 0;
    std::uint64_t pool_empty = 0;   // queue() found no free TX mbuf
    std::uint64_t tx_full = 0;      // queue() refused: tx_backlog packets already wait
    std::uint64_t tx_deferred = 0;  // packets flush() left queued (the TX ring was full)
  };

  // Configures and starts `config.port`. Errors name the port and what DPDK said. A start that
  // fails is not one: the port stays stopped until restart() succeeds (start_error() says why).
  static Result<std::unique_ptr<Port>> open(const Eal& eal, const PortConfig& config);
  ~Port();  // stops and closes the port, frees what it holds and its pool
  Port(const Port&) = delete;
  Port& operator=(const Port&) = delete;

  // Copies one packet into a fresh mbuf, queued for flush(). False, copying nothing, when the
  // TX pool is empty or tx_backlog packets already wait (both counted; the caller treats it as
  // a loss on the wire, or retries after flush()), or the packet is larger than an mbuf's
  // data room, or empty.
  bool queue(std::span<const std::byte> packet) { return queue(packet, {}); }
  // The same for a packet in two parts (a link header, then the rest), copied back to back.
  bool queue(std::span<const std::byte> head, std::span<const std::byte> body);
  // Hands the queued packets to the TX queue in bursts, retrying at most tx_drain_tries times
  // when the ring is full; what is left stays queued, in order, for the next flush(). On an idle
  // turn it also reclaims the TX queue's completed mbufs, so an idle port does not hold the
  // pool (a common DPDK stall). Returns the packets sent.
  std::size_t flush();
  std::size_t queued() const noexcept { return pending_.size(); }
  // Receives one burst, calls `on_packet` with each packet's bytes (valid for the call only;
  // the mbuf goes back to the pool at once, so the RX pool never starves) and returns how many.
  std::size_t receive(FunctionRef<void(std::span<const std::byte>)> on_packet);

  // receive() and flush() on a memif port do nothing (return 0) while the EAL's interrupt
  // thread is let go to run memif's control messages (a few us every 10 ms, every 1 ms while
  // a memif link is down): memif unmaps a departed peer's rings there with no lock against a
  // burst (dpdk_port.cpp).

  // Whether the link is up (read without waiting; false while restarting). On a memif port it
  // also sets the park's pace.
  bool link_up() const noexcept;
  // Stops and starts the port again: a memif client whose server was not listening yet connects
  // only when started, so a link that stays down is restarted (DpdkTransport does it). A start
  // that fails (a memif client while the server's socket is missing) leaves the port stopped;
  // the next restart tries again. Runs on the EAL's interrupt thread; waits for it.
  Result<void> restart();
  // The same without waiting (a stop and start took up to 2.4 ms on memif, a stall a polling
  // thread should not take): until it is done, restarting() is true and the port is neither
  // polled nor sent on (receive() and flush() return 0, queue() still queues). A second call
  // while one runs does nothing.
  void restart_in_background();
  bool restarting() const noexcept { return restarting_.load(std::memory_order_acquire); }
  // Why the last background restart failed, or empty; read it when restarting() is false.
  const std::string& background_restart_error() const noexcept { return background_error_; }
  // Why the port is stopped (its first start failed, and no restart() has succeeded), or empty.
  const std::string& start_error() const noexcept { return start_error_; }

  std::uint16_t id() const noexcept { return config_.port; }
  std::array<std::uint8_t, 6> mac() const;
  std::size_t max_packet_bytes() const noexcept { return data_room_; }
  const Counters& counters() const noexcept { return counters_; }

 private:
  Port(const PortConfig& config, rte_mempool* rx_pool, rte_mempool* tx_pool, std::size_t data_room);

  PortConfig config_;
  rte_mempool* rx_pool_;
  rte_mempool* tx_pool_;
  std::size_t data_room_;
  std::vector<rte_mbuf*> pending_;  // queued, not yet accepted by tx_burst (in order)
  std::vector<rte_mbuf*> rx_;       // one burst
  std::string stop_and_start();
  void wait_for_background_restart();

  // Not started (yet): open() or a restart could not start it. Written by the interrupt thread
  // during a restart, read by the polling thread only when restarting_ is false (acquire).
  bool stopped_ = false;
  // A memif port: its bursts run only while the interrupt thread is parked (dpdk_port.cpp).
  bool memif_ = false;
  mutable bool seen_down_ = false;  // memif: link_up() last said down (the park's pace)
  std::atomic<bool> restarting_{false};
  std::string background_error_;  // as stopped_
  std::string start_error_;
  Counters counters_;
};

}  // namespace fastzab::net::dpdk
