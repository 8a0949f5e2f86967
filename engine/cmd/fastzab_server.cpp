// fastzab-server --config FILE --id N: one server of a cluster.
//
// An embedder of fastzab::Node (engine/include/fastzab/fastzab.h) like any other: the Node's
// group thread runs the replication group; this program's main thread is the Node's application
// thread and serves the client port (epoll, plain sockets), handing writes to the Node and
// taking results from it through the Node's SPSC rings and event fd.
#include <dirent.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <expected>
#include <memory>
#include <string>
#include <vector>

#include "engine/cmd/client_port.h"
#include "engine/include/fastzab/fastzab.h"
#include "engine/runtime/config.h"

// jemalloc's options, read at its start. It gives freed pages back to the kernel only when the
// arena that freed them allocates again, or from a background thread; the server's steady state
// allocates next to nothing, so without the thread the high-water mark of a burst (a replayed
// log at restart, a flood's backlog) would stay resident for good. The thread purges what has
// been free for dirty_decay_ms (10 s by default) and otherwise sleeps. MALLOC_CONF still
// overrides it.
extern "C" {
// NOLINTNEXTLINE: the name is jemalloc's
const char* malloc_conf = "background_thread:true";
}

namespace {

using namespace fastzab;

constexpr std::uint64_t kReservedDescriptors = 128;
constexpr std::uint64_t kMinClientDescriptors = 16;

std::atomic<bool> g_stop{false};
std::atomic<int> g_stop_signal{0};
int g_stop_fd = -1;

void on_signal(int sig) {
  g_stop_signal.store(sig);
  g_stop.store(true);
  const std::uint64_t one = 1;
  if (g_stop_fd >= 0) (void)!::write(g_stop_fd, &one, sizeof one);
}

// The server's application: it replicates opaque values; its state is how many it applied and a
// digest of them (FNV-1a), so a snapshot is 24 bytes and two servers' states compare cheaply.
class CountingMachine final : public fastzab::StateMachine {
 public:
  void apply(std::uint64_t zxid, std::span<const std::byte> entry) override {
    for (std::byte b : entry) digest_ = (digest_ ^ static_cast<std::uint8_t>(b)) * 1099511628211ull;
    ++count_;
    last_ = zxid;
  }
  std::vector<std::byte> snapshot() override {
    std::vector<std::byte> out(24);
    std::memcpy(out.data(), &count_, 8);
    std::memcpy(out.data() + 8, &digest_, 8);
    std::memcpy(out.data() + 16, &last_, 8);
    return out;
  }
  void restore(std::uint64_t zxid, std::span<const std::byte> s) override {
    count_ = 0;
    digest_ = 14695981039346656037ull;
    last_ = zxid;
    if (s.size() == 24) {
      std::memcpy(&count_, s.data(), 8);
      std::memcpy(&digest_, s.data() + 8, 8);
    }
  }
  std::uint64_t count() const { return count_; }

 private:
  std::uint64_t count_ = 0;
  std::uint64_t digest_ = 14695981039346656037ull;
  std::uint64_t last_ = 0;
};

// The client port's limits from the config. Connections get what the descriptor limit leaves
// after those of the log, the quorum and the node's own, so that no number of clients can make
// the replication group run out: a failed open() of a log file stops the server.
std::expected<cmd::ClientPortLimits, std::string> client_port_limits(
    const runtime::ServerConfig& cfg) {
  rlimit nofile{};
  ::getrlimit(RLIMIT_NOFILE, &nofile);
  if (nofile.rlim_cur < nofile.rlim_max) {
    // The soft limit is a default, not a choice: take what the administrator allows.
    rlimit raised = nofile;
    raised.rlim_cur = nofile.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) nofile = raised;
  }
  std::uint64_t open_now = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (::readdir(d) != nullptr) ++open_now;
    ::closedir(d);
  }
  // Kept back: what is open now (log, io_uring, quorum, epoll) and room for what comes and
  // goes: log segments and snapshots, quorum re-connections and handshakes, the client port's
  // own.
  const std::uint64_t reserve =
      open_now + kReservedDescriptors + 4ull * cfg.servers.size() * cfg.groups;
  const std::uint64_t limit = nofile.rlim_cur == RLIM_INFINITY ? UINT32_MAX : nofile.rlim_cur;
  if (limit < reserve + kMinClientDescriptors) {
    return std::unexpected(
        "the descriptor limit (ulimit -n) is " + std::to_string(limit) + ": fastzab-server keeps " +
        std::to_string(reserve) + " for its log and quorum connections and needs " +
        std::to_string(kMinClientDescriptors) + " more for clients; raise it to at least " +
        std::to_string(reserve + kMinClientDescriptors));
  }
  cmd::ClientPortLimits l;
  l.per_source = cfg.max_client_cnxns;
  const std::uint64_t fit = std::min<std::uint64_t>(limit - reserve, UINT32_MAX);
  l.total = static_cast<std::uint32_t>(cfg.max_cnxns == 0 ? fit : std::min<std::uint64_t>(cfg.max_cnxns, fit));
  l.output_bytes = cfg.client_output_limit_bytes;
  l.outstanding = cfg.client_outstanding_limit;
  l.global_outstanding = cfg.global_outstanding_limit;
  l.input_budget_bytes = cfg.client_input_budget_bytes;
  l.timeout = std::chrono::milliseconds(cfg.client_timeout_ms);
  return l;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"fastzab-server: one server of a fastzab cluster (ZAB over io_uring)"};
  std::string config_path;
  std::uint64_t id = 0;
  cli.add_option("--config", config_path, "zoo.cfg-style configuration file")->required();
  cli.add_option("--id", id, "this server's id (a server.N line of the file)")->required();
  std::string data_dir;
  std::uint32_t client_port = 0;
  cli.add_option("--data-dir", data_dir,
                 "use this directory instead of the file's dataDir (several servers, one file)");
  cli.add_option("--client-port", client_port,
                 "serve clients on this port instead of the file's clientPort")
      ->check(CLI::Range(1u, 65535u));
  std::string cpus;
  cli.add_option("--cpus", cpus,
                 "pin the group threads to these CPUs, one per group (0,1 or 2-5) instead of the "
                 "file's cpus (several servers, one file)");
  std::string poll;
  cli.add_option("--poll", poll,
                 "busy, adaptive or blocking instead of the file's poll (several servers, one "
                 "file)")
      ->check(CLI::IsMember({"busy", "adaptive", "blocking"}));
  try {
    cli.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return cli.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "fastzab-server: %s\n", e.what());
    return 2;
  }
  g_stop_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  struct sigaction sa{};
  sa.sa_handler = on_signal;
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  // The file is read once: its text serves this program (the client port, its limits, so that
  // a taken port is an error before the node starts) and the Node (NodeOptions::config_text).
  auto text = runtime::read_config_file(config_path);
  if (!text) {
    std::fprintf(stderr, "fastzab-server: %s\n", text.error().message.c_str());
    return 2;
  }
  auto cfg = runtime::load_config_text(*text, config_path);
  if (!cfg) {
    std::fprintf(stderr, "fastzab-server: %s\n", cfg.error().message.c_str());
    return 2;
  }
  for (const std::string& w : cfg->warnings) {
    std::fprintf(stderr, "fastzab-server: warning: %s\n", w.c_str());
  }
  auto index = runtime::validate_for(*cfg, core::ServerId{static_cast<std::int64_t>(id)});
  if (!index) {
    std::fprintf(stderr, "fastzab-server: %s\n", index.error().message.c_str());
    return 2;
  }
  std::vector<CountingMachine> apps(cfg->groups);
  std::vector<fastzab::StateMachine*> app_ptrs;
  for (CountingMachine& a : apps) app_ptrs.push_back(&a);
  NodeOptions options;
  options.config_file = config_path;
  options.config_text = std::move(*text);
  options.data_dir = data_dir;
  options.cpus = cpus;
  options.poll = poll;
  if (client_port != 0) cfg->client_port = static_cast<std::uint16_t>(client_port);
  options.id = id;
  auto node = Node::start(options, app_ptrs);
  if (!node) {
    std::fprintf(stderr, "fastzab-server: %s\n", node.error().message.c_str());
    // Start-up refusals of the configuration are usage errors; the rest (log, port) are not.
    return node.error().kind == fastzab::StartError::Kind::configuration ? 2 : 1;
  }
  auto limits = client_port_limits(*cfg);
  if (!limits) {
    std::fprintf(stderr, "fastzab-server: %s\n", limits.error().c_str());
    return 2;
  }
  cmd::ClientPort port(**node, id, *limits, g_stop, g_stop_fd);
  std::string err;
  if (!port.open(cfg->client_port, err)) {
    std::fprintf(stderr, "fastzab-server: %s\n", err.c_str());
    return 1;
  }
  const runtime::ServerEntry& me = cfg->servers[*index];
  if (cfg->transport == runtime::Transport::dpdk) {
    const std::string peers = cfg->dpdk_memif_dir.empty()
                                  ? "the dpdkPeer table"
                                  : "memif links in " + cfg->dpdk_memif_dir;
    std::fprintf(stderr, "fastzab-server: id %" PRIu64 " ready: clientPort %u, quorum over DPDK (%s)\n",
                 id, static_cast<unsigned>(cfg->client_port), peers.c_str());
  } else {
    std::fprintf(stderr, "fastzab-server: id %" PRIu64 " ready: clientPort %u, quorum %s:%u\n", id,
                 static_cast<unsigned>(cfg->client_port), me.host.c_str(),
                 static_cast<unsigned>(me.quorum_port));
  }
  port.run();
  if (g_stop_signal.load() == SIGTERM && !(*node)->failed()) {
    // The transfer's own budget (transferTimeoutMs) plus time for the answer to come back.
    port.transfer_before_exit(std::chrono::milliseconds(cfg->transfer_timeout_ms + 500));
  }
  (*node)->stop();
  const std::string failure = (*node)->failure();
  if (!failure.empty()) {
    std::fprintf(stderr, "fastzab-server: stopping: %s\n", failure.c_str());
    return 1;
  }
  return 0;
}
