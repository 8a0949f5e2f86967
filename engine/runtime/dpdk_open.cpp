#include "engine/runtime/dpdk_open.h"

#include <cstdio>
#include <mutex>

namespace fastzab::runtime::dpdk {

namespace {

std::string joined(const std::vector<std::string>& args) {
  std::string out;
  for (const std::string& a : args) out += (out.empty() ? "" : " ") + a;
  return out;
}

}  // namespace

Result<const net::dpdk::Eal*> process_eal(const std::vector<std::string>& args) {
  // Start-up only: Nodes may start on several threads at once.
  static std::mutex mutex;
  static std::unique_ptr<net::dpdk::Eal> eal;  // until exit (its runtime directory removed then)
  static std::vector<std::string> eal_args;
  std::lock_guard<std::mutex> lock(mutex);
  if (eal) {
    if (args != eal_args) {
      return std::unexpected(Error{"this process's DPDK EAL is already set up with \"" +
                                   joined(eal_args) + "\"; DPDK allows one per process, and "
                                   "this server's arguments differ: \"" + joined(args) + "\""});
    }
    return eal.get();
  }
  auto made = net::dpdk::Eal::init(args);
  if (!made) return std::unexpected(Error{"DPDK: " + made.error().to_string()});
  eal = std::move(*made);
  eal_args = args;
  // Said once, so that whoever kills this process (kill -9 skips the removal at exit) knows
  // which directory it leaves behind.
  std::fprintf(stderr, "fastzab: DPDK EAL up (%s); runtime directory %s\n", joined(args).c_str(),
               eal->runtime_dir().c_str());
  return eal.get();
}

Result<TransportOpener> transport_opener(const net::dpdk::Eal& eal, const DpdkPlan& plan) {
  std::vector<net::dpdk::DpdkPeer> peers;
  for (const DpdkPlan::Peer& p : plan.peers) {
    net::dpdk::DpdkPeer peer;
    peer.id = static_cast<std::uint64_t>(p.id.value);
    peer.mac = p.mac;
    peer.port = p.port;
    if (!p.device.empty()) {
      auto port = eal.port_named(p.device);
      if (!port) {
        return std::unexpected(Error{"DPDK: server " + std::to_string(p.id.value) + ": " +
                                     port.error().to_string()});
      }
      peer.port = *port;
    }  // a port by number is checked when the transport opens it (Port::open names it)
    peers.push_back(peer);
  }
  return [&eal, peers = std::move(peers)](const net::TransportConfig& t) {
    net::dpdk::DpdkTransportConfig config;
    config.transport = t;
    config.peers = peers;
    return net::dpdk::open_transport(eal, std::move(config));
  };
}

}  // namespace fastzab::runtime::dpdk
