#include "bench/cluster/load.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <deque>
#include <random>

#include "bench/cluster/process_cluster.h"
#include "engine/runtime/client_protocol.h"

namespace fastzab::bench {

namespace client = runtime::client;

struct Load::Connection {
  int fd = -1;
  std::size_t port_index = 0;
  unsigned window = 0;                    // closed loop: this connection's share
  std::deque<std::pair<std::uint64_t, std::uint64_t>> outstanding;  // (id, stamp), send order
  std::vector<std::byte> in;
  std::size_t in_used = 0;
  std::vector<std::byte> out;
  std::size_t out_sent = 0;
  bool want_write = false;
  std::uint64_t reconnect_at_ns = 0;
  // Its writes are write_once, one client (fastzab::WriteId) per connection: this id, and
  // sequences increasing from 1 (kept across reconnections). Never retried.
  std::uint64_t client_id = 0;
  std::uint64_t next_seq = 1;
};

namespace {
constexpr std::uint64_t kErrorBackoffNs = 1'000'000;     // an error answer: retry in 1 ms
constexpr std::uint64_t kReconnectBackoffNs = 2'000'000;  // a broken connection: 2 ms
}  // namespace

Load::Load(const LoadOptions& options) : options_(options) {
  value_.resize(options.value_bytes);
  for (std::size_t i = 0; i < value_.size(); ++i) value_[i] = static_cast<std::byte>('a' + i % 26);
}

Load::Load(Load&& o) noexcept
    : options_(std::move(o.options_)),
      epoll_(o.epoll_),
      connections_(std::move(o.connections_)),
      counters_(o.counters_),
      value_(std::move(o.value_)),
      next_id_(o.next_id_) {
  o.epoll_ = -1;
  o.connections_.clear();
}

Load::~Load() {
  for (Connection* c : connections_) {
    if (c->fd >= 0) ::close(c->fd);
    delete c;
  }
  if (epoll_ >= 0) ::close(epoll_);
}

std::optional<Load> Load::start(const LoadOptions& options, std::string& error) {
  if (options.ports.empty() || options.connections == 0) {
    error = "the load needs a port and at least one connection";
    return std::nullopt;
  }
  if (!options.rate && options.window < options.connections) {
    error = "the window (" + std::to_string(options.window) + ") must be at least the connections (" +
            std::to_string(options.connections) + ")";
    return std::nullopt;
  }
  Load load(options);
  load.epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
  // Consecutive client ids from a random base (not reused by a later run against the same
  // servers): the client port puts a client id's writes in group id % groups, so consecutive
  // ids spread the connections over the groups evenly.
  std::random_device rd;
  const std::uint64_t first_client = ((std::uint64_t{rd()} << 31) ^ rd()) | std::uint64_t{1} << 62;
  for (unsigned i = 0; i < options.connections; ++i) {
    auto* c = new Connection;
    load.connections_.push_back(c);
    c->client_id = first_client + i;
    c->port_index = i % options.ports.size();
    c->window = options.window / options.connections + (i < options.window % options.connections ? 1 : 0);
    c->in.resize(1 << 16);
    if (!load.connect(*c, error)) return std::nullopt;
  }
  return load;
}

bool Load::connect(Connection& c, std::string& error) {
  c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(options_.ports[c.port_index]);
  if (c.fd < 0 || ::connect(c.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    error = "connect 127.0.0.1:" + std::to_string(options_.ports[c.port_index]) + ": " + std::strerror(errno);
    if (c.fd >= 0) ::close(c.fd);
    c.fd = -1;
    return false;
  }
  const int one = 1;
  ::setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  ::fcntl(c.fd, F_SETFL, ::fcntl(c.fd, F_GETFL) | O_NONBLOCK);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = &c;
  ::epoll_ctl(epoll_, EPOLL_CTL_ADD, c.fd, &ev);
  c.in_used = 0;
  c.out.clear();
  c.out_sent = 0;
  c.want_write = false;
  return true;
}

std::uint64_t Load::outstanding() const noexcept {
  std::uint64_t n = 0;
  for (const Connection* c : connections_) n += c->outstanding.size();
  return n;
}

bool Load::send_one(Connection& c, std::uint64_t stamp_ns) {
  if (c.fd < 0) return false;
  client::Message m;
  m.type = client::Type::write_once;
  m.id = next_id_++;
  m.client = c.client_id;
  m.seq = c.next_seq++;
  m.body = value_;
  client::encode(m, c.out);
  c.outstanding.emplace_back(m.id, stamp_ns);
  return true;
}

void Load::flush(Connection& c) {
  while (c.fd >= 0 && c.out_sent < c.out.size()) {
    const ssize_t n = ::send(c.fd, c.out.data() + c.out_sent, c.out.size() - c.out_sent, MSG_NOSIGNAL);
    if (n > 0) {
      c.out_sent += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    broken(c);
    return;
  }
  if (c.fd < 0) return;
  const bool pending = c.out_sent < c.out.size();
  if (!pending) {
    c.out.clear();
    c.out_sent = 0;
  }
  if (pending != c.want_write) {
    epoll_event ev{};
    ev.events = EPOLLIN | (pending ? EPOLLOUT : 0u);
    ev.data.ptr = &c;
    ::epoll_ctl(epoll_, EPOLL_CTL_MOD, c.fd, &ev);
    c.want_write = pending;
  }
}

void Load::broken(Connection& c) {
  if (c.fd >= 0) {
    ::epoll_ctl(epoll_, EPOLL_CTL_DEL, c.fd, nullptr);
    ::close(c.fd);
  }
  c.fd = -1;
  counters_.lost += c.outstanding.size();
  c.outstanding.clear();
  // The next server in the list: a killed leader's clients move to a survivor.
  c.port_index = (c.port_index + 1) % options_.ports.size();
  c.reconnect_at_ns = now_ns() + kReconnectBackoffNs;
}

void Load::on_readable(Connection& c) {
  for (;;) {
    if (c.in.size() - c.in_used < 4096) c.in.resize(c.in.size() * 2);
    const std::size_t space = c.in.size() - c.in_used;
    const ssize_t n = ::recv(c.fd, c.in.data() + c.in_used, space, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
      broken(c);
      return;
    }
    if (n < 0) break;
    c.in_used += static_cast<std::size_t>(n);
    if (static_cast<std::size_t>(n) < space) break;  // the socket is empty for now
  }
  const std::uint64_t now = now_ns();
  std::size_t pos = 0;
  for (;;) {
    client::Message m;
    std::size_t used = 0;
    const auto r = client::decode(std::span(c.in).subspan(pos, c.in_used - pos), m, used);
    if (r == client::Decoded::need_more) break;
    if (r == client::Decoded::bad) {
      broken(c);
      return;
    }
    pos += used;
    // Answers come in send order, except that an error may overtake writes still in flight.
    auto it = c.outstanding.begin();
    if (it == c.outstanding.end() || it->first != m.id) {
      it = std::find_if(c.outstanding.begin(), c.outstanding.end(),
                        [&](const auto& e) { return e.first == m.id; });
      if (it == c.outstanding.end()) continue;  // not ours (cannot happen with this server)
    }
    const std::uint64_t stamp = it->second;
    c.outstanding.erase(it);
    if (m.type == client::Type::write_ok) {
      counters_.latency.record(now > stamp ? now - stamp : 0);
      ++counters_.commits;
      counters_.value_bytes += value_.size();
      if (stop_ && *stop_ && (*stop_)(Ack{m.zxid, stamp, now})) stopped_ = true;
    } else {
      ++counters_.errors;
      retry_at_ns_ = now + kErrorBackoffNs;
    }
  }
  std::memmove(c.in.data(), c.in.data() + pos, c.in_used - pos);
  c.in_used -= pos;
}

void Load::fill(std::uint64_t now) {
  if (options_.reply_timeout_ns > 0) {
    for (Connection* c : connections_) {
      if (c->fd >= 0 && !c->outstanding.empty() && now - c->outstanding.front().second > options_.reply_timeout_ns) {
        broken(*c);
      }
    }
  }
  if (draining_) return;
  for (Connection* c : connections_) {
    if (c->fd < 0 && now >= c->reconnect_at_ns) {
      std::string ignored;
      if (!connect(*c, ignored)) broken(*c);
    }
  }
  if (now < retry_at_ns_) return;
  if (options_.rate) {
    const double per_ns = *options_.rate / 1e9;
    const auto due = static_cast<std::uint64_t>(static_cast<double>(now - open_start_ns_) * per_ns) + 1;
    std::size_t next = scheduled_ % connections_.size();
    while (scheduled_ < due && outstanding() < options_.max_outstanding) {
      Connection& c = *connections_[next];
      next = (next + 1) % connections_.size();
      if (c.fd < 0) {
        if (std::none_of(connections_.begin(), connections_.end(), [](auto* x) { return x->fd >= 0; })) break;
        continue;
      }
      const auto stamp = open_start_ns_ + static_cast<std::uint64_t>(static_cast<double>(scheduled_) / per_ns);
      send_one(c, stamp);
      ++scheduled_;
    }
  } else {
    for (Connection* c : connections_) {
      while (c->fd >= 0 && c->outstanding.size() < c->window) send_one(*c, now);
    }
  }
  for (Connection* c : connections_) {
    if (!c->out.empty()) flush(*c);
  }
}

void Load::run(std::uint64_t until_ns, const std::function<bool(const Ack&)>& stop) {
  stop_ = &stop;
  stopped_ = false;
  if (options_.rate && open_start_ns_ == 0) open_start_ns_ = now_ns();
  epoll_event events[16];
  for (std::uint64_t now = now_ns(); now < until_ns && !stopped_; now = now_ns()) {
    fill(now);
    // Sleep until an answer, the next scheduled send, a retry, or the end.
    std::uint64_t wake = until_ns;
    if (options_.rate && !draining_) {
      wake = std::min(wake, open_start_ns_ + static_cast<std::uint64_t>(static_cast<double>(scheduled_) * 1e9 / *options_.rate));
    }
    if (retry_at_ns_ > now) wake = std::min(wake, retry_at_ns_);
    if (options_.reply_timeout_ns > 0) {
      for (const Connection* c : connections_) {
        if (c->fd >= 0 && !c->outstanding.empty()) {
          wake = std::min(wake, c->outstanding.front().second + options_.reply_timeout_ns + 1);
        }
      }
    }
    for (const Connection* c : connections_) {
      if (c->fd < 0) wake = std::min(wake, std::max(c->reconnect_at_ns, now));
    }
    const std::uint64_t wait = wake > now ? wake - now : 0;
    timespec ts{.tv_sec = static_cast<time_t>(wait / 1'000'000'000u), .tv_nsec = static_cast<long>(wait % 1'000'000'000u)};
    const int n = ::epoll_pwait2(epoll_, events, 16, &ts, nullptr);
    for (int i = 0; i < n; ++i) {
      auto* c = static_cast<Connection*>(events[i].data.ptr);
      if (c->fd < 0) continue;
      if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(*c);
      if (c->fd >= 0 && (events[i].events & EPOLLOUT)) flush(*c);
      if (stopped_) break;
    }
  }
  stop_ = nullptr;
}

void Load::drain(std::uint64_t timeout_ns) {
  draining_ = true;
  const std::uint64_t until = now_ns() + timeout_ns;
  while (outstanding() > 0 && now_ns() < until) run(std::min(until, now_ns() + 10'000'000));
  draining_ = false;
}

}  // namespace fastzab::bench
