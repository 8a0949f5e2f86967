#include "bench/cluster/process_cluster.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <optional>
#include <random>
#include <span>
#include <sstream>
#include <thread>

#include "engine/runtime/client_protocol.h"
#include "engine/runtime/config.h"

namespace fastzab::bench {

std::uint64_t now_ns() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(ts.tv_nsec);
}

// A free port on 127.0.0.1, below the kernel's ephemeral range when it can: a port from that
// range, once released for a server to bind, can meanwhile become the local end of another
// server's outgoing connection (EADDRINUSE at start-up, seen in CI).
std::expected<std::uint16_t, std::string> free_loopback_port() {
  unsigned ephemeral_low = 32768;
  if (std::FILE* f = std::fopen("/proc/sys/net/ipv4/ip_local_port_range", "r")) {
    unsigned lo = 0, hi = 0;
    if (std::fscanf(f, "%u %u", &lo, &hi) == 2 && lo > 1024) ephemeral_low = lo;
    std::fclose(f);
  }
  const unsigned first = ephemeral_low > 16384 + 1024 ? ephemeral_low - 16384 : 1024;
  static std::uint64_t state = now_ns() ^ (static_cast<std::uint64_t>(::getpid()) << 32);
  auto try_bind = [](std::uint16_t port) -> std::expected<std::uint16_t, int> {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return std::unexpected(errno);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    socklen_t len = sizeof a;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      const int e = errno;
      ::close(fd);
      return std::unexpected(e);
    }
    ::close(fd);
    return ntohs(a.sin_port);
  };
  for (int tries = 0; tries < 64 && first < ephemeral_low; ++tries) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    const auto port = static_cast<std::uint16_t>(first + (state >> 33) % (ephemeral_low - first));
    if (auto p = try_bind(port)) return *p;
  }
  auto p = try_bind(0);
  if (!p) return std::unexpected(std::string("bind 127.0.0.1:0: ") + std::strerror(p.error()));
  return *p;
}

namespace {

// The tracepoint id of raw_syscalls:sys_enter, mounting tracefs when it is not (as root).
std::expected<std::uint64_t, std::string> sys_enter_tracepoint() {
  for (int attempt = 0; attempt < 2; ++attempt) {
    for (const char* base : {"/sys/kernel/tracing", "/sys/kernel/debug/tracing"}) {
      std::ifstream f(std::string(base) + "/events/raw_syscalls/sys_enter/id");
      std::uint64_t id = 0;
      if (f >> id) return id;
    }
    if (attempt == 0 && ::mount("nodev", "/sys/kernel/tracing", "tracefs", 0, nullptr) != 0) {
      return std::unexpected(std::string("no tracefs, and mounting it failed: ") + std::strerror(errno));
    }
  }
  return std::unexpected(std::string("tracefs has no raw_syscalls:sys_enter"));
}

// A counter of task `pid` and every thread it starts later (inherit: a thread that exits adds
// its count to this one, so nothing is lost when the kernel's io_uring workers come and go).
std::expected<int, std::string> open_counter(pid_t pid, std::uint32_t type, std::uint64_t config) {
  perf_event_attr attr{};
  attr.type = type;
  attr.size = sizeof attr;
  attr.config = config;
  attr.inherit = 1;
  const long fd = ::syscall(SYS_perf_event_open, &attr, pid, -1, -1, PERF_FLAG_FD_CLOEXEC);
  if (fd < 0) return std::unexpected(std::string("perf_event_open: ") + std::strerror(errno));
  return static_cast<int>(fd);
}

std::optional<std::uint64_t> read_counter(int fd) {
  std::uint64_t v = 0;
  if (fd < 0 || ::read(fd, &v, sizeof v) != sizeof v) return std::nullopt;
  return v;
}

// utime + stime of the whole process, exited threads included, in ns (10 ms resolution).
std::uint64_t process_cpu_ns(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(f, line);
  const auto close = line.rfind(')');  // the command name may hold spaces
  if (close == std::string::npos) return 0;
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  std::uint64_t utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return (utime + stime) * (1'000'000'000u / static_cast<std::uint64_t>(::sysconf(_SC_CLK_TCK)));
}

}  // namespace

std::expected<std::vector<std::string>, std::string> cpu_lists(
    unsigned servers, unsigned groups, const std::string& poll,
    const std::vector<std::uint32_t>& available) {
  if (poll != "busy") return std::vector<std::string>{};
  const std::size_t needed = std::size_t{servers} * groups;
  if (available.size() < needed) {
    return std::unexpected(
        "--poll busy needs a CPU of its own for each spinning group thread: " +
        std::to_string(servers) + " servers x " + std::to_string(groups) +
        (groups == 1 ? " group" : " groups") + " = " +
        std::to_string(needed) + " CPUs, but this machine has " +
        std::to_string(available.size()) + " (" + runtime::format_cpu_list(available) +
        "); use --poll adaptive or blocking, or fewer --servers or --groups");
  }
  std::vector<std::string> lists;
  for (unsigned s = 0; s < servers; ++s) {
    auto first = available.begin() + static_cast<std::ptrdiff_t>(std::size_t{s} * groups);
    lists.push_back(runtime::format_cpu_list(std::vector<std::uint32_t>(first, first + groups)));
  }
  return lists;
}

static bool connect_loopback(int fd, std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  return ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
}

static std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

std::expected<TransferRequest, std::string> TransferRequest::send(std::uint16_t port, std::uint64_t target) {
  namespace client = runtime::client;
  TransferRequest r;
  r.port_ = port;
  r.fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (r.fd_ < 0) return std::unexpected(std::string("socket: ") + std::strerror(errno));
  if (!connect_loopback(r.fd_, port)) {
    return std::unexpected("transfer: connect 127.0.0.1:" + std::to_string(port) + ": " + std::strerror(errno));
  }
  const int one = 1;
  ::setsockopt(r.fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  client::Message m;
  m.type = client::Type::transfer;
  m.id = 1;
  m.server = target;
  std::vector<std::byte> frame;
  client::encode(m, frame);
  r.sent_ns_ = now_ns();
  // A frame of a few bytes on a fresh connection: the socket buffer takes it whole.
  if (::send(r.fd_, frame.data(), frame.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(frame.size())) {
    return std::unexpected("transfer: send to 127.0.0.1:" + std::to_string(port) + ": " + std::strerror(errno));
  }
  ::fcntl(r.fd_, F_SETFL, ::fcntl(r.fd_, F_GETFL) | O_NONBLOCK);
  return r;
}

TransferRequest::TransferRequest(TransferRequest&& o) noexcept
    : fd_(o.fd_), port_(o.port_), sent_ns_(o.sent_ns_), in_(std::move(o.in_)) {
  o.fd_ = -1;
}

TransferRequest::~TransferRequest() {
  if (fd_ >= 0) ::close(fd_);
}

std::expected<std::optional<TransferAnswer>, std::string> TransferRequest::poll() {
  namespace client = runtime::client;
  const std::string where = "the transfer request to 127.0.0.1:" + std::to_string(port_);
  std::byte buf[4096];
  std::string closed;  // why no more will come, if so
  for (;;) {
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n > 0) {
      in_.insert(in_.end(), buf, buf + n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n < 0 && errno == EINTR) continue;
    closed = n == 0 ? std::string("the server closed the connection") : std::string(std::strerror(errno));
    break;
  }
  client::Message m;
  std::size_t used = 0;
  const auto d = client::decode(std::span<const std::byte>(in_), m, used);
  if (d == client::Decoded::need_more) {
    if (!closed.empty()) return std::unexpected(where + ": no answer (" + closed + ")");
    return std::optional<TransferAnswer>();
  }
  if (d == client::Decoded::bad) return std::unexpected(where + ": the answer is not the client protocol");
  TransferAnswer a;
  a.answered_ns = now_ns();
  if (m.type == client::Type::transfer_ok) {
    a.handed_off = true;
    a.new_leader = m.server;
  } else if (m.type == client::Type::error) {
    a.refusal = std::string(client::to_string(m.code)) + ": " +
                std::string(reinterpret_cast<const char*>(m.body.data()), m.body.size());
  } else {
    char type[8];
    std::snprintf(type, sizeof type, "0x%02x", static_cast<unsigned>(m.type));
    return std::unexpected(where + ": an answer of type " + type);
  }
  return std::optional<TransferAnswer>(std::move(a));
}

std::expected<ProcessCluster, std::string> ProcessCluster::create(const ClusterOptions& options) {
  ProcessCluster c(options);
  if (options.servers == 0 || options.servers > 9) {
    return std::unexpected("--servers must be 1..9, not " + std::to_string(options.servers));
  }
  if (::access(options.server_bin.c_str(), X_OK) != 0) {
    return std::unexpected("fastzab-server not found at " + options.server_bin +
                           " (build it, or pass --server-bin)");
  }
  // The cluster's shared secret: random, readable by the owner only.
  const std::string secret = options.root + "/secret";
  {
    std::random_device rd;
    std::string key;
    for (int i = 0; i < 48; ++i) key += "0123456789abcdef"[rd() % 16];
    const int fd = ::open(secret.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || ::write(fd, key.data(), key.size()) != static_cast<ssize_t>(key.size())) {
      return std::unexpected("cannot write " + secret + ": " + std::strerror(errno));
    }
    ::close(fd);
  }
  std::string cfg = "# written by fastzab-bench\ntickTime=" + std::to_string(options.tick_ms) +
                    "\ninitLimit=10\nsyncLimit=5\nclusterId=4242\nsecretFile=" + secret +
                    "\npoll=" + options.poll + "\nsync=" + options.sync +
                    "\ngroups=" + std::to_string(options.groups) +
                    "\ndataDir=" + options.root + "/data\nclientPort=1\n";
  if (options.trace) cfg += "trace=on\n";
  if (options.transport == "dpdk") {
    const std::string memif = options.root + "/memif";
    if (::mkdir(memif.c_str(), 0700) != 0) return std::unexpected("mkdir " + memif + ": " + std::strerror(errno));
    cfg += "transport=dpdk\ndpdkMemifDir=" + memif + "\n";
  }
  for (const std::string& line : options.extra_config) cfg += line + "\n";
  const unsigned busy = options.busy_servers == 0 ? options.servers : std::min(options.busy_servers, options.servers);
  auto cpus = cpu_lists(busy, options.groups, options.poll, runtime::available_cpus());
  if (!cpus) return std::unexpected(cpus.error());
  for (unsigned id = 1; id <= options.servers; ++id) {
    // The quorum port and groups-1 more after it (group g listens on quorumPort + g): pick a
    // port the kernel gave whose successors are free too, as far as a bind test can tell.
    std::uint16_t quorum = 0;
    for (int tries = 0; tries < 100 && quorum == 0; ++tries) {
      auto p = free_loopback_port();
      if (!p) return std::unexpected(p.error());
      if (*p + options.groups >= 65535u) continue;
      quorum = *p;
    }
    auto election = free_loopback_port();
    auto client = free_loopback_port();
    if (!election || !client) return std::unexpected(std::string("no free port on 127.0.0.1"));
    cfg += "server." + std::to_string(id) + "=127.0.0.1:" + std::to_string(quorum) + ":" +
           std::to_string(*election) + "\n";
    Server s;
    s.client_port = *client;
    s.data_dir = options.root + "/data" + std::to_string(id);
    if (id <= busy && !cpus->empty()) s.cpus = (*cpus)[id - 1];
    if (id > busy) s.poll = "blocking";
    c.servers_[id] = s;
  }
  c.config_path_ = options.root + "/zoo.cfg";
  std::ofstream(c.config_path_) << cfg;
  return c;
}

ProcessCluster::ProcessCluster(ProcessCluster&& o) noexcept
    : options_(std::move(o.options_)),
      config_path_(std::move(o.config_path_)),
      servers_(std::move(o.servers_)),
      syscall_note_(std::move(o.syscall_note_)) {
  o.servers_.clear();
}

ProcessCluster::~ProcessCluster() {
  for (auto& [id, s] : servers_) {
    if (s.pid > 0) kill(id);
  }
}

bool ProcessCluster::busy(unsigned id) const {
  return options_.poll == "busy" && servers_.at(id).poll.empty();
}

std::string ProcessCluster::log_path(unsigned id) const {
  return options_.root + "/server" + std::to_string(id) + ".log";
}

std::expected<void, std::string> ProcessCluster::start(unsigned id) {
  Server& s = servers_.at(id);
  if (s.pid > 0) return {};
  static const std::expected<std::uint64_t, std::string> tracepoint = sys_enter_tracepoint();
  // The child waits on `go` until the parent has attached the syscall counter, so that every
  // thread the server starts inherits it.
  int go[2];
  if (::pipe2(go, O_CLOEXEC) != 0) return std::unexpected(std::string("pipe: ") + std::strerror(errno));
  const std::string port = std::to_string(s.client_port);
  const std::string ident = std::to_string(id);
  const std::string log = log_path(id);
  std::vector<const char*> args = {options_.server_bin.c_str(), "--config", config_path_.c_str(),
                                   "--id", ident.c_str(), "--data-dir", s.data_dir.c_str(),
                                   "--client-port", port.c_str()};
  if (!s.cpus.empty()) {
    args.push_back("--cpus");
    args.push_back(s.cpus.c_str());
  }
  if (!s.poll.empty()) {
    args.push_back("--poll");
    args.push_back(s.poll.c_str());
  }
  args.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) return std::unexpected(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    ::close(go[1]);
    char byte;
    if (::read(go[0], &byte, 1) != 1) ::_exit(127);
    const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (out >= 0) {
      ::dup2(out, 1);
      ::dup2(out, 2);
    }
    ::execv(options_.server_bin.c_str(), const_cast<char* const*>(args.data()));
    ::_exit(127);
  }
  ::close(go[0]);
  s.pid = pid;
  for (int& fd : {std::ref(s.cpu_counter), std::ref(s.switch_counter), std::ref(s.syscall_counter)}) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  if (auto fd = open_counter(pid, PERF_TYPE_SOFTWARE, PERF_COUNT_SW_TASK_CLOCK)) s.cpu_counter = *fd;
  if (auto fd = open_counter(pid, PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CONTEXT_SWITCHES)) {
    s.switch_counter = *fd;
  } else {
    counter_note_ = "CPU from /proc (10 ms ticks) and context switches of live threads only: " + fd.error();
  }
  if (tracepoint) {
    auto fd = open_counter(pid, PERF_TYPE_TRACEPOINT, *tracepoint);
    if (fd) {
      s.syscall_counter = *fd;
    } else {
      syscall_note_ = "syscalls not counted: " + fd.error();
    }
  } else {
    syscall_note_ = "syscalls not counted: " + tracepoint.error();
  }
  const char byte = 1;
  (void)!::write(go[1], &byte, 1);
  ::close(go[1]);
  // Up once the client port answers.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      s.pid = -1;
      return std::unexpected("server " + ident + " exited at start-up (" +
                             (WIFEXITED(status) ? "status " + std::to_string(WEXITSTATUS(status))
                                                : "signal " + std::to_string(WTERMSIG(status))) +
                             "); its output is in " + log + ":\n" + read_file(log));
    }
    if (!ask(id, "ruok").empty()) return {};
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  kill(id);
  return std::unexpected("server " + ident + " did not open its client port within 15 s (see " + log + ")");
}

std::expected<void, std::string> ProcessCluster::start_all() {
  for (auto& [id, s] : servers_) {
    if (auto r = start(id); !r) return r;
  }
  return {};
}

void ProcessCluster::kill(unsigned id) {
  Server& s = servers_.at(id);
  if (s.pid <= 0) return;
  ::kill(s.pid, SIGKILL);
  ::waitpid(s.pid, nullptr, 0);
  s.pid = -1;
  // A DPDK server removes its EAL's runtime directory when it exits, not when killed; it named
  // the directory in its log at start ("runtime directory DIR").
  std::ifstream log(log_path(id));
  const std::string marker = "; runtime directory ";
  for (std::string line; std::getline(log, line);) {
    const auto at = line.find(marker);
    if (at == std::string::npos || line.find("DPDK EAL up") == std::string::npos) continue;
    const std::filesystem::path dir = line.substr(at + marker.size());
    std::error_code ignored;
    if (dir.filename().string().starts_with("fastzab-")) std::filesystem::remove_all(dir, ignored);
  }
}

void ProcessCluster::pause(unsigned id) {
  const Server& s = servers_.at(id);
  if (s.pid > 0) ::kill(s.pid, SIGSTOP);
}

void ProcessCluster::stop_all() {
  for (auto& [id, s] : servers_) {
    if (s.pid > 0) ::kill(s.pid, SIGTERM);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (auto& [id, s] : servers_) {
    while (s.pid > 0 && std::chrono::steady_clock::now() < deadline) {
      if (::waitpid(s.pid, nullptr, WNOHANG) == s.pid) {
        s.pid = -1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (s.pid > 0) kill(id);
  }
}

bool ProcessCluster::running(unsigned id) const { return servers_.at(id).pid > 0; }

std::string ProcessCluster::ask(unsigned id, const char* word) const {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return {};
  timeval tv{.tv_sec = 2, .tv_usec = 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  std::string out;
  if (connect_loopback(fd, servers_.at(id).client_port) &&
      ::send(fd, word, std::strlen(word), MSG_NOSIGNAL) == static_cast<ssize_t>(std::strlen(word))) {
    char buf[4096];
    for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

std::string ProcessCluster::mode(unsigned id) const {
  const std::string srvr = ask(id, "srvr");
  const auto at = srvr.find("Mode: ");
  if (at == std::string::npos) return {};
  const auto end = srvr.find('\n', at);
  return srvr.substr(at + 6, end == std::string::npos ? std::string::npos : end - at - 6);
}

std::expected<unsigned, std::string> ProcessCluster::wait_leader(std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  do {
    for (const auto& [id, s] : servers_) {
      if (s.pid > 0 && mode(id) == "leader") return id;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  } while (std::chrono::steady_clock::now() < deadline);
  return std::unexpected("no leader within " + std::to_string(timeout.count()) + " ms");
}

ResourceSample sample_threads(pid_t pid) {
  ResourceSample total;
  const std::string task_dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = ::opendir(task_dir.c_str());
  if (d == nullptr) return total;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    const std::string t = task_dir + "/" + e->d_name;
    std::ifstream sched(t + "/schedstat");  // on-CPU ns, wait ns, timeslices
    std::uint64_t on_cpu = 0;
    if (sched >> on_cpu) total.cpu_ns += on_cpu;
    std::ifstream status(t + "/status");
    for (std::string line; std::getline(status, line);) {
      if (line.starts_with("voluntary_ctxt_switches:") || line.starts_with("nonvoluntary_ctxt_switches:")) {
        total.context_switches += std::stoull(line.substr(line.find(':') + 1));
      }
    }
  }
  ::closedir(d);
  return total;
}

ResourceSample ProcessCluster::sample() const {
  ResourceSample total;
  std::uint64_t calls = 0;
  bool all_calls = true;
  for (const auto& [id, s] : servers_) {
    if (s.pid <= 0) continue;
    // Inherited perf counters include the threads that exited; /proc's per-thread figures do not.
    const auto cpu = read_counter(s.cpu_counter);
    total.cpu_ns += cpu ? *cpu : process_cpu_ns(s.pid);
    const auto switches = read_counter(s.switch_counter);
    total.context_switches += switches ? *switches : sample_threads(s.pid).context_switches;
    const auto sc = read_counter(s.syscall_counter);
    if (sc) {
      calls += *sc;
    } else {
      all_calls = false;
    }
  }
  if (all_calls) total.syscalls = calls;
  return total;
}

}  // namespace fastzab::bench
