// The handshake bytes: the layout README.md documents (checked against bytes written out by
// hand), what decoding calls garbage, and that each MAC verifies only with the right secret,
// the right label and the exact transcript.
#include "net/wire.h"

#include <gtest/gtest.h>
#include <sodium.h>

namespace fastzab::net::wire {
namespace {

Hello sample() {
  Hello h;
  h.kind = HelloKind::dialer;
  h.cluster_id = 0x0102030405060708ull;
  h.sender_id = 3;
  h.target_id = 1;
  for (std::size_t i = 0; i < h.nonce.size(); ++i) h.nonce[i] = static_cast<unsigned char>(i);
  return h;
}

TEST(Wire, HelloLayoutIsTheDocumentedOne) {
  const HelloBytes bytes = encode_hello(sample());
  const std::array<unsigned char, 32> expected_head = {
      'F', 'Z', 'N', 'E', 'T', 1, 1, 0,           // magic, version, kind (dialer), reserved
      8, 7, 6, 5, 4, 3, 2, 1,                      // cluster id, little-endian
      3, 0, 0, 0, 0, 0, 0, 0,                      // sender
      1, 0, 0, 0, 0, 0, 0, 0};                     // target
  EXPECT_TRUE(std::equal(expected_head.begin(), expected_head.end(), bytes.begin()));
  for (std::size_t i = 0; i < kNonceBytes; ++i) EXPECT_EQ(bytes[32 + i], i);
}

TEST(Wire, HelloRoundTrips) {
  const Hello h = sample();
  const auto decoded = decode_hello(encode_hello(h));
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->version, kVersion);
  EXPECT_EQ(decoded->kind, HelloKind::dialer);
  EXPECT_EQ(decoded->cluster_id, h.cluster_id);
  EXPECT_EQ(decoded->sender_id, h.sender_id);
  EXPECT_EQ(decoded->target_id, h.target_id);
  EXPECT_EQ(decoded->nonce, h.nonce);
}

TEST(Wire, DecodeCallsGarbageWhatIsNotAHello) {
  HelloBytes bytes = encode_hello(sample());
  bytes[0] = 'X';
  EXPECT_EQ(decode_hello(bytes).error(), HelloGarbage::bad_magic);
  bytes = encode_hello(sample());
  bytes[6] = 9;
  EXPECT_EQ(decode_hello(bytes).error(), HelloGarbage::bad_kind);
  bytes = encode_hello(sample());
  bytes[7] = 1;
  EXPECT_EQ(decode_hello(bytes).error(), HelloGarbage::nonzero_reserved);
  // A version we do not speak still decodes: refusing it is the transport's policy.
  bytes = encode_hello(sample());
  bytes[5] = 2;
  ASSERT_TRUE(decode_hello(bytes).has_value());
  EXPECT_EQ(decode_hello(bytes)->version, 2);
}

TEST(Wire, MacsVerifyOnlyWithTheRightSecretLabelAndTranscript) {
  ASSERT_GE(sodium_init(), 0);
  Secret secret{};
  secret.fill(0x42);
  Secret other = secret;
  other[31] ^= 1;
  const HelloBytes dialer = encode_hello(sample());
  Hello reply = sample();
  reply.kind = HelloKind::acceptor;
  reply.sender_id = 1;
  reply.target_id = 3;
  reply.nonce.fill(0xAA);
  const HelloBytes acceptor = encode_hello(reply);

  const Mac a = acceptor_mac(secret, dialer, acceptor);
  const Mac d = dialer_mac(secret, dialer, acceptor);
  EXPECT_NE(a, d);  // the labels separate the roles
  EXPECT_TRUE(verify_acceptor_mac(secret, dialer, acceptor, a));
  EXPECT_TRUE(verify_dialer_mac(secret, dialer, acceptor, d));
  EXPECT_FALSE(verify_acceptor_mac(other, dialer, acceptor, a));
  EXPECT_FALSE(verify_dialer_mac(other, dialer, acceptor, d));
  EXPECT_FALSE(verify_dialer_mac(secret, dialer, acceptor, a));  // no reflection
  HelloBytes replayed = acceptor;
  replayed[40] ^= 1;  // another nonce: an old answer does not verify
  EXPECT_FALSE(verify_acceptor_mac(secret, dialer, replayed, a));

  // It is plain HMAC-SHA-256 over "acceptor" || dialer hello || acceptor hello.
  std::vector<unsigned char> message = {'a', 'c', 'c', 'e', 'p', 't', 'o', 'r'};
  message.insert(message.end(), dialer.begin(), dialer.end());
  message.insert(message.end(), acceptor.begin(), acceptor.end());
  Mac direct{};
  crypto_auth_hmacsha256(direct.data(), message.data(), message.size(), secret.data());
  EXPECT_EQ(direct, a);
}

TEST(Wire, FrameHeaderIsLittleEndian) {
  std::array<std::byte, 4> header{};
  store_u32_le(0x01020304u, header.data());
  EXPECT_EQ(header[0], std::byte{4});
  EXPECT_EQ(header[3], std::byte{1});
  EXPECT_EQ(load_u32_le(header.data()), 0x01020304u);
}

}  // namespace
}  // namespace fastzab::net::wire
