#include "net/peer_sessions.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>

#include "net/check.h"

namespace fastzab::net {
namespace {

std::atomic<SessionId> g_next_session{1};

// Inbound handshakes (README.md, "Unauthenticated connections"). Unverified: accepted, the HELLO
// not complete yet. Verified: the HELLO checked out, the dialer's MAC is due. A new connection is
// always taken; when a bound is reached an older one makes room, so no number of connections that
// never authenticate can hold a place a real peer needs.
constexpr std::size_t kMaxUnverifiedHandshakes = 64;
constexpr std::size_t kMaxUnverifiedPerSource = 16;  // per remote address, port ignored
constexpr std::size_t kMaxVerifiedHandshakes = 64;
static_assert(kMaxUnverifiedPerSource <= kMaxUnverifiedHandshakes);
// Lines about unauthenticated inbound connections: at most one per interval.
constexpr std::chrono::milliseconds kUnauthenticatedLogInterval{1000};

// Clears a send buffer. Steady traffic reuses its capacity; a burst (a DIFF of a long history, a
// backlog behind a slow peer) would otherwise keep its high-water mark for the life of the
// connection, so capacity past SpillPool's retention limit is given back.
void release_if_large(std::vector<std::byte>& buffer) noexcept {
  if (buffer.capacity() > SpillPool::kMaxRetainedCapacityBytes) {
    std::vector<std::byte>().swap(buffer);
  } else {
    buffer.clear();
  }
}

}  // namespace

SessionId next_session_id() noexcept {
  return g_next_session.fetch_add(1, std::memory_order_relaxed);
}

// ---------------------------------------------------------------------------------------------
// Back-off and send queues.

std::chrono::microseconds DialBackoff::next_delay(const UniformRandom& uniform) {
  const auto full = std::chrono::duration_cast<std::chrono::microseconds>(current_).count();
  const auto half = full / 2;
  const auto jitter = static_cast<std::int64_t>(
      uniform(static_cast<std::uint32_t>(std::max<std::int64_t>(full - half, 1))));
  current_ = std::min(current_ * 2, max_);
  return std::chrono::microseconds(half + jitter);
}

void SendQueue::append(std::span<const std::byte> bytes) {
  queued_.insert(queued_.end(), bytes.begin(), bytes.end());
}

void SendQueue::append(std::span<const unsigned char> bytes) {
  append(std::as_bytes(bytes));
}

void SendQueue::append_frame(std::span<const std::byte> frame) {
  std::array<std::byte, wire::kFrameHeaderBytes> header;
  wire::store_u32_le(static_cast<std::uint32_t>(frame.size()), header.data());
  append(header);
  append(frame);
}

void SendQueue::start_batch() {
  std::swap(queued_, sending_);
  queued_.clear();
  send_offset_ = 0;
}

bool SendQueue::sent(std::size_t bytes) {
  send_offset_ += bytes;
  if (send_offset_ < sending_.size()) return false;
  release_if_large(sending_);
  send_offset_ = 0;
  return true;
}

void SendQueue::release() noexcept {
  release_if_large(sending_);
  release_if_large(queued_);
  send_offset_ = 0;
}

// ---------------------------------------------------------------------------------------------
// Peers and the public calls.

PeerSessions::PeerSessions(const TransportConfig& config, ConnIo& io, UniformRandom uniform,
                           std::function<wire::Nonce()> make_nonce)
    : config_(config), io_(io), uniform_(std::move(uniform)) {
  handshake_context_.cluster_id = config_.cluster_id;
  handshake_context_.self_id = config_.self_id;
  handshake_context_.secret = config_.secret;
  handshake_context_.make_nonce = std::move(make_nonce);
  peers_.reserve(config_.peers.size());
  unverified_.reserve(kMaxUnverifiedHandshakes);
  verified_.reserve(kMaxVerifiedHandshakes);
}

Peer& PeerSessions::add_peer(const PeerAddress& a) {
  handshake_context_.peers.push_back(a.id);
  return peers_.emplace_back(a.id, endpoint_name(a.host, a.port), config_.self_id > a.id,
                             DialBackoff(config_.reconnect_min, config_.reconnect_max));
}

Peer* PeerSessions::find_peer(std::uint64_t id) {
  for (Peer& p : peers_) {
    if (p.id == id) return &p;
  }
  return nullptr;
}

Peer* PeerSessions::live(std::uint64_t peer, SessionId session) {
  Peer* p = find_peer(peer);
  if (p == nullptr || session == kNoSession || p->session != session) return nullptr;
  return p;
}

bool PeerSessions::send(std::uint64_t peer, SessionId session, std::span<const std::byte> frame) {
  Peer* p = live(peer, session);
  if (p == nullptr) return false;
  if (frame.empty() || frame.size() > config_.max_frame_bytes) return false;
  Conn* c = conn_of(p->conn_slot);
  FZ_NET_CHECK(c != nullptr && c->state == ConnState::established && c->session == session);
  if (c->out.waiting() + wire::kFrameHeaderBytes + frame.size() > config_.max_queued_bytes) {
    close_conn(*c, "send queue over " + std::to_string(config_.max_queued_bytes) +
                       " bytes: the peer does not read");
    return false;
  }
  c->out.append_frame(frame);
  ++counters_.frames_sent;
  counters_.bytes_sent += frame.size();
  return true;
}

void PeerSessions::close_session(std::uint64_t peer, SessionId session) {
  Peer* p = live(peer, session);
  if (p == nullptr) return;
  Conn* c = conn_of(p->conn_slot);
  FZ_NET_CHECK(c != nullptr);
  close_conn(*c, "closed by this server");
}

// ---------------------------------------------------------------------------------------------
// Connections.

Conn& PeerSessions::new_conn(int fd, Role role) {
  std::uint32_t slot = 0;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    slot = static_cast<std::uint32_t>(conns_.size());
    FZ_NET_CHECK(slot < 0xFFFFFFu);  // the loop's operations carry the slot in 24 bits
    conns_.push_back(std::make_unique<Conn>(slot, config_.max_frame_bytes, spill_pool_));
  }
  Conn& c = *conns_[slot];
  c.fd = fd;
  c.role = role;
  c.peer_index = kNoPeer;
  c.session = kNoSession;
  c.handshake_have = 0;
  c.handshake = Handshake{};
  return c;
}

Conn& PeerSessions::dialing(Peer& p, int fd, Clock::time_point now) {
  Conn& c = new_conn(fd, Role::dialer);
  set_state(c, ConnState::connecting);
  c.peer_index = static_cast<std::size_t>(&p - peers_.data());
  c.deadline = now + config_.handshake_timeout;
  p.conn_slot = c.slot;
  if (p.dialed_before) ++counters_.reconnect_attempts;
  p.dialed_before = true;
  return c;
}

void PeerSessions::connected(Conn& c) {
  c.out.append(c.handshake.start_dialer(handshake_context_, peers_[c.peer_index].id).bytes);
  set_state(c, ConnState::awaiting_reply);
}

Conn& PeerSessions::accepted(int fd, const HostKey& source, Clock::time_point now) {
  make_room_for(source, now);
  Conn& c = new_conn(fd, Role::acceptor);
  c.accepted_at = now;
  c.source = source;
  c.deadline = now + std::min(config_.hello_timeout, config_.handshake_timeout);
  set_state(c, ConnState::awaiting_hello);
  c.handshake.start_acceptor(handshake_context_);
  return c;
}

Clock::time_point PeerSessions::expire_handshakes(Clock::time_point now) {
  Clock::time_point next = Clock::time_point::max();
  for (const auto& owned : conns_) {
    Conn& c = *owned;
    if (!in_handshake(c.state)) continue;
    if (now < c.deadline) {
      next = std::min(next, c.deadline);
    } else if (c.state == ConnState::connecting) {
      // An unreachable peer is not refusing anything: retried with back-off, not logged.
      close_conn(c, "connect timed out");
    } else if (c.state == ConnState::awaiting_hello) {
      refuse(c, "handshake not finished within " +
                    std::to_string(std::min(config_.hello_timeout,
                                            config_.handshake_timeout).count()) +
                    " ms (no complete hello)");
    } else {
      refuse(c, "handshake not finished within " +
                    std::to_string(config_.handshake_timeout.count()) + " ms");
    }
  }
  return next;
}

bool PeerSessions::on_bytes(Conn& c, std::span<const std::byte> bytes) {
  std::size_t at = 0;
  while (at < bytes.size() && in_handshake(c.state)) {
    const std::size_t need = c.handshake.message_bytes();
    FZ_NET_CHECK(need > 0);  // nothing arrives before connect completes
    const std::size_t take = std::min(need - c.handshake_have, bytes.size() - at);
    std::memcpy(c.handshake_in.data() + c.handshake_have, bytes.data() + at, take);
    c.handshake_have += take;
    at += take;
    if (c.handshake_have == need) {
      c.handshake_have = 0;
      on_handshake_message(c, need);
    }
  }
  if (c.state != ConnState::established || at == bytes.size()) return false;
  return deliver_frames(c, bytes.subspan(at));
}

bool PeerSessions::deliver_frames(Conn& c, std::span<const std::byte> bytes) {
  bool pin = false;
  const SessionId session = c.session;
  const std::uint64_t peer = peers_[c.peer_index].id;
  const auto status =
      c.assembler.feed(bytes, [&](std::span<const std::byte> frame, FrameAssembler::Source from) {
        // A callback may close this session: nothing of it is delivered after that.
        if (c.state != ConnState::established || c.session != session) return;
        if (from == FrameAssembler::Source::chunk) pin = true;
        ++counters_.frames_received;
        counters_.bytes_received += frame.size();
        emit(Event{Event::Kind::frame, peer, session, frame, {}});
      });
  if (c.state != ConnState::established) return pin;
  switch (status) {
    case FrameAssembler::Status::ok: break;
    case FrameAssembler::Status::zero_length:
      drop_garbage(c, "a frame header with length 0");
      break;
    case FrameAssembler::Status::oversized: {
      ++counters_.frames_oversized;
      const std::string reason = "a frame of " +
                                 std::to_string(c.assembler.last_claimed_length()) +
                                 " bytes, over max_frame_bytes " +
                                 std::to_string(config_.max_frame_bytes);
      log("fastzab-net: dropped session with server " + std::to_string(peer) + " (" +
          conn_name(c) + "): " + reason);
      close_conn(c, reason);
      break;
    }
  }
  return pin;
}

// ---------------------------------------------------------------------------------------------
// The handshake (README.md, "Handshake").

// The decisions are the Handshake's (net/handshake.h); what needs every connection and peer
// (the verified pool, the session a restarted peer leaves behind) is done here.
void PeerSessions::on_handshake_message(Conn& c, std::size_t bytes) {
  const HandshakeStep step =
      c.handshake.on_message(std::span<const unsigned char>(c.handshake_in.data(), bytes));
  switch (step.kind) {
    case HandshakeStep::Kind::garbage: return drop_garbage(c, step.reason);
    case HandshakeStep::Kind::refused: return refuse(c, step.reason);
    case HandshakeStep::Kind::send: return acceptor_hello_checked(c, step);
    case HandshakeStep::Kind::established: break;
  }
  if (c.role == Role::acceptor) {
    if (Conn* old = conn_of(peers_[c.peer_index].conn_slot)) {
      // One connection per pair: the newest authenticated one wins (the peer restarted).
      close_conn(*old, "replaced by a new connection from the peer (it restarted?)");
    }
  }
  c.out.append(step.bytes);  // the dialer's MAC; nothing from the acceptor
  establish(c);
}

// The dialer's HELLO checked out: `reply` holds the acceptor's hello and MAC.
void PeerSessions::acceptor_hello_checked(Conn& c, const HandshakeStep& reply) {
  Peer* p = find_peer(reply.peer);
  FZ_NET_CHECK(p != nullptr);  // the Handshake knows the same servers
  c.peer_index = static_cast<std::size_t>(p - peers_.data());
  if (verified_.size() >= kMaxVerifiedHandshakes) {
    // Anyone who knows the cluster id and a server id can write a hello that checks out: such
    // connections are bounded too, the oldest (whose MAC is the most overdue) making room.
    Conn* oldest = nullptr;
    for (const std::uint32_t slot : verified_) {
      Conn& v = *conns_[slot];
      if (oldest == nullptr || v.accepted_at < oldest->accepted_at) oldest = &v;
    }
    evict(*oldest, Clock::now(), "its authenticator is overdue and a newer hello checked out");
  }
  c.out.append(reply.bytes);
  set_state(c, ConnState::awaiting_confirm);
  c.deadline = c.accepted_at + config_.handshake_timeout;
}

void PeerSessions::establish(Conn& c) {
  Peer& p = peers_[c.peer_index];
  set_state(c, ConnState::established);
  c.session = next_session_id();
  c.assembler.reset();
  p.conn_slot = c.slot;
  p.session = c.session;
  p.backoff.reset();
  ++counters_.sessions_up;
  emit(Event{Event::Kind::session_up, p.id, c.session, {}, {}});
}

// ---------------------------------------------------------------------------------------------
// The bounds on inbound handshakes (README.md, "Unauthenticated connections").

std::vector<std::uint32_t>* PeerSessions::pool_of(ConnState state) {
  switch (state) {
    case ConnState::awaiting_hello: return &unverified_;
    case ConnState::awaiting_confirm: return &verified_;
    default: return nullptr;
  }
}

// Every state change goes through here, so the two pools hold exactly the inbound connections in
// their states.
void PeerSessions::set_state(Conn& c, ConnState state) {
  if (std::vector<std::uint32_t>* from = pool_of(c.state)) {
    const auto at = std::find(from->begin(), from->end(), c.slot);
    FZ_NET_CHECK(at != from->end());
    *at = from->back();
    from->pop_back();
  }
  if (std::vector<std::uint32_t>* to = pool_of(state)) {
    FZ_NET_CHECK(c.role == Role::acceptor);
    to->push_back(c.slot);  // within the capacity reserved up front: make_room_for() ran first
  }
  c.state = state;
}

// Called before a new connection from `source` joins the unverified pool: when the pool, or this
// source's share of it, is full, its weakest member goes. Weakest: no byte yet before a partial
// hello, then the oldest. The newcomer itself is never the one refused, so a real peer's
// connection always gets in, and its hello (usually read at once, see the loop's on_accept())
// takes it out of reach.
void PeerSessions::make_room_for(const HostKey& source, Clock::time_point now) {
  const auto weaker = [](const Conn& a, const Conn* b) {
    if (b == nullptr) return true;
    const bool a_spoke = a.handshake_have > 0;
    const bool b_spoke = b->handshake_have > 0;
    if (a_spoke != b_spoke) return !a_spoke;
    return a.accepted_at < b->accepted_at;
  };
  Conn* weakest = nullptr;
  Conn* weakest_of_source = nullptr;
  std::size_t of_source = 0;
  for (const std::uint32_t slot : unverified_) {
    Conn& u = *conns_[slot];
    if (weaker(u, weakest)) weakest = &u;
    if (u.source == source) {
      ++of_source;
      if (weaker(u, weakest_of_source)) weakest_of_source = &u;
    }
  }
  if (of_source >= kMaxUnverifiedPerSource) {
    evict(*weakest_of_source, now, "the handshakes pending from its address reached their bound");
  } else if (unverified_.size() >= kMaxUnverifiedHandshakes) {
    evict(*weakest, now, "the handshakes pending without a hello reached their bound");
  }
}

void PeerSessions::evict(Conn& c, Clock::time_point now, const char* why) {
  ++counters_.handshakes_evicted;
  log_unauthenticated([&] {
    const auto age = std::chrono::duration_cast<std::chrono::milliseconds>(now - c.accepted_at);
    return "fastzab-net: evicted connection from " + conn_name(c) + " after " +
           std::to_string(age.count()) + " ms (" +
           (c.state == ConnState::awaiting_hello
                ? std::to_string(c.handshake_have) + " of " + std::to_string(wire::kHelloBytes) +
                      " hello bytes"
                : "hello checked, no authenticator yet") +
           "): " + why + " and a newer connection came";
  });
  close_conn(c, "evicted to make room for a newer connection");
}

// ---------------------------------------------------------------------------------------------
// Closing.

std::string PeerSessions::conn_name(const Conn& c) const {
  if (c.role == Role::dialer) return peers_[c.peer_index].name;
  return io_.remote_name(c.fd);
}

void PeerSessions::refuse(Conn& c, const std::string& reason) {
  ++counters_.handshakes_refused;
  if (c.role == Role::acceptor) {
    log_unauthenticated(
        [&] { return "fastzab-net: refused connection from " + conn_name(c) + ": " + reason; });
  } else {
    log("fastzab-net: refused connection to server " + std::to_string(peers_[c.peer_index].id) +
        " at " + conn_name(c) + ": " + reason);
  }
  close_conn(c, reason);
}

void PeerSessions::drop_garbage(Conn& c, const std::string& reason) {
  ++counters_.connections_dropped_garbage;
  if (c.role == Role::acceptor && c.state != ConnState::established) {
    log_unauthenticated(
        [&] { return "fastzab-net: dropped connection from " + conn_name(c) + ": " + reason; });
  } else {
    log("fastzab-net: dropped connection " +
        std::string(c.role == Role::acceptor ? "from " : "to ") + conn_name(c) + ": " + reason);
  }
  close_conn(c, reason);
}

// Detaches the connection from its peer at once (nothing more of its session is delivered or
// sent); it is freed once the loop's operations on it have completed.
void PeerSessions::close_conn(Conn& c, std::string reason) {
  if (c.state == ConnState::closing) return;
  const bool was_established = c.state == ConnState::established;
  if (c.peer_index != kNoPeer) {
    Peer& p = peers_[c.peer_index];
    if (p.conn_slot == c.slot) {
      p.conn_slot = -1;
      p.session = kNoSession;
      if (p.we_dial) schedule_redial(p, Clock::now());
    }
  }
  if (was_established) {
    ++counters_.sessions_down;
    pending_downs_.push_back(
        PendingDown{peers_[c.peer_index].id, c.session, std::move(reason)});
  }
  set_state(c, ConnState::closing);
  c.out.drop_queued();
  // The assembler is reset in free_conn(), not here: a callback inside its feed() may be what
  // closes the connection.
  if (c.ops_in_flight > 0) io_.cancel_ops(c);
  finish_if_done(c);
}

void PeerSessions::finish_if_done(Conn& c) {
  if (c.state == ConnState::closing && c.ops_in_flight == 0 && c.fd >= 0) free_conn(c);
}

void PeerSessions::free_conn(Conn& c) {
  io_.close_socket(c.fd);
  c.fd = -1;
  ++c.generation;
  c.out.release();
  c.recv_armed = false;
  c.send_in_flight = false;
  c.assembler.reset();
  free_slots_.push_back(c.slot);
}

void PeerSessions::schedule_redial(Peer& p, Clock::time_point now) {
  p.next_dial = now + p.backoff.next_delay(uniform_);
}

// ---------------------------------------------------------------------------------------------
// Events and logging.

void PeerSessions::begin_poll(const EventSink& sink) {
  FZ_NET_CHECK(sink_ == nullptr);  // not re-entrant: no poll() from inside a callback
  sink_ = &sink;
  events_ = 0;
  // What the previous poll() handed out is dead now.
  spill_pool_.reclaim();
  reasons_.clear();
  flush_downs();
}

void PeerSessions::end_poll() {
  flush_downs();
  sink_ = nullptr;
}

void PeerSessions::emit(const Event& e) {
  flush_downs();  // a session's down always precedes anything that follows it
  (*sink_)(e);
  ++events_;
}

void PeerSessions::flush_downs() {
  if (sink_ == nullptr) return;  // outside poll(): they wait for the next one
  // Index loop: a callback may close another session and append to the list.
  for (std::size_t i = 0; i < pending_downs_.size(); ++i) {
    reasons_.push_back(std::move(pending_downs_[i].reason));
    const Event e{Event::Kind::session_down, pending_downs_[i].peer, pending_downs_[i].session,
                  {}, reasons_.back()};
    (*sink_)(e);
    ++events_;
  }
  pending_downs_.clear();
}

void PeerSessions::log(const std::string& line) {
  if (config_.log_line) {
    config_.log_line(line);
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
}

// Lines about inbound connections that have not authenticated (refused, dropped as garbage,
// evicted): anyone who can reach the port can cause them at any rate, so at most one per
// kUnauthenticatedLogInterval. The others are counted; the next line says how many, or, when no
// other comes, a line of their own once the interval has passed (report_suppressed()). `line` is
// built only when it is written.
void PeerSessions::log_unauthenticated(FunctionRef<std::string()> line) {
  const Clock::time_point now = Clock::now();
  if (now < next_unauthenticated_line_) {
    ++unauthenticated_suppressed_;
    ++counters_.log_lines_suppressed;
    return;
  }
  std::string text = line();
  if (unauthenticated_suppressed_ > 0) {
    const auto since =
        std::chrono::duration_cast<std::chrono::milliseconds>(now - last_unauthenticated_line_);
    text += " (and " + std::to_string(unauthenticated_suppressed_) +
            " more not logged in the last " + std::to_string(since.count()) + " ms)";
    unauthenticated_suppressed_ = 0;
  }
  last_unauthenticated_line_ = now;
  next_unauthenticated_line_ = now + kUnauthenticatedLogInterval;
  log(text);
}

void PeerSessions::report_suppressed(Clock::time_point now) {
  const auto since =
      std::chrono::duration_cast<std::chrono::milliseconds>(now - last_unauthenticated_line_);
  log("fastzab-net: " + std::to_string(unauthenticated_suppressed_) +
      " more not logged in the last " + std::to_string(since.count()) +
      " ms: inbound connections refused, evicted or dropped before authenticating (in all: " +
      std::to_string(counters_.handshakes_refused) + " refused, " +
      std::to_string(counters_.handshakes_evicted) + " evicted, " +
      std::to_string(counters_.connections_dropped_garbage) + " garbage)");
  unauthenticated_suppressed_ = 0;
  last_unauthenticated_line_ = now;
  next_unauthenticated_line_ = now + kUnauthenticatedLogInterval;
}

}  // namespace fastzab::net
