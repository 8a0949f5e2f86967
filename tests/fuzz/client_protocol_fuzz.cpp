// libFuzzer target for the client port's protocol (engine/runtime/client_protocol.*). The input is
// what a client sent: four_letter_word() on its first bytes, then decode() frame after frame, as
// the server reads a pipelined stream. Every frame that decodes is re-encoded and must give back
// exactly the bytes it was decoded from (the encoding is unique) and decode to the same fields;
// every shorter prefix of it must ask for more; a four-letter word never decodes as a frame.
// FASTZAB_ASSERT aborts on a broken property, which libFuzzer reports.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <vector>

#include "engine/core/invariant.h"
#include "engine/runtime/client_protocol.h"

namespace {

using namespace fastzab::runtime::client;
using Bytes = std::span<const std::byte>;

bool same_bytes(Bytes a, Bytes b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size()) == 0);
}

bool inside(Bytes part, Bytes whole) {
  if (part.empty()) return true;
  return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

std::uint32_t length_field(Bytes in) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | std::to_integer<std::uint32_t>(in[static_cast<std::size_t>(i)]);
  return v;
}

bool known_type(Type t) {
  switch (t) {
    case Type::write:
    case Type::status:
    case Type::transfer:
    case Type::write_once:
    case Type::write_ok:
    case Type::status_ok:
    case Type::transfer_ok:
    case Type::error: return true;
  }
  return false;
}

// `frame` is exactly the bytes `m` was decoded from.
void check_message(const Message& m, Bytes frame) {
  FASTZAB_ASSERT(known_type(m.type));
  FASTZAB_ASSERT(frame.size() >= 4 + kHeaderBytes);
  FASTZAB_ASSERT(frame.size() - 4 == length_field(frame));
  FASTZAB_ASSERT(inside(m.body, frame));
  if (m.type == Type::write || m.type == Type::write_once) {
    FASTZAB_ASSERT(m.body.size() <= kMaxValueBytes);
  }
  if (m.type == Type::write_once) FASTZAB_ASSERT(m.client != 0);
  if (m.type == Type::error) {
    FASTZAB_ASSERT(to_string(m.code) != nullptr);
    FASTZAB_ASSERT(std::string_view(to_string(m.code)) != "unknown");
  }

  std::vector<std::byte> again;
  encode(m, again);
  FASTZAB_ASSERT(same_bytes(again, frame));

  Message m2;
  std::size_t consumed2 = 0;
  FASTZAB_ASSERT(decode(again, m2, consumed2) == Decoded::message);
  FASTZAB_ASSERT(consumed2 == again.size());
  FASTZAB_ASSERT(m2.type == m.type);
  FASTZAB_ASSERT(m2.id == m.id);
  FASTZAB_ASSERT(m2.zxid == m.zxid);
  FASTZAB_ASSERT(m2.server == m.server);
  FASTZAB_ASSERT(m2.client == m.client);
  FASTZAB_ASSERT(m2.seq == m.seq);
  FASTZAB_ASSERT(m2.code == m.code);
  FASTZAB_ASSERT(same_bytes(m2.body, m.body));

  // A frame cut anywhere is "need more", never bad and never a shorter message: the reader keeps
  // what it has and waits. (Three cuts per frame: the ends and one in between.)
  for (std::size_t cut : {std::size_t{0}, frame.size() / 2, frame.size() - 1}) {
    Message part;
    std::size_t consumed_part = 0;
    FASTZAB_ASSERT(decode(frame.first(cut), part, consumed_part) == Decoded::need_more);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const Bytes input(reinterpret_cast<const std::byte*>(data), size);

  const std::string_view word = four_letter_word(input.first(std::min<std::size_t>(size, 4)));
  if (!word.empty()) {
    FASTZAB_ASSERT(size >= 4);
    FASTZAB_ASSERT(word.size() == 4 && std::memcmp(word.data(), data, 4) == 0);
  }
  // Only the first four bytes count.
  FASTZAB_ASSERT(four_letter_word(input) == word);

  Bytes rest = input;
  for (int frames = 0; !rest.empty(); ++frames) {
    Message m;
    std::size_t consumed = 0;
    const Decoded d = decode(rest, m, consumed);
    if (frames == 0 && !word.empty()) {
      // A length field that spells a four-letter word is above kMaxBodyBytes.
      FASTZAB_ASSERT(d != Decoded::message);
    }
    if (d == Decoded::message) {
      FASTZAB_ASSERT(consumed >= 4 + kHeaderBytes && consumed <= rest.size());
      check_message(m, rest.first(consumed));
      rest = rest.subspan(consumed);
      continue;
    }
    if (d == Decoded::too_large) {
      // A write (or write_once) too long to hold: its id and the whole frame's length, so the
      // server can answer and skip it as it arrives.
      FASTZAB_ASSERT(rest.size() >= 4 + kHeaderBytes);
      FASTZAB_ASSERT(m.type == Type::write || m.type == Type::write_once);
      FASTZAB_ASSERT(consumed == 4 + std::size_t{length_field(rest)});
      FASTZAB_ASSERT(consumed > 4 + kHeaderBytes + kMaxValueBytes);
      std::uint64_t id = 0;
      for (int i = 7; i >= 0; --i) id = (id << 8) | std::to_integer<std::uint64_t>(rest[5 + static_cast<std::size_t>(i)]);
      FASTZAB_ASSERT(m.id == id);
      if (consumed > rest.size()) break;
      rest = rest.subspan(consumed);
      continue;
    }
    if (d == Decoded::need_more) {
      // Only when a frame could still complete: a short header, or a valid length not all here.
      FASTZAB_ASSERT(rest.size() < 4 + kHeaderBytes || 4 + std::size_t{length_field(rest)} > rest.size());
    } else {
      FASTZAB_ASSERT(d == Decoded::bad);
      FASTZAB_ASSERT(rest.size() >= 4);
    }
    break;
  }
  return 0;
}
