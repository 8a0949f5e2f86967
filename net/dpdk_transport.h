// The DPDK transport (issue 12): net::Transport over DPDK ports, one DatagramPeer per server.
//
// Packets are raw Ethernet frames with EtherType 0x88B5 (IEEE 802's "local experimental"), not
// UDP/IPv4: a replication group that wants microsecond commits sits on one L2 segment (a rack,
// a memif link, a veth pair), where an IP and a UDP header would add 28 bytes to build and check
// per packet and buy nothing; the cost is that it does not cross a router. Peers come from a
// static table (server id -> the port that reaches it and, on a shared port, its MAC): no ARP.
// A packet whose EtherType, destination or source is not the table's is counted and dropped.
//
// One difference from the io_uring transport: a received frame's bytes are valid during the
// event callback only (they are reassembled in place and the next frame reuses the buffer), not
// until the next poll(). The runtime steps the core inside the callback, which is all it needs.
//
// Threads: as every Transport, owned by the thread that polls it, which also opens and destroys
// it (the transport makes that thread an EAL lcore, ThreadLcore); the EAL is the process's
// (dpdk::Eal) and must outlive it. poll() busy-polls the ports in PollMode::busy (the default
// for DPDK); adaptive spins `adaptive_spin`, then, like blocking, sleeps in short steps on the
// wake eventfd between looks at the ports (virtual devices have no receive interrupt).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "net/datagram_peer.h"
#include "net/dpdk_port.h"
#include "net/transport.h"

namespace fastzab::net::dpdk {

inline constexpr std::uint16_t kEtherType = 0x88b5;
inline constexpr std::size_t kEthernetHeaderBytes = 14;
using Mac = std::array<std::uint8_t, 6>;

struct DpdkPeer {
  std::uint64_t id = 0;
  std::uint16_t port = 0;  // the ethdev port that reaches it
  // Its MAC on that link. All zero: the port is a point-to-point link to this peer alone (a
  // memif or ring port), and every packet on it of our EtherType is the peer's. A port shared
  // by several peers (a NIC) needs each one's MAC.
  Mac mac{};
};

struct DpdkTransportConfig {
  // self_id, cluster_id, secret, max_frame_bytes, max_queued_bytes, poll_mode, adaptive_spin and
  // log_line are used; the TCP listen address and peer list are not.
  TransportConfig transport;
  std::vector<DpdkPeer> peers;     // every other server, never self
  PortConfig port;                 // descriptors, pool and burst sizes of every port (not its id)
  DatagramPeerConfig datagram;     // timers; the session's mtu and slots are sized at open
  std::uint64_t idle_sleep_us = 20;  // blocking/adaptive: the step between looks at the ports
  std::function<wire::Nonce()> make_nonce;  // empty: libsodium's randombytes (tests inject)
};

// Opens every port the peer table names and starts dialing. Errors name the port, the peer or
// what DPDK said.
Result<std::unique_ptr<Transport>> open_transport(const Eal& eal, DpdkTransportConfig config);

}  // namespace fastzab::net::dpdk
