#include "engine/runtime/client_protocol.h"

#include <cstring>

namespace fastzab::runtime::client {
namespace {

void put_u32(std::vector<std::byte>& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::byte>(v >> (8 * i)));
}
void put_u64(std::vector<std::byte>& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::byte>(v >> (8 * i)));
}
std::uint32_t get_u32(const std::byte* p) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<std::uint32_t>(p[i]);
  return v;
}
std::uint64_t get_u64(const std::byte* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<std::uint64_t>(p[i]);
  return v;
}

}  // namespace

const char* to_string(ErrorCode c) noexcept {
  switch (c) {
    case ErrorCode::no_leader: return "no_leader";
    case ErrorCode::too_large: return "too_large";
    case ErrorCode::bad_request: return "bad_request";
    case ErrorCode::unavailable: return "unavailable";
    case ErrorCode::rejected: return "rejected";
    case ErrorCode::transfer_refused: return "transfer_refused";
    case ErrorCode::unknown_outcome: return "unknown_outcome";
    case ErrorCode::stale_sequence: return "stale_sequence";
  }
  return "unknown";
}

void encode(const Message& m, std::vector<std::byte>& out) {
  std::size_t fields = 0;
  switch (m.type) {
    case Type::write:
    case Type::status_ok:
      fields = m.body.size();
      break;
    case Type::write_once: fields = 16 + m.body.size(); break;
    case Type::status: break;
    case Type::write_ok:
    case Type::transfer:
    case Type::transfer_ok: fields = 8; break;
    case Type::error: fields = 1 + m.body.size(); break;
  }
  put_u32(out, static_cast<std::uint32_t>(kHeaderBytes + fields));
  out.push_back(static_cast<std::byte>(m.type));
  put_u64(out, m.id);
  switch (m.type) {
    case Type::write:
    case Type::status_ok:
      out.insert(out.end(), m.body.begin(), m.body.end());
      break;
    case Type::write_once:
      put_u64(out, m.client);
      put_u64(out, m.seq);
      out.insert(out.end(), m.body.begin(), m.body.end());
      break;
    case Type::status: break;
    case Type::write_ok: put_u64(out, m.zxid); break;
    case Type::transfer:
    case Type::transfer_ok: put_u64(out, m.server); break;
    case Type::error:
      out.push_back(static_cast<std::byte>(m.code));
      out.insert(out.end(), m.body.begin(), m.body.end());
      break;
  }
}

Decoded decode(std::span<const std::byte> in, Message& m, std::size_t& consumed) {
  if (in.size() < 4) return Decoded::need_more;
  const std::uint32_t len = get_u32(in.data());
  if (len < kHeaderBytes) return Decoded::bad;
  const std::byte* p = in.data() + 4;
  if (len > kMaxSkippedBodyBytes) return Decoded::bad;
  if (len > kMaxBodyBytes) {
    // Only a write may be long; its id is enough to answer it.
    if (in.size() < 4 + kHeaderBytes) return Decoded::need_more;
    const auto type = static_cast<std::uint8_t>(p[0]);
    if (type != 0x01 && type != 0x04) return Decoded::bad;
    m = Message{};
    m.type = static_cast<Type>(type);
    m.id = get_u64(p + 1);
    consumed = std::size_t{4} + len;
    return Decoded::too_large;
  }
  if (in.size() - 4 < len) return Decoded::need_more;
  const auto body = std::span<const std::byte>(p + kHeaderBytes, len - kHeaderBytes);
  m = Message{};
  m.id = get_u64(p + 1);
  switch (static_cast<std::uint8_t>(p[0])) {
    case 0x01:
      m.type = Type::write;
      if (body.size() > kMaxValueBytes) {
        consumed = 4 + len;
        return Decoded::too_large;
      }
      m.body = body;
      break;
    case 0x04:
      if (body.size() < 16) return Decoded::bad;
      m.type = Type::write_once;
      if (body.size() - 16 > kMaxValueBytes) {
        consumed = 4 + len;
        return Decoded::too_large;
      }
      m.client = get_u64(body.data());
      if (m.client == 0) return Decoded::bad;  // anonymous writes are plain writes
      m.seq = get_u64(body.data() + 8);
      m.body = body.subspan(16);
      break;
    case 0x02:
      if (!body.empty()) return Decoded::bad;
      m.type = Type::status;
      break;
    case 0x03:
    case 0x83:
      if (body.size() != 8) return Decoded::bad;
      m.type = static_cast<std::uint8_t>(p[0]) == 0x03 ? Type::transfer : Type::transfer_ok;
      m.server = get_u64(body.data());
      break;
    case 0x81:
      if (body.size() != 8) return Decoded::bad;
      m.type = Type::write_ok;
      m.zxid = get_u64(body.data());
      break;
    case 0x82:
      m.type = Type::status_ok;
      m.body = body;
      break;
    case 0xE1: {
      if (body.empty()) return Decoded::bad;
      const auto code = static_cast<std::uint8_t>(body[0]);
      if (code < 1 || code > kMaxErrorCode) return Decoded::bad;
      m.type = Type::error;
      m.code = static_cast<ErrorCode>(code);
      m.body = body.subspan(1);
      break;
    }
    default:
      return Decoded::bad;
  }
  consumed = 4 + len;
  return Decoded::message;
}

std::string_view four_letter_word(std::span<const std::byte> first4) noexcept {
  if (first4.size() < 4) return {};
  const std::string_view w(reinterpret_cast<const char*>(first4.data()), 4);
  for (std::string_view known : {"ruok", "srvr", "mntr", "trce"}) {
    if (w == known) return known;
  }
  return {};
}

}  // namespace fastzab::runtime::client
