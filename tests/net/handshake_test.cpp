// The handshake's decisions without sockets: a dialer and an acceptor Handshake pass their bytes
// to each other by hand, with deterministic nonces, and each test checks what they decide.
#include "net/handshake.h"

#include <gtest/gtest.h>
#include <sodium.h>

#include <vector>

namespace fastzab::net {
namespace {

using Kind = HandshakeStep::Kind;
using Bytes = std::vector<unsigned char>;

// Nonces 1, 2, 3, ... in the first byte: deterministic, and different per connection.
struct Server {
  Server(std::uint64_t self, std::vector<std::uint64_t> peers, std::uint64_t cluster = 7,
         unsigned char secret_byte = 0x5A) {
    EXPECT_GE(sodium_init(), 0);
    context.cluster_id = cluster;
    context.self_id = self;
    context.secret.fill(secret_byte);
    context.peers = std::move(peers);
    context.make_nonce = [this] {
      wire::Nonce nonce{};
      nonce[0] = ++nonces;
      return nonce;
    };
  }
  HandshakeContext context;
  unsigned char nonces = 0;
};

Bytes bytes_of(const HandshakeStep& step) { return Bytes(step.bytes.begin(), step.bytes.end()); }

// Server 3 dials server 1, both in one cluster of {1, 2, 3}.
struct Pair {
  Server dialer_server{3, {1, 2}};
  Server acceptor_server{1, {2, 3}};
  Handshake dialer;
  Handshake acceptor;

  Bytes hello() {
    const HandshakeStep step = dialer.start_dialer(dialer_server.context, 1);
    EXPECT_EQ(step.kind, Kind::send);
    EXPECT_EQ(step.peer, 1u);
    acceptor.start_acceptor(acceptor_server.context);
    return bytes_of(step);
  }
};

TEST(Handshake, DialerAndAcceptorEstablish) {
  Pair pair;
  const Bytes hello = pair.hello();
  ASSERT_EQ(hello.size(), wire::kHelloBytes);
  EXPECT_EQ(pair.dialer.stage(), Handshake::Stage::awaiting_reply);
  EXPECT_EQ(pair.dialer.message_bytes(), wire::kReplyBytes);
  EXPECT_EQ(pair.acceptor.stage(), Handshake::Stage::awaiting_hello);
  EXPECT_EQ(pair.acceptor.message_bytes(), wire::kHelloBytes);
  const auto decoded = wire::decode_hello(std::span<const unsigned char, wire::kHelloBytes>(hello));
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->kind, wire::HelloKind::dialer);
  EXPECT_EQ(decoded->cluster_id, 7u);
  EXPECT_EQ(decoded->sender_id, 3u);
  EXPECT_EQ(decoded->target_id, 1u);
  EXPECT_EQ(decoded->nonce[0], 1);  // the injected nonce

  const HandshakeStep reply = pair.acceptor.on_message(hello);
  ASSERT_EQ(reply.kind, Kind::send) << reply.reason;
  EXPECT_EQ(reply.peer, 3u);
  ASSERT_EQ(reply.bytes.size(), wire::kReplyBytes);
  EXPECT_EQ(pair.acceptor.stage(), Handshake::Stage::awaiting_confirm);
  EXPECT_EQ(pair.acceptor.message_bytes(), wire::kConfirmBytes);

  const HandshakeStep confirm = pair.dialer.on_message(bytes_of(reply));
  ASSERT_EQ(confirm.kind, Kind::established) << confirm.reason;
  EXPECT_EQ(confirm.peer, 1u);
  ASSERT_EQ(confirm.bytes.size(), wire::kConfirmBytes);
  EXPECT_EQ(pair.dialer.stage(), Handshake::Stage::idle);
  EXPECT_EQ(pair.dialer.message_bytes(), 0u);

  const HandshakeStep up = pair.acceptor.on_message(bytes_of(confirm));
  ASSERT_EQ(up.kind, Kind::established) << up.reason;
  EXPECT_EQ(up.peer, 3u);
  EXPECT_TRUE(up.bytes.empty());
  EXPECT_EQ(pair.acceptor.stage(), Handshake::Stage::idle);

  // The bytes are the documented ones: the reply's MAC and the confirmation are the wire HMACs.
  wire::HelloBytes dialer_hello{};
  wire::HelloBytes acceptor_hello{};
  std::copy_n(hello.begin(), wire::kHelloBytes, dialer_hello.begin());
  std::copy_n(reply.bytes.begin(), wire::kHelloBytes, acceptor_hello.begin());
  const wire::Secret& secret = pair.dialer_server.context.secret;
  EXPECT_TRUE(wire::verify_acceptor_mac(secret, dialer_hello, acceptor_hello,
                                        reply.bytes.subspan<wire::kHelloBytes, wire::kMacBytes>()));
  EXPECT_EQ(bytes_of(confirm),
            [&] {
              const wire::Mac mac = wire::dialer_mac(secret, dialer_hello, acceptor_hello);
              return Bytes(mac.begin(), mac.end());
            }());
}

TEST(Handshake, WrongSecretIsRefusedOnBothSides) {
  // The acceptor has another secret: the dialer refuses its reply.
  Pair pair;
  pair.acceptor_server.context.secret.fill(0x11);
  const HandshakeStep reply = pair.acceptor.on_message(pair.hello());
  ASSERT_EQ(reply.kind, Kind::send);  // a HELLO carries no proof
  const HandshakeStep step = pair.dialer.on_message(bytes_of(reply));
  EXPECT_EQ(step.kind, Kind::refused);
  EXPECT_EQ(step.reason, "bad authenticator from server 1 (a different cluster secret?)");
  EXPECT_TRUE(step.bytes.empty());  // nothing goes out
  EXPECT_EQ(pair.dialer.stage(), Handshake::Stage::idle);

  // The dialer has another secret but answers anyway: the acceptor refuses its MAC.
  Pair other;
  other.dialer_server.context.secret.fill(0x11);
  const Bytes hello = other.hello();
  const HandshakeStep honest_reply = other.acceptor.on_message(hello);
  ASSERT_EQ(honest_reply.kind, Kind::send);
  wire::HelloBytes dialer_hello{};
  wire::HelloBytes acceptor_hello{};
  std::copy_n(hello.begin(), wire::kHelloBytes, dialer_hello.begin());
  std::copy_n(honest_reply.bytes.begin(), wire::kHelloBytes, acceptor_hello.begin());
  const wire::Mac forged =
      wire::dialer_mac(other.dialer_server.context.secret, dialer_hello, acceptor_hello);
  const HandshakeStep step2 = other.acceptor.on_message(forged);
  EXPECT_EQ(step2.kind, Kind::refused);
  EXPECT_EQ(step2.reason, "bad authenticator from server 3 (a different cluster secret?)");
  EXPECT_EQ(other.acceptor.stage(), Handshake::Stage::idle);
}

TEST(Handshake, WrongClusterIdIsRefused) {
  Pair pair;
  pair.dialer_server.context.cluster_id = 8;
  const HandshakeStep step = pair.acceptor.on_message(pair.hello());
  EXPECT_EQ(step.kind, Kind::refused);
  EXPECT_EQ(step.reason, "wrong cluster id 8 (ours 7)");
  EXPECT_TRUE(step.bytes.empty());
  EXPECT_EQ(pair.acceptor.stage(), Handshake::Stage::idle);

  // And the dialer refuses a reply from another cluster.
  Pair back;
  back.acceptor_server.context.cluster_id = 9;
  Bytes hello = back.hello();
  hello[8] = 9;  // the acceptor of cluster 9 takes a hello for its own cluster
  const HandshakeStep reply = back.acceptor.on_message(hello);
  ASSERT_EQ(reply.kind, Kind::send) << reply.reason;
  const HandshakeStep refused = back.dialer.on_message(bytes_of(reply));
  EXPECT_EQ(refused.kind, Kind::refused);
  EXPECT_EQ(refused.reason, "wrong cluster id 9 (ours 7)");
}

TEST(Handshake, CorruptedMessagesAreGarbageOrRefused) {
  {  // Not a hello at all: garbage, not a refusal.
    Pair pair;
    Bytes hello = pair.hello();
    hello[0] = 'X';
    const HandshakeStep step = pair.acceptor.on_message(hello);
    EXPECT_EQ(step.kind, Kind::garbage);
    EXPECT_EQ(step.reason, wire::describe(wire::HelloGarbage::bad_magic));
    EXPECT_EQ(pair.acceptor.stage(), Handshake::Stage::idle);
  }
  {  // A dialer's hello where the acceptor's reply was due: garbage.
    Pair pair;
    const Bytes hello = pair.hello();
    Bytes reply(wire::kReplyBytes, 0);
    std::copy(hello.begin(), hello.end(), reply.begin());
    const HandshakeStep step = pair.dialer.on_message(reply);
    EXPECT_EQ(step.kind, Kind::garbage);
    EXPECT_EQ(step.reason, "a dialer's hello where the acceptor's reply was due");
  }
  {  // A reply whose MAC has one bit flipped: refused.
    Pair pair;
    const HandshakeStep reply = pair.acceptor.on_message(pair.hello());
    ASSERT_EQ(reply.kind, Kind::send);
    Bytes corrupted = bytes_of(reply);
    corrupted.back() ^= 1;
    const HandshakeStep step = pair.dialer.on_message(corrupted);
    EXPECT_EQ(step.kind, Kind::refused);
    EXPECT_EQ(step.reason, "bad authenticator from server 1 (a different cluster secret?)");
  }
  {  // A confirmation cut short and padded with zeros (what a truncated read would leave).
    Pair pair;
    const HandshakeStep reply = pair.acceptor.on_message(pair.hello());
    const HandshakeStep confirm = pair.dialer.on_message(bytes_of(reply));
    ASSERT_EQ(confirm.kind, Kind::established);
    Bytes truncated(wire::kConfirmBytes, 0);
    std::copy_n(confirm.bytes.begin(), wire::kConfirmBytes / 2, truncated.begin());
    const HandshakeStep step = pair.acceptor.on_message(truncated);
    EXPECT_EQ(step.kind, Kind::refused);
    EXPECT_EQ(pair.acceptor.stage(), Handshake::Stage::idle);
  }
  {  // An unsupported version decodes, and is refused.
    Pair pair;
    Bytes hello = pair.hello();
    hello[5] = 2;
    const HandshakeStep step = pair.acceptor.on_message(hello);
    EXPECT_EQ(step.kind, Kind::refused);
    EXPECT_EQ(step.reason, "unsupported version 2 (ours 1)");
  }
}

// What `acceptor` decides on the HELLO `dialer` sends it (without the bytes of a reply: they
// live in the Handshake, which ends here).
HandshakeStep answer_to_hello(Server& dialer, Server& acceptor) {
  Handshake dialing;
  Handshake accepting;
  accepting.start_acceptor(acceptor.context);
  HandshakeStep step = accepting.on_message(
      bytes_of(dialing.start_dialer(dialer.context, acceptor.context.self_id)));
  step.bytes = {};
  return step;
}

TEST(Handshake, TheAcceptorChecksTheDialersIds) {
  {  // A server id not in the configuration.
    Server stranger(4, {1});
    Server acceptor_server(1, {2, 3});
    const HandshakeStep step = answer_to_hello(stranger, acceptor_server);
    EXPECT_EQ(step.kind, Kind::refused);
    EXPECT_EQ(step.reason, "unknown server id 4");
  }
  {  // A smaller id: only the larger id dials.
    Server smaller(1, {3});
    Server acceptor_server(3, {1});
    const HandshakeStep step = answer_to_hello(smaller, acceptor_server);
    EXPECT_EQ(step.kind, Kind::refused);
    EXPECT_EQ(step.reason, "server 1 has a smaller id than ours (3): only the larger id dials");
  }
  {  // A known larger id: its HELLO checks out.
    Server dialer_server(3, {1});
    Server acceptor_server(1, {3});
    const HandshakeStep step = answer_to_hello(dialer_server, acceptor_server);
    EXPECT_EQ(step.kind, Kind::send) << step.reason;
    EXPECT_EQ(step.peer, 3u);
  }
  {  // A hello for another server, and one claiming our own id.
    Pair pair;
    Bytes hello = pair.hello();
    hello[24] = 2;
    EXPECT_EQ(pair.acceptor.on_message(hello).reason, "server 3 wants server 2, we are 1");
    Pair self;
    hello = self.hello();
    hello[16] = 1;
    EXPECT_EQ(self.acceptor.on_message(hello).reason, "it claims our own id 1");
  }
}

TEST(Handshake, TheDialerChecksTheRepliesIds) {
  // Server 2 answers a hello meant for server 1 (it was given server 1's address).
  Server dialer_server(3, {1, 2});
  Server wrong(2, {1, 3});
  Handshake dialer;
  Handshake acceptor;
  Bytes hello = bytes_of(dialer.start_dialer(dialer_server.context, 1));
  hello[24] = 2;
  acceptor.start_acceptor(wrong.context);
  const HandshakeStep reply = acceptor.on_message(hello);
  ASSERT_EQ(reply.kind, Kind::send) << reply.reason;
  const HandshakeStep step = dialer.on_message(bytes_of(reply));
  EXPECT_EQ(step.kind, Kind::refused);
  EXPECT_EQ(step.reason, "the answer is from server 2 to 3, expected 1 to 3");
}

TEST(Handshake, ReplayedMessagesAreRefused) {
  // A recorded handshake between 3 and 1.
  Pair recorded;
  const Bytes hello = recorded.hello();
  const HandshakeStep reply = recorded.acceptor.on_message(hello);
  const Bytes recorded_reply = bytes_of(reply);
  const HandshakeStep confirm = recorded.dialer.on_message(recorded_reply);
  ASSERT_EQ(confirm.kind, Kind::established);
  const Bytes recorded_confirm = bytes_of(confirm);

  // Replayed to server 1 later: the HELLO checks out (it carries no proof), but the recorded
  // confirmation covers the old acceptor nonce, not the fresh one.
  Handshake acceptor;
  acceptor.start_acceptor(recorded.acceptor_server.context);
  const HandshakeStep fresh = acceptor.on_message(hello);
  ASSERT_EQ(fresh.kind, Kind::send);
  EXPECT_NE(bytes_of(fresh), recorded_reply);  // a new nonce
  const HandshakeStep step = acceptor.on_message(recorded_confirm);
  EXPECT_EQ(step.kind, Kind::refused);
  EXPECT_EQ(step.reason, "bad authenticator from server 3 (a different cluster secret?)");

  // Replayed to server 3 when it dials again: the recorded reply covers the old dialer nonce.
  Handshake dialer;
  const HandshakeStep new_hello = dialer.start_dialer(recorded.dialer_server.context, 1);
  EXPECT_NE(bytes_of(new_hello), hello);
  const HandshakeStep step2 = dialer.on_message(recorded_reply);
  EXPECT_EQ(step2.kind, Kind::refused);
  EXPECT_EQ(step2.reason, "bad authenticator from server 1 (a different cluster secret?)");

  // A reflected reply (the acceptor's own MAC sent back as the dialer's) does not verify either.
  Pair reflected;
  const HandshakeStep r = reflected.acceptor.on_message(reflected.hello());
  ASSERT_EQ(r.kind, Kind::send);
  const Bytes mac(r.bytes.begin() + wire::kHelloBytes, r.bytes.end());
  EXPECT_EQ(reflected.acceptor.on_message(mac).kind, Kind::refused);
}

}  // namespace
}  // namespace fastzab::net
