#include "engine/cmd/client_port.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "engine/runtime/trace.h"

namespace fastzab::cmd {

namespace {

using runtime::client::Decoded;
using runtime::client::ErrorCode;
using runtime::client::Message;
using runtime::client::Type;

// One read() takes at most this much; frames up to it need no share of the input budget (a
// connection holds at most two reads' worth of them).
constexpr std::size_t kReadChunk = 64u << 10;
// The smallest share of globalOutstandingLimit a connection gets, however many connections there
// are: enough to pipeline a little.
constexpr std::uint32_t kMinOutstandingShare = 8;
// Reads per readiness event and connection, so that one fast sender cannot starve the others.
constexpr int kReadsPerEvent = 4;
constexpr auto kSweepPeriod = std::chrono::milliseconds(100);
constexpr auto kAcceptPause = std::chrono::milliseconds(100);
// Buffers larger than this go back to the allocator once empty: a burst must not pin memory.
constexpr std::size_t kKeepCapacity = 256u << 10;

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

std::string address(std::uint32_t source) {
  char b[INET_ADDRSTRLEN] = "?";
  in_addr a{};
  a.s_addr = source;
  ::inet_ntop(AF_INET, &a, b, sizeof b);
  return b;
}

// The whole length (prefix included) of the frame `in` starts with; `in` holds at least 4 bytes.
std::size_t announced_frame_bytes(const InBytes& in) {
  std::uint32_t len = 0;
  for (std::size_t i = 4; i-- > 0;) len = (len << 8) | static_cast<std::uint8_t>(in[i]);
  return std::size_t{4} + len;
}

template <typename V>
void release_if_large(V& v) {
  if (v.empty() && v.capacity() > kKeepCapacity) V().swap(v);
}

}  // namespace

ClientPort::ClientPort(Node& node, std::uint64_t self_id, const ClientPortLimits& limits,
                       const std::atomic<bool>& stop, int stop_fd)
    : node_(node),
      self_id_(self_id),
      limits_(limits),
      stop_(stop),
      stop_fd_(stop_fd),
      tracing_(node.tracing()) {
  limits_.total = std::max<std::uint32_t>(limits_.total, 1);
}

ClientPort::~ClientPort() {
  for (auto& [fd, c] : conns_) ::close(fd);
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (spare_fd_ >= 0) ::close(spare_fd_);
  if (ep_ >= 0) ::close(ep_);
}

bool ClientPort::open(std::uint16_t port, std::string& err) {
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
  // Kept open so that, when descriptors run out, closing it frees one to accept and close a
  // waiting connection: the listening socket then stops reporting it (no busy loop).
  spare_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ep_ = ::epoll_create1(EPOLL_CLOEXEC);
  add(listen_fd_, EPOLLIN);
  add(node_.event_fd(), EPOLLIN);
  add(stop_fd_, EPOLLIN);
  return true;
}

void ClientPort::run() {
  epoll_event evs[64];
  while (!stop_.load()) {
    const int n = ::epoll_wait(ep_, evs, 64, static_cast<int>(kSweepPeriod.count()));
    for (int i = 0; i < n; ++i) {
      const int fd = evs[i].data.fd;
      const std::uint32_t ev = evs[i].events;
      if (fd == listen_fd_) {
        accept_all();
      } else if (fd == node_.event_fd()) {
        std::uint64_t v;
        (void)!::read(node_.event_fd(), &v, sizeof v);
        drain_results();
        if (node_.failed()) return;  // main() reports why
      } else if (fd == stop_fd_) {
        return;
      } else {
        auto it = conns_.find(fd);
        if (it == conns_.end()) continue;
        if (ev & (EPOLLHUP | EPOLLERR)) {
          // Gone both ways (or reset): nobody is left to take a reply.
          close_conn(fd);
          continue;
        }
        if (ev & EPOLLIN) on_readable(it->second);
        if ((ev & EPOLLOUT) && conns_.count(fd)) flush(fd);
      }
    }
    drain_results();  // results pushed between the eventfd read and now
    const auto now = Clock::now();
    if (!accept_armed_ && now >= accept_paused_until_) {
      epoll_event e{};
      e.events = EPOLLIN;
      e.data.fd = listen_fd_;
      ::epoll_ctl(ep_, EPOLL_CTL_MOD, listen_fd_, &e);
      accept_armed_ = true;
    }
    if (now - last_sweep_ >= kSweepPeriod) sweep(now);
  }
}

void ClientPort::transfer_before_exit(std::chrono::milliseconds budget) {
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

void ClientPort::add(int fd, std::uint32_t events) {
  epoll_event e{};
  e.events = events;
  e.data.fd = fd;
  ::epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &e);
}

void ClientPort::accept_all() {
  while (true) {
    sockaddr_in from{};
    socklen_t from_len = sizeof from;
    const int fd = ::accept4(listen_fd_, reinterpret_cast<sockaddr*>(&from), &from_len,
                             SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
      const int err = errno;
      ++counters_.accept_errors;
      if ((err == EMFILE || err == ENFILE) && spare_fd_ >= 0) {
        ::close(spare_fd_);
        const int shed = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (shed >= 0) ::close(shed);
        spare_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        log_rate_limited(std::string("refused a client connection: accept: ") +
                         std::strerror(err));
        if (shed >= 0 && spare_fd_ >= 0) continue;
      } else {
        log_rate_limited(std::string("accept on the client port failed: ") + std::strerror(err));
      }
      // Nothing to shed with: stop watching the listening socket for a moment rather than
      // spinning on a readiness that accept() cannot clear.
      epoll_event e{};
      e.events = 0;
      e.data.fd = listen_fd_;
      ::epoll_ctl(ep_, EPOLL_CTL_MOD, listen_fd_, &e);
      accept_armed_ = false;
      accept_paused_until_ = Clock::now() + kAcceptPause;
      return;
    }
    const std::uint32_t source = from_len >= sizeof from ? from.sin_addr.s_addr : 0;
    if (conns_.size() >= limits_.total) {
      refuse_accepted(fd, counters_.refused_total, limits_.total,
                      "connections in all (maxCnxns, or what the descriptor limit leaves after "
                      "the log's and the quorum's)");
      continue;
    }
    std::uint32_t& from_source = per_source_[source];
    if (limits_.per_source != 0 && from_source >= limits_.per_source) {
      refuse_accepted(fd, counters_.refused_per_source, limits_.per_source,
                      "connections from " + address(source) + " (maxClientCnxns)");
      continue;
    }
    ++from_source;
    const int on = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    Conn& c = conns_[fd];
    c = Conn{};
    c.fd = fd;
    c.serial = ++next_serial_;
    c.source = source;
    c.events = EPOLLIN;
    add(fd, EPOLLIN);
  }
}

void ClientPort::refuse_accepted(int fd, std::uint64_t& counter, std::uint32_t limit,
                                 const std::string& what) {
  ::close(fd);
  ++counter;
  log_rate_limited("refused a client connection: already " + std::to_string(limit) + " " + what);
}

void ClientPort::log_rate_limited(const std::string& line) {
  const auto now = Clock::now();
  if (now - log_window_ < std::chrono::seconds(1)) {
    ++log_suppressed_;
    return;
  }
  if (log_suppressed_ > 0) {
    std::fprintf(stderr, "fastzab-server: client port: %" PRIu64
                         " more refusals in the last second (counted in mntr)\n",
                 log_suppressed_);
  }
  std::fprintf(stderr, "fastzab-server: client port: %s (at %.6f s)\n", line.c_str(),
               monotonic_s());
  log_window_ = now;
  log_suppressed_ = 0;
}

void ClientPort::close_conn(int fd) {
  auto it = conns_.find(fd);
  if (it == conns_.end()) return;
  Conn& c = it->second;
  release_frame(c);
  if (c.outstanding > 0) --active_writers_;  // its pending requests find no connection
  if (c.waiting_budget) {
    budget_waiters_.erase(std::remove(budget_waiters_.begin(), budget_waiters_.end(), fd),
                          budget_waiters_.end());
  }
  auto src = per_source_.find(c.source);
  if (src != per_source_.end() && --src->second == 0) per_source_.erase(src);
  ::epoll_ctl(ep_, EPOLL_CTL_DEL, fd, nullptr);
  ::close(fd);
  conns_.erase(it);
  wake_budget_waiters();
}

void ClientPort::on_readable(Conn& c) {
  const int fd = c.fd;
  const std::uint64_t serial = c.serial;
  for (int round = 0; round < kReadsPerEvent; ++round) {
    if (!(c.events & EPOLLIN)) return;  // paused since the event was reported
    const std::size_t had = c.in.size();
    c.in.resize(had + kReadChunk);  // uninitialized: the kernel fills what it reads
    const ssize_t n = ::read(fd, c.in.data() + had, kReadChunk);
    c.in.resize(had + static_cast<std::size_t>(std::max<ssize_t>(n, 0)));
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) close_conn(fd);
      return;
    }
    std::uint64_t read_ns = 0;  // commit tracing: when the request's bytes were read
    if (tracing_) [[unlikely]] read_ns = runtime::trace::now_ns();
    if (c.skip > 0) {  // the rest of a too-large value: drop it from what was just read
      const auto at = static_cast<std::ptrdiff_t>(
          std::min<std::uint64_t>(c.skip, static_cast<std::uint64_t>(n)));
      c.skip -= static_cast<std::uint64_t>(at);
      const auto tail = c.in.begin() + static_cast<std::ptrdiff_t>(had);
      c.in.erase(tail, tail + at);
    }
    handle_input(c, read_ns);
    auto it = conns_.find(fd);
    if (it == conns_.end() || it->second.serial != serial) return;  // closed
    if (static_cast<std::size_t>(n) < kReadChunk) return;
  }
}

bool ClientPort::take_requests(const Conn& c) const {
  return !c.close_after_write && !c.paused && !c.waiting_budget && c.skip == 0 &&
         c.out.size() - c.out_sent < limits_.output_bytes &&
         c.outstanding < outstanding_limit(c);
}

std::uint32_t ClientPort::outstanding_limit(const Conn& c) const noexcept {
  // A connection without requests in flight counts itself in: its first request is always
  // within its share.
  const std::uint32_t sharers = active_writers_ + (c.outstanding == 0 ? 1 : 0);
  const std::uint32_t share = std::max(kMinOutstandingShare, limits_.global_outstanding / sharers);
  return std::min(limits_.outstanding, share);
}

void ClientPort::started_request(Conn& c) noexcept {
  if (c.outstanding++ == 0) ++active_writers_;
}

void ClientPort::finished_request(Conn& c) noexcept {
  if (--c.outstanding == 0) --active_writers_;
}

void ClientPort::handle_input(Conn& c, std::uint64_t read_ns) {
  if (!c.decided) {
    if (c.in.size() < 4) {
      if (c.frame_since == Clock::time_point{}) c.frame_since = Clock::now();
      return;
    }
    const std::string_view word = runtime::client::four_letter_word(std::span(c.in).first(4));
    c.decided = true;
    if (!word.empty()) {
      const std::string text = four_letter_answer(word);
      c.out.insert(c.out.end(), reinterpret_cast<const std::byte*>(text.data()),
                   reinterpret_cast<const std::byte*>(text.data()) + text.size());
      c.in.clear();
      c.close_after_write = true;
      flush(c.fd);
      return;
    }
  }
  const auto now = Clock::now();
  std::size_t off = 0;
  bool completed = false;
  while (take_requests(c)) {
    Message m;
    std::size_t used = 0;
    const Decoded d = runtime::client::decode(std::span(c.in).subspan(off), m, used);
    if (d == Decoded::need_more) break;
    completed = true;
    release_frame(c);
    if (d == Decoded::bad ||
        (d == Decoded::message && m.type != Type::write && m.type != Type::write_once &&
         m.type != Type::status && m.type != Type::transfer)) {
      ++counters_.bad_frames;
      reply_error(c, m.id, ErrorCode::bad_request, "not a fastzab client frame");
      c.close_after_write = true;
      off = c.in.size();
      break;
    }
    if (d == Decoded::too_large) {
      // Answered now; the value's bytes are dropped as they arrive, never held.
      ++counters_.too_large;
      reply_error(c, m.id, ErrorCode::too_large,
                  "the value passes the largest entry (" +
                      std::to_string(runtime::client::kMaxValueBytes) + " bytes)");
      const std::size_t have = c.in.size() - off;
      const std::size_t take = std::min(used, have);
      off += take;
      c.skip = used - take;
      continue;
    }
    off += used;
    if (m.type == Type::transfer) {
      const std::uint64_t tag = ++next_tag_;
      if (!node_.transfer_leadership(0, tag, m.server)) {
        reply_error(c, m.id, ErrorCode::unavailable, "a transfer request is already waiting");
      } else {
        pending_[tag] = Pending{c.fd, c.serial, m.id, now};
        started_request(c);
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
      // Each connection writes to one group (with groups=G, connection serials spread them);
      // a write_once to its client id's group, so that a retry on another connection finds the
      // group that knows the id.
      const bool once = m.type == Type::write_once;
      const auto group = static_cast<unsigned>((once ? m.client : c.serial) % node_.groups());
      if (!(once ? node_.propose(group, tag, m.body, fastzab::WriteId{m.client, m.seq}, read_ns)
                 : node_.propose(group, tag, m.body, read_ns))) {
        reply_error(c, m.id, ErrorCode::unavailable, "the server's queue is full");
      } else {
        pending_[tag] = Pending{c.fd, c.serial, m.id, now};
        started_request(c);
      }
    }
  }
  c.in.erase(c.in.begin(), c.in.begin() + static_cast<std::ptrdiff_t>(off));
  release_if_large(c.in);
  // The frame clock runs from the last whole frame while part of another is held.
  if (c.in.empty() && c.skip == 0) {
    c.frame_since = {};
  } else if (completed || c.frame_since == Clock::time_point{}) {
    c.frame_since = now;
  }
  if (!c.close_after_write && c.skip == 0 && c.reserved == 0 && !c.waiting_budget &&
      c.in.size() >= 4) {
    reserve_frame(c);
  }
  flush(c.fd);
}

bool ClientPort::reserve_frame(Conn& c) {
  const std::size_t frame = announced_frame_bytes(c.in);
  // Small frames, and lengths the decoder refuses or skips, need no share.
  if (frame <= kReadChunk || frame > std::size_t{4} + runtime::client::kMaxBodyBytes) return true;
  if (budget_waiters_.empty() && budget_used_ + frame <= limits_.input_budget_bytes) {
    budget_used_ += frame;
    c.reserved = frame;
    return true;
  }
  c.waiting_budget = true;
  budget_waiters_.push_back(c.fd);
  ++counters_.budget_waits;
  return false;
}

void ClientPort::release_frame(Conn& c) {
  if (c.reserved == 0) return;
  budget_used_ -= c.reserved;
  c.reserved = 0;
  wake_budget_waiters();
}

void ClientPort::wake_budget_waiters() {
  // First come, first served: a large frame is not overtaken by later ones.
  std::size_t woken = 0;
  for (; woken < budget_waiters_.size(); ++woken) {
    auto it = conns_.find(budget_waiters_[woken]);
    if (it == conns_.end()) continue;
    Conn& c = it->second;
    const std::size_t frame = announced_frame_bytes(c.in);
    if (budget_used_ + frame > limits_.input_budget_bytes) break;
    budget_used_ += frame;
    c.reserved = frame;
    c.waiting_budget = false;
    c.frame_since = Clock::now();  // its time starts when it may be read
    update_interest(c);
  }
  budget_waiters_.erase(budget_waiters_.begin(),
                        budget_waiters_.begin() + static_cast<std::ptrdiff_t>(woken));
}

void ClientPort::update_interest(Conn& c) {
  const std::size_t unsent = c.out.size() - c.out_sent;
  if (!c.paused) {
    if (unsent >= limits_.output_bytes) {
      c.paused = true;
      ++counters_.paused_output;
    } else if (c.outstanding >= outstanding_limit(c)) {
      c.paused = true;
      ++counters_.paused_outstanding;
    }
  } else if (unsent <= limits_.output_bytes / 2 && c.outstanding <= outstanding_limit(c) / 2) {
    c.paused = false;
    // A partial frame was not the client's fault while paused.
    if (c.frame_since != Clock::time_point{}) c.frame_since = Clock::now();
  }
  std::uint32_t want = 0;
  if (!c.paused && !c.waiting_budget && !c.close_after_write) want |= EPOLLIN;
  if (unsent > 0) want |= EPOLLOUT;
  if (want == c.events) return;
  epoll_event e{};
  e.events = want;
  e.data.fd = c.fd;
  ::epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &e);
  c.events = want;
}

void ClientPort::reply_error(Conn& c, std::uint64_t id, ErrorCode code, const std::string& text) {
  Message r;
  r.type = Type::error;
  r.id = id;
  r.code = code;
  r.body = std::as_bytes(std::span(text));
  runtime::client::encode(r, c.out);
}

void ClientPort::drain_results() {
  // Replies are appended to their connections' buffers and each touched connection is
  // flushed once per batch: one send() per connection, not one per reply.
  touched_.clear();
  node_.poll([&](const Event& e) {
    if (e.kind == Event::Kind::role_changed) {
      // The monotonic time lets a failover or a transfer be broken down from the logs.
      std::fprintf(stderr, "fastzab-server: group %u: %s, leader %" PRIu64 ", epoch %" PRId64 "%s%s%s (at %.6f s)\n",
                   e.group, fastzab::to_string(e.role), e.leader, e.epoch,
                   e.established ? ", established" : "", e.why != nullptr ? ": " : "",
                   e.why != nullptr ? e.why : "", monotonic_s());
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
    Conn& c = ci->second;
    finished_request(c);
    if (e.kind == Event::Kind::transfer_ended) {
      if (e.transfer == fastzab::TransferResult::handed_off) {
        Message r;
        r.type = Type::transfer_ok;
        r.id = p.id;
        r.server = e.leader;
        runtime::client::encode(r, c.out);
      } else {
        reply_error(c, p.id, ErrorCode::transfer_refused, to_string(e.transfer));
      }
    } else if (e.kind == Event::Kind::write_committed) {
      record_latency(Clock::now() - p.start);
      Message r;
      r.type = Type::write_ok;
      r.id = p.id;
      r.zxid = e.zxid;
      runtime::client::encode(r, c.out);
      if (tracing_) [[unlikely]] replied_.emplace_back(e.group, e.zxid);
    } else {
      // The code is the outcome itself; stopped goes out as unknown_outcome (it may have been
      // proposed), never as `unavailable`, which promises that nothing was.
      reply_error(c, p.id, runtime::client::error_code(e.outcome), to_string(e.outcome));
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

void ClientPort::flush(int fd) {
  auto it = conns_.find(fd);
  if (it == conns_.end()) return;
  Conn& c = it->second;
  const auto now = Clock::now();
  while (c.out_sent < c.out.size()) {
    const ssize_t n = ::send(fd, c.out.data() + c.out_sent, c.out.size() - c.out_sent,
                             MSG_NOSIGNAL);
    if (n > 0) {
      c.out_sent += static_cast<std::size_t>(n);
      c.out_since = now;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    close_conn(fd);
    return;
  }
  if (c.out_sent == c.out.size()) {
    c.out.clear();
    c.out_sent = 0;
    c.out_since = {};
    release_if_large(c.out);
    if (c.close_after_write) {
      close_conn(fd);
      return;
    }
  } else {
    if (c.out_since == Clock::time_point{}) c.out_since = now;
    if (c.out_sent >= kReadChunk && c.out_sent * 2 >= c.out.size()) {
      c.out.erase(c.out.begin(), c.out.begin() + static_cast<std::ptrdiff_t>(c.out_sent));
      c.out_sent = 0;
    }
  }
  const bool was_paused = c.paused || c.waiting_budget;
  update_interest(c);
  // Requests read before a pause wait in `in`: take them now, since no new bytes may come.
  if (was_paused && take_requests(c) && !c.in.empty()) handle_input(c, 0);
}

void ClientPort::sweep(Clock::time_point now) {
  last_sweep_ = now;
  std::vector<int> late;
  for (const auto& [fd, c] : conns_) {
    // A frame the server is not reading (paused, or waiting for the budget) is not late.
    const bool frame_late = c.frame_since != Clock::time_point{} && !c.paused &&
                            !c.waiting_budget && now - c.frame_since > limits_.timeout;
    const bool replies_late = c.out_since != Clock::time_point{} && now - c.out_since > limits_.timeout;
    if (frame_late || replies_late) late.push_back(fd);
  }
  for (int fd : late) {
    const Conn& c = conns_.at(fd);
    ++counters_.dropped_timeout;
    log_rate_limited("dropped a client connection from " + address(c.source) + ": " +
                     (c.out_since != Clock::time_point{} && now - c.out_since > limits_.timeout
                          ? "replies not taken"
                          : "a request frame not completed") +
                     " within clientTimeoutMs=" + std::to_string(limits_.timeout.count()));
    close_conn(fd);
  }
}

void ClientPort::record_latency(Clock::duration d) {
  const auto us = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(d).count());
  if (latencies_.size() < kLatencySamples) {
    latencies_.push_back(us);
  } else {
    latencies_[latency_next_++ % kLatencySamples] = us;
  }
  ++writes_ok_;
}

std::uint64_t ClientPort::percentile(double q) const {
  if (latencies_.empty()) return 0;
  std::vector<std::uint64_t> v = latencies_;
  const auto k = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

std::string ClientPort::status_json() const {
  const NodeStatus st = node_.status();
  char b[512];
  std::snprintf(b, sizeof b,
                "{\"id\":%" PRIu64 ",\"role\":\"%s\",\"phase\":\"%s\",\"leader\":%" PRIu64
                ",\"epoch\":%" PRId64 ",\"last_zxid\":\"%s\",\"committed_zxid\":\"%s\"}",
                self_id_, st.mode().c_str(), fastzab::to_string(st.phase), st.leader, st.epoch,
                hex(st.last_zxid).c_str(), hex(st.committed_zxid).c_str());
  return b;
}

std::string ClientPort::four_letter_answer(std::string_view w) const {
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
  line("zk_max_client_cnxns", std::to_string(limits_.per_source));
  line("zk_global_outstanding_limit", std::to_string(limits_.global_outstanding));
  line("zk_max_cnxns", std::to_string(limits_.total));
  line("zk_latency_p50_us", std::to_string(percentile(0.50)));
  line("zk_latency_p99_us", std::to_string(percentile(0.99)));
  line("zk_latency_max_us", std::to_string(percentile(1.0)));
  line("zk_client_bad_frames", std::to_string(counters_.bad_frames));
  line("zk_client_too_large", std::to_string(counters_.too_large));
  line("zk_client_refused_per_source", std::to_string(counters_.refused_per_source));
  line("zk_client_refused_total", std::to_string(counters_.refused_total));
  line("zk_client_accept_errors", std::to_string(counters_.accept_errors));
  line("zk_client_paused_output", std::to_string(counters_.paused_output));
  line("zk_client_paused_outstanding", std::to_string(counters_.paused_outstanding));
  line("zk_client_input_budget_waits", std::to_string(counters_.budget_waits));
  line("zk_client_input_budget_used_bytes", std::to_string(budget_used_));
  line("zk_client_dropped_timeout", std::to_string(counters_.dropped_timeout));
  line("zk_quorum_frames_in", std::to_string(st.quorum_frames_in));
  line("zk_quorum_frames_out", std::to_string(st.quorum_frames_out));
  line("zk_quorum_sessions_up", std::to_string(st.quorum_sessions_up));
  line("zk_quorum_handshakes_refused", std::to_string(st.handshakes_refused));
  line("zk_quorum_handshakes_evicted", std::to_string(st.handshakes_evicted));
  line("zk_quorum_answers_throttled", std::to_string(st.quorum_answers_throttled));
  line("zk_frames_dropped_garbage", std::to_string(st.connections_dropped_garbage));
  line("zk_quorum_frames_oversized", std::to_string(st.frames_oversized));
  line("zk_snapshots_installed", std::to_string(st.snapshots_installed));
  line("zk_truncations", std::to_string(st.truncations));
  line("zk_records_truncated", std::to_string(st.records_truncated));
  line("zk_recovery_records_cut", std::to_string(st.recovery_records_cut));
  line("zk_state_lost", std::to_string(st.state_lost));
  line("zk_log_batches", std::to_string(st.log_batches));
  line("zk_log_bytes_written", std::to_string(st.log_bytes_written));
  line("zk_log_records_written", std::to_string(st.log_records_written));
  return m;
}

}  // namespace fastzab::cmd
