// libFuzzer target for the wire codec. Decodes an arbitrary frame; whatever decodes is re-encoded
// and must decode to the same fields (FASTZAB_ASSERT aborts otherwise, which libFuzzer reports).
// The typed payload decoders are run on the packet data and, for extra reach, on the raw input.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "engine/core/invariant.h"
#include "engine/core/codec.h"

namespace {

using namespace fastzab::core;

bool same_bytes(Bytes a, Bytes b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size()) == 0);
}

bool inside(Bytes part, Bytes whole) {
  if (part.empty()) return true;
  return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

Bytes view(const ByteBuffer& b) { return Bytes(b.data(), b.size()); }

Frame must_decode(const ByteBuffer& b) {
  auto f = decode_frame(view(b));
  FASTZAB_ASSERT(f.has_value());
  return *f;
}

void check_notification(const Notification& n, Bytes input) {
  FASTZAB_ASSERT(inside(n.config, input));
  // Successful decodes are either a legacy form (version 0, no config) or version 2+.
  FASTZAB_ASSERT(n.version > 1 || (n.version == 0 && n.config.empty()));
  ByteBuffer again;
  encode_notification(n, again);
  const Frame g = must_decode(again);
  FASTZAB_ASSERT(g.kind == FrameKind::notification);
  const Notification& m = g.notification;
  FASTZAB_ASSERT(m.state == n.state);
  FASTZAB_ASSERT(m.leader == n.leader);
  FASTZAB_ASSERT(m.zxid == n.zxid);
  FASTZAB_ASSERT(m.round == n.round);
  FASTZAB_ASSERT(m.peer_epoch == n.peer_epoch);
  FASTZAB_ASSERT(m.version == n.version);
  FASTZAB_ASSERT(same_bytes(m.config, n.config));
  // The version-2 form has one encoding: it must reproduce the input exactly.
  if (n.version > 1) FASTZAB_ASSERT(same_bytes(view(again), input));
}

void check_batch(Bytes data, PacketType type, Zxid zxid) {
  auto b = decode_batch(data);
  if (!b) return;
  FASTZAB_ASSERT(b->size() >= 1);
  ByteBuffer again;
  BatchWriter w(type, zxid, again);
  std::size_t n = 0;
  for (Bytes e : *b) {
    FASTZAB_ASSERT(inside(e, data));
    w.add(e);
    ++n;
  }
  FASTZAB_ASSERT(n == b->size());
  w.finish();
  const Frame g = must_decode(again);
  FASTZAB_ASSERT(g.packet.type == type && g.packet.zxid == zxid);
  // A batch has one encoding.
  FASTZAB_ASSERT(same_bytes(g.packet.data, data));
  auto b2 = decode_batch(g.packet.data);
  FASTZAB_ASSERT(b2.has_value() && b2->size() == n);
  auto it = b->begin();
  for (Bytes e : *b2) {
    FASTZAB_ASSERT(same_bytes(e, *it));
    ++it;
  }
  FASTZAB_ASSERT(it == b->end());
}

void check_typed(Bytes data, PacketType type, Zxid zxid) {
  if (auto li = decode_learner_info(data)) {
    ByteBuffer again;
    encode_learner_info(type, zxid, *li, again);
    const Frame g = must_decode(again);
    FASTZAB_ASSERT(g.packet.type == type && g.packet.zxid == zxid);
    FASTZAB_ASSERT(same_bytes(g.packet.data, data));
    auto li2 = decode_learner_info(g.packet.data);
    FASTZAB_ASSERT(li2.has_value());
    FASTZAB_ASSERT(li2->server == li->server && li2->protocol_version == li->protocol_version &&
                   li2->config_version == li->config_version);
  }
  if (auto v = decode_int32(data)) {
    ByteBuffer again;
    encode_int32_packet(type, zxid, *v, again);
    const Frame g = must_decode(again);
    FASTZAB_ASSERT(same_bytes(g.packet.data, data));
    auto v2 = decode_int32(g.packet.data);
    FASTZAB_ASSERT(v2.has_value() && *v2 == *v);
  }
  if (auto a = decode_ackepoch(data)) {
    ByteBuffer again;
    encode_ackepoch(zxid, *a, again);
    const Frame g = must_decode(again);
    FASTZAB_ASSERT(g.packet.type == PacketType::ackepoch && g.packet.zxid == zxid);
    auto a2 = decode_ackepoch(g.packet.data);
    FASTZAB_ASSERT(a2.has_value());
    FASTZAB_ASSERT(a2->current_epoch == a->current_epoch && a2->applied == a->applied &&
                   a2->answered_epoch == a->answered_epoch);
  }
  check_batch(data, type, zxid);
}

void check_packet(const QuorumPacket& p, Bytes input) {
  FASTZAB_ASSERT(inside(p.data, input));
  ByteBuffer again;
  encode_packet(p.type, p.zxid, p.data, again);
  const Frame g = must_decode(again);
  FASTZAB_ASSERT(g.kind == FrameKind::quorum);
  FASTZAB_ASSERT(g.packet.type == p.type);
  FASTZAB_ASSERT(g.packet.zxid == p.zxid);
  FASTZAB_ASSERT(same_bytes(g.packet.data, p.data));
  check_typed(p.data, p.type, p.zxid);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const Bytes input(reinterpret_cast<const std::byte*>(data), size);
  if (auto f = decode_frame(input)) {
    if (f->kind == FrameKind::notification) {
      check_notification(f->notification, input);
    } else {
      FASTZAB_ASSERT(f->kind == FrameKind::quorum);
      check_packet(f->packet, input);
    }
  } else {
    // Every error has a name.
    FASTZAB_ASSERT(fastzab::core::to_string(f.error()) != nullptr);
  }
  // The typed decoders face hostile data directly too (re-encoded as a PROPOSAL at zxid 1).
  check_typed(input, PacketType::proposal, Zxid{1});
  return 0;
}
