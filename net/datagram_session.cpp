#include "net/datagram_session.h"

#include <algorithm>
#include <cstring>

#include "net/check.h"
#include "net/wire.h"

namespace fastzab::net {

namespace {

// Header offsets (kDatagramHeaderBytes in all).
constexpr std::size_t kMagicAt = 0;
constexpr std::size_t kVersionAt = 4;
constexpr std::size_t kTypeAt = 5;
constexpr std::size_t kFlagsAt = 6;
constexpr std::size_t kReserved8At = 7;
constexpr std::size_t kSenderAt = 8;
constexpr std::size_t kReceiverAt = 16;
constexpr std::size_t kSeqAt = 24;
constexpr std::size_t kAckAt = 32;
constexpr std::size_t kPayloadBytesAt = 40;
constexpr std::size_t kReserved32At = 44;
static_assert(kReserved32At + 4 == kDatagramHeaderBytes);

constexpr std::uint8_t kLastFragment = 0x01;

using wire::load_le;
using wire::store_le;

void write_header(std::byte* h, DatagramType type, std::uint8_t flags, std::uint64_t sender,
                  std::uint64_t receiver, std::uint64_t seq, std::uint32_t payload_bytes) {
  store_le<std::uint32_t>(kDatagramMagic, h + kMagicAt);
  h[kVersionAt] = std::byte{kDatagramVersion};
  h[kTypeAt] = static_cast<std::byte>(type);
  h[kFlagsAt] = std::byte{flags};
  h[kReserved8At] = std::byte{0};
  store_le<std::uint64_t>(sender, h + kSenderAt);
  store_le<std::uint64_t>(receiver, h + kReceiverAt);
  store_le<std::uint64_t>(seq, h + kSeqAt);
  store_le<std::uint64_t>(0, h + kAckAt);  // written as the packet leaves
  store_le<std::uint32_t>(payload_bytes, h + kPayloadBytesAt);
  store_le<std::uint32_t>(0, h + kReserved32At);
}

struct Header {
  DatagramType type;
  std::uint8_t flags;
  std::uint64_t sender, receiver, seq, ack;
  std::uint32_t payload_bytes;
};

// The layout only: whether these bytes are a packet of this protocol at all.
std::optional<Header> decode_header(std::span<const std::byte> p, std::size_t mtu_payload) {
  if (p.size() < kDatagramHeaderBytes) return std::nullopt;
  const std::byte* h = p.data();
  if (load_le<std::uint32_t>(h + kMagicAt) != kDatagramMagic) return std::nullopt;
  if (h[kVersionAt] != std::byte{kDatagramVersion}) return std::nullopt;
  if (h[kReserved8At] != std::byte{0} || load_le<std::uint32_t>(h + kReserved32At) != 0) {
    return std::nullopt;
  }
  Header out{};
  const auto type = std::to_integer<std::uint8_t>(h[kTypeAt]);
  if (type != static_cast<std::uint8_t>(DatagramType::data) &&
      type != static_cast<std::uint8_t>(DatagramType::ack)) {
    return std::nullopt;
  }
  out.type = static_cast<DatagramType>(type);
  out.flags = std::to_integer<std::uint8_t>(h[kFlagsAt]);
  out.sender = load_le<std::uint64_t>(h + kSenderAt);
  out.receiver = load_le<std::uint64_t>(h + kReceiverAt);
  out.seq = load_le<std::uint64_t>(h + kSeqAt);
  out.ack = load_le<std::uint64_t>(h + kAckAt);
  out.payload_bytes = load_le<std::uint32_t>(h + kPayloadBytesAt);
  if ((out.flags & ~kLastFragment) != 0) return std::nullopt;
  if (out.payload_bytes != p.size() - kDatagramHeaderBytes || out.payload_bytes > mtu_payload) {
    return std::nullopt;
  }
  if (out.type == DatagramType::ack && (out.payload_bytes != 0 || out.flags != 0 || out.seq != 0)) {
    return std::nullopt;
  }
  if (out.type == DatagramType::data && out.seq == 0) return std::nullopt;
  if (out.ack == 0) return std::nullopt;  // sequences start at 1: the first expected is 1
  return out;
}

}  // namespace

std::optional<std::pair<std::uint64_t, std::uint64_t>> datagram_session_ids(
    std::span<const std::byte> packet) noexcept {
  const auto h = decode_header(packet, std::size_t{1} << 16);
  if (!h) return std::nullopt;
  return std::pair{h->sender, h->receiver};
}

const char* invalid_reason(const DatagramSessionConfig& c) noexcept {
  if (c.mtu_payload == 0 || c.mtu_payload > (1u << 16)) return "mtu_payload must be 1 to 65536";
  if (c.window == 0) return "window must be at least 1";
  if (c.send_slots < c.window) return "send_slots must be at least window";
  if (c.send_slots > (std::size_t{1} << 24)) return "send_slots must be at most 16777216";
  if (c.resend_after_us == 0) return "resend_after_us must be at least 1";
  if (c.ack_every == 0) return "ack_every must be at least 1";
  if (c.max_frame_bytes > c.send_slots * c.mtu_payload) {
    return "max_frame_bytes must fit send_slots packets of mtu_payload bytes";
  }
  return nullptr;
}

DatagramSession::DatagramSession(const DatagramSessionConfig& config, std::uint64_t local_session,
                                 std::uint64_t peer_session, SlotStorage storage)
    : cfg_(config), local_(local_session), peer_(peer_session), slots_(std::move(storage)) {
  FZ_NET_CHECK(invalid_reason(cfg_) == nullptr);
  FZ_NET_CHECK(local_ != 0 && peer_ != 0);
  if (slots_.bytes == nullptr ||
      slots_.size != cfg_.send_slots * (kDatagramHeaderBytes + cfg_.mtu_payload)) {
    slots_ = make_slots(cfg_);
  }
  sent_at_.assign(cfg_.send_slots, 0);
  write_header(ack_packet_, DatagramType::ack, 0, local_, peer_, 0, 0);
}

DatagramSession::SlotStorage DatagramSession::make_slots(const DatagramSessionConfig& config) {
  const std::size_t bytes = config.send_slots * (kDatagramHeaderBytes + config.mtu_payload);
  return SlotStorage{std::make_unique<std::byte[]>(bytes), bytes};
}

std::byte* DatagramSession::slot(std::uint64_t seq) noexcept {
  return slots_.bytes.get() + (seq % cfg_.send_slots) * (kDatagramHeaderBytes + cfg_.mtu_payload);
}

std::size_t DatagramSession::packets_for(std::size_t frame_bytes) const noexcept {
  return frame_bytes == 0 ? 1 : (frame_bytes + cfg_.mtu_payload - 1) / cfg_.mtu_payload;
}

std::size_t DatagramSession::free_slots() const noexcept {
  return cfg_.send_slots - static_cast<std::size_t>(next_queue_ - una_);
}

bool DatagramSession::send(std::span<const std::byte> frame) {
  if (frame.size() > cfg_.max_frame_bytes) return false;
  const std::size_t packets = packets_for(frame.size());
  if (packets > free_slots()) return false;
  for (std::size_t k = 0; k < packets; ++k) {
    const std::size_t from = k * cfg_.mtu_payload;
    const std::size_t bytes = std::min(cfg_.mtu_payload, frame.size() - from);
    std::byte* p = slot(next_queue_);
    write_header(p, DatagramType::data, k + 1 == packets ? kLastFragment : 0, local_, peer_,
                 next_queue_, static_cast<std::uint32_t>(bytes));
    if (bytes > 0) std::memcpy(p + kDatagramHeaderBytes, frame.data() + from, bytes);
    ++next_queue_;
  }
  ++counters_.frames_queued;
  return true;
}

void DatagramSession::go_back() {
  if (next_send_ == una_) return;
  next_send_ = una_;
  repeated_acks_ = 0;
  ++counters_.go_back_n;
}

void DatagramSession::poll(std::uint64_t now_us,
                           FunctionRef<void(std::span<const std::byte>)> transmit) {
  if (una_ < next_send_ && now_us - sent_at_[una_ % cfg_.send_slots] >= cfg_.resend_after_us) {
    go_back();
  }
  while (next_send_ < next_queue_ && next_send_ - una_ < cfg_.window) {
    std::byte* p = slot(next_send_);
    store_le<std::uint64_t>(next_expected_, p + kAckAt);
    const auto payload = load_le<std::uint32_t>(p + kPayloadBytesAt);
    transmit(std::span<const std::byte>(p, kDatagramHeaderBytes + payload));
    sent_at_[next_send_ % cfg_.send_slots] = now_us;
    ++counters_.packets_sent;
    if (next_send_ <= highest_sent_) {
      ++counters_.packets_resent;
    } else {
      highest_sent_ = next_send_;
    }
    ++next_send_;
    unacked_in_ = 0;  // the packet carried the ack
    ack_now_ = false;
  }
  if (ack_now_ || (unacked_in_ > 0 && (now_us >= ack_due_ || unacked_in_ >= cfg_.ack_every))) {
    store_le<std::uint64_t>(next_expected_, ack_packet_ + kAckAt);
    transmit(std::span<const std::byte>(ack_packet_, kDatagramHeaderBytes));
    ++counters_.acks_sent;
    unacked_in_ = 0;
    ack_now_ = false;
  }
}

void DatagramSession::take_ack(std::uint64_t ack, DatagramType type) {
  if (ack > una_) {
    una_ = ack;
    if (next_send_ < una_) next_send_ = una_;
    repeated_acks_ = 0;
  } else if (ack == una_ && una_ < next_send_ && type == DatagramType::ack) {
    // The receiver repeats its ack for every packet it drops after a gap: three in a row mean
    // the packet at una_ was lost, so resend from it without waiting for the timer.
    if (++repeated_acks_ >= 3) go_back();
  }
}

DatagramSession::Received DatagramSession::receive(
    std::span<const std::byte> packet, std::uint64_t now_us,
    FunctionRef<void(std::span<const std::byte>)> deliver) {
  const auto h = decode_header(packet, cfg_.mtu_payload);
  if (!h) {
    ++counters_.malformed;
    return Received::malformed;
  }
  if (h->sender != peer_ || h->receiver != local_) {
    ++counters_.stale;
    return Received::stale_session;
  }
  if (h->ack > highest_sent_ + 1) {  // acknowledges data this end never sent
    ++counters_.malformed;
    return Received::malformed;
  }
  take_ack(h->ack, h->type);
  if (h->type == DatagramType::ack) return Received::accepted;
  if (h->seq < next_expected_) {
    ++counters_.duplicates;
    ack_now_ = true;
    return Received::duplicate;
  }
  if (h->seq > next_expected_) {
    ++counters_.out_of_order;
    ack_now_ = true;
    return Received::out_of_order;
  }
  const auto payload = packet.subspan(kDatagramHeaderBytes);
  if (assembling_.size() + payload.size() > cfg_.max_frame_bytes) {
    ++counters_.malformed;
    return Received::malformed;
  }
  assembling_.insert(assembling_.end(), payload.begin(), payload.end());
  ++next_expected_;
  ++counters_.packets_received;
  if (unacked_in_++ == 0) ack_due_ = now_us + cfg_.ack_after_us;
  if (h->flags & kLastFragment) {
    ++counters_.frames_delivered;
    deliver(std::span<const std::byte>(assembling_));
    assembling_.clear();
  }
  return Received::accepted;
}

std::optional<std::uint64_t> DatagramSession::next_deadline() const noexcept {
  std::optional<std::uint64_t> at;
  const auto sooner = [&](std::uint64_t t) { at = at ? std::min(*at, t) : t; };
  if (next_send_ < next_queue_ && next_send_ - una_ < cfg_.window) sooner(0);  // now
  if (ack_now_) sooner(0);
  if (una_ < next_send_) sooner(sent_at_[una_ % cfg_.send_slots] + cfg_.resend_after_us);
  if (unacked_in_ > 0) sooner(unacked_in_ >= cfg_.ack_every ? 0 : ack_due_);
  return at;
}

}  // namespace fastzab::net
