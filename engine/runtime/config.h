// A server's configuration, read from a ZooKeeper-style `zoo.cfg`: `key=value` lines, `#`
// comments on their own lines, blank lines, whitespace around keys and values ignored. The
// ZooKeeper keys keep their ZooKeeper meaning; fastzab adds a few of its own. Every key, its
// default and its range are in README.md ("Configuration"); engine/cmd/examples/zoo.cfg is a
// commented example.
//
// Errors are one line each, "<source>:<line>: <key>: <what>" (or "<source>: <key>: <what>" for
// a key that is missing or a check across lines). Unknown keys are warnings, as in ZooKeeper.
#pragma once

#include <cstddef>
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/core/node.h"
#include "engine/core/quorum.h"
#include "engine/core/types.h"
#include "engine/runtime/error.h"
#include "log/modes.h"
#include "net/poll_mode.h"

namespace fastzab::runtime {

// The network transport between servers: io_uring TCP, or DPDK (dpdkMemifDir, dpdkEal,
// dpdkPeer.N below; engine/runtime/dpdk_open.h opens it).
enum class Transport : std::uint8_t { uring, dpdk };
// The `poll`, `sync` and `logRecovery` keys take the transport's and the log's own types (one
// definition each): how a reactor waits for work; whether a log batch is fdatasync'ed before it
// counts as durable; what the log's recovery does with a bad record it cannot prove was never
// acknowledged (README.md "Log recovery").
using net::PollMode;
using log::SyncMode;
using LogRecovery = log::RecoveryMode;

const char* to_string(Transport t) noexcept;

// One `server.N=host:quorumPort:electionPort[:participant|:observer]` line.
struct ServerEntry {
  core::ServerId id;
  std::string host;  // as written (an IPv6 address without its brackets); not resolved here
  // fastzab keeps ONE connection per pair of servers for election and ZAB traffic alike, on the
  // quorum port. The election port is parsed and checked (so a ZooKeeper file reads unchanged
  // and no two servers share an address) but nothing listens on it.
  std::uint16_t quorum_port = 0;
  std::uint16_t election_port = 0;
  bool observer = false;
  std::size_t line = 0;  // where it was configured, for later messages
};

struct ServerConfig {
  std::string source;                  // the name errors and warnings cite

  // ZooKeeper keys.
  std::uint32_t tick_time_ms = 2000;   // tickTime
  std::uint32_t init_limit_ticks = 10; // initLimit, in tickTimes
  std::uint32_t sync_limit_ticks = 5;  // syncLimit, in tickTimes
  // snapCount: entries applied between local snapshots, each followed by a purge of the log
  // below it. ZooKeeper's name and default (ZooKeeper snapshots at a random point between half
  // and all of it, so that servers do not all snapshot at once; fastzab takes it as written).
  std::uint32_t snap_count = 100000;
  // preAllocSize: KiB preallocated per log segment file, so also the size at which a new
  // segment starts (ZooKeeper's name, unit and default). Purging removes whole segments.
  std::uint32_t prealloc_kb = 65536;
  std::string data_dir;                // dataDir (required)
  std::uint16_t client_port = 0;       // clientPort (required)
  // server.N lines, ascending by id. servers[i] is member i of `cluster`.
  std::vector<ServerEntry> servers;
  // The core's membership and quorum system (majority, or hierarchical when group.G lines are
  // present, with weight.N lines).
  core::ClusterConfig cluster;

  // fastzab keys.
  // Protocol timing (README.md "Timing"), in milliseconds. The core counts fine ticks of
  // tickResolutionMs; node_timing() turns these and initLimit/syncLimit into its durations.
  // tickResolutionMs; unset: the smallest timing key the file sets, at most 5 (config.cpp).
  std::uint32_t tick_resolution_ms = 5;
  std::uint32_t election_finalize_wait_ms = 200;       // electionFinalizeWaitMs (ZK finalizeWait)
  std::uint32_t election_notification_max_ms = 60000;  // electionNotificationMaxMs (ZK's cap)
  std::uint32_t learner_hello_retry_ms = 10;           // learnerHelloRetryMs
  // heartbeatMs and leaderSilenceMs. When the file does not set them, parse_config derives them
  // from tickTime and syncLimit: min(100, tickTime/2) and min(2000, syncLimit*tickTime); these
  // initial values are those of the default tickTime and syncLimit.
  std::uint32_t heartbeat_ms = 100;
  std::uint32_t leader_silence_ms = 2000;
  // transferTimeoutMs: how long a leader handing leadership over waits for the target to hold
  // and commit everything before it gives the transfer up and takes writes again.
  std::uint32_t transfer_timeout_ms = 1000;
  // The client port's limits (README.md "Client port limits"): one client, or many, may take only
  // a bounded share of the server; each limit that is hit is counted in `mntr`.
  // maxClientCnxns: connections per source address (ZooKeeper's key and default; 0: no limit).
  std::uint32_t max_client_cnxns = 60;
  // maxCnxns: connections in all (ZooKeeper's key; 0: as many as the descriptor limit leaves
  // after the descriptors kept for the log and the quorum).
  std::uint32_t max_cnxns = 0;
  // clientOutputLimitBytes: unsent reply bytes per connection past which the server stops
  // reading that connection until the client has taken half of them.
  std::uint32_t client_output_limit_bytes = 1u << 20;
  // clientOutstandingLimit: requests per connection waiting for their outcome past which the
  // server stops reading that connection until half of them are answered.
  std::uint32_t client_outstanding_limit = 1024;
  // globalOutstandingLimit (ZooKeeper's key and default): requests waiting for their outcome on
  // all connections together. Each connection with requests in flight may hold an equal share
  // (at least 8), so a polite client's write never waits behind thousands of a flooder's.
  std::uint32_t global_outstanding_limit = 1000;
  // clientInputBudgetBytes: bytes all connections together may hold in request frames larger
  // than one read (64 KiB); a connection whose large frame does not fit waits.
  std::uint32_t client_input_budget_bytes = 64u << 20;
  // clientTimeoutMs: a request frame must arrive whole, and pending replies must start being
  // taken, within this; otherwise the connection is dropped.
  std::uint32_t client_timeout_ms = 10000;
  Transport transport = Transport::uring;
  // transport=dpdk (net/README.md "DPDK"). Two ways to say how servers reach each other:
  // - dpdkMemifDir=DIR: a local mesh, one net_memif link per pair of servers, its socket file
  //   in DIR (the lower id listens). The same file serves every server; dpdkEal may then be
  //   left out (DPDK runs without hugepages or a NIC: dpdk_plan's defaults).
  // - dpdkPeer.N=PORT[,MAC]: server N is reached through DPDK port PORT; MAC (aa:bb:cc:dd:ee:ff)
  //   where several servers share that port, omitted on a point-to-point port. This table and
  //   dpdkEal (the EAL's arguments, separated by whitespace, e.g. "-l 2 --file-prefix fz1
  //   -a 0000:3b:00.0") are one server's own, so each server has a file of its own; start-up
  //   checks that the table names every other server once (validate_for).
  std::vector<std::string> dpdk_eal;
  std::string dpdk_memif_dir;
  struct DpdkPeer {
    core::ServerId id;
    std::uint16_t port = 0;
    std::array<std::uint8_t, 6> mac{};  // all zero: none given
    std::size_t line = 0;
  };
  std::vector<DpdkPeer> dpdk_peers;
  // transport=dpdk polls busily unless `poll` says otherwise (poll_is_default).
  bool poll_is_default = true;
  PollMode poll = PollMode::blocking;
  SyncMode sync = SyncMode::fdatasync;
  LogRecovery log_recovery = LogRecovery::cut_torn_tail;
  std::uint32_t groups = 1;            // replication groups per node, 1..kMaxGroups
  // trace=on|off: commit tracing (README.md "Commit tracing"): per write, the time of each stage
  // of its commit, answered by the `trce` four-letter word. Off by default.
  bool trace = false;
  // cpus=LIST ("0,1", "2-5", "0,2-3"): the CPUs the group threads run on, group g alone on
  // cpus[g] (README.md "CPU placement"). Empty: nothing is pinned. poll=busy needs one per group
  // (check_cpus, at start-up, also checks them against this machine).
  std::vector<std::uint32_t> cpus;
  // What messages about `cpus` cite: "<source>:<line>: cpus", or "--cpus" for an override.
  std::string cpus_origin;
  std::uint64_t cluster_id = 0;        // clusterId (required, non-zero): written in every log file
  std::string secret_file;             // secretFile (required with more than one server)
  std::size_t secret_file_line = 0;
  std::string secret;                  // the file's content, whitespace trimmed (load_config)

  // One line each: "<source>:<line>: <key>: <what>".
  std::vector<std::string> warnings;
};

inline constexpr std::uint32_t kMaxGroups = 64;
// A connection must be able to hold replies to a full read of requests; the input budget must
// hold the largest request frame (a 1 MiB value and its header) with room to spare.
inline constexpr std::uint32_t kMinClientOutputLimitBytes = 64u << 10;
inline constexpr std::uint32_t kMinClientInputBudgetBytes = 2u << 20;
// A segment must hold the largest entry (1 MiB) with its headers; 1 TiB is the log's limit.
inline constexpr std::uint32_t kMinPreAllocKb = 2048;
inline constexpr std::uint32_t kMaxPreAllocKb = 1u << 30;
inline constexpr std::size_t kMinSecretBytes = 32;
// A secret file is a key, not a document: anything larger is a mistake (a wrong path).
inline constexpr std::size_t kMaxSecretFileBytes = 64u << 10;
// CPU numbers in `cpus` are below this (a cpu_set_t's size, CPU_SETSIZE: static_assert in
// config.cpp); whether this machine has them is checked at start-up (check_cpus).
inline constexpr std::uint32_t kMaxCpus = 1024;

// Parses a configuration's text. `source_name` is what messages call it (a file name). Does not
// touch the file system: `secret` stays empty (load_config reads it).
Result<ServerConfig> parse_config(std::string_view text, std::string_view source_name);

// Reads and parses the file at `path`, then reads the secret file it names (a relative path is
// taken from the working directory, as ZooKeeper does for its paths) and checks its length.
Result<ServerConfig> load_config(const std::string& path);
// load_config() in two steps, for a caller that reads the file once and keeps its text:
// read_config_file() (bounded; a clear error naming the path), then load_config_text(), which
// parses it (messages name `path`) and reads the secret file.
Result<std::string> read_config_file(const std::string& path);
Result<ServerConfig> load_config_text(std::string_view text, const std::string& path);

// Checks that `id` (the server's own id, from the command line) is one of the configured
// servers; returns its index in `servers` and `cluster`. With transport=dpdk and a dpdkPeer
// table, also that the table names every other server once and not `id` itself.
Result<std::size_t> validate_for(const ServerConfig& config, core::ServerId id);

// A poll mode by its name as `poll=` and `fastzab-server --poll` take it (busy, adaptive,
// blocking), or nothing.
std::optional<PollMode> poll_mode_named(std::string_view name) noexcept;

// A CPU list as `cpus=` and `fastzab-server --cpus` take it: comma-separated CPU numbers and
// ranges lo-hi, each below kMaxCpus, none twice, in the order written. The error is the message
// alone (no source or key): callers prefix where the list came from.
Result<std::vector<std::uint32_t>> parse_cpu_list(std::string_view text);
// The other way: ascending runs as ranges ("0-3,6"); empty for an empty list.
std::string format_cpu_list(std::vector<std::uint32_t> cpus);
// The CPUs this process may run on (sched_getaffinity), ascending.
std::vector<std::uint32_t> available_cpus();
// The start-up check of CPU placement: every CPU in `config.cpus` is one of `available`, and
// poll=busy lists one CPU per group (a spinning thread needs a CPU of its own; unpinned, the
// spinning threads of servers sharing a host pile onto the same CPUs).
Result<void> check_cpus(const ServerConfig& config, const std::vector<std::uint32_t>& available);

// What transport=dpdk sets up for server `self` (pure: no DPDK here; engine/runtime/dpdk_open.h
// does it): the EAL's arguments and the peer table. The arguments are dpdkEal's, or, when the
// file leaves it out, the ones for virtual devices without hugepages (--no-huge -m 256 --no-pci
// --iova-mode=va --no-telemetry, EAL notices only); "-l FIRST_CPU" (the first CPU this process may use) unless they
// name lcores, and a --file-prefix derived from dataDir and the id unless they name one (servers
// on one host need distinct ones; a restarted server reuses its own). dpdkMemifDir adds one
// --vdev per other server and names the peers' ports by device name.
struct DpdkPlan {
  struct Peer {
    core::ServerId id;
    std::string device;      // the port by name (a vdev of the plan), or empty: `port`
    std::uint16_t port = 0;
    std::array<std::uint8_t, 6> mac{};
  };
  std::vector<std::string> eal;
  std::vector<Peer> peers;
};
DpdkPlan dpdk_plan(const ServerConfig& config, core::ServerId self, std::uint32_t first_cpu);

// Sets the core's durations in `node` (its timing fields) from the configuration, in ticks of
// tick_resolution_ms, rounded up and capped at core::kMaxDurationTicks: the finalize wait, the
// notification back-off (from the finalize wait up to its cap), the hello re-send period, the
// heartbeat, the leader-silence limit, and initLimit and syncLimit (multiples of tickTime).
// parse_config's checks make the result acceptable to core::Node.
void set_node_timing(const ServerConfig& config, core::NodeConfig& node);

}  // namespace fastzab::runtime
