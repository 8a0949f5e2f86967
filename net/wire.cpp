#include "net/wire.h"

#include <sodium.h>

#include <algorithm>
#include <string_view>

namespace fastzab::net::wire {
namespace {

constexpr std::size_t kMagicAt = 0;
constexpr std::size_t kVersionAt = 5;
constexpr std::size_t kKindAt = 6;
constexpr std::size_t kReservedAt = 7;
constexpr std::size_t kClusterAt = 8;
constexpr std::size_t kSenderAt = 16;
constexpr std::size_t kTargetAt = 24;
constexpr std::size_t kNonceAt = 32;
static_assert(kNonceAt + kNonceBytes == kHelloBytes);

constexpr std::string_view kAcceptorLabel = "acceptor";
constexpr std::string_view kDialerLabel = "dialer";
static_assert(crypto_auth_hmacsha256_BYTES == kMacBytes);
static_assert(crypto_auth_hmacsha256_KEYBYTES == kSecretBytes);

void store_u64_le(std::uint64_t value, unsigned char* out) {
  for (std::size_t i = 0; i < 8; ++i) out[i] = static_cast<unsigned char>(value >> (8 * i));
}
std::uint64_t load_u64_le(const unsigned char* in) {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < 8; ++i) value |= static_cast<std::uint64_t>(in[i]) << (8 * i);
  return value;
}

// label || dialer hello || acceptor hello, on the stack: the MAC is over one contiguous message
// so that crypto_auth_hmacsha256_verify (constant time) can check it.
struct Transcript {
  std::array<unsigned char, 8 + 2 * kHelloBytes> bytes{};
  std::size_t size = 0;
};
Transcript transcript(std::string_view label, const HelloBytes& dialer_hello,
                      const HelloBytes& acceptor_hello) {
  Transcript t;
  std::copy(label.begin(), label.end(), t.bytes.begin());
  t.size = label.size();
  std::copy(dialer_hello.begin(), dialer_hello.end(), t.bytes.begin() + static_cast<long>(t.size));
  t.size += kHelloBytes;
  std::copy(acceptor_hello.begin(), acceptor_hello.end(),
            t.bytes.begin() + static_cast<long>(t.size));
  t.size += kHelloBytes;
  return t;
}

Mac mac_of(std::string_view label, const Secret& secret, const HelloBytes& dialer_hello,
           const HelloBytes& acceptor_hello) {
  const Transcript t = transcript(label, dialer_hello, acceptor_hello);
  Mac mac{};
  crypto_auth_hmacsha256(mac.data(), t.bytes.data(), t.size, secret.data());
  return mac;
}

bool verify(std::string_view label, const Secret& secret, const HelloBytes& dialer_hello,
            const HelloBytes& acceptor_hello, std::span<const unsigned char, kMacBytes> mac) {
  const Transcript t = transcript(label, dialer_hello, acceptor_hello);
  return crypto_auth_hmacsha256_verify(mac.data(), t.bytes.data(), t.size, secret.data()) == 0;
}

}  // namespace

HelloBytes encode_hello(const Hello& hello) {
  HelloBytes out{};
  std::copy(kMagic.begin(), kMagic.end(), out.begin() + kMagicAt);
  out[kVersionAt] = hello.version;
  out[kKindAt] = static_cast<unsigned char>(hello.kind);
  out[kReservedAt] = 0;
  store_u64_le(hello.cluster_id, out.data() + kClusterAt);
  store_u64_le(hello.sender_id, out.data() + kSenderAt);
  store_u64_le(hello.target_id, out.data() + kTargetAt);
  std::copy(hello.nonce.begin(), hello.nonce.end(), out.begin() + kNonceAt);
  return out;
}

const char* describe(HelloGarbage g) noexcept {
  switch (g) {
    case HelloGarbage::bad_magic: return "not a fastzab-net hello (bad magic)";
    case HelloGarbage::bad_kind: return "not a fastzab-net hello (bad message kind)";
    case HelloGarbage::nonzero_reserved: return "not a fastzab-net hello (reserved byte set)";
  }
  return "not a fastzab-net hello";
}

std::expected<Hello, HelloGarbage> decode_hello(std::span<const unsigned char, kHelloBytes> bytes) {
  if (!std::equal(kMagic.begin(), kMagic.end(), bytes.begin() + kMagicAt)) {
    return std::unexpected(HelloGarbage::bad_magic);
  }
  const unsigned char kind = bytes[kKindAt];
  if (kind != static_cast<unsigned char>(HelloKind::dialer) &&
      kind != static_cast<unsigned char>(HelloKind::acceptor)) {
    return std::unexpected(HelloGarbage::bad_kind);
  }
  if (bytes[kReservedAt] != 0) return std::unexpected(HelloGarbage::nonzero_reserved);
  Hello hello;
  hello.version = bytes[kVersionAt];
  hello.kind = static_cast<HelloKind>(kind);
  hello.cluster_id = load_u64_le(bytes.data() + kClusterAt);
  hello.sender_id = load_u64_le(bytes.data() + kSenderAt);
  hello.target_id = load_u64_le(bytes.data() + kTargetAt);
  std::copy(bytes.begin() + kNonceAt, bytes.end(), hello.nonce.begin());
  return hello;
}

Mac acceptor_mac(const Secret& secret, const HelloBytes& dialer_hello,
                 const HelloBytes& acceptor_hello) {
  return mac_of(kAcceptorLabel, secret, dialer_hello, acceptor_hello);
}

Mac dialer_mac(const Secret& secret, const HelloBytes& dialer_hello,
               const HelloBytes& acceptor_hello) {
  return mac_of(kDialerLabel, secret, dialer_hello, acceptor_hello);
}

bool verify_acceptor_mac(const Secret& secret, const HelloBytes& dialer_hello,
                         const HelloBytes& acceptor_hello,
                         std::span<const unsigned char, kMacBytes> mac) {
  return verify(kAcceptorLabel, secret, dialer_hello, acceptor_hello, mac);
}

bool verify_dialer_mac(const Secret& secret, const HelloBytes& dialer_hello,
                       const HelloBytes& acceptor_hello,
                       std::span<const unsigned char, kMacBytes> mac) {
  return verify(kDialerLabel, secret, dialer_hello, acceptor_hello, mac);
}

}  // namespace fastzab::net::wire
