#include "network.h"

#include <algorithm>

namespace fastzab::sim {

Network::Network(std::size_t nodes, Rng& rng, EventQueue& queue, NetParams params)
    : n_(nodes),
      rng_(rng),
      q_(queue),
      params_(params),
      up_(nodes, false),
      pairs_(nodes * nodes),
      blocked_(nodes * nodes, 0),
      extra_(nodes * nodes, 0),
      last_note_(nodes * nodes, 0) {}

std::size_t Network::index(std::uint32_t a, std::uint32_t b) const noexcept {
  const std::uint32_t lo = std::min(a, b);
  const std::uint32_t hi = std::max(a, b);
  return lo * n_ + hi;
}

core::SessionId Network::session_of(std::uint32_t a, std::uint32_t b) const noexcept {
  return pair(a, b).session;
}

bool Network::is_current(std::uint32_t a, std::uint32_t b, core::SessionId s) const noexcept {
  return s.value != 0 && pair(a, b).session == s;
}

bool Network::blocked(std::uint32_t from, std::uint32_t to) const noexcept {
  return blocked_[from * n_ + to] != 0;
}

Time Network::latency(std::uint32_t from, std::uint32_t to) noexcept {
  return rng_.range(params_.latency_min, params_.latency_max) + extra_[from * n_ + to];
}

Time Network::notify(std::uint32_t node, std::uint32_t peer, EventKind kind, core::SessionId s,
                     Time at) {
  Time& last = last_note_[node * n_ + peer];
  if (at < last) at = last;
  last = at;
  Event e;
  e.kind = kind;
  e.a = node;
  e.b = peer;
  e.x = s.value;
  q_.schedule(at, std::move(e));
  return at;
}

void Network::schedule_connect(std::uint32_t a, std::uint32_t b) {
  Pair& p = pair(a, b);
  if (p.connect_pending || p.session.value != 0) return;
  p.connect_pending = true;
  Event e;
  e.kind = EventKind::connect;
  e.a = std::min(a, b);
  e.b = std::max(a, b);
  q_.schedule(q_.now() + rng_.range(params_.backoff_min, params_.backoff_max), std::move(e));
}

void Network::establish(std::uint32_t a, std::uint32_t b) {
  Pair& p = pair(a, b);
  const core::SessionId s{next_session_++};
  p.session = s;
  p.kill_pending = false;
  p.dir_dead[0] = p.dir_dead[1] = false;
  const std::uint32_t lo = std::min(a, b);
  const std::uint32_t hi = std::max(a, b);
  const Time now = q_.now();
  const Time up_lo = notify(lo, hi, EventKind::session_up, s,
                            now + rng_.range(params_.connect_min, params_.connect_max));
  const Time up_hi = notify(hi, lo, EventKind::session_up, s,
                            now + rng_.range(params_.connect_min, params_.connect_max));
  // Nothing reaches an end before it has seen the session come up.
  p.last_deliver[0] = up_hi;
  p.last_deliver[1] = up_lo;
}

void Network::on_connect(std::uint32_t a, std::uint32_t b) {
  Pair& p = pair(a, b);
  p.connect_pending = false;
  if (p.session.value != 0 || !up_[a] || !up_[b]) return;  // node_up reconnects later
  const bool ab = blocked(a, b);
  const bool ba = blocked(b, a);
  if (ab && ba) return;  // partitioned: heal_blocks reconnects
  if (ab || ba) {
    // Asymmetric: the initiator is either end; from the blocked side the attempt is refused.
    const bool a_initiates = rng_.coin();
    if ((a_initiates && ab) || (!a_initiates && ba)) {
      schedule_connect(a, b);
      return;
    }
  }
  establish(a, b);
}

void Network::close_pair(std::uint32_t a, std::uint32_t b) {
  Pair& p = pair(a, b);
  if (p.session.value == 0) return;
  const core::SessionId s = p.session;
  p.session = core::SessionId{};
  p.kill_pending = false;
  const Time now = q_.now();
  for (const auto& [x, y] : {std::pair{a, b}, std::pair{b, a}}) {
    if (up_[x]) notify(x, y, EventKind::session_down, s, now + rng_.range(0, params_.latency_max));
  }
  if (up_[a] && up_[b]) schedule_connect(a, b);
}

void Network::close(std::uint32_t a, std::uint32_t b, core::SessionId s) {
  if (a == b || a >= n_ || b >= n_) return;
  if (pair(a, b).session == s) close_pair(a, b);
}

void Network::on_session_kill(std::uint32_t a, std::uint32_t b, core::SessionId s) {
  if (pair(a, b).session == s) close_pair(a, b);
}

bool Network::send(std::uint32_t from, std::uint32_t to, core::SessionId s, core::Bytes frame) {
  if (from == to || to >= n_) return false;
  Pair& p = pair(from, to);
  if (s.value == 0 || p.session != s) return false;
  const int dir = from < to ? 0 : 1;
  if (p.dir_dead[dir]) return false;
  if (blocked(from, to)) {
    // Half-open: this frame and every later one this way are lost; the session dies.
    p.dir_dead[dir] = true;
    if (!p.kill_pending) {
      p.kill_pending = true;
      Event e;
      e.kind = EventKind::session_kill;
      e.a = std::min(from, to);
      e.b = std::max(from, to);
      e.x = s.value;
      q_.schedule(q_.now() + rng_.range(params_.half_open_detect_min,
                                        params_.half_open_detect_max),
                  std::move(e));
    }
    return false;
  }
  Time at = q_.now() + latency(from, to);
  if (at < p.last_deliver[dir]) at = p.last_deliver[dir];  // FIFO: never overtake
  p.last_deliver[dir] = at;
  Event e;
  e.kind = EventKind::deliver;
  e.a = from;
  e.b = to;
  e.x = s.value;
  e.data.assign(frame.begin(), frame.end());
  q_.schedule(at, std::move(e));
  return true;
}

void Network::node_down(std::uint32_t node) {
  up_[node] = false;
  for (std::uint32_t peer = 0; peer < n_; ++peer) {
    if (peer != node) close_pair(node, peer);
  }
}

void Network::node_up(std::uint32_t node) {
  up_[node] = true;
  for (std::uint32_t peer = 0; peer < n_; ++peer) {
    if (peer != node && up_[peer]) schedule_connect(node, peer);
  }
}

void Network::block(std::uint32_t from, std::uint32_t to) {
  if (from == to) return;
  blocked_[from * n_ + to] = 1;
  close_pair(from, to);
}

void Network::heal_blocks() {
  std::fill(blocked_.begin(), blocked_.end(), 0);
  for (std::uint32_t a = 0; a < n_; ++a) {
    for (std::uint32_t b = a + 1; b < n_; ++b) {
      if (up_[a] && up_[b]) schedule_connect(a, b);
    }
  }
}

void Network::set_extra_latency(std::uint32_t from, std::uint32_t to, Time extra) {
  extra_[from * n_ + to] = extra;
}

void Network::clear_extra_latency() { std::fill(extra_.begin(), extra_.end(), 0); }

std::size_t Network::live_sessions() const noexcept {
  std::size_t k = 0;
  for (std::uint32_t a = 0; a < n_; ++a) {
    for (std::uint32_t b = a + 1; b < n_; ++b) k += pair(a, b).session.value != 0;
  }
  return k;
}

bool Network::drop_random_session() {
  std::vector<std::pair<std::uint32_t, std::uint32_t>> live;
  for (std::uint32_t a = 0; a < n_; ++a) {
    for (std::uint32_t b = a + 1; b < n_; ++b) {
      if (pair(a, b).session.value != 0) live.emplace_back(a, b);
    }
  }
  if (live.empty()) return false;
  const auto [a, b] = rng_.pick(live);
  close_pair(a, b);
  return true;
}

}  // namespace fastzab::sim
