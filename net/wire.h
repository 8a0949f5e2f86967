// The bytes on a connection: the three handshake messages and the frame header. The prose and a
// table are in README.md; this header is the one place the sizes and offsets are written down.
// Pure functions (encoding, decoding, HMACs): no sockets, so they are unit-tested on their own
// and shared with tests that speak the handshake by hand.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <span>

namespace fastzab::net::wire {

inline constexpr std::array<unsigned char, 5> kMagic{'F', 'Z', 'N', 'E', 'T'};
inline constexpr std::uint8_t kVersion = 1;

inline constexpr std::size_t kNonceBytes = 32;
inline constexpr std::size_t kMacBytes = 32;      // HMAC-SHA-256
inline constexpr std::size_t kSecretBytes = 32;   // the cluster secret is the HMAC key
inline constexpr std::size_t kHelloBytes = 64;    // magic, version, kind, reserved, 3 ids, nonce
inline constexpr std::size_t kReplyBytes = kHelloBytes + kMacBytes;  // acceptor: hello + MAC
inline constexpr std::size_t kConfirmBytes = kMacBytes;              // dialer: MAC
inline constexpr std::size_t kFrameHeaderBytes = 4;                  // u32 little-endian length

static_assert(kMagic.size() + 3 + 3 * sizeof(std::uint64_t) + kNonceBytes == kHelloBytes);
static_assert(kReplyBytes >= kConfirmBytes, "one handshake buffer holds every message");

// Which side sent a hello: the acceptor echoes the format with its own ids and nonce.
enum class HelloKind : std::uint8_t { dialer = 1, acceptor = 2 };

using Secret = std::array<unsigned char, kSecretBytes>;
using Nonce = std::array<unsigned char, kNonceBytes>;
using Mac = std::array<unsigned char, kMacBytes>;
using HelloBytes = std::array<unsigned char, kHelloBytes>;

struct Hello {
  std::uint8_t version = kVersion;
  HelloKind kind = HelloKind::dialer;
  std::uint64_t cluster_id = 0;
  std::uint64_t sender_id = 0;  // the server that sends this hello
  std::uint64_t target_id = 0;  // the server it wants to talk to
  Nonce nonce{};
};

HelloBytes encode_hello(const Hello& hello);

// Why bytes are not a hello at all (as opposed to a hello we refuse): the connection is garbage.
enum class HelloGarbage : std::uint8_t { bad_magic, bad_kind, nonzero_reserved };
const char* describe(HelloGarbage g) noexcept;

// Decodes the layout only; version, cluster and ids are the caller's policy.
std::expected<Hello, HelloGarbage> decode_hello(std::span<const unsigned char, kHelloBytes> bytes);

// HMAC(secret, "acceptor" || dialer hello || acceptor hello): the acceptor proves it knows the
// secret, bound to the dialer's fresh nonce.
Mac acceptor_mac(const Secret& secret, const HelloBytes& dialer_hello,
                 const HelloBytes& acceptor_hello);
// HMAC(secret, "dialer" || dialer hello || acceptor hello): the dialer proves it, bound to the
// acceptor's fresh nonce. The labels differ so neither MAC can be reflected as the other.
Mac dialer_mac(const Secret& secret, const HelloBytes& dialer_hello,
               const HelloBytes& acceptor_hello);
// Constant-time checks (crypto_auth_hmacsha256_verify).
bool verify_acceptor_mac(const Secret& secret, const HelloBytes& dialer_hello,
                         const HelloBytes& acceptor_hello, std::span<const unsigned char, kMacBytes> mac);
bool verify_dialer_mac(const Secret& secret, const HelloBytes& dialer_hello,
                       const HelloBytes& acceptor_hello, std::span<const unsigned char, kMacBytes> mac);

// Little-endian integers, the byte order of every field net/ puts on the wire.
template <class T>
inline void store_le(T value, std::byte* out) noexcept {
  for (std::size_t i = 0; i < sizeof(T); ++i) out[i] = static_cast<std::byte>(value >> (8 * i));
}
template <class T>
inline T load_le(const std::byte* in) noexcept {
  T value = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i) value |= static_cast<T>(std::to_integer<T>(in[i]) << (8 * i));
  return value;
}
inline void store_u32_le(std::uint32_t value, std::byte* out) noexcept { store_le(value, out); }
inline std::uint32_t load_u32_le(const std::byte* in) noexcept { return load_le<std::uint32_t>(in); }

}  // namespace fastzab::net::wire
