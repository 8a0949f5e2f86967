// fastzab-bench: the cluster benchmark. Starts a cluster on loopback (fastzab-server processes,
// or fastzab::Nodes in this process), measures the hardware's floors in the same run, drives
// closed- and open-loop write loads, kills leaders, and reports a table on stdout, progress on
// stderr, and JSON (bench/SCHEMA.md), HdrHistogram files and an HTML report on request.
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/cluster/floors.h"
#include "bench/cluster/histogram.h"
#include "bench/cluster/in_process.h"
#ifdef FASTZAB_HAVE_DPDK
#include "bench/cluster/memif_floor.h"
#endif
#include "bench/cluster/load.h"
#include "bench/cluster/process_cluster.h"
#include "bench/cluster/waterfall.h"
#include "engine/runtime/config.h"

#ifndef FASTZAB_SOURCE_ROOT
#define FASTZAB_SOURCE_ROOT "."
#endif
#ifndef FASTZAB_BUILDTYPE
#define FASTZAB_BUILDTYPE "unknown"
#endif
#include "bench/cluster/version.h"  // FASTZAB_GIT_DESCRIBE, written at build time

namespace fastzab::bench {
namespace {

using json = nlohmann::ordered_json;

struct Options {
  bool in_process = false;
  unsigned servers = 3;
  unsigned groups = 1;
  std::vector<unsigned> windows = {1, 16, 64, 256};
  std::vector<std::size_t> sizes = {64};
  std::vector<double> rates;  // open loop, writes/s
  double duration_s = 5;
  double warmup_s = 1;
  std::string sync = "fdatasync";
  std::string poll = "blocking";
  unsigned busy_servers = 0;          // --busy-servers: only 1..N busy-poll (0: all, as --poll says)
  std::string transport = "uring";    // or dpdk (memif links; process mode only)
  std::string target = "leader";
  unsigned connections = 1;
  unsigned tick_ms = 20;
  unsigned failover_trials = 0;
  std::vector<unsigned> failover_windows = {1, 64};
  // kill: SIGKILL (its connections close at once); stop: SIGSTOP, a leader that falls silent
  // (a host that died, a cut cable), noticed only by the followers' leader-silence timeout;
  // transfer: a planned hand-over the leader is asked for over its client port (what
  // fastzab-server does on SIGTERM), the cost of a rolling restart.
  std::string failover_kind = "kill";
  unsigned client_timeout_ms = 100;  // failover: the client's request timeout
  bool floors = true;
  bool trace = false;
  std::vector<std::string> server_options;  // KEY=VALUE lines for the servers' zoo.cfg
  bool quick = false;
  bool keep = false;
  std::string json_path, html_path, hgrm_dir, compare_path, server_bin, dir;
  std::vector<std::string> command;
};

struct RunResult {
  std::string name, workload;
  std::optional<unsigned> window;
  std::optional<double> rate;
  std::size_t value_bytes = 0;
  double warmup_s = 0, measured_s = 0;
  std::uint64_t commits = 0, errors = 0;
  Histogram latency;
  std::optional<double> cpu_us_per_commit, ctx_per_commit, syscalls_per_commit;
  std::optional<double> allocs_per_commit;  // --in-process only: heap allocations in the process
  std::optional<double> mean_batch_bytes, records_per_sync;
  std::optional<double> p50_to_floor, commits_to_floor;
  std::string hgrm_file;
  double commits_per_s() const { return measured_s > 0 ? static_cast<double>(commits) / measured_s : 0; }
};

struct FailoverTrial {
  unsigned window = 0, killed = 0, new_leader = 0;
  // kill, stop: the signal sent; transfer: the request sent (to the first write acknowledged in
  // the new leader's epoch, or, refused, to the first after the refusal).
  double kill_to_commit_ms = 0, unavailable_ms = 0;
  // transfer only.
  unsigned target = 0;          // the server it was asked to hand to
  bool refused = false;         // the leader answered an error instead of transfer_ok
  std::string refusal;          // its code and text
  std::uint64_t write_errors = 0, writes_given_up = 0;  // the load's, during the trial
  double quiet_before_ms = 0;   // the last acknowledgement before the request to it (part of the gap)
  std::string oddity;           // what the servers did that they should not have, for the notes
};

struct FsyncFloor {
  std::size_t batch_bytes = 0;
  Histogram latency;
};

// ---- progress ---------------------------------------------------------------------------------

class Progress {
 public:
  explicit Progress(double planned_s) : planned_s_(planned_s), start_(now_ns()) {}
  void step(const std::string& what, double next_s) {
    const double elapsed = static_cast<double>(now_ns() - start_) / 1e9;
    done_s_ += last_planned_;
    last_planned_ = next_s;
    const double eta = std::max(0.0, planned_s_ - done_s_);
    std::fprintf(stderr, "[%5.0f s, about %4.0f s left] %s\n", elapsed, eta, what.c_str());
  }
  void note(const std::string& what) { std::fprintf(stderr, "    %s\n", what.c_str()); }

 private:
  double planned_s_, done_s_ = 0, last_planned_ = 0;
  std::uint64_t start_;
};

// ---- helpers ----------------------------------------------------------------------------------

// What the round-trip floor moves, for the progress line, the table and the JSON.
std::string rtt_floor_name(const Options& o) {
  return o.transport == "dpdk" ? "64 B Ethernet frame, raw DPDK net_memif between 2 busy-polling processes"
                               : "32 B frame, io_uring TCP between 2 processes (poll=" + o.poll + ")";
}

// The DPDK floor: its two ends busy-poll on the first two CPUs this process may use, where
// --busy-servers puts the leader and its busy follower.
std::expected<Histogram, std::string> measure_dpdk_round_trip(const std::string& root, unsigned samples) {
#ifdef FASTZAB_HAVE_DPDK
  const std::vector<std::uint32_t> cpus = runtime::available_cpus();
  if (cpus.size() < 2) return std::unexpected(std::string("memif round-trip floor: needs 2 CPUs"));
  return measure_memif_round_trip(root, samples, cpus[0], cpus[1]);
#else
  (void)root;
  (void)samples;
  return std::unexpected(std::string("this build has no DPDK (libdpdk-dev was missing at meson setup)"));
#endif
}

std::map<std::string, std::string> parse_mntr(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    const auto tab = line.find('\t');
    if (tab != std::string::npos) out[line.substr(0, tab)] = line.substr(tab + 1);
  }
  return out;
}

std::optional<std::uint64_t> mntr_number(const std::map<std::string, std::string>& m, const std::string& key) {
  auto it = m.find(key);
  if (it == m.end()) return std::nullopt;
  try {
    return std::stoull(it->second, nullptr, 0);
  } catch (...) {
    return std::nullopt;
  }
}

json percentiles(const Histogram& h, double unit_ns, const std::string& suffix) {
  json p;
  p["count"] = h.count();
  auto v = [&](std::uint64_t ns) { return std::round(static_cast<double>(ns) / unit_ns * 1000.0) / 1000.0; };
  p["min" + suffix] = v(h.min());
  p["mean" + suffix] = std::round(h.mean() / unit_ns * 1000.0) / 1000.0;
  p["p50" + suffix] = v(h.quantile(0.50));
  p["p90" + suffix] = v(h.quantile(0.90));
  p["p99" + suffix] = v(h.quantile(0.99));
  p["p999" + suffix] = v(h.quantile(0.999));
  p["p9999" + suffix] = v(h.quantile(0.9999));
  p["max" + suffix] = v(h.max());
  return p;
}

template <class T>
json or_null(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}

std::string human_size(std::size_t b) {
  if (b >= 1024 && b % 1024 == 0) return std::to_string(b / 1024) + "KiB";
  return std::to_string(b) + "B";
}

std::string first_line_of(const std::string& path, const std::string& prefix) {
  std::ifstream f(path);
  for (std::string line; std::getline(f, line);) {
    if (line.starts_with(prefix)) {
      auto colon = line.find(':');
      auto v = colon == std::string::npos ? line : line.substr(colon + 1);
      v.erase(0, v.find_first_not_of(" \t"));
      return v;
    }
  }
  return "unknown";
}

json machine_info() {
  json m;
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  utsname u{};
  ::uname(&u);
  m["hostname"] = host;
  m["kernel"] = u.release;
  m["cpus"] = ::sysconf(_SC_NPROCESSORS_ONLN);
  m["cpu_model"] = first_line_of("/proc/cpuinfo", "model name");
  m["memory_bytes"] = static_cast<std::uint64_t>(::sysconf(_SC_PHYS_PAGES)) * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  return m;
}

json build_info() {
  json b;
  std::string rev = FASTZAB_GIT_DESCRIBE;
  const bool dirty = rev.ends_with("-dirty");
  if (dirty) rev.resize(rev.size() - 6);
  b["git_rev"] = rev.empty() ? "unknown" : rev;
  b["git_dirty"] = dirty;
  b["buildtype"] = FASTZAB_BUILDTYPE;
#if defined(__clang__)
  b["compiler"] = std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
  b["compiler"] = std::string("gcc ") + __VERSION__;
#else
  b["compiler"] = "unknown";
#endif
  b["fastzab_version"] = "0.1.0";
  return b;
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char b[32];
  std::strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return b;
}

// The fdatasync floor for a batch size: the measured size closest above (sizes are rounded up to
// 4 KiB pages, as the disk writes them).
const FsyncFloor* fsync_floor_for(const std::vector<FsyncFloor>& floors, double batch_bytes) {
  const FsyncFloor* best = nullptr;
  for (const FsyncFloor& f : floors) {
    if (static_cast<double>(f.batch_bytes) >= batch_bytes && (!best || f.batch_bytes < best->batch_bytes)) best = &f;
  }
  if (!best) {
    for (const FsyncFloor& f : floors) {
      if (!best || f.batch_bytes > best->batch_bytes) best = &f;
    }
  }
  return best;
}

std::size_t round_up_page(double bytes) {
  const auto b = static_cast<std::size_t>(std::ceil(std::max(bytes, 1.0)));
  return (b + 4095) / 4096 * 4096;
}

// ---- the process-mode benchmark ---------------------------------------------------------------

class ProcessBench {
 public:
  ProcessBench(const Options& o, ProcessCluster& c) : o_(o), cluster_(c) {}

  std::expected<void, std::string> bring_up() {
    if (auto r = cluster_.start_all(); !r) return r;
    auto leader = cluster_.wait_leader(std::chrono::seconds(30));
    if (!leader) return std::unexpected(leader.error());
    leader_ = *leader;
    if (auto w = warm_up(); !w) return w;
    return lead_from_a_busy_server();
  }

  // --busy-servers: the measurements are of a busy-polling leader, so leadership is handed to
  // server 1 (busy) when the election chose a blocking one.
  std::expected<void, std::string> lead_from_a_busy_server() {
    if (o_.busy_servers == 0 || o_.poll != "busy" || cluster_.busy(leader_)) return {};
    auto request = TransferRequest::send(cluster_.client_port(leader_), 1);
    if (!request) return std::unexpected(request.error());
    const std::uint64_t deadline = now_ns() + 30'000'000'000u;
    std::optional<TransferAnswer> answer;
    while (!answer && now_ns() < deadline) {
      auto a = request->poll();
      if (!a) return std::unexpected(a.error());
      answer = std::move(*a);
      if (!answer) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (!answer || !answer->handed_off) {
      return std::unexpected("leader " + std::to_string(leader_) + " (polling blocking) did not hand leadership to "
                             "server 1 (busy): " + (answer ? answer->refusal : std::string("no answer in 30 s")));
    }
    return warm_up();
  }

  // Until one write commits through the leader (a new leader answers no_leader until its
  // followers are synchronized).
  std::expected<void, std::string> warm_up() {
    for (int attempt = 0; attempt < 3; ++attempt) {
      auto leader = cluster_.wait_leader(std::chrono::seconds(30));
      if (!leader) return std::unexpected(leader.error());
      leader_ = *leader;
      std::string error;
      LoadOptions probe;
      probe.value_bytes = 8;
      probe.ports = {cluster_.client_port(leader_)};
      auto load = Load::start(probe, error);
      if (!load) continue;
      bool committed = false;
      load->run(now_ns() + 10'000'000'000u, [&](const Ack&) { return committed = true; });
      if (committed) return {};
    }
    return std::unexpected(std::string("no write committed within 30 s of a leader being elected"));
  }

  std::vector<std::uint16_t> ports_for_target() const {
    std::vector<std::uint16_t> ports;
    unsigned first = leader_;
    if (o_.target == "follower") {
      for (unsigned id = 1; id <= cluster_.size(); ++id) {
        if (id != leader_ && cluster_.running(id)) {
          first = id;
          break;
        }
      }
    }
    ports.push_back(cluster_.client_port(first));
    for (unsigned id = 1; id <= cluster_.size(); ++id) {
      if (id != first) ports.push_back(cluster_.client_port(id));
    }
    return ports;
  }

  std::expected<RunResult, std::string> measure(const std::string& workload, std::optional<unsigned> window,
                                                std::optional<double> rate, std::size_t value_bytes,
                                                double warmup_s, double measured_s) {
    RunResult r;
    r.workload = workload;
    r.window = window;
    r.rate = rate;
    r.value_bytes = value_bytes;
    r.warmup_s = warmup_s;
    r.measured_s = measured_s;
    r.name = workload == "closed" ? "closed w=" + std::to_string(*window) + " " + human_size(value_bytes)
                                  : "open " + std::to_string(static_cast<long long>(*rate)) + "/s " + human_size(value_bytes);
    LoadOptions lo;
    lo.window = window.value_or(1);
    lo.rate = rate;
    lo.value_bytes = value_bytes;
    lo.connections = window ? std::min(o_.connections, *window) : o_.connections;
    lo.ports = ports_for_target();
    std::string error;
    auto load = Load::start(lo, error);
    if (!load) return std::unexpected(error);
    load->run(now_ns() + static_cast<std::uint64_t>(warmup_s * 1e9));
    load->counters() = LoadCounters{};
    const auto before = cluster_.sample();
    const auto mntr_before = parse_mntr(cluster_.ask(leader_, "mntr"));
    // With --trace, window 1: the client's stamps of each write, to join with the servers'.
    const bool tracing = o_.trace && window == 1u;
    std::vector<ClientWrite> stamps;
    std::function<bool(const Ack&)> keep_stamps;
    if (tracing) {
      keep_stamps = [&](const Ack& a) {
        stamps.push_back({a.zxid, a.sent_ns, a.answered_ns});
        return false;
      };
    }
    const std::uint64_t t0 = now_ns();
    load->run(t0 + static_cast<std::uint64_t>(measured_s * 1e9), keep_stamps);
    const std::uint64_t t1 = now_ns();
    const auto after = cluster_.sample();
    const auto mntr_after = parse_mntr(cluster_.ask(leader_, "mntr"));
    r.measured_s = static_cast<double>(t1 - t0) / 1e9;
    const LoadCounters& c = load->counters();
    r.commits = c.commits;
    r.errors = c.errors + c.lost;
    r.latency = c.latency;
    if (r.commits > 0) {
      const double n = static_cast<double>(r.commits);
      r.cpu_us_per_commit = static_cast<double>(after.cpu_ns - before.cpu_ns) / 1000.0 / n;
      r.ctx_per_commit = static_cast<double>(after.context_switches - before.context_switches) / n;
      if (before.syscalls && after.syscalls) r.syscalls_per_commit = static_cast<double>(*after.syscalls - *before.syscalls) / n;
    }
    // The leader's log batching, when the server reports it.
    const auto syncs0 = mntr_number(mntr_before, "zk_log_batches"), syncs1 = mntr_number(mntr_after, "zk_log_batches");
    const auto bytes0 = mntr_number(mntr_before, "zk_log_bytes_written"), bytes1 = mntr_number(mntr_after, "zk_log_bytes_written");
    const auto recs0 = mntr_number(mntr_before, "zk_log_records_written"), recs1 = mntr_number(mntr_after, "zk_log_records_written");
    if (syncs0 && syncs1 && *syncs1 > *syncs0) {
      const double syncs = static_cast<double>(*syncs1 - *syncs0);
      if (bytes0 && bytes1) r.mean_batch_bytes = static_cast<double>(*bytes1 - *bytes0) / syncs;
      if (recs0 && recs1) r.records_per_sync = static_cast<double>(*recs1 - *recs0) / syncs;
    }
    load->drain(5'000'000'000u);
    if (tracing) {
      std::vector<std::string> answers;
      for (unsigned id = 1; id <= cluster_.size(); ++id) {
        if (cluster_.running(id)) answers.push_back(cluster_.ask(id, "trce"));
      }
      // The servers keep the last 4096 writes: only those can join.
      if (stamps.size() > 4096) stamps.erase(stamps.begin(), stamps.end() - 4096);
      auto w = compute_waterfall(answers, stamps);
      if (!w) return std::unexpected("the trace waterfall: " + w.error());
      waterfall_ = std::move(*w);
    }
    return r;
  }

  const std::optional<Waterfall>& waterfall() const { return waterfall_; }

  // Kills the leader at a random moment under load; times the kill to the first commit of the
  // next leader, and the gap the client saw between two acknowledgements.
  std::expected<FailoverTrial, std::string> failover(unsigned window, std::mt19937_64& rng) {
    FailoverTrial t;
    t.window = window;
    if (auto w = warm_up(); !w) return std::unexpected(w.error());
    LoadOptions lo;
    lo.window = window;
    lo.value_bytes = 64;
    lo.connections = std::min(o_.connections, window);
    lo.ports = ports_for_target();
    lo.reply_timeout_ns = std::uint64_t{o_.client_timeout_ms} * 1'000'000u;
    std::string error;
    auto load = Load::start(lo, error);
    if (!load) return std::unexpected(error);
    std::uint64_t last_ack_ns = 0, old_epoch = 0;
    load->run(now_ns() + 200'000'000u + rng() % 400'000'000u, [&](const Ack& a) {
      last_ack_ns = a.answered_ns;
      old_epoch = std::max(old_epoch, a.zxid >> 32);
      return false;
    });
    if (last_ack_ns == 0) return std::unexpected(std::string("no write committed before the kill"));
    if (o_.failover_kind == "transfer") return transfer(t, *load, last_ack_ns, old_epoch);
    const unsigned killed = leader_;
    const std::uint64_t kill_ns = now_ns();
    if (o_.failover_kind == "stop") {
      cluster_.pause(killed);
    } else {
      cluster_.kill(killed);
    }
    std::optional<Ack> first;
    load->run(kill_ns + 30'000'000'000u, [&](const Ack& a) {
      if ((a.zxid >> 32) > old_epoch) {
        first = a;
        return true;
      }
      last_ack_ns = std::max(last_ack_ns, a.answered_ns);  // acks of the old epoch in flight
      return false;
    });
    if (!first) return std::unexpected("no commit within 30 s of killing leader " + std::to_string(killed));
    t.killed = killed;
    t.kill_to_commit_ms = static_cast<double>(first->answered_ns - kill_ns) / 1e6;
    t.unavailable_ms = static_cast<double>(first->answered_ns - last_ack_ns) / 1e6;
    load->drain(2'000'000'000u);
    cluster_.kill(killed);  // a stopped one too: it restarts below like a killed one
    auto leader = cluster_.wait_leader(std::chrono::seconds(10));
    if (!leader) return std::unexpected(leader.error());
    leader_ = *leader;
    t.new_leader = leader_;
    // The killed server comes back as a follower before the next trial.
    if (auto r = cluster_.start(killed); !r) return std::unexpected(r.error());
    const auto deadline = now_ns() + 30'000'000'000u;
    while (cluster_.mode(killed) != "follower" && now_ns() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (cluster_.mode(killed) != "follower") return std::unexpected("server " + std::to_string(killed) + " did not rejoin within 30 s");
    return t;
  }

  unsigned leader() const { return leader_; }

 private:
  // The rest of a --failover-kind transfer trial, under the load `failover` started: asks the
  // leader over its client port to hand over to the next server id (so that leadership goes round
  // the cluster, each server leading and being handed to in turn), times the request to the first
  // write acknowledged in the new leader's epoch and the longest gap between acknowledgements, and
  // waits until `srvr` says the new leader leads. Nothing is killed or restarted. A refusal is a
  // result, not a failure: the leader goes on leading, and the times run to the first write
  // acknowledged after it said no.
  std::expected<FailoverTrial, std::string> transfer(FailoverTrial t, Load& load, std::uint64_t last_ack_ns,
                                                     std::uint64_t old_epoch) {
    const unsigned from = leader_;
    const unsigned to = from % cluster_.size() + 1;
    const std::uint64_t errors_before = load.counters().errors, lost_before = load.counters().lost;
    auto request = TransferRequest::send(cluster_.client_port(from), to);
    if (!request) return std::unexpected(request.error());
    const std::uint64_t sent_ns = request->sent_ns();
    const std::uint64_t deadline = sent_ns + 30'000'000'000u;
    std::optional<TransferAnswer> answer;
    std::optional<Ack> first;
    std::uint64_t previous_ns = last_ack_ns, longest_gap_ns = 0;
    const std::function<bool(const Ack&)> watch = [&](const Ack& a) {
      longest_gap_ns = std::max(longest_gap_ns, a.answered_ns - std::min(previous_ns, a.answered_ns));
      previous_ns = std::max(previous_ns, a.answered_ns);
      // Writes the leader took before the request still commit in its epoch: not the new leader's.
      const bool new_epoch = (a.zxid >> 32) > old_epoch;
      const bool after_refusal = answer && !answer->handed_off && a.answered_ns > answer->answered_ns;
      if (new_epoch || after_refusal) first = a;
      return first.has_value();
    };
    // The answer comes on its own connection; look at it between 1 ms slices of the load (the
    // acknowledgements' times are taken as they arrive, not at slice ends).
    auto poll_answer = [&]() -> std::expected<void, std::string> {
      if (answer) return {};
      auto a = request->poll();
      if (!a) return std::unexpected(a.error());
      answer = std::move(*a);
      return {};
    };
    while (!first && now_ns() < deadline) {
      if (auto r = poll_answer(); !r) return std::unexpected(r.error());
      load.run(std::min(deadline, now_ns() + 1'000'000u), watch);
    }
    const auto what_it_said = [&]() -> std::string {
      if (!answer) return "it did not answer";
      if (!answer->handed_off) return "it answered " + answer->refusal;
      return "it answered transfer_ok, new leader " + std::to_string(answer->new_leader);
    };
    if (!first) {
      return std::unexpected("no commit within 30 s of asking leader " + std::to_string(from) + " to transfer to " +
                             std::to_string(to) + " (" + what_it_said() + ")");
    }
    load.drain(2'000'000'000u);
    while (!answer && now_ns() < deadline) {
      if (auto r = poll_answer(); !r) return std::unexpected(r.error());
      if (!answer) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (!answer) {
      return std::unexpected("leader " + std::to_string(from) + " did not answer the transfer request within 30 s, "
                             "though writes committed in a newer epoch");
    }
    t.killed = from;
    t.target = to;
    t.refused = !answer->handed_off;
    t.refusal = answer->refusal;
    t.kill_to_commit_ms = static_cast<double>(first->answered_ns - sent_ns) / 1e6;
    t.unavailable_ms = static_cast<double>(longest_gap_ns) / 1e6;
    t.quiet_before_ms = static_cast<double>(sent_ns - last_ack_ns) / 1e6;
    t.write_errors = load.counters().errors - errors_before;
    t.writes_given_up = load.counters().lost - lost_before;
    if (t.refused && (first->zxid >> 32) > old_epoch) {
      t.oddity = "leader " + std::to_string(from) + " refused (" + answer->refusal +
                 "), yet a write committed in a newer epoch";
    }
    // The next trial starts from an established leader: the one transfer_ok named (or, refused,
    // the same one), and no other server saying leader.
    const unsigned expected = answer->handed_off ? static_cast<unsigned>(answer->new_leader) : from;
    std::string modes;
    for (const std::uint64_t until = now_ns() + 30'000'000'000u;;) {
      modes.clear();
      unsigned leaders = 0, leader = 0;
      for (unsigned id = 1; id <= cluster_.size(); ++id) {
        const std::string m = cluster_.mode(id);
        modes += (modes.empty() ? "" : ", ") + std::to_string(id) + ": " + (m.empty() ? "no answer" : m);
        if (m == "leader") {
          ++leaders;
          leader = id;
        }
      }
      if (leaders == 1 && leader == expected) break;
      if (now_ns() >= until) {
        return std::unexpected("after asking leader " + std::to_string(from) + " to transfer to " + std::to_string(to) +
                               " (" + what_it_said() + "), server " + std::to_string(expected) +
                               " did not become the only leader within 30 s (srvr modes: " + modes + ")");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    leader_ = expected;
    t.new_leader = expected;
    return t;
  }

  const Options& o_;
  ProcessCluster& cluster_;
  unsigned leader_ = 0;
  std::optional<Waterfall> waterfall_;
};

// ---- output -----------------------------------------------------------------------------------

// Per failover window: the trials, the refused ones, and the histograms (ns) of kill-to-commit
// (transfer: request-to-commit) and of client unavailability over the trials that were not
// refused (a refusal times the leader going on, not a hand-over).
struct FailoverWindow {
  std::uint64_t trials = 0, refused = 0;
  Histogram to_commit, unavailable;
};

std::map<unsigned, FailoverWindow> failover_by_window(const std::vector<FailoverTrial>& trials) {
  std::map<unsigned, FailoverWindow> by_window;
  for (const FailoverTrial& t : trials) {
    FailoverWindow& w = by_window[t.window];
    ++w.trials;
    if (t.refused) {
      ++w.refused;
      continue;
    }
    w.to_commit.record(static_cast<std::uint64_t>(t.kill_to_commit_ms * 1e6));
    w.unavailable.record(static_cast<std::uint64_t>(t.unavailable_ms * 1e6));
  }
  return by_window;
}

void print_table(const std::vector<RunResult>& runs, const std::optional<Histogram>& rtt,
                 const std::string& rtt_name, const std::vector<FsyncFloor>& fsyncs,
                 const std::vector<FailoverTrial>& trials, const std::string& kind) {
  std::printf("\n%-22s %11s %8s %9s %9s %9s %9s %9s %9s %8s %7s %8s %8s %8s\n", "run", "commits/s", "MB/s", "p50 us",
              "p90 us", "p99 us", "p99.9 us", "p99.99us", "max us", "CPUus/c", "ctx/c", "sysc/c", "p50/flr",
              "tput/flr");
  auto opt = [](const std::optional<double>& v, const char* fmt) {
    char b[32];
    if (!v) return std::string("-");
    std::snprintf(b, sizeof b, fmt, *v);
    return std::string(b);
  };
  for (const RunResult& r : runs) {
    const auto q = [&](double p) { return static_cast<double>(r.latency.quantile(p)) / 1000.0; };
    std::printf("%-22s %11.0f %8.2f %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f %8s %7s %8s %8s %8s\n", r.name.c_str(),
                r.commits_per_s(), r.commits_per_s() * static_cast<double>(r.value_bytes) / 1e6, q(0.5), q(0.9),
                q(0.99), q(0.999), q(0.9999), static_cast<double>(r.latency.max()) / 1000.0,
                opt(r.cpu_us_per_commit, "%.1f").c_str(), opt(r.ctx_per_commit, "%.2f").c_str(),
                opt(r.syscalls_per_commit, "%.1f").c_str(), opt(r.p50_to_floor, "%.2f").c_str(),
                opt(r.commits_to_floor, "%.2f").c_str());
  }
  if (rtt || !fsyncs.empty()) std::printf("\nfloors (same run):\n");
  if (rtt) {
    std::printf("  round trip, %s: p50 %.2f us, p99 %.2f us (%llu samples)\n", rtt_name.c_str(),
                static_cast<double>(rtt->quantile(0.5)) / 1000.0, static_cast<double>(rtt->quantile(0.99)) / 1000.0,
                static_cast<unsigned long long>(rtt->count()));
  }
  for (const FsyncFloor& f : fsyncs) {
    std::printf("  pwrite + fdatasync of %7zu B: p50 %.1f us, p99 %.1f us (%llu samples)\n", f.batch_bytes,
                static_cast<double>(f.latency.quantile(0.5)) / 1000.0, static_cast<double>(f.latency.quantile(0.99)) / 1000.0,
                static_cast<unsigned long long>(f.latency.count()));
  }
  if (!trials.empty()) {
    const auto by_window = failover_by_window(trials);
    const auto ms = [](const Histogram& h, double q) { return static_cast<double>(h.quantile(q)) / 1e6; };
    if (kind == "transfer") {
      std::printf("\nfailover (leadership transfer asked of the leader under load, over its client port):\n");
      for (const auto& [w, f] : by_window) {
        std::printf("  w=%-4u %2llu trials, %llu refused: ", w, static_cast<unsigned long long>(f.trials),
                    static_cast<unsigned long long>(f.refused));
        if (f.to_commit.count() == 0) {
          std::printf("no transfer happened\n");
          continue;
        }
        std::printf("request to first commit p50 %.1f ms, p90 %.1f ms, max %.1f ms; "
                    "client unavailable p50 %.1f ms, p90 %.1f ms, max %.1f ms\n",
                    ms(f.to_commit, 0.5), ms(f.to_commit, 0.9), static_cast<double>(f.to_commit.max()) / 1e6,
                    ms(f.unavailable, 0.5), ms(f.unavailable, 0.9), static_cast<double>(f.unavailable.max()) / 1e6);
      }
      return;
    }
    std::printf(kind == "stop" ? "\nfailover (SIGSTOP of the leader under load: a silent leader):\n"
                               : "\nfailover (kill -9 of the leader under load):\n");
    for (const auto& [w, f] : by_window) {
      std::printf("  w=%-4u %2llu trials: kill to first commit p50 %.1f ms, p90 %.1f ms, max %.1f ms; "
                  "client unavailable p50 %.1f ms, max %.1f ms\n",
                  w, static_cast<unsigned long long>(f.trials), ms(f.to_commit, 0.5), ms(f.to_commit, 0.9),
                  static_cast<double>(f.to_commit.max()) / 1e6, ms(f.unavailable, 0.5),
                  static_cast<double>(f.unavailable.max()) / 1e6);
    }
  }
}

json compare_with(const std::string& path, const std::vector<RunResult>& runs, std::string& error) {
  std::ifstream f(path);
  if (!f) {
    error = "--compare: cannot read " + path;
    return nullptr;
  }
  json base;
  try {
    base = json::parse(f);
  } catch (const std::exception& e) {
    error = "--compare: " + path + " is not JSON: " + e.what();
    return nullptr;
  }
  if (!base.is_object() || base.value("schema", "") != "fastzab-bench" || !base.contains("runs") || !base["runs"].is_array()) {
    error = "--compare: " + path + " is not a fastzab-bench result (no schema \"fastzab-bench\" with runs)";
    return nullptr;
  }
  json c;
  c["baseline"] = path;
  c["baseline_git_rev"] = base.contains("build") && base["build"].is_object() ? base["build"].value("git_rev", "unknown") : "unknown";
  c["ratios"] = json::array();
  for (const RunResult& r : runs) {
    for (const json& b : base["runs"]) {
      if (!b.is_object() || b.value("name", "") != r.name) continue;
      auto add = [&](const std::string& metric, const json& baseline, std::optional<double> current) {
        if (!baseline.is_number() || !current || baseline.get<double>() == 0) return;
        c["ratios"].push_back({{"run", r.name}, {"metric", metric}, {"baseline", baseline.get<double>()},
                               {"current", *current}, {"ratio", *current / baseline.get<double>()}});
      };
      add("commits_per_s", b.value("commits_per_s", json()), r.commits_per_s());
      if (b.contains("latency_us") && b["latency_us"].is_object()) {
        add("p50_us", b["latency_us"].value("p50_us", json()), static_cast<double>(r.latency.quantile(0.5)) / 1000.0);
        add("p99_us", b["latency_us"].value("p99_us", json()), static_cast<double>(r.latency.quantile(0.99)) / 1000.0);
      }
      add("cpu_us_per_commit", b.value("cpu_us_per_commit", json()), r.cpu_us_per_commit);
    }
  }
  return c;
}

int run(Options& o) {
  // The report is drawn from the JSON: with --html alone, the JSON goes next to it.
  if (o.json_path.empty() && !o.html_path.empty()) {
    o.json_path = std::filesystem::path(o.html_path).replace_extension(".json").string();
  }
  if (o.quick) {
    o.duration_s = 1;
    o.warmup_s = 0.3;
  }
  for (unsigned w : o.windows) {
    if (w == 0) return std::fprintf(stderr, "fastzab-bench: --windows: a window must be at least 1\n"), 2;
  }
  for (std::size_t s : o.sizes) {
    if (s == 0 || s > (1u << 20)) return std::fprintf(stderr, "fastzab-bench: --sizes: %zu is not in 1..1048576\n", s), 2;
  }
  if (o.in_process && o.failover_trials > 0) {
    return std::fprintf(stderr, "fastzab-bench: --failover-trials needs --processes (kill -9 needs a process)\n"), 2;
  }
  // A transfer moves group 0 only; the other groups' writes would never see a new epoch.
  if (o.failover_kind == "transfer" && o.failover_trials > 0 && o.groups != 1) {
    return std::fprintf(stderr, "fastzab-bench: --failover-kind transfer needs --groups 1 "
                                "(a transfer hands over group 0 only)\n"), 2;
  }
  // The working directory: logs, the config, the histograms unless told otherwise.
  std::string root = o.dir;
  if (root.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    std::string templ = std::string(tmp && *tmp ? tmp : "/tmp") + "/fastzab-bench-XXXXXX";
    if (::mkdtemp(templ.data()) == nullptr) return std::fprintf(stderr, "fastzab-bench: mkdtemp %s failed\n", templ.c_str()), 1;
    root = templ;
  } else {
    std::error_code ec;
    std::filesystem::create_directories(root, ec);
    if (ec || !std::filesystem::is_empty(root, ec)) {
      return std::fprintf(stderr, "fastzab-bench: --dir %s must be an empty or new directory\n", root.c_str()), 2;
    }
  }
  struct Cleanup {
    std::string root;
    bool keep;
    ~Cleanup() {
      if (!keep) {
        std::error_code ec;
        std::filesystem::remove_all(root, ec);
      }
    }
  } cleanup{root, o.keep};

  const double per_run = o.warmup_s + o.duration_s + 0.2;
  const double runs_planned = static_cast<double>(o.sizes.size() * (o.windows.size() + o.rates.size()));
  const double planned = 3.0 + (o.floors ? 4.0 : 0.0) + runs_planned * per_run +
                         static_cast<double>(o.failover_trials * o.failover_windows.size()) * 1.5;
  Progress progress(planned);
  const std::uint64_t started = now_ns();
  const std::string started_at = utc_now();

  std::vector<RunResult> runs;
  std::vector<FailoverTrial> trials;
  std::vector<std::string> notes;
  std::optional<Histogram> rtt;
  std::vector<FsyncFloor> fsyncs;
  std::optional<Waterfall> waterfall;

  if (o.floors) {
    progress.step("floor: round trip over the transport (" + rtt_floor_name(o) + ")", 2);
    auto h = o.transport == "dpdk" ? measure_dpdk_round_trip(root, o.quick ? 2000 : 20000)
                                   : measure_round_trip(o.poll, o.quick ? 2000 : 20000);
    if (h) {
      rtt = *h;
    } else {
      notes.push_back(h.error());
      progress.note(h.error());
    }
  }

  // The 4 KiB fdatasync floor now, before the cluster runs; the observed batch sizes after it.
  auto fsync_floor = [&](std::size_t bytes) {
    progress.step("floor: pwrite + fdatasync of " + std::to_string(bytes) + " B", 0.5);
    auto h = measure_fdatasync(root, bytes, o.quick ? 100 : 500);
    if (h) {
      fsyncs.push_back({bytes, *h});
    } else {
      notes.push_back(h.error());
    }
  };
  if (o.floors && o.sync == "fdatasync") fsync_floor(4096);

  ClusterOptions co;
  co.servers = o.servers;
  co.groups = o.groups;
  co.poll = o.poll;
  co.busy_servers = o.busy_servers;
  co.transport = o.transport;
  co.sync = o.sync;
  co.tick_ms = o.tick_ms;
  co.trace = o.trace;
  co.extra_config = o.server_options;
  co.root = root;
  co.server_bin = o.server_bin;
  std::mt19937_64 rng(started);
  // Process mode: from spawning the servers to the first write acknowledged (an election from
  // empty logs, discovery, synchronization, one commit).
  std::optional<double> cold_start_ms;

  if (o.in_process) {
    progress.step("starting " + std::to_string(o.servers) + " fastzab::Nodes in this process", 3);
    auto cluster = InProcessCluster::start(co);
    if (!cluster) return std::fprintf(stderr, "fastzab-bench: %s\n", cluster.error().c_str()), 1;
    auto leader = (*cluster)->wait_leader(30'000'000'000u);
    if (!leader) return std::fprintf(stderr, "fastzab-bench: %s\n", leader.error().c_str()), 1;
    unsigned target = *leader;
    if (o.target == "follower") target = (*leader + 1) % (*cluster)->size();
    for (std::size_t size : o.sizes) {
      for (unsigned w : o.windows) {
        RunResult r;
        r.workload = "closed";
        r.window = w;
        r.value_bytes = size;
        r.warmup_s = o.warmup_s;
        r.name = "closed w=" + std::to_string(w) + " " + human_size(size);
        progress.step("in-process " + r.name, per_run);
        const InProcessRun ir = (*cluster)->run(target, w, size, o.warmup_s, o.duration_s);
        r.measured_s = ir.measured_s;
        r.commits = ir.commits;
        r.errors = ir.errors;
        r.latency = ir.latency;
        if (r.commits) {
          r.cpu_us_per_commit = static_cast<double>(ir.used.cpu_ns) / 1000.0 / static_cast<double>(r.commits);
          r.ctx_per_commit = static_cast<double>(ir.used.context_switches) / static_cast<double>(r.commits);
          if (ir.allocations) {
            r.allocs_per_commit = static_cast<double>(*ir.allocations) / static_cast<double>(r.commits);
          }
        }
        runs.push_back(std::move(r));
      }
    }
    notes.push_back("in-process: CPU, context switches and heap allocations are this whole process's (the Nodes' threads and the driver); syscalls are not counted");
    for (const RunResult& r : runs) {
      if (r.allocs_per_commit) {
        char line[160];
        std::snprintf(line, sizeof line, "in-process %s: %.3f heap allocations per commit",
                      r.name.c_str(), *r.allocs_per_commit);
        notes.push_back(line);
      }
    }
  } else {
    progress.step("starting " + std::to_string(o.servers) + " fastzab-server processes (poll=" + o.poll + ", sync=" + o.sync + ")", 3);
    auto cluster = ProcessCluster::create(co);
    if (!cluster) return std::fprintf(stderr, "fastzab-bench: %s\n", cluster.error().c_str()), 1;
    ProcessBench bench(o, *cluster);
    const std::uint64_t spawn_ns = now_ns();
    if (auto up = bench.bring_up(); !up) return std::fprintf(stderr, "fastzab-bench: %s\n", up.error().c_str()), 1;
    cold_start_ms = static_cast<double>(now_ns() - spawn_ns) / 1e6;
    if (o.busy_servers != 0 && o.busy_servers < o.servers) {
      notes.push_back("servers 1-" + std::to_string(o.busy_servers) + " busy-poll, each pinned to a CPU of its own; servers " +
                      std::to_string(o.busy_servers + 1) + "-" + std::to_string(o.servers) +
                      " poll=blocking, unpinned (they share those CPUs; a majority needs only the busy ones); leader " +
                      std::to_string(bench.leader()) + " at the start");
    }
    if (!cluster->syscall_note().empty()) notes.push_back(cluster->syscall_note());
    if (!cluster->counter_note().empty()) notes.push_back(cluster->counter_note());
    for (std::size_t size : o.sizes) {
      for (unsigned w : o.windows) {
        progress.step("closed loop, window " + std::to_string(w) + ", " + human_size(size) + " values", per_run);
        auto r = bench.measure("closed", w, std::nullopt, size, o.warmup_s, o.duration_s);
        if (!r) return std::fprintf(stderr, "fastzab-bench: %s\n", r.error().c_str()), 1;
        progress.note(std::to_string(static_cast<long long>(r->commits_per_s())) + " commits/s, p50 " +
                      std::to_string(r->latency.quantile(0.5) / 1000) + " us");
        runs.push_back(std::move(*r));
      }
      for (double rate : o.rates) {
        progress.step("open loop, " + std::to_string(static_cast<long long>(rate)) + " writes/s, " + human_size(size), per_run);
        auto r = bench.measure("open", std::nullopt, rate, size, o.warmup_s, o.duration_s);
        if (!r) return std::fprintf(stderr, "fastzab-bench: %s\n", r.error().c_str()), 1;
        runs.push_back(std::move(*r));
      }
    }
    for (unsigned w : o.failover_windows) {
      for (unsigned i = 0; i < o.failover_trials; ++i) {
        progress.step("failover trial " + std::to_string(i + 1) + "/" + std::to_string(o.failover_trials) + " at window " + std::to_string(w), 1.5);
        auto t = bench.failover(w, rng);
        if (!t) return std::fprintf(stderr, "fastzab-bench: failover: %s\n", t.error().c_str()), 1;
        char b[320];
        if (o.failover_kind != "transfer") {
          std::snprintf(b, sizeof b, "killed %u, new leader %u: first commit after %.1f ms, client saw a %.1f ms gap",
                        t->killed, t->new_leader, t->kill_to_commit_ms, t->unavailable_ms);
        } else if (t->refused) {
          std::snprintf(b, sizeof b, "leader %u REFUSED to transfer to %u (%s): first commit after the request %.1f ms, "
                        "client saw a %.1f ms gap (the last ack before the request came %.1f ms before it); "
                        "%llu write errors, %llu writes given up",
                        t->killed, t->target, t->refusal.c_str(), t->kill_to_commit_ms, t->unavailable_ms, t->quiet_before_ms,
                        static_cast<unsigned long long>(t->write_errors), static_cast<unsigned long long>(t->writes_given_up));
        } else {
          std::snprintf(b, sizeof b, "leader %u handed to %u (asked: %u): first commit by it %.1f ms after the request, "
                        "client saw a %.1f ms gap (the last ack before the request came %.1f ms before it); "
                        "%llu write errors, %llu writes given up",
                        t->killed, t->new_leader, t->target, t->kill_to_commit_ms, t->unavailable_ms, t->quiet_before_ms,
                        static_cast<unsigned long long>(t->write_errors), static_cast<unsigned long long>(t->writes_given_up));
        }
        progress.note(b);
        // Refusals stay in the trials (and are counted per window); the notes say why.
        const std::string trial = "failover trial " + std::to_string(i + 1) + " at window " + std::to_string(w) + ": ";
        if (t->refused) notes.push_back(trial + "leader " + std::to_string(t->killed) + " refused to transfer to " +
                                        std::to_string(t->target) + ": " + t->refusal);
        if (!t->oddity.empty()) notes.push_back(trial + t->oddity);
        if (o.failover_kind == "transfer" && t->writes_given_up > 0) {
          notes.push_back(trial + std::to_string(t->writes_given_up) + " writes unanswered after --client-timeout-ms " +
                          std::to_string(o.client_timeout_ms) + " (their connection given up, their outcome unknown)");
        }
        trials.push_back(*t);
      }
    }
    waterfall = bench.waterfall();
    cluster->stop_all();
  }

  // The fdatasync floor at the batch sizes the leader was seen to write (4 KiB when unknown).
  if (o.floors && o.sync == "fdatasync") {
    std::vector<std::size_t> sizes;
    for (const RunResult& r : runs) {
      if (r.mean_batch_bytes) sizes.push_back(round_up_page(*r.mean_batch_bytes));
    }
    std::sort(sizes.begin(), sizes.end());
    sizes.erase(std::unique(sizes.begin(), sizes.end()), sizes.end());
    for (std::size_t s : sizes) {
      if (s != 4096) fsync_floor(s);
    }
    if (std::none_of(runs.begin(), runs.end(), [](const RunResult& r) { return r.mean_batch_bytes.has_value(); })) {
      notes.push_back("the server does not report its log batches (mntr zk_log_batches): fdatasync floor at 4 KiB only");
    }
  }
  // Ratios to the floors.
  for (RunResult& r : runs) {
    const double p50 = static_cast<double>(r.latency.quantile(0.5));
    const double rtt50 = rtt ? static_cast<double>(rtt->quantile(0.5)) : 0;
    if (o.sync == "none") {
      if (rtt && rtt50 > 0) r.p50_to_floor = p50 / rtt50;
      continue;
    }
    const FsyncFloor* f = fsync_floor_for(fsyncs, r.mean_batch_bytes.value_or(4096));
    if (rtt && f) r.p50_to_floor = p50 / (static_cast<double>(f->latency.quantile(0.5)) + rtt50);
    if (f && r.records_per_sync && r.commits > 0) {
      const double disk_allows = *r.records_per_sync / (static_cast<double>(f->latency.quantile(0.5)) / 1e9);
      r.commits_to_floor = r.commits_per_s() / disk_allows;
    }
  }

  // Histograms, for HdrHistogram's tools.
  std::string hgrm_dir = o.hgrm_dir;
  if (hgrm_dir.empty() && !o.json_path.empty()) {
    hgrm_dir = (std::filesystem::absolute(o.json_path).parent_path() / "hgrm").string();
  }
  if (!hgrm_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(hgrm_dir, ec);
    for (RunResult& r : runs) {
      std::string file = r.name;
      std::replace_if(file.begin(), file.end(), [](char ch) { return !std::isalnum(static_cast<unsigned char>(ch)); }, '-');
      const std::string path = hgrm_dir + "/" + file + ".hgrm";
      std::ofstream(path) << r.latency.percentile_distribution(1000.0);
      // Recorded relative to the JSON's directory (bench/SCHEMA.md), so the pair moves together.
      r.hgrm_file = o.json_path.empty()
                        ? path
                        : std::filesystem::absolute(path).lexically_relative(
                              std::filesystem::absolute(o.json_path).parent_path()).string();
    }
  }

  print_table(runs, rtt, rtt_floor_name(o), fsyncs, trials, o.failover_kind);
  if (cold_start_ms) {
    std::printf("\ncold start: %u servers spawned to the first write acknowledged: %.1f ms\n", o.servers,
                *cold_start_ms);
  }
  if (waterfall) std::printf("\n%s", format_waterfall(*waterfall).c_str());
  if (o.trace && !waterfall) notes.push_back("--trace: no window-1 run, so no waterfall");
  for (const std::string& n : notes) std::printf("note: %s\n", n.c_str());

  json doc;
  doc["schema"] = "fastzab-bench";
  doc["schema_version"] = 1;
  doc["started_at"] = started_at;
  doc["duration_s"] = static_cast<double>(now_ns() - started) / 1e9;
  doc["command"] = o.command;
  doc["machine"] = machine_info();
  doc["build"] = build_info();
  doc["config"] = {{"mode", o.in_process ? "in-process" : "processes"},
                   {"servers", o.servers},
                   {"groups", o.groups},
                   {"transport", o.transport},
                   {"busy_servers", o.busy_servers},
                   {"poll", o.poll},
                   {"sync", o.sync},
                   {"target", o.target},
                   {"connections", o.connections},
                   {"tick_ms", o.tick_ms},
                   {"server_options", o.server_options}};
  json floors;
  if (rtt) {
    floors["round_trip"] = {{"transport", o.transport == "dpdk" ? "dpdk-memif-raw" : "uring"},
                            {"poll", o.transport == "dpdk" ? "busy" : o.poll}, {"samples", rtt->count()}, {"latency_us", percentiles(*rtt, 1000.0, "_us")}};
  } else {
    floors["round_trip"] = nullptr;
  }
  floors["fdatasync"] = json::array();
  for (const FsyncFloor& f : fsyncs) {
    floors["fdatasync"].push_back({{"batch_bytes", f.batch_bytes}, {"samples", f.latency.count()}, {"latency_us", percentiles(f.latency, 1000.0, "_us")}});
  }
  doc["floors"] = floors;
  doc["cold_start_ms"] = cold_start_ms ? json(*cold_start_ms) : json(nullptr);
  doc["runs"] = json::array();
  for (const RunResult& r : runs) {
    json j;
    j["name"] = r.name;
    j["workload"] = r.workload;
    j["window"] = or_null(r.window);
    j["rate_per_s"] = or_null(r.rate);
    j["value_bytes"] = r.value_bytes;
    j["warmup_s"] = r.warmup_s;
    j["measured_s"] = r.measured_s;
    j["commits"] = r.commits;
    j["errors"] = r.errors;
    j["commits_per_s"] = r.commits_per_s();
    j["mb_per_s"] = r.commits_per_s() * static_cast<double>(r.value_bytes) / 1e6;
    j["latency_us"] = percentiles(r.latency, 1000.0, "_us");
    j["cpu_us_per_commit"] = or_null(r.cpu_us_per_commit);
    j["ctx_switches_per_commit"] = or_null(r.ctx_per_commit);
    j["syscalls_per_commit"] = or_null(r.syscalls_per_commit);
    j["allocations_per_commit"] = or_null(r.allocs_per_commit);
    j["mean_batch_bytes"] = or_null(r.mean_batch_bytes);
    j["floor_ratios"] = {{"p50_to_floor", or_null(r.p50_to_floor)}, {"commits_per_s_to_floor", or_null(r.commits_to_floor)}};
    j["histogram_file"] = r.hgrm_file.empty() ? json(nullptr) : json(r.hgrm_file);
    doc["runs"].push_back(j);
  }
  if (trials.empty()) {
    doc["failover"] = nullptr;
  } else {
    json f;
    f["kind"] = o.failover_kind;
    f["trials"] = json::array();
    for (const FailoverTrial& t : trials) {
      f["trials"].push_back({{"window", t.window}, {"killed_server", t.killed}, {"new_leader", t.new_leader},
                             {"kill_to_commit_ms", t.kill_to_commit_ms}, {"unavailable_ms", t.unavailable_ms},
                             {"refused", t.refused}});
    }
    const auto by_window = failover_by_window(trials);
    f["summary"] = json::array();
    for (const auto& [w, s] : by_window) {
      f["summary"].push_back({{"window", w}, {"trials", s.trials}, {"refused", s.refused},
                              {"kill_to_commit_ms", percentiles(s.to_commit, 1e6, "_ms")},
                              {"unavailable_ms", percentiles(s.unavailable, 1e6, "_ms")}});
    }
    doc["failover"] = f;
  }
  doc["waterfall"] = nullptr;
  if (waterfall && !waterfall->sections.empty()) {
    // The path the benchmark's writes took (to the leader, or through a follower).
    const WaterfallSection& sec = waterfall->sections.front();
    json w;
    w["samples"] = sec.writes;
    w["path"] = sec.title;
    w["stages"] = json::array();
    double total = 0;
    for (const WaterfallRow& row : sec.rows) {
      const auto us = [](std::int64_t ns) { return std::max(0.0, static_cast<double>(ns) / 1000.0); };
      w["stages"].push_back({{"stage", row.stage}, {"after", row.from}, {"parallel", row.parallel}, {"total", row.total},
                             {"samples", row.samples}, {"p50_us", us(row.p50_ns)}, {"p90_us", us(row.p90_ns)}});
      if (row.total && row.stage == "client recv") total = us(row.p50_ns);
    }
    w["total_p50_us"] = total;
    doc["waterfall"] = w;
  }
  doc["compare"] = nullptr;
  if (!o.compare_path.empty()) {
    std::string error;
    doc["compare"] = compare_with(o.compare_path, runs, error);
    if (!error.empty()) return std::fprintf(stderr, "fastzab-bench: %s\n", error.c_str()), 2;
    std::printf("\ncompared with %s (ratio = this run / baseline):\n", o.compare_path.c_str());
    for (const json& c : doc["compare"]["ratios"]) {
      std::printf("  %-22s %-18s %12.2f -> %12.2f  x%.3f\n", c["run"].get<std::string>().c_str(), c["metric"].get<std::string>().c_str(),
                  c["baseline"].get<double>(), c["current"].get<double>(), c["ratio"].get<double>());
    }
  }
  doc["notes"] = notes;

  const std::string& json_path = o.json_path;
  if (!json_path.empty()) {
    std::ofstream out(json_path);
    out << doc.dump(2) << "\n";
    if (!out) return std::fprintf(stderr, "fastzab-bench: cannot write %s\n", json_path.c_str()), 1;
    std::fprintf(stderr, "wrote %s\n", json_path.c_str());
  }
  if (!o.html_path.empty()) {
    const std::string script = std::string(FASTZAB_SOURCE_ROOT) + "/bench/cluster/report.py";
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::execlp("python3", "python3", script.c_str(), json_path.c_str(), o.html_path.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    int status = 0;
    if (pid < 0 || ::waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::fprintf(stderr, "fastzab-bench: the HTML report failed (python3 %s %s %s)\n", script.c_str(),
                   json_path.c_str(), o.html_path.c_str());
      return 1;
    }
    std::fprintf(stderr, "wrote %s\n", o.html_path.c_str());
  }
  return 0;
}

}  // namespace
}  // namespace fastzab::bench

int main(int argc, char** argv) {
  using fastzab::bench::Options;
  Options o;
  for (int i = 0; i < argc; ++i) o.command.emplace_back(argv[i]);
  CLI::App cli{"fastzab-bench: the cluster benchmark (bench/README.md; JSON schema in bench/SCHEMA.md)"};
  bool processes = false;
  cli.add_flag("--processes", processes, "fastzab-server processes driven through the client port (default)");
  cli.add_flag("--in-process", o.in_process, "fastzab::Nodes in this process, driven through the embedding API")->excludes("--processes");
  cli.add_option("--servers", o.servers, "servers in the cluster")->check(CLI::Range(1u, 9u))->capture_default_str();
  cli.add_option("--groups", o.groups, "replication groups per server")->check(CLI::Range(1u, 64u))->capture_default_str();
  cli.add_option("--windows", o.windows, "closed loop: writes outstanding, one run each")->delimiter(',')->capture_default_str();
  cli.add_option("--sizes", o.sizes, "value sizes in bytes, one set of runs each")->delimiter(',')->capture_default_str();
  cli.add_option("--rates", o.rates, "open loop: writes per second, one run each (latency from the scheduled send)")->delimiter(',')
      ->check(CLI::PositiveNumber);
  cli.add_option("--duration", o.duration_s, "seconds measured per run")->check(CLI::Range(0.1, 3600.0))->capture_default_str();
  cli.add_option("--warmup", o.warmup_s, "seconds of load before each run is measured")->check(CLI::Range(0.0, 600.0))->capture_default_str();
  cli.add_option("--sync", o.sync, "the servers' log sync")->check(CLI::IsMember({"fdatasync", "none"}))->capture_default_str();
  cli.add_option("--poll", o.poll, "the servers' poll mode")->check(CLI::IsMember({"busy", "adaptive", "blocking"}))->capture_default_str();
  cli.add_option("--busy-servers", o.busy_servers,
                 "with --poll busy: only servers 1..N busy-poll, pinned to a CPU each; the others poll=blocking, "
                 "unpinned, and the leader is handed to server 1 if the election chose one of them (0: all busy)")
      ->check(CLI::Range(0u, 9u))->capture_default_str();
  cli.add_option("--transport", o.transport,
                 "between the servers: uring (io_uring TCP on loopback) or dpdk (a net_memif link per pair of servers; "
                 "the round-trip floor is then a raw memif round trip)")
      ->check(CLI::IsMember({"uring", "dpdk"}))->capture_default_str();
  cli.add_option("--target", o.target, "where the client sends: the leader, or a follower (which forwards)")
      ->check(CLI::IsMember({"leader", "follower"}))->capture_default_str();
  cli.add_option("--connections", o.connections, "client connections (the window is spread over them)")->check(CLI::Range(1u, 1024u))->capture_default_str();
  cli.add_option("--tick-ms", o.tick_ms, "the servers' tickTime")->check(CLI::Range(1u, 60000u))->capture_default_str();
  cli.add_option("--failover-trials", o.failover_trials,
                 "kill (or, with --failover-kind, stop or ask to transfer) the leader under load this many times per failover window")
      ->capture_default_str();
  cli.add_option("--failover-windows", o.failover_windows, "windows of the failover trials")->delimiter(',')->capture_default_str();
  cli.add_option("--failover-kind", o.failover_kind,
                 "kill: SIGKILL the leader; stop: SIGSTOP it (a silent leader, found by leaderSilenceMs); "
                 "transfer: ask it to hand leadership to the next server (client port frame 0x03)")
      ->check(CLI::IsMember({"kill", "stop", "transfer"}))->capture_default_str();
  cli.add_option("--client-timeout-ms", o.client_timeout_ms,
                 "failover: a connection whose oldest write waited this long is dropped and the next server tried")
      ->check(CLI::Range(1u, 600000u))->capture_default_str();
  cli.add_flag("!--no-floors", o.floors, "skip the floors (round trip, fdatasync)");
  cli.add_flag("--trace", o.trace, "run the servers with trace=on (the latency waterfall)");
  cli.add_option("--server-option", o.server_options,
                 "one more zoo.cfg line for every server, KEY=VALUE (e.g. electionFinalizeWaitMs=10); repeatable")
      ->check([](const std::string& kv) {
        const auto eq = kv.find('=');
        return eq == std::string::npos || eq == 0 || kv.find('\n') != std::string::npos
                   ? std::string("must be KEY=VALUE on one line")
                   : std::string();
      });
  cli.add_flag("--quick", o.quick, "1 s runs after 0.3 s of warm-up, fewer floor samples (smoke tests, perf-regress)");
  cli.add_option("--json", o.json_path, "write the results as JSON (bench/SCHEMA.md)");
  cli.add_option("--html", o.html_path, "write an HTML report with a latency CDF and the failover distribution");
  cli.add_option("--hgrm-dir", o.hgrm_dir, "write each run's HdrHistogram percentile distribution here (default: next to --json/--html)");
  cli.add_option("--compare", o.compare_path, "print and record ratios to an earlier --json result")->check(CLI::ExistingFile);
  cli.add_option("--server-bin", o.server_bin, "fastzab-server to run (default: the one built with this benchmark)");
  cli.add_option("--dir", o.dir, "working directory for the cluster (default: a new temporary one)");
  cli.add_flag("--keep", o.keep, "keep the working directory (logs, configs, server output)");
  try {
    cli.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return cli.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "fastzab-bench: %s\n", e.what());
    return 2;
  }
  if (o.transport == "dpdk" && o.in_process) {
    std::fprintf(stderr, "fastzab-bench: --transport dpdk needs --processes (a memif link passes no traffic "
                         "within one process)\n");
    return 2;
  }
  if (o.busy_servers != 0 && (o.in_process || o.poll != "busy")) {
    std::fprintf(stderr, "fastzab-bench: --busy-servers needs --poll busy and --processes\n");
    return 2;
  }
  if (o.transport == "dpdk" && o.groups != 1) {
    std::fprintf(stderr, "fastzab-bench: --transport dpdk supports --groups 1 only\n");
    return 2;
  }
  // Refused before anything starts: busy servers need disjoint CPUs (a usage error, exit 2).
  const unsigned busy = o.busy_servers == 0 ? o.servers : std::min(o.busy_servers, o.servers);
  if (auto cpus = fastzab::bench::cpu_lists(busy, o.in_process ? 1 : o.groups, o.poll,
                                            fastzab::runtime::available_cpus());
      !cpus) {
    std::fprintf(stderr, "fastzab-bench: %s\n", cpus.error().c_str());
    return 2;
  }
  if (o.server_bin.empty()) {
    std::error_code ec;
    const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    o.server_bin = (self.parent_path() / "../../engine/cmd/fastzab-server").lexically_normal().string();
  }
  return fastzab::bench::run(o);
}
