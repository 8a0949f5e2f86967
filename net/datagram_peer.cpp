#include "net/datagram_peer.h"

#include <algorithm>
#include <cstring>

#include "net/check.h"
#include "net/wire.h"

namespace fastzab::net {

namespace {

constexpr std::uint8_t kControlVersion = 1;
constexpr std::size_t kCloseBodyBytes = 16;

std::size_t body_bytes(ControlKind kind) noexcept {
  switch (kind) {
    case ControlKind::hello: return wire::kHelloBytes;
    case ControlKind::reply: return wire::kReplyBytes;
    case ControlKind::confirm: return wire::kConfirmBytes;
    case ControlKind::close: return kCloseBodyBytes;
  }
  return 0;
}

std::uint64_t load_u64(const unsigned char* p) noexcept {
  return wire::load_le<std::uint64_t>(reinterpret_cast<const std::byte*>(p));
}

void store_u64(std::uint64_t v, unsigned char* p) noexcept {
  wire::store_le(v, reinterpret_cast<std::byte*>(p));
}

// A session id from a hello's nonce: fresh for every handshake, known to both ends once the
// MACs checked, never 0.
std::uint64_t session_id_of(const wire::HelloBytes& hello) {
  const auto decoded = wire::decode_hello(hello);
  FZ_NET_CHECK(decoded.has_value());
  const std::uint64_t id = load_u64(decoded->nonce.data());
  return id == 0 ? 1 : id;
}

bool is_control(std::span<const std::byte> p) noexcept {
  return p.size() >= 4 && wire::load_le<std::uint32_t>(p.data()) == kControlMagic;
}

}  // namespace

DatagramPeer::DatagramPeer(const HandshakeContext& context, std::uint64_t peer_id, bool dialer,
                           const DatagramPeerConfig& config)
    : context_(&context), peer_id_(peer_id), dialer_(dialer), cfg_(config) {
  FZ_NET_CHECK(invalid_reason(cfg_.session) == nullptr);
  spare_slots_ = DatagramSession::make_slots(cfg_.session);  // before serving, once
  ++counters_.slot_storages_made;
  packet_.reserve(kControlHeaderBytes + wire::kReplyBytes);
  if (!dialer_) handshake_.start_acceptor(*context_);
}

void DatagramPeer::send_control(ControlKind kind, std::span<const unsigned char> body,
                                Transmit transmit) {
  packet_.assign(kControlHeaderBytes + body.size(), std::byte{0});
  wire::store_le(kControlMagic, packet_.data());
  packet_[4] = std::byte{kControlVersion};
  packet_[5] = static_cast<std::byte>(kind);
  std::memcpy(packet_.data() + kControlHeaderBytes, body.data(), body.size());
  transmit(packet_);
}

void DatagramPeer::start_dialing(std::uint64_t now_us, Transmit transmit) {
  const HandshakeStep step = handshake_.start_dialer(*context_, peer_id_);
  FZ_NET_CHECK(step.kind == HandshakeStep::Kind::send);
  send_control(ControlKind::hello, step.bytes, transmit);
  resend_ = packet_;
  resend_at_ = now_us + cfg_.handshake_resend_us;
  ++counters_.hellos_sent;
}

void DatagramPeer::establish(std::uint64_t now_us, Events events) {
  if (session_) end_session("replaced by a new handshake (the peer restarted)", events);
  const std::uint64_t dialer_id = session_id_of(handshake_.dialer_hello());
  const std::uint64_t acceptor_id = session_id_of(handshake_.acceptor_hello());
  if (spare_slots_.bytes == nullptr) ++counters_.slot_storages_made;  // never expected
  session_ = std::make_unique<DatagramSession>(cfg_.session, dialer_ ? dialer_id : acceptor_id,
                                               dialer_ ? acceptor_id : dialer_id,
                                               std::move(spare_slots_));
  last_heard_ = now_us;
  last_sent_ = now_us;
  ++counters_.sessions_up;
  events(PeerEvent{PeerEvent::Kind::session_up, session_->local_session(), {}, {}});
}

void DatagramPeer::end_session(std::string_view reason, Events events) {
  if (!session_) return;
  const std::uint64_t id = session_->local_session();
  if (delivering_) {
    FZ_NET_CHECK(ended_in_delivery_ == nullptr);  // no session comes up during a delivery
    ended_in_delivery_ = std::move(session_);
  } else {
    spare_slots_ = session_->release_slots();
    session_.reset();
  }
  confirming_ = false;
  ++counters_.sessions_down;
  events(PeerEvent{PeerEvent::Kind::session_down, id, {}, reason});
}

bool DatagramPeer::send(std::uint64_t session, std::span<const std::byte> frame) {
  if (!session_ || session_->local_session() != session) return false;
  return session_->send(frame);
}

void DatagramPeer::close(std::uint64_t session, std::uint64_t, Transmit transmit, Events events) {
  if (!session_ || session_->local_session() != session) return;
  std::array<unsigned char, kCloseBodyBytes> body{};
  store_u64(session_->local_session(), body.data());
  store_u64(session_->peer_session(), body.data() + 8);
  send_control(ControlKind::close, body, transmit);
  end_session("closed here", events);
  if (!dialer_) handshake_.start_acceptor(*context_);
}

void DatagramPeer::poll(std::uint64_t now_us, Transmit transmit, Events events) {
  if (session_ && now_us - last_heard_ >= cfg_.silence_timeout_us) {
    end_session("peer silent", events);
    if (!dialer_) handshake_.start_acceptor(*context_);
  }
  if (dialer_ && !session_ && handshake_.stage() != Handshake::Stage::awaiting_reply) {
    start_dialing(now_us, transmit);
  } else if (dialer_ && (handshake_.stage() == Handshake::Stage::awaiting_reply || confirming_) &&
             now_us >= resend_at_) {
    transmit(resend_);
    resend_at_ = now_us + cfg_.handshake_resend_us;
    ++(confirming_ ? counters_.confirms_sent : counters_.hellos_sent);
  }
  if (!session_) return;
  if (now_us - last_sent_ >= cfg_.keepalive_us) session_->request_ack();
  session_->poll(now_us, [&](std::span<const std::byte> p) {
    last_sent_ = now_us;
    transmit(p);
  });
}

bool DatagramPeer::may_answer(std::optional<std::uint64_t>& last_us, std::uint64_t now_us) {
  if (last_us && now_us - *last_us < cfg_.answer_interval_us) {
    ++counters_.answers_throttled;
    return false;
  }
  last_us = now_us;
  return true;
}

void DatagramPeer::on_control(ControlKind kind, std::span<const unsigned char> body,
                              std::uint64_t now_us, Transmit transmit, Events events) {
  switch (kind) {
    case ControlKind::hello: {
      if (dialer_) return;  // only the larger id dials
      if (handshake_.stage() == Handshake::Stage::awaiting_confirm &&
          std::equal(body.begin(), body.end(), handshake_.dialer_hello().begin())) {
        transmit(reply_);  // the dialer did not get the REPLY: repeat it
        return;
      }
      // A new handshake; a live session stays until its CONFIRM checks out.
      if (!may_answer(last_reply_us_, now_us)) return;
      handshake_.start_acceptor(*context_);
      const HandshakeStep step = handshake_.on_message(body);
      if (step.kind != HandshakeStep::Kind::send || step.peer != peer_id_) {
        ++counters_.handshakes_refused;
        handshake_.start_acceptor(*context_);
        return;
      }
      send_control(ControlKind::reply, step.bytes, transmit);
      reply_ = packet_;
      return;
    }
    case ControlKind::reply: {
      if (!dialer_ || handshake_.stage() != Handshake::Stage::awaiting_reply) return;
      const HandshakeStep step = handshake_.on_message(body);
      if (step.kind != HandshakeStep::Kind::established || step.peer != peer_id_) {
        ++counters_.handshakes_refused;
        return;  // keep resending the HELLO: a forged REPLY must not end the attempt
      }
      establish(now_us, events);
      send_control(ControlKind::confirm, step.bytes, transmit);
      resend_ = packet_;
      resend_at_ = now_us + cfg_.handshake_resend_us;
      confirming_ = true;
      ++counters_.confirms_sent;
      return;
    }
    case ControlKind::confirm: {
      if (dialer_) return;
      if (handshake_.stage() != Handshake::Stage::awaiting_confirm) {
        // The dialer repeats a CONFIRM until it hears from the session: answer with an ACK.
        if (session_ && std::equal(body.begin(), body.end(), last_confirm_.begin(), last_confirm_.end())) {
          session_->request_ack();
        }
        return;
      }
      const HandshakeStep step = handshake_.on_message(body);
      if (step.kind != HandshakeStep::Kind::established || step.peer != peer_id_) {
        ++counters_.handshakes_refused;
        handshake_.start_acceptor(*context_);
        return;
      }
      last_confirm_.assign(body.begin(), body.end());
      establish(now_us, events);
      session_->request_ack();  // tells the dialer the session is up here
      handshake_.start_acceptor(*context_);
      return;
    }
    case ControlKind::close: {
      if (!session_ || load_u64(body.data()) != session_->peer_session() ||
          load_u64(body.data() + 8) != session_->local_session()) {
        return;  // not the live session's
      }
      end_session("closed by the peer", events);
      if (!dialer_) handshake_.start_acceptor(*context_);
      return;
    }
  }
}

void DatagramPeer::receive(std::span<const std::byte> packet, std::uint64_t now_us,
                           Transmit transmit, Events events) {
  if (is_control(packet)) {
    const auto kind = packet.size() > 5 ? std::to_integer<std::uint8_t>(packet[5]) : 0;
    const bool known = kind >= 1 && kind <= 4;
    if (packet.size() < kControlHeaderBytes || packet[4] != std::byte{kControlVersion} || !known ||
        packet[6] != std::byte{0} || packet[7] != std::byte{0} ||
        packet.size() != kControlHeaderBytes + body_bytes(static_cast<ControlKind>(kind))) {
      ++counters_.control_garbage;
      return;
    }
    const auto body = std::span<const unsigned char>(
        reinterpret_cast<const unsigned char*>(packet.data()) + kControlHeaderBytes,
        packet.size() - kControlHeaderBytes);
    on_control(static_cast<ControlKind>(kind), body, now_us, transmit, events);
    return;
  }
  if (!session_) {
    ++counters_.stale;
    // The peer still sends on a session this end no longer has (this end restarted, or ended
    // it): say so at once, so it starts over now rather than after its silence timeout. Not
    // while this acceptor waits for the CONFIRM of the session those packets belong to.
    const auto ids = datagram_session_ids(packet);
    if (!ids) return;
    if (!dialer_ && handshake_.stage() == Handshake::Stage::awaiting_confirm &&
        ids->second == session_id_of(handshake_.acceptor_hello())) {
      return;
    }
    if (!may_answer(last_close_us_, now_us)) return;
    std::array<unsigned char, kCloseBodyBytes> body{};
    store_u64(ids->second, body.data());
    store_u64(ids->first, body.data() + 8);
    send_control(ControlKind::close, body, transmit);
    return;
  }
  const std::uint64_t id = session_->local_session();
  delivering_ = true;
  const auto r = session_->receive(packet, now_us, [&](std::span<const std::byte> frame) {
    events(PeerEvent{PeerEvent::Kind::frame, id, frame, {}});
  });
  delivering_ = false;
  if (ended_in_delivery_ != nullptr) {
    spare_slots_ = ended_in_delivery_->release_slots();
    ended_in_delivery_.reset();
    return;  // closed while its frame was read: nothing more of it counts
  }
  switch (r) {
    case DatagramSession::Received::accepted:
    case DatagramSession::Received::duplicate:
    case DatagramSession::Received::out_of_order:
      last_heard_ = now_us;
      confirming_ = false;  // the acceptor is up: no more CONFIRMs
      return;
    case DatagramSession::Received::stale_session:
      ++counters_.stale;
      return;
    case DatagramSession::Received::malformed:
      close(session_->local_session(), now_us, transmit, events);
      return;
  }
}

}  // namespace fastzab::net
