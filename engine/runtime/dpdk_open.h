// transport=dpdk in the runtime (issue 12): the process's one EAL and the Replica's transport
// opener, from a DpdkPlan (config.h). Built only where libdpdk-dev is installed
// (FASTZAB_HAVE_DPDK); embedded_node.cpp refuses transport=dpdk with a clear line otherwise.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/runtime/config.h"
#include "engine/runtime/error.h"
#include "net/dpdk_transport.h"

namespace fastzab::runtime::dpdk {

// The process's EAL: DPDK allows one per process and cannot set it up again once it is torn
// down, so the first caller sets it up from `args` and it lives until the process exits. A
// later caller (another fastzab::Node in the process) shares it and must pass the same
// arguments; different ones are refused, naming both.
Result<const net::dpdk::Eal*> process_eal(const std::vector<std::string>& args);

using TransportOpener =
    std::function<net::Result<std::unique_ptr<net::Transport>>(const net::TransportConfig&)>;

// Resolves the plan's peers (a device name to its port) and returns what opens this server's
// transport over them; the TransportConfig it is given supplies self, cluster, secret and poll.
Result<TransportOpener> transport_opener(const net::dpdk::Eal& eal, const DpdkPlan& plan);

}  // namespace fastzab::runtime::dpdk
