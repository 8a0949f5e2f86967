// The benchmark's client: pipelined writes over the client port's binary protocol
// (engine/runtime/client_protocol.h) on a few TCP connections, from one thread with epoll
// (it blocks in epoll_pwait2 when nothing is due: it must not take a core from the servers).
//
// Closed loop: `window` writes outstanding in total, a new one sent as each answer arrives.
// Open loop: writes scheduled at a fixed rate, latency counted from the scheduled time, not the
// actual send (coordinated omission corrected, as wrk2 does): a stall delays the sends after it
// and their latencies include the wait.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "bench/cluster/histogram.h"

namespace fastzab::bench {

struct LoadOptions {
  unsigned window = 1;           // closed loop: writes outstanding, over all connections
  std::optional<double> rate;    // open loop: writes per second
  std::size_t value_bytes = 64;
  unsigned connections = 1;
  std::vector<std::uint16_t> ports;  // the connections' server, round robin; the rest on failure
  std::uint64_t max_outstanding = 100000;  // open loop: never more in flight than this
  // A connection whose oldest write has waited this long is given up and the next server tried,
  // as a client with a request timeout would (a silent leader keeps its connections open).
  // 0: wait forever.
  std::uint64_t reply_timeout_ns = 0;
};

// One acknowledged write, for callers that watch them (failover, the trace waterfall).
struct Ack {
  std::uint64_t zxid = 0;
  std::uint64_t sent_ns = 0;      // closed: sent; open: scheduled
  std::uint64_t answered_ns = 0;
};

struct LoadCounters {
  Histogram latency;               // ns
  std::uint64_t commits = 0;
  std::uint64_t errors = 0;        // error answers (no_leader, unavailable, ...)
  std::uint64_t lost = 0;          // outstanding when a connection broke: outcome unknown
  std::uint64_t value_bytes = 0;   // of the committed writes
};

class Load {
 public:
  static std::optional<Load> start(const LoadOptions& options, std::string& error);
  Load(Load&&) noexcept;
  Load& operator=(Load&&) = delete;
  ~Load();

  // Drives the load until `until_ns` (CLOCK_MONOTONIC) or until `stop` returns true for an ack.
  // Answers are counted in counters() (reset it to start measuring).
  void run(std::uint64_t until_ns, const std::function<bool(const Ack&)>& stop = {});
  LoadCounters& counters() noexcept { return counters_; }
  // Waits (up to `timeout_ns`) for the outstanding writes to be answered, sending no more.
  void drain(std::uint64_t timeout_ns);
  std::uint64_t outstanding() const noexcept;

 private:
  struct Connection;
  explicit Load(const LoadOptions& options);
  bool connect(Connection& c, std::string& error);
  void on_readable(Connection& c);
  void broken(Connection& c);
  void fill(std::uint64_t now);
  void flush(Connection& c);
  bool send_one(Connection& c, std::uint64_t stamp_ns);

  LoadOptions options_;
  int epoll_ = -1;
  std::vector<Connection*> connections_;
  LoadCounters counters_;
  std::vector<std::byte> value_;
  std::uint64_t next_id_ = 1;
  std::uint64_t scheduled_ = 0;     // open loop: writes scheduled so far
  std::uint64_t open_start_ns_ = 0;
  std::uint64_t retry_at_ns_ = 0;   // after an error answer or a broken connection: back off
  bool draining_ = false;
  const std::function<bool(const Ack&)>* stop_ = nullptr;
  bool stopped_ = false;
};

}  // namespace fastzab::bench
