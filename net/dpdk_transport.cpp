#include "net/dpdk_transport.h"

#include <poll.h>
#include <sodium.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <utility>

#include "net/check.h"

namespace fastzab::net::dpdk {

namespace {

using Clock = std::chrono::steady_clock;

bool is_zero(const Mac& mac) noexcept {
  return std::all_of(mac.begin(), mac.end(), [](std::uint8_t b) { return b == 0; });
}

std::string mac_text(const Mac& mac) {
  char buf[18];
  std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3],
                mac[4], mac[5]);
  return buf;
}

class DpdkTransport final : public Transport {
 public:
  explicit DpdkTransport(DpdkTransportConfig config) : cfg_(std::move(config)) {}
  ~DpdkTransport() override {
    if (wake_fd_ >= 0) ::close(wake_fd_);
  }

  Result<void> init(const Eal& eal);

  std::uint16_t listen_port() const override { return 0; }
  bool send(std::uint64_t peer, SessionId session, std::span<const std::byte> frame) override;
  void close_session(std::uint64_t peer, SessionId session) override;
  Result<std::size_t> poll(std::chrono::microseconds timeout, EventSink on_event) override;
  void wake() override {
    woken_.store(true, std::memory_order_release);
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto n = ::write(wake_fd_, &one, sizeof one);
  }
  int wake_fd() const noexcept override { return wake_fd_; }
  const Counters& counters() const override { return counters_; }
  std::string_view describe() const override { return description_; }

 private:
  struct Peer {
    DpdkPeer where;
    Port* port = nullptr;
    std::array<std::byte, kEthernetHeaderBytes> header{};  // to it, from our port, our EtherType
    std::unique_ptr<DatagramPeer> link;
    std::deque<std::vector<std::byte>> spill;  // frames its session's slots could not take yet
    std::uint64_t spill_bytes = 0;
  };
  struct Pending {  // events raised outside poll() (close_session): reported by the next poll()
    Event::Kind kind;
    std::uint64_t peer;
    SessionId session;
    std::string reason;
  };

  std::uint64_t now_us() const {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start_).count()) + 1;
  }
  void turn(EventSink emit);
  void on_event(Peer& p, const PeerEvent& e, EventSink* emit);
  // A frame of our EtherType that no peer of the table sent to us: most likely a dpdkPeer MAC
  // that is wrong (or a peer's table that has ours wrong). Said once per port and pair of
  // addresses, for the first 16, so a misconfiguration is named instead of a silent wait.
  void unmatched(std::uint16_t port, std::span<const std::byte> frame) {
    if (unmatched_seen_.size() >= 16) return;
    Mac to{}, from{};
    std::memcpy(to.data(), frame.data(), 6);
    std::memcpy(from.data(), frame.data() + 6, 6);
    if (!unmatched_seen_.insert({port, from, to}).second) return;
    log("DPDK port " + std::to_string(port) + ": frames of EtherType 0x88b5 from " + mac_text(from) +
        " to " + mac_text(to) + " match no peer of the table (is a dpdkPeer MAC wrong, here or "
        "on the sender?); dropped");
  }
  void drop_spill(Peer& p) {
    p.spill.clear();
    p.spill_bytes = 0;
  }

  DpdkTransportConfig cfg_;
  ThreadLcore lcore_;  // the polling thread's mempool cache (declared before ports_: outlives them)
  HandshakeContext context_;
  std::map<std::uint16_t, std::unique_ptr<Port>> ports_;
  std::map<std::uint16_t, int> down_checks_;  // consecutive restart checks that found the port down
  std::map<std::uint16_t, bool> link_was_up_;
  Clock::time_point next_link_check_ = Clock::now();
  Clock::time_point next_restart_check_ = Clock::now();
  std::vector<Peer> peers_;
  std::vector<Pending> pending_;
  std::vector<Pending> reported_;  // the ones the last poll() reported
  Clock::time_point start_ = Clock::now();
  int wake_fd_ = -1;
  std::atomic<bool> woken_{false};
  void log(const std::string& line) const {
    if (cfg_.transport.log_line) {
      cfg_.transport.log_line(line);
    } else {
      std::fprintf(stderr, "fastzab-net: %s\n", line.c_str());
    }
  }

  Counters counters_;
  std::uint64_t link_restarts_ = 0;  // ports restarted because their link stayed down
  std::uint64_t frames_dropped_garbage_ = 0;  // not ours at the Ethernet level
  bool restart_failure_logged_ = false;
  std::set<std::tuple<std::uint16_t, Mac, Mac>> unmatched_seen_;  // (port, from, to) logged
  std::string description_;
};

Result<void> DpdkTransport::init(const Eal& eal) {
  const TransportConfig& t = cfg_.transport;
  if (cfg_.peers.empty()) return fail(errc::invalid_config, "the DPDK peer table is empty");
  for (std::size_t i = 0; i < cfg_.peers.size(); ++i) {
    const DpdkPeer& p = cfg_.peers[i];
    const std::string name = "peer " + std::to_string(p.id);
    if (p.id == t.self_id) return fail(errc::invalid_config, name + " is this server");
    for (std::size_t j = 0; j < i; ++j) {
      if (cfg_.peers[j].id == p.id) return fail(errc::invalid_config, name + " is listed twice");
    }
    if ((p.mac[0] & 0x01) != 0) {
      return fail(errc::invalid_config, name + ": MAC " + mac_text(p.mac) + " is not a unicast address");
    }
    for (std::size_t j = 0; j < i; ++j) {
      const DpdkPeer& q = cfg_.peers[j];
      if (q.port == p.port && (is_zero(p.mac) || is_zero(q.mac) || q.mac == p.mac)) {
        return fail(errc::invalid_config, "port " + std::to_string(p.port) + " is shared by peers " +
                                              std::to_string(q.id) + " and " + std::to_string(p.id) +
                                              ": each needs a MAC of its own");
      }
    }
  }
  if (sodium_init() < 0) return fail(errc::crypto_error, "sodium_init failed");
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) return fail_errno(errc::socket_error, errno, "eventfd");

  context_.cluster_id = t.cluster_id;
  context_.self_id = t.self_id;
  std::copy(t.secret.begin(), t.secret.end(), context_.secret.begin());
  for (const DpdkPeer& p : cfg_.peers) context_.peers.push_back(p.id);
  context_.make_nonce = cfg_.make_nonce ? cfg_.make_nonce : [] {
    wire::Nonce nonce;
    randombytes_buf(nonce.data(), nonce.size());
    return nonce;
  };

  for (const DpdkPeer& p : cfg_.peers) {
    if (ports_.count(p.port) != 0) continue;
    PortConfig pc = cfg_.port;
    pc.port = p.port;
    auto port = Port::open(eal, pc);
    if (!port) return std::unexpected(port.error());
    if (!(*port)->start_error().empty()) log((*port)->start_error());
    ports_.emplace(p.port, std::move(*port));
  }
  std::size_t mtu = cfg_.datagram.session.mtu_payload;
  for (const auto& [id, port] : ports_) {
    const Mac own = port->mac();
    for (const DpdkPeer& p : cfg_.peers) {
      if (p.port == id && !is_zero(p.mac) && p.mac == own) {
        return fail(errc::invalid_config, "peer " + std::to_string(p.id) + ": MAC " + mac_text(p.mac) +
                                              " is this server's own port " + std::to_string(id));
      }
    }
    const std::size_t room = port->max_packet_bytes() - kEthernetHeaderBytes - kDatagramHeaderBytes;
    mtu = std::min(mtu, room);
  }
  DatagramPeerConfig dc = cfg_.datagram;
  dc.session.mtu_payload = mtu;
  dc.session.max_frame_bytes = t.max_frame_bytes;
  const std::size_t frame_packets = (t.max_frame_bytes + mtu - 1) / mtu;
  dc.session.send_slots = std::max(dc.session.send_slots, frame_packets + dc.session.window);
  if (const char* why = invalid_reason(dc.session)) return fail(errc::invalid_config, why);

  peers_.reserve(cfg_.peers.size());
  for (const DpdkPeer& p : cfg_.peers) {
    Peer peer;
    peer.where = p;
    peer.port = ports_.at(p.port).get();
    const Mac own = peer.port->mac();
    std::memcpy(peer.header.data(), p.mac.data(), 6);
    std::memcpy(peer.header.data() + 6, own.data(), 6);
    peer.header[12] = static_cast<std::byte>(kEtherType >> 8);
    peer.header[13] = static_cast<std::byte>(kEtherType & 0xff);
    peer.link = std::make_unique<DatagramPeer>(context_, p.id, t.self_id > p.id, dc);
    peers_.push_back(std::move(peer));
  }
  description_ = "dpdk: " + std::to_string(ports_.size()) + " port(s), raw Ethernet 0x88b5, " +
                 std::to_string(mtu) + "-byte packets, go-back-N window " +
                 std::to_string(dc.session.window) + ", poll " + to_string(t.poll_mode);
  return {};
}

void DpdkTransport::on_event(Peer& p, const PeerEvent& e, EventSink* emit) {
  Event out;
  out.peer = p.where.id;
  out.session = e.session;
  switch (e.kind) {
    case PeerEvent::Kind::session_up:
      out.kind = Event::Kind::session_up;
      ++counters_.sessions_up;
      break;
    case PeerEvent::Kind::session_down:
      out.kind = Event::Kind::session_down;
      out.reason = e.reason;
      ++counters_.sessions_down;
      // Rare (a peer restarted, its link went down, or it fell silent), and the one thing an
      // operator needs when an election follows.
      log("peer " + std::to_string(p.where.id) + ": session down: " + std::string(e.reason));
      drop_spill(p);
      break;
    case PeerEvent::Kind::frame:
      out.kind = Event::Kind::frame;
      out.frame = e.frame;
      ++counters_.frames_received;
      counters_.bytes_received += e.frame.size();
      break;
  }
  if (emit != nullptr) {
    (*emit)(out);
  } else {
    pending_.push_back(Pending{out.kind, out.peer, out.session, std::string(e.reason)});
  }
}

bool DpdkTransport::send(std::uint64_t peer, SessionId session, std::span<const std::byte> frame) {
  if (frame.empty() || frame.size() > cfg_.transport.max_frame_bytes) return false;
  auto it = std::find_if(peers_.begin(), peers_.end(), [&](const Peer& p) { return p.where.id == peer; });
  if (it == peers_.end() || session == kNoSession || it->link->session() != session) return false;
  if (it->spill.empty() && it->link->send(session, frame)) {
    ++counters_.frames_sent;
    counters_.bytes_sent += frame.size();
    return true;
  }
  if (it->spill_bytes + frame.size() > cfg_.transport.max_queued_bytes) {
    close_session(peer, session);  // a peer that does not read
    return false;
  }
  it->spill.emplace_back(frame.begin(), frame.end());
  it->spill_bytes += frame.size();
  ++counters_.frames_sent;
  counters_.bytes_sent += frame.size();
  return true;
}

void DpdkTransport::close_session(std::uint64_t peer, SessionId session) {
  auto it = std::find_if(peers_.begin(), peers_.end(), [&](const Peer& p) { return p.where.id == peer; });
  if (it == peers_.end()) return;
  Peer& p = *it;
  p.link->close(session, now_us(),
                [&](std::span<const std::byte> packet) { p.port->queue(p.header, packet); },
                [&](const PeerEvent& e) { on_event(p, e, nullptr); });
  p.port->flush();
}

void DpdkTransport::turn(EventSink emit) {
  const std::uint64_t now = now_us();
  for (Peer& p : peers_) {
    while (!p.spill.empty() && p.link->send(p.link->session(), p.spill.front())) {
      p.spill_bytes -= p.spill.front().size();
      p.spill.pop_front();
    }
    p.link->poll(now, [&](std::span<const std::byte> packet) { p.port->queue(p.header, packet); },
                 [&](const PeerEvent& e) { on_event(p, e, &emit); });
  }
  for (auto& [id, port] : ports_) {
    Port* const here = port.get();
    here->receive([&](std::span<const std::byte> frame) {
      if (frame.size() < kEthernetHeaderBytes ||
          frame[12] != static_cast<std::byte>(kEtherType >> 8) ||
          frame[13] != static_cast<std::byte>(kEtherType & 0xff)) {
        ++frames_dropped_garbage_;
        return;
      }
      for (Peer& p : peers_) {
        // From the peer, to us: on a point-to-point port, anything; on a shared port, from its
        // MAC (the header's destination) to ours (the header's source).
        if (p.port == here &&
            (is_zero(p.where.mac) || (std::memcmp(frame.data() + 6, p.header.data(), 6) == 0 &&
                                      std::memcmp(frame.data(), p.header.data() + 6, 6) == 0))) {
          p.link->receive(frame.subspan(kEthernetHeaderBytes), now,
                          [&](std::span<const std::byte> packet) { p.port->queue(p.header, packet); },
                          [&](const PeerEvent& e) { on_event(p, e, &emit); });
          return;
        }
      }
      ++frames_dropped_garbage_;  // not from a server of the table, or not to us
      unmatched(here->id(), frame);
    });
  }
  for (auto& [id, port] : ports_) port->flush();
}

Result<std::size_t> DpdkTransport::poll(std::chrono::microseconds timeout, EventSink on_event_sink) {
  std::size_t events = 0;
  auto counting = [&](const Event& e) {
    ++events;
    on_event_sink(e);
  };
  EventSink emit(counting);
  // Their reasons stay valid until the next poll(), as the interface promises.
  reported_.swap(pending_);
  pending_.clear();
  for (const Pending& p : reported_) {
    Event e;
    e.kind = p.kind;
    e.peer = p.peer;
    e.session = p.session;
    e.reason = p.reason;
    emit(e);
  }
  const Clock::time_point begin = Clock::now();
  const Clock::time_point deadline = begin + timeout;
  const Clock::time_point spin_until = begin + cfg_.transport.adaptive_spin;
  if (begin >= next_link_check_) {
    // A link that goes down ends the sessions of the peers behind it at once: on a memif link
    // that is the peer process gone (killed, or restarted), which waiting for the silence
    // timeout would take 100s of ms to notice, where TCP's reset is immediate. Checked every
    // millisecond (a read of the port's status).
    next_link_check_ = begin + std::chrono::milliseconds(1);
    const bool restart_due = begin >= next_restart_check_;
    if (restart_due) next_restart_check_ = begin + std::chrono::milliseconds(100);
    for (auto& [id, port] : ports_) {
      if (port->restarting()) continue;  // on the interrupt thread (restart_in_background)
      if (!port->background_restart_error().empty() && !restart_failure_logged_) {
        restart_failure_logged_ = true;  // once: a memif client retries every 200 ms
        log(port->background_restart_error());
      }
      const bool up = port->link_up();
      if (std::exchange(link_was_up_[id], up) && !up) {
        log("DPDK port " + std::to_string(id) + ": link down; ending the sessions behind it");
        for (Peer& p : peers_) {
          if (p.where.port != id || p.link->session() == 0) continue;
          p.link->close(p.link->session(), now_us(),
                        [&](std::span<const std::byte> packet) { p.port->queue(p.header, packet); },
                        [&](const PeerEvent& e) { on_event(p, e, &emit); });
        }
      }
      if (!restart_due) continue;
      // A link down at two checks in a row is restarted: a memif client started before its
      // server listened connects only at a start.
      int& down = down_checks_[id];
      down = up ? 0 : down + 1;
      if (down >= 2) {
        down = 0;
        ++link_restarts_;
        port->restart_in_background();
      }
    }
  }
  for (;;) {
    turn(emit);
    if (events > 0 || woken_.exchange(false, std::memory_order_acq_rel)) break;
    const Clock::time_point now = Clock::now();
    if (now >= deadline) break;
    const PollMode mode = cfg_.transport.poll_mode;
    if (mode == PollMode::busy || (mode == PollMode::adaptive && now < spin_until)) continue;
    // Virtual ports have no receive interrupt: sleep a short step on the wake eventfd, then look
    // at the ports again.
    const auto step = std::min<std::chrono::microseconds>(
        std::chrono::microseconds(cfg_.idle_sleep_us),
        std::chrono::duration_cast<std::chrono::microseconds>(deadline - now));
    pollfd pfd{wake_fd_, POLLIN, 0};
    const timespec ts{0, static_cast<long>(std::max<std::int64_t>(step.count(), 1) * 1000)};
    if (::ppoll(&pfd, 1, &ts, nullptr) > 0) {
      std::uint64_t drained = 0;
      [[maybe_unused]] const auto n = ::read(wake_fd_, &drained, sizeof drained);
      break;
    }
  }
  // Garbage: frames that are not ours (EtherType, addresses, runts), and control packets of a
  // server of the table that are not the handshake protocol (mntr's zk_frames_dropped_garbage).
  std::uint64_t refused = 0, garbage = frames_dropped_garbage_, throttled = 0;
  for (const Peer& p : peers_) {
    refused += p.link->counters().handshakes_refused;
    garbage += p.link->counters().control_garbage;
    throttled += p.link->counters().answers_throttled;
  }
  counters_.handshakes_refused = refused;
  counters_.answers_throttled = throttled;
  counters_.connections_dropped_garbage = garbage;
  return events;
}

}  // namespace

Result<std::unique_ptr<Transport>> open_transport(const Eal& eal, DpdkTransportConfig config) {
  auto transport = std::make_unique<DpdkTransport>(std::move(config));
  if (auto ok = transport->init(eal); !ok) return std::unexpected(ok.error());
  return std::unique_ptr<Transport>(std::move(transport));
}

}  // namespace fastzab::net::dpdk
