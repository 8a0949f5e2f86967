// fastzab-server --config FILE --id N: one server of a cluster.
//
// An embedder of fastzab::Node (engine/include/fastzab/fastzab.h) like any other: the Node's
// group thread runs the replication group; this program's main thread is the Node's application
// thread and serves the client port (epoll, plain sockets), handing writes to the Node and
// taking results from it through the Node's SPSC rings and event fd.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <time.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/include/fastzab/fastzab.h"
#include "engine/runtime/client_protocol.h"
#include "engine/runtime/config.h"
#include "engine/runtime/trace.h"

namespace {

using namespace fastzab;
using runtime::client::Decoded;
using runtime::client::ErrorCode;
using runtime::client::Message;
using runtime::client::Type;
using Clock = std::chrono::steady_clock;

std::atomic<bool> g_stop{false};
std::atomic<int> g_stop_signal{0};
int g_stop_fd = -1;

void on_signal(int sig) {
  g_stop_signal.store(sig);
  g_stop.store(true);
  const std::uint64_t one = 1;
  if (g_stop_fd >= 0) (void)!::write(g_stop_fd, &one, sizeof one);
}

// CLOCK_MONOTONIC in seconds, as Python's time.monotonic() and the benchmark read it.
double monotonic_s() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

std::string hex(std::uint64_t v) {
  char b[24];
  std::snprintf(b, sizeof b, "0x%016" PRIx64, v);
  return b;
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

// ---------------------------------------------------------------- client port

struct Conn {
  int fd = -1;
  std::uint64_t serial = 0;  // descriptors are reused: this names the connection
  std::vector<std::byte> in;
  std::vector<std::byte> out;
  bool decided = false;  // binary protocol or four-letter word chosen
  bool close_after_write = false;
};

struct Pending {
  int fd;
  std::uint64_t serial;  // the connection's, so a reply never reaches a later one on the same fd
  std::uint64_t id;
  Clock::time_point start;
};

class ClientPort {
 public:
  ClientPort(Node& node, std::uint64_t self_id)
      : node_(node), self_id_(self_id), tracing_(node.tracing()) {}

  bool open(std::uint16_t port, std::string& err) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    const int on = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(listen_fd_, 128) != 0) {
      err = "clientPort " + std::to_string(port) + ": " + std::strerror(errno);
      return false;
    }
    ep_ = ::epoll_create1(EPOLL_CLOEXEC);
    add(listen_fd_, EPOLLIN);
    add(node_.event_fd(), EPOLLIN);
    add(g_stop_fd, EPOLLIN);
    return true;
  }

  void run() {
    epoll_event evs[64];
    while (!g_stop.load()) {
      const int n = ::epoll_wait(ep_, evs, 64, 100);
      for (int i = 0; i < n; ++i) {
        const int fd = evs[i].data.fd;
        if (fd == listen_fd_) {
          accept_all();
        } else if (fd == node_.event_fd()) {
          std::uint64_t v;
          (void)!::read(node_.event_fd(), &v, sizeof v);
          drain_results();
          if (node_.failed()) return;  // main() reports why
        } else if (fd == g_stop_fd) {
          return;
        } else {
          if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(fd);
          if (conns_.count(fd) && (evs[i].events & EPOLLOUT)) flush(fd);
        }
      }
      drain_results();  // results pushed between the eventfd read and now
    }
  }

  // On SIGTERM: if this server leads group 0, hand leadership to a follower first, so that a
  // planned restart costs the cluster a hand-over instead of an election. Serves replies while
  // it waits; gives up after `budget`.
  void transfer_before_exit(std::chrono::milliseconds budget) {
    if (node_.status().role != fastzab::Role::leader ||
        node_.status().phase != fastzab::Phase::broadcast) {
      return;
    }
    exit_transfer_tag_ = ++next_tag_;
    if (!node_.transfer_leadership(0, exit_transfer_tag_, 0)) return;
    const auto deadline = Clock::now() + budget;
    while (!exit_transfer_result_ && Clock::now() < deadline && !node_.failed()) {
      node_.wait(std::chrono::milliseconds(10));
      drain_results();
    }
    if (!exit_transfer_result_) {
      std::fprintf(stderr, "fastzab-server: stopping without a leadership transfer: no answer "
                           "within %lld ms\n", static_cast<long long>(budget.count()));
      return;
    }
    if (*exit_transfer_result_ != fastzab::TransferResult::handed_off) return;
    // Stay until the new leader has established itself with this server as its follower: the
    // TRANSFER frames are then known to have reached a quorum. Leaving at once could close the
    // connections (a reset, with this server's unread input) before they were read. A hand-over
    // takes milliseconds; 200 ms covers a loaded host without holding up a cluster that is
    // being stopped as a whole (whose new leader never establishes).
    const auto settled_by = std::min(deadline, Clock::now() + std::chrono::milliseconds(200));
    while (Clock::now() < settled_by && !node_.failed()) {
      const NodeStatus st = node_.status();
      if (st.role == fastzab::Role::follower && st.phase == fastzab::Phase::broadcast) return;
      node_.wait(std::chrono::milliseconds(1));
      drain_results();
    }
  }

 private:
  void add(int fd, std::uint32_t events) {
    epoll_event e{};
    e.events = events;
    e.data.fd = fd;
    ::epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &e);
  }

  void accept_all() {
    while (true) {
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;
      const int on = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
      conns_[fd].fd = fd;
      conns_[fd].serial = ++next_serial_;
      add(fd, EPOLLIN);
    }
  }

  void close_conn(int fd) {
    ::epoll_ctl(ep_, EPOLL_CTL_DEL, fd, nullptr);
    ::close(fd);
    conns_.erase(fd);
  }

  void on_readable(int fd) {
    Conn& c = conns_[fd];
    std::byte buf[65536];
    std::uint64_t read_ns = 0;  // commit tracing: when the request's bytes were read
    while (true) {
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n > 0) {
        if (tracing_) [[unlikely]] read_ns = runtime::trace::now_ns();
        c.in.insert(c.in.end(), buf, buf + n);
        if (c.in.size() > 4 * runtime::client::kMaxBodyBytes) break;
        continue;
      }
      if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
        close_conn(fd);
        return;
      }
      break;
    }
    handle_input(c, read_ns);
  }

  void handle_input(Conn& c, std::uint64_t read_ns) {
    if (!c.decided) {
      if (c.in.size() < 4) return;
      const std::string_view word = runtime::client::four_letter_word(std::span(c.in).first(4));
      if (!word.empty()) {
        const std::string text = four_letter_answer(word);
        c.out.insert(c.out.end(), reinterpret_cast<const std::byte*>(text.data()),
                     reinterpret_cast<const std::byte*>(text.data()) + text.size());
        c.in.clear();
        c.close_after_write = true;
        c.decided = true;
        flush(c.fd);
        return;
      }
      c.decided = true;
    }
    std::size_t off = 0;
    while (!c.close_after_write) {
      Message m;
      std::size_t used = 0;
      const Decoded d = runtime::client::decode(std::span(c.in).subspan(off), m, used);
      if (d == Decoded::need_more) break;
      if (d == Decoded::bad ||
          (m.type != Type::write && m.type != Type::status && m.type != Type::transfer)) {
        ++bad_frames_;
        reply_error(c, m.id, ErrorCode::bad_request, "not a fastzab client frame");
        c.close_after_write = true;
        break;
      }
      off += used;
      if (m.type == Type::transfer) {
        const std::uint64_t tag = ++next_tag_;
        if (!node_.transfer_leadership(0, tag, m.server)) {
          reply_error(c, m.id, ErrorCode::unavailable, "a transfer request is already waiting");
        } else {
          pending_[tag] = Pending{c.fd, c.serial, m.id, Clock::now()};
        }
      } else if (m.type == Type::status) {
        const std::string json = status_json();
        Message r;
        r.type = Type::status_ok;
        r.id = m.id;
        r.body = std::as_bytes(std::span(json));
        runtime::client::encode(r, c.out);
      } else {
        const std::uint64_t tag = ++next_tag_;
        // Each connection writes to one group (with groups=G, connection serials spread them).
        const auto group = static_cast<unsigned>(c.serial % node_.groups());
        if (!node_.propose(group, tag, m.body, read_ns)) {
          reply_error(c, m.id, ErrorCode::unavailable, "the server's queue is full");
        } else {
          pending_[tag] = Pending{c.fd, c.serial, m.id, Clock::now()};
        }
      }
    }
    c.in.erase(c.in.begin(), c.in.begin() + static_cast<std::ptrdiff_t>(off));
    flush(c.fd);
  }

  void reply_error(Conn& c, std::uint64_t id, ErrorCode code, const std::string& text) {
    Message r;
    r.type = Type::error;
    r.id = id;
    r.code = code;
    r.body = std::as_bytes(std::span(text));
    runtime::client::encode(r, c.out);
  }

  void drain_results() {
    // Replies are appended to their connections' buffers and each touched connection is
    // flushed once per batch: one send() per connection, not one per reply.
    touched_.clear();
    node_.poll([&](const Event& e) {
      if (e.kind == Event::Kind::role_changed) {
        // The monotonic time lets a failover or a transfer be broken down from the logs.
        std::fprintf(stderr, "fastzab-server: group %u: %s, leader %" PRIu64 ", epoch %" PRId64 "%s (at %.6f s)\n",
                     e.group, fastzab::to_string(e.role), e.leader, e.epoch,
                     e.established ? ", established" : "", monotonic_s());
        return;
      }
      if (e.kind == Event::Kind::transfer_ended) {
        std::fprintf(stderr, "fastzab-server: group %u: leadership transfer to %" PRIu64 ": %s (at %.6f s)\n",
                     e.group, e.leader, fastzab::to_string(e.transfer), monotonic_s());
        if (e.tag == exit_transfer_tag_) exit_transfer_result_ = e.transfer;
      }
      auto it = pending_.find(e.tag);
      if (it == pending_.end()) return;
      const Pending p = it->second;
      pending_.erase(it);
      auto ci = conns_.find(p.fd);
      if (ci == conns_.end() || ci->second.serial != p.serial) return;  // the client went away
      if (e.kind == Event::Kind::transfer_ended) {
        if (e.transfer == fastzab::TransferResult::handed_off) {
          Message r;
          r.type = Type::transfer_ok;
          r.id = p.id;
          r.server = e.leader;
          runtime::client::encode(r, ci->second.out);
        } else {
          reply_error(ci->second, p.id, ErrorCode::transfer_refused, to_string(e.transfer));
        }
      } else if (e.kind == Event::Kind::write_committed) {
        record_latency(Clock::now() - p.start);
        Message r;
        r.type = Type::write_ok;
        r.id = p.id;
        r.zxid = e.zxid;
        runtime::client::encode(r, ci->second.out);
        if (tracing_) [[unlikely]] replied_.emplace_back(e.group, e.zxid);
      } else {
        const ErrorCode code = e.error == WriteError::no_leader   ? ErrorCode::no_leader
                               : e.error == WriteError::too_large ? ErrorCode::too_large
                               : e.error == WriteError::rejected  ? ErrorCode::rejected
                                                                  : ErrorCode::unavailable;
        reply_error(ci->second, p.id, code, to_string(e.error));
      }
      if (std::find(touched_.begin(), touched_.end(), p.fd) == touched_.end()) {
        touched_.push_back(p.fd);
      }
    });
    if (tracing_ && !replied_.empty()) [[unlikely]] {
      // Taken as the send()s begin: on loopback a send() hands the bytes to the client before
      // it returns, so a stamp taken after it could follow the client's own receive time.
      const std::uint64_t ns = runtime::trace::now_ns();
      for (const auto& [group, zxid] : replied_) node_.trace_reply_written(group, zxid, ns);
      replied_.clear();
    }
    for (int fd : touched_) flush(fd);
  }

  void flush(int fd) {
    auto it = conns_.find(fd);
    if (it == conns_.end()) return;
    Conn& c = it->second;
    while (!c.out.empty()) {
      const ssize_t n = ::send(fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
      if (n > 0) {
        c.out.erase(c.out.begin(), c.out.begin() + n);
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        epoll_event e{};
        e.events = EPOLLIN | EPOLLOUT;
        e.data.fd = fd;
        ::epoll_ctl(ep_, EPOLL_CTL_MOD, fd, &e);
        return;
      }
      close_conn(fd);
      return;
    }
    if (c.close_after_write) {
      close_conn(fd);
      return;
    }
    epoll_event e{};
    e.events = EPOLLIN;
    e.data.fd = fd;
    ::epoll_ctl(ep_, EPOLL_CTL_MOD, fd, &e);
  }

  void record_latency(Clock::duration d) {
    const auto us = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(d).count());
    if (latencies_.size() < kLatencySamples) {
      latencies_.push_back(us);
    } else {
      latencies_[latency_next_++ % kLatencySamples] = us;
    }
    ++writes_ok_;
  }
  std::uint64_t percentile(double q) const {
    if (latencies_.empty()) return 0;
    std::vector<std::uint64_t> v = latencies_;
    const auto k = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1));
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
    return v[k];
  }

  std::string status_json() const {
    const NodeStatus st = node_.status();
    char b[512];
    std::snprintf(b, sizeof b,
                  "{\"id\":%" PRIu64 ",\"role\":\"%s\",\"phase\":\"%s\",\"leader\":%" PRIu64
                  ",\"epoch\":%" PRId64 ",\"last_zxid\":\"%s\",\"committed_zxid\":\"%s\"}",
                  self_id_, st.mode().c_str(), fastzab::to_string(st.phase), st.leader, st.epoch,
                  hex(st.last_zxid).c_str(), hex(st.committed_zxid).c_str());
    return b;
  }

  std::string four_letter_answer(std::string_view w) const {
    const NodeStatus st = node_.status();
    if (w == "ruok") return "imok";
    if (w == "trce") return tracing_ ? node_.trace_dump() : "trace is off (zoo.cfg: trace=on)\n";
    if (w == "srvr") {
      return "Zookeeper version: fastzab 0.1.0\nLatency min/avg/max: 0/" +
             std::to_string(percentile(0.5)) + "/" + std::to_string(percentile(1.0)) +
             "\nReceived: " + std::to_string(st.quorum_frames_in) +
             "\nSent: " + std::to_string(st.quorum_frames_out) +
             "\nConnections: " + std::to_string(conns_.size()) +
             "\nOutstanding: " + std::to_string(pending_.size()) +
             "\nZxid: " + hex(st.last_zxid) + "\nMode: " + st.mode() +
             "\nNode count: " + std::to_string(st.applied) + "\n";
    }
    std::string m;
    auto line = [&](const char* k, const std::string& v) { m += std::string(k) + "\t" + v + "\n"; };
    line("zk_version", "fastzab 0.1.0");
    line("zk_server_state", st.mode());
    line("zk_zab_phase", fastzab::to_string(st.phase));
    line("zk_server_id", std::to_string(self_id_));
    line("zk_epoch", std::to_string(st.epoch));
    line("zk_last_zxid", hex(st.last_zxid));
    line("zk_committed_zxid", hex(st.committed_zxid));
    std::uint64_t commits = 0;
    for (unsigned g = 0; g < node_.groups(); ++g) commits += node_.status(g).applied;
    line("zk_groups", std::to_string(node_.groups()));
    line("zk_commits", std::to_string(commits));
    line("zk_client_writes_ok", std::to_string(writes_ok_));
    line("zk_outstanding_requests", std::to_string(pending_.size()));
    line("zk_num_alive_connections", std::to_string(conns_.size()));
    line("zk_latency_p50_us", std::to_string(percentile(0.50)));
    line("zk_latency_p99_us", std::to_string(percentile(0.99)));
    line("zk_latency_max_us", std::to_string(percentile(1.0)));
    line("zk_client_bad_frames", std::to_string(bad_frames_));
    line("zk_quorum_frames_in", std::to_string(st.quorum_frames_in));
    line("zk_quorum_frames_out", std::to_string(st.quorum_frames_out));
    line("zk_quorum_sessions_up", std::to_string(st.quorum_sessions_up));
    line("zk_quorum_handshakes_refused", std::to_string(st.handshakes_refused));
    line("zk_frames_dropped_garbage", std::to_string(st.connections_dropped_garbage));
    line("zk_quorum_frames_oversized", std::to_string(st.frames_oversized));
    line("zk_snapshots_installed", std::to_string(st.snapshots_installed));
    line("zk_truncations", std::to_string(st.truncations));
    line("zk_records_truncated", std::to_string(st.records_truncated));
    line("zk_log_batches", std::to_string(st.log_batches));
    line("zk_log_bytes_written", std::to_string(st.log_bytes_written));
    line("zk_log_records_written", std::to_string(st.log_records_written));
    return m;
  }

  static constexpr std::size_t kLatencySamples = 65536;
  Node& node_;
  std::uint64_t self_id_;
  int listen_fd_ = -1;
  int ep_ = -1;
  std::unordered_map<int, Conn> conns_;
  std::unordered_map<std::uint64_t, Pending> pending_;
  std::uint64_t next_tag_ = 0;
  std::uint64_t next_serial_ = 0;
  std::uint64_t exit_transfer_tag_ = 0;  // transfer_before_exit()'s request, 0: none
  std::optional<fastzab::TransferResult> exit_transfer_result_;
  std::vector<int> touched_;  // connections with replies to flush, in drain_results()
  bool tracing_ = false;      // commit tracing (trace=on)
  std::vector<std::pair<unsigned, std::uint64_t>> replied_;  // tracing: (group, zxid) replied
  std::uint64_t bad_frames_ = 0;
  std::uint64_t writes_ok_ = 0;
  std::vector<std::uint64_t> latencies_;
  std::size_t latency_next_ = 0;
};

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

  // The client port number: read here too, so that a taken port is an error before the node
  // starts (the Node reads the same file).
  auto cfg = runtime::load_config(config_path);
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
  options.data_dir = data_dir;
  options.cpus = cpus;
  if (client_port != 0) cfg->client_port = static_cast<std::uint16_t>(client_port);
  options.id = id;
  auto node = Node::start(options, app_ptrs);
  if (!node) {
    std::fprintf(stderr, "fastzab-server: %s\n", node.error().c_str());
    // Start-up refusals of the configuration are usage errors; the rest (log, port) are not.
    return node.error().find("transport=dpdk") != std::string::npos ||
                   node.error().find("groups=") != std::string::npos ||
                   node.error().find("poll=busy") != std::string::npos ||
                   node.error().find("cpus: ") != std::string::npos
               ? 2
               : 1;
  }
  ClientPort port(**node, id);
  std::string err;
  if (!port.open(cfg->client_port, err)) {
    std::fprintf(stderr, "fastzab-server: %s\n", err.c_str());
    return 1;
  }
  const runtime::ServerEntry& me = cfg->servers[*index];
  std::fprintf(stderr, "fastzab-server: id %" PRIu64 " ready: clientPort %u, quorum %s:%u\n", id,
               static_cast<unsigned>(cfg->client_port), me.host.c_str(),
               static_cast<unsigned>(me.quorum_port));
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
