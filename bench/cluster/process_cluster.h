// A cluster of fastzab-server processes on 127.0.0.1 for the benchmark: one shared zoo.cfg in a
// temporary directory, each server with its own data directory and client port (ports from the
// kernel), started and killed by PID. It also samples what the servers cost: on-CPU time,
// context switches and system calls from perf counters attached between fork and exec and
// inherited by every thread the server starts (exited threads included), or from /proc when perf
// events are not permitted.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <expected>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace fastzab::bench {

std::uint64_t now_ns() noexcept;  // CLOCK_MONOTONIC, the clock the engine's trace uses too
// A port on 127.0.0.1 the kernel just gave out (and that is free again: callers bind it soon).
std::expected<std::uint16_t, std::string> free_loopback_port();

struct ClusterOptions {
  unsigned servers = 3;
  unsigned groups = 1;
  std::string poll = "blocking";
  // With poll "busy": only servers 1..busy_servers busy-poll (a CPU each, pinned); the others
  // run poll=blocking, unpinned. 0: every server polls as `poll` says.
  unsigned busy_servers = 0;
  std::string transport = "uring";  // or "dpdk": one net_memif link per pair (dpdkMemifDir)
  std::string sync = "fdatasync";
  unsigned tick_ms = 20;
  bool trace = false;
  std::vector<std::string> extra_config;  // more zoo.cfg lines, KEY=VALUE (--server-option)
  std::string server_bin;
  std::string root;  // a directory to create the cluster in (it must exist and be empty)
};

// CPU placement of the servers (engine/runtime/README.md, "CPU placement"): with poll "busy",
// server id (1-based) gets `groups` CPUs of its own, disjoint from every other server's, taken in
// order from `available` (the CPUs this process may use), as a --cpus list: lists[id - 1].
// Otherwise no lists (nothing pinned). Refused, saying what to change, when `available` has
// fewer CPUs than servers x groups: spinning threads that share a CPU starve each other.
std::expected<std::vector<std::string>, std::string> cpu_lists(
    unsigned servers, unsigned groups, const std::string& poll,
    const std::vector<std::uint32_t>& available);

// What the servers used up to a moment; subtract two samples for an interval.
struct ResourceSample {
  std::uint64_t cpu_ns = 0;            // on-CPU time of every thread (schedstat)
  std::uint64_t context_switches = 0;  // voluntary + involuntary, every thread
  std::optional<std::uint64_t> syscalls;  // nullopt: no counter on some server
};

// CPU time and context switches of every thread of process `pid` so far (zero if it is gone).
ResourceSample sample_threads(pid_t pid);

// A leadership transfer asked of one server over its client port (frame 0x03,
// engine/runtime/client_protocol.h), answered while the caller drives a load in the same thread:
// send() it, then poll() between slices of the load.
struct TransferAnswer {
  bool handed_off = false;
  std::uint64_t new_leader = 0;  // handed_off: the server transfer_ok named
  std::string refusal;           // otherwise: the error's code and text ("transfer_refused: aborted")
  std::uint64_t answered_ns = 0; // when poll() saw it (up to a poll interval late)
};

class TransferRequest {
 public:
  // Connects to 127.0.0.1:`port`, then sends the request for `target` (0: the server's choice).
  // sent_ns() is stamped just before the send, so the connect is not counted.
  static std::expected<TransferRequest, std::string> send(std::uint16_t port, std::uint64_t target);
  TransferRequest(TransferRequest&& o) noexcept;
  TransferRequest& operator=(TransferRequest&&) = delete;
  ~TransferRequest();

  std::uint64_t sent_ns() const noexcept { return sent_ns_; }
  // The answer once it has come, without blocking; an error when the connection closed or the
  // reply is not the protocol.
  std::expected<std::optional<TransferAnswer>, std::string> poll();

 private:
  TransferRequest() = default;
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::uint64_t sent_ns_ = 0;
  std::vector<std::byte> in_;
};

class ProcessCluster {
 public:
  static std::expected<ProcessCluster, std::string> create(const ClusterOptions& options);
  ProcessCluster(ProcessCluster&&) noexcept;
  ProcessCluster& operator=(ProcessCluster&&) = delete;
  ~ProcessCluster();  // kills what still runs

  std::expected<void, std::string> start(unsigned id);  // returns once its client port answers
  std::expected<void, std::string> start_all();
  void kill(unsigned id);  // SIGKILL, then reaped
  void pause(unsigned id);  // SIGSTOP: the server falls silent, its connections stay open
  void stop_all();         // SIGTERM, 5 s, then SIGKILL
  bool running(unsigned id) const;

  // The server whose `srvr` says leader, once one does (a leader that cannot yet take writes
  // answers no_leader; callers write until a write commits).
  std::expected<unsigned, std::string> wait_leader(std::chrono::milliseconds timeout) const;
  // The `srvr` mode of a server ("leader", "follower", ...), empty if it does not answer.
  std::string mode(unsigned id) const;
  // A four-letter word's whole answer, empty if the server does not answer.
  std::string ask(unsigned id, const char* word) const;
  std::uint16_t client_port(unsigned id) const { return servers_.at(id).client_port; }
  pid_t pid(unsigned id) const { return servers_.at(id).pid; }
  unsigned size() const noexcept { return options_.servers; }
  const std::string& root() const noexcept { return options_.root; }
  std::string log_path(unsigned id) const;
  // Whether server `id` busy-polls (a leader kept there is what --busy-servers is for).
  bool busy(unsigned id) const;

  ResourceSample sample() const;  // summed over the running servers
  // Why syscalls could not be counted, empty if they are.
  const std::string& syscall_note() const noexcept { return syscall_note_; }
  // Why CPU and context switches come from /proc (coarser, live threads only), empty if not.
  const std::string& counter_note() const noexcept { return counter_note_; }

 private:
  struct Server {
    std::uint16_t client_port = 0;
    pid_t pid = -1;
    // Inherited perf counters (fds, -1 when not available): on-CPU ns, context switches, system
    // calls of the server and every thread it started.
    int cpu_counter = -1;
    int switch_counter = -1;
    int syscall_counter = -1;
    std::string data_dir;
    std::string cpus;  // its --cpus list, empty: not passed
    std::string poll;  // its --poll, empty: not passed (the file's)
  };
  explicit ProcessCluster(const ClusterOptions& options) : options_(options) {}
  ClusterOptions options_;
  std::string config_path_;
  std::map<unsigned, Server> servers_;
  std::string syscall_note_;
  std::string counter_note_;
};

}  // namespace fastzab::bench
