// fastzab-server's client port: epoll over plain sockets on the application thread, handing
// writes to a fastzab::Node and replies back (README.md "Client port" for the protocol,
// "Client port limits" for the limits).
//
// Every client is untrusted: one that pipelines without reading, holds connections idle, sends a
// frame a byte at a time or announces a value too large takes only a bounded share of the
// server, and is counted in `mntr`. The limits come from the config (runtime::ServerConfig).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/include/fastzab/fastzab.h"
#include "engine/runtime/client_protocol.h"

namespace fastzab::cmd {

// An allocator whose resize() leaves new bytes uninitialized: the client port grows its input
// buffer by a read chunk and has the kernel read straight into the tail, so a request's bytes
// are neither zeroed first nor copied from a stack buffer afterwards.
template <typename T>
struct UninitializedAllocator : std::allocator<T> {
  template <typename U>
  struct rebind {
    using other = UninitializedAllocator<U>;
  };
  UninitializedAllocator() = default;
  template <typename U>
  UninitializedAllocator(const UninitializedAllocator<U>&) noexcept {}
  template <typename U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    std::construct_at(p, std::forward<Args>(args)...);
  }
};
using InBytes = std::vector<std::byte, UninitializedAllocator<std::byte>>;

struct ClientPortLimits {
  std::uint32_t per_source = 60;            // connections per source address; 0: no limit
  std::uint32_t total = 1024;               // connections in all (at least 1)
  std::uint32_t output_bytes = 1u << 20;    // unsent reply bytes before reading pauses
  std::uint32_t outstanding = 1024;         // requests awaiting an outcome before reading pauses
  // Requests awaiting an outcome on all connections together; each connection with requests in
  // flight may hold an equal share of it (at least kMinOutstandingShare), so a few pipelining
  // clients cannot queue thousands of writes ahead of everyone else's.
  std::uint32_t global_outstanding = 1000;
  std::uint32_t input_budget_bytes = 64u << 20;  // large frames' bytes, all connections
  std::chrono::milliseconds timeout{10000}; // a frame's arrival, replies' first progress
};

// What the limits did since start (`mntr` prints them).
struct ClientPortCounters {
  std::uint64_t refused_per_source = 0;  // connections closed at once: maxClientCnxns
  std::uint64_t refused_total = 0;       // connections closed at once: maxCnxns / descriptors
  std::uint64_t accept_errors = 0;       // accept() failures (EMFILE, ENFILE, ENOMEM, ...)
  std::uint64_t paused_output = 0;       // reading paused: clientOutputLimitBytes
  std::uint64_t paused_outstanding = 0;  // reading paused: clientOutstandingLimit or the share
  std::uint64_t budget_waits = 0;        // a large frame waited for clientInputBudgetBytes
  std::uint64_t dropped_timeout = 0;     // closed: clientTimeoutMs
  std::uint64_t too_large = 0;           // writes answered too_large (their bytes skipped)
  std::uint64_t bad_frames = 0;          // closed after bad_request
};

class ClientPort {
 public:
  // `stop` and `stop_fd` (an eventfd) end run(); the signal handler sets both.
  ClientPort(Node& node, std::uint64_t self_id, const ClientPortLimits& limits,
             const std::atomic<bool>& stop, int stop_fd);
  ~ClientPort();
  ClientPort(const ClientPort&) = delete;
  ClientPort& operator=(const ClientPort&) = delete;

  bool open(std::uint16_t port, std::string& err);
  // Serves until stopped, or until the node fails.
  void run();
  // On SIGTERM: if this server leads group 0, hand leadership to a follower first, so that a
  // planned restart costs the cluster a hand-over instead of an election. Serves replies while
  // it waits; gives up after `budget`.
  void transfer_before_exit(std::chrono::milliseconds budget);

 private:
  using Clock = std::chrono::steady_clock;

  struct Conn {
    int fd = -1;
    std::uint64_t serial = 0;   // descriptors are reused: this names the connection
    std::uint32_t source = 0;   // IPv4 address, network order (maxClientCnxns)
    InBytes in;                 // bytes of requests not yet decoded (read into in place)
    std::vector<std::byte> out; // replies; out[out_sent..] not yet sent
    std::size_t out_sent = 0;
    std::uint64_t skip = 0;     // bytes of a too-large frame still to discard
    std::size_t reserved = 0;   // input budget held for the frame being read
    std::uint32_t outstanding = 0;  // writes and transfers awaiting their outcome
    Clock::time_point frame_since{};  // a partial frame (or a skip) pending since; {}: none
    Clock::time_point out_since{};    // unsent replies without progress since; {}: none
    std::uint32_t events = 0;   // the epoll interest set now
    bool decided = false;       // binary protocol or four-letter word chosen
    bool close_after_write = false;
    bool paused = false;        // reading paused by a limit (hysteresis: resumes at half)
    bool waiting_budget = false;
  };
  struct Pending {
    int fd;
    std::uint64_t serial;  // the connection's, so a reply never reaches a later one on the fd
    std::uint64_t id;
    Clock::time_point start;
  };

  void add(int fd, std::uint32_t events);
  void accept_all();
  void refuse_accepted(int fd, std::uint64_t& counter, std::uint32_t limit,
                       const std::string& what);
  void close_conn(int fd);
  void on_readable(Conn& c);
  void handle_input(Conn& c, std::uint64_t read_ns);
  bool take_requests(const Conn& c) const;
  // What connection `c` may have outstanding now: clientOutstandingLimit, or less, its share of
  // globalOutstandingLimit among the connections with requests in flight.
  std::uint32_t outstanding_limit(const Conn& c) const noexcept;
  void started_request(Conn& c) noexcept;
  void finished_request(Conn& c) noexcept;
  bool reserve_frame(Conn& c);
  void release_frame(Conn& c);
  void update_interest(Conn& c);
  void reply_error(Conn& c, std::uint64_t id, runtime::client::ErrorCode code,
                   const std::string& text);
  void drain_results();
  void flush(int fd);
  void sweep(Clock::time_point now);
  void wake_budget_waiters();
  void log_rate_limited(const std::string& line);
  void record_latency(Clock::duration d);
  std::uint64_t percentile(double q) const;
  std::string status_json() const;
  std::string four_letter_answer(std::string_view w) const;

  static constexpr std::size_t kLatencySamples = 65536;
  Node& node_;
  std::uint64_t self_id_;
  ClientPortLimits limits_;
  const std::atomic<bool>& stop_;
  int stop_fd_;
  int listen_fd_ = -1;
  int ep_ = -1;
  int spare_fd_ = -1;  // closed to accept-and-close one connection when descriptors run out
  Clock::time_point accept_paused_until_{};
  bool accept_armed_ = true;
  std::unordered_map<int, Conn> conns_;
  std::unordered_map<std::uint32_t, std::uint32_t> per_source_;
  std::unordered_map<std::uint64_t, Pending> pending_;
  std::vector<int> budget_waiters_;  // connections whose large frame waits for the budget
  std::size_t budget_used_ = 0;
  std::uint64_t next_tag_ = 0;
  std::uint64_t next_serial_ = 0;
  std::uint64_t exit_transfer_tag_ = 0;  // transfer_before_exit()'s request, 0: none
  std::optional<fastzab::TransferResult> exit_transfer_result_;
  std::vector<int> touched_;  // connections with replies to flush, in drain_results()
  bool tracing_ = false;      // commit tracing (trace=on)
  std::vector<std::pair<unsigned, std::uint64_t>> replied_;  // tracing: (group, zxid) replied
  ClientPortCounters counters_;
  std::uint32_t active_writers_ = 0;  // connections with outstanding > 0
  Clock::time_point last_sweep_{};
  Clock::time_point log_window_{};  // refusals are logged once a second, with a count
  std::uint64_t log_suppressed_ = 0;
  std::uint64_t writes_ok_ = 0;
  std::vector<std::uint64_t> latencies_;
  std::size_t latency_next_ = 0;
};

}  // namespace fastzab::cmd
