// The handshake's decisions (README.md, "Handshake"); see handshake.h.
#include "net/handshake.h"

#include <algorithm>

#include "net/check.h"

namespace fastzab::net {
namespace {

HandshakeStep refused(std::string reason) {
  return HandshakeStep{HandshakeStep::Kind::refused, {}, 0, std::move(reason)};
}

HandshakeStep garbage(std::string reason) {
  return HandshakeStep{HandshakeStep::Kind::garbage, {}, 0, std::move(reason)};
}

HandshakeStep bad_authenticator(std::uint64_t peer) {
  return refused("bad authenticator from server " + std::to_string(peer) +
                 " (a different cluster secret?)");
}

}  // namespace

wire::HelloBytes Handshake::hello_to(std::uint64_t target, wire::HelloKind kind) const {
  wire::Hello hello;
  hello.kind = kind;
  hello.cluster_id = context_->cluster_id;
  hello.sender_id = context_->self_id;
  hello.target_id = target;
  hello.nonce = context_->make_nonce();
  return wire::encode_hello(hello);
}

HandshakeStep Handshake::start_dialer(const HandshakeContext& context, std::uint64_t target) {
  context_ = &context;
  peer_ = target;
  dialer_hello_ = hello_to(target, wire::HelloKind::dialer);
  stage_ = Stage::awaiting_reply;
  return HandshakeStep{HandshakeStep::Kind::send, dialer_hello_, target, {}};
}

void Handshake::start_acceptor(const HandshakeContext& context) {
  context_ = &context;
  peer_ = 0;
  stage_ = Stage::awaiting_hello;
}

std::size_t Handshake::message_bytes() const noexcept {
  switch (stage_) {
    case Stage::awaiting_reply: return wire::kReplyBytes;
    case Stage::awaiting_hello: return wire::kHelloBytes;
    case Stage::awaiting_confirm: return wire::kConfirmBytes;
    case Stage::idle: break;
  }
  return 0;
}

HandshakeStep Handshake::on_message(std::span<const unsigned char> message) {
  FZ_NET_CHECK(stage_ != Stage::idle && message.size() == message_bytes());
  switch (stage_) {
    case Stage::awaiting_hello: return end(acceptor_on_hello(message));
    case Stage::awaiting_confirm: return end(acceptor_on_confirm(message));
    case Stage::awaiting_reply: return end(dialer_on_reply(message));
    case Stage::idle: break;
  }
  FZ_NET_CHECK(false);
  return {};
}

// Every step but `send` ends the handshake.
HandshakeStep Handshake::end(HandshakeStep step) {
  if (step.kind != HandshakeStep::Kind::send) stage_ = Stage::idle;
  return step;
}

// Keeps the hello at the start of `message` in `into` (the MACs cover it), decodes it and applies
// the checks both sides make (garbage, kind, version, cluster id); on failure, the step that ends
// the handshake.
std::expected<wire::Hello, HandshakeStep> Handshake::check_hello(
    std::span<const unsigned char> message, wire::HelloBytes& into, wire::HelloKind want,
    const char* wrong_kind) const {
  std::copy_n(message.begin(), wire::kHelloBytes, into.begin());
  const auto decoded = wire::decode_hello(into);
  if (!decoded) return std::unexpected(garbage(wire::describe(decoded.error())));
  if (decoded->kind != want) return std::unexpected(garbage(wrong_kind));
  if (decoded->version != wire::kVersion) {
    return std::unexpected(refused("unsupported version " + std::to_string(decoded->version) +
                                   " (ours " + std::to_string(wire::kVersion) + ")"));
  }
  if (decoded->cluster_id != context_->cluster_id) {
    return std::unexpected(refused("wrong cluster id " + std::to_string(decoded->cluster_id) +
                                   " (ours " + std::to_string(context_->cluster_id) + ")"));
  }
  return *decoded;
}

HandshakeStep Handshake::acceptor_on_hello(std::span<const unsigned char> message) {
  const auto hello = check_hello(message, dialer_hello_, wire::HelloKind::dialer,
                                 "an acceptor's hello where a dialer's was due");
  if (!hello) return hello.error();
  const std::uint64_t self = context_->self_id;
  const std::uint64_t dialer = hello->sender_id;
  if (dialer == self) return refused("it claims our own id " + std::to_string(dialer));
  if (std::find(context_->peers.begin(), context_->peers.end(), dialer) ==
      context_->peers.end()) {
    return refused("unknown server id " + std::to_string(dialer));
  }
  if (hello->target_id != self) {
    return refused("server " + std::to_string(dialer) + " wants server " +
                   std::to_string(hello->target_id) + ", we are " + std::to_string(self));
  }
  if (dialer < self) {
    return refused("server " + std::to_string(dialer) + " has a smaller id than ours (" +
                   std::to_string(self) + "): only the larger id dials");
  }
  peer_ = dialer;
  acceptor_hello_ = hello_to(dialer, wire::HelloKind::acceptor);
  const wire::Mac mac = wire::acceptor_mac(context_->secret, dialer_hello_, acceptor_hello_);
  std::copy(acceptor_hello_.begin(), acceptor_hello_.end(), out_.begin());
  std::copy(mac.begin(), mac.end(), out_.begin() + wire::kHelloBytes);
  stage_ = Stage::awaiting_confirm;
  return HandshakeStep{HandshakeStep::Kind::send, out_, dialer, {}};
}

HandshakeStep Handshake::acceptor_on_confirm(std::span<const unsigned char> message) {
  if (!wire::verify_dialer_mac(context_->secret, dialer_hello_, acceptor_hello_,
                               message.first<wire::kMacBytes>())) {
    return bad_authenticator(peer_);
  }
  return HandshakeStep{HandshakeStep::Kind::established, {}, peer_, {}};
}

HandshakeStep Handshake::dialer_on_reply(std::span<const unsigned char> message) {
  const auto hello = check_hello(message, acceptor_hello_, wire::HelloKind::acceptor,
                                 "a dialer's hello where the acceptor's reply was due");
  if (!hello) return hello.error();
  const std::uint64_t self = context_->self_id;
  if (hello->sender_id != peer_ || hello->target_id != self) {
    return refused("the answer is from server " + std::to_string(hello->sender_id) + " to " +
                   std::to_string(hello->target_id) + ", expected " + std::to_string(peer_) +
                   " to " + std::to_string(self));
  }
  if (!wire::verify_acceptor_mac(context_->secret, dialer_hello_, acceptor_hello_,
                                 message.subspan<wire::kHelloBytes, wire::kMacBytes>())) {
    return bad_authenticator(peer_);
  }
  const wire::Mac mac = wire::dialer_mac(context_->secret, dialer_hello_, acceptor_hello_);
  std::copy(mac.begin(), mac.end(), out_.begin());
  return HandshakeStep{HandshakeStep::Kind::established,
                       std::span<const unsigned char>(out_.data(), wire::kConfirmBytes), peer_,
                       {}};
}

}  // namespace fastzab::net
