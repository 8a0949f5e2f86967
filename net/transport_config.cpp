#include "net/transport_config.h"

#include <string>

#include "net/wire.h"

namespace fastzab::net {

Result<void> validate_config(const TransportConfig& c) {
  if (c.max_frame_bytes == 0 || c.max_frame_bytes > kMaxFrameBytesLimit) {
    return fail(errc::invalid_config, "max_frame_bytes must be in 1.." +
                                          std::to_string(kMaxFrameBytesLimit));
  }
  if (c.max_queued_bytes < std::uint64_t{c.max_frame_bytes} + wire::kFrameHeaderBytes) {
    return fail(errc::invalid_config, "max_queued_bytes must hold at least one largest frame");
  }
  if (c.reconnect_min.count() <= 0 || c.reconnect_max < c.reconnect_min) {
    return fail(errc::invalid_config, "need 0 < reconnect_min <= reconnect_max");
  }
  if (c.handshake_timeout.count() <= 0) {
    return fail(errc::invalid_config, "handshake_timeout must be positive");
  }
  if (c.hello_timeout.count() <= 0) {
    return fail(errc::invalid_config, "hello_timeout must be positive");
  }
  if (c.recv_buffer_count == 0 || c.recv_buffer_count > kMaxRecvBuffers ||
      (c.recv_buffer_count & (c.recv_buffer_count - 1)) != 0) {
    return fail(errc::invalid_config, "recv_buffer_count must be a power of two up to " +
                                          std::to_string(kMaxRecvBuffers));
  }
  if (c.recv_buffer_bytes < 64) return fail(errc::invalid_config, "recv_buffer_bytes below 64");
  for (std::size_t i = 0; i < c.peers.size(); ++i) {
    if (c.peers[i].id == c.self_id) {
      return fail(errc::invalid_config,
                  "the peer list holds our own id " + std::to_string(c.self_id));
    }
    for (std::size_t j = i + 1; j < c.peers.size(); ++j) {
      if (c.peers[i].id == c.peers[j].id) {
        return fail(errc::invalid_config,
                    "the peer list holds id " + std::to_string(c.peers[i].id) + " twice");
      }
    }
  }
  return {};
}

}  // namespace fastzab::net
